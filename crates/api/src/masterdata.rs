//! MasterDataService: master-data listings and the lookups an EPCIS import makes.

use lotline_proto::convert::{role_from_wire, role_to_wire};
use lotline_proto::v1;
use lotline_proto::v1::master_data_service_server::MasterDataService;
use lotline_service::queries::masterdata::{KnownOrg, Names};
use lotline_service::{Service, ServiceError, args};
use lotline_store::{MasterFilter, MasterKind};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::{caller, viewed};
use crate::provenance::events_to_wire;
use crate::status::status as to_status;

pub struct MasterDataApi {
    service: Service,
}

impl MasterDataApi {
    pub fn new(service: Service) -> Self {
        MasterDataApi { service }
    }
}

fn master_kind(kind: i32) -> Result<MasterKind, ServiceError> {
    match v1::MasterDataKind::try_from(kind) {
        Ok(v1::MasterDataKind::Orgs) => Ok(MasterKind::Orgs),
        Ok(v1::MasterDataKind::Sites) => Ok(MasterKind::Sites),
        Ok(v1::MasterDataKind::Plots) => Ok(MasterKind::Plots),
        Ok(v1::MasterDataKind::Classes) => Ok(MasterKind::Classes),
        Ok(v1::MasterDataKind::Certificates) => Ok(MasterKind::Certificates),
        _ => Err(ServiceError::invalid(
            "kind",
            "is required (orgs, sites, plots, classes or certificates)",
        )),
    }
}

fn master_filter(r: &v1::ListMasterDataRequest) -> Result<MasterFilter, ServiceError> {
    Ok(MasterFilter {
        org: args::opt_id("org", &r.org)?,
        chain: args::chain(&r.chain)?,
        country: args::country(&r.country)?,
        role: match r.role {
            0 => None,
            n => Some(
                role_from_wire(n)
                    .ok_or_else(|| ServiceError::invalid("role", format!("unknown role {n}")))?,
            ),
        },
    })
}

fn org_to_wire(o: KnownOrg) -> v1::ResolvedOrg {
    v1::ResolvedOrg {
        org: o.org,
        role: o.role.map(role_to_wire).unwrap_or_default(),
        chain: o.chain.unwrap_or_default(),
        country: o.country,
        member_of: o.member_of.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl MasterDataService for MasterDataApi {
    #[instrument(skip_all)]
    async fn list_master_data(
        &self,
        request: Request<v1::ListMasterDataRequest>,
    ) -> Result<Response<v1::ListMasterDataResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let kind = master_kind(r.kind).map_err(to_status)?;
        let filter = master_filter(&r).map_err(to_status)?;
        let cursor = args::opt_id("cursor", &r.cursor).map_err(to_status)?;
        let page = self
            .service
            .master_data(&caller, kind, filter, cursor, args::page_limit(r.limit))
            .await
            .map_err(to_status)?;
        Ok(viewed(
            v1::ListMasterDataResponse {
                entries: events_to_wire(&page),
                next_cursor: page.next.clone().unwrap_or_default(),
            },
            page.view,
        ))
    }

    #[instrument(skip_all)]
    async fn resolve(
        &self,
        request: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::ResolveResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let names = Names {
            parties: r.parties,
            locations: r.locations,
            orgs: r.orgs,
            classes: r.classes,
        };
        let found = self
            .service
            .resolve(&caller, names)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ResolveResponse {
            parties: found
                .parties
                .into_iter()
                .map(|(id, org)| v1::ResolvedParty {
                    id,
                    org: org.map(org_to_wire),
                })
                .collect(),
            locations: found
                .locations
                .into_iter()
                .map(|l| v1::ResolvedLocation {
                    id: l.id,
                    registered: l.registered,
                    plot: l.plot,
                    owner: l.owner.map(org_to_wire),
                })
                .collect(),
            orgs: found.orgs.into_iter().map(org_to_wire).collect(),
            classes: found
                .classes
                .into_iter()
                .map(|c| v1::ResolvedClass {
                    id: c.id,
                    found: c.found,
                    product: c.product.unwrap_or_default(),
                    chain: c.chain.unwrap_or_default(),
                    org: c.org,
                })
                .collect(),
        }))
    }
}
