//! The service's error vocabulary: what a door tells its caller. Each kind maps onto one gRPC
//! code (and, with the HTTP door, one problem type) in the door's single mapping.

use lotline_domain::{Invalid, RejectKind};
use lotline_store::StoreError;

use crate::intake::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A request exceeds a limit the caller can respect (batch size, names per request).
    #[error("{message}")]
    LimitExceeded {
        /// The request field over the limit.
        field: &'static str,
        limit: usize,
        message: String,
    },
    /// The caller has no usable credential (none, bad, expired, revoked).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's credential does not give the right it needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// What the request names is not there.
    #[error("{0}")]
    NotFound(String),
    /// What the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A position beyond the end of the log.
    #[error("{what}: {asked} is beyond the log, which has {size} entries")]
    BeyondLog {
        what: &'static str,
        asked: u64,
        size: u64,
    },
    /// A single recorded event was refused (batches answer rejections as outcomes instead).
    #[error("{reason}")]
    Rejected { kind: RejectKind, reason: String },
    /// Writes are refused: the store failed its integrity check.
    #[error(
        "writes are refused: the store failed its integrity check ({0}); reads and proofs still work"
    )]
    WritesRefused(String),
    /// The caller already has as many questions running as it may (`serve
    /// --max-reads-per-caller`): it should wait for one to finish.
    #[error("{0}")]
    Busy(String),
    /// The caller's deadline passed before the answer was ready; the work stopped.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// lotline is starting, or its store could not be opened.
    #[error("{0}")]
    NotReady(String),
    /// Writes cannot be taken now; the reason says what to do.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// lotline itself failed (a task panicked, a stored record is missing).
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl ServiceError {
    /// A store failure as the caller should see it: a read stopped by the caller's deadline is
    /// the caller's deadline, not a storage failure.
    pub fn from_store(e: StoreError) -> Self {
        match e {
            StoreError::Deadline => ServiceError::DeadlineExceeded(
                "the deadline passed before the answer was ready; the query stopped (ask for \
                 less, or allow more time)"
                    .into(),
            ),
            e => ServiceError::Store(e),
        }
    }
}

impl From<Invalid> for ServiceError {
    fn from(e: Invalid) -> Self {
        ServiceError::InvalidArgument {
            field: e.field,
            reason: e.reason,
        }
    }
}
