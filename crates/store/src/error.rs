//! The store's error vocabulary.

/// Why a store operation failed. Rejections of user input are not errors: they
/// are [`crate::Outcome::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed: an IO error, corruption reported at open, ...
    #[error("storage backend failed: {0}")]
    Sled(#[from] sled::Error),
    /// The backend cannot be used (the data dir is locked by another process, the writer thread
    /// could not start, the writer gave up after a failure); the message says which.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A stored record or index entry could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A listing's cursor that no page of that listing gave.
    #[error("cursor {0:?} is not one this listing gave")]
    BadCursor(String),
    /// A record time given from outside is ahead of this node's clock by more than the
    /// writer's margin: nothing is stamped until the clocks agree.
    #[error("clocks disagree: {0}")]
    Clock(String),
    /// The reader's deadline passed before the read was done (nobody waits for the answer).
    #[error("the deadline passed before the answer was ready")]
    Deadline,
    /// The writer has stopped (shutting down or failed).
    #[error("the store writer is not running")]
    WriterStopped,
}
