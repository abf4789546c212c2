//! The consume loop: fetch a batch → decode and check each message → append
//! the batch (with the stream position, atomically) → flush → ack.
//!
//! The store, not the consumer, knows what is applied: messages are applied
//! strictly in stream order, and the last stream sequence applied is written in
//! the same batch as the events. Anything that breaks the order (a restart, a
//! reconnect, a gap left by a lost delivery, a failed write) ends the current
//! delivery and starts a fresh one from the store's position. Redelivered
//! messages at or before it are acknowledged without being applied again; an
//! event re-sent under a new stream sequence is a duplicate by event id. So every
//! node applies the same messages in the same order, each exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, stream};
use async_nats::{Client, Event as ClientEvent, HeaderMap};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use lotline_domain::{EventKind, Outcome, RevokeToken};
use lotline_store::{Store, Submission, Writer};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::applied::Applied;
use crate::config::NatsConfig;
use crate::error::IngestError;
use crate::message::{self, NODE, REPLY_PREFIX, REPLY_TO, header};
use crate::setup;
use crate::subject::{parse_events_subject, rejected_subject};

/// Whether the consumer is taking messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerState {
    /// Connecting and setting up the stream and consumer.
    Starting,
    /// Consuming.
    Running,
    /// Not consuming, and why; it keeps retrying.
    Down(String),
    /// Stopped for shutdown.
    Stopped,
}

/// Where the consumer's time goes, summed since it started.
#[derive(Debug, Default)]
pub struct Stats {
    pub messages: AtomicU64,
    pub batches: AtomicU64,
    /// Decoding and checking messages (protobuf/JSON, validation, GeoJSON).
    pub decode_nanos: AtomicU64,
    /// The writer: indexes, Merkle tree, sled batch and flush.
    pub write_nanos: AtomicU64,
    /// Acks, rejection announcements and replies.
    pub settle_nanos: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// A running NATS intake.
pub struct Ingest {
    pub client: Client,
    pub jetstream: jetstream::Context,
    pub config: NatsConfig,
    pub applied: Arc<Applied>,
    pub stats: Arc<Stats>,
    state: watch::Receiver<ConsumerState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Ingest {
    /// Connects (in the background if the server is not up yet) and starts
    /// consuming into `writer` from the position recorded in `store`.
    pub async fn start(
        config: NatsConfig,
        store: &Store,
        writer: Writer,
    ) -> Result<Ingest, IngestError> {
        config.check().map_err(IngestError::Unusable)?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let client = setup::connect(
            &config.url,
            &format!("lotline {}", config.node_id),
            &config.client,
            Some(events_tx.clone()),
            true,
        )
        .await?;
        let jetstream = setup::jetstream(client.clone());
        let position = store.stream_position()?;
        let stored = store.last_seq()?;
        if position == 0 && stored > 0 {
            warn!(
                events = stored,
                "this store holds events that did not come from the stream (embedded mode before?): nodes consuming the stream will not have them"
            );
        }
        let applied = Arc::new(Applied::new(position));
        let stats = Arc::new(Stats::default());
        let (state_tx, state) = watch::channel(ConsumerState::Starting);
        let (stop, stop_rx) = watch::channel(false);
        let consumer = Consumer {
            client: client.clone(),
            jetstream: setup::consumer_jetstream(client.clone(), setup::CONSUMER_REQUEST_TIMEOUT),
            config: config.clone(),
            store: store.clone(),
            writer,
            applied: applied.clone(),
            stats: stats.clone(),
            state: state_tx,
            _events: events_tx,
        };
        // Outcomes on request, from this node's store, for publishers whose replies were lost.
        tokio::spawn(crate::outcomes::serve(
            client.clone(),
            config.clone(),
            store.clone(),
            applied.clone(),
            stop_rx.clone(),
        ));
        let task = tokio::spawn(consumer.run(stop_rx, events));
        Ok(Ingest {
            client,
            jetstream,
            config,
            applied,
            stats,
            state,
            stop,
            task,
        })
    }

    /// Follows the consumer's state (for health).
    pub fn state(&self) -> watch::Receiver<ConsumerState> {
        self.state.clone()
    }

    /// Measures how far this node is behind the stream, without holding the intake.
    pub fn lag_probe(&self) -> LagProbe {
        LagProbe {
            jetstream: self.jetstream.clone(),
            stream: self.config.stream.clone(),
            applied: self.applied.clone(),
        }
    }

    /// Stops consuming after the batch in hand is applied and settled, waiting
    /// at most `grace` (acks to an absent server can wait for ever; what was
    /// not acked is redelivered and answered from the store).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Err(e)) => error!(cause = %e, "the NATS consumer task failed"),
            Ok(Ok(())) => {}
            Err(_) => {
                warn!(
                    ?grace,
                    "the NATS consumer did not stop in time; stopping it"
                );
                task.abort();
            }
        }
        // Acks and announcements are published; let them leave, but do not wait
        // on a server that is not there.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
    }
}

/// How far a node is behind its stream (for metrics).
#[derive(Clone)]
pub struct LagProbe {
    jetstream: jetstream::Context,
    stream: String,
    applied: Arc<Applied>,
}

impl LagProbe {
    /// The stream position this node has applied through.
    pub fn applied(&self) -> u64 {
        self.applied.through()
    }

    /// The stream's last sequence and how many messages after this node's position it holds
    /// (asks the server: a node cut off from NATS gets an error, not a stale figure).
    pub async fn lag(&self) -> Result<(u64, u64), IngestError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| IngestError::jetstream(format!("stream {}", self.stream), e))?;
        let last = stream.cached_info().state.last_sequence;
        Ok((last, last.saturating_sub(self.applied.through())))
    }
}

struct Consumer {
    client: Client,
    jetstream: jetstream::Context,
    config: NatsConfig,
    /// What is applied so far (revocations before a relayed event).
    store: Store,
    writer: Writer,
    applied: Arc<Applied>,
    stats: Arc<Stats>,
    state: watch::Sender<ConsumerState>,
    /// Keeps the connection-events channel open for as long as the loop runs.
    _events: mpsc::UnboundedSender<ClientEvent>,
}

/// A message as fetched: subject, headers, payload and the stream's timestamp.
type Raw = (String, Option<HeaderMap>, Bytes, DateTime<Utc>);

/// Refuses every relayed event whose caller's token was revoked before it in the stream: in
/// the log already, or earlier in this batch. Every node reaches the same decision, however
/// it batches the stream.
fn refuse_revoked(
    store: &Store,
    root: &str,
    raw: &[Raw],
    items: &mut [Submission],
) -> Result<(), lotline_store::StoreError> {
    let mut revoked_here = std::collections::BTreeSet::new();
    for ((subject, headers, _, _), item) in raw.iter().zip(items.iter_mut()) {
        if let (Some(token), Ok(_)) = (
            message::relayed_token(root, subject, headers.as_ref()),
            &item.event,
        ) && (revoked_here.contains(token)
            || store.seq_of(&RevokeToken::event_id(token))?.is_some())
        {
            item.event = Err(lotline_domain::Invalid::new(
                "token",
                format!("the caller's token {token} was revoked before the stream took this event"),
            ));
        }
        if let Ok(event) = &item.event
            && let EventKind::RevokeToken(r) = &event.kind
        {
            revoked_here.insert(r.token_id.clone());
        }
    }
    Ok(())
}

/// What applying one batch asks of the loop.
enum Step {
    Continue,
    /// Delivery skipped from `expected` to `found`: restart it from the store.
    Gap {
        expected: u64,
        found: u64,
    },
    /// The store failed; the batch was nak'd.
    Failed(String),
}

/// A batch in the writer's hands: resolves once it is written and settled (or nak'd).
type Settling<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Step> + Send + 'a>>;

/// A batch queued for the writer, and the gap that ended it, if one did.
struct Queuing<'a> {
    settling: Option<Settling<'a>>,
    gap: Option<u64>,
}

/// A message as the pull consumer delivers it.
type Delivered = Result<
    jetstream::Message,
    async_nats::error::Error<jetstream::consumer::pull::MessagesErrorKind>,
>;

/// What woke a session up.
enum Next {
    Stop,
    Settled(Step),
    Client(Option<ClientEvent>),
    /// Boxed: a message is much larger than the other variants.
    Message(Box<Option<Delivered>>),
}

/// Waits for the batch in flight to be settled (never resolves when there is none).
async fn settled(in_flight: &mut Option<Settling<'_>>) -> Step {
    match in_flight {
        Some(settling) => settling.await,
        None => std::future::pending().await,
    }
}

/// Settles the batch in flight, if there is one, and says how that went.
async fn finish(in_flight: &mut Option<Settling<'_>>) -> Option<Step> {
    match in_flight.take() {
        Some(settling) => Some(settling.await),
        None => None,
    }
}

/// What ends a session of delivery.
enum Session {
    /// Asked to stop.
    Stop,
    /// Open the next session from the store's position.
    Restart,
}

/// What the consumer remembers between sessions.
#[derive(Default)]
struct Retry {
    backoff: Backoff,
    /// A gap seen twice at the same place is not retried quickly.
    last_gap: Option<u64>,
}

/// A message taken from a batch, owned so decoding can run off the runtime.
struct Taken {
    seq: u64,
    message: jetstream::Message,
    event_id: String,
    org: String,
}

impl Consumer {
    fn down(&self, reason: String) {
        if !matches!(&*self.state.borrow(), ConsumerState::Down(r) if *r == reason) {
            warn!(%reason, "NATS consumer down");
        }
        self.state.send_replace(ConsumerState::Down(reason));
    }

    async fn run(
        self,
        mut stop: watch::Receiver<bool>,
        mut events: mpsc::UnboundedReceiver<ClientEvent>,
    ) {
        let mut retry = Retry::default();
        loop {
            if *stop.borrow() || !self.connected(&mut events, &mut stop).await {
                break;
            }
            if let Session::Stop = self.session(&mut stop, &mut events, &mut retry).await {
                break;
            }
        }
        self.state.send_replace(ConsumerState::Stopped);
        info!("NATS consumer stopped");
    }

    /// One session of delivery: opened right after the last message applied here, it applies
    /// batches in stream order until something breaks that order (a disconnect, an error, a
    /// gap, a failed write); then the loop opens the next session from the store's position.
    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        events: &mut mpsc::UnboundedReceiver<ClientEvent>,
        retry: &mut Retry,
    ) -> Session {
        let mut expected = self.applied.through() + 1;
        let opened = tokio::select! {
            _ = stop.changed() => return Session::Stop,
            opened = self.open(expected, setup::consumer_request_timeout(retry.backoff.failures())) => opened,
        };
        let mut messages = match opened {
            Ok(m) => m,
            Err(e) => return self.retry_after(e.to_string(), retry, stop).await,
        };
        self.state.send_replace(ConsumerState::Running);
        // One batch may be in the writer's hands while the next is gathered and decoded: its
        // outcomes are settled (acked, answered) before the next batch's.
        let mut in_flight: Option<Settling<'_>> = None;
        loop {
            let next = tokio::select! {
                _ = stop.changed() => Next::Stop,
                step = settled(&mut in_flight), if in_flight.is_some() => Next::Settled(step),
                event = events.recv() => Next::Client(event),
                next = messages.next() => Next::Message(Box::new(next)),
            };
            let first = match next {
                Next::Stop => {
                    finish(&mut in_flight).await;
                    return Session::Stop;
                }
                Next::Settled(step) => {
                    in_flight = None;
                    match step {
                        Step::Continue => {
                            retry.backoff.reset();
                            continue;
                        }
                        step => return self.after(step, retry, stop).await,
                    }
                }
                Next::Client(Some(ClientEvent::Disconnected)) => {
                    finish(&mut in_flight).await;
                    self.down("disconnected from the NATS server".into());
                    return Session::Restart;
                }
                Next::Client(_) => continue,
                Next::Message(delivered) => match *delivered {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        finish(&mut in_flight).await;
                        let reason = format!("receiving messages failed: {e}");
                        return self.retry_after(reason, retry, stop).await;
                    }
                    None => {
                        finish(&mut in_flight).await;
                        let reason = "the message stream ended".to_string();
                        return self.retry_after(reason, retry, stop).await;
                    }
                },
            };
            let batch = gather(first, &mut messages, self.config.batch).await;
            let queued = self.queue(batch, &mut expected).await;
            // The batch before this one is settled first, whatever happened to this one.
            if let Some(before) = in_flight.take() {
                let step = before.await;
                if !matches!(step, Step::Continue) {
                    if let Ok(q) = queued
                        && let Some(settling) = q.settling
                    {
                        // Refused by the writer (it follows a failed batch) or written: either
                        // way it is settled before the session ends.
                        settling.await;
                    }
                    return self.after(step, retry, stop).await;
                }
                retry.backoff.reset();
            }
            match queued {
                Err(step) => return self.after(step, retry, stop).await,
                Ok(Queuing { settling, gap }) => {
                    in_flight = settling;
                    if let Some(found) = gap {
                        if let Some(step) = finish(&mut in_flight).await
                            && !matches!(step, Step::Continue)
                        {
                            return self.after(step, retry, stop).await;
                        }
                        let step = Step::Gap { expected, found };
                        return self.after(step, retry, stop).await;
                    }
                }
            }
        }
    }

    /// Ends a session after a step that breaks stream order.
    async fn after(
        &self,
        step: Step,
        retry: &mut Retry,
        stop: &mut watch::Receiver<bool>,
    ) -> Session {
        match step {
            Step::Continue => Session::Restart,
            Step::Gap { expected, found } => {
                if retry.last_gap.replace(expected) != Some(expected) {
                    debug!(expected, found, "delivery out of order; restarting it");
                    return Session::Restart;
                }
                // The same gap again: either the stream lost these messages (other nodes
                // applied them; skipping would make this log differ for good) or delivery
                // keeps failing. Either way: down, with the reason, retrying.
                let reason = if self.is_hole(expected).await {
                    format!(
                        "the stream no longer holds sequences {expected} to {} that this node has not applied (purged, deleted or age-limited?): rebuild this node from a complete stream or restore it",
                        found - 1
                    )
                } else {
                    format!("delivery skips from sequence {expected} to {found}")
                };
                self.retry_after(reason, retry, stop).await
            }
            Step::Failed(reason) => {
                let reason = format!("the store failed; retrying: {reason}");
                self.retry_after(reason, retry, stop).await
            }
        }
    }

    /// Marks the consumer down for `reason` and waits out the backoff before the next session,
    /// unless asked to stop meanwhile.
    async fn retry_after(
        &self,
        reason: String,
        retry: &mut Retry,
        stop: &mut watch::Receiver<bool>,
    ) -> Session {
        self.down(reason);
        if sleep_or_stop(retry.backoff.next(), stop).await {
            Session::Stop
        } else {
            Session::Restart
        }
    }

    /// Waits for the client to be connected; false if asked to stop first.
    async fn connected(
        &self,
        events: &mut mpsc::UnboundedReceiver<ClientEvent>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            if self.client.connection_state() == async_nats::connection::State::Connected {
                return true;
            }
            if matches!(&*self.state.borrow(), ConsumerState::Running) {
                self.down("disconnected from the NATS server".into());
            }
            tokio::select! {
                _ = stop.changed() => return false,
                _ = events.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    async fn stream(&self) -> Result<stream::Stream, IngestError> {
        setup::ensure_stream(&self.jetstream, &self.config).await
    }

    /// Opens a delivery from stream sequence `start`, waiting up to `timeout` for each of the
    /// three JetStream requests it takes (stream info, consumer delete and create).
    async fn open(
        &self,
        start: u64,
        timeout: Duration,
    ) -> Result<jetstream::consumer::pull::Stream, IngestError> {
        let jetstream = setup::consumer_jetstream(self.client.clone(), timeout);
        let stream = setup::ensure_stream(&jetstream, &self.config).await?;
        let info = stream.cached_info();
        self.same_stream(start, &info.config.name, info.created)?;
        let last = info.state.last_sequence;
        if last + 1 < start {
            // A stream that ends before what this node applied is another
            // stream (deleted and created again, or its store lost): consuming
            // it would skip its first messages without a word.
            return Err(IngestError::Unusable(format!(
                "stream {} ends at sequence {last}, but this node has applied through {}: the stream was reset or replaced; restore it, or rebuild this node (empty data dir) from the new one",
                self.config.stream,
                start - 1
            )));
        }
        let consumer = setup::consumer_from(&stream, &self.config, start).await?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            // Missing two heartbeats ends the session: a stream leader lost is noticed in
            // about 4 s.
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| IngestError::jetstream("pull request", e))
    }

    /// Refuses a stream other than the one this node's position is in: one deleted and created
    /// again under the same name has another creation time, and resuming it at the old position
    /// would skip its first messages (or apply another history) without a word. The first
    /// stream a node opens becomes its stream; a node that has applied nothing follows a new one.
    fn same_stream(
        &self,
        start: u64,
        name: &str,
        created: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), IngestError> {
        let created = created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let identity = format!("{name} created {created}");
        match self.store.stream_identity()? {
            Some(known) if known == identity => Ok(()),
            Some(known) if start > 1 => Err(IngestError::Unusable(format!(
                "stream {name} is not the stream this node applied through sequence {}: it was created at {created}, this node's was {known}; the stream was deleted and created again; restore it, or rebuild this node (empty data dir) from the new one",
                start - 1
            ))),
            known => {
                if known.is_none() && start > 1 {
                    info!(stream = name, %created, position = start - 1, "recording the identity of the stream this node consumes (a data dir of an earlier release)");
                }
                Ok(self.store.set_stream_identity(&identity)?)
            }
        }
    }

    /// Whether stream sequence `seq` is gone from the stream.
    async fn is_hole(&self, seq: u64) -> bool {
        match self.stream().await {
            Ok(stream) => matches!(
                stream.get_raw_message(seq).await,
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound
            ),
            Err(_) => false,
        }
    }

    /// Takes a batch in stream order, decodes and checks it off the runtime and queues it for
    /// the writer; the returned future settles it once written. Messages before `expected`
    /// (redeliveries) are only acked; a message after it ends the batch as a gap.
    async fn queue(
        &self,
        batch: Vec<jetstream::Message>,
        expected: &mut u64,
    ) -> Result<Queuing<'_>, Step> {
        let after = *expected - 1;
        let mut taken = Vec::with_capacity(batch.len());
        let mut raw: Vec<Raw> = Vec::with_capacity(batch.len());
        let mut gap = None;
        for message in batch {
            let (seq, published) = match message.info() {
                Ok(info) => (info.stream_sequence, info.published),
                Err(e) => {
                    warn!(cause = %e, subject = %message.subject, "not a JetStream delivery; ignored");
                    continue;
                }
            };
            if seq < *expected {
                // Applied before (a redelivery): only the ack was missing.
                if let Err(e) = message.ack().await {
                    debug!(cause = %e, seq, "ack of a redelivery failed");
                }
                continue;
            }
            if seq > *expected {
                gap = Some(seq);
                break;
            }
            raw.push((
                message.subject.to_string(),
                message.headers.clone(),
                message.payload.clone(),
                published,
            ));
            taken.push(Taken {
                seq,
                message,
                event_id: String::new(),
                org: String::new(),
            });
            *expected += 1;
        }
        if taken.is_empty() {
            return Ok(Queuing {
                settling: None,
                gap,
            });
        }
        let position = *expected - 1;
        let started = Instant::now();
        let root = self.config.subject_root.clone();
        let enforce = self.config.enforce_roles;
        let store = self.store.clone();
        let decoded = tokio::task::spawn_blocking(move || {
            let mut items: Vec<Submission> = raw
                .iter()
                .map(|(subject, headers, payload, published)| {
                    message::submission(
                        &root,
                        subject,
                        headers.as_ref(),
                        payload,
                        *published,
                        enforce,
                    )
                })
                .collect();
            refuse_revoked(&store, &root, &raw, &mut items)?;
            Ok::<_, lotline_store::StoreError>(items)
        })
        .await;
        let items = match decoded {
            Ok(Ok(items)) => items,
            Ok(Err(e)) => return Err(Step::Failed(format!("checking revocations failed: {e}"))),
            Err(e) => return Err(Step::Failed(format!("decoding task failed: {e}"))),
        };
        for (t, item) in taken.iter_mut().zip(&items) {
            t.event_id = item.event_id.clone();
            t.org = item.org.clone();
        }
        Stats::add(&self.stats.decode_nanos, started);
        let started = Instant::now();
        let queued = self.writer.queue_at(items, after, position).await;
        let settling = async move {
            let written = match queued {
                Ok(queued) => queued.outcomes().await,
                Err(e) => Err(e),
            };
            Stats::add(&self.stats.write_nanos, started);
            match written {
                Ok(outcomes) => {
                    let started = Instant::now();
                    self.settle(taken, outcomes, position).await;
                    Stats::add(&self.stats.settle_nanos, started);
                    Step::Continue
                }
                Err(e) => {
                    error!(cause = %e, messages = taken.len(), "batch not stored; nak'd for redelivery");
                    for t in &taken {
                        let _ = t
                            .message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                    }
                    Step::Failed(e.to_string())
                }
            }
        };
        Ok(Queuing {
            settling: Some(Box::pin(settling)),
            gap,
        })
    }

    /// Acks what is stored, terminates (and announces) what never can be, and
    /// answers publishers that asked for the outcome. Everything here follows
    /// the flush, so a failure to send only means a redelivery, answered from
    /// the store.
    async fn settle(&self, taken: Vec<Taken>, outcomes: Vec<Outcome>, position: u64) {
        self.stats
            .messages
            .fetch_add(taken.len() as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let mut seen = Vec::with_capacity(taken.len());
        for (t, outcome) in taken.into_iter().zip(outcomes) {
            let sent = match &outcome {
                Outcome::Accepted { .. } | Outcome::Duplicate { .. } => t.message.ack().await,
                Outcome::Rejected { kind, reason } => {
                    self.announce(&t, kind.as_str(), reason).await;
                    t.message.ack_with(AckKind::Term).await
                }
            };
            if let Err(e) = sent {
                debug!(cause = %e, seq = t.seq, "ack not sent; the message will be redelivered and acked then");
            }
            // Only to inboxes: a producer must not make lotline publish on
            // subjects it may not publish on itself (lotline's own, the JS API).
            if let Some(reply) = header(t.message.headers.as_ref(), REPLY_TO)
                && reply.starts_with(REPLY_PREFIX)
                && crate::subject::is_subject(reply)
            {
                self.reply(reply, &t, &outcome).await;
            }
            seen.push((t.seq, outcome));
        }
        self.applied.record(seen, position);
    }

    fn node_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(NODE, self.config.node_id.as_str());
        headers.insert(message::CONTENT_TYPE, message::JSON);
        headers
    }

    async fn announce(&self, t: &Taken, kind: &str, reason: &str) {
        let body = json!({
            "node": self.config.node_id,
            "streamSequence": t.seq,
            "subject": t.message.subject.as_str(),
            "eventId": t.event_id,
            "org": t.org,
            "kind": kind,
            "reason": reason,
        });
        // The sender is the org of the subject it was allowed to publish on,
        // whatever org the event claims.
        let org = parse_events_subject(&self.config.subject_root, t.message.subject.as_str())
            .map_or(t.org.as_str(), |(_, org)| org);
        let subject = rejected_subject(&self.config.subject_root, org);
        if let Err(e) = self
            .client
            .publish_with_headers(subject, self.node_headers(), body.to_string().into())
            .await
        {
            warn!(cause = %e, seq = t.seq, "rejection not announced");
        }
    }

    async fn reply(&self, subject: &str, t: &Taken, outcome: &Outcome) {
        let wire = lotline_proto::convert::outcome_to_wire(outcome, &t.event_id);
        let body = match serde_json::to_vec(&wire) {
            Ok(body) => body,
            Err(e) => {
                warn!(cause = %e, "outcome not encodable as JSON");
                return;
            }
        };
        if let Err(e) = self
            .client
            .publish_with_headers(subject.to_string(), self.node_headers(), body.into())
            .await
        {
            debug!(cause = %e, seq = t.seq, "outcome reply not sent");
        }
    }
}

/// How long a batch waits for one more message before it is applied, and for
/// all of them: one flush per batch is most of the store's cost, so a batch
/// takes what arrives in a burst, at the price of a few milliseconds of latency.
const LINGER: Duration = Duration::from_millis(2);
const GATHER: Duration = Duration::from_millis(25);

/// Collects messages after `first` until the batch is full, none came for
/// [`LINGER`], or [`GATHER`] has passed.
async fn gather(
    first: jetstream::Message,
    messages: &mut jetstream::consumer::pull::Stream,
    max: usize,
) -> Vec<jetstream::Message> {
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + GATHER;
    while batch.len() < max {
        let next = match messages.next().now_or_never() {
            Some(next) => next,
            None => {
                let wait =
                    LINGER.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                match tokio::time::timeout(wait, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            }
        };
        match next {
            Some(Ok(m)) => batch.push(m),
            // An error or the end shows again on the next read, outside the batch.
            _ => break,
        }
    }
    batch
}

/// Doubling delay between retries, from 100 ms to 5 s.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let delay = Duration::from_millis(100u64 << self.0.min(6)).min(Duration::from_secs(5));
        self.0 += 1;
        delay
    }

    fn reset(&mut self) {
        self.0 = 0;
    }

    /// Retries since the last reset: attempts that failed in a row.
    fn failures(&self) -> u32 {
        self.0
    }
}

/// Sleeps; true if asked to stop meanwhile.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(delay) => *stop.borrow(),
    }
}
