//! AccessService: who the server takes the caller to be.

use chrono::SecondsFormat;
use lotline_proto::v1;
use lotline_proto::v1::access_service_server::AccessService;
use lotline_service::{Credential, Service, Who};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::caller;

pub struct AccessApi {
    service: Service,
}

impl AccessApi {
    pub fn new(service: Service) -> Self {
        AccessApi { service }
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    #[instrument(skip_all)]
    async fn who_am_i(
        &self,
        request: Request<v1::WhoAmIRequest>,
    ) -> Result<Response<v1::WhoAmIResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let answer = match &caller.who {
            Who::Open => v1::WhoAmIResponse {
                access: "open".into(),
                ..Default::default()
            },
            Who::Anonymous => v1::WhoAmIResponse {
                access: "anonymous".into(),
                ..Default::default()
            },
            Who::Party(id) => {
                let time = |t: &Option<chrono::DateTime<chrono::FixedOffset>>| {
                    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                        .unwrap_or_default()
                };
                v1::WhoAmIResponse {
                    access: "party".into(),
                    org: id.org.clone(),
                    roles: id.roles.iter().map(|r| r.as_str().to_string()).collect(),
                    credential: match id.credential {
                        Credential::Token => "token",
                        Credential::Certificate => "certificate",
                    }
                    .into(),
                    token_id: id.token_id.clone().unwrap_or_default(),
                    on_behalf_of: id.on_behalf_of.iter().cloned().collect(),
                    scope_orgs: id.scope.orgs.iter().cloned().collect(),
                    scope_chains: id
                        .scope
                        .chains
                        .iter()
                        .map(|c| c.as_str().to_string())
                        .collect(),
                    scope_from: time(&id.scope.from),
                    scope_to: time(&id.scope.to),
                }
            }
        };
        Ok(Response::new(answer))
    }
}
