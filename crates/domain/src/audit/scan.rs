//! The anomaly listing: every business anomaly in the log, from lineage
//! (over-consumption, unknown origin, custody, claims), the rules (yields out of
//! band, prices), certificates, plots and mass balance. Facts, never rejections.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::audit::balance::{self, BalanceQuery};
use crate::audit::certs::{Certificates, LotFacts, certificate_checks};
use crate::audit::prices::payment_checks;
use crate::audit::rules::{Rules, yield_check};
use crate::event::{Event, EventKind, RegisterPlot};
use crate::geo::eudr_grade;
use crate::lineage::{Lineage, LineageSource, UpstreamLot};

/// The claim mass-balance ledgers count.
pub const BALANCE_CLAIM: &str = "fairtrade";

/// Lineage facts per lot, computed once per scan.
pub struct LotCache<'a, S: LineageSource> {
    lineage: Lineage<'a, S>,
    facts: HashMap<String, Option<UpstreamLot>>,
}

impl<'a, S: LineageSource> LotCache<'a, S> {
    pub fn new(source: &'a S) -> Self {
        LotCache {
            lineage: Lineage::new(source),
            facts: HashMap::new(),
        }
    }

    pub fn lineage(&mut self) -> &mut Lineage<'a, S> {
        &mut self.lineage
    }

    /// Computes and keeps the facts of `lots`.
    pub fn load<'l>(&mut self, lots: impl IntoIterator<Item = &'l str>) -> Result<(), S::Error> {
        for lot in lots {
            if !self.facts.contains_key(lot) {
                let f = self.lineage.lot_facts(lot)?;
                self.facts.insert(lot.to_string(), Some(f));
            }
        }
        Ok(())
    }

    /// What is known of a loaded lot.
    pub fn get(&self, lot: &str) -> Option<UpstreamLot> {
        self.facts.get(lot).cloned().flatten()
    }

    /// The facts certificate and price checks need.
    pub fn lot_facts(&self, lot: &str) -> Option<LotFacts> {
        let f = self.facts.get(lot)?.as_ref()?;
        Some(LotFacts {
            product: f.product.clone().unwrap_or_default(),
            claims: f.claims.clone(),
            chain: f.chain.clone(),
        })
    }
}

/// The anomalies one event shows under the rules, the certificates and the
/// registered plots (`plot_registered`); `cache` holds the facts of every lot
/// the event names. Lineage's own anomalies (over-consumption, custody, unknown
/// origin) come from `Lineage::lot_state`.
pub fn event_anomalies<S: LineageSource>(
    event: &Event,
    rules: &Rules,
    certs: &Certificates,
    cache: &LotCache<'_, S>,
    plot_registered: &dyn Fn(&str) -> bool,
) -> Vec<Anomaly> {
    let lot_info = |lot: &str| cache.lot_facts(lot);
    let mut out = Vec::new();
    match &event.kind {
        EventKind::Transform(t) => {
            let products: Vec<Option<String>> = t
                .inputs
                .iter()
                .map(|i| cache.get(&i.lot).and_then(|f| f.product))
                .collect();
            out.extend(yield_check(rules, event, &products));
            out.extend(certificate_checks(certs, event, &lot_info));
        }
        EventKind::Harvest(h) => {
            out.extend(certificate_checks(certs, event, &lot_info));
            if !plot_registered(&h.plot) {
                out.push(
                    Anomaly::new(
                        AnomalyKind::PlotNotRegistered,
                        &h.lot,
                        Some(&event.id),
                        format!(
                            "harvest of {:?} names plot {:?}, which was never registered: the lot has no geolocation",
                            h.lot, h.plot
                        ),
                    )
                    .org(&event.org)
                    .figure("plot", &h.plot),
                );
            }
        }
        EventKind::Ship(_) => out.extend(certificate_checks(certs, event, &lot_info)),
        EventKind::Pay(_) => out.extend(payment_checks(rules, event, &lot_info)),
        _ => {}
    }
    out
}

/// Every anomaly in `events` (the uncorrected events of the log), sorted.
/// `plots` holds the standing registration of every plot.
pub fn anomalies<S: LineageSource>(
    source: &S,
    events: &[Arc<Event>],
    rules: &Rules,
    plots: &BTreeMap<String, (Arc<Event>, RegisterPlot)>,
) -> Result<Vec<Anomaly>, S::Error> {
    let mut certs = Certificates::default();
    for e in events {
        certs.add(e);
    }
    let mut cache = LotCache::new(source);
    let mut out: BTreeSet<Anomaly> = BTreeSet::new();
    let lots: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| e.lots().into_iter().map(|(l, _)| l))
        .collect();
    for lot in &lots {
        out.extend(cache.lineage().lot_checks(lot)?);
    }
    // What the walks found upstream (unknown origins, custody, claims, cycles).
    out.extend(cache.lineage().anomalies());
    cache.load(lots.iter().copied())?;
    for event in events {
        out.extend(event_anomalies(event, rules, &certs, &cache, &|p| {
            plots.contains_key(p)
        }));
    }
    for (plot, (event, p)) in plots {
        let issues = eudr_grade(&p.geometry, p.area_ha, &p.country);
        if !issues.is_empty() {
            out.insert(
                Anomaly::new(
                    AnomalyKind::PlotNotEudrGrade,
                    "",
                    Some(&event.id),
                    format!("plot {plot:?} is not EUDR-grade: {}", issues.join("; ")),
                )
                .org(&event.org)
                .figure("plot", plot),
            );
        }
    }
    let facts = |lot: &str| cache.get(lot);
    let mut by_org: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_org.entry(e.org.as_str()).or_default().push(e);
    }
    let shipping: BTreeSet<&str> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Ship(_)))
        .map(|e| e.org.as_str())
        .collect();
    for org in shipping {
        let query = BalanceQuery {
            org: org.to_string(),
            sites: Vec::new(),
            product: None,
            from: None,
            to: None,
            claim: BALANCE_CLAIM.to_string(),
        };
        let mine = by_org.get(org).map(Vec::as_slice).unwrap_or_default();
        let ledgers = balance::ledgers(&query, mine, &facts);
        out.extend(balance::violations(&ledgers, BALANCE_CLAIM));
    }
    let containers = containers(events);
    out.retain(|a| !(a.kind == AnomalyKind::UnknownOrigin && containers.contains(a.lot.as_str())));
    Ok(out.into_iter().collect())
}

/// The logistic units among the ids of `events`: an AggregationEvent's or AssociationEvent's
/// parent, and any SSCC (GS1 key 00), unless a transformation consumed it as a lot. A container
/// is packed, not made: nothing creates it, and that is not an unknown origin.
fn containers(events: &[Arc<Event>]) -> BTreeSet<&str> {
    let mut containers = BTreeSet::new();
    let mut consumed = BTreeSet::new();
    for event in events {
        match &event.kind {
            EventKind::Observe(o) => {
                if matches!(
                    o.event_type.as_str(),
                    "AggregationEvent" | "AssociationEvent"
                ) && let Some(parent) = &o.parent
                {
                    containers.insert(parent.as_str());
                }
                containers.extend(o.epcs.iter().map(String::as_str).filter(|id| is_sscc(id)));
            }
            EventKind::Transform(t) => consumed.extend(t.inputs.iter().map(|i| i.lot.as_str())),
            _ => {}
        }
        containers.extend(
            event
                .lots()
                .into_iter()
                .map(|(lot, _)| lot)
                .filter(|id| is_sscc(id)),
        );
    }
    containers.retain(|id| !consumed.contains(id));
    containers
}

/// Whether `id` is an SSCC, as an EPC URN or a GS1 Digital Link (`…/00/{18 digits}`).
fn is_sscc(id: &str) -> bool {
    id.starts_with("urn:epc:id:sscc:")
        || id
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(_, path)| path.strip_prefix("00/"))
            .map(|key| key.split(['/', '?', '#']).next().unwrap_or(key))
            .is_some_and(|key| key.len() == 18 && key.bytes().all(|b| b.is_ascii_digit()))
}
