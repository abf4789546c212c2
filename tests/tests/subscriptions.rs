//! Standing queries over the real server: a named query defined over HTTP, its results paged,
//! and every way of following it as events are captured: a signed webhook (which first fails
//! and is retried), a WebSocket subscription, and gRPC `WatchEvents`; each resumed from a
//! sequence or a record time without missing an event.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use lotline_proto::v1;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_server::ServeConfig;
use lotline_testkit::TestServer;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "13df38d8275b13f05704629e5f1cf3d45d6132d5";

/// A post the receiver took: its `GS1-Signature` header and its body.
type Post = (Option<String>, String);

/// What the webhook receiver was sent.
#[derive(Clone, Default)]
struct Received {
    posts: Arc<Mutex<Vec<Post>>>,
    /// Posts to refuse (503) before taking any.
    refuse: Arc<Mutex<usize>>,
    attempts: Arc<Mutex<usize>>,
}

async fn hook(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *r.attempts.lock().unwrap() += 1;
    {
        let mut refuse = r.refuse.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let signature = headers
        .get("gs1-signature")
        .map(|v| v.to_str().unwrap().to_string());
    r.posts
        .lock()
        .unwrap()
        .push((signature, String::from_utf8(body.to_vec()).unwrap()));
    StatusCode::OK
}

/// A webhook receiver on loopback.
async fn receiver(refuse: usize) -> (SocketAddr, Received) {
    let received = Received::default();
    *received.refuse.lock().unwrap() = refuse;
    let app = axum::Router::new()
        .route("/hooks/{name}", axum::routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, received)
}

fn event_ids(document: &Value) -> Vec<String> {
    document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .unwrap_or_else(|| panic!("no eventList: {document}"))
        .iter()
        .map(|e| e["eventID"].as_str().unwrap().to_string())
        .collect()
}

/// Captures a fixture over HTTP; its job must succeed.
async fn capture(base: &str, file: &str) {
    let document = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/epcis")
            .join(file),
    )
    .unwrap();
    let job = lotline_testkit::rest::capture(base, document, None).await;
    assert_eq!(job["success"], true, "{job}");
}

/// Waits until `done` holds, for at most 30 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_json(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The event ids of the WebSocket messages at `url` until `count` have come.
async fn ws_ids(url: &str, count: usize) -> Vec<String> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ids = Vec::new();
    while ids.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a WebSocket message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let doc: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(doc["type"], "EPCISQueryDocument", "{doc}");
            ids.extend(event_ids(&doc));
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_query_is_followed_by_webhook_websocket_and_grpc_watch() {
    let (hooks, received) = receiver(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.http = Some("127.0.0.1:0".parse().unwrap());
    config.webhook_allow = vec![format!("http://{hooks}/hooks/")];
    let server = TestServer::start_with(config).await;
    let base = server.http_url();
    let ws_base = base.replace("http://", "ws://");

    // A named query: created, refused twice, listed, read back.
    let definition = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
    let created = post_json(&format!("{base}/queries"), &definition).await;
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(created.headers()["location"], "/queries/shipments");
    let again = post_json(&format!("{base}/queries"), &definition).await;
    assert_eq!(again.status().as_u16(), 409);
    let problem: Value = again.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "epcisException:ResourceAlreadyExistsException"
    );
    let bad = post_json(
        &format!("{base}/queries"),
        &json!({"name": "x", "query": {"EQ_quantity": ["5"]}}),
    )
    .await;
    assert_eq!(bad.status().as_u16(), 400);
    let listed: Value = reqwest::get(format!("{base}/queries"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([definition]));

    // Subscriptions: a webhook the operator allows, signed; one it does not allow is refused.
    let refused = post_json(
        &format!("{base}/queries/shipments/subscriptions"),
        &json!({"dest": "http://127.0.0.1:1/elsewhere", "stream": true}),
    )
    .await;
    assert_eq!(refused.status().as_u16(), 403);
    let neither = post_json(
        &format!("{base}/queries/shipments/subscriptions"),
        &json!({"dest": format!("http://{hooks}/hooks/a")}),
    )
    .await;
    assert_eq!(neither.status().as_u16(), 400);
    let never = post_json(
        &format!("{base}/queries/shipments/subscriptions"),
        &json!({"dest": format!("http://{hooks}/hooks/a"), "schedule": {"dayOfMonth": "31", "month": "2"}}),
    )
    .await;
    assert_eq!(never.status().as_u16(), 400);
    let subscribed = post_json(
        &format!("{base}/queries/shipments/subscriptions"),
        &json!({"dest": format!("http://{hooks}/hooks/a"), "signatureToken": SECRET, "stream": true}),
    )
    .await;
    assert_eq!(subscribed.status().as_u16(), 201);
    let location = subscribed.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let subscription: Value = subscribed.json().await.unwrap();
    assert!(!subscription.to_string().contains(SECRET), "{subscription}");
    assert_eq!(
        location,
        format!(
            "/queries/shipments/subscriptions/{}",
            subscription["subscriptionID"].as_str().unwrap()
        )
    );

    // A WebSocket subscriber and a gRPC watcher, both from now.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/queries/shipments/events?stream=true"))
            .await
            .unwrap();
    let mut grpc = ProvenanceServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut watch = grpc
        .watch_events(v1::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();

    capture(&base, "cocoa_chain.jsonld").await;

    // What the named query answers now is what every follower must get.
    let page: Value = reqwest::get(format!("{base}/queries/shipments/events?perPage=1000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shipments = event_ids(&page);
    assert!(shipments.len() >= 2, "{page}");
    assert_eq!(
        page["epcisBody"]["queryResults"]["queryName"], "shipments",
        "{page}"
    );
    let other = reqwest::get(format!(
        "{base}/queries/shipments/events?EQ_bizStep=receiving"
    ))
    .await
    .unwrap();
    assert_eq!(other.status().as_u16(), 400);

    // The webhook: refused twice, retried, then every shipment, signed, in order.
    eventually("the webhook's deliveries", || {
        received
            .posts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| event_ids(&serde_json::from_str(body).unwrap()).len())
            .sum::<usize>()
            >= shipments.len()
    })
    .await;
    assert!(*received.attempts.lock().unwrap() >= 3);
    let mut delivered = Vec::new();
    for (signature, body) in received.posts.lock().unwrap().iter() {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature.as_deref(), Some(expected.as_str()));
        let doc: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            doc["epcisBody"]["queryResults"]["subscriptionID"],
            subscription["subscriptionID"]
        );
        delivered.extend(event_ids(&doc));
    }
    assert_eq!(delivered, shipments);
    let state: Value = reqwest::get(format!("{base}{location}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["failures"], 0, "{state}");
    assert!(state["lastNotifiedAt"].is_string(), "{state}");

    // The WebSocket subscriber got the same events.
    let mut streamed = Vec::new();
    while streamed.len() < shipments.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a WebSocket message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            streamed.extend(event_ids(&serde_json::from_str(&text).unwrap()));
        }
    }
    assert_eq!(streamed, shipments);

    // The gRPC watcher got every event, in log order.
    let mut watched: Vec<v1::StoredEvent> = Vec::new();
    let recorded = {
        let mut client = ProvenanceServiceClient::connect(server.url())
            .await
            .unwrap();
        client
            .list_events(v1::ListEventsRequest {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events
    };
    while watched.len() < recorded.len() {
        let next = tokio::time::timeout(Duration::from_secs(30), watch.message())
            .await
            .expect("a watched event in time")
            .unwrap()
            .unwrap();
        watched.push(next);
    }
    assert_eq!(watched, recorded);

    // Resumed from a sequence, a watch misses nothing after it.
    let middle = recorded[recorded.len() / 2].sequence;
    let mut resumed = grpc
        .watch_events(v1::WatchEventsRequest {
            after_sequence: middle,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for expected in recorded.iter().filter(|e| e.sequence > middle) {
        let next = tokio::time::timeout(Duration::from_secs(30), resumed.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&next, expected);
    }
    let bad_time = grpc
        .watch_events(v1::WatchEventsRequest {
            from_record_time: "yesterday".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_time.code(), tonic::Code::InvalidArgument);

    // Resumed from a record time, a WebSocket subscriber gets every shipment again.
    let first_time = lotline_testkit::url_encode(&recorded[0].record_time);
    let again = ws_ids(
        &format!("{ws_base}/queries/shipments/events?stream=true&initialRecordTime={first_time}"),
        shipments.len(),
    )
    .await;
    assert_eq!(again, shipments);

    // Deleting the query ends its subscriptions.
    let client = reqwest::Client::new();
    let deleted = client
        .delete(format!("{base}/queries/shipments"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(
        reqwest::get(format!("{base}{location}"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{base}/queries/shipments/events"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_queries_and_subscriptions_belong_to_their_org_and_survive_a_restart() {
    let (hooks, received) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = ServeConfig::new(dir.path());
        config.http = Some("127.0.0.1:0".parse().unwrap());
        config.auth = Some(Default::default());
        config.webhook_allow = vec![format!("http://{hooks}/hooks/")];
        config
    };
    let server = TestServer::start_with(config()).await;
    let base = server.http_url();
    let key = dir.path().join(lotline_server::DEFAULT_ISSUER_KEY_FILE);
    let issuer = lotline_server::load_issuer(&key).unwrap();
    let token = |org: &str| {
        issuer
            .issue(
                &lotline_service::tokens::TokenRequest {
                    org: org.into(),
                    roles: vec![lotline_service::Role::Member],
                    lifetime_secs: 3600,
                    ..Default::default()
                },
                chrono::Utc::now(),
            )
            .unwrap()
            .token
    };
    let (brand, coop) = (token("brand-a"), token("coop-b"));
    let client = reqwest::Client::new();
    let definition = json!({"name": "mine", "query": {"eventType": ["ObjectEvent"]}});
    for t in [&brand, &coop] {
        let created = client
            .post(format!("{base}/queries"))
            .bearer_auth(t)
            .json(&definition)
            .send()
            .await
            .unwrap();
        // Each org has its own names.
        assert_eq!(created.status().as_u16(), 201);
    }
    let anonymous = client
        .post(format!("{base}/queries"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let subscribed: Value = client
        .post(format!("{base}/queries/mine/subscriptions"))
        .bearer_auth(&brand)
        .json(&json!({"dest": format!("http://{hooks}/hooks/brand"), "schedule": {"second": "0/2"}, "reportIfEmpty": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = subscribed["subscriptionID"].as_str().unwrap().to_string();
    let path = format!("{base}/queries/mine/subscriptions/{id}");
    // Another org sees none of it.
    let theirs = client.get(&path).bearer_auth(&coop).send().await.unwrap();
    assert_eq!(theirs.status().as_u16(), 404);

    // After a restart the query and the subscription are still there, and it still delivers
    // (an empty report, as it asked, on its schedule).
    drop(server);
    let server = TestServer::start_with(config()).await;
    let base = server.http_url();
    let path = format!("{base}/queries/mine/subscriptions/{id}");
    let kept: Value = client
        .get(&path)
        .bearer_auth(&brand)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["schedule"], json!({"second": "0/2"}), "{kept}");
    eventually("a scheduled empty report", || {
        !received.posts.lock().unwrap().is_empty()
    })
    .await;
    let (signature, body) = received.posts.lock().unwrap()[0].clone();
    assert_eq!(signature, None);
    assert!(event_ids(&serde_json::from_str(&body).unwrap()).is_empty());
    let unsubscribed = client
        .delete(&path)
        .bearer_auth(&brand)
        .send()
        .await
        .unwrap();
    assert_eq!(unsubscribed.status().as_u16(), 204);
    let listed: Value = client
        .get(format!("{base}/queries/mine/subscriptions"))
        .bearer_auth(&brand)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
}

/// The event ids of every document the receiver took, in order.
fn delivered_ids(received: &Received) -> Vec<String> {
    received
        .posts
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, body)| event_ids(&serde_json::from_str(body).unwrap()))
        .collect()
}

/// POSTs one event (the chain's first, under a new id) to `/events`.
async fn post_event(base: &str, id: &str) {
    let chain: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epcis/cocoa_chain.jsonld"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut event = chain["epcisBody"]["eventList"][0].clone();
    event["eventID"] = Value::from(id);
    event["@context"] = chain["@context"].clone();
    let created = post_json(&format!("{base}/events"), &event).await;
    assert_eq!(created.status().as_u16(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_websocket_subscribers_miss_nothing_across_a_restart() {
    let (hooks, received) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = ServeConfig::new(dir.path());
        config.http = Some("127.0.0.1:0".parse().unwrap());
        config.webhook_allow = vec![format!("http://{hooks}/hooks/")];
        config
    };
    let server = TestServer::start_with(config()).await;
    let base = server.http_url();
    let definition = json!({"name": "objects", "query": {"eventType": ["ObjectEvent"]}});
    assert_eq!(
        post_json(&format!("{base}/queries"), &definition)
            .await
            .status()
            .as_u16(),
        201
    );
    let subscribed = post_json(
        &format!("{base}/queries/objects/subscriptions"),
        &json!({"dest": format!("http://{hooks}/hooks/objects"), "stream": true}),
    )
    .await;
    assert_eq!(subscribed.status().as_u16(), 201);
    let ws = format!(
        "{}/queries/objects/events?stream=true",
        base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();

    capture(&base, "cocoa_chain.jsonld").await;
    let before: Value = reqwest::get(format!("{base}/queries/objects/events?perPage=1000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let before = event_ids(&before);
    eventually("the first deliveries", || {
        delivered_ids(&received).len() >= before.len()
    })
    .await;
    let mut streamed = Vec::new();
    let mut last_record_time = String::new();
    while streamed.len() < before.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a WebSocket message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let doc: Value = serde_json::from_str(&text).unwrap();
            for e in doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                .as_array()
                .unwrap()
            {
                last_record_time = e["recordTime"].as_str().unwrap().to_string();
            }
            streamed.extend(event_ids(&doc));
        }
    }
    assert_eq!(streamed, before);
    drop(socket);

    // The server restarts; events are recorded after it comes back.
    drop(server);
    let server = TestServer::start_with(config()).await;
    let base = server.http_url();
    let new = [
        "urn:uuid:7c0a1d2e-3b4f-4a5b-8c6d-0000000000b1",
        "urn:uuid:7c0a1d2e-3b4f-4a5b-8c6d-0000000000b2",
    ];
    for id in new {
        post_event(&base, id).await;
    }
    // The webhook resumes where it was: every event, the new ones last.
    eventually("the deliveries after the restart", || {
        let ids = delivered_ids(&received);
        new.iter().all(|n| ids.iter().any(|i| i == n))
    })
    .await;
    let delivered = delivered_ids(&received);
    let mut expected = before.clone();
    expected.extend(new.iter().map(|s| s.to_string()));
    // Repeats (at least once) are allowed; a delivery's events come together and in order.
    let (mut unique, mut expected) = (delivered.clone(), expected);
    unique.dedup();
    expected.dedup();
    assert_eq!(unique, expected, "delivered: {delivered:?}");
    // The WebSocket subscriber reconnects from the last record time it saw and misses nothing
    // (the events of that instant come again).
    let ws = format!(
        "{}/queries/objects/events?stream=true&initialRecordTime={}",
        base.replace("http://", "ws://"),
        lotline_testkit::url_encode(&last_record_time)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();
    let mut resumed = Vec::new();
    while !new.iter().all(|n| resumed.iter().any(|i: &String| i == n)) {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a WebSocket message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            resumed.extend(event_ids(&serde_json::from_str(&text).unwrap()));
        }
    }
    assert!(resumed.contains(before.last().unwrap()), "{resumed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_nats_mode_capture_goes_through_the_stream_and_subscriptions_deliver() {
    let nats = lotline_testkit::NatsServer::start();
    let (hooks, received) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.nats = Some(lotline_server::NatsSettings::new(nats.url()));
    config.http = Some("127.0.0.1:0".parse().unwrap());
    config.webhook_allow = vec![format!("http://{hooks}/hooks/")];
    let node = TestServer::start_with(config).await;
    let base = node.http_url();
    let definition = json!({"name": "all", "query": {}});
    assert_eq!(
        post_json(&format!("{base}/queries"), &definition)
            .await
            .status()
            .as_u16(),
        201
    );
    let subscribed = post_json(
        &format!("{base}/queries/all/subscriptions"),
        &json!({"dest": format!("http://{hooks}/hooks/all"), "stream": true}),
    )
    .await;
    assert_eq!(subscribed.status().as_u16(), 201);

    // A document with a bad event is rolled back: nothing of it reaches the stream.
    let errors =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epcis/errors.jsonld"))
            .unwrap();
    let job = lotline_testkit::rest::capture(&base, errors, None).await;
    assert_eq!(job["success"], false, "{job}");
    capture(&base, "cocoa_chain.jsonld").await;

    let page: Value = reqwest::get(format!("{base}/events?perPage=1000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = event_ids(&page);
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epcis/cocoa_chain.hashes"),
    )
    .unwrap()
    .lines()
    .count();
    assert_eq!(all.len(), reference, "{page}");
    eventually("the deliveries in NATS mode", || {
        delivered_ids(&received).len() >= all.len()
    })
    .await;
    let mut delivered = delivered_ids(&received);
    delivered.dedup();
    let mut expected = all.clone();
    expected.dedup();
    assert_eq!(delivered, expected);
}
