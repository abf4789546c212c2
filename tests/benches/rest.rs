//! The EPCIS REST binding against lotline's own ways in and out, measured in one run.
//!
//! Writes a generated cocoa, coffee and textile history as a client holding it would send it:
//! its master data in one document, its events in documents of at most `LOTLINE_BENCH_PART`
//! events each (100 000 by default; a million-event history is over the binding's file-size
//! limit as one document), and a tenth of it as serialised units (SGTINs in `epcList`) a brand
//! commissions. Then:
//! - captures every document over HTTP (`POST /capture`, each job polled to its end) into one
//!   server, with a webhook subscription of the units' events; captures them again into a
//!   second with `GS1-Capture-Error-Behaviour: proceed`; imports the same history with
//!   `lotline import` over gRPC into a third; prints the rates and their ratios, and how long
//!   after the last capture the webhook receiver had every unit event;
//! - asks the HTTP server for the events of units (`MATCH_epc`) and of lots
//!   (`MATCH_anyEPCClass`), a sample of each, several rounds, and the gRPC server for the same
//!   identifiers (`ListEvents` by lot); prints median and p99 of each and their ratio.
//!
//! `cargo bench -p lotline-e2e --bench rest`                               (20 000 events)
//! `LOTLINE_BENCH_EVENTS=1000000 cargo bench -p lotline-e2e --bench rest`

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use lotline_proto::v1;
use lotline_server::ServeConfig;
use lotline_testkit::{TestServer, lotline_bin, url_encode};
use serde_json::{Value, json};

/// Identifiers asked about per kind, and how many times each.
const ASKED: usize = 200;
const ROUNDS: usize = 5;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Unit events the webhook receiver has taken, and when it took the last of them.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<(usize, Option<Instant>)>>);

async fn hook(State(received): State<Received>, body: Bytes) -> StatusCode {
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .map_or(0, Vec::len);
    let mut taken = received.0.lock().expect("receiver");
    taken.0 += events;
    taken.1 = Some(Instant::now());
    StatusCode::NO_CONTENT
}

/// A webhook receiver on loopback: its address and what it has taken.
async fn receiver() -> (std::net::SocketAddr, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let address = listener.local_addr().expect("receiver address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    (address, received)
}

async fn server(dir: &Path, webhook_allow: Vec<String>) -> TestServer {
    let mut config = ServeConfig::new(dir);
    config.http = Some("127.0.0.1:0".parse().expect("address"));
    config.webhook_allow = webhook_allow;
    TestServer::start_with(config).await
}

/// Captures each document over HTTP, one after another as a client would; the seconds until
/// the last job has finished.
async fn capture(base: &str, documents: &[PathBuf], behaviour: Option<&str>) -> f64 {
    let started = Instant::now();
    for document in documents {
        let body = tokio::fs::read(document).await.expect("read document");
        let job = lotline_testkit::rest::capture(base, body, behaviour).await;
        assert_eq!(job["success"], true, "the capture failed: {job}");
    }
    started.elapsed().as_secs_f64()
}

/// `lotline import` of each document over gRPC; the seconds it took.
fn import(url: &str, documents: &[PathBuf]) -> f64 {
    let started = Instant::now();
    for document in documents {
        let output = Command::new(lotline_bin())
            .args(["import", "--quiet", "--server", url])
            .arg(document)
            .stdin(Stdio::null())
            .output()
            .expect("run lotline import");
        assert!(
            output.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Median and p99 (ms) of asking HTTP `{base}/events?{parameter}=id` and gRPC `ListEvents`
/// of each id, [`ROUNDS`] times; every answer must hold an event.
async fn ask(
    base: &str,
    provenance: &mut v1::provenance_service_client::ProvenanceServiceClient<
        tonic::transport::Channel,
    >,
    parameter: &str,
    ids: &[String],
) -> ((f64, f64), (f64, f64)) {
    let client = reqwest::Client::new();
    let mut over_http = Vec::new();
    let mut over_grpc = Vec::new();
    for _ in 0..ROUNDS {
        for id in ids {
            let started = Instant::now();
            let response = client
                .get(format!(
                    "{base}/events?perPage=1000&{parameter}={}",
                    url_encode(id)
                ))
                .send()
                .await
                .expect("query");
            assert_eq!(response.status().as_u16(), 200);
            let body: Value = response.json().await.expect("body");
            over_http.push(started.elapsed().as_secs_f64() * 1e3);
            let found = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                .as_array()
                .map_or(0, Vec::len);
            assert!(found > 0, "no events for {parameter}={id}");

            let started = Instant::now();
            let listed = provenance
                .list_events(v1::ListEventsRequest {
                    lot: id.clone(),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .expect("ListEvents")
                .into_inner();
            over_grpc.push(started.elapsed().as_secs_f64() * 1e3);
            assert_eq!(listed.events.len(), found, "gRPC and HTTP differ on {id}");
        }
    }
    over_http.sort_by(f64::total_cmp);
    over_grpc.sort_by(f64::total_cmp);
    (
        (percentile(&over_http, 0.5), percentile(&over_http, 0.99)),
        (percentile(&over_grpc, 0.5), percentile(&over_grpc, 0.99)),
    )
}

fn sample(ids: impl ExactSizeIterator<Item = String>) -> Vec<String> {
    let step = (ids.len() / ASKED).max(1);
    ids.step_by(step).take(ASKED).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env_usize("LOTLINE_BENCH_EVENTS", 20_000);
    let per_part = env_usize("LOTLINE_BENCH_PART", 100_000);
    let unit_events = total / 10;
    // Built (if it must be) before anything is timed.
    let _ = lotline_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    let create = |name: &str| BufWriter::new(File::create(path(name)).expect("create document"));
    let truth = lotline_testkit::epcis::write_chain_documents(
        create("master.jsonld"),
        create("events.jsonld"),
        11,
        total - unit_events,
    )
    .expect("write documents");
    let units = lotline_testkit::epcis::write_unit_events(create("units.jsonld"), 11, unit_events)
        .expect("write units");
    let parts = lotline_testkit::epcis::split_events(
        BufReader::new(File::open(path("events.jsonld")).expect("open events")),
        per_part,
        |n| File::create(path(&format!("part-{n}.jsonld"))),
    )
    .expect("split the events");
    let events = truth.events + unit_events;

    let (hooks, received) = receiver().await;
    let http = server(&path("http"), vec![format!("http://{hooks}/")]).await;
    let grpc = server(&path("grpc"), Vec::new()).await;
    let base = http.http_url();
    let post = |url: String, body: Value| {
        let client = reqwest::Client::new();
        async move {
            let response = client.post(url).json(&body).send().await.expect("POST");
            assert_eq!(response.status().as_u16(), 201, "{body}");
        }
    };
    post(
        format!("{base}/queries"),
        json!({"name": "units", "query": {"EQ_action": ["ADD"], "EQ_bizLocation": [lotline_testkit::epcis::unit_site()]}}),
    )
    .await;
    post(
        format!("{base}/queries/units/subscriptions"),
        json!({"dest": format!("http://{hooks}/hook"), "stream": true}),
    )
    .await;

    let mut history = vec![path("master.jsonld")];
    history.extend((0..parts).map(|n| path(&format!("part-{n}.jsonld"))));
    let captured_history = capture(&base, &history, None).await;
    assert_eq!(
        received.0.lock().expect("receiver").0,
        0,
        "only units are subscribed to"
    );
    let units_started = Instant::now();
    let captured_units = capture(&base, &[path("units.jsonld")], None).await;
    let captured = captured_history + captured_units;
    let units_captured = Instant::now();

    // The same documents with `GS1-Capture-Error-Behaviour: proceed`: no checking pass first.
    let proceeding = server(&path("proceed"), Vec::new()).await;
    let mut all = history.clone();
    all.push(path("units.jsonld"));
    let proceeded = capture(&proceeding.http_url(), &all, Some("proceed")).await;
    drop(proceeding);

    let url = grpc.url();
    let mut whole = vec![path("master.jsonld"), path("events.jsonld")];
    whole.push(path("units.jsonld"));
    let imported = tokio::task::spawn_blocking(move || import(&url, &whole))
        .await
        .expect("import thread");

    let expected = unit_events;
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    let delivered_at = loop {
        let (taken, last) = *received.0.lock().expect("receiver");
        if taken >= expected {
            break last.expect("a delivery");
        }
        assert!(
            Instant::now() < deadline,
            "the webhook has {taken} of {expected} events after 10 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    println!(
        "rest bench: {events} events ({} of history in {parts} documents of at most {per_part}, {unit_events} of units)",
        truth.events
    );
    println!(
        "  capture over HTTP:    {captured:7.2} s  {:8.0} events/s",
        events as f64 / captured
    );
    println!(
        "  capture, proceed:     {proceeded:7.2} s  {:8.0} events/s",
        events as f64 / proceeded
    );
    println!(
        "  lotline import, gRPC: {imported:7.2} s  {:8.0} events/s",
        events as f64 / imported
    );
    println!(
        "  ratio capture/import (rate): {:.2} (rollback, the default), {:.2} (proceed)",
        imported / captured,
        imported / proceeded
    );
    let lag = delivered_at.saturating_duration_since(units_captured);
    println!(
        "  webhook of the units' events: all {expected} delivered {:.2} s after their capture started ({:.2} s after it ended)",
        delivered_at.duration_since(units_started).as_secs_f64(),
        lag.as_secs_f64()
    );

    let mut provenance = grpc.provenance().await;
    let units_asked = sample(units.into_iter());
    let lots_asked = sample(truth.lots.keys().cloned().collect::<Vec<_>>().into_iter());
    for (parameter, ids) in [
        ("MATCH_epc", &units_asked),
        ("MATCH_anyEPCClass", &lots_asked),
    ] {
        let ((http_median, http_p99), (grpc_median, grpc_p99)) =
            ask(&base, &mut provenance, parameter, ids).await;
        println!(
            "  {parameter}, {} ids x {ROUNDS}: HTTP median {http_median:.2} ms (p99 {http_p99:.2}); gRPC ListEvents median {grpc_median:.2} ms (p99 {grpc_p99:.2}); ratio {:.2}",
            ids.len(),
            http_median / grpc_median
        );
    }
}
