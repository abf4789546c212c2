//! Master data as the log has it: the standing registration of an org, site, plot or product
//! class (the latest uncorrected one by event time, then event id, so arrival order does not
//! matter), lookups by the ids other systems use (a site id whoever registered it, a GLN), and
//! paged listings filtered by org, chain, country and role.

use std::sync::Arc;

use lotline_domain::{Chain, Event, EventKind, OrgRole, RegisterClass};

use crate::error::StoreError;
use crate::keys::*;
use crate::snapshot::Snapshot;
use crate::store::StoredEvent;

/// The kinds of master data a listing answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKind {
    Orgs,
    Sites,
    Plots,
    Classes,
    Certificates,
}

/// Filters of a master-data listing; all optional, combined with AND.
///
/// `org` matches what the org owns or holds: an org itself and the farms that are its members,
/// its sites and plots (and its members'), the classes it registered, the certificates it
/// holds or issued. `chain`, `country` and `role` are the entry's own where it has one, else
/// its owner's registration's.
#[derive(Debug, Clone, Default)]
pub struct MasterFilter {
    pub org: Option<String>,
    pub chain: Option<Chain>,
    pub country: Option<String>,
    pub role: Option<OrgRole>,
}

/// One page of a master-data listing: standing registrations (every certificate, for
/// certificates), in id order (log order for certificates).
#[derive(Debug, Clone)]
pub struct MasterPage {
    pub items: Vec<StoredEvent>,
    /// The cursor to continue after, when there may be more.
    pub next_cursor: Option<String>,
}

/// The standing registrations that give one GLN.
#[derive(Debug, Clone, Default)]
pub struct ByGln {
    /// The org registered with it (while its standing registration gives it).
    pub org: Option<Arc<Event>>,
    /// The site registered with it.
    pub site: Option<Arc<Event>>,
}

/// Rows read from an index per range call while listing.
const CHUNK: usize = 1_024;

impl Snapshot<'_> {
    /// The standing event among those an index prefix points at.
    fn standing(&self, prefix: &[u8]) -> Result<Option<StoredEvent>, StoreError> {
        let mut best: Option<StoredEvent> = None;
        for seq in self.store.seqs_with_prefix(prefix)? {
            if seq > self.upto() {
                continue;
            }
            let Some(stored) = self.event_at(seq)? else {
                continue;
            };
            if self.is_corrected(&stored.event.id)? {
                continue;
            }
            let newer = best.as_ref().is_none_or(|b| {
                (stored.event.time, &stored.event.id) > (b.event.time, &b.event.id)
            });
            if newer {
                best = Some(stored);
            }
        }
        Ok(best)
    }

    /// The standing RegisterOrg event of `org`.
    pub fn org_registration(&self, org: &str) -> Result<Option<Arc<Event>>, StoreError> {
        Ok(self
            .standing(&id_prefix(ORG_REGISTRATION, org))?
            .map(|s| s.event))
    }

    /// The standing registration of the site `site`, whichever org registered it.
    pub fn site(&self, site: &str) -> Result<Option<Arc<Event>>, StoreError> {
        Ok(self.standing(&id_prefix(SITE_ID, site))?.map(|s| s.event))
    }

    /// The standing registration of the product class `class`.
    pub fn class(&self, class: &str) -> Result<Option<(Arc<Event>, RegisterClass)>, StoreError> {
        Ok(self
            .standing(&id_prefix(CLASS, class))?
            .and_then(|stored| match &stored.event.kind {
                EventKind::RegisterClass(c) => {
                    let c = c.clone();
                    Some((stored.event, c))
                }
                _ => None,
            }))
    }

    /// The standing org registration and site registration that give `gln`.
    pub fn by_gln(&self, gln: &str) -> Result<ByGln, StoreError> {
        let mut org: Option<Arc<Event>> = None;
        let mut site: Option<Arc<Event>> = None;
        for seq in self.store.seqs_with_prefix(&id_prefix(GLN, gln))? {
            if seq > self.upto() {
                continue;
            }
            let Some(stored) = self.event_at(seq)? else {
                continue;
            };
            if self.is_corrected(&stored.event.id)? {
                continue;
            }
            let event = stored.event;
            let slot = match &event.kind {
                // An org's GLN names the org only while its standing registration gives it.
                EventKind::RegisterOrg(o) if o.gln.as_deref() == Some(gln) => {
                    match self.org_registration(&event.org)? {
                        Some(standing) if standing.id == event.id => &mut org,
                        _ => continue,
                    }
                }
                EventKind::RegisterSite(s) if s.gln.as_deref() == Some(gln) => &mut site,
                _ => continue,
            };
            if slot
                .as_ref()
                .is_none_or(|b| (event.time, &event.id) > (b.time, &b.id))
            {
                *slot = Some(event);
            }
        }
        Ok(ByGln { org, site })
    }

    /// One page of master data of `kind` matching `filter`, after `cursor` (an id; a sequence
    /// number for certificates).
    pub fn list_master_data(
        &self,
        kind: MasterKind,
        filter: &MasterFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MasterPage, StoreError> {
        let limit = limit.max(1);
        if kind == MasterKind::Certificates {
            return self.list_certificates(filter, cursor, limit);
        }
        let prefix = match kind {
            MasterKind::Orgs => ORG_REGISTRATION,
            MasterKind::Sites => SITE_ID,
            MasterKind::Plots => PLOT,
            MasterKind::Classes => CLASS,
            MasterKind::Certificates => CERTIFICATE,
        };
        let end = prefix_end(&[prefix]);
        // Keys are `prefix id 0x00 seq`: the first key after every entry of the cursor's id.
        let mut start = match cursor {
            Some(id) => prefix_end(&id_prefix(prefix, id)),
            None => vec![prefix],
        };
        let mut items = Vec::new();
        loop {
            let rows = self.store.backend().range(&start, &end, CHUNK)?;
            let Some((last, _)) = rows.last() else {
                return Ok(MasterPage {
                    items,
                    next_cursor: None,
                });
            };
            let full = rows.len() == CHUNK;
            let next_start = {
                let mut k = last.clone();
                k.push(0);
                k
            };
            let mut previous: Option<&[u8]> = None;
            for (key, _) in &rows {
                let Some(id) = key.get(1..key.len().saturating_sub(9)) else {
                    continue;
                };
                if previous == Some(id) || id.is_empty() {
                    continue;
                }
                previous = Some(id);
                let id = String::from_utf8_lossy(id).into_owned();
                let Some(stored) = self.standing(&id_prefix(prefix, &id))? else {
                    continue;
                };
                if self.master_matches(&stored.event, filter)? {
                    items.push(stored);
                    if items.len() == limit {
                        return Ok(MasterPage {
                            items,
                            next_cursor: Some(id),
                        });
                    }
                }
                // Skip the id's other registrations, which the next chunk may hold.
                start = prefix_end(&id_prefix(prefix, &id));
            }
            if !full {
                return Ok(MasterPage {
                    items,
                    next_cursor: None,
                });
            }
            start = start.max(next_start);
        }
    }

    fn list_certificates(
        &self,
        filter: &MasterFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MasterPage, StoreError> {
        let after = match cursor {
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| StoreError::BadCursor(c.to_string()))?,
            None => 0,
        };
        let end = prefix_end(&[CERTIFICATE]);
        let mut start = seq_key(CERTIFICATE, after.saturating_add(1));
        let mut items = Vec::new();
        loop {
            let rows = self.store.backend().range(&start, &end, CHUNK)?;
            let full = rows.len() == CHUNK;
            for (key, _) in &rows {
                let Some(seq) = trailing_seq(key).filter(|s| *s <= self.upto()) else {
                    continue;
                };
                start = seq_key(CERTIFICATE, seq.saturating_add(1));
                let Some(stored) = self.event_at(seq)? else {
                    continue;
                };
                if self.is_corrected(&stored.event.id)? {
                    continue;
                }
                if self.master_matches(&stored.event, filter)? {
                    items.push(stored);
                    if items.len() == limit {
                        return Ok(MasterPage {
                            items,
                            next_cursor: Some(seq.to_string()),
                        });
                    }
                }
            }
            if !full {
                return Ok(MasterPage {
                    items,
                    next_cursor: None,
                });
            }
        }
    }

    /// Whether a master-data event passes `filter` (see [`MasterFilter`]).
    pub fn master_matches(&self, event: &Event, filter: &MasterFilter) -> Result<bool, StoreError> {
        if filter.org.is_none()
            && filter.chain.is_none()
            && filter.country.is_none()
            && filter.role.is_none()
        {
            return Ok(true);
        }
        // The org the entry belongs to: the holder of a certificate, else the recorder.
        let owner = match &event.kind {
            EventKind::Certify(c) => c.subject_org.clone().unwrap_or_else(|| event.org.clone()),
            _ => event.org.clone(),
        };
        let owner_event = match &event.kind {
            EventKind::RegisterOrg(_) => Some(Arc::new(event.clone())),
            _ => self.org_registration(&owner)?,
        };
        let owner_org = owner_event.as_deref().and_then(|e| match &e.kind {
            EventKind::RegisterOrg(o) => Some(o),
            _ => None,
        });
        if let Some(wanted) = &filter.org {
            let member_of = owner_org.and_then(|o| o.member_of.as_deref());
            let issued = matches!(&event.kind, EventKind::Certify(_)) && &event.org == wanted;
            if &owner != wanted && member_of != Some(wanted.as_str()) && !issued {
                return Ok(false);
            }
        }
        if let Some(chain) = filter.chain {
            let own = match &event.kind {
                EventKind::RegisterOrg(_) | EventKind::RegisterClass(_) => event.chain,
                _ => event
                    .chain
                    .or_else(|| owner_event.as_ref().and_then(|e| e.chain)),
            };
            if own != Some(chain) {
                return Ok(false);
            }
        }
        if let Some(country) = &filter.country {
            let own = match &event.kind {
                EventKind::RegisterOrg(o) => Some(o.country.as_str()),
                EventKind::RegisterSite(s) => Some(s.country.as_str()),
                EventKind::RegisterPlot(p) => Some(p.country.as_str()),
                _ => owner_org.map(|o| o.country.as_str()),
            };
            if own != Some(country.as_str()) {
                return Ok(false);
            }
        }
        if let Some(role) = filter.role
            && owner_org.map(|o| o.role) != Some(role)
        {
            return Ok(false);
        }
        Ok(true)
    }
}
