//! How do the auditor answers grow with the log?
//!
//! Loads generated scenarios (cocoa and coffee co-ops with their member farms,
//! processing, sales, payments and certificates, plus textile chains) of two
//! sizes into the real server on a real sled directory, then times, over gRPC:
//! the anomaly listing (which reads the whole log), one co-op's mass balance
//! (its own events), one lot's EUDR export and one garment's chain report (their
//! lineage). Prints each median, per thousand events for the listing, and the
//! ratio of the larger log to the smaller, measured in one run.
//!
//! `cargo bench -p lotline-e2e --bench audit_scale`
//! `LOTLINE_BENCH_COOPS=10,40 cargo bench -p lotline-e2e --bench audit_scale` (co-ops per size; 50 farms each)

use std::time::{Duration, Instant};

use lotline_proto::v1;
use lotline_testkit::TestServer;
use lotline_testkit::scenario::Scenario;

const FARMS: usize = 50;
const GARMENTS: usize = 4;
const RUNS: usize = 5;

struct Figures {
    events: usize,
    anomalies: Duration,
    balance: Duration,
    eudr: Duration,
    chain: Duration,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn timed<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    median(times)
}

async fn measure(coops: usize) -> Figures {
    let scenario = Scenario::clean(7, coops, FARMS, GARMENTS);
    let events = scenario.all();
    let server = TestServer::start().await;
    server.record_all(&events).await;
    let audit = server.audit().await;
    let coop = scenario.coops[0].org.clone();
    let lot = scenario.coops[0].output().to_string();
    let garment = scenario.garments[0].lot.clone();
    let anomalies = timed(|| {
        let mut c = audit.clone();
        async move {
            let page = c
                .list_anomalies(v1::ListAnomaliesRequest::default())
                .await
                .expect("anomalies")
                .into_inner();
            assert_eq!(page.total, 0, "a clean scenario lists no anomaly");
        }
    })
    .await;
    let balance = timed(|| {
        let mut c = audit.clone();
        let org = coop.clone();
        async move {
            let l = c
                .mass_balance(v1::MassBalanceRequest {
                    org,
                    ..Default::default()
                })
                .await
                .expect("balance")
                .into_inner();
            assert!(!l.ledgers.is_empty());
        }
    })
    .await;
    let eudr = timed(|| {
        let mut c = audit.clone();
        let lot = lot.clone();
        async move {
            let e = c
                .eudr_export(v1::EudrExportRequest {
                    lot,
                    public_view: false,
                })
                .await
                .expect("eudr")
                .into_inner();
            assert_eq!(e.plots as usize, FARMS);
        }
    })
    .await;
    let chain = timed(|| {
        let mut c = audit.clone();
        let lot = garment.clone();
        async move {
            let r = c
                .chain_report(v1::ChainReportRequest {
                    lot,
                    public_view: false,
                })
                .await
                .expect("chain report")
                .into_inner();
            assert!(r.missing.is_empty());
        }
    })
    .await;
    server.stop().await.expect("stop");
    Figures {
        events: events.len(),
        anomalies,
        balance,
        eudr,
        chain,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let sizes = lotline_testkit::bench::sizes("LOTLINE_BENCH_COOPS", 2, &[10, 40]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| runtime.block_on(measure(n)))
        .collect();
    println!(
        "audit answers over gRPC, real sled store, median of {RUNS} runs ({FARMS} farms per co-op)"
    );
    println!(
        "{:>8} {:>10} {:>14} {:>12} {:>10} {:>10} {:>10}",
        "co-ops", "events", "anomalies ms", "per 1k ev ms", "balance ms", "eudr ms", "chain ms"
    );
    for (n, f) in sizes.iter().zip(&figures) {
        println!(
            "{:>8} {:>10} {:>14.1} {:>12.2} {:>10.2} {:>10.2} {:>10.2}",
            n,
            f.events,
            ms(f.anomalies),
            ms(f.anomalies) / (f.events as f64 / 1000.0),
            ms(f.balance),
            ms(f.eudr),
            ms(f.chain)
        );
    }
    if let (Some(small), Some(large)) = (figures.first(), figures.last()) {
        let growth = large.events as f64 / small.events as f64;
        println!(
            "log {growth:.1}x larger: anomaly listing {:.2}x the time ({:.2}x per event); one co-op's balance {:.2}x; one lot's EUDR {:.2}x; one garment's chain {:.2}x",
            ms(large.anomalies) / ms(small.anomalies),
            (ms(large.anomalies) / large.events as f64)
                / (ms(small.anomalies) / small.events as f64),
            ms(large.balance) / ms(small.balance),
            ms(large.eudr) / ms(small.eudr),
            ms(large.chain) / ms(small.chain),
        );
    }
}
