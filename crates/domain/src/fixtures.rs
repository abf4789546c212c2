//! Test fixtures shared by the domain's unit tests: a lineage source over a
//! plain list of events and builders for the events audits look at.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::DateTime;
use rust_decimal::Decimal;

use crate::event::*;
use crate::lineage::LineageSource;
use crate::quantity::{Quantity, Unit};

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test decimal")
}

pub fn kg(s: &str) -> Quantity {
    Quantity::new(d(s), Unit::Kilogram)
}

/// A source over a plain list of events, in whatever order they are given.
pub struct Events(pub Vec<Arc<Event>>);

impl LineageSource for Events {
    type Error = std::convert::Infallible;
    fn creations(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        Ok(self.with_role(lot, Some(LotRole::Created)))
    }
    fn consumptions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        Ok(self.with_role(lot, Some(LotRole::Consumed)))
    }
    fn mentions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        Ok(self.with_role(lot, None))
    }
}

impl crate::audit::maintained::AuditSource for Events {
    fn org_events(&self, org: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        Ok(self.0.iter().filter(|e| e.org == org).cloned().collect())
    }
    /// The latest registration by time, then id (enough for the tests' plots).
    fn plot(&self, plot: &str) -> Result<Option<(Arc<Event>, RegisterPlot)>, Self::Error> {
        Ok(self
            .0
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::RegisterPlot(p) if p.plot == plot => Some((Arc::clone(e), p.clone())),
                _ => None,
            })
            .max_by(|a, b| (a.0.time, &a.0.id).cmp(&(b.0.time, &b.0.id))))
    }
    fn event(&self, id: &str) -> Result<Option<Arc<Event>>, Self::Error> {
        Ok(self.0.iter().find(|e| e.id == id).cloned())
    }
    /// Positions are 1-based indexes into the list.
    fn log_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<crate::audit::maintained::LogChunk, Self::Error> {
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let end = start.saturating_add(limit).min(self.0.len());
        let last = (end > start).then_some(end as u64);
        Ok(crate::audit::maintained::LogChunk {
            events: self.0[start..end].to_vec(),
            last,
        })
    }
    fn plot_ids(&self) -> Result<Vec<String>, Self::Error> {
        let ids: std::collections::BTreeSet<&str> = self
            .0
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::RegisterPlot(p) => Some(p.plot.as_str()),
                _ => None,
            })
            .collect();
        Ok(ids.into_iter().map(str::to_string).collect())
    }
}

impl Events {
    fn with_role(&self, lot: &str, role: Option<LotRole>) -> Vec<Arc<Event>> {
        self.0
            .iter()
            .filter(|e| {
                e.lots()
                    .iter()
                    .any(|(l, r)| *l == lot && role.is_none_or(|x| x == *r))
            })
            .cloned()
            .collect()
    }
}

/// An event of `org` on `day` (YYYY-MM-DD, 08:00 UTC) in `chain`.
pub fn event(id: &str, org: &str, day: &str, chain: Chain, kind: EventKind) -> Arc<Event> {
    Arc::new(Event {
        id: id.into(),
        time: DateTime::parse_from_rfc3339(&format!("{day}T08:00:00+00:00")).expect("test time"),
        org: org.into(),
        chain: Some(chain),
        site: None,
        extensions: BTreeMap::new(),
        kind,
    })
}

pub fn at_site(e: Arc<Event>, site: &str) -> Arc<Event> {
    let mut e = (*e).clone();
    e.site = Some(site.into());
    Arc::new(e)
}

pub fn harvest(lot: &str, plot: &str, product: &str, qty: Quantity, claims: &[&str]) -> EventKind {
    EventKind::Harvest(Harvest {
        lot: lot.into(),
        plot: plot.into(),
        product: product.into(),
        quantity: qty,
        harvest_start: None,
        harvest_end: None,
        custody: None,
        claims: claims.iter().map(|c| c.to_string()).collect(),
    })
}

pub fn output(
    lot: &str,
    product: &str,
    qty: Quantity,
    custody: Option<CustodyModel>,
    claims: &[&str],
) -> OutputLot {
    OutputLot {
        lot: lot.into(),
        product: product.into(),
        quantity: qty,
        custody,
        claims: claims.iter().map(|c| c.to_string()).collect(),
    }
}

pub fn transform(
    process: &str,
    inputs: &[(&str, Quantity)],
    outputs: Vec<OutputLot>,
    ratio: Option<&str>,
) -> EventKind {
    EventKind::Transform(Transform {
        inputs: inputs
            .iter()
            .map(|(l, q)| LotQuantity {
                lot: l.to_string(),
                quantity: q.clone(),
            })
            .collect(),
        outputs,
        process: process.into(),
        conversion_ratio: ratio.map(d),
    })
}

fn movement(lots: &[(&str, Quantity)], counterparty: &str, documents: &[(&str, &str)]) -> Movement {
    Movement {
        lots: lots
            .iter()
            .map(|(l, q)| LotQuantity {
                lot: l.to_string(),
                quantity: q.clone(),
            })
            .collect(),
        counterparty: counterparty.into(),
        documents: documents
            .iter()
            .map(|(k, i)| BusinessDocument {
                kind: k.to_string(),
                id: i.to_string(),
            })
            .collect(),
    }
}

pub fn ship(lots: &[(&str, Quantity)], to: &str, documents: &[(&str, &str)]) -> EventKind {
    EventKind::Ship(movement(lots, to, documents))
}

pub fn receive(lots: &[(&str, Quantity)], from: &str) -> EventKind {
    EventKind::Receive(movement(lots, from, &[]))
}

/// `events` with the hand-overs their orgs would record: for every transform that consumes a lot
/// another org created, a ship of that quantity from the creator to the transformer, dated with
/// the transform (id `hand-<transform id>-<lot>`). Chains written for other checks stay short;
/// custody ([`crate::lineage::LotCustody`]) needs every hand-over in the log.
pub fn with_hand_overs(events: Vec<Arc<Event>>) -> Vec<Arc<Event>> {
    let creators: std::collections::HashMap<&str, &str> = events
        .iter()
        .flat_map(|e| {
            e.lots()
                .into_iter()
                .filter(|(_, role)| *role == LotRole::Created)
                .map(|(lot, _)| (lot, e.org.as_str()))
        })
        .collect();
    let mut ships = Vec::new();
    for e in &events {
        let EventKind::Transform(t) = &e.kind else {
            continue;
        };
        for input in &t.inputs {
            let Some(creator) = creators.get(input.lot.as_str()) else {
                continue;
            };
            if *creator != e.org {
                ships.push(Arc::new(Event {
                    id: format!("hand-{}-{}", e.id, input.lot),
                    org: creator.to_string(),
                    kind: EventKind::Ship(movement(
                        &[(input.lot.as_str(), input.quantity.clone())],
                        &e.org,
                        &[],
                    )),
                    ..(**e).clone()
                }));
            }
        }
    }
    let mut all = events;
    all.extend(ships);
    all
}
