//! EventService: Record, RecordBatch and RecordJson.

use lotline_proto::convert::outcome_to_wire;
use lotline_proto::v1;
use lotline_proto::v1::event_service_server::EventService;
use lotline_service::intake::{self, from_json, from_wire};
use lotline_service::{Caller, Service, ServiceError};
use lotline_store::Submission;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::caller;
use crate::status::status as to_status;

pub struct EventApi {
    service: Service,
}

impl EventApi {
    pub fn new(service: Service) -> Self {
        EventApi { service }
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    #[instrument(skip_all)]
    async fn record(
        &self,
        request: Request<v1::RecordRequest>,
    ) -> Result<Response<v1::RecordResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let event = request
            .into_inner()
            .event
            .ok_or_else(|| to_status(ServiceError::invalid("event", "is required")))?;
        let outcome = self
            .service
            .record_one(&caller, from_wire(&event, "grpc"))
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::RecordResponse {
            outcome: Some(outcome_to_wire(&outcome, &event.event_id)),
        }))
    }

    #[instrument(skip_all, fields(events))]
    async fn record_batch(
        &self,
        request: Request<v1::RecordBatchRequest>,
    ) -> Result<Response<v1::RecordBatchResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let events = request.into_inner().events;
        record_all(&self.service, &caller, events, |e| from_wire(e, "grpc")).await
    }

    #[instrument(skip_all, fields(events))]
    async fn record_json(
        &self,
        request: Request<v1::RecordJsonRequest>,
    ) -> Result<Response<v1::RecordBatchResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let events = request.into_inner().events;
        record_all(&self.service, &caller, events, |e| {
            from_json(e, "grpc-json")
        })
        .await
    }
}

/// Records a batch, whatever form its events came in, with an outcome for each in request order.
async fn record_all<T: Send + 'static>(
    service: &Service,
    caller: &Caller,
    events: Vec<T>,
    submission: fn(&T) -> Submission,
) -> Result<Response<v1::RecordBatchResponse>, Status> {
    tracing::Span::current().record("events", events.len());
    service.check_batch(events.len()).map_err(to_status)?;
    let submissions = intake::decode_all(events, submission)
        .await
        .map_err(to_status)?;
    let ids: Vec<String> = submissions.iter().map(|s| s.event_id.clone()).collect();
    let outcomes = service
        .record(caller, submissions)
        .await
        .map_err(to_status)?;
    let outcomes = ids
        .iter()
        .zip(&outcomes)
        .map(|(id, o)| outcome_to_wire(o, id))
        .collect();
    Ok(Response::new(v1::RecordBatchResponse { outcomes }))
}
