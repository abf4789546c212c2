//! How long the lot's public page takes (issue 19: under 200 ms of server time for a lot with
//! 700 origins), against the public trace JSON of the same lot, measured in the same run.
//!
//! Loads the clean multi-chain scenario (`lotline_testkit::scenario`: cocoa and coffee
//! co-operatives of 50 member farms each, every plot registered with its polygon, processing,
//! sales to a trader, the trader's sales to the brand, the brand's products) into the real server
//! (in process, sled, the HTTP door on loopback). The chocolate brand then makes one bar lot, a
//! GS1 Digital Link, of every cocoa product it holds: its origins are every farm lot of every
//! cocoa co-op. Then, over HTTP, medians of 15 after one warm-up: `GET /01/{gtin}/10/{lot}` as a
//! browser asks it (the page: trace, chain report, EUDR verdict, co-ops, checkpoint, map) and
//! with `Accept: application/json` (the trace alone). Each time is the whole round trip on
//! loopback, the answer read to its end.
//!
//! `cargo bench -p lotline-e2e --bench lot_page`                               (8 and 28 co-ops)
//! `LOTLINE_BENCH_COOPS=56 cargo bench -p lotline-e2e --bench lot_page`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lotline_proto::{build, v1};
use lotline_server::ServeConfig;
use lotline_testkit::TestServer;
use lotline_testkit::scenario::{COCOA_BRAND, Crop, Scenario};

const FARMS: usize = 50;
const RUNS: usize = 15;
const BAR: &str = "https://id.gs1.org/01/04012345000016/10/BAR-BENCH";

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn timed(client: &reqwest::Client, url: &str, accept: &str) -> (Duration, String) {
    let get = || async {
        let started = Instant::now();
        let response = client
            .get(url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body = response.text().await.unwrap();
        (started.elapsed(), body)
    };
    let (_, body) = get().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(get().await.0);
    }
    (median(times), body)
}

/// The brand makes the bar of every cocoa product it holds.
async fn make_bar(server: &TestServer, client: &reqwest::Client, scenario: &Scenario) {
    let mut inputs = Vec::new();
    for coop in scenario.coops.iter().filter(|c| c.crop == Crop::Cocoa) {
        let Some(lot) = coop.forward.as_ref().and_then(|f| f.product_lot.clone()) else {
            continue;
        };
        let url = format!(
            "{}/lotline/v1/lots/{}",
            server.http_url(),
            lotline_testkit::url_encode(&lot)
        );
        let answer: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["holder"], COCOA_BRAND, "{lot}");
        let amount = answer["remaining"]["quantity"].to_string();
        let unit = answer["remaining"]["unit"].as_str().unwrap().to_string();
        inputs.push(build::lot_quantity(lot, amount, &unit));
    }
    server
        .record_all(&[build::event(
            "bench-bar",
            "2026-11-30T10:00:00Z",
            COCOA_BRAND,
            "cocoa",
            v1::event::Kind::Transform(v1::Transform {
                inputs,
                outputs: vec![build::output(
                    BAR,
                    "dark chocolate bar 100 g",
                    100_000,
                    "pcs",
                    &[],
                )],
                process: "manufacturing".into(),
                conversion_ratio: String::new(),
            }),
        )])
        .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("LOTLINE_BENCH_COOPS")
        .unwrap_or_else(|_| "8,28".into())
        .split(',')
        .map(|s| s.trim().parse().expect("LOTLINE_BENCH_COOPS: numbers"))
        .collect();
    println!(
        "the lot page against the public trace JSON, over HTTP on loopback (medians of {RUNS})"
    );
    println!(
        "{:>6} {:>8} {:>8} {:>6} {:>11} {:>9} {:>9} {:>6}",
        "co-ops", "events", "origins", "plots", "page bytes", "page ms", "trace ms", "ratio"
    );
    for coops in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::new(dir.path().join("data"));
        config.http = Some("127.0.0.1:0".parse().unwrap());
        let server = TestServer::start_with(config).await;
        let scenario = Scenario::clean(7, coops, FARMS, 0);
        let events = scenario.all();
        server.record_all(&events).await;
        let client = reqwest::Client::new();
        make_bar(&server, &client, &scenario).await;
        let url = format!(
            "{}{}",
            server.http_url(),
            BAR.strip_prefix("https://id.gs1.org").unwrap()
        );
        let (page, html) = timed(&client, &url, "text/html").await;
        let (trace, json) = timed(&client, &url, "application/json").await;
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let origins = json["origins"].as_array().unwrap();
        let plots: BTreeSet<&str> = origins.iter().filter_map(|o| o["plot"].as_str()).collect();
        assert_eq!(
            html.matches("<g class=\"plot").count(),
            plots.len(),
            "one shape per plot on the map"
        );
        println!(
            "{:>6} {:>8} {:>8} {:>6} {:>11} {:>9.2} {:>9.2} {:>5.2}x",
            coops,
            events.len() + 1,
            origins.len(),
            plots.len(),
            html.len(),
            ms(page),
            ms(trace),
            ms(page) / ms(trace)
        );
    }
}
