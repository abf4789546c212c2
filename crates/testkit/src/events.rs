//! Builders for wire events, with fixed times so tests are repeatable.

use lotline_proto::v1::event::Kind;
use lotline_proto::{build, v1};

pub const TIME: &str = "2026-03-01T08:00:00+07:00";

pub use lotline_proto::build::{kg, quantity as qty};

pub fn event(id: &str, org: &str, kind: Kind) -> v1::Event {
    build::event(id, TIME, org, "cocoa", kind)
}

pub fn register_org(org: &str) -> v1::Event {
    event(
        &format!("reg-{org}"),
        org,
        build::register_org(format!("{org} ltd"), v1::OrgRole::Cooperative, "VN"),
    )
}

pub fn harvest(id: &str, org: &str, lot: &str, amount: impl ToString) -> v1::Event {
    event(
        id,
        org,
        build::harvest(lot, format!("plot-of-{lot}"), "wet cocoa beans", amount),
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
                .map(|(lot, q)| build::lot_quantity(*lot, q, "kg"))
                .collect(),
            outputs: outputs
                .iter()
                .map(|(lot, q)| build::output(*lot, "dry cocoa beans", q, "kg", &[]))
                .collect(),
            process: "drying".into(),
            ..Default::default()
        }),
    )
}

pub fn ship(id: &str, org: &str, lot: &str, amount: u64, to: &str) -> v1::Event {
    event(id, org, build::ship([(lot, amount)], to))
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
