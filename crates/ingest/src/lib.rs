//! lotline's NATS JetStream intake.
//!
//! Producers publish events on `lotline.events.<chain>.<org>` (protobuf, or
//! proto3 JSON with `Content-Type: application/json`; `Nats-Msg-Id` =
//! `<org>.<event id>`) into the stream `LOTLINE_EVENTS`. Each lotline node consumes the whole
//! stream with its own durable pull consumer ([`Ingest`]): batches are decoded
//! and checked, appended by the store's single writer together with the stream
//! position, flushed, and only then acknowledged. Messages that can never be
//! stored are terminated, quarantined with their reason and bytes, and
//! announced on `lotline.rejected.<org>`. In NATS mode gRPC writes go through
//! the stream too ([`NatsRecorder`]), so every node applies every event at the
//! same place and their logs and Merkle roots are identical.

mod applied;
mod config;
mod consumer;
pub mod edge;
mod error;
pub mod message;
pub mod outcomes;
mod publish;
mod recorder;
mod setup;
pub mod subject;

pub use applied::{Applied, Seen};
pub use config::{ClientOptions, NatsConfig, STREAM, SUBJECT_ROOT};
pub use consumer::{ConsumerState, Ingest, LagProbe, Stats};
pub use error::IngestError;
pub use publish::{Outgoing, Published, publish_pipelined};
pub use recorder::NatsRecorder;
pub use setup::{Servers, connect, ensure_stream, jetstream, redact, stream_config};
