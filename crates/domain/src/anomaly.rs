//! Business anomalies: facts reported to auditors, never reasons to refuse an
//! event (DESIGN §3). Rejections (undecodable, conflicting duplicates, bad
//! geometry) are not anomalies; they are answered to the sender and quarantined.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{Event, EventKind, Verdict};

/// One anomaly: what kind, where, and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The lot concerned; empty for an org-level fact with no one lot.
    pub lot: String,
    pub event_id: Option<String>,
    /// The org the anomaly is charged to (the event's org, the seller, the buyer).
    pub org: Option<String>,
    pub explanation: String,
    /// Named figures (expected band, observed yield, shortfall, balance, ...),
    /// decimal strings or identifiers, for scripts.
    pub figures: BTreeMap<String, String>,
    /// Auditors' reviews of it, in log order ([`attach_reviews`]). Attached when listed, so
    /// not kept with a saved state.
    #[serde(skip)]
    pub reviews: Vec<AnomalyReview>,
}

/// One auditor's review of an anomaly, from a [`crate::Review`] event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnomalyReview {
    pub event_id: String,
    /// The auditor's org.
    pub org: String,
    pub time: DateTime<FixedOffset>,
    pub verdict: Verdict,
    pub note: String,
}

/// Where an anomaly stands: open until an auditor reviews it, then as the latest review says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyStatus {
    Open,
    Acknowledged,
    Disputed,
}

impl AnomalyStatus {
    pub const ALL: [AnomalyStatus; 3] = [
        AnomalyStatus::Open,
        AnomalyStatus::Acknowledged,
        AnomalyStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyStatus::Open => "open",
            AnomalyStatus::Acknowledged => "acknowledged",
            AnomalyStatus::Disputed => "disputed",
        }
    }

    pub fn parse(s: &str) -> Option<AnomalyStatus> {
        let s = s.trim().to_ascii_lowercase();
        AnomalyStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How many bytes of the digest an anomaly id keeps (64 bits: ids of a 10 M-anomaly listing
/// collide with odds of about 1 in 400 000).
const ID_DIGEST_BYTES: usize = 8;

impl Anomaly {
    pub fn new(kind: AnomalyKind, lot: &str, event_id: Option<&str>, explanation: String) -> Self {
        Anomaly {
            kind,
            lot: lot.to_string(),
            event_id: event_id.map(str::to_string),
            org: None,
            explanation,
            figures: BTreeMap::new(),
            reviews: Vec::new(),
        }
    }

    /// The anomaly's stable id: its kind, then the first 64 bits of SHA-256 over
    /// `kind \n event_id \n lot` in hex, e.g. `over_consumption-3fa2c1d09b7e4a11`. The same fact
    /// has the same id in every listing, on every node, whatever else the log holds; an auditor's
    /// review names it. (Two anomalies of one kind on one event and lot, such as two uncertified
    /// claims, share it, and one review covers both.)
    pub fn id(&self) -> String {
        anomaly_id(self.kind, self.event_id.as_deref().unwrap_or(""), &self.lot)
    }

    /// Open, or as its latest review says.
    pub fn status(&self) -> AnomalyStatus {
        match self.reviews.last().map(|r| r.verdict) {
            None => AnomalyStatus::Open,
            Some(Verdict::Acknowledged) => AnomalyStatus::Acknowledged,
            Some(Verdict::Disputed) => AnomalyStatus::Disputed,
        }
    }

    pub fn org(mut self, org: &str) -> Self {
        self.org = Some(org.to_string());
        self
    }

    pub fn figure(mut self, name: &str, value: impl ToString) -> Self {
        self.figures.insert(name.to_string(), value.to_string());
        self
    }
}

/// The id of an anomaly of `kind` on `event_id` and `lot` (see [`Anomaly::id`]).
pub fn anomaly_id(kind: AnomalyKind, event_id: &str, lot: &str) -> String {
    let digest = Sha256::new()
        .chain_update(kind.as_str())
        .chain_update(b"\n")
        .chain_update(event_id)
        .chain_update(b"\n")
        .chain_update(lot)
        .finalize();
    let mut id = format!("{}-", kind.as_str());
    for byte in &digest[..ID_DIGEST_BYTES] {
        let _ = write!(id, "{byte:02x}");
    }
    id
}

/// Whether `id` has the form of an anomaly id: a known kind, a dash and 16 lowercase hex digits.
pub fn is_anomaly_id(id: &str) -> bool {
    id.rsplit_once('-').is_some_and(|(kind, digest)| {
        AnomalyKind::parse(kind).is_some_and(|k| k.as_str() == kind)
            && digest.len() == 2 * ID_DIGEST_BYTES
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The review a [`crate::Review`] event gives, if it is one.
pub fn review_of(event: &Event) -> Option<(&str, AnomalyReview)> {
    match &event.kind {
        EventKind::Review(r) => Some((
            r.anomaly.as_str(),
            AnomalyReview {
                event_id: event.id.clone(),
                org: event.org.clone(),
                time: event.time,
                verdict: r.verdict,
                note: r.note.clone(),
            },
        )),
        _ => None,
    }
}

/// Gives each anomaly the reviews among `events` (the whole log, in log order) that name its
/// id; a corrected review does not count.
pub fn attach_reviews(anomalies: &mut [Anomaly], events: &[Arc<Event>]) {
    let corrected: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e.corrects()).collect();
    let mut reviews: HashMap<&str, Vec<AnomalyReview>> = HashMap::new();
    for event in events {
        if corrected.contains(event.id.as_str()) {
            continue;
        }
        if let Some((anomaly, review)) = review_of(event) {
            reviews.entry(anomaly).or_default().push(review);
        }
    }
    if reviews.is_empty() {
        return;
    }
    for anomaly in anomalies {
        if let Some(found) = reviews.get(anomaly.id().as_str()) {
            anomaly.reviews = found.clone();
        }
    }
}

macro_rules! anomaly_kinds {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum AnomalyKind {
            $($(#[$doc])* $name,)*
        }

        impl AnomalyKind {
            pub const ALL: &[AnomalyKind] = &[$(AnomalyKind::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AnomalyKind::$name => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<AnomalyKind> {
                let s = s.trim().to_ascii_lowercase().replace('-', "_");
                AnomalyKind::ALL.iter().copied().find(|k| k.as_str() == s)
            }
        }
    };
}

anomaly_kinds! {
    /// More of a lot was consumed than was produced.
    OverConsumption => "over_consumption",
    /// A transform produced more than its stated conversion ratio allows.
    YieldAboveRatio => "yield_above_ratio",
    /// A transform's yield is outside the configured band for its process.
    YieldOutOfBand => "yield_out_of_band",
    /// An event on a lot is dated before the lot was created.
    DatedBeforeCreation => "dated_before_creation",
    /// A lot is used but never created.
    UnknownOrigin => "unknown_origin",
    /// An org created, consumed, shipped or received a lot it did not hold (another org's lot
    /// name): the event is kept and left out of the lot's lineage.
    NotHolder => "not_holder",
    /// A quantity's unit cannot be converted to the lot's unit.
    UnitMismatch => "unit_mismatch",
    /// A lot's lineage loops back on itself.
    LineageCycle => "lineage_cycle",
    /// A transform's outputs are in units that do not convert to each other, so
    /// inputs are split between them by their raw amounts.
    MixedOutputUnits => "mixed_output_units",
    /// Quantities compound beyond what an exact decimal holds.
    ArithmeticOverflow => "arithmetic_overflow",
    /// A coffee lot under mass balance (Fairtrade coffee must be physically traceable).
    CoffeeMassBalance => "coffee_mass_balance",
    /// A lot declares a custody model above what its inputs allow (nothing raises it).
    CustodyUpgrade => "custody_upgrade",
    /// A lot declares a claim its inputs do not carry (mixing certified with
    /// uncertified input under identity preserved or segregation removes it).
    UnsupportedClaim => "unsupported_claim",
    /// An event claims a standard (Fairtrade, organic) for a product the org held
    /// no certificate for on the event date.
    UncertifiedClaim => "uncertified_claim",
    /// A certified lot sold by an org without a valid certificate for it.
    UncertifiedSeller => "uncertified_seller",
    /// A certified lot sold to an org without a valid certificate for it.
    UncertifiedBuyer => "uncertified_buyer",
    /// The org's certificate for the product had expired (or was suspended) on the event date.
    ExpiredCertificate => "expired_certificate",
    /// A payment for a Fairtrade lot below the Fairtrade Minimum Price.
    PriceBelowMinimum => "price_below_minimum",
    /// A payment for a Fairtrade lot without the full Fairtrade Premium.
    PremiumShortfall => "premium_shortfall",
    /// A payment that cannot be compared with the reference price (other currency or unit).
    PriceNotComparable => "price_not_comparable",
    /// A mass-balance ledger went negative: more sold as Fairtrade than bought.
    NegativeMassBalance => "negative_mass_balance",
    /// A plot's geolocation is valid GeoJSON but not EUDR-grade.
    PlotNotEudrGrade => "plot_not_eudr_grade",
    /// A harvest names a plot that was never registered (no geolocation).
    PlotNotRegistered => "plot_not_registered",
    /// A co-op sold as certified, or made a certified output of, a lot harvested by a farm that
    /// was not its confirmed member on the harvest date or the delivery date.
    NonMemberDelivery => "non_member_delivery",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Review;
    use crate::fixtures::*;

    fn review(id: &str, anomaly: &str, verdict: Verdict, note: &str) -> Arc<Event> {
        let kind = EventKind::Review(Review {
            anomaly: anomaly.to_string(),
            verdict,
            note: note.to_string(),
        });
        event(id, "auditor-1", "2025-11-20", crate::Chain::Cocoa, kind)
    }

    #[test]
    fn an_anomaly_id_is_its_kind_and_a_digest_of_event_and_lot() {
        let a = Anomaly::new(
            AnomalyKind::OverConsumption,
            "LOT-1",
            Some("e1"),
            "x".into(),
        );
        let same = Anomaly::new(
            AnomalyKind::OverConsumption,
            "LOT-1",
            Some("e1"),
            "y".into(),
        )
        .figure("shortfall", 3);
        assert_eq!(
            a.id(),
            same.id(),
            "explanation and figures do not change the id"
        );
        assert!(a.id().starts_with("over_consumption-"));
        assert!(is_anomaly_id(&a.id()), "{}", a.id());
        for other in [
            Anomaly::new(AnomalyKind::UnknownOrigin, "LOT-1", Some("e1"), "x".into()),
            Anomaly::new(
                AnomalyKind::OverConsumption,
                "LOT-2",
                Some("e1"),
                "x".into(),
            ),
            Anomaly::new(
                AnomalyKind::OverConsumption,
                "LOT-1",
                Some("e2"),
                "x".into(),
            ),
            Anomaly::new(AnomalyKind::OverConsumption, "LOT-1", None, "x".into()),
            // The separator keeps event and lot apart.
            Anomaly::new(
                AnomalyKind::OverConsumption,
                "1",
                Some("e1\nLOT-"),
                "x".into(),
            ),
        ] {
            assert_ne!(a.id(), other.id(), "{other:?}");
        }
        for bad in [
            "",
            "over_consumption",
            "over_consumption-3fa2",
            "no_such_kind-0123456789abcdef",
            "over_consumption-0123456789ABCDEF",
            "over-consumption-0123456789abcdef",
        ] {
            assert!(!is_anomaly_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_latest_review_sets_the_status() {
        let mut anomalies = vec![
            Anomaly::new(
                AnomalyKind::OverConsumption,
                "LOT-1",
                Some("e1"),
                "x".into(),
            ),
            Anomaly::new(AnomalyKind::UnknownOrigin, "LOT-2", Some("e2"), "x".into()),
        ];
        let first = anomalies[0].id();
        let events = vec![
            review(
                "r1",
                &first,
                Verdict::Disputed,
                "the scale was recalibrated",
            ),
            review(
                "r2",
                "unknown_origin-0000000000000000",
                Verdict::Acknowledged,
                "other",
            ),
            review("r3", &first, Verdict::Acknowledged, "the mill confirmed it"),
        ];
        attach_reviews(&mut anomalies, &events);
        assert_eq!(anomalies[0].status(), AnomalyStatus::Acknowledged);
        assert_eq!(
            anomalies[0]
                .reviews
                .iter()
                .map(|r| r.event_id.as_str())
                .collect::<Vec<_>>(),
            ["r1", "r3"]
        );
        assert_eq!(anomalies[0].reviews[0].note, "the scale was recalibrated");
        assert_eq!(anomalies[1].status(), AnomalyStatus::Open);
        assert!(anomalies[1].reviews.is_empty());
        assert_eq!(
            AnomalyStatus::parse(" Disputed"),
            Some(AnomalyStatus::Disputed)
        );
    }
}
