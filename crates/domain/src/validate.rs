//! Structural validation: what makes an event unacceptable on its own, whatever
//! else is in the log. Checks that need the log (registered org, duplicates) are
//! the store's; business anomalies are never rejections.

use std::collections::HashSet;
use std::fmt;

use rust_decimal::Decimal;

use crate::event::{Event, EventKind, LotQuantity, RevokeToken};
use crate::geo::check_geometry;
use crate::quantity::Quantity;

/// Why an event is structurally invalid: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The longest identifier (event, org, lot, site, plot) lotline accepts.
pub const MAX_ID_LEN: usize = 512;

/// Checks an event's structure. Returns the first problem found.
pub fn validate(event: &Event) -> Result<(), Invalid> {
    id("event_id", &event.id)?;
    id("org", &event.org)?;
    // Revocation ids are reserved: no other event may take a token's revocation id first.
    let revocation = event.id.starts_with(RevokeToken::ID_PREFIX);
    match &event.kind {
        EventKind::RevokeToken(r) if event.id != RevokeToken::event_id(&r.token_id) => {
            return Err(Invalid::new(
                "event_id",
                format!(
                    "a token revocation's id is {:?}",
                    RevokeToken::event_id(&r.token_id)
                ),
            ));
        }
        EventKind::RevokeToken(_) => {}
        _ if revocation => {
            return Err(Invalid::new(
                "event_id",
                format!(
                    "ids starting {:?} are reserved for token revocations",
                    RevokeToken::ID_PREFIX
                ),
            ));
        }
        _ => {}
    }
    if let Some(site) = &event.site {
        id("site", site)?;
    }
    extensions(event)?;
    let needs_chain = matches!(
        event.kind,
        EventKind::Harvest(_)
            | EventKind::Transform(_)
            | EventKind::Ship(_)
            | EventKind::Receive(_)
            | EventKind::Pay(_)
    );
    if needs_chain && event.chain.is_none() {
        return Err(Invalid::new(
            "chain",
            "is required for lot events (cocoa, coffee or textile)",
        ));
    }
    match &event.kind {
        EventKind::Harvest(h) => {
            id("harvest.lot", &h.lot)?;
            id("harvest.plot", &h.plot)?;
            name("harvest.product", &h.product)?;
            claims("harvest.claims", &h.claims)?;
            positive("harvest.quantity", &h.quantity)?;
            if let (Some(start), Some(end)) = (h.harvest_start, h.harvest_end)
                && start > end
            {
                return Err(Invalid::new(
                    "harvest.harvest_end",
                    "is before harvest_start",
                ));
            }
        }
        EventKind::Transform(t) => {
            if t.inputs.is_empty() {
                return Err(Invalid::new(
                    "transform.inputs",
                    "at least one input is required",
                ));
            }
            if t.outputs.is_empty() {
                return Err(Invalid::new(
                    "transform.outputs",
                    "at least one output is required",
                ));
            }
            lot_quantities("transform.inputs", &t.inputs)?;
            at_most("transform.outputs", t.outputs.len(), MAX_LOTS)?;
            // Linear in the number of inputs and outputs, however many there are.
            let inputs: HashSet<&str> = t.inputs.iter().map(|i| i.lot.as_str()).collect();
            let mut outputs: HashSet<&str> = HashSet::with_capacity(t.outputs.len());
            for (n, o) in t.outputs.iter().enumerate() {
                id(&format!("transform.outputs[{n}].lot"), &o.lot)?;
                name(&format!("transform.outputs[{n}].product"), &o.product)?;
                positive(&format!("transform.outputs[{n}].quantity"), &o.quantity)?;
                claims(&format!("transform.outputs[{n}].claims"), &o.claims)?;
                if inputs.contains(o.lot.as_str()) {
                    return Err(Invalid::new(
                        format!("transform.outputs[{n}].lot"),
                        format!("lot {:?} is both an input and an output", o.lot),
                    ));
                }
                if !outputs.insert(&o.lot) {
                    return Err(Invalid::new(
                        format!("transform.outputs[{n}].lot"),
                        format!("lot {:?} is listed twice as an output", o.lot),
                    ));
                }
            }
            name("transform.process", &t.process)?;
            if let Some(r) = t.conversion_ratio
                && (r <= Decimal::ZERO || r > Decimal::from(1000))
            {
                return Err(Invalid::new(
                    "transform.conversion_ratio",
                    "must be greater than zero and at most 1000",
                ));
            }
        }
        EventKind::Ship(m) | EventKind::Receive(m) => {
            let name = if matches!(event.kind, EventKind::Ship(_)) {
                "ship"
            } else {
                "receive"
            };
            if m.lots.is_empty() {
                return Err(Invalid::new(
                    format!("{name}.lots"),
                    "at least one lot is required",
                ));
            }
            lot_quantities(&format!("{name}.lots"), &m.lots)?;
            let party = if name == "ship" {
                "ship.to_org"
            } else {
                "receive.from_org"
            };
            id(party, &m.counterparty)?;
            if m.counterparty == event.org {
                return Err(Invalid::new(
                    party,
                    "must be another org than the event's org",
                ));
            }
            at_most(
                &format!("{name}.documents"),
                m.documents.len(),
                MAX_DOCUMENTS,
            )?;
            for (n, d) in m.documents.iter().enumerate() {
                text(&format!("{name}.documents[{n}].kind"), &d.kind)?;
                id(&format!("{name}.documents[{n}].id"), &d.id)?;
            }
        }
        EventKind::Certify(c) => {
            name("certify.standard", &c.standard)?;
            id("certify.certificate_id", &c.certificate_id)?;
            text("certify.outcome", &c.outcome)?;
            at_most("certify.products", c.products.len(), MAX_CLAIMS)?;
            for (n, p) in c.products.iter().enumerate() {
                name(&format!("certify.products[{n}]"), p)?;
            }
            if let Some(lot) = &c.lot {
                id("certify.lot", lot)?;
            }
            if let Some(org) = &c.subject_org {
                id("certify.subject_org", org)?;
            }
            if let (Some(from), Some(to)) = (c.valid_from, c.valid_to)
                && from > to
            {
                return Err(Invalid::new("certify.valid_to", "is before valid_from"));
            }
        }
        EventKind::Pay(p) => {
            if p.lots.is_empty() {
                return Err(Invalid::new("pay.lots", "at least one lot is required"));
            }
            lot_quantities("pay.lots", &p.lots)?;
            id("pay.payee_org", &p.payee_org)?;
            if p.currency.len() != 3 || !p.currency.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(Invalid::new(
                    "pay.currency",
                    "must be an ISO 4217 code such as USD",
                ));
            }
            if p.price_per_unit < Decimal::ZERO {
                return Err(Invalid::new("pay.price_per_unit", "must not be negative"));
            }
            if p.premium_per_unit.is_some_and(|v| v < Decimal::ZERO) {
                return Err(Invalid::new("pay.premium_per_unit", "must not be negative"));
            }
            name("pay.price_unit", &p.price_unit)?;
        }
        EventKind::Observe(o) => {
            name("observe.event_type", &o.event_type)?;
            text("observe.action", &o.action)?;
            text("observe.biz_step", &o.biz_step)?;
            text("observe.disposition", &o.disposition)?;
            at_most("observe.lots", o.lots.len(), MAX_LOTS)?;
            for (n, l) in o.lots.iter().enumerate() {
                id(&format!("observe.lots[{n}].lot"), &l.lot)?;
                positive(&format!("observe.lots[{n}].quantity"), &l.quantity)?;
            }
            at_most("observe.epcs", o.epcs.len(), MAX_LOTS)?;
            for (n, e) in o.epcs.iter().enumerate() {
                id(&format!("observe.epcs[{n}]"), e)?;
            }
            if let Some(parent) = &o.parent {
                id("observe.parent", parent)?;
            }
        }
        EventKind::Correct(c) => {
            id("correct.corrected_event_id", &c.corrected_event_id)?;
            if c.corrected_event_id == event.id {
                return Err(Invalid::new(
                    "correct.corrected_event_id",
                    "an event cannot correct itself",
                ));
            }
            name("correct.reason", &c.reason)?;
            at_most(
                "correct.corrective_event_ids",
                c.corrective_event_ids.len(),
                MAX_LOTS,
            )?;
            for (n, e) in c.corrective_event_ids.iter().enumerate() {
                id(&format!("correct.corrective_event_ids[{n}]"), e)?;
            }
        }
        EventKind::RegisterOrg(o) => {
            name("register_org.name", &o.name)?;
            if let Some(party) = &o.party {
                id("register_org.party", party)?;
            }
            if let Some(gln) = &o.gln {
                id("register_org.gln", gln)?;
            }
            if let Some(coop) = &o.member_of {
                id("register_org.member_of", coop)?;
                if *coop == event.org {
                    return Err(Invalid::new(
                        "register_org.member_of",
                        "an org cannot be a member of itself",
                    ));
                }
            }
            country("register_org.country", &o.country)?;
        }
        EventKind::RegisterSite(s) => {
            id("register_site.site", &s.site)?;
            text("register_site.name", &s.name)?;
            if let Some(gln) = &s.gln {
                id("register_site.gln", gln)?;
            }
            country("register_site.country", &s.country)?;
        }
        EventKind::RegisterPlot(p) => {
            id("register_plot.plot", &p.plot)?;
            if p.geometry.len() > MAX_GEOMETRY_BYTES {
                return Err(Invalid::new(
                    "register_plot.geometry",
                    format!("is longer than {MAX_GEOMETRY_BYTES} bytes"),
                ));
            }
            check_geometry(&p.geometry).map_err(|r| Invalid::new("register_plot.geometry", r))?;
            if p.area_ha.is_some_and(|a| a <= Decimal::ZERO) {
                return Err(Invalid::new(
                    "register_plot.area_ha",
                    "must be greater than zero",
                ));
            }
            country("register_plot.country", &p.country)?;
        }
        EventKind::RegisterClass(c) => {
            id("register_class.class", &c.class)?;
            if let Some(product) = &c.product {
                id("register_class.product", product)?;
            }
            if c.attributes.len() > MAX_CLASS_ATTRIBUTES {
                return Err(Invalid::new(
                    "register_class.attributes",
                    format!("more than {MAX_CLASS_ATTRIBUTES} attributes"),
                ));
            }
            for (key, value) in &c.attributes {
                id("register_class.attributes", key)?;
                if value.len() > MAX_CLASS_ATTRIBUTE_LEN {
                    return Err(Invalid::new(
                        format!("register_class.attributes[{key}]"),
                        format!("is longer than {MAX_CLASS_ATTRIBUTE_LEN} bytes"),
                    ));
                }
            }
        }
        EventKind::RevokeToken(r) => {
            id("revoke_token.token_id", &r.token_id)?;
            text("revoke_token.reason", &r.reason)?;
        }
        EventKind::ConfirmMember(c) => {
            id("confirm_member.member", &c.member)?;
            if c.member == event.org {
                return Err(Invalid::new(
                    "confirm_member.member",
                    "an org cannot be a member of itself",
                ));
            }
            if let (Some(from), Some(to)) = (c.valid_from, c.valid_to)
                && to < from
            {
                return Err(Invalid::new(
                    "confirm_member.valid_to",
                    "is before valid_from",
                ));
            }
        }
        EventKind::Review(r) => {
            if !crate::anomaly::is_anomaly_id(&r.anomaly) {
                return Err(Invalid::new(
                    "review.anomaly",
                    format!(
                        "{:?} is not an anomaly id (a kind, a dash and 16 hex digits, as the \
                         anomaly listing prints it)",
                        r.anomaly
                    ),
                ));
            }
            text("review.note", &r.note)?;
            if r.verdict == crate::event::Verdict::Disputed && r.note.trim().is_empty() {
                return Err(Invalid::new(
                    "review.note",
                    "a dispute says why: the note is required",
                ));
            }
        }
    }
    Ok(())
}

/// The most lots (inputs, outputs, EPCs, corrective events) one event may list.
pub const MAX_LOTS: usize = 1_000;
/// The most business documents one movement may carry.
pub const MAX_DOCUMENTS: usize = 64;
/// The most claims (or certified products) one lot or certificate may carry.
pub const MAX_CLAIMS: usize = 64;
/// The most extension entries one event may carry, and the longest value of one.
pub const MAX_EXTENSIONS: usize = 64;
pub const MAX_EXTENSION_LEN: usize = 16 * 1024;
/// Extensions under this prefix hold an imported event's EPCIS form and its document's
/// `@context`, kept verbatim: an ObjectEvent with a thousand EPCs is larger than
/// [`MAX_EXTENSION_LEN`], so they are bounded only by the whole event's size, which every door
/// checks before parsing (`serve --max-event-bytes`).
pub const KEPT_EPCIS_PREFIX: &str = "epcis:";
/// The longest free-text field (names, reasons, processes, outcomes, units).
pub const MAX_TEXT_LEN: usize = 1_024;
/// The longest plot geometry, in bytes of GeoJSON text.
pub const MAX_GEOMETRY_BYTES: usize = 128 * 1024;

/// A product class carries at most this many other attributes, each at most this long.
const MAX_CLASS_ATTRIBUTES: usize = 64;
const MAX_CLASS_ATTRIBUTE_LEN: usize = 16 * 1024;

fn required(field: &str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "is required"));
    }
    Ok(())
}

/// A required free-text field: not blank, at most [`MAX_TEXT_LEN`] bytes.
fn name(field: &str, value: &str) -> Result<(), Invalid> {
    required(field, value)?;
    text(field, value)
}

/// An optional free-text field: at most [`MAX_TEXT_LEN`] bytes.
fn text(field: &str, value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_TEXT_LEN {
        return Err(Invalid::new(
            field,
            format!("is longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    Ok(())
}

fn at_most(field: &str, count: usize, limit: usize) -> Result<(), Invalid> {
    if count > limit {
        return Err(Invalid::new(
            field,
            format!("lists {count} entries, more than the limit of {limit}"),
        ));
    }
    Ok(())
}

fn claims(field: &str, claims: &[String]) -> Result<(), Invalid> {
    at_most(field, claims.len(), MAX_CLAIMS)?;
    for (n, claim) in claims.iter().enumerate() {
        name(&format!("{field}[{n}]"), claim)?;
    }
    Ok(())
}

fn extensions(event: &Event) -> Result<(), Invalid> {
    at_most("extensions", event.extensions.len(), MAX_EXTENSIONS)?;
    for (key, value) in &event.extensions {
        id("extensions", key)?;
        if value.len() > MAX_EXTENSION_LEN && !key.starts_with(KEPT_EPCIS_PREFIX) {
            return Err(Invalid::new(
                format!("extensions[{key}]"),
                format!("is longer than {MAX_EXTENSION_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

fn id(field: &str, value: &str) -> Result<(), Invalid> {
    required(field, value)?;
    if value.len() > MAX_ID_LEN {
        return Err(Invalid::new(
            field,
            format!("is longer than {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "contains control characters"));
    }
    Ok(())
}

fn country(field: &str, value: &str) -> Result<(), Invalid> {
    if value.len() != 2 || !value.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Invalid::new(
            field,
            "must be an ISO 3166-1 alpha-2 code such as VN",
        ));
    }
    Ok(())
}

/// The largest amount an event may state, in any unit (a million tonnes in kg).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;
/// The most decimal places an amount may have.
pub const MAX_DECIMALS: u32 = 6;

fn positive(field: &str, q: &Quantity) -> Result<(), Invalid> {
    if q.amount <= Decimal::ZERO {
        return Err(Invalid::new(
            field,
            format!("must be greater than zero, got {}", q.amount),
        ));
    }
    if q.amount > Decimal::from(MAX_AMOUNT) {
        return Err(Invalid::new(
            field,
            format!("{} is more than {MAX_AMOUNT}", q.amount),
        ));
    }
    if q.amount.normalize().scale() > MAX_DECIMALS {
        return Err(Invalid::new(
            field,
            format!("{} has more than {MAX_DECIMALS} decimal places", q.amount),
        ));
    }
    Ok(())
}

fn lot_quantities(field: &str, items: &[LotQuantity]) -> Result<(), Invalid> {
    at_most(field, items.len(), MAX_LOTS)?;
    for (n, item) in items.iter().enumerate() {
        id(&format!("{field}[{n}].lot"), &item.lot)?;
        positive(&format!("{field}[{n}].quantity"), &item.quantity)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use chrono::DateTime;

    use super::*;
    use crate::event::{Chain, Harvest};
    use crate::quantity::Unit;

    fn harvest(amount: &str) -> Event {
        Event {
            id: "h-1".into(),
            time: DateTime::parse_from_rfc3339("2026-03-01T08:00:00+07:00").unwrap(),
            org: "coop".into(),
            chain: Some(Chain::Cocoa),
            site: None,
            extensions: BTreeMap::new(),
            kind: EventKind::Harvest(Harvest {
                lot: "LOT-1".into(),
                plot: "P-1".into(),
                product: "wet cocoa beans".into(),
                quantity: Quantity::new(Decimal::from_str(amount).unwrap(), Unit::Kilogram),
                harvest_start: None,
                harvest_end: None,
                custody: None,
                claims: vec![],
            }),
        }
    }

    #[test]
    fn quantities_must_be_positive_bounded_and_not_too_fine() {
        assert!(validate(&harvest("120.5")).is_ok());
        assert!(
            validate(&harvest("0"))
                .unwrap_err()
                .reason
                .contains("greater than zero")
        );
        assert!(validate(&harvest("-3")).is_err());
        assert!(
            validate(&harvest("1000000000001"))
                .unwrap_err()
                .reason
                .contains("more than")
        );
        assert!(
            validate(&harvest("0.0000001"))
                .unwrap_err()
                .reason
                .contains("decimal places")
        );
        assert!(
            validate(&harvest("1.500000000")).is_ok(),
            "trailing zeros are not precision"
        );
    }

    #[test]
    fn ids_and_chains_are_required_and_clean() {
        let mut e = harvest("1");
        e.id = "bad\u{0}id".into();
        assert_eq!(validate(&e).unwrap_err().field, "event_id");
        let mut e = harvest("1");
        e.chain = None;
        assert_eq!(validate(&e).unwrap_err().field, "chain");
        let mut e = harvest("1");
        e.org = " ".into();
        assert_eq!(validate(&e).unwrap_err().field, "org");
    }

    fn with(kind: EventKind) -> Event {
        let mut e = harvest("1");
        e.kind = kind;
        e
    }

    fn certify() -> crate::event::Certify {
        crate::event::Certify {
            standard: "Fairtrade".into(),
            certificate_id: "FLO-1".into(),
            products: vec!["cocoa_beans".into()],
            valid_from: None,
            valid_to: None,
            outcome: "certified".into(),
            lot: Some("LOT-1".into()),
            subject_org: Some("coop".into()),
        }
    }

    fn register_org() -> crate::event::RegisterOrg {
        crate::event::RegisterOrg {
            name: "Co-op".into(),
            role: crate::event::OrgRole::Cooperative,
            country: "CI".into(),
            gln: Some("0614141000005".into()),
            member_of: Some("union".into()),
            party: None,
        }
    }

    #[test]
    fn a_review_names_an_anomaly_and_a_dispute_says_why() {
        use crate::event::{Review, Verdict};
        let id = crate::anomaly::anomaly_id(crate::AnomalyKind::UnknownOrigin, "e1", "LOT-1");
        let review = |anomaly: &str, verdict, note: &str| {
            with(EventKind::Review(Review {
                anomaly: anomaly.into(),
                verdict,
                note: note.into(),
            }))
        };
        assert_eq!(validate(&review(&id, Verdict::Acknowledged, "")), Ok(()));
        assert_eq!(
            validate(&review(&id, Verdict::Disputed, "a pallet")),
            Ok(())
        );
        let field = |e: Event| validate(&e).map_err(|i| i.field);
        assert_eq!(
            field(review(&id, Verdict::Disputed, "  ")),
            Err("review.note".into())
        );
        assert_eq!(
            field(review("LOT-1", Verdict::Acknowledged, "x")),
            Err("review.anomaly".into())
        );
        assert_eq!(
            field(review(
                &id,
                Verdict::Acknowledged,
                &"x".repeat(MAX_TEXT_LEN + 1)
            )),
            Err("review.note".into())
        );
    }

    #[test]
    fn every_id_bearing_field_is_checked_like_an_id() {
        use crate::event::{Correct, RegisterSite};
        use crate::fixtures::{kg, ship};
        const BAD: &str = "LOT-1\u{0}c";
        let cases: Vec<(&str, Event)> = vec![
            (
                "confirm_member.member",
                with(EventKind::ConfirmMember(crate::event::ConfirmMember {
                    member: BAD.into(),
                    valid_from: None,
                    valid_to: None,
                })),
            ),
            ("certify.lot", {
                let mut c = certify();
                c.lot = Some(BAD.into());
                with(EventKind::Certify(c))
            }),
            ("certify.subject_org", {
                let mut c = certify();
                c.subject_org = Some(BAD.into());
                with(EventKind::Certify(c))
            }),
            ("certify.certificate_id", {
                let mut c = certify();
                c.certificate_id = BAD.into();
                with(EventKind::Certify(c))
            }),
            ("register_org.member_of", {
                let mut o = register_org();
                o.member_of = Some(BAD.into());
                with(EventKind::RegisterOrg(o))
            }),
            ("register_org.gln", {
                let mut o = register_org();
                o.gln = Some(BAD.into());
                with(EventKind::RegisterOrg(o))
            }),
            (
                "register_site.gln",
                with(EventKind::RegisterSite(RegisterSite {
                    site: "S-1".into(),
                    name: "Store".into(),
                    gln: Some(BAD.into()),
                    country: "CI".into(),
                })),
            ),
            (
                "correct.corrective_event_ids[1]",
                with(EventKind::Correct(Correct {
                    corrected_event_id: "h-0".into(),
                    reason: "typo".into(),
                    corrective_event_ids: vec!["h-2".into(), BAD.into()],
                })),
            ),
            (
                "ship.documents[0].id",
                with(ship(&[("LOT-1", kg("1"))], "buyer", &[("invoice", BAD)])),
            ),
            ("ship.to_org", with(ship(&[("LOT-1", kg("1"))], BAD, &[]))),
            ("site", {
                let mut e = harvest("1");
                e.site = Some(BAD.into());
                e
            }),
        ];
        for (field, event) in cases {
            let err = validate(&event).expect_err(field);
            assert_eq!(err.field, field, "{err}");
            assert!(err.reason.contains("control"), "{err}");
        }
    }

    #[test]
    fn caps_name_the_field_and_the_limit() {
        use crate::fixtures::{kg, ship};
        let lots: Vec<(String, Quantity)> = (0..=MAX_LOTS)
            .map(|n| (format!("L-{n}"), kg("1")))
            .collect();
        let lots: Vec<(&str, Quantity)> =
            lots.iter().map(|(l, q)| (l.as_str(), q.clone())).collect();
        let err = validate(&with(ship(&lots, "buyer", &[]))).unwrap_err();
        assert_eq!(err.field, "ship.lots");
        assert!(err.reason.contains(&MAX_LOTS.to_string()), "{err}");

        let mut c = certify();
        c.outcome = "x".repeat(MAX_TEXT_LEN + 1);
        let err = validate(&with(EventKind::Certify(c))).unwrap_err();
        assert_eq!(err.field, "certify.outcome");
        assert!(err.reason.contains(&MAX_TEXT_LEN.to_string()), "{err}");

        let mut e = harvest("1");
        for n in 0..=MAX_EXTENSIONS {
            e.extensions.insert(format!("ext:{n}"), "1".into());
        }
        assert_eq!(validate(&e).unwrap_err().field, "extensions");
        let mut e = harvest("1");
        e.extensions
            .insert("ext:big".into(), "x".repeat(MAX_EXTENSION_LEN + 1));
        assert_eq!(validate(&e).unwrap_err().field, "extensions[ext:big]");
        // An imported event's EPCIS form is bounded by the event's size, not this cap.
        let mut e = harvest("1");
        e.extensions
            .insert("epcis:event".into(), "x".repeat(4 * MAX_EXTENSION_LEN));
        assert!(validate(&e).is_ok());
    }

    #[test]
    fn a_wide_transform_is_checked_in_linear_time() {
        use crate::fixtures::{kg, output, transform};
        // MAX_LOTS inputs and outputs: the quadratic check took ~10^6 comparisons per event.
        let inputs: Vec<String> = (0..MAX_LOTS).map(|n| format!("IN-{n}")).collect();
        let inputs: Vec<(&str, Quantity)> = inputs.iter().map(|l| (l.as_str(), kg("1"))).collect();
        let mut outputs: Vec<_> = (0..MAX_LOTS)
            .map(|n| output(&format!("OUT-{n}"), "beans", kg("1"), None, &[]))
            .collect();
        assert!(validate(&with(transform("mix", &inputs, outputs.clone(), None))).is_ok());
        outputs[MAX_LOTS - 1].lot = "IN-3".into();
        let err = validate(&with(transform("mix", &inputs, outputs, None))).unwrap_err();
        assert_eq!(
            err.field,
            format!("transform.outputs[{}].lot", MAX_LOTS - 1)
        );
    }
}
