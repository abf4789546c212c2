//! The single writer: one thread owns every write to the store. Sources (gRPC
//! Record, later the NATS consumer) send it batches and get each event's outcome
//! back once the batch is applied atomically and flushed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use lotline_domain::{Event, EventKind, Invalid, Outcome, RejectKind};
use lotline_record::{Quarantined, encode_event, encode_quarantined};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info};

use crate::error::StoreError;
use crate::keys::*;
use crate::record::Record;
use crate::store::{INDEX_VERSION, Pending, Store, index_event};
use crate::tree;
use lotline_merkle::leaf_hash;

mod ids;
use ids::Ids;

/// One event offered to the writer, already decoded and checked on its own.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The domain event, or why it is structurally invalid.
    pub event: Result<Event, Invalid>,
    /// The input as received (JSON text as sent; a protobuf event re-encoded),
    /// kept in the quarantine if the event is rejected.
    pub payload: Vec<u8>,
    /// Where it came from: "grpc", "nats", ...
    pub source: String,
    /// The event id and org as sent (for the quarantine), even if invalid.
    pub event_id: String,
    pub org: String,
    /// The record time to use instead of the writer's clock (NATS mode uses the
    /// stream's timestamp so that every node writes the same record).
    pub record_time: Option<DateTime<Utc>>,
}

impl Submission {
    /// An event as intake decoded and checked it (or why it is invalid), with the input as
    /// received; the event id and org are the event's, empty when it is invalid.
    pub fn new(event: Result<Event, Invalid>, payload: Vec<u8>, source: &str) -> Self {
        let (event_id, org) = match &event {
            Ok(e) => (e.id.clone(), e.org.clone()),
            Err(_) => (String::new(), String::new()),
        };
        Submission {
            event,
            payload,
            source: source.to_string(),
            event_id,
            org,
            record_time: None,
        }
    }
}

/// Writer tuning.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most events applied in one atomic batch (and one flush).
    pub max_batch: usize,
    /// Jobs that may wait for the writer before senders wait.
    pub queue: usize,
    /// How far an event may be dated after its record time: one dated later is rejected. The
    /// writer also refuses to stamp a record time (a NATS stream's timestamp) later than its
    /// own clock by more than this.
    pub future_margin: chrono::Duration,
}

/// A submission from this source makes the writer panic (tests of what a writer bug does; no
/// door gives it, and builds without the store's `test-util` feature do not have it).
#[cfg(any(test, feature = "test-util"))]
pub const PANIC_FOR_TEST: &str = "test:panic";

/// The default [`WriterConfig::future_margin`]: one day.
pub const DEFAULT_FUTURE_MARGIN: chrono::Duration = chrono::Duration::days(1);

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 2_000,
            queue: 1_024,
            future_margin: DEFAULT_FUTURE_MARGIN,
        }
    }
}

struct Job {
    items: Vec<Submission>,
    /// The stream sequence of the last message these items came from (NATS).
    position: Option<u64>,
    /// The stream position these items follow: the job is refused unless the store is there
    /// (a consumer with a batch in flight must not have its next batch written after the first
    /// failed).
    after: Option<u64>,
    reply: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
}

/// A handle for submitting batches to the writer. Cheap to clone; the writer
/// stops after the last handle is dropped and everything sent is written.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Why the writer refuses every write, once it does (see [`Writer::failure`]).
    failure: watch::Receiver<Option<String>>,
    stats: Arc<WriterStats>,
}

/// Where the writer's time goes, summed since it started (nanoseconds).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Deciding each event (duplicate, conflict, registered org), building its
    /// record, indexes and Merkle nodes, and the tree head.
    pub prepare_nanos: AtomicU64,
    /// sled's atomic `apply_batch`.
    pub apply_nanos: AtomicU64,
    /// sled's flush to disk.
    pub flush_nanos: AtomicU64,
    /// Keys written.
    pub keys: AtomicU64,
    pub batches: AtomicU64,
}

impl WriterStats {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// The writer's metrics (Prometheus names; recorded when a recorder is installed, see
/// `lotline serve --metrics`).
pub const EVENTS_TOTAL: &str = "lotline_events_total";
/// Events per batch the writer applied at once.
pub const BATCH_EVENTS: &str = "lotline_writer_batch_events";
/// sled's atomic apply of one batch.
pub const APPLY_SECONDS: &str = "lotline_writer_apply_seconds";
/// sled's flush of one batch, before anything in it is acknowledged.
pub const FLUSH_SECONDS: &str = "lotline_writer_flush_seconds";

/// Counts each outcome by what it was (and, for a rejection, why): `outcome` is accepted,
/// duplicate or rejected; a rejection also has a `reason` (its kind).
fn count_outcomes(outcomes: &[Outcome]) {
    let (mut accepted, mut duplicate) = (0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            Outcome::Accepted { .. } => accepted += 1,
            Outcome::Duplicate { .. } => duplicate += 1,
            Outcome::Rejected { kind, .. } => {
                metrics::counter!(EVENTS_TOTAL, "outcome" => "rejected", "reason" => kind.as_str())
                    .increment(1)
            }
        }
    }
    for (outcome, n) in [("accepted", accepted), ("duplicate", duplicate)] {
        if n > 0 {
            metrics::counter!(EVENTS_TOTAL, "outcome" => outcome).increment(n);
        }
    }
}

/// Resolves when the writer thread has written everything and stopped.
pub struct WriterDone(oneshot::Receiver<()>);

impl WriterDone {
    pub async fn wait(self) {
        let _ = self.0.await;
    }
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Store, config: WriterConfig) -> Result<(Writer, WriterDone), StoreError> {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (done_tx, done_rx) = oneshot::channel();
        let (failure_tx, failure) = watch::channel(None);
        let ids = Ids::start(&store);
        let mut state = WriterState::load(store, config, ids)?;
        let stats = state.stats.clone();
        std::thread::Builder::new()
            .name("lotline-writer".into())
            .spawn(move || {
                // A panic is a bug; it must not pass unnoticed: writes are refused from then
                // on (health turns NOT_SERVING), with the cause in the log and in every refusal.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    state.run(rx, &failure_tx)
                }));
                if let Err(panic) = ran {
                    let cause = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    error!(%cause, "the writer thread panicked; writes are refused until lotline restarts");
                    let _ = failure_tx.send(Some(format!("the writer thread panicked ({cause}); restart lotline")));
                }
                // Done means the store is let go: the filter's build is stopped first.
                drop(state);
                let _ = done_tx.send(());
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok((Writer { tx, failure, stats }, WriterDone(done_rx)))
    }

    /// Jobs (batches from a door or the consumer) waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Where the writer's time went.
    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// Follows why the writer refuses writes: `None` while it takes them; set once
    /// and for good when the store failed and could not be read back.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failure.clone()
    }

    /// Submits events in order and waits until they are durably applied.
    pub async fn submit(&self, items: Vec<Submission>) -> Result<Vec<Outcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.send(items, None, None).await?.outcomes().await
    }

    /// Queues events behind everything queued before and returns at once: a client streaming
    /// batches has the next one decoded while this one is written, in the order sent.
    pub async fn queue(&self, items: Vec<Submission>) -> Result<Queued, StoreError> {
        self.send(items, None, None).await
    }

    /// Submits the events of stream messages up to stream sequence `position`:
    /// the position is stored in the same atomic batch as their outcomes, so a
    /// restarted consumer resumes exactly after what was applied.
    pub async fn submit_at(
        &self,
        items: Vec<Submission>,
        position: u64,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.send(items, Some(position), None)
            .await?
            .outcomes()
            .await
    }

    /// Queues the events of the stream messages after position `after` up to `position` and
    /// returns at once: the writer applies them when it has written what is queued before, and
    /// only if the store is then at `after` (so when an earlier batch failed, this one is
    /// refused too, and the consumer starts again from what is stored). A consumer decodes its
    /// next batch while this one is written.
    pub async fn queue_at(
        &self,
        items: Vec<Submission>,
        after: u64,
        position: u64,
    ) -> Result<Queued, StoreError> {
        self.send(items, Some(position), Some(after)).await
    }

    async fn send(
        &self,
        items: Vec<Submission>,
        position: Option<u64>,
        after: Option<u64>,
    ) -> Result<Queued, StoreError> {
        let (reply, rx) = oneshot::channel();
        let queued = Queued {
            rx,
            writer: self.clone(),
        };
        self.tx
            .send(Job {
                items,
                position,
                after,
                reply,
            })
            .await
            .map_err(|_| queued.writer.stopped())?;
        Ok(queued)
    }

    /// A writer that stopped after a failure says why, not merely that it stopped.
    fn stopped(&self) -> StoreError {
        match self.refusal() {
            Some(reason) => StoreError::Backend(reason),
            None => StoreError::WriterStopped,
        }
    }
}

/// Events queued for the writer ([`Writer::queue_at`]); their outcomes once written.
pub struct Queued {
    rx: oneshot::Receiver<Result<Vec<Outcome>, StoreError>>,
    writer: Writer,
}

impl Queued {
    /// Waits until the events are durably applied (or refused).
    pub async fn outcomes(self) -> Result<Vec<Outcome>, StoreError> {
        match self.rx.await {
            Ok(result) => result,
            // The thread is gone with the reply: let it publish why first.
            Err(_) => {
                let mut failure = self.writer.failure.clone();
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    failure.wait_for(Option::is_some),
                )
                .await;
                Err(self.writer.stopped())
            }
        }
    }
}

impl Writer {
    /// Why writes are refused right now, if they are: after a failure the writer could not
    /// recover from, until lotline is restarted.
    pub fn refusal(&self) -> Option<String> {
        self.failure
            .borrow()
            .as_ref()
            .map(|reason| format!("writes are refused until lotline is restarted: {reason}"))
    }
}

struct WriterState {
    store: Store,
    config: WriterConfig,
    next_seq: u64,
    next_rejected: u64,
    last_record_time: DateTime<Utc>,
    /// The last sequence this writer knows is flushed; after a failed batch the
    /// log may hold applied but unflushed events beyond it.
    flushed_through: u64,
    /// The stream position stored (NATS), which a job's `after` must match.
    stream_position: u64,
    /// The event ids the log may hold: the duplicate check reads the index only for these.
    ids: Ids,
    stats: Arc<WriterStats>,
}

impl WriterState {
    /// The writer's state as the store holds it, with the filter of ids started for it.
    fn load(store: Store, config: WriterConfig, ids: Ids) -> Result<Self, StoreError> {
        let last = store.last_seq()?;
        let last_record_time = match store.record(last)? {
            Some(r) => r.record_time,
            None => DateTime::<Utc>::UNIX_EPOCH,
        };
        let next_rejected = store.last_rejected_id()? + 1;
        let stream_position = store.stream_position()?;
        Ok(WriterState {
            store,
            config,
            next_seq: last + 1,
            // What is in the store when the writer (re)starts may not be flushed
            // (a failed batch): the next batch flushes it before acknowledging.
            flushed_through: 0,
            stats: Arc::default(),
            next_rejected,
            last_record_time,
            stream_position,
            ids,
        })
    }

    fn run(&mut self, mut rx: mpsc::Receiver<Job>, failure: &watch::Sender<Option<String>>) {
        // Set when the store could not be read back after a failed batch: the
        // writer no longer knows where the log ends, so it refuses every write.
        let mut broken: Option<String> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            let mut count = jobs[0].items.len();
            while count < self.config.max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        count += job.items.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            if let Some(reason) = &broken {
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Backend(reason.clone())));
                }
                continue;
            }
            // A job that does not follow the stream position it was queued after is refused
            // (the batch before it failed, or another source moved the position).
            let mut at = self.stream_position;
            let jobs: Vec<Job> = jobs
                .into_iter()
                .filter_map(|job| match job.after {
                    Some(after) if after != at => {
                        let _ = job.reply.send(Err(StoreError::Backend(format!(
                            "messages after stream position {after} were not written: the store is at {at} (the batch before them failed)"
                        ))));
                        None
                    }
                    _ => {
                        if let Some(p) = job.position {
                            at = at.max(p);
                        }
                        Some(job)
                    }
                })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            let count: usize = jobs.iter().map(|j| j.items.len()).sum();
            let items: Vec<&Submission> = jobs.iter().flat_map(|j| j.items.iter()).collect();
            let position = jobs.iter().filter_map(|j| j.position).max();
            match self.write(&items, position) {
                Ok(outcomes) => {
                    let mut outcomes = outcomes.into_iter();
                    for job in jobs {
                        let mine: Vec<Outcome> = outcomes.by_ref().take(job.items.len()).collect();
                        let _ = job.reply.send(Ok(mine));
                    }
                }
                Err(err) => {
                    error!(cause = %err, events = count, "batch not written");
                    // Nothing of the batch is acknowledged; re-read where the log ends
                    // (the batch may have been applied but not flushed).
                    // The filter of ids is kept: it holds every id of the index, and those of
                    // the failed batch only make it send them to the index.
                    let ids = std::mem::replace(&mut self.ids, Ids::none());
                    match WriterState::load(self.store.clone(), self.config.clone(), ids) {
                        Ok(reloaded) => {
                            // What was applied is what the next flush makes durable.
                            let stats = self.stats.clone();
                            *self = reloaded;
                            self.stats = stats;
                        }
                        Err(reload) => {
                            error!(cause = %reload, "cannot read the store back; refusing further writes");
                            let reason =
                                format!("the store failed and could not be read back: {reload}");
                            let _ = failure.send(Some(reason.clone()));
                            broken = Some(reason);
                        }
                    }
                    for job in jobs {
                        let _ = job.reply.send(Err(StoreError::Backend(err.to_string())));
                    }
                }
            }
        }
        info!("writer stopped: every submitted batch is written");
    }

    fn write(
        &mut self,
        items: &[&Submission],
        position: Option<u64>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let store = self.store.clone();
        self.ids.catch_up(&store);
        let mut pending = Pending::new(store.backend());
        let mut next_seq = self.next_seq;
        let mut next_rejected = self.next_rejected;
        let mut last_time = self.last_record_time;
        let now = truncate_micros(Utc::now());
        let started = Instant::now();
        let mut outcomes = Vec::with_capacity(items.len());
        let margin = self.config.future_margin;
        for item in items {
            #[cfg(any(test, feature = "test-util"))]
            if item.source == PANIC_FOR_TEST {
                panic!("a test asked the writer to panic");
            }
            // A record time from outside (the stream's timestamp) is never stamped if it is
            // ahead of this node's clock by more than the margin: the batch is not written,
            // and says why, until the clocks agree.
            if let Some(given) = item.record_time
                && given > now + margin
            {
                return Err(StoreError::Clock(format!(
                    "the record time {given} of {:?} is ahead of this node's clock ({now}) by more than {margin}",
                    item.event_id
                )));
            }
            let record_time = item
                .record_time
                .map(truncate_micros)
                .unwrap_or(now)
                .max(last_time);
            let outcome = self.decide(&pending, item, record_time)?;
            let outcome = match outcome {
                Decision::Append(event, id_prefix) => {
                    let seq = next_seq;
                    next_seq += 1;
                    last_time = record_time;
                    let record = Record::new(record_time, event).encode();
                    tree::append_leaf(&mut pending, seq - 1, leaf_hash(&record))?;
                    pending.append_record(seq, record);
                    index_event(&mut pending, seq, event)?;
                    self.ids.insert(&id_prefix);
                    Outcome::Accepted { seq, record_time }
                }
                Decision::Duplicate(seq) => Outcome::Duplicate { seq },
                Decision::Reject(kind, reason) => {
                    let entry = Quarantined {
                        id: next_rejected,
                        received_at: now.to_rfc3339(),
                        source: item.source.clone(),
                        event_id: item.event_id.clone(),
                        org: item.org.clone(),
                        kind: kind.as_str().to_string(),
                        reason: reason.clone(),
                        payload: item.payload.clone(),
                    };
                    pending
                        .batch
                        .insert(seq_key(REJECTED, next_rejected), encode_quarantined(&entry));
                    next_rejected += 1;
                    debug!(event_id = %item.event_id, kind = kind.as_str(), %reason, "event rejected");
                    Outcome::Rejected { kind, reason }
                }
            };
            outcomes.push(outcome);
        }
        if next_seq != self.next_seq {
            pending.batch.insert(
                meta_key(META_INDEXED_THROUGH),
                (next_seq - 1).to_be_bytes().to_vec(),
            );
            pending.batch.insert(
                meta_key(META_INDEX_VERSION),
                INDEX_VERSION.to_be_bytes().to_vec(),
            );
            let size = next_seq - 1;
            let root = lotline_merkle::root(&pending, size)?;
            pending
                .batch
                .insert(meta_key(META_TREE_HEAD), tree::encode_head(size, &root));
        }
        if let Some(position) = position {
            pending.batch.insert(
                meta_key(META_STREAM_POSITION),
                position.to_be_bytes().to_vec(),
            );
        }
        // Readers skip correction lookups for ids not in this mirror, and reuse judged lots
        // while its last correction stays the same, so it learns of corrections (target and
        // sequence) before they become visible (a stale entry only costs a read or a re-judge).
        for (item, outcome) in items.iter().zip(&outcomes) {
            if let (Outcome::Accepted { seq, .. } | Outcome::Duplicate { seq }, Ok(event)) =
                (outcome, &item.event)
                && let Some(target) = event.corrects()
            {
                store.note_correction(target, *seq);
            }
        }
        // Flush when this batch wrote anything, and also when earlier applied
        // events are not known to be flushed (a retry that is all duplicates must
        // not be acknowledged before what it duplicates is on disk).
        let batch = pending.into_batch();
        if !batch.is_empty() || self.flushed_through < next_seq - 1 {
            let backend = store.backend();
            self.stats
                .keys
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            WriterStats::add(&self.stats.prepare_nanos, started);
            // Before it is visible: a view that sees it must also see what it wrote.
            store.note_written(&batch, self.next_seq, next_seq - 1);
            let started = Instant::now();
            backend.apply(batch)?;
            WriterStats::add(&self.stats.apply_nanos, started);
            metrics::histogram!(APPLY_SECONDS).record(started.elapsed().as_secs_f64());
            let started = Instant::now();
            backend.flush()?;
            WriterStats::add(&self.stats.flush_nanos, started);
            metrics::histogram!(FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
        }
        metrics::histogram!(BATCH_EVENTS).record(items.len() as f64);
        count_outcomes(&outcomes);
        self.flushed_through = next_seq - 1;
        if let Some(position) = position {
            self.stream_position = position;
        }
        store.set_durable(next_seq - 1);
        self.next_seq = next_seq;
        self.next_rejected = next_rejected;
        self.last_record_time = last_time;
        Ok(outcomes)
    }

    fn decide<'s>(
        &self,
        pending: &Pending<'_>,
        item: &'s Submission,
        record_time: DateTime<Utc>,
    ) -> Result<Decision<'s>, StoreError> {
        let event = match &item.event {
            Err(invalid) => return Ok(Decision::Reject(RejectKind::Invalid, invalid.to_string())),
            Ok(e) => e,
        };
        let id_prefix = event_id_prefix(&event.id);
        if let Some((seq, existing)) = recorded_as(pending, &self.ids, &id_prefix, &event.id)? {
            if existing.event_bytes == encode_event(event) {
                return Ok(Decision::Duplicate(seq));
            }
            // An event id belongs to the org that first used it.
            let owner = existing.event()?.org;
            let reason = if owner == event.org {
                format!(
                    "event_id {:?} is already recorded at sequence {seq} with different content",
                    event.id
                )
            } else {
                format!(
                    "event_id {:?} belongs to org {owner:?}, which recorded it at sequence {seq}; {:?} must use an id of its own",
                    event.id, event.org
                )
            };
            return Ok(Decision::Reject(RejectKind::Conflict, reason));
        }
        // Judged against the record time (in NATS mode the stream's), so every node decides
        // alike; after the id check, so a re-send of a stored event is still a duplicate.
        let margin = self.config.future_margin;
        if event.time.with_timezone(&Utc) > record_time + margin {
            return Ok(Decision::Reject(
                RejectKind::Invalid,
                format!(
                    "event_time: {} is more than {} after its record time {}; an event cannot be dated in the future",
                    event.time.to_rfc3339(),
                    describe(margin),
                    record_time.to_rfc3339()
                ),
            ));
        }
        // An org registers itself; a revocation comes from an admin, and a review from an
        // auditor, who need not be a party of any chain.
        let needs_no_registration = matches!(
            event.kind,
            EventKind::RegisterOrg(_) | EventKind::RevokeToken(_) | EventKind::Review(_)
        );
        if !needs_no_registration && pending.get(&id_key(REGISTERED_ORG, &event.org))?.is_none() {
            return Ok(Decision::Reject(
                RejectKind::UnregisteredOrg,
                format!(
                    "org {:?} is not registered (record a register_org event for it first)",
                    event.org
                ),
            ));
        }
        Ok(Decision::Append(event, id_prefix))
    }
}

enum Decision<'a> {
    /// The event, and its id's index prefix (for the filter of ids).
    Append(&'a Event, Vec<u8>),
    Duplicate(u64),
    Reject(RejectKind, String),
}

/// A margin as an operator wrote it (`1d`, `6h`, `90s`).
fn describe(margin: chrono::Duration) -> String {
    let secs = margin.num_seconds();
    match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s => format!("{s} s"),
    }
}

fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The record of the event `event_id` (whose index prefix is `prefix`) as this batch leaves the
/// log, with its sequence: the event id index gives the events whose ids hash alike, and the id
/// decides. An id the filter
/// was never told of (every id in the index and every id appended since) is not read for.
fn recorded_as(
    pending: &Pending<'_>,
    ids: &Ids,
    prefix: &[u8],
    event_id: &str,
) -> Result<Option<(u64, Record)>, StoreError> {
    if !ids.may_hold(prefix) {
        return Ok(None);
    }
    for seq in pending.seqs_with_prefix(prefix)? {
        let record = pending.record(seq)?.ok_or_else(|| {
            StoreError::Corrupt(format!("event id index points at missing sequence {seq}"))
        })?;
        let record = Record::decode(&record)?;
        if record.event()?.id == event_id {
            return Ok(Some((seq, record)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
