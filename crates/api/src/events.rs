//! EventService: Record and RecordBatch through the single writer.

use lotline_proto::v1;
use lotline_proto::v1::event_service_server::EventService;
use lotline_store::{Outcome, Submission};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::status::{batch_too_large, reject_status, store_status, writes_refused};
use crate::{MAX_BATCH, Ready, ReadyCell, ready};

/// The services' state, unless writes are refused.
fn writable(cell: &ReadyCell) -> Result<&Ready, Status> {
    let ready = ready(cell)?;
    if let Some(reason) = &ready.writes_refused {
        return Err(writes_refused(reason));
    }
    if let Some(reason) = ready.recorder.refusal() {
        return Err(Status::unavailable(reason));
    }
    Ok(ready)
}

pub struct EventApi {
    ready: ReadyCell,
}

impl EventApi {
    pub fn new(ready: ReadyCell) -> Self {
        EventApi { ready }
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    #[instrument(skip_all)]
    async fn record(
        &self,
        request: Request<v1::RecordRequest>,
    ) -> Result<Response<v1::RecordResponse>, Status> {
        let ready = writable(&self.ready)?;
        let event = request
            .into_inner()
            .event
            .ok_or_else(|| Status::invalid_argument("event: is required"))?;
        let submission = Submission::from_wire(&event, "grpc");
        let outcomes = ready
            .recorder
            .record(vec![submission])
            .await
            .map_err(store_status)?;
        let outcome = outcomes
            .into_iter()
            .next()
            .ok_or_else(|| Status::internal("the writer returned no outcome"))?;
        if let Outcome::Rejected { kind, reason } = &outcome {
            return Err(reject_status(*kind, reason));
        }
        Ok(Response::new(v1::RecordResponse {
            outcome: Some(outcome.to_wire(&event.event_id)),
        }))
    }

    #[instrument(skip_all, fields(events))]
    async fn record_batch(
        &self,
        request: Request<v1::RecordBatchRequest>,
    ) -> Result<Response<v1::RecordBatchResponse>, Status> {
        let events = request.into_inner().events;
        record_all(&self.ready, events, |e| Submission::from_wire(e, "grpc")).await
    }

    #[instrument(skip_all, fields(events))]
    async fn record_json(
        &self,
        request: Request<v1::RecordJsonRequest>,
    ) -> Result<Response<v1::RecordBatchResponse>, Status> {
        let events = request.into_inner().events;
        record_all(&self.ready, events, |e| {
            Submission::from_json(e, "grpc-json")
        })
        .await
    }
}

/// Records a batch, whatever form its events came in, with an outcome for each.
async fn record_all<T: Send + 'static>(
    cell: &ReadyCell,
    events: Vec<T>,
    submission: fn(&T) -> Submission,
) -> Result<Response<v1::RecordBatchResponse>, Status> {
    let ready = writable(cell)?;
    tracing::Span::current().record("events", events.len());
    check_batch_size(events.len())?;
    // Decoding and validating (GeoJSON included) is CPU work: keep it off the
    // threads that serve requests.
    let submissions = tokio::task::spawn_blocking(move || events.iter().map(submission).collect())
        .await
        .map_err(|e| Status::internal(format!("validation task failed: {e}")))?;
    answer_batch(ready, submissions).await
}

fn check_batch_size(events: usize) -> Result<(), Status> {
    if events > MAX_BATCH {
        return Err(batch_too_large(events, MAX_BATCH));
    }
    Ok(())
}

/// Submits a batch and answers each event's outcome in request order.
async fn answer_batch(
    ready: &Ready,
    submissions: Vec<Submission>,
) -> Result<Response<v1::RecordBatchResponse>, Status> {
    let ids: Vec<String> = submissions.iter().map(|s| s.event_id.clone()).collect();
    let outcomes = ready
        .recorder
        .record(submissions)
        .await
        .map_err(store_status)?;
    let outcomes = ids
        .iter()
        .zip(&outcomes)
        .map(|(id, o)| o.to_wire(id))
        .collect();
    Ok(Response::new(v1::RecordBatchResponse { outcomes }))
}
