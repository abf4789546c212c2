//! The public pages: what a scan of a product's QR code shows (a lot: where it came from, its
//! chain, its EUDR verdict and how to check the record) and the lots of one product. Each is
//! made of the answers the other doors give, in the caller's view, so a page never shows more
//! than `trace --public` would.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use lotline_domain::OrgRole;

use super::audit::{ChainReportAnswer, EudrAnswer, certificates};
use super::log::SignedCheckpoint;
use super::provenance::TraceBackAnswer;
use crate::{Caller, Service, ServiceError};

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
        let origins: Vec<(String, String, NaiveDate)> = trace
            .trace
            .origins
            .iter()
            .filter_map(|o| Some((o.lot.clone(), o.org.clone()?, o.harvest_time?.date_naive())))
            .collect();
        let orgs: BTreeSet<String> = chain
            .report
            .stages
            .iter()
            .flat_map(|s| s.entries.iter())
            .chain(chain.report.other.iter())
            .map(|e| e.org.clone())
            .collect();
        let (co_ops, countries, co_op_names) = self
            .read(caller.reading(), move |store, _| {
                let farms: BTreeSet<&str> = origins.iter().map(|(_, f, _)| f.as_str()).collect();
                let certs = certificates(store, farms)?;
                let co_ops: BTreeMap<String, String> = origins
                    .iter()
                    .filter_map(|(lot, farm, date)| {
                        Some((lot.clone(), certs.co_op_on(farm, *date)?.to_string()))
                    })
                    .collect();
                let mut co_op_names = BTreeMap::new();
                for co_op in co_ops.values().collect::<BTreeSet<_>>() {
                    if let Some(registered) = store.org(co_op)?
                        && registered.role == OrgRole::Cooperative
                        && !registered.name.is_empty()
                    {
                        co_op_names.insert(co_op.clone(), registered.name);
                    }
                }
                let mut countries = BTreeMap::new();
                for org in orgs {
                    if let Some(registered) = store.org(&org)? {
                        countries.insert(org, registered.country);
                    }
                }
                Ok((co_ops, countries, co_op_names))
            })
            .await?;
        let checkpoint = self.checkpoint(caller, 0).await?;
        Ok(LotPage {
            trace,
            chain,
            eudr,
            co_ops,
            countries,
            co_op_names,
            checkpoint,
        })
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
