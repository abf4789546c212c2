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
//! The log is generated and recorded 100 co-ops at a time, and only the co-ops the new
//! deliveries go to are kept, so a 10 M-event log (27 600 co-ops) needs little more memory than
//! the server does. Prints the recording rate, and the process's peak
//! memory (the server's, with the benchmark's few MiB) while recording and by the end.
//! The in-process comparison loads the whole log in memory twice; it is left out above
//! `LOTLINE_BENCH_SCAN_MAX` events (2 000 000 unless set). `LOTLINE_BENCH_CACHE_MB` sets sled's
//! page cache (the server's default, 64, unless set). `LOTLINE_BENCH_RESTART_EVERY=N` restarts
//! the server after every N events recorded (a log recorded over several starts).
//!
//! Medians of 5; prints each size and the ratios between the sizes, measured in one run.
//!
//! `cargo bench -p lotline-e2e --bench listing_scale`                                   (40 and 160 co-ops)
//! `LOTLINE_BENCH_COOPS=800,3200 cargo bench -p lotline-e2e --bench listing_scale`   (290 000 and 1.16 M events)
//! `LOTLINE_BENCH_COOPS=2760,27600 cargo bench -p lotline-e2e --bench listing_scale` (1 M and 10 M events; about 25 min and 7 GB of disk)

use std::time::{Duration, Instant};

use lotline_proto::{build, v1};
use lotline_testkit::TestServer;
use lotline_testkit::scenario::{Coop, Scenario};

const FARMS: usize = 50;
const GARMENTS: usize = 4;
const RUNS: usize = 5;
const BATCH: usize = 1_000;
/// Co-ops generated and recorded at a time.
const PART: usize = 100;

struct Figures {
    events: usize,
    /// Recording the generated log over gRPC.
    recorded: Duration,
    /// Server restarts while recording (`LOTLINE_BENCH_RESTART_EVERY`).
    restarts: usize,
    /// The process's peak memory after recording, and at the end, MiB.
    peak_recorded: f64,
    peak_end: f64,
    build: Duration,
    unchanged: Duration,
    after_one: Duration,
    after_batch: Duration,
    balance: Duration,
    /// The first listing after a restart, from the state kept in the data dir.
    restarted: Duration,
    /// The full scan and the in-process build, unless the log is too large to load twice.
    in_process: Option<(Duration, Duration)>,
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
/// `coops` holds the first of the `total` co-ops, at least as many as deliveries asked for.
fn deliveries(coops: &[Coop], total: usize, from: usize, to: usize) -> Vec<v1::Event> {
    let mut events = Vec::new();
    for n in from..to {
        let coop = &coops[n % total];
        let farm = &coop.farms[(n / total) % coop.farms.len()];
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
    forget_peak();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start_with(config(dir.path())).await;
    let restart_every: usize = setting("LOTLINE_BENCH_RESTART_EVERY").unwrap_or(0);
    let started = Instant::now();
    // Only the co-ops the deliveries go to are kept (every farm's names would take a GiB at
    // 10 M events, in this process, beside the server's memory).
    let needed = RUNS * (1 + BATCH);
    let (mut events, mut first_coops) = (0, Vec::with_capacity(needed.min(coops)));
    let (mut since_restart, mut restarts, mut peak_recorded) = (0, 0, 0f64);
    for part in Scenario::clean_in_parts(7, coops, FARMS, GARMENTS, PART) {
        let part_events = part.all();
        server.record_all(&part_events).await;
        events += part_events.len();
        since_restart += part_events.len();
        let room = needed.saturating_sub(first_coops.len());
        first_coops.extend(part.coops.into_iter().take(room));
        if restart_every > 0 && since_restart >= restart_every {
            // A log recorded over several starts of the server.
            server.stop().await.expect("stop");
            peak_recorded = peak_recorded.max(peak());
            forget_peak();
            server = TestServer::start_with(config(dir.path())).await;
            since_restart = 0;
            restarts += 1;
        }
    }
    let recorded = started.elapsed();
    let peak_recorded = peak_recorded.max(peak());
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
            .record_all(&deliveries(&first_coops, coops, next, next + 1))
            .await;
        next += 1;
        after_one.push(listing(&server).await.0);
    }
    let mut after_batch = Vec::new();
    for _ in 0..RUNS {
        server
            .record_all(&deliveries(&first_coops, coops, next, next + BATCH))
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
                org: first_coops[0].org.clone(),
                ..Default::default()
            })
            .await
            .expect("balance")
            .into_inner();
        balance.push(start.elapsed());
        assert!(!l.ledgers.is_empty());
    }
    server.stop().await.expect("stop");
    let server = TestServer::start_with(config(dir.path())).await;
    let (restarted, restored) = listing(&server).await;
    assert_eq!(restored, answered, "the listing restored after a restart");
    server.stop().await.expect("stop");
    let peak_end = peak();
    let final_events = events + 3 * next;
    let scan_max = setting("LOTLINE_BENCH_SCAN_MAX").unwrap_or(2_000_000);
    let in_process = (final_events <= scan_max).then(|| in_process(dir.path(), answered as usize));
    Figures {
        listed: listed as usize,
        final_events,
        in_process,
        events,
        recorded,
        restarts,
        peak_recorded,
        peak_end,
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
    let (store, _) = lotline_server::open_store(&config(dir)).expect("open store");
    let view = store.snapshot().expect("snapshot");
    let rules = Rules::default();
    let start = Instant::now();
    let events = view.all_events().expect("events");
    let plots = view.plots().expect("plots");
    let scanned = full_scan(&view, &events, &rules, &plots).expect("full scan");
    let scan_took = start.elapsed();
    let start = Instant::now();
    let mut built = Maintained::build(&view, &rules).expect("build");
    let build_took = start.elapsed();
    assert_eq!(
        *built.listing(),
        scanned,
        "the maintained state is the full scan's"
    );
    assert_eq!(scanned.len(), answered, "the server's incremental listing");
    (scan_took, build_took)
}

/// The server's configuration: `LOTLINE_BENCH_CACHE_MB` sets sled's page cache (the server's
/// default unless set).
fn config(dir: &std::path::Path) -> lotline_server::ServeConfig {
    let mut config = lotline_server::ServeConfig::new(dir);
    if let Some(mb) = setting::<u64>("LOTLINE_BENCH_CACHE_MB") {
        config.cache_bytes = mb << 20;
    }
    config
}

/// A number from the environment variable `var`, when it is set to one.
fn setting<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// This process's peak resident memory so far, MiB.
fn peak() -> f64 {
    lotline_testkit::bench::peak_mib(std::process::id())
}

/// Starts the peak memory over from the current (Linux: `5` to `clear_refs`; where that is
/// refused, the peak is the process's whole life's).
fn forget_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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
            "{} events recorded over gRPC in {:.1} s ({:.0} events/s, {} server restarts); peak memory {:.0} MiB while recording, {:.0} MiB by the end (the listing built, kept and restored)",
            f.events,
            f.recorded.as_secs_f64(),
            f.events as f64 / f.recorded.as_secs_f64(),
            f.restarts,
            f.peak_recorded,
            f.peak_end
        );
        match f.in_process {
            Some((scan, build)) => println!(
                "{} events (at the end), in process: full scan {:.1} ms, then maintained build {:.1} ms ({:.2}x the scan)",
                f.final_events,
                ms(scan),
                ms(build),
                ms(build) / ms(scan)
            ),
            None => println!(
                "{} events (at the end): the in-process full scan is left out above LOTLINE_BENCH_SCAN_MAX events",
                f.final_events
            ),
        }
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
