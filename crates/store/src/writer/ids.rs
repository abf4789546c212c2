//! Which event ids the log may already hold, so that the writer's duplicate check reads the
//! event id index only for an id it may have seen.
//!
//! The check used to scan the index for every event it decided: a tenth of the writer's time
//! on an import, almost all of it for ids that are new. [`IdFilter`] is a Bloom filter of the
//! index keys' id-hash prefixes ([`EVENT_ID_HASH`] bytes of SHA-256, already uniform), told of
//! every id the writer appends. It answers "absent" only for an id whose prefix it was never
//! told of; every other id goes to the index as before, so the filter changes no decision, only
//! how often the index is read.
//!
//! [`Ids`] builds the filter from the index on a thread of its own (a second or two per
//! million events), so the writer takes writes at once: until the filter is ready every id
//! goes to the index, and the ids appended meanwhile are told to the filter when the writer
//! takes it. A full filter is rebuilt twice as large the same way, the old one answering
//! until then.

use std::sync::mpsc;

use tracing::{info, warn};

use crate::backend::Backend;
use crate::error::StoreError;
use crate::keys::{EVENT_ID, EVENT_ID_HASH, prefix_end};
use crate::store::Store;

/// The writer's filter of ids, and the one being built for it.
pub(crate) struct Ids {
    /// `None` until the first build ends: then every id is read for.
    filter: Option<IdFilter>,
    /// A build under way, and the prefixes of the ids appended since it began.
    building: Option<Building>,
}

/// A filter being built on its own thread, and the prefixes of the ids appended since.
struct Building {
    built: mpsc::Receiver<Result<IdFilter, StoreError>>,
    since: Vec<Vec<u8>>,
}

impl Ids {
    /// Starts building the filter of the ids in `store`'s index. Call it before the writer
    /// appends anything, as every id appended after this call must be told to [`Ids::insert`].
    pub(crate) fn start(store: &Store) -> Ids {
        let mut ids = Ids {
            filter: None,
            building: None,
        };
        ids.build(store, None);
        ids
    }

    fn build(&mut self, store: &Store, capacity: Option<u64>) {
        let (tx, rx) = mpsc::channel();
        let store = store.clone();
        let spawned = std::thread::Builder::new()
            .name("lotline-ids".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let built = match capacity {
                    Some(capacity) => IdFilter::build_for(store.backend(), capacity, PAGE),
                    None => IdFilter::build(store.backend()),
                };
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
            Ok(_) => {
                self.building = Some(Building {
                    built: rx,
                    since: Vec::new(),
                })
            }
            Err(e) => {
                warn!(cause = %e, "cannot start the event id filter's build; every id is looked up in the index")
            }
        }
    }

    /// Takes a finished build, and starts a larger one when the filter is full. Call between
    /// batches, when everything appended so far is in the index.
    pub(crate) fn between_batches(&mut self, store: &Store) {
        if let Some(building) = &mut self.building {
            match building.built.try_recv() {
                Ok(Ok(mut filter)) => {
                    for prefix in building.since.drain(..) {
                        filter.insert(&prefix);
                    }
                    self.filter = Some(filter);
                    self.building = None;
                }
                Ok(Err(e)) => {
                    warn!(cause = %e, "the event id filter could not be built; the index answers alone");
                    self.building = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.building = None,
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

    /// Tells the filter (and a build under way) of an appended id, by its index prefix.
    pub(crate) fn insert(&mut self, prefix: &[u8]) {
        if let Some(filter) = &mut self.filter {
            filter.insert(prefix);
        }
        if let Some(building) = &mut self.building {
            building.since.push(prefix.to_vec());
        }
    }

    /// Whether the id may be in the log: `false` only when the filter is ready and was never
    /// told of it.
    pub(crate) fn may_hold(&self, prefix: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_hold(prefix))
    }
}

/// Bits kept per id the filter is sized for: with [`PROBES`] probes, about one new id in a
/// hundred is sent to the index when the filter is full.
const BITS_PER_ID: u64 = 10;
/// Bit positions set and tested per id.
const PROBES: u64 = 7;
/// Ids the smallest filter is sized for (about 1.2 MiB).
const MIN_CAPACITY: u64 = 1 << 20;
/// Index keys read per page while building.
const PAGE: usize = 50_000;

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
    /// A filter of every id in the event id index of `backend`.
    pub(crate) fn build(backend: &dyn Backend) -> Result<IdFilter, StoreError> {
        let keys = count_keys(backend, PAGE)?;
        IdFilter::build_for(backend, (keys * 2).max(MIN_CAPACITY), PAGE)
    }

    fn build_for(
        backend: &dyn Backend,
        capacity: u64,
        page: usize,
    ) -> Result<IdFilter, StoreError> {
        let mut filter = IdFilter::sized(capacity);
        each_id_key(backend, page, |key| {
            if let Some(prefix) = key.get(1..1 + EVENT_ID_HASH) {
                filter.insert(prefix);
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

    /// Tells the filter of an id, by its index prefix (`EVENT_ID` and the hash bytes, as
    /// [`crate::keys::event_id_prefix`] gives it, or the hash bytes alone).
    pub(crate) fn insert(&mut self, prefix: &[u8]) {
        for bit in self.bits(prefix) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.count += 1;
    }

    /// Whether the id may be in the log: `false` only for an id never told of.
    pub(crate) fn may_hold(&self, prefix: &[u8]) -> bool {
        self.bits(prefix)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The bit positions of an id: double hashing over the two halves of its hash prefix.
    fn bits(&self, prefix: &[u8]) -> impl Iterator<Item = u64> + use<> {
        let hash = hash_bytes(prefix);
        let (a, b) = (hash & 0xffff_ffff, (hash >> 32) | 1);
        let mask = self.mask;
        (0..PROBES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) & mask)
    }
}

/// The id-hash bytes of a prefix given with or without its leading `EVENT_ID`, as a number.
fn hash_bytes(prefix: &[u8]) -> u64 {
    let bytes = if prefix.len() == 1 + EVENT_ID_HASH {
        &prefix[1..]
    } else {
        prefix
    };
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(word)
}

/// Keys in the event id index (one per event).
fn count_keys(backend: &dyn Backend, page: usize) -> Result<u64, StoreError> {
    let mut keys = 0;
    each_id_key(backend, page, |_| keys += 1)?;
    Ok(keys)
}

/// Calls `f` with every key of the event id index, reading `page` keys at a time.
fn each_id_key(
    backend: &dyn Backend,
    page: usize,
    mut f: impl FnMut(&[u8]),
) -> Result<(), StoreError> {
    let end = prefix_end(&[EVENT_ID]);
    let mut start = vec![EVENT_ID];
    loop {
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

    #[test]
    fn an_id_told_of_is_always_held_and_few_others_are() {
        let mut filter = IdFilter::sized(10_000);
        for n in 0..10_000 {
            filter.insert(&event_id_prefix(&format!("urn:uuid:told-{n}")));
        }
        for n in 0..10_000 {
            assert!(filter.may_hold(&event_id_prefix(&format!("urn:uuid:told-{n}"))));
        }
        let false_positives = (0..10_000)
            .filter(|n| filter.may_hold(&event_id_prefix(&format!("urn:uuid:new-{n}"))))
            .count();
        // Sized for these ids: about 1 % (0.8 % in theory) are sent to the index.
        assert!(false_positives < 300, "{false_positives}");
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
        // Pages of 7 keys: the last page is short, and 1 000 = 142 * 7 + 6.
        assert_eq!(count_keys(store.backend(), 7).unwrap(), 1_000);
        let filter = IdFilter::build_for(store.backend(), 1_000, 7).unwrap();
        assert_eq!(filter.count, 1_000);
        for n in 0..1_000 {
            assert!(filter.may_hold(&event_id_prefix(&format!("urn:uuid:stored-{n}"))));
        }
    }

    /// Waits (a bounded time) for the build under way to be taken.
    fn taken(ids: &mut Ids, store: &Store) {
        for _ in 0..3_000 {
            ids.between_batches(store);
            if ids.building.is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the filter was not built in 30 s");
    }

    #[test]
    fn ids_appended_while_the_filter_is_built_are_held_once_it_is_taken() {
        let store = with_ids(100);
        let mut ids = Ids::start(&store);
        // Before the filter is ready, every id is looked up.
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:never")));
        // Appended during the build, but not in the index the build reads.
        ids.insert(&event_id_prefix("urn:uuid:appended"));
        taken(&mut ids, &store);
        let filter = ids.filter.as_ref().unwrap();
        assert_eq!(filter.count, 101);
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:appended")));
        assert!((0..100).all(|n| ids.may_hold(&event_id_prefix(&format!("urn:uuid:stored-{n}")))));
        let held = (0..1_000)
            .filter(|n| ids.may_hold(&event_id_prefix(&format!("urn:uuid:new-{n}"))))
            .count();
        assert!(held < 30, "{held}");
        // Told of more ids than it was sized for, it is rebuilt twice as large, and the ids
        // appended during that build are held too.
        let capacity = filter.capacity;
        for n in 0..capacity {
            ids.insert(&event_id_prefix(&format!("urn:uuid:more-{n}")));
        }
        ids.between_batches(&store);
        assert!(ids.building.is_some());
        ids.insert(&event_id_prefix("urn:uuid:during-growth"));
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:during-growth")));
        taken(&mut ids, &store);
        let filter = ids.filter.as_ref().unwrap();
        assert_eq!(filter.capacity, capacity * 2);
        // The index holds the 100 stored ids; the one appended during the growth was told.
        assert_eq!(filter.count, 101);
        assert!(ids.may_hold(&event_id_prefix("urn:uuid:during-growth")));
    }

    #[test]
    fn a_prefix_with_or_without_its_tree_byte_is_the_same_id() {
        let mut filter = IdFilter::sized(1_000);
        let prefix = event_id_prefix("urn:uuid:x");
        filter.insert(&prefix[1..]);
        assert!(filter.may_hold(&prefix));
    }
}
