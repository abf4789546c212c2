//! lotline's append-only event log.
//!
//! Every accepted event becomes a record under the next sequence number; derived
//! indexes (event id, lot, org, corrections, master data, unknown lots) are
//! written in the same atomic batch and can be rebuilt from the log alone. One
//! [`Writer`] thread owns all writes and acknowledges a batch only after the
//! backend has flushed it; reads go straight to the backend and never wait on it.
//!
//! Storage sits behind the ordered key-value [`Backend`] trait: [`SledBackend`]
//! (sled 0.34.7) in production and [`MemoryBackend`], its in-memory twin, in tests.

mod backend;
mod error;
mod keys;
mod log;
mod masterdata;
mod record;
mod snapshot;
mod store;
#[cfg(test)]
mod test_input;
mod tree;
mod writer;

pub use backend::{Backend, MemoryBackend, SledBackend, WriteBatch};
pub use error::StoreError;
pub use lotline_domain::{Outcome, RejectKind};
pub use masterdata::{ByGln, MasterFilter, MasterKind, MasterPage};
pub use record::{RECORD_VERSION, Record};
pub use snapshot::Snapshot;
pub use store::{
    EventFilter, INDEX_VERSION, Page, PrefixFootprint, Rejection, StartupCheck, Store, StoredEvent,
    UnknownLot,
};
pub use tree::{LEAF_GROUP, TreeCheck};
pub use writer::{
    APPLY_SECONDS, BATCH_EVENTS, DEFAULT_FUTURE_MARGIN, EVENTS_TOTAL, FLUSH_SECONDS, Queued,
    Submission, Writer, WriterConfig, WriterDone, WriterStats,
};
