//! EPCIS 2.0 interoperability as a user drives it: `lotline import` over gRPC and NATS,
//! `lotline export`, the round trip, GS1 identifiers in both forms, the reference event hashes,
//! and documents with errors of each kind (fixtures in tests/fixtures/epcis, hashes from GS1's
//! reference implementation; see regenerate.sh there).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{all_events, lotline, stderr, stdout};
use lotline_epcis::names::{EXT_EVENT, EXT_HASH};
use lotline_proto::v1;
use lotline_server::sample::sample_events;
use lotline_server::{NatsSettings, ServeConfig};
use lotline_testkit::events::register_org;
use lotline_testkit::{NatsServer, TestServer};
use serde_json::Value;

const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/epcis")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `lotline` off the async runtime (the server under test runs on it).
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lotline(&args)
    })
    .await
    .expect("lotline thread")
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The summary of an import that went through: exit 0, nothing rejected, nothing pending.
fn clean_summary(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(out),
        stderr(out)
    );
    let report = summary(out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert_eq!(report["pending"], 0);
    report
}

fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON summary ({e}): {}\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

async fn import(server: &str, file: &Path, extra: &[&str]) -> Output {
    let mut a = args(&["import", "--json", "--server", server]);
    a.push(file.display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    run(a).await
}

/// The reference hashes of a fixture, one per event (joined records count one each).
fn reference_hashes(name: &str) -> BTreeSet<String> {
    std::fs::read_to_string(fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The EPCIS hashes stored with imported events, by event id.
fn stored_hashes(events: &[v1::StoredEvent]) -> BTreeMap<String, String> {
    events
        .iter()
        .filter_map(|s| s.event.as_ref())
        .filter(|e| e.extensions.contains_key(EXT_EVENT))
        .filter_map(|e| {
            e.extensions
                .get(EXT_HASH)
                .map(|h| (e.event_id.clone(), h.clone()))
        })
        .collect()
}

async fn trace(server: &TestServer, lot: &str) -> v1::TraceBackResponse {
    server
        .provenance()
        .await
        .trace_back(v1::TraceBackRequest {
            lot: lot.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("trace {lot}: {s}"))
        .into_inner()
}

async fn trace_origins(server: &TestServer, lot: &str) -> BTreeSet<String> {
    trace(server, lot)
        .await
        .origins
        .into_iter()
        .map(|o| o.lot)
        .collect()
}

async fn descendants(server: &TestServer, lot: &str) -> BTreeSet<String> {
    server
        .provenance()
        .await
        .trace_forward(v1::TraceForwardRequest {
            lot: lot.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("recall {lot}: {s}"))
        .into_inner()
        .descendants
        .into_iter()
        .map(|d| d.lot)
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks every lot of a fixture's expected answers: origins and downstream lots.
async fn check_ground_truth(server: &TestServer, expected: &Value) {
    let lots = expected["lots"].as_object().expect("expected lots");
    assert!(!lots.is_empty());
    for (lot, truth) in lots {
        assert_eq!(
            trace_origins(server, lot).await,
            strings(&truth["origins"]),
            "origins of {lot}"
        );
        assert_eq!(
            descendants(server, lot).await,
            strings(&truth["into"]),
            "lots made from {lot}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_imports_with_the_reference_hashes_and_answers_traces() {
    let server = TestServer::start().await;
    let url = server.url();
    let out = import(&url, &fixture("cocoa_chain.jsonld"), &[]).await;
    let report = clean_summary(&out);
    let accepted = report["accepted"].as_u64().unwrap();

    // Every imported event carries the hash GS1's reference implementation computes.
    let events = all_events(&mut server.provenance().await).await;
    assert_eq!(events.len() as u64, accepted);
    let stored = stored_hashes(&events);
    let reference = reference_hashes("cocoa_chain.hashes");
    let mut seen = BTreeSet::new();
    for hash in stored.values() {
        for h in hash.split(' ') {
            assert!(reference.contains(h), "{h} is not a reference hash");
            seen.insert(h.to_string());
        }
    }
    assert_eq!(seen, reference, "every reference hash is stored");
    // An event without an eventID takes its hash as its id.
    assert!(stored.iter().any(|(id, hash)| id == hash));

    check_ground_truth(&server, &read_json(&fixture("cocoa_chain.expected.json"))).await;

    // Either form of a lot finds it: the URN the document used, and a Digital Link on any
    // domain.
    let expected = read_json(&fixture("cocoa_chain.expected.json"));
    let lot = expected["lots"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let elsewhere = lot.replace("https://id.gs1.org/", "https://brand.example/dl/");
    assert_eq!(
        trace_origins(&server, &elsewhere).await,
        trace_origins(&server, &lot).await
    );
    let text = std::fs::read_to_string(fixture("cocoa_chain.jsonld")).unwrap();
    let urn_at = text
        .find("urn:epc:class:lgtin:")
        .expect("the fixture uses an LGTIN URN");
    let urn: String = text[urn_at..].chars().take_while(|c| *c != '"').collect();
    let shown = run(args(&["lot", &urn, "--server", &url, "--json"])).await;
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert!(
        shown["lot"]
            .as_str()
            .unwrap()
            .starts_with("https://id.gs1.org/01/"),
        "{shown}"
    );

    // A wrong check digit in a query is an argument error naming it.
    let bad = lot.replacen("/01/", "/01/9", 1);
    let wrong = run(args(&["lot", &bad, "--server", &url])).await;
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));

    // `lotline events` shows the hashes.
    let listed = run(args(&["events", "--all", "--server", &url])).await;
    assert_eq!(listed.status.code(), Some(0));
    assert!(stdout(&listed).contains("EPCIS EVENT HASH"));
    assert!(stdout(&listed).contains(reference.iter().next().unwrap()));

    // Importing the same document again records nothing new.
    let again = import(&url, &fixture("cocoa_chain.jsonld"), &[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again = summary(&again);
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicate"].as_u64(), Some(accepted));
}

/// What a valid exported document must have (EPCIS 2.0 JSON schema's required members).
fn check_document_shape(doc: &Value) {
    assert_eq!(doc["type"], "EPCISDocument");
    assert_eq!(doc["schemaVersion"], "2.0");
    assert!(doc["creationDate"].is_string());
    let context = doc["@context"].as_array().expect("list-form @context");
    assert!(context.iter().any(|c| c == EPCIS_CONTEXT));
    let events = doc["epcisBody"]["eventList"].as_array().expect("eventList");
    for e in events {
        let kind = e["type"].as_str().expect("event type");
        assert!(e["eventTime"].is_string(), "{e}");
        assert!(e["eventTimeZoneOffset"].is_string(), "{e}");
        match kind {
            "ObjectEvent" | "AggregationEvent" | "TransactionEvent" | "AssociationEvent" => {
                assert!(
                    matches!(e["action"].as_str(), Some("ADD" | "OBSERVE" | "DELETE")),
                    "{e}"
                );
            }
            "TransformationEvent" => assert!(e.get("action").is_none(), "{e}"),
            other => panic!("unknown event type {other}"),
        }
        if kind == "TransactionEvent" {
            assert!(e["bizTransactionList"].is_array(), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_export_import_keeps_every_hash_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestServer::start().await;
    let out = import(&first.url(), &fixture("cocoa_chain.jsonld"), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let exported = dir.path().join("export.jsonld");
    let out = run(args(&[
        "export",
        "--server",
        &first.url(),
        "--out",
        exported.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = read_json(&exported);
    check_document_shape(&doc);

    let second = TestServer::start().await;
    let out = import(&second.url(), &exported, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);

    let a = stored_hashes(&all_events(&mut first.provenance().await).await);
    let b = stored_hashes(&all_events(&mut second.provenance().await).await);
    assert!(!a.is_empty());
    assert_eq!(
        a, b,
        "every event keeps its id and hash across the round trip"
    );
    check_ground_truth(&second, &read_json(&fixture("cocoa_chain.expected.json"))).await;

    // Exporting the second store gives the same events again.
    let again = dir.path().join("again.jsonld");
    let out = run(args(&[
        "export",
        "--server",
        &second.url(),
        "--out",
        again.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read_json(&again)["epcisBody"]["eventList"],
        doc["epcisBody"]["eventList"]
    );

    // One lot's history: its events and those upstream.
    let expected = read_json(&fixture("cocoa_chain.expected.json"));
    let (lot, truth) = expected["lots"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| !strings(&t["into"]).is_empty() && !strings(&t["origins"]).is_empty())
        .map(|(l, t)| (l.clone(), t.clone()))
        .expect("a lot in the middle of the chain");
    let partial_file = dir.path().join("lot.jsonld");
    let partial = partial_file.clone();
    let out = run(args(&[
        "export",
        "--server",
        &first.url(),
        "--lot",
        &lot,
        "--out",
        partial.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let partial = read_json(&partial);
    check_document_shape(&partial);
    let n = partial["epcisBody"]["eventList"].as_array().unwrap().len();
    assert!(n > 0 && n < doc["epcisBody"]["eventList"].as_array().unwrap().len());
    let third = TestServer::start().await;
    let out = import(&third.url(), &partial_file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        trace_origins(&third, &lot).await,
        strings(&truth["origins"])
    );
    // The lot's own events include the one that consumed it; nothing further downstream.
    let below = descendants(&third, &lot).await;
    assert!(below.is_subset(&strings(&truth["into"])), "{below:?}");
    assert!(below.len() < strings(&truth["into"]).len() || below.len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_events_export_as_their_epcis_events_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let native = TestServer::start().await;
    let outcomes = native
        .events()
        .await
        .record_batch(v1::RecordBatchRequest {
            events: sample_events(),
        })
        .await
        .unwrap()
        .into_inner()
        .outcomes;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, Some(v1::outcome::Result::Accepted(_))))
    );
    let exported = dir.path().join("native.jsonld");
    let out = run(args(&[
        "export",
        "--server",
        &native.url(),
        "--out",
        exported.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = read_json(&exported);
    check_document_shape(&doc);
    // A harvest is a commissioning ObjectEvent with its lot in quantityList.
    let harvest = doc["epcisBody"]["eventList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["bizStep"] == "commissioning")
        .expect("a harvest");
    assert_eq!(harvest["type"], "ObjectEvent");
    assert_eq!(harvest["action"], "ADD");
    assert!(harvest["quantityList"].is_array());

    let back = TestServer::start().await;
    let out = import(&back.url(), &exported, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    // Every lot event comes back under its id, as the same kind, and traces agree.
    let before = all_events(&mut native.provenance().await).await;
    let after: BTreeMap<String, v1::Event> = all_events(&mut back.provenance().await)
        .await
        .into_iter()
        .filter_map(|s| s.event)
        .map(|e| (e.event_id.clone(), e))
        .collect();
    let mut lots = BTreeSet::new();
    for e in before.iter().filter_map(|s| s.event.as_ref()) {
        use v1::event::Kind as K;
        match &e.kind {
            // Master data comes back as master data; a co-op's membership confirmation has no
            // EPCIS form (docs/epcis.md) and stays out of the export.
            Some(
                K::RegisterOrg(_)
                | K::RegisterSite(_)
                | K::RegisterPlot(_)
                | K::Certify(_)
                | K::ConfirmMember(_),
            ) => {}
            Some(kind) => {
                let twin = after
                    .get(&e.event_id)
                    .unwrap_or_else(|| panic!("{} did not come back", e.event_id));
                assert_eq!(
                    std::mem::discriminant(kind),
                    std::mem::discriminant(twin.kind.as_ref().unwrap()),
                    "{}",
                    e.event_id
                );
                assert_eq!(twin.org, e.org);
                assert_eq!(twin.event_time, e.event_time);
                assert_eq!(twin.kind.as_ref(), Some(kind), "{}", e.event_id);
                if let K::Harvest(h) = kind {
                    lots.insert(h.lot.clone());
                }
                if let K::Transform(t) = kind {
                    lots.extend(t.outputs.iter().map(|o| o.lot.clone()));
                }
            }
            None => {}
        }
    }
    assert!(!lots.is_empty());
    for lot in lots {
        assert_eq!(
            trace_origins(&back, &lot).await,
            trace_origins(&native, &lot).await,
            "{lot}"
        );
    }
}

/// The event indices a rejection's source names ("event #3", "events #3, #7").
fn indices(source: &str) -> Vec<String> {
    source
        .split('#')
        .skip(1)
        .map(|s| s.chars().take_while(char::is_ascii_digit).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_event_is_rejected_with_its_index_and_reason() {
    let server = TestServer::start().await;
    let out = import(&server.url(), &fixture("errors.jsonld"), &[]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report = summary(&out);
    let expected = read_json(&fixture("errors.expected.json"));
    let rejections = report["rejections"].as_array().unwrap();
    for (index, word) in expected.as_object().unwrap() {
        if index == "valid" {
            continue;
        }
        let source = format!("event #{index}");
        let found = rejections
            .iter()
            .find(|r| {
                r["source"]
                    .as_str()
                    .is_some_and(|s| indices(s).contains(index))
            })
            .unwrap_or_else(|| panic!("{source} was not rejected: {rejections:?}"));
        let reason = found["reason"].as_str().unwrap().to_lowercase();
        let word = word.as_str().unwrap().to_lowercase();
        assert!(
            reason.contains(&word),
            "{source}: {reason:?} lacks {word:?}"
        );
    }
    let bad = expected.as_object().unwrap().len() - 1;
    assert_eq!(
        report["rejected"].as_u64(),
        Some(bad as u64),
        "{rejections:?}"
    );
    let valid = expected["valid"].as_array().unwrap().len() as u64;
    assert!(report["accepted"].as_u64().unwrap() >= valid);
    // Nothing of the bad events reached the log; the good ones did.
    let events = all_events(&mut server.provenance().await).await;
    assert_eq!(events.len() as u64, report["accepted"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_document_without_master_data_needs_an_org() {
    let server = TestServer::start().await;
    server
        .events()
        .await
        .record(v1::RecordRequest {
            event: Some(register_org("importer")),
        })
        .await
        .unwrap();
    let file = fixture("query_document.jsonld");
    let without = import(&server.url(), &file, &["--chain", "coffee"]).await;
    assert_eq!(without.status.code(), Some(1), "{}", stderr(&without));
    let report = summary(&without);
    assert!(
        report["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("org"),
        "{report}"
    );
    let with = import(
        &server.url(),
        &file,
        &["--org", "importer", "--chain", "coffee"],
    )
    .await;
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&with),
        stderr(&with)
    );
    let report = summary(&with);
    assert_eq!(report["accepted"], 3);
    let stored = stored_hashes(&all_events(&mut server.provenance().await).await);
    let reference = reference_hashes("query_document.hashes");
    assert_eq!(stored.values().cloned().collect::<BTreeSet<_>>(), reference);

    // A document that is not EPCIS is refused with a reason, and nothing is recorded.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, r#"{"type": "Invoice", "lines": []}"#).unwrap();
    let out = import(&server.url(), &junk, &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("EPCIS"), "{}", stderr(&out));
    let truncated = dir.path().join("truncated.jsonld");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let out = import(&server.url(), &truncated, &["--org", "importer"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_imports_through_the_nats_stream() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.nats = Some(NatsSettings::new(nats.url()));
    let node = TestServer::start_with(config).await;
    // The importer asks a lotline server what earlier imports registered: without one it says
    // so, and publishes nothing.
    let out = run(args(&[
        "import",
        "--json",
        "--nats-url",
        &nats.url(),
        "--server",
        "http://127.0.0.1:1",
        fixture("cocoa_chain.jsonld").to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    assert!(all_events(&mut node.provenance().await).await.is_empty());
    let out = run(args(&[
        "import",
        "--json",
        "--nats-url",
        &nats.url(),
        "--server",
        &node.url(),
        fixture("cocoa_chain.jsonld").to_str().unwrap(),
    ]))
    .await;
    let report = clean_summary(&out);
    let events = all_events(&mut node.provenance().await).await;
    assert_eq!(events.len() as u64, report["accepted"].as_u64().unwrap());
    let reference = reference_hashes("cocoa_chain.hashes");
    let stored: BTreeSet<String> = stored_hashes(&events)
        .values()
        .flat_map(|h| h.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert_eq!(stored, reference);
    check_ground_truth(&node, &read_json(&fixture("cocoa_chain.expected.json"))).await;
}

/// Users of the NATS server in [`an_import_asks_a_node_for_the_outcomes_it_did_not_hear`]: the
/// node may answer requests (`allow_responses`) but publish to no inbox, so not one of its
/// outcome replies (`Lotline-Reply-To`) reaches the importer, as if each were sent while the
/// importer's connection was down.
const NODE_WITHOUT_REPLIES: &str = r#"
authorization {
  users: [
    {
      user: node, password: node-secret
      permissions: {
        publish: { allow: ["$JS.API.>", "$JS.ACK.>", "lotline.rejected.>", "lotline.relay.>"] }
        subscribe: { allow: ["_INBOX.>", "lotline.outcomes.*"] }
        allow_responses: true
      }
    }
    {
      user: importer, password: importer-secret
      permissions: {
        publish: { allow: ["lotline.events.>", "lotline.outcomes.>"] }
        subscribe: { allow: ["_INBOX.>"] }
      }
    }
  ]
}
"#;

/// A NATS server with [`NODE_WITHOUT_REPLIES`] and a node on it (data dir in `dir`); returns the
/// server, the importer's URL and the node.
async fn node_without_replies(dir: &Path) -> (NatsServer, String, TestServer) {
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, NODE_WITHOUT_REPLIES).unwrap();
    let nats = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
    let url =
        |user: &str, password: &str| format!("nats://{user}:{password}@127.0.0.1:{}", nats.port());
    let mut config = ServeConfig::new(dir.join("data"));
    config.nats = Some(NatsSettings::new(url("node", "node-secret")));
    let node = TestServer::start_with(config).await;
    let importer = url("importer", "importer-secret");
    (nats, importer, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_asks_a_node_for_the_outcomes_it_did_not_hear() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, importer_url, node) = node_without_replies(dir.path()).await;
    let import = || {
        run(args(&[
            "import",
            "--json",
            "--nats-url",
            &importer_url,
            "--server",
            &node.url(),
            fixture("cocoa_chain.jsonld").to_str().unwrap(),
        ]))
    };
    let out = import().await;
    let report = clean_summary(&out);
    let events = all_events(&mut node.provenance().await).await;
    let accepted = report["accepted"].as_u64().unwrap();
    assert!(accepted > 0);
    assert_eq!(events.len() as u64, accepted);
    // Every outcome came from asking the node: none of its replies could come.
    assert_eq!(report["fetched"].as_u64(), Some(accepted), "{report}");

    // Imported again: the stream drops every re-send within its window, and lotline owes no
    // outcome for them, so there is nothing to ask about.
    let again = import().await;
    let report = summary(&again);
    assert_eq!(report["duplicate"].as_u64(), Some(accepted), "{report}");
    assert_eq!(report["fetched"], 0, "{report}");
    assert_eq!(report["pending"], 0, "{report}");
}

/// `lotline publish --outcomes` asks a node too, as the importer does: on the same server, where
/// no outcome reply can reach it, every outcome, a rejection's included, comes from asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_asks_a_node_for_the_outcomes_it_did_not_hear() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, importer_url, node) = node_without_replies(dir.path()).await;
    let mut negative = lotline_testkit::events::harvest("neg", "coop", "L3", 1);
    if let Some(v1::event::Kind::Harvest(h)) = &mut negative.kind {
        h.quantity = lotline_testkit::events::kg("-1");
    }
    let file = dir.path().join("events.jsonl");
    common::write_jsonl(
        &file,
        &[
            register_org("coop"),
            lotline_testkit::events::harvest("h1", "coop", "L1", 10),
            negative,
        ],
    );
    let out = lotline(&[
        "publish",
        file.to_str().unwrap(),
        "--nats-url",
        &importer_url,
        "--outcomes",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{o}\n{e}");
    assert!(
        o.contains(
            "2 accepted, 0 duplicate, 1 rejected, 0 without an outcome within 60 s (3 outcomes asked of a node"
        ),
        "{o}\n{e}"
    );
    assert!(
        e.contains("line 3: neg: rejected (rejected): not in the log of node"),
        "{e}"
    );
    assert_eq!(all_events(&mut node.provenance().await).await.len(), 2);
}

/// A server on a data dir in `dir`, with the generated chains' own yields as its rules file, as a
/// user would load them.
async fn serve_with_chain_rules(dir: &Path) -> TestServer {
    let rules =
        lotline_domain::audit::rules::Rules::from_toml(&lotline_testkit::epcis::rules_toml())
            .expect("the generator's rules file");
    let mut config = ServeConfig::new(dir.join("data"));
    config.rules = std::sync::Arc::new(rules);
    TestServer::start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_supply_chain_answers_as_its_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("generated.jsonld");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let truth = lotline_testkit::epcis::write_chain_document(out, 5, 20_000).unwrap();
    let server = serve_with_chain_rules(dir.path()).await;
    let started = std::time::Instant::now();
    let out = import(&server.url(), &file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert!(started.elapsed() < Duration::from_secs(300));
    // The co-ops confirm their member farms, as they would with `lotline post`.
    server
        .record_all(&lotline_testkit::epcis::member_confirmations(20_000))
        .await;
    for (lot, t) in truth.lots.iter().take(60) {
        assert_eq!(
            trace_origins(&server, lot).await,
            t.origins,
            "origins of {lot}"
        );
        assert_eq!(
            descendants(&server, lot).await,
            t.into,
            "lots made from {lot}"
        );
    }
    // A clean history (every party certified for what it trades, its yields in the rules
    // file, plots written as a JSON writer writes six decimals, trailing zeros dropped) has no
    // anomaly: each one listed is a false alarm. The issue allows one per 2 000 events; the
    // goal, and what this history gets, is none.
    assert_no_anomalies(&server, truth.events).await;
}

/// A deep history: brands blend what they receive three times over and pack it, so each
/// finished lot is eight transformations from its harvests and holds hundreds of them. Its
/// trace-back names every harvest lot the generator put into it, each with its registered plot,
/// a recall from one of those harvests reaches it, and the history lists no anomaly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_generated_history_traces_each_finished_lot_to_every_harvest() {
    const EVENTS: usize = 16_000;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deep.jsonld");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let truth = lotline_testkit::epcis::write_deep_chain_document(out, 7, EVENTS).unwrap();
    assert!(
        !truth.finished.is_empty(),
        "no finished lot in {EVENTS} events"
    );
    let server = serve_with_chain_rules(dir.path()).await;
    import_all(&server, None, &file).await;
    server
        .record_all(&lotline_testkit::epcis::member_confirmations(EVENTS))
        .await;
    for (lot, t) in &truth.finished {
        assert!(t.origins.len() >= 100, "{lot}: {} origins", t.origins.len());
        let answer = trace(&server, lot).await;
        assert!(answer.partial.is_empty(), "{lot}: {}", answer.partial);
        let origins: BTreeSet<String> = answer.origins.iter().map(|o| o.lot.clone()).collect();
        assert_eq!(origins, t.origins, "origins of {lot}");
        assert!(
            answer
                .origins
                .iter()
                .all(|o| o.known && o.plot_info.is_some()),
            "{lot}: an origin without its plot"
        );
        let shares: f64 = answer
            .origins
            .iter()
            .map(|o| o.share.parse::<f64>().unwrap())
            .sum();
        assert!(
            (shares - 1.0).abs() < 1e-6,
            "{lot}: shares add up to {shares}"
        );
        let harvest = t.origins.iter().next().unwrap();
        assert!(
            descendants(&server, harvest).await.contains(lot),
            "a recall of {harvest} misses {lot}"
        );
    }
    assert_no_anomalies(&server, truth.events).await;
}

/// Lists the server's anomalies and fails, with one example of each kind, if there is any.
async fn assert_no_anomalies(server: &TestServer, events: usize) {
    let listing =
        lotline_proto::v1::audit_service_client::AuditServiceClient::new(server.channel().await)
            .list_anomalies(lotline_proto::v1::ListAnomaliesRequest::default())
            .await
            .unwrap()
            .into_inner();
    let mut examples = Vec::new();
    for kind in listing.counts.keys() {
        let page = lotline_proto::v1::audit_service_client::AuditServiceClient::new(
            server.channel().await,
        )
        .list_anomalies(lotline_proto::v1::ListAnomaliesRequest {
            kind: kind.clone(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
        examples.extend(page.anomalies.into_iter().map(|a| (a.kind, a.explanation)));
    }
    assert_eq!(
        listing.total, 0,
        "false alarms on a clean history of {events} events: {:?}; one of each: {examples:#?}",
        listing.counts,
    );
}

/// The same generated history with one problem of each kind planted in it, as an auditor's
/// test data would have: every planted problem is listed with its kind and event, and nothing
/// is listed that the planted events or plots do not explain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_history_with_planted_problems_lists_each_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("planted.jsonld");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let truth = lotline_testkit::epcis::write_planted_document(out, 9, 6_000).unwrap();
    assert_eq!(truth.planted.len(), 7, "{:?}", truth.planted);
    let server = serve_with_chain_rules(dir.path()).await;
    import_all(&server, None, &file).await;
    server
        .record_all(&lotline_testkit::epcis::member_confirmations(6_000))
        .await;
    let mut audit =
        lotline_proto::v1::audit_service_client::AuditServiceClient::new(server.channel().await);
    let mut listed = Vec::new();
    let mut request = lotline_proto::v1::ListAnomaliesRequest {
        limit: 1_000,
        ..Default::default()
    };
    loop {
        let page = audit
            .list_anomalies(request.clone())
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.anomalies);
        if page.next_cursor.is_empty() {
            break;
        }
        request.cursor = page.next_cursor;
    }
    let shown: Vec<(String, String, String, String)> = listed
        .iter()
        .map(|a| {
            (
                a.kind.clone(),
                a.event_id.clone(),
                a.lot.clone(),
                a.explanation.clone(),
            )
        })
        .collect();
    let missing: Vec<_> = truth
        .planted
        .iter()
        .filter(|p| {
            !listed.iter().any(|a| {
                a.kind == p.kind
                    && p.event_id.as_ref().is_none_or(|id| &a.event_id == id)
                    && p.lot.as_ref().is_none_or(|lot| &a.lot == lot)
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not listed: {missing:#?}; listed: {shown:#?}"
    );
    let plots = listed
        .iter()
        .filter(|a| a.kind == "plot_not_eudr_grade")
        .count();
    assert_eq!(plots, 2, "{shown:#?}");
    // No false alarm on the clean rest: every other anomaly is on a planted event.
    let unexplained: Vec<_> = shown
        .iter()
        .filter(|(kind, event, lot, _)| {
            kind != "plot_not_eudr_grade"
                && !truth.planted_events.contains(event)
                && !truth.planted_lots.contains(lot)
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "listed beyond the planted problems: {unexplained:#?}"
    );
}

/// Imports a document over gRPC, or through the NATS stream with `nats`, and checks that every
/// event was accepted (or was a duplicate); returns the summary.
async fn import_all(server: &TestServer, nats: Option<&NatsServer>, file: &Path) -> Value {
    let mut a = args(&["import", "--json", "--server", &server.url()]);
    if let Some(nats) = nats {
        a.extend(args(&["--nats-url", &nats.url()]));
    }
    a.push(file.display().to_string());
    let out = run(a).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}\n{}",
        file.display(),
        stdout(&out),
        stderr(&out)
    );
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert_eq!(report["pending"], 0);
    report
}

/// `lotline KIND --json --all [extra]`: the master-data entries.
async fn master_data(server: &TestServer, kind: &str, extra: &[&str]) -> Vec<Value> {
    let mut a = args(&[
        kind,
        "--json",
        "--all",
        "--limit",
        "2",
        "--server",
        &server.url(),
    ]);
    a.extend(args(extra));
    let out = run(a).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["next_cursor"], "");
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// The master data once, the events in a later document (of the same history as
/// cocoa_chain.jsonld): over gRPC and through the NATS stream, every event finds its org,
/// product and chain in what the first import registered, and hashes as GS1's reference does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_import_against_master_data_imported_before() {
    let expected = read_json(&fixture("cocoa_chain.expected.json"));
    let reference = reference_hashes("cocoa_chain.events.hashes");
    assert_eq!(reference, reference_hashes("cocoa_chain.hashes"));
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.nats = Some(NatsSettings::new(nats.url()));
    let over_nats = TestServer::start_with(config).await;
    let over_grpc = TestServer::start().await;
    for (server, nats) in [(&over_grpc, None), (&over_nats, Some(&nats))] {
        // Events alone, before any master data: every one is refused, naming its location.
        let out = import(&server.url(), &fixture("cocoa_chain.events.jsonld"), &[]).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let report = summary(&out);
        assert_eq!(report["accepted"], 0);
        let first = report["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            first.contains("no org") && first.contains("https://id.gs1.org/414/"),
            "{first}"
        );

        let master = import_all(server, nats, &fixture("cocoa_chain.master.jsonld")).await;
        assert!(master["accepted"].as_u64().unwrap() >= 13, "{master}");
        let events = import_all(server, nats, &fixture("cocoa_chain.events.jsonld")).await;
        assert_eq!(events["accepted"], 19, "{events}");
        let stored: BTreeSet<String> =
            stored_hashes(&all_events(&mut server.provenance().await).await)
                .values()
                .flat_map(|h| h.split(' ').map(str::to_string).collect::<Vec<_>>())
                .collect();
        assert_eq!(stored, reference);
        check_ground_truth(server, &expected).await;

        // The master data answers for itself, paged (two per page) and filtered.
        let classes = master_data(server, "classes", &[]).await;
        let products: BTreeSet<&str> = classes
            .iter()
            .filter_map(|c| c["event"]["registerClass"]["product"].as_str())
            .collect();
        assert_eq!(
            products,
            BTreeSet::from(["wet_cocoa_beans", "cocoa_beans", "cocoa_liquor"])
        );
        assert!(classes.iter().all(|c| c["event"]["chain"] == "cocoa"));
        let farms = master_data(server, "orgs", &["--role", "farm"]).await;
        assert_eq!(farms.len(), 2);
        assert!(farms.iter().all(|f| {
            f["event"]["registerOrg"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("family farm"))
        }));
        let public = master_data(server, "orgs", &["--role", "farm", "--public"]).await;
        assert!(
            public
                .iter()
                .all(|f| f["event"]["registerOrg"].get("name").is_none()),
            "{public:?}"
        );
        let coop = farms[0]["event"]["registerOrg"]["memberOf"]
            .as_str()
            .unwrap()
            .to_string();
        let coops_own = master_data(server, "orgs", &["--org", &coop]).await;
        assert_eq!(coops_own.len(), 3, "the co-op and its two member farms");
        assert_eq!(
            master_data(server, "plots", &["--org", &coop]).await.len(),
            2
        );
        assert_eq!(
            master_data(server, "plots", &["--country", "GH"])
                .await
                .len(),
            0
        );
        assert_eq!(master_data(server, "sites", &[]).await.len(), 3);
        let certificates = master_data(server, "certificates", &["--org", &coop]).await;
        assert_eq!(certificates.len(), 1);
        assert_eq!(
            certificates[0]["event"]["certify"]["certificateId"],
            "FLO-1"
        );
    }
}

/// A location named with an extension (an SGLN's extension component, a Digital Link's
/// `/254/`) is the registered location without it; a location nobody registered is refused
/// with its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_with_extensions_find_their_owner() {
    let server = TestServer::start().await;
    import_all(&server, None, &fixture("cocoa_chain.master.jsonld")).await;
    let sites = master_data(&server, "sites", &[]).await;
    let owner_of = |site: &str| -> String {
        sites
            .iter()
            .find(|s| s["event"]["registerSite"]["site"] == site)
            .and_then(|s| s["event"]["org"].as_str())
            .unwrap_or_else(|| panic!("site {site} in {sites:?}"))
            .to_string()
    };
    let coop = owner_of("https://id.gs1.org/414/6180123000027");
    let observe = |id: &str, location: &str| {
        format!(
            r#"{{"type": "ObjectEvent", "eventID": "{id}", "eventTime": "2025-11-01T08:00:00Z",
              "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "inspecting",
              "epcList": ["urn:epc:id:sgtin:6180123.012345.77"], "bizLocation": {{"id": "{location}"}}}}"#
        )
    };
    let doc = format!(
        r#"{{"@context": ["{EPCIS_CONTEXT}"], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2025-11-01T09:00:00Z", "epcisBody": {{"eventList": [{}, {}, {}]}}}}"#,
        observe("urn:uuid:ext-1", "urn:epc:id:sgln:6180123.00002.7"),
        observe(
            "urn:uuid:ext-2",
            "https://id.gs1.org/414/6180123000027/254/dock3"
        ),
        observe("urn:uuid:ext-3", "urn:epc:id:sgln:6189999.00002.0"),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("extensions.jsonld");
    std::fs::write(&file, doc).unwrap();
    let out = import(&server.url(), &file, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = summary(&out);
    assert_eq!(report["accepted"], 2, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let reason = report["rejections"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("https://id.gs1.org/414/6189999000025"),
        "names the location: {reason}"
    );
    let events = all_events(&mut server.provenance().await).await;
    for id in ["urn:uuid:ext-1", "urn:uuid:ext-2"] {
        let event = events
            .iter()
            .filter_map(|s| s.event.as_ref())
            .find(|e| e.event_id == id)
            .unwrap_or_else(|| panic!("{id} stored"));
        assert_eq!(event.org, coop, "{id}");
    }
}

/// A generated history of cocoa, coffee and cotton supply chains (thousands of events, hundreds
/// of parties): the
/// master data alone, then the events alone, over gRPC and through NATS; and the same events
/// shuffled into one document after the master data. Every event gets its org, and trace-back
/// and recall equal the generator's ground truth each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_history_imports_in_two_documents_and_shuffled() {
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.jsonld");
    let events = dir.path().join("events.jsonld");
    let truth = lotline_testkit::epcis::write_chain_documents(
        std::fs::File::create(&master).unwrap(),
        std::fs::File::create(&events).unwrap(),
        11,
        3_000,
    )
    .unwrap();
    let mut whole = Vec::new();
    assert_eq!(
        lotline_testkit::epcis::write_chain_document(&mut whole, 11, 3_000).unwrap(),
        truth
    );
    let shuffled = dir.path().join("shuffled.jsonld");
    let text = String::from_utf8(whole).unwrap();
    let mixed = lotline_testkit::epcis::shuffle_events(&text, 5);
    assert_ne!(mixed, text);
    std::fs::write(&shuffled, mixed).unwrap();

    let nats = NatsServer::start();
    let nats_dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(nats_dir.path());
    config.nats = Some(NatsSettings::new(nats.url()));
    let over_nats = TestServer::start_with(config).await;
    let over_grpc = TestServer::start().await;
    let in_one = TestServer::start().await;
    for (server, nats) in [(&over_grpc, None), (&over_nats, Some(&nats))] {
        import_all(server, nats, &master).await;
        let report = import_all(server, nats, &events).await;
        assert_eq!(report["accepted"].as_u64(), Some(truth.events as u64));
    }
    let report = import_all(&in_one, None, &shuffled).await;
    assert!(report["accepted"].as_u64().unwrap() > truth.events as u64);
    for server in [&over_grpc, &over_nats, &in_one] {
        for (lot, t) in truth.lots.iter().take(40) {
            assert_eq!(
                trace_origins(server, lot).await,
                t.origins,
                "origins of {lot}"
            );
            assert_eq!(
                descendants(server, lot).await,
                t.into,
                "lots made from {lot}"
            );
        }
    }
    // Cocoa, coffee and cotton chains, each with its product classes.
    let mut classes = 0;
    for chain in ["cocoa", "coffee", "textile"] {
        let of_chain = master_data(&over_grpc, "classes", &["--chain", chain])
            .await
            .len();
        assert!(of_chain > 0, "no {chain} classes");
        classes += of_chain;
    }
    assert_eq!(classes, truth.product_classes);
    assert_eq!(
        master_data(&over_nats, "plots", &[]).await.len(),
        truth.plots
    );
}

/// A party known by an id that is not a PGLN, registered under an org id of lotline's own
/// (`lotline:org`): a later document that names the party finds that org.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_registered_under_its_own_id_is_found_by_later_documents() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("parties.jsonld");
    std::fs::write(
        &master,
        format!(
            r#"{{"@context": ["{EPCIS_CONTEXT}", {{"lotline": "https://ns.lotline.dev/epcis/"}}],
              "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2025-11-01T09:00:00Z",
              "epcisHeader": {{"epcisMasterData": {{"vocabularyList": [
                {{"type": "urn:epcglobal:epcis:vtype:Party", "vocabularyElementList": [
                  {{"id": "https://erp.example.com/party/7", "attributes": [
                    {{"id": "lotline:org", "attribute": "chocolatier"}},
                    {{"id": "cbvmda:countryCode", "attribute": "BE"}},
                    {{"id": "lotline:role", "attribute": "brand"}}]}},
                  {{"id": "https://erp.example.com/party/8", "attributes": [
                    {{"id": "lotline:org", "attribute": "exporter"}},
                    {{"id": "cbvmda:countryCode", "attribute": "CI"}},
                    {{"id": "lotline:role", "attribute": "trader"}}, {{"id": "lotline:chain", "attribute": "cocoa"}}]}}]}},
                {{"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": [
                  {{"id": "https://erp.example.com/site/port", "attributes": [
                    {{"id": "lotline:owningParty", "attribute": "https://erp.example.com/party/8"}}]}}]}}]}}}},
              "epcisBody": {{"eventList": []}}}}"#
        ),
    )
    .unwrap();
    import_all(&server, None, &master).await;
    let events = dir.path().join("shipment.jsonld");
    std::fs::write(
        &events,
        format!(
            r#"{{"@context": ["{EPCIS_CONTEXT}"], "type": "EPCISDocument", "schemaVersion": "2.0",
              "creationDate": "2025-11-02T09:00:00Z", "epcisBody": {{"eventList": [
                {{"type": "ObjectEvent", "eventID": "urn:uuid:ship-7", "eventTime": "2025-11-02T08:00:00Z",
                  "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "shipping",
                  "bizLocation": {{"id": "https://erp.example.com/site/port"}},
                  "quantityList": [{{"epcClass": "urn:epc:class:lgtin:6180123.012345.L7", "quantity": 500, "uom": "KGM"}}],
                  "destinationList": [{{"type": "owning_party", "destination": "https://erp.example.com/party/7"}}]}}]}}}}"#
        ),
    )
    .unwrap();
    import_all(&server, None, &events).await;
    let stored = all_events(&mut server.provenance().await).await;
    let ship = stored
        .iter()
        .filter_map(|s| s.event.as_ref())
        .find(|e| e.event_id == "urn:uuid:ship-7")
        .expect("the shipment");
    assert_eq!(ship.org, "exporter");
    assert_eq!(ship.chain, "cocoa", "the exporter's registered chain");
    match &ship.kind {
        Some(v1::event::Kind::Ship(s)) => assert_eq!(s.to_org, "chocolatier"),
        other => panic!("not a shipment: {other:?}"),
    }
    // Exported, the party keeps its id, and imports back as the same org.
    let out = run(args(&["export", "--server", &server.url()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("https://erp.example.com/party/7"));
}
