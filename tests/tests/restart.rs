//! Durability and lifecycle of the real binary: SIGKILL right after acknowledged
//! writes, SIGTERM draining, indexes rebuilt at start-up.

mod common;

use std::time::Duration;

use common::{all_events, id_counts};
use lotline_proto::v1;
use lotline_testkit::events::{harvest, register_org};
use lotline_testkit::{BinaryServer, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let server = BinaryServer::spawn(&data).await;
        let mut client =
            lotline_proto::v1::event_service_client::EventServiceClient::connect(server.url())
                .await
                .unwrap();
        client
            .record(v1::RecordRequest {
                event: Some(register_org("coop")),
            })
            .await
            .unwrap();
        // Concurrent single records, so the writer batches them.
        let mut tasks = Vec::new();
        for n in 0..200 {
            let mut c = client.clone();
            let id = format!("r{round}-h{n}");
            tasks.push(tokio::spawn(async move {
                c.record(v1::RecordRequest {
                    event: Some(harvest(&id, "coop", &format!("LOT-{id}"), 10)),
                })
                .await
                .map(|_| id)
            }));
        }
        for t in tasks {
            acknowledged.push(t.await.unwrap().expect("record"));
        }
        // Killed right after the last acknowledgement: nothing gets to drain.
        server.kill();
    }
    let server = BinaryServer::spawn(&data).await;
    let mut provenance =
        lotline_proto::v1::provenance_service_client::ProvenanceServiceClient::connect(
            server.url(),
        )
        .await
        .unwrap();
    let events = all_events(&mut provenance).await;
    let counts = id_counts(&events);
    for id in &acknowledged {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged event {id} is not in the log exactly once"
        );
    }
    assert_eq!(
        counts["reg-coop"], 1,
        "re-registering is a duplicate, not a new event"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "sequence numbers have no gaps"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinaryServer::spawn(&data).await;
    let client = lotline_proto::v1::event_service_client::EventServiceClient::connect(server.url())
        .await
        .unwrap();
    client
        .clone()
        .record(v1::RecordRequest {
            event: Some(register_org("coop")),
        })
        .await
        .unwrap();
    // Eight clients record as fast as they can until the server stops answering.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut tasks = Vec::new();
    for k in 0..8 {
        let mut c = client.clone();
        let acked = acked_tx.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..2_000 {
                let id = format!("w{k}-h{n}");
                let event = harvest(&id, "coop", &format!("LOT-{id}"), 1);
                if c.record(v1::RecordRequest { event: Some(event) })
                    .await
                    .is_err()
                {
                    break;
                }
                let _ = acked.send(id);
            }
        }));
    }
    drop(acked_tx);
    let mut acknowledged = Vec::new();
    // SIGTERM lands while requests are in flight.
    while acknowledged.len() < 100 {
        let id = tokio::time::timeout(Duration::from_secs(30), acked_rx.recv())
            .await
            .expect("records are being acknowledged")
            .expect("writers running");
        acknowledged.push(id);
    }
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("writers stop once the server is gone")
            .unwrap();
    }
    while let Some(id) = acked_rx.recv().await {
        acknowledged.push(id);
    }
    let server = BinaryServer::spawn(&data).await;
    let mut provenance =
        lotline_proto::v1::provenance_service_client::ProvenanceServiceClient::connect(
            server.url(),
        )
        .await
        .unwrap();
    let counts = id_counts(&all_events(&mut provenance).await);
    for id in &acknowledged {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged event {id} is not in the log exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_indexes_are_rebuilt_from_the_log_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut client = server.events().await;
    client
        .record_batch(v1::RecordBatchRequest {
            events: vec![register_org("coop"), harvest("h1", "coop", "LOT-1", 10)],
        })
        .await
        .unwrap();
    server.stop().await.unwrap();
    {
        let (store, _) =
            lotline_server::open_store(&lotline_server::ServeConfig::new(dir.path())).unwrap();
        store.damage_index_for_test("h1").unwrap();
        assert_eq!(store.seq_of("h1").unwrap(), None);
    }
    let server = TestServer::start_in(dir.path()).await;
    let mut client = server.events().await;
    // Re-sending h1 is recognised as a duplicate only if its index entry is back.
    let out = client
        .record(v1::RecordRequest {
            event: Some(harvest("h1", "coop", "LOT-1", 10)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        out.outcome.unwrap().result,
        Some(v1::outcome::Result::Duplicate(v1::Duplicate {
            sequence: 2
        }))
    ));
    server.stop().await.unwrap();
}

/// A stop with nothing in flight takes moments, not the grace period: nothing holds the writer
/// once the doors are closed (an unused HTTP door's services once held it, and every stop of a
/// server without `--http` waited out the whole grace period). The grace here is a minute; the
/// stop must end in well under half of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_does_not_wait_out_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = lotline_server::ServeConfig::new(dir.path());
    config.grace = Duration::from_secs(60);
    let server = TestServer::start_with(config).await;
    server.record_all(&[register_org("coop")]).await;
    let page = server
        .audit()
        .await
        .list_anomalies(v1::ListAnomaliesRequest::default())
        .await
        .expect("a listing")
        .into_inner();
    assert_eq!(page.current_to, 1);
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(90), server.stop())
        .await
        .expect("the stop ends")
        .expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the stop took {:?} of a 60 s grace period",
        started.elapsed()
    );
}

/// The binary turns transparent huge pages off for its process at start (`cli::main`): with
/// them, every fault after the allocator gave memory back zeroed a whole 2 MiB page, a third of
/// a first trace-back's CPU (README, "Huge pages").
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(str::trim);
    server.kill();
    assert_eq!(thp, Some("0"), "THP_enabled of the server's process");
}
