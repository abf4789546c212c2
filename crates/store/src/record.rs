//! The on-disk record of one event, versioned apart from the public API.
//!
//! Record bytes, version 1:
//!
//! ```text
//! 0x01 | record_time: i64 microseconds since the Unix epoch, big-endian | event
//! ```
//!
//! where `event` is the protobuf encoding of the event's canonical `lotline.v1.Event`
//! (normalised decimals, canonical unit symbols, maps in key order), so the same
//! event always has the same bytes. These bytes are what a duplicate is compared
//! against and what the Merkle tree will hash.

use chrono::{DateTime, Utc};
use lotline_domain::Event;
use lotline_proto::convert::{event_from_wire, event_to_wire};
use lotline_proto::v1;
use prost::Message;

use crate::error::StoreError;

pub const RECORD_VERSION: u8 = 1;

/// One stored event with what lotline added.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_time: DateTime<Utc>,
    /// The canonical protobuf bytes of the event.
    pub event_bytes: Vec<u8>,
}

impl Record {
    pub fn new(record_time: DateTime<Utc>, event: &Event) -> Self {
        Record {
            record_time,
            event_bytes: canonical_bytes(event),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.event_bytes.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.record_time.timestamp_micros().to_be_bytes());
        out.extend_from_slice(&self.event_bytes);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or_else(|| StoreError::Corrupt("empty record".into()))?;
        if version != RECORD_VERSION {
            return Err(StoreError::Corrupt(format!(
                "unknown record version {version}"
            )));
        }
        if rest.len() < 8 {
            return Err(StoreError::Corrupt("record too short".into()));
        }
        let (time, event) = rest.split_at(8);
        let micros = i64::from_be_bytes(
            time.try_into()
                .map_err(|_| StoreError::Corrupt("record time".into()))?,
        );
        let record_time = DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| StoreError::Corrupt(format!("record time {micros} out of range")))?;
        Ok(Record {
            record_time,
            event_bytes: event.to_vec(),
        })
    }

    pub fn event(&self) -> Result<Event, StoreError> {
        let wire = v1::Event::decode(self.event_bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("stored event does not decode: {e}")))?;
        event_from_wire(&wire)
            .map_err(|e| StoreError::Corrupt(format!("stored event is invalid: {e}")))
    }

    pub fn wire_event(&self) -> Result<v1::Event, StoreError> {
        v1::Event::decode(self.event_bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("stored event does not decode: {e}")))
    }
}

/// The canonical protobuf bytes of an event.
pub fn canonical_bytes(event: &Event) -> Vec<u8> {
    event_to_wire(event).encode_to_vec()
}
