//! Builders for wire events: the one kit that sample data, the CLI's bench, test kits and
//! benches build `lotline.v1.Event`s with, so that an event's shape is written down once.

use crate::v1;
use crate::v1::event::Kind;

/// An event of `org` at `time` (RFC 3339) in `chain` (empty for none), without site or
/// extensions.
pub fn event(
    id: impl Into<String>,
    time: &str,
    org: impl Into<String>,
    chain: &str,
    kind: Kind,
) -> v1::Event {
    v1::Event {
        event_id: id.into(),
        event_time: time.into(),
        org: org.into(),
        chain: chain.into(),
        site: String::new(),
        extensions: Default::default(),
        kind: Some(kind),
    }
}

/// An amount (anything that prints as a decimal) in `unit`.
pub fn quantity(amount: impl ToString, unit: &str) -> Option<v1::Quantity> {
    Some(v1::Quantity {
        amount: amount.to_string(),
        unit: unit.into(),
    })
}

/// An amount in kilograms.
pub fn kg(amount: impl ToString) -> Option<v1::Quantity> {
    quantity(amount, "kg")
}

/// An amount of a lot.
pub fn lot_quantity(lot: impl Into<String>, amount: impl ToString, unit: &str) -> v1::LotQuantity {
    v1::LotQuantity {
        lot: lot.into(),
        quantity: quantity(amount, unit),
    }
}

/// A lot a transform makes, with its claims.
pub fn output(
    lot: impl Into<String>,
    product: &str,
    amount: impl ToString,
    unit: &str,
    claims: &[&str],
) -> v1::OutputLot {
    v1::OutputLot {
        lot: lot.into(),
        product: product.into(),
        quantity: quantity(amount, unit),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    }
}

/// An org's registration, with no GLN and no membership.
pub fn register_org(name: impl Into<String>, role: v1::OrgRole, country: &str) -> Kind {
    Kind::RegisterOrg(v1::RegisterOrg {
        name: name.into(),
        role: role as i32,
        country: country.into(),
        ..Default::default()
    })
}

/// A co-op's confirmation that `member` is its member from `valid_from` (YYYY-MM-DD; empty:
/// the event's date), open-ended.
pub fn confirm_member(member: impl Into<String>, valid_from: &str) -> Kind {
    Kind::ConfirmMember(v1::ConfirmMember {
        member: member.into(),
        valid_from: valid_from.into(),
        valid_to: String::new(),
    })
}

/// A plot's registration: its GeoJSON, area in hectares (a decimal, empty for none) and
/// country.
pub fn register_plot(
    plot: impl Into<String>,
    geometry: String,
    area_ha: &str,
    country: &str,
) -> Kind {
    Kind::RegisterPlot(v1::RegisterPlot {
        plot: plot.into(),
        geometry,
        area_ha: area_ha.into(),
        country: country.into(),
    })
}

/// A harvest of `lot` on `plot`, in kilograms.
pub fn harvest(
    lot: impl Into<String>,
    plot: impl Into<String>,
    product: &str,
    kilograms: impl ToString,
) -> Kind {
    Kind::Harvest(v1::Harvest {
        lot: lot.into(),
        plot: plot.into(),
        product: product.into(),
        quantity: kg(kilograms),
        ..Default::default()
    })
}

/// A shipment of `(lot, kg)` to `to`.
pub fn ship<L: Into<String>>(
    lots: impl IntoIterator<Item = (L, u64)>,
    to: impl Into<String>,
) -> Kind {
    Kind::Ship(v1::Ship {
        lots: lots
            .into_iter()
            .map(|(lot, q)| lot_quantity(lot, q, "kg"))
            .collect(),
        to_org: to.into(),
        documents: vec![],
    })
}
