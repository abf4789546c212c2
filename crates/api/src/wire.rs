//! Service answers as their wire messages, for every door that answers in lotline's own
//! documents (gRPC here; the HTTP door's `/lotline/v1` serves the same messages as the JSON
//! documents of `lotline_proto::documents`).

use lotline_merkle::Hash;
use lotline_proto::convert::{
    custody_to_wire, dds_to_wire, decimal_to_wire, event_to_wire, lot_state_to_wire, time_to_wire,
    trace_back_to_wire, trace_forward_to_wire,
};
use lotline_proto::v1;
use lotline_service::queries::Answered;
use lotline_service::queries::audit::EudrAnswer;
use lotline_service::queries::log::{Inclusion, SignedCheckpoint};
use lotline_service::queries::provenance::{
    ContainerAnswer, LotAnswer, Packing, RecallAnswer, TraceBackAnswer,
};

/// A stored event on the wire.
pub fn stored_event(a: &Answered) -> v1::StoredEvent {
    v1::StoredEvent {
        sequence: a.seq,
        record_time: a
            .record_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        event: Some(event_to_wire(&a.event)),
        corrected: a.corrected,
    }
}

/// One packing of an item into a container.
fn packing(p: &Packing) -> v1::Packing {
    let time = |t: &chrono::DateTime<chrono::FixedOffset>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    v1::Packing {
        container: p.container.clone(),
        item: p.item.clone(),
        org: p.org.clone(),
        packed_at: time(&p.packed_at),
        packed_by: p.packed_by.clone(),
        unpacked_at: p.unpacked_at.as_ref().map(time).unwrap_or_default(),
        unpacked_by: p.unpacked_by.clone().unwrap_or_default(),
    }
}

/// What a lot went into, with the shipments and containers of the recalled lots.
pub fn recall(found: &RecallAnswer) -> v1::TraceForwardResponse {
    let mut answer = trace_forward_to_wire(&found.trace);
    answer.shipments = found
        .shipments
        .iter()
        .map(|s| v1::Shipment {
            event_id: s.event_id.clone(),
            time: time_to_wire(&s.time),
            org: s.org.clone(),
            to_org: s.to_org.clone(),
            lots: s.lots.clone(),
        })
        .collect();
    answer.containers = found.containers.iter().map(packing).collect();
    answer
}

/// What a container held, and what carried the id asked for (`id`, in its stored form).
pub fn container(id: &str, found: &ContainerAnswer) -> v1::Container {
    v1::Container {
        id: id.to_string(),
        contents: found.contents.iter().map(packing).collect(),
        carriers: found.carriers.iter().map(packing).collect(),
    }
}

/// A lot, its events and its due-diligence references.
pub fn lot(found: &LotAnswer) -> v1::Lot {
    let mut answer = lot_state_to_wire(&found.state);
    answer.events = found.events.iter().map(stored_event).collect();
    answer.due_diligence_references = found.due_diligence.iter().map(dds_to_wire).collect();
    answer
}

/// Where a lot came from, with its custody, claims and each origin's plot.
pub fn trace_back(a: &TraceBackAnswer) -> v1::TraceBackResponse {
    let mut answer = trace_back_to_wire(&a.trace);
    if let Some(custody) = a.custody {
        answer.custody = custody_to_wire(Some(custody));
        answer.claims = a.claims.clone();
    }
    for origin in &mut answer.origins {
        origin.plot_info = a.plots.get(&origin.plot).map(|p| v1::PlotInfo {
            plot: p.plot.clone(),
            owner: p.owner.clone(),
            geometry: p.geometry.clone(),
            area_ha: p.area_ha.map(decimal_to_wire).unwrap_or_default(),
            country: p.country.clone(),
        });
    }
    answer
}

/// A lot's EUDR verdict, its reasons, its plots as GeoJSON and its DDS references.
pub fn eudr(answer: &EudrAnswer) -> v1::EudrExportResponse {
    let report = &answer.report;
    v1::EudrExportResponse {
        lot: report.lot.clone(),
        verdict: report.verdict.as_str().to_string(),
        reasons: report.reasons.clone(),
        geojson: answer.geojson.to_string(),
        dds_references: report.dds.iter().map(dds_to_wire).collect(),
        plots: u32::try_from(report.plots.len()).unwrap_or(u32::MAX),
    }
}

/// A signed checkpoint on the wire.
pub fn checkpoint(c: SignedCheckpoint) -> v1::Checkpoint {
    v1::Checkpoint {
        note: c.note,
        tree_size: c.checkpoint.size,
        root_hash: c.checkpoint.root.to_vec(),
        origin: c.checkpoint.origin,
        verifier_key: c.verifier_key,
    }
}

/// Merkle hashes on the wire.
pub fn hashes(v: Vec<Hash>) -> Vec<Vec<u8>> {
    v.into_iter().map(|h| h.to_vec()).collect()
}

/// An inclusion proof on the wire, with the checkpoint it is for.
pub fn inclusion(proof: Inclusion) -> v1::InclusionProof {
    v1::InclusionProof {
        leaf_index: proof.index,
        sequence: proof.index + 1,
        event_id: proof.event_id,
        tree_size: proof.checkpoint.checkpoint.size,
        leaf_hash: proof.leaf_hash.to_vec(),
        leaf: proof.leaf,
        audit_path: hashes(proof.path),
        checkpoint: Some(checkpoint(proof.checkpoint)),
    }
}
