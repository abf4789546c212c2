//! Publishing events to the stream with many acks in flight: `lotline publish`,
//! `lotline bench ingest` and anyone embedding lotline's publisher.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lotline_proto::v1;
use prost::Message;

use crate::message::{CONTENT_TYPE, JSON, MSG_ID, REPLY_TO, msg_id_of};
use crate::setup::MAX_ACKS_IN_FLIGHT;
use crate::subject::{chain_token, events_subject};

/// One message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: String,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Outgoing {
    /// A protobuf event, with `Nats-Msg-Id` set to its org and id ([`msg_id_of`]).
    pub fn protobuf(root: &str, event: &v1::Event) -> Result<Outgoing, String> {
        let subject = subject_of(root, event)?;
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, msg_id(&event.org, &event.event_id)?);
        Ok(Outgoing {
            event_id: event.event_id.clone(),
            subject,
            headers,
            payload: event.encode_to_vec().into(),
        })
    }

    /// One JSON Lines event, sent as written (so a rejection quarantines the
    /// text the user wrote). Text that is not an event is refused here.
    pub fn json_line(root: &str, line: &str) -> Result<Outgoing, String> {
        let event: v1::Event = serde_json::from_str(line)
            .map_err(|e| format!("not a lotline.v1.Event in proto3 JSON: {e}"))?;
        if event.event_id.is_empty() {
            return Err("eventId: is required (it is part of the Nats-Msg-Id)".into());
        }
        let subject = subject_of(root, &event)?;
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, msg_id(&event.org, &event.event_id)?);
        headers.insert(CONTENT_TYPE, JSON);
        Ok(Outgoing {
            event_id: event.event_id,
            subject,
            headers,
            payload: Bytes::copy_from_slice(line.as_bytes()),
        })
    }

    /// Asks every lotline node to send this event's outcome to `inbox`.
    pub fn with_reply(mut self, inbox: &str) -> Outgoing {
        self.headers.insert(REPLY_TO, inbox);
        self
    }
}

/// The message id of an org's event as a header value (a header cannot hold line breaks).
fn msg_id(org: &str, id: &str) -> Result<HeaderValue, String> {
    msg_id_of(org, id)
        .parse::<HeaderValue>()
        .map_err(|_| format!("eventId {id:?}: control characters are not allowed in an event id"))
}

fn subject_of(root: &str, event: &v1::Event) -> Result<String, String> {
    let chain = (!event.chain.is_empty()).then_some(event.chain.as_str());
    let chain = match &event.kind {
        Some(kind) => chain_token(lotline_proto::convert::kind_name(kind), chain),
        None => chain,
    };
    events_subject(root, chain, &event.org)
}

/// What the stream said about published messages.
#[derive(Debug, Default)]
pub struct Published {
    /// Stored in the stream as new messages. A message sent again after its first send went
    /// unconfirmed, and then dropped by the stream as a re-send, counts here: the send it
    /// duplicates is this publisher's own (and carries its headers, a reply inbox included).
    pub stored: u64,
    /// Dropped by the stream as re-sends within its duplicate window (of an earlier publish).
    pub duplicates: u64,
    /// The event ids of those: lotline sends no outcome for them.
    pub duplicate_ids: Vec<String>,
    /// Not confirmed (event id, why), after retrying for [`RETRY_FOR`]: publishing them again
    /// is safe.
    pub failed: Vec<(String, String)>,
    /// Publishes sent again, with the same message id, after the stream did not confirm them
    /// (a server went away, a new stream leader was being elected): the stream drops a copy
    /// it already holds.
    pub retried: u64,
    /// The highest stream sequence confirmed.
    pub last_sequence: u64,
}

/// How long a publish the stream did not confirm is sent again before it is reported as failed.
/// The client moves to another server of the cluster meanwhile; a stream losing its leader
/// elects a new one within seconds.
pub const RETRY_FOR: Duration = Duration::from_secs(30);

/// Publishes `messages` in order, keeping up to `in_flight` acks outstanding
/// (at most [`MAX_ACKS_IN_FLIGHT`]),
/// and returns once every ack is in (or failed). `progress` sees each ack. A publish the
/// stream did not confirm is sent again with the same message id (so it is stored once) for
/// up to [`RETRY_FOR`]: a retried message may land after messages published later.
///
/// Publishers running at once must not share a context unless their `in_flight` together stay
/// within the context's cap on awaited acks (4 096 for [`crate::jetstream`]): each would wait
/// for a slot the other holds until its acks are read, which neither does while it waits.
pub async fn publish_pipelined(
    jetstream: &jetstream::Context,
    messages: impl IntoIterator<Item = Outgoing>,
    in_flight: usize,
    mut progress: impl FnMut(&Published),
) -> Published {
    let in_flight = in_flight.clamp(1, MAX_ACKS_IN_FLIGHT);
    let mut published = Published::default();
    let mut pending = FuturesUnordered::new();
    for message in messages {
        while pending.len() >= in_flight {
            if let Some((id, ack)) = pending.next().await {
                settle(&mut published, id, ack);
                progress(&published);
            }
        }
        let sent = jetstream
            .publish_with_headers(
                message.subject.clone(),
                message.headers.clone(),
                message.payload.clone(),
            )
            .await;
        pending.push(confirm(jetstream.clone(), message, sent));
    }
    while let Some((id, ack)) = pending.next().await {
        settle(&mut published, id, ack);
        progress(&published);
    }
    published
}

/// A publish confirmed by the stream, or why not after retrying; with how many retries.
type Confirmed = (
    String,
    (Result<jetstream::publish::PublishAck, PublishError>, u64),
);

/// Waits for the stream's ack of `message`, sending it again while the failure is one a
/// moment can cure, until [`RETRY_FOR`] has passed.
async fn confirm(
    jetstream: jetstream::Context,
    message: Outgoing,
    sent: Result<jetstream::context::PublishAckFuture, PublishError>,
) -> Confirmed {
    let deadline = Instant::now() + RETRY_FOR;
    let mut result = match sent {
        Ok(ack) => acked(ack).await,
        Err(e) => Err(e),
    };
    let mut retries = 0;
    let mut wait = Duration::from_millis(100);
    while let Err(e) = &result {
        if !passing(e) || Instant::now() + wait > deadline {
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
        retries += 1;
        result = match jetstream
            .publish_with_headers(
                message.subject.clone(),
                message.headers.clone(),
                message.payload.clone(),
            )
            .await
        {
            Ok(ack) => acked(ack).await,
            Err(e) => Err(e),
        };
    }
    (message.event_id, (result, retries))
}

/// How long a publisher waits for the stream's ack before it sends the message again. An ack
/// comes within milliseconds from a live stream leader, even a busy one; a publish the leader
/// took with it when it died is never acked, and is sent again this soon (the stream drops a
/// re-send it already stored, by its message id) rather than after the context's 10 s.
pub const ACK_WAIT: Duration = Duration::from_secs(3);

/// The stream's ack of one publish, or [`PublishErrorKind::TimedOut`] after [`ACK_WAIT`].
async fn acked(
    ack: jetstream::context::PublishAckFuture,
) -> Result<jetstream::publish::PublishAck, PublishError> {
    tokio::time::timeout(ACK_WAIT, ack.into_future())
        .await
        .unwrap_or_else(|_| Err(PublishError::new(PublishErrorKind::TimedOut)))
}

/// Whether a publish failed for a reason that passes: no ack in time, the connection gone, too
/// many acks pending, no stream answering (a leader election), or the stream's own refusal.
/// A message larger than the server takes, or a failed expectation, fails the same way again.
fn passing(error: &PublishError) -> bool {
    !matches!(
        error.kind(),
        PublishErrorKind::MaxPayloadExceeded
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence
    )
}

fn settle(
    published: &mut Published,
    id: String,
    (ack, retries): (Result<jetstream::publish::PublishAck, PublishError>, u64),
) {
    published.retried += retries;
    match ack {
        Ok(ack) => {
            if ack.duplicate && retries == 0 {
                published.duplicates += 1;
                published.duplicate_ids.push(id);
            } else {
                published.stored += 1;
            }
            published.last_sequence = published.last_sequence.max(ack.sequence);
        }
        Err(e) => published.failed.push((id, e.to_string())),
    }
}
