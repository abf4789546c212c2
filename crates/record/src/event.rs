//! Domain events <-> record messages. Record to domain is fallible and names the field that does
//! not parse; domain to record always succeeds and writes the canonical form (normalised decimals,
//! canonical unit symbols, RFC 3339 times with the sender's offset, maps in key order).

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use lotline_domain::{
    BusinessDocument, Certify, Chain, ConfirmMember, Correct, CustodyModel, Event, EventKind,
    Harvest, Invalid, LotQuantity, Movement, Observe, OrgRole, OutputLot, Pay, Quantity,
    RegisterClass, RegisterOrg, RegisterPlot, RegisterSite, Review, RevokeToken, Transform, Unit,
    Verdict,
};
use rust_decimal::Decimal;

use crate::pb;

/// The domain event a record message holds, naming the first field that does not parse.
/// Identifiers are taken as written: they were canonicalised when the event was accepted.
pub fn event_from_pb(e: pb::Event) -> Result<Event, Invalid> {
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
    let kind = match e.kind {
        None => {
            return Err(Invalid::new(
                "kind",
                "no event kind is set (harvest, transform, ship, ...)",
            ));
        }
        Some(k) => kind_from_pb(k)?,
    };
    Ok(Event {
        id: e.event_id,
        time,
        org: e.org,
        chain,
        site: opt(e.site),
        extensions: e.extensions,
        kind,
    })
}

fn kind_from_pb(k: pb::event::Kind) -> Result<EventKind, Invalid> {
    use pb::event::Kind as K;
    Ok(match k {
        K::Harvest(h) => EventKind::Harvest(Harvest {
            lot: h.lot,
            plot: h.plot,
            product: h.product,
            quantity: quantity(h.quantity.as_ref(), || "harvest.quantity".into())?,
            harvest_start: opt_date("harvest.harvest_start", &h.harvest_start)?,
            harvest_end: opt_date("harvest.harvest_end", &h.harvest_end)?,
            custody: custody(h.custody, || "harvest.custody".into())?,
            claims: h.claims,
        }),
        K::Transform(t) => EventKind::Transform(Transform {
            inputs: lot_quantities("transform.inputs", t.inputs)?,
            outputs: t
                .outputs
                .into_iter()
                .enumerate()
                .map(|(n, o)| {
                    Ok(OutputLot {
                        lot: o.lot,
                        product: o.product,
                        quantity: quantity(o.quantity.as_ref(), || {
                            format!("transform.outputs[{n}].quantity")
                        })?,
                        custody: custody(o.custody, || format!("transform.outputs[{n}].custody"))?,
                        claims: o.claims,
                    })
                })
                .collect::<Result<_, Invalid>>()?,
            process: t.process,
            conversion_ratio: opt_decimal("transform.conversion_ratio", &t.conversion_ratio)?,
        }),
        K::Ship(s) => EventKind::Ship(Movement {
            lots: lot_quantities("ship.lots", s.lots)?,
            counterparty: s.to_org,
            documents: documents(s.documents),
        }),
        K::Receive(r) => EventKind::Receive(Movement {
            lots: lot_quantities("receive.lots", r.lots)?,
            counterparty: r.from_org,
            documents: documents(r.documents),
        }),
        K::Certify(c) => EventKind::Certify(Certify {
            standard: c.standard,
            certificate_id: c.certificate_id,
            products: c.products,
            valid_from: opt_date("certify.valid_from", &c.valid_from)?,
            valid_to: opt_date("certify.valid_to", &c.valid_to)?,
            outcome: c.outcome,
            lot: opt(c.lot),
            subject_org: opt(c.subject_org),
        }),
        K::Pay(p) => EventKind::Pay(Pay {
            lots: lot_quantities("pay.lots", p.lots)?,
            payee_org: p.payee_org,
            currency: p.currency,
            price_per_unit: decimal("pay.price_per_unit", &p.price_per_unit)?,
            price_unit: p.price_unit,
            premium_per_unit: opt_decimal("pay.premium_per_unit", &p.premium_per_unit)?,
            contract_date: opt_date("pay.contract_date", &p.contract_date)?,
        }),
        K::Correct(c) => EventKind::Correct(Correct {
            corrected_event_id: c.corrected_event_id,
            reason: c.reason,
            corrective_event_ids: c.corrective_event_ids,
        }),
        K::Observe(o) => EventKind::Observe(Observe {
            event_type: o.event_type,
            action: o.action,
            biz_step: o.biz_step,
            disposition: o.disposition,
            lots: lot_quantities("observe.lots", o.lots)?,
            epcs: o.epcs,
            parent: opt(o.parent),
        }),
        K::RegisterOrg(o) => EventKind::RegisterOrg(RegisterOrg {
            name: o.name,
            role: role(o.role)?,
            country: o.country,
            gln: opt(o.gln),
            member_of: opt(o.member_of),
            party: opt(o.party),
        }),
        K::RegisterSite(s) => EventKind::RegisterSite(RegisterSite {
            site: s.site,
            name: s.name,
            gln: opt(s.gln),
            country: s.country,
        }),
        K::RegisterPlot(p) => EventKind::RegisterPlot(RegisterPlot {
            plot: p.plot,
            geometry: p.geometry,
            area_ha: opt_decimal("register_plot.area_ha", &p.area_ha)?,
            country: p.country,
        }),
        K::RegisterClass(c) => EventKind::RegisterClass(RegisterClass {
            class: c.class,
            product: opt(c.product),
            attributes: c.attributes.into_iter().collect(),
        }),
        K::RevokeToken(r) => EventKind::RevokeToken(RevokeToken {
            token_id: r.token_id,
            reason: r.reason,
        }),
        K::ConfirmMember(c) => EventKind::ConfirmMember(ConfirmMember {
            member: c.member,
            valid_from: opt_date("confirm_member.valid_from", &c.valid_from)?,
            valid_to: opt_date("confirm_member.valid_to", &c.valid_to)?,
        }),
        K::Review(r) => EventKind::Review(Review {
            anomaly: r.anomaly,
            verdict: match pb::ReviewVerdict::try_from(r.verdict) {
                Ok(pb::ReviewVerdict::Acknowledged) => Verdict::Acknowledged,
                Ok(pb::ReviewVerdict::Disputed) => Verdict::Disputed,
                _ => {
                    return Err(Invalid::new(
                        "review.verdict",
                        "must be acknowledged or disputed",
                    ));
                }
            },
            note: r.note,
        }),
    })
}

fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
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
    decimal_value(s).map_err(|reason| Invalid::new(field, reason))
}

/// A decimal, or why it is none (the field is named by the caller, only on an error).
fn decimal_value(s: &str) -> Result<Decimal, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is required (a decimal number as a string)".into());
    }
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("{s:?} is not a decimal number"))
}

fn opt_decimal(field: &str, s: &str) -> Result<Option<Decimal>, Invalid> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        decimal(field, s).map(Some)
    }
}

/// `field` names the quantity in an error; it is only made for one (a stored event is decoded
/// on every read, and its names would cost more than its numbers).
fn quantity(q: Option<&pb::Quantity>, field: impl Fn() -> String) -> Result<Quantity, Invalid> {
    let q = q.ok_or_else(|| Invalid::new(field(), "is required"))?;
    let amount = decimal_value(&q.amount)
        .map_err(|reason| Invalid::new(format!("{}.amount", field()), reason))?;
    let unit = Unit::parse(&q.unit).ok_or_else(|| {
        Invalid::new(
            format!("{}.unit", field()),
            "is required (kg, g, t, lb, m, pcs, ...)",
        )
    })?;
    Ok(Quantity::new(amount, unit))
}

fn lot_quantities(field: &str, items: Vec<pb::LotQuantity>) -> Result<Vec<LotQuantity>, Invalid> {
    items
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            Ok(LotQuantity {
                quantity: quantity(i.quantity.as_ref(), || format!("{field}[{n}].quantity"))?,
                lot: i.lot,
            })
        })
        .collect()
}

fn documents(docs: Vec<pb::BusinessDocument>) -> Vec<BusinessDocument> {
    docs.into_iter()
        .map(|d| BusinessDocument {
            kind: d.r#type,
            id: d.id,
        })
        .collect()
}

fn custody(value: i32, field: impl Fn() -> String) -> Result<Option<CustodyModel>, Invalid> {
    match pb::CustodyModel::try_from(value) {
        Ok(pb::CustodyModel::Unspecified) => Ok(None),
        Ok(pb::CustodyModel::IdentityPreserved) => Ok(Some(CustodyModel::IdentityPreserved)),
        Ok(pb::CustodyModel::Segregated) => Ok(Some(CustodyModel::Segregated)),
        Ok(pb::CustodyModel::MassBalance) => Ok(Some(CustodyModel::MassBalance)),
        Err(_) => Err(Invalid::new(
            field(),
            format!("unknown custody model {value}"),
        )),
    }
}

fn role(value: i32) -> Result<OrgRole, Invalid> {
    use pb::OrgRole as R;
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
pub fn time_text(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Writes a decimal in its canonical form (no trailing zeros).
pub fn decimal_text(d: Decimal) -> String {
    d.normalize().to_string()
}

pub fn quantity_to_pb(q: &Quantity) -> pb::Quantity {
    pb::Quantity {
        amount: decimal_text(q.amount),
        unit: q.unit.symbol().to_string(),
    }
}

fn lot_quantities_to_pb(items: &[LotQuantity]) -> Vec<pb::LotQuantity> {
    items
        .iter()
        .map(|i| pb::LotQuantity {
            lot: i.lot.clone(),
            quantity: Some(quantity_to_pb(&i.quantity)),
        })
        .collect()
}

fn documents_to_pb(docs: &[BusinessDocument]) -> Vec<pb::BusinessDocument> {
    docs.iter()
        .map(|d| pb::BusinessDocument {
            r#type: d.kind.clone(),
            id: d.id.clone(),
        })
        .collect()
}

pub fn custody_number(c: Option<CustodyModel>) -> i32 {
    (match c {
        None => pb::CustodyModel::Unspecified,
        Some(CustodyModel::IdentityPreserved) => pb::CustodyModel::IdentityPreserved,
        Some(CustodyModel::Segregated) => pb::CustodyModel::Segregated,
        Some(CustodyModel::MassBalance) => pb::CustodyModel::MassBalance,
    }) as i32
}

/// A role from its protobuf number, `None` when unspecified or unknown.
pub fn role_from_number(value: i32) -> Option<OrgRole> {
    role(value).ok()
}

pub fn role_number(r: OrgRole) -> i32 {
    use pb::OrgRole as R;
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

fn date_text(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn opt_decimal_text(d: Option<Decimal>) -> String {
    d.map(decimal_text).unwrap_or_default()
}

/// The canonical record message of an event.
pub fn event_to_pb(e: &Event) -> pb::Event {
    use pb::event::Kind as K;
    let kind = match &e.kind {
        EventKind::Harvest(h) => K::Harvest(pb::Harvest {
            lot: h.lot.clone(),
            plot: h.plot.clone(),
            product: h.product.clone(),
            quantity: Some(quantity_to_pb(&h.quantity)),
            harvest_start: date_text(h.harvest_start),
            harvest_end: date_text(h.harvest_end),
            custody: custody_number(h.custody),
            claims: h.claims.clone(),
        }),
        EventKind::Transform(t) => K::Transform(pb::Transform {
            inputs: lot_quantities_to_pb(&t.inputs),
            outputs: t
                .outputs
                .iter()
                .map(|o| pb::OutputLot {
                    lot: o.lot.clone(),
                    product: o.product.clone(),
                    quantity: Some(quantity_to_pb(&o.quantity)),
                    custody: custody_number(o.custody),
                    claims: o.claims.clone(),
                })
                .collect(),
            process: t.process.clone(),
            conversion_ratio: opt_decimal_text(t.conversion_ratio),
        }),
        EventKind::Ship(m) => K::Ship(pb::Ship {
            lots: lot_quantities_to_pb(&m.lots),
            to_org: m.counterparty.clone(),
            documents: documents_to_pb(&m.documents),
        }),
        EventKind::Receive(m) => K::Receive(pb::Receive {
            lots: lot_quantities_to_pb(&m.lots),
            from_org: m.counterparty.clone(),
            documents: documents_to_pb(&m.documents),
        }),
        EventKind::Certify(c) => K::Certify(pb::Certify {
            standard: c.standard.clone(),
            certificate_id: c.certificate_id.clone(),
            products: c.products.clone(),
            valid_from: date_text(c.valid_from),
            valid_to: date_text(c.valid_to),
            outcome: c.outcome.clone(),
            lot: c.lot.clone().unwrap_or_default(),
            subject_org: c.subject_org.clone().unwrap_or_default(),
        }),
        EventKind::Pay(p) => K::Pay(pb::Pay {
            lots: lot_quantities_to_pb(&p.lots),
            payee_org: p.payee_org.clone(),
            currency: p.currency.clone(),
            price_per_unit: decimal_text(p.price_per_unit),
            price_unit: p.price_unit.clone(),
            premium_per_unit: opt_decimal_text(p.premium_per_unit),
            contract_date: date_text(p.contract_date),
        }),
        EventKind::Correct(c) => K::Correct(pb::Correct {
            corrected_event_id: c.corrected_event_id.clone(),
            reason: c.reason.clone(),
            corrective_event_ids: c.corrective_event_ids.clone(),
        }),
        EventKind::Observe(o) => K::Observe(pb::Observe {
            event_type: o.event_type.clone(),
            action: o.action.clone(),
            biz_step: o.biz_step.clone(),
            disposition: o.disposition.clone(),
            lots: lot_quantities_to_pb(&o.lots),
            epcs: o.epcs.clone(),
            parent: o.parent.clone().unwrap_or_default(),
        }),
        EventKind::RegisterOrg(o) => K::RegisterOrg(pb::RegisterOrg {
            name: o.name.clone(),
            role: role_number(o.role),
            country: o.country.clone(),
            gln: o.gln.clone().unwrap_or_default(),
            member_of: o.member_of.clone().unwrap_or_default(),
            party: o.party.clone().unwrap_or_default(),
        }),
        EventKind::RegisterSite(s) => K::RegisterSite(pb::RegisterSite {
            site: s.site.clone(),
            name: s.name.clone(),
            gln: s.gln.clone().unwrap_or_default(),
            country: s.country.clone(),
        }),
        EventKind::RegisterPlot(p) => K::RegisterPlot(pb::RegisterPlot {
            plot: p.plot.clone(),
            geometry: p.geometry.clone(),
            area_ha: opt_decimal_text(p.area_ha),
            country: p.country.clone(),
        }),
        EventKind::RegisterClass(c) => K::RegisterClass(pb::RegisterClass {
            class: c.class.clone(),
            product: c.product.clone().unwrap_or_default(),
            attributes: c
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        EventKind::RevokeToken(r) => K::RevokeToken(pb::RevokeToken {
            token_id: r.token_id.clone(),
            reason: r.reason.clone(),
        }),
        EventKind::ConfirmMember(c) => K::ConfirmMember(pb::ConfirmMember {
            member: c.member.clone(),
            valid_from: date_text(c.valid_from),
            valid_to: date_text(c.valid_to),
        }),
        EventKind::Review(r) => K::Review(pb::Review {
            anomaly: r.anomaly.clone(),
            verdict: match r.verdict {
                Verdict::Acknowledged => pb::ReviewVerdict::Acknowledged,
                Verdict::Disputed => pb::ReviewVerdict::Disputed,
            } as i32,
            note: r.note.clone(),
        }),
    };
    pb::Event {
        event_id: e.id.clone(),
        event_time: time_text(&e.time),
        org: e.org.clone(),
        chain: e.chain.map(|c| c.as_str().to_string()).unwrap_or_default(),
        site: e.site.clone().unwrap_or_default(),
        extensions: e.extensions.clone(),
        kind: Some(kind),
    }
}
