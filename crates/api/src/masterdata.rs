//! `MasterDataService`: master-data listings (orgs, sites, plots, product classes,
//! certificates; paged, filtered, with the public view), and the lookups an EPCIS import makes
//! so that a document with events only finds what earlier documents registered.

use lotline_epcis::import::{class_key, location_candidates, party_default_org, party_gln, sgln};
use lotline_proto::convert::{role_from_wire, role_to_wire};
use lotline_proto::v1;
use lotline_proto::v1::master_data_service_server::MasterDataService;
use lotline_store::{MasterFilter, MasterKind, Snapshot, StoreError};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::ReadyCell;
use crate::provenance::{chain_arg, id_arg, page_limit, stored_to_wire};
use crate::public::redact;
use crate::status::store_status;

/// Names one Resolve request may ask about, in all.
pub const MAX_RESOLVE: usize = 10_000;

pub struct MasterDataApi {
    ready: ReadyCell,
}

impl MasterDataApi {
    pub fn new(ready: ReadyCell) -> Self {
        MasterDataApi { ready }
    }
}

#[tonic::async_trait]
impl MasterDataService for MasterDataApi {
    #[instrument(skip_all)]
    async fn list_master_data(
        &self,
        request: Request<v1::ListMasterDataRequest>,
    ) -> Result<Response<v1::ListMasterDataResponse>, Status> {
        let r = request.into_inner();
        let kind = match v1::MasterDataKind::try_from(r.kind) {
            Ok(v1::MasterDataKind::Orgs) => MasterKind::Orgs,
            Ok(v1::MasterDataKind::Sites) => MasterKind::Sites,
            Ok(v1::MasterDataKind::Plots) => MasterKind::Plots,
            Ok(v1::MasterDataKind::Classes) => MasterKind::Classes,
            Ok(v1::MasterDataKind::Certificates) => MasterKind::Certificates,
            _ => {
                return Err(Status::invalid_argument(
                    "kind: is required (orgs, sites, plots, classes or certificates)",
                ));
            }
        };
        let filter =
            MasterFilter {
                org: Some(id_arg("org", &r.org)?).filter(|s| !s.is_empty()),
                chain: chain_arg(&r.chain)?,
                country: match r.country.trim() {
                    "" => None,
                    c if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                        Some(c.to_ascii_uppercase())
                    }
                    c => {
                        return Err(Status::invalid_argument(format!(
                            "country: {c:?} is not an ISO 3166-1 alpha-2 code"
                        )));
                    }
                },
                role: match r.role {
                    0 => None,
                    n => Some(role_from_wire(n).ok_or_else(|| {
                        Status::invalid_argument(format!("role: unknown role {n}"))
                    })?),
                },
            };
        let cursor = Some(id_arg("cursor", &r.cursor)?).filter(|c| !c.is_empty());
        let limit = page_limit(r.limit);
        let public = r.public_view;
        crate::read(&self.ready, move |view, _| {
            let page = view
                .list_master_data(kind, &filter, cursor.as_deref(), limit)
                .map_err(store_status)?;
            let mut entries: Vec<v1::StoredEvent> = page
                .items
                .iter()
                .map(|s| stored_to_wire(view, s))
                .collect::<Result<_, _>>()
                .map_err(store_status)?;
            if public {
                entries.iter_mut().for_each(redact);
            }
            Ok(Response::new(v1::ListMasterDataResponse {
                entries,
                next_cursor: page.next_cursor.unwrap_or_default(),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn resolve(
        &self,
        request: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::ResolveResponse>, Status> {
        let r = request.into_inner();
        let asked = r.parties.len() + r.locations.len() + r.orgs.len() + r.classes.len();
        if asked > MAX_RESOLVE {
            return Err(Status::invalid_argument(format!(
                "a Resolve request names at most {MAX_RESOLVE} ids, got {asked}"
            )));
        }
        for (field, ids) in [
            ("parties", &r.parties),
            ("locations", &r.locations),
            ("orgs", &r.orgs),
            ("classes", &r.classes),
        ] {
            for id in ids.iter() {
                id_arg(field, id)?;
            }
        }
        crate::read(&self.ready, move |view, _| {
            resolve(view, &r).map(Response::new).map_err(store_status)
        })
        .await
    }
}

fn resolve(view: &Snapshot<'_>, r: &v1::ResolveRequest) -> Result<v1::ResolveResponse, StoreError> {
    let mut out = v1::ResolveResponse::default();
    for id in &r.parties {
        out.parties.push(v1::ResolvedParty {
            id: id.clone(),
            org: resolve_party(view, id)?,
        });
    }
    for id in &r.locations {
        out.locations.push(resolve_location(view, id)?);
    }
    for org in &r.orgs {
        if let Some(found) = resolve_org(view, org)? {
            out.orgs.push(found);
        }
    }
    for id in &r.classes {
        let key = class_key(id);
        out.classes.push(match view.class(&key)? {
            Some((event, class)) => v1::ResolvedClass {
                id: id.clone(),
                found: true,
                product: class.product.unwrap_or_default(),
                chain: event.chain.map(|c| c.to_string()).unwrap_or_default(),
                org: event.org.clone(),
            },
            None => v1::ResolvedClass {
                id: id.clone(),
                ..Default::default()
            },
        });
    }
    Ok(out)
}

/// An org as its standing registration has it.
fn resolve_org(view: &Snapshot<'_>, org: &str) -> Result<Option<v1::ResolvedOrg>, StoreError> {
    let Some(event) = view.org_registration(org)? else {
        return Ok(None);
    };
    let lotline_domain::EventKind::RegisterOrg(reg) = &event.kind else {
        return Ok(None);
    };
    Ok(Some(v1::ResolvedOrg {
        org: event.org.clone(),
        role: role_to_wire(reg.role),
        chain: event.chain.map(|c| c.to_string()).unwrap_or_default(),
        country: reg.country.clone(),
        member_of: reg.member_of.clone().unwrap_or_default(),
    }))
}

/// The org a party id names: the org registered as known by that id, else the org registered
/// with its GLN, else the org its id maps to (docs/epcis.md), when registered.
fn resolve_party(view: &Snapshot<'_>, id: &str) -> Result<Option<v1::ResolvedOrg>, StoreError> {
    if let Some(event) = view.by_party(id)?
        && let Some(found) = resolve_org(view, &event.org)?
    {
        return Ok(Some(found));
    }
    if let Some(gln) = party_gln(id)
        && let Some(event) = view.by_gln(&gln)?.org
        && let Some(found) = resolve_org(view, &event.org)?
    {
        return Ok(Some(found));
    }
    match party_default_org(id) {
        Ok(org) => resolve_org(view, &org),
        Err(_) => Ok(None),
    }
}

/// The site or plot a location id names: the id itself, else without its extension (an SGLN's
/// extension component, a Digital Link's `/254/`), else the site registered with its GLN.
fn resolve_location(view: &Snapshot<'_>, id: &str) -> Result<v1::ResolvedLocation, StoreError> {
    let owned = |registered: &str, plot: bool, org: &str| -> Result<_, StoreError> {
        Ok(v1::ResolvedLocation {
            id: id.to_string(),
            registered: registered.to_string(),
            plot,
            owner: Some(resolve_org(view, org)?.unwrap_or_else(|| v1::ResolvedOrg {
                org: org.to_string(),
                ..Default::default()
            })),
        })
    };
    for candidate in location_candidates(id) {
        if let Some((event, _)) = view.plot(&candidate)? {
            return owned(&candidate, true, &event.org);
        }
        if let Some(event) = view.site(&candidate)? {
            return owned(&candidate, false, &event.org);
        }
    }
    if let Some(gln) = sgln(id)
        && let Some(event) = view.by_gln(&gln)?.site
        && let lotline_domain::EventKind::RegisterSite(site) = &event.kind
    {
        return owned(&site.site, false, &event.org);
    }
    Ok(v1::ResolvedLocation {
        id: id.to_string(),
        ..Default::default()
    })
}
