//! Logistic units: pallets, cases, loggers. An EPCIS AggregationEvent (or AssociationEvent)
//! packs its children into its parent with `ADD` (or asserts them with `OBSERVE`) and takes them
//! out with `DELETE` (all of them when it lists none). A container is packed, not made: these
//! are its packings over time, what it held and when, and what carried a lot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::event::{Event, EventKind, LotQuantity};
use crate::quantity::Quantity;

/// One item in one container for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packing {
    pub container: String,
    pub item: String,
    /// The org that packed it.
    pub org: String,
    pub packed_at: DateTime<FixedOffset>,
    pub packed_by: String,
    /// When it was taken out, and by which event; `None` while it is still in.
    pub unpacked_at: Option<DateTime<FixedOffset>>,
    pub unpacked_by: Option<String>,
    /// The quantity packed, when the packing event states one (an EPCIS `childQuantityList`).
    pub quantity: Option<Quantity>,
}

impl Packing {
    /// Whether the item was in the container at `time` (packed then or before, not taken out
    /// before).
    pub fn holds_at(&self, time: DateTime<FixedOffset>) -> bool {
        self.packed_at <= time && self.unpacked_at.is_none_or(|out| time <= out)
    }
}

/// The quantity `event` states for `item`, among the quantities it lists.
fn stated(event: &Event, item: &str) -> Option<Quantity> {
    let EventKind::Observe(o) = &event.kind else {
        return None;
    };
    o.lots
        .iter()
        .find(|l| l.lot == item)
        .map(|l| l.quantity.clone())
}

/// Whether `event` packs into or unpacks from a parent: its parent, action and children.
pub(crate) fn aggregation(event: &Event) -> Option<(&str, &str, Vec<&str>)> {
    let EventKind::Observe(o) = &event.kind else {
        return None;
    };
    if !matches!(
        o.event_type.as_str(),
        "AggregationEvent" | "AssociationEvent"
    ) {
        return None;
    }
    let parent = o.parent.as_deref()?;
    let children = o
        .epcs
        .iter()
        .map(String::as_str)
        .chain(o.lots.iter().map(|l| l.lot.as_str()))
        .collect();
    Some((parent, o.action.as_str(), children))
}

/// Every packing `events` record, in the order of event time then id, whatever order they came
/// in; sorted by container, time packed, item.
pub fn packings<'e>(events: impl IntoIterator<Item = &'e Event>) -> Vec<Packing> {
    let mut ordered: Vec<&Event> = events
        .into_iter()
        .filter(|e| aggregation(e).is_some())
        .collect();
    ordered.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    ordered.dedup_by(|a, b| a.id == b.id);
    let mut all: Vec<Packing> = Vec::new();
    // (container, item) -> the index of its open packing in `all`.
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    for event in ordered {
        let Some((parent, action, children)) = aggregation(event) else {
            continue;
        };
        if action.eq_ignore_ascii_case("DELETE") {
            let closing: Vec<(String, String)> = if children.is_empty() {
                open.keys().filter(|(c, _)| c == parent).cloned().collect()
            } else {
                children
                    .iter()
                    .map(|c| (parent.to_string(), c.to_string()))
                    .collect()
            };
            for key in closing {
                if let Some(at) = open.remove(&key) {
                    all[at].unpacked_at = Some(event.time);
                    all[at].unpacked_by = Some(event.id.clone());
                }
            }
            continue;
        }
        for child in children {
            let key = (parent.to_string(), child.to_string());
            if open.contains_key(&key) {
                continue;
            }
            open.insert(key, all.len());
            all.push(Packing {
                container: parent.to_string(),
                item: child.to_string(),
                org: event.org.clone(),
                packed_at: event.time,
                packed_by: event.id.clone(),
                unpacked_at: None,
                unpacked_by: None,
                quantity: stated(event, child),
            });
        }
    }
    all.sort_by(|a, b| {
        (&a.container, a.packed_at, &a.item).cmp(&(&b.container, b.packed_at, &b.item))
    });
    all
}

/// The Ships and Receives of the containers `lot` was packed in, while it was in them, as moves
/// of `lot` itself: a pallet shipped or received moves what it holds then (one level of
/// packing). Each is the container's event with its lots replaced by `lot`, in the quantity
/// the event gives the container. `mentions` are the events on `lot`; `of_container` reads the
/// events on a container. An event that names `lot` itself moves it already and is left out.
pub fn carried_moves<E>(
    lot: &str,
    mentions: &[Arc<Event>],
    mut of_container: impl FnMut(&str) -> Result<Vec<Arc<Event>>, E>,
) -> Result<Vec<Arc<Event>>, E> {
    let containers: BTreeSet<&str> = mentions
        .iter()
        .filter_map(|e| aggregation(e))
        .filter(|(parent, _, children)| *parent != lot && children.contains(&lot))
        .map(|(parent, _, _)| parent)
        .collect();
    if containers.is_empty() {
        return Ok(Vec::new());
    }
    let named: BTreeSet<&str> = mentions.iter().map(|e| e.id.as_str()).collect();
    let mut out = Vec::new();
    for container in containers {
        let events = of_container(container)?;
        let spans: Vec<Packing> = packings(events.iter().map(|e| e.as_ref()))
            .into_iter()
            .filter(|p| p.container == container && p.item == lot)
            .collect();
        for event in &events {
            let (EventKind::Ship(m) | EventKind::Receive(m)) = &event.kind else {
                continue;
            };
            let Some(moved) = m.lots.iter().find(|l| l.lot == container) else {
                continue;
            };
            let inside = spans.iter().any(|p| p.holds_at(event.time));
            if !inside || named.contains(event.id.as_str()) {
                continue;
            }
            let mut carried = (**event).clone();
            if let EventKind::Ship(m) | EventKind::Receive(m) = &mut carried.kind {
                m.lots = vec![LotQuantity {
                    lot: lot.to_string(),
                    quantity: moved.quantity.clone(),
                }];
            }
            out.push(Arc::new(carried));
        }
    }
    Ok(out)
}

/// What `container` held at `time`, by `events` (the events on it): one packing per item.
pub fn contents_at<'e>(
    container: &str,
    events: impl IntoIterator<Item = &'e Event>,
    time: DateTime<FixedOffset>,
) -> Vec<Packing> {
    packings(events)
        .into_iter()
        .filter(|p| p.container == container && p.holds_at(time))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Chain, Observe};
    use crate::fixtures::event;

    fn aggregate(id: &str, day: &str, action: &str, parent: &str, children: &[&str]) -> Event {
        (*event(
            id,
            "coop",
            day,
            Chain::Cocoa,
            EventKind::Observe(Observe {
                event_type: "AggregationEvent".into(),
                action: action.into(),
                biz_step: "packing".into(),
                disposition: "in_progress".into(),
                lots: Vec::new(),
                epcs: children.iter().map(|c| c.to_string()).collect(),
                parent: Some(parent.into()),
            }),
        ))
        .clone()
    }

    #[test]
    fn packings_follow_add_and_delete_in_time_order_whatever_order_they_came_in() {
        let events = [
            aggregate("unpack-all", "2026-02-05", "DELETE", "P2", &[]),
            aggregate("pack", "2026-02-01", "ADD", "P1", &["A", "B"]),
            aggregate("take-b", "2026-02-03", "DELETE", "P1", &["B"]),
            aggregate("repack-b", "2026-02-04", "ADD", "P2", &["B", "C"]),
            aggregate("pack", "2026-02-01", "ADD", "P1", &["A", "B"]),
            aggregate("seen", "2026-02-04", "OBSERVE", "P1", &["A"]),
        ];
        let found = packings(events.iter());
        fn row(p: &Packing) -> (&str, &str, &str, Option<&str>) {
            (
                p.container.as_str(),
                p.item.as_str(),
                p.packed_by.as_str(),
                p.unpacked_by.as_deref(),
            )
        }
        assert_eq!(
            found.iter().map(row).collect::<Vec<_>>(),
            [
                ("P1", "A", "pack", None),
                ("P1", "B", "pack", Some("take-b")),
                ("P2", "B", "repack-b", Some("unpack-all")),
                ("P2", "C", "repack-b", Some("unpack-all")),
            ]
        );
        assert_eq!(
            found[1]
                .unpacked_at
                .map(|t| t.date_naive().to_string())
                .as_deref(),
            Some("2026-02-03")
        );
    }
}
