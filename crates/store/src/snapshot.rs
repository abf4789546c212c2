//! Reads at one point of the log. Every index key carries the sequence number of
//! the event it points at, and the writer applies each batch atomically, so a
//! view that ignores sequences above the last one it saw reads the log exactly as
//! it was, whatever the writer appends meanwhile: a trace never mixes two states.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use lotline_domain::audit::maintained::{AuditSource, LogChunk};
use lotline_domain::event::LotRole;
use lotline_domain::lineage::{
    KeptLineage, KeptSince, KeptTrace, LineageSource, LotCustody, judge_lot,
};
use lotline_domain::{Event, EventKind, RegisterOrg, RegisterPlot};

use crate::error::StoreError;
use crate::keys::*;
use crate::store::{
    EventFilter, JudgedLot, KeptPlot, KeptTraceIn, Page, Store, StoredEvent, TraceReads,
    UnknownLot, matches,
};
use crate::tree::StoredNodes;
use lotline_merkle::Hash;

/// How deep a chain of corrections of corrections is followed.
const MAX_CORRECTION_DEPTH: usize = 32;

/// The log as of sequence `upto`. Cheap to make; meant for one query on one thread
/// (it memoises correction checks).
pub struct Snapshot<'a> {
    pub(crate) store: &'a Store,
    upto: u64,
    corrected: RefCell<HashMap<String, bool>>,
    /// When the reader stops waiting: reads after it fail with [`StoreError::Deadline`].
    deadline: Option<Instant>,
    /// Reads since the deadline was last looked at (`u32::MAX`: it has passed).
    reads: Cell<u32>,
}

/// How many reads pass between two looks at the clock.
const READS_PER_CLOCK_LOOK: u32 = 64;

impl<'a> Snapshot<'a> {
    pub(crate) fn new(store: &'a Store, upto: u64) -> Self {
        Snapshot {
            store,
            upto,
            corrected: RefCell::new(HashMap::new()),
            deadline: None,
            reads: Cell::new(0),
        }
    }

    /// The same view, whose reads fail with [`StoreError::Deadline`] once `deadline` has
    /// passed: a question nobody waits for any more stops working.
    pub fn until(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Fails once the deadline has passed (looking at the clock every few reads).
    fn on_time(&self) -> Result<(), StoreError> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let n = self.reads.get();
        if n == u32::MAX {
            return Err(StoreError::Deadline);
        }
        if n == 0 && Instant::now() >= deadline {
            // Once past, every later read fails too.
            self.reads.set(u32::MAX);
            return Err(StoreError::Deadline);
        }
        self.reads.set((n + 1) % READS_PER_CLOCK_LOOK);
        Ok(())
    }

    /// A view of the same store at its newest durable position (this one's or later).
    pub fn newest(&self) -> Result<Snapshot<'a>, StoreError> {
        self.store.snapshot()
    }

    /// The newest sequence this view sees.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    pub fn event_at(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        if seq > self.upto {
            return Ok(None);
        }
        self.on_time()?;
        self.store.event_at(seq)
    }

    pub fn seq_of(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.store.seq_of(event_id)?.filter(|s| *s <= self.upto))
    }

    pub(crate) fn seqs(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.on_time()?;
        let seqs = self.store.indexed_seqs(prefix, self.upto)?;
        Ok(seqs
            .iter()
            .copied()
            .take_while(|s| *s <= self.upto)
            .collect())
    }

    /// True when a Correct event in this view, itself not corrected, declares
    /// `event_id` erroneous.
    pub fn is_corrected(&self, event_id: &str) -> Result<bool, StoreError> {
        self.is_corrected_at(event_id, 0)
    }

    fn is_corrected_at(&self, event_id: &str, depth: usize) -> Result<bool, StoreError> {
        if depth > MAX_CORRECTION_DEPTH || !self.store.may_be_corrected(event_id) {
            return Ok(false);
        }
        if let Some(known) = self.corrected.borrow().get(event_id) {
            return Ok(*known);
        }
        // Only the org that recorded an event can declare it erroneous; until the
        // event itself is in the view there is nothing to correct.
        let target_org = match self.seq_of(event_id)? {
            Some(seq) => self.event_at(seq)?.map(|s| s.event.org.clone()),
            None => None,
        };
        let mut corrected = false;
        if let Some(org) = target_org {
            for seq in self.seqs(&id_prefix(CORRECTION, event_id))? {
                let Some(correction) = self.event_at(seq)? else {
                    continue;
                };
                if correction.event.org != org {
                    continue;
                }
                if !self.is_corrected_at(&correction.event.id, depth + 1)? {
                    corrected = true;
                    break;
                }
            }
        }
        self.corrected
            .borrow_mut()
            .insert(event_id.to_string(), corrected);
        Ok(corrected)
    }

    fn lot_events(&self, lot: &str, role: Option<u8>) -> Result<Vec<Arc<Event>>, StoreError> {
        let prefix = match role {
            Some(r) => lot_role_prefix(lot, r),
            None => id_prefix(LOT, lot),
        };
        let seqs = self.seqs(&prefix)?;
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(stored) = self.event_at(seq)? else {
                return Err(StoreError::Corrupt(format!(
                    "lot index points at missing sequence {seq}"
                )));
            };
            if !self.is_corrected(&stored.event.id)? {
                out.push(stored.event);
            }
        }
        Ok(out)
    }

    /// The sequences of the events that name `lot` (create, use or mention it), in log order.
    pub fn lot_seqs(&self, lot: &str) -> Result<Vec<u64>, StoreError> {
        let mut seqs = self.seqs(&id_prefix(LOT, lot))?;
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs)
    }

    /// The last sequence in this view that names `lot` (0 if none).
    fn lot_stamp(&self, lot: &str) -> Result<u64, StoreError> {
        self.prefix_stamp(&id_prefix(LOT, lot))
    }

    /// The last sequence in this view under an index prefix (0 if none).
    fn prefix_stamp(&self, prefix: &[u8]) -> Result<u64, StoreError> {
        self.on_time()?;
        let seqs = self.store.indexed_seqs(prefix, self.upto)?;
        let visible = seqs.partition_point(|s| *s <= self.upto);
        Ok(visible.checked_sub(1).map_or(0, |last| seqs[last]))
    }

    /// True when some event in this view mentions `lot`.
    pub fn lot_exists(&self, lot: &str) -> Result<bool, StoreError> {
        Ok(!self.seqs(&id_prefix(LOT, lot))?.is_empty())
    }

    /// The registration of `plot` that stands: the latest by event time, then
    /// event id (not by arrival), among uncorrected ones of the org that registered the plot
    /// first and of the co-op that org's standing registration names it a member of (a co-op
    /// keeps its member farms' plots); another org's registration of the same plot id moves
    /// nothing.
    ///
    /// Kept in the store for later questions ([`KeptPlot`]): a trace-back to hundreds of farms
    /// reads as many plots, most of them asked for before.
    pub fn plot(&self, plot: &str) -> Result<Option<(Arc<Event>, RegisterPlot)>, StoreError> {
        let corrections = self.store.last_correction(self.upto);
        if let Some(kept) = self.store.kept_plot(plot) {
            if kept.upto == self.upto {
                return Ok(kept.standing.clone());
            }
            let read = kept.stamps.iter().map(|(prefix, _)| prefix.as_slice());
            if self.unchanged_since(kept.upto, kept.corrections, read) {
                return Ok(kept.standing.clone());
            }
            if Some(kept.corrections) == corrections && self.stamps_hold(&kept.stamps)? {
                let standing = kept.standing.clone();
                self.store.keep_plot(
                    plot,
                    KeptPlot {
                        upto: self.upto,
                        ..(*kept).clone()
                    },
                );
                return Ok(standing);
            }
        }
        let prefix = id_prefix(PLOT, plot);
        let (stored, first_org) = self.standing_read(&prefix)?;
        let standing = match stored {
            None => None,
            Some(stored) => match &stored.event.kind {
                EventKind::RegisterPlot(p) => Some((Arc::clone(&stored.event), p.clone())),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "plot index points at a non-plot event at {}",
                        stored.seq
                    )));
                }
            },
        };
        if let Some(corrections) = corrections {
            let mut read = vec![prefix];
            read.extend(first_org.map(|org| id_prefix(ORG_REGISTRATION, &org)));
            let mut stamps = Vec::with_capacity(read.len());
            for prefix in read {
                let stamp = self.prefix_stamp(&prefix)?;
                stamps.push((prefix, stamp));
            }
            self.store.keep_plot(
                plot,
                KeptPlot {
                    upto: self.upto,
                    corrections,
                    stamps,
                    standing: standing.clone(),
                },
            );
        }
        Ok(standing)
    }

    /// What the judgements `kept` was answered from were read from in this view, when the store
    /// still keeps every one of them as this view judged it.
    fn trace_reads(&self, kept: &KeptTrace) -> Option<TraceReads> {
        let corrections = self.store.last_correction(self.upto)?;
        let mut prefixes = Vec::new();
        for (lot, custody) in kept.judged() {
            let judged = self.store.judged(lot)?;
            if judged.corrections != corrections || !Arc::ptr_eq(&judged.custody, custody) {
                return None;
            }
            prefixes.extend(judged.stamps.iter().map(|(read, _)| id_prefix(LOT, read)));
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        Some(TraceReads {
            corrections,
            prefixes,
        })
    }

    /// Whether what an earlier view up to `upto` read under `prefixes`, with `corrections` its
    /// last correction, reads the same in this later view, by the writer's notes: no batch
    /// since wrote under any of them, and no correction came.
    fn unchanged_since<'p>(
        &self,
        upto: u64,
        corrections: u64,
        prefixes: impl Iterator<Item = &'p [u8]>,
    ) -> bool {
        self.upto > upto
            && self.store.last_correction(self.upto) == Some(corrections)
            && self.store.untouched(prefixes, upto)
    }

    /// Whether every index prefix read ends at the same sequence in this view as it did.
    fn stamps_hold(&self, stamps: &[(Vec<u8>, u64)]) -> Result<bool, StoreError> {
        for (prefix, stamp) in stamps {
            if self.prefix_stamp(prefix)? != *stamp {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every uncorrected event in this view, in log order. Audit answers read the
    /// whole log; this holds it in memory.
    pub fn all_events(&self) -> Result<Vec<Arc<Event>>, StoreError> {
        self.events_after(0)
    }

    /// Every uncorrected event in this view after sequence `after`, in log order.
    pub fn events_after(&self, after: u64) -> Result<Vec<Arc<Event>>, StoreError> {
        const CHUNK: usize = 4_096;
        let mut out = Vec::new();
        let mut next = after + 1;
        while next <= self.upto {
            let seqs = self.store.seqs_in_log(next, self.upto, CHUNK)?;
            if seqs.is_empty() {
                break;
            }
            for seq in seqs {
                next = seq + 1;
                if let Some(stored) = self.event_at(seq)?
                    && !self.is_corrected(&stored.event.id)?
                {
                    out.push(stored.event);
                }
            }
        }
        Ok(out)
    }

    /// Every uncorrected event recorded by `org`, in log order.
    pub fn org_events(&self, org: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        let mut out = Vec::new();
        self.on_time()?;
        for seq in self.store.org_seqs(org, 0, self.upto)? {
            if let Some(stored) = self.event_at(seq)?
                && !self.is_corrected(&stored.event.id)?
            {
                out.push(stored.event);
            }
        }
        Ok(out)
    }

    /// Every uncorrected Certify event, in log order.
    pub fn certificates(&self) -> Result<Vec<Arc<Event>>, StoreError> {
        let start = vec![CERTIFICATE];
        let end = prefix_end(&start);
        let mut out = Vec::new();
        for (k, _) in self.store.backend().range(&start, &end, usize::MAX)? {
            let Some(seq) = trailing_seq(&k).filter(|s| *s <= self.upto) else {
                continue;
            };
            if let Some(stored) = self.event_at(seq)?
                && !self.is_corrected(&stored.event.id)?
            {
                out.push(stored.event);
            }
        }
        Ok(out)
    }

    /// The registration of `org` that stands: the latest uncorrected one by event
    /// time, then event id.
    pub fn org(&self, org: &str) -> Result<Option<RegisterOrg>, StoreError> {
        let mut best: Option<(Arc<Event>, RegisterOrg)> = None;
        for seq in self.seqs(&id_prefix(ORG_REGISTRATION, org))? {
            let Some(stored) = self.event_at(seq)? else {
                continue;
            };
            let event = stored.event;
            let EventKind::RegisterOrg(r) = &event.kind else {
                return Err(StoreError::Corrupt(format!(
                    "org registration index points at another kind of event at {seq}"
                )));
            };
            if self.is_corrected(&event.id)? {
                continue;
            }
            let newer = best
                .as_ref()
                .is_none_or(|(b, _)| (event.time, &event.id) > (b.time, &b.id));
            if newer {
                best = Some((Arc::clone(&event), r.clone()));
            }
        }
        Ok(best.map(|(_, r)| r))
    }

    /// The uncorrected events an id index lists under `prefix`, in log order.
    fn uncorrected_under(&self, prefix: &[u8]) -> Result<Vec<Arc<Event>>, StoreError> {
        let mut out = Vec::new();
        for seq in self.seqs(prefix)? {
            if let Some(stored) = self.event_at(seq)?
                && !self.is_corrected(&stored.event.id)?
            {
                out.push(stored.event);
            }
        }
        Ok(out)
    }

    /// Every uncorrected registration of `org`, in log order.
    pub fn org_registrations(&self, org: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.uncorrected_under(&id_prefix(ORG_REGISTRATION, org))
    }

    /// Every uncorrected review of the anomaly with id `anomaly`, in log order.
    pub fn reviews(&self, anomaly: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.uncorrected_under(&id_prefix(REVIEW, anomaly))
    }

    /// Every uncorrected confirmation, by any co-op, that `member` is its member, in log order.
    pub fn member_confirmations(&self, member: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.uncorrected_under(&id_prefix(MEMBER, member))
    }

    /// Every plot ever registered, in order.
    pub fn plot_ids(&self) -> Result<Vec<String>, StoreError> {
        let start = vec![PLOT];
        let end = prefix_end(&start);
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for (k, _) in self.store.backend().range(&start, &end, usize::MAX)? {
            if let Some(id) = key_id(&k) {
                ids.insert(id);
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// The standing registration of every plot.
    pub fn plots(&self) -> Result<BTreeMap<String, (Arc<Event>, RegisterPlot)>, StoreError> {
        let mut out = BTreeMap::new();
        for id in self.plot_ids()? {
            if let Some(found) = self.plot(&id)? {
                out.insert(id, found);
            }
        }
        Ok(out)
    }

    /// Stored events matching `filter`, in log order, after sequence `after`.
    pub fn list_events(
        &self,
        filter: &EventFilter,
        after: u64,
        limit: usize,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let limit = limit.max(1);
        // Walk the narrowest index available; the rest of the filter applies per
        // event. A lot has few events: take them all. An org's index and the log
        // are read in chunks from the cursor on.
        const CHUNK: usize = 512;
        let mut items = Vec::new();
        let mut cursor = after;
        let mut lot_seqs = match &filter.lot {
            Some(lot) => {
                let seqs: Vec<u64> = self
                    .seqs(&id_prefix(LOT, lot))?
                    .into_iter()
                    .filter(|s| *s > after)
                    .collect();
                Some(seqs.into_iter())
            }
            None => None,
        };
        loop {
            self.on_time()?;
            let seqs: Vec<u64> = if let Some(it) = lot_seqs.as_mut() {
                it.by_ref().take(CHUNK).collect()
            } else if let Some(org) = &filter.org {
                // One key per batch written: a few keys hold thousands of events.
                self.store.org_seqs_from(org, cursor, self.upto, 4)?
            } else {
                self.store
                    .seqs_in_log(cursor.saturating_add(1), self.upto, CHUNK)?
            };
            if seqs.is_empty() {
                return Ok(Page {
                    items,
                    next_after: None,
                });
            }
            for seq in seqs {
                cursor = seq;
                let Some(stored) = self.event_at(seq)? else {
                    continue;
                };
                if matches(filter, &stored.event) {
                    items.push(stored);
                    if items.len() == limit {
                        return Ok(Page {
                            items,
                            next_after: Some(cursor),
                        });
                    }
                }
            }
        }
    }

    /// The record bytes of leaf `index` (the event at sequence `index + 1`).
    pub fn leaf(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if index >= self.upto {
            return Ok(None);
        }
        self.store.record_bytes(index + 1)
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        if size > self.upto {
            return Err(StoreError::Corrupt(format!(
                "tree size {size} is beyond the log's {}",
                self.upto
            )));
        }
        Ok(())
    }

    /// The Merkle root of the first `size` leaves (`size <= upto`).
    pub fn tree_root(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size(size)?;
        lotline_merkle::root(&StoredNodes(self.store.backend()), size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(size)?;
        lotline_merkle::inclusion_proof(&StoredNodes(self.store.backend()), index, size)
    }

    /// The consistency proof from `old` to `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(new)?;
        lotline_merkle::consistency_proof(&StoredNodes(self.store.backend()), old, new)
    }

    /// Quarantined input (not part of the log, so not bounded by the view).
    pub fn list_rejected(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Page<crate::store::Rejection>, StoreError> {
        self.store.list_rejected(after, limit)
    }

    /// Up to `limit` lots some event names, by id, after `after` (the last of the previous
    /// page; `None`: from the first).
    pub fn lots_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        self.ids_after(LOT, after, limit)
    }

    /// Up to `limit` registered sites (locations), by id, after `after`.
    pub fn sites_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.ids_after(SITE_ID, after, limit)
    }

    /// The distinct ids of the index `prefix` (whose keys begin with an escaped id), in order:
    /// one read per id, each starting past every key of the one before.
    fn ids_after(
        &self,
        prefix: u8,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let backend = self.store.backend();
        let end = prefix_end(&[prefix]);
        let mut start = match after {
            Some(id) => prefix_end(&id_key(prefix, id)),
            None => vec![prefix],
        };
        let mut ids = Vec::new();
        while ids.len() < limit {
            self.on_time()?;
            let Some((key, _)) = backend.range(&start, &end, 1)?.into_iter().next() else {
                break;
            };
            let Some((id, _)) = split_id(&key[1..]) else {
                return Err(StoreError::Corrupt(format!(
                    "an index key of prefix {:?} holds no id",
                    prefix as char
                )));
            };
            start = prefix_end(&id_key(prefix, &id));
            ids.push(id);
        }
        Ok(ids)
    }

    /// Lots that events use but no uncorrected event creates, sorted by lot.
    pub fn list_unknown_lots(&self) -> Result<Vec<UnknownLot>, StoreError> {
        let backend = self.store.backend();
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        let start = vec![UNKNOWN];
        let end = prefix_end(&start);
        for (k, _) in backend.range(&start, &end, usize::MAX)? {
            candidates.extend(key_id(&k));
        }
        // Lots whose creating events were corrected are unknown again.
        let start = vec![CORRECTION];
        let end = prefix_end(&start);
        for (k, _) in backend.range(&start, &end, usize::MAX)? {
            let Some(target) = key_id(&k) else {
                continue;
            };
            if let Some(seq) = self.seq_of(&target)?
                && let Some(stored) = self.event_at(seq)?
            {
                for (lot, role) in stored.event.lots() {
                    if role == LotRole::Created {
                        candidates.insert(lot.to_string());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for lot in candidates {
            if !self.lot_events(&lot, Some(ROLE_CREATED))?.is_empty() {
                continue;
            }
            let mentions = self.lot_events(&lot, None)?;
            if mentions.is_empty() {
                continue;
            }
            out.push(UnknownLot {
                lot,
                event_ids: mentions.iter().map(|e| e.id.clone()).collect(),
            });
        }
        Ok(out)
    }
}

impl AuditSource for Snapshot<'_> {
    fn org_events(&self, org: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        Snapshot::org_events(self, org)
    }

    fn plot(&self, plot: &str) -> Result<Option<(Arc<Event>, RegisterPlot)>, StoreError> {
        Snapshot::plot(self, plot)
    }

    fn event(&self, id: &str) -> Result<Option<Arc<Event>>, StoreError> {
        let Some(seq) = self.seq_of(id)? else {
            return Ok(None);
        };
        match self.event_at(seq)? {
            Some(stored) if !self.is_corrected(id)? => Ok(Some(stored.event)),
            _ => Ok(None),
        }
    }

    /// Positions are log sequences.
    fn log_after(&self, after: u64, limit: usize) -> Result<LogChunk, StoreError> {
        let seqs = self.store.seqs_in_log(after + 1, self.upto, limit)?;
        let last = seqs.last().copied();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(stored) = self.event_at(seq)?
                && !self.is_corrected(&stored.event.id)?
            {
                out.push(stored.event);
            }
        }
        Ok(LogChunk { events: out, last })
    }

    fn plot_ids(&self) -> Result<Vec<String>, StoreError> {
        Snapshot::plot_ids(self)
    }
}

impl LineageSource for Snapshot<'_> {
    type Error = StoreError;

    fn creations(&self, lot: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.lot_events(lot, Some(ROLE_CREATED))
    }

    fn consumptions(&self, lot: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.lot_events(lot, Some(ROLE_CONSUMED))
    }

    fn mentions(&self, lot: &str) -> Result<Vec<Arc<Event>>, StoreError> {
        self.lot_events(lot, None)
    }

    /// Judged once and kept in the store for later questions and views, while the lot, the
    /// containers that carried it and the corrections read the same ([`JudgedLot`]).
    fn custody(&self, lot: &str) -> Result<Arc<LotCustody>, StoreError> {
        let Some(corrections) = self.store.last_correction(self.upto) else {
            return judge_lot(lot, |l| self.lot_events(l, None));
        };
        if let Some(kept) = self.store.judged(lot)
            && kept.corrections == corrections
        {
            let mut holds = true;
            for (read, stamp) in &kept.stamps {
                if self.lot_stamp(read)? != *stamp {
                    holds = false;
                    break;
                }
            }
            if holds {
                return Ok(Arc::clone(&kept.custody));
            }
        }
        let mut stamps = Vec::new();
        let custody = judge_lot(lot, |l| {
            stamps.push((l.to_string(), self.lot_stamp(l)?));
            self.lot_events(l, None)
        })?;
        self.store.keep_judged(
            lot,
            JudgedLot {
                corrections,
                stamps,
                custody: Arc::clone(&custody),
            },
        );
        Ok(custody)
    }

    /// Kept lineage is only used where the custody it was computed from is the one this view
    /// judges ([`KeptLineage`]), so it never outlives what it was computed from.
    const KEEPS_LINEAGE: bool = true;

    fn kept_lineage(&self, lot: &str) -> Option<Arc<KeptLineage>> {
        self.store.kept_lineage(lot)
    }

    fn keep_lineage(&self, lot: &str, kept: Arc<KeptLineage>) {
        self.store.keep_lineage(lot, kept);
    }

    /// A view up to the same sequence reads the very same log (sequences are never reused and
    /// corrections are events of the log), so a trace kept in it holds as it is; so does one
    /// kept in an earlier view when no batch since wrote under any index its judgements read
    /// and the last correction is the same ([`TraceReads`]).
    fn kept_trace(&self, lot: &str) -> Option<(Arc<KeptTrace>, KeptSince)> {
        let kept = self.store.kept_trace(lot)?;
        let unchanged = |reads: &TraceReads| {
            let read = reads.prefixes.iter().map(Vec::as_slice);
            self.unchanged_since(kept.upto, reads.corrections, read)
        };
        let since = if kept.upto == self.upto || kept.reads.as_deref().is_some_and(unchanged) {
            KeptSince::ThisView
        } else {
            KeptSince::AnotherView
        };
        Some((kept.trace, since))
    }

    fn keep_trace(&self, lot: &str, kept: Arc<KeptTrace>) {
        let reads = self.trace_reads(&kept).map(Arc::new);
        self.store.keep_trace(
            lot,
            KeptTraceIn {
                upto: self.upto,
                reads,
                trace: kept,
            },
        );
    }
}
