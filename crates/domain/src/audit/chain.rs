//! The chain-of-custody report an auditor works through (reference/domain.md
//! §1.3): each stage of a lot's chain with the org and site that did it, the
//! event date, and whether that org held a valid certificate for the product on
//! that date; and the stages that are missing.
//!
//! Textile stages: farm → ginner → spinner → weaver/knitter → wet processing →
//! cut-make-trim → brand. A lot is expected to have passed every stage up to the
//! one that made it; a garment (made by cut-make-trim) is expected to reach a brand;
//! a lot no event creates, every stage before the brand.
//! Cocoa and coffee report the same way with their own stages; which are
//! expected follows the same rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::audit::certs::{CertStatus, Certificates};
use crate::audit::rules::normalise_process;
use crate::event::{Event, EventKind, OrgRole, RegisterOrg};
use crate::lineage::UpstreamLot;

/// The stages of a chain, in order, and the processes that belong to each.
/// The first stage is the farm (a Harvest); a stage with no processes is the brand.
fn stages(chain: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match chain {
        "textile" => &[
            ("farm", &[]),
            ("ginner", &["ginning"]),
            ("spinner", &["spinning"]),
            ("weaver/knitter", &["weaving", "knitting"]),
            (
                "wet processing",
                &[
                    "wet_processing",
                    "dyeing",
                    "printing",
                    "finishing",
                    "bleaching",
                    "washing",
                ],
            ),
            (
                "cut-make-trim",
                &[
                    "cut_make_trim",
                    "cmt",
                    "sewing",
                    "garment_making",
                    "cutting",
                    "assembly",
                ],
            ),
            ("brand", &[]),
        ],
        "cocoa" => &[
            ("farm", &[]),
            (
                "primary processing",
                &["fermenting", "drying", "fermenting_drying"],
            ),
            (
                "grinding",
                &[
                    "roasting",
                    "grinding",
                    "roasting_grinding",
                    "pressing",
                    "winnowing",
                ],
            ),
            ("manufacturing", &["manufacturing", "conching", "moulding"]),
            ("brand", &[]),
        ],
        "coffee" => &[
            ("farm", &[]),
            (
                "wet mill",
                &["pulping", "wet_milling", "fermenting", "drying"],
            ),
            (
                "dry mill",
                &["hulling", "dry_milling", "sorting", "grading"],
            ),
            ("roaster", &["roasting"]),
            ("brand", &[]),
        ],
        _ => &[],
    }
}

/// The stage a process belongs to in `chain`, with its position.
fn stage_of(chain: &str, process: &str) -> Option<(usize, &'static str)> {
    let p = normalise_process(process);
    stages(chain)
        .iter()
        .enumerate()
        .find(|(_, (_, procs))| procs.contains(&p.as_str()))
        .map(|(i, (name, _))| (i, *name))
}

/// A certificate held on the event date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCertificate {
    pub standard: String,
    pub certificate_id: String,
    pub valid_to: Option<NaiveDate>,
    /// Recorded by the certified org itself, not by a certifier.
    pub self_declared: bool,
}

/// One event at a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEntry {
    pub org: String,
    pub org_name: Option<String>,
    pub site: Option<String>,
    pub event_id: String,
    pub date: NaiveDate,
    pub process: String,
    /// The lots the event made (or received, for the brand).
    pub lots: Vec<String>,
    pub product: Option<String>,
    /// Certificates valid on the date for the product.
    pub certificates: Vec<HeldCertificate>,
    /// Why the org held none, when it had one that lapsed.
    pub lapsed: Option<String>,
}

impl StageEntry {
    pub fn certified(&self) -> bool {
        !self.certificates.is_empty()
    }
}

/// One stage and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub entries: Vec<StageEntry>,
    /// Expected for this lot (up to the stage that made it) but not found.
    pub missing: bool,
}

/// The report for one lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub lot: String,
    pub chain: Option<String>,
    pub product: Option<String>,
    pub stages: Vec<Stage>,
    /// Names of the stages that are missing, in chain order.
    pub missing: Vec<String>,
    /// Steps that belong to no stage (aggregation, splits, ...).
    pub other: Vec<StageEntry>,
}

/// What the store fetched for a report.
pub struct ChainFacts<'a> {
    pub lot: &'a str,
    pub upstream: &'a [UpstreamLot],
    pub orgs: &'a BTreeMap<String, RegisterOrg>,
    pub certs: &'a Certificates,
    /// Receive and Ship events of the lot itself (where a brand takes it).
    pub movements: &'a [Arc<Event>],
    /// The chain the events mentioning the lot name, for a lot no event creates.
    pub chain_hint: Option<&'a str>,
}

fn entry(
    facts: &ChainFacts<'_>,
    event: &Event,
    process: &str,
    lots: Vec<String>,
    product: Option<String>,
    org: &str,
) -> StageEntry {
    let date = event.time.date_naive();
    let chain = event.chain.map(|c| c.as_str());
    let product_name = product.clone().unwrap_or_default();
    let certificates: Vec<HeldCertificate> = facts
        .certs
        .valid_on(org, &product_name, chain, date)
        .into_iter()
        .map(|c| HeldCertificate {
            standard: c.standard.clone(),
            certificate_id: c.certificate_id.clone(),
            valid_to: c.valid_to,
            self_declared: c.self_declared(),
        })
        .collect();
    let lapsed = if certificates.is_empty() {
        // Its own certificates and its co-op's, whichever lapsed.
        facts
            .certs
            .covering(org, date)
            .filter_map(|c| {
                match facts
                    .certs
                    .status(org, &c.standard, &product_name, chain, date)
                {
                    CertStatus::Lapsed { reason, .. } => Some(reason),
                    _ => None,
                }
            })
            .next()
    } else {
        None
    };
    StageEntry {
        org: org.to_string(),
        org_name: facts.orgs.get(org).map(|o| o.name.clone()),
        site: event.site.clone(),
        event_id: event.id.clone(),
        date,
        process: process.to_string(),
        lots,
        product,
        certificates,
        lapsed,
    }
}

/// Draws up the report.
pub fn report(facts: &ChainFacts<'_>) -> ChainReport {
    let root = facts.upstream.first();
    let chain = root
        .and_then(|l| l.chain.clone())
        .or_else(|| facts.chain_hint.map(str::to_string));
    let names = stages(chain.as_deref().unwrap_or_default());
    let mut found: Vec<Vec<StageEntry>> = vec![Vec::new(); names.len()];
    let mut other = Vec::new();
    let mut seen_events = std::collections::BTreeSet::new();
    let chain_name = chain.clone().unwrap_or_default();
    for up in facts.upstream {
        for event in &up.creations {
            if !seen_events.insert(event.id.clone()) {
                continue;
            }
            match &event.kind {
                EventKind::Harvest(h) => {
                    let e = entry(
                        facts,
                        event,
                        "harvest",
                        vec![h.lot.clone()],
                        Some(h.product.clone()),
                        &event.org,
                    );
                    if let Some(slot) = found.first_mut() {
                        slot.push(e);
                    }
                }
                EventKind::Transform(t) => {
                    let lots: Vec<String> = t.outputs.iter().map(|o| o.lot.clone()).collect();
                    let product = t
                        .outputs
                        .iter()
                        .find(|o| o.lot == up.lot)
                        .map(|o| o.product.clone());
                    let e = entry(facts, event, &t.process, lots, product, &event.org);
                    match stage_of(&chain_name, &t.process) {
                        Some((i, _)) => found[i].push(e),
                        None => other.push(e),
                    }
                }
                _ => {}
            }
        }
    }
    // The brand: an org registered as a brand (or retailer) that receives the lot
    // or that the lot is shipped to.
    let is_brand = |org: &str| {
        facts
            .orgs
            .get(org)
            .is_some_and(|o| matches!(o.role, OrgRole::Brand | OrgRole::Retailer))
    };
    let brand_slot = names.len().checked_sub(1);
    // A brand that made the lot itself (chocolate bars from liquor it bought).
    if let (Some(r), Some(i)) = (root, brand_slot) {
        for event in r.creations.iter().filter(|e| is_brand(&e.org)) {
            let e = entry(
                facts,
                event,
                "made by the brand",
                vec![facts.lot.to_string()],
                r.product.clone(),
                &event.org,
            );
            found[i].push(e);
        }
    }
    for event in facts.movements {
        let (org, process) = match &event.kind {
            EventKind::Receive(_) if is_brand(&event.org) => (event.org.clone(), "receive"),
            EventKind::Ship(m) if is_brand(&m.counterparty) => (m.counterparty.clone(), "ship"),
            _ => continue,
        };
        let product = root.and_then(|r| r.product.clone());
        let mut e = entry(
            facts,
            event,
            process,
            vec![facts.lot.to_string()],
            product,
            &org,
        );
        if process == "ship" {
            // The shipper's site, not the brand's.
            e.site = None;
        }
        if let Some(i) = brand_slot {
            found[i].push(e);
        }
    }
    // Expected: every stage up to the one that made the lot (the furthest stage
    // found when its own step belongs to none, every stage before the brand when
    // no event creates it); a lot made at the stage before the brand (a garment)
    // is expected to reach the brand.
    let own_stage = root.and_then(|r| {
        r.creations.iter().find_map(|e| match &e.kind {
            EventKind::Harvest(h) if h.lot == r.lot => Some(0),
            EventKind::Transform(t) => stage_of(&chain_name, &t.process).map(|(i, _)| i),
            _ => None,
        })
    });
    let made_upto = if root.is_none_or(|r| !r.known) {
        brand_slot.and_then(|b| b.checked_sub(1))
    } else {
        own_stage.or_else(|| {
            found
                .iter()
                .enumerate()
                .rev()
                .find(|(i, f)| !f.is_empty() && Some(*i) != brand_slot)
                .map(|(i, _)| i)
        })
    };
    let expected_upto = match (made_upto, brand_slot) {
        (Some(f), Some(b)) if f + 1 == b => Some(b),
        (f, _) => f,
    };
    let mut stage_list = Vec::new();
    let mut missing = Vec::new();
    for (i, ((name, _), mut entries)) in names.iter().zip(found).enumerate() {
        entries.sort_by(|a, b| (a.date, &a.event_id).cmp(&(b.date, &b.event_id)));
        let is_missing = entries.is_empty() && expected_upto.is_some_and(|u| i <= u);
        if is_missing {
            missing.push(name.to_string());
        }
        stage_list.push(Stage {
            name: name.to_string(),
            entries,
            missing: is_missing,
        });
    }
    other.sort_by(|a, b| (a.date, &a.event_id).cmp(&(b.date, &b.event_id)));
    ChainReport {
        lot: facts.lot.to_string(),
        chain,
        product: root.and_then(|l| l.product.clone()),
        stages: stage_list,
        missing,
        other,
    }
}
