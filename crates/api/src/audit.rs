//! AuditService: mass balance, anomalies, the chain-of-custody report and the
//! EUDR export. Each answer reads one snapshot of the log on a blocking thread;
//! the anomaly listing and group ledgers read the whole log (or the org's part
//! of it), so they cost in proportion to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use lotline_domain::audit::balance::{self, BalanceQuery};
use lotline_domain::audit::certs::Certificates;
use lotline_domain::audit::chain::{self, ChainFacts};
use lotline_domain::audit::eudr::{self, EudrFacts};
use lotline_domain::audit::rules::Rules;
use lotline_domain::audit::scan::{self, BALANCE_CLAIM, LotCache};
use lotline_domain::lineage::{Lineage, LineageSource, UpstreamLot};
use lotline_domain::{Anomaly, AnomalyKind};
use lotline_domain::{Event, EventKind, OrgRole, RegisterOrg};
use lotline_proto::convert::{anomaly_to_wire, chain_report_to_wire, dds_to_wire, ledger_to_wire};
use lotline_proto::v1;
use lotline_proto::v1::audit_service_server::AuditService;
use lotline_store::{Snapshot, StoreError};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::provenance::{
    canonical_lot, cursor_arg, ensure_lot, id_arg, lot_arg, page_limit, shipments, time_arg,
};
use crate::status::store_status;
use crate::{ReadyCell, read};

/// The last anomaly listing and the log size it was computed at.
type ListingCache = Mutex<Option<(u64, Arc<Vec<Anomaly>>)>>;

pub struct AuditApi {
    ready: ReadyCell,
    /// The last listing computed and the log size it was computed at: pages of
    /// one listing, and repeated questions, reuse it until the log grows.
    listing: Arc<ListingCache>,
}

impl AuditApi {
    pub fn new(ready: ReadyCell) -> Self {
        AuditApi {
            ready,
            listing: Arc::new(Mutex::new(None)),
        }
    }
}

/// Every anomaly in the log as `store` sees it, from the cache when the log
/// has not grown since it was computed.
fn listing(
    cache: &ListingCache,
    store: &Snapshot<'_>,
    rules: &Rules,
) -> Result<Arc<Vec<Anomaly>>, StoreError> {
    if let Ok(guard) = cache.lock()
        && let Some((upto, all)) = guard.as_ref()
        && *upto == store.upto()
    {
        return Ok(Arc::clone(all));
    }
    let events = store.all_events()?;
    let plots = store.plots()?;
    let all = Arc::new(scan::anomalies(store, &events, rules, &plots)?);
    if let Ok(mut guard) = cache.lock() {
        *guard = Some((store.upto(), Arc::clone(&all)));
    }
    Ok(all)
}

/// The registered orgs among `ids`.
fn orgs<'a>(
    store: &Snapshot<'_>,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, RegisterOrg>, StoreError> {
    let mut out = BTreeMap::new();
    for id in ids.into_iter().collect::<BTreeSet<_>>() {
        if let Some(org) = store.org(id)? {
            out.insert(id.to_string(), org);
        }
    }
    Ok(out)
}

/// Every certificate, and the registrations (co-op membership over time) of
/// `orgs`, which certificate answers need.
pub(crate) fn certificates<'a>(
    store: &Snapshot<'_>,
    orgs: impl IntoIterator<Item = &'a str>,
) -> Result<Certificates, StoreError> {
    let mut certs = Certificates::default();
    for event in store.certificates()? {
        certs.add(&event);
    }
    for org in orgs.into_iter().collect::<BTreeSet<_>>() {
        for event in store.org_registrations(org)? {
            certs.add(&event);
        }
    }
    Ok(certs)
}

/// Every org an upstream walk names: creators and the orgs of creating events.
fn upstream_orgs(upstream: &[UpstreamLot]) -> BTreeSet<&str> {
    upstream
        .iter()
        .flat_map(|u| u.creations.iter().map(|e| e.org.as_str()))
        .collect()
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[instrument(skip_all, fields(org = %request.get_ref().org))]
    async fn mass_balance(
        &self,
        request: Request<v1::MassBalanceRequest>,
    ) -> Result<Response<v1::MassBalanceResponse>, Status> {
        let r = request.into_inner();
        let org = id_arg("org", &r.org)?;
        if org.trim().is_empty() {
            return Err(Status::invalid_argument("org: is required"));
        }
        let sites = r
            .sites
            .iter()
            .map(|s| id_arg("sites", s))
            .collect::<Result<Vec<_>, _>>()?;
        let query = BalanceQuery {
            org,
            sites,
            product: Some(r.product.trim().to_string()).filter(|p| !p.is_empty()),
            from: time_arg("from", &r.from)?,
            to: time_arg("to", &r.to)?,
            claim: match r.claim.trim() {
                "" => BALANCE_CLAIM.to_string(),
                c => c.to_string(),
            },
        };
        if let (Some(f), Some(t)) = (query.from, query.to)
            && f >= t
        {
            return Err(Status::invalid_argument("to: must be after from"));
        }
        read(&self.ready, move |store, _| {
            let events = store.org_events(&query.org).map_err(store_status)?;
            if events.is_empty() {
                return Err(Status::not_found(format!(
                    "org {:?}: no event recorded by it",
                    query.org
                )));
            }
            let mut cache = LotCache::new(store);
            cache
                .load(
                    events
                        .iter()
                        .flat_map(|e| e.lots().into_iter().map(|(l, _)| l)),
                )
                .map_err(store_status)?;
            let refs: Vec<&Event> = events.iter().map(|e| e.as_ref()).collect();
            let ledgers = balance::ledgers(&query, &refs, &|lot| cache.get(lot));
            Ok(Response::new(v1::MassBalanceResponse {
                ledgers: ledgers.iter().map(ledger_to_wire).collect(),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_anomalies(
        &self,
        request: Request<v1::ListAnomaliesRequest>,
    ) -> Result<Response<v1::ListAnomaliesResponse>, Status> {
        let r = request.into_inner();
        let org = Some(id_arg("org", &r.org)?).filter(|s| !s.is_empty());
        let lot = Some(canonical_lot("lot", &id_arg("lot", &r.lot)?)?).filter(|s| !s.is_empty());
        let kind = match r.kind.trim() {
            "" => None,
            k => Some(AnomalyKind::parse(k).ok_or_else(|| {
                let known: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
                Status::invalid_argument(format!(
                    "kind: unknown anomaly kind {k:?} (one of {})",
                    known.join(", ")
                ))
            })?),
        };
        let offset = cursor_arg(&r.cursor)? as usize;
        let limit = page_limit(r.limit);
        let cache = Arc::clone(&self.listing);
        read(&self.ready, move |store, ready| {
            let all = listing(&cache, store, &ready.rules).map_err(store_status)?;
            let matching: Vec<&Anomaly> = all
                .iter()
                .filter(|a| org.as_ref().is_none_or(|o| a.org.as_ref() == Some(o)))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .filter(|a| lot.as_ref().is_none_or(|l| a.lot == *l))
                .collect();
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for a in &matching {
                *counts.entry(a.kind.as_str().to_string()).or_default() += 1;
            }
            let total = matching.len();
            let page: Vec<v1::Anomaly> = matching
                .iter()
                .skip(offset)
                .take(limit)
                .map(|a| anomaly_to_wire(a))
                .collect();
            let next = offset + page.len();
            Ok(Response::new(v1::ListAnomaliesResponse {
                anomalies: page,
                next_cursor: if next < total {
                    next.to_string()
                } else {
                    String::new()
                },
                total: u32::try_from(total).unwrap_or(u32::MAX),
                counts,
            }))
        })
        .await
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn chain_report(
        &self,
        request: Request<v1::ChainReportRequest>,
    ) -> Result<Response<v1::ChainReportResponse>, Status> {
        let r = request.into_inner();
        let lot = lot_arg(&r.lot)?;
        let public = r.public_view;
        read(&self.ready, move |store, _| {
            ensure_lot(store, &lot)?;
            let upstream = Lineage::new(store).upstream(&lot).map_err(store_status)?;
            let movements: Vec<_> = store
                .mentions(&lot)
                .map_err(store_status)?
                .into_iter()
                .filter(|e| matches!(e.kind, EventKind::Ship(_) | EventKind::Receive(_)))
                .collect();
            let mut ids = upstream_orgs(&upstream);
            for e in &movements {
                ids.insert(e.org.as_str());
                ids.extend(e.counterparties());
            }
            let certs = certificates(store, ids.iter().copied()).map_err(store_status)?;
            let mut orgs = orgs(store, ids).map_err(store_status)?;
            let mentions = store.mentions(&lot).map_err(store_status)?;
            let chain_hint = mentions.iter().find_map(|e| e.chain.map(|c| c.as_str()));
            let report = chain::report(&ChainFacts {
                lot: &lot,
                upstream: &upstream,
                orgs: &orgs,
                certs: &certs,
                movements: &movements,
                chain_hint,
            });
            let mut answer = chain_report_to_wire(&report);
            if public {
                orgs.retain(|_, o| o.role == OrgRole::Farm);
                let entries = answer
                    .stages
                    .iter_mut()
                    .flat_map(|s| s.entries.iter_mut())
                    .chain(answer.other.iter_mut());
                for entry in entries.filter(|e| orgs.contains_key(&e.org)) {
                    entry.org_name.clear();
                }
            }
            Ok(Response::new(answer))
        })
        .await
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn eudr_export(
        &self,
        request: Request<v1::EudrExportRequest>,
    ) -> Result<Response<v1::EudrExportResponse>, Status> {
        let r = request.into_inner();
        let lot = lot_arg(&r.lot)?;
        let public = r.public_view;
        read(&self.ready, move |store, _| {
            ensure_lot(store, &lot)?;
            let upstream = Lineage::new(store).upstream(&lot).map_err(store_status)?;
            let harvests: Vec<(&Event, &str)> = upstream
                .iter()
                .flat_map(|u| u.creations.iter())
                .filter_map(|e| match &e.kind {
                    EventKind::Harvest(h) => Some((e.as_ref(), h.plot.as_str())),
                    _ => None,
                })
                .collect();
            let mut plots = BTreeMap::new();
            for (_, plot) in &harvests {
                if let Some(found) = store.plot(plot).map_err(store_status)? {
                    plots.insert(plot.to_string(), found);
                }
            }
            let owners: BTreeSet<&str> = plots
                .values()
                .map(|(e, _)| e.org.as_str())
                .chain(harvests.iter().map(|(e, _)| e.org.as_str()))
                .collect();
            let orgs = orgs(store, owners).map_err(store_status)?;
            let shipments = shipments(store, &upstream).map_err(store_status)?;
            let report = eudr::assess(&EudrFacts {
                lot: &lot,
                upstream: &upstream,
                plots: &plots,
                orgs: &orgs,
                shipments: &shipments,
            });
            let geojson = eudr::feature_collection(&report, public);
            Ok(Response::new(v1::EudrExportResponse {
                lot: report.lot.clone(),
                verdict: report.verdict.as_str().to_string(),
                reasons: report.reasons.clone(),
                geojson: geojson.to_string(),
                dds_references: report.dds.iter().map(dds_to_wire).collect(),
                plots: u32::try_from(report.plots.len()).unwrap_or(u32::MAX),
            }))
        })
        .await
    }
}
