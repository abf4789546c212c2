//! Publishing events to the stream with many acks in flight: `lotline publish`,
//! `lotline bench ingest` and anyone embedding lotline's publisher.

use std::future::IntoFuture;

use async_nats::jetstream;
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lotline_proto::v1;
use prost::Message;

use crate::message::{CONTENT_TYPE, JSON, MSG_ID, REPLY_TO, msg_id_of};
use crate::setup::MAX_ACKS_IN_FLIGHT;
use crate::subject::events_subject;

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
    events_subject(root, chain, &event.org)
}

/// What the stream said about published messages.
#[derive(Debug, Default)]
pub struct Published {
    /// Stored in the stream as new messages.
    pub stored: u64,
    /// Dropped by the stream as re-sends within its duplicate window.
    pub duplicates: u64,
    /// Not confirmed (event id, why): publishing them again is safe.
    pub failed: Vec<(String, String)>,
    /// The highest stream sequence confirmed.
    pub last_sequence: u64,
}

/// Publishes `messages` in order, keeping up to `in_flight` acks outstanding
/// (at most [`MAX_ACKS_IN_FLIGHT`]),
/// and returns once every ack is in (or failed). `progress` sees each ack.
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
        match jetstream
            .publish_with_headers(message.subject, message.headers, message.payload)
            .await
        {
            Ok(ack) => {
                let id = message.event_id;
                let ack = ack.into_future();
                pending.push(async move { (id, ack.await) });
            }
            Err(e) => published.failed.push((message.event_id, e.to_string())),
        }
    }
    while let Some((id, ack)) = pending.next().await {
        settle(&mut published, id, ack);
        progress(&published);
    }
    published
}

fn settle(
    published: &mut Published,
    id: String,
    ack: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) {
    match ack {
        Ok(ack) => {
            if ack.duplicate {
                published.duplicates += 1;
            } else {
                published.stored += 1;
            }
            published.last_sequence = published.last_sequence.max(ack.sequence);
        }
        Err(e) => published.failed.push((id, e.to_string())),
    }
}
