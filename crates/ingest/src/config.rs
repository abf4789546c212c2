//! What the NATS intake needs to know, with the defaults `lotline serve` uses.

use std::path::PathBuf;
use std::time::Duration;

/// The stream every lotline node consumes.
pub const STREAM: &str = "LOTLINE_EVENTS";
/// The first token of lotline's subjects (`lotline.events.>`, `lotline.rejected.<org>`).
pub const SUBJECT_ROOT: &str = "lotline";

/// The NATS side of `lotline serve --nats-url`.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// This node's name: its durable consumer is `lotline-<node_id>`.
    pub node_id: String,
    /// The stream name; [`STREAM`] except in benchmarks and tests that want a
    /// stream of their own on a shared server.
    pub stream: String,
    /// The first subject token; [`SUBJECT_ROOT`] except as for `stream`.
    pub subject_root: String,
    /// Stream replicas when lotline creates the stream (3 on a JetStream cluster).
    pub replicas: usize,
    /// How long JetStream drops a re-published `Nats-Msg-Id` itself. Re-sends
    /// after it are stored in the stream again and answered as duplicates here.
    pub duplicate_window: Duration,
    /// Most messages applied in one atomic batch (and acknowledged after one flush).
    pub batch: usize,
    /// How long gRPC Record waits for its event to be applied on this node.
    pub apply_timeout: Duration,
    /// Roles are enforced (`serve --auth`): an org publishing on its own events subject may
    /// record what a member may; everything else comes relayed by a node for an authenticated
    /// caller. Every node of a stream must agree on it.
    pub enforce_roles: bool,
    /// How the client proves who it is and checks the server.
    pub client: ClientOptions,
    /// A co-op edge node (`serve --nats-hub-domain`): the JetStream domain of the hub whose
    /// master data this node's stream sources (see [`crate::edge`]); `None` on the hub.
    pub hub_domain: Option<String>,
}

/// How a NATS client connects, besides the URL (whose user:password or token still work).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// A NATS credentials file (decentralised JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust for the server's TLS certificate; implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The prefix of this client's reply inboxes (`_INBOX.<org>` for an org whose user may
    /// subscribe only to its own inboxes); `None`: `_INBOX`.
    pub inbox_prefix: Option<String>,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            node_id: node_id.into(),
            stream: STREAM.to_string(),
            subject_root: SUBJECT_ROOT.to_string(),
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
            batch: 2_000,
            apply_timeout: Duration::from_secs(30),
            enforce_roles: false,
            client: ClientOptions::default(),
            hub_domain: None,
        }
    }

    /// The durable consumer's name.
    pub fn consumer_name(&self) -> String {
        format!("lotline-{}", self.node_id)
    }

    /// The subjects orgs publish on: `lotline.events.>`.
    pub fn events_filter(&self) -> String {
        format!("{}.events.>", self.subject_root)
    }

    /// The subjects nodes relay authenticated gRPC writes on: `lotline.relay.>`.
    pub fn relay_filter(&self) -> String {
        format!("{}.relay.>", self.subject_root)
    }

    /// Checks the parts that NATS would refuse later with a less clear message.
    pub fn check(&self) -> Result<(), String> {
        if !crate::subject::is_token(&self.node_id) {
            return Err(format!(
                "node id {:?}: use letters, digits, '-' or '_' (it names a NATS consumer)",
                self.node_id
            ));
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err(format!(
                "replicas: {} (JetStream allows 1 to 5)",
                self.replicas
            ));
        }
        if self.batch == 0 {
            return Err("batch: must be at least 1".into());
        }
        if let Some(domain) = &self.hub_domain {
            crate::edge::check_domain(domain)?;
        }
        Ok(())
    }
}
