//! The one mapping from lotline errors to gRPC status codes.

use lotline_store::{RejectKind, StoreError};
use tonic::Status;

/// A store failure: UNAVAILABLE when it may pass (writer stopping, IO), INTERNAL
/// when stored data is corrupt.
pub fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::WriterStopped => {
            Status::unavailable("lotline is shutting down; retry on another node or later")
        }
        StoreError::Backend(m) => Status::unavailable(format!("storage failed: {m}")),
        StoreError::Unavailable(m) => Status::unavailable(m),
        StoreError::Corrupt(m) => Status::internal(format!("stored data is corrupt: {m}")),
        StoreError::BadCursor(c) => {
            Status::invalid_argument(format!("cursor: {c:?} is not one this listing gave"))
        }
    }
}

/// A rejected event, answered to a single Record call.
pub fn reject_status(kind: RejectKind, reason: &str) -> Status {
    match kind {
        RejectKind::Invalid => Status::invalid_argument(reason.to_string()),
        RejectKind::UnregisteredOrg => Status::failed_precondition(reason.to_string()),
        RejectKind::Conflict => Status::already_exists(reason.to_string()),
    }
}

/// A batch over the per-request limit.
pub fn batch_too_large(events: usize, max: usize) -> Status {
    Status::invalid_argument(format!(
        "events: a batch holds at most {max} events, got {events}"
    ))
}

/// Writes refused because the store failed its integrity check.
pub fn writes_refused(reason: &str) -> Status {
    Status::failed_precondition(format!(
        "writes are refused: the store failed its integrity check ({reason}); reads and proofs still work"
    ))
}

/// A tree size or leaf beyond the log.
pub fn beyond_log(what: &str, asked: u64, size: u64) -> Status {
    Status::out_of_range(format!(
        "{what}: {asked} is beyond the log, which has {size} entries"
    ))
}
