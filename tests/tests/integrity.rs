//! The tamper-evident log as an auditor uses it: checkpoints checked with a
//! standard Ed25519 library, proofs checked by an independent RFC 6962
//! implementation (tests/tools/rfc6962_verify.py), and `lotline verify` finding
//! changed, removed and rewritten history.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{check_note_signature, lotline, stderr, stdout, write_jsonl};
use lotline_proto::v1;
use lotline_server::sample::sample_events;
use lotline_testkit::BinaryServer;
use lotline_testkit::events::{harvest, register_org};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn json(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// Runs the independent verifier over JSON documents; returns its output.
fn python_verify(docs: &[Value]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/rfc6962_verify.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (the independent verifier needs it)");
    {
        let mut stdin = child.stdin.take().unwrap();
        for d in docs {
            writeln!(stdin, "{}", serde_json::to_string(d).unwrap()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "independent verifier failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_verify_independently_and_verify_finds_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinaryServer::spawn(&data).await;
    let url = server.url();
    let file = dir.path().join("sample.jsonl");
    let events = sample_events();
    write_jsonl(&file, &events);
    assert_eq!(
        lotline(&["post", file.to_str().unwrap(), "--server", &url])
            .status
            .code(),
        Some(0)
    );

    // A checkpoint, saved as an auditor would, checked with a plain Ed25519 library.
    let saved = json(&lotline(&["checkpoint", "--server", &url, "--json"]));
    let note = saved["checkpoint"].as_str().unwrap();
    check_note_signature(note, saved["verifier_key"].as_str().unwrap());
    let old_size = saved["tree_size"].as_u64().unwrap();
    assert_eq!(old_size, events.len() as u64);
    let saved_path = dir.path().join("checkpoint.json");
    std::fs::write(&saved_path, serde_json::to_string(&saved).unwrap()).unwrap();

    // More events after the checkpoint.
    let mut client = v1::event_service_client::EventServiceClient::connect(url.clone())
        .await
        .unwrap();
    let more: Vec<v1::Event> = std::iter::once(register_org("late-coop"))
        .chain((0..37).map(|n| harvest(&format!("late-{n}"), "late-coop", &format!("LATE-{n}"), 5)))
        .collect();
    client
        .record_batch(v1::RecordBatchRequest {
            events: more.clone(),
        })
        .await
        .unwrap();
    let new_size = old_size + more.len() as u64;

    // Inclusion proofs for every event, in the latest tree and in the saved one.
    let mut docs = Vec::new();
    for (n, e) in events.iter().chain(more.iter()).enumerate() {
        let proof = json(&lotline(&[
            "proof",
            &e.event_id,
            "--server",
            &url,
            "--json",
        ]));
        assert_eq!(proof["tree_size"], new_size);
        assert_eq!(proof["leaf_index"], n as u64);
        check_note_signature(
            proof["checkpoint"].as_str().unwrap(),
            proof["verifier_key"].as_str().unwrap(),
        );
        docs.push(serde_json::json!({"kind": "inclusion", "proof": proof}));
        if (n as u64) < old_size && n % 7 == 0 {
            let size = old_size.to_string();
            let old = json(&lotline(&[
                "proof",
                &e.event_id,
                "--size",
                &size,
                "--server",
                &url,
                "--json",
            ]));
            assert_eq!(
                old["checkpoint"].as_str().unwrap(),
                note,
                "the same size gets the same signed note"
            );
            docs.push(serde_json::json!({"kind": "inclusion", "proof": old}));
        }
    }
    // Consistency from several old sizes to the latest tree.
    let old_root_b64 = note.lines().nth(2).unwrap().to_string();
    let c = json(&lotline(&[
        "consistency",
        &old_size.to_string(),
        "--server",
        &url,
        "--json",
    ]));
    docs.push(serde_json::json!({"kind": "consistency", "proof": c, "old_root_b64": old_root_b64}));
    let c = json(&lotline(&["consistency", "0", "--server", &url, "--json"]));
    let empty = STANDARD.encode(Sha256::digest(b""));
    docs.push(serde_json::json!({"kind": "consistency", "proof": c, "old_root_b64": empty}));
    for old in [1u64, 2, 7, 8, 33, 64, new_size] {
        let cp = json(&lotline(&[
            "checkpoint",
            "--size",
            &old.to_string(),
            "--server",
            &url,
            "--json",
        ]));
        let root_b64 = cp["checkpoint"]
            .as_str()
            .unwrap()
            .lines()
            .nth(2)
            .unwrap()
            .to_string();
        let c = json(&lotline(&[
            "consistency",
            &old.to_string(),
            "--server",
            &url,
            "--json",
        ]));
        docs.push(serde_json::json!({"kind": "consistency", "proof": c, "old_root_b64": root_b64}));
    }
    let report = python_verify(&docs);
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        docs.len(),
        "{report}"
    );

    // The whole log re-hashed against the signed root and the saved checkpoint.
    let ok = lotline(&[
        "verify",
        "--server",
        &url,
        "--checkpoint",
        saved_path.to_str().unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(
        stdout(&ok).contains("is a prefix of this log"),
        "{}",
        stdout(&ok)
    );

    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success());
    let ok = lotline(&[
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--checkpoint",
        saved_path.to_str().unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));

    // One byte changed in a stored event: found offline, and the server refuses writes.
    {
        let (store, _) =
            lotline_server::open_store(&lotline_server::ServeConfig::new(&data)).unwrap();
        let mut bytes = store.record_bytes(10).unwrap().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        store.tamper_record_for_test(10, Some(bytes)).unwrap();
    }
    let bad = lotline(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    assert!(
        stderr(&bad).contains("sequences 9 to 16"),
        "{}",
        stderr(&bad)
    );
    // The start-up check samples leaves; --full-check re-hashes every one.
    let server = BinaryServer::spawn_with(&data, "lotline.v1.LogService", &["--full-check"]).await;
    let refused = v1::event_service_client::EventServiceClient::connect(server.url())
        .await
        .unwrap()
        .record(v1::RecordRequest {
            event: Some(harvest("after-tamper", "late-coop", "LATE-X", 1)),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("integrity"),
        "{}",
        refused.message()
    );
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    server.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_events_and_rewritten_history_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinaryServer::spawn(&data).await;
    let url = server.url();
    let mut client = v1::event_service_client::EventServiceClient::connect(url.clone())
        .await
        .unwrap();
    let events: Vec<v1::Event> = std::iter::once(register_org("coop"))
        .chain((0..20).map(|n| harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 10)))
        .collect();
    client
        .record_batch(v1::RecordBatchRequest { events })
        .await
        .unwrap();
    let saved = json(&lotline(&["checkpoint", "--server", &url, "--json"]));
    let saved_path = dir.path().join("checkpoint.json");
    std::fs::write(&saved_path, serde_json::to_string(&saved).unwrap()).unwrap();
    assert!(server.terminate(Duration::from_secs(20)).success());

    // The last event removed.
    {
        let (store, _) =
            lotline_server::open_store(&lotline_server::ServeConfig::new(&data)).unwrap();
        store.tamper_record_for_test(21, None).unwrap();
    }
    let bad = lotline(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("the tree covers 21 events but the log holds 20"),
        "{}",
        stderr(&bad)
    );

    // A careful forger also rewrites an old event and rebuilds the whole tree:
    // the store is self-consistent again, but the saved checkpoint exposes it.
    {
        let (store, _) =
            lotline_server::open_store(&lotline_server::ServeConfig::new(&data)).unwrap();
        let mut bytes = store.record_bytes(3).unwrap().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        store.tamper_record_for_test(3, Some(bytes)).unwrap();
        store.drop_tree_for_test().unwrap();
        // A missing tree is never rebuilt silently...
        assert!(matches!(
            store.check_tree(false).unwrap(),
            lotline_store::TreeCheck::Mismatch { .. }
        ));
        // ...only on an operator's word (serve --build-tree), which the forger gives.
        assert_eq!(
            store.rebuild_tree().unwrap(),
            lotline_store::TreeCheck::Built { size: 20 }
        );
    }
    let self_consistent = lotline(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(
        self_consistent.status.code(),
        Some(0),
        "{}",
        stderr(&self_consistent)
    );
    let exposed = lotline(&[
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--checkpoint",
        saved_path.to_str().unwrap(),
    ]);
    assert_eq!(exposed.status.code(), Some(1), "{}", stdout(&exposed));
    assert!(
        stderr(&exposed).contains("entries were removed")
            || stderr(&exposed).contains("history was rewritten"),
        "{}",
        stderr(&exposed)
    );
}
