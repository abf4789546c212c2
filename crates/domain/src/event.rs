//! The event model (DESIGN §2): every fact is one immutable event; master data
//! (organisations, sites, plots, product classes) are events in the same log.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;

use crate::quantity::Quantity;

/// The supply chain an event belongs to. It is also a NATS subject token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chain {
    Cocoa,
    Coffee,
    Textile,
}

impl Chain {
    pub const ALL: [Chain; 3] = [Chain::Cocoa, Chain::Coffee, Chain::Textile];

    pub fn parse(s: &str) -> Option<Chain> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cocoa" => Some(Chain::Cocoa),
            "coffee" => Some(Chain::Coffee),
            "textile" | "cotton" => Some(Chain::Textile),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Cocoa => "cocoa",
            Chain::Coffee => "coffee",
            Chain::Textile => "textile",
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fairtrade custody models, ordered weakest first: mixing can only lower a lot's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustodyModel {
    MassBalance,
    Segregated,
    IdentityPreserved,
}

impl CustodyModel {
    /// The model as people name it.
    pub fn as_str(self) -> &'static str {
        match self {
            CustodyModel::IdentityPreserved => "identity preserved",
            CustodyModel::Segregated => "segregated",
            CustodyModel::MassBalance => "mass balance",
        }
    }
}

/// The role an organisation plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgRole {
    Farm,
    Cooperative,
    Processor,
    Trader,
    Manufacturer,
    Brand,
    Retailer,
    Certifier,
}

/// A lot and an amount of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotQuantity {
    /// Opaque lot identifier, kept verbatim.
    pub lot: String,
    pub quantity: Quantity,
}

/// A new lot created at a farm plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Harvest {
    pub lot: String,
    pub plot: String,
    pub product: String,
    pub quantity: Quantity,
    /// First and last day of the harvest, when known.
    pub harvest_start: Option<NaiveDate>,
    pub harvest_end: Option<NaiveDate>,
    /// Declared custody model; `None` means identity preserved (a single farm's lot).
    pub custody: Option<CustodyModel>,
    pub claims: Vec<String>,
}

/// An output of a transformation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLot {
    pub lot: String,
    pub product: String,
    pub quantity: Quantity,
    pub custody: Option<CustodyModel>,
    pub claims: Vec<String>,
}

/// Inputs (lot, quantity consumed) become outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub inputs: Vec<LotQuantity>,
    pub outputs: Vec<OutputLot>,
    pub process: String,
    /// Claimed total output / total input.
    pub conversion_ratio: Option<Decimal>,
}

/// A business document accompanying a movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessDocument {
    pub kind: String,
    pub id: String,
}

/// Ship (custody leaves for `counterparty`) or Receive (custody arrives from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub lots: Vec<LotQuantity>,
    pub counterparty: String,
    pub documents: Vec<BusinessDocument>,
}

/// A certificate or audit result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certify {
    pub standard: String,
    pub certificate_id: String,
    pub products: Vec<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub outcome: String,
    pub lot: Option<String>,
    pub subject_org: Option<String>,
}

/// A price and premium paid for lots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pay {
    pub lots: Vec<LotQuantity>,
    pub payee_org: String,
    pub currency: String,
    pub price_per_unit: Decimal,
    pub price_unit: String,
    pub premium_per_unit: Option<Decimal>,
    pub contract_date: Option<NaiveDate>,
}

/// Declares an earlier event erroneous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correct {
    pub corrected_event_id: String,
    pub reason: String,
    pub corrective_event_ids: Vec<String>,
}

/// An observation that moves no quantity and changes no custody (an EPCIS event that is not a
/// harvest, transformation, shipment, receipt or payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observe {
    /// The EPCIS event type (ObjectEvent, AggregationEvent, ...).
    pub event_type: String,
    /// ADD, OBSERVE or DELETE; empty when the event has none.
    pub action: String,
    pub biz_step: String,
    pub disposition: String,
    /// Lots with quantities.
    pub lots: Vec<LotQuantity>,
    /// Identifiers without quantities.
    pub epcs: Vec<String>,
    pub parent: Option<String>,
}

/// Registers the event's org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOrg {
    pub name: String,
    pub role: OrgRole,
    pub country: String,
    pub gln: Option<String>,
    pub member_of: Option<String>,
    /// The id other systems know the org by (an EPCIS party id that is not a PGLN), if any.
    pub party: Option<String>,
}

/// Registers a site of the event's org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSite {
    pub site: String,
    pub name: String,
    pub gln: Option<String>,
    pub country: String,
}

/// Registers a farm plot of the event's org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPlot {
    pub plot: String,
    /// GeoJSON geometry text, validated and kept verbatim.
    pub geometry: String,
    pub area_ha: Option<Decimal>,
    pub country: String,
}

/// Registers a product class (an EPCIS `EPCClass`: a GTIN, or a lot class) with the product
/// name lotline's rules use; the event's `chain` is the chain of lots of the class. A later
/// document that only names the class takes its product and chain from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterClass {
    /// The class id as lotline keeps it (a GTIN's canonical Digital Link, or any id).
    pub class: String,
    /// lotline's product name for lots of the class (`cocoa_beans`, `green_coffee`, ...).
    pub product: Option<String>,
    /// The class's other master-data attributes (CBV `cbvmda:` and others), by attribute id,
    /// each value as JSON text; exported back as written.
    pub attributes: BTreeMap<String, String>,
}

/// Revokes an access token before it expires: every node refuses the token from the position of
/// this event in the log on (parties and access, DESIGN §5a). Only an admin records one; its
/// event id is [`RevokeToken::event_id`] of the token id, so a token is revoked at most once and
/// a node checks a token with one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeToken {
    /// The token's id (its `jti`).
    pub token_id: String,
    pub reason: String,
}

impl RevokeToken {
    /// The event id prefix reserved for revocations.
    pub const ID_PREFIX: &'static str = "lotline:revoke:";

    /// The id of the event that revokes `token_id`.
    pub fn event_id(token_id: &str) -> String {
        format!("{}{token_id}", Self::ID_PREFIX)
    }
}

/// A co-operative confirms that an org (a farm) is its member from `valid_from` through
/// `valid_to` (shared names have owners, DESIGN §5a): a farm's `member_of` counts only on
/// dates its co-op confirms, so neither side alone can put a farm under a co-op's group
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmMember {
    pub member: String,
    /// First day; `None`: the event's date.
    pub valid_from: Option<NaiveDate>,
    /// Last day; `None`: open.
    pub valid_to: Option<NaiveDate>,
}

/// An auditor's review of an anomaly ([`crate::Anomaly::id`]): the only kind of event an auditor
/// writes. The listing shows each anomaly's reviews and takes its status from the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The anomaly's id.
    pub anomaly: String,
    pub verdict: Verdict,
    pub note: String,
}

/// What an auditor concluded about an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// A real problem, known and being dealt with.
    Acknowledged,
    /// Not a problem; the note says why.
    Disputed,
}

impl Verdict {
    pub const ALL: [Verdict; 2] = [Verdict::Acknowledged, Verdict::Disputed];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Acknowledged => "acknowledged",
            Verdict::Disputed => "disputed",
        }
    }

    /// Reads `acknowledged` (or `ack`, `acknowledge`) and `disputed` (or `dispute`).
    pub fn parse(s: &str) -> Option<Verdict> {
        match s.trim().to_ascii_lowercase().as_str() {
            "acknowledged" | "acknowledge" | "ack" => Some(Verdict::Acknowledged),
            "disputed" | "dispute" => Some(Verdict::Disputed),
            _ => None,
        }
    }
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Harvest(Harvest),
    Transform(Transform),
    Ship(Movement),
    Receive(Movement),
    Certify(Certify),
    Pay(Pay),
    Correct(Correct),
    Observe(Observe),
    RegisterOrg(RegisterOrg),
    RegisterSite(RegisterSite),
    RegisterPlot(RegisterPlot),
    RegisterClass(RegisterClass),
    RevokeToken(RevokeToken),
    ConfirmMember(ConfirmMember),
    Review(Review),
}

/// The name of an event kind, as used in filters and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindName {
    Harvest,
    Transform,
    Ship,
    Receive,
    Certify,
    Pay,
    Correct,
    Observe,
    RegisterOrg,
    RegisterSite,
    RegisterPlot,
    RegisterClass,
    RevokeToken,
    ConfirmMember,
    Review,
}

impl KindName {
    pub const ALL: [KindName; 15] = [
        KindName::Harvest,
        KindName::Transform,
        KindName::Ship,
        KindName::Receive,
        KindName::Certify,
        KindName::Pay,
        KindName::Correct,
        KindName::Observe,
        KindName::RegisterOrg,
        KindName::RegisterSite,
        KindName::RegisterPlot,
        KindName::RegisterClass,
        KindName::RevokeToken,
        KindName::ConfirmMember,
        KindName::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KindName::Harvest => "harvest",
            KindName::Transform => "transform",
            KindName::Ship => "ship",
            KindName::Receive => "receive",
            KindName::Certify => "certify",
            KindName::Pay => "pay",
            KindName::Correct => "correct",
            KindName::Observe => "observe",
            KindName::RegisterOrg => "register_org",
            KindName::RegisterSite => "register_site",
            KindName::RegisterPlot => "register_plot",
            KindName::RegisterClass => "register_class",
            KindName::RevokeToken => "revoke_token",
            KindName::ConfirmMember => "confirm_member",
            KindName::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<KindName> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        KindName::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Master data and revocations: what a node needs to judge other events (who is
    /// registered, where, which plots, certificates, memberships, revoked tokens), as opposed
    /// to lot events and the log's own notes (corrections, observations, reviews). Published
    /// on the `none` chain subject whatever chain it names, so that a co-op edge can source
    /// exactly these from the hub (`lotline_ingest::edge`).
    pub fn is_master_data(self) -> bool {
        matches!(
            self,
            KindName::Certify
                | KindName::RegisterOrg
                | KindName::RegisterSite
                | KindName::RegisterPlot
                | KindName::RegisterClass
                | KindName::RevokeToken
                | KindName::ConfirmMember
        )
    }
}

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One immutable fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Client-chosen, stable across re-sends: the idempotency key.
    pub id: String,
    /// When it happened, with the sender's UTC offset.
    pub time: DateTime<FixedOffset>,
    /// The org that records the event.
    pub org: String,
    /// Required for lot events; optional for master data and certificates.
    pub chain: Option<Chain>,
    pub site: Option<String>,
    /// Fields lotline does not model, kept verbatim.
    pub extensions: BTreeMap<String, String>,
    pub kind: EventKind,
}

/// How an event mentions a lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LotRole {
    /// The event creates the lot (Harvest, Transform output).
    Created,
    /// A Transform consumes some of the lot.
    Consumed,
    /// Ship, Receive, Pay, Observe or a lot certificate mention it.
    Mentioned,
}

impl Event {
    pub fn kind_name(&self) -> KindName {
        match &self.kind {
            EventKind::Harvest(_) => KindName::Harvest,
            EventKind::Transform(_) => KindName::Transform,
            EventKind::Ship(_) => KindName::Ship,
            EventKind::Receive(_) => KindName::Receive,
            EventKind::Certify(_) => KindName::Certify,
            EventKind::Pay(_) => KindName::Pay,
            EventKind::Correct(_) => KindName::Correct,
            EventKind::Observe(_) => KindName::Observe,
            EventKind::RegisterOrg(_) => KindName::RegisterOrg,
            EventKind::RegisterSite(_) => KindName::RegisterSite,
            EventKind::RegisterPlot(_) => KindName::RegisterPlot,
            EventKind::RegisterClass(_) => KindName::RegisterClass,
            EventKind::RevokeToken(_) => KindName::RevokeToken,
            EventKind::ConfirmMember(_) => KindName::ConfirmMember,
            EventKind::Review(_) => KindName::Review,
        }
    }

    /// Every lot the event mentions, with how. A lot may appear more than once.
    pub fn lots(&self) -> Vec<(&str, LotRole)> {
        let mut out = Vec::new();
        self.any_lot(|lot, role| {
            out.push((lot, role));
            false
        });
        out
    }

    /// Whether the event names `lot` in the role `want`, without gathering its lots.
    pub fn has_lot_role(&self, lot: &str, want: LotRole) -> bool {
        self.any_lot(|l, role| l == lot && role == want)
    }

    /// Calls `f` on every lot the event mentions, in [`Event::lots`]' order, until it
    /// returns true; returns whether it did.
    pub fn any_lot<'a>(&'a self, mut f: impl FnMut(&'a str, LotRole) -> bool) -> bool {
        use LotRole::{Consumed, Created, Mentioned};
        match &self.kind {
            EventKind::Harvest(h) => f(&h.lot, Created),
            EventKind::Transform(t) => {
                t.inputs.iter().any(|i| f(&i.lot, Consumed))
                    || t.outputs.iter().any(|o| f(&o.lot, Created))
            }
            EventKind::Ship(m) | EventKind::Receive(m) => {
                m.lots.iter().any(|l| f(&l.lot, Mentioned))
            }
            EventKind::Pay(p) => p.lots.iter().any(|l| f(&l.lot, Mentioned)),
            EventKind::Observe(o) => {
                o.lots.iter().any(|l| f(&l.lot, Mentioned))
                    || o.epcs.iter().any(|e| f(e, Mentioned))
                    || o.parent.as_deref().is_some_and(|p| f(p, Mentioned))
            }
            EventKind::Certify(c) => c.lot.as_deref().is_some_and(|l| f(l, Mentioned)),
            EventKind::Correct(_)
            | EventKind::RegisterOrg(_)
            | EventKind::RegisterSite(_)
            | EventKind::RegisterPlot(_)
            | EventKind::RegisterClass(_)
            | EventKind::RevokeToken(_)
            | EventKind::ConfirmMember(_)
            | EventKind::Review(_) => false,
        }
    }

    /// Orgs other than the recorder that the event names (counterparties).
    pub fn counterparties(&self) -> Vec<&str> {
        match &self.kind {
            EventKind::Ship(m) | EventKind::Receive(m) => vec![m.counterparty.as_str()],
            EventKind::Pay(p) => vec![p.payee_org.as_str()],
            EventKind::Certify(c) => c.subject_org.as_deref().into_iter().collect(),
            EventKind::ConfirmMember(c) => vec![c.member.as_str()],
            _ => Vec::new(),
        }
    }

    /// The event this one corrects, if it is a correction.
    pub fn corrects(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Correct(c) => Some(c.corrected_event_id.as_str()),
            _ => None,
        }
    }
}
