//! Operations: the real binary with `serve --metrics` answers Prometheus scrapes, liveness and
//! readiness on its own listener, writes JSON log lines with `--log-output json`, and with
//! `--otlp-endpoint` sends its traces to an OpenTelemetry collector (a stand-in on loopback
//! that decodes what it is sent with the OTLP protobuf definitions).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Msg, eventually, js_publish, lotline, nats_client, stderr, stdout};
use lotline_proto::v1;
use lotline_testkit::events::{harvest, register_org};
use lotline_testkit::{BinaryServer, NatsServer, log_field};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(60);

/// The operations listener's address, from the line the server logged when it bound it.
fn metrics_url(server: &BinaryServer) -> String {
    let address = server
        .startup
        .iter()
        .find_map(|line| log_field(line, "metrics_address"))
        .expect("the server logged its operations listener's address");
    format!("http://{address}")
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(base: &str) -> BTreeMap<String, f64> {
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    samples(&text)
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name}; the scrape had {:?}", samples.keys()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_report_what_the_node_did() {
    let dir = tempfile::tempdir().expect("dir");
    let server = BinaryServer::spawn_with(
        &dir.path().join("data"),
        "",
        &["--metrics", "127.0.0.1:0", "--log-output", "json"],
    )
    .await;
    // Every line is a JSON object with a level and a message.
    for line in &server.startup {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["message"].is_string(), "{line}");
    }
    let base = metrics_url(&server);
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!((status, body.trim()), (200, "serving reads and writes"));
    assert_eq!(get(&format!("{base}/readyz/reads")).await.0, 200);
    // The container's health check asks the same.
    let checked = lotline(&["healthcheck", "--url", &format!("{base}/readyz")]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert_eq!(stdout(&checked).trim(), "serving reads and writes");

    let events = v1::event_service_client::EventServiceClient::connect(server.url())
        .await
        .expect("connect");
    let record = |e: v1::Event| {
        let mut c = events.clone();
        async move { c.record(v1::RecordRequest { event: Some(e) }).await }
    };
    record(register_org("coop")).await.expect("record");
    record(harvest("h1", "coop", "LOT-1", 10))
        .await
        .expect("record");
    record(harvest("h1", "coop", "LOT-1", 10))
        .await
        .expect("a duplicate is answered");
    let refused = record(harvest("h2", "nobody", "LOT-2", 10))
        .await
        .expect_err("an unregistered org");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let mut provenance =
        v1::provenance_service_client::ProvenanceServiceClient::connect(server.url())
            .await
            .expect("connect");
    for _ in 0..3 {
        provenance
            .trace_back(v1::TraceBackRequest {
                lot: "LOT-1".into(),
                ..Default::default()
            })
            .await
            .expect("trace");
    }

    let s = scrape(&base).await;
    assert_eq!(
        value(&s, r#"lotline_events_total{outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        value(&s, r#"lotline_events_total{outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"lotline_events_total{outcome="rejected",reason="unregistered_org"}"#
        ),
        1.0
    );
    assert_eq!(value(&s, "lotline_tree_size"), 2.0);
    assert_eq!(value(&s, "lotline_ready"), 2.0);
    assert_eq!(value(&s, "lotline_writer_queue_jobs"), 0.0);
    assert!(value(&s, "lotline_store_bytes") > 0.0);
    // One batch per Record call: four batches, of one event each.
    assert_eq!(value(&s, "lotline_writer_batch_events_count"), 4.0);
    assert_eq!(value(&s, "lotline_writer_batch_events_sum"), 4.0);
    assert!(value(&s, "lotline_writer_flush_seconds_count") >= 3.0);
    assert!(value(&s, "lotline_writer_apply_seconds_count") >= 3.0);
    assert_eq!(
        value(
            &s,
            r#"lotline_rpc_duration_seconds_count{method="/lotline.v1.ProvenanceService/TraceBack"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            r#"lotline_rpc_duration_seconds_count{method="/lotline.v1.EventService/Record"}"#
        ),
        4.0
    );
    // No NATS: no stream figures.
    assert!(!s.keys().any(|k| k.starts_with("lotline_consumer_lag")));

    // SIGTERM: the process exits cleanly; its log lines stayed JSON to the end.
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_lag_follow_the_nats_stream() {
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let url = nats.url();
    let server = BinaryServer::spawn_with(
        &dir.path().join("data"),
        "",
        &[
            "--nats-url",
            url.as_str(),
            "--node-id",
            "ops",
            "--metrics",
            "127.0.0.1:0",
        ],
    )
    .await;
    let base = metrics_url(&server);
    let js = async_nats::jetstream::new(nats_client(&url).await);
    let mut published = 0;
    for e in [register_org("coop")]
        .into_iter()
        .chain((0..50).map(|n| harvest(&format!("h{n}"), "coop", &format!("LOT-{n}"), 5)))
    {
        js_publish(&js, &Msg::event(&e)).await;
        published += 1;
    }
    // The node catches up: applied = last, lag 0, the stream reachable.
    let s = eventually("the node to apply the stream", WAIT, || async {
        let s = scrape(&base).await;
        (s.get("lotline_consumer_lag_messages") == Some(&0.0)
            && s.get("lotline_stream_applied_sequence") == Some(&(published as f64)))
        .then_some(s)
    })
    .await;
    assert_eq!(value(&s, "lotline_stream_last_sequence"), published as f64);
    assert_eq!(value(&s, "lotline_stream_reachable"), 1.0);
    assert_eq!(value(&s, "lotline_tree_size"), published as f64);

    // NATS goes away: not ready for writes (and says why), still ready for reads, the stream
    // unreachable from the scrape.
    nats.stop(true);
    let body = eventually("readiness to turn 503", WAIT, || async {
        let (status, body) = get(&format!("{base}/readyz")).await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(body.contains("reads only"), "{body}");
    assert!(body.contains("NATS"), "{body}");
    assert_eq!(get(&format!("{base}/readyz/reads")).await.0, 200);
    let checked = lotline(&["healthcheck", "--url", &format!("{base}/readyz")]);
    assert_eq!(checked.status.code(), Some(1), "{}", stdout(&checked));
    assert!(stderr(&checked).contains("503"), "{}", stderr(&checked));
    let checked = lotline(&["healthcheck", "--url", &format!("{base}/readyz/reads")]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    let s = scrape(&base).await;
    assert_eq!(value(&s, "lotline_stream_reachable"), 0.0);
    assert_eq!(value(&s, "lotline_ready"), 1.0);

    // Nothing listening: exit 2.
    let checked = lotline(&["healthcheck", "--url", "http://127.0.0.1:1/readyz"]);
    assert_eq!(checked.status.code(), Some(2), "{}", stderr(&checked));

    // Back: ready again, and the lag figures return.
    nats.restart();
    eventually("readiness to return", WAIT, || async {
        (get(&format!("{base}/readyz")).await.0 == 200).then_some(())
    })
    .await;
    eventually("the stream to be reachable again", WAIT, || async {
        let s = scrape(&base).await;
        (s.get("lotline_stream_reachable") == Some(&1.0)
            && s.get("lotline_consumer_lag_messages") == Some(&0.0))
        .then_some(())
    })
    .await;
}

/// A stand-in OpenTelemetry collector on loopback: every OTLP/HTTP trace export it is sent.
async fn collector() -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let received: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request =
                    ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                store.lock().expect("lock").push(request);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// (service name, trace id, span id, parent span id, span name) of every span received.
type SpanRow = (String, Vec<u8>, Vec<u8>, Vec<u8>, String);

fn spans(received: &Mutex<Vec<ExportTraceServiceRequest>>) -> Vec<SpanRow> {
    let mut out = Vec::new();
    for request in received.lock().expect("lock").iter() {
        for resource in &request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    out.push((
                        service.clone(),
                        span.trace_id.clone(),
                        span.span_id.clone(),
                        span.parent_span_id.clone(),
                        span.name.clone(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_opentelemetry_collector_in_the_callers_trace() {
    let (endpoint, received) = collector().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = BinaryServer::spawn_with(
        &dir.path().join("data"),
        "",
        &["--otlp-endpoint", &endpoint],
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut events = v1::event_service_client::EventServiceClient::new(channel.clone());
    for e in [register_org("coop"), harvest("h1", "coop", "L1", 10)] {
        events
            .record(v1::RecordRequest { event: Some(e) })
            .await
            .expect("record");
    }
    // The caller's trace: W3C trace context, as an instrumented client sends it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(v1::TraceBackRequest {
        lot: "L1".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01")
            .parse()
            .expect("header"),
    );
    v1::provenance_service_client::ProvenanceServiceClient::new(channel)
        .trace_back(request)
        .await
        .expect("trace back");

    let want_trace = hex::decode(trace_id).expect("hex");
    let (call, handler) = eventually("the TraceBack spans at the collector", WAIT, || async {
        let all = spans(&received);
        let call = all
            .iter()
            .find(|s| s.1 == want_trace && s.4 == "/lotline.v1.ProvenanceService/TraceBack")?;
        let handler = all
            .iter()
            .find(|s| s.1 == want_trace && s.4 == "trace_back")?;
        Some((call.clone(), handler.clone()))
    })
    .await;
    assert_eq!(call.0, "lotline", "the service name");
    assert_eq!(
        call.3,
        hex::decode(caller_span).expect("hex"),
        "the call's span is a child of the caller's"
    );
    assert_eq!(handler.3, call.2, "the handler's span is inside the call's");
    // Calls without a traceparent start traces of their own.
    let records: Vec<SpanRow> = spans(&received)
        .into_iter()
        .filter(|s| s.4 == "/lotline.v1.EventService/Record")
        .collect();
    assert!(
        records.len() == 2 && records.iter().all(|s| s.1 != want_trace),
        "{records:?}"
    );
}
