//! Logistic units: pallets, cases, loggers. An EPCIS AggregationEvent (or AssociationEvent)
//! packs its children into its parent with `ADD` (or asserts them with `OBSERVE`) and takes them
//! out with `DELETE` (all of them when it lists none). A container is packed, not made: these
//! are its packings over time, what it held and when, and what carried a lot.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::event::{Event, EventKind};

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
}

/// Whether `event` packs into or unpacks from a parent: its parent and children.
fn aggregation(event: &Event) -> Option<(&str, &str, Vec<&str>)> {
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
            });
        }
    }
    all.sort_by(|a, b| {
        (&a.container, a.packed_at, &a.item).cmp(&(&b.container, b.packed_at, &b.item))
    });
    all
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
