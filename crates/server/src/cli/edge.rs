//! `lotline edge link|unlink|status`: which co-op edge nodes the hub's stream sources
//! events from (deploy/edge, `lotline_ingest::edge`).

use clap::{Args, Subcommand};
use lotline_ingest::edge::{self, Change};
use lotline_ingest::{NatsConfig, jetstream};

use super::nats::{NatsArgs, nats_client, nats_error};
use super::{CliError, print_json};

#[derive(Debug, Subcommand)]
pub(crate) enum EdgeCommand {
    /// Make the hub's stream source ORG's events (lotline.events.*.ORG and
    /// lotline.relay.*.ORG, nothing else) from the edge's JetStream domain. Run against the
    /// hub, once per edge; running it again changes nothing, or moves the domain to a new org.
    Link(LinkArgs),
    /// Stop sourcing from an edge's domain (what was copied stays in the stream).
    Unlink(UnlinkArgs),
    /// The stream's sources: domain, org, filters, messages not copied yet, last contact.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LinkArgs {
    /// The co-op whose events the edge holds (its org id, as in its events).
    #[arg(long)]
    org: String,
    /// The edge's JetStream domain (`jetstream { domain: ... }` in its leaf node's config).
    #[arg(long)]
    domain: String,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UnlinkArgs {
    /// The edge's JetStream domain.
    #[arg(long)]
    domain: String,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// One JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: EdgeCommand) -> Result<(), CliError> {
    match command {
        EdgeCommand::Link(args) => link(args).await,
        EdgeCommand::Unlink(args) => unlink(args).await,
        EdgeCommand::Status(args) => status(args).await,
    }
}

/// The stream's settings (name, subject root) as every node has them.
fn stream_config(nats: &NatsArgs) -> NatsConfig {
    NatsConfig::new(&nats.url, "edge-admin")
}

async fn link(args: LinkArgs) -> Result<(), CliError> {
    if !lotline_ingest::subject::is_token(&args.org) {
        return Err(CliError::Usage(format!(
            "--org {:?}: an org id that can be a NATS subject token (no '.', '*', '>' or spaces)",
            args.org
        )));
    }
    edge::check_domain(&args.domain).map_err(|e| CliError::Usage(format!("--domain: {e}")))?;
    let config = stream_config(&args.nats);
    let js = jetstream(nats_client(&args.nats.url, "lotline edge", &args.nats.client).await?);
    let source = edge::edge_source(&config, &args.org, &args.domain);
    let change = edge::set_source(&js, &config, source)
        .await
        .map_err(nats_error)?;
    let said = match change {
        Change::Added => "now sources",
        Change::Replaced => "now sources (replacing its earlier source from that domain)",
        _ => "already sources",
    };
    outln!(
        "stream {} {said} org {} from domain {} ({}.events.*.{} and {}.relay.*.{})",
        config.stream,
        args.org,
        args.domain,
        config.subject_root,
        args.org,
        config.subject_root,
        args.org
    );
    Ok(())
}

async fn unlink(args: UnlinkArgs) -> Result<(), CliError> {
    edge::check_domain(&args.domain).map_err(|e| CliError::Usage(format!("--domain: {e}")))?;
    let config = stream_config(&args.nats);
    let js = jetstream(nats_client(&args.nats.url, "lotline edge", &args.nats.client).await?);
    match edge::remove_source(&js, &config, &args.domain)
        .await
        .map_err(nats_error)?
    {
        Change::Removed => {
            outln!(
                "stream {} no longer sources from domain {} (what it copied stays)",
                config.stream,
                args.domain
            );
            Ok(())
        }
        _ => Err(CliError::Refused(format!(
            "stream {} has no source from domain {}",
            config.stream, args.domain
        ))),
    }
}

async fn status(args: StatusArgs) -> Result<(), CliError> {
    let config = stream_config(&args.nats);
    let js = jetstream(nats_client(&args.nats.url, "lotline edge", &args.nats.client).await?);
    let sources = edge::sources(&js, &config).await.map_err(nats_error)?;
    if args.json {
        let list: Vec<serde_json::Value> = sources
            .iter()
            .map(|s| {
                serde_json::json!({
                    "domain": s.domain,
                    "org": s.org,
                    "filters": s.filters,
                    "lag": s.lag,
                    "last_seen_secs": s.last_seen.map(|d| d.as_secs_f64()),
                })
            })
            .collect();
        return print_json(&serde_json::json!({ "stream": config.stream, "sources": list }));
    }
    if sources.is_empty() {
        outln!("stream {} has no sources", config.stream);
        return Ok(());
    }
    outln!(
        "{:<20} {:<24} {:>10} {:>12}  filters",
        "domain",
        "org",
        "lag",
        "last seen"
    );
    for s in &sources {
        let seen = s.last_seen.map_or_else(
            || "never".to_string(),
            |d| format!("{:.1}s ago", d.as_secs_f64()),
        );
        outln!(
            "{:<20} {:<24} {:>10} {:>12}  {}",
            s.domain.as_deref().unwrap_or("(this domain)"),
            s.org.as_deref().unwrap_or("(master data)"),
            s.lag,
            seen,
            s.filters.join(" ")
        );
    }
    Ok(())
}
