//! The log as kept under `L`: the value at `L seq` is one record (the event at `seq`) or a block
//! of consecutive records from `seq` on ([`crate::record::stored_block`]). Releases before
//! blocks wrote one record per key; both read the same, so a data dir of an earlier release
//! needs no migration for them. Every read of the log by sequence goes through here.

use std::collections::BTreeMap;

use crate::backend::{Backend, WriteBatch};
use crate::error::StoreError;
use crate::keys::{LOG, prefix_end, seq_key, trailing_seq};
use crate::record::{BLOCK_BYTES, BLOCK_RECORDS, stored_block, stored_count, stored_form, unpack};

/// The first key that may hold `seq`: a block holding it starts at most
/// `BLOCK_RECORDS - 1` sequences before it.
fn first_key_for(seq: u64) -> Vec<u8> {
    seq_key(LOG, seq.saturating_sub(BLOCK_RECORDS as u64 - 1))
}

/// The key after every key of a sequence up to `seq`.
fn end_key_after(seq: u64) -> Vec<u8> {
    match seq.checked_add(1) {
        Some(next) => seq_key(LOG, next),
        None => prefix_end(&[LOG]),
    }
}

fn first_seq_of(key: &[u8]) -> Result<u64, StoreError> {
    trailing_seq(key).ok_or_else(|| StoreError::Corrupt("a log key without a sequence".into()))
}

/// The stored value holding the record at `seq`, with the sequence of its first record.
pub(crate) fn entry_holding(
    backend: &dyn Backend,
    seq: u64,
) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let Some((key, value)) = backend.last_in(&first_key_for(seq), &end_key_after(seq))? else {
        return Ok(None);
    };
    let first = first_seq_of(&key)?;
    Ok((seq - first < stored_count(&value)).then_some((first, value)))
}

/// The version 1 bytes of the record at `seq`.
pub(crate) fn record(backend: &dyn Backend, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
    match entry_holding(backend, seq)? {
        Some((first, value)) => Ok(unpack(&value)?.into_iter().nth((seq - first) as usize)),
        None => Ok(None),
    }
}

/// The sequences of the records from `from` to `upto` (inclusive), at most `max` of them,
/// ascending, read from the keys and the blocks' headers (nothing is decompressed).
pub(crate) fn seqs(
    backend: &dyn Backend,
    from: u64,
    upto: u64,
    max: usize,
) -> Result<Vec<u64>, StoreError> {
    if from > upto || max == 0 {
        return Ok(Vec::new());
    }
    let entries = backend.range(
        &first_key_for(from),
        &end_key_after(upto),
        max.saturating_add(BLOCK_RECORDS),
    )?;
    let mut out = Vec::new();
    for (key, value) in entries {
        let first = first_seq_of(&key)?;
        for seq in first..first.saturating_add(stored_count(&value)) {
            if (from..=upto).contains(&seq) {
                out.push(seq);
                if out.len() == max {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// The version 1 bytes of the records from `from` to `upto` (inclusive), ascending.
pub(crate) fn records(
    backend: &dyn Backend,
    from: u64,
    upto: u64,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    if from > upto {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (key, value) in backend.range(&first_key_for(from), &end_key_after(upto), usize::MAX)? {
        let first = first_seq_of(&key)?;
        let last = first.saturating_add(stored_count(&value) - 1);
        if last < from {
            continue;
        }
        for (seq, record) in (first..).zip(unpack(&value)?) {
            if (from..=upto).contains(&seq) {
                out.push((seq, record));
            }
        }
    }
    Ok(out)
}

/// The sequence of the newest record (0 for an empty log).
pub(crate) fn last_seq(backend: &dyn Backend) -> Result<u64, StoreError> {
    match backend.last_in(&seq_key(LOG, 0), &prefix_end(&[LOG]))? {
        Some((key, value)) => Ok(first_seq_of(&key)? + stored_count(&value) - 1),
        None => Ok(0),
    }
}

/// Writes `records` (version 1 bytes by sequence) into `batch`: each run of consecutive
/// sequences as blocks of up to [`BLOCK_RECORDS`] records and about [`BLOCK_BYTES`], a record
/// alone as itself.
pub(crate) fn write(batch: &mut WriteBatch, records: BTreeMap<u64, Vec<u8>>) {
    let mut block: Vec<Vec<u8>> = Vec::new();
    let mut first = 0;
    let mut bytes = 0;
    let close = |batch: &mut WriteBatch, first: u64, block: &mut Vec<Vec<u8>>| {
        match stored_block(block) {
            Some(value) => batch.insert(seq_key(LOG, first), value),
            None => {
                for (seq, record) in (first..).zip(block.drain(..)) {
                    batch.insert(seq_key(LOG, seq), stored_form(record));
                }
            }
        }
        block.clear();
    };
    for (seq, record) in records {
        let follows = !block.is_empty() && seq == first + block.len() as u64;
        if !follows || block.len() == BLOCK_RECORDS || bytes >= BLOCK_BYTES {
            if !block.is_empty() {
                close(batch, first, &mut block);
            }
            first = seq;
            bytes = 0;
        }
        bytes += record.len();
        block.push(record);
    }
    if !block.is_empty() {
        close(batch, first, &mut block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::record::RECORD_VERSION;

    fn record(seq: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![RECORD_VERSION];
        bytes.extend_from_slice(&(seq as i64).to_be_bytes());
        let words = format!("event {seq} of lot urn:epc:class:lgtin:6180123.011111.H-{seq} ");
        while bytes.len() < len {
            bytes.extend_from_slice(words.as_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    #[test]
    fn records_kept_in_blocks_read_back_one_by_one_and_in_ranges() {
        let backend = MemoryBackend::default();
        // Two batches: 1..=40 (short and long records), then 41 alone; 50..=52 after a gap
        // written by an earlier release, one record per key.
        let mut first = BTreeMap::new();
        for seq in 1..=40u64 {
            first.insert(seq, record(seq, if seq % 3 == 0 { 9_000 } else { 300 }));
        }
        let mut batch = WriteBatch::default();
        write(&mut batch, first.clone());
        backend.apply(batch).unwrap();
        let mut batch = WriteBatch::default();
        write(&mut batch, BTreeMap::from([(41, record(41, 500))]));
        for seq in 50..=52 {
            batch.insert(seq_key(LOG, seq), record(seq, 200));
        }
        backend.apply(batch).unwrap();

        let keys = backend
            .range(&seq_key(LOG, 0), &prefix_end(&[LOG]), usize::MAX)
            .unwrap();
        assert!(keys.len() < 20, "{} keys for 44 records", keys.len());
        for seq in (1..=41).chain(50..=52) {
            let len = match seq {
                41 => 500,
                50.. => 200,
                s if s % 3 == 0 => 9_000,
                _ => 300,
            };
            assert_eq!(
                record_at(&backend, seq),
                Some(record(seq, len)),
                "seq {seq}"
            );
        }
        for missing in [0, 42, 49, 53, u64::MAX] {
            assert_eq!(record_at(&backend, missing), None, "seq {missing}");
        }
        assert_eq!(last_seq(&backend).unwrap(), 52);
        assert_eq!(
            seqs(&backend, 38, 51, 100).unwrap(),
            vec![38, 39, 40, 41, 50, 51]
        );
        assert_eq!(seqs(&backend, 5, 100, 3).unwrap(), vec![5, 6, 7]);
        let ranged = records(&backend, 7, 12).unwrap();
        assert_eq!(
            ranged,
            (7..=12).map(|s| (s, first[&s].clone())).collect::<Vec<_>>()
        );
    }

    fn record_at(backend: &MemoryBackend, seq: u64) -> Option<Vec<u8>> {
        super::record(backend, seq).unwrap()
    }

    #[test]
    fn a_damaged_block_is_corrupt_and_never_other_records() {
        let backend = MemoryBackend::default();
        let mut batch = WriteBatch::default();
        write(
            &mut batch,
            (1..=4u64).map(|s| (s, record(s, 400))).collect(),
        );
        backend.apply(batch).unwrap();
        let (first, mut value) = entry_holding(&backend, 3).unwrap().unwrap();
        assert_eq!(first, 1);
        assert_eq!(stored_count(&value), 4);
        // A count that disagrees with what the frame holds.
        value[1] = 5;
        let mut batch = WriteBatch::default();
        batch.insert(seq_key(LOG, 1), value.clone());
        backend.apply(batch).unwrap();
        assert!(matches!(
            super::record(&backend, 2),
            Err(StoreError::Corrupt(_))
        ));
        // A length no block could hold is refused before anything is allocated.
        value[1] = 4;
        value[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(unpack(&value), Err(StoreError::Corrupt(_))));
    }
}
