//! The anomaly listing and the org ledgers, maintained as the log grows (issue 18): built once
//! from the whole log, then brought forward by the events recorded since, recomputing only what
//! they can change. Its answer is the full scan's ([`scan::anomalies`]): the tests hold the two
//! together on histories fed in every order.
//!
//! What a new event can change, and what is recomputed for it:
//! - the lots it names, and every lot downstream of them (facts, custody and claims flow down
//!   through transformations, so a late upstream event re-checks all it joins): their lineage
//!   anomalies, found again by walking them;
//! - every event naming one of those lots: its rule, certificate, payment and membership checks;
//! - every org that recorded one of those events: its mass-balance ledgers and their violations;
//! - a plot it registers: the plot's EUDR grade, and the harvests that named it unregistered.
//!
//! A certificate, an org's registration, a membership confirmation or a correction changes
//! answers across the whole log (whose certificate holds, who is a member, which events count):
//! the state is built again ([`Maintained::apply`] says so). So is it when the rules change.
//!
//! A state is kept across restarts as a [`Saved`] ([`Maintained::save`], [`Maintained::restore`]):
//! everything but the org ledgers, which are drawn up again for an org when asked.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind, attach_reviews};
use crate::audit::balance::{self, BalanceQuery, Ledger};
use crate::audit::certs::{Certificates, certifiable_claims};
use crate::audit::rules::Rules;
use crate::audit::scan::{
    self, BALANCE_CLAIM, LotCache, NonMember, certified_lots, co_op_named, event_anomalies,
    non_member_anomaly, packed, plot_anomaly,
};
use crate::containers::aggregation;
use crate::event::{Event, EventKind, RegisterPlot};
use crate::lineage::{Lineage, LineageSource};

/// What the maintained listing reads besides lineage.
pub trait AuditSource: LineageSource {
    /// Every uncorrected event recorded by `org`, in log order.
    fn org_events(&self, org: &str) -> Result<Vec<Arc<Event>>, Self::Error>;
    /// The standing registration of `plot`.
    fn plot(&self, plot: &str) -> Result<Option<(Arc<Event>, RegisterPlot)>, Self::Error>;
    /// The uncorrected event with id `id`.
    fn event(&self, id: &str) -> Result<Option<Arc<Event>>, Self::Error>;
    /// The uncorrected events among the next `limit` positions of the log after position
    /// `after` (0: from its start), in log order, and the last position read: `None` when
    /// no position was left.
    fn log_after(&self, after: u64, limit: usize) -> Result<LogChunk, Self::Error>;
    /// Every plot that may have a standing registration (each is read with [`Self::plot`]).
    fn plot_ids(&self) -> Result<Vec<String>, Self::Error>;
}

/// What [`AuditSource::log_after`] read: the uncorrected events among the positions it read,
/// and the last of those positions (`None` when no position was left).
pub struct LogChunk {
    pub events: Vec<Arc<Event>>,
    pub last: Option<u64>,
}

/// Events a build reads at a time: it holds one chunk of the log, never the whole of it.
pub const BUILD_CHUNK: usize = 20_000;

/// Calls `f` with each chunk of `source`'s log in turn, `chunk` positions at a time.
fn each_chunk<S: AuditSource>(
    source: &S,
    chunk: usize,
    mut f: impl FnMut(Vec<Arc<Event>>) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let mut after = 0;
    while let LogChunk {
        events,
        last: Some(last),
    } = source.log_after(after, chunk)?
    {
        f(events)?;
        after = last;
    }
    Ok(())
}

/// Whether `lot` is on one cycle with any of `named` (each is upstream of the other).
///
/// A walk names a cycle where it first closes it, on one of its lots. A build's chunks walk
/// afresh, so a walk from a later chunk that reaches a cycle an earlier chunk named would name
/// it again, on whichever of its lots that walk closes it at; a full scan, whose walks share
/// what they computed, names it once. (Each lot's upstream is walked afresh: a walk leaves out
/// the edge that closes a cycle, so one walk does not see every lot of it from every lot.)
fn same_cycle_as_any<S: LineageSource>(
    source: &S,
    lot: &str,
    named: &[String],
) -> Result<bool, S::Error> {
    if named.is_empty() {
        return Ok(false);
    }
    let above: HashSet<String> = Lineage::new(source)
        .upstream(lot)?
        .into_iter()
        .map(|u| u.lot)
        .collect();
    for other in named.iter().filter(|o| above.contains(*o)) {
        if Lineage::new(source)
            .upstream(other)?
            .iter()
            .any(|u| u.lot == lot)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `event` changes answers beyond the lots it names, so that the maintained state is
/// built again: a certificate, an org's registration, a membership confirmation, a correction.
pub fn rebuilds(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::Certify(_)
            | EventKind::RegisterOrg(_)
            | EventKind::ConfirmMember(_)
            | EventKind::Correct(_)
    )
}

/// The ledger query a maintained org's books answer: every site, product and date, the claim
/// the listing counts.
pub fn whole_books(org: &str) -> BalanceQuery {
    BalanceQuery {
        org: org.to_string(),
        sites: Vec::new(),
        product: None,
        from: None,
        to: None,
        claim: BALANCE_CLAIM.to_string(),
    }
}

/// How much one update recomputed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    pub events: usize,
    pub lots: usize,
    pub orgs: usize,
}

/// One org's mass-balance ledgers and, for an org that ships, their violations. A state just
/// built or restored has the violations only; the ledgers are drawn up again when asked.
struct Books {
    ledgers: Option<Arc<Vec<Ledger>>>,
    violations: Vec<Anomaly>,
}

/// A maintained state as kept across a restart: all of it but the org ledgers, and the reviews
/// by event id (the events are read again). Its caller records which log, and how far into it,
/// the state is current to: a state answers only for the log it was built from.
#[derive(Serialize, Deserialize)]
pub struct Saved {
    rules: Rules,
    certs: Certificates,
    co_ops: BTreeSet<String>,
    shipping: BTreeSet<String>,
    registered: BTreeSet<String>,
    reviews: Vec<String>,
    by_lot: BTreeMap<String, Vec<Anomaly>>,
    by_event: BTreeMap<String, Vec<Anomaly>>,
    by_plot: BTreeMap<String, Anomaly>,
    /// The violations of every org that has any.
    violations: BTreeMap<String, Vec<Anomaly>>,
}

impl Saved {
    /// Whether the state was saved under `rules`, as written: figures show the rules' decimals
    /// as given, so `0.80` and `0.8` are other rules here.
    pub fn under(&self, rules: &Rules) -> bool {
        serde_json::to_value(&self.rules).ok() == serde_json::to_value(rules).ok()
    }
}

/// The anomaly listing and org ledgers of a log, kept by part so that new events recompute
/// only the parts they touch.
pub struct Maintained {
    rules: Rules,
    certs: Certificates,
    co_ops: BTreeSet<String>,
    shipping: BTreeSet<String>,
    registered: HashSet<String>,
    reviews: Vec<Arc<Event>>,
    /// Lineage anomalies (over-consumption, unknown origin, custody, claims, cycles) by lot.
    by_lot: HashMap<String, Vec<Anomaly>>,
    /// Each event's rule, certificate, payment, plot and membership anomalies, by event id.
    by_event: HashMap<String, Vec<Anomaly>>,
    /// Plots whose standing registration is not EUDR-grade.
    by_plot: HashMap<String, Anomaly>,
    by_org: HashMap<String, Books>,
    /// The assembled listing, until the next change.
    listing: Option<Arc<Vec<Anomaly>>>,
}

impl Maintained {
    /// The state of the whole log `source` holds, under `rules`.
    ///
    /// It reads the log a chunk at a time ([`BUILD_CHUNK`]), three times: the log-wide facts
    /// (certificates, co-ops, shipping orgs, reviews, the orgs, each harvest lot's harvest);
    /// then which co-op took which harvest lot first; then each chunk's lots and events, checked
    /// against those facts. The books of every org that ships are then drawn up from its own
    /// events, for their violations; the ledgers themselves are drawn up again when asked, as
    /// after a restore. It holds the facts and one chunk of the log, or one shipping org's
    /// events, at a time (and the name of every lot, to check each once).
    ///
    /// A walk's order decides two things (as in [`Self::apply`], whose walks start from what
    /// changed): which lot of a cycle is named upstream of itself, and the unit an input of
    /// unknown origin consumed in two units is counted in. A build in chunks may name them
    /// otherwise than the full scan, which walks the whole log's lots in order; it names each
    /// cycle once, as the scan does, however many chunks' walks reach it.
    pub fn build<S: AuditSource>(source: &S, rules: &Rules) -> Result<Self, S::Error> {
        Self::build_in_chunks(source, rules, BUILD_CHUNK)
    }

    pub(crate) fn build_in_chunks<S: AuditSource>(
        source: &S,
        rules: &Rules,
        chunk: usize,
    ) -> Result<Self, S::Error> {
        let mut state = Maintained {
            rules: rules.clone(),
            certs: Certificates::default(),
            co_ops: BTreeSet::new(),
            shipping: BTreeSet::new(),
            registered: HashSet::new(),
            reviews: Vec::new(),
            by_lot: HashMap::new(),
            by_event: HashMap::new(),
            by_plot: HashMap::new(),
            by_org: HashMap::new(),
            listing: None,
        };
        let mut harvests: HashMap<String, Harvested> = HashMap::new();
        each_chunk(source, chunk, |events| {
            for e in &events {
                state.note(e);
                if let EventKind::Harvest(h) = &e.kind {
                    // The last harvest recorded of a lot, as the full scan keeps it.
                    harvests.insert(
                        h.lot.clone(),
                        Harvested {
                            farm: e.org.clone(),
                            on: e.time.date_naive(),
                        },
                    );
                }
            }
            Ok(())
        })?;
        for plot in source.plot_ids()? {
            if let Some((event, p)) = source.plot(&plot)? {
                if let Some(a) = plot_anomaly(&plot, &event, &p) {
                    state.by_plot.insert(plot.clone(), a);
                }
                state.registered.insert(plot);
            }
        }
        let mut members =
            Membership::of_log(source, chunk, &harvests, &state.certs, &state.co_ops)?;
        drop(harvests);
        // Each lot is checked once, in the first chunk that names it. What any walk finds is
        // kept whatever lot it is on: a walk from a later chunk can find, on a lot checked
        // before, what only its consumer shows (an input in a unit it cannot be counted in).
        let mut done: HashSet<String> = HashSet::new();
        let mut walked: HashMap<String, BTreeSet<Anomaly>> = HashMap::new();
        // The lots on which a cycle has been named, in the order they were.
        let mut cycles: Vec<String> = Vec::new();
        each_chunk(source, chunk, |events| {
            let mut cache = LotCache::new(source);
            let lots: BTreeSet<&str> = events
                .iter()
                .flat_map(|e| e.lots().into_iter().map(|(l, _)| l))
                .filter(|l| !done.contains(*l))
                .collect();
            let named = cycles.len();
            let mut found = Vec::new();
            for lot in &lots {
                found.extend(cache.lineage().lot_checks(lot)?);
            }
            found.extend(cache.lineage().anomalies());
            for a in found {
                if a.kind == AnomalyKind::LineageCycle {
                    if same_cycle_as_any(source, &a.lot, &cycles[..named])? {
                        continue;
                    }
                    cycles.push(a.lot.clone());
                }
                walked.entry(a.lot.clone()).or_default().insert(a);
            }
            done.extend(lots.into_iter().map(str::to_string));
            state.event_checks(source, &mut cache, &events, &mut members)
        })?;
        drop(done);
        state.settle_lots(source, walked)?;
        let mut cache = LotCache::new(source);
        let mut held = 0;
        for org in state.shipping.clone() {
            let mine = source.org_events(&org)?;
            held += mine.len();
            let ledgers = cache.ledgers(&whole_books(&org), &mine)?;
            let violations = balance::violations(&ledgers, BALANCE_CLAIM);
            state.by_org.insert(
                org,
                Books {
                    ledgers: None,
                    violations,
                },
            );
            if held >= chunk {
                cache = LotCache::new(source);
                held = 0;
            }
        }
        Ok(state)
    }

    /// Whether the state was built under `rules` (another set of rules builds it again).
    pub fn built_under(&self, rules: &Rules) -> bool {
        self.rules == *rules
    }

    /// Brings the state forward by `new`, the uncorrected events recorded since (in log order),
    /// as `source` (which holds them) sees the log. `None`: one of them changes answers across
    /// the log ([`rebuilds`]); build the state again.
    pub fn apply<S: AuditSource>(
        &mut self,
        source: &S,
        new: &[Arc<Event>],
    ) -> Result<Option<Recomputed>, S::Error> {
        if new.iter().any(|e| rebuilds(e)) {
            return Ok(None);
        }
        if new.is_empty() {
            return Ok(Some(Recomputed::default()));
        }
        self.listing = None;
        for event in new {
            self.note(event);
            if let EventKind::RegisterPlot(p) = &event.kind {
                self.plot_registered(source, &p.plot)?;
            }
        }
        // The lots the new events name, everything downstream of them (what they went into,
        // what a container of them holds, which its moves carry), and every event on those.
        let mut lots: BTreeSet<String> = BTreeSet::new();
        let mut next: Vec<String> = new
            .iter()
            .flat_map(|e| e.lots().into_iter().map(|(l, _)| l.to_string()))
            .collect();
        let mut seen: HashSet<String> = new.iter().map(|e| e.id.clone()).collect();
        let mut events: Vec<Arc<Event>> = new.to_vec();
        while let Some(lot) = next.pop() {
            if !lots.insert(lot.clone()) {
                continue;
            }
            for e in source.mentions(&lot)? {
                match &e.kind {
                    EventKind::Transform(t) if t.inputs.iter().any(|i| i.lot == lot) => {
                        next.extend(t.outputs.iter().map(|o| o.lot.clone()));
                    }
                    _ => {
                        // A container's moves carry what it holds, and its holder's books
                        // count the items: the items follow the container, and the
                        // container the items.
                        if let Some((parent, _, children)) = aggregation(&e) {
                            if parent == lot {
                                next.extend(children.into_iter().map(str::to_string));
                            } else if children.contains(&lot.as_str()) {
                                next.push(parent.to_string());
                            }
                        }
                    }
                }
                if seen.insert(e.id.clone()) {
                    events.push(e);
                }
            }
        }
        self.recompute(source, lots, events)
    }

    /// Every anomaly, sorted, with its reviews.
    pub fn listing(&mut self) -> Arc<Vec<Anomaly>> {
        if let Some(listing) = &self.listing {
            return Arc::clone(listing);
        }
        let mut all: BTreeSet<&Anomaly> = BTreeSet::new();
        all.extend(self.by_lot.values().flatten());
        all.extend(self.by_event.values().flatten());
        all.extend(self.by_plot.values());
        all.extend(self.by_org.values().flat_map(|b| b.violations.iter()));
        let mut found: Vec<Anomaly> = all.into_iter().cloned().collect();
        attach_reviews(&mut found, &self.reviews);
        let listing = Arc::new(found);
        self.listing = Some(Arc::clone(&listing));
        listing
    }

    /// `org`'s ledgers over its whole books ([`whole_books`]), when it recorded any event.
    /// `source` must see the log as the state does: books not kept (after a build or a restore) are drawn
    /// up from it, and kept.
    pub fn ledgers<S: AuditSource>(
        &mut self,
        source: &S,
        org: &str,
    ) -> Result<Option<Arc<Vec<Ledger>>>, S::Error> {
        if let Some(Books {
            ledgers: Some(kept),
            ..
        }) = self.by_org.get(org)
        {
            return Ok(Some(Arc::clone(kept)));
        }
        let mine = source.org_events(org)?;
        if mine.is_empty() {
            return Ok(None);
        }
        let ledgers = Arc::new(LotCache::new(source).ledgers(&whole_books(org), &mine)?);
        self.by_org
            .entry(org.to_string())
            .or_insert_with(|| Books {
                ledgers: None,
                violations: Vec::new(),
            })
            .ledgers = Some(Arc::clone(&ledgers));
        Ok(Some(ledgers))
    }

    /// The state to keep across a restart.
    pub fn save(&self) -> Saved {
        let sorted = |m: &HashMap<String, Vec<Anomaly>>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        Saved {
            rules: self.rules.clone(),
            certs: self.certs.clone(),
            co_ops: self.co_ops.clone(),
            shipping: self.shipping.clone(),
            registered: self.registered.iter().cloned().collect(),
            reviews: self.reviews.iter().map(|e| e.id.clone()).collect(),
            by_lot: sorted(&self.by_lot),
            by_event: sorted(&self.by_event),
            by_plot: self
                .by_plot
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            violations: self
                .by_org
                .iter()
                .filter(|(_, b)| !b.violations.is_empty())
                .map(|(org, b)| (org.clone(), b.violations.clone()))
                .collect(),
        }
    }

    /// The state `saved` kept, with its review events read from `source`, which holds the log
    /// it was saved from (at the same position, or further on: bring it forward with
    /// [`Self::apply`]). `None`: a review it names is not in `source` (corrected since).
    pub fn restore<S: AuditSource>(source: &S, saved: Saved) -> Result<Option<Self>, S::Error> {
        let mut reviews = Vec::with_capacity(saved.reviews.len());
        for id in &saved.reviews {
            match source.event(id)? {
                Some(event) => reviews.push(event),
                None => return Ok(None),
            }
        }
        Ok(Some(Maintained {
            rules: saved.rules,
            certs: saved.certs,
            co_ops: saved.co_ops,
            shipping: saved.shipping,
            registered: saved.registered.into_iter().collect(),
            reviews,
            by_lot: saved.by_lot.into_iter().collect(),
            by_event: saved.by_event.into_iter().collect(),
            by_plot: saved.by_plot.into_iter().collect(),
            by_org: saved
                .violations
                .into_iter()
                .map(|(org, violations)| {
                    (
                        org,
                        Books {
                            ledgers: None,
                            violations,
                        },
                    )
                })
                .collect(),
            listing: None,
        }))
    }

    /// Takes what `event` adds to the log-wide facts: certificates, co-ops, shipping orgs,
    /// reviews.
    fn note(&mut self, event: &Arc<Event>) {
        self.certs.add(event);
        if let Some(co_op) = co_op_named(event) {
            self.co_ops.insert(co_op.to_string());
        }
        match &event.kind {
            EventKind::Ship(_) => {
                self.shipping.insert(event.org.clone());
            }
            EventKind::Review(_) => self.reviews.push(Arc::clone(event)),
            _ => {}
        }
    }

    /// A plot registered since: its grade, and the harvests that named it before.
    fn plot_registered<S: AuditSource>(&mut self, source: &S, plot: &str) -> Result<(), S::Error> {
        let Some((event, p)) = source.plot(plot)? else {
            return Ok(());
        };
        self.registered.insert(plot.to_string());
        match plot_anomaly(plot, &event, &p) {
            Some(a) => self.by_plot.insert(plot.to_string(), a),
            None => self.by_plot.remove(plot),
        };
        let names_it = |a: &Anomaly| {
            a.kind == AnomalyKind::PlotNotRegistered
                && a.figures.get("plot").map(String::as_str) == Some(plot)
        };
        self.by_event.retain(|_, found| {
            found.retain(|a| !names_it(a));
            !found.is_empty()
        });
        Ok(())
    }

    /// Recomputes the lineage anomalies of `lots`, the checks of `events`, and the books of
    /// the orgs that recorded them.
    fn recompute<S: AuditSource>(
        &mut self,
        source: &S,
        lots: BTreeSet<String>,
        events: Vec<Arc<Event>>,
    ) -> Result<Option<Recomputed>, S::Error> {
        let mut cache = LotCache::new(source);
        let names: BTreeSet<&str> = lots.iter().map(String::as_str).collect();
        self.lot_anomalies(source, &mut cache, &names)?;
        self.event_checks(source, &mut cache, &events, &mut Membership::default())?;
        let orgs: BTreeSet<&str> = events.iter().map(|e| e.org.as_str()).collect();
        for org in &orgs {
            let mine = source.org_events(org)?;
            let ledgers = cache.ledgers(&whole_books(org), &mine)?;
            let violations = if self.shipping.contains(*org) {
                balance::violations(&ledgers, BALANCE_CLAIM)
            } else {
                Vec::new()
            };
            self.by_org.insert(
                org.to_string(),
                Books {
                    ledgers: Some(Arc::new(ledgers)),
                    violations,
                },
            );
        }
        self.listing = None;
        Ok(Some(Recomputed {
            events: events.len(),
            lots: lots.len(),
            orgs: orgs.len(),
        }))
    }

    /// Finds the lineage anomalies of `lots` again: those its walks find on each of them.
    fn lot_anomalies<S: AuditSource>(
        &mut self,
        source: &S,
        cache: &mut LotCache<'_, S>,
        lots: &BTreeSet<&str>,
    ) -> Result<(), S::Error> {
        let mut found: HashMap<String, BTreeSet<Anomaly>> = HashMap::new();
        for lot in lots {
            let checks = cache.lineage().lot_checks(lot)?;
            found.entry(lot.to_string()).or_default().extend(checks);
        }
        for a in cache.lineage().anomalies() {
            if let Some(set) = found.get_mut(a.lot.as_str()) {
                set.insert(a);
            }
        }
        self.settle_lots(source, found)
    }

    /// Takes `found` as the lineage anomalies of its lots (none, for a lot with an empty
    /// set), leaving out a logistic unit's unknown origin.
    fn settle_lots<S: AuditSource>(
        &mut self,
        source: &S,
        found: HashMap<String, BTreeSet<Anomaly>>,
    ) -> Result<(), S::Error> {
        for (lot, mut set) in found {
            if set.iter().any(|a| a.kind == AnomalyKind::UnknownOrigin)
                && is_container(source, &lot)?
            {
                set.retain(|a| a.kind != AnomalyKind::UnknownOrigin);
            }
            if set.is_empty() {
                self.by_lot.remove(&lot);
            } else {
                self.by_lot.insert(lot, set.into_iter().collect());
            }
        }
        self.listing = None;
        Ok(())
    }

    /// Checks `events` again: each one's rule, certificate, payment, plot and membership
    /// anomalies. `members` is what is known of co-ops' takings (a whole log's, or found as
    /// asked).
    fn event_checks<S: AuditSource>(
        &mut self,
        source: &S,
        cache: &mut LotCache<'_, S>,
        events: &[Arc<Event>],
        members: &mut Membership,
    ) -> Result<(), S::Error> {
        cache.load(
            events
                .iter()
                .flat_map(|e| e.lots().into_iter().map(|(l, _)| l)),
        )?;
        for event in events {
            let mut checks = event_anomalies(event, &self.rules, &self.certs, cache, &|p| {
                self.registered.contains(p)
            });
            checks.extend(self.non_member_checks(source, event, cache, members)?);
            if checks.is_empty() {
                self.by_event.remove(&event.id);
            } else {
                self.by_event.insert(event.id.clone(), checks);
            }
        }
        self.listing = None;
        Ok(())
    }

    /// The membership anomalies of co-op event `event` (as the full scan finds them): each
    /// lot it sells or makes as certified that is or contains a harvest lot the co-op took
    /// from a farm that was not its member then.
    fn non_member_checks<S: AuditSource>(
        &self,
        source: &S,
        event: &Event,
        cache: &mut LotCache<'_, S>,
        members: &mut Membership,
    ) -> Result<Vec<Anomaly>, S::Error> {
        let mut out = Vec::new();
        if !self.co_ops.contains(&event.org) || members.none_of(&event.org) {
            return Ok(out);
        }
        for (lot, sources) in certified_lots(event) {
            if let EventKind::Ship(_) = &event.kind {
                let claims = cache.lineage().lot_facts(lot)?.claims;
                if certifiable_claims(&claims).is_empty() {
                    continue;
                }
            }
            let mut found: BTreeSet<String> = BTreeSet::new();
            for from in sources {
                for up in cache.lineage().upstream(from)? {
                    if members
                        .taken_from_non_member(source, &self.certs, &event.org, &up.lot)?
                        .is_some()
                    {
                        found.insert(up.lot);
                    }
                }
            }
            for harvest_lot in found {
                if let Some(Some(t)) = members.known.get(&(event.org.clone(), harvest_lot.clone()))
                {
                    let n = NonMember {
                        farm: &t.farm,
                        harvested: t.harvested,
                        delivered: t.delivered,
                        taken_by: &t.taken_by,
                    };
                    out.push(non_member_anomaly(
                        event,
                        lot,
                        &harvest_lot,
                        &n,
                        &self.certs,
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A harvest lot a co-op took from a farm that was not its member then.
struct Taken {
    farm: String,
    harvested: chrono::NaiveDate,
    delivered: chrono::NaiveDate,
    taken_by: String,
}

/// What one update learnt of (co-op, harvest lot) pairs.
#[derive(Default)]
struct Membership {
    known: HashMap<(String, String), Option<Taken>>,
    /// Every pair whose lot was taken from a non-member is known (the others are not).
    complete: bool,
}

impl Membership {
    /// Every (co-op, harvest lot) taken from a non-member in the log `source` holds, read
    /// `chunk` positions at a time; `harvests` holds the log's harvest lots.
    fn of_log<S: AuditSource>(
        source: &S,
        chunk: usize,
        harvests: &HashMap<String, Harvested>,
        certs: &Certificates,
        co_ops: &BTreeSet<String>,
    ) -> Result<Self, S::Error> {
        // (co-op, harvest lot) -> the first event by which the co-op took it.
        let mut taken: HashMap<(String, String), TakenBy> = HashMap::new();
        each_chunk(source, chunk, |events| {
            for e in events.iter().filter(|e| co_ops.contains(&e.org)) {
                for lot in taken_lots(e).filter(|l| harvests.contains_key(*l)) {
                    let by = TakenBy {
                        time: e.time,
                        id: e.id.clone(),
                    };
                    match taken.entry((e.org.clone(), lot.to_string())) {
                        Entry::Vacant(slot) => {
                            slot.insert(by);
                        }
                        Entry::Occupied(mut slot) => {
                            if (by.time, &by.id) < (slot.get().time, &slot.get().id) {
                                slot.insert(by);
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        let known = taken
            .into_iter()
            .filter_map(|((co_op, lot), by)| {
                let t = Taken::judge(&harvests[&lot], &by, &co_op, certs)?;
                Some(((co_op, lot), Some(t)))
            })
            .collect();
        Ok(Membership {
            known,
            complete: true,
        })
    }

    /// Whether `co_op` is known to have taken nothing from a non-member.
    fn none_of(&self, co_op: &str) -> bool {
        self.complete && !self.known.keys().any(|(c, _)| c == co_op)
    }

    /// Whether `co_op` took harvest lot `lot` from a farm that was not its member on the
    /// harvest date or on the date of the first event by which it took it (a Receive of the lot
    /// or a transformation of it).
    fn taken_from_non_member<S: AuditSource>(
        &mut self,
        source: &S,
        certs: &Certificates,
        co_op: &str,
        lot: &str,
    ) -> Result<Option<&Taken>, S::Error> {
        let key = (co_op.to_string(), lot.to_string());
        if !self.known.contains_key(&key) && !self.complete {
            let found = Self::find(source, certs, co_op, lot)?;
            self.known.insert(key.clone(), found);
        }
        Ok(self.known.get(&key).and_then(Option::as_ref))
    }

    fn find<S: AuditSource>(
        source: &S,
        certs: &Certificates,
        co_op: &str,
        lot: &str,
    ) -> Result<Option<Taken>, S::Error> {
        // The last harvest recorded of the lot, as the full scan keeps it.
        let Some(harvest) = source
            .creations(lot)?
            .into_iter()
            .rfind(|e| matches!(e.kind, EventKind::Harvest(_)))
        else {
            return Ok(None);
        };
        let Some(by) = source
            .mentions(lot)?
            .into_iter()
            .filter(|e| e.org == co_op && taken_lots(e).any(|l| l == lot))
            .min_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)))
        else {
            return Ok(None);
        };
        let harvested = Harvested {
            farm: harvest.org.clone(),
            on: harvest.time.date_naive(),
        };
        let by = TakenBy {
            time: by.time,
            id: by.id.clone(),
        };
        Ok(Taken::judge(&harvested, &by, co_op, certs))
    }
}

/// A harvest lot's farm and harvest date.
struct Harvested {
    farm: String,
    on: chrono::NaiveDate,
}

/// The event by which a co-op took a lot.
struct TakenBy {
    time: chrono::DateTime<chrono::FixedOffset>,
    id: String,
}

impl Taken {
    /// The lot `harvest` made, taken by `co_op` with `by`, if the farm was not the co-op's
    /// member on the harvest date or on the day it was taken.
    fn judge(
        harvest: &Harvested,
        by: &TakenBy,
        co_op: &str,
        certs: &Certificates,
    ) -> Option<Taken> {
        let (harvested, delivered) = (harvest.on, by.time.date_naive());
        let member = |date| certs.member_of_on(&harvest.farm, co_op, date);
        if harvest.farm == co_op || (member(harvested) && member(delivered)) {
            return None;
        }
        Some(Taken {
            farm: harvest.farm.clone(),
            harvested,
            delivered,
            taken_by: by.id.clone(),
        })
    }
}

/// The lots `e` takes: a Receive's lots, a transformation's inputs.
fn taken_lots(e: &Event) -> Box<dyn Iterator<Item = &str> + '_> {
    match &e.kind {
        EventKind::Receive(m) => Box::new(m.lots.iter().map(|l| l.lot.as_str())),
        EventKind::Transform(t) => Box::new(t.inputs.iter().map(|i| i.lot.as_str())),
        _ => Box::new(std::iter::empty()),
    }
}

/// Whether `lot` is a logistic unit (as the full scan decides): some event shows it to be one
/// and no transformation consumed it.
fn is_container<S: LineageSource>(source: &S, lot: &str) -> Result<bool, S::Error> {
    let shown = source
        .mentions(lot)?
        .iter()
        .any(|e| packed(e).contains(&lot));
    if !shown {
        return Ok(false);
    }
    let consumed = source.consumptions(lot)?.iter().any(|e| match &e.kind {
        EventKind::Transform(t) => t.inputs.iter().any(|i| i.lot == lot),
        _ => false,
    });
    Ok(!consumed)
}

/// The full scan's answer with its reviews: what the maintained state must equal.
pub fn full_scan<S: LineageSource>(
    source: &S,
    events: &[Arc<Event>],
    rules: &Rules,
    plots: &BTreeMap<String, (Arc<Event>, RegisterPlot)>,
) -> Result<Vec<Anomaly>, S::Error> {
    let mut found = scan::anomalies(source, events, rules, plots)?;
    attach_reviews(&mut found, events);
    Ok(found)
}
