//! Auditor and brand commands: `balance`, `anomalies`, `audit` (the chain
//! report), `eudr` (the GeoJSON export) and `rules` (the reference rules in force).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use lotline_domain::audit::rules::Rules;
use lotline_proto::v1;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use serde_json::Value;

use super::client::{Conn, connect, status_error};
use super::render::{dash, quantity_text, table};
use super::{CliError, ClientArgs, print_json};

#[derive(Debug, Args)]
pub(crate) struct BalanceArgs {
    /// The org whose ledgers to draw up.
    #[arg(long)]
    org: String,
    /// A site in scope (repeat for a group of sites); default every site of the org.
    #[arg(long = "site")]
    sites: Vec<String>,
    /// Only the ledger of this input product.
    #[arg(long)]
    product: Option<String>,
    /// Period start (RFC 3339, inclusive); earlier entries make the opening balance.
    #[arg(long)]
    from: Option<String>,
    /// Period end (RFC 3339, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// The claim counted.
    #[arg(long, default_value = "fairtrade")]
    claim: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AnomaliesArgs {
    /// Only anomalies charged to this org.
    #[arg(long)]
    org: Option<String>,
    /// Only this kind (e.g. negative_mass_balance, yield_out_of_band).
    #[arg(long)]
    kind: Option<String>,
    /// Only anomalies on this lot.
    #[arg(long)]
    lot: Option<String>,
    /// Only anomalies in this status: open, acknowledged or disputed.
    #[arg(long)]
    status: Option<String>,
    /// Only the anomaly with this id (as the listing prints it).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("verdict").required(true).args(["acknowledge", "dispute"])))]
pub(crate) struct ReviewArgs {
    /// The anomaly's id, as `lotline anomalies` prints it.
    anomaly: String,
    /// A real problem, known and being dealt with.
    #[arg(long)]
    acknowledge: bool,
    /// Not a problem; the note says why (required).
    #[arg(long)]
    dispute: bool,
    /// What was checked, what the org said, what follows.
    #[arg(long, default_value = "")]
    note: String,
    /// The review event's id (send the same on a retry); default: made from the anomaly and
    /// the time.
    #[arg(long)]
    event_id: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The lot (a garment, fabric, or any lot) to report on.
    lot: String,
    /// Leave out farmers' names.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EudrArgs {
    /// The lot to export.
    lot: String,
    /// Write the GeoJSON FeatureCollection here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave out producer names and ids.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// A rules file to check and show merged over the defaults.
    #[arg(long)]
    file: Option<PathBuf>,
}

async fn audit_client(args: &ClientArgs) -> Result<AuditServiceClient<Conn>, CliError> {
    Ok(AuditServiceClient::new(connect(args).await?).max_decoding_message_size(512 << 20))
}

pub(crate) async fn balance(a: BalanceArgs) -> Result<(), CliError> {
    let answer = audit_client(&a.client)
        .await?
        .mass_balance(v1::MassBalanceRequest {
            org: a.org.clone(),
            sites: a.sites.clone(),
            product: a.product.clone().unwrap_or_default(),
            from: a.from.clone().unwrap_or_default(),
            to: a.to.clone().unwrap_or_default(),
            claim: a.claim.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if a.client.json {
        return print_json(&answer);
    }
    out!("{}", balance_text(&answer, &a.org, &a.claim));
    Ok(())
}

pub(crate) fn balance_text(answer: &v1::MassBalanceResponse, org: &str, claim: &str) -> String {
    let mut out = String::new();
    if answer.ledgers.is_empty() {
        let _ = writeln!(
            out,
            "No {claim} input or output recorded by {org} in scope."
        );
    }
    for l in &answer.ledgers {
        let scope = if l.sites.is_empty() {
            "all sites".to_string()
        } else {
            format!("sites {}", l.sites.join(", "))
        };
        let _ = writeln!(
            out,
            "Mass balance of {} ({scope}), {} in {} ({claim}):",
            l.org, l.product, l.unit
        );
        let rows: Vec<Vec<String>> = l
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.time.clone(),
                    e.event_id.clone(),
                    e.direction.clone(),
                    e.lot.clone(),
                    dash(&e.lot_product).to_string(),
                    quantity_text(e.quantity.as_ref()),
                    e.amount.clone(),
                    dash(&e.ratio).to_string(),
                    format!(
                        "{}{}",
                        e.balance,
                        if e.violation { "  NEGATIVE" } else { "" }
                    ),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "TIME", "EVENT", "IN/OUT", "LOT", "PRODUCT", "QUANTITY", "AMOUNT", "RATIO",
                "BALANCE",
            ],
            &rows,
        ));
        let _ = writeln!(
            out,
            "  opening {}  inputs {}  outputs {}  closing {} {}  ({} point(s) negative)",
            l.opening, l.inputs, l.outputs, l.closing, l.unit, l.violations
        );
        for note in &l.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}

pub(crate) async fn anomalies(a: AnomaliesArgs) -> Result<(), CliError> {
    let mut client = audit_client(&a.client).await?;
    let request = v1::ListAnomaliesRequest {
        org: a.org.clone().unwrap_or_default(),
        kind: a.kind.clone().unwrap_or_default(),
        lot: a.lot.clone().unwrap_or_default(),
        status: a.status.clone().unwrap_or_default(),
        id: a.id.clone().unwrap_or_default(),
        cursor: String::new(),
        limit: 1_000,
    };
    let (all, counts, status_counts, current_to) = every_anomaly(&mut client, request).await?;
    if a.client.json {
        return print_json(&lotline_proto::documents::anomaly_listing_json(
            &all,
            &counts,
            &status_counts,
            current_to,
        ));
    }
    out!("{}", anomalies_text(&all, &counts));
    out!("Current to log sequence {current_to}.");
    Ok(())
}

/// Counts by kind, or by status.
pub(crate) type Counts = BTreeMap<String, u32>;

/// Every page of an anomaly listing, with its counts by kind and by status, and the log sequence
/// its last page is current to.
pub(crate) async fn every_anomaly(
    client: &mut AuditServiceClient<Conn>,
    mut request: v1::ListAnomaliesRequest,
) -> Result<(Vec<v1::Anomaly>, Counts, Counts, u64), CliError> {
    let mut all = Vec::new();
    loop {
        let page = client
            .list_anomalies(request.clone())
            .await
            .map_err(status_error)?
            .into_inner();
        all.extend(page.anomalies);
        if page.next_cursor.is_empty() {
            return Ok((all, page.counts, page.status_counts, page.current_to));
        }
        request.cursor = page.next_cursor;
    }
}

pub(crate) async fn review(a: ReviewArgs) -> Result<(), CliError> {
    let mut client = audit_client(&a.client).await?;
    let verdict = if a.dispute {
        v1::ReviewVerdict::Disputed
    } else {
        v1::ReviewVerdict::Acknowledged
    };
    let answer = client
        .review_anomaly(v1::ReviewAnomalyRequest {
            anomaly: a.anomaly.clone(),
            verdict: verdict as i32,
            note: a.note.clone(),
            event_id: a.event_id.clone().unwrap_or_default(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let anomaly = answer.anomaly.unwrap_or_default();
    if a.client.json {
        return print_json(&lotline_proto::documents::anomalies_json(
            std::slice::from_ref(&anomaly),
        ));
    }
    out!("{}", review_text(&anomaly));
    Ok(())
}

/// An anomaly with its status and reviews, oldest first.
pub(crate) fn review_text(anomaly: &v1::Anomaly) -> String {
    let mut out = format!(
        "{} {}: {} on {} ({})\n",
        anomaly.id,
        anomaly.status,
        anomaly.kind,
        dash(&anomaly.lot),
        anomaly.explanation
    );
    for r in &anomaly.reviews {
        let _ = writeln!(
            out,
            "  {} {} by {} ({}): {}",
            r.time, r.verdict, r.org, r.event_id, r.note
        );
    }
    out
}

pub(crate) fn anomalies_text(all: &[v1::Anomaly], counts: &BTreeMap<String, u32>) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|x| {
            vec![
                x.id.clone(),
                x.status.clone(),
                dash(&x.lot).to_string(),
                dash(&x.event_id).to_string(),
                dash(&x.org).to_string(),
                x.explanation.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &["ID", "STATUS", "LOT", "EVENT", "ORG", "EXPLANATION"],
        &rows,
    );
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "{} anomalies{}",
        all.len(),
        if summary.is_empty() {
            String::new()
        } else {
            format!(": {}", summary.join(", "))
        }
    );
    out
}

fn entry_row(e: &v1::StageEntry) -> Vec<String> {
    let certs = if e.certificates.is_empty() {
        match e.lapsed.as_str() {
            "" => "NOT CERTIFIED".to_string(),
            why => format!("NOT CERTIFIED ({why})"),
        }
    } else {
        e.certificates
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}{}",
                    c.standard,
                    c.certificate_id,
                    if c.valid_to.is_empty() {
                        String::new()
                    } else {
                        format!(" (to {})", c.valid_to)
                    },
                    if c.self_declared {
                        ", self-declared"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let org = if e.org_name.is_empty() {
        e.org.clone()
    } else {
        format!("{} ({})", e.org, e.org_name)
    };
    vec![
        org,
        dash(&e.site).to_string(),
        e.date.clone(),
        e.process.clone(),
        e.lots.join(", "),
        certs,
    ]
}

pub(crate) async fn audit(a: AuditArgs) -> Result<(), CliError> {
    let answer = audit_client(&a.client)
        .await?
        .chain_report(v1::ChainReportRequest {
            lot: a.lot.clone(),
            public_view: a.public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if a.client.json {
        return print_json(&answer);
    }
    out!("{}", chain_text(&answer));
    Ok(())
}

pub(crate) fn chain_text(answer: &v1::ChainReportResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Chain of custody of {} ({}, {})",
        answer.lot,
        dash(&answer.product),
        dash(&answer.chain)
    );
    let header = ["ORG", "SITE", "DATE", "PROCESS", "LOTS", "CERTIFICATES"];
    for stage in &answer.stages {
        if stage.entries.is_empty() {
            let _ = writeln!(
                out,
                "\n{}: {}",
                stage.name,
                if stage.missing {
                    "MISSING"
                } else {
                    "not reached"
                }
            );
            continue;
        }
        let _ = writeln!(out, "\n{}:", stage.name);
        let rows: Vec<Vec<String>> = stage.entries.iter().map(entry_row).collect();
        out.push_str(&table(&header, &rows));
    }
    if !answer.other.is_empty() {
        let _ = writeln!(out, "\nother steps:");
        let rows: Vec<Vec<String>> = answer.other.iter().map(entry_row).collect();
        out.push_str(&table(&header, &rows));
    }
    let _ = writeln!(
        out,
        "\nMissing stages: {}",
        if answer.missing.is_empty() {
            "none".to_string()
        } else {
            answer.missing.join(", ")
        }
    );
    out
}

pub(crate) async fn eudr(a: EudrArgs) -> Result<(), CliError> {
    let answer = audit_client(&a.client)
        .await?
        .eudr_export(v1::EudrExportRequest {
            lot: a.lot.clone(),
            public_view: a.public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let geojson: Value = serde_json::from_str(&answer.geojson).map_err(|e| {
        CliError::Refused(format!("the server sent GeoJSON that does not parse: {e}"))
    })?;
    let pretty = serde_json::to_string_pretty(&geojson)
        .map_err(|e| CliError::Refused(format!("cannot print JSON: {e}")))?;
    let summary = eudr_summary(&answer);
    match &a.out {
        Some(path) => {
            std::fs::write(path, format!("{pretty}\n")).map_err(|e| {
                CliError::Usage(format!("--out: cannot write {}: {e}", path.display()))
            })?;
            if a.client.json {
                print_json(&lotline_proto::documents::eudr_json(&answer))?;
            } else {
                out!("{summary}");
                outln!("GeoJSON written to {}", path.display());
            }
        }
        None => {
            outln!("{pretty}");
            eprint!("{summary}");
        }
    }
    Ok(())
}

pub(crate) fn eudr_summary(answer: &v1::EudrExportResponse) -> String {
    let mut summary = format!(
        "EUDR {}: {} ({} plot(s))\n",
        answer.lot, answer.verdict, answer.plots
    );
    for r in &answer.reasons {
        let _ = writeln!(summary, "  - {r}");
    }
    for d in &answer.dds_references {
        let _ = writeln!(
            summary,
            "  DDS {}{} (lot {}, shipped by {} on {})",
            d.reference,
            if d.verification.is_empty() {
                String::new()
            } else {
                format!(" / {}", d.verification)
            },
            d.lot,
            d.org,
            d.date
        );
    }
    summary
}

pub(crate) fn rules(a: RulesArgs) -> Result<(), CliError> {
    match &a.file {
        None => {
            out!("{}", Rules::defaults_toml());
            Ok(())
        }
        Some(path) => {
            let rules = load_rules(path)?;
            let text = toml::to_string_pretty(&rules)
                .map_err(|e| CliError::Refused(format!("cannot print the rules: {e}")))?;
            // The merged rules, complete: loading this output gives the same rules.
            out!(
                "# The rules in force with {} (the file first, then the defaults).
replace_defaults = true

{text}",
                path.display()
            );
            Ok(())
        }
    }
}

/// Reads a rules file merged over the defaults; the error names the file.
pub(crate) fn load_rules(path: &std::path::Path) -> Result<Rules, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--rules: cannot read {}: {e}", path.display())))?;
    Rules::from_toml(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}
