//! Lots, lineage, events, the quarantine and unknown lots.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lotline_domain::audit::eudr::{DdsReference, dds_references};
use lotline_domain::audit::rules::Rules;
use lotline_domain::audit::scan::{LotCache, event_anomalies};
pub use lotline_domain::containers::Packing;
use lotline_domain::containers::packings;
use lotline_domain::event::LotRole;
use lotline_domain::lineage::{Lineage, LotState, TraceBack, TraceForward, UpstreamLot};
use lotline_domain::{Anomaly, CustodyModel, Event, EventKind};
use lotline_record::Quarantined;
use lotline_store::{EventFilter, Page, Snapshot, StoreError, UnknownLot};
use rust_decimal::Decimal;

use super::audit::certificates;
use super::{Answered, EventPage, answer_all, handled};
use crate::views::Level;
use crate::{Caller, Service, ServiceError};

/// Events listed with a lot by [`Service::lot`].
const LOT_EVENTS: usize = 1_000;

/// A lot: its state (with the anomalies found in its events), the first of its events and the
/// due-diligence references on shipments of it or anything upstream.
#[derive(Debug, Clone)]
pub struct LotAnswer {
    pub state: LotState,
    pub events: Vec<Answered>,
    pub due_diligence: Vec<DdsReference>,
    /// The view the caller got.
    pub view: Level,
}

/// A logistic unit and an item, from the events the caller may see: what `id` held as a
/// container, and which containers carried it.
#[derive(Debug, Clone)]
pub struct ContainerAnswer {
    pub contents: Vec<Packing>,
    pub carriers: Vec<Packing>,
    /// The view the caller got.
    pub view: Level,
}

/// What a lot went into, and the shipments and containers it and they travelled in.
#[derive(Debug, Clone)]
pub struct RecallAnswer {
    pub trace: TraceForward,
    /// Ship events of the recalled lots, in event-time order.
    pub shipments: Vec<Shipment>,
    /// Every packing of a recalled lot into a container.
    pub containers: Vec<Packing>,
}

/// One Ship event of a recall: who sent which recalled lots to whom, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub event_id: String,
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub org: String,
    pub to_org: String,
    pub lots: Vec<String>,
}

/// Where a lot came from, with what lotline knows of the lot and of each origin's plot.
#[derive(Debug, Clone)]
pub struct TraceBackAnswer {
    pub trace: TraceBack,
    /// The lot's custody model and claims, when an event creates it.
    pub custody: Option<CustodyModel>,
    pub claims: Vec<String>,
    /// The registered plots the origins name, by plot id.
    pub plots: BTreeMap<String, PlotInfo>,
    /// The view the caller got.
    pub view: Level,
}

/// A registered plot, as a trace back shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotInfo {
    pub plot: String,
    /// The org that registered it.
    pub owner: String,
    /// GeoJSON, as the caller's view shows it.
    pub geometry: String,
    pub area_ha: Option<Decimal>,
    pub country: String,
}

/// A listing of events: filters, or one event by id (the filters and the cursor still apply).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub filter: EventFilter,
    pub event_id: Option<String>,
    /// The sequence to list after (0 for the start).
    pub after: u64,
    pub limit: usize,
}

/// NOT_FOUND unless some event in the view mentions `lot`.
pub(crate) fn ensure_lot(view: &Snapshot<'_>, lot: &str) -> Result<(), ServiceError> {
    if view.lot_exists(lot)? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "lot {lot:?}: no event mentions it"
        )))
    }
}

/// Ship events that mention any of `lots` (a lot and everything upstream).
pub(crate) fn shipments(
    store: &Snapshot<'_>,
    lots: &[UpstreamLot],
) -> Result<Vec<Arc<Event>>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for up in lots {
        for event in Lineage::new(store).mentions(&up.lot)? {
            if matches!(event.kind, EventKind::Ship(_)) && seen.insert(event.id.clone()) {
                out.push(event);
            }
        }
    }
    Ok(out)
}

/// The anomalies the rules, certificates and prices find in the events of `lot` (those about
/// the lot, or by the events that create it).
fn rule_anomalies(
    store: &Snapshot<'_>,
    rules: &Rules,
    lot: &str,
) -> Result<Vec<Anomaly>, StoreError> {
    let events = Lineage::new(store).mentions(lot)?;
    let mut cache = LotCache::new(store);
    cache.load(
        events
            .iter()
            .flat_map(|e| e.lots().into_iter().map(|(l, _)| l)),
    )?;
    let certs = certificates(
        store,
        events
            .iter()
            .flat_map(|e| std::iter::once(e.org.as_str()).chain(e.counterparties())),
    )?;
    let mut registered_plots = BTreeSet::new();
    for event in &events {
        if let EventKind::Harvest(h) = &event.kind
            && store.plot(&h.plot)?.is_some()
        {
            registered_plots.insert(h.plot.clone());
        }
    }
    let mut out = Vec::new();
    for event in &events {
        let creates = event
            .lots()
            .iter()
            .any(|(l, role)| *l == lot && *role == LotRole::Created);
        let registered = |plot: &str| registered_plots.contains(plot);
        out.extend(
            event_anomalies(event, rules, &certs, &cache, &registered)
                .into_iter()
                .filter(|a| creates || a.lot == lot),
        );
    }
    Ok(out)
}

/// Due-diligence references on shipments of a lot or anything upstream of it.
fn due_diligence(
    store: &Snapshot<'_>,
    upstream: &[UpstreamLot],
) -> Result<Vec<DdsReference>, StoreError> {
    let lots: BTreeSet<&str> = upstream.iter().map(|u| u.lot.as_str()).collect();
    Ok(dds_references(&lots, &shipments(store, upstream)?))
}

impl Service {
    /// A lot's state, events and due-diligence references (`lot` in its stored form).
    pub async fn lot(&self, caller: &Caller, lot: String) -> Result<LotAnswer, ServiceError> {
        self.log_read(caller, "lot", &lot);
        let caller = caller.clone();
        self.read(caller.reading(), move |store, ready| {
            let filter = EventFilter {
                lot: Some(lot.clone()),
                ..Default::default()
            };
            let mut events = store.list_events(&filter, 0, LOT_EVENTS)?;
            if events.items.is_empty() {
                return Err(ServiceError::NotFound(format!(
                    "lot {lot:?}: no event mentions it"
                )));
            }
            let mut lineage = Lineage::new(store);
            // The lot's history is the events that count for it: those of orgs that did not
            // hold it are among its anomalies, not its events.
            let custody = lineage.custody_of(&lot)?;
            events.items.retain(|s| custody.admits(&s.event.id));
            let mut state = lineage.lot_state(&lot)?;
            state
                .anomalies
                .extend(rule_anomalies(store, &ready.rules, &lot)?);
            state.anomalies.sort();
            state.anomalies.dedup();
            let upstream = lineage.upstream(&lot)?;
            let view = caller.view(
                events
                    .items
                    .iter()
                    .any(|s| Some(s.event.org.as_str()) == caller.org()),
            );
            super::audit::with_reviews(store, view.level, &mut state.anomalies)?;
            Ok(LotAnswer {
                state,
                events: answer_all(store, &view, &events.items)?,
                due_diligence: due_diligence(store, &upstream)?,
                view: view.level,
            })
        })
        .await
    }

    /// What the logistic unit `id` held and when, and which containers carried `id` (a lot or
    /// a unit), from the packing events (aggregations, associations) that name it and the
    /// caller may see. NOT_FOUND when no event names it.
    pub async fn container(
        &self,
        caller: &Caller,
        id: String,
    ) -> Result<ContainerAnswer, ServiceError> {
        self.log_read(caller, "container", &id);
        let caller = caller.clone();
        self.read(caller.reading(), move |store, _| {
            let filter = EventFilter {
                lot: Some(id.clone()),
                ..Default::default()
            };
            let events = store.list_events(&filter, 0, LOT_EVENTS)?;
            if events.items.is_empty() {
                return Err(ServiceError::NotFound(format!(
                    "{id:?}: no event mentions it"
                )));
            }
            let view = caller.view(
                events
                    .items
                    .iter()
                    .any(|s| Some(s.event.org.as_str()) == caller.org()),
            );
            let seen = answer_all(store, &view, &events.items)?;
            let all = packings(seen.iter().filter(|a| !a.corrected).map(|a| &a.event));
            let (contents, carriers) = all.into_iter().fold(
                (Vec::new(), Vec::new()),
                |(mut contents, mut carriers), p| {
                    if p.container == id {
                        contents.push(p);
                    } else if p.item == id {
                        carriers.push(p);
                    }
                    (contents, carriers)
                },
            );
            Ok(ContainerAnswer {
                contents,
                carriers,
                view: view.level,
            })
        })
        .await
    }

    /// Where a lot came from, down to farm plots, with quantities.
    pub async fn trace_back(
        &self,
        caller: &Caller,
        lot: String,
    ) -> Result<TraceBackAnswer, ServiceError> {
        self.log_read(caller, "trace back", &lot);
        let budget = self.budget(caller);
        let caller = caller.clone();
        self.read_lot(caller.reading(), lot, move |store, lot| {
            let view = caller.view(handled(store, caller.org(), lot)?);
            let mut lineage = Lineage::new(store).with_budget(budget);
            let mut trace = lineage.trace_back(lot)?;
            super::audit::with_reviews(store, view.level, &mut trace.anomalies)?;
            let facts = lineage.lot_facts(lot)?;
            let mut plots = BTreeMap::new();
            for plot in trace.origins.iter().filter_map(|o| o.plot.as_deref()) {
                if plots.contains_key(plot) {
                    continue;
                }
                if let Some((event, registered)) = store.plot(plot)? {
                    plots.insert(
                        plot.to_string(),
                        PlotInfo {
                            plot: registered.plot,
                            owner: event.org.clone(),
                            geometry: view.plot_geometry(&event.org, registered.geometry),
                            area_ha: registered.area_ha,
                            country: registered.country,
                        },
                    );
                }
            }
            Ok(TraceBackAnswer {
                custody: facts.known.then_some(facts.custody),
                claims: if facts.known {
                    facts.claims
                } else {
                    Vec::new()
                },
                trace,
                plots,
                view: view.level,
            })
        })
        .await
    }

    /// What a lot went into (recall).
    pub async fn trace_forward(
        &self,
        caller: &Caller,
        lot: String,
    ) -> Result<RecallAnswer, ServiceError> {
        let budget = self.budget(caller);
        self.read_lot(caller.reading(), lot, move |store, lot| {
            let mut lineage = Lineage::new(store).with_budget(budget);
            let trace = lineage.trace_forward(lot)?;
            let recalled: BTreeSet<&str> = std::iter::once(lot)
                .chain(trace.descendants.iter().map(|d| d.lot.as_str()))
                .collect();
            let mut seen = BTreeSet::new();
            let mut events = Vec::new();
            for lot in &recalled {
                for event in lineage.mentions(lot)? {
                    if seen.insert(event.id.clone()) {
                        events.push(event);
                    }
                }
            }
            events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
            let shipments = events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Ship(m) => Some(Shipment {
                        event_id: e.id.clone(),
                        time: e.time,
                        org: e.org.clone(),
                        to_org: m.counterparty.clone(),
                        lots: m
                            .lots
                            .iter()
                            .map(|l| l.lot.clone())
                            .filter(|l| recalled.contains(l.as_str()))
                            .collect(),
                    }),
                    _ => None,
                })
                .collect();
            let containers = packings(events.iter().map(|e| e.as_ref()))
                .into_iter()
                .filter(|p| recalled.contains(p.item.as_str()))
                .collect();
            Ok(RecallAnswer {
                trace,
                shipments,
                containers,
            })
        })
        .await
    }

    /// Stored events, filtered and paged.
    pub async fn events(
        &self,
        caller: &Caller,
        query: EventQuery,
    ) -> Result<EventPage, ServiceError> {
        caller.party_only("listing events")?;
        self.log_read(caller, "events", &format!("{:?}", query.filter));
        let view = caller.view(false);
        self.read(caller.reading(), move |store, _| {
            let page = match &query.event_id {
                None => store.list_events(&query.filter, query.after, query.limit)?,
                Some(event_id) => {
                    // One event at most: the filters and the cursor still apply to it.
                    let found = store.seq_of(event_id)?;
                    let item = match found.filter(|&seq| seq > query.after) {
                        Some(seq) => store.event_at(seq)?,
                        None => None,
                    };
                    Page {
                        items: item
                            .filter(|s| query.filter.matches(&s.event))
                            .into_iter()
                            .collect(),
                        next_after: None,
                    }
                }
            };
            Ok(EventPage {
                events: answer_all(store, &view, &page.items)?,
                next: page.next_after.map(|n| n.to_string()),
                view: view.level,
            })
        })
        .await
    }

    /// The events after log position `after` that `filter` selects, at most `limit`, for a
    /// follower of the log (a watch): the events, the position they account for (every match up
    /// to it is in this answer or an earlier one) and whether more may follow at once.
    pub async fn follow_events(
        &self,
        caller: &Caller,
        filter: EventFilter,
        after: u64,
        limit: usize,
    ) -> Result<Followed, ServiceError> {
        caller.party_only("watching events")?;
        let view = caller.view(false);
        self.read(caller.reading(), move |store, _| {
            let page = store.list_events(&filter, after, limit)?;
            let through = match page.next_after {
                Some(next) => next,
                None => store.upto().max(after),
            };
            Ok(Followed {
                events: answer_all(store, &view, &page.items)?,
                through,
                more: page.next_after.is_some(),
            })
        })
        .await
    }

    /// The quarantine: inputs that were refused, paged.
    ///
    /// A party sees its own org's entries (and, as an auditor, those in its scope); input that
    /// could not be read is kept under the org of the credential that sent it.
    pub async fn rejected(
        &self,
        caller: &Caller,
        after: u64,
        limit: usize,
    ) -> Result<Page<Quarantined>, ServiceError> {
        caller.party_only("the quarantine")?;
        self.log_read(caller, "quarantine", "");
        let caller = caller.clone();
        self.read(caller.reading(), move |store, _| {
            let mut page = store.list_rejected(after, limit)?;
            page.items.retain(|q| caller.reads_books_of(&q.org));
            Ok(page)
        })
        .await
    }

    /// Lots that events use but no event creates, by lot id, a page of at most `limit` after
    /// `cursor` (the last lot of the previous page), and the cursor of the next page.
    pub async fn unknown_lots(
        &self,
        caller: &Caller,
        cursor: String,
        limit: usize,
    ) -> Result<(Vec<UnknownLot>, Option<String>), ServiceError> {
        caller.party_only("unknown lots")?;
        let limit = limit.clamp(1, 10_000);
        self.read(caller.reading(), move |store, _| {
            let mut lots: Vec<UnknownLot> = store
                .list_unknown_lots()?
                .into_iter()
                .filter(|u| cursor.is_empty() || u.lot > cursor)
                .take(limit + 1)
                .collect();
            let next = (lots.len() > limit).then(|| {
                lots.truncate(limit);
                lots.last().map(|u| u.lot.clone()).unwrap_or_default()
            });
            Ok((lots, next))
        })
        .await
    }
}

/// What a follower of the log gets: see [`Service::follow_events`].
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    pub events: Vec<Answered>,
    pub through: u64,
    pub more: bool,
}
