//! The store's error vocabulary.

/// Why a store operation failed. Rejections of user input are not errors: they
/// are [`crate::Outcome::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (sled) failed: IO error, corruption reported at open, ...
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A stored record or index entry could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A service the write path needs is not there now (the NATS server, the
    /// stream consumer); the message says which and what to do.
    #[error("{0}")]
    Unavailable(String),
    /// A listing's cursor that no page of that listing gave.
    #[error("cursor {0:?} is not one this listing gave")]
    BadCursor(String),
    /// The writer has stopped (shutting down or failed).
    #[error("the store writer is not running")]
    WriterStopped,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
