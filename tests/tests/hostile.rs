//! Hostile input and shared names: an org that may post events cannot change the answers about
//! lots it does not hold. The demo chains are posted by their honest orgs; then another org
//! posts thousands of hostile events through `lotline post` (forged ids with control bytes in
//! every id-bearing field, re-used event ids, lot names it did not create, consumptions and
//! shipments of lots it does not hold, receipts from orgs that never held the lot,
//! registrations of the honest orgs' plots, future dates, oversized events). Every hostile event is refused with a reason or flagged as a
//! `not_holder` anomaly, every honest answer is the same as before, and the server stays
//! healthy.

mod common;

use std::collections::BTreeSet;

use common::{lotline, stderr, stdout};
use lotline_testkit::TestServer;
use serde_json::{Value, json};

/// The lots asked about: a product and a farm lot of each demo chain.
const LOTS: [&str; 6] = [
    "CC-BAR-2026-W12",
    "CC-H-2026-0412",
    "CO-RET-2026-B",
    "CO-H-2026-0007",
    "TX-GAR-2026-T1",
    "TX-H-2026-0101",
];

use common::json_answer as answer;

/// Every answer about the honest lots, without the anomaly lists (which now name the hostile
/// events: that is the point).
fn honest_answers(url: &str) -> Vec<(String, Value)> {
    let mut answers = Vec::new();
    for lot in LOTS {
        for command in ["trace", "recall", "lot"] {
            let mut value = answer(url, &[command, lot]);
            strip(&mut value, &["anomalies", "anomaly_count"]);
            answers.push((format!("{command} {lot}"), value));
        }
    }
    for lot in ["CC-BAR-2026-W12", "CO-RET-2026-B"] {
        let mut value = answer(url, &["eudr", lot]);
        strip(&mut value, &["anomalies"]);
        answers.push((format!("eudr {lot}"), value));
    }
    answers
}

fn strip(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for key in keys {
                map.remove(*key);
            }
            for v in map.values_mut() {
                strip(v, keys);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
        _ => {}
    }
}

fn line(id: &str, time: &str, kind: &str, body: Value) -> String {
    let mut event = json!({
        "eventId": id,
        "eventTime": time,
        "org": "evil",
        "chain": "cocoa",
    });
    event[kind] = body;
    event.to_string()
}

fn kg(amount: &str) -> Value {
    json!({"amount": amount, "unit": "kg"})
}

#[tokio::test(flavor = "multi_thread")]
async fn another_orgs_events_change_no_answer_about_lots_it_does_not_hold() {
    let server = TestServer::start().await;
    let url = server.url();
    let demo = lotline(&["demo", "--server", &url]);
    assert_eq!(demo.status.code(), Some(0), "{}", stderr(&demo));
    let before = honest_answers(&url);
    let honest_ids: Vec<String> = answer(&url, &["events", "--all"])["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event"]["eventId"].as_str().expect("id").to_string())
        .collect();
    assert!(honest_ids.len() > 100, "{}", honest_ids.len());

    let at = "2026-05-01T09:00:00Z";
    let forged = "CC-H-2026-0412\u{0}c";
    let mut lines = vec![
        r#"{"eventId":"reg-evil","eventTime":"2026-01-02T09:00:00Z","org":"evil","registerOrg":{"name":"Evil","role":"ORG_ROLE_TRADER","country":"VN"}}"#.to_string(),
    ];
    // Refused: forged ids in every id-bearing field, re-used ids, future dates, oversized.
    let mut refused: Vec<(String, &str)> = vec![
        (
            line(
                "x-cert",
                at,
                "certify",
                json!({"standard": "x", "certificateId": "c1", "lot": forged, "outcome": "certified"}),
            ),
            "certify.lot",
        ),
        (
            line(
                "x-subject",
                at,
                "certify",
                json!({"standard": "x", "certificateId": "c1", "subjectOrg": "vn-coop\u{0}", "outcome": "certified"}),
            ),
            "certify.subject_org",
        ),
        (
            line(
                "x-ship",
                at,
                "ship",
                json!({"lots": [{"lot": forged, "quantity": kg("1")}], "toOrg": "friend"}),
            ),
            "ship.lots[0].lot",
        ),
        (
            line(
                "x-ship-to",
                at,
                "ship",
                json!({"lots": [{"lot": "EVIL-0", "quantity": kg("1")}], "toOrg": "friend\u{1}"}),
            ),
            "ship.to_org",
        ),
        (
            line(
                "x-in",
                at,
                "transform",
                json!({"inputs": [{"lot": forged, "quantity": kg("1")}], "outputs": [{"lot": "EVIL-X", "product": "x", "quantity": kg("1")}], "process": "x"}),
            ),
            "transform.inputs[0].lot",
        ),
        (
            line(
                "x-pay",
                at,
                "pay",
                json!({"lots": [{"lot": "CC-H-2026-0412", "quantity": kg("1")}], "payeeOrg": "vn\u{0}coop", "currency": "USD", "pricePerUnit": "1", "priceUnit": "kg"}),
            ),
            "pay.payee_org",
        ),
        (
            line(
                "x-corr",
                at,
                "correct",
                json!({"correctedEventId": "h-1\u{0}", "reason": "x"}),
            ),
            "correct.corrected_event_id",
        ),
        (
            line(
                "x-corr2",
                at,
                "correct",
                json!({"correctedEventId": "x-ship", "reason": "x", "correctiveEventIds": ["ok", "bad\u{0}"]}),
            ),
            "correct.corrective_event_ids[1]",
        ),
        (
            line(
                "x-obs",
                at,
                "observe",
                json!({"eventType": "ObjectEvent", "epcs": [forged]}),
            ),
            "observe.epcs[0]",
        ),
        (
            line(
                "x-future",
                "2031-01-01T00:00:00Z",
                "harvest",
                json!({"lot": "EVIL-F", "plot": "p", "product": "beans", "quantity": kg("1")}),
            ),
            "event_time",
        ),
        (
            line(
                "x-wide",
                at,
                "ship",
                json!({"lots": (0..1001).map(|n| json!({"lot": format!("EVIL-W{n}"), "quantity": kg("1")})).collect::<Vec<_>>(), "toOrg": "friend"}),
            ),
            "1000",
        ),
        (
            line(
                "x-text",
                at,
                "harvest",
                json!({"lot": "EVIL-T", "plot": "p", "product": "x".repeat(5000), "quantity": kg("1")}),
            ),
            "harvest.product",
        ),
    ];
    for id in honest_ids.iter().take(50) {
        refused.push((
            line(
                id,
                at,
                "harvest",
                json!({"lot": "EVIL-R", "plot": "p", "product": "beans", "quantity": kg("1")}),
            ),
            "belongs to org",
        ));
    }
    lines.extend(refused.iter().map(|(l, _)| l.clone()));
    // Stored and flagged: creations of honest lot names, consumptions, shipments and receipts
    // of lots evil never held, many times over.
    let mut flagged: Vec<(String, &str)> = Vec::new();
    for n in 0..400 {
        let lot = LOTS[n % LOTS.len()];
        let mut push = |id: String, kind: &str, body: Value| {
            lines.push(line(&id, at, kind, body));
            flagged.push((id, lot));
        };
        push(
            format!("evil-h-{n}"),
            "harvest",
            json!({"lot": lot, "plot": "p", "product": "beans", "quantity": kg("1")}),
        );
        push(
            format!("evil-t-{n}"),
            "transform",
            json!({"inputs": [{"lot": lot, "quantity": kg("1")}], "outputs": [{"lot": format!("EVIL-{n}"), "product": "x", "quantity": kg("1")}], "process": "x"}),
        );
        push(
            format!("evil-s-{n}"),
            "ship",
            json!({"lots": [{"lot": lot, "quantity": kg("1")}], "toOrg": "friend"}),
        );
        push(
            format!("evil-r-{n}"),
            "receive",
            json!({"lots": [{"lot": lot, "quantity": kg("1")}], "fromOrg": "friend"}),
        );
    }
    // Stored, changing nothing: registrations of the honest orgs' plots (elsewhere, so the
    // EUDR verdicts would change if they stood).
    let plots: BTreeSet<String> = LOTS
        .iter()
        .flat_map(|lot| {
            answer(&url, &["trace", lot])["origins"]
                .as_array()
                .expect("origins")
                .iter()
                .filter_map(|o| o["plot"].as_str().filter(|p| !p.is_empty()))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!plots.is_empty());
    for (n, plot) in plots.iter().enumerate() {
        let mut moved = line(
            &format!("evil-plot-{n}"),
            at,
            "registerPlot",
            json!({"plot": plot, "geometry": "{\"type\":\"Point\",\"coordinates\":[2.35,48.85]}", "country": "FR"}),
        );
        moved = moved.replace(r#""chain":"cocoa","#, "");
        lines.push(moved);
    }
    // Stored, changing nothing: evil "confirms" the honest co-op's farms as its own members
    // (they name their own co-op), and a farm of evil's names the honest co-op, which never
    // confirmed it, then claims fairtrade for its harvest.
    for (n, farm) in ["vn-farm-hoa", "vn-farm-binh", "vn-farm-lan"]
        .iter()
        .enumerate()
    {
        lines.push(
            line(
                &format!("evil-member-{n}"),
                at,
                "confirmMember",
                json!({"member": farm, "validFrom": "2020-01-01"}),
            )
            .replace(r#""chain":"cocoa","#, ""),
        );
    }
    lines.push(
        r#"{"eventId":"reg-evil-farm","eventTime":"2026-01-02T09:00:00Z","org":"evil-farm","registerOrg":{"name":"Evil farm","role":"ORG_ROLE_FARM","country":"VN","memberOf":"vn-coop-eahleo"}}"#.into(),
    );
    lines.push(
        r#"{"eventId":"evil-farm-h","eventTime":"2026-03-01T09:00:00Z","org":"evil-farm","chain":"cocoa","harvest":{"lot":"EVIL-FT","plot":"p","product":"wet cocoa beans","quantity":{"amount":"10","unit":"kg"},"claims":["fairtrade"]}}"#.into(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hostile.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let post = lotline(&["post", file.to_str().unwrap(), "--server", &url]);
    assert_eq!(
        post.status.code(),
        Some(1),
        "some lines are rejected: {}",
        stdout(&post)
    );

    // Every refusal names its field or conflict.
    let rejected = answer(&url, &["rejected"]);
    let rejected = rejected["rejected"].as_array().expect("rejected").clone();
    assert_eq!(rejected.len(), refused.len(), "{rejected:#?}");
    for ((text, needle), entry) in refused.iter().zip(&rejected) {
        let reason = entry["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(needle), "{text:.120}: {reason}");
    }

    // Every honest answer is as before.
    let after = honest_answers(&url);
    for ((what, was), (_, now)) in before.iter().zip(&after) {
        assert_eq!(was, now, "{what} changed");
    }
    // Every stored hostile event on an honest lot is named as such, charged to evil.
    for lot in LOTS {
        let state = answer(&url, &["lot", lot]);
        let named: BTreeSet<&str> = state["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .filter(|a| a["kind"] == "not_holder" && a["org"] == "evil")
            .filter_map(|a| a["event_id"].as_str())
            .collect();
        for (id, _) in flagged.iter().filter(|(_, l)| *l == lot) {
            assert!(named.contains(id.as_str()), "{id} on {lot} not flagged");
        }
    }
    // The farm's own word did not put it under the co-op's group certificate.
    let unconfirmed = answer(&url, &["lot", "EVIL-FT"]);
    assert!(
        unconfirmed["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .any(|a| a["kind"] == "uncertified_claim" && a["org"] == "evil-farm"),
        "{unconfirmed:#}"
    );
    // Still healthy: an honest event is recorded.
    let ok = dir.path().join("ok.jsonl");
    std::fs::write(
        &ok,
        r#"{"eventId":"evil-own","eventTime":"2026-05-02T09:00:00Z","org":"evil","chain":"cocoa","harvest":{"lot":"EVIL-OWN","plot":"p","product":"beans","quantity":{"amount":"1","unit":"kg"}}}"#,
    )
    .expect("write");
    let post = lotline(&["post", ok.to_str().unwrap(), "--server", &url]);
    assert_eq!(post.status.code(), Some(0), "{}", stdout(&post));
    server.stop().await.expect("stop");
}

/// `lotline bench flood` on a small log: ingest with nobody asking, then under a flood of
/// questions with the read pool and without it; every figure is printed and the flood's
/// questions are answered (so the pool, the limits and the deadlines are wired into the door).
#[test]
fn bench_flood_prints_idle_and_flooded_rates() {
    let out = lotline(&[
        "bench",
        "flood",
        "--background",
        "400",
        "--events",
        "600",
        "--batch",
        "100",
        "--connections",
        "2",
        "--in-flight",
        "3",
    ]);
    let o = stdout(&out);
    assert!(out.status.success(), "{o}\n{}", stderr(&out));
    for line in [
        "400 events in the log",
        "ingest, nobody asking",
        "ingest, flooded (",
        "ingest, flooded (questions on every core)",
        "of idle",
    ] {
        assert!(o.contains(line), "missing {line:?} in:\n{o}");
    }
    let answered: Vec<f64> = o
        .lines()
        .filter_map(|l| l.trim().strip_prefix("questions: "))
        .filter_map(|l| l.split("/s answered").next()?.parse().ok())
        .collect();
    assert_eq!(answered.len(), 2, "{o}");
    assert!(answered.iter().all(|n| *n > 0.0), "{o}");
}
