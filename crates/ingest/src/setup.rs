//! Connecting to NATS, and the stream and consumer lotline uses.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::NatsConfig;
use crate::error::IngestError;

/// Connects with endless reconnects (a short, capped delay between attempts)
/// and forwards connection events to `events`. Returns at once if the server is
/// not there yet: the client keeps trying in the background.
pub async fn connect(
    url: &str,
    name: &str,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Result<Client, IngestError> {
    let mut options = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).clamp(50, 2_000))
        });
    if let Some(events) = events {
        options = options.event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.send(event);
            }
        });
    }
    options
        .connect(url)
        .await
        .map_err(|e| IngestError::Connect(format!("{url}: {e}")))
}

/// The JetStream context lotline publishes and consumes with.
pub fn jetstream(client: Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_ack_inflight(4_096)
        .build(client)
}

/// The stream's configuration as lotline creates it: file storage, kept for
/// good (it is the durable record every node can rebuild from), a duplicate
/// window for re-sends.
pub fn stream_config(config: &NatsConfig) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        subjects: vec![config.events_filter()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        description: Some("lotline lot events; every lotline node consumes all of it".into()),
        ..Default::default()
    }
}

/// Creates the stream, or binds the one that exists (and says where it differs).
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, IngestError> {
    let wanted = stream_config(config);
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| IngestError::Nats(format!("stream {}: {e}", config.stream)))?;
    let info = stream
        .info()
        .await
        .map_err(|e| IngestError::Nats(format!("stream {}: {e}", config.stream)))?;
    let filter = config.events_filter();
    if !info.config.subjects.iter().any(|s| s == &filter) {
        return Err(IngestError::Nats(format!(
            "stream {} exists but does not take {filter} (it takes {:?})",
            config.stream, info.config.subjects
        )));
    }
    if info.config.num_replicas != config.replicas {
        warn!(
            stream = %config.stream,
            has = info.config.num_replicas,
            asked = config.replicas,
            "the stream exists with another replica count; keeping it"
        );
    }
    if info.config.storage != stream::StorageType::File {
        warn!(stream = %config.stream, "the stream is not file-backed: it does not survive a NATS restart");
    }
    Ok(stream)
}

/// (Re)creates this node's durable pull consumer so that it delivers from
/// stream sequence `start`: the store, not the consumer, knows what is applied,
/// so a restart or a gap starts a fresh delivery in stream order.
pub async fn consumer_from(
    stream: &stream::Stream,
    config: &NatsConfig,
    start: u64,
) -> Result<consumer::PullConsumer, IngestError> {
    let name = config.consumer_name();
    // Absent on first start: nothing to delete.
    let _ = stream.delete_consumer(&name).await;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("lotline node {}", config.node_id)),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: (config.batch * 4) as i64,
            ..Default::default()
        })
        .await
        .map_err(|e| IngestError::Nats(format!("consumer {name}: {e}")))?;
    info!(consumer = %name, start, "consuming the stream");
    Ok(consumer)
}
