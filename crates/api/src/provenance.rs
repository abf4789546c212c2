//! ProvenanceService: lots, lineage, events, quarantine, unknown lots. Every
//! answer is computed from the store at the time of the question, on a blocking
//! thread (sled reads are synchronous and never wait on the writer).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::DateTime;
use lotline_domain::Anomaly;
use lotline_domain::audit::eudr::{DdsReference, dds_references};
use lotline_domain::audit::rules::Rules;
use lotline_domain::audit::scan::{LotCache, event_anomalies};
use lotline_domain::event::LotRole;
use lotline_domain::lineage::{Lineage, LineageSource, UpstreamLot};
use lotline_domain::{Chain, Event, EventKind, KindName};
use lotline_proto::convert::{
    custody_to_wire, dds_to_wire, decimal_to_wire, lot_state_to_wire, trace_back_to_wire,
    trace_forward_to_wire,
};
use lotline_proto::v1;
use lotline_proto::v1::provenance_service_server::ProvenanceService;
use lotline_store::{EventFilter, Page, Snapshot, StoreError, StoredEvent};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::audit::certificates;
use crate::public::redact;
use crate::status::store_status;
use crate::{Ready, ReadyCell};
use lotline_domain::geo::bare_geometry;

/// Events listed with a lot by GetLot.
const LOT_EVENTS: usize = 1_000;
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

pub struct ProvenanceApi {
    ready: ReadyCell,
}

impl ProvenanceApi {
    pub fn new(ready: ReadyCell) -> Self {
        ProvenanceApi { ready }
    }

    async fn read<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>) -> Result<T, Status> + Send + 'static,
    {
        crate::read(&self.ready, move |view, _| f(view)).await
    }

    async fn read_ready<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>, &Ready) -> Result<T, Status> + Send + 'static,
    {
        crate::read(&self.ready, f).await
    }
}

pub(crate) fn lot_arg(lot: &str) -> Result<String, Status> {
    if lot.trim().is_empty() {
        return Err(Status::invalid_argument("lot: is required"));
    }
    canonical_lot("lot", &id_arg("lot", lot)?)
}

/// A lot to look up, in the form lotline stores it: a GS1 identifier written as an EPC URN or a
/// Digital Link on any domain becomes its canonical Digital Link (docs/epcis.md), so either form
/// finds the lot; a wrong check digit is an invalid argument.
pub(crate) fn canonical_lot(field: &str, lot: &str) -> Result<String, Status> {
    lotline_proto::convert::lot_id(field, lot).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// An id to look up: no id in the log contains control characters (validation
/// refuses them), and the key layout relies on it.
pub(crate) fn id_arg(field: &str, id: &str) -> Result<String, Status> {
    if id.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field}: contains control characters"
        )));
    }
    Ok(id.to_string())
}

pub(crate) fn stored_to_wire(
    store: &Snapshot<'_>,
    s: &StoredEvent,
) -> Result<v1::StoredEvent, StoreError> {
    Ok(v1::StoredEvent {
        sequence: s.seq,
        record_time: s
            .record_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        event: Some(s.record.wire_event()?),
        corrected: store.is_corrected(&s.event.id)?,
    })
}

/// Ship events that mention any of `lots` (a lot and everything upstream).
pub(crate) fn shipments(
    store: &Snapshot<'_>,
    lots: &[UpstreamLot],
) -> Result<Vec<Arc<Event>>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for up in lots {
        for event in store.mentions(&up.lot)? {
            if matches!(event.kind, EventKind::Ship(_)) && seen.insert(event.id.clone()) {
                out.push(event);
            }
        }
    }
    Ok(out)
}

/// The anomalies the rules, certificates and prices find in the events of `lot`
/// (those about the lot, or by the events that create it).
fn rule_anomalies(
    store: &Snapshot<'_>,
    rules: &Rules,
    lot: &str,
) -> Result<Vec<Anomaly>, StoreError> {
    let events = store.mentions(lot)?;
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

/// NOT_FOUND unless some event in the view mentions `lot`.
pub(crate) fn ensure_lot(view: &Snapshot<'_>, lot: &str) -> Result<(), Status> {
    if view.lot_exists(lot).map_err(store_status)? {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "lot {lot:?}: no event mentions it"
        )))
    }
}

/// An optional chain filter: empty for none.
pub(crate) fn chain_arg(chain: &str) -> Result<Option<Chain>, Status> {
    match chain.trim() {
        "" => Ok(None),
        c => Chain::parse(c).map(Some).ok_or_else(|| {
            Status::invalid_argument(format!(
                "chain: unknown chain {c:?} (cocoa, coffee or textile)"
            ))
        }),
    }
}

pub(crate) fn page_limit(limit: u32) -> usize {
    match limit as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

pub(crate) fn cursor_arg(cursor: &str) -> Result<u64, Status> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "cursor: {cursor:?} is not a cursor this server gave out"
        ))
    })
}

pub(crate) fn time_arg(
    field: &str,
    value: &str,
) -> Result<Option<DateTime<chrono::FixedOffset>>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value).map(Some).map_err(|e| {
        Status::invalid_argument(format!("{field}: {value:?} is not an RFC 3339 time: {e}"))
    })
}

#[tonic::async_trait]
impl ProvenanceService for ProvenanceApi {
    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn get_lot(
        &self,
        request: Request<v1::GetLotRequest>,
    ) -> Result<Response<v1::Lot>, Status> {
        let r = request.into_inner();
        let lot = lot_arg(&r.lot)?;
        let public = r.public_view;
        self.read_ready(move |store, ready| {
            let filter = EventFilter {
                lot: Some(lot.clone()),
                ..Default::default()
            };
            let events = store
                .list_events(&filter, 0, LOT_EVENTS)
                .map_err(store_status)?;
            if events.items.is_empty() {
                return Err(Status::not_found(format!(
                    "lot {lot:?}: no event mentions it"
                )));
            }
            let mut lineage = Lineage::new(store);
            let mut state = lineage.lot_state(&lot).map_err(store_status)?;
            state
                .anomalies
                .extend(rule_anomalies(store, &ready.rules, &lot).map_err(store_status)?);
            state.anomalies.sort();
            state.anomalies.dedup();
            let mut answer = lot_state_to_wire(&state);
            answer.events = events
                .items
                .iter()
                .map(|s| stored_to_wire(store, s))
                .collect::<Result<_, _>>()
                .map_err(store_status)?;
            if public {
                answer.events.iter_mut().for_each(redact);
            }
            let upstream = lineage.upstream(&lot).map_err(store_status)?;
            answer.due_diligence_references = due_diligence(store, &upstream)
                .map_err(store_status)?
                .iter()
                .map(dds_to_wire)
                .collect();
            Ok(Response::new(answer))
        })
        .await
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn trace_back(
        &self,
        request: Request<v1::TraceBackRequest>,
    ) -> Result<Response<v1::TraceBackResponse>, Status> {
        let r = request.into_inner();
        let lot = lot_arg(&r.lot)?;
        let public = r.public_view;
        self.read(move |store| {
            ensure_lot(store, &lot)?;
            let mut lineage = Lineage::new(store);
            let trace = lineage.trace_back(&lot).map_err(store_status)?;
            let facts = lineage.lot_facts(&lot).map_err(store_status)?;
            let mut answer = trace_back_to_wire(&trace);
            if facts.known {
                answer.custody = custody_to_wire(Some(facts.custody));
                answer.claims = facts.claims;
            }
            for origin in &mut answer.origins {
                if origin.plot.is_empty() {
                    continue;
                }
                if let Some((event, plot)) = store.plot(&origin.plot).map_err(store_status)? {
                    origin.plot_info = Some(v1::PlotInfo {
                        plot: plot.plot,
                        owner: event.org.clone(),
                        geometry: if public {
                            bare_geometry(&plot.geometry)
                        } else {
                            plot.geometry
                        },
                        area_ha: plot.area_ha.map(decimal_to_wire).unwrap_or_default(),
                        country: plot.country,
                    });
                }
            }
            Ok(Response::new(answer))
        })
        .await
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn trace_forward(
        &self,
        request: Request<v1::TraceForwardRequest>,
    ) -> Result<Response<v1::TraceForwardResponse>, Status> {
        let lot = lot_arg(&request.into_inner().lot)?;
        self.read(move |store| {
            ensure_lot(store, &lot)?;
            let trace = Lineage::new(store)
                .trace_forward(&lot)
                .map_err(store_status)?;
            Ok(Response::new(trace_forward_to_wire(&trace)))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        let r = request.into_inner();
        let filter = EventFilter {
            org: Some(id_arg("org", &r.org)?).filter(|s| !s.is_empty()),
            chain: chain_arg(&r.chain)?,
            kind: match r.kind.as_str() {
                "" => None,
                k => Some(KindName::parse(k).ok_or_else(|| {
                    let known: Vec<&str> = KindName::ALL.iter().map(|k| k.as_str()).collect();
                    Status::invalid_argument(format!(
                        "kind: unknown kind {k:?} (one of {})",
                        known.join(", ")
                    ))
                })?),
            },
            lot: Some(canonical_lot("lot", &id_arg("lot", &r.lot)?)?).filter(|s| !s.is_empty()),
            from: time_arg("from", &r.from)?,
            to: time_arg("to", &r.to)?,
        };
        let after = cursor_arg(&r.cursor)?;
        let limit = page_limit(r.limit);
        let public = r.public_view;
        let event_id = id_arg("event_id", &r.event_id)?;
        self.read(move |store| {
            let page = if event_id.is_empty() {
                store
                    .list_events(&filter, after, limit)
                    .map_err(store_status)?
            } else {
                // One event at most: the filters and the cursor still apply to it.
                let found = store.seq_of(&event_id).map_err(store_status)?;
                let item = match found.filter(|&seq| seq > after) {
                    Some(seq) => store.event_at(seq).map_err(store_status)?,
                    None => None,
                };
                Page {
                    items: item
                        .filter(|s| filter.matches(&s.event))
                        .into_iter()
                        .collect(),
                    next_after: None,
                }
            };
            let mut events: Vec<v1::StoredEvent> = page
                .items
                .iter()
                .map(|s| stored_to_wire(store, s))
                .collect::<Result<_, _>>()
                .map_err(store_status)?;
            if public {
                events.iter_mut().for_each(redact);
            }
            Ok(Response::new(v1::ListEventsResponse {
                events,
                next_cursor: page.next_after.map(|n| n.to_string()).unwrap_or_default(),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_rejected(
        &self,
        request: Request<v1::ListRejectedRequest>,
    ) -> Result<Response<v1::ListRejectedResponse>, Status> {
        let r = request.into_inner();
        let after = cursor_arg(&r.cursor)?;
        let limit = page_limit(r.limit);
        self.read(move |store| {
            let page = store.list_rejected(after, limit).map_err(store_status)?;
            Ok(Response::new(v1::ListRejectedResponse {
                rejected: page.items,
                next_cursor: page.next_after.map(|n| n.to_string()).unwrap_or_default(),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_unknown_lots(
        &self,
        _request: Request<v1::ListUnknownLotsRequest>,
    ) -> Result<Response<v1::ListUnknownLotsResponse>, Status> {
        self.read(|store| {
            let lots = store
                .list_unknown_lots()
                .map_err(store_status)?
                .into_iter()
                .map(|u| v1::UnknownLot {
                    lot: u.lot,
                    event_ids: u.event_ids,
                })
                .collect();
            Ok(Response::new(v1::ListUnknownLotsResponse { lots }))
        })
        .await
    }
}
