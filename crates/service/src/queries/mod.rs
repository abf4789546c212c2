//! The questions lotline answers, one method of [`crate::Service`] each, grouped as the API
//! groups them. Every answer is computed from one snapshot of the log at the time of the
//! question.

pub mod audit;
pub mod epcis;
pub mod kept;
pub mod log;
pub mod masterdata;
pub mod page;
pub mod provenance;

use chrono::{DateTime, Utc};
use lotline_domain::Event;
use lotline_domain::lineage::Lineage;
use lotline_store::{Snapshot, StoreError, StoredEvent};

use crate::views::{Level, View};

/// A stored event as answered to a caller: its place in the log, the event as the caller's view
/// shows it, and whether a correction has replaced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub seq: u64,
    pub record_time: DateTime<Utc>,
    pub event: Event,
    pub corrected: bool,
}

/// A page of stored events and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Answered>,
    pub next: Option<String>,
    /// The view the events are shown in (a party's own events are always in full).
    pub view: Level,
}

/// A stored event as `view` shows it, or `None` if the view leaves it out.
pub(crate) fn answered(
    store: &Snapshot<'_>,
    view: &View,
    s: &StoredEvent,
) -> Result<Option<Answered>, StoreError> {
    let Some(event) = view.event((*s.event).clone()) else {
        return Ok(None);
    };
    Ok(Some(Answered {
        seq: s.seq,
        record_time: s.record_time,
        event,
        corrected: store.is_corrected(&s.event.id)?,
    }))
}

pub(crate) fn answer_all(
    store: &Snapshot<'_>,
    view: &View,
    items: &[StoredEvent],
) -> Result<Vec<Answered>, StoreError> {
    items
        .iter()
        .filter_map(|s| answered(store, view, s).transpose())
        .collect()
}

/// Whether `org` created, held or received `lot` (its events mention the lot).
pub(crate) fn handled(
    store: &Snapshot<'_>,
    org: Option<&str>,
    lot: &str,
) -> Result<bool, StoreError> {
    let Some(org) = org else {
        return Ok(false);
    };
    // Only events that count for the lot: an event on a lot its org does not hold earns no view
    // of it.
    Ok(Lineage::new(store)
        .mentions(lot)?
        .iter()
        .any(|e| e.org == org))
}
