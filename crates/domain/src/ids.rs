//! Identifiers in the one form lotline stores them.
//!
//! A lot, product class or other item id that is a GS1 identifier may arrive as an EPC URN or as a
//! GS1 Digital Link on any domain; lotline stores its canonical Digital Link
//! ([`crate::gs1::canonical_lot_id`]), check digit verified, so both forms name one lot. Any other
//! id is kept verbatim. This runs once, when an event is accepted: stored events are read back as
//! written.

use crate::event::{Event, EventKind, LotQuantity};
use crate::gs1::canonical_lot_id;
use crate::validate::Invalid;

/// A lot (or other item identifier) as lotline stores it, or why it is not one (a GS1 identifier
/// with a wrong check digit or a malformed key), naming `field`.
pub fn lot_id(field: &str, lot: &str) -> Result<String, Invalid> {
    canonical_lot_id(lot).map_err(|e| Invalid::new(field, e.to_string()))
}

/// The event with every item identifier in its stored form, naming the first field that is not
/// a valid identifier.
pub fn canonical_ids(mut event: Event) -> Result<Event, Invalid> {
    fn one(field: &str, lot: &mut String) -> Result<(), Invalid> {
        *lot = lot_id(field, lot)?;
        Ok(())
    }
    fn each(field: &str, items: &mut [LotQuantity]) -> Result<(), Invalid> {
        for (n, item) in items.iter_mut().enumerate() {
            one(&format!("{field}[{n}].lot"), &mut item.lot)?;
        }
        Ok(())
    }
    match &mut event.kind {
        EventKind::Harvest(h) => one("harvest.lot", &mut h.lot)?,
        EventKind::Transform(t) => {
            each("transform.inputs", &mut t.inputs)?;
            for (n, o) in t.outputs.iter_mut().enumerate() {
                one(&format!("transform.outputs[{n}].lot"), &mut o.lot)?;
            }
        }
        EventKind::Ship(m) => each("ship.lots", &mut m.lots)?,
        EventKind::Receive(m) => each("receive.lots", &mut m.lots)?,
        EventKind::Certify(c) => {
            if let Some(lot) = c.lot.as_mut() {
                one("certify.lot", lot)?;
            }
        }
        EventKind::Pay(p) => each("pay.lots", &mut p.lots)?,
        EventKind::Observe(o) => {
            each("observe.lots", &mut o.lots)?;
            for (n, epc) in o.epcs.iter_mut().enumerate() {
                one(&format!("observe.epcs[{n}]"), epc)?;
            }
            if let Some(parent) = o.parent.as_mut() {
                one("observe.parent", parent)?;
            }
        }
        EventKind::RegisterClass(c) => one("register_class.class", &mut c.class)?,
        EventKind::Correct(_)
        | EventKind::RegisterOrg(_)
        | EventKind::RegisterSite(_)
        | EventKind::RegisterPlot(_)
        | EventKind::RevokeToken(_)
        | EventKind::ConfirmMember(_)
        | EventKind::Review(_) => {}
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Chain;
    use crate::fixtures::*;

    #[test]
    fn gs1_lots_take_their_canonical_form_and_others_stay() {
        let urn = "urn:epc:class:lgtin:9506000.013435.L1";
        let kind = ship(&[(urn, kg("1")), ("CC-H-1", kg("2"))], "buyer", &[]);
        let event = event("s1", "coop", "2026-01-01", Chain::Cocoa, kind);
        let event = canonical_ids((*event).clone()).unwrap();
        let EventKind::Ship(m) = &event.kind else {
            panic!("a ship")
        };
        assert_eq!(m.lots[0].lot, "https://id.gs1.org/01/09506000134352/10/L1");
        assert_eq!(m.lots[1].lot, "CC-H-1");
    }

    #[test]
    fn a_wrong_check_digit_names_the_field() {
        let lot = "https://id.gs1.org/01/09506000134353/10/L1";
        let kind = ship(&[(lot, kg("1"))], "buyer", &[]);
        let event = event("s1", "coop", "2026-01-01", Chain::Cocoa, kind);
        let err = canonical_ids((*event).clone()).unwrap_err();
        assert_eq!(err.field, "ship.lots[0].lot");
    }
}
