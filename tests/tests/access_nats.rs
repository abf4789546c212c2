//! Parties and access in NATS mode: two nodes with `--auth` on one stream (a real
//! nats-server) accept the same tokens, relay authorised gRPC writes on the relay subjects,
//! decide every message from the stream alone (an org's own publish as a member, a relayed
//! write by its caller's rights, a revoked token refused by both), and end with the same root.

mod common;

use std::path::Path;
use std::time::Duration;

use async_nats::HeaderMap;
use lotline_proto::build;
use lotline_proto::v1;
use lotline_proto::v1::event::Kind;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_server::{AuthSettings, NatsSettings, ServeConfig, load_issuer};
use lotline_service::Role;
use lotline_service::tokens::{Issuer, TokenRequest};
use lotline_testkit::events::event;
use lotline_testkit::{NatsServer, TestServer};
use prost::Message as _;
use tonic::{Code, Request};

const WAIT: Duration = Duration::from_secs(60);

fn call<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

fn token(issuer: &Issuer, org: &str, role: Role) -> (String, String) {
    let issued = issuer
        .issue(
            &TokenRequest {
                org: org.into(),
                roles: vec![role],
                lifetime_secs: 3600,
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .expect("issue");
    (issued.token, issued.id)
}

fn node(dir: &Path, nats: &NatsServer, id: &str, auth: AuthSettings) -> ServeConfig {
    let mut settings = NatsSettings::new(nats.url());
    settings.node_id = Some(id.into());
    let mut config = ServeConfig::new(dir);
    config.nats = Some(settings);
    config.auth = Some(auth);
    config
}

fn registration(org: &str) -> v1::Event {
    let mut e = event(
        &format!("reg-{org}"),
        org,
        build::register_org(format!("{org} ltd"), v1::OrgRole::Cooperative, "GH"),
    );
    e.chain = String::new();
    e
}

async fn checkpoint(server: &TestServer, token: &str) -> v1::Checkpoint {
    LogServiceClient::new(server.channel().await)
        .get_checkpoint(call(v1::GetCheckpointRequest { tree_size: 0 }, token))
        .await
        .expect("checkpoint")
        .into_inner()
}

async fn rejected(server: &TestServer, token: &str) -> Vec<v1::RejectedInput> {
    ProvenanceServiceClient::new(server.channel().await)
        .list_rejected(call(v1::ListRejectedRequest::default(), token))
        .await
        .expect("quarantine")
        .into_inner()
        .rejected
}

/// Waits until both nodes hold `size` entries.
async fn both_at(a: &TestServer, b: &TestServer, token: &str, size: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (x, y) = (
            checkpoint(a, token).await.tree_size,
            checkpoint(b, token).await.tree_size,
        );
        if x >= size && y >= size {
            assert_eq!((x, y), (size, size), "more entries than expected");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nodes at {x} and {y} entries, not {size}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_accept_the_same_tokens_and_decide_the_same_from_the_stream() {
    let nats = NatsServer::start();
    let dir_a = tempfile::tempdir().expect("temp dir");
    let dir_b = tempfile::tempdir().expect("temp dir");
    // Node a holds the issuer's key; node b only its public key.
    let config_a = node(dir_a.path(), &nats, "a", AuthSettings::default());
    let issuer = load_issuer(&config_a.issuer_key_path()).expect("issuer");
    let config_b = node(
        dir_b.path(),
        &nats,
        "b",
        AuthSettings {
            issuer_key: None,
            issuer_public_key: Some(issuer.public_key()),
        },
    );
    let a = TestServer::start_with(config_a).await;
    let b = TestServer::start_with(config_b).await;
    let (admin, _) = token(&issuer, "operator", Role::Admin);
    let (coop, coop_id) = token(&issuer, "coop-a", Role::Member);
    let (auditor, _) = token(&issuer, "audit-co", Role::Auditor);

    // The admin registers orgs through node a; the co-op records through node b.
    let mut events_a = EventServiceClient::new(a.channel().await);
    let mut events_b = EventServiceClient::new(b.channel().await);
    for org in ["coop-a", "brand-b"] {
        events_a
            .record(call(
                v1::RecordRequest {
                    event: Some(registration(org)),
                },
                &admin,
            ))
            .await
            .expect("admin registers");
    }
    events_b
        .record(call(
            v1::RecordRequest {
                event: Some(event(
                    "h-1",
                    "coop-a",
                    build::harvest("L-1", "plot-1", "cocoa_beans", 100),
                )),
            },
            &coop,
        ))
        .await
        .expect("the co-op records through node b");
    // As another org: refused by the node, nothing published.
    let status = events_a
        .record(call(
            v1::RecordRequest {
                event: Some(event(
                    "h-evil",
                    "brand-b",
                    build::harvest("L-EVIL", "plot-1", "cocoa_beans", 100),
                )),
            },
            &coop,
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A plain NATS client publishing as the co-op: an org registration on its own subject is
    // beyond a member's rights, and the brand's event on the co-op's subject is not its own.
    let client = common::nats_client(&nats.url()).await;
    let js = async_nats::jetstream::new(client.clone());
    let publish = |subject: &str, e: v1::Event| {
        let js = js.clone();
        let subject = subject.to_string();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{}.{}", e.org, e.event_id).as_str());
            js.publish_with_headers(subject, headers, e.encode_to_vec().into())
                .await
                .expect("publish")
                .await
                .expect("stored");
        }
    };
    publish("lotline.events.none.coop-a", registration("coop-a-2")).await;
    let mut self_registration = registration("coop-a");
    self_registration.event_id = "reg-coop-a-again".into();
    publish("lotline.events.none.coop-a", self_registration).await;

    // The admin revokes the co-op's token through node a.
    let mut revoke = event(
        &lotline_domain::RevokeToken::event_id(&coop_id),
        "operator",
        Kind::RevokeToken(v1::RevokeToken {
            token_id: coop_id.clone(),
            reason: "test".into(),
        }),
    );
    revoke.chain = String::new();
    events_a
        .record(call(
            v1::RecordRequest {
                event: Some(revoke),
            },
            &admin,
        ))
        .await
        .expect("revoke");
    // A relay of the revoked token's write (as a node that had not yet heard of the
    // revocation would publish it): both nodes refuse it from the stream.
    let late = event(
        "h-late",
        "coop-a",
        build::harvest("L-LATE", "plot-1", "cocoa_beans", 1),
    );
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", "coop-a.h-late");
    headers.insert("Lotline-Caller-Org", "coop-a");
    headers.insert("Lotline-Caller-Roles", "member");
    headers.insert("Lotline-Token-Id", coop_id.as_str());
    headers.insert(
        "Lotline-Token-Expires",
        (chrono::Utc::now().timestamp() + 3600).to_string().as_str(),
    );
    js.publish_with_headers(
        "lotline.relay.cocoa.coop-a",
        headers,
        late.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");

    // Both nodes: 2 registrations, the harvest, the revocation; three messages quarantined.
    both_at(&a, &b, &auditor, 4).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (ra, rb) = (rejected(&a, &auditor).await, rejected(&b, &auditor).await);
        if ra.len() >= 3 && rb.len() >= 3 {
            for r in [&ra, &rb] {
                let reasons: Vec<_> = r
                    .iter()
                    .map(|q| (q.event_id.clone(), q.reason.clone()))
                    .collect();
                assert_eq!(r.len(), 3, "{reasons:?}");
                assert!(
                    reasons
                        .iter()
                        .any(|(id, why)| id == "h-late" && why.contains("revoked")),
                    "{reasons:?}"
                );
                assert!(
                    reasons
                        .iter()
                        .any(|(id, why)| id == "reg-coop-a-again" && why.contains("admin")),
                    "{reasons:?}"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "quarantines: {ra:?} / {rb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ca, cb) = (
        checkpoint(&a, &auditor).await,
        checkpoint(&b, &auditor).await,
    );
    assert_eq!(ca.root_hash, cb.root_hash, "the nodes disagree");

    // The revoked token is refused by both nodes at the door.
    for server in [&a, &b] {
        let status = EventServiceClient::new(server.channel().await)
            .record(call(
                v1::RecordRequest {
                    event: Some(event(
                        "h-2",
                        "coop-a",
                        build::harvest("L-2", "plot-1", "cocoa_beans", 1),
                    )),
                },
                &coop,
            ))
            .await
            .expect_err("revoked");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }

    // What the nodes relayed for the admin carries the caller in the stream, not the token.
    let stream = js.get_stream("LOTLINE_EVENTS").await.expect("stream");
    let first = stream.get_raw_message(1).await.expect("first message");
    assert_eq!(first.subject.as_str(), "lotline.relay.none.coop-a");
    let headers = first.headers;
    assert_eq!(
        headers.get("Lotline-Caller-Org").map(|v| v.as_str()),
        Some("operator")
    );
    assert!(
        !format!("{headers:?}").contains(&admin),
        "the token went into the stream"
    );
    drop(events_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_producers_reach_a_nats_server_that_requires_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = common::ca("nats test CA");
    let (cert, key) = common::leaf(&authority, &["127.0.0.1", "localhost"], "nats", None);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let ca_file = write("ca.pem", &authority.pem);
    let cert_file = write("nats.pem", &cert);
    let key_file = write("nats.key", &key);
    let nats = NatsServer::start_with(&["--tls", "--tlscert", &cert_file, "--tlskey", &key_file]);
    let url = format!("tls://127.0.0.1:{}", nats.port());

    // A client that does not trust the server's CA is not let in.
    let untrusted = tokio::time::timeout(
        Duration::from_secs(10),
        async_nats::ConnectOptions::new().connect(url.as_str()),
    )
    .await;
    assert!(
        !matches!(untrusted, Ok(Ok(_))),
        "a client without the CA connected"
    );

    // The node consumes over TLS, trusting the CA.
    let mut settings = NatsSettings::new(url.clone());
    settings.node_id = Some("tls".into());
    settings.client.tls_ca = Some(ca_file.clone().into());
    let mut config = ServeConfig::new(dir.path().join("node"));
    config.nats = Some(settings);
    let node = TestServer::start_with(config).await;

    // A producer publishes with `lotline publish --nats-tls-ca`.
    let events = [
        registration("coop-a"),
        event(
            "h-tls",
            "coop-a",
            build::harvest("L-TLS", "plot-1", "cocoa_beans", 5),
        ),
    ];
    let file = dir.path().join("events.jsonl");
    common::write_jsonl(&file, &events);
    let out = common::lotline(&[
        "publish",
        &file.display().to_string(),
        "--nats-url",
        &url,
        "--nats-tls-ca",
        &ca_file,
        "--outcomes",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    let deadline = std::time::Instant::now() + WAIT;
    let mut provenance = node.provenance().await;
    loop {
        let found = provenance
            .get_lot(v1::GetLotRequest {
                lot: "L-TLS".into(),
                public_view: false,
            })
            .await;
        if found.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event published over TLS was not applied: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_before_relaying_takes_the_relay_subjects() {
    let nats = NatsServer::start();
    let client = common::nats_client(&nats.url()).await;
    let js = async_nats::jetstream::new(client);
    // The stream as the release before access control made it.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "LOTLINE_EVENTS".into(),
        subjects: vec!["lotline.events.>".into()],
        ..Default::default()
    })
    .await
    .expect("old stream");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = node(dir.path(), &nats, "a", AuthSettings::default());
    let issuer = load_issuer(&config.issuer_key_path()).expect("issuer");
    let server = TestServer::start_with(config).await;
    let (admin, _) = token(&issuer, "operator", Role::Admin);
    EventServiceClient::new(server.channel().await)
        .record(call(
            v1::RecordRequest {
                event: Some(registration("coop-a")),
            },
            &admin,
        ))
        .await
        .expect("a relayed write into the old stream");
    let mut stream = js.get_stream("LOTLINE_EVENTS").await.expect("stream");
    let subjects = stream.info().await.expect("info").config.subjects.clone();
    assert!(
        subjects.contains(&"lotline.relay.>".to_string()),
        "{subjects:?}"
    );
}

/// A NATS JWT (the `ed25519-nkey` algorithm) with `claims`, signed by `issuer`.
fn nats_jwt(issuer: &nkeys::KeyPair, claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", b64.encode(signature))
}

fn claims(
    issuer: &nkeys::KeyPair,
    subject: &nkeys::KeyPair,
    name: &str,
    nats: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "jti": format!("{name}-{}", subject.public_key()),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject.public_key(),
        "nats": nats,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_logs_in_with_decentralised_jwt_credentials() {
    // An operator, an account with JetStream, and a user for the node, as `nsc` would make.
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let system = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = nats_jwt(
        &operator,
        claims(
            &operator,
            &operator,
            "test",
            serde_json::json!({"type": "operator", "version": 2}),
        ),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = nats_jwt(
        &operator,
        claims(
            &operator,
            &account,
            "LOTLINE",
            serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
        ),
    );
    let system_jwt = nats_jwt(
        &operator,
        claims(
            &operator,
            &system,
            "SYS",
            serde_json::json!({"type": "account", "version": 2}),
        ),
    );
    let user_jwt = nats_jwt(
        &account,
        claims(
            &account,
            &user,
            "node",
            serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}),
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {acc}: {account_jwt}\n  {sys}: {system_jwt}\n}}\n",
            acc = account.public_key(),
            sys = system.public_key(),
        ),
    )
    .expect("nats config");
    let creds = dir.path().join("node.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().expect("seed")
        ),
    )
    .expect("creds");
    let nats = NatsServer::start_with(&["-c", &conf.display().to_string()]);

    // Without credentials: refused.
    let anonymous = tokio::time::timeout(
        Duration::from_secs(10),
        async_nats::ConnectOptions::new().connect(nats.url()),
    )
    .await;
    assert!(
        !matches!(anonymous, Ok(Ok(_))),
        "an anonymous client got in"
    );

    // The node with --nats-creds consumes, and a write goes through the stream.
    let mut settings = NatsSettings::new(nats.url());
    settings.node_id = Some("jwt".into());
    settings.client.creds = Some(creds);
    let mut config = ServeConfig::new(dir.path().join("node"));
    config.nats = Some(settings);
    let node = TestServer::start_with(config).await;
    let answer = node
        .events()
        .await
        .record(v1::RecordRequest {
            event: Some(registration("coop-a")),
        })
        .await
        .expect("recorded through the stream")
        .into_inner();
    assert!(matches!(
        answer.outcome.and_then(|o| o.result),
        Some(v1::outcome::Result::Accepted(_))
    ));
}
