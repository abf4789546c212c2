//! Structure-aware property tests of every decoder that takes outside bytes: a JSON event line,
//! a protobuf event, a NATS message with its subject and headers, an EPCIS document and a
//! GeoJSON geometry. Inputs are built from each format's own field names and shapes (and
//! mutations of valid inputs), so they reach deep into the decoders, not only their first
//! check. Each must answer, never panic: bad input is a rejection that names a field.
//!
//! The stable toolchain runs them with a fixed seed and a bounded number of cases (under a
//! minute in all on a 2-core machine); longer runs with other seeds:
//! `LOTLINE_FUZZ_CASES=5000000 LOTLINE_FUZZ_SEED=7 cargo test -p lotline-e2e --test fuzz
//! --release` (each seed is reproducible). A finding becomes a regression
//! test in the decoder's own crate.

use async_nats::HeaderMap;
use chrono::Utc;
use lotline_epcis::import::{Importer, Options};
use lotline_service::intake;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};

/// Runs `check` on `cases` inputs drawn from `strategy` with a fixed seed (or
/// `LOTLINE_FUZZ_SEED`), `LOTLINE_FUZZ_CASES` overriding the count.
fn run<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("LOTLINE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let seed: u64 = std::env::var("LOTLINE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        rng,
    );
    for n in 0..cases {
        let value = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("{name}: no input: {e}"))
            .current();
        let shown = format!("{value:?}");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(value)));
        if outcome.is_err() {
            panic!("{name}: case {n} (seed {seed}) panicked on {shown:.2000}");
        }
    }
}

/// Field names of lotline events and EPCIS documents, and GeoJSON's.
const FIELDS: &[&str] = &[
    "eventId",
    "eventTime",
    "org",
    "chain",
    "site",
    "extensions",
    "harvest",
    "transform",
    "ship",
    "receive",
    "certify",
    "pay",
    "correct",
    "observe",
    "registerOrg",
    "registerSite",
    "registerPlot",
    "registerClass",
    "revokeToken",
    "lot",
    "plot",
    "product",
    "quantity",
    "amount",
    "unit",
    "inputs",
    "outputs",
    "lots",
    "toOrg",
    "fromOrg",
    "documents",
    "claims",
    "custody",
    "process",
    "conversionRatio",
    "standard",
    "certificateId",
    "subjectOrg",
    "payeeOrg",
    "currency",
    "pricePerUnit",
    "priceUnit",
    "correctedEventId",
    "name",
    "role",
    "country",
    "gln",
    "memberOf",
    "geometry",
    "areaHa",
    "tokenId",
    "type",
    "coordinates",
    "@context",
    "epcisBody",
    "eventList",
    "epcList",
    "quantityList",
    "childEPCs",
    "parentID",
    "inputEPCList",
    "outputEPCList",
    "inputQuantityList",
    "outputQuantityList",
    "epcClass",
    "uom",
    "bizStep",
    "disposition",
    "action",
    "readPoint",
    "bizLocation",
    "id",
    "sourceList",
    "destinationList",
    "source",
    "destination",
    "bizTransactionList",
    "ilmd",
    "sensorElementList",
    "certificationInfo",
    "transformationID",
    "eventTimeZoneOffset",
    "epcisHeader",
    "epcisMasterData",
    "vocabularyList",
    "vocabularyElementList",
    "attributes",
];

/// Strings that mean something somewhere: ids of every shape, times, units, numbers as text.
const WORDS: &[&str] = &[
    "",
    " ",
    "coop",
    "CC-H-2026-0412",
    "CC-H-2026-0412\u{0}c",
    "\u{1}",
    "é",
    "2026-03-01T08:00:00Z",
    "2026-03-01T08:00:00+07:00",
    "2031-01-01T00:00:00Z",
    "not a time",
    "kg",
    "KGM",
    "pcs",
    "1",
    "-5",
    "0",
    "1e400",
    "0.0000001",
    "99999999999999999999999999",
    "cocoa",
    "coffee",
    "textile",
    "ORG_ROLE_COOPERATIVE",
    "ObjectEvent",
    "TransformationEvent",
    "AggregationEvent",
    "ADD",
    "DELETE",
    "EPCISDocument",
    "urn:epc:id:sgtin:9506000.013435.1",
    "urn:epc:class:lgtin:9506000.013435.L1",
    "https://id.gs1.org/01/09506000134352/10/L1",
    "https://id.gs1.org/01/09506000134353/10/L1",
    "urn:epc:id:sgln:9506000.13435.0",
    "urn:epc:id:pgln:9506000.13435",
    "Point",
    "Polygon",
    "MultiPolygon",
    "Feature",
    "FeatureCollection",
    "LineString",
    "lotline:revoke:x",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(String::from),
        1 => "[ -~\u{0}\u{1}\u{e9}\u{202e}]{0,24}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(String::from),
        1 => "[a-zA-Z:@]{1,8}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-200.0f64..200.0).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

/// Any JSON, built from the formats' field names and words, up to a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid event of each kind, to mutate.
fn valid_events() -> Vec<Value> {
    let q = json!({"amount": "12.5", "unit": "kg"});
    let lots = json!([{"lot": "L-1", "quantity": q}]);
    let base = |kind: &str, body: Value| {
        let mut e = json!({"eventId": "e-1", "eventTime": "2026-03-01T08:00:00+07:00", "org": "coop", "chain": "cocoa"});
        e[kind] = body;
        e
    };
    vec![
        base(
            "harvest",
            json!({"lot": "L-1", "plot": "P-1", "product": "wet cocoa beans", "quantity": q, "claims": ["fairtrade"]}),
        ),
        base(
            "transform",
            json!({"inputs": lots, "outputs": [{"lot": "L-2", "product": "dry", "quantity": q}], "process": "drying", "conversionRatio": "0.4"}),
        ),
        base(
            "ship",
            json!({"lots": lots, "toOrg": "buyer", "documents": [{"type": "invoice", "id": "I-1"}]}),
        ),
        base("receive", json!({"lots": lots, "fromOrg": "coop-b"})),
        base(
            "certify",
            json!({"standard": "Fairtrade", "certificateId": "C-1", "lot": "L-1", "outcome": "certified"}),
        ),
        base(
            "pay",
            json!({"lots": lots, "payeeOrg": "farm", "currency": "USD", "pricePerUnit": "2.5", "priceUnit": "kg"}),
        ),
        base(
            "correct",
            json!({"correctedEventId": "e-0", "reason": "typo"}),
        ),
        base(
            "registerPlot",
            json!({"plot": "P-1", "geometry": "{\"type\":\"Point\",\"coordinates\":[-5.5,6.8]}", "country": "CI"}),
        ),
        base(
            "registerOrg",
            json!({"name": "Co-op", "role": "ORG_ROLE_COOPERATIVE", "country": "CI", "memberOf": "union"}),
        ),
    ]
}

/// A valid event with one of its values, at any depth, replaced by generated JSON, or a
/// generated member added.
fn mutated_event() -> impl Strategy<Value = Value> {
    (
        0..valid_events().len(),
        any::<prop::sample::Index>(),
        json(),
        key(),
        any::<bool>(),
    )
        .prop_map(|(which, at, replacement, name, add)| {
            let mut event = valid_events().swap_remove(which);
            let mut slots = Vec::new();
            collect_paths(&event, &mut Vec::new(), &mut slots);
            let path = &slots[at.index(slots.len())];
            let target = path.iter().fold(&mut event, |v, step| match step {
                Step::Key(k) => v.get_mut(k.as_str()).expect("path"),
                Step::At(i) => v.get_mut(*i).expect("path"),
            });
            match target {
                Value::Object(map) if add => {
                    map.insert(name, replacement);
                }
                other => *other = replacement,
            }
            event
        })
}

#[derive(Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn collect_paths(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Step::Key(k.clone()));
                collect_paths(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::At(i));
                collect_paths(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn assert_named(submission: &lotline_store::Submission) {
    if let Err(invalid) = &submission.event {
        assert!(
            !invalid.field.is_empty(),
            "a rejection names no field: {invalid}"
        );
        assert!(!invalid.reason.is_empty(), "a rejection gives no reason");
    }
}

#[test]
fn json_event_lines() {
    // The mutations start from events that are accepted as they are.
    for event in valid_events() {
        let s = intake::from_json(&event.to_string(), "fuzz");
        assert!(s.event.is_ok(), "{event}: {:?}", s.event);
    }
    run("json (mutated events)", 200_000, mutated_event(), |event| {
        assert_named(&intake::from_json(&event.to_string(), "fuzz"));
    });
    run("json (any)", 100_000, json(), |value| {
        assert_named(&intake::from_json(&value.to_string(), "fuzz"));
    });
}

#[test]
fn protobuf_events() {
    use prost::Message;
    let valid: Vec<Vec<u8>> = valid_events()
        .iter()
        .map(|e| {
            serde_json::from_value::<lotline_proto::v1::Event>(e.clone())
                .expect("a valid event")
                .encode_to_vec()
        })
        .collect();
    let strategy = (
        0..valid.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop::collection::vec(any::<u8>(), 0..16),
        any::<bool>(),
    );
    run(
        "protobuf (mutated)",
        200_000,
        strategy,
        |(which, flips, tail, cut)| {
            let mut bytes = valid[which].clone();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if cut {
                bytes.truncate(bytes.len() / 2);
            }
            bytes.extend(tail);
            assert_named(&intake::from_protobuf(&bytes, "fuzz", ""));
        },
    );
    run(
        "protobuf (any)",
        200_000,
        prop::collection::vec(any::<u8>(), 0..256),
        |bytes| assert_named(&intake::from_protobuf(&bytes, "fuzz", "")),
    );
}

#[test]
fn nats_messages() {
    const HEADERS: &[&str] = &lotline_ingest::message::READ_HEADERS;
    let subject = prop_oneof![
        Just("lotline.events.cocoa.coop".to_string()),
        Just("lotline.relay.cocoa.coop".to_string()),
        Just("lotline.events.none.coop".to_string()),
        "lotline\\.(events|relay|other)(\\.[a-z*>]{0,6}){0,4}",
    ];
    let value = prop_oneof![
        Just("application/json".to_string()),
        Just("coop.e-1".to_string()),
        Just("member,admin".to_string()),
        Just("9999999999999999999999".to_string()),
        "[ -~]{0,20}",
    ];
    let headers = prop::collection::vec((prop::sample::select(HEADERS), value), 0..6);
    let payload = prop_oneof![
        mutated_event().prop_map(|e| e.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..128),
    ];
    run(
        "nats",
        200_000,
        (subject, headers, payload, any::<bool>()),
        |(subject, headers, payload, enforce)| {
            let mut map = HeaderMap::new();
            for (name, value) in &headers {
                map.insert(*name, value.as_str());
            }
            let s = lotline_ingest::message::submission(
                "lotline",
                &subject,
                Some(&map),
                &payload,
                Utc::now(),
                enforce,
            );
            assert_named(&s);
        },
    );
}

/// EPCIS event-shaped JSON: a valid event's members with some replaced by generated JSON.
fn epcis_event() -> impl Strategy<Value = Value> {
    let valid = json!({
        "type": "ObjectEvent", "eventTime": "2025-10-14T08:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "ADD", "bizStep": "commissioning",
        "quantityList": [{"epcClass": "urn:epc:class:lgtin:9506000.013435.L1", "quantity": 5, "uom": "KGM"}],
        "readPoint": {"id": "urn:epc:id:sgln:9506000.13435.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:9506000.13435.0"},
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:9506000.13435"}],
        "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:9506000.013435.L0", "quantity": 7}],
    });
    (
        prop::collection::vec((prop::sample::select(FIELDS), json()), 0..5),
        prop::sample::select(
            &[
                "ObjectEvent",
                "TransformationEvent",
                "AggregationEvent",
                "AssociationEvent",
                "TransactionEvent",
                "Nonsense",
            ][..],
        ),
    )
        .prop_map(move |(changes, kind)| {
            let mut event = valid.clone();
            event["type"] = Value::from(kind);
            for (k, v) in changes {
                event[k] = v;
            }
            event
        })
}

#[test]
fn epcis_documents() {
    let document = (
        prop::collection::vec(epcis_event(), 0..6),
        json(),
        any::<bool>(),
    );
    run("epcis", 40_000, document, |(events, context, query)| {
        let body = if query {
            json!({"queryResults": {"resultsBody": {"eventList": events}}})
        } else {
            json!({"eventList": events})
        };
        let doc = json!({
            "type": if query { "EPCISQueryDocument" } else { "EPCISDocument" },
            "@context": context,
            "epcisBody": body,
        })
        .to_string();
        let mut importer = Importer::new(Options::default());
        let read = lotline_epcis::stream::read_document(doc.as_bytes(), &mut |part| {
            match part {
                lotline_epcis::stream::Part::Context(c) => {
                    importer.context(&c, lotline_epcis::Context::default());
                }
                lotline_epcis::stream::Part::Event(i, e) => {
                    for mapped in importer.event(i, &e) {
                        if let Ok(event) = mapped.result {
                            let _ = lotline_domain::validate(&event);
                        }
                    }
                }
                _ => {}
            }
            Ok(lotline_epcis::stream::Flow::Continue)
        });
        let _ = read;
        let _ = importer.finish();
    });
}

#[test]
fn geojson_geometries() {
    let coordinate = prop_oneof![
        (-200.0f64..200.0, -100.0f64..100.0).prop_map(|(a, b)| json!([a, b])),
        json(),
    ];
    let ring = prop::collection::vec(coordinate, 0..8).prop_map(Value::Array);
    let polygon = prop::collection::vec(ring, 0..3).prop_map(Value::Array);
    let coordinates = prop_oneof![
        polygon.clone(),
        prop::collection::vec(polygon, 0..3).prop_map(Value::Array),
        json(),
    ];
    let kind = prop::sample::select(
        &[
            "Point",
            "Polygon",
            "MultiPolygon",
            "LineString",
            "Feature",
            "GeometryCollection",
            "x",
        ][..],
    );
    run(
        "geojson",
        200_000,
        (kind, coordinates, any::<bool>()),
        |(kind, coordinates, feature)| {
            let geometry = json!({"type": kind, "coordinates": coordinates});
            let text = if feature {
                json!({"type": "Feature", "geometry": geometry, "properties": {}}).to_string()
            } else {
                geometry.to_string()
            };
            let _ = lotline_domain::geo::check_geometry(&text);
            let _ = lotline_domain::geo::round_geometry(&text, 2);
        },
    );
}
