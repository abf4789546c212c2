//! `lotline bench flood`: how much of its ingest rate a server keeps while clients flood it with
//! expensive questions. One run, one data dir: the rate with nobody asking, then the rate while
//! the flood runs, on the server as configured (its read workers and per-caller limit), and
//! the same flood on a server whose questions may take every core (as before the read pool).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use lotline_proto::v1;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_service::ReadLimits;
use tonic::Code;

use super::access::BenchServer;
use super::client::{Conn, connect, status_error};
use super::nats::realistic_events;
use super::{CliError, ClientArgs};

#[derive(Debug, Args)]
pub(crate) struct FloodBenchArgs {
    /// Events in the log before anything is measured (what the questions read).
    #[arg(long, default_value_t = 20_000)]
    background: usize,
    /// Events recorded in each measurement.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events per RecordBatch request of the ingesting client.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Flooding connections (each a caller of its own).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Questions each flooding connection keeps in flight.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Each question's deadline, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    timeout_ms: u64,
    /// The measured server's read workers (default: as `serve`).
    #[arg(long)]
    read_workers: Option<usize>,
    /// The measured server's questions per caller (default: as `serve`).
    #[arg(long)]
    max_reads_per_caller: Option<usize>,
}

/// What the flood got.
#[derive(Default)]
struct Answered {
    ok: AtomicU64,
    busy: AtomicU64,
    deadline: AtomicU64,
    other: AtomicU64,
}

pub(crate) async fn bench_flood(args: FloodBenchArgs) -> Result<(), CliError> {
    if args.events == 0 || args.batch == 0 || args.connections == 0 || args.in_flight == 0 {
        return Err(CliError::Usage(
            "--events, --batch, --connections and --in-flight must be at least 1".into(),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("lotline-bench-flood-")
        .tempdir()
        .map_err(|e| CliError::Usage(format!("cannot create a temporary data dir: {e}")))?;
    let mut limited = crate::ServeConfig::new(dir.path());
    let defaults = ReadLimits::default();
    limited.read_limits = ReadLimits {
        workers: args.read_workers.unwrap_or(defaults.workers),
        per_caller: args.max_reads_per_caller.unwrap_or(defaults.per_caller),
    };
    let mut unlimited = limited.clone();
    unlimited.read_limits = ReadLimits {
        workers: 512,
        per_caller: 100_000,
    };

    let server = BenchServer::start(limited.clone()).await?;
    let background = realistic_events(args.background.max(1), "bg");
    let lots: Arc<Vec<String>> = Arc::new(
        background
            .iter()
            .filter_map(|e| match &e.kind {
                Some(v1::event::Kind::Transform(t)) => t.outputs.first().map(|o| o.lot.clone()),
                _ => None,
            })
            .collect(),
    );
    record(&server.url, background, 1_000).await?;
    server.stop().await?;
    outln!(
        "{} events in the log; each measurement records {} more in batches of {}; the flood: {} connections × {} questions in flight (anomaly listings, trace-backs, event pages), {} ms deadlines",
        args.background.max(1),
        args.events,
        args.batch,
        args.connections,
        args.in_flight,
        args.timeout_ms
    );

    let mut phase = 0usize;
    let mut measure = |config: crate::ServeConfig, flood: bool| {
        phase += 1;
        let events = realistic_events(args.events, &format!("p{phase}"));
        let lots = Arc::clone(&lots);
        let args = &args;
        async move {
            let server = BenchServer::start(config).await?;
            let stop = Arc::new(AtomicBool::new(false));
            let answered = Arc::new(Answered::default());
            let mut flooders = Vec::new();
            if flood {
                for c in 0..args.connections {
                    let channel = connect(&ClientArgs::local(&server.url)).await?;
                    for q in 0..args.in_flight {
                        flooders.push(tokio::spawn(ask(
                            channel.clone(),
                            Arc::clone(&lots),
                            c * args.in_flight + q,
                            Duration::from_millis(args.timeout_ms),
                            Arc::clone(&stop),
                            Arc::clone(&answered),
                        )));
                    }
                }
                // The clock starts once the flood has reached the server (a first answer).
                let deadline = Instant::now() + Duration::from_secs(30);
                while answered.total() == 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let started = Instant::now();
            record(&server.url, events, args.batch).await?;
            let secs = started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            for task in flooders {
                let _ = task.await;
            }
            server.stop().await?;
            Ok::<_, CliError>((args.events as f64 / secs, secs, answered))
        }
    };

    let (idle, _, _) = measure(limited.clone(), false).await?;
    outln!("ingest, nobody asking                        {idle:>9.0} events/s");
    let (flooded, secs, answered) = measure(limited.clone(), true).await?;
    outln!(
        "ingest, flooded ({} read workers, {} per caller) {flooded:>9.0} events/s   ratio {:.2} of idle",
        limited.read_limits.workers,
        limited.read_limits.per_caller,
        flooded / idle
    );
    report(&answered, secs);
    let (open, secs, answered) = measure(unlimited, true).await?;
    outln!(
        "ingest, flooded (questions on every core)    {open:>9.0} events/s   ratio {:.2} of idle",
        open / idle
    );
    report(&answered, secs);
    Ok(())
}

impl Answered {
    fn total(&self) -> u64 {
        [&self.ok, &self.busy, &self.deadline, &self.other]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// What the flood got, per second of the measurement.
fn report(answered: &Answered, secs: f64) {
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    outln!(
        "  questions: {:.0}/s answered, {:.0}/s refused (RESOURCE_EXHAUSTED), {:.0}/s past their deadline, {} other errors",
        n(&answered.ok) as f64 / secs,
        n(&answered.busy) as f64 / secs,
        n(&answered.deadline) as f64 / secs,
        n(&answered.other)
    );
}

/// Records `events` in batches of `batch`, one request after another.
async fn record(url: &str, events: Vec<v1::Event>, batch: usize) -> Result<(), CliError> {
    let mut client = EventServiceClient::new(connect(&ClientArgs::local(url)).await?);
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<v1::Event> = events.by_ref().take(batch).collect();
        let answer = client
            .record_batch(v1::RecordBatchRequest { events: chunk })
            .await
            .map_err(status_error)?
            .into_inner();
        for outcome in &answer.outcomes {
            if let Some(v1::outcome::Result::Rejected(r)) = &outcome.result {
                return Err(CliError::Refused(format!(
                    "the bench's own event {} was rejected: {}",
                    outcome.event_id, r.reason
                )));
            }
        }
    }
    Ok(())
}

/// One flooding loop: expensive questions, one after another, until `stop`.
async fn ask(
    channel: Conn,
    lots: Arc<Vec<String>>,
    n: usize,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    answered: Arc<Answered>,
) {
    let mut audit = AuditServiceClient::new(channel.clone());
    let mut provenance = ProvenanceServiceClient::new(channel);
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let result = match i % 3 {
            // The log grows all the time, so every listing reads all of it again.
            0 => audit
                .list_anomalies(timed(
                    v1::ListAnomaliesRequest {
                        limit: 10,
                        ..Default::default()
                    },
                    timeout,
                ))
                .await
                .map(|_| ()),
            1 if !lots.is_empty() => provenance
                .trace_back(timed(
                    v1::TraceBackRequest {
                        lot: lots[i % lots.len()].clone(),
                        public_view: false,
                    },
                    timeout,
                ))
                .await
                .map(|_| ()),
            _ => provenance
                .list_events(timed(
                    v1::ListEventsRequest {
                        limit: 1_000,
                        ..Default::default()
                    },
                    timeout,
                ))
                .await
                .map(|_| ()),
        };
        let code = result.err().map(|s| s.code());
        let counter = match code {
            None => &answered.ok,
            Some(Code::ResourceExhausted) => &answered.busy,
            // The server stopped at the deadline, or the client gave up first.
            Some(Code::DeadlineExceeded | Code::Cancelled) => &answered.deadline,
            Some(_) => &answered.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if code == Some(Code::ResourceExhausted) {
            // A refused caller backs off a little, as a client should.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A request with a deadline.
fn timed<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}
