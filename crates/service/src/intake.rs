//! Intake: events as callers send them (protobuf or proto3 JSON) become [`Submission`]s, decoded
//! and checked on their own; a [`Recorder`] takes them to the log and answers each one's
//! [`Outcome`]. Whatever is wrong with an input becomes a submission the writer rejects, so it is
//! quarantined with its reason and the bytes as received.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lotline_domain::{Event, Invalid, Outcome, validate};
use lotline_proto::convert::{event_from_bytes, event_from_wire};
use lotline_proto::v1;
use lotline_store::{StoreError, Submission, Writer};
use prost::Message;

use crate::access::Identity;

/// A boxed future, for [`Recorder`] (which is used as a trait object).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a recorder could not take a batch. Rejections of events are not errors: they are
/// [`Outcome::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writes cannot be taken now (shutting down, the stream's consumer is down, the stream did
    /// not confirm a publish); the reason says what to do.
    #[error("{0}")]
    Unavailable(String),
    /// An event is in the stream but this node has not applied it in time; it will be.
    #[error(
        "event {event_id:?} is in the stream at sequence {seq} but this node has not applied it within {waited:?}; it will be, and sending it again is safe"
    )]
    NotApplied {
        event_id: String,
        seq: u64,
        waited: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where writes go: straight to the store's [`Writer`] (embedded mode), or through the NATS
/// stream the writer consumes (NATS mode, `lotline-ingest`).
pub trait Recorder: Send + Sync + 'static {
    /// Takes events in order and returns once they have their place (behind everything taken
    /// before), with what answers each one's outcome once it is durably applied on this node.
    /// `by`: the authenticated caller that may record them (checked already), which a recorder
    /// writing through a shared stream passes on, so that every node can decide the events
    /// again from the stream alone.
    fn queue(
        &self,
        items: Vec<Submission>,
        by: Option<Arc<Identity>>,
    ) -> BoxFuture<'_, Result<QueuedOutcomes, WriteError>>;

    /// Why writes are refused right now, if they are.
    fn refusal(&self) -> Option<String>;
}

/// The outcomes of events a [`Recorder`] has queued, once they are durably applied.
pub type QueuedOutcomes = BoxFuture<'static, Result<Vec<Outcome>, WriteError>>;

impl Recorder for Writer {
    fn queue(
        &self,
        items: Vec<Submission>,
        _by: Option<Arc<Identity>>,
    ) -> BoxFuture<'_, Result<QueuedOutcomes, WriteError>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(Box::pin(std::future::ready(Ok(Vec::new()))) as QueuedOutcomes);
            }
            let queued = Writer::queue(self, items).await?;
            Ok(Box::pin(async move { Ok(queued.outcomes().await?) }) as QueuedOutcomes)
        })
    }

    fn refusal(&self) -> Option<String> {
        Writer::refusal(self)
    }
}

/// The default largest event, in bytes as received (protobuf or JSON): 256 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

static MAX_EVENT_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_EVENT_BYTES);

/// Sets the largest event this process takes (`serve --max-event-bytes`). In NATS mode every
/// node of a stream must use the same limit, or they decide the same message differently.
pub fn set_max_event_bytes(limit: usize) {
    MAX_EVENT_BYTES.store(limit.max(1), Ordering::Relaxed);
}

/// The largest event this process takes, in bytes.
pub fn max_event_bytes() -> usize {
    MAX_EVENT_BYTES.load(Ordering::Relaxed)
}

/// Why an input of `len` bytes is too large to parse, if it is.
fn too_large(len: usize) -> Option<String> {
    let limit = max_event_bytes();
    (len > limit).then(|| format!("{len} bytes is more than the limit of {limit} bytes per event"))
}

/// A wire event, converted and validated; `payload` is the input as received.
fn checked(wire: &v1::Event, payload: Vec<u8>, source: &str) -> Submission {
    submission(wire, event_from_wire(wire), payload, source)
}

/// [`checked`] where the payload is the message's own protobuf bytes: decoded, not encoded again.
fn checked_protobuf(wire: &v1::Event, payload: Vec<u8>, source: &str) -> Submission {
    submission(wire, event_from_bytes(&payload), payload, source)
}

/// The submission of a wire event as converted (or why not), validated.
fn submission(
    wire: &v1::Event,
    event: Result<Event, Invalid>,
    payload: Vec<u8>,
    source: &str,
) -> Submission {
    let event = event.and_then(|e| validate(&e).map(|()| e));
    let mut submission = Submission::new(event, payload, source);
    submission.event_id = wire.event_id.clone();
    submission.org = wire.org.clone();
    submission
}

/// A protobuf event as decoded by a door.
pub fn from_wire(wire: &v1::Event, source: &str) -> Submission {
    if let Some(reason) = too_large(wire.encoded_len()) {
        let mut submission = invalid("event", reason, &[], source);
        submission.event_id = wire.event_id.clone();
        submission.org = wire.org.clone();
        return submission;
    }
    checked_protobuf(wire, wire.encode_to_vec(), source)
}

/// The bytes of a protobuf `lotline.v1.Event` as they came in a batch of encoded events (the
/// importer's `RecordStream`): decoded once, straight into the domain event, where [`from_wire`]
/// takes the message gRPC decoded and encodes it again to decode it. It decides as
/// [`from_wire`] does on the message the bytes hold (the record schema is `lotline.v1.Event`'s,
/// so decoding the bytes or their canonical form gives the same event); the payload a rejection
/// keeps is the bytes as received. An event too large, or that does not convert, goes through
/// [`from_wire`] for its answer; bytes that are no event at all are rejected as
/// [`from_protobuf`] rejects them.
pub fn from_encoded(bytes: &[u8], source: &str) -> Submission {
    if too_large(bytes.len()).is_none()
        && let Ok(event) = event_from_bytes(bytes)
    {
        let (event_id, org) = (event.id.clone(), event.org.clone());
        let event = validate(&event).map(|()| event);
        let mut submission = Submission::new(event, bytes.to_vec(), source);
        submission.event_id = event_id;
        submission.org = org;
        return submission;
    }
    match v1::Event::decode(bytes) {
        Ok(wire) => from_wire(&wire, source),
        Err(_) => from_protobuf(bytes, source, ""),
    }
}

/// The bytes of a protobuf `lotline.v1.Event` (a NATS message); bytes that are not one become a
/// submission the writer rejects, naming `hint` as what to do instead.
pub fn from_protobuf(bytes: &[u8], source: &str, hint: &str) -> Submission {
    // Checked before parsing: the bytes are kept only up to the limit.
    if let Some(reason) = too_large(bytes.len()) {
        return invalid("payload", reason, &bytes[..max_event_bytes()], source);
    }
    match v1::Event::decode(bytes) {
        Ok(wire) => checked_protobuf(&wire, wire.encode_to_vec(), source),
        Err(e) => invalid(
            "payload",
            format!("not a protobuf lotline.v1.Event ({e}){hint}"),
            bytes,
            source,
        ),
    }
}

/// One event in the proto3 JSON mapping; text that is not an event becomes a submission the
/// writer rejects, keeping the text as sent.
pub fn from_json(text: &str, source: &str) -> Submission {
    if let Some(reason) = too_large(text.len()) {
        return invalid(
            "payload",
            reason,
            &text.as_bytes()[..max_event_bytes()],
            source,
        );
    }
    match serde_json::from_str::<v1::Event>(text) {
        Ok(wire) => checked(&wire, text.as_bytes().to_vec(), source),
        Err(e) => {
            let mut submission = invalid(
                "json",
                format!("not a lotline.v1.Event in proto3 JSON: {e}"),
                text.as_bytes(),
                source,
            );
            // Name the event and org if the text is at least a JSON object.
            let value = serde_json::from_str::<serde_json::Value>(text).ok();
            let field = |names: [&str; 2]| {
                value
                    .as_ref()
                    .and_then(|v| {
                        names
                            .iter()
                            .find_map(|n| v.get(*n)?.as_str().map(str::to_string))
                    })
                    .unwrap_or_default()
            };
            submission.event_id = field(["eventId", "event_id"]);
            submission.org = field(["org", "org"]);
            submission
        }
    }
}

/// A submission the writer rejects as invalid, keeping `payload` as received.
pub fn invalid(field: &str, reason: String, payload: &[u8], source: &str) -> Submission {
    Submission::new(Err(Invalid::new(field, reason)), payload.to_vec(), source)
}

/// Decodes and checks a batch off the threads that serve requests (validation, GeoJSON included,
/// is CPU work).
pub async fn decode_all<T: Send + 'static>(
    inputs: Vec<T>,
    submission: fn(&T) -> Submission,
) -> Result<Vec<Submission>, crate::ServiceError> {
    tokio::task::spawn_blocking(move || inputs.iter().map(submission).collect())
        .await
        .map_err(|e| crate::ServiceError::Internal(format!("validation task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_larger_than_the_limit_is_refused_before_it_is_parsed() {
        let big = format!(
            r#"{{"eventId":"big","org":"coop","extensions":{{"x":"{}"}}}}"#,
            "a".repeat(DEFAULT_MAX_EVENT_BYTES)
        );
        let s = from_json(&big, "test");
        let err = s.event.expect_err("too large");
        assert_eq!(err.field, "payload");
        assert!(
            err.reason.contains(&DEFAULT_MAX_EVENT_BYTES.to_string()),
            "{err}"
        );
        assert_eq!(
            s.payload.len(),
            DEFAULT_MAX_EVENT_BYTES,
            "kept up to the limit"
        );
        let s = from_protobuf(big.as_bytes(), "test", "");
        assert_eq!(s.event.expect_err("too large").field, "payload");
    }

    /// Decoding an event's bytes once decides as the message gRPC decoded does: the same event
    /// (GS1 lots in canonical form), the same refusal, the same id and org, for valid and
    /// invalid events, bytes in another field order with a field this release does not know,
    /// an event over the limit and bytes that are no event.
    #[test]
    fn an_encoded_event_is_decided_as_the_decoded_message_is() {
        use lotline_proto::build;
        let event =
            |id: &str, kind| build::event(id, "2026-03-01T08:00:00+07:00", "coop", "cocoa", kind);
        let mut with_extension = event(
            "h-ext",
            build::harvest("LOT-1", "plot-1", "wet cocoa beans", 420),
        );
        with_extension
            .extensions
            .insert("note".into(), "x".repeat(300));
        let mut too_large = event(
            "h-big",
            build::harvest("LOT-2", "plot-1", "wet cocoa beans", 1),
        );
        too_large
            .extensions
            .insert("note".into(), "y".repeat(DEFAULT_MAX_EVENT_BYTES));
        let events = [
            event(
                "reg",
                build::register_org("Coop", v1::OrgRole::Cooperative, "VN"),
            ),
            event(
                "h-1",
                build::harvest("LOT-1", "plot-1", "wet cocoa beans", 420),
            ),
            with_extension,
            event(
                "s-gs1",
                build::ship(
                    [("https://id.gs1.org/01/09506000134352/10/ABC?x=1", 5)],
                    "buyer",
                ),
            ),
            event(
                "h-blank",
                build::harvest("", "plot-1", "wet cocoa beans", 1),
            ),
            event("", build::harvest("LOT-3", "plot-1", "wet cocoa beans", 1)),
            v1::Event {
                event_id: "no-kind".into(),
                org: "coop".into(),
                ..Default::default()
            },
            too_large,
        ];
        let mut inputs: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
        // The harvest's kind before its header fields (a message's fields may come in any
        // order), then with a field no release has declared.
        let kind_only = v1::Event {
            kind: events[1].kind.clone(),
            ..Default::default()
        };
        let header_only = v1::Event {
            kind: None,
            ..events[1].clone()
        };
        let mut reordered = kind_only.encode_to_vec();
        reordered.extend(header_only.encode_to_vec());
        assert_ne!(reordered, events[1].encode_to_vec());
        inputs.push(reordered);
        let mut unknown = events[1].encode_to_vec();
        unknown.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
        inputs.push(unknown);
        inputs.push(vec![0xff, 0xff, 0x01]);
        inputs.push(Vec::new());
        let mut decided = 0;
        for bytes in &inputs {
            let once = from_encoded(bytes, "test");
            let expected = match v1::Event::decode(bytes.as_slice()) {
                Ok(wire) => from_wire(&wire, "test"),
                Err(_) => from_protobuf(bytes, "test", ""),
            };
            assert_eq!(once.event, expected.event, "{bytes:?}");
            assert_eq!(
                (&once.event_id, &once.org),
                (&expected.event_id, &expected.org)
            );
            decided += usize::from(once.event.is_ok());
        }
        assert!(decided >= 4, "only {decided} valid events among the inputs");
        let refused = from_encoded(&inputs[7], "test");
        assert!(
            refused.event.is_err(),
            "the event over the limit is refused"
        );
        assert_eq!(refused.event_id, "h-big");
        let harvest = from_encoded(&inputs[1], "test").event;
        assert!(harvest.is_ok(), "{harvest:?}");
        assert_eq!(
            from_encoded(&inputs[8], "test").event,
            harvest,
            "in another order"
        );
        assert_eq!(
            from_encoded(&inputs[9], "test").event,
            harvest,
            "a field this release does not know is left aside"
        );
    }
}
