//! EPCIS queries (the REST binding's `/events` and the resources under it): stored events in
//! their EPCIS form, as the caller's view shows them, filtered by an EPCIS [`Query`] and paged.
//!
//! An imported event comes back as it was captured (the same JSON, so the same event hash), a
//! native one as its natural EPCIS event (`lotline_epcis::export`), each with lotline's
//! `recordTime`. Results are in log order unless the query orders them; a walk of the log
//! examines at most [`SCAN`] events per page, so a query that matches little answers a short
//! page with a cursor rather than reading the whole log at once.

use chrono::{DateTime, SecondsFormat, Utc};
use lotline_domain::{Event, EventKind};
use lotline_epcis::Json;
use lotline_epcis::export::{ContextMerge, is_master_data, to_epcis};
use lotline_epcis::names::{EXT_CONTEXT, EXT_EVENT, EXT_HASH};
use lotline_epcis::query::{OrderBy, Query};
use lotline_store::{EventFilter, Snapshot, StoreError, StoredEvent};

use super::answered;
use crate::views::{Level, View};
use crate::{Caller, Service, ServiceError};

/// Events a page's walk of the log examines at most before it answers with what it found.
pub const SCAN: usize = 20_000;
/// Results an ordered query (or one with `maxEventCount`) may have: it sorts them all.
pub const MAX_SORTED: usize = 10_000;
/// The largest page.
pub const MAX_PER_PAGE: usize = 1_000;

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// After this sequence of the log (0: from the start).
    After(u64),
    /// At this position of an ordered query's results.
    Offset(usize),
}

/// A page of EPCIS events.
#[derive(Debug, Clone, PartialEq)]
pub struct EpcisPage {
    /// The events, in EPCIS JSON.
    pub events: Vec<Json>,
    /// The `@context` the events are written in (the merged contexts of their documents).
    pub context: Json,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
    /// The log position the page accounts for: every result up to it is in this page or an
    /// earlier one (in log order; the end of the log read for an ordered query).
    pub through: u64,
    /// The view the events are shown in.
    pub view: Level,
}

/// One result: the stored event it came from, and its EPCIS form (a joined transformation gives
/// several).
struct Found {
    seq: u64,
    record_time: DateTime<Utc>,
    event: Event,
    corrected: Option<Event>,
    items: Vec<Json>,
}

/// The EPCIS form of `event` with `merge`'s prefixes and lotline's record time.
fn render(
    found_event: &Event,
    corrected: Option<&Event>,
    record_time: DateTime<Utc>,
    merge: &ContextMerge,
) -> Result<Vec<Json>, ServiceError> {
    let mut items = to_epcis(found_event, corrected, merge)
        .map_err(|e| ServiceError::Internal(format!("stored event {}: {e}", found_event.id)))?;
    let recorded = Json::String(record_time.to_rfc3339_opts(SecondsFormat::Millis, true));
    // An event captured without an eventID is known by its hash (a joined transformation's
    // parts by theirs), as the binding asks of a repository.
    let hashes: Vec<&str> = found_event
        .extensions
        .get(EXT_HASH)
        .map(|h| h.split(' ').collect())
        .unwrap_or_default();
    for (n, item) in items.iter_mut().enumerate() {
        if let Json::Object(members) = item {
            if !members.iter().any(|(k, _)| k == "eventID") {
                let id = hashes.get(n).copied().unwrap_or(found_event.id.as_str());
                members.push(("eventID".into(), Json::String(id.to_string())));
            }
            match members.iter_mut().find(|(k, _)| k == "recordTime") {
                Some((_, v)) => *v = recorded.clone(),
                None => members.push(("recordTime".into(), recorded.clone())),
            }
        }
    }
    Ok(items)
}

/// `stored` as a result of `query`, if it is one.
fn examine(
    store: &Snapshot<'_>,
    view: &View,
    query: &Query,
    stored: &StoredEvent,
) -> Result<Option<Found>, ServiceError> {
    if is_master_data(&stored.event) {
        return Ok(None);
    }
    let Some(answer) = answered(store, view, stored)? else {
        return Ok(None);
    };
    let corrected = match &answer.event.kind {
        EventKind::Correct(c) if !answer.event.extensions.contains_key(EXT_EVENT) => {
            match store.seq_of(&c.corrected_event_id)? {
                Some(target) => match store.event_at(target)? {
                    Some(t) => answered(store, view, &t)?.map(|a| a.event),
                    None => None,
                },
                None => None,
            }
        }
        _ => None,
    };
    // Matched without renaming prefixes: an event's own context is the one its values use.
    let items = render(
        &answer.event,
        corrected.as_ref(),
        answer.record_time,
        &ContextMerge::new(),
    )?;
    if !items.iter().any(|i| query.matches(i, answer.record_time)) {
        return Ok(None);
    }
    Ok(Some(Found {
        seq: stored.seq,
        record_time: answer.record_time,
        event: answer.event,
        corrected,
        items,
    }))
}

/// The sequences that hold every result, when the query names its events or ids exactly.
fn candidates(store: &Snapshot<'_>, query: &Query) -> Result<Option<Vec<u64>>, StoreError> {
    let ids = query.event_ids();
    let mut seqs = Vec::new();
    if !ids.is_empty() {
        for id in &ids {
            seqs.extend(store.seq_of(id)?);
        }
    } else if let Some(lots) = query.indexed_ids() {
        for lot in &lots {
            seqs.extend(store.lot_seqs(lot)?);
        }
    } else {
        return Ok(None);
    }
    seqs.sort_unstable();
    seqs.dedup();
    Ok(Some(seqs))
}

/// A page of results in log order, from `after`.
fn in_log_order(
    store: &Snapshot<'_>,
    view: &View,
    query: &Query,
    after: u64,
    per_page: usize,
) -> Result<(Vec<Found>, Option<Cursor>), ServiceError> {
    let mut found = Vec::new();
    let mut examined = 0usize;
    match candidates(store, query)? {
        Some(seqs) => {
            for seq in seqs.into_iter().filter(|s| *s > after) {
                if found.len() == per_page || examined == SCAN {
                    return Ok((found, Some(Cursor::After(seq - 1))));
                }
                examined += 1;
                if let Some(stored) = store.event_at(seq)? {
                    found.extend(examine(store, view, query, &stored)?);
                }
            }
            Ok((found, None))
        }
        None => {
            let mut cursor = after;
            loop {
                let chunk = store.list_events(&EventFilter::default(), cursor, 512)?;
                for stored in &chunk.items {
                    if found.len() == per_page || examined == SCAN {
                        return Ok((found, Some(Cursor::After(cursor))));
                    }
                    examined += 1;
                    cursor = stored.seq;
                    // The listing read the event already.
                    found.extend(examine(store, view, query, stored)?);
                }
                match chunk.next_after {
                    Some(next) => cursor = next,
                    None => return Ok((found, None)),
                }
            }
        }
    }
}

/// Every result, ordered as the query asks; an error past [`MAX_SORTED`] (or `maxEventCount`).
fn ordered(store: &Snapshot<'_>, view: &View, query: &Query) -> Result<Vec<Found>, ServiceError> {
    let cap = query.max_event_count.unwrap_or(MAX_SORTED).min(MAX_SORTED);
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let (page, next) = in_log_order(store, view, query, after, MAX_PER_PAGE)?;
        found.extend(page);
        if found.len() > cap {
            return Err(match query.max_event_count {
                Some(max) if max <= MAX_SORTED => ServiceError::LimitExceeded {
                    field: "maxEventCount",
                    limit: max,
                    message: format!("the query has more than maxEventCount ({max}) results"),
                },
                _ => ServiceError::LimitExceeded {
                    field: "orderBy",
                    limit: MAX_SORTED,
                    message: format!(
                        "an ordered query may have at most {MAX_SORTED} results: narrow it (a time range, an event type, an EPC), or leave out orderBy to page through results in the order they were recorded"
                    ),
                },
            });
        }
        match next {
            Some(Cursor::After(seq)) => after = seq,
            _ => break,
        }
    }
    if let Some((by, ascending)) = query.order {
        let key = |f: &Found| match by {
            OrderBy::RecordTime => (f.record_time.timestamp_micros(), f.seq),
            OrderBy::EventTime => (f.event.time.timestamp_micros(), f.seq),
        };
        found.sort_by_key(key);
        if !ascending {
            found.reverse();
        }
    }
    if let Some(limit) = query.event_count_limit {
        found.truncate(limit);
    }
    Ok(found)
}

impl Service {
    /// Stored events in their EPCIS form that `query` selects, a page of at most `per_page`
    /// from `cursor`.
    pub async fn epcis_events(
        &self,
        caller: &Caller,
        query: Query,
        cursor: Cursor,
        per_page: usize,
    ) -> Result<EpcisPage, ServiceError> {
        caller.party_only("EPCIS events")?;
        self.log_read(caller, "epcis events", &format!("{:?}", query.params()));
        let view = caller.view(false);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        self.read(caller.reading(), move |store, _| {
            let needs_sorting = query.order.is_some_and(|(by, asc)| {
                !(by == OrderBy::RecordTime && asc) || query.event_count_limit.is_some()
            }) || query.max_event_count.is_some();
            let (found, next) = match (needs_sorting, cursor) {
                (false, Cursor::After(after)) => {
                    in_log_order(store, &view, &query, after, per_page)?
                }
                (true, Cursor::Offset(offset)) => {
                    let all = ordered(store, &view, &query)?;
                    let end = offset.saturating_add(per_page).min(all.len());
                    let next = (end < all.len()).then_some(Cursor::Offset(end));
                    let page = all.into_iter().skip(offset).take(per_page).collect();
                    (page, next)
                }
                (true, Cursor::After(0)) => {
                    let mut all = ordered(store, &view, &query)?;
                    let next = (all.len() > per_page).then_some(Cursor::Offset(per_page));
                    all.truncate(per_page);
                    (all, next)
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "nextPageToken",
                        "the token is not one of this query's",
                    ));
                }
            };
            let mut merge = ContextMerge::new();
            for f in &found {
                if let Some(context) = f.event.extensions.get(EXT_CONTEXT) {
                    merge.add(context);
                }
            }
            let mut events = Vec::new();
            for f in &found {
                let items = render(&f.event, f.corrected.as_ref(), f.record_time, &merge)?;
                // The parts the match selected (renaming prefixes keeps their order).
                events.extend(
                    items
                        .into_iter()
                        .zip(&f.items)
                        .filter(|(_, plain)| query.matches(plain, f.record_time))
                        .map(|(item, _)| item),
                );
            }
            let through = match next {
                Some(Cursor::After(seq)) => seq,
                _ => store.upto(),
            };
            Ok(EpcisPage {
                events,
                context: merge.context(),
                next,
                through,
                view: view.level,
            })
        })
        .await
    }

    /// One stored event in its EPCIS form, by its EPCIS `eventID` or lotline's id.
    pub async fn epcis_event(
        &self,
        caller: &Caller,
        event_id: &str,
    ) -> Result<EpcisPage, ServiceError> {
        let query = Query::parse([("EQ_eventID", event_id)])
            .map_err(|e| ServiceError::invalid("eventID", e.reason))?;
        let page = self
            .epcis_events(caller, query, Cursor::After(0), MAX_PER_PAGE)
            .await?;
        if page.events.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "event {event_id:?}: no event with this id is in the log{}",
                if caller.sees_everything() {
                    ""
                } else {
                    " (or in your view of it)"
                }
            )));
        }
        Ok(page)
    }
}

/// What a top-level EPCIS resource lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `/epcs`: the lots (and other EPCs) events name.
    Epcs,
    /// `/bizLocations` and `/readPoints`: the registered locations (sites).
    Locations,
}

impl Service {
    /// The identifiers a top-level resource lists, at most `per_page` after `after`, and the
    /// last one when more may follow. Identifiers are listed to any party: each is what an
    /// event in anyone's public view may name; what happened to it is answered per view.
    pub async fn epcis_listing(
        &self,
        caller: &Caller,
        listing: Listing,
        after: Option<String>,
        per_page: usize,
    ) -> Result<(Vec<String>, Option<String>), ServiceError> {
        caller.party_only("listing EPCIS identifiers")?;
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        self.read(caller.reading(), move |store, _| {
            let after = after.as_deref();
            let mut ids = match listing {
                Listing::Epcs => store.lots_after(after, per_page + 1)?,
                Listing::Locations => store.sites_after(after, per_page + 1)?,
            };
            let next = (ids.len() > per_page).then(|| {
                ids.truncate(per_page);
                ids.last().cloned().unwrap_or_default()
            });
            Ok((ids, next))
        })
        .await
    }
}
