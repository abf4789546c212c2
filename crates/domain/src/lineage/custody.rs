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
//! - Only a holder may **consume** (transform, split) or **ship** the lot. An event by an org
//!   that did not hold the lot at the event's time is kept in the log, reported as a
//!   [`AnomalyKind::NotHolder`] anomaly naming both orgs, and left out of the lot's lineage:
//!   no such event can change the trace, recall, state or verdict of a lot its org does not
//!   hold.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::event::{Event, EventKind, LotRole};

/// How far a transfer may be dated after an event of its new holder and still count for it.
pub const CLOCK_MARGIN: Duration = Duration::days(1);

/// The events on one lot, judged: which count, and who holds the lot.
#[derive(Debug, Default)]
pub struct LotCustody {
    /// The org of the first recorded creation.
    pub owner: Option<String>,
    /// Orgs other than the owner that hold the lot, each from the earliest transfer to it.
    pub holders: BTreeMap<String, DateTime<FixedOffset>>,
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
        let role = |e: &Event, want: LotRole| e.lots().iter().any(|(l, r)| *l == lot && *r == want);
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
        let moves: Vec<&Arc<Event>> = mentions
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Ship(_) | EventKind::Receive(_)))
            .collect();
        // Repeat until no move adds a holder: at most one pass per move.
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
                    matches!(event.kind, EventKind::Receive(_)) && judged.holds(to, event.time);
                if judged.holds(from, event.time) || receipt_by_holder {
                    counted[n] = true;
                    changed = true;
                    if judged.owner.as_deref() != Some(to) {
                        let since = judged.holders.entry(to.to_string()).or_insert(event.time);
                        *since = (*since).min(event.time);
                    }
                }
            }
            if !changed {
                break;
            }
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
                        "{org:?} consumes lot {lot:?} without holding it (held by {})",
                        judged.held_by()
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
                            "{org:?} ships lot {lot:?} without holding it (held by {})",
                            judged.held_by()
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
        judged
    }

    /// Whether `org` held the lot at `time`.
    pub fn holds(&self, org: &str, time: DateTime<FixedOffset>) -> bool {
        self.owner.as_deref() == Some(org)
            || self
                .holders
                .get(org)
                .is_some_and(|since| *since <= time + CLOCK_MARGIN)
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
