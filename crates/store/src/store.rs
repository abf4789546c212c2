//! The log and its indexes: reads for queries, and the indexing that the writer
//! and the rebuild share.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, FixedOffset, Utc};
use lotline_domain::event::LotRole;
use lotline_domain::lineage::{KeptLineage, KeptTrace, LotCustody};
use lotline_domain::{Chain, Event, EventKind, KindName, RegisterPlot};
use tracing::{info, warn};

use crate::backend::{Backend, WriteBatch};
use crate::error::StoreError;
use crate::keys::*;
use crate::record::Record;
use crate::snapshot::Snapshot;

/// Bumped whenever the index layout changes; a mismatch rebuilds the indexes, unless the
/// stored version is one this release reads as it is ([`READ_AS_IS`]).
pub const INDEX_VERSION: u64 = 6;

/// Earlier index versions whose indexes this release reads without a rebuild: version 5 wrote
/// a lot index entry per event, which is version 6's posting of one event (version 6 writes
/// one per lot, role and batch). A release that knows only version 5 rebuilds from a version
/// 6 dir, so it never misreads the postings.
const READ_AS_IS: [u64; 1] = [5];

/// How many of the newest log entries the start-up check samples.
const STARTUP_SAMPLE: u64 = 64;

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub record_time: DateTime<Utc>,
    pub event: Arc<Event>,
}

/// Filters for [`Store::list_events`]; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub org: Option<String>,
    pub chain: Option<Chain>,
    pub kind: Option<KindName>,
    pub lot: Option<String>,
    /// Inclusive lower bound on event time.
    pub from: Option<DateTime<FixedOffset>>,
    /// Exclusive upper bound on event time.
    pub to: Option<DateTime<FixedOffset>>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The sequence to continue after, when there may be more.
    pub next_after: Option<u64>,
}

/// Input that was refused, as kept in the quarantine.
pub type Rejection = lotline_record::Quarantined;

/// A lot used but never created, with the events that mention it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLot {
    pub lot: String,
    pub event_ids: Vec<String>,
}

/// What one logical tree (key prefix) holds: keys and their bytes, as the store sees them
/// (before the backend's own overhead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixFootprint {
    pub prefix: u8,
    pub keys: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupCheck {
    /// Indexes match the log.
    Consistent { events: u64 },
    /// Indexes did not match the log and were rebuilt.
    Rebuilt { events: u64, reason: String },
    /// Not checked (the log failed its integrity check; indexes are never rebuilt
    /// from a log that does not match its tree).
    NotChecked { reason: String },
}

/// Decoded events kept in memory; records never change, so entries never go stale.
const EVENT_CACHE: usize = 50_000;

/// Index prefixes whose sequences are kept in memory (a lot's entries, a plot's registrations):
/// sled 0.34 descends its tree again for every entry of a range, so a question that walks the
/// same lots again (or many questions about one chain) reads each prefix once.
const INDEX_READ_CACHE: usize = 32_768;

/// How many judged lots are kept between questions, weighed by the events each holds (up to
/// about 1 KiB each when the event cache no longer holds them): a deep trace-back judges about
/// 1 400 lots of about 5 events each, so this keeps a dozen such questions' worth within
/// 100 MiB.
const JUDGED_CACHE_EVENTS: u64 = 100_000;

/// How many trace-backs are kept whole between questions, weighed by [`KeptTrace::weight`]
/// (their lots and the events those lots' custody holds): about a dozen of the deepest
/// (eight transformations, 600 farms' lots), many more shallow ones.
const KEPT_TRACE_WEIGHT: u64 = 100_000;

/// How much computed lineage is kept between questions ([`KeptLineage::weight`]: the lot, its
/// inputs and the events its custody holds; a few hundred bytes each).
const KEPT_LINEAGE_WEIGHT: u64 = 100_000;

/// The most sequences one kept prefix holds (4 KiB), so the cache stays within 128 MiB at worst
/// and a few MiB for ordinary lots (a handful of events each).
const INDEX_READ_MAX_SEQS: usize = 512;

/// The sequences under one index prefix, and the durable sequence they are complete to.
type IndexRead = (u64, Arc<[u64]>);

/// How many ids' last writes [`Written`] remembers before it starts again (about 16 bytes
/// each): the writes of the last hundred thousand events or so.
const WRITTEN_IDS: usize = 262_144;

/// The last sequence of the batch that last wrote an index entry of each id (an index key's
/// prefix byte and id, [`id_part`]), for the writes after `floor`: a kept index read complete to
/// a sequence at or after `floor` holds in a later view when no batch after it wrote its id.
/// Ids are known by a hash seeded per process; two that collide only cost a read.
struct Written {
    floor: u64,
    last: std::collections::HashMap<u64, u64, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
}

impl Written {
    fn new(floor: u64) -> Self {
        Written {
            floor,
            last: Default::default(),
            hasher: Default::default(),
        }
    }

    fn key(&self, id: &[u8]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    /// Whether no batch after `complete_to` wrote an entry of the id `prefix` starts with.
    /// Every key under `prefix` starts with the same id when `prefix` holds a whole one; one
    /// that does not, or of a prefix whose writes are not noted, may have been written.
    fn untouched_since(&self, prefix: &[u8], complete_to: u64) -> bool {
        if !prefix.first().is_some_and(|p| INDEXES.contains(p)) {
            return false;
        }
        let Some(id) = id_part(prefix) else {
            return false;
        };
        complete_to >= self.floor
            && self
                .last
                .get(&self.key(id))
                .is_none_or(|last| *last <= complete_to)
    }
}

/// The prefix byte and id an index key or prefix starts with (up to and including the id's
/// terminator, [`push_id`]), if it has one.
fn id_part(key: &[u8]) -> Option<&[u8]> {
    let end = key.iter().skip(1).position(|b| *b == 0)? + 1;
    Some(&key[..=end])
}

/// Blocks of records kept decompressed (at most 16 records and about 32 KiB each): a reader
/// going through the log in order, or a question reading events written together,
/// decompresses each block once.
const BLOCK_CACHE: usize = 256;

/// The event log. Cheap to clone; every clone reads the same backend and shares
/// one cache of decoded events.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    events: Arc<quick_cache::sync::Cache<u64, StoredEvent>>,
    /// The sequences under an index prefix, with the durable sequence they are complete to:
    /// index entries are only ever added (a rebuild clears this), so a list read when the log
    /// was durable to `n` holds every entry of a view up to `n`.
    index_reads: Arc<quick_cache::sync::Cache<Vec<u8>, IndexRead>>,
    /// Decompressed blocks of the log by the sequence of their first record.
    blocks: Arc<quick_cache::sync::Cache<u64, Arc<[Vec<u8>]>>>,
    /// The correction index mirrored in memory, so that the common case (not corrected)
    /// needs no read.
    corrections: Arc<RwLock<CorrectionMirror>>,
    /// Lots judged by who holds them, kept between questions ([`crate::snapshot`]).
    judged: Arc<JudgedCache>,
    /// Lots' computed lineage, kept between questions ([`KeptLineage`]).
    lineage: Arc<LineageCache>,
    /// Whole trace-backs, kept between questions ([`KeptTrace`]).
    traces: Arc<TraceCache>,
    /// Plots' standing registrations, kept between questions ([`KeptPlot`]).
    plots: Arc<quick_cache::sync::Cache<String, Arc<KeptPlot>>>,
    /// Which ids the latest batches wrote index entries of, so that kept index reads stay
    /// current as the log grows ([`Written`]).
    written: Arc<Mutex<Written>>,
    /// The last sequence known to be flushed; snapshots stop there.
    durable: Arc<AtomicU64>,
    /// The same, for those who wait for the log to grow.
    grew: Arc<tokio::sync::watch::Sender<u64>>,
}

/// The correction index, mirrored.
#[derive(Default)]
struct CorrectionMirror {
    /// Every event id some Correct event targets. The empty id marks a mirror that failed
    /// to load: then nothing is trusted.
    targets: HashSet<String>,
    /// The sequence of every Correct event.
    seqs: BTreeSet<u64>,
}

/// A lot judged by who holds it ([`LotCustody`]), with what it was judged from: the last
/// sequence that named the lot (and each container that carried it) in the view it was judged
/// in, and the view's last correction. A view in which all of them are the same reads the same
/// events with the same corrections, so the judgement holds there too.
pub(crate) struct JudgedLot {
    /// The sequence of the judging view's last Correct event (0 if none).
    pub(crate) corrections: u64,
    /// Each lot read (the lot itself, then each container that carried it), with the last
    /// sequence that named it in the judging view.
    pub(crate) stamps: Vec<(String, u64)>,
    pub(crate) custody: Arc<LotCustody>,
}

/// A plot's standing registration as a question read it ([`Snapshot::plot`]), with what it
/// was read from: the last sequence under the plot's index and under the org registrations of
/// the org that registered it first (which name the co-op that counts too), and the view's
/// last correction. A view in which all of them are the same reads the same standing.
#[derive(Clone)]
pub(crate) struct KeptPlot {
    /// The view it was read or last found to hold in (its last sequence).
    pub(crate) upto: u64,
    /// The sequence of that view's last Correct event (0 if none).
    pub(crate) corrections: u64,
    /// Each index prefix read, with the last sequence under it in that view.
    pub(crate) stamps: Vec<(Vec<u8>, u64)>,
    pub(crate) standing: Option<(Arc<Event>, RegisterPlot)>,
}

/// How many plots' standing registrations are kept between questions (each holds its
/// registration event, geometry included).
const KEPT_PLOTS: usize = 16_384;

/// Weighs a judged lot by the events it holds.
#[derive(Clone)]
pub(crate) struct JudgedWeight;

impl quick_cache::Weighter<String, Arc<JudgedLot>> for JudgedWeight {
    fn weight(&self, _lot: &String, judged: &Arc<JudgedLot>) -> u64 {
        1 + judged.custody.mentions.len() as u64 + judged.stamps.len() as u64
    }
}

type JudgedCache = quick_cache::sync::Cache<String, Arc<JudgedLot>, JudgedWeight>;

/// Weighs kept lineage by [`KeptLineage::weight`].
#[derive(Clone)]
pub(crate) struct LineageWeight;

impl quick_cache::Weighter<String, Arc<KeptLineage>> for LineageWeight {
    fn weight(&self, _lot: &String, kept: &Arc<KeptLineage>) -> u64 {
        kept.weight()
    }
}

type LineageCache = quick_cache::sync::Cache<String, Arc<KeptLineage>, LineageWeight>;

/// A kept trace-back, with the view (its last sequence) it was made or last found to hold in,
/// and what every judgement it was answered from was read from there, when the store knew.
#[derive(Clone)]
pub(crate) struct KeptTraceIn {
    pub(crate) upto: u64,
    pub(crate) reads: Option<Arc<TraceReads>>,
    pub(crate) trace: Arc<KeptTrace>,
}

/// What the judgements a kept trace-back was answered from were read from: the lot index of
/// each lot and of each container that carried one, and the last correction. A later view in
/// which none of those was written under and the last correction is the same judges every lot
/// the same, so the trace holds there as it is.
pub(crate) struct TraceReads {
    pub(crate) corrections: u64,
    pub(crate) prefixes: Vec<Vec<u8>>,
}

/// Weighs kept trace-backs by [`KeptTrace::weight`].
#[derive(Clone)]
pub(crate) struct TraceWeight;

impl quick_cache::Weighter<String, KeptTraceIn> for TraceWeight {
    fn weight(&self, _lot: &String, kept: &KeptTraceIn) -> u64 {
        kept.trace.weight()
    }
}

type TraceCache = quick_cache::sync::Cache<String, KeptTraceIn, TraceWeight>;

/// Writes in progress, read through before the backend: a batch sees its own
/// earlier events (an org registered three events earlier in the same batch).
pub(crate) struct Pending<'a> {
    backend: &'a dyn Backend,
    pub(crate) batch: WriteBatch,
    /// Leaf hashes of the records this batch appends (the tree stores none below
    /// `tree::LOWEST_STORED_LEVEL`), by leaf index.
    pub(crate) leaves: std::collections::HashMap<u64, lotline_merkle::Hash>,
    /// The sequences of each org's events in this batch: one `O` key per org, written by
    /// [`Pending::into_batch`].
    org_postings: std::collections::BTreeMap<String, Vec<u64>>,
    /// The sequences of the events of this batch that name each lot in each role, by the lot
    /// and role's index prefix ([`lot_role_prefix`]): one `T` key each, written by
    /// [`Pending::into_batch`].
    lot_postings: std::collections::BTreeMap<Vec<u8>, Vec<u64>>,
    /// The version 1 bytes of the records this batch appends, kept in blocks by
    /// [`Pending::into_batch`].
    records: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(backend: &'a dyn Backend) -> Self {
        Pending {
            backend,
            batch: WriteBatch::default(),
            leaves: Default::default(),
            org_postings: Default::default(),
            lot_postings: Default::default(),
            records: Default::default(),
        }
    }

    /// Appends the record (version 1 bytes) at `seq`.
    pub(crate) fn append_record(&mut self, seq: u64, record: Vec<u8>) {
        self.records.insert(seq, record);
    }

    /// The version 1 bytes of the record at `seq`, appended by this batch or stored.
    pub(crate) fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.records.get(&seq) {
            Some(record) => Ok(Some(record.clone())),
            None => crate::log::record(self.backend, seq),
        }
    }

    /// Everything to write: the records, and the posting keys of what was indexed.
    pub(crate) fn into_batch(mut self) -> WriteBatch {
        crate::log::write(&mut self.batch, std::mem::take(&mut self.records));
        for (org, seqs) in std::mem::take(&mut self.org_postings) {
            self.batch
                .insert(id_seq_key(ORG, &org, seqs[0]), encode_postings(&seqs));
        }
        for (mut key, seqs) in std::mem::take(&mut self.lot_postings) {
            key.extend_from_slice(&seqs[0].to_be_bytes());
            self.batch.insert(key, encode_postings(&seqs));
        }
        self.batch
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.batch.ops.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.backend.get(key),
        }
    }

    /// The sequences under the index prefix `prefix`, as this batch leaves them, ascending.
    pub(crate) fn seqs_with_prefix(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        let end = prefix_end(prefix);
        let mut entries: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = self
            .backend
            .range(prefix, &end, usize::MAX)?
            .into_iter()
            .collect();
        for (k, v) in self.batch.ops.range(prefix.to_vec()..end.clone()) {
            match v {
                Some(v) => entries.insert(k.clone(), v.clone()),
                None => entries.remove(k),
            };
        }
        let mut seqs = Vec::new();
        for (k, v) in &entries {
            index_entry_seqs(k, v, &mut seqs)?;
        }
        for (_, batch_seqs) in self.lot_postings.range(prefix.to_vec()..end) {
            seqs.extend_from_slice(batch_seqs);
        }
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs)
    }

    pub(crate) fn has_prefix(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        let end = prefix_end(prefix);
        if self
            .batch
            .ops
            .range(prefix.to_vec()..end.clone())
            .any(|(_, v)| v.is_some())
            || self
                .lot_postings
                .range(prefix.to_vec()..end.clone())
                .next()
                .is_some()
        {
            return Ok(true);
        }
        Ok(!self.backend.range(prefix, &end, 1)?.is_empty())
    }
}

impl Store {
    /// A consistent view of the log as it is now: see [`Snapshot`].
    ///
    /// A view never includes events the writer has applied but not yet flushed:
    /// nothing is answered, proved or signed that a crash could still take back.
    pub fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Ok(Snapshot::new(self, self.durable.load(Ordering::Acquire)))
    }

    /// Records that the log up to `seq` is flushed (called by the writer).
    pub(crate) fn set_durable(&self, seq: u64) {
        self.durable.store(seq, Ordering::Release);
        self.grew.send_if_modified(|last| {
            let grew = seq > *last;
            *last = seq;
            grew
        });
    }

    /// Where the log readers see ends: every event up to this sequence is flushed (and the
    /// Merkle tree is this size).
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Where the log readers see ends, as it changes: a follower of the log (a subscription,
    /// a watch) waits on it instead of polling.
    pub fn durable_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.grew.subscribe()
    }

    /// The records kept beside the log under `kind` (named queries, subscriptions), by name.
    /// They are this node's state, not events: not in the log, the tree or its indexes.
    pub fn kept(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = kept_prefix(kind);
        let end = prefix_end(&prefix);
        let mut all = Vec::new();
        let mut start = prefix.clone();
        loop {
            let chunk = self.backend.range(&start, &end, 512)?;
            let Some((last, _)) = chunk.last() else {
                return Ok(all);
            };
            start = last.clone();
            start.push(0);
            for (key, value) in chunk {
                if let Some((name, _)) = split_id(&key[prefix.len()..]) {
                    all.push((name, value));
                }
            }
        }
    }

    /// The kept record `kind`/`name`, if there is one.
    pub fn kept_one(&self, kind: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get(&kept_key(kind, name))
    }

    /// Writes (or, with `None`, removes) the kept record `kind`/`name`, durably.
    pub fn keep(&self, kind: &str, name: &str, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let key = kept_key(kind, name);
        match value {
            Some(v) => batch.insert(key, v),
            None => batch.remove(key),
        }
        self.backend.apply(batch)?;
        self.backend.flush()
    }

    /// A store over the same backend that keeps nothing from this one's questions.
    #[cfg(test)]
    pub(crate) fn keeping_nothing(&self) -> Store {
        Store::new(Arc::clone(&self.backend))
    }

    /// How many handles hold this store's backend (its clones, and threads working on it).
    #[cfg(test)]
    pub(crate) fn backend_holders(&self) -> usize {
        Arc::strong_count(&self.backend)
    }

    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let store = Store {
            backend,
            events: Arc::new(quick_cache::sync::Cache::new(EVENT_CACHE)),
            index_reads: Arc::new(quick_cache::sync::Cache::new(INDEX_READ_CACHE)),
            blocks: Arc::new(quick_cache::sync::Cache::new(BLOCK_CACHE)),
            corrections: Arc::new(RwLock::new(CorrectionMirror::default())),
            judged: Arc::new(JudgedCache::with_weighter(
                32_768,
                JUDGED_CACHE_EVENTS,
                JudgedWeight,
            )),
            lineage: Arc::new(LineageCache::with_weighter(
                32_768,
                KEPT_LINEAGE_WEIGHT,
                LineageWeight,
            )),
            traces: Arc::new(TraceCache::with_weighter(
                4_096,
                KEPT_TRACE_WEIGHT,
                TraceWeight,
            )),
            plots: Arc::new(quick_cache::sync::Cache::new(KEPT_PLOTS)),
            written: Arc::new(Mutex::new(Written::new(0))),
            durable: Arc::new(AtomicU64::new(0)),
            grew: Arc::new(tokio::sync::watch::channel(0).0),
        };
        // What is on disk at open is as durable as this store can know.
        match store.last_seq() {
            Ok(seq) => store.set_durable(seq),
            Err(e) => {
                warn!(cause = %e, "cannot read where the log ends; reads see nothing until the next write")
            }
        }
        // A read failure here only costs the fast path: every target is re-read below.
        if let Err(e) = store.load_corrections() {
            warn!(cause = %e, "cannot read the correction index; correction checks read the store");
            store.corrections_write().targets.insert(String::new());
        }
        store
    }

    fn corrections_write(&self) -> std::sync::RwLockWriteGuard<'_, CorrectionMirror> {
        self.corrections.write().unwrap_or_else(|p| p.into_inner())
    }

    fn corrections_read(&self) -> std::sync::RwLockReadGuard<'_, CorrectionMirror> {
        self.corrections.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads the in-memory mirror of corrections from the index.
    fn load_corrections(&self) -> Result<(), StoreError> {
        let start = vec![CORRECTION];
        let end = prefix_end(&start);
        let mut mirror = CorrectionMirror::default();
        for (k, _) in self.backend.range(&start, &end, usize::MAX)? {
            mirror.targets.extend(key_id(&k));
            mirror.seqs.extend(trailing_seq(&k));
        }
        *self.corrections_write() = mirror;
        Ok(())
    }

    /// Records that the Correct event at `seq` targets `target` (called by the writer once
    /// the correction is applied, before it becomes visible).
    pub(crate) fn note_correction(&self, target: &str, seq: u64) {
        let mut mirror = self.corrections_write();
        mirror.targets.insert(target.to_string());
        mirror.seqs.insert(seq);
    }

    pub(crate) fn may_be_corrected(&self, event_id: &str) -> bool {
        let mirror = self.corrections_read();
        // The empty id marks a mirror that failed to load: trust nothing.
        mirror.targets.contains(event_id) || mirror.targets.contains("")
    }

    /// The sequence of the last Correct event at most `upto` (0 if none); `None` when the
    /// mirror failed to load and cannot say.
    pub(crate) fn last_correction(&self, upto: u64) -> Option<u64> {
        let mirror = self.corrections_read();
        if mirror.targets.contains("") {
            return None;
        }
        Some(mirror.seqs.range(..=upto).next_back().copied().unwrap_or(0))
    }

    /// The judgement of `lot` kept from an earlier question, if any.
    pub(crate) fn judged(&self, lot: &str) -> Option<Arc<JudgedLot>> {
        self.judged.get(lot)
    }

    /// Keeps the judgement of `lot` for later questions, in place of any earlier one.
    pub(crate) fn keep_judged(&self, lot: &str, judged: JudgedLot) {
        self.judged.insert(lot.to_string(), Arc::new(judged));
    }

    /// The lineage of `lot` an earlier question kept, if any.
    pub(crate) fn kept_lineage(&self, lot: &str) -> Option<Arc<KeptLineage>> {
        self.lineage.get(lot)
    }

    /// Keeps the lineage of `lot` for later questions, in place of any earlier one.
    pub(crate) fn keep_lineage(&self, lot: &str, kept: Arc<KeptLineage>) {
        self.lineage.insert(lot.to_string(), kept);
    }

    /// The trace-back of `lot` an earlier question kept, with the view it holds in.
    pub(crate) fn kept_trace(&self, lot: &str) -> Option<KeptTraceIn> {
        self.traces.get(lot)
    }

    /// Keeps the trace-back of `lot` as holding in the view up to `upto`, in place of any
    /// earlier one.
    pub(crate) fn keep_trace(&self, lot: &str, kept: KeptTraceIn) {
        self.traces.insert(lot.to_string(), kept);
    }

    /// Whether no batch after `since` wrote an index entry under any of `prefixes` (as far as
    /// the writer's notes tell: [`Written`]).
    pub(crate) fn untouched<'p>(
        &self,
        mut prefixes: impl Iterator<Item = &'p [u8]>,
        since: u64,
    ) -> bool {
        let written = self.written_lock();
        prefixes.all(|prefix| written.untouched_since(prefix, since))
    }

    /// The standing registration of `plot` an earlier question kept, if any.
    pub(crate) fn kept_plot(&self, plot: &str) -> Option<Arc<KeptPlot>> {
        self.plots.get(plot)
    }

    /// Keeps the standing registration of `plot`, in place of any earlier one.
    pub(crate) fn keep_plot(&self, plot: &str, kept: KeptPlot) {
        self.plots.insert(plot.to_string(), Arc::new(kept));
    }

    /// Forgets what questions kept (after the indexes they were read from changed).
    pub(crate) fn forget_kept(&self) {
        self.index_reads.clear();
        self.judged.clear();
        self.lineage.clear();
        self.traces.clear();
        self.plots.clear();
        *self.written_lock() = Written::new(self.durable.load(Ordering::Acquire));
    }

    fn written_lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes the ids whose index entries `batch` writes, as written by the batch that ends at
    /// sequence `last` (called by the writer before the batch becomes visible).
    pub(crate) fn note_written(&self, batch: &WriteBatch, first: u64, last: u64) {
        let mut written = self.written_lock();
        if written.last.len() >= WRITTEN_IDS {
            // Starts again: reads complete only to before this batch are read again.
            written.last.clear();
            written.floor = first.saturating_sub(1);
        }
        for key in batch.ops.keys() {
            if key.first().is_some_and(|p| INDEXES.contains(p))
                && let Some(id) = id_part(key)
            {
                let id = written.key(id);
                written.last.insert(id, last);
            }
        }
    }

    /// A store on the in-memory twin.
    pub fn in_memory() -> Self {
        Store::new(Arc::new(crate::backend::MemoryBackend::new()))
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Keys and bytes per key prefix, for the benchmarks' "where the bytes go". Reads every
    /// entry (in pages), so it takes as long as a scan of the store.
    pub fn footprint(&self) -> Result<Vec<PrefixFootprint>, StoreError> {
        let mut by_prefix: std::collections::BTreeMap<u8, PrefixFootprint> = Default::default();
        let mut start = Vec::new();
        loop {
            let page = self.backend.range(&start, &[0xff; 2], 10_000)?;
            let Some((last, _)) = page.last() else { break };
            start = last.clone();
            start.push(0);
            for (k, v) in &page {
                let prefix = k.first().copied().unwrap_or(0);
                let f = by_prefix.entry(prefix).or_insert(PrefixFootprint {
                    prefix,
                    keys: 0,
                    key_bytes: 0,
                    value_bytes: 0,
                });
                f.keys += 1;
                f.key_bytes += k.len() as u64;
                f.value_bytes += v.len() as u64;
            }
        }
        Ok(by_prefix.into_values().collect())
    }

    /// The sequence number of the newest event (0 for an empty log).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        crate::log::last_seq(self.backend.as_ref())
    }

    pub fn record(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        self.record_bytes(seq)?
            .map(|b| Record::decode(&b))
            .transpose()
    }

    /// The version 1 record bytes at `seq` (the leaf bytes of leaf `seq - 1`), however the
    /// record is kept on disk.
    pub fn record_bytes(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_record_bytes(seq, |bytes| Ok(bytes.to_vec()))
    }

    /// `read` of the version 1 record bytes at `seq`, borrowed from where they are kept (a
    /// block's bytes are decompressed once and kept for the records next to it).
    fn with_record_bytes<T>(
        &self,
        seq: u64,
        read: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let Some((first, value)) = crate::log::entry_holding(self.backend.as_ref(), seq)? else {
            return Ok(None);
        };
        if crate::record::stored_count(&value) == 1 {
            return read(&crate::record::leaf_bytes(&value)?).map(Some);
        }
        let block = match self.blocks.get(&first) {
            Some(block) => block,
            None => {
                let block: Arc<[Vec<u8>]> = crate::record::unpack(&value)?.into();
                self.blocks.insert(first, Arc::clone(&block));
                block
            }
        };
        block
            .get((seq - first) as usize)
            .map(|bytes| read(bytes))
            .transpose()
    }

    /// The sequences of the records from `from` to `upto`, at most `max`, ascending.
    pub(crate) fn seqs_in_log(
        &self,
        from: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<u64>, StoreError> {
        crate::log::seqs(self.backend.as_ref(), from, upto, max)
    }

    /// Forgets decompressed blocks (after a test rewrote the log under the store).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn forget_blocks(&self) {
        self.blocks.clear();
    }

    pub fn event_at(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        if let Some(hit) = self.events.get(&seq) {
            return Ok(Some(hit));
        }
        let Some((record_time, event)) =
            self.with_record_bytes(seq, crate::record::event_of_record)?
        else {
            return Ok(None);
        };
        let stored = StoredEvent {
            seq,
            record_time,
            event: Arc::new(event),
        };
        self.events.insert(seq, stored.clone());
        Ok(Some(stored))
    }

    /// The last stream sequence applied by the NATS consumer (0 if none).
    pub fn stream_position(&self) -> Result<u64, StoreError> {
        Ok(self.meta_u64(META_STREAM_POSITION)?.unwrap_or(0))
    }

    /// Which stream [`Store::stream_position`] is a position in (set by the NATS consumer when
    /// it first opens a stream; `None` in a data dir of an earlier release or never consumed).
    pub fn stream_identity(&self) -> Result<Option<String>, StoreError> {
        self.backend
            .get(&meta_key(META_STREAM_IDENTITY))?
            .map(|v| {
                String::from_utf8(v)
                    .map_err(|_| StoreError::Corrupt("the stream identity is not text".into()))
            })
            .transpose()
    }

    /// Restores log records from a backup: appends `records` (version 1 record bytes, the
    /// Merkle leaves) at `first_seq`, which must follow the last record, and flushes. Nothing
    /// else is written: once every record is in, [`Store::rebuild_tree`] and
    /// [`Store::rebuild_indexes`] make the rest, and [`Store::restore_stream_position`] says
    /// where a NATS consumer resumes.
    pub fn restore_records(&self, first_seq: u64, records: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let last = self.last_seq()?;
        if first_seq != last + 1 {
            return Err(StoreError::Backend(format!(
                "restoring records from sequence {first_seq}, but the log ends at {last}"
            )));
        }
        let records: std::collections::BTreeMap<u64, Vec<u8>> =
            (first_seq..).zip(records).collect();
        let mut batch = WriteBatch::default();
        crate::log::write(&mut batch, records);
        self.backend.apply(batch)?;
        self.backend.flush()
    }

    /// Restores where a NATS consumer resumes: after stream sequence `position` of the stream
    /// `identity` (as [`Store::stream_identity`] gives it).
    pub fn restore_stream_position(&self, position: u64, identity: &str) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.insert(
            meta_key(META_STREAM_POSITION),
            position.to_be_bytes().to_vec(),
        );
        if !identity.is_empty() {
            batch.insert(meta_key(META_STREAM_IDENTITY), identity.as_bytes().to_vec());
        }
        self.backend.apply(batch)?;
        self.backend.flush()
    }

    /// Records which stream this node consumes (durably, before anything of it is applied).
    pub fn set_stream_identity(&self, identity: &str) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.insert(meta_key(META_STREAM_IDENTITY), identity.as_bytes().to_vec());
        self.backend.apply(batch)?;
        self.backend.flush()
    }

    /// The sequence of the event `event_id`, if it is recorded.
    pub fn seq_of(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        for seq in self.seqs_with_prefix(&event_id_prefix(event_id))? {
            if let Some(stored) = self.event_at(seq)?
                && stored.event.id == event_id
            {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// The sequences under the index prefix `prefix`, ascending, holding at least every entry
    /// of the events up to `upto` (a view's end: at most what is durable); later ones may
    /// follow, for the caller to leave out.
    pub(crate) fn indexed_seqs(&self, prefix: &[u8], upto: u64) -> Result<Arc<[u64]>, StoreError> {
        if let Some((complete_to, seqs)) = self.index_reads.get(prefix) {
            if complete_to >= upto {
                return Ok(seqs);
            }
            // Nothing written under it since: it is complete to this view too, and is kept so.
            if self.written_lock().untouched_since(prefix, complete_to) {
                self.index_reads
                    .insert(prefix.to_vec(), (upto, Arc::clone(&seqs)));
                return Ok(seqs);
            }
        }
        // Read before the range: every event up to it was applied before it was published.
        let complete_to = self.durable.load(Ordering::Acquire);
        let mut seqs = self.seqs_with_prefix(prefix)?;
        seqs.sort_unstable();
        seqs.dedup();
        let seqs: Arc<[u64]> = seqs.into();
        // A prefix with a great many entries is read each time rather than held.
        if seqs.len() <= INDEX_READ_MAX_SEQS {
            self.index_reads
                .insert(prefix.to_vec(), (complete_to, Arc::clone(&seqs)));
        }
        Ok(seqs)
    }

    /// The sequences under the index prefix `prefix` as stored, in key order (a lot's
    /// postings expanded: [`index_entry_seqs`]).
    pub(crate) fn seqs_with_prefix(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        let end = prefix_end(prefix);
        let mut seqs = Vec::new();
        for (k, v) in self.backend.range(prefix, &end, usize::MAX)? {
            index_entry_seqs(&k, &v, &mut seqs)?;
        }
        Ok(seqs)
    }

    /// The sequences of `org`'s events after `after` (at most `upto`), ascending: the posting
    /// key that may hold `after + 1` and the ones after it, up to `max_keys` of them (one per
    /// batch written), so a caller reading from a cursor gets at least one key's worth.
    pub(crate) fn org_seqs_from(
        &self,
        org: &str,
        after: u64,
        upto: u64,
        max_keys: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let prefix = id_prefix(ORG, org);
        let start = id_seq_key(ORG, org, after.saturating_add(1));
        let mut keys = Vec::new();
        if let Some(before) = self.backend.last_in(&prefix, &start)? {
            keys.push(before);
        }
        keys.extend(self.backend.range(&start, &prefix_end(&prefix), max_keys)?);
        let mut seqs = Vec::new();
        for (k, v) in keys {
            let first = trailing_seq(&k)
                .ok_or_else(|| StoreError::Corrupt("an org index key has no sequence".into()))?;
            if first > upto {
                break;
            }
            let all = decode_postings(first, &v).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the org index entry of {org:?} at {first} does not decode"
                ))
            })?;
            seqs.extend(all.into_iter().filter(|s| *s > after && *s <= upto));
        }
        Ok(seqs)
    }

    /// Every sequence of `org`'s events at most `upto`, ascending.
    pub(crate) fn org_seqs(
        &self,
        org: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.org_seqs_from(org, cursor, upto, 256)?;
            match page.last() {
                Some(&last) if last > cursor => {
                    cursor = last;
                    out.extend(page);
                }
                _ => return Ok(out),
            }
        }
    }

    /// Quarantined input, oldest first, after id `after`.
    pub fn list_rejected(&self, after: u64, limit: usize) -> Result<Page<Rejection>, StoreError> {
        let start = seq_key(REJECTED, after.saturating_add(1));
        let end = prefix_end(&[REJECTED]);
        let limit = limit.max(1);
        let rows = self.backend.range(&start, &end, limit)?;
        let full = rows.len() == limit;
        let mut items = Vec::with_capacity(rows.len());
        for (_, v) in rows {
            items.push(
                lotline_record::decode_quarantined(&v)
                    .map_err(|e| StoreError::Corrupt(format!("quarantine entry: {e}")))?,
            );
        }
        let next_after = if full {
            items.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    pub(crate) fn last_rejected_id(&self) -> Result<u64, StoreError> {
        let start = seq_key(REJECTED, 0);
        let end = prefix_end(&[REJECTED]);
        Ok(self
            .backend
            .last_in(&start, &end)?
            .and_then(|(k, _)| trailing_seq(&k))
            .unwrap_or(0))
    }

    /// Checks that the indexes match the log and rebuilds them when they do not.
    /// Cheap: index version, indexed-through sequence, and a sample of the newest
    /// entries. `full` checks every entry.
    pub fn check_and_repair(&self, full: bool) -> Result<StartupCheck, StoreError> {
        let events = self.last_seq()?;
        let problem = self.index_problem(events, full)?;
        match problem {
            None => Ok(StartupCheck::Consistent { events }),
            Some(reason) => {
                warn!(%reason, events, "indexes do not match the log; rebuilding");
                self.rebuild_indexes()?;
                info!(events, "indexes rebuilt from the log");
                Ok(StartupCheck::Rebuilt { events, reason })
            }
        }
    }

    fn meta_u64(&self, name: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self
            .backend
            .get(&meta_key(name))?
            .and_then(|v| decode_seq(&v)))
    }

    fn index_problem(&self, events: u64, full: bool) -> Result<Option<String>, StoreError> {
        let version = self.meta_u64(META_INDEX_VERSION)?;
        if events > 0 && !version.is_some_and(|v| v == INDEX_VERSION || READ_AS_IS.contains(&v)) {
            return Ok(Some(format!(
                "index version {version:?}, expected {INDEX_VERSION}"
            )));
        }
        let through = self.meta_u64(META_INDEXED_THROUGH)?.unwrap_or(0);
        if through != events {
            return Ok(Some(format!(
                "indexes cover {through} events, the log holds {events}"
            )));
        }
        let from = if full {
            1
        } else {
            events.saturating_sub(STARTUP_SAMPLE) + 1
        };
        for seq in from..=events {
            let Some(record) = self.record(seq)? else {
                return Ok(Some(format!("log has a gap at sequence {seq}")));
            };
            let event = match record.event() {
                Ok(e) => e,
                Err(e) => {
                    return Ok(Some(format!(
                        "the event at sequence {seq} does not decode: {e}"
                    )));
                }
            };
            if self.seq_of(&event.id)? != Some(seq) {
                return Ok(Some(format!(
                    "event id index misses {:?} at sequence {seq}",
                    event.id
                )));
            }
            for (lot, _) in event.lots() {
                if !self.seqs_with_prefix(&id_prefix(LOT, lot))?.contains(&seq) {
                    return Ok(Some(format!("lot index misses {lot:?} at sequence {seq}")));
                }
            }
            if !self.org_seqs(&event.org, seq - 1, seq)?.contains(&seq) {
                return Ok(Some(format!(
                    "org index misses {:?} at sequence {seq}",
                    event.org
                )));
            }
            if let Some(target) = event.corrects()
                && self
                    .backend
                    .get(&id_seq_key(CORRECTION, target, seq))?
                    .is_none()
            {
                return Ok(Some(format!(
                    "correction index misses {target:?} at sequence {seq}"
                )));
            }
            let registered = match &event.kind {
                EventKind::RegisterOrg(_) => Some(id_seq_key(ORG_REGISTRATION, &event.org, seq)),
                EventKind::RegisterPlot(p) => Some(id_seq_key(PLOT, &p.plot, seq)),
                EventKind::RegisterSite(s) => Some(id_seq_key(SITE_ID, &s.site, seq)),
                EventKind::RegisterClass(c) => Some(id_seq_key(CLASS, &c.class, seq)),
                EventKind::Certify(_) => Some(seq_key(CERTIFICATE, seq)),
                EventKind::ConfirmMember(c) => Some(id_seq_key(MEMBER, &c.member, seq)),
                EventKind::Review(r) => Some(id_seq_key(REVIEW, &r.anomaly, seq)),
                _ => None,
            };
            if let Some(key) = registered
                && self.backend.get(&key)?.is_none()
            {
                return Ok(Some(format!(
                    "master-data index misses the registration at sequence {seq}"
                )));
            }
        }
        Ok(None)
    }

    /// Drops every index and rebuilds it from the log.
    pub fn rebuild_indexes(&self) -> Result<(), StoreError> {
        // First mark the indexes as covering nothing, durably, so a crash halfway
        // through the rebuild is seen (and the rebuild redone) at the next start.
        let mut batch = WriteBatch::default();
        batch.insert(meta_key(META_INDEXED_THROUGH), 0u64.to_be_bytes().to_vec());
        self.backend.apply(batch)?;
        self.backend.flush()?;
        self.forget_kept();
        for prefix in INDEXES {
            loop {
                let start = vec![prefix];
                let end = prefix_end(&start);
                let rows = self.backend.range(&start, &end, 10_000)?;
                if rows.is_empty() {
                    break;
                }
                let mut batch = WriteBatch::default();
                for (k, _) in rows {
                    batch.remove(k);
                }
                self.backend.apply(batch)?;
            }
        }
        let events = self.last_seq()?;
        let mut seq = 1;
        while seq <= events {
            let mut pending = Pending::new(self.backend());
            let stop = (seq + 5_000).min(events + 1);
            for s in seq..stop {
                let record = self
                    .record(s)?
                    .ok_or_else(|| StoreError::Corrupt(format!("log has a gap at sequence {s}")))?;
                index_event(&mut pending, s, &record.event()?)?;
            }
            pending.batch.insert(
                meta_key(META_INDEXED_THROUGH),
                (stop - 1).to_be_bytes().to_vec(),
            );
            pending.batch.insert(
                meta_key(META_INDEX_VERSION),
                INDEX_VERSION.to_be_bytes().to_vec(),
            );
            self.backend.apply(pending.into_batch())?;
            seq = stop;
        }
        let mut batch = WriteBatch::default();
        batch.insert(
            meta_key(META_INDEXED_THROUGH),
            events.to_be_bytes().to_vec(),
        );
        batch.insert(
            meta_key(META_INDEX_VERSION),
            INDEX_VERSION.to_be_bytes().to_vec(),
        );
        self.backend.apply(batch)?;
        self.backend.flush()?;
        // The mirror first: a question answered meanwhile may have kept what it judged from the
        // half-built index under the old mirror's last correction.
        self.load_corrections()?;
        self.forget_kept();
        Ok(())
    }

    /// Removes a derived index entry; for tests of the start-up check.
    #[cfg(any(test, feature = "test-util"))]
    pub fn damage_index_for_test(&self, event_id: &str) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        if let Some(seq) = self.seq_of(event_id)? {
            batch.remove(event_id_key(event_id, seq));
        }
        self.backend.apply(batch)?;
        self.forget_kept();
        self.backend.flush()
    }
}

impl EventFilter {
    /// Whether an event passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        matches(self, event)
    }
}

pub(crate) fn matches(filter: &EventFilter, event: &Event) -> bool {
    if filter.org.as_ref().is_some_and(|o| *o != event.org) {
        return false;
    }
    if filter.chain.is_some() && filter.chain != event.chain {
        return false;
    }
    if filter.kind.is_some_and(|k| k != event.kind_name()) {
        return false;
    }
    if let Some(lot) = &filter.lot
        && !event.any_lot(|l, _| l == lot)
    {
        return false;
    }
    if filter.from.is_some_and(|from| event.time < from) {
        return false;
    }
    if filter.to.is_some_and(|to| event.time >= to) {
        return false;
    }
    true
}

/// Adds the sequences of one index entry to `out`: the key's own, and for a lot's entry the
/// later ones of its batch that its value lists ([`encode_postings`]; index version 5 wrote
/// one entry per event, with an empty value, which reads the same).
fn index_entry_seqs(key: &[u8], value: &[u8], out: &mut Vec<u64>) -> Result<(), StoreError> {
    let Some(first) = trailing_seq(key) else {
        return Ok(());
    };
    if value.is_empty() || key.first() != Some(&LOT) {
        out.push(first);
        return Ok(());
    }
    let seqs = decode_postings(first, value).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the lot index entry {:?} at {first} does not decode",
            key_id(key).unwrap_or_default()
        ))
    })?;
    out.extend(seqs);
    Ok(())
}

/// Writes the index entries of the event at `seq` into `pending`. Shared by the
/// writer and the rebuild, so both produce the same indexes.
pub(crate) fn index_event(
    pending: &mut Pending<'_>,
    seq: u64,
    event: &Event,
) -> Result<(), StoreError> {
    let seq_bytes = seq.to_be_bytes().to_vec();
    pending
        .batch
        .insert(event_id_key(&event.id, seq), Vec::new());
    pending
        .org_postings
        .entry(event.org.clone())
        .or_default()
        .push(seq);
    let mut seen: HashSet<(&str, LotRole)> = HashSet::new();
    for (lot, role) in event.lots() {
        if !seen.insert((lot, role)) {
            continue;
        }
        let role_byte = match role {
            LotRole::Created => ROLE_CREATED,
            LotRole::Consumed => ROLE_CONSUMED,
            LotRole::Mentioned => ROLE_MENTIONED,
        };
        pending
            .lot_postings
            .entry(lot_role_prefix(lot, role_byte))
            .or_default()
            .push(seq);
        // Never removed when the creation arrives, so that a view of an earlier
        // point of the log still finds it; answers re-check against the view.
        if role != LotRole::Created && !pending.has_prefix(&lot_role_prefix(lot, ROLE_CREATED))? {
            pending.batch.insert(id_key(UNKNOWN, lot), Vec::new());
        }
    }
    match &event.kind {
        EventKind::Correct(c) => {
            pending.batch.insert(
                id_seq_key(CORRECTION, &c.corrected_event_id, seq),
                Vec::new(),
            );
        }
        EventKind::RegisterOrg(o) => {
            pending
                .batch
                .insert(id_key(REGISTERED_ORG, &event.org), seq_bytes);
            pending
                .batch
                .insert(id_seq_key(ORG_REGISTRATION, &event.org, seq), Vec::new());
            if let Some(gln) = &o.gln {
                pending.batch.insert(id_seq_key(GLN, gln, seq), Vec::new());
            }
            if let Some(party) = &o.party {
                pending
                    .batch
                    .insert(id_seq_key(PARTY, party, seq), Vec::new());
            }
        }
        EventKind::RegisterSite(s) => {
            let mut k = id_prefix(SITE, &event.org);
            push_id(&mut k, &s.site);
            pending.batch.insert(k, seq_bytes);
            pending
                .batch
                .insert(id_seq_key(SITE_ID, &s.site, seq), Vec::new());
            if let Some(gln) = &s.gln {
                pending.batch.insert(id_seq_key(GLN, gln, seq), Vec::new());
            }
        }
        EventKind::RegisterClass(c) => {
            pending
                .batch
                .insert(id_seq_key(CLASS, &c.class, seq), Vec::new());
        }
        EventKind::RegisterPlot(p) => {
            pending
                .batch
                .insert(id_seq_key(PLOT, &p.plot, seq), Vec::new());
        }
        EventKind::Certify(_) => {
            pending.batch.insert(seq_key(CERTIFICATE, seq), Vec::new());
        }
        EventKind::ConfirmMember(c) => {
            pending
                .batch
                .insert(id_seq_key(MEMBER, &c.member, seq), Vec::new());
        }
        EventKind::Review(r) => {
            pending
                .batch
                .insert(id_seq_key(REVIEW, &r.anomaly, seq), Vec::new());
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod written_tests {
    use super::*;

    fn batch(ids: impl IntoIterator<Item = String>, seq: u64) -> WriteBatch {
        let mut batch = WriteBatch::default();
        for id in ids {
            batch.insert(id_seq_key(LOT, &id, seq), Vec::new());
        }
        batch
    }

    #[test]
    fn written_ids_vouch_only_for_reads_complete_to_after_they_start_again() {
        let store = Store::in_memory();
        let lot = |id: &str| id_prefix(LOT, id);
        store.note_written(&batch(["A".to_string()], 5), 5, 5);
        let written = |prefix: &[u8], complete_to: u64| {
            !store.written_lock().untouched_since(prefix, complete_to)
        };
        assert!(written(&lot("A"), 4));
        assert!(!written(&lot("A"), 5));
        assert!(!written(&lot("B"), 4));
        // Not an index, or not a whole id: not vouched for.
        assert!(written(&[LOT], 5));
        assert!(written(&meta_key(META_TREE_HEAD), 5));
        // Full: the next batch starts again, from before itself.
        store.note_written(&batch((0..WRITTEN_IDS).map(|n| format!("F{n}")), 6), 6, 6);
        store.note_written(&batch(["C".to_string()], 7), 7, 7);
        assert_eq!(store.written_lock().last.len(), 1);
        assert!(written(&lot("B"), 5), "a read from before the restart");
        assert!(!written(&lot("B"), 6));
        assert!(written(&lot("C"), 6));
        assert!(!written(&lot("F1"), 6), "forgotten, but not after 6");
    }
}
