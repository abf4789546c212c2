//! Audit answers: mass balance, anomalies, the chain-of-custody report and the EUDR export. The
//! anomaly listing and group ledgers read the whole log (or the org's part of it), so they cost in
//! proportion to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lotline_domain::anomaly::{self, AnomalyStatus};
use lotline_domain::audit::balance::{BalanceQuery, Ledger};
use lotline_domain::audit::certs::Certificates;
use lotline_domain::audit::chain::{self, ChainFacts, ChainReport};
use lotline_domain::audit::eudr::{self, EudrFacts, EudrReport};
use lotline_domain::audit::maintained::{self, Maintained};
use lotline_domain::audit::scan::LotCache;
use lotline_domain::lineage::{Lineage, UpstreamLot};
use lotline_domain::{Anomaly, AnomalyKind, Review, Verdict};
use lotline_domain::{Event, EventKind, OrgRole, Outcome, RegisterOrg};
use lotline_store::{Snapshot, StoreError};

use super::handled;
use super::kept;
use super::provenance::shipments;
use crate::views::Level;
use crate::{Caller, Ready, Service, ServiceError};
use tracing::{debug, info, warn};

/// The anomaly listing and org ledgers maintained as the log grows ([`Maintained`]), and the
/// log size they are current to. `None` until a question first needs them.
pub(crate) type ListingCache = Mutex<Option<Current>>;

pub(crate) struct Current {
    upto: u64,
    state: Maintained,
    /// When the state was last written to the data dir (or tried to be: a failure waits as
    /// long before the next try).
    tried: Option<Instant>,
    /// The log sequence of the state last kept in the data dir.
    kept: Option<u64>,
}

/// The org a review is recorded as on a server without access control.
pub const OPEN_REVIEWER: &str = "auditor";

/// Which anomalies to list, and which page.
#[derive(Debug, Clone, Default)]
pub struct AnomalyQuery {
    pub org: Option<String>,
    pub lot: Option<String>,
    pub kind: Option<AnomalyKind>,
    pub status: Option<AnomalyStatus>,
    /// Only the anomaly with this id.
    pub id: Option<String>,
    /// Where the previous page ended; `None` for the first page.
    pub after: Option<AnomalyCursor>,
    /// At most this many (0: [`crate::args::DEFAULT_PAGE`]).
    pub limit: usize,
}

/// Where a page of anomalies ended: the last anomaly it listed, as the listing sorts it (kind,
/// lot, event, org, explanation, figures; anomalies equal in all of these share their id and so
/// their reviews, and are listed once). The next page starts right after it, wherever it now
/// stands: anomalies found or gone while an auditor pages through do not shift what follows,
/// so none that stays unchanged is listed twice or skipped. (An anomaly whose own figures
/// change between pages, a balance moved by a late event, sorts anew and may be listed again
/// or missed.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyCursor {
    /// Without its reviews.
    last: Anomaly,
}

/// The order the listing sorts anomalies in, without their reviews.
type SortKey<'a> = (
    AnomalyKind,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a BTreeMap<String, String>,
);

fn sort_key(a: &Anomaly) -> SortKey<'_> {
    (
        a.kind,
        a.lot.as_str(),
        a.event_id.as_deref(),
        a.org.as_deref(),
        a.explanation.as_str(),
        &a.figures,
    )
}

impl AnomalyCursor {
    /// The opaque text a client sends back for the next page: the anomaly as base64url JSON.
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(&self.last).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// A cursor [`AnomalyCursor::encode`] gave out; empty for none.
    pub fn decode(text: &str) -> Result<Option<AnomalyCursor>, ServiceError> {
        use base64::Engine as _;
        if text.is_empty() {
            return Ok(None);
        }
        let refused = || {
            ServiceError::invalid(
                "cursor",
                format!(
                    "is not a cursor of the anomaly listing this server gave out ({} bytes)",
                    text.len()
                ),
            )
        };
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| refused())?;
        let mut last: Anomaly = serde_json::from_slice(&json).map_err(|_| refused())?;
        last.reviews.clear();
        Ok(Some(AnomalyCursor { last }))
    }

    /// Where the page after this cursor starts in `listed` (sorted as the listing is).
    fn start(&self, listed: &[&Anomaly]) -> usize {
        let at = sort_key(&self.last);
        listed.partition_point(|a| sort_key(a) <= at)
    }

    /// The cursor of a page of `listed` that ends before `end` (`end > 0`).
    fn ending(listed: &[&Anomaly], end: usize) -> AnomalyCursor {
        let mut last = listed[end - 1].clone();
        last.reviews.clear();
        AnomalyCursor { last }
    }
}

/// The page of `listed` (sorted as the listing is) after `after`, of at most `limit` (0: the
/// default page), and the cursor of the next page when there is one.
fn page_of(
    listed: &[&Anomaly],
    after: Option<&AnomalyCursor>,
    limit: usize,
) -> (Vec<Anomaly>, Option<AnomalyCursor>) {
    let start = after.map_or(0, |c| c.start(listed));
    let limit = match limit {
        0 => crate::args::DEFAULT_PAGE,
        n => n,
    };
    let end = start.saturating_add(limit).min(listed.len());
    let page = listed[start..end].iter().map(|a| (*a).clone()).collect();
    let next = (end < listed.len() && end > start).then(|| AnomalyCursor::ending(listed, end));
    (page, next)
}

/// A page of anomalies, with the whole listing's size and counts by kind.
#[derive(Debug, Clone)]
pub struct AnomalyPage {
    pub anomalies: Vec<Anomaly>,
    /// Where the next page starts, when there is one.
    pub next: Option<AnomalyCursor>,
    pub total: usize,
    pub counts: BTreeMap<String, u32>,
    /// Matching anomalies by status.
    pub status_counts: BTreeMap<String, u32>,
    /// The log sequence the listing is current to: every event up to it, none after.
    pub current_to: u64,
}

/// An org's mass-balance ledgers and the log sequence they are current to.
#[derive(Debug, Clone)]
pub struct MassBalance {
    pub ledgers: Vec<Ledger>,
    pub current_to: u64,
}

/// An auditor's review of an anomaly, as asked.
#[derive(Debug, Clone)]
pub struct ReviewRequest {
    pub anomaly: String,
    pub verdict: Verdict,
    pub note: String,
    /// The Review event's id; `None`: one made from the anomaly and the time.
    pub event_id: Option<String>,
}

/// A lot's EUDR assessment, and its plots as a GeoJSON FeatureCollection in the caller's view.
#[derive(Debug, Clone)]
pub struct EudrAnswer {
    pub report: EudrReport,
    pub geojson: serde_json::Value,
    /// The view the caller got.
    pub view: Level,
}

/// A lot's chain-of-custody report, in the view the caller got.
#[derive(Debug, Clone)]
pub struct ChainReportAnswer {
    pub report: ChainReport,
    pub view: Level,
}

/// Brings the maintained state to the log as `store` sees it (restoring the kept state, or
/// building it, when there is none; building it when the rules changed or a new event changes
/// answers across the log), then answers `f` from it and a view of the log at the same position,
/// with the log sequence the state is current to. A state already past `store` (a question that
/// began before the last update) answers with a newer view.
pub(crate) fn maintained<T>(
    cache: &ListingCache,
    store: &Snapshot<'_>,
    ready: &Ready,
    f: impl FnOnce(&mut Maintained, &Snapshot<'_>) -> Result<T, StoreError>,
) -> Result<(T, u64), StoreError> {
    let rules = ready.rules.as_ref();
    let mut guard = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let newer;
    let store = match &*guard {
        Some(c) if c.upto > store.upto() => {
            newer = store.newest()?;
            &newer
        }
        _ => store,
    };
    // Only the first question after a start looks for a kept state: a rebuild later on is for
    // an event that changes answers across the log, which a kept state cannot have seen.
    let first = guard.is_none();
    let current = match guard.take() {
        Some(c) if c.state.built_under(rules) => forward(c, store)?,
        _ => None,
    };
    let restored = match (current, first) {
        (Some(c), _) => Some(c),
        (None, true) => restored(ready, store)?,
        (None, false) => None,
    };
    let mut current = match restored {
        Some(c) => c,
        None => {
            let started = Instant::now();
            let state = Maintained::build(store, rules)?;
            info!(upto = store.upto(), took = ?started.elapsed(), "anomaly listing built");
            let built = Current {
                upto: store.upto(),
                state,
                tried: None,
                kept: None,
            };
            keep(ready, store, built)
        }
    };
    let answer = f(&mut current.state, store);
    let upto = current.upto;
    *guard = Some(current);
    Ok((answer?, upto))
}

/// `current` brought forward to `store`'s position; `None` when a new event changes answers
/// across the log (the state is built again).
fn forward(mut current: Current, store: &Snapshot<'_>) -> Result<Option<Current>, StoreError> {
    if current.upto >= store.upto() {
        return Ok(Some(current));
    }
    let new = store.events_after(current.upto)?;
    let started = Instant::now();
    let Some(done) = current.state.apply(store, &new)? else {
        return Ok(None);
    };
    debug!(
        from = current.upto, to = store.upto(), events = done.events, lots = done.lots,
        orgs = done.orgs, took = ?started.elapsed(), "anomaly listing brought forward"
    );
    current.upto = store.upto();
    Ok(Some(current))
}

/// The state kept in the data dir, brought forward to `store`, when there is one for this log
/// and these rules. A kept state that cannot be read is reported and set aside.
fn restored(ready: &Ready, store: &Snapshot<'_>) -> Result<Option<Current>, StoreError> {
    let Some(path) = &ready.audit_state else {
        return Ok(None);
    };
    let started = Instant::now();
    let (upto, state) = match kept::load(path, store, &ready.rules) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => {
            warn!(cause = %e, "the kept anomaly listing was set aside; building it from the log");
            return Ok(None);
        }
    };
    let restored = Current {
        upto,
        state,
        tried: Some(Instant::now()),
        kept: Some(upto),
    };
    let Some(current) = forward(restored, store)? else {
        return Ok(None);
    };
    info!(kept_to = upto, upto = current.upto, took = ?started.elapsed(), "anomaly listing restored from the data dir");
    Ok(Some(current))
}

/// Writes `current` to the data dir (when the server keeps it there), and gives it back.
fn keep(ready: &Ready, store: &Snapshot<'_>, mut current: Current) -> Current {
    if let Some(path) = &ready.audit_state {
        let started = Instant::now();
        current.tried = Some(started);
        match kept::save(path, store, current.upto, &current.state) {
            Ok(()) => {
                debug!(upto = current.upto, took = ?started.elapsed(), "anomaly listing kept");
                current.kept = Some(current.upto);
            }
            Err(e) => warn!(cause = %e, "the anomaly listing could not be kept in the data dir"),
        }
    }
    current
}

/// Keeps the maintained state in the data dir when it changed since it was last kept and
/// `due` says so (given how long ago it was last tried; `None`: never). At stop (`waiting`
/// false) a state another thread is using, a build say, is not waited for: the file is only a
/// head start for the next start.
pub(crate) fn keep_if(
    cache: &ListingCache,
    ready: &Ready,
    waiting: bool,
    due: impl FnOnce(Option<Duration>) -> bool,
) -> Result<(), StoreError> {
    let mut guard = match cache.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) if !waiting => return Ok(()),
        Err(std::sync::TryLockError::WouldBlock) => cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    };
    let Some(current) = guard.take() else {
        return Ok(());
    };
    if current.kept == Some(current.upto) || !due(current.tried.map(|at| at.elapsed())) {
        *guard = Some(current);
        return Ok(());
    }
    let store = ready.store.snapshot()?;
    *guard = Some(keep(ready, &store, current));
    Ok(())
}

/// Whether the state is maintained (a question has needed it since the server started).
pub(crate) fn is_active(cache: &ListingCache) -> bool {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .is_some()
}

/// Every anomaly in the log as `store` sees it (or later), from the maintained state.
fn listing(
    cache: &ListingCache,
    store: &Snapshot<'_>,
    ready: &Ready,
) -> Result<(Arc<Vec<Anomaly>>, u64), StoreError> {
    maintained(cache, store, ready, |m, _| Ok(m.listing()))
}

/// Gives each anomaly its auditors' reviews, from the review index (answers about one lot, which
/// do not read the whole log as the listing does). The public view shows none: a review's note
/// is between the auditor and the org.
pub(crate) fn with_reviews(
    store: &Snapshot<'_>,
    level: Level,
    anomalies: &mut [Anomaly],
) -> Result<(), StoreError> {
    if level == Level::Public {
        return Ok(());
    }
    for a in anomalies {
        a.reviews = store
            .reviews(&a.id())?
            .iter()
            .filter_map(|e| anomaly::review_of(e).map(|(_, r)| r))
            .collect();
    }
    Ok(())
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

/// Every certificate, and the registrations and co-ops' membership confirmations of `orgs`,
/// which certificate answers need.
pub(crate) fn certificates<'a>(
    store: &Snapshot<'_>,
    orgs: impl IntoIterator<Item = &'a str>,
) -> Result<Certificates, StoreError> {
    let mut certs = Certificates::default();
    let all = store.certificates()?;
    for event in &all {
        certs.add(event);
    }
    // The issuers' registrations too: only a registered certifier certifies another org.
    let mut named: BTreeSet<String> = all.iter().map(|e| e.org.clone()).collect();
    named.extend(orgs.into_iter().map(str::to_string));
    for org in &named {
        for event in store.org_registrations(org)? {
            certs.add(&event);
        }
        // A farm's membership counts only where its co-op confirms it.
        for event in store.member_confirmations(org)? {
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

/// How long the follower lets new events gather before bringing the listing forward.
const FOLLOW_PAUSE: Duration = Duration::from_millis(500);

/// How often, at most, the follower keeps the state in the data dir as it changes (it is kept
/// when built and when the server stops too). Restoring it after a crash brings it forward by
/// what was written since.
const KEEP_EVERY: Duration = Duration::from_secs(600);

impl Service {
    /// Follows the log, bringing the maintained anomaly listing and org ledgers forward after
    /// new events (at most once per [`FOLLOW_PAUSE`]), so that questions find them current and
    /// the work is not the writer's. Idle until a question first needs the listing. Keeps the
    /// state in the data dir every [`KEEP_EVERY`] while it changes, and when `stop` completes.
    /// Returns then, after the update under way (so the store is not held past it).
    pub async fn follow_listing(self, stop: impl std::future::Future<Output = ()>) {
        self.following(stop).await;
        let (Ok(ready), cache) = (self.ready().cloned(), Arc::clone(&self.listing)) else {
            return;
        };
        let kept =
            tokio::task::spawn_blocking(move || keep_if(&cache, &ready, false, |_| true)).await;
        if let Ok(Err(e)) = kept {
            warn!(cause = %e, "the anomaly listing could not be kept at stop");
        }
    }

    async fn following(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut seen = 0;
        loop {
            let grew = tokio::select! {
                _ = &mut stop => return,
                grew = self.log_beyond(seen) => grew,
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(FOLLOW_PAUSE) => {}
            }
            // Not ready yet (or the store closed): look again after the pause.
            let Ok(end) = grew else { continue };
            seen = end;
            if !is_active(&self.listing) {
                continue;
            }
            let (Ok(ready), cache) = (self.ready().cloned(), Arc::clone(&self.listing)) else {
                continue;
            };
            let kept = tokio::task::spawn_blocking(move || {
                let store = ready.store.snapshot()?;
                maintained(&cache, &store, &ready, |_, _| Ok(()))?;
                keep_if(&cache, &ready, true, |since| {
                    since.is_none_or(|d| d >= KEEP_EVERY)
                })
            })
            .await;
            if let Ok(Err(e)) = kept {
                warn!(cause = %e, "the anomaly listing could not be brought forward");
            }
        }
    }

    /// An org's mass-balance ledgers.
    pub async fn mass_balance(
        &self,
        caller: &Caller,
        query: BalanceQuery,
    ) -> Result<MassBalance, ServiceError> {
        caller
            .books_of(&query.org, "mass-balance ledgers")
            .map_err(|e| self.refuse(&caller.describe(), e))?;
        self.log_read(caller, "mass balance", &query.org);
        if let (Some(f), Some(t)) = (query.from, query.to)
            && f >= t
        {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        let cache = Arc::clone(&self.listing);
        self.read(caller.reading(), move |store, ready| {
            // The whole books of an org, once the listing is maintained, are kept with it.
            let whole = maintained::whole_books(&query.org);
            if (query.sites.is_empty(), &query.product, query.from, query.to)
                == (true, &None, None, None)
                && query.claim.trim().eq_ignore_ascii_case(&whole.claim)
                && is_active(&cache)
                && let (Some(kept), current_to) =
                    maintained(&cache, &ready.store.snapshot()?, ready, |m, store| {
                        m.ledgers(store, &query.org)
                    })?
            {
                return Ok(MassBalance {
                    ledgers: kept.as_ref().clone(),
                    current_to,
                });
            }
            let events = store.org_events(&query.org)?;
            if events.is_empty() {
                return Err(ServiceError::NotFound(format!(
                    "org {:?}: no event recorded by it",
                    query.org
                )));
            }
            Ok(MassBalance {
                ledgers: LotCache::new(store).ledgers(&query, &events)?,
                current_to: store.upto(),
            })
        })
        .await
    }

    /// The anomalies in the log, filtered and paged.
    pub async fn anomalies(
        &self,
        caller: &Caller,
        mut query: AnomalyQuery,
    ) -> Result<AnomalyPage, ServiceError> {
        match (&query.org, caller.identity()) {
            (Some(org), _) => caller
                .books_of(org, "anomalies")
                .map_err(|e| self.refuse(&caller.describe(), e))?,
            // A party that is not an auditor sees its own org's anomalies.
            (None, Some(id)) if !id.has(crate::Role::Auditor) => query.org = Some(id.org.clone()),
            _ => caller.party_only("anomalies")?,
        }
        self.log_read(caller, "anomalies", query.org.as_deref().unwrap_or("all"));
        let caller = caller.clone();
        let cache = Arc::clone(&self.listing);
        self.read(caller.reading(), move |_, ready| {
            // Maintenance is not the question's: it reads without the caller's deadline.
            let (all, current_to) = listing(&cache, &ready.store.snapshot()?, ready)?;
            let matching: Vec<&Anomaly> = all
                .iter()
                .filter(|a| query.org.as_ref().is_none_or(|o| a.org.as_ref() == Some(o)))
                .filter(|a| a.org.as_deref().is_none_or(|o| caller.reads_books_of(o)))
                .filter(|a| query.kind.is_none_or(|k| a.kind == k))
                .filter(|a| query.lot.as_ref().is_none_or(|l| a.lot == *l))
                .filter(|a| query.status.is_none_or(|s| a.status() == s))
                .filter(|a| query.id.as_ref().is_none_or(|id| a.id() == *id))
                .collect();
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            let mut status_counts: BTreeMap<String, u32> = BTreeMap::new();
            for a in &matching {
                *counts.entry(a.kind.as_str().to_string()).or_default() += 1;
                *status_counts
                    .entry(a.status().as_str().to_string())
                    .or_default() += 1;
            }
            let total = matching.len();
            let (anomalies, next) = page_of(&matching, query.after.as_ref(), query.limit);
            Ok(AnomalyPage {
                anomalies,
                next,
                total,
                counts,
                status_counts,
                current_to,
            })
        })
        .await
    }

    /// An auditor acknowledges or disputes an anomaly it sees: a [`Review`] event recorded as the
    /// auditor's org (the access rules refuse it from anyone else). Answers the anomaly with its
    /// reviews once the review is in the log.
    pub async fn review_anomaly(
        &self,
        caller: &Caller,
        request: ReviewRequest,
    ) -> Result<(Anomaly, Outcome), ServiceError> {
        if !anomaly::is_anomaly_id(&request.anomaly) {
            return Err(ServiceError::invalid(
                "anomaly",
                "is not an anomaly id (as the listing prints it: a kind, a dash, 16 hex digits)",
            ));
        }
        let org = match caller.identity() {
            Some(id) if !id.has(crate::Role::Auditor) => {
                return Err(self.refuse(
                    &caller.describe(),
                    ServiceError::PermissionDenied(format!(
                        "only an auditor reviews anomalies; {} is not one",
                        id.org
                    )),
                ));
            }
            Some(id) => id.org.clone(),
            // A server without access control: the review is the operator's.
            None => {
                caller.party_only("reviews")?;
                OPEN_REVIEWER.to_string()
            }
        };
        let query = AnomalyQuery {
            id: Some(request.anomaly.clone()),
            limit: 1,
            ..AnomalyQuery::default()
        };
        let Some(mut reviewed) = self.anomalies(caller, query).await?.anomalies.pop() else {
            return Err(ServiceError::NotFound(format!(
                "anomaly {:?}: not in the listing (or not one this credential sees)",
                request.anomaly
            )));
        };
        let now = chrono::Utc::now().fixed_offset();
        let event = Event {
            id: request.event_id.clone().unwrap_or_else(|| {
                format!(
                    "review:{}:{}",
                    request.anomaly,
                    now.timestamp_nanos_opt().unwrap_or_default()
                )
            }),
            time: now,
            org,
            chain: None,
            site: None,
            extensions: BTreeMap::new(),
            kind: EventKind::Review(Review {
                anomaly: request.anomaly.clone(),
                verdict: request.verdict,
                note: request.note,
            }),
        };
        let submission =
            crate::intake::from_wire(&lotline_proto::convert::event_to_wire(&event), "review");
        let outcome = self.record_one(caller, submission).await?;
        // The answer is the anomaly as listed with the new review last, not a second listing
        // (which would read the whole log again, since it grew). A retry's review (a duplicate)
        // is listed already.
        if let Some((_, review)) = anomaly::review_of(&event)
            && !reviewed
                .reviews
                .iter()
                .any(|r| r.event_id == review.event_id)
        {
            reviewed.reviews.push(review);
        }
        Ok((reviewed, outcome))
    }

    /// A lot's chain of custody by stage, with certificates valid on each day.
    pub async fn chain_report(
        &self,
        caller: &Caller,
        lot: String,
    ) -> Result<ChainReportAnswer, ServiceError> {
        self.log_read(caller, "chain report", &lot);
        let caller = caller.clone();
        self.read_lot(caller.reading(), lot, move |store, lot| {
            let view = caller.view(handled(store, caller.org(), lot)?);
            let mut lineage = Lineage::new(store);
            let upstream = lineage.upstream(lot)?;
            let mentions = lineage.mentions(lot)?;
            let movements: Vec<_> = mentions
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Ship(_) | EventKind::Receive(_)))
                .cloned()
                .collect();
            let mut ids = upstream_orgs(&upstream);
            for e in &movements {
                ids.insert(e.org.as_str());
                ids.extend(e.counterparties());
            }
            let certs = certificates(store, ids.iter().copied())?;
            let orgs = orgs(store, ids)?;
            let chain_hint = mentions.iter().find_map(|e| e.chain.map(|c| c.as_str()));
            let mut report = chain::report(&ChainFacts {
                lot,
                upstream: &upstream,
                orgs: &orgs,
                certs: &certs,
                movements: &movements,
                chain_hint,
            });
            let farms: BTreeSet<String> = orgs
                .into_iter()
                .filter(|(_, o)| o.role == OrgRole::Farm)
                .map(|(id, _)| id)
                .collect();
            view.chain_report(&mut report, &farms);
            Ok(ChainReportAnswer {
                report,
                view: view.level,
            })
        })
        .await
    }

    /// A lot's EUDR assessment and its plots.
    pub async fn eudr(&self, caller: &Caller, lot: String) -> Result<EudrAnswer, ServiceError> {
        self.log_read(caller, "eudr", &lot);
        let caller = caller.clone();
        self.read_lot(caller.reading(), lot, move |store, lot| {
            let view = caller.view(handled(store, caller.org(), lot)?);
            let upstream = Lineage::new(store).upstream(lot)?;
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
                if let Some(found) = store.plot(plot)? {
                    plots.insert(plot.to_string(), found);
                }
            }
            let owners: BTreeSet<&str> = plots
                .values()
                .map(|(e, _)| e.org.as_str())
                .chain(harvests.iter().map(|(e, _)| e.org.as_str()))
                .collect();
            let orgs = orgs(store, owners)?;
            let shipments = shipments(store, &upstream)?;
            let mut report = eudr::assess(&EudrFacts {
                lot,
                upstream: &upstream,
                plots: &plots,
                orgs: &orgs,
                shipments: &shipments,
            });
            // The verdict is the log's; what the caller sees of each plot is the view's.
            for plot in &mut report.plots {
                if let Some(g) = plot.geometry.take() {
                    let owner = plot.owner.clone().unwrap_or_default();
                    plot.geometry = Some(view.plot_geometry(&owner, g)).filter(|g| !g.is_empty());
                }
                if view.hides_personal() {
                    plot.producer_name = None;
                }
            }
            let geojson = eudr::feature_collection(&report, view.hides_personal());
            Ok(EudrAnswer {
                report,
                geojson,
                view: view.level,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anomaly(kind: AnomalyKind, lot: &str, event: &str, org: &str) -> Anomaly {
        Anomaly::new(kind, lot, Some(event), format!("{lot} at {event}")).org(org)
    }

    /// Pages of `limit` through `listings`, the listing as it stands when each page is asked
    /// (the last one standing for every later page).
    fn paged(listings: &[Vec<Anomaly>], limit: usize) -> Vec<Anomaly> {
        let mut after: Option<AnomalyCursor> = None;
        let mut seen = Vec::new();
        for page in 0.. {
            assert!(page < 100, "paging does not end");
            let mut listing = listings[page.min(listings.len() - 1)].clone();
            listing.sort();
            let listed: Vec<&Anomaly> = listing.iter().collect();
            let (page, next) = page_of(&listed, after.as_ref(), limit);
            assert!(page.len() <= limit);
            seen.extend(page);
            let Some(next) = next else {
                break;
            };
            // Through its text, as a client sends it back.
            after = AnomalyCursor::decode(&next.encode()).expect("a cursor given out");
        }
        seen
    }

    #[test]
    fn pages_list_each_anomaly_that_stays_once_while_the_listing_changes() {
        use AnomalyKind::{NonMemberDelivery as N, OverConsumption as O, UnknownOrigin as U};
        let base = vec![
            anomaly(O, "lot-a", "e1", "coop"),
            anomaly(O, "lot-b", "e2", "coop"),
            // Ties on kind, lot and event (a blended sale's non-member lots).
            anomaly(N, "lot-c", "e3", "coop-b"),
            anomaly(N, "lot-c", "e3", "coop-d"),
            anomaly(N, "lot-c", "e3", "coop-f"),
            anomaly(O, "lot-d", "e4", "coop"),
            anomaly(U, "lot-a", "e5", "coop"),
            anomaly(U, "lot-e", "e6", "coop"),
        ];
        let mut sorted = base.clone();
        sorted.sort();
        // What may change between pages: an anomaly gone, one found before all others, ties
        // gone and found within the tied group.
        type Change = dyn Fn(&mut Vec<Anomaly>);
        let changes: [&Change; 4] = [
            &|l| l.retain(|a| a.lot != "lot-a" || a.kind != O),
            &|l| l.push(anomaly(O, "lot-0", "e0", "coop")),
            &|l| l.retain(|a| a.org.as_deref() != Some("coop-b")),
            &|l| {
                l.push(anomaly(N, "lot-c", "e3", "coop-a"));
                l.push(anomaly(N, "lot-c", "e3", "coop-e"));
            },
        ];
        for limit in 1..=base.len() {
            // Unchanged: the pages are the listing.
            assert_eq!(
                paged(std::slice::from_ref(&base), limit),
                sorted,
                "limit {limit}"
            );
            // Each change after another page: no anomaly twice, every one that stays once,
            // in the listing's order.
            let mut listings = vec![base.clone()];
            for change in changes {
                let mut next = listings.last().expect("a listing").clone();
                change(&mut next);
                listings.push(next);
            }
            let listed = paged(&listings, limit);
            let mut ascending = listed.clone();
            ascending.sort();
            ascending.dedup();
            assert_eq!(listed, ascending, "limit {limit}: in order, none twice");
            let last = listings.last().expect("a listing");
            for stays in base.iter().filter(|a| last.contains(a)) {
                assert!(listed.contains(stays), "limit {limit}: {stays:?} skipped");
            }
        }
    }

    #[test]
    fn a_cursor_is_read_back_and_anything_else_is_refused() {
        let listing = [anomaly(
            AnomalyKind::UnknownOrigin,
            "https://id.gs1.org/01/09521234543213/10/A\"B",
            "ev/1",
            "coop",
        )];
        let listed: Vec<&Anomaly> = listing.iter().collect();
        let cursor = AnomalyCursor::ending(&listed, 1);
        let text = cursor.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        assert_eq!(AnomalyCursor::decode(&text).unwrap(), Some(cursor));
        // A limit of 0 is the default page, not an empty last one.
        let many: Vec<Anomaly> = (0..crate::args::DEFAULT_PAGE + 1)
            .map(|n| {
                anomaly(
                    AnomalyKind::UnknownOrigin,
                    &format!("lot-{n:04}"),
                    "e",
                    "coop",
                )
            })
            .collect();
        let listed_many: Vec<&Anomaly> = many.iter().collect();
        let (page, next) = page_of(&listed_many, None, 0);
        assert_eq!(page.len(), crate::args::DEFAULT_PAGE);
        assert!(next.is_some());
        assert_eq!(AnomalyCursor::decode("").unwrap(), None);
        for bad in ["12", "not a cursor", "W10", &text[..text.len() - 3]] {
            let err = AnomalyCursor::decode(bad).expect_err(bad);
            assert!(err.to_string().contains("cursor"), "{bad}: {err}");
        }
    }
}
