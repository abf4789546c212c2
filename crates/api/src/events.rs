//! EventService: Record, RecordBatch, RecordStream and RecordJson.

use std::collections::VecDeque;
use std::pin::Pin;

use lotline_domain::Outcome;
use lotline_proto::convert::outcome_to_wire;
use lotline_proto::v1;
use lotline_proto::v1::event_service_server::EventService;
use lotline_service::intake::{self, from_json, from_wire};
use lotline_service::{BoxFuture, Caller, Service, ServiceError};
use lotline_store::Submission;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
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

/// Batches of one `RecordStream` read and queued ahead of the one being written.
const STREAM_AHEAD: usize = 4;

/// The answer of one streamed batch, once its events are applied.
type Answer = BoxFuture<'static, Result<v1::RecordBatchResponse, Status>>;

#[tonic::async_trait]
impl EventService for EventApi {
    type RecordStreamStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::RecordBatchResponse, Status>> + Send>>;

    /// Reads batches as they come and queues each behind the one before, up to
    /// [`STREAM_AHEAD`] ahead, so the next batch is decoded and checked while the writer writes;
    /// answers in the order sent. The first batch that fails ends the stream with its status.
    #[instrument(skip_all)]
    async fn record_stream(
        &self,
        request: Request<Streaming<v1::RecordBatchRequest>>,
    ) -> Result<Response<Self::RecordStreamStream>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let mut batches = request.into_inner();
        let service = self.service.clone();
        let (answers, answered) = mpsc::channel(STREAM_AHEAD);
        tokio::spawn(async move {
            let mut waiting: VecDeque<Answer> = VecDeque::new();
            let mut reading = true;
            loop {
                tokio::select! {
                    answer = async {
                        match waiting.front_mut() {
                            Some(oldest) => oldest.await,
                            None => std::future::pending().await,
                        }
                    }, if !waiting.is_empty() => {
                        waiting.pop_front();
                        let failed = answer.is_err();
                        if answers.send(answer).await.is_err() || failed {
                            return;
                        }
                    }
                    batch = batches.message(), if reading && waiting.len() < STREAM_AHEAD => {
                        let queued = match batch {
                            Ok(Some(batch)) => {
                                queue_batch(&service, &caller, batch.events, |e| {
                                    from_wire(e, "grpc")
                                })
                                .await
                            }
                            Ok(None) => {
                                reading = false;
                                continue;
                            }
                            Err(status) => Err(status),
                        };
                        // After a batch that cannot be taken, nothing more is read.
                        reading = queued.is_ok();
                        waiting.push_back(queued.unwrap_or_else(|refused| {
                            Box::pin(std::future::ready(Err(refused)))
                        }));
                    }
                    else => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(answered))))
    }

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
    let answer = queue_batch(service, caller, events, submission).await?;
    Ok(Response::new(answer.await?))
}

/// Decodes one batch and queues it for recording: what waits for its answer, or why it was not
/// queued.
async fn queue_batch<T: Send + 'static>(
    service: &Service,
    caller: &Caller,
    events: Vec<T>,
    submission: fn(&T) -> Submission,
) -> Result<Answer, Status> {
    tracing::Span::current().record("events", events.len());
    let queued = async {
        service.check_batch(events.len())?;
        let submissions = intake::decode_all(events, submission).await?;
        let ids: Vec<String> = submissions.iter().map(|s| s.event_id.clone()).collect();
        Ok::<_, ServiceError>((ids, service.queue(caller, submissions).await?))
    };
    let (ids, outcomes) = queued.await.map_err(to_status)?;
    Ok(Box::pin(async move {
        let outcomes = outcomes.await.map_err(to_status)?;
        Ok(response(&ids, &outcomes))
    }))
}

/// The answer of a batch: each event's outcome, in request order.
fn response(ids: &[String], outcomes: &[Outcome]) -> v1::RecordBatchResponse {
    v1::RecordBatchResponse {
        outcomes: ids
            .iter()
            .zip(outcomes)
            .map(|(id, o)| outcome_to_wire(o, id))
            .collect(),
    }
}
