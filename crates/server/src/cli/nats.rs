//! `lotline publish` (JSON Lines to the stream) and `lotline bench ingest`
//! (durable end-to-end rate next to raw JetStream publish, measured in one run).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use futures::StreamExt;
use lotline_ingest::{
    Ingest, NatsConfig, Outgoing, Published, SUBJECT_ROOT, Stats, connect, ensure_stream,
    jetstream, publish_pipelined,
};
use lotline_proto::build;
use lotline_proto::v1;
use lotline_proto::v1::event::Kind;
use lotline_store::{Writer, WriterConfig};
use tokio::sync::watch;

use super::CliError;
use super::client::open_input;

/// Where NATS is, for the commands that talk to it directly.
#[derive(Debug, Args)]
pub(crate) struct NatsArgs {
    /// The NATS server lotline consumes from.
    #[arg(
        long = "nats-url",
        env = "LOTLINE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) client: NatsClientArgs,
}

/// How a NATS client proves who it is and checks the server (besides credentials in the URL).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct NatsClientArgs {
    /// A NATS credentials file (decentralised JWT and NKey seed, from `nsc`).
    #[arg(long, env = "LOTLINE_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// CA certificate (PEM) to trust for the NATS server's TLS certificate; requires TLS.
    #[arg(long, env = "LOTLINE_NATS_TLS_CA")]
    nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a NATS server that verifies clients.
    #[arg(long, env = "LOTLINE_NATS_TLS_CERT", requires = "nats_tls_key")]
    nats_tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, env = "LOTLINE_NATS_TLS_KEY", requires = "nats_tls_cert")]
    nats_tls_key: Option<PathBuf>,
    /// The prefix of this client's reply inboxes: `_INBOX.<org>` for an org's NATS user that
    /// may subscribe only to its own inboxes (deploy/nats).
    #[arg(long, env = "LOTLINE_NATS_INBOX_PREFIX")]
    nats_inbox_prefix: Option<String>,
}

impl NatsClientArgs {
    pub(crate) fn options(&self) -> lotline_ingest::ClientOptions {
        lotline_ingest::ClientOptions {
            creds: self.nats_creds.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            inbox_prefix: self.nats_inbox_prefix.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// JSON Lines file of events (proto3 JSON of lotline.v1.Event), or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    nats: NatsArgs,
    /// Most publishes waiting for the stream's ack at once.
    #[arg(long, default_value_t = 1024)]
    in_flight: usize,
    /// Wait for lotline's outcome of each event (accepted, duplicate, or
    /// rejected with the reason) and print the rejections.
    #[arg(long)]
    outcomes: bool,
    /// How long --outcomes waits for the last outcome, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

/// `lotline publish FILE`.
pub(crate) async fn publish(args: PublishArgs) -> Result<(), CliError> {
    let reader = open_input(&args.file)?;
    let client = nats_client(&args.nats.url, "lotline publish", &args.nats.client).await?;
    let js = jetstream(client.clone());
    let inbox = client.new_inbox();
    // Which line (and org) each event id came from (for every event with --outcomes, to name
    // the line of a rejection and to ask a node for outcomes not heard; otherwise only for the
    // chunk in hand).
    let line_of: Arc<Mutex<HashMap<String, (usize, String)>>> = Arc::default();
    // Outcomes are read while publishing, so none wait in a full buffer.
    let (expected_tx, expected_rx) = watch::channel(None);
    let collector = if args.outcomes {
        let replies = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| CliError::Connect(format!("cannot subscribe for outcomes: {e}")))?;
        Some(tokio::spawn(collect_outcomes(
            replies,
            client.clone(),
            expected_rx,
            Duration::from_secs(args.timeout_secs),
            line_of.clone(),
        )))
    } else {
        None
    };
    // Lines that are not events are reported by number and not published. The
    // input is read and published a chunk at a time: memory stays bounded.
    let mut refused = 0u64;
    let mut totals = Published::default();
    let mut lines = reader.lines().enumerate();
    loop {
        let mut chunk = Vec::with_capacity(PUBLISH_CHUNK);
        for (index, line) in lines.by_ref() {
            let number = index + 1;
            let line = line.map_err(|e| {
                CliError::Usage(format!(
                    "line {number}: cannot read {}: {e}",
                    args.file.display()
                ))
            })?;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match Outgoing::json_line(SUBJECT_ROOT, text) {
                Ok(mut message) => {
                    if args.outcomes {
                        message = message.with_reply(&inbox);
                    }
                    let org = message.subject.rsplit('.').next().unwrap_or_default();
                    lock(&line_of).insert(message.event_id.clone(), (number, org.to_string()));
                    chunk.push(message);
                    if chunk.len() == PUBLISH_CHUNK {
                        break;
                    }
                }
                Err(reason) => {
                    refused += 1;
                    eprintln!("line {number}: {reason}");
                }
            }
        }
        if chunk.is_empty() {
            break;
        }
        let published = publish_pipelined(&js, chunk, args.in_flight, |_| {}).await;
        let mut lines_of = lock(&line_of);
        for (id, reason) in &published.failed {
            let line = lines_of.get(id).map_or(0, |(line, _)| *line);
            eprintln!(
                "line {line}: {id}: not confirmed by the stream ({reason}); publishing it again is safe"
            );
        }
        if args.outcomes {
            // No outcome is owed for what the stream did not take.
            for id in published
                .duplicate_ids
                .iter()
                .chain(published.failed.iter().map(|(id, _)| id))
            {
                lines_of.remove(id);
            }
        } else {
            lines_of.clear();
        }
        totals.stored += published.stored;
        totals.duplicates += published.duplicates;
        totals.retried += published.retried;
        totals.last_sequence = totals.last_sequence.max(published.last_sequence);
        totals.failed.extend(published.failed);
    }
    if totals.retried > 0 {
        outln!(
            "{} publishes sent again (same message id) after the stream did not confirm them at first",
            totals.retried
        );
    }
    outln!(
        "{} published ({} new in the stream, {} dropped by the stream as re-sends), {} not confirmed, {} not events",
        totals.stored + totals.duplicates,
        totals.stored,
        totals.duplicates,
        totals.failed.len(),
        refused
    );
    let mut rejected = 0u64;
    let mut missing = 0u64;
    if let Some(collector) = collector {
        let _ = expected_tx.send(Some((totals.stored, totals.last_sequence)));
        let counts = collector
            .await
            .map_err(|e| CliError::Refused(format!("collecting outcomes failed: {e}")))?;
        rejected = counts.rejected;
        missing = totals.stored.saturating_sub(counts.total());
        outln!(
            "{} accepted, {} duplicate, {} rejected, {} without an outcome within {} s{}",
            counts.accepted,
            counts.duplicate,
            counts.rejected,
            missing,
            args.timeout_secs,
            if counts.fetched > 0 {
                format!(
                    " ({} outcomes asked of a node, their replies lost)",
                    counts.fetched
                )
            } else {
                String::new()
            }
        );
    }
    if refused > 0 || !totals.failed.is_empty() || rejected > 0 || missing > 0 {
        return Err(CliError::SomeRejected(
            "some events were not published, not confirmed or rejected (see above)".into(),
        ));
    }
    Ok(())
}

/// Lines read and published at a time by `lotline publish`.
const PUBLISH_CHUNK: usize = 10_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct OutcomeCounts {
    accepted: u64,
    duplicate: u64,
    rejected: u64,
    /// Outcomes a node told when asked, their replies not heard.
    fetched: u64,
}

impl OutcomeCounts {
    fn total(&self) -> u64 {
        self.accepted + self.duplicate + self.rejected
    }
}

/// How long `publish --outcomes`, done publishing, waits without an outcome reply before it asks
/// a node for the outcomes it has not heard (replies lost with a killed node, say).
const ASK_AFTER: Duration = Duration::from_secs(2);

/// Counts the first outcome each event gets (every node answers; one is enough) and prints each
/// rejection with its line, until `expected` (set once publishing is done, with the last stream
/// sequence confirmed) outcomes are in, or `timeout` after the last one came. Once publishing is
/// done, after each [`ASK_AFTER`] without a reply it asks a node (`lotline_ingest::outcomes`)
/// for the outcomes not heard.
async fn collect_outcomes(
    mut replies: async_nats::Subscriber,
    client: async_nats::Client,
    mut expected: watch::Receiver<Option<(u64, u64)>>,
    timeout: Duration,
    line_of: Arc<Mutex<HashMap<String, (usize, String)>>>,
) -> OutcomeCounts {
    let mut counts = OutcomeCounts::default();
    let mut seen = std::collections::HashSet::new();
    let mut last = tokio::time::Instant::now();
    loop {
        let target = *expected.borrow();
        if let Some((target, _)) = target
            && counts.total() >= target
        {
            break;
        }
        let next = tokio::select! {
            changed = expected.changed(), if target.is_none() => {
                if changed.is_err() {
                    break;
                }
                last = tokio::time::Instant::now();
                continue;
            }
            () = tokio::time::sleep(ASK_AFTER.min(timeout)), if target.is_some() => {
                let through = target.map_or(0, |(_, through)| through);
                let learnt = ask_outcomes(&client, through, &line_of, &mut seen, &mut counts).await;
                if learnt > 0 {
                    last = tokio::time::Instant::now();
                } else if last.elapsed() >= timeout {
                    break;
                }
                continue;
            }
            next = replies.next() => next,
        };
        let Some(reply) = next else {
            break;
        };
        let Ok(outcome) = serde_json::from_slice::<v1::Outcome>(&reply.payload) else {
            continue;
        };
        last = tokio::time::Instant::now();
        if !seen.insert(outcome.event_id.clone()) {
            continue;
        }
        count_outcome(&outcome.event_id, outcome.result, &line_of, &mut counts);
    }
    counts
}

fn count_outcome(
    id: &str,
    result: Option<v1::outcome::Result>,
    line_of: &Mutex<HashMap<String, (usize, String)>>,
    counts: &mut OutcomeCounts,
) {
    use v1::outcome::Result as R;
    match result {
        Some(R::Accepted(_)) => counts.accepted += 1,
        Some(R::Duplicate(_)) => counts.duplicate += 1,
        Some(R::Rejected(r)) => {
            counts.rejected += 1;
            let line = lock(line_of).get(id).map_or(0, |(line, _)| *line);
            eprintln!("line {line}: {id}: rejected ({}): {}", r.kind, r.reason);
        }
        None => {}
    }
}

/// Asks a node for the outcomes of the published events not heard yet, per org, and counts
/// what it tells. Returns how many outcomes it learnt.
async fn ask_outcomes(
    client: &async_nats::Client,
    confirmed_through: u64,
    line_of: &Mutex<HashMap<String, (usize, String)>>,
    seen: &mut std::collections::HashSet<String>,
    counts: &mut OutcomeCounts,
) -> u64 {
    use lotline_ingest::outcomes::ask;
    let mut by_org: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (id, (_, org)) in lock(line_of).iter() {
        if !seen.contains(id) {
            by_org.entry(org.clone()).or_default().push(id.clone());
        }
    }
    let mut learnt = 0;
    for (org, ids) in by_org {
        let Ok(told) = ask(
            client,
            SUBJECT_ROOT,
            &org,
            &ids,
            confirmed_through,
            Duration::from_secs(5),
        )
        .await
        else {
            // No node answers (none running, or none allowed to): wait on.
            break;
        };
        for (id, told) in told {
            if !seen.insert(id.clone()) {
                continue;
            }
            count_outcome(&id, Some(told.into_result()), line_of, counts);
            counts.fetched += 1;
            learnt += 1;
        }
    }
    learnt
}

pub(crate) async fn nats_client(
    url: &str,
    name: &str,
    client: &NatsClientArgs,
) -> Result<async_nats::Client, CliError> {
    connect(url, name, &client.options(), None, false)
        .await
        .map_err(|e| CliError::Connect(format!("{e} (is nats-server running? see README)")))
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Publish N realistic events and measure end-to-end events/s (published →
    /// applied, flushed and acked by an in-process lotline node) next to raw
    /// pipelined JetStream publish of the same payloads, in the same run.
    Ingest(IngestBenchArgs),
    /// Requests per second of a small query (one event by id) without access control and
    /// with --auth and a member's token, alternating on the same store, in one run.
    Access(super::access::AccessBenchArgs),
    /// The sharding simulation: N streams × M nodes per stream on one NATS server; aggregate
    /// ingest and catch-up rates, and how busy the cores were, in one run.
    Scale(super::scale::ScaleBenchArgs),
    /// Ingest events/s with nobody asking, then while clients flood the server with expensive
    /// questions (with the read pool, and with questions on every core), in one run.
    Flood(super::flood::FloodBenchArgs),
}

#[derive(Debug, Args)]
struct IngestBenchArgs {
    /// (The bench makes and deletes streams of its own there.)
    #[command(flatten)]
    nats: NatsArgs,
    /// How many events.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Most publishes waiting for the stream's ack at once.
    #[arg(long, default_value_t = 4_096)]
    in_flight: usize,
    /// Most messages the consumer applies in one batch (one flush).
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
}

pub(crate) async fn bench(args: BenchArgs) -> Result<(), CliError> {
    match args.what {
        BenchCommand::Ingest(a) => bench_ingest(a).await,
        BenchCommand::Access(a) => super::access::bench_access(a).await,
        BenchCommand::Flood(a) => super::flood::bench_flood(a).await,
        BenchCommand::Scale(a) => super::scale::bench_scale(a).await,
    }
}

async fn bench_ingest(args: IngestBenchArgs) -> Result<(), CliError> {
    if args.events == 0 {
        return Err(CliError::Usage("--events: must be at least 1".into()));
    }
    let client = nats_client(&args.nats.url, "lotline bench", &args.nats.client).await?;
    let js = jetstream(client.clone());
    let mut run = [0u8; 4];
    getrandom::getrandom(&mut run).map_err(|e| CliError::Usage(e.to_string()))?;
    let run = hex::encode(run);
    let events = realistic_events(args.events, &run);
    let bytes: usize = events.iter().map(prost::Message::encoded_len).sum();
    outln!(
        "{} events, {} bytes of protobuf on average; in flight {}, batch {}",
        events.len(),
        bytes / events.len(),
        args.in_flight,
        args.batch
    );

    // 1. Raw pipelined JetStream publish of the same payloads into a stream of
    //    the same kind (file storage, duplicate window), nothing consuming.
    let raw = bench_config(&args.nats.url, args.batch, &format!("raw_{run}"), "raw");
    let raw_rate = {
        let _stream = ensure_stream(&js, &raw).await.map_err(nats_error)?;
        let (published, secs) = timed_publish(&js, &raw, &events, args.in_flight).await?;
        let _ = js.delete_stream(&raw.stream).await;
        published as f64 / secs
    };
    outln!("raw JetStream publish          {:>10.0} events/s", raw_rate);

    // 2. End to end: publish while a lotline node consumes; the clock stops when
    //    the node has applied, flushed and acked the last event.
    let e2e = bench_config(&args.nats.url, args.batch, &format!("e2e_{run}"), "node-a");
    ensure_stream(&js, &e2e).await.map_err(nats_error)?;
    let node = BenchNode::start(e2e.clone()).await?;
    let started = Instant::now();
    let published = publish_or_fail(&js, &e2e, &events, args.in_flight).await?;
    node.wait_through(published.last_sequence).await?;
    let e2e_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    let e2e_stats = node.stop().await;
    outln!(
        "end to end (publish → flushed)  {:>10.0} events/s   ratio {:.2} of raw",
        e2e_rate,
        e2e_rate / raw_rate
    );

    // 3. A second node consuming the now full stream from the start.
    let mut refill = e2e.clone();
    refill.node_id = "node-b".into();
    let started = Instant::now();
    let node = BenchNode::start(refill).await?;
    node.wait_through(published.last_sequence).await?;
    let fill_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    let fill_stats = node.stop().await;
    let _ = js.delete_stream(&e2e.stream).await;
    outln!(
        "pre-filled stream (consume)     {:>10.0} events/s   ratio {:.2} of raw",
        fill_rate,
        fill_rate / raw_rate
    );
    outln!();
    outln!("where the consumer's time went (end to end | pre-filled):");
    for (name, e, f) in [
        ("decode + validate", e2e_stats.decode, fill_stats.decode),
        ("store, waiting included", e2e_stats.write, fill_stats.write),
        (
            "  records, indexes, Merkle nodes",
            e2e_stats.prepare,
            fill_stats.prepare,
        ),
        ("  sled apply_batch", e2e_stats.apply, fill_stats.apply),
        ("  sled flush", e2e_stats.flush, fill_stats.flush),
        ("acks and replies", e2e_stats.acks, fill_stats.acks),
    ] {
        outln!("  {name:<36} {:>8.2} s | {:>8.2} s", e, f);
    }
    let n = events.len() as f64;
    outln!(
        "  batches {} (average {:.0} events) | {} (average {:.0} events); {:.1} sled keys per event",
        e2e_stats.batches,
        n / e2e_stats.batches.max(1) as f64,
        fill_stats.batches,
        n / fill_stats.batches.max(1) as f64,
        e2e_stats.keys as f64 / n
    );
    outln!(
        "  on disk: {:.0} bytes per event (data dir {:.1} MiB after the end-to-end run)",
        e2e_stats.disk as f64 / n,
        e2e_stats.disk as f64 / (1024.0 * 1024.0)
    );
    print_footprint(&e2e_stats.footprint, n);
    Ok(())
}

pub(crate) fn nats_error(e: lotline_ingest::IngestError) -> CliError {
    CliError::Refused(e.to_string())
}

/// A stream and subjects of the bench's own (`name`), consumed by node `node`.
pub(super) fn bench_config(url: &str, batch: usize, name: &str, node: &str) -> NatsConfig {
    let mut config = NatsConfig::new(url, node);
    config.stream = format!("LOTLINE_BENCH_{}", name.to_uppercase());
    config.subject_root = format!("lotline-bench-{name}");
    config.batch = batch;
    config
}

async fn timed_publish(
    js: &async_nats::jetstream::Context,
    config: &NatsConfig,
    events: &[v1::Event],
    in_flight: usize,
) -> Result<(u64, f64), CliError> {
    let started = Instant::now();
    let published = publish_or_fail(js, config, events, in_flight).await?;
    Ok((published.stored, started.elapsed().as_secs_f64()))
}

pub(super) async fn publish_or_fail(
    js: &async_nats::jetstream::Context,
    config: &NatsConfig,
    events: &[v1::Event],
    in_flight: usize,
) -> Result<Published, CliError> {
    let messages = events
        .iter()
        .filter_map(|e| Outgoing::protobuf(&config.subject_root, e).ok());
    let published = publish_pipelined(js, messages, in_flight, |_| {}).await;
    if let Some((id, reason)) = published.failed.first() {
        return Err(CliError::Refused(format!(
            "{} publishes failed, e.g. {id}: {reason}",
            published.failed.len()
        )));
    }
    Ok(published)
}

/// An in-process lotline node (temp sled store, writer, consumer) for the bench.
pub(super) struct BenchNode {
    dir: tempfile::TempDir,
    store: lotline_store::Store,
    ingest: Ingest,
    done: lotline_store::WriterDone,
    writer: std::sync::Arc<lotline_store::WriterStats>,
}

/// Seconds (or counts) the consumer and its writer spent, by phase.
pub(super) struct Spent {
    decode: f64,
    write: f64,
    acks: f64,
    batches: u64,
    prepare: f64,
    apply: f64,
    flush: f64,
    keys: u64,
    /// Bytes of the node's data dir once it stopped.
    disk: u64,
    /// What the store holds, per key prefix.
    footprint: Vec<lotline_store::PrefixFootprint>,
}

impl BenchNode {
    pub(super) async fn start(config: NatsConfig) -> Result<BenchNode, CliError> {
        let dir = tempfile::tempdir().map_err(|e| CliError::Usage(e.to_string()))?;
        let (store, _) = crate::open_store(&crate::ServeConfig::new(dir.path()))
            .map_err(|e| CliError::Refused(e.to_string()))?;
        let (writer, done) = Writer::spawn(store.clone(), WriterConfig::default())
            .map_err(|e| CliError::Refused(e.to_string()))?;
        let stats = writer.stats();
        let ingest = Ingest::start(config, &store, writer)
            .await
            .map_err(nats_error)?;
        Ok(BenchNode {
            dir,
            store,
            ingest,
            done,
            writer: stats,
        })
    }

    /// Waits until the node has applied stream sequence `seq`; fails if it
    /// makes no progress for a minute.
    pub(super) async fn wait_through(&self, seq: u64) -> Result<(), CliError> {
        let mut last = (self.ingest.applied.through(), Instant::now());
        while self.ingest.applied.through() < seq {
            let now = self.ingest.applied.through();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(60) {
                return Err(CliError::Refused(format!(
                    "the bench node stalled at sequence {now} of {seq} (consumer: {:?})",
                    *self.ingest.state().borrow()
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Stops the node and says where its time went.
    pub(super) async fn stop(self) -> Spent {
        let stats = self.ingest.stats.clone();
        self.ingest.stop(Duration::from_secs(30)).await;
        self.done.wait().await;
        let secs = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed) as f64 / 1e9;
        let Stats {
            decode_nanos,
            write_nanos,
            settle_nanos,
            batches,
            ..
        } = &*stats;
        let w = &self.writer;
        Spent {
            decode: secs(decode_nanos),
            write: secs(write_nanos),
            acks: secs(settle_nanos),
            batches: batches.load(Ordering::Relaxed),
            prepare: secs(&w.prepare_nanos),
            apply: secs(&w.apply_nanos),
            flush: secs(&w.flush_nanos),
            keys: w.keys.load(Ordering::Relaxed),
            disk: dir_bytes(self.dir.path()),
            footprint: self.store.footprint().unwrap_or_default(),
        }
    }
}

/// The bytes of every file under `dir`.
pub(crate) fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Prints what a store holds per key prefix, per event.
pub(crate) fn print_footprint(footprint: &[lotline_store::PrefixFootprint], events: f64) {
    outln!("  prefix      keys/event   key B/event  value B/event");
    for f in footprint {
        outln!(
            "  {:<8} {:>12.2} {:>13.1} {:>14.1}",
            (f.prefix as char).escape_default().to_string(),
            f.keys as f64 / events,
            f.key_bytes as f64 / events,
            f.value_bytes as f64 / events
        );
    }
    let (k, v) = footprint
        .iter()
        .fold((0, 0), |(k, v), f| (k + f.key_bytes, v + f.value_bytes));
    outln!(
        "  all      {:>12.2} {:>13.1} {:>14.1}",
        footprint.iter().map(|f| f.keys).sum::<u64>() as f64 / events,
        k as f64 / events,
        v as f64 / events
    );
}

/// A cocoa chain shaped like real intake: co-ops registered first, then rounds
/// of eight farm harvests (with plot and quantity), one aggregation at the
/// co-op (8 inputs → 1 lot) and one shipment of it to a processor.
pub(crate) fn realistic_events(n: usize, run: &str) -> Vec<v1::Event> {
    const COOPS: usize = 20;
    let time = "2026-03-01T08:00:00+00:00";
    let mut events = Vec::with_capacity(n);
    let processor = format!("proc-{run}");
    for org in (0..COOPS)
        .map(|c| format!("coop-{run}-{c}"))
        .chain([processor.clone()])
    {
        let name = format!("{org} cooperative society");
        let kind = build::register_org(name, v1::OrgRole::Cooperative, "CI");
        events.push(build::event(format!("reg-{org}"), time, org, "", kind));
    }
    let mut round = 0usize;
    while events.len() < n {
        let coop = format!("coop-{run}-{}", round % COOPS);
        let mut inputs = Vec::new();
        for farm in 0..8 {
            let lot = format!("H-{run}-{round}-{farm}");
            let amount = 300 + ((round * 7 + farm * 13) % 400) as u64;
            let plot = format!("CI-PLOT-{}-{farm}", round % 500);
            let kind = build::harvest(lot.clone(), plot, "wet cocoa beans", amount);
            let id = format!("h-{run}-{round}-{farm}");
            events.push(build::event(id, time, coop.clone(), "cocoa", kind));
            inputs.push((lot, amount));
        }
        let total: u64 = inputs.iter().map(|(_, a)| a).sum();
        let dried = format!("DRY-{run}-{round}");
        let kind = Kind::Transform(v1::Transform {
            inputs: inputs
                .iter()
                .map(|(lot, amount)| build::lot_quantity(lot.clone(), amount, "kg"))
                .collect(),
            outputs: vec![build::output(
                dried.clone(),
                "dry cocoa beans",
                total * 38 / 100,
                "kg",
                &[],
            )],
            process: "fermenting and drying".into(),
            ..Default::default()
        });
        let id = format!("t-{run}-{round}");
        events.push(build::event(id, time, coop.clone(), "cocoa", kind));
        let kind = build::ship([(dried, total * 38 / 100)], processor.clone());
        events.push(build::event(
            format!("s-{run}-{round}"),
            time,
            coop,
            "cocoa",
            kind,
        ));
        round += 1;
    }
    events.truncate(n);
    events
}
