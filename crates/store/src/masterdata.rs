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

/// Ids one listing page examines at most; a page that stops there (with fewer entries than
/// asked for, maybe none) gives a cursor to go on from.
const SCAN_BUDGET: usize = 10_000;

/// Rows read from an index per range call while listing.
const CHUNK: usize = 1_024;

impl Snapshot<'_> {
    /// The uncorrected events of this view an index prefix points at.
    fn registrations(&self, prefix: &[u8]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for seq in self.seqs(prefix)? {
            if let Some(stored) = self.event_at(seq)?
                && !self.is_corrected(&stored.event.id)?
            {
                out.push(stored);
            }
        }
        Ok(out)
    }

    /// The standing event among those an index prefix points at: the latest by event time,
    /// then event id, of those by the org that registered the name first (a shared name has
    /// an owner: another org's registration of the same site, plot or class changes nothing).
    /// For a plot, the co-op the first registrant says it is a member of counts as well (a co-op
    /// keeps its member farms' plots).
    pub(crate) fn standing(&self, prefix: &[u8]) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.standing_read(prefix)?.0)
    }

    /// [`Snapshot::standing`], and the org that registered the name first (for a plot, its
    /// registration of itself names the co-op that counts as well).
    pub(crate) fn standing_read(
        &self,
        prefix: &[u8],
    ) -> Result<(Option<StoredEvent>, Option<String>), StoreError> {
        let registrations = self.registrations(prefix)?;
        let first_org = registrations.first().map(|s| s.event.org.clone());
        let mut co_op = None;
        if prefix.first() == Some(&PLOT)
            && let Some(first) = &first_org
        {
            co_op = self.org(first)?.and_then(|r| r.member_of);
        }
        let standing = owned_standing(registrations, |s| &s.event, |_| co_op);
        Ok((standing, first_org))
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
        for stored in self.registrations(&id_prefix(GLN, gln))? {
            let event = stored.event;
            let slot = match &event.kind {
                // An org's GLN names the org only while its standing registration gives it.
                EventKind::RegisterOrg(o) if o.gln.as_deref() == Some(gln) => {
                    match self.org_registration(&event.org)? {
                        Some(standing) if standing.id == event.id => &mut org,
                        _ => continue,
                    }
                }
                // A site's GLN likewise, while its standing registration gives it.
                EventKind::RegisterSite(s) if s.gln.as_deref() == Some(gln) => {
                    match self.site(&s.site)? {
                        Some(standing) if standing.id == event.id => &mut site,
                        _ => continue,
                    }
                }
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

    /// The org whose standing registration gives `party` as the id other systems know it by
    /// (the latest such, by event time, then event id).
    pub fn by_party(&self, party: &str) -> Result<Option<Arc<Event>>, StoreError> {
        let mut best: Option<Arc<Event>> = None;
        for stored in self.registrations(&id_prefix(PARTY, party))? {
            let event = stored.event;
            match self.org_registration(&event.org)? {
                Some(standing) if standing.id == event.id => {}
                _ => continue,
            }
            if best
                .as_ref()
                .is_none_or(|b| (event.time, &event.id) > (b.time, &b.id))
            {
                best = Some(event);
            }
        }
        Ok(best)
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
        let mut examined = 0usize;
        let mut last_examined: Option<String> = None;
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
            let mut previous: Option<String> = None;
            for (key, _) in &rows {
                let Some(id) = key_id(key) else {
                    continue;
                };
                if previous.as_ref() == Some(&id) || id.is_empty() {
                    continue;
                }
                previous = Some(id.clone());
                // A narrow filter over a large index: the page ends before this id, with a
                // cursor after the last one examined.
                if examined == SCAN_BUDGET {
                    return Ok(MasterPage {
                        items,
                        next_cursor: last_examined,
                    });
                }
                examined += 1;
                last_examined = Some(id.clone());
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
                let Some(seq) = trailing_seq(key) else {
                    continue;
                };
                // Keys are in sequence order: the rest came after this view.
                if seq > self.upto() {
                    return Ok(MasterPage {
                        items,
                        next_cursor: None,
                    });
                }
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
        let fetched;
        let owner_event: Option<&Event> = match &event.kind {
            EventKind::RegisterOrg(_) => Some(event),
            _ => {
                fetched = self.org_registration(&owner)?;
                fetched.as_deref()
            }
        };
        let owner_org = owner_event.and_then(|e| match &e.kind {
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
                _ => event.chain.or_else(|| owner_event.and_then(|e| e.chain)),
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

/// Of `registrations` in log order, the standing one: the latest by event time, then event id,
/// among those of the org that recorded the first, and of the org `deputy` names for that
/// owner, if any (the co-op a farm says it is a member of, for the farm's plots).
pub(crate) fn owned_standing<T>(
    registrations: Vec<T>,
    event: impl Fn(&T) -> &Arc<Event>,
    deputy: impl FnOnce(&str) -> Option<String>,
) -> Option<T> {
    let owner = registrations.first().map(|r| event(r).org.clone())?;
    let deputy = deputy(&owner).filter(|d| *d != owner);
    registrations
        .into_iter()
        .filter(|r| event(r).org == owner || Some(&event(r).org) == deputy.as_ref())
        .max_by(|a, b| {
            let (a, b) = (event(a), event(b));
            (a.time, &a.id).cmp(&(b.time, &b.id))
        })
}

#[cfg(test)]
mod tests {
    use lotline_proto::v1;
    use lotline_proto::v1::event::Kind;

    use super::*;
    use crate::store::Store;
    use crate::writer::{Submission, Writer, WriterConfig};
    use lotline_domain::Outcome;

    fn event(id: &str, time: &str, org: &str, chain: &str, kind: Kind) -> v1::Event {
        v1::Event {
            event_id: id.into(),
            event_time: time.into(),
            org: org.into(),
            chain: chain.into(),
            site: String::new(),
            extensions: Default::default(),
            kind: Some(kind),
        }
    }

    fn org(id: &str, org: &str, role: v1::OrgRole, gln: &str, member_of: &str) -> v1::Event {
        event(
            id,
            "2026-01-01T00:00:00Z",
            org,
            if role == v1::OrgRole::Processor {
                "coffee"
            } else {
                "cocoa"
            },
            Kind::RegisterOrg(v1::RegisterOrg {
                name: format!("{org} name"),
                role: role as i32,
                country: if role == v1::OrgRole::Processor {
                    "GH".into()
                } else {
                    "CI".into()
                },
                gln: gln.into(),
                member_of: member_of.into(),
                party: String::new(),
            }),
        )
    }

    fn site(id: &str, time: &str, org: &str, site: &str, gln: &str) -> v1::Event {
        event(
            id,
            time,
            org,
            "",
            Kind::RegisterSite(v1::RegisterSite {
                site: site.into(),
                name: site.into(),
                gln: gln.into(),
                country: "CI".into(),
            }),
        )
    }

    fn class(id: &str, time: &str, org: &str, class: &str, product: &str) -> v1::Event {
        event(
            id,
            time,
            org,
            "cocoa",
            Kind::RegisterClass(v1::RegisterClass {
                class: class.into(),
                product: product.into(),
                attributes: Default::default(),
            }),
        )
    }

    async fn store_with(events: &[v1::Event]) -> Store {
        let store = Store::in_memory();
        let writer = Writer::spawn(store.clone(), WriterConfig::default())
            .unwrap()
            .0;
        let subs: Vec<Submission> = events
            .iter()
            .map(|e| crate::test_input::submission(e, "test"))
            .collect();
        for (n, outcome) in writer.submit(subs).await.unwrap().iter().enumerate() {
            assert!(
                matches!(outcome, Outcome::Accepted { .. }),
                "event {n}: {outcome:?}"
            );
        }
        store
    }

    fn ids(page: &MasterPage) -> Vec<String> {
        page.items
            .iter()
            .map(|s| match &s.event.kind {
                EventKind::RegisterOrg(_) => s.event.org.clone(),
                EventKind::RegisterSite(r) => r.site.clone(),
                EventKind::RegisterClass(c) => c.class.clone(),
                _ => s.event.id.clone(),
            })
            .collect()
    }

    #[tokio::test]
    async fn master_data_stands_by_time_is_found_by_id_and_gln_and_lists_in_pages() {
        let store = store_with(&[
            org(
                "r-coop",
                "coop",
                v1::OrgRole::Cooperative,
                "6180123000010",
                "",
            ),
            org("r-farm-a", "farm-a", v1::OrgRole::Farm, "", "coop"),
            org("r-farm-b", "farm-b", v1::OrgRole::Farm, "", "coop"),
            org(
                "r-proc",
                "proc",
                v1::OrgRole::Processor,
                "6181234000019",
                "",
            ),
            // Registered later in the log, earlier in time: the later one by time stands.
            site(
                "s-2",
                "2026-02-01T00:00:00Z",
                "coop",
                "warehouse",
                "6180123000027",
            ),
            site("s-1", "2026-01-01T00:00:00Z", "proc", "warehouse", ""),
            site("s-3", "2026-01-01T00:00:00Z", "farm-a", "farm-a-shed", ""),
            class(
                "c-1",
                "2026-01-01T00:00:00Z",
                "coop",
                "class-beans",
                "cocoa_beans",
            ),
            class(
                "c-2",
                "2026-03-01T00:00:00Z",
                "coop",
                "class-beans",
                "dry_beans",
            ),
        ])
        .await;
        let view = store.snapshot().unwrap();
        assert_eq!(view.site("warehouse").unwrap().unwrap().org, "coop");
        assert!(view.site("nowhere").unwrap().is_none());
        let (_, beans) = view.class("class-beans").unwrap().unwrap();
        assert_eq!(beans.product.as_deref(), Some("dry_beans"));
        let by = view.by_gln("6180123000027").unwrap();
        assert_eq!(by.site.unwrap().org, "coop");
        assert!(by.org.is_none());
        assert_eq!(
            view.by_gln("6181234000019").unwrap().org.unwrap().org,
            "proc"
        );

        let all = MasterFilter::default();
        let first = view
            .list_master_data(MasterKind::Orgs, &all, None, 3)
            .unwrap();
        assert_eq!(ids(&first), ["coop", "farm-a", "farm-b"]);
        let rest = view
            .list_master_data(MasterKind::Orgs, &all, first.next_cursor.as_deref(), 3)
            .unwrap();
        assert_eq!(ids(&rest), ["proc"]);
        assert_eq!(rest.next_cursor, None);

        let of_coop = MasterFilter {
            org: Some("coop".into()),
            ..MasterFilter::default()
        };
        let orgs = view
            .list_master_data(MasterKind::Orgs, &of_coop, None, 10)
            .unwrap();
        assert_eq!(ids(&orgs), ["coop", "farm-a", "farm-b"]);
        let sites = view
            .list_master_data(MasterKind::Sites, &of_coop, None, 10)
            .unwrap();
        assert_eq!(ids(&sites), ["farm-a-shed", "warehouse"]);
        let farms = MasterFilter {
            role: Some(OrgRole::Farm),
            ..MasterFilter::default()
        };
        assert_eq!(
            ids(&view
                .list_master_data(MasterKind::Orgs, &farms, None, 10)
                .unwrap()),
            ["farm-a", "farm-b"]
        );
        let in_ghana = MasterFilter {
            country: Some("GH".into()),
            chain: Some(Chain::Coffee),
            ..MasterFilter::default()
        };
        assert_eq!(
            ids(&view
                .list_master_data(MasterKind::Orgs, &in_ghana, None, 10)
                .unwrap()),
            ["proc"]
        );
        assert_eq!(
            ids(&view
                .list_master_data(MasterKind::Classes, &all, None, 10)
                .unwrap()),
            ["class-beans"]
        );
        assert!(matches!(
            view.list_master_data(MasterKind::Certificates, &all, Some("x"), 10),
            Err(StoreError::BadCursor(_))
        ));
    }

    #[tokio::test]
    async fn a_listing_pages_across_chunks_of_the_index() {
        // More registrations than one range call reads, each id registered twice.
        let mut events = vec![org("r-coop", "coop", v1::OrgRole::Cooperative, "", "")];
        for n in 0..(CHUNK + 10) {
            for again in ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"] {
                events.push(site(
                    &format!("s-{n}-{again}"),
                    again,
                    "coop",
                    &format!("site-{n:05}"),
                    "",
                ));
            }
        }
        let store = store_with(&events).await;
        let view = store.snapshot().unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = view
                .list_master_data(
                    MasterKind::Sites,
                    &MasterFilter::default(),
                    cursor.as_deref(),
                    400,
                )
                .unwrap();
            seen.extend(ids(&page));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<String> = (0..(CHUNK + 10)).map(|n| format!("site-{n:05}")).collect();
        assert_eq!(seen, expected);
        assert!(
            view.list_master_data(MasterKind::Sites, &MasterFilter::default(), None, 5)
                .unwrap()
                .items
                .iter()
                .all(|s| s.event.time.to_rfc3339().starts_with("2026-02-01"))
        );
    }
}
