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
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinaryServer::spawn(&data).await;
    let mut client =
        lotline_proto::v1::event_service_client::EventServiceClient::connect(server.url())
            .await
            .unwrap();
    let mut events = vec![register_org("coop")];
    events.extend((0..500).map(|n| harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 1)));
    let batch =
        tokio::spawn(async move { client.record_batch(v1::RecordBatchRequest { events }).await });
    let answered = batch
        .await
        .unwrap()
        .expect("batch answered before shutdown");
    assert_eq!(answered.into_inner().outcomes.len(), 501);
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    let server = BinaryServer::spawn(&data).await;
    let mut provenance =
        lotline_proto::v1::provenance_service_client::ProvenanceServiceClient::connect(
            server.url(),
        )
        .await
        .unwrap();
    assert_eq!(all_events(&mut provenance).await.len(), 501);
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
