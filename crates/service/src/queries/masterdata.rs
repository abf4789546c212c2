//! Master data: listings (orgs, sites, plots, product classes, certificates; paged, filtered, in
//! the caller's view), and the lookups an EPCIS import makes so that a document with events only
//! finds what earlier documents registered.

use lotline_domain::{EventKind, OrgRole};
use lotline_epcis::import::{class_key, location_candidates, party_default_org, party_gln, sgln};
use lotline_store::{MasterFilter, MasterKind, Snapshot, StoreError};

use super::{EventPage, answer_all};
use crate::{Caller, Service, ServiceError};

/// Names one resolution may ask about, in all.
pub const MAX_RESOLVE: usize = 10_000;

/// The names an importer asks about.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// EPCIS party ids (PGLNs or others).
    pub parties: Vec<String>,
    /// Location ids (SGLNs, Digital Links, site or plot ids).
    pub locations: Vec<String>,
    /// Org ids.
    pub orgs: Vec<String>,
    /// Product class ids.
    pub classes: Vec<String>,
}

/// What the log says of each name, in the order asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Each party id and the org it names, if registered.
    pub parties: Vec<(String, Option<KnownOrg>)>,
    pub locations: Vec<KnownLocation>,
    /// The registered orgs among those asked.
    pub orgs: Vec<KnownOrg>,
    pub classes: Vec<KnownClass>,
}

/// An org as its standing registration has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownOrg {
    pub org: String,
    pub role: Option<OrgRole>,
    pub chain: Option<String>,
    pub country: String,
    pub member_of: Option<String>,
}

/// The site or plot a location id names, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownLocation {
    pub id: String,
    /// The registered site or plot id; empty when none.
    pub registered: String,
    pub plot: bool,
    /// Its owner (registered or not), when found.
    pub owner: Option<KnownOrg>,
}

/// A product class, if registered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownClass {
    pub id: String,
    pub found: bool,
    pub product: Option<String>,
    pub chain: Option<String>,
    pub org: String,
}

impl Service {
    /// A page of master data of one kind, in the caller's view.
    pub async fn master_data(
        &self,
        caller: &Caller,
        kind: MasterKind,
        filter: MasterFilter,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EventPage, ServiceError> {
        caller.party_only("master data")?;
        let view = caller.view(false);
        self.read(caller.reading(), move |store, _| {
            let page = store.list_master_data(kind, &filter, cursor.as_deref(), limit)?;
            Ok(EventPage {
                events: answer_all(store, &view, &page.items)?,
                next: page.next_cursor,
                view: view.level,
            })
        })
        .await
    }

    /// What the log says of the names an importer asks about.
    pub async fn resolve(&self, caller: &Caller, names: Names) -> Result<Resolved, ServiceError> {
        caller.party_only("resolving names")?;
        let asked =
            names.parties.len() + names.locations.len() + names.orgs.len() + names.classes.len();
        if asked > MAX_RESOLVE {
            return Err(ServiceError::LimitExceeded {
                field: "names",
                limit: MAX_RESOLVE,
                message: format!("a Resolve request names at most {MAX_RESOLVE} ids, got {asked}"),
            });
        }
        for (field, ids) in [
            ("parties", &names.parties),
            ("locations", &names.locations),
            ("orgs", &names.orgs),
            ("classes", &names.classes),
        ] {
            for id in ids.iter() {
                crate::args::id(field, id)?;
            }
        }
        self.read(caller.reading(), move |store, _| {
            Ok(resolve(store, &names)?)
        })
        .await
    }
}

fn resolve(view: &Snapshot<'_>, names: &Names) -> Result<Resolved, StoreError> {
    let mut out = Resolved::default();
    for id in &names.parties {
        out.parties.push((id.clone(), resolve_party(view, id)?));
    }
    for id in &names.locations {
        out.locations.push(resolve_location(view, id)?);
    }
    for org in &names.orgs {
        if let Some(found) = resolve_org(view, org)? {
            out.orgs.push(found);
        }
    }
    for id in &names.classes {
        out.classes.push(match view.class(&class_key(id))? {
            Some((event, class)) => KnownClass {
                id: id.clone(),
                found: true,
                product: class.product,
                chain: event.chain.map(|c| c.to_string()),
                org: event.org.clone(),
            },
            None => KnownClass {
                id: id.clone(),
                ..Default::default()
            },
        });
    }
    Ok(out)
}

/// An org as its standing registration has it.
fn resolve_org(view: &Snapshot<'_>, org: &str) -> Result<Option<KnownOrg>, StoreError> {
    let Some(event) = view.org_registration(org)? else {
        return Ok(None);
    };
    let EventKind::RegisterOrg(reg) = &event.kind else {
        return Ok(None);
    };
    Ok(Some(KnownOrg {
        org: event.org.clone(),
        role: Some(reg.role),
        chain: event.chain.map(|c| c.to_string()),
        country: reg.country.clone(),
        member_of: reg.member_of.clone(),
    }))
}

/// The org a party id names: the org registered as known by that id, else the org registered
/// with its GLN, else the org its id maps to (docs/epcis.md), when registered.
fn resolve_party(view: &Snapshot<'_>, id: &str) -> Result<Option<KnownOrg>, StoreError> {
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
fn resolve_location(view: &Snapshot<'_>, id: &str) -> Result<KnownLocation, StoreError> {
    let owned = |registered: &str, plot: bool, org: &str| -> Result<_, StoreError> {
        Ok(KnownLocation {
            id: id.to_string(),
            registered: registered.to_string(),
            plot,
            owner: Some(resolve_org(view, org)?.unwrap_or_else(|| KnownOrg {
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
        && let EventKind::RegisterSite(site) = &event.kind
    {
        return owned(&site.site, false, &event.org);
    }
    Ok(KnownLocation {
        id: id.to_string(),
        ..Default::default()
    })
}
