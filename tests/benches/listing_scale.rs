//! Does an anomaly question cost in proportion to its answer, or to the log (issue 18)?
//!
//! Loads generated co-ops (cocoa and coffee, 50 member farms each, processing, sales, payments,
//! certificates) and textile chains into the real server on a real sled directory, then times
//! over gRPC:
//! - the first anomaly listing: the maintained state is built from the whole log (what every
//!   first question after a write cost before the listing was maintained);
//! - the listing again, nothing written since;
//! - the listing asked right after one new delivery (a farm's harvest, its shipment, the co-op's
//!   receipt: 3 events), which brings the state forward by them;
//! - the listing right after 1 000 new deliveries (3 000 events across every co-op);
//! - one co-op's mass balance (kept with the listing);
//! - the first listing after the server restarts on the same data directory, from the state it
//!   kept there (once, not a median).
//!
//! Then, on the same data directory with the server stopped, times the full scan (the listing
//! as every question computed it before it was maintained) against building the maintained
//! state, and checks both list what the server answered.
//!
//! Medians of 5; prints each size and the ratios between the sizes, measured in one run.
//!
//! `cargo bench -p lotline-e2e --bench listing_scale`                                   (40 and 160 co-ops)
//! `LOTLINE_BENCH_COOPS=800,3200 cargo bench -p lotline-e2e --bench listing_scale`   (290 000 and 1.16 M events)

use std::time::{Duration, Instant};

use lotline_proto::{build, v1};
use lotline_testkit::TestServer;
use lotline_testkit::scenario::Scenario;

const FARMS: usize = 50;
const GARMENTS: usize = 4;
const RUNS: usize = 5;
const BATCH: usize = 1_000;

struct Figures {
    events: usize,
    build: Duration,
    unchanged: Duration,
    after_one: Duration,
    after_batch: Duration,
    balance: Duration,
    /// The first listing after a restart, from the state kept in the data dir.
    restarted: Duration,
    full_scan: Duration,
    build_in_process: Duration,
    /// Anomalies in the first listing.
    listed: usize,
    /// Events in the log at the end (the in-process figures are over these).
    final_events: usize,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// New deliveries `from..to`: for each, a farm (cycling through every co-op's farms) harvests a
/// new lot on its plot, ships it to its co-op, and the co-op receives it.
fn deliveries(scenario: &Scenario, from: usize, to: usize) -> Vec<v1::Event> {
    let mut events = Vec::new();
    for n in from..to {
        let coop = &scenario.coops[n % scenario.coops.len()];
        let farm = &coop.farms[(n / scenario.coops.len()) % coop.farms.len()];
        let chain = coop.crop.chain();
        let lot = format!("NEW-{n}");
        let time = format!("2026-03-{:02}T08:00:00Z", 10 + n % 15);
        events.push(build::event(
            format!("h-{lot}"),
            &time,
            &farm.org,
            chain,
            build::harvest(&lot, &farm.plot, coop.crop.harvest_product(), 100),
        ));
        events.push(build::event(
            format!("ship-{lot}"),
            &time,
            &farm.org,
            chain,
            build::ship([(lot.clone(), 100)], &coop.org),
        ));
        events.push(build::event(
            format!("recv-{lot}"),
            &time,
            &coop.org,
            chain,
            v1::event::Kind::Receive(v1::Receive {
                lots: vec![build::lot_quantity(&lot, 100, "kg")],
                from_org: farm.org.clone(),
                documents: vec![],
            }),
        ));
    }
    events
}

/// Times one listing (the first page; the answer counts every anomaly).
async fn listing(server: &TestServer) -> (Duration, u32) {
    let mut audit = server.audit().await;
    let start = Instant::now();
    let page = audit
        .list_anomalies(v1::ListAnomaliesRequest::default())
        .await
        .expect("anomalies")
        .into_inner();
    (start.elapsed(), page.total)
}

async fn measure(coops: usize) -> Figures {
    let scenario = Scenario::clean(7, coops, FARMS, GARMENTS);
    let events = scenario.all();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path()).await;
    server.record_all(&events).await;
    // A clean scenario lists no anomaly up to a few hundred co-ops; beyond that its generated
    // plots stray out of their country, which is reported (the figures stand either way).
    let (build, mut answered) = listing(&server).await;
    let listed = answered;
    if listed > 0 {
        let counts = server
            .audit()
            .await
            .list_anomalies(v1::ListAnomaliesRequest::default())
            .await
            .expect("anomalies")
            .into_inner()
            .counts;
        println!("{coops} co-ops: {listed} anomalies by kind: {counts:?}");
    }
    let mut unchanged = Vec::new();
    for _ in 0..RUNS {
        unchanged.push(listing(&server).await.0);
    }
    // Asked at once after the write, so the question (not the follower) brings the state forward.
    let mut after_one = Vec::new();
    let mut next = 0;
    for _ in 0..RUNS {
        server
            .record_all(&deliveries(&scenario, next, next + 1))
            .await;
        next += 1;
        after_one.push(listing(&server).await.0);
    }
    let mut after_batch = Vec::new();
    for _ in 0..RUNS {
        server
            .record_all(&deliveries(&scenario, next, next + BATCH))
            .await;
        next += BATCH;
        let (took, total) = listing(&server).await;
        answered = total;
        after_batch.push(took);
    }
    let mut audit = server.audit().await;
    let mut balance = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let l = audit
            .mass_balance(v1::MassBalanceRequest {
                org: scenario.coops[0].org.clone(),
                ..Default::default()
            })
            .await
            .expect("balance")
            .into_inner();
        balance.push(start.elapsed());
        assert!(!l.ledgers.is_empty());
    }
    server.stop().await.expect("stop");
    let server = TestServer::start_in(dir.path()).await;
    let (restarted, restored) = listing(&server).await;
    assert_eq!(restored, answered, "the listing restored after a restart");
    server.stop().await.expect("stop");
    let (full_scan, build_in_process) = in_process(dir.path(), answered as usize);
    Figures {
        listed: listed as usize,
        final_events: events.len() + 3 * next,
        full_scan,
        build_in_process,
        events: events.len(),
        build,
        unchanged: median(unchanged),
        after_one: median(after_one),
        after_batch: median(after_batch),
        balance: median(balance),
        restarted,
    }
}

/// The full scan and a build of the maintained state on the stopped server's directory; both
/// must list `answered` anomalies, as the server did after its incremental updates.
fn in_process(dir: &std::path::Path, answered: usize) -> (Duration, Duration) {
    use lotline_domain::audit::maintained::{Maintained, full_scan};
    use lotline_domain::audit::rules::Rules;
    let (store, _) =
        lotline_server::open_store(&lotline_server::ServeConfig::new(dir)).expect("open store");
    let view = store.snapshot().expect("snapshot");
    let rules = Rules::default();
    let start = Instant::now();
    let events = view.all_events().expect("events");
    let plots = view.plots().expect("plots");
    let scanned = full_scan(&view, &events, &rules, &plots).expect("full scan");
    let scan_took = start.elapsed();
    let start = Instant::now();
    let events = view.all_events().expect("events");
    let plots = view.plots().expect("plots");
    let mut built = Maintained::build(&view, &events, &rules, &plots).expect("build");
    let build_took = start.elapsed();
    assert_eq!(
        *built.listing(),
        scanned,
        "the maintained state is the full scan's"
    );
    assert_eq!(scanned.len(), answered, "the server's incremental listing");
    (scan_took, build_took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let sizes = lotline_testkit::bench::sizes("LOTLINE_BENCH_COOPS", 2, &[40, 160]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| runtime.block_on(measure(n)))
        .collect();
    println!(
        "anomaly listing over gRPC, real sled store ({FARMS} farms per co-op; medians of {RUNS}; a delivery is 3 events)"
    );
    println!(
        "{:>7} {:>9} {:>9} {:>10} {:>10} {:>14} {:>16} {:>11} {:>11}",
        "co-ops",
        "events",
        "anomalies",
        "build ms",
        "again ms",
        "+1 delivery ms",
        "+1000 deliv. ms",
        "balance ms",
        "restart ms"
    );
    for (n, f) in sizes.iter().zip(&figures) {
        println!(
            "{:>7} {:>9} {:>9} {:>10.1} {:>10.2} {:>14.2} {:>16.1} {:>11.2} {:>11.1}",
            n,
            f.events,
            f.listed,
            ms(f.build),
            ms(f.unchanged),
            ms(f.after_one),
            ms(f.after_batch),
            ms(f.balance),
            ms(f.restarted)
        );
    }
    for f in &figures {
        println!(
            "{} events (at the end), in process: full scan {:.1} ms, then maintained build {:.1} ms ({:.2}x the scan)",
            f.final_events,
            ms(f.full_scan),
            ms(f.build_in_process),
            ms(f.build_in_process) / ms(f.full_scan)
        );
        println!(
            "{} events: a listing after one new delivery costs {:.4} of building from the whole log",
            f.events,
            ms(f.after_one) / ms(f.build)
        );
    }
    if let (Some(small), Some(large)) = (figures.first(), figures.last()) {
        println!(
            "log {:.1}x larger: build {:.2}x; listing again {:.2}x; after one delivery {:.2}x; after 1000 {:.2}x; one co-op's balance {:.2}x; first after a restart {:.2}x",
            large.events as f64 / small.events as f64,
            ms(large.build) / ms(small.build),
            ms(large.unchanged) / ms(small.unchanged),
            ms(large.after_one) / ms(small.after_one),
            ms(large.after_batch) / ms(small.after_batch),
            ms(large.balance) / ms(small.balance),
            ms(large.restarted) / ms(small.restarted),
        );
    }
}
