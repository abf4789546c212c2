//! AuditService: mass balance, anomalies, the chain-of-custody report and the EUDR export.

use lotline_domain::Verdict;
use lotline_domain::audit::balance::BalanceQuery;
use lotline_domain::audit::scan::BALANCE_CLAIM;
use lotline_proto::convert::{
    anomaly_to_wire, chain_report_to_wire, ledger_to_wire, outcome_to_wire,
};
use lotline_proto::v1;
use lotline_proto::v1::audit_service_server::AuditService;
use lotline_service::queries::audit::{AnomalyCursor, AnomalyQuery, ReviewRequest};
use lotline_service::{Service, ServiceError, args};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::{caller, viewed};
use crate::status::status as to_status;

pub struct AuditApi {
    service: Service,
}

impl AuditApi {
    pub fn new(service: Service) -> Self {
        AuditApi { service }
    }
}

fn balance_query(r: &v1::MassBalanceRequest) -> Result<BalanceQuery, ServiceError> {
    let org = args::id("org", &r.org)?;
    if org.trim().is_empty() {
        return Err(ServiceError::invalid("org", "is required"));
    }
    Ok(BalanceQuery {
        org,
        sites: r
            .sites
            .iter()
            .map(|s| args::id("sites", s))
            .collect::<Result<Vec<_>, _>>()?,
        product: Some(r.product.trim().to_string()).filter(|p| !p.is_empty()),
        from: args::time("from", &r.from)?,
        to: args::time("to", &r.to)?,
        claim: match r.claim.trim() {
            "" => BALANCE_CLAIM.to_string(),
            c => c.to_string(),
        },
    })
}

fn anomaly_query(r: &v1::ListAnomaliesRequest) -> Result<AnomalyQuery, ServiceError> {
    Ok(AnomalyQuery {
        org: args::opt_id("org", &r.org)?,
        lot: args::opt_lot("lot", &r.lot)?,
        kind: args::anomaly_kind(&r.kind)?,
        status: args::anomaly_status(&r.status)?,
        id: args::anomaly_id("id", &r.id)?,
        after: AnomalyCursor::decode(&r.cursor)?,
        limit: args::page_limit(r.limit),
    })
}

fn review_request(r: &v1::ReviewAnomalyRequest) -> Result<ReviewRequest, ServiceError> {
    let verdict = match v1::ReviewVerdict::try_from(r.verdict) {
        Ok(v1::ReviewVerdict::Acknowledged) => Verdict::Acknowledged,
        Ok(v1::ReviewVerdict::Disputed) => Verdict::Disputed,
        _ => {
            return Err(ServiceError::invalid(
                "verdict",
                "is required: REVIEW_VERDICT_ACKNOWLEDGED or REVIEW_VERDICT_DISPUTED",
            ));
        }
    };
    Ok(ReviewRequest {
        anomaly: args::anomaly_id("anomaly", &r.anomaly)?
            .ok_or_else(|| ServiceError::invalid("anomaly", "is required"))?,
        verdict,
        note: r.note.clone(),
        event_id: args::opt_id("event_id", &r.event_id)?,
    })
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[instrument(skip_all, fields(org = %request.get_ref().org))]
    async fn mass_balance(
        &self,
        request: Request<v1::MassBalanceRequest>,
    ) -> Result<Response<v1::MassBalanceResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let query = balance_query(request.get_ref()).map_err(to_status)?;
        let books = self
            .service
            .mass_balance(&caller, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::MassBalanceResponse {
            ledgers: books.ledgers.iter().map(ledger_to_wire).collect(),
            current_to: books.current_to,
        }))
    }

    #[instrument(skip_all)]
    async fn list_anomalies(
        &self,
        request: Request<v1::ListAnomaliesRequest>,
    ) -> Result<Response<v1::ListAnomaliesResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let query = anomaly_query(request.get_ref()).map_err(to_status)?;
        let page = self
            .service
            .anomalies(&caller, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ListAnomaliesResponse {
            anomalies: page.anomalies.iter().map(anomaly_to_wire).collect(),
            next_cursor: page.next.map(|c| c.encode()).unwrap_or_default(),
            total: u32::try_from(page.total).unwrap_or(u32::MAX),
            counts: page.counts,
            status_counts: page.status_counts,
            current_to: page.current_to,
        }))
    }

    #[instrument(skip_all, fields(anomaly = %request.get_ref().anomaly))]
    async fn review_anomaly(
        &self,
        request: Request<v1::ReviewAnomalyRequest>,
    ) -> Result<Response<v1::ReviewAnomalyResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let review = review_request(&r).map_err(to_status)?;
        let (anomaly, outcome) = self
            .service
            .review_anomaly(&caller, review)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ReviewAnomalyResponse {
            outcome: Some(outcome_to_wire(
                &outcome,
                &anomaly
                    .reviews
                    .last()
                    .map(|r| r.event_id.clone())
                    .unwrap_or_default(),
            )),
            anomaly: Some(anomaly_to_wire(&anomaly)),
        }))
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn chain_report(
        &self,
        request: Request<v1::ChainReportRequest>,
    ) -> Result<Response<v1::ChainReportResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let lot = args::lot(&r.lot).map_err(to_status)?;
        let report = self
            .service
            .chain_report(&caller, lot)
            .await
            .map_err(to_status)?;
        Ok(viewed(chain_report_to_wire(&report.report), report.view))
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn eudr_export(
        &self,
        request: Request<v1::EudrExportRequest>,
    ) -> Result<Response<v1::EudrExportResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let lot = args::lot(&r.lot).map_err(to_status)?;
        let answer = self.service.eudr(&caller, lot).await.map_err(to_status)?;
        Ok(viewed(crate::wire::eudr(&answer), answer.view))
    }
}
