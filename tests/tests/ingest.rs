//! NATS JetStream intake, end to end: a real `nats-server -js` per test (own
//! port, own store dir), real lotline nodes (in-process, or the binary for
//! SIGKILL), a plain NATS client as the producer.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use lotline_proto::v1;
use lotline_server::{NatsSettings, ServeConfig};
use lotline_testkit::events::{event, harvest, register_org, transform};
use lotline_testkit::{BinaryServer, NatsServer, TestServer};

const WAIT: Duration = Duration::from_secs(60);

fn nats_config(data_dir: &Path, nats: &NatsServer, node: &str, window: Option<u64>) -> ServeConfig {
    let mut settings = NatsSettings::new(nats.url());
    settings.node_id = Some(node.to_string());
    if let Some(secs) = window {
        settings.duplicate_window = Duration::from_secs(secs);
    }
    let mut config = ServeConfig::new(data_dir);
    config.nats = Some(settings);
    config
}

async fn log_size(node_url: &str) -> u64 {
    checkpoint(node_url).await.tree_size
}

async fn checkpoint(node_url: &str) -> v1::Checkpoint {
    let channel = tonic::transport::Channel::from_shared(node_url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    v1::log_service_client::LogServiceClient::new(channel)
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .expect("checkpoint")
        .into_inner()
}

async fn wait_size(node_url: &str, size: u64) {
    eventually(
        &format!("{node_url} to hold {size} events"),
        WAIT,
        || async { (log_size(node_url).await == size).then_some(()) },
    )
    .await
}

fn content(origin: &v1::Origin) -> String {
    origin
        .content
        .as_ref()
        .map(|q| q.amount.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_answer_traces_and_grpc_writes_go_through_the_stream() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = TestServer::start_with(nats_config(dir.path(), &nats, "a", None)).await;
    let js = async_nats::jetstream::new(nats_client(&nats.url()).await);

    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    js_publish(&js, &Msg::event(&harvest("h1", "coop", "L1", 100))).await;
    js_publish(&js, &Msg::json(&harvest("h2", "coop", "L2", 300))).await;
    let t = transform("t1", "coop", &[("L1", 100), ("L2", 300)], &[("DRY", 150)]);
    js_publish(&js, &Msg::event(&t)).await;

    let mut provenance = node.provenance().await;
    let trace = eventually("the trace of DRY", WAIT, || {
        let mut p = provenance.clone();
        async move {
            let t = p
                .trace_back(v1::TraceBackRequest {
                    lot: "DRY".into(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (t.origins.len() == 2).then_some(t)
        }
    })
    .await;
    let mut contents: Vec<(String, String)> = trace
        .origins
        .iter()
        .map(|o| (o.lot.clone(), content(o)))
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        vec![("L1".into(), "100".into()), ("L2".into(), "300".into())]
    );

    // gRPC Record publishes to the stream and answers once applied here.
    let mut events = node.events().await;
    let answer = events
        .record(v1::RecordRequest {
            event: Some(harvest("h3", "coop", "L3", 50)),
        })
        .await
        .expect("record through NATS")
        .into_inner();
    assert!(
        matches!(
            answer.outcome.and_then(|o| o.result),
            Some(v1::outcome::Result::Accepted(v1::Accepted {
                sequence: 5,
                ..
            }))
        ),
        "the fifth event in the stream is the fifth in the log"
    );
    let lot = provenance
        .get_lot(v1::GetLotRequest {
            lot: "L3".into(),
            ..Default::default()
        })
        .await
        .expect("read your write")
        .into_inner();
    assert_eq!(lot.lot, "L3");
    let mut stream = js.get_stream("LOTLINE_EVENTS").await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 5);

    // A batch larger than the publisher's window of unresolved acks.
    let batch: Vec<v1::Event> = (0..5_000)
        .map(|i| harvest(&format!("b{i}"), "coop", &format!("B{i}"), 1 + i))
        .collect();
    let outcomes = events
        .record_batch(v1::RecordBatchRequest { events: batch })
        .await
        .expect("record batch through NATS")
        .into_inner()
        .outcomes;
    assert_eq!(outcomes.len(), 5_000);
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o.event_id, format!("b{i}"));
        assert!(
            matches!(o.result, Some(v1::outcome::Result::Accepted(v1::Accepted { sequence, .. })) if sequence == 6 + i as u64),
            "{o:?}"
        );
    }

    // Batches on one RecordStream go through the stream too, in the order sent.
    let streamed: Vec<v1::RecordBatchRequest> = (0..3)
        .map(|b| v1::RecordBatchRequest {
            events: (0..100)
                .map(|i| harvest(&format!("s{b}-{i}"), "coop", &format!("S{b}-{i}"), 1))
                .collect(),
        })
        .collect();
    let mut answers = events
        .record_stream(tokio_stream::iter(streamed))
        .await
        .expect("record stream through NATS")
        .into_inner();
    let mut next = 5_006;
    for b in 0..3 {
        let answer = answers.message().await.expect("answer").expect("a batch");
        for (i, o) in answer.outcomes.iter().enumerate() {
            assert_eq!(o.event_id, format!("s{b}-{i}"));
            assert!(
                matches!(o.result, Some(v1::outcome::Result::Accepted(v1::Accepted { sequence, .. })) if sequence == next),
                "{o:?}"
            );
            next += 1;
        }
    }
    assert!(answers.message().await.expect("the end").is_none());

    // Invalid input over gRPC is refused without reaching the stream.
    let mut bad = harvest("h4", "coop", "L4", 1);
    bad.event_time = "yesterday".into();
    let refused = events
        .record(v1::RecordRequest { event: Some(bad) })
        .await
        .expect_err("invalid");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(stream.info().await.expect("info").state.messages, 5_305);
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_stored_once_within_and_after_the_duplicate_window() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = TestServer::start_with(nats_config(dir.path(), &nats, "a", Some(1))).await;
    let js = async_nats::jetstream::new(nats_client(&nats.url()).await);
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    let h = harvest("h1", "coop", "L1", 100);
    let (first, dropped) = js_publish(&js, &Msg::event(&h)).await;
    assert!(!dropped);
    // Within the window JetStream itself drops the re-send.
    let (again, dropped) = js_publish(&js, &Msg::event(&h)).await;
    assert!(
        dropped && again == first,
        "JetStream dedups within its window"
    );
    // Long after the window (an offline co-op re-syncing) the stream takes it
    // again; lotline answers it as a duplicate and stores nothing new.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let replies = nats_client(&nats.url()).await;
    let mut outcomes = replies
        .subscribe("_INBOX.outcomes.h1")
        .await
        .expect("subscribe");
    let mut late = Msg::json(&h);
    late.headers
        .push(("Lotline-Reply-To", "_INBOX.outcomes.h1".into()));
    let (resent, dropped) = js_publish(&js, &late).await;
    assert!(
        !dropped && resent > first,
        "a new stream message after the window"
    );
    let reply = tokio::time::timeout(WAIT, outcomes.next())
        .await
        .expect("an outcome reply")
        .expect("reply");
    let outcome: v1::Outcome = serde_json::from_slice(&reply.payload).expect("outcome json");
    assert_eq!(outcome.event_id, "h1");
    assert!(
        matches!(
            outcome.result,
            Some(v1::outcome::Result::Duplicate(v1::Duplicate {
                sequence: 2
            }))
        ),
        "{outcome:?}"
    );
    // And over gRPC, which also goes through the stream.
    let answer = node
        .events()
        .await
        .record(v1::RecordRequest { event: Some(h) })
        .await
        .expect("record")
        .into_inner();
    assert!(matches!(
        answer.outcome.and_then(|o| o.result),
        Some(v1::outcome::Result::Duplicate(v1::Duplicate {
            sequence: 2
        }))
    ));
    // The same id with other content is a conflict, quarantined, whether the
    // stream drops it as a re-send or passes it on.
    let refused = node
        .events()
        .await
        .record(v1::RecordRequest {
            event: Some(harvest("h1", "coop", "OTHER", 100)),
        })
        .await
        .expect_err("conflict");
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    let mut provenance = node.provenance().await;
    let rejected = all_rejected(&mut provenance).await;
    assert!(
        rejected
            .iter()
            .any(|r| r.event_id == "h1" && r.kind == "conflict"),
        "{rejected:?}"
    );
    let all = all_events(&mut provenance).await;
    assert_eq!(all.len(), 2);
    assert!(id_counts(&all).values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_of_every_kind_are_quarantined_and_announced() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = TestServer::start_with(nats_config(dir.path(), &nats, "a", None)).await;
    let client = nats_client(&nats.url()).await;
    let mut announced = client
        .subscribe("lotline.rejected.>")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let js = async_nats::jetstream::new(client.clone());

    let good = |id: &str, lot: &str| harvest(id, "coop", lot, 10);
    let mut wrong_subject = Msg::event(&good("wrong-org", "X1"));
    wrong_subject.subject = "lotline.events.cocoa.other".into();
    let mut wrong_chain = Msg::event(&good("wrong-chain", "X2"));
    wrong_chain.subject = "lotline.events.coffee.coop".into();
    let mut short_subject = Msg::event(&good("short", "X3"));
    short_subject.subject = "lotline.events.coop".into();
    let mut wrong_id = Msg::event(&good("msg-id", "X4"));
    wrong_id.headers = vec![("Nats-Msg-Id", "another-id".into())];
    let mut negative = good("negative", "X5");
    if let Some(v1::event::Kind::Harvest(h)) = &mut negative.kind {
        h.quantity = lotline_testkit::events::kg("-5");
    }
    let garbage = Msg {
        subject: "lotline.events.cocoa.coop".into(),
        headers: vec![("Nats-Msg-Id", "coop.garbage".into())],
        payload: vec![0xff, 0xff, 0xff, 0x07, 0x01],
    };
    let not_json = Msg {
        subject: "lotline.events.cocoa.coop".into(),
        headers: vec![
            ("Nats-Msg-Id", "coop.not-json".into()),
            ("Content-Type", "application/json".into()),
        ],
        payload: b"{\"eventId\": \"not-json\", ".to_vec(),
    };
    let unregistered = Msg::event(&harvest("stranger", "nobody", "X6", 5));
    // Same id as a stored event, other content; without Nats-Msg-Id so that
    // the stream does not drop it first.
    let conflict = Msg::event(&good("g1", "OTHER-LOT")).without_msg_id();

    let plan: Vec<(Msg, bool)> = vec![
        (Msg::event(&register_org("coop")), true),
        (Msg::event(&good("g1", "L1")), true),
        (garbage, false),
        (Msg::event(&good("g2", "L2")), true),
        (not_json, false),
        (wrong_subject, false),
        (Msg::json(&good("g3", "L3")), true),
        (wrong_chain, false),
        (short_subject, false),
        (wrong_id, false),
        (Msg::event(&negative), false),
        (unregistered, false),
        (conflict, false),
        (Msg::event(&good("g4", "L4")), true),
    ];
    for (m, _) in &plan {
        js_publish(&js, m).await;
    }
    let bad = plan.iter().filter(|(_, ok)| !ok).count();
    let good_count = plan.len() - bad;

    let mut provenance = node.provenance().await;
    let rejected = eventually("every bad payload in the quarantine", WAIT, || {
        let mut p = provenance.clone();
        async move {
            let r = all_rejected(&mut p).await;
            (r.len() >= bad).then_some(r)
        }
    })
    .await;
    assert_eq!(rejected.len(), bad, "{rejected:#?}");
    for r in &rejected {
        assert_eq!(r.source, "nats");
        assert!(!r.reason.is_empty() && !r.payload.is_empty(), "{r:?}");
    }
    let reason_of = |id: &str| {
        rejected
            .iter()
            .find(|r| r.event_id == id)
            .map(|r| (r.kind.clone(), r.reason.clone()))
            .unwrap_or_else(|| panic!("{id} not quarantined: {rejected:#?}"))
    };
    assert!(reason_of("garbage").1.contains("protobuf"));
    assert!(reason_of("not-json").1.contains("JSON"));
    assert!(reason_of("wrong-org").1.contains("subject"));
    assert!(reason_of("wrong-chain").1.contains("chain"));
    assert!(reason_of("short").1.contains("subject"));
    assert!(reason_of("msg-id").1.contains("Nats-Msg-Id"));
    assert_eq!(reason_of("stranger").0, "unregistered_org");
    assert_eq!(reason_of("g1").0, "conflict");
    assert_eq!(reason_of("negative").0, "invalid");
    // The garbage keeps its original bytes.
    assert!(
        rejected
            .iter()
            .any(|r| r.payload == [0xff, 0xff, 0xff, 0x07, 0x01])
    );

    let stored = all_events(&mut provenance).await;
    let ids: BTreeSet<String> = id_counts(&stored).into_keys().collect();
    assert_eq!(stored.len(), good_count);
    assert_eq!(
        ids,
        ["reg-coop", "g1", "g2", "g3", "g4"]
            .map(String::from)
            .into()
    );
    // Each rejection is announced, naming the event and the reason.
    let mut heard = Vec::new();
    while heard.len() < bad {
        let m = tokio::time::timeout(WAIT, announced.next())
            .await
            .expect("an announcement")
            .expect("message");
        let body: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
        assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()));
        heard.push((
            m.subject.to_string(),
            body["eventId"].as_str().unwrap_or("").to_string(),
        ));
    }
    assert!(
        heard.contains(&("lotline.rejected.coop".into(), "garbage".into())),
        "{heard:?}"
    );
    assert!(
        heard.contains(&("lotline.rejected.nobody".into(), "stranger".into())),
        "{heard:?}"
    );
    // Told to the org whose subject it came on, not the org it claims.
    assert!(
        heard.contains(&("lotline.rejected.other".into(), "wrong-org".into())),
        "{heard:?}"
    );
    // Terminated, not redelivered: the consumer has nothing pending.
    let js_consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream("lotline-a", "LOTLINE_EVENTS")
        .await
        .expect("consumer");
    let mut js_consumer = js_consumer;
    let info = eventually("all acks in", WAIT, || {
        let mut c = js_consumer.clone();
        async move {
            let info = c.info().await.ok()?.clone();
            (info.num_ack_pending == 0).then_some(info)
        }
    })
    .await;
    assert_eq!(info.ack_floor.stream_sequence, plan.len() as u64);
    let _ = js_consumer.info().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_consuming_one_stream_hold_identical_logs() {
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = TestServer::start_with(nats_config(dir_a.path(), &nats, "a", None)).await;
    let b = TestServer::start_with(nats_config(dir_b.path(), &nats, "b", None)).await;
    let js = async_nats::jetstream::new(nats_client(&nats.url()).await);
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    // Writes reach both nodes through the stream, from NATS and from gRPC on
    // either node, interleaved.
    let mut ea = a.events().await;
    let mut eb = b.events().await;
    for i in 0..30 {
        let e = harvest(&format!("h{i}"), "coop", &format!("L{i}"), 10 + i);
        match i % 3 {
            0 => {
                js_publish(&js, &Msg::event(&e)).await;
            }
            1 => {
                ea.record(v1::RecordRequest { event: Some(e) })
                    .await
                    .expect("a");
            }
            _ => {
                eb.record(v1::RecordRequest { event: Some(e) })
                    .await
                    .expect("b");
            }
        }
    }
    wait_size(&a.url(), 31).await;
    wait_size(&b.url(), 31).await;
    let (ca, cb) = (checkpoint(&a.url()).await, checkpoint(&b.url()).await);
    assert_eq!(ca.tree_size, 31);
    assert_eq!(ca.root_hash, cb.root_hash, "same events in the same order");
    let (la, lb) = (
        all_events(&mut a.provenance().await).await,
        all_events(&mut b.provenance().await).await,
    );
    assert_eq!(la, lb, "same records, record times included");

    // A third node started later from an empty data dir catches up to the same
    // root: the stream is the durable record a node is rebuilt from.
    let dir_c = tempfile::tempdir().expect("c");
    let c = TestServer::start_with(nats_config(dir_c.path(), &nats, "c", None)).await;
    wait_size(&c.url(), 31).await;
    assert_eq!(checkpoint(&c.url()).await.root_hash, ca.root_hash);
}

/// A stream deleted and created again, which then grew past a node's position, is another
/// stream: the node refuses it (writes refused with the reason, health NOT_SERVING) instead of
/// resuming at its old position, and a node with an empty data dir follows the new stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_created_stream_is_recognised_and_not_resumed() {
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let js = async_nats::jetstream::new(nats_client(&nats.url()).await);
    let a = TestServer::start_with(nats_config(dir_a.path(), &nats, "a", None)).await;
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    for i in 0..2 {
        let e = harvest(&format!("old-{i}"), "coop", &format!("OLD-{i}"), 10);
        js_publish(&js, &Msg::event(&e)).await;
    }
    wait_size(&a.url(), 3).await;
    a.stop().await.expect("a stops");

    // The stream is deleted; a new node creates it again and it grows past a's position.
    js.delete_stream(lotline_ingest::STREAM)
        .await
        .expect("delete the stream");
    let b = TestServer::start_with(nats_config(dir_b.path(), &nats, "b", None)).await;
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    for i in 0..4 {
        let e = harvest(&format!("new-{i}"), "coop", &format!("NEW-{i}"), 20);
        js_publish(&js, &Msg::event(&e)).await;
    }
    wait_size(&b.url(), 5).await;

    let a = TestServer::start_unready(nats_config(dir_a.path(), &nats, "a", None)).await;
    let refusal = eventually("node a to refuse the new stream", WAIT, || async {
        let channel = tonic::transport::Channel::from_shared(a.url())
            .ok()?
            .connect()
            .await
            .ok()?;
        let refused = v1::event_service_client::EventServiceClient::new(channel)
            .record(v1::RecordRequest {
                event: Some(harvest("late", "coop", "LATE", 1)),
            })
            .await
            .err()?;
        refused
            .message()
            .contains("deleted and created again")
            .then(|| refused.message().to_string())
    })
    .await;
    assert!(refusal.contains("through sequence 3"), "{refusal}");
    // Node a still answers what it had, and took nothing of the new stream.
    assert_eq!(log_size(&a.url()).await, 3);
    let mut health = tonic_health::pb::health_client::HealthClient::new(a.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarting_mid_stream_loses_and_duplicates_nothing() {
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = TestServer::start_with(nats_config(dir.path(), &nats, "a", None)).await;
    let url = nats.url();
    let js = async_nats::jetstream::new(nats_client(&url).await);
    js_publish(&js, &Msg::event(&register_org("coop"))).await;
    let events: Vec<v1::Event> = (0..600)
        .map(|i| harvest(&format!("h{i}"), "coop", &format!("L{i}"), 5 + i))
        .collect();
    // A producer streams (retrying what the stream did not confirm, as it must)
    // while nats-server is killed and started again under it.
    let publisher = {
        let js = js.clone();
        let events = events.clone();
        tokio::spawn(async move {
            for e in &events {
                js_publish(&js, &Msg::event(e)).await;
            }
        })
    };
    eventually("the node to be consuming the stream", WAIT, || async {
        (log_size(&node.url()).await > 50).then_some(())
    })
    .await;
    nats.stop(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart();
    publisher.await.expect("publisher");
    wait_size(&node.url(), 601).await;
    lotline_testkit::wait_serving(&node.url(), WAIT).await;
    // gRPC writes work again.
    node.events()
        .await
        .record(v1::RecordRequest {
            event: Some(harvest("after", "coop", "LA", 1)),
        })
        .await
        .expect("record after the restart");
    let all = all_events(&mut node.provenance().await).await;
    assert_eq!(all.len(), 602);
    assert!(id_counts(&all).values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_nats_is_down() {
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = TestServer::start_with(nats_config(dir.path(), &nats, "a", None)).await;
    nats.stop(true);
    let channel = node.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    eventually("health NOT_SERVING", WAIT, || {
        let mut h = health.clone();
        async move {
            let s = h
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .status;
            (s == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32)
                .then_some(())
        }
    })
    .await;
    // Writes are refused with the reason; reads still work.
    let refused = node
        .events()
        .await
        .record(v1::RecordRequest {
            event: Some(register_org("coop")),
        })
        .await
        .expect_err("consumer down");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(refused.message().contains("NATS"), "{}", refused.message());
    all_events(&mut node.provenance().await).await;
    let _ = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    nats.restart();
    lotline_testkit::wait_serving(&node.url(), WAIT).await;
}

/// The outside view: a plain NATS client publishes thousands of events (some
/// malformed, some repeated after the duplicate window, out of order) while the
/// lotline binary is SIGKILLed and restarted; the log ends with each valid
/// event exactly once and every bad one quarantined once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_thousands_stores_each_event_once() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let url = nats.url();
    let args = [
        "--nats-url",
        url.as_str(),
        "--node-id",
        "chaos",
        "--nats-duplicate-window-secs",
        "1",
    ];
    let mut node = BinaryServer::spawn_with(dir.path(), "", &args).await;

    // Out of order: harvests of each round come after their transform.
    let mut valid = vec![register_org("coop")];
    for r in 0..250 {
        let lots: Vec<String> = (0..6).map(|f| format!("H{r}-{f}")).collect();
        let inputs: Vec<(&str, u64)> = lots.iter().map(|l| (l.as_str(), 100)).collect();
        valid.push(transform(
            &format!("t{r}"),
            "coop",
            &inputs,
            &[(&format!("D{r}"), 230)],
        ));
        for (f, lot) in lots.iter().enumerate() {
            valid.push(harvest(&format!("h{r}-{f}"), "coop", lot, 100));
        }
    }
    let mut plan: Vec<Msg> = Vec::new();
    let mut bad = 0usize;
    for (i, e) in valid.iter().enumerate() {
        plan.push(if i % 2 == 0 {
            Msg::event(e)
        } else {
            Msg::json(e)
        });
        if i % 17 == 5 {
            let mut m = Msg::event(&event(
                &format!("bad-{i}"),
                "coop",
                v1::event::Kind::Harvest(v1::Harvest::default()),
            ));
            m.headers = vec![("Nats-Msg-Id", format!("coop.bad-{i}"))];
            plan.push(m);
            bad += 1;
        }
        if i % 23 == 7 {
            plan.push(Msg {
                subject: "lotline.events.cocoa.coop".into(),
                headers: vec![("Nats-Msg-Id", format!("coop.junk-{i}"))],
                payload: format!("junk {i}").into_bytes(),
            });
            bad += 1;
        }
    }
    let total_valid = valid.len();
    let js = async_nats::jetstream::new(nats_client(&url).await);
    let chunks: Vec<Vec<Msg>> = plan
        .chunks(plan.len() / 4 + 1)
        .map(|c| c.to_vec())
        .collect();
    for (round, chunk) in chunks.iter().enumerate() {
        let publisher = {
            let js = js.clone();
            let chunk = chunk.clone();
            tokio::spawn(async move {
                for m in &chunk {
                    js_publish(&js, m).await;
                }
            })
        };
        // Kill lotline once it is applying this chunk, then start it again.
        let before = log_size(&node.url()).await;
        eventually("the node to apply some of the chunk", WAIT, || async {
            (log_size(&node.url()).await > before).then_some(())
        })
        .await;
        node.kill();
        publisher.await.expect("publisher");
        // Repeat a slice of earlier events after the duplicate window: new stream
        // messages, duplicates in the store.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        for e in valid.iter().skip(round * 40).take(25) {
            js_publish(&js, &Msg::event(e)).await;
        }
        node = BinaryServer::spawn_with(dir.path(), "", &args).await;
    }
    wait_size(&node.url(), total_valid as u64).await;
    let channel = tonic::transport::Channel::from_shared(node.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut provenance = v1::provenance_service_client::ProvenanceServiceClient::new(channel);
    let rejected = eventually("every bad message quarantined", WAIT, || {
        let mut p = provenance.clone();
        async move {
            let r = all_rejected(&mut p).await;
            (r.len() >= bad).then_some(r)
        }
    })
    .await;
    let stored = all_events(&mut provenance).await;
    assert_eq!(stored.len(), total_valid);
    let counts = id_counts(&stored);
    assert_eq!(counts.len(), total_valid);
    assert!(counts.values().all(|n| *n == 1));
    assert_eq!(rejected.len(), bad, "each bad message quarantined once");
    // The lineage holds up: every round's dried lot traces to its six harvests.
    let trace = provenance
        .trace_back(v1::TraceBackRequest {
            lot: "D249".into(),
            ..Default::default()
        })
        .await
        .expect("trace")
        .into_inner();
    assert_eq!(trace.origins.len(), 6);
    assert!(trace.origins.iter().all(|o| o.known));
    node.terminate(WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lotline_publish_reports_every_line_and_waits_for_outcomes() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let _node = TestServer::start_with(nats_config(dir.path(), &nats, "a", None)).await;
    let file = dir.path().join("events.jsonl");
    let good = [
        register_org("coop"),
        harvest("h1", "coop", "L1", 10),
        harvest("h2", "coop", "L2", 20),
    ];
    let mut text: String = good
        .iter()
        .map(|e| serde_json::to_string(e).expect("json") + "\n")
        .collect();
    text.push_str("this is not an event\n");
    let mut negative = harvest("neg", "coop", "L3", 1);
    if let Some(v1::event::Kind::Harvest(h)) = &mut negative.kind {
        h.quantity = lotline_testkit::events::kg("-1");
    }
    text.push_str(&(serde_json::to_string(&negative).expect("json") + "\n"));
    text.push_str("{\"eventId\": \"a\\nb\", \"org\": \"coop\", \"chain\": \"cocoa\"}\n");
    std::fs::write(&file, text).expect("write");
    let url = nats.url();
    let path = file.to_str().expect("path");
    let out = lotline(&[
        "publish",
        path,
        "--nats-url",
        &url,
        "--outcomes",
        "--timeout-secs",
        "60",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{o}\n{e}");
    assert!(o.contains("4 published (4 new in the stream"), "{o}");
    assert!(
        o.contains("3 accepted, 0 duplicate, 1 rejected, 0 without an outcome"),
        "{o}"
    );
    assert!(e.contains("line 4: not a lotline.v1.Event"), "{e}");
    assert!(e.contains("line 5: neg: rejected (invalid)"), "{e}");
    assert!(e.contains("line 6: eventId"), "{e}");
    // Again, within the duplicate window: the stream drops the re-sends itself.
    let again = lotline(&["publish", path, "--nats-url", &url]);
    assert!(
        stdout(&again).contains("4 published (0 new in the stream, 4 dropped"),
        "{}",
        stdout(&again)
    );
    // No NATS there: exit 2 with the reason.
    let nowhere = lotline(&["publish", path, "--nats-url", "nats://127.0.0.1:1"]);
    assert_eq!(nowhere.status.code(), Some(2), "{}", stderr(&nowhere));
}

#[test]
fn bench_ingest_prints_both_rates_and_their_ratio() {
    let nats = NatsServer::start();
    let url = nats.url();
    let out = lotline(&["bench", "ingest", "--nats-url", &url, "--events", "300"]);
    let o = stdout(&out);
    assert!(out.status.success(), "{o}\n{}", stderr(&out));
    for line in [
        "300 events",
        "raw JetStream publish",
        "end to end (publish → flushed)",
        "pre-filled stream (consume)",
        "ratio",
        "sled apply_batch",
        "sled keys per event",
    ] {
        assert!(o.contains(line), "missing {line:?} in:\n{o}");
    }
    // The bench cleans up the streams it made.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let names: Vec<String> = rt.block_on(async {
        let js = async_nats::jetstream::new(nats_client(&url).await);
        js.stream_names().map(|n| n.expect("name")).collect().await
    });
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn bench_scale_prints_a_row_per_shape_and_cleans_up() {
    let nats = NatsServer::start();
    let url = nats.url();
    let out = lotline(&[
        "bench",
        "scale",
        "--nats-url",
        &url,
        "--streams",
        "1,2",
        "--nodes",
        "1,2",
        "--events",
        "200",
    ]);
    let o = stdout(&out);
    assert!(out.status.success(), "{o}\n{}", stderr(&out));
    assert!(o.contains("200 events per stream"), "{o}");
    // One row per (streams, nodes per stream), each starting with the two counts; one stream
    // with one node is the reference, so its ratio is 1.00.
    let rows: Vec<Vec<&str>> = o
        .lines()
        .skip_while(|l| !l.starts_with("streams nodes/stream"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let shapes: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        shapes,
        [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")],
        "{o}"
    );
    assert_eq!(rows[0][6], "1.00", "{o}");
    // Every rate, and the catch-up time, is a positive number.
    for row in &rows {
        for column in [3, 4, 5, 9, 10] {
            let rate: f64 = row[column].parse().unwrap_or_else(|_| panic!("{row:?}"));
            assert!(rate > 0.0, "{row:?}");
        }
    }
    let refused = lotline(&["bench", "scale", "--nats-url", &url, "--streams", "0"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("at least 1"),
        "{}",
        stderr(&refused)
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let names: Vec<String> = rt.block_on(async {
        let js = async_nats::jetstream::new(nats_client(&url).await);
        js.stream_names().map(|n| n.expect("name")).collect().await
    });
    assert!(names.is_empty(), "{names:?}");
}

/// lotline's publisher (`lotline publish`, `lotline import --nats-url`) sends again what the
/// stream did not confirm, with the same message id: a NATS server killed and restarted in
/// the middle of a publish costs no event and doubles none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_sends_again_what_a_restarting_server_did_not_confirm() {
    use lotline_ingest::{NatsConfig, Outgoing, SUBJECT_ROOT, ensure_stream, publish_pipelined};
    const EVENTS: usize = 3_000;
    let mut nats = NatsServer::start();
    let url = nats.url();
    let client = nats_client(&url).await;
    let js = async_nats::jetstream::new(client.clone());
    ensure_stream(&js, &NatsConfig::new(&url, "publisher"))
        .await
        .expect("stream");
    let messages: Vec<Outgoing> = (0..EVENTS)
        .map(|n| {
            let e = harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 1);
            Outgoing::protobuf(SUBJECT_ROOT, &e).expect("message")
        })
        .collect();
    let (started_tx, started) = std::sync::mpsc::channel();
    let publisher = js.clone();
    let publishing = tokio::spawn(async move {
        let mut told = false;
        publish_pipelined(&publisher, messages, 64, |p| {
            if !told && p.stored >= 300 {
                told = true;
                let _ = started_tx.send(());
            }
        })
        .await
    });
    tokio::task::spawn_blocking(move || started.recv_timeout(WAIT))
        .await
        .expect("join")
        .expect("the publisher got going");
    nats.stop(true);
    // The server comes back once the publisher's connection has seen it go.
    eventually("the publisher to lose its server", WAIT, || async {
        (client.connection_state() != async_nats::connection::State::Connected).then_some(())
    })
    .await;
    nats.restart();
    let published = tokio::time::timeout(Duration::from_secs(120), publishing)
        .await
        .expect("the publisher finished")
        .expect("join");
    assert!(published.failed.is_empty(), "{:?}", published.failed);
    assert!(published.retried > 0, "nothing was sent again");
    // Every event is new to the stream: one sent again and then dropped as a re-send of its
    // own first send counts as stored (its outcome is owed to this publisher).
    assert_eq!(
        (published.stored, published.duplicates),
        (EVENTS as u64, 0),
        "{published:?}"
    );
    let js = async_nats::jetstream::new(nats_client(&url).await);
    let mut stream = js.get_stream(lotline_ingest::STREAM).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(
        info.state.messages, EVENTS as u64,
        "each event once in the stream"
    );
}
