//! What the benchmarks measure the same way: a process's peak memory, a data dir's size, and
//! the real `lotline import` of a document into a real server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{BinaryServer, lotline_bin};

/// Peak resident memory of a process, in MiB, from /proc (Linux); 0 where it cannot be read.
pub fn peak_mib(pid: u32) -> f64 {
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

/// The sum of the sizes of the files under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .map(|entry| {
            let entry = entry.expect("data dir entry");
            let meta = entry.metadata().expect("data dir entry metadata");
            if meta.is_dir() {
                dir_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Imports one document into a server with the real binary; returns (accepted + duplicate,
/// seconds, the importer's peak MiB). Panics if any event was rejected.
pub fn import_document(server: &BinaryServer, document: &Path) -> (u64, f64, f64) {
    let started = Instant::now();
    let output = Command::new(lotline_bin())
        .args(["import", "--quiet", "--json", "--server", &server.url()])
        .arg(document)
        .stdin(Stdio::null())
        .output()
        .expect("run lotline import");
    let seconds = started.elapsed().as_secs_f64();
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
    (
        count("accepted") + count("duplicate"),
        seconds,
        summary["peak_memory_mib"].as_f64().unwrap_or(0.0),
    )
}
