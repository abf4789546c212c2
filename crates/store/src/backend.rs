//! The ordered key-value backend the log is built on, with a sled implementation
//! and an in-memory twin. Logical trees are key prefixes (see `keys`), so one
//! [`WriteBatch`] is atomic across all of them.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::error::StoreError;

/// One stored key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Writes applied atomically: all or none are visible after a crash.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteBatch {
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.ops.insert(key, None);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// An ordered byte-key store. Reads must not block on a concurrent write.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries with `start <= key < end`, ascending.
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// The greatest entry with `start <= key < end`.
    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, StoreError>;
    /// Applies every write in `batch` atomically.
    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Returns once everything applied so far is on stable storage (as far as the
    /// backend can promise).
    fn flush(&self) -> Result<(), StoreError>;
}

/// sled 0.34.7: one tree, logical trees as key prefixes.
pub struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    /// Opens (or creates) the store in `dir`. `cache_bytes` bounds sled's page cache.
    ///
    /// sled locks its directory and releases the lock from a background thread
    /// after the last handle drops, so a store reopened right after a restart in
    /// the same process (or a killed process) may find it still held: opening
    /// retries for up to ten seconds before giving up.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(cache_bytes)
                // The writer flushes every batch itself before acknowledging it.
                .flush_every_ms(None)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => return Ok(SledBackend { db }),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot open sled store in {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.range(start..end).take(limit) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, StoreError> {
        match self.db.range(start..end).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let writes = batch.ops.len();
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        release_replaced_pages(writes);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Frees the pages a batch of `writes` replaced, now rather than some day.
///
/// sled 0.34 replaces a whole in-memory node on every write to it, and hands the
/// old one to crossbeam's global epoch collector to free once no reader can see
/// it. That collector frees at most 8 bags of 64 objects every 128 pins of a
/// thread, and `apply_batch` pins once for all its writes: a writer replacing
/// thousands of nodes per pin outruns it, and the replaced nodes pile up in its
/// queue for as long as the process runs, whatever sled's cache capacity says:
/// 4.3 GiB after 2.1 M key writes in batches of 7 000 with an 8 MiB cache, against
/// 150 MiB drained this way (sled's issues #986, #1036 and #1388 report such
/// growth; `tests/sled_memory.rs` checks it stays away).
///
/// Each pin-and-flush pushes this thread's garbage to the global queue, tries to
/// advance the epoch, and frees up to 8 expired bags. A bag is expired two epochs
/// after it was sealed, so the first rounds advance the epoch and the later ones
/// free; twice as many rounds as the writes' bags leave room for what sled's
/// splits and evictions add. A reader pinned meanwhile only defers the freeing
/// to a later batch.
fn release_replaced_pages(writes: usize) {
    const FREED_PER_ROUND: usize = 8 * 64;
    let rounds = 4 + 2 * writes.div_ceil(FREED_PER_ROUND);
    for _ in 0..rounds {
        crossbeam_epoch::pin().flush();
    }
}

/// The in-memory twin of [`SledBackend`], for unit tests.
#[derive(Default)]
pub struct MemoryBackend {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .read()
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, StoreError> {
        if start >= end {
            return Ok(None);
        }
        Ok(self
            .read()
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
