//! Who may act on a lot (shared names have owners, DESIGN §5a): judged when a question is
//! asked, from the events on the lot as the log holds them then, never at intake (events
//! arrive in any order, and a ship may be recorded before the harvest it ships).
//!
//! - The lot's **owner** is the org of its first recorded creation (a Harvest of it or a
//!   Transform that outputs it), as an event id belongs to the org that first used it. Every
//!   node reads the same log in the same order, so every node names the same owner. Later
//!   creations by the owner add to the lot; a creation by another org is left out.
//! - The owner **holds** the lot. So does an org a holder shipped it to, and an org that
//!   received it from a holder, from the time of that ship or receipt (with
//!   [`CLOCK_MARGIN`] for clocks that disagree). Holding is found by repeating over the
//!   moves until nothing changes, so the order of a chain's moves in the log does not matter.
//! - A holder that has **shipped all of it** (its ships of the lot reach what it created and was
//!   sent or received) holds it no longer from that ship on, unless some of the lot comes back
//!   to it later. Quantities of different dimensions are not judged.
//! - Only a holder may **consume** (transform, split) or **ship** the lot. An event by an org
//!   that did not hold the lot at the event's time is kept in the log, reported as a
//!   [`AnomalyKind::NotHolder`] anomaly naming both orgs, and left out of the lot's lineage:
//!   no such event can change the trace, recall, state or verdict of a lot its org does not
//!   hold.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};
use rust_decimal::Decimal;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::event::{Event, EventKind, LotRole};
use crate::quantity::{Dimension, Quantity};

/// The quantities of `lot` an event creates (`Some(true)`), consumes (`Some(false)`) or moves
/// (`None`).
fn quantities<'a>(event: &'a Event, lot: &str, created: Option<bool>) -> Vec<&'a Quantity> {
    match (&event.kind, created) {
        (EventKind::Harvest(h), Some(true)) if h.lot == lot => vec![&h.quantity],
        (EventKind::Transform(t), Some(true)) => t
            .outputs
            .iter()
            .filter(|o| o.lot == lot)
            .map(|o| &o.quantity)
            .collect(),
        (EventKind::Transform(t), Some(false)) => t
            .inputs
            .iter()
            .filter(|i| i.lot == lot)
            .map(|i| &i.quantity)
            .collect(),
        (EventKind::Ship(m) | EventKind::Receive(m), None) => m
            .lots
            .iter()
            .filter(|l| l.lot == lot)
            .map(|l| &l.quantity)
            .collect(),
        _ => Vec::new(),
    }
}

/// Sums quantities of one dimension, in its base unit; says when it met another dimension.
#[derive(Default)]
struct Tally {
    dimension: Option<Dimension>,
    mixed: bool,
}

impl Tally {
    /// The base amount of `quantities`; `None` when one overflows.
    fn of(&mut self, quantities: &[&Quantity]) -> Option<Decimal> {
        let mut sum = Decimal::ZERO;
        for q in quantities {
            let dimension = q.unit.dimension();
            match &self.dimension {
                None => self.dimension = Some(dimension),
                Some(d) if *d != dimension => self.mixed = true,
                Some(_) => {}
            }
            sum = sum.checked_add(q.base_amount()?)?;
        }
        Some(sum)
    }
}

fn add(a: Option<Decimal>, b: Option<Decimal>) -> Option<Decimal> {
    a?.checked_add(b?)
}

/// How far a transfer may be dated after an event of its new holder and still count for it.
pub const CLOCK_MARGIN: Duration = Duration::days(1);

/// The events on one lot, judged: which count, and who holds the lot.
#[derive(Debug, Default)]
pub struct LotCustody {
    /// The org of the first recorded creation.
    pub owner: Option<String>,
    /// Orgs other than the owner that hold the lot, each from the earliest transfer to it.
    pub holders: BTreeMap<String, DateTime<FixedOffset>>,
    /// Holders (the owner too) that shipped all they had of the lot, each with that ship's time:
    /// after it they hold it no longer.
    pub shipped_all: BTreeMap<String, DateTime<FixedOffset>>,
    /// Creations by the owner, in log order.
    pub creations: Vec<Arc<Event>>,
    /// Transforms that consume the lot, by orgs that held it, in log order.
    pub consumptions: Vec<Arc<Event>>,
    /// Ships and receipts that count, in log order.
    pub moves: Vec<Arc<Event>>,
    /// Every event that mentions the lot and counts (the above, and observations, payments and
    /// certificates, which are not judged), in log order.
    pub mentions: Vec<Arc<Event>>,
    /// Ids of the events left out.
    pub excluded: HashSet<String>,
    /// Why each was left out.
    pub anomalies: Vec<Anomaly>,
}

impl LotCustody {
    /// Judges `mentions`: every event that mentions `lot`, in log order.
    pub fn judge(lot: &str, mentions: &[Arc<Event>]) -> LotCustody {
        LotCustody::judge_carried(lot, mentions, &[])
    }

    /// Judges `mentions` with the moves of the containers that carried the lot
    /// ([`crate::containers::carried_moves`]): those that count transfer holding as the lot's
    /// own moves do, and are among [`LotCustody::moves`]; one that does not is not reported
    /// (the container's events are judged as the container's).
    pub fn judge_carried(lot: &str, mentions: &[Arc<Event>], carried: &[Arc<Event>]) -> LotCustody {
        let role = |e: &Event, want: LotRole| e.has_lot_role(lot, want);
        let mut judged = LotCustody {
            owner: mentions
                .iter()
                .find(|e| role(e, LotRole::Created))
                .map(|e| e.org.clone()),
            ..LotCustody::default()
        };
        // A lot no event creates has no owner to judge by: its origin is unknown (and reported
        // so), and every event on it counts.
        if judged.owner.is_none() {
            for event in mentions {
                if role(event, LotRole::Consumed) {
                    judged.consumptions.push(Arc::clone(event));
                }
                if matches!(event.kind, EventKind::Ship(_) | EventKind::Receive(_)) {
                    judged.moves.push(Arc::clone(event));
                }
                judged.mentions.push(Arc::clone(event));
            }
            return judged;
        }
        // The lot's own moves first (the admission below pairs them with the mentions in
        // order), then the carried ones.
        let moves: Vec<&Arc<Event>> = mentions
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Ship(_) | EventKind::Receive(_)))
            .chain(carried)
            .collect();
        // Holding follows the moves; a holder that shipped all of it stops holding, which can
        // take away what its later moves gave: settle both until they agree (a few rounds).
        let mut counted = judged.settle(&moves);
        for _ in 0..4 {
            let shipped_all = judged.shipped_all(lot, mentions, &moves, &counted);
            if shipped_all == judged.shipped_all {
                break;
            }
            judged.shipped_all = shipped_all;
            counted = judged.settle(&moves);
        }
        let mut counted_moves = moves.iter().zip(&counted);
        for event in mentions {
            let org = &event.org;
            let admitted = if role(event, LotRole::Created) {
                let by_owner = judged.owner.as_deref() == Some(org.as_str());
                if !by_owner {
                    let why = format!(
                        "{org:?} creates lot {lot:?}, a name {} took first",
                        judged.held_by()
                    );
                    judged.exclude(lot, event, why);
                }
                by_owner
            } else if role(event, LotRole::Consumed) {
                let held = judged.holds(org, event.time);
                if !held {
                    let why = format!(
                        "{org:?} consumes lot {lot:?} without holding it (held by {}){}",
                        judged.held_by(),
                        judged.gone(org)
                    );
                    judged.exclude(lot, event, why);
                }
                held
            } else if let EventKind::Ship(_) | EventKind::Receive(_) = &event.kind {
                let (_, counts) = counted_moves.next().expect("one entry per move");
                if !counts {
                    let why = match &event.kind {
                        EventKind::Receive(m) => format!(
                            "{org:?} receives lot {lot:?} from {:?}, which did not hold it (held by {})",
                            m.counterparty,
                            judged.held_by()
                        ),
                        _ => format!(
                            "{org:?} ships lot {lot:?} without holding it (held by {}){}",
                            judged.held_by(),
                            judged.gone(org)
                        ),
                    };
                    judged.exclude(lot, event, why);
                }
                *counts
            } else {
                true
            };
            if !admitted {
                continue;
            }
            if role(event, LotRole::Created) {
                judged.creations.push(Arc::clone(event));
            }
            if role(event, LotRole::Consumed) {
                judged.consumptions.push(Arc::clone(event));
            }
            if matches!(event.kind, EventKind::Ship(_) | EventKind::Receive(_)) {
                judged.moves.push(Arc::clone(event));
            }
            judged.mentions.push(Arc::clone(event));
        }
        for (event, counts) in counted_moves {
            if *counts {
                judged.moves.push(Arc::clone(event));
            }
        }
        judged
    }

    /// Whether `org` held the lot at `time`.
    pub fn holds(&self, org: &str, time: DateTime<FixedOffset>) -> bool {
        let started = self.owner.as_deref() == Some(org)
            || self
                .holders
                .get(org)
                .is_some_and(|since| *since <= time + CLOCK_MARGIN);
        started && self.shipped_all.get(org).is_none_or(|at| time <= *at)
    }

    /// Which `moves` count, holders found from scratch: repeated until no move adds a holder
    /// (at most one pass per move), so the order of a chain's moves in the log does not matter.
    fn settle(&mut self, moves: &[&Arc<Event>]) -> Vec<bool> {
        self.holders.clear();
        let mut counted: Vec<bool> = vec![false; moves.len()];
        loop {
            let mut changed = false;
            for (n, event) in moves.iter().enumerate() {
                if counted[n] {
                    continue;
                }
                let (from, to) = match &event.kind {
                    EventKind::Ship(m) => (event.org.as_str(), m.counterparty.as_str()),
                    EventKind::Receive(m) => (m.counterparty.as_str(), event.org.as_str()),
                    _ => continue,
                };
                // A receipt by a holder needs no sender that holds the lot.
                let receipt_by_holder =
                    matches!(event.kind, EventKind::Receive(_)) && self.holds(to, event.time);
                if self.holds(from, event.time) || receipt_by_holder {
                    counted[n] = true;
                    changed = true;
                    if self.owner.as_deref() != Some(to) {
                        let since = self.holders.entry(to.to_string()).or_insert(event.time);
                        *since = (*since).min(event.time);
                    }
                }
            }
            if !changed {
                return counted;
            }
        }
    }

    /// When each holder shipped all it had of `lot`. What it had: what it created (the owner)
    /// and the larger of what holders shipped to it and what it says it received (a ship and
    /// its receipt are one transfer). Its counted ships, in event-time order: the one that
    /// makes them reach what it had ends its holding, unless some of the lot comes to it after
    /// that ship. (What it consumed is the mass balance's business: over-consumption is
    /// reported there.)
    fn shipped_all(
        &self,
        lot: &str,
        mentions: &[Arc<Event>],
        moves: &[&Arc<Event>],
        counted: &[bool],
    ) -> BTreeMap<String, DateTime<FixedOffset>> {
        let counted_moves: Vec<&Arc<Event>> = moves
            .iter()
            .zip(counted)
            .filter(|(_, c)| **c)
            .map(|(e, _)| *e)
            .collect();
        let mut out = BTreeMap::new();
        for org in self.owner.iter().chain(self.holders.keys()) {
            let mut tally = Tally::default();
            let mut last_in: Option<DateTime<FixedOffset>> = None;
            let mut note_in = |t: DateTime<FixedOffset>| {
                last_in = Some(last_in.map_or(t, |l| l.max(t)));
            };
            let (mut created, mut sent, mut received) = (
                Some(Decimal::ZERO),
                Some(Decimal::ZERO),
                Some(Decimal::ZERO),
            );
            let mut outs: Vec<(DateTime<FixedOffset>, Option<Decimal>)> = Vec::new();
            for event in mentions.iter().filter(|e| e.org == *org) {
                if self.owner.as_deref() == Some(org.as_str())
                    && event
                        .lots()
                        .iter()
                        .any(|(l, r)| *l == lot && *r == LotRole::Created)
                {
                    created = add(created, tally.of(&quantities(event, lot, Some(true))));
                    note_in(event.time);
                }
            }
            for event in &counted_moves {
                match &event.kind {
                    EventKind::Ship(m) if m.counterparty == *org => {
                        sent = add(sent, tally.of(&quantities(event, lot, None)));
                        note_in(event.time);
                    }
                    EventKind::Receive(_) if event.org == *org => {
                        received = add(received, tally.of(&quantities(event, lot, None)));
                        note_in(event.time);
                    }
                    EventKind::Ship(_) if event.org == *org => {
                        outs.push((event.time, tally.of(&quantities(event, lot, None))));
                    }
                    _ => {}
                }
            }
            let had = match (created, sent, received) {
                (Some(c), Some(s), Some(r)) if !tally.mixed => c.checked_add(s.max(r)),
                _ => None,
            };
            let Some(had) = had.filter(|h| *h > Decimal::ZERO) else {
                continue;
            };
            outs.sort_by_key(|(t, _)| *t);
            let mut gone = Some(Decimal::ZERO);
            for (time, amount) in outs {
                gone = add(gone, amount);
                let Some(so_far) = gone else { break };
                if so_far >= had {
                    if last_in.is_none_or(|l| l <= time) {
                        out.insert(org.clone(), time);
                    }
                    break;
                }
            }
        }
        out
    }

    /// ", after shipping all of it on …" when `org` did.
    fn gone(&self, org: &str) -> String {
        self.shipped_all
            .get(org)
            .map(|at| format!(", after shipping all of it on {}", at.to_rfc3339()))
            .unwrap_or_default()
    }

    /// Whether the event with `event_id` counts for this lot.
    pub fn admits(&self, event_id: &str) -> bool {
        !self.excluded.contains(event_id)
    }

    /// The orgs that hold the lot, owner first.
    fn held_by(&self) -> String {
        self.owner
            .iter()
            .chain(self.holders.keys())
            .map(|o| format!("{o:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn exclude(&mut self, lot: &str, event: &Event, why: String) {
        if !self.excluded.insert(event.id.clone()) {
            return;
        }
        let mut anomaly = Anomaly::new(
            AnomalyKind::NotHolder,
            lot,
            Some(&event.id),
            format!("{why}; the event is left out of the lot's lineage"),
        )
        .org(&event.org);
        if let Some(owner) = &self.owner {
            anomaly = anomaly.figure("owner", owner);
        }
        self.anomalies.push(anomaly);
    }
}
