//! `lotline bench scale`: the sharding simulation of `docs/scaling.md`. N streams (shards, each
//! with its own subjects, as a stream per chain or region would be) on one NATS server, M lotline
//! nodes consuming each, all on this machine. For each (N, M) it publishes the same number of
//! events into every stream at once and stops the clock when every node has applied, flushed and
//! acked all of them; then it starts one new node per stream on the full streams and times their
//! catch-up, all at once. It prints the aggregate and per-stream rates, the ratio to one stream
//! with one node measured in the same run, and how busy the machine's cores were, so that a
//! figure can be carried to a machine with more cores.

use std::time::Instant;

use clap::Args;
use lotline_ingest::{Published, ensure_stream, jetstream};

use super::CliError;
use super::nats::{
    BenchNode, NatsArgs, bench_config, nats_client, nats_error, publish_or_fail, realistic_events,
};

#[derive(Debug, Args)]
pub(crate) struct ScaleBenchArgs {
    /// (The bench makes and deletes streams of its own there.)
    #[command(flatten)]
    nats: NatsArgs,
    /// Stream counts to measure (shards), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    streams: Vec<usize>,
    /// Nodes per stream to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
    /// Events published into each stream.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Most publishes waiting for the stream's ack at once, per stream.
    #[arg(long, default_value_t = 4_096)]
    in_flight: usize,
    /// Most messages a consumer applies in one batch (one flush).
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
}

/// The machine's CPU time so far, from `/proc/stat` (in clock ticks): busy and all.
#[derive(Clone, Copy)]
struct CpuTicks {
    busy: u64,
    total: u64,
}

impl CpuTicks {
    fn now() -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
        Some(CpuTicks {
            busy: total - idle,
            total,
        })
    }

    /// Cores kept busy between `self` and `later` (0 ..= the machine's cores).
    fn cores_busy(self, later: Option<CpuTicks>, cores: f64) -> Option<f64> {
        let later = later?;
        let total = later.total.checked_sub(self.total)?;
        (total > 0).then(|| (later.busy - self.busy) as f64 / total as f64 * cores)
    }
}

/// One (streams, nodes per stream) measurement.
struct Row {
    streams: usize,
    nodes: usize,
    /// Seconds from the first publish until every node applied every event.
    ingest_secs: f64,
    ingest_cores: Option<f64>,
    /// Seconds until one new node per stream, started together, had applied its whole stream.
    catch_up_secs: f64,
    catch_up_cores: Option<f64>,
}

pub(crate) async fn bench_scale(args: ScaleBenchArgs) -> Result<(), CliError> {
    if args.events == 0 {
        return Err(CliError::Usage("--events: must be at least 1".into()));
    }
    if args.streams.contains(&0) || args.nodes.contains(&0) {
        return Err(CliError::Usage(
            "--streams and --nodes: each count must be at least 1".into(),
        ));
    }
    let client = nats_client(&args.nats.url, "lotline bench scale", &args.nats.client).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut run = [0u8; 4];
    getrandom::getrandom(&mut run).map_err(|e| CliError::Usage(e.to_string()))?;
    let run = hex::encode(run);
    outln!(
        "{} events per stream; {} cores; streams {:?} × nodes per stream {:?}; in flight {}, batch {}",
        args.events,
        cores,
        args.streams,
        args.nodes,
        args.in_flight,
        args.batch
    );

    let mut rows = Vec::new();
    for &streams in &args.streams {
        for &nodes in &args.nodes {
            let tag = format!("{run}_{streams}x{nodes}");
            rows.push(measure(&client, &args, &tag, streams, nodes, cores).await?);
        }
    }

    let events = args.events as f64;
    // The reference is one stream, one node: its rate is what a single node does here.
    let base = rows
        .iter()
        .find(|r| r.streams == 1 && r.nodes == 1)
        .map(|r| events / r.ingest_secs);
    outln!();
    outln!(
        "streams nodes/stream | ingest: all streams  per stream  node-applies/s  ×(1×1)  cores busy | catch-up of 1 new node per stream: s  events/s  cores busy"
    );
    for r in &rows {
        let all = r.streams as f64 * events / r.ingest_secs;
        let applies = all * r.nodes as f64;
        let ratio = base.map_or(String::from("-"), |b| format!("{:.2}", all / b));
        let busy = |c: Option<f64>| c.map_or(String::from("-"), |c| format!("{c:.2}"));
        outln!(
            "{:>7} {:>12} | {:>19.0} {:>11.0} {:>15.0} {:>7} {:>11} | {:>38.2} {:>9.0} {:>11}",
            r.streams,
            r.nodes,
            all,
            events / r.ingest_secs,
            applies,
            ratio,
            busy(r.ingest_cores),
            r.catch_up_secs,
            r.streams as f64 * events / r.catch_up_secs,
            busy(r.catch_up_cores),
        );
    }
    Ok(())
}

async fn measure(
    client: &async_nats::Client,
    args: &ScaleBenchArgs,
    tag: &str,
    streams: usize,
    nodes: usize,
    cores: f64,
) -> Result<Row, CliError> {
    let configs: Vec<_> = (0..streams)
        .map(|s| {
            bench_config(
                &args.nats.url,
                args.batch,
                &format!("scale_{tag}_{s}"),
                "n0",
            )
        })
        .collect();
    let js = jetstream(client.clone());
    for config in &configs {
        ensure_stream(&js, config).await.map_err(nats_error)?;
    }
    let result = measure_on(client, args, tag, &configs, nodes, cores).await;
    for config in &configs {
        let _ = js.delete_stream(&config.stream).await;
    }
    result.map(
        |(ingest_secs, ingest_cores, catch_up_secs, catch_up_cores)| Row {
            streams,
            nodes,
            ingest_secs,
            ingest_cores,
            catch_up_secs,
            catch_up_cores,
        },
    )
}

/// Ingest and catch-up on streams that exist: (ingest s, cores busy, catch-up s, cores busy).
async fn measure_on(
    client: &async_nats::Client,
    args: &ScaleBenchArgs,
    tag: &str,
    configs: &[lotline_ingest::NatsConfig],
    nodes: usize,
    cores: f64,
) -> Result<(f64, Option<f64>, f64, Option<f64>), CliError> {
    let mut running = Vec::new();
    for config in configs {
        for n in 0..nodes {
            let mut config = config.clone();
            config.node_id = format!("n{n}");
            running.push(BenchNode::start(config).await?);
        }
    }
    // Each stream gets events of its own (its own orgs and lots), as a shard would.
    let histories: Vec<_> = (0..configs.len())
        .map(|s| realistic_events(args.events, &format!("{tag}-{s}")))
        .collect();

    let cpu = CpuTicks::now();
    let started = Instant::now();
    // The streams are published to at once, each with its own acks in flight and so with a
    // JetStream context of its own: a context caps the acks awaited through it, and publishers
    // sharing one would wait on each other's slots.
    let contexts: Vec<_> = configs.iter().map(|_| jetstream(client.clone())).collect();
    let last: Vec<Published> = futures::future::try_join_all(
        configs
            .iter()
            .zip(&histories)
            .zip(&contexts)
            .map(|((config, events), js)| publish_or_fail(js, config, events, args.in_flight)),
    )
    .await?;
    for (i, node) in running.iter().enumerate() {
        node.wait_through(last[i / nodes].last_sequence).await?;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let ingest_cores = cpu.and_then(|c| c.cores_busy(CpuTicks::now(), cores));
    for node in running {
        node.stop().await;
    }

    // One new node per stream, all at once, from the start of its full stream.
    // The clock runs from before they open their stores: opening is part of joining.
    let cpu = CpuTicks::now();
    let started = Instant::now();
    let mut joining = Vec::new();
    for config in configs {
        let mut config = config.clone();
        config.node_id = "joining".into();
        joining.push(BenchNode::start(config).await?);
    }
    for (i, node) in joining.iter().enumerate() {
        node.wait_through(last[i].last_sequence).await?;
    }
    let catch_up_secs = started.elapsed().as_secs_f64();
    let catch_up_cores = cpu.and_then(|c| c.cores_busy(CpuTicks::now(), cores));
    for node in joining {
        node.stop().await;
    }
    Ok((ingest_secs, ingest_cores, catch_up_secs, catch_up_cores))
}
