//! Shared helpers for the end-to-end tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use lotline_proto::v1;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};
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

/// `lotline ARGS --server URL --json`, which must succeed, parsed.
pub fn json_answer(url: &str, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["--server", url, "--json"]);
    let out = lotline(&full);
    assert_eq!(
        out.status.code(),
        Some(0),
        "lotline {full:?} failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lotline {full:?} printed no JSON ({e}): {}", stdout(&out)))
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

/// A gRPC channel to a node.
pub async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect to a node")
}

/// A plain NATS client, as any producer would use.
pub async fn nats_client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to the test's nats-server")
}

/// One message as a producer sends it: subject, headers, payload.
#[derive(Clone, Debug)]
pub struct Msg {
    pub subject: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Vec<u8>,
}

impl Msg {
    /// An event as protobuf on `lotline.events.<chain>.<org>` with Nats-Msg-Id `<org>.<event id>`.
    pub fn event(e: &v1::Event) -> Msg {
        use prost::Message;
        let chain = if e.chain.is_empty() { "none" } else { &e.chain };
        Msg {
            subject: format!("lotline.events.{chain}.{}", e.org),
            headers: vec![("Nats-Msg-Id", format!("{}.{}", e.org, e.event_id))],
            payload: e.encode_to_vec(),
        }
    }

    /// The same event in proto3 JSON.
    pub fn json(e: &v1::Event) -> Msg {
        let mut m = Msg::event(e);
        m.headers.push(("Content-Type", "application/json".into()));
        m.payload = serde_json::to_vec(e).expect("json");
        m
    }

    pub fn without_msg_id(mut self) -> Msg {
        self.headers.retain(|(k, _)| *k != "Nats-Msg-Id");
        self
    }
}

/// Publishes to JetStream and waits for the stream's ack, retrying while NATS is
/// away (a publisher's duty). Returns (stream sequence, dropped as duplicate).
pub async fn js_publish(js: &async_nats::jetstream::Context, m: &Msg) -> (u64, bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in &m.headers {
            headers.insert(*k, v.as_str());
        }
        let sent = js
            .publish_with_headers(m.subject.clone(), headers, m.payload.clone().into())
            .await;
        if let Ok(ack) = sent
            && let Ok(ack) = ack.await
        {
            return (ack.sequence, ack.duplicate);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "could not publish {} within 60 s",
            m.subject
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every quarantined input, following cursors.
pub async fn all_rejected(client: &mut ProvenanceServiceClient<Channel>) -> Vec<v1::RejectedInput> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_rejected(v1::ListRejectedRequest {
                cursor: cursor.clone(),
                limit: 1000,
            })
            .await
            .expect("list rejected")
            .into_inner();
        out.extend(page.rejected);
        if page.next_cursor.is_empty() {
            return out;
        }
        cursor = page.next_cursor;
    }
}

/// A certificate authority for the test.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate signed by `ca`: (certificate PEM, key PEM).
pub fn leaf(ca: &Ca, names: &[&str], cn: &str, ou: Option<&str>) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(ou) = ou {
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// Checks a C2SP signed note with ed25519-dalek directly, from the verifier key's
/// parts: nothing of lotline's own note code.
pub fn check_note_signature(note: &str, vkey: &str) {
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    let (name, key_id, key) = (parts[0], parts[1], STANDARD.decode(parts[2]).unwrap());
    assert_eq!(key[0], 1, "Ed25519 key type");
    let public: [u8; 32] = key[1..].try_into().unwrap();
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x01");
    h.update(public);
    assert_eq!(hex::encode(&h.finalize()[..4]), key_id, "key id");
    let (body, sigs) = note.split_once("\n\n").unwrap();
    let line = sigs
        .lines()
        .find(|l| l.starts_with(&format!("\u{2014} {name} ")))
        .expect("signature line");
    let blob = STANDARD.decode(line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(hex::encode(&blob[..4]), key_id);
    let signature = Signature::from_slice(&blob[4..]).unwrap();
    VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(format!("{body}\n").as_bytes(), &signature)
        .expect("checkpoint signature verifies");
}
