//! lotline's answers as JSON documents: what `lotline … --json` prints and the HTTP door's
//! `/lotline/v1` serves, from the same wire messages, so both are the same document. Decimal
//! strings become JSON numbers without losing digits.

use std::str::FromStr;

use serde_json::{Map, Number, Value, json};

use crate::v1;

/// A decimal string as an exact JSON number (or null when empty or not a number).
pub fn number(s: &str) -> Value {
    Number::from_str(s)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn quantity_fields(map: &mut Map<String, Value>, key: &str, q: Option<&v1::Quantity>) {
    let (amount, unit) = q
        .map(|q| (number(&q.amount), q.unit.clone()))
        .unwrap_or((Value::Null, String::new()));
    map.insert(key.to_string(), amount);
    map.insert("unit".to_string(), Value::String(unit));
}

pub fn custody_name(c: i32) -> &'static str {
    match v1::CustodyModel::try_from(c) {
        Ok(v1::CustodyModel::IdentityPreserved) => "identity preserved",
        Ok(v1::CustodyModel::Segregated) => "segregated",
        Ok(v1::CustodyModel::MassBalance) => "mass balance",
        _ => "-",
    }
}

pub fn anomalies_json(anomalies: &[v1::Anomaly]) -> Value {
    Value::Array(
        anomalies
            .iter()
            .map(|a| {
                let reviews: Vec<Value> = a
                    .reviews
                    .iter()
                    .map(|r| {
                        json!({"event_id": r.event_id, "org": r.org, "time": r.time,
                            "verdict": r.verdict, "note": r.note})
                    })
                    .collect();
                json!({"id": a.id, "kind": a.kind, "lot": a.lot, "event_id": a.event_id,
                    "org": a.org, "explanation": a.explanation, "figures": a.figures,
                    "status": a.status, "reviews": reviews})
            })
            .collect(),
    )
}

/// A container's contents and carriers (`lotline container --json`, `GET
/// /lotline/v1/containers/{id}`); an item still in has a null `unpacked_at`.
pub fn container_json(c: &v1::Container) -> Value {
    json!({
        "id": c.id,
        "contents": c.contents.iter().map(packing_json).collect::<Vec<_>>(),
        "carriers": c.carriers.iter().map(packing_json).collect::<Vec<_>>(),
    })
}

/// One packing; an item still in has a null `unpacked_at`.
fn packing_json(p: &v1::Packing) -> Value {
    let or_null = |s: &str| {
        if s.is_empty() { Value::Null } else { json!(s) }
    };
    json!({
        "container": p.container,
        "item": p.item,
        "org": p.org,
        "packed_at": p.packed_at,
        "packed_by": p.packed_by,
        "unpacked_at": or_null(&p.unpacked_at),
        "unpacked_by": or_null(&p.unpacked_by),
    })
}

pub fn trace_json(t: &v1::TraceBackResponse) -> Value {
    let origins: Vec<Value> = t
        .origins
        .iter()
        .map(|o| {
            let mut m = Map::new();
            m.insert("lot".into(), json!(o.lot));
            m.insert("known".into(), json!(o.known));
            m.insert("org".into(), json!(o.org));
            m.insert("plot".into(), json!(o.plot));
            m.insert("product".into(), json!(o.product));
            m.insert("harvest_time".into(), json!(o.harvest_time));
            quantity_fields(&mut m, "quantity", o.content.as_ref());
            m.insert("share".into(), number(&o.share));
            m.insert(
                "plot_info".into(),
                o.plot_info.as_ref().map_or(Value::Null, |p| {
                    json!({
                        "plot": p.plot,
                        "owner": p.owner,
                        "geometry": serde_json::from_str::<Value>(&p.geometry).unwrap_or(Value::String(p.geometry.clone())),
                        "area_ha": number(&p.area_ha),
                        "country": p.country,
                    })
                }),
            );
            Value::Object(m)
        })
        .collect();
    let mut produced = Map::new();
    quantity_fields(&mut produced, "quantity", t.produced.as_ref());
    let mut answer = json!({
        "lot": t.lot,
        "produced": produced,
        "origins": origins,
        "lots_walked": t.lots_walked,
        "custody": custody_name(t.custody),
        "claims": t.claims,
        "anomalies": anomalies_json(&t.anomalies),
    });
    if !t.partial.is_empty() {
        answer["partial"] = json!(t.partial);
    }
    answer
}

pub fn recall_json(t: &v1::TraceForwardResponse) -> Value {
    let descendants: Vec<Value> = t
        .descendants
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("lot".into(), json!(d.lot));
            m.insert("product".into(), json!(d.product));
            m.insert("holder".into(), json!(d.holder));
            quantity_fields(&mut m, "quantity", d.quantity.as_ref());
            m.insert("depth".into(), json!(d.depth));
            m.insert("parent".into(), json!(d.parent));
            m.insert("via_event_id".into(), json!(d.via_event_id));
            Value::Object(m)
        })
        .collect();
    let shipments: Vec<Value> = t
        .shipments
        .iter()
        .map(|s| {
            json!({"event_id": s.event_id, "time": s.time, "org": s.org, "to_org": s.to_org,
                "lots": s.lots})
        })
        .collect();
    let containers: Vec<Value> = t.containers.iter().map(packing_json).collect();
    let mut answer = json!({"lot": t.lot, "descendants": descendants, "shipments": shipments,
        "containers": containers});
    if !t.partial.is_empty() {
        answer["partial"] = json!(t.partial);
    }
    answer
}

pub fn lot_json(l: &v1::Lot) -> Value {
    let mut m = Map::new();
    m.insert("lot".into(), json!(l.lot));
    m.insert("known".into(), json!(l.known));
    m.insert("product".into(), json!(l.product));
    m.insert("chain".into(), json!(l.chain));
    m.insert("creator".into(), json!(l.creator));
    m.insert("holder".into(), json!(l.holder));
    let q = |q: Option<&v1::Quantity>| {
        let mut m = Map::new();
        quantity_fields(&mut m, "quantity", q);
        Value::Object(m)
    };
    m.insert("produced".into(), q(l.produced.as_ref()));
    m.insert("consumed".into(), q(l.consumed.as_ref()));
    m.insert("remaining".into(), q(l.remaining.as_ref()));
    m.insert("custody".into(), json!(custody_name(l.custody)));
    m.insert("claims".into(), json!(l.claims));
    m.insert("origin_count".into(), json!(l.origin_count));
    m.insert("has_unknown_origin".into(), json!(l.has_unknown_origin));
    m.insert("created_at".into(), json!(l.created_at));
    m.insert(
        "events".into(),
        Value::Array(
            l.events
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect(),
        ),
    );
    m.insert("anomalies".into(), anomalies_json(&l.anomalies));
    m.insert(
        "due_diligence_references".into(),
        serde_json::to_value(&l.due_diligence_references).unwrap_or(Value::Null),
    );
    Value::Object(m)
}

/// A lot's EUDR answer (`lotline eudr --json`): verdict, reasons, plots and DDS references.
pub fn eudr_json(answer: &v1::EudrExportResponse) -> Value {
    json!({
        "lot": answer.lot,
        "verdict": answer.verdict,
        "reasons": answer.reasons,
        "plots": answer.plots,
        "dds_references": answer.dds_references,
    })
}

/// The anomaly listing (`lotline anomalies --json`): every anomaly, the counts by kind and by
/// status, and the log sequence the listing is current to.
pub fn anomaly_listing_json(
    anomalies: &[v1::Anomaly],
    counts: &std::collections::BTreeMap<String, u32>,
    status_counts: &std::collections::BTreeMap<String, u32>,
    current_to: u64,
) -> Value {
    json!({
        "anomalies": anomalies_json(anomalies),
        "counts": counts,
        "status_counts": status_counts,
        "current_to": current_to,
    })
}

/// A signed checkpoint: what `lotline checkpoint --json` prints.
pub fn checkpoint_json(cp: &v1::Checkpoint) -> Value {
    json!({
        "checkpoint": cp.note,
        "tree_size": cp.tree_size,
        "root_hash": hex::encode(&cp.root_hash),
        "verifier_key": cp.verifier_key,
    })
}

/// An inclusion proof: what `lotline proof EVENT_ID --json` prints once it has checked it (the
/// leaf in base64, empty and `leaf_withheld` when the caller's view withholds it; hashes in hex).
pub fn inclusion_json(p: &v1::InclusionProof) -> Value {
    use base64::Engine;
    let cp = p.checkpoint.clone().unwrap_or_default();
    let mut answer = json!({
        "event_id": p.event_id,
        "sequence": p.sequence,
        "leaf_index": p.leaf_index,
        "tree_size": p.tree_size,
        "leaf": base64::engine::general_purpose::STANDARD.encode(&p.leaf),
        "leaf_hash": hex::encode(&p.leaf_hash),
        "audit_path": p.audit_path.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_hash": hex::encode(&cp.root_hash),
        "checkpoint": cp.note,
        "verifier_key": cp.verifier_key,
    });
    // Only a withheld leaf says so: a full proof reads as it always did.
    if p.leaf.is_empty() {
        answer["leaf_withheld"] = json!(true);
    }
    answer
}
