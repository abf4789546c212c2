//! Wire <-> domain, in one place. Wire to domain is fallible and names the field
//! that is wrong; domain to wire always succeeds and writes the canonical form
//! (normalised decimals, canonical unit symbols, RFC 3339 times with offset).

use chrono::{DateTime, FixedOffset, SecondsFormat};
use lotline_domain::audit::balance::Ledger;
use lotline_domain::audit::chain::{ChainReport, StageEntry};
use lotline_domain::audit::eudr::DdsReference;
use lotline_domain::ids::canonical_ids;
pub use lotline_domain::ids::lot_id;
use lotline_domain::lineage::{Anomaly, Descendant, LotState, Origin, TraceBack, TraceForward};
use lotline_domain::{CustodyModel, Event, Invalid, OrgRole, Outcome, Quantity};
use lotline_record::RecordError;
use prost::Message;
use rust_decimal::Decimal;

use crate::v1;

/// Converts a wire event into a domain event, naming the first bad field. Item identifiers take
/// their stored form ([`lotline_domain::ids`]): a GS1 identifier its canonical Digital Link.
pub fn event_from_wire(e: &v1::Event) -> Result<Event, Invalid> {
    event_from_bytes(&e.encode_to_vec())
}

/// [`event_from_wire`] from the protobuf bytes of a `lotline.v1.Event` (a door that keeps the
/// bytes anyway encodes the message once).
pub fn event_from_bytes(bytes: &[u8]) -> Result<Event, Invalid> {
    let event = lotline_record::decode_event(bytes).map_err(|err| match err {
        RecordError::Invalid(invalid) => invalid,
        RecordError::Decode(d) => Invalid::new("event", d.to_string()),
    })?;
    canonical_ids(event)
}

/// The kind of a wire event, by name.
pub fn kind_name(kind: &v1::event::Kind) -> lotline_domain::KindName {
    use lotline_domain::KindName as N;
    use v1::event::Kind as K;
    match kind {
        K::Harvest(_) => N::Harvest,
        K::Transform(_) => N::Transform,
        K::Ship(_) => N::Ship,
        K::Receive(_) => N::Receive,
        K::Certify(_) => N::Certify,
        K::Pay(_) => N::Pay,
        K::Correct(_) => N::Correct,
        K::Observe(_) => N::Observe,
        K::RegisterOrg(_) => N::RegisterOrg,
        K::RegisterSite(_) => N::RegisterSite,
        K::RegisterPlot(_) => N::RegisterPlot,
        K::RegisterClass(_) => N::RegisterClass,
        K::RevokeToken(_) => N::RevokeToken,
        K::ConfirmMember(_) => N::ConfirmMember,
        K::Review(_) => N::Review,
    }
}

/// The canonical wire form of an event: the message whose encoding is the event's record bytes.
pub fn event_to_wire(e: &Event) -> v1::Event {
    v1::Event::decode(event_bytes(e).as_slice())
        .expect("lotline.v1.Event and the record's Event are one schema (tests::schemas_agree)")
}

/// The canonical protobuf bytes of an event: what a record stores and NATS carries.
pub fn event_bytes(e: &Event) -> Vec<u8> {
    lotline_record::encode_event(e)
}

/// Writes a time in its canonical form, keeping the sender's offset.
pub fn time_to_wire(t: &DateTime<FixedOffset>) -> String {
    lotline_record::time_text(t)
}

/// Writes a decimal in its canonical form (no trailing zeros).
pub fn decimal_to_wire(d: Decimal) -> String {
    lotline_record::decimal_text(d)
}

pub fn quantity_to_wire(q: &Quantity) -> v1::Quantity {
    v1::Quantity {
        amount: decimal_to_wire(q.amount),
        unit: q.unit.symbol().to_string(),
    }
}

/// A custody model's wire number (unspecified for none).
pub fn custody_to_wire(c: Option<CustodyModel>) -> i32 {
    lotline_record::custody_number(c)
}

/// A wire role, `None` when unspecified or unknown.
pub fn role_from_wire(value: i32) -> Option<OrgRole> {
    lotline_record::role_from_number(value)
}

pub fn role_to_wire(r: OrgRole) -> i32 {
    lotline_record::role_number(r)
}

/// An event's outcome, as gRPC answers it and NATS replies carry it.
pub fn outcome_to_wire(outcome: &Outcome, event_id: &str) -> v1::Outcome {
    use v1::outcome::Result as R;
    let result = match outcome {
        Outcome::Accepted { seq, record_time } => R::Accepted(v1::Accepted {
            sequence: *seq,
            record_time: record_time.to_rfc3339_opts(SecondsFormat::Micros, true),
        }),
        Outcome::Duplicate { seq } => R::Duplicate(v1::Duplicate { sequence: *seq }),
        Outcome::Rejected { kind, reason } => R::Rejected(v1::Rejected {
            kind: kind.as_str().to_string(),
            reason: reason.clone(),
        }),
    };
    v1::Outcome {
        event_id: event_id.to_string(),
        result: Some(result),
    }
}

pub fn anomaly_to_wire(a: &Anomaly) -> v1::Anomaly {
    v1::Anomaly {
        kind: a.kind.as_str().to_string(),
        lot: a.lot.clone(),
        event_id: a.event_id.clone().unwrap_or_default(),
        explanation: a.explanation.clone(),
        org: a.org.clone().unwrap_or_default(),
        figures: a.figures.clone(),
        id: a.id(),
        status: a.status().as_str().to_string(),
        reviews: a
            .reviews
            .iter()
            .map(|r| v1::AnomalyReview {
                event_id: r.event_id.clone(),
                org: r.org.clone(),
                time: time_to_wire(&r.time),
                verdict: r.verdict.as_str().to_string(),
                note: r.note.clone(),
            })
            .collect(),
    }
}

pub fn dds_to_wire(d: &DdsReference) -> v1::DdsReference {
    v1::DdsReference {
        reference: d.reference.clone(),
        verification: d.verification.clone().unwrap_or_default(),
        lot: d.lot.clone(),
        event_id: d.event_id.clone(),
        org: d.org.clone(),
        date: d.date.to_string(),
    }
}

pub fn ledger_to_wire(l: &Ledger) -> v1::Ledger {
    let violations: std::collections::HashSet<usize> = l.violations.iter().copied().collect();
    v1::Ledger {
        org: l.org.clone(),
        sites: l.sites.clone(),
        product: l.product.clone(),
        unit: l.unit.to_string(),
        opening: decimal_to_wire(l.opening),
        inputs: decimal_to_wire(l.inputs),
        outputs: decimal_to_wire(l.outputs),
        closing: decimal_to_wire(l.closing),
        entries: l
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| v1::LedgerEntry {
                time: time_to_wire(&e.time),
                event_id: e.event_id.clone(),
                direction: e.direction.as_str().to_string(),
                lot: e.lot.clone(),
                lot_product: e.lot_product.clone(),
                site: e.site.clone().unwrap_or_default(),
                quantity: Some(quantity_to_wire(&e.quantity)),
                amount: decimal_to_wire(e.amount),
                ratio: e.ratio.map(decimal_to_wire).unwrap_or_default(),
                balance: decimal_to_wire(e.balance),
                violation: violations.contains(&i),
            })
            .collect(),
        violations: u32::try_from(l.violations.len()).unwrap_or(u32::MAX),
        notes: l.notes.clone(),
    }
}

fn stage_entry_to_wire(e: &StageEntry) -> v1::StageEntry {
    v1::StageEntry {
        org: e.org.clone(),
        org_name: e.org_name.clone().unwrap_or_default(),
        site: e.site.clone().unwrap_or_default(),
        event_id: e.event_id.clone(),
        date: e.date.to_string(),
        process: e.process.clone(),
        lots: e.lots.clone(),
        product: e.product.clone().unwrap_or_default(),
        certificates: e
            .certificates
            .iter()
            .map(|c| v1::HeldCertificate {
                standard: c.standard.clone(),
                certificate_id: c.certificate_id.clone(),
                valid_to: c.valid_to.map(|d| d.to_string()).unwrap_or_default(),
                self_declared: c.self_declared,
            })
            .collect(),
        certified: e.certified(),
        lapsed: e.lapsed.clone().unwrap_or_default(),
    }
}

pub fn chain_report_to_wire(r: &ChainReport) -> v1::ChainReportResponse {
    v1::ChainReportResponse {
        lot: r.lot.clone(),
        chain: r.chain.clone().unwrap_or_default(),
        product: r.product.clone().unwrap_or_default(),
        stages: r
            .stages
            .iter()
            .map(|s| v1::Stage {
                name: s.name.clone(),
                entries: s.entries.iter().map(stage_entry_to_wire).collect(),
                missing: s.missing,
            })
            .collect(),
        missing: r.missing.clone(),
        other: r.other.iter().map(stage_entry_to_wire).collect(),
    }
}

fn origin_to_wire(o: &Origin) -> v1::Origin {
    v1::Origin {
        lot: o.lot.clone(),
        known: o.known,
        org: o.org.clone().unwrap_or_default(),
        plot: o.plot.clone().unwrap_or_default(),
        product: o.product.clone().unwrap_or_default(),
        harvest_time: o
            .harvest_time
            .as_ref()
            .map(time_to_wire)
            .unwrap_or_default(),
        content: Some(quantity_to_wire(&o.content)),
        share: decimal_to_wire(o.share),
        // The domain does not know plots' registrations; the API adds them.
        plot_info: None,
    }
}

pub fn trace_back_to_wire(t: &TraceBack) -> v1::TraceBackResponse {
    v1::TraceBackResponse {
        lot: t.lot.clone(),
        produced: t.produced.as_ref().map(quantity_to_wire),
        origins: t.origins.iter().map(origin_to_wire).collect(),
        lots_walked: u32::try_from(t.lots_walked).unwrap_or(u32::MAX),
        anomalies: t.anomalies.iter().map(anomaly_to_wire).collect(),
        // The API adds the lot's custody model and claims.
        custody: 0,
        claims: Vec::new(),
        partial: t.partial.clone().unwrap_or_default(),
    }
}

fn descendant_to_wire(d: &Descendant) -> v1::Descendant {
    v1::Descendant {
        lot: d.lot.clone(),
        product: d.product.clone(),
        holder: d.holder.clone().unwrap_or_default(),
        quantity: Some(quantity_to_wire(&d.quantity)),
        depth: d.depth,
        parent: d.parent.clone(),
        via_event_id: d.via_event_id.clone(),
    }
}

pub fn trace_forward_to_wire(t: &TraceForward) -> v1::TraceForwardResponse {
    v1::TraceForwardResponse {
        lot: t.lot.clone(),
        descendants: t.descendants.iter().map(descendant_to_wire).collect(),
        partial: t.partial.clone().unwrap_or_default(),
        // The service adds the recalled lots' shipments and containers.
        shipments: Vec::new(),
        containers: Vec::new(),
    }
}

/// A lot's state; the caller adds the lot's events.
pub fn lot_state_to_wire(s: &LotState) -> v1::Lot {
    v1::Lot {
        lot: s.lot.clone(),
        known: s.known,
        product: s.product.clone().unwrap_or_default(),
        chain: s.chain.clone().unwrap_or_default(),
        creator: s.creator.clone().unwrap_or_default(),
        holder: s.holder.clone().unwrap_or_default(),
        produced: s.produced.as_ref().map(quantity_to_wire),
        remaining: s.remaining.as_ref().map(quantity_to_wire),
        consumed: s.consumed.as_ref().map(quantity_to_wire),
        custody: custody_to_wire(Some(s.custody)),
        claims: s.claims.clone(),
        origin_count: u32::try_from(s.origin_count).unwrap_or(u32::MAX),
        has_unknown_origin: s.has_unknown_origin,
        created_at: s.created_at.as_ref().map(time_to_wire).unwrap_or_default(),
        events: Vec::new(),
        anomalies: s.anomalies.iter().map(anomaly_to_wire).collect(),
        due_diligence_references: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn harvest_json() -> &'static str {
        r#"{"eventId":"h-1","eventTime":"2026-03-01T08:00:00+07:00","org":"farm-1","chain":"cocoa",
            "harvest":{"lot":"LOT-1","plot":"P-1","product":"wet cocoa beans",
            "quantity":{"amount":"120.50","unit":"KGM"},"custody":"CUSTODY_MODEL_IDENTITY_PRESERVED"}}"#
    }

    #[test]
    fn proto3_json_round_trips_through_the_domain_in_canonical_form() {
        let wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
        let domain = event_from_wire(&wire).unwrap();
        assert_eq!(domain.time.offset().local_minus_utc(), 7 * 3600);
        let back = event_to_wire(&domain);
        let q = match back.kind.as_ref().unwrap() {
            v1::event::Kind::Harvest(h) => h.quantity.clone().unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(q.amount, "120.5");
        assert_eq!(q.unit, "kg");
        assert_eq!(back.event_time, "2026-03-01T08:00:00+07:00");
        assert_eq!(event_from_wire(&back).unwrap(), domain);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
        wire.event_time = "yesterday".into();
        assert_eq!(event_from_wire(&wire).unwrap_err().field, "event_time");
        let mut wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
        if let Some(v1::event::Kind::Harvest(h)) = wire.kind.as_mut() {
            h.quantity.as_mut().unwrap().amount = "1,5".into();
        }
        assert_eq!(
            event_from_wire(&wire).unwrap_err().field,
            "harvest.quantity.amount"
        );
        let mut wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
        wire.kind = None;
        assert_eq!(event_from_wire(&wire).unwrap_err().field, "kind");
        // Names inside lists say which item (they are made only for an error).
        let kg = |amount: &str, unit: &str| {
            Some(v1::Quantity {
                amount: amount.into(),
                unit: unit.into(),
            })
        };
        let output = |quantity, custody| v1::OutputLot {
            lot: "OUT".into(),
            product: "nibs".into(),
            quantity,
            custody,
            claims: vec![],
        };
        let transform = |inputs: Vec<v1::LotQuantity>, outputs| {
            let mut wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
            wire.kind = Some(v1::event::Kind::Transform(v1::Transform {
                inputs,
                outputs,
                ..Default::default()
            }));
            event_from_wire(&wire).map(|_| ()).map_err(|e| e.field)
        };
        let input = |quantity| v1::LotQuantity {
            lot: "LOT-1".into(),
            quantity,
        };
        let good = || output(kg("1", "kg"), 0);
        assert_eq!(transform(vec![input(kg("2", "kg"))], vec![good()]), Ok(()));
        for (inputs, outputs, field) in [
            (
                vec![input(kg("2", "kg")), input(None)],
                vec![good()],
                "transform.inputs[1].quantity",
            ),
            (
                vec![input(kg("x", "kg"))],
                vec![good()],
                "transform.inputs[0].quantity.amount",
            ),
            (
                vec![input(kg("2", "kg"))],
                vec![good(), output(kg("1", ""), 0)],
                "transform.outputs[1].quantity.unit",
            ),
            (
                vec![input(kg("2", "kg"))],
                vec![output(kg("1", "kg"), 99)],
                "transform.outputs[0].custody",
            ),
        ] {
            assert_eq!(transform(inputs, outputs), Err(field.to_string()));
        }
    }

    /// The record schema (`proto/lotline/record/v1/record.proto`) declares the public event's
    /// messages with the same names, numbers and types, so a wire event's encoding is a record's
    /// bytes; and its quarantine entry is `RejectedInput`'s twin.
    #[test]
    fn schemas_agree() {
        use prost_types::{DescriptorProto, FileDescriptorSet};
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
        let record = protox::compile(["lotline/record/v1/record.proto"], [root]).unwrap();
        let public = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let file = |set: &FileDescriptorSet, name: &str| {
            set.file.iter().find(|f| f.name() == name).cloned().unwrap()
        };
        let record = file(&record, "lotline/record/v1/record.proto");
        let event = file(&public, "lotline/v1/event.proto");
        let same =
            |m: &DescriptorProto| format!("{m:?}").replace(".lotline.record.v1.", ".lotline.v1.");
        let (quarantined, record_messages): (Vec<_>, Vec<_>) = record
            .message_type
            .iter()
            .partition(|m| m.name() == "Quarantined");
        assert_eq!(
            record_messages.iter().map(|m| same(m)).collect::<Vec<_>>(),
            event.message_type.iter().map(same).collect::<Vec<_>>()
        );
        assert_eq!(
            format!("{:?}", record.enum_type),
            format!("{:?}", event.enum_type)
        );
        let rejected = file(&public, "lotline/v1/provenance.proto")
            .message_type
            .into_iter()
            .find(|m| m.name() == "RejectedInput")
            .unwrap();
        let fields = |m: &DescriptorProto| {
            m.field
                .iter()
                .map(|f| (f.name().to_string(), f.number(), f.r#type()))
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(quarantined[0]), fields(&rejected));
    }

    /// Every kind of event in the sample round-trips: the record's bytes decode as a wire event
    /// that encodes to the same bytes.
    #[test]
    fn wire_encoding_is_the_record_encoding() {
        let wire: v1::Event = serde_json::from_str(harvest_json()).unwrap();
        let event = event_from_wire(&wire).unwrap();
        let bytes = event_bytes(&event);
        assert_eq!(event_to_wire(&event).encode_to_vec(), bytes);
        assert_eq!(lotline_record::decode_event(&bytes).unwrap(), event);
    }
}
