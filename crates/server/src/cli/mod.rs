//! The `lotline` command line: `serve`, `demo`, and client commands that talk to
//! a server over gRPC. Every client command prints a readable table, or one JSON
//! document with `--json`.
//!
//! Exit status: 0 on success; 1 when the server refused something (a rejected
//! event in `post`, an unknown lot); 2 on a usage or connection error; 64 when
//! `serve` is given a bad configuration.

/// `print!` to stdout that ends the process quietly when the reader has gone
/// (`lotline events | head`) instead of panicking on a broken pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*), false) };
}

/// `println!` counterpart of [`out!`].
macro_rules! outln {
    () => { $crate::cli::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*), true) };
}

/// Prints a value as pretty JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Refused(format!("cannot print JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// Prints an answer as JSON with `--json`, else as text.
pub(crate) fn show<T>(
    args: &ClientArgs,
    answer: &T,
    json: impl Fn(&T) -> serde_json::Value,
    text: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    if args.json {
        print_json(&json(answer))
    } else {
        out!("{}", text(answer));
        Ok(())
    }
}

mod access;
mod audit;
mod backup;
mod bundle;
mod client;
mod demo;
mod edge;
mod epcis;
mod flood;
mod healthcheck;
mod log;
mod masterdata;
mod nats;
mod render;
mod scale;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lotline_proto::v1;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::{ServeConfig, run, shutdown_signal};

#[derive(Debug, Parser)]
#[command(
    name = "lotline",
    version,
    about = "Supply-chain traceability: lot events in, provenance answers out."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API on an append-only store: embedded, or consuming the
    /// NATS JetStream stream with --nats-url.
    Serve(Box<ServeArgs>),
    /// Start a server on a temporary store, load a sample of the cocoa, coffee and
    /// textile chains, and print traces and recalls.
    Demo(demo::DemoArgs),
    /// Back a node's log up while it serves: every entry up to a signed checkpoint, re-hashed,
    /// in one compressed file (and, in NATS mode, where the stream resumes).
    Backup(backup::BackupArgs),
    /// Make a new node's data directory from a backup: entries re-hashed against the signed
    /// root, tree and indexes built; `serve` then resumes the stream after the backup.
    Restore(backup::RestoreArgs),
    /// Join co-op edge nodes to this hub: `edge link` makes the hub's stream source one
    /// co-op's events from its leaf node's JetStream domain (deploy/edge).
    #[command(subcommand)]
    Edge(edge::EdgeCommand),
    /// Ask a node's operations listener (serve --metrics) whether it is ready: exit 0 if so,
    /// 1 with its reason if not, 2 if nothing answers (a container's HEALTHCHECK).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Publish events from a JSON Lines file (`-` for stdin) to the NATS stream,
    /// with Nats-Msg-Id = `<org>.<event id>` and many acks in flight; print the counts.
    Publish(nats::PublishArgs),
    /// Measure lotline: `bench ingest` compares the durable NATS intake with raw
    /// JetStream publish in one run.
    Bench(nats::BenchArgs),
    /// Record events from a JSON Lines file (`-` for stdin), one event per line in
    /// the proto3 JSON mapping of lotline.v1.Event.
    Post(PostArgs),
    /// Import an EPCIS 2.0 JSON-LD document (`-` for stdin): master data and events,
    /// over gRPC or, with --nats-url, through the stream (docs/epcis.md).
    Import(epcis::ImportArgs),
    /// Export the log, a period of it, or one lot's history as an EPCIS 2.0 JSON-LD
    /// document (docs/epcis.md).
    Export(epcis::ExportArgs),
    /// Show a lot: product, quantities, holder, custody model, origins, events, anomalies.
    Lot(LotArgs),
    /// Trace a lot back to its origin lots, with quantities and shares.
    Trace(LotArgs),
    /// Recall: every lot downstream of a lot, with product, holder and quantity.
    Recall(LotArgs),
    /// What a logistic unit (an SSCC pallet, a case) held and when, and which containers
    /// carried a lot or unit.
    Container(LotArgs),
    /// List stored events, filtered, in log order.
    Events(EventsArgs),
    /// List registered organisations (the standing registration of each), paged and filtered.
    Orgs(masterdata::MasterArgs),
    /// List registered sites, whichever org registered them.
    Sites(masterdata::MasterArgs),
    /// List registered farm plots.
    Plots(masterdata::MasterArgs),
    /// List registered product classes: product, chain and other attributes.
    Classes(masterdata::MasterArgs),
    /// List certificates: holder, standard, validity, products, issuer.
    Certificates(masterdata::MasterArgs),
    /// List rejected input kept in the quarantine.
    Rejected(RejectedArgs),
    /// List lots that events use but no event creates (unknown origin).
    Unknown(ClientArgs),
    /// Mass-balance ledgers of an org (or some of its sites) per product over a
    /// period: certified inputs, outputs converted back, running balance, violations.
    Balance(audit::BalanceArgs),
    /// List business anomalies (facts for auditors, not rejections).
    Anomalies(audit::AnomaliesArgs),
    /// Export an audit as one file: anomalies, ledgers, the lots concerned with their chain
    /// reports, a signed checkpoint and the inclusion proof of every event cited
    /// (`lotline verify --bundle FILE` checks it offline).
    Bundle(bundle::BundleArgs),
    /// Acknowledge or dispute an anomaly, with a note (an auditor's review, recorded in the log).
    Review(audit::ReviewArgs),
    /// Chain-of-custody report of a lot: each stage, org, date, certificate status,
    /// and the stages missing.
    Audit(audit::AuditArgs),
    /// EUDR export of a lot: every origin plot as GeoJSON, with the verdict and reasons.
    Eudr(audit::EudrArgs),
    /// Print the reference rules (conversion bands, Fairtrade prices): the defaults,
    /// or a rules file merged over them.
    Rules(audit::RulesArgs),
    /// Print the log's latest signed checkpoint (tree head) and its verifier key.
    Checkpoint(log::CheckpointArgs),
    /// Prove that an event is in the log: its leaf, audit path and signed checkpoint.
    Proof(log::ProofArgs),
    /// Prove that the log of OLD_SIZE entries is a prefix of the log of NEW_SIZE entries.
    Consistency(log::ConsistencyArgs),
    /// Re-hash the whole log (a server's, or a stopped node's data dir) and check it
    /// against its signed root and, optionally, a checkpoint saved earlier.
    Verify(log::VerifyArgs),
    /// Access tokens for a server with `serve --auth`: issue (offline, with the issuer's key),
    /// revoke (an admin records the revocation in the log), public-key.
    Token(access::TokenArgs),
    /// Who the server takes you to be: org, roles, token id and scope.
    Whoami(access::WhoamiArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Directory of the sled store (created if missing).
    #[arg(long, env = "LOTLINE_DATA_DIR", default_value = "./lotline-data")]
    data_dir: PathBuf,
    /// Address to listen on (HOST:PORT; port 0 picks a free one).
    #[arg(long, env = "LOTLINE_LISTEN", default_value = "127.0.0.1:50051")]
    listen: String,
    /// Also serve the GS1 EPCIS 2.0 REST binding over HTTP at this address (HOST:PORT; port 0
    /// picks a free one). With --tls-cert it speaks TLS with the same certificates, and takes
    /// the same bearer tokens and client certificates as gRPC.
    #[arg(long, env = "LOTLINE_HTTP")]
    http: Option<String>,
    /// Let EPCIS webhook subscriptions deliver to URLs that start with this prefix (e.g.
    /// https://erp.example.com/epcis/); repeat for several, or separate them with commas.
    /// Without it the server delivers to no webhook.
    #[arg(long, env = "LOTLINE_WEBHOOK_ALLOW", value_delimiter = ',')]
    webhook_allow: Vec<String>,
    /// Serve Prometheus metrics (/metrics), liveness (/healthz) and readiness (/readyz: reads
    /// and writes; /readyz/reads: reads) over plain HTTP at this address (HOST:PORT, or a port
    /// alone for 127.0.0.1:PORT). No credential is asked and no event is shown.
    #[arg(long, env = "LOTLINE_METRICS")]
    metrics: Option<String>,
    /// How log lines are written to stderr: text (for people) or json (one JSON object per
    /// line, for a log collector).
    #[arg(long, env = "LOTLINE_LOG_OUTPUT", value_enum, default_value_t = LogOutput::Text)]
    log_output: LogOutput,
    /// sled page cache, in MiB. sled holds two to three times this in memory once the log
    /// outgrows it: at the default a server stays under 512 MiB at a million events.
    #[arg(long, env = "LOTLINE_CACHE_MB", default_value_t = crate::DEFAULT_CACHE_MB)]
    cache_mb: u64,
    /// Check every log entry against the indexes at start-up, not just a sample.
    #[arg(long, env = "LOTLINE_FULL_CHECK")]
    full_check: bool,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "LOTLINE_GRACE_SECS", default_value_t = 10)]
    grace_secs: u64,
    /// The log's name: checkpoint origin and signing key name.
    #[arg(long, env = "LOTLINE_LOG_NAME", default_value = crate::DEFAULT_LOG_NAME)]
    log_name: String,
    /// Ed25519 signing key file (64 hex digits); default <data-dir>/log-signing.key,
    /// created on first start.
    #[arg(long, env = "LOTLINE_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// Build the Merkle tree from the log when it is missing or does not match
    /// (only for a log you trust as it is; checkpoints signed before may then fail).
    #[arg(long)]
    build_tree: bool,
    /// NATS mode: consume the JetStream stream LOTLINE_EVENTS at this server
    /// (nats://HOST:PORT, comma-separated for a cluster) and write through it.
    #[arg(long, env = "LOTLINE_NATS_URL")]
    nats_url: Option<String>,
    /// Reference rules (conversion bands per process and site, Fairtrade prices) in
    /// TOML, merged over the defaults; `lotline rules` prints them.
    #[arg(long, env = "LOTLINE_RULES")]
    rules: Option<PathBuf>,
    /// This node's name on NATS (its durable consumer is lotline-<ID>); default:
    /// kept in <data-dir>/node-id, made up on first start.
    #[arg(long, env = "LOTLINE_NODE_ID")]
    node_id: Option<String>,
    /// Stream replicas if lotline creates the stream (3 on a JetStream cluster).
    #[arg(long, env = "LOTLINE_NATS_REPLICAS", default_value_t = 1)]
    nats_replicas: usize,
    /// Seconds JetStream drops a re-published event id by itself (later re-sends
    /// are answered as duplicates by lotline).
    #[arg(
        long,
        env = "LOTLINE_NATS_DUPLICATE_WINDOW_SECS",
        default_value_t = 600
    )]
    nats_duplicate_window_secs: u64,
    /// A co-op edge node (deploy/edge): the JetStream domain of the hub this node's NATS leaf
    /// server links to. The local stream then sources the hub's master data (registrations,
    /// plots, certificates, memberships, revocations), so events are judged here as there.
    #[arg(long, env = "LOTLINE_NATS_HUB_DOMAIN")]
    nats_hub_domain: Option<String>,
    #[command(flatten)]
    nats_client: nats::NatsClientArgs,
    /// TLS: the server's certificate chain (PEM). Reloaded on SIGHUP or when the file changes.
    #[arg(long, env = "LOTLINE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the server's private key (PEM).
    #[arg(long, env = "LOTLINE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: accept client certificates issued by this CA (PEM); a certificate's subject
    /// CN is the caller's org and each OU a role (member if none). Clients without one may
    /// still send a token.
    #[arg(long, env = "LOTLINE_CLIENT_CA", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Send traces to this OpenTelemetry collector over OTLP/HTTP (its base URL, e.g.
    /// http://127.0.0.1:4318; /v1/traces is added): a span per gRPC call, continuing a caller's
    /// W3C traceparent. Only in a lotline built with the `otel` feature.
    #[arg(long, env = "LOTLINE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Serve without TLS on an address other than loopback (a TLS-terminating proxy in front).
    #[arg(long, env = "LOTLINE_INSECURE_PLAINTEXT")]
    insecure_plaintext: bool,
    /// Access control: every request needs a credential (a bearer token from
    /// `lotline token issue`, or a client certificate); roles decide what it may do.
    #[arg(long, env = "LOTLINE_AUTH")]
    auth: bool,
    /// The token issuer's key file (hex seed) whose tokens are accepted; default
    /// <data-dir>/token-issuer.key, created on first start.
    #[arg(long, env = "LOTLINE_ISSUER_KEY", conflicts_with = "issuer_public_key")]
    issuer_key: Option<PathBuf>,
    /// The token issuer's public key (64 hex digits, printed by `lotline token public-key`),
    /// for nodes that do not hold the issuer's private key.
    #[arg(long, env = "LOTLINE_ISSUER_PUBLIC_KEY")]
    issuer_public_key: Option<String>,
    /// With --auth: callers without a credential get the public view of lots, traces,
    /// recalls, EUDR verdicts, checkpoints and proofs.
    #[arg(long, env = "LOTLINE_PUBLIC_READS")]
    public_reads: bool,
    /// How the public view shows plot geometry: exact (without its properties), rounded (to
    /// 0.01 degrees, about 1 km) or region (none: the plot's country only).
    #[arg(long, env = "LOTLINE_PUBLIC_GEOMETRY", default_value = "exact")]
    public_geometry: String,
    /// How far after its record time an event may be dated (90s, 6h, 1d): one dated later is
    /// rejected, and a NATS stream timestamp ahead of this node's clock by more is not stamped.
    #[arg(long, env = "LOTLINE_FUTURE_MARGIN", default_value = "1d")]
    future_margin: String,
    /// The largest event taken, in bytes as received (protobuf or JSON), checked before it is
    /// parsed. Every node reading one NATS stream must give the same.
    #[arg(long, env = "LOTLINE_MAX_EVENT_BYTES", default_value_t = lotline_service::intake::DEFAULT_MAX_EVENT_BYTES)]
    max_event_bytes: usize,
    /// The most lots one trace or recall walks: an answer that reaches it (or the caller's
    /// deadline) says it is partial and where it stopped.
    #[arg(long, env = "LOTLINE_MAX_WALK", default_value_t = lotline_service::DEFAULT_MAX_WALK)]
    max_walk: usize,
    /// How many questions are computed at once, by everyone (default: one fewer than the
    /// machine's cores, at least one, so a core stays for ingest). More wait for a worker
    /// until their deadline.
    #[arg(long, env = "LOTLINE_READ_WORKERS")]
    read_workers: Option<usize>,
    /// How many questions one caller (its org; without a credential, its connection) may have
    /// running or waiting at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "LOTLINE_MAX_READS_PER_CALLER", default_value_t = lotline_service::ReadLimits::default().per_caller)]
    max_reads_per_caller: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The lotline server to talk to (https:// for TLS).
    #[arg(long, env = "LOTLINE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub(crate) server: String,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) credentials: CredentialArgs,
}

/// How a client proves who it is, and which server certificates it trusts.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CredentialArgs {
    /// A CA certificate (PEM) to trust for an https:// server, besides the system's roots.
    #[arg(long, env = "LOTLINE_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// The bearer token to send (from `lotline token issue`).
    #[arg(long, env = "LOTLINE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the bearer token (used instead of --token / LOTLINE_TOKEN).
    #[arg(long, env = "LOTLINE_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Mutual TLS: this client's certificate (PEM; subject CN = the org, OU = a role).
    #[arg(long, env = "LOTLINE_CLIENT_CERT", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// Mutual TLS: this client's private key (PEM).
    #[arg(long, env = "LOTLINE_CLIENT_KEY", requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
}

impl ClientArgs {
    /// A server on this machine, without credentials (the demo's own).
    pub(crate) fn local(server: &str) -> Self {
        ClientArgs {
            server: server.to_string(),
            json: false,
            credentials: CredentialArgs::default(),
        }
    }
}

#[derive(Debug, Args)]
struct PostArgs {
    /// JSON Lines file of events, or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct LotArgs {
    /// The lot (or container) identifier: as recorded, or a GS1 id as an EPC URN or a Digital
    /// Link.
    lot: String,
    /// The public view: leave out farmers' names and other personal fields.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct EventsArgs {
    #[arg(long)]
    org: Option<String>,
    /// cocoa, coffee or textile.
    #[arg(long)]
    chain: Option<String>,
    /// harvest, transform, ship, receive, certify, pay, correct, observe, register_org,
    /// register_site, register_plot, register_class.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    lot: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Events before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    client: ClientArgs,
}

/// How a listing is paged, and which view it answers in.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// Entries per page.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
    /// Continue after this cursor (printed by a previous page).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Follow cursors until every matching entry is printed.
    #[arg(long)]
    pub(crate) all: bool,
    /// The public view: leave out farmers' names and GLNs, plot geometry beyond its shape, and
    /// other personal fields.
    #[arg(long)]
    pub(crate) public: bool,
}

#[derive(Debug, Args)]
struct RejectedArgs {
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Writes to stdout; a closed pipe ends the process with success, as `head`
/// expects of the commands it reads.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("lotline: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// A failure of a command, with the exit status it maps to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or configuration (exit 2, or 64 for `serve`).
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached (exit 2).
    #[error("{0}")]
    Connect(String),
    /// The server refused or failed the request (exit 1).
    #[error("{0}")]
    Refused(String),
    /// Some input was rejected; every outcome was already printed (exit 1).
    #[error("{0}")]
    SomeRejected(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Connect(_) => 2,
            CliError::Refused(_) | CliError::SomeRejected(_) => 1,
        }
    }
}

/// How `serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogOutput {
    Text,
    Json,
}

/// Sets up logging to stderr; `RUST_LOG` overrides the default level.
fn init_logging(default: &str) {
    init_logging_as(default, LogOutput::Text);
}

fn init_logging_as(default: &str, output: LogOutput) {
    init_subscriber(default, output, None);
}

/// The log on stderr (text or JSON lines), and `also` (the OpenTelemetry exporter's layer)
/// beside it, under one filter (`RUST_LOG`, else `default`).
fn init_subscriber(
    default: &str,
    output: LogOutput,
    also: Option<Box<dyn Layer<Registry> + Send + Sync>>,
) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = match output {
        LogOutput::Text => log.with_target(false).boxed(),
        // Fields at the top level, beside level, time and message; the target names the
        // module, which a collector can filter on.
        LogOutput::Json => log.json().flatten_event(true).boxed(),
    };
    let layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        std::iter::once(log).chain(also).collect();
    let _ = tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init();
}

/// Runs the command line; `main` only calls this.
pub fn main() -> ExitCode {
    no_huge_pages();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lotline: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(cli))
}

/// Turns transparent huge pages off for this process. The allocator frees memory back to the
/// kernel a page at a time and takes it again as a question or an import grows its caches;
/// where the kernel backs that memory with 2 MiB pages (THP "always", or "madvise" with an
/// allocator that asks for them), each fresh fault zeroes a whole 2 MiB page. Measured on a
/// server's first trace-backs of deep lots, that zeroing was 43 % of its CPU; without huge
/// pages the same questions took a third less CPU, and an import's peak memory fell by a third
/// (README, "Huge pages"). mimalloc is also built not to ask for them (its `no_thp` feature),
/// which covers the tests and benchmarks that embed the server.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        // Only an old kernel lacks it; the process runs as before.
        eprintln!("lotline: cannot turn transparent huge pages off: {e}");
    }
}

/// Help and version exit 0; a bad `serve` configuration exits 64 with one line;
/// other usage errors exit 2 with clap's explanation.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let serving = std::env::args().nth(1).is_some_and(|a| a == "serve");
    if serving {
        let text = e.to_string();
        let line = text
            .lines()
            .next()
            .unwrap_or("invalid configuration")
            .trim_start_matches("error: ");
        eprintln!("lotline: {line}");
        return ExitCode::from(64);
    }
    let _ = e.print();
    ExitCode::from(2)
}

async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => return serve(*args).await,
        Command::Demo(args) => {
            init_logging("warn");
            demo::run_demo(args).await
        }
        command => {
            init_logging("warn");
            client_command(command).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::SomeRejected(summary)) => {
            eprintln!("{summary}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("lotline: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn client_command(command: Command) -> Result<(), CliError> {
    match command {
        Command::Post(a) => client::post(&a.client, &a.file).await,
        Command::Publish(a) => nats::publish(a).await,
        Command::Healthcheck(a) => healthcheck::run(a).await,
        Command::Edge(a) => edge::run(a).await,
        Command::Backup(a) => backup::backup(a).await,
        Command::Restore(a) => backup::restore(a).await,
        Command::Bench(a) => nats::bench(a).await,
        Command::Import(a) => epcis::import(a).await,
        Command::Export(a) => epcis::export(a).await,
        Command::Lot(a) => client::lot(&a.client, &a.lot, a.public).await,
        Command::Trace(a) => client::trace(&a.client, &a.lot, a.public).await,
        Command::Recall(a) => client::recall(&a.client, &a.lot, a.public).await,
        Command::Container(a) => client::container(&a.client, &a.lot, a.public).await,
        Command::Balance(a) => audit::balance(a).await,
        Command::Anomalies(a) => audit::anomalies(a).await,
        Command::Review(a) => audit::review(a).await,
        Command::Bundle(a) => bundle::bundle(a).await,
        Command::Audit(a) => audit::audit(a).await,
        Command::Eudr(a) => audit::eudr(a).await,
        Command::Rules(a) => audit::rules(a),
        Command::Events(a) => {
            let request = lotline_proto::v1::ListEventsRequest {
                org: a.org.unwrap_or_default(),
                chain: a.chain.unwrap_or_default(),
                kind: a.kind.unwrap_or_default(),
                lot: a.lot.unwrap_or_default(),
                from: a.from.unwrap_or_default(),
                to: a.to.unwrap_or_default(),
                cursor: a.page.cursor.unwrap_or_default(),
                limit: a.page.limit,
                public_view: a.page.public,
                event_id: String::new(),
            };
            client::events(&a.client, request, a.page.all).await
        }
        Command::Rejected(a) => {
            client::rejected(&a.client, a.cursor.unwrap_or_default(), a.limit).await
        }
        Command::Unknown(a) => client::unknown(&a).await,
        Command::Orgs(a) => masterdata::list(v1::MasterDataKind::Orgs, a).await,
        Command::Sites(a) => masterdata::list(v1::MasterDataKind::Sites, a).await,
        Command::Plots(a) => masterdata::list(v1::MasterDataKind::Plots, a).await,
        Command::Classes(a) => masterdata::list(v1::MasterDataKind::Classes, a).await,
        Command::Certificates(a) => masterdata::list(v1::MasterDataKind::Certificates, a).await,
        Command::Checkpoint(a) => log::checkpoint(a).await,
        Command::Proof(a) => log::proof(a).await,
        Command::Consistency(a) => log::consistency(a).await,
        Command::Verify(a) => log::verify(a).await,
        Command::Token(a) => access::token(a).await,
        Command::Whoami(a) => access::whoami(a).await,
        Command::Serve(_) | Command::Demo(_) => unreachable!("handled by dispatch"),
    }
}

/// Validates the serve configuration: exit 64 with one line if it is bad.
fn serve_config(args: &ServeArgs) -> Result<(ServeConfig, SocketAddr), String> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        format!(
            "--listen: {:?} is not a socket address (HOST:PORT, e.g. 127.0.0.1:50051)",
            args.listen
        )
    })?;
    if args.cache_mb == 0 {
        return Err("--cache-mb: must be at least 1".into());
    }
    if args.data_dir.exists() && !args.data_dir.is_dir() {
        return Err(format!(
            "--data-dir: {} exists and is not a directory",
            args.data_dir.display()
        ));
    }
    let mut config = ServeConfig::new(&args.data_dir);
    config.cache_bytes = args.cache_mb.checked_mul(1 << 20).ok_or_else(|| {
        format!(
            "--cache-mb: {} MiB is more than this machine can address",
            args.cache_mb
        )
    })?;
    config.full_check = args.full_check;
    config.grace = Duration::from_secs(args.grace_secs);
    if let Some(http) = &args.http {
        config.http = Some(http.parse().map_err(|_| {
            format!("--http: {http:?} is not a socket address (HOST:PORT, e.g. 127.0.0.1:8080)")
        })?);
    }
    if let Some(metrics) = &args.metrics {
        config.metrics = Some(metrics_address(metrics)?);
    }
    for prefix in &args.webhook_allow {
        let lower = prefix.to_ascii_lowercase();
        let host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || host.starts_with('/') {
            return Err(format!(
                "--webhook-allow: {prefix:?} is not an http:// or https:// URL prefix with a host (e.g. https://erp.example.com/epcis/)"
            ));
        }
    }
    config.webhook_allow = args.webhook_allow.clone();
    if args.log_name.is_empty()
        || args.log_name.contains(char::is_whitespace)
        || args.log_name.contains('+')
    {
        return Err(format!(
            "--log-name: {:?} must be non-empty, without spaces or '+'",
            args.log_name
        ));
    }
    config.log_name = args.log_name.clone();
    if let Some(key) = &args.signing_key
        && !key.is_file()
    {
        return Err(format!(
            "--signing-key: {} is not a readable file",
            key.display()
        ));
    }
    config.signing_key = args.signing_key.clone();
    config.build_tree = args.build_tree;
    if let Some(path) = &args.rules {
        let rules = audit::load_rules(path).map_err(|e| e.to_string())?;
        config.rules = std::sync::Arc::new(rules);
    }
    if let Some(url) = &args.nats_url {
        if url.trim().is_empty() {
            return Err("--nats-url: is empty (leave it out for embedded mode)".into());
        }
        lotline_ingest::Servers::parse(url).map_err(|e| format!("--nats-url: {e}"))?;
        let mut nats = crate::NatsSettings::new(url.trim());
        if let Some(id) = &args.node_id
            && !lotline_ingest::subject::is_token(id)
        {
            return Err(format!(
                "--node-id: {id:?} must be letters, digits, '-' or '_' (it names a NATS consumer)"
            ));
        }
        nats.node_id = args.node_id.clone();
        if !(1..=5).contains(&args.nats_replicas) {
            return Err(format!(
                "--nats-replicas: {} (JetStream allows 1 to 5)",
                args.nats_replicas
            ));
        }
        nats.replicas = args.nats_replicas;
        if args.nats_duplicate_window_secs == 0 {
            return Err("--nats-duplicate-window-secs: must be at least 1".into());
        }
        nats.duplicate_window = Duration::from_secs(args.nats_duplicate_window_secs);
        nats.client = args.nats_client.options();
        if let Some(hub) = &args.nats_hub_domain {
            lotline_ingest::edge::check_domain(hub)
                .map_err(|e| format!("--nats-hub-domain: {e}"))?;
        }
        nats.hub_domain = args.nats_hub_domain.clone();
        config.nats = Some(nats);
    } else if args.node_id.is_some() {
        return Err("--node-id: only means something with --nats-url".into());
    } else if args.nats_hub_domain.is_some() {
        return Err("--nats-hub-domain: only means something with --nats-url".into());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let files = crate::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.client_ca.clone(),
        };
        // Refuse bad files now, not at the first handshake.
        files.load()?;
        config.tls = Some(files);
    } else if !listen.ip().is_loopback() && !args.insecure_plaintext {
        return Err(format!(
            "--listen {listen}: serving without TLS beyond loopback sends tokens and events in clear; give --tls-cert and --tls-key (or --insecure-plaintext behind a TLS-terminating proxy)"
        ));
    }
    if args.auth {
        config.auth = Some(crate::AuthSettings {
            issuer_key: args.issuer_key.clone(),
            issuer_public_key: args.issuer_public_key.clone(),
        });
    } else if args.public_reads || args.issuer_key.is_some() || args.issuer_public_key.is_some() {
        return Err(
            "--public-reads, --issuer-key and --issuer-public-key only mean something with --auth"
                .into(),
        );
    }
    config.public_reads = args.public_reads;
    config.max_event_bytes = args.max_event_bytes;
    config.max_walk = args.max_walk;
    if args.read_workers == Some(0) || args.max_reads_per_caller == 0 {
        return Err("--read-workers and --max-reads-per-caller must be at least 1".into());
    }
    config.read_limits = lotline_service::ReadLimits {
        workers: args
            .read_workers
            .unwrap_or(lotline_service::ReadLimits::default().workers),
        per_caller: args.max_reads_per_caller,
    };
    config.future_margin = lotline_service::tokens::parse_lifetime(&args.future_margin)
        .map(chrono::Duration::seconds)
        .map_err(|e| format!("--future-margin: {e}"))?;
    config.public_geometry = lotline_service::PublicGeometry::parse(&args.public_geometry)
        .ok_or_else(|| {
            format!(
                "--public-geometry: {:?} is not exact, rounded or region",
                args.public_geometry
            )
        })?;
    Ok((config, listen))
}

/// `--metrics`: HOST:PORT, or a port alone on loopback.
fn metrics_address(given: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = given.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    given.parse().map_err(|_| {
        format!("--metrics: {given:?} is not a socket address (HOST:PORT, e.g. 127.0.0.1:9464, or a port)")
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let telemetry = match args.otlp_endpoint.as_deref() {
        None => {
            init_logging_as("info", args.log_output);
            None
        }
        Some(endpoint) => match crate::telemetry::Telemetry::start(endpoint) {
            Ok((telemetry, layer)) => {
                init_subscriber("info", args.log_output, Some(layer));
                Some(telemetry)
            }
            Err(e) => {
                eprintln!("lotline: {e}");
                return ExitCode::from(64);
            }
        },
    };
    let code = serve_configured(&args).await;
    if let Some(telemetry) = telemetry {
        // Batched spans are sent on a thread of the exporter's own; shutting down waits for it.
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    }
    code
}

async fn serve_configured(args: &ServeArgs) -> ExitCode {
    let (config, listen) = match serve_config(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("lotline: {e}");
            return ExitCode::from(64);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lotline: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    match run(config, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lotline: {e}");
            ExitCode::from(1)
        }
    }
}
