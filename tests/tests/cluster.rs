//! lotline on a NATS JetStream cluster (issue 20): three real `nats-server`
//! processes routed on loopback, one three-replica stream, two lotline nodes (the
//! real binary). A generated history is published while one NATS server (the
//! stream's leader) and one lotline node are SIGKILLed and started again; losing
//! either loses no acknowledged event and stores none twice, and both nodes end
//! with the same log and the same signed root.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lotline_proto::v1;
use lotline_testkit::chains::{Rng, generate};
use lotline_testkit::events::harvest;
use lotline_testkit::{BinaryServer, NatsCluster, checkpoint, log_size};
use tokio::sync::oneshot;

/// The whole scenario, NATS and lotline start-ups included, ends within this.
const BUDGET: Duration = Duration::from_secs(420);
/// Longest wait for any one condition (a node catching up, the cluster healing).
const WAIT: Duration = Duration::from_secs(120);

/// Every line `node` logged since the last call that is a warning or an error.
fn warnings(node: &BinaryServer) -> Vec<String> {
    node.log
        .try_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect()
}

/// Waits (up to [`WAIT`]) until every node in `nodes` holds `size` events; on
/// timeout, fails with each node's size and its warnings.
async fn wait_all_hold(nodes: &[(&str, &BinaryServer)], size: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut sizes = Vec::new();
        for (name, node) in nodes {
            sizes.push((*name, log_size(&node.url()).await));
        }
        if sizes.iter().all(|(_, s)| *s == size) {
            return;
        }
        if Instant::now() >= deadline || sizes.iter().any(|(_, s)| *s > size) {
            let mut report = String::new();
            for (name, node) in nodes {
                report.push_str(&format!("--- node {name} warnings:\n"));
                for line in warnings(node) {
                    report.push_str(&line);
                    report.push('\n');
                }
            }
            panic!("nodes should each hold {size} events, they hold {sizes:?}\n{report}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the event `id` is in `url`'s log exactly once, by looking it up.
async fn stored_once(url: &str, id: &str) -> bool {
    let page = v1::provenance_service_client::ProvenanceServiceClient::new(channel(url).await)
        .list_events(v1::ListEventsRequest {
            event_id: id.to_string(),
            ..Default::default()
        })
        .await
        .expect("look an event up")
        .into_inner();
    page.events.len() == 1
        && page.events[0]
            .event
            .as_ref()
            .is_some_and(|e| e.event_id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_nats_server_and_a_node_loses_and_doubles_nothing() {
    // Built (if it must be) before the clock starts.
    lotline_testkit::lotline_bin();
    tokio::time::timeout(BUDGET, scenario())
        .await
        .expect("the cluster scenario should finish within its budget");
}

async fn scenario() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start().await;
    let urls = cluster.urls();
    eprintln!("NATS cluster {urls} formed in {:?}", started.elapsed());
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = cluster.spawn_node(dir_a.path(), "a").await;
    let b = cluster.spawn_node(dir_b.path(), "b").await;

    let js = async_nats::jetstream::new(cluster.client().await.expect("connect to the cluster"));
    let stream = js
        .get_stream("LOTLINE_EVENTS")
        .await
        .expect("lotline created its stream");
    let replicas = stream.cached_info().config.num_replicas;
    assert_eq!(replicas, 3, "the stream has a replica on every NATS server");

    // A generated history: registrations first, then harvests, transforms, ships,
    // corrections and the co-ops' hand-overs.
    let history = generate(0xC105_7E20, "", 500, 1500).in_order();
    let total = history.len();
    eprintln!("publishing {total} events");

    // The producer publishes one event at a time and waits for the stream's ack,
    // publishing again (same Nats-Msg-Id) what the stream did not confirm. It
    // holds at two points until the test lets it go, so that it is publishing
    // while node b, then the crashed server, start again.
    let holds = [2 * total / 3, 5 * total / 6];
    let (releases, gates): (Vec<_>, Vec<_>) = holds.iter().map(|_| oneshot::channel()).unzip();
    let mut releases = releases.into_iter();
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let js = js.clone();
        let history = history.clone();
        let published = published.clone();
        let mut gates: BTreeMap<usize, oneshot::Receiver<()>> =
            holds.into_iter().zip(gates).collect();
        tokio::spawn(async move {
            let mut dropped_as_resent = 0usize;
            for (i, e) in history.iter().enumerate() {
                if let Some(gate) = gates.remove(&i) {
                    gate.await.expect("the test lets the publisher go on");
                }
                let (_, duplicate) = js_publish(&js, &Msg::event(e)).await;
                dropped_as_resent += usize::from(duplicate);
                published.fetch_add(1, Ordering::SeqCst);
            }
            dropped_as_resent
        })
    };
    let progress = |at_least: usize| {
        let published = published.clone();
        async move { (published.load(Ordering::SeqCst) >= at_least).then_some(()) }
    };

    // A third of the way in (both nodes applying), the stream's leader and node b crash.
    eventually("a third of the history published", WAIT, || {
        progress(total / 3)
    })
    .await;
    eventually("node b to apply some of it", WAIT, || async {
        (log_size(&b.url()).await > 100).then_some(())
    })
    .await;
    let leader = NatsCluster::stream_leader(&js, "LOTLINE_EVENTS", WAIT).await;
    let down = cluster.index_of(&leader).expect("a server of the cluster");
    eprintln!(
        "{:?}: SIGKILL NATS {leader} (the stream's leader) and node b at {} published",
        started.elapsed(),
        published.load(Ordering::SeqCst)
    );
    tokio::task::block_in_place(|| cluster.stop(down, true));
    let b_warnings = warnings(&b);
    tokio::task::block_in_place(|| b.kill());

    // Node a keeps writing and reading through the two servers left. It may refuse
    // writes (UNAVAILABLE, with the reason) while its consumer moves to the new
    // stream leader; the write must go through once it has.
    let outage = harvest("outage-1", "coop-a", "OUTAGE-LOT", 42);
    let killed = Instant::now();
    let refusals = std::sync::Mutex::new(Vec::new());
    let outcome = eventually("node a to record over gRPC during the outage", WAIT, || {
        let event = outage.clone();
        let url = a.url();
        let refusals = &refusals;
        async move {
            let answer = v1::event_service_client::EventServiceClient::new(channel(&url).await)
                .record(v1::RecordRequest { event: Some(event) })
                .await;
            match answer {
                Ok(answer) => Some(answer.into_inner()),
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
                    refusals
                        .lock()
                        .expect("refusals")
                        .push(status.message().to_string());
                    None
                }
            }
        }
    })
    .await
    .outcome
    .expect("an outcome");
    assert!(
        matches!(outcome.result, Some(v1::outcome::Result::Accepted(_))),
        "{outcome:?}"
    );
    let refusals = refusals.into_inner().expect("refusals");
    eprintln!(
        "{:?}: node a recorded outage-1 {:?} after the crash ({} refusals before{})",
        started.elapsed(),
        killed.elapsed(),
        refusals.len(),
        refusals
            .iter()
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|r| format!("; {r}"))
            .collect::<String>()
    );
    assert!(
        stored_once(&a.url(), "outage-1").await,
        "node a reads back what it recorded while a NATS server and node b are down"
    );
    let mut provenance =
        v1::provenance_service_client::ProvenanceServiceClient::new(channel(&a.url()).await);
    let lot = provenance
        .get_lot(v1::GetLotRequest {
            lot: "OUTAGE-LOT".into(),
            ..Default::default()
        })
        .await
        .expect("node a answers lot queries during the outage")
        .into_inner();
    assert!(lot.known, "node a knows the lot it recorded: {lot:?}");

    // Publishing goes on with one server down; then node b and the server come
    // back, each while events are being published.
    let mut release = |published_at: usize| {
        let release = releases.next().expect("a hold");
        async move {
            eventually("the publisher to reach its hold", WAIT, || {
                progress(published_at)
            })
            .await;
            release.send(()).expect("the publisher waits");
        }
    };
    release(holds[0]).await;
    eprintln!(
        "{:?}: restarting node b (NATS {leader} still down) at {} published",
        started.elapsed(),
        published.load(Ordering::SeqCst)
    );
    let b = cluster.spawn_node(dir_b.path(), "b").await;
    release(holds[1]).await;
    eprintln!(
        "{:?}: node b serving; restarting NATS {leader} at {} published",
        started.elapsed(),
        published.load(Ordering::SeqCst)
    );
    tokio::task::block_in_place(|| cluster.restart(down));
    eprintln!(
        "{:?}: NATS {leader} restarted with its store at {} published",
        started.elapsed(),
        published.load(Ordering::SeqCst)
    );
    cluster.wait_ready(WAIT).await;

    let resent = publisher.await.expect("the publisher");
    eprintln!(
        "{:?}: all {total} published ({resent} re-sends dropped by the stream as duplicates)",
        started.elapsed()
    );

    // Both nodes apply everything: the history and the event recorded during the outage.
    let expected: BTreeSet<String> = history
        .iter()
        .map(|e| e.event_id.clone())
        .chain(["outage-1".to_string()])
        .collect();
    assert_eq!(expected.len(), total + 1, "the history has distinct ids");
    wait_all_hold(&[("a", &a), ("b", &b)], expected.len() as u64).await;
    eprintln!("{:?}: both nodes hold every event", started.elapsed());

    let mut logs = BTreeMap::new();
    for (name, node) in [("a", &a), ("b", &b)] {
        let stored = all_events(
            &mut v1::provenance_service_client::ProvenanceServiceClient::new(
                channel(&node.url()).await,
            ),
        )
        .await;
        let counts = id_counts(&stored);
        let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            doubled.is_empty(),
            "node {name} stored events twice: {doubled:?}"
        );
        let ids: BTreeSet<String> = counts.into_keys().collect();
        let missing: Vec<_> = expected.difference(&ids).take(10).collect();
        let extra: Vec<_> = ids.difference(&expected).take(10).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "node {name}: missing {missing:?}, unexpected {extra:?}"
        );
        // Looked up one by one as well, for a sample.
        let mut rng = Rng::new(20);
        for _ in 0..40 {
            let id = &history[rng.below(total as u64) as usize].event_id;
            assert!(stored_once(&node.url(), id).await, "node {name}: {id}");
        }
        logs.insert(name, stored);
    }
    assert!(
        logs["a"] == logs["b"],
        "both nodes hold the same records in the same order, record times included"
    );

    // The same signed root on both, each signed with the node's own key.
    let (ca, cb) = (
        checkpoint(&a.url()).await.expect("a's checkpoint"),
        checkpoint(&b.url()).await.expect("b's checkpoint"),
    );
    assert_eq!(ca.tree_size, expected.len() as u64);
    assert_eq!(cb.tree_size, ca.tree_size);
    assert_eq!(ca.root_hash, cb.root_hash, "both nodes reach the same root");
    check_note_signature(&ca.note, &ca.verifier_key);
    check_note_signature(&cb.note, &cb.verifier_key);

    // Every stream replica, the restarted server's included, is current again.
    eventually("every stream replica to be current", WAIT, || async {
        let stream = js.get_stream("LOTLINE_EVENTS").await.ok()?;
        let cluster = stream.get_info().await.ok()?.cluster?;
        (cluster.leader.is_some()
            && cluster.replicas.len() == 2
            && cluster.replicas.iter().all(|r| r.current && !r.offline))
        .then_some(())
    })
    .await;

    if !b_warnings.is_empty() {
        eprintln!(
            "node b warned before it was killed:\n{}",
            b_warnings.join("\n")
        );
    }
    for (name, node) in [("a", &a), ("b", &b)] {
        let said = warnings(node);
        if !said.is_empty() {
            eprintln!("node {name} warnings:\n{}", said.join("\n"));
        }
    }
    eprintln!("{:?}: done", started.elapsed());
    a.terminate(WAIT);
    b.terminate(WAIT);
}
