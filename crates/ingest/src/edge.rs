//! Co-op edge nodes (`deploy/edge`): a co-op runs a NATS leaf node with its own JetStream
//! domain and a small lotline node beside it. Two JetStream stream sources join an edge to
//! the hub; JetStream keeps each across link outages (it resumes where it stopped when the
//! link returns, in stream order, and drops a message whose `Nats-Msg-Id` the receiving
//! stream already holds):
//! - down: the edge's stream sources the hub's master data ([`master_data_source`]:
//!   `lotline.*.none.>`, i.e. registrations, sites, plots, product classes, certificates,
//!   memberships and token revocations, which lotline publishes on the `none` chain token), so
//!   the edge judges an event as the hub would. `serve --nats-hub-domain` sets it up.
//! - up: the hub's stream sources the co-op's own events from the edge's domain
//!   ([`edge_source`]: `lotline.events.*.<org>` and `lotline.relay.*.<org>`). Nothing else the
//!   edge holds goes up: whoever runs an edge can speak for its own org and no other, as a
//!   NATS user can publish only on its own org's subjects. `lotline edge link` sets it up.
//!
//! The co-op's own master data that came down comes back up (it is on the org's subjects); the
//! hub's duplicate window drops it by its `Nats-Msg-Id`, and lotline answers a later copy as a
//! duplicate: it is stored once either way. The hub is the authority: an event the edge
//! accepted and the hub refuses is quarantined at the hub (`lotline rejected`) and announced on
//! `lotline.rejected.<org>`, which the co-op's clients on the leaf node hear.

use async_nats::jetstream::{self, stream};
use tracing::info;

use crate::config::NatsConfig;
use crate::error::IngestError;
use crate::subject::{NO_CHAIN, is_token};

/// The JetStream API prefix of a domain (`$JS.<domain>.API`).
pub fn api_prefix(domain: &str) -> String {
    format!("$JS.{domain}.API")
}

/// Whether `domain` can be a JetStream domain: one subject token.
pub fn check_domain(domain: &str) -> Result<(), String> {
    if is_token(domain) {
        Ok(())
    } else {
        Err(format!(
            "JetStream domain {domain:?}: one word (letters, digits, '-', '_'), no '.', '*', '>' or spaces"
        ))
    }
}

/// The source an edge's stream takes the hub's master data from: one filter,
/// `lotline.*.none.>`, so that the hub can let an edge's user create a consumer on its stream
/// with that filter and no other (deploy/edge/hub-edge-user.conf).
pub fn master_data_source(config: &NatsConfig, hub_domain: &str) -> stream::Source {
    stream::Source {
        filter_subject: Some(format!("{}.*.{NO_CHAIN}.>", config.subject_root)),
        ..source(config, hub_domain)
    }
}

/// The source the hub's stream takes one co-op's events from, out of its edge's domain.
pub fn edge_source(config: &NatsConfig, org: &str, edge_domain: &str) -> stream::Source {
    let root = &config.subject_root;
    let filters = [
        format!("{root}.events.*.{org}"),
        format!("{root}.relay.*.{org}"),
    ];
    stream::Source {
        // A filter with no destination keeps the subject as it is.
        subject_transforms: filters
            .into_iter()
            .map(|subject| stream::SubjectTransform {
                source: subject,
                destination: String::new(),
            })
            .collect(),
        ..source(config, edge_domain)
    }
}

/// The stream named like ours in `domain`, unfiltered.
fn source(config: &NatsConfig, domain: &str) -> stream::Source {
    stream::Source {
        name: config.stream.clone(),
        external: Some(stream::External {
            api_prefix: api_prefix(domain),
            delivery_prefix: None,
        }),
        ..Default::default()
    }
}

/// The domain a source reads from, if it is a domain's API prefix.
pub fn source_domain(source: &stream::Source) -> Option<&str> {
    source
        .external
        .as_ref()?
        .api_prefix
        .strip_prefix("$JS.")?
        .strip_suffix(".API")
}

/// The org a hub's source carries the events of, if it is an [`edge_source`].
pub fn source_org<'s>(config: &NatsConfig, source: &'s stream::Source) -> Option<&'s str> {
    let prefix = format!("{}.events.*.", config.subject_root);
    source
        .subject_transforms
        .iter()
        .find_map(|t| t.source.strip_prefix(&prefix))
}

/// What [`link`] and [`unlink`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Replaced,
    Unchanged,
    Removed,
    Absent,
}

/// Makes the stream's sources hold `wanted` in place of any source from the same domain
/// (one source per domain: an edge serves one org). Idempotent.
pub async fn set_source(
    js: &jetstream::Context,
    config: &NatsConfig,
    wanted: stream::Source,
) -> Result<Change, IngestError> {
    let info = stream_info(js, config).await?;
    let mut updated = info.config.clone();
    let mut sources = updated.sources.take().unwrap_or_default();
    let domain = source_domain(&wanted).map(str::to_string);
    let existing = sources
        .iter()
        .position(|s| s.name == wanted.name && source_domain(s) == domain.as_deref());
    let change = match existing {
        Some(i) if same_source(&sources[i], &wanted) => return Ok(Change::Unchanged),
        Some(i) => {
            sources[i] = wanted;
            Change::Replaced
        }
        None => {
            sources.push(wanted);
            Change::Added
        }
    };
    updated.sources = Some(sources);
    js.update_stream(updated)
        .await
        .map_err(|e| IngestError::jetstream(format!("sources of stream {}", config.stream), e))?;
    info!(stream = %config.stream, domain = ?domain, ?change, "stream source set");
    Ok(change)
}

/// Takes the source from `domain` off the stream. JetStream keeps what it already copied.
pub async fn remove_source(
    js: &jetstream::Context,
    config: &NatsConfig,
    domain: &str,
) -> Result<Change, IngestError> {
    let info = stream_info(js, config).await?;
    let mut updated = info.config.clone();
    let mut sources = updated.sources.take().unwrap_or_default();
    let before = sources.len();
    sources.retain(|s| source_domain(s) != Some(domain));
    if sources.len() == before {
        return Ok(Change::Absent);
    }
    updated.sources = (!sources.is_empty()).then_some(sources);
    js.update_stream(updated)
        .await
        .map_err(|e| IngestError::jetstream(format!("sources of stream {}", config.stream), e))?;
    info!(stream = %config.stream, domain, "stream source removed");
    Ok(Change::Removed)
}

/// The stream's configuration and state, as JetStream has them now.
async fn stream_info(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Info, IngestError> {
    let what = || format!("stream {}", config.stream);
    let mut stream = js
        .get_stream(&config.stream)
        .await
        .map_err(|e| IngestError::jetstream(what(), e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| IngestError::jetstream(what(), e))?;
    Ok(info.clone())
}

/// Two sources read the same stream of the same domain with the same filters.
fn same_source(a: &stream::Source, b: &stream::Source) -> bool {
    let filters = |s: &stream::Source| {
        let mut f: Vec<(String, String)> = s
            .subject_transforms
            .iter()
            .map(|t| (t.source.clone(), t.destination.clone()))
            .collect();
        f.sort();
        f
    };
    a.name == b.name
        && source_domain(a) == source_domain(b)
        && a.filter_subject == b.filter_subject
        && filters(a) == filters(b)
}

/// One source of the stream as JetStream reports it: how far behind it is and when it was
/// last heard from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    pub domain: Option<String>,
    pub org: Option<String>,
    pub filters: Vec<String>,
    /// Messages the source stream holds that this stream has not copied yet (as of the last
    /// contact).
    pub lag: u64,
    /// Since the last contact, or `None` if the source was never reached.
    pub last_seen: Option<std::time::Duration>,
}

/// The stream's sources (configuration joined with JetStream's state of each).
pub async fn sources(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<Vec<SourceState>, IngestError> {
    let info = stream_info(js, config).await?;
    let configured = info.config.sources.clone().unwrap_or_default();
    Ok(configured
        .iter()
        .map(|source| {
            // JetStream's state names no domain: a source is told apart by its filters.
            let state = info.sources.iter().find(|s| {
                s.name == source.name && s.subject_transforms == source.subject_transforms
            });
            SourceState {
                domain: source_domain(source).map(str::to_string),
                org: source_org(config, source).map(str::to_string),
                filters: source
                    .subject_transforms
                    .iter()
                    .map(|t| t.source.clone())
                    .chain(source.filter_subject.clone())
                    .collect(),
                lag: state.map_or(0, |s| s.lag),
                last_seen: state.and_then(|s| s.active),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_domain_and_org() {
        let config = NatsConfig::new("nats://127.0.0.1:4222", "n1");
        let up = edge_source(&config, "vn-coop", "coop-vn");
        assert_eq!(source_domain(&up), Some("coop-vn"));
        assert_eq!(source_org(&config, &up), Some("vn-coop"));
        assert_eq!(
            up.external.as_ref().map(|e| e.api_prefix.as_str()),
            Some("$JS.coop-vn.API")
        );
        let filters: Vec<&str> = up
            .subject_transforms
            .iter()
            .map(|t| t.source.as_str())
            .collect();
        assert_eq!(
            filters,
            ["lotline.events.*.vn-coop", "lotline.relay.*.vn-coop"]
        );
        let down = master_data_source(&config, "hub");
        assert_eq!(source_domain(&down), Some("hub"));
        assert_eq!(source_org(&config, &down), None);
        assert_eq!(down.filter_subject.as_deref(), Some("lotline.*.none.>"));
        assert!(same_source(&up, &up.clone()));
        assert!(!same_source(&up, &edge_source(&config, "other", "coop-vn")));
        assert!(check_domain("coop-vn").is_ok());
        assert!(check_domain("a.b").is_err());
        assert!(check_domain("").is_err());
    }
}
