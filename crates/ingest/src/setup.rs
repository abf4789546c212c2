//! Connecting to NATS, and the stream and consumer lotline uses.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{ClientOptions, NatsConfig};
use crate::error::IngestError;

/// Connects with endless reconnects (a short, capped delay between attempts)
/// and forwards connection events to `events`. A server (lotline serve) passes
/// `wait_for_server`: it returns at once and keeps trying in the background; a
/// command fails at once if the server is not there.
pub async fn connect(
    url: &str,
    name: &str,
    client: &ClientOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
    wait_for_server: bool,
) -> Result<Client, IngestError> {
    let servers = Servers::parse(url)?;
    let mut options = ConnectOptions::new().name(name);
    match servers.credentials.clone() {
        Some(Credentials::UserPassword(user, password)) => {
            options = options.user_and_password(user, password);
        }
        Some(Credentials::Token(token)) => options = options.token(token),
        None => {}
    }
    if let Some(creds) = &client.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| IngestError::BadUrl(format!("--nats-creds {}: {e}", creds.display())))?;
    }
    if let Some(ca) = &client.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&client.tls_cert, &client.tls_key) {
        (Some(cert), Some(key)) => {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        (None, None) => {}
        _ => {
            return Err(IngestError::BadUrl(
                "--nats-tls-cert and --nats-tls-key go together".into(),
            ));
        }
    }
    if let Some(prefix) = &client.inbox_prefix {
        options = options.custom_inbox_prefix(prefix.clone());
    }
    if wait_for_server {
        options = options.retry_on_initial_connect();
    }
    let mut options = options
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
    let shown = servers.shown.clone();
    options
        .connect(servers.addresses)
        .await
        .map_err(|source| IngestError::Connect {
            servers: shown,
            source,
        })
}

/// How a client proves who it is, from the URL's user info.
#[derive(Clone)]
enum Credentials {
    UserPassword(String, String),
    Token(String),
}

/// `--nats-url`: one or more comma-separated server URLs; user and password
/// (or a token) in the user info of any of them.
pub struct Servers {
    addresses: Vec<async_nats::ServerAddr>,
    credentials: Option<Credentials>,
    /// The URLs with any secret replaced by `***`, for logs and messages.
    pub shown: String,
}

impl Servers {
    pub fn parse(url: &str) -> Result<Servers, IngestError> {
        let mut addresses = Vec::new();
        let mut credentials = None;
        let mut shown = Vec::new();
        for part in url.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let address: async_nats::ServerAddr = part.parse().map_err(|e| {
                IngestError::BadUrl(format!("{:?} is not a NATS URL: {e}", redact(part)))
            })?;
            if credentials.is_none()
                && let Some(user) = address.username()
            {
                let user = decode(user);
                credentials = Some(match address.password() {
                    Some(password) => Credentials::UserPassword(user, decode(password)),
                    None => Credentials::Token(user),
                });
            }
            shown.push(redact(part));
            addresses.push(address);
        }
        if addresses.is_empty() {
            return Err(IngestError::BadUrl("no NATS server URL given".into()));
        }
        Ok(Servers {
            addresses,
            credentials,
            shown: shown.join(","),
        })
    }
}

/// `nats://user:secret@host` → `nats://user:***@host`; a token alone becomes `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{scheme}://{user}@{host}")
}

/// Percent-decoding of URL user info (a password may hold `@` or `:` as `%40`, `%3A`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Most publishes a context lets wait for their ack; one more waits for a slot,
/// so a publisher must never hold more unresolved acks than this.
pub const MAX_ACKS_IN_FLIGHT: usize = 4_096;

/// The JetStream context lotline publishes with.
pub fn jetstream(client: Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
        .build(client)
}

/// The longest the consumer waits for an answer to one of its JetStream requests (stream info,
/// consumer creation). While a cluster elects a new stream leader a request can go unanswered;
/// the consumer asks again after its backoff rather than waiting out the publishing context's
/// 10 s, so a node resumes within a few seconds of the election.
pub const CONSUMER_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the consumer waits for an answer after `failures` attempts in a row failed: 1 s
/// at first (a healthy server answers in milliseconds, so a node asks again soon after an
/// election ends), a second more after each failure (a busy server gets the time it needs), at
/// most [`CONSUMER_REQUEST_TIMEOUT`].
pub fn consumer_request_timeout(failures: u32) -> Duration {
    Duration::from_secs(u64::from(failures) + 1).min(CONSUMER_REQUEST_TIMEOUT)
}

/// The JetStream context the consumer opens the stream and its consumer with, waiting up to
/// `timeout` for each answer.
pub fn consumer_jetstream(client: Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client)
}

/// The stream's configuration as lotline creates it: file storage, kept for
/// good (it is the durable record every node can rebuild from), a duplicate
/// window for re-sends.
pub fn stream_config(config: &NatsConfig) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        subjects: vec![config.events_filter(), config.relay_filter()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        description: Some("lotline lot events; every lotline node consumes all of it".into()),
        sources: config
            .hub_domain
            .as_deref()
            .map(|hub| vec![crate::edge::master_data_source(config, hub)]),
        ..Default::default()
    }
}

/// Creates the stream, or binds the one that exists (and says where it differs).
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, IngestError> {
    let wanted = stream_config(config);
    let stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| IngestError::jetstream(format!("stream {}", config.stream), e))?;
    // What the lookup (or the creation) just answered: asking again would be one more request
    // to wait out while a cluster elects a stream leader.
    let info = stream.cached_info().clone();
    let filter = config.events_filter();
    if !info.config.subjects.iter().any(|s| s == &filter) {
        return Err(IngestError::Unusable(format!(
            "stream {} exists but does not take {filter} (it takes {:?})",
            config.stream, info.config.subjects
        )));
    }
    // A stream made by a release before relaying takes the relay subjects from now on.
    let relay = config.relay_filter();
    if !info.config.subjects.iter().any(|s| s == &relay) {
        let mut updated = info.config.clone();
        updated.subjects.push(relay.clone());
        js.update_stream(updated).await.map_err(|e| {
            IngestError::jetstream(format!("adding {relay} to stream {}", config.stream), e)
        })?;
        info!(stream = %config.stream, subjects = %relay, "the stream now takes relayed writes");
    }
    // An edge node keeps its stream sourcing the hub's master data (added to a stream made
    // before the node became an edge; set back if someone changed it).
    if let Some(hub) = &config.hub_domain {
        let wanted = crate::edge::master_data_source(config, hub);
        let change = crate::edge::set_source(js, config, wanted).await?;
        if change != crate::edge::Change::Unchanged {
            info!(stream = %config.stream, hub = %hub, "the stream sources the hub's master data");
        }
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
            // The consumer keeps nothing a node needs (the store knows its position, and each
            // session makes the consumer again), so one replica in memory is enough: when its
            // server is lost, the next session makes it on a live one without waiting for a
            // consumer's own leader election on top of the stream's.
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| IngestError::jetstream(format!("consumer {name}"), e))?;
    info!(consumer = %name, start, "consuming the stream");
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_servers_and_credentials_and_never_show_secrets() {
        let s =
            Servers::parse("nats://lotline:s%40cret@n1:4222, nats://n2:4222,n3").expect("parse");
        assert_eq!(s.addresses.len(), 3);
        assert!(matches!(
            s.credentials,
            Some(Credentials::UserPassword(ref u, ref p)) if u == "lotline" && p == "s@cret"
        ));
        assert_eq!(s.shown, "nats://lotline:***@n1:4222,nats://n2:4222,n3");
        assert!(!s.shown.contains("cret"));
        let t = Servers::parse("nats://tok3n@127.0.0.1:4222").expect("parse");
        assert!(matches!(t.credentials, Some(Credentials::Token(ref x)) if x == "tok3n"));
        assert_eq!(t.shown, "nats://***@127.0.0.1:4222");
        assert!(Servers::parse(" , ").is_err());
        assert!(Servers::parse("nats://host:notaport").is_err());
    }
}
