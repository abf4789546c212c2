//! `lotline demo`: an embedded server on a temporary store (or `--server`), the
//! sample chains loaded, and a trace and a recall printed for each chain.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use lotline_proto::v1;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::client::{connect, status_error};
use super::{CliError, ClientArgs, render};
use crate::sample::{SHOWCASE, sample_events};
use crate::{ServeConfig, run, shutdown_signal};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Load the sample into this server instead of starting one.
    #[arg(long, env = "LOTLINE_SERVER")]
    server: Option<String>,
    /// Where the embedded server listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Keep the embedded server running after the demo, until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Only print the sample events as JSON Lines (for `lotline post`).
    #[arg(long)]
    print_events: bool,
}

pub(crate) async fn run_demo(args: DemoArgs) -> Result<(), CliError> {
    if args.print_events {
        for e in sample_events() {
            let line = serde_json::to_string(&e)
                .map_err(|e| CliError::Refused(format!("cannot print JSON: {e}")))?;
            outln!("{line}");
        }
        return Ok(());
    }
    if let Some(server) = &args.server {
        return show(server).await;
    }
    let dir = tempfile::Builder::new()
        .prefix("lotline-demo-")
        .tempdir()
        .map_err(|e| CliError::Usage(format!("cannot create a temporary data dir: {e}")))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("--listen {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("listener has no address: {e}")))?;
    let url = format!("http://{address}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig::new(dir.path());
    let server = tokio::spawn(run(config, listener, async {
        let _ = stop_rx.await;
    }));
    outln!(
        "Started an embedded lotline at {url} on a temporary store in {}",
        dir.path().display()
    );
    let shown = async {
        wait_serving(&url).await?;
        show(&url).await
    }
    .await;
    if shown.is_ok() && args.keep_running {
        outln!();
        outln!("lotline keeps serving at {url} with the sample loaded. Try:");
        outln!("  lotline trace CC-BAR-2026-W12 --server {url}");
        outln!("  lotline lot CO-GRN-2026-031 --server {url}");
        outln!("Ctrl-C stops it and removes the temporary store.");
        shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(CliError::Refused(format!("embedded server failed: {e}"))),
        Err(e) => {
            return Err(CliError::Refused(format!(
                "embedded server task failed: {e}"
            )));
        }
    }
    shown
}

/// Waits (up to 30 s) until the server's health says SERVING, following the
/// health Watch stream. The listener is bound before the server starts, so the
/// connection is accepted at once.
pub(crate) async fn wait_serving(url: &str) -> Result<(), CliError> {
    let watch = async {
        let mut updates = HealthClient::new(connect(&ClientArgs::local(url)).await?)
            .watch(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(status_error)?
            .into_inner();
        while let Some(update) = updates.message().await.map_err(status_error)? {
            if update.status == ServingStatus::Serving as i32 {
                return Ok(());
            }
        }
        Err(CliError::Connect(format!(
            "{url} stopped before it was serving"
        )))
    };
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .map_err(|_| CliError::Connect(format!("{url} did not report SERVING within 30 s")))?
}

/// The co-op whose Fairtrade ledger the demo prints.
const DEMO_BALANCE_ORG: &str = "vn-coop-eahleo";

/// Loads the sample into `url` and prints what a brand and an auditor would ask.
async fn show(url: &str) -> Result<(), CliError> {
    let channel = connect(&ClientArgs::local(url)).await?;
    let events = sample_events();
    let total = events.len();
    let outcomes = EventServiceClient::new(channel.clone())
        .record_batch(v1::RecordBatchRequest { events })
        .await
        .map_err(status_error)?
        .into_inner()
        .outcomes;
    let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
    for o in &outcomes {
        match &o.result {
            Some(v1::outcome::Result::Accepted(_)) => accepted += 1,
            Some(v1::outcome::Result::Duplicate(_)) => duplicate += 1,
            _ => {
                rejected += 1;
                eprintln!(
                    "sample event {} was not accepted: {:?}",
                    o.event_id, o.result
                );
            }
        }
    }
    outln!(
        "Recorded {total} sample events of the cocoa, coffee and textile chains: {accepted} accepted, {duplicate} duplicate, {rejected} rejected."
    );
    let mut provenance = ProvenanceServiceClient::new(channel);
    for (chain, product, farm_lot) in SHOWCASE {
        outln!();
        outln!("=== {chain} ===");
        let trace = provenance
            .trace_back(v1::TraceBackRequest {
                lot: product.to_string(),
                public_view: true,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        out!("{}", render::trace_text(&trace));
        outln!();
        let recall = provenance
            .trace_forward(v1::TraceForwardRequest {
                lot: farm_lot.to_string(),
                public_view: true,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        out!("{}", render::recall_text(&recall));
    }
    let unknown = provenance
        .list_unknown_lots(v1::ListUnknownLotsRequest::default())
        .await
        .map_err(status_error)?
        .into_inner();
    outln!();
    outln!("=== lots used but never created ===");
    out!("{}", render::unknown_text(&unknown.lots));
    let mut audit = AuditServiceClient::new(connect(&ClientArgs::local(url)).await?);
    let eudr = audit
        .eudr_export(v1::EudrExportRequest {
            lot: SHOWCASE[0].1.to_string(),
            public_view: true,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    outln!();
    outln!("=== brand: EUDR due diligence (lotline eudr LOT --out FILE writes the GeoJSON) ===");
    out!("{}", super::audit::eudr_summary(&eudr));
    let report = audit
        .chain_report(v1::ChainReportRequest {
            lot: SHOWCASE[2].1.to_string(),
            public_view: true,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    outln!();
    outln!("=== auditor: textile chain of custody (lotline audit LOT) ===");
    out!("{}", super::audit::chain_text(&report));
    let balance = audit
        .mass_balance(v1::MassBalanceRequest {
            org: DEMO_BALANCE_ORG.to_string(),
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    outln!();
    outln!("=== auditor: Fairtrade mass balance (lotline balance --org ORG) ===");
    out!(
        "{}",
        super::audit::balance_text(&balance, DEMO_BALANCE_ORG, "fairtrade")
    );
    let anomalies = audit
        .list_anomalies(v1::ListAnomaliesRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    outln!();
    outln!("=== auditor: anomalies (lotline anomalies) ===");
    out!(
        "{}",
        super::audit::anomalies_text(&anomalies.anomalies, &anomalies.counts)
    );
    // The auditor disputes the sample's lot of unknown origin: a review event in the log.
    if let Some(unknown) = anomalies
        .anomalies
        .iter()
        .find(|a| a.kind == "unknown_origin")
    {
        outln!();
        outln!("=== auditor: a review (lotline review ID --dispute --note TEXT) ===");
        let reviewed = audit
            .review_anomaly(v1::ReviewAnomalyRequest {
                anomaly: unknown.id.clone(),
                verdict: v1::ReviewVerdict::Disputed as i32,
                note: "the importer's own stock, declared on its due-diligence statement".into(),
                event_id: format!("demo-review-{}", unknown.id),
            })
            .await;
        match reviewed.map(|r| r.into_inner().anomaly) {
            Ok(Some(anomaly)) => out!("{}", super::audit::review_text(&anomaly)),
            Ok(None) => outln!("(the server answered no anomaly)"),
            Err(status) => outln!("(not reviewed: {})", status.message()),
        }
        outln!(
            "An audit in one file, with the proof of every event it cites: lotline bundle --out audit.json, then lotline verify --bundle audit.json (offline)."
        );
    }
    if rejected > 0 {
        return Err(CliError::Refused(format!(
            "{rejected} sample events were rejected"
        )));
    }
    Ok(())
}
