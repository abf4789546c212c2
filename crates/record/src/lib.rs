//! lotline's on-disk record format, versioned apart from the public API.
//!
//! A record's event is the protobuf encoding of `lotline.record.v1.Event`
//! (`proto/lotline/record/v1/record.proto`) in canonical form: normalised decimals, canonical unit
//! symbols, maps in key order, so the same event always has the same bytes. Those bytes are what
//! a duplicate is compared against and what the Merkle tree hashes, so they never change for an
//! event already stored.
//!
//! Reading a record decodes it as written: identifiers are not canonicalised again (they were when
//! the event was accepted), so a change to how lotline parses identifiers cannot rename a stored
//! lot. The public `lotline.v1.Event` declares the same messages with the same field numbers, so
//! its encoding of an event is the record's bytes (`lotline-proto` tests that the two schemas
//! agree).
//!
//! Depends on the domain and prost only: no wire (API) types, no storage.

mod event;

use lotline_domain::{Event, Invalid};
use prost::Message;

pub use event::{
    custody_number, decimal_text, event_from_pb, event_to_pb, quantity_to_pb, role_from_number,
    role_number, time_text,
};

/// The generated record messages (never edited).
#[allow(clippy::all, missing_docs, unused_qualifications)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/lotline.record.v1.rs"));
}

/// Why bytes are not a record's event.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a protobuf `Event`.
    #[error("does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The message decodes but a field does not parse.
    #[error("is invalid: {0}")]
    Invalid(#[from] Invalid),
}

/// The canonical bytes of an event: what a record stores and the Merkle tree hashes.
pub fn encode_event(event: &Event) -> Vec<u8> {
    event_to_pb(event).encode_to_vec()
}

/// The event canonical bytes hold, identifiers as written.
pub fn decode_event(bytes: &[u8]) -> Result<Event, RecordError> {
    Ok(event_from_pb(pb::Event::decode(bytes)?)?)
}

/// One quarantined input: a rejected event as it was received.
pub type Quarantined = pb::Quarantined;

/// The bytes of a quarantine entry.
pub fn encode_quarantined(entry: &Quarantined) -> Vec<u8> {
    entry.encode_to_vec()
}

/// A quarantine entry from its bytes.
pub fn decode_quarantined(bytes: &[u8]) -> Result<Quarantined, prost::DecodeError> {
    Quarantined::decode(bytes)
}
