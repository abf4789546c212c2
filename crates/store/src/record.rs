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
//!
//! How a record is kept on disk ([`stored_form`]) may differ from those bytes: a record of
//! [`COMPRESS_FROM`] bytes or more (an imported event, which keeps its EPCIS form) is kept as
//!
//! ```text
//! 0x02 | length of the version 1 bytes: u32, big-endian | zstd frame of the version 1 bytes
//! ```
//!
//! compressed with [`DICTIONARY_2`], when that is smaller. Reading gives the version 1 bytes
//! back exactly ([`leaf_bytes`]), so leaves, proofs and roots do not depend on how a record is
//! kept, and a record kept either way (or by an earlier release) reads the same.
//!
//! Consecutive records written in one batch are kept together, under the key of the first
//! ([`stored_block`]):
//!
//! ```text
//! 0x03 | count: u8 (2 to 16) | length of what the frame holds: u32, big-endian
//!      | zstd frame of (length: u32, big-endian | version 1 bytes) for each record
//! ```
//!
//! compressed with the same dictionary: records of one chain share most of their words, so a
//! block compresses to about a third of what its records do one by one.

use chrono::{DateTime, Utc};
use lotline_domain::Event;
use lotline_record::{decode_event, encode_event};

use crate::error::StoreError;

pub const RECORD_VERSION: u8 = 1;

/// The first byte of a record kept compressed.
const COMPRESSED: u8 = 2;

/// The first byte of several consecutive records kept together.
const BLOCK: u8 = 3;

/// At most this many records are kept in one block, so reading one record decompresses at
/// most fifteen others.
pub const BLOCK_RECORDS: usize = 16;

/// A block is closed once its records hold this many bytes (a record of an imported event is
/// about 1.2 kB; a block holds one large record or a few).
pub const BLOCK_BYTES: usize = 32 * 1024;

/// Records this long or longer are compressed when that saves space (native events are
/// shorter and are kept as they are).
pub const COMPRESS_FROM: usize = 384;

/// zstd's level: the fastest, which on records already gains most of what higher levels do.
const LEVEL: i32 = 1;

/// The raw-content zstd dictionary of records kept as `0x02`: the words EPCIS documents,
/// GS1 identifiers and lotline's own extensions repeat in every record. Records kept with it
/// need it as long as they exist: never change it; a new dictionary is a new first byte.
pub const DICTIONARY_2: &[u8] = concat!(
    "ni:///sha-256;?ver=CBV2.0 urn:uuid: urn:epcglobal:cbv:bt: urn:epc:id:sscc: ",
    "urn:epc:id:sgtin: urn:epc:id:sgln: urn:epc:id:pgln: urn:epc:class:lgtin: ",
    "https://id.gs1.org/00/ https://id.gs1.org/414/ https://id.gs1.org/417/ ",
    "https://id.gs1.org/01/ /10/ /21/ /254/ ",
    r#"{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"lotline":"https://ns.lotline.dev/epcis/"}],"#,
    r#""https://gs1.github.io/EPCIS/epcis-context.jsonld","#,
    r#""type":"AggregationEvent","parentID":"","childEPCs":[],"childQuantityList":[],"#,
    r#""type":"TransactionEvent","bizTransactionList":[{"type":"https://ref.gs1.org/cbv/BTT-inv","bizTransaction":"","#,
    r#""https://ref.gs1.org/cbv/BTT-po","https://ref.gs1.org/cbv/BTT-desadv","#,
    r#""type":"TransformationEvent","transformationID":"","inputEPCList":[],"outputEPCList":[],"#,
    r#""inputQuantityList":[{"epcClass":"","quantity":,"uom":"KGM"}],"outputQuantityList":[{"epcClass":"","#,
    r#""sourceList":[{"type":"https://ref.gs1.org/cbv/SDT-owning_party","source":""}],"#,
    r#""destinationList":[{"type":"https://ref.gs1.org/cbv/SDT-owning_party","destination":""}],"#,
    r#""https://ref.gs1.org/cbv/SDT-possessing_party","https://ref.gs1.org/cbv/SDT-location","#,
    r#""certificationInfo":"","sensorElementList":[],"errorDeclaration":{"declarationTime":"","reason":""},"#,
    r#""https://ref.gs1.org/cbv/BizStep-receiving","https://ref.gs1.org/cbv/BizStep-shipping","#,
    r#""https://ref.gs1.org/cbv/BizStep-transforming","https://ref.gs1.org/cbv/BizStep-packing","#,
    r#""https://ref.gs1.org/cbv/BizStep-inspecting","https://ref.gs1.org/cbv/BizStep-storing","#,
    r#""https://ref.gs1.org/cbv/BizStep-accepting","https://ref.gs1.org/cbv/BizStep-harvesting","#,
    r#""https://ref.gs1.org/cbv/Disp-in_transit","https://ref.gs1.org/cbv/Disp-in_progress","#,
    r#""https://ref.gs1.org/cbv/Disp-active","https://ref.gs1.org/cbv/Disp-completeness_verified","#,
    r#"epcis:context epcis:hash lotline:recordedBy epcis:event "#,
    r#"{"type":"ObjectEvent","eventTime":"T00:00:00.000Z","eventTimeZoneOffset":"+00:00","recordTime":"","#,
    r#""eventID":"ni:///sha-256;","epcList":[],"action":"ADD","action":"OBSERVE","#,
    r#""bizStep":"https://ref.gs1.org/cbv/BizStep-commissioning","disposition":"https://ref.gs1.org/cbv/Disp-active","#,
    r#""readPoint":{"id":"https://id.gs1.org/414/"},"bizLocation":{"id":"urn:epc:id:sgln:"},"#,
    r#""quantityList":[{"epcClass":"urn:epc:class:lgtin:","quantity":,"uom":"KGM"}]}"#,
)
.as_bytes();

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// How the version 1 bytes `record` are kept on disk: compressed when that pays, else as they
/// are.
pub fn stored_form(record: Vec<u8>) -> Vec<u8> {
    if record.len() < COMPRESS_FROM || record.len() > u32::MAX as usize {
        return record;
    }
    match compress(&record) {
        // Kept compressed only when it saves at least an eighth.
        Some(frame) if frame.len() + 5 < record.len() - record.len() / 8 => {
            let mut out = Vec::with_capacity(5 + frame.len());
            out.push(COMPRESSED);
            out.extend_from_slice(&(record.len() as u32).to_be_bytes());
            out.extend_from_slice(&frame);
            out
        }
        _ => record,
    }
}

fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY_2).ok();
        }
        cell.as_mut().and_then(|c| c.compress(raw).ok())
    })
}

/// No stored value ever holds more than this once decompressed (a block's records are at most
/// [`BLOCK_BYTES`] and one record more), so a damaged length cannot ask for gigabytes.
const MAX_DECOMPRESSED: usize = 64 << 20;

fn decompress(frame: &[u8], len: usize) -> Result<Vec<u8>, StoreError> {
    if len > MAX_DECOMPRESSED {
        return Err(StoreError::Corrupt(format!(
            "a compressed record claims {len} bytes"
        )));
    }
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(
                zstd::bulk::Decompressor::with_dictionary(DICTIONARY_2).map_err(|e| {
                    StoreError::Backend(format!("cannot load the record dictionary: {e}"))
                })?,
            );
        }
        let decompressor = cell.as_mut().expect("set above");
        let bytes = decompressor
            .decompress(frame, len)
            .map_err(|e| StoreError::Corrupt(format!("compressed record: {e}")))?;
        if bytes.len() != len {
            return Err(StoreError::Corrupt(format!(
                "a compressed record holds {} bytes, not {len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    })
}

/// How consecutive version 1 records (2 to [`BLOCK_RECORDS`] of them) are kept on disk as one
/// block, under the key of the first. `None` when they cannot be (one record, too many, or
/// compression unavailable): keep each with [`stored_form`].
pub fn stored_block(records: &[Vec<u8>]) -> Option<Vec<u8>> {
    if !(2..=BLOCK_RECORDS).contains(&records.len()) {
        return None;
    }
    let total: usize = records.iter().map(|r| 4 + r.len()).sum();
    let total_len = u32::try_from(total).ok()?;
    let mut raw = Vec::with_capacity(total);
    for record in records {
        raw.extend_from_slice(&u32::try_from(record.len()).ok()?.to_be_bytes());
        raw.extend_from_slice(record);
    }
    let frame = compress(&raw)?;
    let mut out = Vec::with_capacity(6 + frame.len());
    out.push(BLOCK);
    out.push(records.len() as u8);
    out.extend_from_slice(&total_len.to_be_bytes());
    out.extend_from_slice(&frame);
    Some(out)
}

/// How many records a value under a log key holds: a block's count, else one.
pub fn stored_count(stored: &[u8]) -> u64 {
    match stored {
        [BLOCK, count, ..] => u64::from(*count),
        _ => 1,
    }
}

/// The version 1 bytes of every record a value under a log key holds, in sequence order.
pub fn unpack(stored: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let Some((&BLOCK, rest)) = stored.split_first() else {
        return Ok(vec![leaf_bytes(stored)?.into_owned()]);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("block of records: {what}"));
    let (&count, rest) = rest.split_first().ok_or_else(|| corrupt("no count"))?;
    let (len, frame) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("no length"))?;
    let count = usize::from(count);
    if !(2..=BLOCK_RECORDS).contains(&count) {
        return Err(corrupt(&format!("{count} records")));
    }
    let raw = decompress(frame, u32::from_be_bytes(*len) as usize)?;
    let mut records = Vec::with_capacity(count);
    let mut rest = &raw[..];
    while let Some((len, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        if after.len() < len || after.first() != Some(&RECORD_VERSION) {
            return Err(corrupt("a record that is not a version 1 record"));
        }
        records.push(after[..len].to_vec());
        rest = &after[len..];
    }
    if !rest.is_empty() || records.len() != count {
        return Err(corrupt(&format!(
            "{} records where the header says {count}",
            records.len()
        )));
    }
    Ok(records)
}

/// The version 1 bytes of one record as kept on disk (not a block): the leaf the Merkle tree
/// hashes.
pub fn leaf_bytes(stored: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    match stored.split_first() {
        Some((&BLOCK, _)) => Err(StoreError::Corrupt(
            "a block of records where one record was expected".into(),
        )),
        Some((&COMPRESSED, rest)) => {
            let (len, frame) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| StoreError::Corrupt("compressed record too short".into()))?;
            let len = u32::from_be_bytes(*len) as usize;
            let bytes = decompress(frame, len)?;
            if bytes.first() != Some(&RECORD_VERSION) {
                return Err(StoreError::Corrupt(
                    "compressed record does not hold a version 1 record".into(),
                ));
            }
            Ok(std::borrow::Cow::Owned(bytes))
        }
        _ => Ok(std::borrow::Cow::Borrowed(stored)),
    }
}

/// The record time and the event bytes of version 1 record bytes, borrowed.
pub fn split_record(bytes: &[u8]) -> Result<(DateTime<Utc>, &[u8]), StoreError> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt("empty record".into()))?;
    if version != RECORD_VERSION {
        return Err(StoreError::Corrupt(format!(
            "unknown record version {version}"
        )));
    }
    let (time, event) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("record too short".into()))?;
    let micros = i64::from_be_bytes(*time);
    let record_time = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("record time {micros} out of range")))?;
    Ok((record_time, event))
}

/// The event of version 1 record bytes, identifiers as they were stored, with its record time.
pub fn event_of_record(bytes: &[u8]) -> Result<(DateTime<Utc>, Event), StoreError> {
    let (record_time, event) = split_record(bytes)?;
    Ok((record_time, stored_event(event)?))
}

/// The event of a record's event bytes; bytes that do not decode are corrupt.
fn stored_event(bytes: &[u8]) -> Result<Event, StoreError> {
    decode_event(bytes).map_err(|e| StoreError::Corrupt(format!("stored event {e}")))
}

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

    /// Reads a record as kept on disk (either form).
    pub fn decode(stored: &[u8]) -> Result<Self, StoreError> {
        let bytes = leaf_bytes(stored)?;
        let (record_time, event) = split_record(&bytes)?;
        Ok(Record {
            record_time,
            event_bytes: event.to_vec(),
        })
    }

    /// The event, identifiers as they were stored.
    pub fn event(&self) -> Result<Event, StoreError> {
        stored_event(&self.event_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of(extension: &str) -> Vec<u8> {
        let mut bytes = vec![RECORD_VERSION];
        bytes.extend_from_slice(&1_700_000_000_000_000i64.to_be_bytes());
        bytes.extend_from_slice(extension.as_bytes());
        bytes
    }

    #[test]
    fn a_long_record_is_kept_compressed_and_reads_back_byte_for_byte() {
        let epcis = r#"{"type":"ObjectEvent","eventTime":"2026-03-01T08:00:00.000Z","eventTimeZoneOffset":"+07:00","action":"ADD","bizStep":"https://ref.gs1.org/cbv/BizStep-commissioning","quantityList":[{"epcClass":"urn:epc:class:lgtin:6180123.011111.H-251014-A","quantity":312,"uom":"KGM"}],"readPoint":{"id":"urn:epc:id:sgln:6180123.00102.0"},"sourceList":[{"type":"https://ref.gs1.org/cbv/SDT-owning_party","source":"urn:epc:id:pgln:6180123.00001"}]}"#;
        let record = record_of(epcis);
        let stored = stored_form(record.clone());
        assert_eq!(stored[0], COMPRESSED);
        assert!(
            stored.len() * 2 < record.len(),
            "{} of {}",
            stored.len(),
            record.len()
        );
        assert_eq!(&*leaf_bytes(&stored).unwrap(), &record[..]);
        let decoded = Record::decode(&stored).unwrap();
        assert_eq!(decoded.encode(), record);
        // A short record, or one that does not compress, is kept as it is.
        let short = record_of("h-1");
        assert_eq!(stored_form(short.clone()), short);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: String = (0..600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        let noisy = record_of(&noise);
        assert_eq!(stored_form(noisy.clone()), noisy);
        // A damaged compressed record is corrupt, never some other record.
        let mut damaged = stored.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 0x55;
        assert!(leaf_bytes(&damaged).is_err() || *leaf_bytes(&damaged).unwrap() != record[..]);
        assert!(matches!(
            leaf_bytes(&stored[..4]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
