//! Which event ids the log may already hold, so that the writer's duplicate check reads the
//! event id index only for an id it may have seen.
//!
//! The check used to scan the index for every event it decided: a tenth of the writer's time
//! on an import, almost all of it for ids that are new. [`IdFilter`] is a Bloom filter of the
//! index keys' id-hash prefixes ([`EVENT_ID_HASH`] bytes of SHA-256, already uniform), told of
//! every id the writer appends. It answers "absent" only for an id whose prefix it was never
//! told of; every other id goes to the index as before, so the filter changes no decision, only
//! how often the index is read. It is sound because nothing but the writer adds index entries
//! while the writer runs (the rebuild and a backup's restore run before it starts).
//!
//! [`Ids`] builds the filter from the index on a thread of its own (a second or two per
//! million events), so the writer takes writes at once: until the filter is ready every id
//! goes to the index, and the ids appended meanwhile are told to the filter when the writer
//! takes it. A full filter is rebuilt twice as large the same way, the old one answering
//! until then. Dropping [`Ids`] stops a build under way and waits for its thread, so the store
//! is not held after the writer has stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tracing::{info, warn};

use crate::backend::Backend;
use crate::error::StoreError;
use crate::keys::{EVENT_ID, EVENT_ID_HASH, prefix_end};
use crate::store::Store;

/// Bits kept per id the filter is sized for (rounded up to a power of two in all): with
/// [`PROBES`] probes, under one new id in a hundred is sent to the index when the filter is
/// full, and far fewer before.
const BITS_PER_ID: u64 = 10;
/// Bit positions set and tested per id.
const PROBES: u64 = 7;
/// Ids the smallest filter is sized for (2 MiB).
const MIN_CAPACITY: u64 = 1 << 20;
/// Index keys read per page while building; a stopped build ends after the page it is in.
const PAGE: usize = 50_000;

/// The writer's filter of ids, and the one being built for it.
pub(crate) struct Ids {
    /// `None` until the first build ends: then every id is read for.
    filter: Option<IdFilter>,
    /// A build under way.
    building: Option<Building>,
}

/// A filter being built on its own thread.
struct Building {
    built: mpsc::Receiver<Result<IdFilter, StoreError>>,
    /// The id hashes appended since the build began, which its scan may not have seen.
    since: Vec<u64>,
    /// Set to stop the build after the page it is reading.
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Ids {
    /// Starts building the filter of the ids in `store`'s index. Call it before the writer
    /// appends anything, as every id appended after this call must be told to [`Ids::insert`].
    pub(crate) fn start(store: &Store) -> Ids {
        let mut ids = Ids::none();
        ids.build(store, None);
        ids
    }

    /// No filter: every id is read for.
    pub(crate) fn none() -> Ids {
        Ids {
            filter: None,
            building: None,
        }
    }

    /// Starts a build sized for `capacity` ids (by default, twice the index's).
    fn build(&mut self, store: &Store, capacity: Option<u64>) {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (store, stopped) = (store.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("lotline-ids".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let capacity = match capacity {
                    Some(capacity) => Ok(capacity),
                    None => count_keys(store.backend(), PAGE, &stopped)
                        .map(|keys| (keys * 2).max(MIN_CAPACITY)),
                };
                let built = capacity.and_then(|capacity| {
                    IdFilter::build(store.backend(), capacity, PAGE, &stopped)
                });
                if let Ok(filter) = &built {
                    info!(
                        ids = filter.count,
                        capacity = filter.capacity,
                        took_ms = started.elapsed().as_millis() as u64,
                        "event id filter built"
                    );
                }
                let _ = tx.send(built);
            });
        match spawned {
            Ok(thread) => {
                self.building = Some(Building {
                    built: rx,
                    since: Vec::new(),
                    stop,
                    thread,
                })
            }
            Err(e) => {
                warn!(cause = %e, "cannot start the event id filter's build; every id is looked up in the index")
            }
        }
    }

    /// Takes a finished build, and starts a larger one when the filter is full. Call between
    /// batches, when everything appended so far is in the index.
    pub(crate) fn catch_up(&mut self, store: &Store) {
        if let Some(building) = &self.building {
            match building.built.try_recv() {
                Ok(built) => self.take(built),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    warn!(
                        "the event id filter's build stopped without a result; the index answers alone"
                    );
                    self.building = None;
                }
            }
        }
        if self.building.is_none()
            && let Some(filter) = &self.filter
            && filter.count > filter.capacity
        {
            let capacity = filter.capacity * 2;
            self.build(store, Some(capacity));
        }
    }

    /// Takes the result of the build under way: the filter, told of the ids appended since.
    fn take(&mut self, built: Result<IdFilter, StoreError>) {
        let Some(building) = self.building.take() else {
            return;
        };
        let _ = building.thread.join();
        match built {
            Ok(mut filter) => {
                for hash in building.since {
                    filter.insert_hash(hash);
                }
                self.filter = Some(filter);
            }
            Err(e) => {
                warn!(cause = %e, "the event id filter could not be built; the index answers alone")
            }
        }
    }

    /// Waits (up to a minute) for the build under way, and takes it.
    #[cfg(test)]
    pub(crate) fn wait_built(&mut self) {
        if let Some(building) = &self.building {
            let built = building
                .built
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the event id filter was built within a minute");
            self.take(built);
        }
    }

    /// Tells the filter (and a build under way) of an appended id, by its index prefix
    /// ([`crate::keys::event_id_prefix`]).
    pub(crate) fn insert(&mut self, prefix: &[u8]) {
        let hash = prefix_hash(prefix);
        if let Some(filter) = &mut self.filter {
            filter.insert_hash(hash);
        }
        if let Some(building) = &mut self.building {
            building.since.push(hash);
        }
    }

    /// Whether the id may be in the log, by its index prefix: `false` only when the filter is
    /// ready and was never told of it.
    pub(crate) fn may_hold(&self, prefix: &[u8]) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.may_hold_hash(prefix_hash(prefix)))
    }
}

impl Drop for Ids {
    fn drop(&mut self) {
        if let Some(building) = self.building.take() {
            building.stop.store(true, Ordering::Relaxed);
            let _ = building.thread.join();
        }
    }
}

/// A Bloom filter of event id hashes.
pub(crate) struct IdFilter {
    words: Vec<u64>,
    /// `bits - 1`, where `bits` (a power of two) is the filter's size.
    mask: u64,
    /// Ids told of so far (index keys at the start, appended ids since).
    count: u64,
    /// Ids the filter is sized for; past it the filter is rebuilt twice as large.
    capacity: u64,
}

impl IdFilter {
    /// A filter sized for `capacity` ids, of every id in the event id index of `backend`, read
    /// `page` keys at a time; an error once `stop` is set.
    fn build(
        backend: &dyn Backend,
        capacity: u64,
        page: usize,
        stop: &AtomicBool,
    ) -> Result<IdFilter, StoreError> {
        let mut filter = IdFilter::sized(capacity);
        each_id_key(backend, page, stop, |key| {
            if let Some(hash) = key.get(1..1 + EVENT_ID_HASH) {
                filter.insert_hash(hash_of(hash));
            }
        })?;
        Ok(filter)
    }

    /// An empty filter sized for `capacity` ids.
    fn sized(capacity: u64) -> IdFilter {
        let bits = (capacity.max(64) * BITS_PER_ID).next_power_of_two();
        IdFilter {
            words: vec![0; (bits / 64) as usize],
            mask: bits - 1,
            count: 0,
            capacity,
        }
    }

    fn insert_hash(&mut self, hash: u64) {
        for bit in self.bits(hash) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.count += 1;
    }

    fn may_hold_hash(&self, hash: u64) -> bool {
        self.bits(hash)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The bit positions of an id: double hashing over the two halves of its hash.
    fn bits(&self, hash: u64) -> impl Iterator<Item = u64> + use<> {
        let (a, b) = (hash & 0xffff_ffff, (hash >> 32) | 1);
        let mask = self.mask;
        (0..PROBES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) & mask)
    }
}

/// The id hash of an index prefix (`EVENT_ID` and [`EVENT_ID_HASH`] bytes).
fn prefix_hash(prefix: &[u8]) -> u64 {
    hash_of(prefix.get(1..).unwrap_or_default())
}

/// The [`EVENT_ID_HASH`] bytes of an id's SHA-256 as a number.
fn hash_of(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(word)
}

/// Keys in the event id index (one per event).
fn count_keys(backend: &dyn Backend, page: usize, stop: &AtomicBool) -> Result<u64, StoreError> {
    let mut keys = 0;
    each_id_key(backend, page, stop, |_| keys += 1)?;
    Ok(keys)
}

/// Calls `f` with every key of the event id index, reading `page` keys at a time; an error
/// once `stop` is set.
fn each_id_key(
    backend: &dyn Backend,
    page: usize,
    stop: &AtomicBool,
    mut f: impl FnMut(&[u8]),
) -> Result<(), StoreError> {
    let end = prefix_end(&[EVENT_ID]);
    let mut start = vec![EVENT_ID];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(StoreError::WriterStopped);
        }
        let keys = backend.range(&start, &end, page)?;
        for (key, _) in &keys {
            f(key);
        }
        match keys.last() {
            Some((last, _)) if keys.len() == page => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{event_id_key, event_id_prefix};

    fn hash(id: &str) -> u64 {
        prefix_hash(&event_id_prefix(id))
    }

    #[test]
    fn an_id_told_of_is_always_held_and_few_others_are() {
        let mut filter = IdFilter::sized(10_000);
        for n in 0..10_000 {
            filter.insert_hash(hash(&format!("urn:uuid:told-{n}")));
        }
        for n in 0..10_000 {
            assert!(filter.may_hold_hash(hash(&format!("urn:uuid:told-{n}"))));
        }
        let false_positives = (0..10_000)
            .filter(|n| filter.may_hold_hash(hash(&format!("urn:uuid:new-{n}"))))
            .count();
        // 13 bits per id here (10, rounded up to a power of two): about 0.25 % in theory.
        assert!(false_positives < 100, "{false_positives}");
    }

    /// A store whose event id index holds `n` ids (`urn:uuid:stored-N`), between keys of the
    /// trees on either side of it.
    fn with_ids(n: u64) -> Store {
        let store = crate::Store::in_memory();
        let mut batch = crate::backend::WriteBatch::default();
        for n in 0..n {
            batch.insert(
                event_id_key(&format!("urn:uuid:stored-{n}"), n + 1),
                Vec::new(),
            );
        }
        batch.insert(vec![EVENT_ID - 1, 1], Vec::new());
        batch.insert(vec![EVENT_ID + 1, 1], Vec::new());
        store.backend().apply(batch).unwrap();
        store
    }

    #[test]
    fn a_filter_built_page_by_page_holds_every_id_of_the_index() {
        let store = with_ids(1_000);
        let go = AtomicBool::new(false);
        // Pages of 7 keys: the last page is short, and 1 000 = 142 * 7 + 6.
        assert_eq!(count_keys(store.backend(), 7, &go).unwrap(), 1_000);
        let filter = IdFilter::build(store.backend(), 1_000, 7, &go).unwrap();
        assert_eq!(filter.count, 1_000);
        for n in 0..1_000 {
            assert!(filter.may_hold_hash(hash(&format!("urn:uuid:stored-{n}"))));
        }
        // A stopped build is an error, never a filter missing ids.
        let stop = AtomicBool::new(true);
        assert!(IdFilter::build(store.backend(), 1_000, 7, &stop).is_err());
    }

    #[test]
    fn ids_appended_while_the_filter_is_built_are_held_once_it_is_taken() {
        let store = with_ids(100);
        let mut ids = Ids::start(&store);
        // Before the filter is ready, every id is looked up.
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:never")));
        // Appended during the build, but not in the index the build reads.
        ids.insert(&event_id_prefix("urn:uuid:appended"));
        ids.wait_built();
        let filter = ids.filter.as_ref().unwrap();
        assert_eq!((filter.count, filter.capacity), (101, MIN_CAPACITY));
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:appended")));
        assert!((0..100).all(|n| ids.may_hold(&event_id_prefix(&format!("urn:uuid:stored-{n}")))));
        let held = (0..1_000)
            .filter(|n| ids.may_hold(&event_id_prefix(&format!("urn:uuid:new-{n}"))))
            .count();
        assert!(held < 10, "{held}");
    }

    #[test]
    fn a_full_filter_is_rebuilt_twice_as_large_and_keeps_answering_meanwhile() {
        let store = with_ids(100);
        let mut ids = Ids::none();
        ids.build(&store, Some(128));
        ids.wait_built();
        for n in 0..28 {
            ids.insert(&event_id_prefix(&format!("urn:uuid:more-{n}")));
        }
        // Full, not past it: no build.
        ids.catch_up(&store);
        assert!(ids.building.is_none());
        ids.insert(&event_id_prefix("urn:uuid:past-full"));
        ids.catch_up(&store);
        assert!(ids.building.is_some());
        // The old filter answers until the new one is taken.
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:past-full")));
        ids.insert(&event_id_prefix("urn:uuid:during-growth"));
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:during-growth")));
        ids.wait_built();
        let filter = ids.filter.as_ref().unwrap();
        // The index holds the 100 stored ids (the ones told only were never written); the one
        // appended during the growth was told to the new filter.
        assert_eq!((filter.count, filter.capacity), (101, 256));
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:during-growth")));
        assert!((0..100).all(|n| ids.may_hold(&event_id_prefix(&format!("urn:uuid:stored-{n}")))));
    }

    #[test]
    fn dropping_the_ids_stops_the_build_and_lets_the_store_go() {
        let store = with_ids(10_000);
        let before = store.backend_holders();
        let ids = Ids::start(&store);
        drop(ids);
        // The build's thread is gone, and its clone of the store with it (a data dir can be
        // opened again at once).
        assert_eq!(store.backend_holders(), before);
    }
}
