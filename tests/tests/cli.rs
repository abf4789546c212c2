//! The `lotline` binary as a user drives it: serve, post, trace, recall, lot,
//! events, rejected, unknown, demo.

mod common;

use common::{lotline, stderr, stdout, write_jsonl};
use lotline_proto::v1;
use lotline_server::sample::sample_events;
use lotline_testkit::BinaryServer;
use lotline_testkit::events::{harvest, register_org};
use serde_json::Value;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn post_trace_recall_and_friends_on_the_sample_chains() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let url = server.url();
    let file = dir.path().join("sample.jsonl");
    write_jsonl(&file, &sample_events());
    let total = sample_events().len();

    let posted = lotline(&["post", file.to_str().unwrap(), "--server", &url, "--json"]);
    assert_eq!(posted.status.code(), Some(0), "{}", stderr(&posted));
    let report = json(&posted);
    assert_eq!(report["accepted"], total);
    assert_eq!(report["rejected"], 0);

    // Posting again is idempotent: every line is a duplicate with its original sequence.
    let again = lotline(&["post", file.to_str().unwrap(), "--server", &url, "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again = json(&again);
    assert_eq!(again["duplicate"], total);
    assert_eq!(
        again["lines"][5]["sequence"],
        report["lines"][5]["sequence"]
    );

    // Trace back the chocolate bars: three Dak Lak farm lots, 1250 kg of wet beans in all.
    let trace = lotline(&["trace", "CC-BAR-2026-W12", "--server", &url, "--json"]);
    assert_eq!(trace.status.code(), Some(0), "{}", stderr(&trace));
    let trace = json(&trace);
    assert_eq!(trace["lot"], "CC-BAR-2026-W12");
    let origins = trace["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 3);
    let total_kg: f64 = origins
        .iter()
        .map(|o| o["quantity"].as_f64().unwrap())
        .sum();
    assert!((total_kg - 1250.0).abs() < 1e-6, "{total_kg}");
    let hoa = origins
        .iter()
        .find(|o| o["lot"] == "CC-H-2026-0412")
        .unwrap();
    assert_eq!(hoa["org"], "vn-farm-hoa");
    assert_eq!(hoa["plot"], "VN-DL-P1");
    assert_eq!(hoa["unit"], "kg");
    assert!((hoa["share"].as_f64().unwrap() - 0.336).abs() < 1e-9);
    assert_eq!(hoa["plot_info"]["geometry"]["type"], "Polygon");
    assert_eq!(hoa["plot_info"]["country"], "VN");
    assert_eq!(hoa["plot_info"]["area_ha"], 1.8);

    // Recall a farm lot: everything it went into, with holders.
    let recall = lotline(&["recall", "CC-H-2026-0412", "--server", &url, "--json"]);
    assert_eq!(recall.status.code(), Some(0), "{}", stderr(&recall));
    let recall = json(&recall);
    let lots: Vec<&str> = recall["descendants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["lot"].as_str().unwrap())
        .collect();
    assert_eq!(
        lots,
        vec![
            "CC-COOP-WET-01",
            "CC-COOP-DRY-01",
            "CC-LIQ-2026-07",
            "CC-BAR-2026-W12"
        ]
    );
    let bar = &recall["descendants"][3];
    assert_eq!(bar["holder"], "eu-brand-choco");
    assert_eq!(bar["quantity"], 5200);
    assert_eq!(bar["unit"], "pcs");

    // The corrected textile harvest (4100 kg typo) is left out: 1400 kg count.
    let lot = lotline(&["lot", "TX-H-2026-0101", "--server", &url, "--json"]);
    assert_eq!(lot.status.code(), Some(0), "{}", stderr(&lot));
    let lot = json(&lot);
    assert_eq!(lot["produced"]["quantity"], 1400);
    assert_eq!(lot["holder"], "in-ginner-rajkot");
    assert!(
        lot["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["corrected"] == true)
    );

    // The coffee blend contains parchment of unknown origin.
    let unknown = json(&lotline(&["unknown", "--server", &url, "--json"]));
    assert_eq!(unknown["lots"][0]["lot"], "CO-PARCH-EXT-77");
    let green = json(&lotline(&[
        "lot",
        "CO-GRN-2026-031",
        "--server",
        &url,
        "--json",
    ]));
    assert_eq!(green["has_unknown_origin"], true);

    let harvests = json(&lotline(&[
        "events", "--kind", "harvest", "--chain", "coffee", "--all", "--server", &url, "--json",
    ]));
    assert_eq!(harvests["events"].as_array().unwrap().len(), 3);

    // Readable tables too.
    let table = lotline(&["trace", "CO-RET-2026-B", "--server", &url]);
    assert!(
        stdout(&table).contains("UNKNOWN ORIGIN"),
        "{}",
        stdout(&table)
    );

    // A lot nobody mentioned: exit 1 with the reason.
    let missing = lotline(&["trace", "NO-SUCH-LOT", "--server", &url]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("NO-SUCH-LOT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_get_a_reason_each_and_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let url = server.url();
    let good = dir.path().join("good.jsonl");
    write_jsonl(
        &good,
        &[register_org("coop"), harvest("h-1", "coop", "LOT-1", 100)],
    );
    assert_eq!(
        lotline(&["post", good.to_str().unwrap(), "--server", &url])
            .status
            .code(),
        Some(0)
    );

    let mut zero = harvest("h-zero", "coop", "LOT-2", 0);
    zero.event_time = "2026-03-01T08:00:00+07:00".into();
    let stranger = harvest("h-stranger", "nobody", "LOT-3", 5);
    let conflict = harvest("h-1", "coop", "LOT-1", 999);
    let mut no_kind = harvest("h-nokind", "coop", "LOT-4", 5);
    no_kind.kind = None;
    let mut bad_geo = register_org("coop");
    bad_geo.event_id = "plot-bad".into();
    bad_geo.kind = Some(v1::event::Kind::RegisterPlot(v1::RegisterPlot {
        plot: "P-9".into(),
        geometry: r#"{"type":"Polygon","coordinates":[[[200,1],[1,1],[1,2],[200,1]]]}"#.into(),
        area_ha: "1".into(),
        country: "VN".into(),
    }));
    let lines = [
        "{ this is not json".to_string(),
        serde_json::to_string(&zero).unwrap(),
        serde_json::to_string(&stranger).unwrap(),
        serde_json::to_string(&conflict).unwrap(),
        serde_json::to_string(&no_kind).unwrap(),
        serde_json::to_string(&bad_geo).unwrap(),
        r#"{"eventId":"h-badtime","eventTime":"yesterday","org":"coop","chain":"cocoa","harvest":{"lot":"L","plot":"P","product":"x","quantity":{"amount":"1","unit":"kg"}}}"#.to_string(),
    ];
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = lotline(&["post", bad.to_str().unwrap(), "--server", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let expect = [
        ("line 1", "not a lotline.v1.Event"),
        ("line 2", "harvest.quantity: must be greater than zero"),
        ("line 3", "\"nobody\" is not registered"),
        (
            "line 4",
            "already recorded at sequence 2 with different content",
        ),
        ("line 5", "kind: no event kind is set"),
        ("line 6", "longitude 200 is outside"),
        ("line 7", "event_time"),
    ];
    for (line, reason) in expect {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{line}:")))
            .unwrap_or_else(|| panic!("no {line} in {text}"));
        assert!(
            row.contains("rejected") && row.contains(reason),
            "{line}: {row}"
        );
    }

    // Only the two good events are in the log; all seven bad lines are quarantined,
    // the undecodable one exactly as sent.
    let events = json(&lotline(&["events", "--all", "--server", &url, "--json"]));
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    let rejected = json(&lotline(&["rejected", "--server", &url, "--json"]));
    let rejected = rejected["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 7);
    assert_eq!(
        rejected[0]["payload"], "eyB0aGlzIGlzIG5vdCBqc29u",
        "base64 of the line as sent"
    );
    assert!(
        rejected
            .iter()
            .any(|r| r["kind"] == "conflict" && r["eventId"] == "h-1")
    );

    // A lot id no event can have is refused, not matched against stored keys.
    let weird = lotline(&["lot", "LOT-1\u{1}c", "--server", &url]);
    assert_eq!(weird.status.code(), Some(2), "{}", stderr(&weird));
    assert!(
        stderr(&weird).contains("control characters"),
        "{}",
        stderr(&weird)
    );

    // Connection and usage errors exit 2.
    // Port 0 can never be connected to, whatever else runs on this machine.
    let down = lotline(&["trace", "LOT-1", "--server", "http://127.0.0.1:0"]);
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    let missing_file = lotline(&["post", "/nonexistent/events.jsonl", "--server", &url]);
    assert_eq!(missing_file.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn post_reads_stdin_and_the_readme_example_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let url = server.url();
    // The example lines of README.md's "Events" section, as a user would paste them.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let lines: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("{\"eventId\""))
        .collect();
    assert_eq!(lines.len(), 3, "README example events");
    let mut child = std::process::Command::new(lotline_testkit::lotline_bin())
        .args(["post", "-", "--server", &url, "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(lines.join("\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["accepted"], 3);
    let trace = json(&lotline(&[
        "trace",
        "CC-DRY-01",
        "--server",
        &url,
        "--json",
    ]));
    assert_eq!(trace["origins"][0]["lot"], "CC-H-0412");
    assert_eq!(trace["origins"][0]["quantity"], 420);
}

#[test]
fn demo_runs_embedded_and_prints_a_trace_and_a_recall() {
    let out = lotline(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("0 rejected"), "{text}");
    assert!(text.contains("Trace back CC-BAR-2026-W12"), "{text}");
    assert!(text.contains("Recall TX-H-2026-0101"), "{text}");
    assert!(text.contains("CO-PARCH-EXT-77"), "{text}");
    assert!(
        text.contains("disputed: unknown_origin on") && text.contains("disputed by auditor"),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_bad_config_with_exit_64() {
    let out = lotline(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));
}
