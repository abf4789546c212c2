//! The sled backend's memory stays near its cache while it writes: the nodes each
//! batch replaces are freed, not left queued in the epoch collector (see
//! `release_replaced_pages` in `backend.rs`).
//!
//! A binary of its own, so that the process's resident memory is this test's alone.
#![cfg(target_os = "linux")]

use lotline_store::{Backend, SledBackend, WriteBatch};

const MIB: usize = 1 << 20;

/// This process's resident memory, in bytes (Linux).
fn resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// An xorshift step: keys spread over the key space as index postings are.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn writing_many_batches_frees_the_nodes_they_replace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = 8 * MIB;
    let backend = SledBackend::open(dir.path(), cache as u64).expect("open sled");
    let before = resident();

    // 30 000 events of a log record and six index keys each, 500 events a batch,
    // as the writer applies them: 210 000 writes, about 14 MiB of keys and values.
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let mut peak = 0;
    for batch_no in 0..60_u64 {
        let mut batch = WriteBatch::default();
        for i in 0..500 {
            let seq = batch_no * 500 + i;
            let mut record = b"L".to_vec();
            record.extend_from_slice(&seq.to_be_bytes());
            batch.insert(record, vec![7; 300]);
            for _ in 0..6 {
                let mut key = b"I".to_vec();
                key.extend_from_slice(&next(&mut x).to_be_bytes());
                key.extend_from_slice(&seq.to_be_bytes());
                batch.insert(key, vec![1; 16]);
            }
        }
        backend.apply(batch).expect("apply");
        backend.flush().expect("flush");
        peak = peak.max(resident().saturating_sub(before));
    }

    // What stays resident is the cache, sled's page table and its paged-out
    // pages, and the allocator's slack: about 50 MiB here. Left queued, the nodes
    // the writes replaced come to about 550 MiB.
    assert!(
        peak < 16 * cache,
        "resident memory grew by {} MiB while writing, with an {} MiB cache",
        peak / MIB,
        cache / MIB
    );

    // Everything written reads back.
    let records = backend.range(b"L", b"M", usize::MAX).expect("range");
    assert_eq!(records.len(), 30_000);
}
