//! Business anomalies: facts reported to auditors, never reasons to refuse an
//! event (DESIGN §3). Rejections (undecodable, conflicting duplicates, bad
//! geometry) are not anomalies; they are answered to the sender and quarantined.

use std::collections::BTreeMap;

/// One anomaly: what kind, where, and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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
}

impl Anomaly {
    pub fn new(kind: AnomalyKind, lot: &str, event_id: Option<&str>, explanation: String) -> Self {
        Anomaly {
            kind,
            lot: lot.to_string(),
            event_id: event_id.map(str::to_string),
            org: None,
            explanation,
            figures: BTreeMap::new(),
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

macro_rules! anomaly_kinds {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
