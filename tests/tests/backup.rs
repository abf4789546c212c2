//! Backups: `lotline backup` copies a serving node's log up to a signed checkpoint,
//! `lotline restore` makes a new node's data dir from it (re-hashed, tree and indexes built),
//! `lotline verify` accepts it, and in NATS mode the new node resumes the stream and reaches the
//! same root as the node it was copied from.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::{Msg, all_events, eventually, id_counts, js_publish, lotline, nats_client};
use common::{stderr, stdout};
use lotline_proto::v1;
use lotline_testkit::events::{harvest, register_org, transform};
use lotline_testkit::{BinaryServer, NatsServer};

const WAIT: Duration = Duration::from_secs(90);

async fn checkpoint(url: &str) -> v1::Checkpoint {
    v1::log_service_client::LogServiceClient::connect(url.to_string())
        .await
        .expect("connect")
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .expect("checkpoint")
        .into_inner()
}

async fn checkpoint_at(url: &str, size: u64) -> v1::Checkpoint {
    v1::log_service_client::LogServiceClient::connect(url.to_string())
        .await
        .expect("connect")
        .get_checkpoint(v1::GetCheckpointRequest { tree_size: size })
        .await
        .expect("checkpoint")
        .into_inner()
}

fn run_ok(args: &[&str]) -> String {
    let out = lotline(args);
    assert!(
        out.status.success(),
        "lotline {args:?}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `lotline restore BACKUP --data-dir DIR`.
fn restore(backup: &Path, dir: &Path) -> std::process::Output {
    lotline(&[
        "restore",
        backup.to_str().expect("path"),
        "--data-dir",
        dir.to_str().expect("path"),
    ])
}

/// The backup's header line and entries, decompressed.
fn unpack(file: &Path) -> Vec<u8> {
    let mut raw = Vec::new();
    zstd::Decoder::new(std::fs::File::open(file).expect("open"))
        .expect("zstd")
        .read_to_end(&mut raw)
        .expect("read");
    raw
}

fn pack(file: &Path, raw: &[u8]) {
    let mut out =
        zstd::Encoder::new(std::fs::File::create(file).expect("create"), 3).expect("zstd");
    out.write_all(raw).expect("write");
    out.finish().expect("finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_answers_as_the_node_it_was_backed_up_from() {
    let dir = tempfile::tempdir().expect("dir");
    let a = BinaryServer::spawn(&dir.path().join("a")).await;
    let mut events = v1::event_service_client::EventServiceClient::connect(a.url())
        .await
        .expect("connect");
    let mut batch = vec![register_org("coop")];
    batch.extend((0..1_500).map(|n| harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 10)));
    batch.push(transform(
        "t1",
        "coop",
        &[("LOT-1", 10), ("LOT-2", 10)],
        &[("BULK-1", 20)],
    ));
    events
        .record_batch(v1::RecordBatchRequest { events: batch })
        .await
        .expect("record");
    let backup = dir.path().join("a.backup");
    let said = run_ok(&[
        "backup",
        "--server",
        &a.url(),
        "--out",
        backup.to_str().expect("path"),
    ]);
    assert!(said.contains("Backed up 1502 entries"), "{said}");

    // A changed byte in any entry, or a truncated file, is refused; nothing is left half-made
    // in a way that could pass for a node.
    let raw = unpack(&backup);
    let mut changed = raw.clone();
    let at = raw.len() - 10;
    changed[at] ^= 0x01;
    let tampered = dir.path().join("tampered.backup");
    pack(&tampered, &changed);
    let refused = restore(&tampered, &dir.path().join("t"));
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("not to its signed root")
            || stderr(&refused).contains("not a lotline record"),
        "{}",
        stderr(&refused)
    );
    pack(&tampered, &raw[..raw.len() - 100]);
    let refused = restore(&tampered, &dir.path().join("t2"));
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    // Neither left a store behind, nor its staging directory: nothing that could be served.
    for name in ["t", "t2", "t.restoring", "t2.restoring"] {
        assert!(!dir.path().join(name).exists(), "{name} was left behind");
    }

    // A good restore; not over a directory that holds anything.
    let b_dir = dir.path().join("b");
    let restored = restore(&backup, &b_dir);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let again = restore(&backup, &b_dir);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    let verified = run_ok(&[
        "verify",
        "--data-dir",
        b_dir.to_str().expect("path"),
        "--checkpoint",
        b_dir.join("backup-checkpoint.json").to_str().expect("path"),
    ]);
    assert!(verified.contains("1502 events re-hashed"), "{verified}");

    // The new node: the same root, the same events, the same answers.
    let b = BinaryServer::spawn(&b_dir).await;
    let (ca, cb) = (checkpoint(&a.url()).await, checkpoint(&b.url()).await);
    assert_eq!((cb.tree_size, &cb.root_hash), (ca.tree_size, &ca.root_hash));
    let mut pa = v1::provenance_service_client::ProvenanceServiceClient::connect(a.url())
        .await
        .expect("connect");
    let mut pb = v1::provenance_service_client::ProvenanceServiceClient::connect(b.url())
        .await
        .expect("connect");
    assert_eq!(all_events(&mut pa).await, all_events(&mut pb).await);
    let trace = |lot: &str| v1::TraceBackRequest {
        lot: lot.into(),
        ..Default::default()
    };
    assert_eq!(
        pa.trace_back(trace("BULK-1"))
            .await
            .expect("a")
            .into_inner(),
        pb.trace_back(trace("BULK-1"))
            .await
            .expect("b")
            .into_inner()
    );
    // It takes writes after what it was restored with.
    let mut eb = v1::event_service_client::EventServiceClient::connect(b.url())
        .await
        .expect("connect");
    eb.record(v1::RecordRequest {
        event: Some(harvest("after", "coop", "LOT-AFTER", 1)),
    })
    .await
    .expect("a write on the restored node");
    assert_eq!(checkpoint(&b.url()).await.tree_size, 1503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_stream_flows_resumes_it_to_the_same_root() {
    const EVENTS: usize = 3_000;
    let nats = NatsServer::start();
    let url = nats.url();
    let dir = tempfile::tempdir().expect("dir");
    let node = |id: &'static str| {
        let url = url.clone();
        let data = dir.path().join(id);
        async move {
            BinaryServer::spawn_with(&data, "", &["--nats-url", url.as_str(), "--node-id", id])
                .await
        }
    };
    let a = node("a").await;
    let js = async_nats::jetstream::new(nats_client(&url).await);
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for n in 0..EVENTS {
                let e = harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 5);
                js_publish(&js, &Msg::event(&e)).await;
            }
        })
    };
    // Online: the backup is taken while events arrive.
    eventually("a few hundred events on node a", WAIT, || async {
        (checkpoint(&a.url()).await.tree_size > 300).then_some(())
    })
    .await;
    let backup = dir.path().join("a.backup");
    let said = run_ok(&[
        "backup",
        "--server",
        &a.url(),
        "--out",
        backup.to_str().expect("path"),
    ]);
    assert!(said.contains("resumes the stream after sequence"), "{said}");
    let backed_up: u64 = said
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("the entry count");
    publisher.await.expect("publisher");
    let total = EVENTS as u64 + 1;

    let b_dir = dir.path().join("b");
    let restored = restore(&backup, &b_dir);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let b = node("b").await;
    eventually("both nodes to hold every event", WAIT, || async {
        (checkpoint(&a.url()).await.tree_size == total
            && checkpoint(&b.url()).await.tree_size == total)
            .then_some(())
    })
    .await;
    let (ca, cb) = (checkpoint(&a.url()).await, checkpoint(&b.url()).await);
    assert_eq!(cb.root_hash, ca.root_hash, "the same root");
    // The restored prefix is the backup's, byte for byte (its root at that size).
    assert_eq!(
        checkpoint_at(&b.url(), backed_up).await.root_hash,
        checkpoint_at(&a.url(), backed_up).await.root_hash
    );
    let mut pb = v1::provenance_service_client::ProvenanceServiceClient::connect(b.url())
        .await
        .expect("connect");
    let counts = id_counts(&all_events(&mut pb).await);
    assert_eq!(counts.len() as u64, total);
    assert!(counts.values().all(|n| *n == 1), "an event twice");
}
