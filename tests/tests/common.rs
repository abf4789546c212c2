//! Shared helpers for the end-to-end tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use lotline_proto::v1;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use tonic::transport::Channel;

/// Runs the real `lotline` binary with `args` and returns its output; a run that
/// takes over two minutes is killed and fails the test.
pub fn lotline(args: &[&str]) -> Output {
    let mut command = Command::new(lotline_testkit::lotline_bin());
    lotline_testkit::clear_lotline_env(&mut command);
    let child = command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lotline");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(output) => output.expect("lotline output"),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("lotline {args:?} did not finish within 120 s")
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes events as JSON Lines in the proto3 JSON mapping.
pub fn write_jsonl(path: &Path, events: &[v1::Event]) {
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json") + "\n")
        .collect();
    std::fs::write(path, text).expect("write jsonl");
}

/// Every stored event, in log order, following cursors.
pub async fn all_events(client: &mut ProvenanceServiceClient<Channel>) -> Vec<v1::StoredEvent> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_events(v1::ListEventsRequest {
                cursor: cursor.clone(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("list events")
            .into_inner();
        out.extend(page.events);
        if page.next_cursor.is_empty() {
            return out;
        }
        cursor = page.next_cursor;
    }
}

/// How many times each event id is in the log.
pub fn id_counts(events: &[v1::StoredEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts
            .entry(e.event.as_ref().expect("event").event_id.clone())
            .or_insert(0) += 1;
    }
    counts
}
