//! Mass balance (reference/domain.md §1.1): a running ledger per site, or per
//! group of sites, and product. Certified input received (or harvested) is a
//! credit; certified output sold is a debit, converted back to the input product
//! through the conversion ratio of every transform between them. The balance may
//! never go negative: each point where it does is a violation.
//!
//! Entries are ordered by event time, then event id, so the ledger does not
//! depend on the order events arrived in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::audit::certs::standard_matches;
use crate::event::{Event, EventKind, Transform};
use crate::lineage::{UpstreamLot, created_quantity, observed_yield};
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
    lot.claims.iter().any(|c| standard_matches(claim, c))
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

/// Ledger product → (amount in the product's base unit, its dimension).
type Parts = BTreeMap<String, (Decimal, Dimension)>;

/// Converts sold quantities back to the products they were made of. Each lot's
/// conversion (amount of each product per base unit of the lot) is computed once
/// and kept, so a lot reached by many paths costs one visit. A conversion stops
/// at lots the org did not make by a transform (received or harvested lots).
struct Converter<'f> {
    org: &'f str,
    facts: &'f dyn Fn(&str) -> Option<UpstreamLot>,
    /// Sorted, so the answer does not depend on the order events arrived in.
    notes: BTreeSet<String>,
    memo: HashMap<String, Arc<Parts>>,
    in_progress: HashSet<String>,
}

impl Converter<'_> {
    /// `base` base units of `lot`, as amounts of the products it was made of.
    fn back(&mut self, lot: &str, base: Decimal) -> Parts {
        let per_unit = self.per_unit(lot, 0);
        let mut out = Parts::new();
        for (product, (amount, dim)) in per_unit.iter() {
            match amount.checked_mul(base) {
                Some(a) => {
                    out.insert(product.clone(), (a, dim.clone()));
                }
                None => {
                    self.notes.insert(format!(
                        "the sale of {lot:?} converts to more {product} than lotline can count; left out"
                    ));
                }
            }
        }
        out
    }

    /// This lot as its own product: one unit per unit.
    fn terminal(facts: Option<&UpstreamLot>, lot: &str) -> Parts {
        // A lot no event creates has no known product: its share of a sale is
        // counted in one "unknown origin" ledger, which nothing ever credits.
        let product = match facts {
            Some(f) if f.known => f.product.clone().unwrap_or_else(|| lot.to_string()),
            _ => UNKNOWN_PRODUCT.to_string(),
        };
        let dim = facts
            .and_then(|f| {
                f.creations
                    .iter()
                    .find_map(|e| created_quantity(e, lot).map(|q| q.unit.dimension()))
            })
            .unwrap_or(Dimension::Mass);
        Parts::from([(norm(&product), (Decimal::ONE, dim))])
    }

    fn per_unit(&mut self, lot: &str, depth: usize) -> Arc<Parts> {
        if let Some(known) = self.memo.get(lot) {
            return Arc::clone(known);
        }
        let facts = (self.facts)(lot);
        let made_here = facts.as_ref().and_then(|f| {
            f.creations
                .iter()
                .find(|e| {
                    e.org == self.org
                        && matches!(&e.kind, EventKind::Transform(t) if t.outputs.iter().any(|o| o.lot == lot))
                })
                .cloned()
        });
        let cycle = depth >= MAX_DEPTH || self.in_progress.contains(lot);
        let parts = match made_here.filter(|_| !cycle) {
            None => Self::terminal(facts.as_ref(), lot),
            Some(event) => {
                self.in_progress.insert(lot.to_string());
                let parts = match &event.kind {
                    EventKind::Transform(t) => self.through(lot, &event, t, depth),
                    _ => Self::terminal(facts.as_ref(), lot),
                };
                self.in_progress.remove(lot);
                parts
            }
        };
        let parts = Arc::new(parts);
        if !cycle {
            self.memo.insert(lot.to_string(), Arc::clone(&parts));
        }
        parts
    }

    /// Input per base unit of output `lot` of transform `t`, as products.
    fn through(&mut self, lot: &str, event: &Event, t: &Transform, depth: usize) -> Parts {
        let bases: Vec<Option<Decimal>> =
            t.inputs.iter().map(|i| i.quantity.base_amount()).collect();
        let input_total = bases
            .iter()
            .flatten()
            .fold(Decimal::ZERO, |a, b| a.saturating_add(*b));
        let same_dimension = {
            let mut dims = t
                .inputs
                .iter()
                .map(|i| i.quantity.unit.dimension())
                .chain(t.outputs.iter().map(|o| o.quantity.unit.dimension()));
            let first = dims.next();
            dims.all(|d| Some(d) == first)
        };
        // Input (base) per output (base): through the ratio stated on the
        // transform, else the yield it recorded; when inputs and outputs measure
        // different things (kg into pieces), by what this output took of the inputs.
        let per_output_unit: Option<Decimal> = if same_dimension {
            t.conversion_ratio
                .or_else(|| observed_yield(t, |_| true))
                .filter(|r| !r.is_zero())
                .and_then(|r| Decimal::ONE.checked_div(r))
                .and_then(|per| per.checked_div(input_total))
        } else {
            let this = t
                .outputs
                .iter()
                .find(|o| o.lot == lot)
                .and_then(|o| o.quantity.base_amount())
                .filter(|b| !b.is_zero());
            let outs: Vec<&crate::quantity::Quantity> =
                t.outputs.iter().map(|o| &o.quantity).collect();
            let out_dims_same = outs
                .windows(2)
                .all(|w| w[0].unit.dimension() == w[1].unit.dimension());
            let out_total = outs
                .iter()
                .filter_map(|q| q.base_amount())
                .fold(Decimal::ZERO, |a, b| a.saturating_add(b));
            let share = if out_dims_same && !out_total.is_zero() {
                this.and_then(|b| b.checked_div(out_total))
            } else {
                Decimal::ONE.checked_div(Decimal::from(t.outputs.len()))
            };
            self.notes.insert(format!(
                "transform {} turns one measure into another; its sales are converted by what each output took of the inputs",
                event.id
            ));
            match (share, this) {
                (Some(s), Some(b)) => s.checked_div(b),
                _ => None,
            }
        };
        let Some(per_output_unit) = per_output_unit else {
            self.notes.insert(format!(
                "transform {} has no conversion ratio and its yield cannot be computed; lot {lot:?} is counted as it is",
                event.id
            ));
            return Self::terminal((self.facts)(lot).as_ref(), lot);
        };
        let mut parts = Parts::new();
        for (input, base) in t.inputs.iter().zip(&bases) {
            let Some(base) = base else {
                continue;
            };
            // per_output_unit × (this input's part of all input).
            let Some(weight) = per_output_unit.checked_mul(*base) else {
                continue;
            };
            let upstream = self.per_unit(&input.lot, depth + 1);
            for (product, (amount, dim)) in upstream.iter() {
                match amount.checked_mul(weight) {
                    Some(a) => {
                        let entry = parts
                            .entry(product.clone())
                            .or_insert((Decimal::ZERO, dim.clone()));
                        entry.0 = entry.0.saturating_add(a);
                    }
                    None => {
                        self.notes.insert(format!(
                            "converting {lot:?} back through transform {} exceeds what lotline can count; that part is left out",
                            event.id
                        ));
                    }
                }
            }
        }
        parts
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
        memo: HashMap::new(),
        in_progress: HashSet::new(),
        org: &query.org,
        facts,
        notes: BTreeSet::new(),
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
                Direction::Output => parts = converter.back(lot, base),
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
    // At one instant, what came in counts before what went out.
    let key = |m: &Movement| {
        (
            m.time,
            m.direction == Direction::Output,
            m.event_id.clone(),
            m.lot.clone(),
        )
    };
    movements.sort_by_key(key);
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
                        .and_then(|b| b.checked_div(all_parts))
                        .map(|r| r.round_dp(4).normalize())
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
        first.notes.extend(converter.notes);
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
