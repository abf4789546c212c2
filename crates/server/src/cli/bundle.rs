//! `lotline bundle`: an audit in one file (the anomalies, the ledgers of the orgs they concern,
//! the state and chain report of the lots concerned, a signed checkpoint and the inclusion proof
//! of every event the file cites), and `lotline verify --bundle FILE`, which checks it offline:
//! the checkpoint's signature, every proof against the signed root, every cited event proved,
//! every anomaly id made from its kind, event and lot, and every review matching the event
//! that records it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use lotline_domain::anomaly::anomaly_id;
use lotline_domain::{AnomalyKind, EventKind};
use lotline_merkle::{Hash, Verifier, leaf_hash, verify_inclusion};
use lotline_proto::v1;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_store::Record;
use serde_json::{Value, json};

use super::audit::every_anomaly;
use super::client::{connect, status_error};
use super::{CliError, ClientArgs};

/// The bundle format's version, the value of its `lotline_bundle` field.
const FORMAT: u64 = 1;

#[derive(Debug, Args)]
pub(crate) struct BundleArgs {
    /// Only the anomalies charged to this org, and its ledgers (default: every anomaly the
    /// credential reads, and the ledgers of the orgs they are charged to).
    #[arg(long)]
    org: Option<String>,
    /// Only anomalies in this status: open, acknowledged or disputed.
    #[arg(long)]
    status: Option<String>,
    /// A lot to include (its state and chain report) besides the anomalies' lots; repeat.
    #[arg(long = "lot")]
    lots: Vec<String>,
    /// The most lots whose state and chain report the bundle holds; the others are listed
    /// under `left_out`.
    #[arg(long, default_value_t = 200)]
    max_lots: usize,
    /// The claim the ledgers count.
    #[arg(long, default_value = "fairtrade")]
    claim: String,
    /// Where to write the bundle (JSON).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

/// Every event id the bundle's answers cite (any `event_id` or `eventId` field, at any depth),
/// computed the same way when the bundle is made and when it is checked.
fn cited(bundle: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("event_id" | "eventId", Value::String(id)) if !id.is_empty() => {
                            out.insert(id.clone());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for section in ["anomalies", "ledgers", "lots", "chain_reports"] {
        walk(&bundle[section], &mut out);
    }
    out
}

fn to_value(message: &impl serde::Serialize) -> Result<Value, CliError> {
    serde_json::to_value(message).map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))
}

pub(crate) async fn bundle(a: BundleArgs) -> Result<(), CliError> {
    let channel = connect(&a.client).await?;
    let mut audit = AuditServiceClient::new(channel.clone()).max_decoding_message_size(512 << 20);
    let mut provenance =
        ProvenanceServiceClient::new(channel.clone()).max_decoding_message_size(256 << 20);
    let mut log = LogServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let mut left_out: Vec<Value> = Vec::new();

    // The anomalies, every page.
    let request = v1::ListAnomaliesRequest {
        org: a.org.clone().unwrap_or_default(),
        status: a.status.clone().unwrap_or_default(),
        limit: 1_000,
        ..Default::default()
    };
    let (anomalies, counts, status_counts, current_to) = every_anomaly(&mut audit, request).await?;

    // The ledgers of the org asked for, or of every org the anomalies are charged to.
    let orgs: BTreeSet<String> = match &a.org {
        Some(org) => BTreeSet::from([org.clone()]),
        None => anomalies
            .iter()
            .filter(|x| !x.org.is_empty())
            .map(|x| x.org.clone())
            .collect(),
    };
    let mut ledgers = Vec::new();
    for org in &orgs {
        match audit
            .mass_balance(v1::MassBalanceRequest {
                org: org.clone(),
                claim: a.claim.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(answer) => ledgers.extend(answer.into_inner().ledgers),
            Err(status) => left_out.push(json!({
                "what": format!("ledgers of {org}"),
                "why": status.message(),
            })),
        }
    }

    // The lots concerned: those asked for, then the anomalies' lots, up to the limit.
    let mut lots: Vec<String> = Vec::new();
    for lot in a
        .lots
        .iter()
        .chain(anomalies.iter().map(|x| &x.lot))
        .filter(|l| !l.is_empty())
    {
        if !lots.contains(lot) {
            lots.push(lot.clone());
        }
    }
    if lots.len() > a.max_lots {
        left_out.push(json!({
            "what": format!("{} lots past --max-lots {}", lots.len() - a.max_lots, a.max_lots),
            "why": "the bundle holds at most --max-lots lots",
            "lots": lots.split_off(a.max_lots),
        }));
    }
    let mut lot_answers = BTreeMap::new();
    let mut chain_reports = BTreeMap::new();
    for lot in &lots {
        match provenance
            .get_lot(v1::GetLotRequest {
                lot: lot.clone(),
                public_view: false,
            })
            .await
        {
            Ok(answer) => {
                lot_answers.insert(
                    lot.clone(),
                    lotline_proto::documents::lot_json(&answer.into_inner()),
                );
            }
            Err(status) => left_out.push(json!({
                "what": format!("lot {lot}"),
                "why": status.message(),
            })),
        }
        match audit
            .chain_report(v1::ChainReportRequest {
                lot: lot.clone(),
                public_view: false,
            })
            .await
        {
            Ok(answer) => {
                chain_reports.insert(lot.clone(), to_value(&answer.into_inner())?);
            }
            Err(status) => left_out.push(json!({
                "what": format!("chain report of {lot}"),
                "why": status.message(),
            })),
        }
    }

    // The checkpoint, taken after the answers, so that every event they cite is in its tree.
    let cp = log
        .get_checkpoint(v1::GetCheckpointRequest { tree_size: 0 })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut bundle = json!({
        "lotline_bundle": FORMAT,
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "server": a.client.server,
        "scope": {"org": a.org, "status": a.status, "lots": a.lots, "claim": a.claim},
        "checkpoint": {
            "note": cp.note,
            "tree_size": cp.tree_size,
            "root_hash": hex::encode(&cp.root_hash),
            "verifier_key": cp.verifier_key,
        },
        "anomalies": lotline_proto::documents::anomalies_json(&anomalies),
        "anomalies_current_to": current_to,
        "counts": counts,
        "status_counts": status_counts,
        "ledgers": to_value(&ledgers)?,
        "lots": lot_answers,
        "chain_reports": chain_reports,
    });

    // The inclusion proof of every cited event, in that tree.
    let mut proofs = Vec::new();
    for event_id in cited(&bundle) {
        let proof = log
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                leaf: Some(v1::get_inclusion_proof_request::Leaf::EventId(
                    event_id.clone(),
                )),
                tree_size: cp.tree_size,
            })
            .await;
        match proof {
            Ok(p) => {
                let p = p.into_inner();
                proofs.push(json!({
                    "event_id": event_id,
                    "leaf_index": p.leaf_index,
                    "leaf": STANDARD.encode(&p.leaf),
                    "leaf_hash": hex::encode(&p.leaf_hash),
                    "audit_path": p.audit_path.iter().map(hex::encode).collect::<Vec<_>>(),
                }));
            }
            Err(status) => left_out.push(json!({
                "what": format!("the proof of event {event_id}"),
                "why": status.message(),
            })),
        }
    }
    let proved = proofs.len();
    bundle["proofs"] = Value::Array(proofs);
    bundle["left_out"] = Value::Array(left_out);
    let text = serde_json::to_string_pretty(&bundle)
        .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?;
    std::fs::write(&a.out, text + "\n")
        .map_err(|e| CliError::Usage(format!("--out {}: {e}", a.out.display())))?;
    outln!(
        "Wrote {}: {} anomalies, {} ledgers, {} lots, {} events proved in the signed tree of {} entries{}.",
        a.out.display(),
        anomalies.len(),
        ledgers.len(),
        lots.len(),
        proved,
        cp.tree_size,
        match bundle["left_out"].as_array().map_or(0, Vec::len) {
            0 => String::new(),
            n => format!(" ({n} parts left out: see left_out)"),
        }
    );
    Ok(())
}

/// What `verify --bundle` found.
struct Checked {
    tree_size: u64,
    key: String,
    proved: usize,
    hash_only: usize,
    reviews: usize,
    problems: Vec<String>,
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

fn hash(text: &str, what: &str) -> Result<Hash, String> {
    hex::decode(text)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
        .ok_or_else(|| format!("{what} is not a 32-byte hex hash"))
}

/// Checks a bundle; `pinned`: the verifier key to trust (else the bundle's own).
fn check(bundle: &Value, pinned: Option<&str>) -> Result<Checked, CliError> {
    let refused = |m: String| CliError::Refused(format!("the bundle does not verify: {m}"));
    if bundle["lotline_bundle"].as_u64() != Some(FORMAT) {
        return Err(refused(format!(
            "it is not a lotline bundle of format {FORMAT} (no \"lotline_bundle\": {FORMAT})"
        )));
    }
    let cp = &bundle["checkpoint"];
    let key = pinned.unwrap_or(text(cp, "verifier_key")).to_string();
    let verifier =
        Verifier::parse(&key).map_err(|e| CliError::Usage(format!("verifier key {key:?}: {e}")))?;
    let signed = verifier
        .open(text(cp, "note"))
        .map_err(|e| refused(format!("the checkpoint's signature does not hold: {e}")))?;
    let mut problems = Vec::new();
    if cp["tree_size"].as_u64() != Some(signed.size)
        || text(cp, "root_hash") != hex::encode(signed.root)
    {
        problems.push("the checkpoint's fields disagree with its signed note".to_string());
    }

    // Every proof, against the signed root; the leaf, where given, is the event it names.
    let mut proved: BTreeMap<String, Option<lotline_domain::Event>> = BTreeMap::new();
    let mut hash_only = 0;
    for (n, p) in bundle["proofs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let event_id = text(p, "event_id").to_string();
        let what = format!("proof {n} (event {event_id:?})");
        let outcome = (|| -> Result<Option<lotline_domain::Event>, String> {
            let index = p["leaf_index"]
                .as_u64()
                .ok_or_else(|| "no leaf_index".to_string())?;
            let path = p["audit_path"]
                .as_array()
                .ok_or_else(|| "no audit_path".to_string())?
                .iter()
                .map(|h| hash(h.as_str().unwrap_or_default(), "an audit path entry"))
                .collect::<Result<Vec<_>, _>>()?;
            let leaf_bytes = STANDARD
                .decode(text(p, "leaf"))
                .map_err(|e| format!("the leaf is not base64: {e}"))?;
            let (leaf, event) = if leaf_bytes.is_empty() {
                (hash(text(p, "leaf_hash"), "leaf_hash")?, None)
            } else {
                let event = Record::decode(&leaf_bytes)
                    .and_then(|r| r.event())
                    .map_err(|e| format!("the leaf is not a lotline record: {e}"))?;
                if event.id != event_id {
                    return Err(format!("the leaf holds event {:?}", event.id));
                }
                (leaf_hash(&leaf_bytes), Some(event))
            };
            verify_inclusion(&leaf, index, signed.size, &path, &signed.root)
                .map_err(|e| format!("the inclusion proof does not hold: {e}"))?;
            Ok(event)
        })();
        match outcome {
            Ok(event) => {
                hash_only += usize::from(event.is_none());
                proved.insert(event_id, event);
            }
            Err(why) => problems.push(format!("{what}: {why}")),
        }
    }

    // Every cited event is proved.
    for event_id in cited(bundle) {
        if !proved.contains_key(&event_id) {
            problems.push(format!(
                "event {event_id:?} is cited but has no inclusion proof"
            ));
        }
    }

    // Anomaly ids are made from their kind, event and lot; reviews are the events they cite.
    let mut reviews = 0;
    for a in bundle["anomalies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let id = text(a, "id");
        match AnomalyKind::parse(text(a, "kind")) {
            Some(kind) if anomaly_id(kind, text(a, "event_id"), text(a, "lot")) == id => {}
            _ => problems.push(format!(
                "anomaly {id:?}: its id is not made from its kind, event and lot"
            )),
        }
        for r in a["reviews"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let event_id = text(r, "event_id");
            // A review proved by its hash only (not in the bundle maker's view), or not at all
            // (a problem above), has no event to compare.
            if let Some(Some(event)) = proved.get(event_id) {
                match &event.kind {
                    EventKind::Review(review)
                        if review.anomaly == id
                            && review.verdict.as_str() == text(r, "verdict")
                            && review.note == text(r, "note")
                            && event.org == text(r, "org") =>
                    {
                        reviews += 1;
                    }
                    _ => problems.push(format!(
                        "anomaly {id:?}: review {event_id:?} is not what the log records"
                    )),
                }
            }
        }
    }
    Ok(Checked {
        tree_size: signed.size,
        key: verifier.name().to_string(),
        proved: proved.len(),
        hash_only,
        reviews,
        problems,
    })
}

/// `lotline verify --bundle FILE [--key KEY]`.
pub(crate) fn verify(path: &Path, pinned: Option<&str>) -> Result<(), CliError> {
    let written = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--bundle {}: {e}", path.display())))?;
    let bundle: Value = serde_json::from_str(&written).map_err(|e| {
        CliError::Usage(format!(
            "--bundle {}: not JSON (line {}): {e}",
            path.display(),
            e.line()
        ))
    })?;
    let checked = check(&bundle, pinned)?;
    if !checked.problems.is_empty() {
        return Err(CliError::Refused(format!(
            "the bundle does not verify ({} problems):\n  {}",
            checked.problems.len(),
            checked.problems.join("\n  ")
        )));
    }
    outln!(
        "Bundle {} verifies: a checkpoint of {} entries signed by {}{}; {} cited events proved in it{}; {} reviews match the events that record them.",
        path.display(),
        checked.tree_size,
        checked.key,
        if pinned.is_some() {
            ""
        } else {
            " (the key the bundle gives: pin the log's key with --key to trust no one's word)"
        },
        checked.proved,
        match checked.hash_only {
            0 => String::new(),
            n => format!(" ({n} by their leaf hash only: not in the bundle maker's view)"),
        },
        checked.reviews
    );
    if let Some(left) = bundle["left_out"].as_array().filter(|l| !l.is_empty()) {
        outln!("Left out when it was made ({}):", left.len());
        for part in left {
            outln!("  {}: {}", text(part, "what"), text(part, "why"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cited_events_are_every_event_id_field_of_the_answers() {
        let bundle = json!({
            "anomalies": [{"event_id": "e1", "reviews": [{"event_id": "r1"}]}, {"event_id": ""}],
            "ledgers": [{"entries": [{"eventId": "e2"}]}],
            "lots": {"L": {"events": [{"event_id": "e3"}]}},
            "chain_reports": {"L": {"stages": [{"entries": [{"eventId": "e1"}]}]}},
            "proofs": [{"event_id": "not-cited"}],
        });
        assert_eq!(
            cited(&bundle).into_iter().collect::<Vec<_>>(),
            ["e1", "e2", "e3", "r1"]
        );
    }

    #[test]
    fn a_bundle_without_its_format_or_checkpoint_is_refused() {
        assert!(matches!(
            check(&json!({"anomalies": []}), None),
            Err(CliError::Refused(_))
        ));
        assert!(check(&json!({"lotline_bundle": 1, "checkpoint": {}}), None).is_err());
    }
}
