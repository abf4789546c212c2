//! gRPC writes in NATS mode: every event goes through the one ordered stream
//! (so every node applies it at the same place), and the call answers once this
//! node has applied it (read-your-writes).

use async_nats::HeaderMap;
use async_nats::jetstream;
use futures::future::join_all;
use lotline_domain::{Outcome, RejectKind};
use lotline_proto::convert::event_bytes;
use lotline_service::{BoxFuture, Identity, QueuedOutcomes, Recorder, WriteError};
use lotline_store::{Store, Submission, Writer};
use std::future::IntoFuture;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

use crate::applied::{Applied, Seen};
use crate::config::NatsConfig;
use crate::consumer::{ConsumerState, Ingest};
use crate::message::{MSG_ID, add_caller, msg_id_of};
use crate::setup::MAX_ACKS_IN_FLIGHT;
use crate::subject::{chain_token, events_subject, relay_subject};

/// Events published before their acks are awaited (well under the context's
/// bound on unresolved acks).
const PUBLISH_SLICE: usize = 1_000;

/// Writes through the stream. Invalid events are not published: they are
/// rejected (and quarantined) here, as in embedded mode.
#[derive(Clone)]
pub struct NatsRecorder {
    jetstream: jetstream::Context,
    config: NatsConfig,
    applied: Arc<Applied>,
    state: watch::Receiver<ConsumerState>,
    store: Store,
    writer: Writer,
    /// Slots for unresolved publish acks, shared by concurrent calls, so that
    /// together they never wait on the context's own bound with acks unpolled.
    publishing: Arc<Semaphore>,
}

impl NatsRecorder {
    pub fn new(ingest: &Ingest, store: Store, writer: Writer) -> Self {
        NatsRecorder {
            jetstream: ingest.jetstream.clone(),
            config: ingest.config.clone(),
            applied: ingest.applied.clone(),
            state: ingest.state(),
            store,
            writer,
            publishing: Arc::new(Semaphore::new(MAX_ACKS_IN_FLIGHT / 2)),
        }
    }

    /// Publishes each valid event (on the caller's relay subject, with its headers, when
    /// `by` names an authenticated caller) and returns once the stream has confirmed them all,
    /// with the outcomes of the events rejected here; [`NatsRecorder::settle`] waits for the
    /// rest.
    async fn publish_all(
        &self,
        items: Vec<Submission>,
        by: Option<Arc<Identity>>,
    ) -> Result<Published, WriteError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
        let mut local = Vec::new();
        let mut to_publish = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let event = match &item.event {
                Ok(event) => event,
                Err(_) => {
                    local.push((i, item));
                    continue;
                }
            };
            let chain = chain_token(event.kind_name(), event.chain.map(|c| c.as_str()));
            let subject = match &by {
                Some(_) => relay_subject(&self.config.subject_root, chain, &event.org),
                None => events_subject(&self.config.subject_root, chain, &event.org),
            };
            match subject {
                Ok(subject) => {
                    let (id, bytes) = (event.id.clone(), event_bytes(event));
                    to_publish.push((i, subject, id, bytes, item))
                }
                Err(reason) => {
                    let mut item = item;
                    item.event = Err(lotline_domain::Invalid::new("org", reason));
                    local.push((i, item));
                }
            }
        }
        // Rejected here, never published; quarantined like any rejection.
        if !local.is_empty() {
            let (indexes, items): (Vec<usize>, Vec<Submission>) = local.into_iter().unzip();
            for (i, outcome) in indexes.into_iter().zip(self.writer.submit(items).await?) {
                outcomes[i] = Some(outcome);
            }
        }
        let mut acked = Vec::with_capacity(to_publish.len());
        // Published in order, a slice at a time: a context holds a bounded
        // number of unresolved acks.
        let mut to_publish = to_publish.into_iter().peekable();
        while to_publish.peek().is_some() {
            let slice: Vec<_> = to_publish.by_ref().take(PUBLISH_SLICE).collect();
            let _slots = self
                .publishing
                .acquire_many(slice.len() as u32)
                .await
                .map_err(|_| unavailable("lotline is shutting down".into()))?;
            let mut acks = Vec::with_capacity(slice.len());
            for (_, subject, id, bytes, item) in &slice {
                let mut headers = HeaderMap::new();
                headers.insert(MSG_ID, msg_id_of(&item.org, id).as_str());
                if let Some(caller) = &by {
                    add_caller(&mut headers, caller);
                }
                let ack = self
                    .jetstream
                    .publish_with_headers(subject.clone(), headers, bytes.clone().into())
                    .await
                    .map_err(|e| unavailable(format!("publishing to the stream failed: {e}")))?;
                acks.push(ack.into_future());
            }
            let acks = join_all(acks).await;
            for ((index, _, id, bytes, item), ack) in slice.into_iter().zip(acks) {
                let ack = ack
                    .map_err(|e| unavailable(format!("the stream did not confirm {id:?}: {e}")))?;
                acked.push(Acked {
                    index,
                    seq: ack.sequence,
                    duplicate: ack.duplicate,
                    id,
                    bytes,
                    item,
                });
            }
        }
        Ok(Published { outcomes, acked })
    }

    /// The outcomes of published events, once this node has applied them.
    async fn settle(&self, published: Published) -> Result<Vec<Outcome>, WriteError> {
        let Published {
            mut outcomes,
            acked,
        } = published;
        for a in acked {
            outcomes[a.index] = Some(
                self.outcome_of(a.seq, a.duplicate, &a.id, &a.bytes, &a.item)
                    .await?,
            );
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// The outcome of the message at stream sequence `seq`, once applied here.
    async fn outcome_of(
        &self,
        seq: u64,
        duplicate: bool,
        id: &str,
        bytes: &[u8],
        item: &Submission,
    ) -> Result<Outcome, WriteError> {
        let timeout = self.config.apply_timeout;
        let seen = tokio::time::timeout(timeout, self.applied.wait(seq))
            .await
            .map_err(|_| WriteError::NotApplied {
                event_id: id.to_string(),
                seq,
                waited: timeout,
            })?;
        if !duplicate && let Seen::Outcome(outcome) = seen {
            return Ok(outcome);
        }
        // JetStream dropped a re-send within its duplicate window (or the
        // outcome is no longer remembered): answer from the store.
        if let Some(log_seq) = self.store.seq_of(id)? {
            let same = self
                .store
                .record(log_seq)?
                .is_some_and(|r| r.event_bytes == bytes);
            if same {
                return Ok(Outcome::Duplicate { seq: log_seq });
            }
            // A conflicting re-send the stream dropped: quarantine it here. The
            // writer finds the id in the log and rejects it as a conflict; it
            // can append nothing (the id is stored, and the log only grows).
            let mut conflict = item.clone();
            conflict.record_time = None;
            if let Some(outcome) = self.writer.submit(vec![conflict]).await?.pop() {
                return Ok(outcome);
            }
        }
        Ok(match seen {
            Seen::Outcome(rejected @ Outcome::Rejected { .. }) => rejected,
            _ => Outcome::Rejected {
                kind: RejectKind::Invalid,
                reason: format!(
                    "an event with id {id:?} was published moments ago and was not stored (see `lotline rejected`); send it again after the stream's duplicate window"
                ),
            },
        })
    }
}

/// Events of one call in the stream, or rejected before it.
struct Published {
    /// By the call's order; those rejected here are known already.
    outcomes: Vec<Option<Outcome>>,
    acked: Vec<Acked>,
}

/// An event the stream confirmed at `seq`.
struct Acked {
    /// Its place in the call.
    index: usize,
    seq: u64,
    duplicate: bool,
    id: String,
    bytes: Vec<u8>,
    item: Submission,
}

impl Recorder for NatsRecorder {
    /// A batch has its place once the stream has confirmed it: the next one is published after
    /// it while this node applies it.
    fn queue(
        &self,
        items: Vec<Submission>,
        by: Option<Arc<Identity>>,
    ) -> BoxFuture<'_, Result<QueuedOutcomes, WriteError>> {
        Box::pin(async move {
            let published = self.publish_all(items, by).await?;
            let recorder = self.clone();
            Ok(Box::pin(async move { recorder.settle(published).await }) as QueuedOutcomes)
        })
    }

    fn refusal(&self) -> Option<String> {
        if let Some(refused) = self.writer.refusal() {
            return Some(refused);
        }
        match &*self.state.borrow() {
            ConsumerState::Running => None,
            ConsumerState::Starting => Some(
                "lotline is connecting to NATS; writes go through the stream and wait until it consumes".into(),
            ),
            ConsumerState::Down(reason) => Some(format!(
                "the NATS consumer is down ({reason}); writes go through the stream in order, so they wait until it is back"
            )),
            ConsumerState::Stopped => Some("lotline is shutting down".into()),
        }
    }
}

fn unavailable(reason: String) -> WriteError {
    WriteError::Unavailable(reason)
}
