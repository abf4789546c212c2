//! The operations listener (`serve --metrics ADDR`): Prometheus metrics, liveness and
//! readiness over plain HTTP, apart from the doors callers use, so a load balancer, a
//! Kubernetes probe or a Prometheus server needs no credential and sees no event.
//!
//! What the code records as it works (the writer's batches and outcomes, each RPC's and HTTP
//! route's latency) goes through the `metrics` facade; what is a reading of the node's state
//! (tree size, store size, the writer's queue, the consumer's lag) is read when scraped.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lotline_ingest::LagProbe;
use lotline_store::{Store, Writer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{Instrument as _, info, warn};

/// The latency of each gRPC call to its response's head (for a server-streaming call, its first
/// message), labelled by method (`/lotline.v1.ProvenanceService/Trace`).
pub const RPC_SECONDS: &str = "lotline_rpc_duration_seconds";

/// What this node can do, as readiness reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opening and checking the store.
    Starting,
    /// Reads, proofs and writes.
    Serving,
    /// Reads and proofs only; why writes are not taken.
    ReadsOnly(String),
    /// The store could not be opened: nothing but health answers.
    Failed(String),
    /// Shutting down.
    Stopping,
}

impl Status {
    fn describe(&self) -> String {
        match self {
            Status::Starting => "starting: opening and checking the store".into(),
            Status::Serving => "serving reads and writes".into(),
            Status::ReadsOnly(why) => format!("serving reads only: {why}"),
            Status::Failed(why) => format!("not serving: {why}"),
            Status::Stopping => "stopping".into(),
        }
    }

    fn gauge(&self) -> f64 {
        match self {
            Status::Serving => 2.0,
            Status::ReadsOnly(_) => 1.0,
            _ => 0.0,
        }
    }
}

/// What the scrape reads once the store is open.
pub struct Sources {
    pub store: Store,
    pub writer: Writer,
    pub data_dir: PathBuf,
    /// NATS mode: how far behind the stream this node is.
    pub stream: Option<LagProbe>,
}

/// The operations listener's state: shared by the server, which reports its status and
/// attaches what can be read once the store is open.
#[derive(Clone)]
pub struct Ops {
    handle: PrometheusHandle,
    status: watch::Receiver<Status>,
    sources: Arc<OnceLock<Sources>>,
}

/// The process's Prometheus recorder, installed on first use. Every histogram is rendered as a
/// Prometheus histogram (buckets), not a summary, so that nodes can be aggregated.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        const SECONDS: &[f64] = &[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ];
        const EVENTS: &[f64] = &[
            1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(lotline_store::BATCH_EVENTS.into()), EVENTS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            warn!(cause = %e, "another metrics recorder is installed; lotline's metrics go there");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        lotline_store::EVENTS_TOTAL,
        "Events the writer decided, by outcome (accepted, duplicate, rejected) and rejection reason"
    );
    describe_histogram!(
        lotline_store::BATCH_EVENTS,
        Unit::Count,
        "Events per batch the writer applied and flushed at once"
    );
    describe_histogram!(
        lotline_store::APPLY_SECONDS,
        Unit::Seconds,
        "sled's atomic apply of one batch"
    );
    describe_histogram!(
        lotline_store::FLUSH_SECONDS,
        Unit::Seconds,
        "sled's flush of one batch, before it is acknowledged"
    );
    describe_histogram!(RPC_SECONDS, Unit::Seconds, "gRPC call latency, by method");
    describe_histogram!(
        lotline_http::REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP door request latency, by method and route"
    );
    describe_gauge!(
        "lotline_tree_size",
        "Events in the log (the Merkle tree's size)"
    );
    describe_gauge!(
        "lotline_store_bytes",
        Unit::Bytes,
        "Bytes of the data dir on disk"
    );
    describe_gauge!(
        "lotline_writer_queue_jobs",
        "Batches waiting for the writer"
    );
    describe_gauge!(
        "lotline_stream_applied_sequence",
        "NATS: the stream sequence this node has applied through"
    );
    describe_gauge!(
        "lotline_stream_last_sequence",
        "NATS: the stream's last sequence"
    );
    describe_gauge!(
        "lotline_consumer_lag_messages",
        "NATS: stream messages this node has not applied yet"
    );
    describe_gauge!(
        "lotline_stream_reachable",
        "NATS: 1 if the last scrape could read the stream's state"
    );
    describe_gauge!(
        "lotline_ready",
        "2 serving reads and writes, 1 reads only, 0 not serving"
    );
}

impl Ops {
    /// The listener's state, following `status`.
    pub fn new(status: watch::Receiver<Status>) -> Ops {
        Ops {
            handle: recorder().clone(),
            status,
            sources: Arc::new(OnceLock::new()),
        }
    }

    /// What the scrape reads from now on (once; the store is opened once).
    pub fn attach(&self, sources: Sources) {
        let _ = self.sources.set(sources);
    }

    /// The Prometheus text exposition of every metric, readings refreshed.
    pub async fn render(&self) -> String {
        metrics::gauge!("lotline_ready").set(self.status.borrow().gauge());
        if let Some(sources) = self.sources.get() {
            metrics::gauge!("lotline_tree_size").set(sources.store.durable() as f64);
            metrics::gauge!("lotline_writer_queue_jobs").set(sources.writer.queue_depth() as f64);
            let dir = sources.data_dir.clone();
            if let Ok(bytes) = tokio::task::spawn_blocking(move || dir_bytes(&dir)).await {
                metrics::gauge!("lotline_store_bytes").set(bytes as f64);
            }
            if let Some(stream) = &sources.stream {
                metrics::gauge!("lotline_stream_applied_sequence").set(stream.applied() as f64);
                match tokio::time::timeout(Duration::from_secs(2), stream.lag()).await {
                    Ok(Ok((last, lag))) => {
                        metrics::gauge!("lotline_stream_last_sequence").set(last as f64);
                        metrics::gauge!("lotline_consumer_lag_messages").set(lag as f64);
                        metrics::gauge!("lotline_stream_reachable").set(1.0);
                    }
                    _ => metrics::gauge!("lotline_stream_reachable").set(0.0),
                }
            }
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Bytes of the files under `dir` (sled's data dir is flat but for a few small files).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The operations routes: `/metrics`, `/healthz` (alive), `/readyz` (takes writes and
/// reads) and `/readyz/reads` (takes reads).
pub fn router(ops: Ops) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "alive\n" }))
        .route("/readyz", get(ready))
        .route("/readyz/reads", get(ready_for_reads))
        .with_state(ops)
}

async fn metrics_page(State(ops): State<Ops>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.render().await,
    )
        .into_response()
}

async fn ready(State(ops): State<Ops>) -> Response {
    let status = ops.status.borrow().clone();
    answer(matches!(status, Status::Serving), &status)
}

async fn ready_for_reads(State(ops): State<Ops>) -> Response {
    let status = ops.status.borrow().clone();
    answer(
        matches!(status, Status::Serving | Status::ReadsOnly(_)),
        &status,
    )
}

fn answer(ready: bool, status: &Status) -> Response {
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{}\n", status.describe())).into_response()
}

/// Logs where the operations listener is (`metrics_address`): before it is served, so the line
/// comes before the gRPC listener's.
pub fn announce(listener: &TcpListener) {
    if let Ok(address) = listener.local_addr() {
        info!(metrics_address = %address, "operations listener up: /metrics, /healthz, /readyz");
    }
}

/// Serves the operations routes on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    ops: Ops,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(ops))
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(cause = %e, "the operations listener failed");
    }
}

/// Times every gRPC call into [`RPC_SECONDS`], labelled by method. A path that names no method
/// of lotline's services or health (reflection included) is labelled `unknown`, so a caller cannot
/// make the label set grow.
#[derive(Clone)]
pub struct RpcTimerLayer {
    known: Arc<HashSet<String>>,
}

impl RpcTimerLayer {
    pub fn new() -> RpcTimerLayer {
        let mut known = HashSet::new();
        for set in [
            lotline_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(files) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in files.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    for method in service.method {
                        known.insert(format!(
                            "/{package}.{name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        RpcTimerLayer {
            known: Arc::new(known),
        }
    }
}

impl Default for RpcTimerLayer {
    fn default() -> Self {
        RpcTimerLayer::new()
    }
}

impl<S> tower::Layer<S> for RpcTimerLayer {
    type Service = RpcTimer<S>;

    fn layer(&self, inner: S) -> RpcTimer<S> {
        RpcTimer {
            inner,
            known: self.known.clone(),
        }
    }
}

/// See [`RpcTimerLayer`].
#[derive(Clone)]
pub struct RpcTimer<S> {
    inner: S,
    known: Arc<HashSet<String>>,
}

impl<S, B> tower::Service<axum::http::Request<B>> for RpcTimer<S>
where
    S: tower::Service<axum::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = if self.known.contains(path) {
            path.to_string()
        } else {
            "unknown".to_string()
        };
        // One span per call, named after its method (an OpenTelemetry exporter makes it the
        // call's span, in the caller's trace if it sent a traceparent); the handler's own span
        // is made inside it.
        let span = tracing::info_span!("grpc", otel.name = %method, rpc.method = %method);
        crate::telemetry::continue_trace(&span, request.headers());
        let started = Instant::now();
        let answer = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let result = answer.await;
                metrics::histogram!(RPC_SECONDS, "method" => method)
                    .record(started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}
