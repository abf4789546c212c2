//! Builders for wire events, with fixed times so tests are repeatable.

use lotline_proto::v1;
use lotline_proto::v1::event::Kind;

pub const TIME: &str = "2026-03-01T08:00:00+07:00";

pub fn event(id: &str, org: &str, kind: Kind) -> v1::Event {
    v1::Event {
        event_id: id.into(),
        event_time: TIME.into(),
        org: org.into(),
        chain: "cocoa".into(),
        site: String::new(),
        extensions: Default::default(),
        kind: Some(kind),
    }
}

pub fn qty(amount: impl ToString, unit: &str) -> Option<v1::Quantity> {
    Some(v1::Quantity {
        amount: amount.to_string(),
        unit: unit.into(),
    })
}

pub fn kg(amount: impl ToString) -> Option<v1::Quantity> {
    qty(amount, "kg")
}

pub fn register_org(org: &str) -> v1::Event {
    event(
        &format!("reg-{org}"),
        org,
        Kind::RegisterOrg(v1::RegisterOrg {
            name: format!("{org} ltd"),
            role: v1::OrgRole::Cooperative as i32,
            country: "VN".into(),
            ..Default::default()
        }),
    )
}

pub fn harvest(id: &str, org: &str, lot: &str, amount: impl ToString) -> v1::Event {
    event(
        id,
        org,
        Kind::Harvest(v1::Harvest {
            lot: lot.into(),
            plot: format!("plot-of-{lot}"),
            product: "wet cocoa beans".into(),
            quantity: kg(amount),
            ..Default::default()
        }),
    )
}

/// A transform of `(lot, kg)` inputs into `(lot, kg)` outputs.
pub fn transform(
    id: &str,
    org: &str,
    inputs: &[(&str, u64)],
    outputs: &[(&str, u64)],
) -> v1::Event {
    event(
        id,
        org,
        Kind::Transform(v1::Transform {
            inputs: inputs
                .iter()
                .map(|(lot, q)| v1::LotQuantity {
                    lot: (*lot).into(),
                    quantity: kg(q),
                })
                .collect(),
            outputs: outputs
                .iter()
                .map(|(lot, q)| v1::OutputLot {
                    lot: (*lot).into(),
                    product: "dry cocoa beans".into(),
                    quantity: kg(q),
                    ..Default::default()
                })
                .collect(),
            process: "drying".into(),
            ..Default::default()
        }),
    )
}

pub fn ship(id: &str, org: &str, lot: &str, amount: u64, to: &str) -> v1::Event {
    event(
        id,
        org,
        Kind::Ship(v1::Ship {
            lots: vec![v1::LotQuantity {
                lot: lot.into(),
                quantity: kg(amount),
            }],
            to_org: to.into(),
            documents: vec![],
        }),
    )
}

pub fn correct(id: &str, org: &str, corrected: &str) -> v1::Event {
    event(
        id,
        org,
        Kind::Correct(v1::Correct {
            corrected_event_id: corrected.into(),
            reason: "recorded in error".into(),
            corrective_event_ids: vec![],
        }),
    )
}
