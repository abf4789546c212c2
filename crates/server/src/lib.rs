//! lotline's server wiring and command line.
//!
//! [`run`] serves the gRPC API on a listener the caller bound, until `shutdown`
//! resolves: tests bind `127.0.0.1:0` and pass their own shutdown. The `lotline`
//! binary (`src/main.rs`) is a thin shell over [`cli`].

// sled allocates and frees on every key it writes (it clones the node it links to), and the
// audit state frees a whole log's events after a build; mimalloc does that work markedly faster
// than the system allocator, which defers the freeing and pays it, hundreds of milliseconds at a
// million events, on the next questions. It is set here, not in the binary, so that every process
// that runs the server (the binary, the tests and the benchmarks that embed it) runs it alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cli;
pub mod keyfile;
pub mod ops;
pub mod sample;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lotline_api::{
    AccessApi, AuditApi, EventApi, EventRoutes, LogApi, MasterDataApi, ProvenanceApi, Ready,
    ReadyCell, Service,
};
use lotline_domain::audit::rules::Rules;
use lotline_http::{Connection, Peer};
use lotline_ingest::{ConsumerState, Ingest, NatsConfig, NatsRecorder};
use lotline_proto::v1::access_service_server::AccessServiceServer;
use lotline_proto::v1::audit_service_server::AuditServiceServer;
use lotline_proto::v1::log_service_server::LogServiceServer;
use lotline_proto::v1::master_data_service_server::MasterDataServiceServer;
use lotline_proto::v1::provenance_service_server::ProvenanceServiceServer;
use lotline_service::tokens::{Issuer, Verifier};
use lotline_service::{Access, PublicGeometry, Recorder};
use lotline_store::{
    SledBackend, StartupCheck, Store, StoreError, TreeCheck, Writer, WriterConfig,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tracing::{error, info, warn};

/// The largest request the server decodes (a RecordBatch of large plot polygons).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// Everything `lotline serve` needs, validated before anything is bound.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the sled store lives; created if missing.
    pub data_dir: PathBuf,
    /// sled page cache bound, in bytes.
    pub cache_bytes: u64,
    /// Check every log entry against the indexes at start-up (not just a sample).
    pub full_check: bool,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub grace: Duration,
    /// The log's name: the checkpoint origin and the signing key's name. Nodes
    /// that apply the same events under the same name sign the same checkpoints.
    pub log_name: String,
    /// The Ed25519 signing key file (hex seed); default `<data_dir>/log-signing.key`,
    /// created on first start.
    pub signing_key: Option<PathBuf>,
    /// Build the Merkle tree from the log if it is missing or does not match
    /// (the operator trusts the log as it is).
    pub build_tree: bool,
    /// Consume the NATS JetStream stream (and write through it); embedded if `None`.
    pub nats: Option<NatsSettings>,
    /// Conversion bands and reference prices for audit answers (`--rules FILE`
    /// merged over the defaults).
    pub rules: Arc<Rules>,
    /// TLS on the listener (`--tls-cert`, `--tls-key`, `--client-ca`); plaintext if `None`.
    pub tls: Option<tls::TlsFiles>,
    /// Access control (`--auth`); everyone may do everything if `None`.
    pub auth: Option<AuthSettings>,
    /// Callers without a credential get the public view (`--public-reads`).
    pub public_reads: bool,
    /// How the public view shows plot geometry (`--public-geometry`).
    pub public_geometry: PublicGeometry,
    /// How far an event may be dated after its record time (`--future-margin`).
    pub future_margin: chrono::Duration,
    /// The largest event taken, in bytes as received (`--max-event-bytes`).
    pub max_event_bytes: usize,
    /// The most lots one trace or recall walks (`--max-walk`).
    pub max_walk: usize,
    /// Questions at once, in all and per caller (`--read-workers`, `--max-reads-per-caller`).
    pub read_limits: lotline_service::ReadLimits,
    /// Where the HTTP door (the EPCIS REST binding) listens (`--http`); none if `None`. It
    /// speaks TLS when the gRPC listener does, with the same certificates.
    pub http: Option<std::net::SocketAddr>,
    /// URL prefixes webhook subscriptions may deliver to (`--webhook-allow`); none: no
    /// webhooks.
    pub webhook_allow: Vec<String>,
    /// Where the operations listener (Prometheus metrics, liveness, readiness) listens
    /// (`--metrics`); none if `None`.
    pub metrics: Option<std::net::SocketAddr>,
}

/// `serve --auth`: whose tokens are accepted.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// The issuer's private key file (hex seed); default `<data_dir>/token-issuer.key`,
    /// created on first start. Only its public half is used to check tokens.
    pub issuer_key: Option<PathBuf>,
    /// The issuer's public key (hex), for nodes that do not hold the private key.
    pub issuer_public_key: Option<String>,
}

/// The issuer's key file in the data dir when none is configured.
pub const DEFAULT_ISSUER_KEY_FILE: &str = "token-issuer.key";

/// The token issuer whose key is at `path` (created there if missing).
pub fn load_issuer(path: &std::path::Path) -> Result<Issuer, ServerError> {
    let seed = keyfile::load_or_create_seed(path)
        .map_err(|e| ServerError::Other(format!("token issuer key: {e}")))?;
    Ok(Issuer::new(&seed))
}

/// `serve --nats-url`: where the stream is, and this node's name on it.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    /// The durable consumer is named after it; default: kept in
    /// `<data_dir>/node-id`, made up on first start.
    pub node_id: Option<String>,
    pub replicas: usize,
    pub duplicate_window: Duration,
    /// Credentials file, TLS (`--nats-creds`, `--nats-tls-*`).
    pub client: lotline_ingest::ClientOptions,
    /// A co-op edge node: the hub's JetStream domain, whose master data the local stream
    /// sources (`--nats-hub-domain`, deploy/edge).
    pub hub_domain: Option<String>,
}

impl NatsSettings {
    pub fn new(url: impl Into<String>) -> Self {
        let defaults = NatsConfig::new("", "");
        NatsSettings {
            url: url.into(),
            node_id: None,
            replicas: defaults.replicas,
            duplicate_window: defaults.duplicate_window,
            client: lotline_ingest::ClientOptions::default(),
            hub_domain: None,
        }
    }
}

/// sled's page cache unless `--cache-mb` says otherwise, in MiB. sled keeps two to three times
/// its cache capacity once the data outgrows it (a 1 M-event import peaked at 303, 453, 540 and
/// 818 MiB of server memory with 16, 64, 96 and 256), and a larger cache did not import faster.
pub const DEFAULT_CACHE_MB: u64 = 64;

/// The default log name (checkpoint origin).
pub const DEFAULT_LOG_NAME: &str = "lotline.local/log";

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            data_dir: data_dir.into(),
            cache_bytes: DEFAULT_CACHE_MB << 20,
            full_check: false,
            grace: Duration::from_secs(10),
            log_name: DEFAULT_LOG_NAME.to_string(),
            signing_key: None,
            build_tree: false,
            nats: None,
            rules: Arc::new(Rules::default()),
            tls: None,
            auth: None,
            public_reads: false,
            public_geometry: PublicGeometry::default(),
            future_margin: lotline_store::DEFAULT_FUTURE_MARGIN,
            max_event_bytes: lotline_service::intake::DEFAULT_MAX_EVENT_BYTES,
            max_walk: lotline_service::DEFAULT_MAX_WALK,
            read_limits: lotline_service::ReadLimits::default(),
            http: None,
            webhook_allow: Vec::new(),
            metrics: None,
        }
    }

    /// Where the token issuer's key is read from (and created, if it is the default).
    pub fn issuer_key_path(&self) -> PathBuf {
        self.auth
            .as_ref()
            .and_then(|a| a.issuer_key.clone())
            .unwrap_or_else(|| self.data_dir.join(DEFAULT_ISSUER_KEY_FILE))
    }

    /// How the server decides who its callers are.
    pub fn access(&self) -> Result<Access, ServerError> {
        let verifier = match &self.auth {
            None => None,
            Some(auth) => Some(match &auth.issuer_public_key {
                Some(hex) => Verifier::from_hex(hex)
                    .map_err(|e| ServerError::Other(format!("--issuer-public-key: {e}")))?,
                None => load_issuer(&self.issuer_key_path())?.verifier(),
            }),
        };
        Ok(Access {
            verifier,
            public_reads: self.public_reads,
            public_geometry: self.public_geometry,
        })
    }

    /// Where the signing key is read from (and created, if it is the default).
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(keyfile::DEFAULT_KEY_FILE))
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(transparent)]
    Ingest(#[from] lotline_ingest::IngestError),
    #[error("{0}")]
    Other(String),
}

/// What start-up found.
#[derive(Clone)]
pub struct Opened {
    pub store: Store,
    pub indexes: StartupCheck,
    pub tree: TreeCheck,
}

/// Opens the store and checks its indexes and its Merkle tree against the log.
///
/// The tree is checked first: indexes are never rebuilt from a log that does not
/// match its tree (writes are refused instead).
pub fn open_and_check(config: &ServeConfig) -> Result<Opened, StoreError> {
    let store = open_backend(config)?;
    let mut tree = store.check_tree(config.full_check)?;
    if config.build_tree && !matches!(tree, TreeCheck::Consistent { .. }) {
        warn!(
            ?tree,
            "building the Merkle tree from the log, as asked (--build-tree)"
        );
        tree = store.rebuild_tree()?;
    }
    let indexes = match &tree {
        TreeCheck::Mismatch { reason } => StartupCheck::NotChecked {
            reason: reason.clone(),
        },
        _ => store.check_and_repair(config.full_check)?,
    };
    Ok(Opened {
        store,
        indexes,
        tree,
    })
}

fn open_backend(config: &ServeConfig) -> Result<Store, StoreError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StoreError::Backend(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let backend = SledBackend::open(&config.data_dir, config.cache_bytes)?;
    Ok(Store::new(Arc::new(backend)))
}

/// Opens the sled store in `dir` and checks its indexes against the log.
pub fn open_store(config: &ServeConfig) -> Result<(Store, StartupCheck), StoreError> {
    let store = open_backend(config)?;
    let check = store.check_and_repair(config.full_check)?;
    Ok((store, check))
}

/// Serves lotline on `listener` until `shutdown` resolves, then stops taking
/// requests, lets in-flight ones finish (up to the grace period), writes and
/// flushes what the writer holds, and returns.
///
/// Health reports NOT_SERVING until the store is open and its indexes checked,
/// and again from the moment shutdown starts.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let http = match config.http {
        None => None,
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            ServerError::Other(format!("--http {address}: cannot listen there: {e}"))
        })?),
    };
    let metrics = match config.metrics {
        None => None,
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            ServerError::Other(format!("--metrics {address}: cannot listen there: {e}"))
        })?),
    };
    run_on(
        config,
        Listeners {
            grpc: listener,
            http,
            metrics,
        },
        shutdown,
    )
    .await
}

/// Where lotline listens: gRPC, the HTTP door if it has one, and the operations listener
/// (metrics, liveness, readiness) if it has one.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
}

/// [`run`] on listeners bound already (tests bind `127.0.0.1:0` and read the ports).
pub async fn run_on(
    config: ServeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = listeners.grpc;
    let address = listener
        .local_addr()
        .map_err(|e| ServerError::Other(format!("listener has no address: {e}")))?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    let (status, status_rx) = watch::channel(ops::Status::Starting);
    let ops = listeners.metrics.as_ref().map(|_| ops::Ops::new(status_rx));
    let (ops_stop, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_task = match (listeners.metrics, &ops) {
        (Some(listener), Some(ops)) => {
            ops::announce(&listener);
            Some(tokio::spawn(ops::serve(listener, ops.clone(), async {
                let _ = ops_stopped.await;
            })))
        }
        _ => None,
    };

    let cell: ReadyCell = Arc::new(OnceLock::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let access = config.access()?;
    match &access.verifier {
        Some(v) => {
            info!(issuer_public_key = %v.public_key(), public_reads = access.public_reads, "access control on: every request needs a credential")
        }
        None => warn!(
            "no access control (serve without --auth): every caller may record and read everything"
        ),
    }
    let service = Service::with_access(cell.clone(), access)
        .with_max_walk(config.max_walk)
        .with_read_limits(config.read_limits)
        .with_webhook_allow(config.webhook_allow.clone());
    info!(
        read_workers = config.read_limits.workers,
        per_caller = config.read_limits.per_caller,
        "questions run on their own workers"
    );
    let http_service = service.clone();
    let (deliveries_stop, deliveries_stopped) = tokio::sync::oneshot::channel::<()>();
    let deliveries = tokio::spawn(lotline_http::deliver(service.clone(), async {
        let _ = deliveries_stopped.await;
    }));
    // Keeps the anomaly listing and org ledgers current (once a question first needs them).
    let (listing_stop, listing_stopped) = tokio::sync::oneshot::channel::<()>();
    let listing = tokio::spawn(service.clone().follow_listing(async {
        let _ = listing_stopped.await;
    }));
    let router = grpc_router(service, health_service)?;
    let stopped = async {
        let _ = stop_rx.await;
    };
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http_stop = Some(http_stop);
    let http_stopped = async {
        let _ = http_stopped.await;
    };
    let mut watching = None;
    let mut reloadable = None;
    let mut server = match &config.tls {
        Some(files) => {
            let tls = tls::Reloadable::new(files.clone()).map_err(ServerError::Other)?;
            watching = Some(tls.watch());
            let incoming = tls.incoming(listener);
            reloadable = Some(tls);
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
        }
        None => {
            // Small answers go out at once: without TCP_NODELAY, Nagle's algorithm and
            // the client's delayed ACK hold a short reply for about 40 ms.
            let incoming = TcpListenerStream::new(listener).map(|conn| {
                conn.inspect(|stream| {
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!(cause = %e, "cannot set TCP_NODELAY on a connection");
                    }
                })
            });
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
        }
    };
    info!(%address, tls = config.tls.is_some(), data_dir = %config.data_dir.display(), "lotline listening; opening the store");
    let http_task = match listeners.http {
        None => {
            // Unused, it would hold the services (and the writer) until the very end, and the
            // writer, which stops once its last handle is gone, would not stop within the grace.
            drop(http_service);
            None
        }
        Some(listener) => {
            let address = listener
                .local_addr()
                .map_err(|e| ServerError::Other(format!("--http: no address: {e}")))?;
            info!(%address, tls = reloadable.is_some(), "EPCIS REST binding listening");
            let router = lotline_http::router(http_service);
            let grace = config.grace;
            Some(match &reloadable {
                Some(tls) => {
                    let incoming = tls.incoming_http(listener).filter_map(|conn| {
                        let stream = conn.ok()?;
                        let (tcp, session) = stream.get_ref();
                        let peer = Peer {
                            address: tcp.peer_addr().ok(),
                            certificate: session
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| Arc::new(c.to_vec())),
                        };
                        Some(Connection { io: stream, peer })
                    });
                    tokio::spawn(lotline_http::serve(router, incoming, http_stopped, grace))
                }
                None => {
                    let incoming = TcpListenerStream::new(listener).filter_map(|conn| {
                        let stream = conn.ok()?;
                        if let Err(e) = stream.set_nodelay(true) {
                            warn!(cause = %e, "cannot set TCP_NODELAY on a connection");
                        }
                        let peer = Peer {
                            address: stream.peer_addr().ok(),
                            certificate: None,
                        };
                        Some(Connection { io: stream, peer })
                    });
                    tokio::spawn(lotline_http::serve(router, incoming, http_stopped, grace))
                }
            })
        }
    };

    let open_config = config.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let signer =
            keyfile::load_or_create(&open_config.signing_key_path(), &open_config.log_name)
                .map_err(|e| e.to_string())?;
        let opened = open_and_check(&open_config).map_err(|e| e.to_string())?;
        Ok::<_, String>((opened, signer))
    })
    .await
    .map_err(|e| ServerError::Other(format!("store open task failed: {e}")))?;
    // Kept until shutdown so the writer outlives the services that use it.
    let running = match opened {
        Err(reason) => {
            // Serve health (NOT_SERVING) and the reason on every call, rather than
            // vanishing: an operator sees why, and can rebuild or restore the store.
            error!(%reason, "the store could not be opened; serving nothing but health");
            status.send_replace(ops::Status::Failed(reason.clone()));
            let _ = cell.set(Err(reason));
            None
        }
        Ok((opened, signer)) => {
            let running = start(
                &config,
                opened,
                signer,
                &cell,
                Health {
                    grpc: health.clone(),
                    status: status.clone(),
                    ops: ops.clone(),
                },
            )
            .await?;
            info!(%address, "lotline serving");
            Some(running)
        }
    };

    let early_exit = tokio::select! {
        () = shutdown => None,
        result = &mut server => Some(result),
    };
    if let Some(task) = running.as_ref().map(|r| &r.health) {
        task.abort();
    }
    if let Some(task) = watching {
        task.abort();
    }
    set_health(&health, ServingStatus::NotServing).await;
    status.send_replace(ops::Status::Stopping);
    let served = match early_exit {
        Some(result) => result,
        None => {
            info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(());
            if let Some(stop) = http_stop.take() {
                let _ = stop.send(());
            }
            match tokio::time::timeout(config.grace, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    warn!(grace = ?config.grace, "in-flight requests did not finish in time; stopping them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    if let Some(stop) = http_stop.take() {
        let _ = stop.send(());
    }
    let _ = deliveries_stop.send(());
    let _ = deliveries.await;
    let _ = listing_stop.send(());
    let _ = listing.await;
    if let Some(task) = http_task {
        // Its requests had the same grace period, alongside gRPC's.
        if tokio::time::timeout(config.grace, task).await.is_err() {
            warn!("the HTTP door did not stop within the grace period");
        }
    }
    // The services (and their writer handles) are gone with the server task; the
    // last handle is ours. Dropping it lets the writer finish and flush.
    drop(cell);
    if let Some(running) = running {
        running.stop(config.grace).await;
    } else {
        info!("lotline stopped");
    }
    // Readiness says "stopping" until the very end.
    let _ = ops_stop.send(());
    if let Some(task) = ops_task {
        let _ = tokio::time::timeout(config.grace, task).await;
    }
    served_result(served)
}

/// Health, reflection and lotline's services, all answering through `service`.
fn grpc_router(
    service: Service,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<
    tonic::transport::server::Router<
        tower::layer::util::Stack<ops::RpcTimerLayer, tower::layer::util::Identity>,
    >,
    ServerError,
> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lotline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lotline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(Server::builder()
        .layer(ops::RpcTimerLayer::new())
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(EventRoutes::new(
            EventApi::new(service.clone()),
            MAX_REQUEST_BYTES,
        ))
        .add_service(ProvenanceServiceServer::new(ProvenanceApi::new(
            service.clone(),
        )))
        .add_service(AuditServiceServer::new(AuditApi::new(service.clone())))
        .add_service(MasterDataServiceServer::new(MasterDataApi::new(
            service.clone(),
        )))
        .add_service(AccessServiceServer::new(AccessApi::new(service.clone())))
        .add_service(LogServiceServer::new(LogApi::new(service))))
}

/// What runs once the store is open: the writer, the NATS consumer (NATS mode) and the task
/// that keeps health in step with them.
struct Running {
    writer_done: lotline_store::WriterDone,
    ingest: Option<Ingest>,
    health: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the consumer (after the batch in hand), then waits for the writer to flush.
    async fn stop(self, grace: Duration) {
        self.health.abort();
        // What the consumer did not ack is redelivered to the next start and answered from
        // the store.
        if let Some(ingest) = self.ingest {
            ingest.stop(grace).await;
        }
        // Connections the server could not close in time may still hold writer handles;
        // everything acknowledged is flushed already, so do not wait forever.
        if tokio::time::timeout(grace, self.writer_done.wait())
            .await
            .is_err()
        {
            warn!(
                "the writer did not stop within the grace period; exiting anyway (acknowledged events are flushed)"
            );
        } else {
            info!("lotline stopped; the store is flushed");
        }
    }
}

/// Why writes are refused, if they are, after logging what the start-up checks found.
fn log_checks(opened: &Opened) -> Option<String> {
    match &opened.indexes {
        StartupCheck::Consistent { events } => {
            info!(events, "store open; indexes match the log")
        }
        StartupCheck::Rebuilt { events, reason } => {
            warn!(events, %reason, "store open; indexes were rebuilt")
        }
        StartupCheck::NotChecked { .. } => {
            warn!("store open; indexes not checked against a log that fails its integrity check")
        }
    }
    match &opened.tree {
        TreeCheck::Consistent { size } => {
            info!(size, "Merkle tree matches the log");
            None
        }
        TreeCheck::Built { size } => {
            warn!(size, "built the Merkle tree from the log (--build-tree)");
            None
        }
        TreeCheck::Mismatch { reason } => {
            error!(%reason, "the Merkle tree does not match the log; refusing writes");
            Some(reason.clone())
        }
    }
}

/// Where what the node can do is reported: gRPC health, readiness, and the metrics scrape.
struct Health {
    grpc: tonic_health::server::HealthReporter,
    status: watch::Sender<ops::Status>,
    ops: Option<ops::Ops>,
}

/// Starts the writer and, in NATS mode, the consumer; makes the services ready; and keeps
/// health in step.
async fn start(
    config: &ServeConfig,
    opened: Opened,
    signer: lotline_merkle::Signer,
    cell: &ReadyCell,
    health: Health,
) -> Result<Running, ServerError> {
    let writes_refused = log_checks(&opened);
    let writes_refused_reason = writes_refused.clone();
    lotline_service::intake::set_max_event_bytes(config.max_event_bytes);
    let writer_config = WriterConfig {
        future_margin: config.future_margin,
        ..WriterConfig::default()
    };
    let (writer, writer_done) = Writer::spawn(opened.store.clone(), writer_config)?;
    let refused = writes_refused.is_some();
    // In NATS mode the consumer is the writer's only source of log entries, and gRPC writes go
    // through the stream. A store that refuses writes does not consume either.
    let mut ingest = None;
    let mut lag = None;
    let (recorder, consumer): (Arc<dyn Recorder>, _) = match &config.nats {
        Some(settings) if !refused => {
            let nats = nats_config(config, settings)?;
            info!(url = %lotline_ingest::redact(&nats.url), node = %nats.node_id, stream = %nats.stream, "NATS mode: consuming the stream");
            let started = Ingest::start(nats, &opened.store, writer.clone()).await?;
            let recorder = NatsRecorder::new(&started, opened.store.clone(), writer.clone());
            let state = started.state();
            lag = Some(started.lag_probe());
            ingest = Some(started);
            (Arc::new(recorder), Some(state))
        }
        _ => (Arc::new(writer.clone()), None),
    };
    info!(verifier_key = %signer.verifier_key(), "signing checkpoints");
    let failure = writer.failure();
    if let Some(ops) = &health.ops {
        ops.attach(ops::Sources {
            store: opened.store.clone(),
            writer: writer.clone(),
            data_dir: config.data_dir.clone(),
            stream: lag,
        });
    }
    let ready = Ready {
        store: opened.store,
        recorder,
        signer: Arc::new(signer),
        writes_refused,
        rules: Arc::clone(&config.rules),
        audit_state: Some(config.data_dir.join(lotline_service::queries::kept::FILE)),
    };
    if cell.set(Ok(ready)).is_err() {
        return Err(ServerError::Other("services were made ready twice".into()));
    }
    // Health turns SERVING only once the services are ready, so a client that waited for it is
    // never told the store is not open yet.
    let health = tokio::spawn(follow_health(
        health.grpc,
        health.status,
        failure,
        consumer,
        writes_refused_reason,
    ));
    Ok(Running {
        writer_done,
        ingest,
        health,
    })
}

fn served_result(
    served: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(ServerError::Other(format!("server task failed: {e}"))),
    }
}

/// The intake's settings for this node.
fn nats_config(config: &ServeConfig, settings: &NatsSettings) -> Result<NatsConfig, ServerError> {
    let node_id = match &settings.node_id {
        Some(id) => id.clone(),
        None => keyfile::load_or_create_node_id(&config.data_dir)
            .map_err(|e| ServerError::Other(format!("node id: {e}")))?,
    };
    let mut nats = NatsConfig::new(&settings.url, node_id);
    nats.replicas = settings.replicas;
    nats.duplicate_window = settings.duplicate_window;
    nats.client = settings.client.clone();
    nats.hub_domain = settings.hub_domain.clone();
    // With access control, every node decides each message by the roles of whoever sent it.
    nats.enforce_roles = config.auth.is_some();
    nats.check().map_err(ServerError::Other)?;
    Ok(nats)
}

/// Keeps health (gRPC health and readiness) in step with what can be done: everything
/// (SERVING), or reads and proofs only, while writes are refused, the writer has given up, or
/// the NATS consumer is not running.
async fn follow_health(
    health: tonic_health::server::HealthReporter,
    status: watch::Sender<ops::Status>,
    mut failure: watch::Receiver<Option<String>>,
    mut consumer: Option<watch::Receiver<ConsumerState>>,
    refused: Option<String>,
) {
    let mut last = None;
    // The consumer's state channel closes when its task ends: at shutdown, or when it
    // panicked. Either way this node no longer applies the stream.
    let mut consumer_gone = false;
    loop {
        let writer_failed = failure.borrow().clone();
        let consuming = match (&consumer, consumer_gone) {
            (_, true) => Err("the stream consumer stopped".to_string()),
            (None, false) => Ok(()),
            (Some(c), false) => match &*c.borrow() {
                ConsumerState::Running => Ok(()),
                ConsumerState::Starting => Err("connecting to the NATS stream".to_string()),
                ConsumerState::Down(why) => Err(format!("not consuming the NATS stream: {why}")),
                ConsumerState::Stopped => Err("the stream consumer stopped".to_string()),
            },
        };
        let why_not = match (&refused, &writer_failed, consuming) {
            (Some(why), _, _) => Some(format!("writes are refused: {why}")),
            (None, Some(why), _) => Some(format!("the writer gave up: {why}")),
            (None, None, Err(why)) => Some(why),
            (None, None, Ok(())) => None,
        };
        let serving = why_not.is_none();
        status.send_if_modified(|now| {
            let next = match &why_not {
                None => ops::Status::Serving,
                Some(why) => ops::Status::ReadsOnly(why.clone()),
            };
            let changed = *now != next;
            *now = next;
            changed
        });
        if last != Some(serving) {
            if serving {
                set_health(&health, ServingStatus::Serving).await;
            } else {
                if let Some(reason) = &writer_failed {
                    error!(%reason, "writes are refused from now on");
                }
                set_reads_only(&health).await;
            }
            last = Some(serving);
        }
        tokio::select! {
            changed = failure.changed() => if changed.is_err() { return },
            changed = async {
                match consumer.as_mut() {
                    Some(c) => c.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => if !changed {
                warn!("the stream consumer stopped (lotline is stopping, or the consumer failed: see above); this node no longer applies the stream");
                consumer = None;
                consumer_gone = true;
            },
        }
    }
}

/// Reads and proofs serve; writes (and the server as a whole) do not.
async fn set_reads_only(health: &tonic_health::server::HealthReporter) {
    set_health(health, ServingStatus::NotServing).await;
    for name in [
        <ProvenanceServiceServer<ProvenanceApi> as tonic::server::NamedService>::NAME,
        <AuditServiceServer<AuditApi> as tonic::server::NamedService>::NAME,
        <MasterDataServiceServer<MasterDataApi> as tonic::server::NamedService>::NAME,
        <LogServiceServer<LogApi> as tonic::server::NamedService>::NAME,
    ] {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
}

async fn set_health(health: &tonic_health::server::HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health
        .set_service_status(<EventRoutes as tonic::server::NamedService>::NAME, status)
        .await;
    health
        .set_service_status(
            <ProvenanceServiceServer<ProvenanceApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <AuditServiceServer<AuditApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <MasterDataServiceServer<MasterDataApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <LogServiceServer<LogApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
                }
            }
            Err(e) => {
                warn!(cause = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
