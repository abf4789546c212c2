//! The EPCIS REST binding against lotline's own ways in and out, measured in one run.
//!
//! Writes a generated cocoa, coffee and textile history as one EPCIS 2.0 document, then:
//! - captures it over HTTP (`POST /capture`, the job polled to its end) into one server, and
//!   imports it with `lotline import` over gRPC into another, and prints both rates and their
//!   ratio;
//! - asks the HTTP server for the events of lots (`/events?MATCH_anyEPCClass=…`, every lot of a
//!   sample, several rounds) and the gRPC server for the same lots' events (`ListEvents` by
//!   lot), and prints the median and p99 of each and their ratio.
//!
//! `cargo bench -p lotline-e2e --bench rest`                               (20 000 events)
//! `LOTLINE_BENCH_EVENTS=1000000 cargo bench -p lotline-e2e --bench rest`

use std::fs::File;
use std::io::BufWriter;
use std::process::{Command, Stdio};
use std::time::Instant;

use lotline_proto::v1;
use lotline_server::ServeConfig;
use lotline_testkit::{TestServer, lotline_bin, url_encode};

/// Lots asked about, and how many times each.
const LOTS: usize = 200;
const ROUNDS: usize = 5;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn server(dir: &std::path::Path) -> TestServer {
    let mut config = ServeConfig::new(dir);
    config.http = Some("127.0.0.1:0".parse().expect("address"));
    TestServer::start_with(config).await
}

/// Captures `document` over HTTP; the seconds until its job has finished.
async fn capture(base: &str, document: &std::path::Path) -> f64 {
    let started = Instant::now();
    let body = tokio::fs::read(document).await.expect("read document");
    let job = lotline_testkit::rest::capture(base, body, None).await;
    assert_eq!(job["success"], true, "the capture failed: {job}");
    started.elapsed().as_secs_f64()
}

/// `lotline import` over gRPC; the seconds it took.
fn import(url: &str, document: &std::path::Path) -> f64 {
    let started = Instant::now();
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
    started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = env_usize("LOTLINE_BENCH_EVENTS", 20_000);
    // Built (if it must be) before anything is timed.
    let _ = lotline_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let document = dir.path().join("chain.jsonld");
    let truth = lotline_testkit::epcis::write_chain_document(
        BufWriter::new(File::create(&document).expect("create document")),
        11,
        events,
    )
    .expect("write document");

    let http = server(&dir.path().join("http")).await;
    let grpc = server(&dir.path().join("grpc")).await;
    let captured = capture(&http.http_url(), &document).await;
    let url = grpc.url();
    let doc = document.clone();
    let imported = tokio::task::spawn_blocking(move || import(&url, &doc))
        .await
        .expect("import thread");
    println!("rest bench: {events} events");
    println!(
        "  capture over HTTP:    {captured:7.2} s  {:8.0} events/s",
        events as f64 / captured
    );
    println!(
        "  lotline import, gRPC: {imported:7.2} s  {:8.0} events/s",
        events as f64 / imported
    );
    println!("  ratio capture/import (rate): {:.2}", imported / captured);

    // The events of lots: MATCH_anyEPCClass over HTTP against ListEvents by lot over gRPC.
    let lots: Vec<String> = truth
        .lots
        .keys()
        .step_by((truth.lots.len() / LOTS).max(1))
        .take(LOTS)
        .cloned()
        .collect();
    let client = reqwest::Client::new();
    let base = http.http_url();
    let mut provenance = grpc.provenance().await;
    let mut over_http = Vec::new();
    let mut over_grpc = Vec::new();
    for _ in 0..ROUNDS {
        for lot in &lots {
            let started = Instant::now();
            let response = client
                .get(format!(
                    "{base}/events?perPage=1000&MATCH_anyEPCClass={}",
                    url_encode(lot)
                ))
                .send()
                .await
                .expect("query");
            assert_eq!(response.status().as_u16(), 200);
            let body = response.bytes().await.expect("body");
            over_http.push(started.elapsed().as_secs_f64() * 1e3);
            assert!(body.len() > 100, "no events for {lot}");

            let started = Instant::now();
            let listed = provenance
                .list_events(v1::ListEventsRequest {
                    lot: lot.clone(),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .expect("ListEvents")
                .into_inner();
            over_grpc.push(started.elapsed().as_secs_f64() * 1e3);
            assert!(!listed.events.is_empty(), "no events for {lot}");
        }
    }
    over_http.sort_by(f64::total_cmp);
    over_grpc.sort_by(f64::total_cmp);
    println!(
        "  a lot's events, {} lots x {ROUNDS}: HTTP MATCH_anyEPCClass median {:.2} ms (p99 {:.2}); gRPC ListEvents median {:.2} ms (p99 {:.2}); ratio {:.2}",
        lots.len(),
        percentile(&over_http, 0.5),
        percentile(&over_http, 0.99),
        percentile(&over_grpc, 0.5),
        percentile(&over_grpc, 0.99),
        percentile(&over_http, 0.5) / percentile(&over_grpc, 0.5)
    );
}
