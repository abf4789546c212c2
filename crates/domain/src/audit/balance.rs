//! Mass balance (reference/domain.md §1.1): a running ledger per site, or per
//! group of sites, and product. Certified input received (or harvested) is a
//! credit; certified output sold is a debit, converted back to the input product
//! through the conversion ratio of every transform between them. The balance may
//! never go negative: each point where it does is a violation.
//!
//! Entries are ordered by event time, then event id, so the ledger does not
//! depend on the order events arrived in.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::event::{Event, EventKind};
use crate::lineage::{UpstreamLot, observed_yield};
use crate::quantity::{Dimension, Quantity, Unit};

/// How deep a sold lot is converted back through transforms.
const MAX_DEPTH: usize = 64;

/// The ledger that sales made of unknown-origin lots are charged to.
pub const UNKNOWN_PRODUCT: &str = "unknown origin";

/// Decimal places kept in ledger figures.
const DECIMALS: u32 = 6;

/// Which ledgers to draw up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceQuery {
    pub org: String,
    /// The sites in scope; empty = every event of the org (group mass balance).
    pub sites: Vec<String>,
    /// Only the ledger of this input product (case-insensitive); `None` = every product.
    pub product: Option<String>,
    /// Inclusive start and exclusive end of the period reported; earlier entries
    /// make the opening balance.
    pub from: Option<DateTime<FixedOffset>>,
    pub to: Option<DateTime<FixedOffset>>,
    /// The claim the ledger counts, normally "fairtrade".
    pub claim: String,
}

/// Credit or debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Certified input received or harvested.
    Input,
    /// Certified output sold, as input equivalent.
    Output,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// One line of a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub time: DateTime<FixedOffset>,
    pub event_id: String,
    pub direction: Direction,
    pub lot: String,
    /// The product of the lot moved (for an output, the product sold).
    pub lot_product: String,
    pub site: Option<String>,
    /// The quantity the event states.
    pub quantity: Quantity,
    /// The entry's amount of the ledger's product, in the ledger's unit.
    pub amount: Decimal,
    /// For an output made by transforms: the quantity sold over all the input it
    /// stands for (every ledger's share together), the overall conversion applied.
    pub ratio: Option<Decimal>,
    /// The balance after this entry.
    pub balance: Decimal,
}

/// One product's ledger over the period asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub org: String,
    pub sites: Vec<String>,
    pub product: String,
    pub unit: Unit,
    /// Balance carried in from before the period.
    pub opening: Decimal,
    pub inputs: Decimal,
    pub outputs: Decimal,
    pub closing: Decimal,
    /// The period's entries, in order.
    pub entries: Vec<LedgerEntry>,
    /// Indexes into `entries` of each output after which the balance is negative.
    pub violations: Vec<usize>,
    /// Why some movements could not be counted (units that do not convert, ...).
    pub notes: Vec<String>,
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn has_claim(lot: &UpstreamLot, claim: &str) -> bool {
    lot.claims.iter().any(|c| norm(c) == claim)
}

/// The unit a ledger is kept in: kilograms for mass, otherwise the base unit.
fn ledger_unit(dimension: &Dimension) -> Unit {
    match dimension {
        Dimension::Mass => Unit::Kilogram,
        Dimension::Length => Unit::Millimetre,
        Dimension::Volume => Unit::Litre,
        Dimension::Count => Unit::Piece,
        Dimension::Other(s) => Unit::Other(s.clone()),
    }
}

/// A sold quantity converted back to the products it was made of: product →
/// base amount. Stops at lots the org did not make by a transform (received or
/// harvested lots). Amounts that cannot be converted are reported in `notes`.
struct Converter<'f> {
    org: &'f str,
    facts: &'f dyn Fn(&str) -> Option<UpstreamLot>,
    notes: Vec<String>,
}

impl Converter<'_> {
    fn back(&mut self, lot: &str, base: Decimal, out: &mut BTreeMap<String, (Decimal, Dimension)>) {
        let mut seen = HashSet::new();
        self.back_at(lot, base, out, 0, &mut seen);
    }

    fn back_at(
        &mut self,
        lot: &str,
        base: Decimal,
        out: &mut BTreeMap<String, (Decimal, Dimension)>,
        depth: usize,
        seen: &mut HashSet<String>,
    ) {
        let Some(facts) = (self.facts)(lot) else {
            return;
        };
        // A lot no event creates has no known product: its share of a sale is
        // counted in one "unknown origin" ledger, which nothing ever credits.
        let product = match (&facts.product, facts.known) {
            (Some(p), true) => p.clone(),
            _ => UNKNOWN_PRODUCT.to_string(),
        };
        let made_here = facts.creations.iter().find(|e| {
            e.org == self.org && matches!(&e.kind, EventKind::Transform(t) if t.outputs.iter().any(|o| o.lot == lot))
        });
        let Some(event) = made_here.filter(|_| depth < MAX_DEPTH && seen.insert(lot.to_string()))
        else {
            let dim = facts
                .creations
                .iter()
                .find_map(|e| created_unit(e, lot))
                .map(|u| u.dimension())
                .unwrap_or(Dimension::Mass);
            let entry = out.entry(norm(&product)).or_insert((Decimal::ZERO, dim));
            entry.0 = entry.0.saturating_add(base);
            return;
        };
        let EventKind::Transform(t) = &event.kind else {
            return;
        };
        // The ratio stated on the transform, else the yield it recorded.
        let ratio = t
            .conversion_ratio
            .or_else(|| observed_yield(t, |_| true))
            .filter(|r| !r.is_zero());
        let Some(ratio) = ratio else {
            self.notes.push(format!(
                "transform {} has no conversion ratio and its yield cannot be computed; lot {lot:?} is counted as it is",
                event.id
            ));
            let entry = out
                .entry(norm(&product))
                .or_insert((Decimal::ZERO, Dimension::Mass));
            entry.0 = entry.0.saturating_add(base);
            return;
        };
        let input_total: Decimal = t
            .inputs
            .iter()
            .filter_map(|i| i.quantity.base_amount())
            .fold(Decimal::ZERO, Decimal::saturating_add);
        let Some(equivalent) = base.checked_div(ratio) else {
            return;
        };
        for input in &t.inputs {
            let share = match input.quantity.base_amount() {
                Some(b) if !input_total.is_zero() => b / input_total,
                _ => continue,
            };
            self.back_at(
                &input.lot,
                equivalent.saturating_mul(share),
                out,
                depth + 1,
                seen,
            );
        }
        seen.remove(lot);
    }
}

fn created_unit(event: &Event, lot: &str) -> Option<Unit> {
    match &event.kind {
        EventKind::Harvest(h) if h.lot == lot => Some(h.quantity.unit.clone()),
        EventKind::Transform(t) => t
            .outputs
            .iter()
            .find(|o| o.lot == lot)
            .map(|o| o.quantity.unit.clone()),
        _ => None,
    }
}

/// One movement before it is placed in its ledger.
struct Movement {
    time: DateTime<FixedOffset>,
    event_id: String,
    direction: Direction,
    lot: String,
    lot_product: String,
    site: Option<String>,
    quantity: Quantity,
    /// Ledger product → (base amount, dimension).
    parts: BTreeMap<String, (Decimal, Dimension)>,
}

/// Draws up the ledgers `query` asks for from the org's events. `facts` answers
/// what lineage knows of a lot (its product, claims and creating events).
pub fn ledgers(
    query: &BalanceQuery,
    events: &[&Event],
    facts: &dyn Fn(&str) -> Option<UpstreamLot>,
) -> Vec<Ledger> {
    let claim = norm(&query.claim);
    let in_scope = |e: &Event| {
        e.org == query.org
            && (query.sites.is_empty()
                || e.site
                    .as_deref()
                    .is_some_and(|s| query.sites.iter().any(|q| q == s)))
    };
    let mut converter = Converter {
        org: &query.org,
        facts,
        notes: Vec::new(),
    };
    let mut movements: Vec<Movement> = Vec::new();
    for event in events.iter().copied().filter(|e| in_scope(e)) {
        let (direction, lots): (Direction, Vec<(&str, &Quantity)>) = match &event.kind {
            EventKind::Harvest(h) => (Direction::Input, vec![(h.lot.as_str(), &h.quantity)]),
            EventKind::Receive(m) => (
                Direction::Input,
                m.lots
                    .iter()
                    .map(|l| (l.lot.as_str(), &l.quantity))
                    .collect(),
            ),
            EventKind::Ship(m) => (
                Direction::Output,
                m.lots
                    .iter()
                    .map(|l| (l.lot.as_str(), &l.quantity))
                    .collect(),
            ),
            _ => continue,
        };
        for (lot, quantity) in lots {
            let Some(lot_facts) = facts(lot) else {
                continue;
            };
            if !has_claim(&lot_facts, &claim) {
                continue;
            }
            let Some(base) = quantity.base_amount() else {
                continue;
            };
            let lot_product = lot_facts.product.clone().unwrap_or_default();
            let mut parts = BTreeMap::new();
            match direction {
                Direction::Input => {
                    parts.insert(norm(&lot_product), (base, quantity.unit.dimension()));
                }
                Direction::Output => converter.back(lot, base, &mut parts),
            }
            movements.push(Movement {
                time: event.time,
                event_id: event.id.clone(),
                direction,
                lot: lot.to_string(),
                lot_product,
                site: event.site.clone(),
                quantity: quantity.clone(),
                parts,
            });
        }
    }
    movements.sort_by(|a, b| (a.time, &a.event_id, &a.lot).cmp(&(b.time, &b.event_id, &b.lot)));
    let wanted = query.product.as_deref().map(norm);
    let mut by_product: BTreeMap<String, Ledger> = BTreeMap::new();
    for m in &movements {
        for (product, (base, dimension)) in &m.parts {
            if wanted.as_ref().is_some_and(|w| w != product) {
                continue;
            }
            let ledger = by_product.entry(product.clone()).or_insert_with(|| Ledger {
                org: query.org.clone(),
                sites: query.sites.clone(),
                product: product.clone(),
                unit: ledger_unit(dimension),
                opening: Decimal::ZERO,
                inputs: Decimal::ZERO,
                outputs: Decimal::ZERO,
                closing: Decimal::ZERO,
                entries: Vec::new(),
                violations: Vec::new(),
                notes: Vec::new(),
            });
            if ledger_unit(dimension) != ledger.unit {
                ledger.notes.push(format!(
                    "event {} moves {} of {product} in a unit that does not convert to {}; left out",
                    m.event_id, m.quantity, ledger.unit
                ));
                continue;
            }
            let amount = (*base / ledger.unit.base_factor()).round_dp(DECIMALS);
            let signed = match m.direction {
                Direction::Input => amount,
                Direction::Output => -amount,
            };
            let before_period = query.from.is_some_and(|f| m.time < f);
            let after_period = query.to.is_some_and(|t| m.time >= t);
            if after_period {
                continue;
            }
            if before_period {
                ledger.opening = ledger.opening.saturating_add(signed);
                ledger.closing = ledger.closing.saturating_add(signed);
                continue;
            }
            ledger.closing = ledger.closing.saturating_add(signed);
            match m.direction {
                Direction::Input => ledger.inputs = ledger.inputs.saturating_add(amount),
                Direction::Output => ledger.outputs = ledger.outputs.saturating_add(amount),
            }
            // The conversion applied: the quantity sold over all the input it
            // stands for (whatever ledgers that input falls in).
            let all_parts = m
                .parts
                .values()
                .fold(Decimal::ZERO, |acc, (b, _)| acc.saturating_add(*b));
            let ratio = (m.direction == Direction::Output && !all_parts.is_zero())
                .then(|| {
                    m.quantity
                        .base_amount()
                        .map(|b| (b / all_parts).round_dp(4).normalize())
                })
                .flatten()
                .filter(|r| *r != Decimal::ONE);
            ledger.entries.push(LedgerEntry {
                time: m.time,
                event_id: m.event_id.clone(),
                direction: m.direction,
                lot: m.lot.clone(),
                lot_product: m.lot_product.clone(),
                site: m.site.clone(),
                quantity: m.quantity.clone(),
                amount,
                ratio,
                balance: ledger.closing,
            });
            if m.direction == Direction::Output && ledger.closing < Decimal::ZERO {
                ledger.violations.push(ledger.entries.len() - 1);
            }
        }
    }
    let mut out: Vec<Ledger> = by_product.into_values().collect();
    if let Some(first) = out.first_mut() {
        first.notes.append(&mut converter.notes);
    }
    out
}

/// Each output that leaves a ledger negative, as an anomaly.
pub fn violations(ledgers: &[Ledger], claim: &str) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ledger in ledgers {
        for &i in &ledger.violations {
            let Some(entry) = ledger.entries.get(i) else {
                continue;
            };
            let scope = if ledger.sites.is_empty() {
                "all sites".to_string()
            } else {
                format!("sites {}", ledger.sites.join(", "))
            };
            out.push(
                Anomaly::new(
                    AnomalyKind::NegativeMassBalance,
                    &entry.lot,
                    Some(&entry.event_id),
                    format!(
                        "{} sold {} of {:?} as {claim} ({} {} of {}), leaving the {} balance at {} {} ({scope}): more sold than bought",
                        ledger.org,
                        entry.quantity,
                        entry.lot,
                        entry.amount.normalize(),
                        ledger.unit,
                        ledger.product,
                        ledger.product,
                        entry.balance.normalize(),
                        ledger.unit
                    ),
                )
                .org(&ledger.org)
                .figure("product", &ledger.product)
                .figure("unit", &ledger.unit)
                .figure("debit", entry.amount.normalize())
                .figure("balance", entry.balance.normalize())
                .figure("scope", scope),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
