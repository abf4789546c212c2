//! The intake's error vocabulary.

/// An async-nats error: each JetStream request has its own error type.
pub type NatsSource = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `--nats-url` names no usable server; the message says why.
    #[error("cannot connect to NATS at {0}")]
    BadUrl(String),
    /// The NATS server cannot be reached.
    #[error("cannot connect to NATS at {servers}: {source}")]
    Connect {
        /// The servers tried, secrets replaced by `***`.
        servers: String,
        #[source]
        source: async_nats::ConnectError,
    },
    /// JetStream refused or failed a request (stream, consumer, pull).
    #[error("NATS JetStream: {what}: {source}")]
    JetStream {
        /// What was asked: `stream NAME`, `consumer NAME`, `pull request`.
        what: String,
        #[source]
        source: NatsSource,
    },
    /// The stream, or this node's NATS settings, do not fit what lotline needs; the message says
    /// what to do.
    #[error("NATS JetStream: {0}")]
    Unusable(String),
    /// The store failed; the messages were not acknowledged.
    #[error(transparent)]
    Store(#[from] lotline_store::StoreError),
}

impl IngestError {
    /// A failed JetStream request about `what`.
    pub fn jetstream(what: impl Into<String>, source: impl Into<NatsSource>) -> Self {
        IngestError::JetStream {
            what: what.into(),
            source: source.into(),
        }
    }
}
