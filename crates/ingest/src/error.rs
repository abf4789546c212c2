//! The intake's error vocabulary.

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The NATS server cannot be reached.
    #[error("cannot connect to NATS at {0}")]
    Connect(String),
    /// JetStream refused or failed a request (stream, consumer, publish).
    #[error("NATS JetStream: {0}")]
    Nats(String),
    /// The store failed; the messages were not acknowledged.
    #[error(transparent)]
    Store(#[from] lotline_store::StoreError),
}
