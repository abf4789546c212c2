//! How fast does an EPCIS document import, and does memory stay bounded?
//!
//! Writes generated cocoa supply chains as EPCIS 2.0 JSON-LD documents of two sizes (master data,
//! harvests, aggregations, shipments, receipts, processing, both GS1 identifier forms), then runs
//! the real `lotline import` binary against the real `lotline serve` binary on a real sled
//! directory, and prints for each size: events, seconds, events per second, and the peak
//! resident memory of the importer and of the server; then the ratios of the larger run to the
//! smaller, measured in one run. Bounded memory shows as an importer peak that does not grow
//! with the document.
//!
//! Then the same histories as supply chains exchange them, in two documents: the master data
//! alone (every party, farm plot, site and product class), then the events alone, which find
//! their orgs and products in what the first import registered. It prints the master-data
//! elements, the importer's peak memory for each document, and the ratio of the larger run's
//! master-data import memory to the smaller's.
//!
//! Last, master data alone at scale: documents of 20 000 and 200 000 farms (each with its
//! plot), where the importer's caches are full; flat memory shows as a ratio near 1 while the
//! master data grows tenfold. `LOTLINE_BENCH_FARMS=a,b` sets the two sizes.
//!
//! `cargo bench -p lotline-e2e --bench epcis_import`                                  (20 000 and 200 000 events)
//! `LOTLINE_BENCH_EVENTS=100000,1000000 cargo bench -p lotline-e2e --bench epcis_import`

use std::fs::File;
use std::io::BufWriter;

use lotline_testkit::BinaryServer;
use lotline_testkit::bench::{import_document, peak_mib};

struct Figures {
    events: u64,
    document_mib: f64,
    seconds: f64,
    rate: f64,
    importer_mib: f64,
    server_mib: f64,
}

struct TwoDocuments {
    master_elements: u64,
    master_mib: f64,
    master_importer_mib: f64,
    events: u64,
    events_seconds: f64,
    events_importer_mib: f64,
}

async fn measure_two_documents(events: usize) -> TwoDocuments {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = dir.path().join("master.jsonld");
    let events_doc = dir.path().join("events.jsonld");
    lotline_testkit::epcis::write_chain_documents(
        BufWriter::new(File::create(&master).expect("create document")),
        BufWriter::new(File::create(&events_doc).expect("create document")),
        11,
        events,
    )
    .expect("write documents");
    let master_mib = std::fs::metadata(&master).expect("document").len() as f64 / (1024.0 * 1024.0);
    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let master_import = import_document(&server, &master);
    let events_import = import_document(&server, &events_doc);
    server.kill();
    TwoDocuments {
        master_elements: master_import.records,
        master_mib,
        master_importer_mib: master_import.importer_mib,
        events: events_import.records,
        events_seconds: events_import.seconds,
        events_importer_mib: events_import.importer_mib,
    }
}

async fn measure(events: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let document = dir.path().join("chain.jsonld");
    let out = BufWriter::new(File::create(&document).expect("create document"));
    lotline_testkit::epcis::write_chain_document(out, 11, events).expect("write document");
    let document_mib =
        std::fs::metadata(&document).expect("document").len() as f64 / (1024.0 * 1024.0);

    let server = BinaryServer::spawn(&dir.path().join("data")).await;
    let imported = import_document(&server, &document);
    let server_mib = peak_mib(server.pid());
    server.kill();
    Figures {
        events: imported.records,
        document_mib,
        seconds: imported.seconds,
        rate: imported.records as f64 / imported.seconds,
        importer_mib: imported.importer_mib,
        server_mib,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes = lotline_testkit::bench::sizes("LOTLINE_BENCH_EVENTS", 2, &[20_000, 200_000]);
    println!(
        "{:>10} {:>10} {:>9} {:>10} {:>13} {:>11}",
        "events", "doc MiB", "seconds", "events/s", "importer MiB", "server MiB"
    );
    let mut figures = Vec::new();
    for &size in &sizes {
        let f = measure(size).await;
        println!(
            "{:>10} {:>10.1} {:>9.1} {:>10.0} {:>13.1} {:>11.1}",
            f.events, f.document_mib, f.seconds, f.rate, f.importer_mib, f.server_mib
        );
        figures.push(f);
    }
    if let [small, large] = figures.as_slice() {
        println!(
            "document {:.1}x larger: import {:.2}x the time ({:.2}x the rate), importer peak memory {:.2}x, server peak memory {:.2}x",
            large.events as f64 / small.events as f64,
            large.seconds / small.seconds,
            large.rate / small.rate,
            large.importer_mib / small.importer_mib,
            large.server_mib / small.server_mib,
        );
    }

    println!();
    println!(
        "{:>14} {:>10} {:>13} {:>10} {:>9} {:>10} {:>13}",
        "master elems", "doc MiB", "importer MiB", "events", "seconds", "events/s", "importer MiB"
    );
    let mut two = Vec::new();
    for &size in &sizes {
        let t = measure_two_documents(size).await;
        println!(
            "{:>14} {:>10.1} {:>13.1} {:>10} {:>9.1} {:>10.0} {:>13.1}",
            t.master_elements,
            t.master_mib,
            t.master_importer_mib,
            t.events,
            t.events_seconds,
            t.events as f64 / t.events_seconds,
            t.events_importer_mib
        );
        two.push(t);
    }
    if let [small, large] = two.as_slice() {
        println!(
            "master data {:.1}x larger: its import's peak memory {:.2}x; the events alone {:.1}x more: importer peak memory {:.2}x",
            large.master_elements as f64 / small.master_elements as f64,
            large.master_importer_mib / small.master_importer_mib,
            large.events as f64 / small.events as f64,
            large.events_importer_mib / small.events_importer_mib,
        );
    }

    let farms: Vec<usize> = std::env::var("LOTLINE_BENCH_FARMS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| v.len() == 2)
        .unwrap_or_else(|| vec![20_000, 200_000]);
    println!();
    println!(
        "{:>10} {:>14} {:>10} {:>9} {:>13} {:>11}",
        "farms", "master elems", "doc MiB", "seconds", "elements/s", "importer MiB"
    );
    let mut alone = Vec::new();
    for &n in &farms {
        let dir = tempfile::tempdir().expect("temp dir");
        let document = dir.path().join("master.jsonld");
        let elements = lotline_testkit::epcis::write_master_document(
            BufWriter::new(File::create(&document).expect("create document")),
            11,
            n,
        )
        .expect("write document");
        let mib = std::fs::metadata(&document).expect("document").len() as f64 / (1024.0 * 1024.0);
        let server = BinaryServer::spawn(&dir.path().join("data")).await;
        let imported = import_document(&server, &document);
        let (seconds, importer_mib) = (imported.seconds, imported.importer_mib);
        server.kill();
        println!(
            "{:>10} {:>14} {:>10.1} {:>9.1} {:>13.0} {:>11.1}",
            n,
            elements,
            mib,
            seconds,
            elements as f64 / seconds,
            importer_mib
        );
        alone.push((elements, seconds, importer_mib));
    }
    if let [(small_n, small_s, small_mib), (large_n, large_s, large_mib)] = alone.as_slice() {
        println!(
            "master data {:.1}x larger: import {:.2}x the time, importer peak memory {:.2}x",
            *large_n as f64 / *small_n as f64,
            large_s / small_s,
            large_mib / small_mib,
        );
    }
}
