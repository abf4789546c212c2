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

async fn trace_origins(server: &TestServer, lot: &str) -> BTreeSet<String> {
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert_eq!(report["pending"], 0);
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
            Some(K::RegisterOrg(_) | K::RegisterSite(_) | K::RegisterPlot(_) | K::Certify(_)) => {}
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
    let out = run(args(&[
        "import",
        "--json",
        "--nats-url",
        &nats.url(),
        fixture("cocoa_chain.jsonld").to_str().unwrap(),
    ]))
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert_eq!(report["pending"], 0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_supply_chain_answers_as_its_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("generated.jsonld");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let truth = lotline_testkit::epcis::write_chain_document(out, 5, 20_000).unwrap();
    let server = TestServer::start().await;
    let started = std::time::Instant::now();
    let out = import(&server.url(), &file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = summary(&out);
    assert_eq!(report["rejected"], 0, "{}", report["rejections"]);
    assert!(started.elapsed() < Duration::from_secs(300));
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
}
