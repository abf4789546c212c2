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
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lotline_proto::v1;
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_testkit::{BinaryServer, NatsCluster, lotline_bin};

/// Longest wait for a node to catch up, or the cluster to heal.
const WAIT: Duration = Duration::from_secs(300);

async fn checkpoint(url: &str) -> Option<v1::Checkpoint> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()?;
    let answer = LogServiceClient::new(channel)
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .ok()?;
    Some(answer.into_inner())
}

async fn log_size(url: &str) -> u64 {
    checkpoint(url).await.map_or(0, |c| c.tree_size)
}

/// The `server_name` of the stream's leader.
async fn stream_leader(js: &async_nats::jetstream::Context) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(stream) = js.get_stream("LOTLINE_EVENTS").await
            && let Ok(info) = stream.get_info().await
            && let Some(leader) = info.cluster.and_then(|c| c.leader)
        {
            return leader;
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one import run gave.
struct Run {
    summary: serde_json::Value,
    seconds: f64,
    /// Seconds after the importer ended until both nodes held every record.
    settle_seconds: f64,
    size: u64,
    /// What happened when, for the report.
    steps: Vec<String>,
}

impl Run {
    fn count(&self, key: &str) -> u64 {
        self.summary[key].as_u64().unwrap_or(0)
    }
}

/// One import on a fresh cluster. `expected` is the records the nodes end with (known from the
/// calm run; then the faults are scheduled by it); without it, the importer's accepted count.
async fn import_run(document: &Path, expected: Option<u64>) -> Run {
    let mut cluster = NatsCluster::start().await;
    let urls = cluster.urls();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let args = |node: &'static str| {
        [
            "--nats-url",
            urls.as_str(),
            "--nats-replicas",
            "3",
            "--node-id",
            node,
        ]
    };
    let a = BinaryServer::spawn_with(dir_a.path(), "", &args("a")).await;
    let mut b = Some(BinaryServer::spawn_with(dir_b.path(), "", &args("b")).await);
    let js = async_nats::jetstream::new(cluster.client().await.expect("connect to the cluster"));

    let started = Instant::now();
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
        let leader = stream_leader(&js).await;
        let down = cluster.index_of(&leader).expect("a server of the cluster");
        tokio::task::block_in_place(|| cluster.stop(down, true));
        if let Some(node) = b.take() {
            tokio::task::block_in_place(|| node.kill());
        }
        steps.push(format!(
            "{:>6.1} s: SIGKILL NATS {leader} (the stream's leader) and node b",
            started.elapsed().as_secs_f64()
        ));
        reach(at(2)).await;
        b = Some(BinaryServer::spawn_with(dir_b.path(), "", &args("b")).await);
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
    a.kill();
    b.kill();
    Run {
        summary,
        seconds,
        settle_seconds,
        size: size_a,
        steps,
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

    // The records a node holds once the document is in: counted on a calm run first, so that
    // the faults run knows when it is done.
    let calm = import_run(&document, None).await;
    let records = calm.size;
    let faulty = import_run(&document, Some(records)).await;

    println!(
        "{events} generated events ({records} records with master data); two runs, each on a fresh 3-server cluster, stream R3, 2 nodes"
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
    let rate = |r: &Run| r.summary["events_per_second"].as_f64().unwrap_or(0.0);
    println!(
        "faults run rate / calm run rate: {:.2}",
        rate(&faulty) / rate(&calm).max(f64::MIN_POSITIVE)
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
