//! EPCIS 2.0 and GS1 identifiers for lotline: the pieces of EPCIS interoperability that do not
//! depend on lotline's own event model.
//!
//! - [`gs1`] (lotline-domain's, re-exported here) parses GS1 keys (GTIN, GLN, SSCC) with their mod-10 check digits, EPC URNs and GS1
//!   Digital Link URIs, and turns every form of one identifier into one canonical Digital Link on
//!   `https://id.gs1.org`, so that a lot written as an LGTIN URN in one event and as a Digital Link
//!   in another is the same lot ([`gs1::canonical_lot_id`]).
//! - [`hash`] computes the CBV 2.0 EPCIS event hash (`ni:///sha-256;…?ver=CBV2.0`) exactly as GS1's
//!   reference implementation (the `epcis-event-hash-generator` package) does, quirks included.
//! - [`json`] is an order-preserving JSON value: the reference hash depends on the order of keys
//!   inside `bizTransactionList`, `sourceList` and `destinationList` elements, which
//!   `serde_json::Value` does not keep.
//!
//! - [`stream`] reads a document of any size in bounded memory: its context, header and events one
//!   at a time.
//! - [`import`] maps EPCIS events and master data onto lotline's domain events, and [`export`]
//!   maps them back, as docs/epcis.md describes.
//!
//! No network, no tokio: readers and writers are `std::io`. Depends on `lotline-domain` only.

pub mod export;
pub mod hash;
pub mod import;
pub mod json;
mod memo;
pub mod names;
pub mod query;
pub mod stream;

pub use hash::{Context, EventHash, HashError, event_hash, pre_hash_string};
pub use json::Json;
pub use lotline_domain::gs1;
pub use lotline_domain::gs1::{Gs1Error, Gs1Id, canonical_lot_id};
