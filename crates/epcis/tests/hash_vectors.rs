//! The event hash against GS1's reference implementation: every fixture document in
//! `tests/fixtures/*.jsonld` has the reference's pre-hash strings and hashes beside it
//! (`*.prehashes`, `*.hashes`, written by `tests/fixtures/regenerate.sh` with
//! epcis-event-hash-generator 1.9.3), and this crate must reproduce each of them exactly.

use std::fs;
use std::path::{Path, PathBuf};

use lotline_epcis::Json;
use lotline_epcis::hash::{
    Context, EventHash, document_events, document_hashes, pre_hash_string_json,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The fixture documents, sorted by name.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap_or_else(|e| panic!("listing the fixtures: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonld"))
        .collect();
    docs.sort();
    docs
}

/// The lines of a reference output file next to `doc`.
fn expected(doc: &Path, extension: &str) -> Vec<String> {
    read(&doc.with_extension(extension))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Where two pre-hash strings part, with some context, for a readable failure.
fn diff(want: &str, got: &str) -> String {
    let common = want
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map_or(want.len().min(got.len()), |((i, _), _)| i);
    let from = want[..common]
        .char_indices()
        .rev()
        .nth(60)
        .map_or(0, |(i, _)| i);
    // Up to 80 characters from the divergence on.
    let window = |s: &str| -> String { s[from..].chars().take(common - from + 80).collect() };
    format!(
        "pre-hash strings differ after {common} bytes:\n  reference:  …{}…\n  this crate: …{}…\n\
         full reference:\n  {want}\nfull this crate:\n  {got}",
        window(want),
        window(got),
    )
}

/// Hashes every event of a fixture document.
fn hash_document(doc: &Path) -> Vec<EventHash> {
    let results = document_hashes(&read(doc))
        .unwrap_or_else(|e| panic!("{}: not a document: {e}", doc.display()));
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("{} event {i}: {e}", doc.display())))
        .collect()
}

#[test]
fn every_fixture_event_matches_the_reference() {
    let docs = documents();
    assert!(docs.len() >= 5, "fixture documents are missing");
    let mut events = 0;
    let mut failures = Vec::new();
    for doc in &docs {
        let name = doc
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let want_pre = expected(doc, "prehashes");
        let want_hash = expected(doc, "hashes");
        let got = hash_document(doc);
        assert_eq!(got.len(), want_pre.len(), "{name}: number of events");
        assert_eq!(got.len(), want_hash.len(), "{name}: number of events");
        for (i, event) in got.iter().enumerate() {
            events += 1;
            if event.pre_hash != want_pre[i] {
                failures.push(format!(
                    "{name} event {i}: {}",
                    diff(&want_pre[i], &event.pre_hash)
                ));
            } else if event.hash != want_hash[i] {
                failures.push(format!(
                    "{name} event {i}: hash {} instead of {}",
                    event.hash, want_hash[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(events >= 12, "only {events} fixture events");
}

#[test]
fn urn_and_digital_link_spellings_of_one_lot_hash_alike() {
    // identifiers.jsonld: event 0 writes the lot, read point and business location as EPC URNs,
    // event 1 as Digital Links (one on a brand domain with a path prefix and a query string).
    let got = hash_document(&fixtures().join("identifiers.jsonld"));
    assert_eq!(got[0].hash, got[1].hash);
}

#[test]
fn an_error_declaration_keeps_the_original_hash() {
    // corrections.jsonld: event 1 restates event 0 with an errorDeclaration and a later
    // recordTime; event 2 is the corrective event.
    let got = hash_document(&fixtures().join("corrections.jsonld"));
    assert_eq!(got[0].hash, got[1].hash);
    assert_ne!(got[0].hash, got[2].hash);
}

#[test]
fn a_first_pass_over_the_events_gives_the_document_context() {
    for doc in documents() {
        let document = Json::parse(&read(&doc)).unwrap_or_else(|e| panic!("{e}"));
        let mut context = Context::from_context(document.get("@context").unwrap_or(&Json::Null));
        let events = document_events(&document).unwrap_or_else(|e| panic!("{e}"));
        for event in &events {
            context.observe(event);
        }
        let want = expected(&doc, "prehashes");
        for (i, event) in events.into_iter().enumerate() {
            let got = pre_hash_string_json(event, &context).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, want[i], "{} event {i}", doc.display());
        }
    }
}

#[test]
fn hashing_event_by_event_differs_only_where_the_reference_looks_across_events() {
    // With a context from `@context` alone, each event's bare values are expanded with its own
    // vocabulary. In the fixtures only extensions.jsonld event 1 relies on another event's
    // vocabulary (its extension value "in_transit" is the disposition of event 0).
    for doc in documents() {
        let document = Json::parse(&read(&doc)).unwrap_or_else(|e| panic!("{e}"));
        let context = Context::from_context(document.get("@context").unwrap_or(&Json::Null));
        let want = expected(&doc, "prehashes");
        let events = document_events(&document).unwrap_or_else(|e| panic!("{e}"));
        for (i, event) in events.into_iter().enumerate() {
            let got = pre_hash_string_json(event, &context).unwrap_or_else(|e| panic!("{e}"));
            let cross_event = doc.ends_with("extensions.jsonld") && i == 1;
            assert_eq!(got == want[i], !cross_event, "{} event {i}", doc.display());
        }
    }
}
