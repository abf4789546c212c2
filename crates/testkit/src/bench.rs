//! What the benchmarks measure the same way: a process's peak memory and CPU time, a data dir's
//! size, and the real `lotline import` of a document into a real server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{BinaryServer, lotline_bin};

/// The sizes a benchmark runs at: the comma-separated numbers in the environment variable
/// `var`, when it gives at least `at_least` of them, else `default`.
pub fn sizes(var: &str, at_least: usize, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| v.len() >= at_least.max(1))
        .unwrap_or_else(|| default.to_vec())
}

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

/// CPU time a running process has used so far (user and system), in seconds, from /proc
/// (Linux); 0 where it cannot be read.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / clock_ticks_per_second()
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), 100 where it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// CPU time (user and system) of the children this process has waited for, in seconds.
fn children_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |usage| {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(usage.user_time()) + secs(usage.system_time())
    })
}

/// What one `lotline import` did.
#[derive(Debug, Clone, Copy)]
pub struct Imported {
    /// Accepted and duplicate records (events and master data).
    pub records: u64,
    pub seconds: f64,
    /// The importer's peak resident memory.
    pub importer_mib: f64,
    /// CPU the importer used, and the server meanwhile (user and system, in seconds).
    pub importer_cpu: f64,
    pub server_cpu: f64,
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

/// Imports one document into a server with the real binary. Panics if any event was rejected.
pub fn import_document(server: &BinaryServer, document: &Path) -> Imported {
    let server_cpu = cpu_seconds(server.pid());
    let importer_cpu = children_cpu_seconds();
    let started = Instant::now();
    let output = Command::new(lotline_bin())
        .args(["import", "--quiet", "--json", "--server", &server.url()])
        .arg(document)
        .stdin(Stdio::null())
        .output()
        .expect("run lotline import");
    let seconds = started.elapsed().as_secs_f64();
    let importer_cpu = children_cpu_seconds() - importer_cpu;
    let server_cpu = cpu_seconds(server.pid()) - server_cpu;
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
    Imported {
        records: count("accepted") + count("duplicate"),
        seconds,
        importer_mib: summary["peak_memory_mib"].as_f64().unwrap_or(0.0),
        importer_cpu,
        server_cpu,
    }
}
