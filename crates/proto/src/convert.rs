//! Wire <-> domain, in one place. Wire to domain is fallible and names the field
//! that is wrong; domain to wire always succeeds and writes the canonical form
//! (normalised decimals, canonical unit symbols, RFC 3339 times with offset).

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use lotline_domain::audit::balance::Ledger;
use lotline_domain::audit::chain::{ChainReport, StageEntry};
use lotline_domain::audit::eudr::DdsReference;
use lotline_domain::lineage::{Anomaly, Descendant, LotState, Origin, TraceBack, TraceForward};
use lotline_domain::{
    BusinessDocument, Certify, Chain, Correct, CustodyModel, Event, EventKind, Harvest, Invalid,
    LotQuantity, Movement, Observe, OrgRole, OutputLot, Pay, Quantity, RegisterClass, RegisterOrg,
    RegisterPlot, RegisterSite, Transform, Unit,
};
use rust_decimal::Decimal;

use crate::v1;

/// Converts a wire event into a domain event, naming the first bad field.
pub fn event_from_wire(e: &v1::Event) -> Result<Event, Invalid> {
    let time = parse_time("event_time", &e.event_time)?;
    let chain = if e.chain.trim().is_empty() {
        None
    } else {
        Some(Chain::parse(&e.chain).ok_or_else(|| {
            Invalid::new(
                "chain",
                format!("unknown chain {:?} (cocoa, coffee or textile)", e.chain),
            )
        })?)
    };
    let kind = match e.kind.as_ref() {
        None => {
            return Err(Invalid::new(
                "kind",
                "no event kind is set (harvest, transform, ship, ...)",
            ));
        }
        Some(k) => kind_from_wire(k)?,
    };
    Ok(Event {
        id: e.event_id.clone(),
        time,
        org: e.org.clone(),
        chain,
        site: opt(&e.site),
        extensions: e.extensions.clone(),
        kind,
    })
}

fn kind_from_wire(k: &v1::event::Kind) -> Result<EventKind, Invalid> {
    use v1::event::Kind as K;
    Ok(match k {
        K::Harvest(h) => EventKind::Harvest(Harvest {
            lot: lot_id("harvest.lot", &h.lot)?,
            plot: h.plot.clone(),
            product: h.product.clone(),
            quantity: quantity("harvest.quantity", h.quantity.as_ref())?,
            harvest_start: opt_date("harvest.harvest_start", &h.harvest_start)?,
            harvest_end: opt_date("harvest.harvest_end", &h.harvest_end)?,
            custody: custody("harvest.custody", h.custody)?,
            claims: h.claims.clone(),
        }),
        K::Transform(t) => EventKind::Transform(Transform {
            inputs: lot_quantities("transform.inputs", &t.inputs)?,
            outputs: t
                .outputs
                .iter()
                .enumerate()
                .map(|(n, o)| {
                    Ok(OutputLot {
                        lot: lot_id(&format!("transform.outputs[{n}].lot"), &o.lot)?,
                        product: o.product.clone(),
                        quantity: quantity(
                            &format!("transform.outputs[{n}].quantity"),
                            o.quantity.as_ref(),
                        )?,
                        custody: custody(&format!("transform.outputs[{n}].custody"), o.custody)?,
                        claims: o.claims.clone(),
                    })
                })
                .collect::<Result<_, Invalid>>()?,
            process: t.process.clone(),
            conversion_ratio: opt_decimal("transform.conversion_ratio", &t.conversion_ratio)?,
        }),
        K::Ship(s) => EventKind::Ship(Movement {
            lots: lot_quantities("ship.lots", &s.lots)?,
            counterparty: s.to_org.clone(),
            documents: documents(&s.documents),
        }),
        K::Receive(r) => EventKind::Receive(Movement {
            lots: lot_quantities("receive.lots", &r.lots)?,
            counterparty: r.from_org.clone(),
            documents: documents(&r.documents),
        }),
        K::Certify(c) => EventKind::Certify(Certify {
            standard: c.standard.clone(),
            certificate_id: c.certificate_id.clone(),
            products: c.products.clone(),
            valid_from: opt_date("certify.valid_from", &c.valid_from)?,
            valid_to: opt_date("certify.valid_to", &c.valid_to)?,
            outcome: c.outcome.clone(),
            lot: opt(&c.lot).map(|l| lot_id("certify.lot", &l)).transpose()?,
            subject_org: opt(&c.subject_org),
        }),
        K::Pay(p) => EventKind::Pay(Pay {
            lots: lot_quantities("pay.lots", &p.lots)?,
            payee_org: p.payee_org.clone(),
            currency: p.currency.clone(),
            price_per_unit: decimal("pay.price_per_unit", &p.price_per_unit)?,
            price_unit: p.price_unit.clone(),
            premium_per_unit: opt_decimal("pay.premium_per_unit", &p.premium_per_unit)?,
            contract_date: opt_date("pay.contract_date", &p.contract_date)?,
        }),
        K::Correct(c) => EventKind::Correct(Correct {
            corrected_event_id: c.corrected_event_id.clone(),
            reason: c.reason.clone(),
            corrective_event_ids: c.corrective_event_ids.clone(),
        }),
        K::Observe(o) => EventKind::Observe(Observe {
            event_type: o.event_type.clone(),
            action: o.action.clone(),
            biz_step: o.biz_step.clone(),
            disposition: o.disposition.clone(),
            lots: lot_quantities("observe.lots", &o.lots)?,
            epcs: o
                .epcs
                .iter()
                .enumerate()
                .map(|(n, e)| lot_id(&format!("observe.epcs[{n}]"), e))
                .collect::<Result<_, _>>()?,
            parent: opt(&o.parent)
                .map(|p| lot_id("observe.parent", &p))
                .transpose()?,
        }),
        K::RegisterOrg(o) => EventKind::RegisterOrg(RegisterOrg {
            name: o.name.clone(),
            role: role(o.role)?,
            country: o.country.clone(),
            gln: opt(&o.gln),
            member_of: opt(&o.member_of),
            party: opt(&o.party),
        }),
        K::RegisterSite(s) => EventKind::RegisterSite(RegisterSite {
            site: s.site.clone(),
            name: s.name.clone(),
            gln: opt(&s.gln),
            country: s.country.clone(),
        }),
        K::RegisterPlot(p) => EventKind::RegisterPlot(RegisterPlot {
            plot: p.plot.clone(),
            geometry: p.geometry.clone(),
            area_ha: opt_decimal("register_plot.area_ha", &p.area_ha)?,
            country: p.country.clone(),
        }),
        K::RegisterClass(c) => EventKind::RegisterClass(RegisterClass {
            class: lot_id("register_class.class", &c.class)?,
            product: opt(&c.product),
            attributes: c
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
    })
}

fn opt(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    }
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<FixedOffset>, Invalid> {
    if s.trim().is_empty() {
        return Err(Invalid::new(
            field,
            "is required (RFC 3339 with UTC offset)",
        ));
    }
    DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
        Invalid::new(
            field,
            format!("{s:?} is not an RFC 3339 time with UTC offset: {e}"),
        )
    })
}

fn opt_date(field: &str, s: &str) -> Result<Option<NaiveDate>, Invalid> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Some(d));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.date_naive()))
        .map_err(|_| Invalid::new(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

fn decimal(field: &str, s: &str) -> Result<Decimal, Invalid> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Invalid::new(
            field,
            "is required (a decimal number as a string)",
        ));
    }
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| Invalid::new(field, format!("{s:?} is not a decimal number")))
}

fn opt_decimal(field: &str, s: &str) -> Result<Option<Decimal>, Invalid> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        decimal(field, s).map(Some)
    }
}

fn quantity(field: &str, q: Option<&v1::Quantity>) -> Result<Quantity, Invalid> {
    let q = q.ok_or_else(|| Invalid::new(field, "is required"))?;
    let amount = decimal(&format!("{field}.amount"), &q.amount)?;
    let unit = Unit::parse(&q.unit).ok_or_else(|| {
        Invalid::new(
            format!("{field}.unit"),
            "is required (kg, g, t, lb, m, pcs, ...)",
        )
    })?;
    Ok(Quantity::new(amount, unit))
}

/// A lot (or other identifier) as lotline stores it: a GS1 identifier, in whichever form it
/// came (EPC URN or Digital Link), as its canonical Digital Link, so that both forms name one lot;
/// its check digit verified. Any other id is kept verbatim.
pub fn lot_id(field: &str, lot: &str) -> Result<String, Invalid> {
    lotline_domain::gs1::canonical_lot_id(lot).map_err(|e| Invalid::new(field, e.to_string()))
}

fn lot_quantities(field: &str, items: &[v1::LotQuantity]) -> Result<Vec<LotQuantity>, Invalid> {
    items
        .iter()
        .enumerate()
        .map(|(n, i)| {
            Ok(LotQuantity {
                lot: lot_id(&format!("{field}[{n}].lot"), &i.lot)?,
                quantity: quantity(&format!("{field}[{n}].quantity"), i.quantity.as_ref())?,
            })
        })
        .collect()
}

fn documents(docs: &[v1::BusinessDocument]) -> Vec<BusinessDocument> {
    docs.iter()
        .map(|d| BusinessDocument {
            kind: d.r#type.clone(),
            id: d.id.clone(),
        })
        .collect()
}

fn custody(field: &str, value: i32) -> Result<Option<CustodyModel>, Invalid> {
    match v1::CustodyModel::try_from(value) {
        Ok(v1::CustodyModel::Unspecified) => Ok(None),
        Ok(v1::CustodyModel::IdentityPreserved) => Ok(Some(CustodyModel::IdentityPreserved)),
        Ok(v1::CustodyModel::Segregated) => Ok(Some(CustodyModel::Segregated)),
        Ok(v1::CustodyModel::MassBalance) => Ok(Some(CustodyModel::MassBalance)),
        Err(_) => Err(Invalid::new(
            field,
            format!("unknown custody model {value}"),
        )),
    }
}

fn role(value: i32) -> Result<OrgRole, Invalid> {
    use v1::OrgRole as R;
    match R::try_from(value) {
        Ok(R::Farm) => Ok(OrgRole::Farm),
        Ok(R::Cooperative) => Ok(OrgRole::Cooperative),
        Ok(R::Processor) => Ok(OrgRole::Processor),
        Ok(R::Trader) => Ok(OrgRole::Trader),
        Ok(R::Manufacturer) => Ok(OrgRole::Manufacturer),
        Ok(R::Brand) => Ok(OrgRole::Brand),
        Ok(R::Retailer) => Ok(OrgRole::Retailer),
        Ok(R::Certifier) => Ok(OrgRole::Certifier),
        Ok(R::Unspecified) => Err(Invalid::new(
            "register_org.role",
            "is required (ORG_ROLE_FARM, ORG_ROLE_COOPERATIVE, ...)",
        )),
        Err(_) => Err(Invalid::new(
            "register_org.role",
            format!("unknown role {value}"),
        )),
    }
}

/// Writes a time in its canonical form, keeping the sender's offset.
pub fn time_to_wire(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Writes a decimal in its canonical form (no trailing zeros).
pub fn decimal_to_wire(d: Decimal) -> String {
    d.normalize().to_string()
}

pub fn quantity_to_wire(q: &Quantity) -> v1::Quantity {
    v1::Quantity {
        amount: decimal_to_wire(q.amount),
        unit: q.unit.symbol().to_string(),
    }
}

fn lot_quantities_to_wire(items: &[LotQuantity]) -> Vec<v1::LotQuantity> {
    items
        .iter()
        .map(|i| v1::LotQuantity {
            lot: i.lot.clone(),
            quantity: Some(quantity_to_wire(&i.quantity)),
        })
        .collect()
}

fn documents_to_wire(docs: &[BusinessDocument]) -> Vec<v1::BusinessDocument> {
    docs.iter()
        .map(|d| v1::BusinessDocument {
            r#type: d.kind.clone(),
            id: d.id.clone(),
        })
        .collect()
}

pub fn custody_to_wire(c: Option<CustodyModel>) -> i32 {
    (match c {
        None => v1::CustodyModel::Unspecified,
        Some(CustodyModel::IdentityPreserved) => v1::CustodyModel::IdentityPreserved,
        Some(CustodyModel::Segregated) => v1::CustodyModel::Segregated,
        Some(CustodyModel::MassBalance) => v1::CustodyModel::MassBalance,
    }) as i32
}

/// A wire role, `None` when unspecified or unknown.
pub fn role_from_wire(value: i32) -> Option<OrgRole> {
    role(value).ok()
}

pub fn role_to_wire(r: OrgRole) -> i32 {
    use v1::OrgRole as R;
    (match r {
        OrgRole::Farm => R::Farm,
        OrgRole::Cooperative => R::Cooperative,
        OrgRole::Processor => R::Processor,
        OrgRole::Trader => R::Trader,
        OrgRole::Manufacturer => R::Manufacturer,
        OrgRole::Brand => R::Brand,
        OrgRole::Retailer => R::Retailer,
        OrgRole::Certifier => R::Certifier,
    }) as i32
}

fn date_to_wire(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn opt_decimal_to_wire(d: Option<Decimal>) -> String {
    d.map(decimal_to_wire).unwrap_or_default()
}

/// Converts a domain event to its canonical wire form.
pub fn event_to_wire(e: &Event) -> v1::Event {
    use v1::event::Kind as K;
    let kind = match &e.kind {
        EventKind::Harvest(h) => K::Harvest(v1::Harvest {
            lot: h.lot.clone(),
            plot: h.plot.clone(),
            product: h.product.clone(),
            quantity: Some(quantity_to_wire(&h.quantity)),
            harvest_start: date_to_wire(h.harvest_start),
            harvest_end: date_to_wire(h.harvest_end),
            custody: custody_to_wire(h.custody),
            claims: h.claims.clone(),
        }),
        EventKind::Transform(t) => K::Transform(v1::Transform {
            inputs: lot_quantities_to_wire(&t.inputs),
            outputs: t
                .outputs
                .iter()
                .map(|o| v1::OutputLot {
                    lot: o.lot.clone(),
                    product: o.product.clone(),
                    quantity: Some(quantity_to_wire(&o.quantity)),
                    custody: custody_to_wire(o.custody),
                    claims: o.claims.clone(),
                })
                .collect(),
            process: t.process.clone(),
            conversion_ratio: opt_decimal_to_wire(t.conversion_ratio),
        }),
        EventKind::Ship(m) => K::Ship(v1::Ship {
            lots: lot_quantities_to_wire(&m.lots),
            to_org: m.counterparty.clone(),
            documents: documents_to_wire(&m.documents),
        }),
        EventKind::Receive(m) => K::Receive(v1::Receive {
            lots: lot_quantities_to_wire(&m.lots),
            from_org: m.counterparty.clone(),
            documents: documents_to_wire(&m.documents),
        }),
        EventKind::Certify(c) => K::Certify(v1::Certify {
            standard: c.standard.clone(),
            certificate_id: c.certificate_id.clone(),
            products: c.products.clone(),
            valid_from: date_to_wire(c.valid_from),
            valid_to: date_to_wire(c.valid_to),
            outcome: c.outcome.clone(),
            lot: c.lot.clone().unwrap_or_default(),
            subject_org: c.subject_org.clone().unwrap_or_default(),
        }),
        EventKind::Pay(p) => K::Pay(v1::Pay {
            lots: lot_quantities_to_wire(&p.lots),
            payee_org: p.payee_org.clone(),
            currency: p.currency.clone(),
            price_per_unit: decimal_to_wire(p.price_per_unit),
            price_unit: p.price_unit.clone(),
            premium_per_unit: opt_decimal_to_wire(p.premium_per_unit),
            contract_date: date_to_wire(p.contract_date),
        }),
        EventKind::Correct(c) => K::Correct(v1::Correct {
            corrected_event_id: c.corrected_event_id.clone(),
            reason: c.reason.clone(),
            corrective_event_ids: c.corrective_event_ids.clone(),
        }),
        EventKind::Observe(o) => K::Observe(v1::Observe {
            event_type: o.event_type.clone(),
            action: o.action.clone(),
            biz_step: o.biz_step.clone(),
            disposition: o.disposition.clone(),
            lots: lot_quantities_to_wire(&o.lots),
            epcs: o.epcs.clone(),
            parent: o.parent.clone().unwrap_or_default(),
        }),
        EventKind::RegisterOrg(o) => K::RegisterOrg(v1::RegisterOrg {
            name: o.name.clone(),
            role: role_to_wire(o.role),
            country: o.country.clone(),
            gln: o.gln.clone().unwrap_or_default(),
            member_of: o.member_of.clone().unwrap_or_default(),
            party: o.party.clone().unwrap_or_default(),
        }),
        EventKind::RegisterSite(s) => K::RegisterSite(v1::RegisterSite {
            site: s.site.clone(),
            name: s.name.clone(),
            gln: s.gln.clone().unwrap_or_default(),
            country: s.country.clone(),
        }),
        EventKind::RegisterPlot(p) => K::RegisterPlot(v1::RegisterPlot {
            plot: p.plot.clone(),
            geometry: p.geometry.clone(),
            area_ha: opt_decimal_to_wire(p.area_ha),
            country: p.country.clone(),
        }),
        EventKind::RegisterClass(c) => K::RegisterClass(v1::RegisterClass {
            class: c.class.clone(),
            product: c.product.clone().unwrap_or_default(),
            attributes: c
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
    };
    v1::Event {
        event_id: e.id.clone(),
        event_time: time_to_wire(&e.time),
        org: e.org.clone(),
        chain: e.chain.map(|c| c.as_str().to_string()).unwrap_or_default(),
        site: e.site.clone().unwrap_or_default(),
        extensions: e.extensions.clone(),
        kind: Some(kind),
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
    }
}
