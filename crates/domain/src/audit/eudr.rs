//! EUDR due diligence (reference/domain.md §1.4): every origin plot of a lot,
//! as an RFC 7946 GeoJSON FeatureCollection with the properties of the EU's
//! GeoJSON file description, and a verdict: EUDR-traceable or not, with every
//! reason. EUDR allows no mass balance: one mass-balance or unknown-origin input
//! makes the whole lot not traceable. Production before the cut-off date is
//! fine (the cut-off concerns deforestation, not harvests).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::event::{Event, EventKind, RegisterOrg, RegisterPlot};
use crate::geo::{bare_geometry, eudr_grade};
use crate::lineage::{UpstreamLot, declares_mass_balance};

/// The deforestation cut-off date (Art. 2(13)).
pub const CUTOFF: &str = "2020-12-31";

/// Chains whose commodity EUDR covers (cotton is not an EUDR commodity).
pub fn applies_to(chain: Option<&str>) -> bool {
    matches!(chain, Some("cocoa" | "coffee"))
}

/// The verdict on one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Traceable,
    NotTraceable,
    /// The lot's commodity is outside EUDR (reasons are still listed).
    NotApplicable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Traceable => "eudr_traceable",
            Verdict::NotTraceable => "not_traceable",
            Verdict::NotApplicable => "not_applicable",
        }
    }
}

/// A due-diligence statement reference given on a Ship event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DdsReference {
    pub reference: String,
    pub verification: Option<String>,
    /// The lot the shipment carried (the traced lot or one upstream of it).
    pub lot: String,
    pub event_id: String,
    pub org: String,
    pub date: NaiveDate,
}

/// One origin plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EudrPlot {
    pub plot: String,
    /// The org that registered the plot (the producer).
    pub owner: Option<String>,
    pub producer_name: Option<String>,
    pub country: Option<String>,
    /// The registered GeoJSON geometry; `None` when the plot was never registered.
    pub geometry: Option<String>,
    pub area_ha: Option<Decimal>,
    /// The origin (harvest) lots from this plot in the traced lot.
    pub origin_lots: Vec<String>,
    pub production_start: Option<NaiveDate>,
    pub production_end: Option<NaiveDate>,
    /// Why the plot's geolocation is not EUDR-grade (empty when it is).
    pub issues: Vec<String>,
}

/// The EUDR answer for a lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EudrReport {
    pub lot: String,
    pub product: Option<String>,
    pub chain: Option<String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub plots: Vec<EudrPlot>,
    pub dds: Vec<DdsReference>,
}

/// What the store fetched for an assessment.
pub struct EudrFacts<'a> {
    pub lot: &'a str,
    /// `Lineage::upstream(lot)`: the lot first, then everything upstream.
    pub upstream: &'a [UpstreamLot],
    /// The standing registration of each plot the origins name.
    pub plots: &'a BTreeMap<String, (Arc<Event>, RegisterPlot)>,
    /// Registered orgs by id.
    pub orgs: &'a BTreeMap<String, RegisterOrg>,
    /// Ship events that mention the lot or any upstream lot.
    pub shipments: &'a [Arc<Event>],
}

fn is_dds(kind: &str) -> bool {
    let k = kind.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    matches!(
        k.as_str(),
        "dds" | "dds_reference" | "eudr_dds" | "eudr" | "due_diligence_statement" | "ddsreference"
    )
}

fn is_dds_verification(kind: &str) -> bool {
    let k = kind.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    matches!(k.as_str(), "dds_verification" | "eudr_verification")
}

/// Due-diligence references on shipments of `lots` (a lot and everything
/// upstream): carried to every downstream lot.
pub fn dds_references(lots: &BTreeSet<&str>, shipments: &[Arc<Event>]) -> Vec<DdsReference> {
    let mut out = BTreeSet::new();
    for event in shipments {
        let EventKind::Ship(m) = &event.kind else {
            continue;
        };
        let verification = m
            .documents
            .iter()
            .find(|d| is_dds_verification(&d.kind))
            .map(|d| d.id.clone());
        for doc in m.documents.iter().filter(|d| is_dds(&d.kind)) {
            for l in m.lots.iter().filter(|l| lots.contains(l.lot.as_str())) {
                out.insert(DdsReference {
                    reference: doc.id.clone(),
                    verification: verification.clone(),
                    lot: l.lot.clone(),
                    event_id: event.id.clone(),
                    org: event.org.clone(),
                    date: event.time.date_naive(),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Assesses a lot for EUDR.
pub fn assess(facts: &EudrFacts<'_>) -> EudrReport {
    let root = facts.upstream.first();
    let chain = root.and_then(|l| l.chain.clone());
    let mut reasons: Vec<String> = Vec::new();
    if root.is_none_or(|l| !l.known) {
        reasons.push(format!(
            "lot {:?} is of unknown origin: no event creates it",
            facts.lot
        ));
    }
    for up in facts.upstream.iter().filter(|u| u.lot != facts.lot) {
        if !up.known {
            reasons.push(format!(
                "input lot {:?} is of unknown origin (used but never created); mixing with unknown-origin material makes the whole lot non-compliant",
                up.lot
            ));
        }
    }
    // Named where mass balance is declared; the lots made from it inherit it,
    // and an unknown-origin input is its own reason.
    for up in facts.upstream.iter().filter(|u| u.known) {
        if let Some(by) = up
            .creations
            .iter()
            .find(|e| declares_mass_balance(e, &up.lot))
        {
            reasons.push(format!(
                "lot {:?} is under mass balance (declared by event {}); EUDR allows no mass balance",
                up.lot, by.id
            ));
        }
    }
    // Every harvest upstream, grouped by plot (a lot may have several harvests).
    let mut by_plot: BTreeMap<String, EudrPlot> = BTreeMap::new();
    let harvests = facts
        .upstream
        .iter()
        .flat_map(|u| u.creations.iter())
        .filter_map(|e| match &e.kind {
            EventKind::Harvest(h) => Some((e, h)),
            _ => None,
        });
    for (event, h) in harvests {
        let entry = by_plot.entry(h.plot.clone()).or_insert_with(|| {
            let registered = facts.plots.get(&h.plot);
            let owner = registered
                .map(|(e, _)| e.org.clone())
                .unwrap_or_else(|| event.org.clone());
            let org = facts.orgs.get(&owner);
            let (geometry, area_ha, country, issues) = match registered {
                Some((_, p)) => (
                    Some(p.geometry.clone()),
                    p.area_ha,
                    Some(p.country.clone()),
                    eudr_grade(&p.geometry, p.area_ha, &p.country),
                ),
                // Never registered: the producer's registered country at least.
                None => (None, None, org.map(|o| o.country.clone()), Vec::new()),
            };
            EudrPlot {
                plot: h.plot.clone(),
                producer_name: org.map(|o| o.name.clone()),
                owner: Some(owner),
                country,
                geometry,
                area_ha,
                origin_lots: Vec::new(),
                production_start: None,
                production_end: None,
                issues,
            }
        });
        if !entry.origin_lots.contains(&h.lot) {
            entry.origin_lots.push(h.lot.clone());
        }
        // The harvest dates; a harvest without them was produced on its event's date.
        let day = event.time.date_naive();
        let start = h.harvest_start.unwrap_or(day);
        let end = h.harvest_end.unwrap_or(start.max(day));
        entry.production_start = Some(entry.production_start.map_or(start, |s| s.min(start)));
        entry.production_end = Some(entry.production_end.map_or(end, |e| e.max(end)));
    }
    if by_plot.is_empty() && root.is_some_and(|l| l.known) {
        reasons.push(format!(
            "no harvest is known upstream of {:?}: the lot traces to no plot",
            facts.lot
        ));
    }
    for plot in by_plot.values() {
        if plot.geometry.is_none() {
            reasons.push(format!(
                "plot {:?} (origin of {}) has no geolocation: it was never registered",
                plot.plot,
                plot.origin_lots.join(", ")
            ));
        }
        for issue in &plot.issues {
            reasons.push(format!("plot {:?}: {issue}", plot.plot));
        }
    }
    let lots: BTreeSet<&str> = facts.upstream.iter().map(|u| u.lot.as_str()).collect();
    let unknown_root = root.is_none_or(|l| !l.known);
    let verdict = if unknown_root {
        Verdict::NotTraceable
    } else if !applies_to(chain.as_deref()) {
        Verdict::NotApplicable
    } else if reasons.is_empty() {
        Verdict::Traceable
    } else {
        Verdict::NotTraceable
    };
    EudrReport {
        lot: facts.lot.to_string(),
        product: root.and_then(|l| l.product.clone()),
        chain,
        verdict,
        reasons,
        plots: by_plot.into_values().collect(),
        dds: dds_references(&lots, facts.shipments),
    }
}

fn decimal_number(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// The geometry as registered (a Feature's geometry when a Feature was
/// registered), numbers kept as written, rings wound as RFC 7946 §3.1.6 asks:
/// exterior rings counterclockwise, holes clockwise.
fn geometry_value(text: &str) -> Value {
    let mut value = serde_json::from_str::<Value>(&bare_geometry(text)).unwrap_or(Value::Null);
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(coordinates) = value.get_mut("coordinates") {
        match kind.as_deref() {
            Some("Polygon") => rewind_polygon(coordinates),
            Some("MultiPolygon") => {
                if let Some(polygons) = coordinates.as_array_mut() {
                    polygons.iter_mut().for_each(rewind_polygon);
                }
            }
            _ => {}
        }
    }
    value
}

/// Twice the signed area of a ring (positive when counterclockwise).
fn signed_area(ring: &[Value]) -> f64 {
    let point = |p: &Value| {
        let x = p.get(0).and_then(Value::as_f64).unwrap_or(0.0);
        let y = p.get(1).and_then(Value::as_f64).unwrap_or(0.0);
        (x, y)
    };
    ring.windows(2)
        .map(|w| {
            let ((x1, y1), (x2, y2)) = (point(&w[0]), point(&w[1]));
            x1 * y2 - x2 * y1
        })
        .sum()
}

fn rewind_polygon(rings: &mut Value) {
    let Some(rings) = rings.as_array_mut() else {
        return;
    };
    for (n, ring) in rings.iter_mut().enumerate() {
        let Some(positions) = ring.as_array_mut() else {
            continue;
        };
        let area = signed_area(positions);
        let exterior = n == 0;
        if (exterior && area < 0.0) || (!exterior && area > 0.0) {
            positions.reverse();
        }
    }
}

/// The report as an RFC 7946 FeatureCollection: one Feature per origin plot with
/// `ProducerName` (left out in the public view), `ProducerCountry`,
/// `ProductionPlace` and, for points, `Area` in hectares, as the EU's GeoJSON file
/// description names them; lotline's own properties carry the `lotline:` prefix.
/// A plot never registered is a Feature with a null geometry (RFC 7946 §3.2).
pub fn feature_collection(report: &EudrReport, public: bool) -> Value {
    let features: Vec<Value> = report
        .plots
        .iter()
        .map(|p| {
            let geometry = p
                .geometry
                .as_deref()
                .map(geometry_value)
                .unwrap_or(Value::Null);
            let is_point = geometry.get("type").and_then(Value::as_str) == Some("Point");
            let mut props = Map::new();
            if !public && let Some(name) = &p.producer_name {
                props.insert("ProducerName".into(), json!(name));
            }
            if let Some(c) = &p.country {
                props.insert("ProducerCountry".into(), json!(c));
            }
            props.insert("ProductionPlace".into(), json!(p.plot));
            if let Some(a) = p.area_ha {
                if is_point {
                    props.insert("Area".into(), decimal_number(a));
                }
                props.insert("lotline:areaHa".into(), decimal_number(a));
            }
            props.insert("lotline:plot".into(), json!(p.plot));
            if !public && let Some(o) = &p.owner {
                props.insert("lotline:producer".into(), json!(o));
            }
            props.insert("lotline:originLots".into(), json!(p.origin_lots));
            if let Some(s) = p.production_start {
                props.insert("lotline:productionStart".into(), json!(s.to_string()));
            }
            if let Some(e) = p.production_end {
                props.insert("lotline:productionEnd".into(), json!(e.to_string()));
            }
            props.insert(
                "lotline:eudrGrade".into(),
                json!(p.geometry.is_some() && p.issues.is_empty()),
            );
            if !p.issues.is_empty() {
                props.insert("lotline:issues".into(), json!(p.issues));
            }
            json!({ "type": "Feature", "id": p.plot, "geometry": geometry, "properties": props })
        })
        .collect();
    let dds: Vec<Value> = report
        .dds
        .iter()
        .map(|d| {
            json!({
                "reference": d.reference,
                "verification": d.verification,
                "lot": d.lot,
                "eventId": d.event_id,
                "org": d.org,
                "date": d.date.to_string(),
            })
        })
        .collect();
    json!({
        "type": "FeatureCollection",
        "features": features,
        "lotline:lot": report.lot,
        "lotline:product": report.product,
        "lotline:chain": report.chain,
        "lotline:verdict": report.verdict.as_str(),
        "lotline:reasons": report.reasons,
        "lotline:cutoffDate": CUTOFF,
        "lotline:ddsReferences": dds,
    })
}
