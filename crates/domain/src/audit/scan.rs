//! The anomaly listing: every business anomaly in the log, from lineage
//! (over-consumption, unknown origin, custody, claims), the rules (yields out of
//! band, prices), certificates, plots and mass balance. Facts, never rejections.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::audit::balance;
use crate::audit::certs::{Certificates, LotFacts, certifiable_claims, certificate_checks};
use crate::audit::prices::payment_checks;
use crate::audit::rules::{Rules, yield_check};
use crate::containers::contents_at;
use crate::event::{Event, EventKind, LotQuantity, RegisterPlot};
use crate::geo::eudr_grade;
use crate::lineage::{Lineage, LineageSource, UpstreamLot, created_quantity};

/// The claim mass-balance ledgers count.
pub const BALANCE_CLAIM: &str = "fairtrade";

/// Lineage facts per lot, computed once per scan.
pub struct LotCache<'a, S: LineageSource> {
    lineage: Lineage<'a, S>,
    facts: HashMap<String, Option<UpstreamLot>>,
}

impl<'a, S: LineageSource> LotCache<'a, S> {
    pub fn new(source: &'a S) -> Self {
        LotCache {
            lineage: Lineage::new(source),
            facts: HashMap::new(),
        }
    }

    pub fn lineage(&mut self) -> &mut Lineage<'a, S> {
        &mut self.lineage
    }

    /// Computes and keeps the facts of `lots`.
    pub fn load<'l>(&mut self, lots: impl IntoIterator<Item = &'l str>) -> Result<(), S::Error> {
        for lot in lots {
            if !self.facts.contains_key(lot) {
                let f = self.lineage.lot_facts(lot)?;
                self.facts.insert(lot.to_string(), Some(f));
            }
        }
        Ok(())
    }

    /// What is known of a loaded lot.
    pub fn get(&self, lot: &str) -> Option<UpstreamLot> {
        self.facts.get(lot).cloned().flatten()
    }

    /// `events` for the books: each Ship or Receive of a container (a moved id no event created,
    /// that an aggregation packed things into) is made a move of what the container held then,
    /// one level of packing. An item packed in a stated quantity moves that quantity; one packed
    /// without moves all its lot was created as; one the move names itself is not counted
    /// twice. Loads the facts of every lot the events and the answer name.
    fn unpack_moves(&mut self, events: &[Arc<Event>]) -> Result<Vec<Arc<Event>>, S::Error> {
        self.load(
            events
                .iter()
                .flat_map(|e| e.lots().into_iter().map(|(l, _)| l)),
        )?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let (EventKind::Ship(m) | EventKind::Receive(m)) = &event.kind else {
                out.push(Arc::clone(event));
                continue;
            };
            let mut lots: Vec<LotQuantity> = Vec::with_capacity(m.lots.len());
            let mut unpacked = false;
            for moved in &m.lots {
                if self.get(&moved.lot).is_some_and(|f| f.known) {
                    lots.push(moved.clone());
                    continue;
                }
                let on_it = self.lineage.source().mentions(&moved.lot)?;
                let held = contents_at(&moved.lot, on_it.iter().map(|e| e.as_ref()), event.time);
                if held.is_empty() {
                    lots.push(moved.clone());
                    continue;
                }
                unpacked = true;
                for packing in held {
                    if m.lots.iter().any(|l| l.lot == packing.item) {
                        continue;
                    }
                    self.load([packing.item.as_str()])?;
                    let quantity = packing.quantity.or_else(|| {
                        self.get(&packing.item).and_then(|f| {
                            f.creations
                                .iter()
                                .find_map(|c| created_quantity(c, &packing.item).cloned())
                        })
                    });
                    if let Some(quantity) = quantity {
                        lots.push(LotQuantity {
                            lot: packing.item,
                            quantity,
                        });
                    }
                }
            }
            if !unpacked {
                out.push(Arc::clone(event));
                continue;
            }
            let mut moved = (**event).clone();
            if let EventKind::Ship(m) | EventKind::Receive(m) = &mut moved.kind {
                m.lots = lots;
            }
            out.push(Arc::new(moved));
        }
        Ok(out)
    }

    /// The ledgers `query` asks for over `events` (the org's), a container's moves counted as
    /// moves of what it held ([`Self::unpack_moves`]).
    pub fn ledgers(
        &mut self,
        query: &balance::BalanceQuery,
        events: &[Arc<Event>],
    ) -> Result<Vec<balance::Ledger>, S::Error> {
        let events = self.unpack_moves(events)?;
        let refs: Vec<&Event> = events.iter().map(|e| e.as_ref()).collect();
        Ok(balance::ledgers(query, &refs, &|lot| self.get(lot)))
    }

    /// The facts certificate and price checks need.
    pub fn lot_facts(&self, lot: &str) -> Option<LotFacts> {
        let f = self.facts.get(lot)?.as_ref()?;
        Some(LotFacts {
            product: f.product.clone().unwrap_or_default(),
            claims: f.claims.clone(),
            chain: f.chain.clone(),
        })
    }
}

/// The anomalies one event shows under the rules, the certificates and the
/// registered plots (`plot_registered`); `cache` holds the facts of every lot
/// the event names. Lineage's own anomalies (over-consumption, custody, unknown
/// origin) come from `Lineage::lot_state`.
pub fn event_anomalies<S: LineageSource>(
    event: &Event,
    rules: &Rules,
    certs: &Certificates,
    cache: &LotCache<'_, S>,
    plot_registered: &dyn Fn(&str) -> bool,
) -> Vec<Anomaly> {
    let lot_info = |lot: &str| cache.lot_facts(lot);
    let mut out = Vec::new();
    match &event.kind {
        EventKind::Transform(t) => {
            let products: Vec<Option<String>> = t
                .inputs
                .iter()
                .map(|i| cache.get(&i.lot).and_then(|f| f.product))
                .collect();
            out.extend(yield_check(rules, event, &products));
            out.extend(certificate_checks(certs, event, &lot_info));
        }
        EventKind::Harvest(h) => {
            out.extend(certificate_checks(certs, event, &lot_info));
            if !plot_registered(&h.plot) {
                out.push(
                    Anomaly::new(
                        AnomalyKind::PlotNotRegistered,
                        &h.lot,
                        Some(&event.id),
                        format!(
                            "harvest of {:?} names plot {:?}, which was never registered: the lot has no geolocation",
                            h.lot, h.plot
                        ),
                    )
                    .org(&event.org)
                    .figure("plot", &h.plot),
                );
            }
        }
        EventKind::Ship(_) => out.extend(certificate_checks(certs, event, &lot_info)),
        EventKind::Pay(_) => out.extend(payment_checks(rules, event, &lot_info)),
        _ => {}
    }
    out
}

/// Every anomaly in `events` (the uncorrected events of the log), sorted.
/// `plots` holds the standing registration of every plot.
pub fn anomalies<S: LineageSource>(
    source: &S,
    events: &[Arc<Event>],
    rules: &Rules,
    plots: &BTreeMap<String, (Arc<Event>, RegisterPlot)>,
) -> Result<Vec<Anomaly>, S::Error> {
    let mut certs = Certificates::default();
    for e in events {
        certs.add(e);
    }
    let mut cache = LotCache::new(source);
    let mut out: BTreeSet<Anomaly> = BTreeSet::new();
    let lots: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| e.lots().into_iter().map(|(l, _)| l))
        .collect();
    for lot in &lots {
        out.extend(cache.lineage().lot_checks(lot)?);
    }
    // What the walks found upstream (unknown origins, custody, claims, cycles).
    out.extend(cache.lineage().anomalies());
    cache.load(lots.iter().copied())?;
    for event in events {
        out.extend(event_anomalies(event, rules, &certs, &cache, &|p| {
            plots.contains_key(p)
        }));
    }
    for (plot, (event, p)) in plots {
        out.extend(plot_anomaly(plot, event, p));
    }
    let mut by_org: BTreeMap<&str, Vec<Arc<Event>>> = BTreeMap::new();
    for e in events {
        by_org
            .entry(e.org.as_str())
            .or_default()
            .push(Arc::clone(e));
    }
    let shipping: BTreeSet<&str> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Ship(_)))
        .map(|e| e.org.as_str())
        .collect();
    for org in shipping {
        let query = crate::audit::maintained::whole_books(org);
        let ledgers = cache.ledgers(
            &query,
            by_org.get(org).map(Vec::as_slice).unwrap_or_default(),
        )?;
        out.extend(balance::violations(&ledgers, BALANCE_CLAIM));
    }
    out.extend(non_member_deliveries(events, &certs, &mut cache)?);
    let containers = containers(events);
    out.retain(|a| !(a.kind == AnomalyKind::UnknownOrigin && containers.contains(a.lot.as_str())));
    Ok(out.into_iter().collect())
}

/// Why the standing registration `p` of `plot` (by `event`) is not EUDR-grade, if it is not.
pub(crate) fn plot_anomaly(plot: &str, event: &Event, p: &RegisterPlot) -> Option<Anomaly> {
    let issues = eudr_grade(&p.geometry, p.area_ha, &p.country);
    (!issues.is_empty()).then(|| {
        Anomaly::new(
            AnomalyKind::PlotNotEudrGrade,
            "",
            Some(&event.id),
            format!("plot {plot:?} is not EUDR-grade: {}", issues.join("; ")),
        )
        .org(&event.org)
        .figure("plot", plot)
    })
}

/// A harvest lot a co-op took from a farm that was not its confirmed member on the harvest
/// date or on the day the co-op first received or processed it.
pub(crate) struct NonMember<'e> {
    pub(crate) farm: &'e str,
    pub(crate) harvested: chrono::NaiveDate,
    pub(crate) delivered: chrono::NaiveDate,
    /// The event by which the co-op took the lot.
    pub(crate) taken_by: &'e str,
}

/// The anomaly of co-op event `e` (a sale as certified, or a certified output) of `lot`, which
/// is or contains `harvest_lot`, taken from a farm that was not the co-op's member then.
pub(crate) fn non_member_anomaly(
    e: &Event,
    lot: &str,
    harvest_lot: &str,
    n: &NonMember<'_>,
    certs: &Certificates,
) -> Anomaly {
    let what = if let EventKind::Ship(_) = &e.kind {
        "sold as certified"
    } else {
        "made the certified output"
    };
    let contains = if harvest_lot == lot {
        String::new()
    } else {
        format!(" (containing lot {harvest_lot:?})")
    };
    Anomaly::new(
        AnomalyKind::NonMemberDelivery,
        lot,
        Some(&e.id),
        format!(
            "co-op {:?} {what} lot {lot:?}{contains}: it was harvested by farm {:?} on {}, delivered on {} (event {}), and the farm was not the co-op's confirmed member on {}",
            e.org, n.farm, n.harvested, n.delivered, n.taken_by,
            if certs.member_of_on(n.farm, &e.org, n.harvested) { n.delivered } else { n.harvested },
        ),
    )
    .org(&e.org)
    .figure("farm", n.farm)
    .figure("co_op", &e.org)
    .figure("harvest_lot", harvest_lot)
    .figure("harvest_date", n.harvested)
    .figure("delivery_date", n.delivered)
}

/// Every sale as certified (a Ship of a lot with a certifiable claim), and every certified
/// output of a transformation, by a co-op, of a lot that is or contains a harvest lot it took
/// from a farm that was not its member then (membership as the co-op confirmed it, or as
/// registered for a co-op that never confirms: [`Certificates::member_of_on`]). One anomaly per
/// event and lot, naming the farm, the co-op and both dates.
fn non_member_deliveries<S: LineageSource>(
    events: &[Arc<Event>],
    certs: &Certificates,
    cache: &mut LotCache<'_, S>,
) -> Result<Vec<Anomaly>, S::Error> {
    // Co-ops: registered as one, confirming members, or named by a farm as its co-op.
    let co_ops: BTreeSet<&str> = events.iter().filter_map(|e| co_op_named(e)).collect();
    if co_ops.is_empty() {
        return Ok(Vec::new());
    }
    let harvests: HashMap<&str, &Event> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Harvest(h) => Some((h.lot.as_str(), e.as_ref())),
            _ => None,
        })
        .collect();
    // (co-op, harvest lot) -> the first event by which the co-op took it, in time order.
    let mut taken: BTreeMap<(&str, &str), &Event> = BTreeMap::new();
    for e in events.iter().filter(|e| co_ops.contains(e.org.as_str())) {
        let lots: Vec<&str> = match &e.kind {
            EventKind::Receive(m) => m.lots.iter().map(|l| l.lot.as_str()).collect(),
            EventKind::Transform(t) => t.inputs.iter().map(|i| i.lot.as_str()).collect(),
            _ => continue,
        };
        for lot in lots.into_iter().filter(|l| harvests.contains_key(l)) {
            let slot = taken.entry((e.org.as_str(), lot)).or_insert(e);
            if (e.time, &e.id) < (slot.time, &slot.id) {
                *slot = e;
            }
        }
    }
    let mut non_members: HashMap<(&str, &str), NonMember<'_>> = HashMap::new();
    for ((co_op, lot), by) in taken {
        let harvest = harvests[lot];
        let (harvested, delivered) = (harvest.time.date_naive(), by.time.date_naive());
        let member = |date| certs.member_of_on(&harvest.org, co_op, date);
        if harvest.org != co_op && !(member(harvested) && member(delivered)) {
            non_members.insert(
                (co_op, lot),
                NonMember {
                    farm: &harvest.org,
                    harvested,
                    delivered,
                    taken_by: &by.id,
                },
            );
        }
    }
    if non_members.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in events.iter().filter(|e| co_ops.contains(e.org.as_str())) {
        // (the lot sold or made as certified, the lots it is or was made from)
        let certified = certified_lots(e);
        for (lot, sources) in certified {
            if let EventKind::Ship(_) = &e.kind {
                let claims = cache.lineage().lot_facts(lot)?.claims;
                if certifiable_claims(&claims).is_empty() {
                    continue;
                }
            }
            let mut found: BTreeSet<&str> = BTreeSet::new();
            for source in sources {
                for up in cache.lineage().upstream(source)? {
                    if let Some((&harvest_lot, _)) = harvests.get_key_value(up.lot.as_str())
                        && non_members.contains_key(&(e.org.as_str(), harvest_lot))
                    {
                        found.insert(harvest_lot);
                    }
                }
            }
            for harvest_lot in found {
                let n = &non_members[&(e.org.as_str(), harvest_lot)];
                out.push(non_member_anomaly(e, lot, harvest_lot, n, certs));
            }
        }
    }
    Ok(out)
}

/// The co-op `e` names: an org registering as one, the co-op a farm registers as a member of,
/// or an org confirming members.
pub(crate) fn co_op_named(e: &Event) -> Option<&str> {
    match &e.kind {
        EventKind::RegisterOrg(r) if r.role == crate::event::OrgRole::Cooperative => {
            Some(e.org.as_str())
        }
        EventKind::RegisterOrg(r) => r.member_of.as_deref(),
        EventKind::ConfirmMember(_) => Some(e.org.as_str()),
        _ => None,
    }
}

/// What co-op event `e` sells or makes as certified: each lot with the lots it is or was made
/// from (a Ship's lots as themselves, whose claims the caller checks; a transformation's outputs
/// with a certifiable claim, from its inputs).
pub(crate) fn certified_lots(e: &Event) -> Vec<(&str, Vec<&str>)> {
    match &e.kind {
        EventKind::Ship(m) => m
            .lots
            .iter()
            .map(|l| (l.lot.as_str(), vec![l.lot.as_str()]))
            .collect(),
        EventKind::Transform(t) => t
            .outputs
            .iter()
            .filter(|o| !certifiable_claims(&o.claims).is_empty())
            .map(|o| {
                (
                    o.lot.as_str(),
                    t.inputs.iter().map(|i| i.lot.as_str()).collect(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The logistic units among the ids of `events`: an AggregationEvent's or AssociationEvent's
/// parent, and any SSCC (GS1 key 00), unless a transformation consumed it as a lot. A container
/// is packed, not made: nothing creates it, and that is not an unknown origin.
fn containers(events: &[Arc<Event>]) -> BTreeSet<&str> {
    let mut containers = BTreeSet::new();
    let mut consumed = BTreeSet::new();
    for event in events {
        containers.extend(packed(event));
        if let EventKind::Transform(t) = &event.kind {
            consumed.extend(t.inputs.iter().map(|i| i.lot.as_str()));
        }
    }
    containers.retain(|id| !consumed.contains(id));
    containers
}

/// The ids `event` shows to be logistic units: an AggregationEvent's or AssociationEvent's
/// parent, and every SSCC it names.
pub(crate) fn packed(event: &Event) -> Vec<&str> {
    let mut ids = Vec::new();
    if let EventKind::Observe(o) = &event.kind {
        if matches!(
            o.event_type.as_str(),
            "AggregationEvent" | "AssociationEvent"
        ) && let Some(parent) = &o.parent
        {
            ids.push(parent.as_str());
        }
        ids.extend(o.epcs.iter().map(String::as_str).filter(|id| is_sscc(id)));
    }
    ids.extend(
        event
            .lots()
            .into_iter()
            .map(|(lot, _)| lot)
            .filter(|id| is_sscc(id)),
    );
    ids
}

/// Whether `id` is an SSCC, as an EPC URN or a GS1 Digital Link (`…/00/{18 digits}`).
pub(crate) fn is_sscc(id: &str) -> bool {
    id.starts_with("urn:epc:id:sscc:")
        || id
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(_, path)| path.strip_prefix("00/"))
            .map(|key| key.split(['/', '?', '#']).next().unwrap_or(key))
            .is_some_and(|key| key.len() == 18 && key.bytes().all(|b| b.is_ascii_digit()))
}
