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
//! `cargo bench -p lotline-e2e --bench epcis_import`                                  (20 000 and 200 000 events)
//! `LOTLINE_BENCH_EVENTS=100000,1000000 cargo bench -p lotline-e2e --bench epcis_import`

use std::fs::File;
use std::io::BufWriter;
use std::process::{Command, Stdio};
use std::time::Instant;

use lotline_testkit::{BinaryServer, lotline_bin};

struct Figures {
    events: u64,
    document_mib: f64,
    seconds: f64,
    rate: f64,
    importer_mib: f64,
    server_mib: f64,
}

/// Peak resident memory of a process, in MiB, from /proc (Linux).
fn peak_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn measure(events: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let document = dir.path().join("chain.jsonld");
    let out = BufWriter::new(File::create(&document).expect("create document"));
    lotline_testkit::epcis::write_chain_document(out, 11, events).expect("write document");
    let document_mib =
        std::fs::metadata(&document).expect("document").len() as f64 / (1024.0 * 1024.0);

    let data = dir.path().join("data");
    let server = BinaryServer::spawn(&data).await;
    let started = Instant::now();
    let output = Command::new(lotline_bin())
        .args(["import", "--quiet", "--json", "--server", &server.url()])
        .arg(&document)
        .stdin(Stdio::null())
        .output()
        .expect("run lotline import");
    let seconds = started.elapsed().as_secs_f64();
    let server_mib = peak_mib(server.pid());
    server.kill();
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no summary ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    assert_eq!(
        count("rejected"),
        0,
        "generated events were rejected: {}",
        summary["rejections"]
    );
    let imported = count("accepted") + count("duplicate");
    Figures {
        events: imported,
        document_mib,
        seconds,
        rate: imported as f64 / seconds,
        importer_mib: summary["peak_memory_mib"].as_f64().unwrap_or(0.0),
        server_mib,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("LOTLINE_BENCH_EVENTS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| v.len() == 2)
        .unwrap_or_else(|| vec![20_000, 200_000]);
    println!(
        "{:>10} {:>10} {:>9} {:>10} {:>13} {:>11}",
        "events", "doc MiB", "seconds", "events/s", "importer MiB", "server MiB"
    );
    let mut figures = Vec::new();
    for size in sizes {
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
}
