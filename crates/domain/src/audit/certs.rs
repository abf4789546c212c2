//! Certificates from Certify events, and the certificate checks auditors need
//! (domain.md §1.2: "valid FLOCERT permission to trade or certificate for each
//! product"; DESIGN §5 item 8): whether an org held a valid certificate for a
//! claim and a product on an event's date.
//!
//! The answer depends only on the set of Certify events known, never on the
//! order they arrived in: a suspension is matched to certificates when asked.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::event::{Chain, Event, EventKind, OrgRole};

/// One Certify event, read as a certificate (or a negative audit result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The certified org: the event's subject_org, or else the recording org.
    pub org: String,
    /// The standard as written ("Fairtrade", "FLOCERT", "EU organic", "GOTS").
    pub standard: String,
    pub certificate_id: String,
    /// Products in scope; empty means every product.
    pub products: Vec<String>,
    /// First day of validity; `None` means from the event date.
    pub valid_from: Option<NaiveDate>,
    /// Last day of validity, inclusive; `None` means open-ended.
    pub valid_to: Option<NaiveDate>,
    /// The outcome as written; see [`Certificate::is_positive`] and
    /// [`Certificate::is_negative`].
    pub outcome: String,
    pub event_id: String,
    /// The event's date (the local date the sender stated).
    pub issued: NaiveDate,
    /// Set for a lot-level certificate (a certificate of a lot, not of the org).
    pub lot: Option<String>,
    /// The org that recorded it: the certified org itself (self-declared) or a certifier.
    pub issuer: String,
}

/// Outcomes that grant a certificate (compared case-insensitively, trimmed).
pub const POSITIVE_OUTCOMES: &[&str] = &[
    "",
    "certified",
    "passed",
    "valid",
    "approved",
    "granted",
    "renewed",
    "issued",
];

/// Outcomes that suspend a certificate (compared case-insensitively, trimmed).
pub const NEGATIVE_OUTCOMES: &[&str] = &[
    "suspended",
    "decertified",
    "withdrawn",
    "revoked",
    "cancelled",
    "failed",
    "expired",
    "terminated",
];

impl Certificate {
    fn from_event(event: &Event) -> Option<Certificate> {
        let EventKind::Certify(c) = &event.kind else {
            return None;
        };
        let org = c
            .subject_org
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .unwrap_or(event.org.as_str());
        Some(Certificate {
            org: org.to_string(),
            standard: c.standard.clone(),
            certificate_id: c.certificate_id.clone(),
            products: c.products.clone(),
            valid_from: c.valid_from,
            valid_to: c.valid_to,
            outcome: c.outcome.clone(),
            event_id: event.id.clone(),
            issued: event.time.date_naive(),
            lot: c.lot.clone().filter(|l| !l.trim().is_empty()),
            issuer: event.org.clone(),
        })
    }

    /// Whether the certified org recorded it itself rather than a certifier: it counts, and
    /// answers say so.
    pub fn self_declared(&self) -> bool {
        self.issuer == self.org
    }

    fn outcome_is(&self, list: &[&str]) -> bool {
        let outcome = self.outcome.trim().to_lowercase();
        list.contains(&outcome.as_str())
    }

    /// Whether the outcome grants the certificate. An outcome that is neither
    /// positive nor negative ("pending") neither certifies nor suspends.
    pub fn is_positive(&self) -> bool {
        self.outcome_is(POSITIVE_OUTCOMES)
    }

    /// Whether the outcome suspends certificates (see [`Certificates::status`]).
    pub fn is_negative(&self) -> bool {
        self.outcome_is(NEGATIVE_OUTCOMES)
    }

    /// The first day the certificate (or suspension) applies.
    pub fn starts(&self) -> NaiveDate {
        self.valid_from.unwrap_or(self.issued)
    }

    /// Whether `date` is within its validity dates (both ends inclusive).
    pub fn in_period(&self, date: NaiveDate) -> bool {
        self.starts() <= date && self.valid_to.is_none_or(|end| date <= end)
    }

    /// Whether it covers `product` of `chain`: no product list covers every
    /// product; otherwise some listed product (lowercased) equals the product,
    /// is contained in it, or names the chain ("cocoa", "coffee", "textile" or
    /// "cotton" for textile).
    pub fn covers(&self, product: &str, chain: Option<&str>) -> bool {
        let listed: Vec<String> = self
            .products
            .iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if listed.is_empty() {
            return true;
        }
        let product = product.trim().to_lowercase();
        let chain = chain.and_then(Chain::parse);
        listed.iter().any(|p| {
            (!product.is_empty() && product.contains(p.as_str()))
                || chain.is_some_and(|c| Chain::parse(p) == Some(c))
        })
    }

    /// "certificate FLO-123 (fairtrade)".
    fn name(&self) -> String {
        let id = self.certificate_id.trim();
        if id.is_empty() {
            format!(
                "the certificate of {} ({})",
                self.issued,
                self.standard.trim()
            )
        } else {
            format!("certificate {id} ({})", self.standard.trim())
        }
    }
}

/// An org's standing for a claim and a product on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    /// A certificate covering the claim and product was valid on the date.
    Valid(Certificate),
    /// A certificate for the claim and product existed but was not valid on the
    /// date (expired, not yet valid or suspended); `reason` says which.
    Lapsed {
        certificate: Certificate,
        reason: String,
    },
    /// No certificate for the claim and product was ever recorded.
    Missing,
}

/// A co-op's confirmation of a member: (co-op, first day, last day, event id).
type Confirmation = (String, NaiveDate, Option<NaiveDate>, String);

/// Every certificate recorded by Certify events, by certified org.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Certificates {
    /// Org-level certificates (positive, negative and other outcomes), by org,
    /// sorted by event date then event id.
    by_org: BTreeMap<String, Vec<Certificate>>,
    /// Lot-level certificates, by lot. They do not certify the org.
    by_lot: BTreeMap<String, Vec<Certificate>>,
    /// The ids of positive org-level certificates.
    positive_ids: BTreeSet<String>,
    /// Negative org-level results (copies of entries in `by_org`).
    negatives: Vec<Certificate>,
    /// Farm → the co-op it says it is a member of (its latest registration, by event
    /// time then id): a co-op's group certificate covers its member farms.
    members: BTreeMap<String, Vec<(NaiveDate, String, String)>>,
    /// Farm → the co-ops' confirmations of its membership: (co-op, first day, last day, event
    /// id). A membership counts only on the days its co-op confirms.
    confirmed: BTreeMap<String, Vec<Confirmation>>,
    /// The co-ops that have confirmed any member.
    confirming: BTreeSet<String>,
    /// Each org's latest registration (by event date, then id) and whether it registers the
    /// org as a certifier: only a certifier certifies another org.
    certifiers: BTreeMap<String, (NaiveDate, String, bool)>,
}

/// Normalises a claim or standard: lowercase, trimmed, '-' and '_' read as ' ',
/// runs of spaces collapsed.
pub fn normalise_standard(s: &str) -> String {
    s.to_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

const FAIRTRADE: &[&str] = &[
    "fairtrade",
    "flo",
    "flocert",
    "fairtrade international",
    "fairtrade textile standard",
    "fairtrade cotton",
];

const ORGANIC: &[&str] = &[
    "organic",
    "eu organic",
    "usda organic",
    "nop",
    "jas",
    "gots",
    "ocs",
];

/// Whether a certificate of `standard` supports `claim` (a claim such as
/// "fairtrade" or "organic", or a standard name).
///
/// "fairtrade" is met by fairtrade, flo, flocert, fairtrade international,
/// fairtrade textile standard, fairtrade cotton and any other standard whose
/// name starts with the word "fairtrade" (e.g. "Fairtrade Trader Standard");
/// "Fair Trade USA" is a different scheme and does not count. "organic" is met
/// by organic, eu organic, usda organic, nop, jas, gots, ocs and any standard
/// with the word "organic" in its name. Any other claim needs the same standard
/// after normalisation (lowercase, trimmed, '-'/'_' read as ' ').
pub fn standard_matches(claim: &str, standard: &str) -> bool {
    let claim = normalise_standard(claim);
    let standard = normalise_standard(standard);
    if claim.is_empty() || standard.is_empty() {
        return false;
    }
    match claim.as_str() {
        "fairtrade" => {
            FAIRTRADE.contains(&standard.as_str())
                || standard.split(' ').next() == Some("fairtrade")
        }
        "organic" => {
            ORGANIC.contains(&standard.as_str()) || standard.split(' ').any(|w| w == "organic")
        }
        _ => claim == standard,
    }
}

/// Claims that need a certificate: every claim, lowercased and trimmed, blanks
/// dropped, each once, in their first order.
pub fn certifiable_claims(claims: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for claim in claims {
        let claim = claim.trim().to_lowercase();
        if !claim.is_empty() && !out.contains(&claim) {
            out.push(claim);
        }
    }
    out
}

/// Whether a lot's claims include Fairtrade (under any of its names).
pub fn claims_fairtrade(claims: &[String]) -> bool {
    claims.iter().any(|c| standard_matches("fairtrade", c))
}

/// Whether a lot's claims include organic (under any of its names).
pub fn claims_organic(claims: &[String]) -> bool {
    claims.iter().any(|c| standard_matches("organic", c))
}

/// A certificate that is not valid on a date, and why.
struct Lapse<'a> {
    certificate: &'a Certificate,
    reason: String,
}

impl Certificates {
    /// Records a Certify event; other events are ignored, and so is a Certify
    /// event already recorded (same event id).
    pub fn add(&mut self, event: &Event) {
        if let EventKind::RegisterOrg(r) = &event.kind {
            let latest = (
                event.time.date_naive(),
                event.id.clone(),
                r.role == OrgRole::Certifier,
            );
            let standing = self
                .certifiers
                .entry(event.org.clone())
                .or_insert_with(|| latest.clone());
            if (&latest.0, &latest.1) > (&standing.0, &standing.1) {
                *standing = latest;
            }
            let entry = (
                event.time.date_naive(),
                event.id.clone(),
                r.member_of.clone().unwrap_or_default(),
            );
            let list = self.members.entry(event.org.clone()).or_default();
            if !list.iter().any(|(_, id, _)| *id == entry.1) {
                let at = list.partition_point(|(d, id, _)| (d, id) <= (&entry.0, &entry.1));
                list.insert(at, entry);
            }
            return;
        }
        if let EventKind::ConfirmMember(c) = &event.kind {
            self.confirming.insert(event.org.clone());
            let list = self.confirmed.entry(c.member.clone()).or_default();
            if !list.iter().any(|(_, _, _, id)| *id == event.id) {
                list.push((
                    event.org.clone(),
                    c.valid_from.unwrap_or_else(|| event.time.date_naive()),
                    c.valid_to,
                    event.id.clone(),
                ));
            }
            return;
        }
        let Some(cert) = Certificate::from_event(event) else {
            return;
        };
        let list = match &cert.lot {
            Some(lot) => self.by_lot.entry(lot.clone()).or_default(),
            None => self.by_org.entry(cert.org.clone()).or_default(),
        };
        if list.iter().any(|c| c.event_id == cert.event_id) {
            return;
        }
        let at = list.partition_point(|c| (c.issued, &c.event_id) <= (cert.issued, &cert.event_id));
        list.insert(at, cert.clone());
        if cert.lot.is_none() {
            let id = cert.certificate_id.trim();
            if cert.is_positive() && !id.is_empty() {
                self.positive_ids.insert(id.to_string());
            }
            if cert.is_negative() {
                self.negatives.push(cert);
            }
        }
    }

    /// Every org-level certificate recorded for the org (any outcome), oldest first.
    pub fn of_org(&self, org: &str) -> &[Certificate] {
        self.by_org.get(org).map(Vec::as_slice).unwrap_or_default()
    }

    /// The co-op `org` was a member of on `date`: the one its registration in force then
    /// names (the latest dated on or before it; the earliest, for events dated before the
    /// org's first registration, which a late sync can record), if that co-op confirms the
    /// membership on that date. Neither the farm's word nor the co-op's alone makes a member.
    pub fn co_op_of(&self, org: &str, date: NaiveDate) -> Option<&str> {
        let co_op = self.declared_co_op_of(org, date)?;
        self.confirmed
            .get(org)?
            .iter()
            .any(|(by, from, to, _)| by == co_op && *from <= date && to.is_none_or(|to| date <= to))
            .then_some(co_op)
    }

    /// Whether `farm` was a member of `co_op` on `date` as the co-op keeps its members: by its
    /// confirmations ([`Certificates::co_op_of`]) once it has confirmed any member, else (a
    /// co-op whose members came only with master data, which has no confirmation) by the
    /// farm's registration in force then.
    pub fn member_of_on(&self, farm: &str, co_op: &str, date: NaiveDate) -> bool {
        if self.confirming.contains(co_op) {
            self.co_op_of(farm, date) == Some(co_op)
        } else {
            self.declared_co_op_of(farm, date) == Some(co_op)
        }
    }

    /// The co-op `farm` delivered through as a member on `date`, by [`Self::member_of_on`]'s
    /// rule: the co-op its registration names, if that co-op keeps its members that way.
    pub fn co_op_on(&self, farm: &str, date: NaiveDate) -> Option<&str> {
        let co_op = self.declared_co_op_of(farm, date)?;
        self.member_of_on(farm, co_op, date).then_some(co_op)
    }

    /// The co-op `org`'s registration in force on `date` names, confirmed or not.
    fn declared_co_op_of(&self, org: &str, date: NaiveDate) -> Option<&str> {
        let list = self.members.get(org)?;
        let standing = list
            .iter()
            .rev()
            .find(|(d, _, _)| *d <= date)
            .or_else(|| list.first())?;
        Some(standing.2.as_str()).filter(|c| !c.is_empty() && *c != org)
    }

    /// Whether a certificate counts: recorded by the certified org itself or by an org whose
    /// registration names it a certifier. Another org's certificate for (or suspension of)
    /// an org changes nothing.
    pub fn counts(&self, cert: &Certificate) -> bool {
        cert.self_declared()
            || self
                .certifiers
                .get(&cert.issuer)
                .is_some_and(|(_, _, certifier)| *certifier)
    }

    /// The certificates that can cover `org` on `date`: its own, then its
    /// co-op's (a small producer organisation's certificate covers its members); only those
    /// that count.
    pub fn covering(&self, org: &str, date: NaiveDate) -> impl Iterator<Item = &Certificate> {
        self.of_org(org)
            .iter()
            .chain(
                self.co_op_of(org, date)
                    .into_iter()
                    .flat_map(|c| self.of_org(c)),
            )
            .filter(|c| self.counts(c))
    }

    /// Every lot-level certificate recorded for the lot, oldest first.
    pub fn of_lot(&self, lot: &str) -> &[Certificate] {
        self.by_lot.get(lot).map(Vec::as_slice).unwrap_or_default()
    }

    /// The negative results that suspend `cert` on `date`, if any: a negative
    /// Certify with the same certificate id, or (when its id matches no
    /// positive certificate) one for the same org and standard. A negative
    /// result applies from its valid_from (or event date) through its valid_to
    /// (open if missing), and only to certificates recorded on or before its
    /// own event date, so a later renewal lifts it.
    fn suspension(&self, cert: &Certificate, date: NaiveDate) -> Option<&Certificate> {
        let id = cert.certificate_id.trim();
        let standard = normalise_standard(&cert.standard);
        self.negatives
            .iter()
            .filter(|n| self.counts(n))
            .filter(|n| n.issued >= cert.issued && n.in_period(date))
            .filter(|n| {
                let n_id = n.certificate_id.trim();
                if self.positive_ids.contains(n_id) {
                    n_id == id
                } else {
                    n.org == cert.org && normalise_standard(&n.standard) == standard
                }
            })
            .min_by_key(|n| (n.starts(), n.issued))
    }

    /// Whether a positive certificate is valid on `date`: in its period and
    /// not suspended.
    fn is_valid(&self, cert: &Certificate, date: NaiveDate) -> bool {
        cert.in_period(date) && self.suspension(cert, date).is_none()
    }

    /// Why `cert` is not valid on `date`; `None` when it is.
    fn lapse<'a>(&'a self, cert: &'a Certificate, date: NaiveDate) -> Option<Lapse<'a>> {
        let name = cert.name();
        let reason = if date < cert.starts() {
            format!("{name} not valid until {}", cert.starts())
        } else if let Some(end) = cert.valid_to.filter(|end| *end < date) {
            format!("{name} expired on {end}")
        } else if let Some(n) = self.suspension(cert, date) {
            let outcome = n.outcome.trim().to_lowercase();
            format!(
                "{name} suspended from {} ({outcome} by event {})",
                n.starts(),
                n.event_id
            )
        } else {
            return None;
        };
        Some(Lapse {
            certificate: cert,
            reason,
        })
    }

    /// The org's positive certificates for `claim` covering `product`.
    fn candidates<'a>(
        &'a self,
        org: &'a str,
        claim: &'a str,
        product: &'a str,
        chain: Option<&'a str>,
        date: NaiveDate,
    ) -> impl Iterator<Item = &'a Certificate> + 'a {
        self.covering(org, date).filter(move |c| {
            c.is_positive() && standard_matches(claim, &c.standard) && c.covers(product, chain)
        })
    }

    /// The org's standing for `claim` (a claim like "fairtrade"/"organic", or a
    /// standard name) and `product` (in `chain`) on `date`.
    ///
    /// `Valid` gives the valid certificate that runs longest; `Lapsed` the
    /// certificate that ends last (an open end counts as latest), with why it
    /// is not valid ("certificate FLO-123 (fairtrade) expired on 2026-01-31",
    /// "... not valid until 2026-05-01", "... suspended from 2026-03-01 ...").
    pub fn status(
        &self,
        org: &str,
        claim: &str,
        product: &str,
        chain: Option<&str>,
        date: NaiveDate,
    ) -> CertStatus {
        let end = |c: &Certificate| (c.valid_to.unwrap_or(NaiveDate::MAX), c.issued);
        let candidates: Vec<&Certificate> =
            self.candidates(org, claim, product, chain, date).collect();
        if let Some(valid) = candidates
            .iter()
            .copied()
            .filter(|c| self.is_valid(c, date))
            .max_by_key(|c| end(c))
        {
            return CertStatus::Valid(valid.clone());
        }
        match candidates
            .iter()
            .copied()
            .max_by_key(|c| end(c))
            .and_then(|c| self.lapse(c, date))
        {
            Some(lapse) => CertStatus::Lapsed {
                certificate: lapse.certificate.clone(),
                reason: lapse.reason,
            },
            None => CertStatus::Missing,
        }
    }

    /// Every certificate of the org valid on `date` for `product`, any standard.
    pub fn valid_on(
        &self,
        org: &str,
        product: &str,
        chain: Option<&str>,
        date: NaiveDate,
    ) -> Vec<&Certificate> {
        self.covering(org, date)
            .filter(|c| c.is_positive() && c.covers(product, chain) && self.is_valid(c, date))
            .collect()
    }
}

/// What the certificate and price checks need to know of a lot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LotFacts {
    pub product: String,
    pub claims: Vec<String>,
    /// "cocoa", "coffee" or "textile", when known.
    pub chain: Option<String>,
}

/// Who a Ship check is about.
#[derive(Clone, Copy)]
enum Party {
    Seller,
    Buyer,
}

/// One claim on one lot, to be checked against an org's certificates.
struct Claimed<'a> {
    lot: &'a str,
    product: &'a str,
    claim: &'a str,
    chain: Option<&'a str>,
    date: NaiveDate,
}

/// Certificate checks for one event; facts for auditors, never rejections.
///
/// - A Harvest with claims, and each Transform output with claims: the event's
///   org must hold a valid certificate for each claim and the lot's product on
///   the event date, else `UncertifiedClaim` (or `ExpiredCertificate` when one
///   lapsed); lot = that lot, org = the event's org.
/// - A Ship: for each lot whose claims (from `lot_info`) are not empty, the
///   seller (the event's org) must hold one, else `UncertifiedSeller` (or
///   `ExpiredCertificate`, role=seller), and so must the buyer (the
///   counterparty), else `UncertifiedBuyer` (or `ExpiredCertificate`,
///   role=buyer); org = that party. One anomaly per (lot, party, claim).
///
/// The date is the event's local date. Figures: claim, product, date, and role
/// for Ship checks; certificate_id and reason when a certificate lapsed.
pub fn certificate_checks(
    certs: &Certificates,
    event: &Event,
    lot_info: &dyn Fn(&str) -> Option<LotFacts>,
) -> Vec<Anomaly> {
    let date = event.time.date_naive();
    let event_chain = event.chain.map(Chain::as_str);
    let mut out = Vec::new();
    let mut created = |lot: &str, product: &str, claims: &[String]| {
        for claim in certifiable_claims(claims) {
            let claimed = Claimed {
                lot,
                product,
                claim: &claim,
                chain: event_chain,
                date,
            };
            out.extend(claim_check(certs, event, &claimed));
        }
    };
    match &event.kind {
        EventKind::Harvest(h) => created(&h.lot, &h.product, &h.claims),
        EventKind::Transform(t) => {
            for o in &t.outputs {
                created(&o.lot, &o.product, &o.claims);
            }
        }
        EventKind::Ship(m) => {
            let mut seen: Vec<&str> = Vec::new();
            for lq in &m.lots {
                if seen.contains(&lq.lot.as_str()) {
                    continue;
                }
                seen.push(&lq.lot);
                let Some(facts) = lot_info(&lq.lot) else {
                    continue;
                };
                for claim in certifiable_claims(&facts.claims) {
                    let claimed = Claimed {
                        lot: &lq.lot,
                        product: &facts.product,
                        claim: &claim,
                        chain: facts.chain.as_deref().or(event_chain),
                        date,
                    };
                    for party in [Party::Seller, Party::Buyer] {
                        out.extend(party_check(certs, event, &m.counterparty, &claimed, party));
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// The claim check for a lot the event's org creates.
fn claim_check(certs: &Certificates, event: &Event, c: &Claimed<'_>) -> Option<Anomaly> {
    let org = event.org.as_str();
    let (claim, product, lot, date) = (c.claim, c.product, c.lot, c.date);
    let claimed = format!("{org} claims {claim} for {product} (lot {lot}) on {date}");
    let anomaly = match certs.status(org, claim, product, c.chain, date) {
        CertStatus::Valid(_) => return None,
        CertStatus::Missing => Anomaly::new(
            AnomalyKind::UncertifiedClaim,
            lot,
            Some(&event.id),
            format!(
                "{claimed} but holds no {claim} certificate covering that product on that date"
            ),
        ),
        CertStatus::Lapsed {
            certificate,
            reason,
        } => Anomaly::new(
            AnomalyKind::ExpiredCertificate,
            lot,
            Some(&event.id),
            format!("{claimed} but {reason}"),
        )
        .figure("certificate_id", certificate.certificate_id.trim())
        .figure("reason", reason),
    };
    Some(
        anomaly
            .org(org)
            .figure("claim", claim)
            .figure("product", product)
            .figure("date", date),
    )
}

/// The seller or buyer check for a lot on a Ship.
fn party_check(
    certs: &Certificates,
    event: &Event,
    counterparty: &str,
    c: &Claimed<'_>,
    party: Party,
) -> Option<Anomaly> {
    let (claim, product, lot, date) = (c.claim, c.product, c.lot, c.date);
    let (org, role, kind, what) = match party {
        Party::Seller => (
            event.org.as_str(),
            "seller",
            AnomalyKind::UncertifiedSeller,
            format!(
                "seller {} shipped {claim} lot {lot} ({product}) to {counterparty} on {date}",
                event.org
            ),
        ),
        Party::Buyer => (
            counterparty,
            "buyer",
            AnomalyKind::UncertifiedBuyer,
            format!(
                "buyer {counterparty} was shipped {claim} lot {lot} ({product}) by {} on {date}",
                event.org
            ),
        ),
    };
    if org.trim().is_empty() {
        return None;
    }
    let anomaly = match certs.status(org, claim, product, c.chain, date) {
        CertStatus::Valid(_) => return None,
        CertStatus::Missing => Anomaly::new(
            kind,
            lot,
            Some(&event.id),
            format!("{what} without a valid {claim} certificate covering that product"),
        ),
        CertStatus::Lapsed {
            certificate,
            reason,
        } => Anomaly::new(
            AnomalyKind::ExpiredCertificate,
            lot,
            Some(&event.id),
            format!("{what}, but its {reason}"),
        )
        .figure("certificate_id", certificate.certificate_id.trim())
        .figure("reason", reason),
    };
    Some(
        anomaly
            .org(org)
            .figure("role", role)
            .figure("claim", claim)
            .figure("product", product)
            .figure("date", date),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Certify, Harvest, LotQuantity, Movement, OutputLot, Transform};
    use crate::quantity::{Quantity, Unit};
    use chrono::DateTime;
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn event(id: &str, date: &str, org: &str, kind: EventKind) -> Event {
        Event {
            id: id.into(),
            time: DateTime::parse_from_rfc3339(&format!("{date}T09:00:00-05:00")).unwrap(),
            org: org.into(),
            chain: Some(Chain::Cocoa),
            site: None,
            extensions: BTreeMap::new(),
            kind,
        }
    }

    #[derive(Clone, Copy)]
    struct Cert<'a> {
        standard: &'a str,
        id: &'a str,
        products: &'a [&'a str],
        from: Option<&'a str>,
        to: Option<&'a str>,
        outcome: &'a str,
    }

    const FT: Cert<'static> = Cert {
        standard: "Fairtrade",
        id: "FLO-123",
        products: &[],
        from: Some("2025-02-01"),
        to: Some("2026-01-31"),
        outcome: "certified",
    };

    fn certify(id: &str, date: &str, org: &str, subject: Option<&str>, c: Cert<'_>) -> Event {
        event(
            id,
            date,
            org,
            EventKind::Certify(Certify {
                standard: c.standard.into(),
                certificate_id: c.id.into(),
                products: c.products.iter().map(|p| p.to_string()).collect(),
                valid_from: c.from.map(day),
                valid_to: c.to.map(day),
                outcome: c.outcome.into(),
                lot: None,
                subject_org: subject.map(str::to_string),
            }),
        )
    }

    fn kg(n: i64) -> Quantity {
        Quantity::new(Decimal::from(n), Unit::Kilogram)
    }

    fn harvest(date: &str, org: &str, product: &str, claims: &[&str]) -> Event {
        event(
            "ev-h",
            date,
            org,
            EventKind::Harvest(Harvest {
                lot: "L1".into(),
                plot: "P1".into(),
                product: product.into(),
                quantity: kg(100),
                harvest_start: None,
                harvest_end: None,
                custody: None,
                claims: claims.iter().map(|c| c.to_string()).collect(),
            }),
        )
    }

    /// `events` with "flocert" registered as a certifier (before or after them: the order of
    /// registrations and certificates does not matter).
    fn with(events: &[Event]) -> Certificates {
        let mut certs = Certificates::default();
        for e in events {
            certs.add(e);
        }
        certs.add(&registration("flocert", OrgRole::Certifier));
        certs
    }

    fn registration(org: &str, role: OrgRole) -> Event {
        event(
            &format!("reg-{org}"),
            "2024-01-01",
            org,
            EventKind::RegisterOrg(crate::event::RegisterOrg {
                name: org.into(),
                role,
                country: "CI".into(),
                gln: None,
                member_of: None,
                party: None,
            }),
        )
    }

    #[test]
    fn only_the_certified_org_or_a_certifier_certifies_and_self_declared_is_said() {
        let evil_suspends = Cert {
            outcome: "suspended",
            from: Some("2025-03-01"),
            to: None,
            ..FT
        };
        let certs = with(&[
            certify("own", "2025-01-10", "coop-1", None, FT),
            // A trader that is not a certifier: neither its certificate for coop-2 nor its
            // suspension of coop-1's counts.
            registration("evil", OrgRole::Trader),
            certify("e1", "2025-01-10", "evil", Some("coop-2"), FT),
            certify("e2", "2025-04-01", "evil", Some("coop-1"), evil_suspends),
            certify("f1", "2025-01-10", "flocert", Some("coop-3"), FT),
        ]);
        let on = day("2025-06-01");
        let CertStatus::Valid(own) = certs.status("coop-1", "fairtrade", "beans", None, on) else {
            panic!("coop-1's own certificate is suspended by a non-certifier");
        };
        assert!(own.self_declared());
        assert_eq!(
            certs.status("coop-2", "fairtrade", "beans", None, on),
            CertStatus::Missing
        );
        let CertStatus::Valid(third) = certs.status("coop-3", "fairtrade", "beans", None, on)
        else {
            panic!("a certifier's certificate does not count");
        };
        assert!(!third.self_declared());
    }

    fn no_lots(_: &str) -> Option<LotFacts> {
        None
    }

    #[test]
    fn valid_through_the_last_day_then_expired() {
        let certs = with(&[certify("c1", "2025-01-20", "coop-1", None, FT)]);
        let on_last = harvest("2026-01-31", "coop-1", "wet cocoa beans", &["Fairtrade"]);
        assert!(certificate_checks(&certs, &on_last, &no_lots).is_empty());
        assert!(matches!(
            certs.status(
                "coop-1",
                "fairtrade",
                "beans",
                Some("cocoa"),
                day("2025-02-01")
            ),
            CertStatus::Valid(_)
        ));

        let after = harvest("2026-02-01", "coop-1", "wet cocoa beans", &["Fairtrade"]);
        let found = certificate_checks(&certs, &after, &no_lots);
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::ExpiredCertificate);
        assert_eq!(a.lot, "L1");
        assert_eq!(a.org.as_deref(), Some("coop-1"));
        assert_eq!(a.event_id.as_deref(), Some("ev-h"));
        assert_eq!(a.figures["claim"], "fairtrade");
        assert_eq!(a.figures["product"], "wet cocoa beans");
        assert_eq!(a.figures["date"], "2026-02-01");
        assert_eq!(a.figures["certificate_id"], "FLO-123");
        assert_eq!(
            a.figures["reason"],
            "certificate FLO-123 (Fairtrade) expired on 2026-01-31"
        );
        assert!(
            a.explanation.contains("expired on 2026-01-31"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn the_event_date_is_the_senders_local_date() {
        let certs = with(&[certify("c1", "2025-01-20", "coop-1", None, FT)]);
        // 2026-01-31T21:00-05:00 is 2026-02-01 in UTC, but the local date counts.
        let mut e = harvest("2026-01-31", "coop-1", "beans", &["fairtrade"]);
        e.time = DateTime::parse_from_rfc3339("2026-01-31T21:00:00-05:00").unwrap();
        assert!(certificate_checks(&certs, &e, &no_lots).is_empty());
    }

    #[test]
    fn not_yet_valid_and_missing_valid_from() {
        let future = Cert {
            from: Some("2026-05-01"),
            to: None,
            ..FT
        };
        let certs = with(&[certify("c1", "2026-04-01", "coop-1", None, future)]);
        match certs.status("coop-1", "fairtrade", "beans", None, day("2026-04-30")) {
            CertStatus::Lapsed { reason, .. } => {
                assert_eq!(
                    reason,
                    "certificate FLO-123 (Fairtrade) not valid until 2026-05-01"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-05-01")),
            CertStatus::Valid(_)
        ));
        // No valid_from: valid from the event date.
        let open = Cert {
            from: None,
            to: None,
            ..FT
        };
        let certs = with(&[certify("c1", "2026-04-01", "coop-1", None, open)]);
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-03-31")),
            CertStatus::Lapsed { .. }
        ));
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2030-01-01")),
            CertStatus::Valid(_)
        ));
    }

    #[test]
    fn a_later_negative_certify_suspends() {
        let long = Cert {
            to: Some("2027-12-31"),
            ..FT
        };
        let suspended = Cert {
            standard: "FLOCERT",
            from: Some("2026-03-01"),
            to: None,
            outcome: "Suspended",
            products: &[],
            ..FT
        };
        let certs = with(&[
            // Arrival order does not matter.
            certify("c2", "2026-02-20", "flocert", Some("coop-1"), suspended),
            certify("c1", "2025-01-20", "coop-1", None, long),
        ]);
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-02-28")),
            CertStatus::Valid(_)
        ));
        let e = harvest("2026-03-01", "coop-1", "beans", &["fairtrade"]);
        let found = certificate_checks(&certs, &e, &no_lots);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::ExpiredCertificate);
        assert_eq!(
            found[0].figures["reason"],
            "certificate FLO-123 (Fairtrade) suspended from 2026-03-01 (suspended by event c2)"
        );
        // A renewal recorded after the suspension is valid again.
        let renewed = Cert {
            from: Some("2026-06-01"),
            to: Some("2028-05-31"),
            outcome: "renewed",
            ..FT
        };
        let certs = with(&[
            certify("c1", "2025-01-20", "coop-1", None, long),
            certify("c2", "2026-02-20", "flocert", Some("coop-1"), suspended),
            certify("c3", "2026-06-01", "flocert", Some("coop-1"), renewed),
        ]);
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-06-02")),
            CertStatus::Valid(c) if c.event_id == "c3"
        ));
    }

    #[test]
    fn a_negative_without_a_matching_id_suspends_by_org_and_standard() {
        let long = Cert {
            to: Some("2027-12-31"),
            ..FT
        };
        let withdrawn = Cert {
            id: "",
            from: Some("2026-03-01"),
            to: Some("2026-04-30"),
            outcome: "withdrawn",
            ..FT
        };
        let other_standard = Cert {
            standard: "EU organic",
            id: "",
            from: Some("2026-01-01"),
            to: None,
            outcome: "revoked",
            ..FT
        };
        let certs = with(&[
            certify("c1", "2025-01-20", "coop-1", None, long),
            certify("c2", "2026-02-20", "flocert", Some("coop-1"), withdrawn),
            certify(
                "c3",
                "2026-02-20",
                "flocert",
                Some("coop-1"),
                other_standard,
            ),
        ]);
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-04-30")),
            CertStatus::Lapsed { .. }
        ));
        // The suspension ends with its valid_to.
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2026-05-01")),
            CertStatus::Valid(_)
        ));
        // A pending outcome neither certifies nor suspends.
        let pending = Cert {
            outcome: "pending",
            ..FT
        };
        let certs = with(&[certify("c1", "2025-01-20", "coop-2", None, pending)]);
        assert_eq!(
            certs.status("coop-2", "fairtrade", "beans", None, day("2025-06-01")),
            CertStatus::Missing
        );
    }

    #[test]
    fn product_coverage_by_substring_and_by_chain() {
        let beans = Cert {
            products: &["Cocoa Beans"],
            ..FT
        };
        let certs = with(&[certify("c1", "2025-01-20", "coop-1", None, beans)]);
        let d = day("2025-06-01");
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "dry cocoa beans", Some("cocoa"), d),
            CertStatus::Valid(_)
        ));
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "cocoa beans", None, d),
            CertStatus::Valid(_)
        ));
        assert_eq!(
            certs.status("coop-1", "fairtrade", "cocoa butter", Some("cocoa"), d),
            CertStatus::Missing
        );
        let chain = Cert {
            products: &["cocoa"],
            ..FT
        };
        let cotton = Cert {
            id: "FLO-9",
            products: &["Cotton"],
            ..FT
        };
        let certs = with(&[
            certify("c1", "2025-01-20", "coop-1", None, chain),
            certify("c2", "2025-01-20", "spinner", None, cotton),
        ]);
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "nibs", Some("cocoa"), d),
            CertStatus::Valid(_)
        ));
        assert_eq!(
            certs.status("coop-1", "fairtrade", "nibs", Some("coffee"), d),
            CertStatus::Missing
        );
        assert!(matches!(
            certs.status("spinner", "fairtrade", "carded yarn", Some("textile"), d),
            CertStatus::Valid(_)
        ));
        assert_eq!(
            certs.valid_on("spinner", "yarn", Some("textile"), d).len(),
            1
        );
        assert!(
            certs
                .valid_on("spinner", "yarn", Some("cocoa"), d)
                .is_empty()
        );
    }

    #[test]
    fn claims_and_standards_match_through_aliases() {
        assert!(standard_matches("fairtrade", "FLOCERT"));
        assert!(standard_matches("Fairtrade", "Fairtrade Textile Standard"));
        assert!(standard_matches("fairtrade", "fairtrade-international"));
        assert!(standard_matches("fairtrade", "Fairtrade Trader Standard"));
        assert!(!standard_matches("fairtrade", "Fair Trade USA"));
        assert!(!standard_matches("fairtrade", "EU organic"));
        assert!(standard_matches("organic", "EU_Organic"));
        assert!(standard_matches("organic", "GOTS"));
        assert!(standard_matches("organic", "USDA organic"));
        assert!(!standard_matches("organic", "Fairtrade"));
        assert!(standard_matches(
            "rainforest-alliance",
            "Rainforest Alliance"
        ));
        assert!(!standard_matches("gots", "EU organic"));
        assert!(!standard_matches("", ""));
        assert_eq!(
            certifiable_claims(&[
                " Fairtrade ".into(),
                "fairtrade".into(),
                "".into(),
                "Organic".into()
            ]),
            vec!["fairtrade".to_string(), "organic".to_string()]
        );
    }

    #[test]
    fn subject_org_certificates_recorded_by_a_certifier() {
        let certs = with(&[certify("c1", "2025-01-20", "flocert", Some("coop-1"), FT)]);
        assert_eq!(certs.of_org("coop-1").len(), 1);
        assert!(certs.of_org("flocert").is_empty());
        assert!(matches!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2025-06-01")),
            CertStatus::Valid(c) if c.org == "coop-1" && c.event_id == "c1"
        ));
        assert_eq!(
            certs.status("flocert", "fairtrade", "beans", None, day("2025-06-01")),
            CertStatus::Missing
        );
    }

    #[test]
    fn lot_certificates_are_kept_but_do_not_certify_the_org() {
        let mut e = certify("c1", "2025-01-20", "flocert", Some("coop-1"), FT);
        if let EventKind::Certify(c) = &mut e.kind {
            c.lot = Some("L9".into());
        }
        let mut certs = with(&[e.clone()]);
        certs.add(&e);
        certs.add(&harvest("2025-02-01", "coop-1", "beans", &[]));
        assert_eq!(certs.of_lot("L9").len(), 1);
        assert!(certs.of_org("coop-1").is_empty());
        assert_eq!(
            certs.status("coop-1", "fairtrade", "beans", None, day("2025-06-01")),
            CertStatus::Missing
        );
    }

    #[test]
    fn uncertified_claims_on_harvests_and_transform_outputs() {
        let certs = with(&[certify("c1", "2025-01-20", "coop-1", None, FT)]);
        let e = harvest("2025-06-01", "coop-1", "beans", &["fairtrade", "organic"]);
        let found = certificate_checks(&certs, &e, &no_lots);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::UncertifiedClaim);
        assert_eq!(found[0].figures["claim"], "organic");
        assert!(!found[0].figures.contains_key("certificate_id"));
        assert!(
            found[0]
                .explanation
                .contains("holds no organic certificate")
        );

        let t = event(
            "ev-t",
            "2025-06-02",
            "coop-2",
            EventKind::Transform(Transform {
                inputs: vec![LotQuantity {
                    lot: "L1".into(),
                    quantity: kg(100),
                }],
                outputs: vec![
                    OutputLot {
                        lot: "L2".into(),
                        product: "dry beans".into(),
                        quantity: kg(38),
                        custody: None,
                        claims: vec!["fairtrade".into()],
                    },
                    OutputLot {
                        lot: "L3".into(),
                        product: "husks".into(),
                        quantity: kg(10),
                        custody: None,
                        claims: Vec::new(),
                    },
                ],
                process: "drying".into(),
                conversion_ratio: None,
            }),
        );
        let found = certificate_checks(&certs, &t, &no_lots);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lot, "L2");
        assert_eq!(found[0].org.as_deref(), Some("coop-2"));
        assert_eq!(found[0].kind, AnomalyKind::UncertifiedClaim);
    }

    fn ship(date: &str, seller: &str, buyer: &str, lots: &[&str]) -> Event {
        event(
            "ev-s",
            date,
            seller,
            EventKind::Ship(Movement {
                lots: lots
                    .iter()
                    .map(|l| LotQuantity {
                        lot: l.to_string(),
                        quantity: kg(10),
                    })
                    .collect(),
                counterparty: buyer.into(),
                documents: Vec::new(),
            }),
        )
    }

    fn lot_facts(lot: &str) -> Option<LotFacts> {
        match lot {
            "FT1" => Some(LotFacts {
                product: "dry cocoa beans".into(),
                claims: vec!["Fairtrade".into()],
                chain: Some("cocoa".into()),
            }),
            "PLAIN" => Some(LotFacts {
                product: "dry cocoa beans".into(),
                claims: Vec::new(),
                chain: Some("cocoa".into()),
            }),
            _ => None,
        }
    }

    #[test]
    fn seller_and_buyer_checks_on_a_ship_of_a_fairtrade_lot() {
        let certs = with(&[
            certify("c1", "2025-01-20", "coop-1", None, FT),
            certify(
                "c2",
                "2024-01-20",
                "trader-9",
                None,
                Cert {
                    id: "FLO-900",
                    from: Some("2024-02-01"),
                    to: Some("2025-02-28"),
                    ..FT
                },
            ),
        ]);
        // Both hold valid certificates on the buyer's last day: nothing.
        let e = ship("2025-02-28", "coop-1", "trader-9", &["FT1", "FT1", "PLAIN"]);
        assert!(certificate_checks(&certs, &e, &lot_facts).is_empty());
        // The buyer's certificate has expired.
        let e = ship(
            "2025-03-01",
            "coop-1",
            "trader-9",
            &["FT1", "FT1", "PLAIN", "UNKNOWN"],
        );
        let found = certificate_checks(&certs, &e, &lot_facts);
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::ExpiredCertificate);
        assert_eq!(a.org.as_deref(), Some("trader-9"));
        assert_eq!(a.figures["role"], "buyer");
        assert_eq!(a.figures["certificate_id"], "FLO-900");
        assert_eq!(a.lot, "FT1");
        // An uncertified seller and buyer.
        let e = ship("2025-03-01", "trader-8", "brand-1", &["FT1"]);
        let found = certificate_checks(&certs, &e, &lot_facts);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].kind, AnomalyKind::UncertifiedSeller);
        assert_eq!(found[0].org.as_deref(), Some("trader-8"));
        assert_eq!(found[0].figures["role"], "seller");
        assert_eq!(found[1].kind, AnomalyKind::UncertifiedBuyer);
        assert_eq!(found[1].org.as_deref(), Some("brand-1"));
        assert_eq!(found[1].figures["role"], "buyer");
        assert!(
            found[1]
                .explanation
                .contains("buyer brand-1 was shipped fairtrade lot FT1"),
            "{}",
            found[1].explanation
        );
    }

    #[test]
    fn no_check_for_a_lot_without_claims() {
        let certs = Certificates::default();
        let e = ship("2025-03-01", "trader-8", "brand-1", &["PLAIN", "UNKNOWN"]);
        assert!(certificate_checks(&certs, &e, &lot_facts).is_empty());
        let e = harvest("2025-06-01", "coop-1", "beans", &[]);
        assert!(certificate_checks(&certs, &e, &lot_facts).is_empty());
    }

    #[test]
    fn lapsed_picks_the_most_recently_ending_certificate() {
        let old = Cert {
            id: "FLO-1",
            from: Some("2023-01-01"),
            to: Some("2023-12-31"),
            ..FT
        };
        let newer = Cert {
            id: "FLO-2",
            from: Some("2024-01-01"),
            to: Some("2024-12-31"),
            ..FT
        };
        let certs = with(&[
            certify("c2", "2023-12-01", "coop-1", None, newer),
            certify("c1", "2022-12-01", "coop-1", None, old),
        ]);
        match certs.status("coop-1", "fairtrade", "beans", None, day("2025-06-01")) {
            CertStatus::Lapsed {
                certificate,
                reason,
            } => {
                assert_eq!(certificate.certificate_id, "FLO-2");
                assert_eq!(
                    reason,
                    "certificate FLO-2 (Fairtrade) expired on 2024-12-31"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(certs.of_org("coop-1")[0].event_id, "c1");
    }
}
