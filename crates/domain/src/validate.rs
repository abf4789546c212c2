//! Structural validation: what makes an event unacceptable on its own, whatever
//! else is in the log. Checks that need the log (registered org, duplicates) are
//! the store's; business anomalies are never rejections.

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
            required("harvest.product", &h.product)?;
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
            for (n, o) in t.outputs.iter().enumerate() {
                id(&format!("transform.outputs[{n}].lot"), &o.lot)?;
                required(&format!("transform.outputs[{n}].product"), &o.product)?;
                positive(&format!("transform.outputs[{n}].quantity"), &o.quantity)?;
                if t.inputs.iter().any(|i| i.lot == o.lot) {
                    return Err(Invalid::new(
                        format!("transform.outputs[{n}].lot"),
                        format!("lot {:?} is both an input and an output", o.lot),
                    ));
                }
                if t.outputs[..n].iter().any(|p| p.lot == o.lot) {
                    return Err(Invalid::new(
                        format!("transform.outputs[{n}].lot"),
                        format!("lot {:?} is listed twice as an output", o.lot),
                    ));
                }
            }
            required("transform.process", &t.process)?;
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
        }
        EventKind::Certify(c) => {
            required("certify.standard", &c.standard)?;
            required("certify.certificate_id", &c.certificate_id)?;
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
            required("pay.price_unit", &p.price_unit)?;
        }
        EventKind::Observe(o) => {
            required("observe.event_type", &o.event_type)?;
            for (n, l) in o.lots.iter().enumerate() {
                id(&format!("observe.lots[{n}].lot"), &l.lot)?;
                positive(&format!("observe.lots[{n}].quantity"), &l.quantity)?;
            }
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
            required("correct.reason", &c.reason)?;
        }
        EventKind::RegisterOrg(o) => {
            required("register_org.name", &o.name)?;
            if let Some(party) = &o.party {
                id("register_org.party", party)?;
            }
            country("register_org.country", &o.country)?;
        }
        EventKind::RegisterSite(s) => {
            id("register_site.site", &s.site)?;
            country("register_site.country", &s.country)?;
        }
        EventKind::RegisterPlot(p) => {
            id("register_plot.plot", &p.plot)?;
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
            if r.reason.len() > MAX_ID_LEN {
                return Err(Invalid::new(
                    "revoke_token.reason",
                    format!("is longer than {MAX_ID_LEN} bytes"),
                ));
            }
        }
    }
    Ok(())
}

/// A product class carries at most this many other attributes, each at most this long.
const MAX_CLASS_ATTRIBUTES: usize = 64;
const MAX_CLASS_ATTRIBUTE_LEN: usize = 16 * 1024;

fn required(field: &str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "is required"));
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
}
