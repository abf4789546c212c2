//! Provenance arithmetic (DESIGN §2): what a lot is made of, what it went into,
//! and its state, computed from the events the store hands over.
//!
//! For a Transform with inputs `(i, q_i)` and outputs `(j, Q_j)`, output `j`
//! embodies the fraction `Q_j / ΣQ` of every consumed `q_i`, so a lot's content of
//! an origin lot `F` is linear: `content(j, F) = Σ_i content_per_unit(i, F) · q_i ·
//! Q_j / ΣQ`. A Harvest lot contains all of itself. A lot that is used but never
//! created is its own origin, of unknown origin. Ship and Receive change custody,
//! not content. Corrected events never reach this module: the source leaves them out.
//!
//! Every computation visits events in a content-defined order (by event id), never
//! in arrival order, so once all events are in the answer is the same whatever
//! order they arrived in. Figures are exact decimals, rounded to
//! [`ANSWER_DECIMALS`] places only in the final answer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
// Keyed by lot ids, which come from outside: foldhash is seeded per process, so ids that collide
// cannot be prepared in advance (it resists no more than that).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rust_decimal::Decimal;

use crate::event::{CustodyModel, Event, EventKind, OutputLot, Transform};
use crate::quantity::{Quantity, Unit};

mod custody;
pub use custody::{CLOCK_MARGIN, LotCustody};

/// Decimal places kept in answers (contents, shares, quantities).
pub const ANSWER_DECIMALS: u32 = 9;

/// The questions provenance asks of the log. Implementations leave corrected
/// events out and return events in log order (the order they were recorded: the first
/// creation of a lot names its owner, [`LotCustody`]).
pub trait LineageSource {
    type Error;
    /// Events that create `lot`: a Harvest of it, or a Transform with it as an output.
    fn creations(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error>;
    /// Transform events that consume `lot`.
    fn consumptions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error>;
    /// Every event that mentions `lot`, whatever its role.
    fn mentions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error>;
    /// The events on `lot` judged by who holds it ([`judge_lot`]). A source that keeps judged
    /// lots between questions answers from them for as long as nothing they were judged from
    /// has changed.
    fn custody(&self, lot: &str) -> Result<Arc<LotCustody>, Self::Error> {
        judge_lot(lot, |l| self.mentions(l))
    }
    /// Whether this source keeps lots' computed lineage between questions ([`KeptLineage`]).
    const KEEPS_LINEAGE: bool = false;
    /// The lineage of `lot` an earlier question kept, if any.
    fn kept_lineage(&self, _lot: &str) -> Option<Arc<KeptLineage>> {
        None
    }
    /// Keeps the lineage of `lot` for later questions (asked only when
    /// [`LineageSource::KEEPS_LINEAGE`]).
    fn keep_lineage(&self, _lot: &str, _kept: Arc<KeptLineage>) {}
    /// The trace-back of `lot` an earlier question kept ([`KeptTrace`]), if any, and whether it
    /// was made in a view of the very same log as this one ([`KeptSince::ThisView`]: it holds as
    /// it is), or of another ([`KeptSince::AnotherView`]: it holds where every lot it judged is
    /// judged the same, the very same `Arc`, in this one).
    fn kept_trace(&self, _lot: &str) -> Option<(Arc<KeptTrace>, KeptSince)> {
        None
    }
    /// Keeps the trace-back of `lot` for later questions, as made in this view (asked only
    /// when [`LineageSource::KEEPS_LINEAGE`]).
    fn keep_trace(&self, _lot: &str, _kept: Arc<KeptTrace>) {}
}

/// Which view a [`KeptTrace`] was made in, as its source tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptSince {
    /// A view of the same log as the asking one (the same events, the same corrections).
    ThisView,
    /// Another view: the log may have grown or been corrected since.
    AnotherView,
}

/// A whole trace-back as a walk from nothing answered it, kept by a source between questions
/// with everything the walk ended with: every lot it judged (the very `Arc`s of their
/// [`LotCustody`]), the lots it computed, the origin facts and anomalies it found. A walk reads
/// its source only through the lots it judges, so a walk from nothing in a view that judges
/// every one of those lots the same goes the same way and answers the same: a kept trace is
/// used only there, and only when the walk's budget would not have stopped it.
pub struct KeptTrace {
    answer: TraceBack,
    nodes: Arc<HashMap<String, Arc<Node>>>,
    custody: Arc<HashMap<String, Arc<LotCustody>>>,
    origins: Arc<HashMap<String, OriginInfo>>,
    anomalies: Arc<BTreeSet<Anomaly>>,
    /// The most lots the walk held (computed or in progress) when it looked at its budget.
    peak: usize,
}

impl KeptTrace {
    /// Every lot the walk judged, with the custody it judged it to have.
    pub fn judged(&self) -> impl Iterator<Item = (&str, &Arc<LotCustody>)> {
        self.custody.iter().map(|(lot, c)| (lot.as_str(), c))
    }

    /// How much it holds, for a source's bounded keeping: its origins, the lots it judged and
    /// the events their custody keeps alive.
    pub fn weight(&self) -> u64 {
        let judged: u64 = self
            .custody
            .values()
            .map(|c| 1 + c.mentions.len() as u64)
            .sum();
        1 + judged + self.origins.len() as u64
    }
}

/// One lot's lineage as a walk computed it, kept by a source between questions with what it was
/// computed from: the lot's custody, each input's custody and each counted input's lineage (the
/// very `Arc`s), the anomalies it found and the origin facts it recorded. A later walk uses it
/// only where all of those are the very same and each unknown input it counted is counted in the
/// same unit so far along the walk, so it answers exactly as computing it again would.
pub struct KeptLineage {
    node: Arc<Node>,
    custody: Arc<LotCustody>,
    inputs: Vec<KeptInput>,
    anomalies: Vec<Anomaly>,
    origins: Vec<OriginTouch>,
}

impl KeptLineage {
    /// How much it holds, for a source's bounded keeping: the lot, its inputs, and the events
    /// of the custody it keeps alive.
    pub fn weight(&self) -> u64 {
        1 + self.inputs.len() as u64 + self.custody.mentions.len() as u64
    }
}

/// One input lot of a kept lineage as its computation read it.
struct KeptInput {
    lot: String,
    custody: Option<Arc<LotCustody>>,
    /// Its lineage, when it was counted (its transformer held it).
    node: Option<Arc<Node>>,
}

/// What computing a lot recorded about origin lots.
enum OriginTouch {
    /// The lot is a harvest: its facts.
    Harvest(String, OriginInfo),
    /// The lot is created by nothing: an unknown origin.
    Unknown(String),
    /// An unknown input counted in `unit`; `preset` when an earlier consumer had set that unit.
    UnknownUsed {
        lot: String,
        unit: Unit,
        preset: bool,
    },
}

/// Judges the events on `lot` by who holds it ([`LotCustody`]): every event that mentions it,
/// with the moves of the containers that carried it. `mentions_of` is asked for the lot first,
/// then for each container.
pub fn judge_lot<E>(
    lot: &str,
    mut mentions_of: impl FnMut(&str) -> Result<Vec<Arc<Event>>, E>,
) -> Result<Arc<LotCustody>, E> {
    let mentions = mentions_of(lot)?;
    let carried = crate::containers::carried_moves(lot, &mentions, &mut mentions_of)?;
    Ok(Arc::new(LotCustody::judge_carried(
        lot, &mentions, &carried,
    )))
}

pub use crate::anomaly::{Anomaly, AnomalyKind};

/// One origin lot in a trace-back answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub lot: String,
    /// False for a lot used but never created.
    pub known: bool,
    pub org: Option<String>,
    pub plot: Option<String>,
    pub product: Option<String>,
    pub harvest_time: Option<DateTime<FixedOffset>>,
    /// The traced lot's content of this origin, in the origin's unit.
    pub content: Quantity,
    /// content / total content, in [0, 1].
    pub share: Decimal,
}

/// The answer to "where did this lot come from?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceBack {
    pub lot: String,
    pub produced: Option<Quantity>,
    /// Sorted by lot id.
    pub origins: Vec<Origin>,
    pub lots_walked: usize,
    pub anomalies: Vec<Anomaly>,
    /// Set when the walk stopped early ([`Budget`]): where and why. Lots beyond it are left
    /// out of the origins.
    pub partial: Option<String>,
}

/// A lot downstream of the traced one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descendant {
    pub lot: String,
    pub product: String,
    pub holder: Option<String>,
    pub quantity: Quantity,
    pub depth: u32,
    pub parent: String,
    pub via_event_id: String,
}

/// The answer to "what did this lot go into?" (recall).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceForward {
    pub lot: String,
    /// Sorted by depth, then lot id.
    pub descendants: Vec<Descendant>,
    /// Set when the walk stopped early ([`Budget`]): where and why.
    pub partial: Option<String>,
}

/// How much one question may walk: at most `max_lots` lots, and none once `stop` says so (the
/// caller's deadline passed). A walk that stops answers what it found and says where it
/// stopped.
#[derive(Clone)]
pub struct Budget {
    pub max_lots: usize,
    pub stop: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_lots: usize::MAX,
            stop: None,
        }
    }
}

/// A lot's state as the log knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotState {
    pub lot: String,
    pub known: bool,
    pub product: Option<String>,
    pub chain: Option<String>,
    pub creator: Option<String>,
    pub holder: Option<String>,
    pub produced: Option<Quantity>,
    pub consumed: Option<Quantity>,
    pub remaining: Option<Quantity>,
    pub custody: CustodyModel,
    pub claims: Vec<String>,
    pub origin_count: usize,
    pub has_unknown_origin: bool,
    pub created_at: Option<DateTime<FixedOffset>>,
    pub anomalies: Vec<Anomaly>,
}

/// What provenance knows about one origin lot.
#[derive(Debug, Clone)]
struct OriginInfo {
    known: bool,
    /// None for an unknown lot until its first use is seen.
    unit: Option<Unit>,
    org: Option<String>,
    plot: Option<String>,
    product: Option<String>,
    harvest_time: Option<DateTime<FixedOffset>>,
}

impl OriginInfo {
    /// A lot used but never created: its unit is learned from its first use.
    fn unknown() -> Self {
        OriginInfo {
            known: false,
            unit: None,
            org: None,
            plot: None,
            product: None,
            harvest_time: None,
        }
    }
}

/// One lot's computed lineage, memoised during a walk.
#[derive(Debug, Clone)]
struct Node {
    known: bool,
    /// The unit the lot is counted in (its first creation's unit, by event id).
    unit: Option<Unit>,
    produced: Decimal,
    product: Option<String>,
    chain: Option<String>,
    creator: Option<String>,
    created_at: Option<DateTime<FixedOffset>>,
    /// Of each unit of this lot, the fraction that is its own harvest.
    own_share: Decimal,
    /// For each input lot: units of the input (in the input's unit) per unit of
    /// this lot. Cycle edges are left out, so the inputs form a DAG.
    inputs: Vec<(String, Decimal)>,
    /// Every input lot of the transforms that made this lot, even those whose
    /// quantity could not be counted (cycle edges left out): what "upstream" means
    /// for custody, EUDR and the chain report.
    linked: Vec<String>,
    custody: CustodyModel,
    claims: BTreeSet<String>,
    has_unknown: bool,
    /// Transform creations, kept for the yield check.
    transforms: Vec<Arc<Event>>,
    /// Every creating event (Harvest or Transform), by event id.
    creations: Vec<Arc<Event>>,
}

/// The custody model's name in answers.
pub fn custody_name(model: CustodyModel) -> &'static str {
    match model {
        CustodyModel::IdentityPreserved => "identity_preserved",
        CustodyModel::Segregated => "segregated",
        CustodyModel::MassBalance => "mass_balance",
    }
}

/// True when `event` creates `lot` and declares it mass balance.
pub fn declares_mass_balance(event: &Event, lot: &str) -> bool {
    match &event.kind {
        EventKind::Harvest(h) => h.lot == lot && h.custody == Some(CustodyModel::MassBalance),
        EventKind::Transform(t) => t
            .outputs
            .iter()
            .any(|o| o.lot == lot && o.custody == Some(CustodyModel::MassBalance)),
        _ => false,
    }
}

/// One lot upstream of (or equal to) a traced lot, as lineage computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLot {
    pub lot: String,
    /// False for a lot used but never created.
    pub known: bool,
    pub product: Option<String>,
    pub chain: Option<String>,
    pub creator: Option<String>,
    pub created_at: Option<DateTime<FixedOffset>>,
    pub custody: CustodyModel,
    pub claims: Vec<String>,
    /// The events that create the lot (a Harvest, Transforms).
    pub creations: Vec<Arc<Event>>,
}

/// What [`Lineage::lot_state`] adds to a walk for one lot.
struct Checks {
    anomalies: BTreeSet<Anomaly>,
    consumed: Decimal,
    consumed_unit: Option<Unit>,
}

/// Walks lineage over a [`LineageSource`], memoising every lot it computes.
///
/// What a walk holds is shared (`Arc`) with the [`KeptTrace`] it was answered from or kept as,
/// and copied only when a later walk of the same lineage adds to it.
pub struct Lineage<'a, S: LineageSource> {
    source: &'a S,
    nodes: Arc<HashMap<String, Arc<Node>>>,
    origins: Arc<HashMap<String, OriginInfo>>,
    anomalies: Arc<BTreeSet<Anomaly>>,
    /// Every lot's events judged by who holds it, as asked for.
    custody: Arc<HashMap<String, Arc<LotCustody>>>,
    budget: Budget,
    /// Where and why a walk stopped early.
    stopped: Option<String>,
    /// What the lot being computed recorded about origins ([`KeptLineage`]).
    touched: Vec<OriginTouch>,
    /// The most lots a walk held (computed or in progress) when it looked at its budget.
    peak: usize,
}

fn sorted(mut events: Vec<Arc<Event>>) -> Vec<Arc<Event>> {
    events.sort_by(|a, b| a.id.cmp(&b.id));
    events.dedup_by(|a, b| a.id == b.id);
    events
}

fn round(d: Decimal) -> Decimal {
    d.round_dp(ANSWER_DECIMALS).normalize()
}

/// The quantity a creating event states for `lot`.
pub fn created_quantity<'e>(event: &'e Event, lot: &str) -> Option<&'e Quantity> {
    match &event.kind {
        EventKind::Harvest(h) if h.lot == lot => Some(&h.quantity),
        EventKind::Transform(t) => t.outputs.iter().find(|o| o.lot == lot).map(|o| &o.quantity),
        _ => None,
    }
}

/// An amount in base units, or as stated when that would not fit.
fn base_or_raw(q: &Quantity) -> Decimal {
    q.base_amount().unwrap_or(q.amount)
}

/// Adds `amount` to `map[key]`; false when the sum does not fit a decimal.
fn add_to(map: &mut BTreeMap<String, Decimal>, key: &str, amount: Decimal) -> bool {
    let entry = map.entry(key.to_string()).or_default();
    match entry.checked_add(amount) {
        Some(sum) => {
            *entry = sum;
            true
        }
        None => false,
    }
}

/// Whether both are the very same `Arc`, or both absent.
fn same<T>(a: Option<&Arc<T>>, b: Option<&Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// Adds `amount` to what `map` holds for `key`; false when the sum does not fit a decimal.
fn embody<'k>(map: &mut HashMap<&'k str, Decimal>, key: &'k str, amount: Decimal) -> bool {
    let entry = map.entry(key).or_default();
    entry.checked_add(amount).map(|sum| *entry = sum).is_some()
}

/// Sums quantities in base units when they share a dimension; otherwise sums the
/// raw amounts (the caller flags the mix).
fn total_base(quantities: &[&Quantity]) -> (Decimal, bool) {
    let first = quantities.first().map(|q| q.unit.dimension());
    let same = quantities.iter().all(|q| Some(q.unit.dimension()) == first);
    let total = quantities
        .iter()
        // Validated amounts (at most 10^12 in units of at most 10^6 base units)
        // always fit; a sum that would not is capped rather than panicking.
        .map(|q| if same { base_or_raw(q) } else { q.amount })
        .fold(Decimal::ZERO, |acc, a| {
            acc.checked_add(a).unwrap_or(Decimal::MAX)
        });
    (total, same)
}

impl<'a, S: LineageSource> Lineage<'a, S> {
    pub fn new(source: &'a S) -> Self {
        Lineage {
            source,
            nodes: Default::default(),
            origins: Default::default(),
            anomalies: Default::default(),
            custody: Default::default(),
            budget: Budget::default(),
            stopped: None,
            touched: Vec::new(),
            peak: 0,
        }
    }

    /// What this lineage reads.
    pub fn source(&self) -> &'a S {
        self.source
    }

    /// Limits every walk of this lineage to `budget`.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Whether a walk that has seen `walked` lots must stop before going on from `at`; the
    /// first time, says why.
    fn out_of_budget(&mut self, walked: usize, at: &str) -> bool {
        if self.stopped.is_some() {
            return true;
        }
        let why = if walked >= self.budget.max_lots {
            format!("stopped at lot {at:?}: {walked} lots walked, the limit of one answer")
        } else if self.budget.stop.as_ref().is_some_and(|stop| stop()) {
            format!("stopped at lot {at:?} after {walked} lots: the caller's deadline passed")
        } else {
            return false;
        };
        self.stopped = Some(why);
        true
    }

    /// The events on `lot` judged by who holds it ([`LotCustody`]); what they leave out is
    /// reported among the walk's anomalies.
    pub fn custody_of(&mut self, lot: &str) -> Result<Arc<LotCustody>, S::Error> {
        if let Some(judged) = self.custody.get(lot) {
            return Ok(Arc::clone(judged));
        }
        let judged = self.source.custody(lot)?;
        Arc::make_mut(&mut self.anomalies).extend(judged.anomalies.iter().cloned());
        Arc::make_mut(&mut self.custody).insert(lot.to_string(), Arc::clone(&judged));
        Ok(judged)
    }

    /// Every event on `lot` that counts for it, in log order: those of orgs that did not hold
    /// it are left out ([`LotCustody`]).
    pub fn mentions(&mut self, lot: &str) -> Result<Vec<Arc<Event>>, S::Error> {
        Ok(self.custody_of(lot)?.mentions.clone())
    }

    fn creations(&mut self, lot: &str) -> Result<Vec<Arc<Event>>, S::Error> {
        Ok(self.custody_of(lot)?.creations.clone())
    }

    fn consumptions(&mut self, lot: &str) -> Result<Vec<Arc<Event>>, S::Error> {
        Ok(self.custody_of(lot)?.consumptions.clone())
    }

    fn flag(&mut self, kind: AnomalyKind, lot: &str, event_id: Option<&str>, explanation: String) {
        Arc::make_mut(&mut self.anomalies).insert(Anomaly::new(kind, lot, event_id, explanation));
    }

    /// Computes `root` and everything upstream of it, iteratively (chains can be
    /// thousands of lots deep). A lot is computed after all its inputs; an input
    /// still in progress when its consumer is computed closes a cycle.
    fn walk(&mut self, root: &str) -> Result<(), S::Error> {
        let mut stack: Vec<(String, bool)> = vec![(root.to_string(), false)];
        let mut in_progress: HashSet<String> = HashSet::new();
        let mut pending: HashMap<String, Vec<Arc<Event>>> = HashMap::new();
        while let Some((lot, expanded)) = stack.pop() {
            if self.nodes.contains_key(&lot) {
                continue;
            }
            if expanded {
                let creations = pending.remove(&lot).unwrap_or_default();
                in_progress.remove(&lot);
                let node = match self.reuse(&lot) {
                    Some(node) => node,
                    None => self.compute_and_keep(&lot, creations, &in_progress),
                };
                Arc::make_mut(&mut self.nodes).insert(lot, node);
                continue;
            }
            if in_progress.contains(&lot) {
                continue;
            }
            let creations = sorted(self.creations(&lot)?);
            let mut inputs: BTreeSet<String> = BTreeSet::new();
            // Out of budget: the lot is computed without walking further up (its inputs are
            // left out, and the answer says where it stopped).
            let walked = self.nodes.len() + in_progress.len();
            self.peak = self.peak.max(walked);
            if self.out_of_budget(walked, &lot) {
                in_progress.insert(lot.clone());
                pending.insert(lot.clone(), creations);
                stack.push((lot, true));
                continue;
            }
            for event in &creations {
                let EventKind::Transform(t) = &event.kind else {
                    continue;
                };
                for input in &t.inputs {
                    // An input its transformer did not hold is not walked into.
                    if self.custody_of(&input.lot)?.admits(&event.id) {
                        inputs.insert(input.lot.clone());
                    }
                }
            }
            in_progress.insert(lot.clone());
            pending.insert(lot.clone(), creations);
            stack.push((lot, true));
            for input in inputs.into_iter().rev() {
                if !self.nodes.contains_key(&input) && !in_progress.contains(&input) {
                    stack.push((input, false));
                }
            }
        }
        Ok(())
    }

    /// The lineage of `lot` the source kept, when everything it was computed from is the very
    /// same in this walk; its anomalies and origin facts are recorded as computing it would.
    fn reuse(&mut self, lot: &str) -> Option<Arc<Node>> {
        if !S::KEEPS_LINEAGE {
            return None;
        }
        let kept = self.source.kept_lineage(lot)?;
        if !same(self.custody.get(lot), Some(&kept.custody)) {
            return None;
        }
        for input in &kept.inputs {
            if !same(self.custody.get(&input.lot), input.custody.as_ref()) {
                return None;
            }
            // The same custody counts the same inputs; each counted one must be the same too.
            if input.node.is_some() && !same(self.nodes.get(&input.lot), input.node.as_ref()) {
                return None;
            }
        }
        // An unknown input's unit is the first one it is counted in along the walk.
        for touch in &kept.origins {
            if let OriginTouch::UnknownUsed { lot, unit, preset } = touch {
                let now = self.origins.get(lot).and_then(|i| i.unit.as_ref());
                let holds = match now {
                    Some(now) => now == unit,
                    None => !preset,
                };
                if !holds {
                    return None;
                }
            }
        }
        Arc::make_mut(&mut self.anomalies).extend(kept.anomalies.iter().cloned());
        for touch in &kept.origins {
            match touch {
                OriginTouch::Harvest(lot, info) => {
                    Arc::make_mut(&mut self.origins).insert(lot.clone(), info.clone());
                }
                OriginTouch::Unknown(lot) => {
                    Arc::make_mut(&mut self.origins)
                        .entry(lot.clone())
                        .or_insert(OriginInfo::unknown());
                }
                OriginTouch::UnknownUsed { lot, unit, .. } => {
                    Arc::make_mut(&mut self.origins)
                        .entry(lot.clone())
                        .or_insert(OriginInfo::unknown())
                        .unit
                        .get_or_insert_with(|| unit.clone());
                }
            }
        }
        Some(Arc::clone(&kept.node))
    }

    /// Computes `lot` ([`Lineage::compute`]) and, when the source keeps lineage, keeps it with
    /// what it was computed from ([`Lineage::kept`] says when it may not).
    fn compute_and_keep(
        &mut self,
        lot: &str,
        creations: Vec<Arc<Event>>,
        in_progress: &HashSet<String>,
    ) -> Arc<Node> {
        if !S::KEEPS_LINEAGE {
            return Arc::new(self.compute(lot, creations, in_progress));
        }
        let outer = std::mem::take(&mut self.anomalies);
        self.touched.clear();
        let node = Arc::new(self.compute(lot, creations, in_progress));
        let found = std::mem::replace(&mut self.anomalies, outer);
        let touched = std::mem::take(&mut self.touched);
        if let Some(kept) = self.kept(lot, &node, &found, touched) {
            self.source.keep_lineage(lot, Arc::new(kept));
        }
        Arc::make_mut(&mut self.anomalies).extend(Arc::unwrap_or_clone(found));
        node
    }

    /// `node` with what it was computed from, unless an input it should have counted was not
    /// computed (a cycle) or the walk has stopped (its budget): then it depends on the walk,
    /// not only on the log. After a stop nothing more is kept, even a node whose inputs were all
    /// computed, which keeps the rule simple.
    fn kept(
        &self,
        lot: &str,
        node: &Arc<Node>,
        anomalies: &BTreeSet<Anomaly>,
        origins: Vec<OriginTouch>,
    ) -> Option<KeptLineage> {
        if self.stopped.is_some() {
            return None;
        }
        let custody = Arc::clone(self.custody.get(lot)?);
        let mut inputs: Vec<KeptInput> = Vec::new();
        for event in &node.creations {
            let EventKind::Transform(t) = &event.kind else {
                continue;
            };
            for input in &t.inputs {
                let custody = self.custody.get(&input.lot).cloned();
                let counted = custody.as_ref().is_none_or(|c| c.admits(&event.id));
                let node = if counted {
                    Some(Arc::clone(self.nodes.get(&input.lot)?))
                } else {
                    None
                };
                inputs.push(KeptInput {
                    lot: input.lot.clone(),
                    custody,
                    node,
                });
            }
        }
        Some(KeptLineage {
            node: Arc::clone(node),
            custody,
            inputs,
            anomalies: anomalies.iter().cloned().collect(),
            origins,
        })
    }

    fn compute(
        &mut self,
        lot: &str,
        creations: Vec<Arc<Event>>,
        in_progress: &HashSet<String>,
    ) -> Node {
        if creations.is_empty() {
            Arc::make_mut(&mut self.origins)
                .entry(lot.to_string())
                .or_insert(OriginInfo::unknown());
            if S::KEEPS_LINEAGE {
                self.touched.push(OriginTouch::Unknown(lot.to_string()));
            }
            self.flag(
                AnomalyKind::UnknownOrigin,
                lot,
                None,
                format!("lot {lot:?} is used but no event creates it"),
            );
            return Node {
                known: false,
                unit: None,
                produced: Decimal::ZERO,
                product: None,
                chain: None,
                creator: None,
                created_at: None,
                own_share: Decimal::ONE,
                inputs: Vec::new(),
                linked: Vec::new(),
                custody: CustodyModel::MassBalance,
                claims: BTreeSet::new(),
                has_unknown: true,
                transforms: Vec::new(),
                creations: Vec::new(),
            };
        }
        let first = &creations[0];
        let unit = created_quantity(first, lot)
            .map(|q| q.unit.clone())
            .unwrap_or(Unit::Piece);
        let mut node = Node {
            known: true,
            unit: Some(unit.clone()),
            produced: Decimal::ZERO,
            product: None,
            chain: first.chain.map(|c| c.as_str().to_string()),
            creator: Some(first.org.clone()),
            created_at: creations.iter().map(|e| e.time).min(),
            own_share: Decimal::ZERO,
            inputs: Vec::new(),
            linked: Vec::new(),
            custody: CustodyModel::IdentityPreserved,
            claims: BTreeSet::new(),
            has_unknown: false,
            transforms: Vec::new(),
            creations: creations.clone(),
        };
        // First pass: how much of the lot each creation made.
        let mut made: Vec<(&Arc<Event>, Decimal)> = Vec::new();
        for event in &creations {
            let Some(q) = created_quantity(event, lot) else {
                continue;
            };
            match q.amount_in(&unit) {
                Some(amount) => {
                    node.produced += amount;
                    made.push((event, amount));
                }
                None => self.flag(
                    AnomalyKind::UnitMismatch,
                    lot,
                    Some(&event.id),
                    format!("created quantity {q} does not convert to the lot's unit {unit}"),
                ),
            }
        }
        let mut claims: Option<BTreeSet<String>> = None;
        let mut inputs: BTreeMap<String, Decimal> = BTreeMap::new();
        for (event, amount) in made {
            // This creation's part of every unit of the lot.
            let part = if node.produced.is_zero() {
                Decimal::ZERO
            } else {
                amount / node.produced
            };
            let own_claims = match &event.kind {
                EventKind::Harvest(h) => {
                    node.product.get_or_insert_with(|| h.product.clone());
                    node.own_share += part;
                    let info = OriginInfo {
                        known: true,
                        unit: Some(unit.clone()),
                        org: Some(event.org.clone()),
                        plot: Some(h.plot.clone()),
                        product: Some(h.product.clone()),
                        harvest_time: Some(event.time),
                    };
                    if S::KEEPS_LINEAGE {
                        self.touched
                            .push(OriginTouch::Harvest(lot.to_string(), info.clone()));
                    }
                    Arc::make_mut(&mut self.origins).insert(lot.to_string(), info);
                    node.custody = node
                        .custody
                        .min(h.custody.unwrap_or(CustodyModel::IdentityPreserved));
                    h.claims.iter().cloned().collect()
                }
                EventKind::Transform(t) => {
                    node.transforms.push(Arc::clone(event));
                    if let Some(out) = t.outputs.iter().find(|o| o.lot == lot) {
                        node.product.get_or_insert_with(|| out.product.clone());
                    }
                    let (custody, own_claims) =
                        self.add_transform(lot, event, t, &mut node, &mut inputs, in_progress);
                    node.custody = node.custody.min(custody);
                    own_claims
                }
                _ => BTreeSet::new(),
            };
            claims = Some(match claims {
                None => own_claims,
                Some(c) => c.intersection(&own_claims).cloned().collect(),
            });
        }
        node.claims = claims.unwrap_or_default();
        node.inputs = inputs.into_iter().collect();
        node.linked.sort();
        node.linked.dedup();
        // Mixing alone lowers custody to segregation at most: mass balance comes
        // from a declaration (or an unknown input, reported as such), so the
        // anomaly names the event that declares it.
        if node.chain.as_deref() == Some("coffee")
            && let Some(by) = creations.iter().find(|e| declares_mass_balance(e, lot))
        {
            Arc::make_mut(&mut self.anomalies).insert(
                Anomaly::new(
                    AnomalyKind::CoffeeMassBalance,
                    lot,
                    Some(&by.id),
                    format!("coffee lot {lot:?} is under mass balance; Fairtrade coffee must be physically traceable (segregated or identity preserved)"),
                )
                .org(&by.org),
            );
        }
        node
    }

    /// Adds the inputs of transform `t` (a creation of `lot`) to `inputs`, as units
    /// of each input per unit of the lot; returns the custody model and claims it gives the lot.
    #[allow(clippy::too_many_arguments)]
    fn add_transform(
        &mut self,
        lot: &str,
        event: &Event,
        t: &Transform,
        node: &mut Node,
        inputs: &mut BTreeMap<String, Decimal>,
        in_progress: &HashSet<String>,
    ) -> (CustodyModel, BTreeSet<String>) {
        let outputs: Vec<&Quantity> = t.outputs.iter().map(|o| &o.quantity).collect();
        let (total_out, same_dim) = total_base(&outputs);
        if !same_dim {
            self.flag(
                AnomalyKind::MixedOutputUnits,
                lot,
                Some(&event.id),
                "outputs are in units that do not convert to each other; inputs are split by raw amounts".into(),
            );
        }
        let declared = t.outputs.iter().find(|o| o.lot == lot);
        let this_out = declared
            .map(|o| {
                if same_dim {
                    base_or_raw(&o.quantity)
                } else {
                    o.quantity.amount
                }
            })
            .unwrap_or_default();
        let mut custody = declared
            .and_then(|o| o.custody)
            .unwrap_or(CustodyModel::IdentityPreserved);
        let distinct_inputs: BTreeSet<&str> = t.inputs.iter().map(|i| i.lot.as_str()).collect();
        if distinct_inputs.len() > 1 {
            custody = custody.min(CustodyModel::Segregated);
        }
        // This transform's output for the lot embodies `this_out / total_out` of
        // every consumed input; spread over all the lot's units (it may have other
        // creations too), that is `fraction / produced` of each input per unit.
        let per_unit = if total_out.is_zero() || node.produced.is_zero() {
            Decimal::ZERO
        } else {
            (this_out / total_out)
                .checked_div(node.produced)
                .unwrap_or_default()
        };
        let mut input_claims: Vec<BTreeSet<String>> = Vec::new();
        for input in &t.inputs {
            // The transformer did not hold this input: its lineage is not this lot's, and the
            // lot has an input of unknown origin (the anomaly names both orgs).
            if self
                .custody
                .get(&input.lot)
                .is_some_and(|c| !c.admits(&event.id))
            {
                node.has_unknown = true;
                continue;
            }
            let Some(child) = self.nodes.get(&input.lot) else {
                if in_progress.contains(&input.lot) {
                    self.flag(
                        AnomalyKind::LineageCycle,
                        lot,
                        Some(&event.id),
                        format!(
                            "lot {:?} is upstream of itself through {:?}",
                            lot, input.lot
                        ),
                    );
                }
                continue;
            };
            let child = Arc::clone(child);
            node.linked.push(input.lot.clone());
            custody = custody.min(child.custody);
            input_claims.push(child.claims.clone());
            node.has_unknown |= child.has_unknown;
            let consumed = if child.known {
                let child_unit = child.unit.clone().unwrap_or(Unit::Piece);
                match input.quantity.amount_in(&child_unit) {
                    Some(a) => a,
                    None => {
                        self.flag(
                            AnomalyKind::UnitMismatch,
                            &input.lot,
                            Some(&event.id),
                            format!(
                                "consumed quantity {} does not convert to the lot's unit {child_unit}",
                                input.quantity
                            ),
                        );
                        continue;
                    }
                }
            } else {
                // An unknown lot is its own origin, counted in the first unit it is used in.
                let info = Arc::make_mut(&mut self.origins)
                    .entry(input.lot.clone())
                    .or_insert(OriginInfo::unknown());
                let preset = info.unit.is_some();
                let origin_unit = info
                    .unit
                    .get_or_insert_with(|| input.quantity.unit.clone())
                    .clone();
                if S::KEEPS_LINEAGE {
                    self.touched.push(OriginTouch::UnknownUsed {
                        lot: input.lot.clone(),
                        unit: origin_unit.clone(),
                        preset,
                    });
                }
                input
                    .quantity
                    .amount_in(&origin_unit)
                    .unwrap_or(input.quantity.amount)
            };
            if !consumed
                .checked_mul(per_unit)
                .is_some_and(|part| add_to(inputs, &input.lot, part))
            {
                self.flag(
                    AnomalyKind::ArithmeticOverflow,
                    &input.lot,
                    Some(&event.id),
                    format!(
                        "the quantity of {:?} in {lot:?} exceeds what lotline can count exactly",
                        input.lot
                    ),
                );
            }
        }
        let declared_claims: BTreeSet<String> = declared
            .map(|o| o.claims.iter().cloned().collect())
            .unwrap_or_default();
        let claims: BTreeSet<String> = if custody == CustodyModel::MassBalance {
            let any: BTreeSet<String> = input_claims.iter().flatten().cloned().collect();
            declared_claims.intersection(&any).cloned().collect()
        } else {
            input_claims.iter().fold(declared_claims.clone(), |acc, c| {
                acc.intersection(c).cloned().collect()
            })
        };
        if let Some(stated) = declared.and_then(|o| o.custody)
            && stated > custody
        {
            Arc::make_mut(&mut self.anomalies).insert(
                Anomaly::new(
                    AnomalyKind::CustodyUpgrade,
                    lot,
                    Some(&event.id),
                    format!(
                        "lot {lot:?} is declared {} but its inputs allow at most {}: mixing lowers the custody model and nothing raises it",
                        custody_name(stated),
                        custody_name(custody)
                    ),
                )
                .org(&event.org)
                .figure("declared", custody_name(stated))
                .figure("allowed", custody_name(custody)),
            );
        }
        let dropped: Vec<&String> = declared_claims.difference(&claims).collect();
        if !dropped.is_empty() {
            let names = dropped
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let why = if custody == CustodyModel::MassBalance {
                "no input carries it"
            } else {
                "not every input carries it, and under identity preserved or segregation an uncertified input removes the claim"
            };
            Arc::make_mut(&mut self.anomalies).insert(
                Anomaly::new(
                    AnomalyKind::UnsupportedClaim,
                    lot,
                    Some(&event.id),
                    format!("lot {lot:?} claims {names} but {why}"),
                )
                .org(&event.org)
                .figure("claims", names)
                .figure("custody", custody_name(custody)),
            );
        }
        (custody, claims)
    }

    /// The lots upstream of `root` (itself included), each after every lot that
    /// consumes it: the order in which embodied amounts flow from root to origins.
    fn upstream_order<'s>(&'s self, root: &'s str) -> Vec<&'s str> {
        let mut post: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        seen.insert(root);
        while let Some((lot, next)) = stack.pop() {
            let inputs = self
                .nodes
                .get(lot)
                .map(|n| n.linked.as_slice())
                .unwrap_or_default();
            if let Some(input) = inputs.get(next) {
                stack.push((lot, next + 1));
                if seen.insert(input.as_str()) {
                    stack.push((input.as_str(), 0));
                }
            } else {
                post.push(lot);
            }
        }
        post.reverse();
        post
    }

    /// Every lot upstream of `lot`, itself first, then each after the lots that
    /// consume it.
    pub fn upstream(&mut self, lot: &str) -> Result<Vec<UpstreamLot>, S::Error> {
        self.walk(lot)?;
        Ok(self
            .upstream_order(lot)
            .into_iter()
            .filter_map(|l| self.computed(l))
            .collect())
    }

    /// What lineage knows of one lot (without the lots upstream of it).
    pub fn lot_facts(&mut self, lot: &str) -> Result<UpstreamLot, S::Error> {
        self.walk(lot)?;
        Ok(self.computed(lot).expect("walk computes the root"))
    }

    /// A computed lot, as callers see it.
    fn computed(&self, lot: &str) -> Option<UpstreamLot> {
        let n = self.nodes.get(lot)?;
        Some(UpstreamLot {
            lot: lot.to_string(),
            known: n.known,
            product: n.product.clone(),
            chain: n.chain.clone(),
            creator: n.creator.clone(),
            created_at: n.created_at,
            custody: n.custody,
            claims: n.claims.iter().cloned().collect(),
            creations: n.creations.clone(),
        })
    }

    /// Every anomaly found while walking so far.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        self.anomalies.iter().cloned().collect()
    }

    /// Where `lot` came from: every origin lot with its content and share.
    ///
    /// Walks the lineage once bottom-up (units of each input per unit of each lot),
    /// then pushes the lot's produced quantity down to the origins in one pass, so
    /// the cost is linear in the lots and edges walked.
    ///
    /// A walk from nothing (the first question of this lineage) over a source that keeps
    /// lineage answers from the source's [`KeptTrace`] where one holds, and keeps its own
    /// answer for later questions.
    pub fn trace_back(&mut self, lot: &str) -> Result<TraceBack, S::Error> {
        if !S::KEEPS_LINEAGE || !self.nothing_walked() {
            return self.compute_trace_back(lot);
        }
        if let Some(answer) = self.reuse_trace(lot)? {
            return Ok(answer);
        }
        let answer = self.compute_trace_back(lot)?;
        if self.stopped.is_none() {
            let kept = KeptTrace {
                answer: answer.clone(),
                nodes: Arc::clone(&self.nodes),
                custody: Arc::clone(&self.custody),
                origins: Arc::clone(&self.origins),
                anomalies: Arc::clone(&self.anomalies),
                peak: self.peak,
            };
            self.source.keep_trace(lot, Arc::new(kept));
        }
        Ok(answer)
    }

    /// Whether nothing has been walked yet: only then does a walk depend on the source alone.
    fn nothing_walked(&self) -> bool {
        self.nodes.is_empty()
            && self.custody.is_empty()
            && self.origins.is_empty()
            && self.anomalies.is_empty()
            && self.stopped.is_none()
    }

    /// The source's kept trace-back of `lot`, when it holds in this view and this walk's
    /// budget would not have stopped it; this lineage then holds what that walk ended with.
    fn reuse_trace(&mut self, lot: &str) -> Result<Option<TraceBack>, S::Error> {
        let Some((kept, since)) = self.source.kept_trace(lot) else {
            return Ok(None);
        };
        // The walk stops once it holds `max_lots` lots; the kept one never held that many.
        if kept.peak >= self.budget.max_lots {
            return Ok(None);
        }
        if since == KeptSince::AnotherView {
            for (judged, custody) in kept.custody.iter() {
                if !Arc::ptr_eq(&self.source.custody(judged)?, custody) {
                    return Ok(None);
                }
            }
            // It holds in this view too: later questions here need not judge again.
            self.source.keep_trace(lot, Arc::clone(&kept));
        }
        self.nodes = Arc::clone(&kept.nodes);
        self.custody = Arc::clone(&kept.custody);
        self.origins = Arc::clone(&kept.origins);
        self.anomalies = Arc::clone(&kept.anomalies);
        self.peak = kept.peak;
        Ok(Some(kept.answer.clone()))
    }

    fn compute_trace_back(&mut self, lot: &str) -> Result<TraceBack, S::Error> {
        self.walk(lot)?;
        let node = self
            .nodes
            .get(lot)
            .cloned()
            .expect("walk computes the root");
        let mut content: BTreeMap<String, Decimal> = BTreeMap::new();
        if node.known {
            // Keyed by the walk's own names: a lot's embodied amount is looked up once per lot.
            let mut embodied: HashMap<&str, Decimal> = HashMap::new();
            embodied.insert(lot, node.produced);
            let mut overflow: Vec<String> = Vec::new();
            for current in self.upstream_order(lot) {
                let amount = embodied.get(current).copied().unwrap_or_default();
                let Some(n) = self.nodes.get(current) else {
                    continue;
                };
                if amount.is_zero() {
                    continue;
                }
                if !n.known {
                    if !add_to(&mut content, current, amount) {
                        overflow.push(current.to_string());
                    }
                    continue;
                }
                if !n.own_share.is_zero()
                    && !amount
                        .checked_mul(n.own_share)
                        .is_some_and(|part| add_to(&mut content, current, part))
                {
                    overflow.push(current.to_string());
                }
                for (input, per_unit) in &n.inputs {
                    if !amount
                        .checked_mul(*per_unit)
                        .is_some_and(|part| embody(&mut embodied, input.as_str(), part))
                    {
                        overflow.push(input.clone());
                    }
                }
            }
            for lot_over in overflow {
                self.flag(
                    AnomalyKind::ArithmeticOverflow,
                    &lot_over,
                    None,
                    format!("the quantities upstream of {lot:?} through {lot_over:?} exceed what lotline can count exactly; that part is left out"),
                );
            }
        }
        let mut origins = Vec::new();
        if node.known {
            let unit_of = |o: &str| {
                self.origins
                    .get(o)
                    .and_then(|i| i.unit.clone())
                    .unwrap_or(Unit::Piece)
            };
            let dims: BTreeSet<_> = content.keys().map(|o| unit_of(o).dimension()).collect();
            // Shares compare origins in base units when they measure the same thing.
            let base: Option<Vec<Decimal>> = (dims.len() <= 1)
                .then(|| {
                    content
                        .iter()
                        .map(|(o, a)| Quantity::new(*a, unit_of(o)).base_amount())
                        .collect::<Option<Vec<_>>>()
                })
                .flatten();
            let weights: Vec<Decimal> = base.unwrap_or_else(|| content.values().copied().collect());
            let total = weights
                .iter()
                .try_fold(Decimal::ZERO, |acc, w| acc.checked_add(*w));
            let mut weights = weights.into_iter();
            for (origin, amount) in &content {
                let info = self.origins.get(origin);
                let weight = weights.next().unwrap_or_default();
                let share = match total {
                    Some(t) if !t.is_zero() => weight / t,
                    _ => Decimal::ZERO,
                };
                origins.push(Origin {
                    lot: origin.clone(),
                    known: info.is_some_and(|i| i.known),
                    org: info.and_then(|i| i.org.clone()),
                    plot: info.and_then(|i| i.plot.clone()),
                    product: info.and_then(|i| i.product.clone()),
                    harvest_time: info.and_then(|i| i.harvest_time),
                    content: Quantity::new(round(*amount), unit_of(origin)),
                    share: round(share),
                });
            }
        } else {
            origins.push(Origin {
                lot: lot.to_string(),
                known: false,
                org: None,
                plot: None,
                product: None,
                harvest_time: None,
                content: Quantity::zero(Unit::Other(String::new())),
                share: Decimal::ONE,
            });
        }
        Ok(TraceBack {
            lot: lot.to_string(),
            produced: node
                .unit
                .clone()
                .map(|u| Quantity::new(round(node.produced), u)),
            origins,
            lots_walked: self.nodes.len(),
            anomalies: self.anomalies.iter().cloned().collect(),
            partial: self.stopped.clone(),
        })
    }

    /// The holder of `lot` now: the latest counted Ship's destination or Receive's org,
    /// by event time then event id; otherwise its creator.
    fn holder(&mut self, lot: &str, creator: Option<&str>) -> Result<Option<String>, S::Error> {
        let mut moves: Vec<Arc<Event>> = self.custody_of(lot)?.moves.clone();
        moves.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(match moves.last().map(|e| (&e.kind, &e.org)) {
            Some((EventKind::Ship(m), _)) => Some(m.counterparty.clone()),
            Some((EventKind::Receive(_), org)) => Some(org.clone()),
            _ => creator.map(str::to_string),
        })
    }

    /// The anomalies that concern `lot` itself (over-consumption, events dated
    /// before it, yields of the transforms that made it, units), without those
    /// found upstream: with [`Lineage::anomalies`] at the end of a walk over many
    /// lots, every lot's anomalies once.
    pub fn lot_checks(&mut self, lot: &str) -> Result<Vec<Anomaly>, S::Error> {
        self.walk(lot)?;
        let node = self
            .nodes
            .get(lot)
            .cloned()
            .expect("walk computes the root");
        Ok(self.checks(lot, &node)?.anomalies.into_iter().collect())
    }

    fn checks(&mut self, lot: &str, node: &Node) -> Result<Checks, S::Error> {
        let mut anomalies = BTreeSet::new();
        // In time order (then id), so over-consumption is charged to the transform
        // that took the lot past what exists.
        let mut consumptions = sorted(self.consumptions(lot)?);
        consumptions.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let mentions = sorted(self.mentions(lot)?);
        let unit = node.unit.clone();
        let mut consumed = Decimal::ZERO;
        let mut consumed_unit = unit.clone();
        for event in &consumptions {
            let EventKind::Transform(t) = &event.kind else {
                continue;
            };
            for input in t.inputs.iter().filter(|i| i.lot == lot) {
                let target = consumed_unit
                    .get_or_insert_with(|| input.quantity.unit.clone())
                    .clone();
                match input.quantity.amount_in(&target) {
                    Some(a) => consumed = consumed.saturating_add(a),
                    None => {
                        anomalies.insert(
                            Anomaly::new(
                                AnomalyKind::UnitMismatch,
                                lot,
                                Some(&event.id),
                                format!(
                                    "consumed quantity {} does not convert to the lot's unit {target}",
                                    input.quantity
                                ),
                            )
                            .org(&event.org),
                        );
                    }
                }
            }
        }
        if node.known && consumed > node.produced {
            let u = unit.clone().unwrap_or(Unit::Piece);
            let mut anomaly = Anomaly::new(
                AnomalyKind::OverConsumption,
                lot,
                None,
                format!(
                    "{} {u} consumed but only {} {u} produced",
                    round(consumed),
                    round(node.produced)
                ),
            )
            .figure("consumed", round(consumed))
            .figure("produced", round(node.produced))
            .figure("unit", &u);
            let mut running = Decimal::ZERO;
            for event in &consumptions {
                let EventKind::Transform(t) = &event.kind else {
                    continue;
                };
                for input in t.inputs.iter().filter(|i| i.lot == lot) {
                    running =
                        running.saturating_add(input.quantity.amount_in(&u).unwrap_or_default());
                }
                if running > node.produced {
                    anomaly.event_id = Some(event.id.clone());
                    anomaly.org = Some(event.org.clone());
                    break;
                }
            }
            anomalies.insert(anomaly);
        }
        if let Some(created) = node.created_at {
            for event in &mentions {
                let creates = created_quantity(event, lot).is_some();
                if !creates && event.time < created {
                    anomalies.insert(
                        Anomaly::new(
                            AnomalyKind::DatedBeforeCreation,
                            lot,
                            Some(&event.id),
                            format!(
                                "event dated {} but the lot was created {}",
                                event.time.to_rfc3339(),
                                created.to_rfc3339()
                            ),
                        )
                        .org(&event.org),
                    );
                }
            }
        }
        for event in &node.transforms {
            if let Some(a) = yield_anomaly(lot, event) {
                anomalies.insert(a);
            }
        }
        Ok(Checks {
            anomalies,
            consumed,
            consumed_unit,
        })
    }

    /// A lot's state: quantities, holder, custody, origins and anomalies.
    pub fn lot_state(&mut self, lot: &str) -> Result<LotState, S::Error> {
        let trace = self.trace_back(lot)?;
        let node = self
            .nodes
            .get(lot)
            .cloned()
            .expect("walk computes the root");
        let checks = self.checks(lot, &node)?;
        let mut anomalies: BTreeSet<Anomaly> = trace.anomalies.into_iter().collect();
        anomalies.extend(checks.anomalies);
        let (consumed, consumed_unit, unit) =
            (checks.consumed, checks.consumed_unit, node.unit.clone());
        let holder = self.holder(lot, node.creator.as_deref())?;
        let produced = unit.clone().map(|u| Quantity::new(round(node.produced), u));
        let consumed_q = consumed_unit
            .clone()
            .map(|u| Quantity::new(round(consumed), u));
        let remaining = unit.map(|u| Quantity::new(round(node.produced - consumed), u));
        Ok(LotState {
            lot: lot.to_string(),
            known: node.known,
            product: node.product.clone(),
            chain: node.chain.clone(),
            creator: node.creator.clone(),
            holder,
            produced,
            consumed: consumed_q,
            remaining,
            custody: node.custody,
            claims: node.claims.iter().cloned().collect(),
            origin_count: trace.origins.len(),
            has_unknown_origin: node.has_unknown,
            created_at: node.created_at,
            anomalies: anomalies.into_iter().collect(),
        })
    }

    /// What `lot` went into (recall): every downstream lot, breadth first.
    pub fn trace_forward(&mut self, lot: &str) -> Result<TraceForward, S::Error> {
        let mut seen: HashSet<String> = HashSet::from_iter([lot.to_string()]);
        let mut queue: VecDeque<(String, u32)> = VecDeque::from([(lot.to_string(), 0)]);
        let mut descendants = Vec::new();
        while let Some((current, depth)) = queue.pop_front() {
            if self.out_of_budget(seen.len(), &current) {
                break;
            }
            for event in sorted(self.consumptions(&current)?) {
                let EventKind::Transform(t) = &event.kind else {
                    continue;
                };
                for out in &t.outputs {
                    // An output whose name another org created first is not this lot's.
                    if !self.custody_of(&out.lot)?.admits(&event.id)
                        || !seen.insert(out.lot.clone())
                    {
                        continue;
                    }
                    let creations = sorted(self.creations(&out.lot)?);
                    let unit = creations
                        .first()
                        .and_then(|e| created_quantity(e, &out.lot))
                        .map(|q| q.unit.clone())
                        .unwrap_or_else(|| out.quantity.unit.clone());
                    let produced: Decimal = creations
                        .iter()
                        .filter_map(|e| created_quantity(e, &out.lot))
                        .filter_map(|q| q.amount_in(&unit))
                        .sum();
                    let creator = creations.first().map(|e| e.org.clone());
                    let holder = self.holder(&out.lot, creator.as_deref())?;
                    descendants.push(Descendant {
                        lot: out.lot.clone(),
                        product: out.product.clone(),
                        holder,
                        quantity: Quantity::new(round(produced), unit),
                        depth: depth + 1,
                        parent: current.clone(),
                        via_event_id: event.id.clone(),
                    });
                    queue.push_back((out.lot.clone(), depth + 1));
                }
            }
        }
        descendants.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.lot.cmp(&b.lot)));
        Ok(TraceForward {
            lot: lot.to_string(),
            descendants,
            partial: self.stopped.clone(),
        })
    }
}

/// Flags a transform whose observed yield (total output / total input) is above
/// the conversion ratio it states.
fn yield_anomaly(lot: &str, event: &Event) -> Option<Anomaly> {
    let EventKind::Transform(t) = &event.kind else {
        return None;
    };
    let claimed = t.conversion_ratio?;
    let observed = observed_yield(t, |_| true)?;
    (observed > claimed).then(|| {
        Anomaly::new(
            AnomalyKind::YieldAboveRatio,
            lot,
            Some(&event.id),
            format!(
                "{} process yielded {} of its input, above the stated conversion ratio {}",
                t.process,
                observed.round_dp(4).normalize(),
                claimed.normalize()
            ),
        )
        .org(&event.org)
        .figure("process", &t.process)
        .figure("observed_yield", observed.round_dp(4).normalize())
        .figure("stated_ratio", claimed.normalize())
    })
}

/// A transform's yield: the outputs `counted` keeps over all inputs, in base
/// units. `None` when inputs and outputs do not measure the same thing or
/// nothing was put in.
pub fn observed_yield(t: &Transform, counted: impl Fn(&OutputLot) -> bool) -> Option<Decimal> {
    let inputs: Vec<&Quantity> = t.inputs.iter().map(|i| &i.quantity).collect();
    let outputs: Vec<&Quantity> = t
        .outputs
        .iter()
        .filter(|o| counted(o))
        .map(|o| &o.quantity)
        .collect();
    let (total_in, same_in) = total_base(&inputs);
    let (total_out, same_out) = total_base(&outputs);
    let comparable = same_in
        && same_out
        && inputs.first().map(|q| q.unit.dimension())
            == outputs.first().map(|q| q.unit.dimension());
    if !comparable || total_in.is_zero() {
        return None;
    }
    total_out.checked_div(total_in)
}

#[cfg(test)]
mod tests;
