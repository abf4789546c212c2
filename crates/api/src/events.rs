//! EventService: Record, RecordBatch, RecordStream and RecordJson.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use lotline_domain::Outcome;
use lotline_proto::convert::outcome_to_wire;
use lotline_proto::encoded::{self, EncodedBatch};
use lotline_proto::v1;
use lotline_proto::v1::event_service_server::{EventService, EventServiceServer};
use lotline_service::intake::{self, from_json, from_wire};
use lotline_service::{BoxFuture, Caller, Service, ServiceError};
use lotline_store::Submission;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen;
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

impl EventApi {
    /// The `RecordStream` of the caller `request` authenticates ([`stream_batches`]), whatever
    /// form its batches come in: `events` takes a batch's events out, `submission` decodes one.
    fn record_batches<B: Send + 'static, T: Send + 'static>(
        &self,
        request: Request<Streaming<B>>,
        events: fn(B) -> Vec<T>,
        submission: fn(&T) -> Submission,
    ) -> Result<Response<AnswerStream>, Status> {
        let caller = caller(&self.service, &request, false)?;
        Ok(Response::new(stream_batches(
            self.service.clone(),
            caller,
            request.into_inner(),
            events,
            submission,
        )))
    }
}

/// Batches of one `RecordStream` read and queued ahead of the one being written.
const STREAM_AHEAD: usize = 4;

/// The answer of one streamed batch, once its events are applied.
type Answer = BoxFuture<'static, Result<v1::RecordBatchResponse, Status>>;

/// The answers of a `RecordStream`, one per batch in the order sent.
type AnswerStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::RecordBatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventApi {
    type RecordStreamStream = AnswerStream;

    /// Reads batches as they come and queues each behind the one before ([`stream_batches`]).
    /// Served as encoded batches by [`EventRoutes`]; this is the generated service's route.
    #[instrument(skip_all)]
    async fn record_stream(
        &self,
        request: Request<Streaming<v1::RecordBatchRequest>>,
    ) -> Result<Response<Self::RecordStreamStream>, Status> {
        self.record_batches(request, |batch| batch.events, |e| from_wire(e, "grpc"))
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

/// The answers of a `RecordStream`: reads batches as they come and queues each behind the one
/// before, up to [`STREAM_AHEAD`] ahead, so the next batch is decoded and checked while the
/// writer writes; answers in the order sent. The first batch that fails ends the stream with
/// its status. `events` takes a batch's events out, `submission` decodes one.
fn stream_batches<B: Send + 'static, T: Send + 'static>(
    service: Service,
    caller: Caller,
    mut batches: Streaming<B>,
    events: fn(B) -> Vec<T>,
    submission: fn(&T) -> Submission,
) -> AnswerStream {
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
                            queue_batch(&service, &caller, events(batch), submission).await
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
    Box::pin(ReceiverStream::new(answered))
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

/// The event service as served: the generated service, except that `RecordStream` reads each
/// batch as encoded events ([`EncodedBatch`], the same bytes on the wire), so that each event
/// is decoded once, straight into the domain event ([`intake::from_encoded`]), where the
/// generated route has gRPC decode it into a message that is then encoded again to be decoded.
/// Every caller check and answer is the same.
#[derive(Clone)]
pub struct EventRoutes {
    api: Arc<EventApi>,
    generated: EventServiceServer<EventApi>,
    max_decoding_message_size: usize,
}

impl EventRoutes {
    /// The routes of `api`, reading requests of up to `max_decoding_message_size` bytes.
    pub fn new(api: EventApi, max_decoding_message_size: usize) -> Self {
        let api = Arc::new(api);
        EventRoutes {
            generated: EventServiceServer::from_arc(Arc::clone(&api))
                .max_decoding_message_size(max_decoding_message_size),
            api,
            max_decoding_message_size,
        }
    }
}

impl tonic::server::NamedService for EventRoutes {
    const NAME: &'static str = <EventServiceServer<EventApi> as tonic::server::NamedService>::NAME;
}

impl<B> codegen::Service<codegen::http::Request<B>> for EventRoutes
where
    B: codegen::Body + Send + 'static,
    B::Error: Into<codegen::StdError> + Send + 'static,
{
    type Response = codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut codegen::Context<'_>,
    ) -> codegen::Poll<Result<(), Self::Error>> {
        codegen::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: codegen::http::Request<B>) -> Self::Future {
        if request.uri().path() != encoded::PATH {
            return self.generated.call(request);
        }
        let streams = EncodedStream(Arc::clone(&self.api));
        let max = self.max_decoding_message_size;
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<v1::RecordBatchResponse, EncodedBatch>::default();
            let mut grpc =
                tonic::server::Grpc::new(codec).apply_max_message_size_config(Some(max), None);
            Ok(grpc.streaming(streams, request).await)
        })
    }
}

/// `RecordStream` over encoded batches.
struct EncodedStream(Arc<EventApi>);

impl tonic::server::StreamingService<EncodedBatch> for EncodedStream {
    type Response = v1::RecordBatchResponse;
    type ResponseStream = AnswerStream;
    type Future = BoxFuture<'static, Result<Response<AnswerStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<EncodedBatch>>) -> Self::Future {
        let api = Arc::clone(&self.0);
        Box::pin(async move {
            api.record_batches(
                request,
                |batch| batch.events,
                |bytes| intake::from_encoded(bytes, "grpc"),
            )
        })
    }
}
