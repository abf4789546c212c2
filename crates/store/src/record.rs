//! The on-disk record of one event, versioned apart from the public API.
//!
//! Record bytes, version 1:
//!
//! ```text
//! 0x01 | record_time: i64 microseconds since the Unix epoch, big-endian | event
//! ```
//!
//! where `event` is the event's canonical bytes in the record schema (`lotline-record`):
//! the same event always has the same bytes. The whole record is what the Merkle
//! tree hashes; the event bytes are what a duplicate is compared against.

use chrono::{DateTime, Utc};
use lotline_domain::Event;
use lotline_record::{decode_event, encode_event};

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
            event_bytes: encode_event(event),
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

    /// The event, identifiers as they were stored.
    pub fn event(&self) -> Result<Event, StoreError> {
        decode_event(&self.event_bytes)
            .map_err(|e| StoreError::Corrupt(format!("stored event {e}")))
    }
}
