//! How answers look: aligned tables for people, JSON documents for scripts.
//! (The JSON documents are `lotline_proto::documents`, which `/lotline/v1` serves too.)

use std::fmt::Write;
use std::str::FromStr;

use lotline_proto::documents::custody_name;
use lotline_proto::v1;

pub(crate) fn quantity_text(q: Option<&v1::Quantity>) -> String {
    q.map(|q| format!("{} {}", q.amount, q.unit).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn event_kind(e: &v1::Event) -> &'static str {
    use v1::event::Kind as K;
    match e.kind {
        Some(K::Harvest(_)) => "harvest",
        Some(K::Transform(_)) => "transform",
        Some(K::Ship(_)) => "ship",
        Some(K::Receive(_)) => "receive",
        Some(K::Certify(_)) => "certify",
        Some(K::Pay(_)) => "pay",
        Some(K::Correct(_)) => "correct",
        Some(K::Observe(_)) => "observe",
        Some(K::RegisterOrg(_)) => "register_org",
        Some(K::RegisterSite(_)) => "register_site",
        Some(K::RegisterPlot(_)) => "register_plot",
        Some(K::RegisterClass(_)) => "register_class",
        Some(K::RevokeToken(_)) => "revoke_token",
        Some(K::ConfirmMember(_)) => "confirm_member",
        Some(K::Review(_)) => "review",
        None => "-",
    }
}

/// An aligned text table.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut text = String::new();
        for (n, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if n > 0 {
                text.push_str("  ");
            }
            let _ = write!(text, "{cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    for row in rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

fn anomalies_text(out: &mut String, anomalies: &[v1::Anomaly]) {
    if anomalies.is_empty() {
        return;
    }
    let _ = writeln!(out, "Anomalies:");
    for a in anomalies {
        let event = if a.event_id.is_empty() {
            String::new()
        } else {
            format!(" (event {})", a.event_id)
        };
        let status = match a.status.as_str() {
            "" | "open" => String::new(),
            reviewed => format!(" [{reviewed}]"),
        };
        let _ = writeln!(
            out,
            "  {} on {}{}: {}{status}",
            a.kind, a.lot, event, a.explanation
        );
    }
}

fn percent(share: &str) -> String {
    rust_decimal::Decimal::from_str(share)
        .map(|d| {
            format!(
                "{}%",
                (d * rust_decimal::Decimal::ONE_HUNDRED)
                    .round_dp(2)
                    .normalize()
            )
        })
        .unwrap_or_else(|_| share.to_string())
}

pub(crate) fn trace_text(t: &v1::TraceBackResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Trace back {} ({} produced, {}{}): {} origin lot(s)",
        t.lot,
        quantity_text(t.produced.as_ref()),
        custody_name(t.custody),
        if t.claims.is_empty() {
            String::new()
        } else {
            format!(", claims {}", t.claims.join(", "))
        },
        t.origins.len()
    );
    let rows: Vec<Vec<String>> = t
        .origins
        .iter()
        .map(|o| {
            vec![
                o.lot.clone(),
                if o.known {
                    dash(&o.org).to_string()
                } else {
                    "UNKNOWN ORIGIN".to_string()
                },
                dash(&o.plot).to_string(),
                dash(&o.product).to_string(),
                quantity_text(o.content.as_ref()),
                percent(&o.share),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ORIGIN LOT", "ORG", "PLOT", "PRODUCT", "CONTENT", "SHARE"],
        &rows,
    ));
    if !t.partial.is_empty() {
        let _ = writeln!(out, "PARTIAL: {}", t.partial);
    }
    anomalies_text(&mut out, &t.anomalies);
    out
}

pub(crate) fn recall_text(t: &v1::TraceForwardResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Recall {}: {} downstream lot(s)",
        t.lot,
        t.descendants.len()
    );
    let rows: Vec<Vec<String>> = t
        .descendants
        .iter()
        .map(|d| {
            vec![
                format!(
                    "{}{}",
                    "  ".repeat(d.depth.saturating_sub(1) as usize),
                    d.lot
                ),
                d.product.clone(),
                dash(&d.holder).to_string(),
                quantity_text(d.quantity.as_ref()),
                d.via_event_id.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["LOT", "PRODUCT", "HOLDER", "QUANTITY", "VIA EVENT"],
        &rows,
    ));
    if !t.shipments.is_empty() {
        let _ = writeln!(out, "Shipments:");
        let rows: Vec<Vec<String>> = t
            .shipments
            .iter()
            .map(|s| {
                vec![
                    s.time.clone(),
                    s.org.clone(),
                    s.to_org.clone(),
                    s.lots.join(", "),
                    s.event_id.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["TIME", "FROM", "TO", "LOTS", "EVENT"], &rows));
    }
    if !t.containers.is_empty() {
        let _ = writeln!(out, "Containers:");
        let rows: Vec<Vec<String>> = t
            .containers
            .iter()
            .map(|p| {
                vec![
                    p.container.clone(),
                    p.item.clone(),
                    p.packed_at.clone(),
                    dash(&p.unpacked_at).to_string(),
                    p.org.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["CONTAINER", "LOT", "PACKED", "UNPACKED", "ORG"],
            &rows,
        ));
    }
    if !t.partial.is_empty() {
        let _ = writeln!(out, "PARTIAL: {}", t.partial);
    }
    out
}

pub(crate) fn container_text(c: &v1::Container) -> String {
    let mut out = String::new();
    let rows = |packings: &[v1::Packing], other: fn(&v1::Packing) -> &str| -> Vec<Vec<String>> {
        packings
            .iter()
            .map(|p| {
                vec![
                    other(p).to_string(),
                    p.packed_at.clone(),
                    dash(&p.unpacked_at).to_string(),
                    p.org.clone(),
                    p.packed_by.clone(),
                ]
            })
            .collect()
    };
    let _ = writeln!(
        out,
        "{}: holds {} item(s), carried by {} container(s)",
        c.id,
        c.contents.len(),
        c.carriers.len()
    );
    if !c.contents.is_empty() {
        let _ = writeln!(out, "Contents:");
        out.push_str(&table(
            &["ITEM", "PACKED", "UNPACKED", "ORG", "BY EVENT"],
            &rows(&c.contents, |p| &p.item),
        ));
    }
    if !c.carriers.is_empty() {
        let _ = writeln!(out, "Carried by:");
        out.push_str(&table(
            &["CONTAINER", "PACKED", "UNPACKED", "ORG", "BY EVENT"],
            &rows(&c.carriers, |p| &p.container),
        ));
    }
    out
}

pub(crate) fn lot_text(l: &v1::Lot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Lot {}{}",
        l.lot,
        if l.known {
            ""
        } else {
            " (UNKNOWN ORIGIN: no event creates it)"
        }
    );
    let rows = [
        ("product", dash(&l.product).to_string()),
        ("chain", dash(&l.chain).to_string()),
        ("created by", dash(&l.creator).to_string()),
        ("created at", dash(&l.created_at).to_string()),
        ("held by", dash(&l.holder).to_string()),
        ("produced", quantity_text(l.produced.as_ref())),
        ("consumed", quantity_text(l.consumed.as_ref())),
        ("remaining", quantity_text(l.remaining.as_ref())),
        ("custody", custody_name(l.custody).to_string()),
        (
            "claims",
            if l.claims.is_empty() {
                "-".into()
            } else {
                l.claims.join(", ")
            },
        ),
        (
            "origins",
            format!(
                "{}{}",
                l.origin_count,
                if l.has_unknown_origin {
                    " (some of unknown origin)"
                } else {
                    ""
                }
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<11} {v}");
    }
    for d in &l.due_diligence_references {
        let _ = writeln!(
            out,
            "  {:<11} {} (on lot {}, shipped by {} on {}, event {})",
            "EUDR DDS", d.reference, d.lot, d.org, d.date, d.event_id
        );
    }
    out.push_str(&events_text(&l.events));
    anomalies_text(&mut out, &l.anomalies);
    out
}

/// The extension an event imported from EPCIS keeps its CBV 2.0 event hash in.
const EPCIS_HASH: &str = lotline_epcis::names::EXT_HASH;

pub(crate) fn events_text(events: &[v1::StoredEvent]) -> String {
    let hashes = events.iter().any(|s| {
        s.event
            .as_ref()
            .is_some_and(|e| e.extensions.contains_key(EPCIS_HASH))
    });
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|s| {
            let e = s.event.clone().unwrap_or_default();
            let mut row = vec![
                s.sequence.to_string(),
                e.event_time.clone(),
                event_kind(&e).to_string(),
                e.org.clone(),
                format!(
                    "{}{}",
                    e.event_id,
                    if s.corrected { " (corrected)" } else { "" }
                ),
            ];
            if hashes {
                row.push(dash(e.extensions.get(EPCIS_HASH).map_or("", String::as_str)).to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["SEQ", "EVENT TIME", "KIND", "ORG", "EVENT ID"];
    if hashes {
        header.push("EPCIS EVENT HASH");
    }
    table(&header, &rows)
}

pub(crate) fn rejected_text(items: &[v1::RejectedInput]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.received_at.clone(),
                r.source.clone(),
                dash(&r.event_id).to_string(),
                dash(&r.org).to_string(),
                r.kind.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "RECEIVED", "SOURCE", "EVENT ID", "ORG", "KIND", "REASON",
        ],
        &rows,
    )
}

pub(crate) fn unknown_text(lots: &[v1::UnknownLot]) -> String {
    let rows: Vec<Vec<String>> = lots
        .iter()
        .map(|l| vec![l.lot.clone(), l.event_ids.join(", ")])
        .collect();
    table(&["LOT (UNKNOWN ORIGIN)", "MENTIONED BY"], &rows)
}
