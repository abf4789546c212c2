//! The public pages: what a scan of a product's QR code shows (a lot: where it came from, its
//! chain, its EUDR verdict and how to check the record) and the lots of one product. Each is
//! made of the answers the other doors give, in the caller's view, so a page never shows more
//! than `trace --public` would.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use lotline_domain::OrgRole;

use super::audit::{ChainReportAnswer, EudrAnswer, certificates};
use super::log::SignedCheckpoint;
use super::provenance::{LotAnswer, TraceBackAnswer};
use crate::{Caller, Service, ServiceError};
use lotline_store::{Snapshot, StoreError};

/// Lots one product listing names at most.
pub const MAX_PRODUCT_LOTS: usize = 1_000;

/// Everything a lot's page shows.
#[derive(Debug, Clone)]
pub struct LotPage {
    pub trace: TraceBackAnswer,
    pub chain: ChainReportAnswer,
    pub eudr: EudrAnswer,
    /// Each origin's co-op: the one its farm delivered through as a member on the harvest date
    /// (by the audit's membership rule), by origin lot. Origins without one are left out.
    pub co_ops: BTreeMap<String, String>,
    /// The country each org of the chain registered, by org.
    pub countries: BTreeMap<String, String>,
    /// The registered name of each origin's co-op (co-ops are businesses, not persons).
    pub co_op_names: BTreeMap<String, String>,
    /// A checkpoint taken after the answers were read, so it covers every event they cite.
    pub checkpoint: SignedCheckpoint,
}

/// Lots one product view covers at most (each is traced: narrow the period for more).
pub const MAX_VIEW_LOTS: usize = 200;

/// One lot of a product view.
#[derive(Debug, Clone)]
pub struct ProductLot {
    pub state: LotAnswer,
    pub trace: TraceBackAnswer,
    pub eudr: EudrAnswer,
}

/// A brand's view of one product over a period.
#[derive(Debug, Clone, Default)]
pub struct ProductView {
    /// The lots created in the period, in key order.
    pub lots: Vec<ProductLot>,
    /// Set when the product has more lots than the view covers.
    pub truncated: bool,
    /// Origin lot → the co-op its farm delivered through as a member.
    pub co_ops: BTreeMap<String, String>,
    /// Co-op → its registered name.
    pub co_op_names: BTreeMap<String, String>,
}

/// The lots of one product (a GTIN), in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductLots {
    pub lots: Vec<String>,
    /// Set when there were more than the listing holds.
    pub truncated: bool,
}

impl Service {
    /// A lot's page, in the caller's view.
    pub async fn lot_page(&self, caller: &Caller, lot: String) -> Result<LotPage, ServiceError> {
        let trace = self.trace_back(caller, lot.clone()).await?;
        let chain = self.chain_report(caller, lot.clone()).await?;
        let eudr = self.eudr(caller, lot).await?;
        let origins = farm_origins(&trace);
        let orgs: BTreeSet<String> = chain
            .report
            .stages
            .iter()
            .flat_map(|s| s.entries.iter())
            .chain(chain.report.other.iter())
            .map(|e| e.org.clone())
            .collect();
        let (co_ops, countries) = self
            .read(caller.reading(), move |store, _| {
                let co_ops = origin_co_ops(store, &origins)?;
                let mut countries = BTreeMap::new();
                for org in orgs {
                    if let Some(registered) = store.org(&org)? {
                        countries.insert(org, registered.country);
                    }
                }
                Ok((co_ops, countries))
            })
            .await?;
        let checkpoint = self.checkpoint(caller, 0).await?;
        Ok(LotPage {
            trace,
            chain,
            eudr,
            co_ops: co_ops.of_origin,
            countries,
            co_op_names: co_ops.names,
            checkpoint,
        })
    }

    /// A brand's view of one product: each of its lots created in `from..=to` (either end
    /// open), with its state, trace and EUDR answer in the caller's view, and the co-op of every
    /// origin. At most [`MAX_VIEW_LOTS`] lots; `truncated` says there were more.
    pub async fn product_view(
        &self,
        caller: &Caller,
        prefix: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<ProductView, ServiceError> {
        caller.party_only("a product view")?;
        let listed = self.lots_with_prefix(caller, prefix).await?;
        let mut view = ProductView {
            truncated: listed.truncated,
            ..ProductView::default()
        };
        for lot in listed.lots {
            let state = self.lot(caller, lot.clone()).await?;
            let created = state.state.created_at.map(|t| t.date_naive());
            if created.is_some_and(|d| from.is_some_and(|f| d < f) || to.is_some_and(|t| d > t))
                || (created.is_none() && (from.is_some() || to.is_some()))
            {
                continue;
            }
            if view.lots.len() == MAX_VIEW_LOTS {
                view.truncated = true;
                break;
            }
            let trace = self.trace_back(caller, lot.clone()).await?;
            let eudr = self.eudr(caller, lot).await?;
            view.lots.push(ProductLot { state, trace, eudr });
        }
        let origins: Vec<_> = view
            .lots
            .iter()
            .flat_map(|l| farm_origins(&l.trace))
            .collect();
        let co_ops = self
            .read(caller.reading(), move |store, _| {
                Ok(origin_co_ops(store, &origins)?)
            })
            .await?;
        view.co_ops = co_ops.of_origin;
        view.co_op_names = co_ops.names;
        Ok(view)
    }

    /// The lots whose id starts with `prefix` (a product's canonical Digital Link and `/10/`),
    /// at most [`MAX_PRODUCT_LOTS`].
    pub async fn lots_with_prefix(
        &self,
        caller: &Caller,
        prefix: String,
    ) -> Result<ProductLots, ServiceError> {
        self.read(caller.reading(), move |store, _| {
            let mut lots = Vec::new();
            let mut after = prefix.clone();
            loop {
                let page = store.lots_after(Some(&after), 200)?;
                let Some(last) = page.last().cloned() else {
                    break;
                };
                for lot in page {
                    if !lot.starts_with(&prefix) {
                        return Ok(ProductLots {
                            lots,
                            truncated: false,
                        });
                    }
                    if lots.len() == MAX_PRODUCT_LOTS {
                        return Ok(ProductLots {
                            lots,
                            truncated: true,
                        });
                    }
                    lots.push(lot);
                }
                after = last;
            }
            Ok(ProductLots {
                lots,
                truncated: false,
            })
        })
        .await
    }
}

/// Each origin's farm and harvest date: (origin lot, farm, date).
fn farm_origins(trace: &TraceBackAnswer) -> Vec<(String, String, NaiveDate)> {
    trace
        .trace
        .origins
        .iter()
        .filter_map(|o| Some((o.lot.clone(), o.org.clone()?, o.harvest_time?.date_naive())))
        .collect()
}

/// Origins' co-ops and the co-ops' names.
#[derive(Debug, Clone, Default)]
struct OriginCoOps {
    /// Origin lot → its co-op.
    of_origin: BTreeMap<String, String>,
    /// Co-op → its registered name.
    names: BTreeMap<String, String>,
}

/// The co-op each origin's farm delivered through as a member on the harvest date (the
/// audit's membership rule), and those co-ops' names.
fn origin_co_ops(
    store: &Snapshot<'_>,
    origins: &[(String, String, NaiveDate)],
) -> Result<OriginCoOps, StoreError> {
    let farms: BTreeSet<&str> = origins.iter().map(|(_, f, _)| f.as_str()).collect();
    let certs = certificates(store, farms)?;
    let of_origin: BTreeMap<String, String> = origins
        .iter()
        .filter_map(|(lot, farm, date)| {
            Some((lot.clone(), certs.co_op_on(farm, *date)?.to_string()))
        })
        .collect();
    let mut names = BTreeMap::new();
    for co_op in of_origin.values().collect::<BTreeSet<_>>() {
        if let Some(registered) = store.org(co_op)?
            && registered.role == OrgRole::Cooperative
            && !registered.name.is_empty()
        {
            names.insert(co_op.clone(), registered.name);
        }
    }
    Ok(OriginCoOps { of_origin, names })
}
