//! lotline events → EPCIS 2.0 events and documents (docs/epcis.md, "Export").
//!
//! An event imported from EPCIS comes back as the JSON it was imported from (so its hash is
//! unchanged); a native event becomes its natural EPCIS event. [`ContextMerge`] gathers the
//! `@context` of every source document into one, renaming a prefix two documents bound to
//! different namespaces; [`DocumentWriter`] writes the document as a stream.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, FixedOffset};
use lotline_domain::quantity::{Quantity, Unit};
use lotline_domain::{
    Correct, CustodyModel, Event, EventKind, Harvest, LotQuantity, Movement, Observe, OrgRole, Pay,
    Transform,
};

use crate::gs1::Gs1Id;
use crate::json::Json;
use crate::names::{
    EPCIS_CONTEXT, EVENT_URN, EXT_CONTEXT, EXT_EVENT, LOT_URN, LOTLINE_NS, LOTLINE_PREFIX, ORG_URN,
    PLOT_URN, SITE_URN,
};

#[cfg(test)]
mod tests;

/// Why an event cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The EPCIS form kept at import does not read back as JSON.
    #[error("its kept EPCIS form is not JSON: {0}")]
    Kept(String),
}

fn s(v: impl Into<String>) -> Json {
    Json::String(v.into())
}

fn obj(members: Vec<(&str, Json)>) -> Json {
    Json::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// Percent-encodes what a URN component cannot hold verbatim.
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A lotline id as a URI: GS1 ids as they are, others under lotline's URN.
fn uri(id: &str, urn: &str) -> String {
    match Gs1Id::parse(id) {
        Ok(Some(_)) => id.to_string(),
        _ => format!("{urn}{}", encode(id)),
    }
}

fn time(t: &DateTime<FixedOffset>) -> (Json, Json) {
    let offset = t.offset().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    (
        s(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
        s(format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)),
    )
}

/// UN/ECE Rec 20 code of a unit; `None` for pieces (EPCIS: no uom means a count).
fn uom(unit: &Unit) -> Option<String> {
    Some(
        match unit.symbol() {
            "pcs" => return None,
            "kg" => "KGM",
            "t" => "TNE",
            "g" => "GRM",
            "lb" => "LBR",
            "l" => "LTR",
            "ml" => "MLT",
            "m" => "MTR",
            "cm" => "CMT",
            "mm" => "MMT",
            other => other,
        }
        .to_string(),
    )
}

fn quantity_element(lot: &str, q: &Quantity) -> Json {
    let mut members = vec![
        ("epcClass", s(uri(lot, LOT_URN))),
        ("quantity", Json::Number(q.amount.normalize().to_string())),
    ];
    if let Some(u) = uom(&q.unit) {
        members.push(("uom", s(u)));
    }
    obj(members)
}

fn quantity_list(lots: &[LotQuantity]) -> Json {
    Json::Array(
        lots.iter()
            .map(|l| quantity_element(&l.lot, &l.quantity))
            .collect(),
    )
}

fn custody_name(c: CustodyModel) -> &'static str {
    match c {
        CustodyModel::IdentityPreserved => "identity_preserved",
        CustodyModel::Segregated => "segregated",
        CustodyModel::MassBalance => "mass_balance",
    }
}

fn role_name(r: OrgRole) -> &'static str {
    match r {
        OrgRole::Farm => "farm",
        OrgRole::Cooperative => "cooperative",
        OrgRole::Processor => "processor",
        OrgRole::Trader => "trader",
        OrgRole::Manufacturer => "manufacturer",
        OrgRole::Brand => "brand",
        OrgRole::Retailer => "retailer",
        OrgRole::Certifier => "certifier",
    }
}

fn party(member: &str, org: &str) -> Json {
    Json::Array(vec![obj(vec![
        ("type", s("owning_party")),
        (member, s(uri(org, ORG_URN))),
    ])])
}

fn strings(items: &[String]) -> Json {
    Json::Array(items.iter().map(|i| s(i.clone())).collect())
}

/// Whether an event is master data: given in a document's header (registrations,
/// certificates) or not in EPCIS at all (access, membership and review facts), never as an event.
pub fn is_master_data(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::RegisterOrg(_)
            | EventKind::RegisterSite(_)
            | EventKind::RegisterPlot(_)
            | EventKind::RegisterClass(_)
            | EventKind::Certify(_)
            | EventKind::RevokeToken(_)
            | EventKind::ConfirmMember(_)
            | EventKind::Review(_)
    )
}

/// The EPCIS event(s) of one stored event. Registrations and certificates give none (they are
/// master data).
pub fn to_epcis(
    event: &Event,
    corrected: Option<&Event>,
    merge: &ContextMerge,
) -> Result<Vec<Json>, ExportError> {
    if let Some(kept) = event.extensions.get(EXT_EVENT) {
        return kept_form(event, kept, merge);
    }
    if let EventKind::Correct(c) = &event.kind {
        return restated(event, c, corrected, merge);
    }
    let (event_time, offset) = time(&event.time);
    let mut m: Vec<(&str, Json)> = Vec::new();
    let kind = match &event.kind {
        EventKind::Harvest(_) | EventKind::Ship(_) | EventKind::Receive(_) => "ObjectEvent",
        EventKind::Transform(_) => "TransformationEvent",
        EventKind::Pay(_) => "TransactionEvent",
        EventKind::Observe(o) => match o.event_type.as_str() {
            "AggregationEvent" | "TransactionEvent" | "AssociationEvent" | "ObjectEvent" => {
                match o.event_type.as_str() {
                    "AggregationEvent" => "AggregationEvent",
                    "TransactionEvent" => "TransactionEvent",
                    "AssociationEvent" => "AssociationEvent",
                    _ => "ObjectEvent",
                }
            }
            _ => "ObjectEvent",
        },
        EventKind::Correct(_)
        | EventKind::Certify(_)
        | EventKind::RegisterOrg(_)
        | EventKind::RegisterSite(_)
        | EventKind::RegisterPlot(_)
        | EventKind::RegisterClass(_)
        // Access, membership and review facts have no EPCIS form; they stay in lotline's log.
        | EventKind::RevokeToken(_)
        | EventKind::ConfirmMember(_)
        | EventKind::Review(_) => return Ok(Vec::new()),
    };
    m.push(("type", s(kind)));
    m.push(("eventTime", event_time));
    m.push(("eventTimeZoneOffset", offset));
    m.push(("eventID", s(format!("{EVENT_URN}{}", encode(&event.id)))));
    let site = event
        .site
        .as_ref()
        .map(|site| obj(vec![("id", s(uri(site, SITE_URN)))]));
    match &event.kind {
        EventKind::Harvest(h) => harvest_members(&mut m, h, site),
        EventKind::Transform(t) => transform_members(&mut m, t, site),
        EventKind::Ship(mv) | EventKind::Receive(mv) => movement_members(&mut m, event, mv, site),
        EventKind::Pay(p) => payment_members(&mut m, event, p, site),
        EventKind::Observe(o) => observation_members(&mut m, event, o, kind, site),
        _ => {}
    }
    m.push(("lotline:org", s(event.org.clone())));
    if let Some(chain) = event.chain {
        m.push(("lotline:chain", s(chain.as_str())));
    }
    let native: Vec<(String, Json)> = event
        .extensions
        .iter()
        .filter(|(k, _)| !k.starts_with("epcis:"))
        .map(|(k, v)| (k.clone(), s(v.clone())))
        .collect();
    if !native.is_empty() {
        m.push(("lotline:extensions", Json::Object(native)));
    }
    Ok(vec![obj(m)])
}

/// An imported event: its EPCIS form as it was received (the event, or the records of a joined
/// transformation), with namespace prefixes renamed where the merged context needs it.
fn kept_form(event: &Event, kept: &str, merge: &ContextMerge) -> Result<Vec<Json>, ExportError> {
    let json = Json::parse(kept).map_err(|e| ExportError::Kept(e.to_string()))?;
    let renames = event
        .extensions
        .get(EXT_CONTEXT)
        .map(|c| merge.renames_for(c))
        .unwrap_or_default();
    let rename = |j: Json| {
        if renames.is_empty() {
            j
        } else {
            rename_prefixes(j, &renames)
        }
    };
    Ok(match json {
        Json::Array(parts) => parts.into_iter().map(rename).collect(),
        one => vec![rename(one)],
    })
}

/// A correction: the event it corrects, restated with an `errorDeclaration` (nothing when that
/// event is not in the export).
fn restated(
    event: &Event,
    c: &Correct,
    corrected: Option<&Event>,
    merge: &ContextMerge,
) -> Result<Vec<Json>, ExportError> {
    let Some(target) = corrected else {
        return Ok(Vec::new());
    };
    let mut restated = to_epcis(target, None, merge)?;
    let (declared, _) = time(&event.time);
    for item in &mut restated {
        if let Json::Object(members) = item {
            members.push((
                "errorDeclaration".into(),
                obj(vec![
                    ("declarationTime", declared.clone()),
                    ("reason", s(c.reason.clone())),
                    // The correction's own id (errorDeclaration is outside the hash).
                    ("lotline:correctionID", s(event.id.clone())),
                    (
                        "correctiveEventIDs",
                        Json::Array(
                            c.corrective_event_ids
                                .iter()
                                .map(|i| s(format!("{EVENT_URN}{}", encode(i))))
                                .collect(),
                        ),
                    ),
                ]),
            ));
        }
    }
    Ok(restated)
}

/// An ObjectEvent ADD commissioning the harvested lot, its ilmd saying what and where.
fn harvest_members(m: &mut Vec<(&'static str, Json)>, h: &Harvest, site: Option<Json>) {
    m.push(("action", s("ADD")));
    m.push((
        "quantityList",
        Json::Array(vec![quantity_element(&h.lot, &h.quantity)]),
    ));
    m.push(("bizStep", s("commissioning")));
    m.push(("disposition", s("active")));
    if let Some(site) = site {
        m.push(("bizLocation", site));
    }
    let mut ilmd = vec![
        ("lotline:product", s(h.product.clone())),
        ("lotline:plot", s(uri(&h.plot, PLOT_URN))),
    ];
    if let Some(c) = h.custody {
        ilmd.push(("lotline:custody", s(custody_name(c))));
    }
    if !h.claims.is_empty() {
        ilmd.push(("lotline:claims", strings(&h.claims)));
    }
    if let Some(d) = h.harvest_start {
        ilmd.push(("cbvmda:harvestStartDate", s(d.to_string())));
    }
    if let Some(d) = h.harvest_end {
        ilmd.push(("cbvmda:harvestEndDate", s(d.to_string())));
    }
    m.push(("ilmd", obj(ilmd)));
}

/// A TransformationEvent, its ilmd describing each output.
fn transform_members(m: &mut Vec<(&'static str, Json)>, t: &Transform, site: Option<Json>) {
    m.push(("inputQuantityList", quantity_list(&t.inputs)));
    m.push((
        "outputQuantityList",
        Json::Array(
            t.outputs
                .iter()
                .map(|o| quantity_element(&o.lot, &o.quantity))
                .collect(),
        ),
    ));
    if let Some(site) = site {
        m.push(("bizLocation", site));
    }
    let outputs = t
        .outputs
        .iter()
        .map(|o| {
            let mut d = vec![
                ("lot", s(uri(&o.lot, LOT_URN))),
                ("product", s(o.product.clone())),
            ];
            if let Some(c) = o.custody {
                d.push(("custody", s(custody_name(c))));
            }
            if !o.claims.is_empty() {
                d.push(("claims", strings(&o.claims)));
            }
            obj(d)
        })
        .collect();
    m.push(("ilmd", obj(vec![("lotline:outputs", Json::Array(outputs))])));
    m.push(("lotline:process", s(t.process.clone())));
    if let Some(r) = t.conversion_ratio {
        m.push(("lotline:conversionRatio", s(r.normalize().to_string())));
    }
}

/// An ObjectEvent OBSERVE shipping or receiving, with its documents and both parties.
fn movement_members(
    m: &mut Vec<(&'static str, Json)>,
    event: &Event,
    mv: &Movement,
    site: Option<Json>,
) {
    let ship = matches!(event.kind, EventKind::Ship(_));
    m.push(("action", s("OBSERVE")));
    m.push(("quantityList", quantity_list(&mv.lots)));
    m.push(("bizStep", s(if ship { "shipping" } else { "receiving" })));
    m.push((
        "disposition",
        s(if ship { "in_transit" } else { "in_progress" }),
    ));
    if let Some(site) = site {
        m.push(("bizLocation", site));
    }
    if !mv.documents.is_empty() {
        m.push((
            "bizTransactionList",
            Json::Array(
                mv.documents
                    .iter()
                    .map(|d| {
                        let kind = if d.kind == "invoice" {
                            "inv"
                        } else {
                            d.kind.as_str()
                        };
                        obj(vec![("type", s(kind)), ("bizTransaction", s(d.id.clone()))])
                    })
                    .collect(),
            ),
        ));
    }
    let (from, to) = if ship {
        (event.org.as_str(), mv.counterparty.as_str())
    } else {
        (mv.counterparty.as_str(), event.org.as_str())
    };
    m.push(("sourceList", party("source", from)));
    m.push(("destinationList", party("destination", to)));
}

/// A TransactionEvent ADD with the price, premium and payee.
fn payment_members(m: &mut Vec<(&'static str, Json)>, event: &Event, p: &Pay, site: Option<Json>) {
    m.push(("action", s("ADD")));
    m.push((
        "bizTransactionList",
        Json::Array(vec![obj(vec![
            ("type", s("po")),
            (
                "bizTransaction",
                s(format!("urn:lotline:payment:{}", encode(&event.id))),
            ),
        ])]),
    ));
    m.push(("quantityList", quantity_list(&p.lots)));
    if let Some(site) = site {
        m.push(("bizLocation", site));
    }
    m.push(("destinationList", party("destination", &p.payee_org)));
    m.push((
        "lotline:pricePerUnit",
        s(p.price_per_unit.normalize().to_string()),
    ));
    m.push(("lotline:currency", s(p.currency.clone())));
    m.push(("lotline:priceUnit", s(p.price_unit.clone())));
    if let Some(v) = p.premium_per_unit {
        m.push(("lotline:premiumPerUnit", s(v.normalize().to_string())));
    }
    if let Some(d) = p.contract_date {
        m.push(("lotline:contractDate", s(d.to_string())));
    }
}

/// The observation as the EPCIS event type it came as.
fn observation_members(
    m: &mut Vec<(&'static str, Json)>,
    event: &Event,
    o: &Observe,
    kind: &str,
    site: Option<Json>,
) {
    let child = matches!(kind, "AggregationEvent" | "AssociationEvent");
    if let Some(p) = &o.parent {
        m.push(("parentID", s(uri(p, LOT_URN))));
    }
    if !o.epcs.is_empty() {
        m.push((
            if child { "childEPCs" } else { "epcList" },
            Json::Array(o.epcs.iter().map(|e| s(uri(e, LOT_URN))).collect()),
        ));
    }
    if !o.lots.is_empty() {
        m.push((
            if child {
                "childQuantityList"
            } else {
                "quantityList"
            },
            quantity_list(&o.lots),
        ));
    }
    m.push((
        "action",
        s(if o.action.is_empty() {
            "OBSERVE"
        } else {
            o.action.as_str()
        }),
    ));
    if !o.biz_step.is_empty() {
        m.push(("bizStep", s(o.biz_step.clone())));
    }
    if !o.disposition.is_empty() {
        m.push(("disposition", s(o.disposition.clone())));
    }
    if let Some(site) = site {
        m.push(("bizLocation", site));
    }
    if kind == "TransactionEvent" {
        m.push((
            "bizTransactionList",
            Json::Array(vec![obj(vec![
                ("type", s("po")),
                (
                    "bizTransaction",
                    s(format!("urn:lotline:transaction:{}", encode(&event.id))),
                ),
            ])]),
        ));
    }
}

/// The master data of an export: organisations, sites, plots, certificates, the registered
/// product classes, and the product classes (product and chain) of the GS1 lots exported.
#[derive(Debug, Default)]
pub struct MasterData {
    classes: BTreeMap<String, (String, Option<&'static str>)>,
    /// Registered product classes (RegisterClass), written as registered.
    registered_classes: BTreeMap<String, Vec<(String, Json)>>,
    /// The chain of each org's exported events (the first seen), for events whose product
    /// class says none.
    chains: BTreeMap<String, &'static str>,
    parties: BTreeMap<String, Vec<(String, Json)>>,
    /// The id other systems know an org by, when it has one: its Party element's id.
    party_ids: BTreeMap<String, String>,
    certificates: BTreeMap<String, Vec<Json>>,
    locations: BTreeMap<String, Vec<(String, Json)>>,
}

/// A class id as an export writes it: a GS1 class as its Digital Link, lotline's own as a
/// `urn:lotline:lot:` URI.
fn class_uri(id: &str) -> String {
    if id.starts_with("https://") || id.starts_with("urn:") {
        id.to_string()
    } else {
        uri(id, LOT_URN)
    }
}

fn attribute(id: &str, value: Json) -> (String, Json) {
    (id.to_string(), value)
}

impl MasterData {
    pub fn new() -> Self {
        MasterData::default()
    }

    /// Adds a registration or certificate; a later registration of one id replaces an earlier.
    pub fn add(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RegisterOrg(o) => {
                let mut attrs = vec![
                    attribute("cbvmda:name", s(o.name.clone())),
                    attribute("cbvmda:countryCode", s(o.country.clone())),
                    attribute("lotline:role", s(role_name(o.role))),
                    attribute("lotline:org", s(event.org.clone())),
                ];
                if let Some(m) = &o.member_of {
                    attrs.push(attribute("lotline:memberOf", s(uri(m, ORG_URN))));
                }
                // A registered chain wins over the chain of the org's exported events.
                if let Some(chain) = event.chain {
                    self.chains.insert(event.org.clone(), chain.as_str());
                }
                match &o.party {
                    Some(party) => self.party_ids.insert(event.org.clone(), party.clone()),
                    None => self.party_ids.remove(&event.org),
                };
                self.parties.insert(event.org.clone(), attrs);
            }
            EventKind::RegisterClass(c) => {
                let mut attrs = Vec::new();
                if let Some(product) = &c.product {
                    attrs.push(attribute("lotline:product", s(product.clone())));
                }
                if let Some(chain) = event.chain {
                    attrs.push(attribute("lotline:chain", s(chain.as_str())));
                }
                attrs.push(attribute(
                    "lotline:owningParty",
                    s(uri(&event.org, ORG_URN)),
                ));
                for (id, value) in &c.attributes {
                    let value = Json::parse(value).unwrap_or_else(|_| s(value.clone()));
                    attrs.push(attribute(id, value));
                }
                self.registered_classes.insert(c.class.clone(), attrs);
            }
            EventKind::RegisterSite(site) => {
                let mut attrs = vec![
                    attribute("cbvmda:name", s(site.name.clone())),
                    attribute("lotline:owningParty", s(uri(&event.org, ORG_URN))),
                ];
                if !site.country.is_empty() {
                    attrs.push(attribute("cbvmda:countryCode", s(site.country.clone())));
                }
                self.locations.insert(uri(&site.site, SITE_URN), attrs);
            }
            EventKind::RegisterPlot(p) => {
                let geometry = Json::parse(&p.geometry).unwrap_or_else(|_| s(p.geometry.clone()));
                let mut attrs = vec![
                    attribute("lotline:owningParty", s(uri(&event.org, ORG_URN))),
                    attribute("lotline:geometry", geometry),
                ];
                if let Some(a) = p.area_ha {
                    attrs.push(attribute("lotline:areaHa", s(a.normalize().to_string())));
                }
                if !p.country.is_empty() {
                    attrs.push(attribute("cbvmda:countryCode", s(p.country.clone())));
                }
                self.locations.insert(uri(&p.plot, PLOT_URN), attrs);
            }
            EventKind::Certify(c) => {
                let subject = c.subject_org.clone().unwrap_or_else(|| event.org.clone());
                let mut cert = vec![
                    ("scheme", s(c.standard.clone())),
                    ("id", s(c.certificate_id.clone())),
                ];
                if let Some(d) = c.valid_from {
                    cert.push(("validFrom", s(d.to_string())));
                }
                if let Some(d) = c.valid_to {
                    cert.push(("validTo", s(d.to_string())));
                }
                cert.push(("products", strings(&c.products)));
                cert.push(("outcome", s(c.outcome.clone())));
                if let Some(l) = &c.lot {
                    cert.push(("lot", s(uri(l, LOT_URN))));
                }
                if c.subject_org.is_some() {
                    cert.push(("certifier", s(uri(&event.org, ORG_URN))));
                }
                self.certificates
                    .entry(subject)
                    .or_default()
                    .push(obj(cert));
            }
            _ => {}
        }
    }

    /// Notes the product class of every GS1 lot an exported event creates (its GTIN, product and
    /// chain), so that a document imported elsewhere names the same products and chains.
    pub fn observe(&mut self, event: &Event) {
        // An imported event's org came from its location's owner, or from `--org`: the location
        // is written with its owner, so that the document imports the same way anywhere.
        if event.extensions.contains_key(EXT_EVENT)
            && let Some(site) = &event.site
        {
            let id = uri(site, SITE_URN);
            self.locations.entry(id).or_insert_with(|| {
                vec![attribute(
                    "lotline:owningParty",
                    s(uri(&event.org, ORG_URN)),
                )]
            });
        }
        let chain = event.chain.map(|c| c.as_str());
        if let Some(chain) = chain {
            self.chains.entry(event.org.clone()).or_insert(chain);
        }
        let mut note = |lot: &str, product: &str| {
            if let Some(at) = lot
                .find("/10/")
                .filter(|_| lot.starts_with("https://id.gs1.org/01/"))
            {
                self.classes
                    .entry(lot[..at].to_string())
                    .or_insert_with(|| (product.to_string(), chain));
            }
        };
        match &event.kind {
            EventKind::Harvest(h) => note(&h.lot, &h.product),
            EventKind::Transform(t) => {
                for o in &t.outputs {
                    note(&o.lot, &o.product);
                }
            }
            _ => {}
        }
    }

    /// `epcisMasterData`: Party, Location and EPCClass vocabularies.
    pub fn to_json(&self) -> Json {
        let element = |id: String, attrs: Vec<(String, Json)>| {
            obj(vec![
                ("id", s(id)),
                (
                    "attributes",
                    Json::Array(
                        attrs
                            .into_iter()
                            .map(|(k, v)| obj(vec![("id", s(k)), ("attribute", v)]))
                            .collect(),
                    ),
                ),
            ])
        };
        let parties: Vec<Json> = self
            .parties
            .iter()
            .map(|(org, attrs)| {
                let mut attrs = attrs.clone();
                if let Some(chain) = self.chains.get(org) {
                    attrs.push(attribute("lotline:chain", s(*chain)));
                }
                // One attribute per certificate: an attribute's value is a string, a number or
                // an object in the EPCIS JSON schema, not a list.
                for cert in self.certificates.get(org).into_iter().flatten() {
                    attrs.push(attribute("lotline:certificate", cert.clone()));
                }
                let id = match self.party_ids.get(org) {
                    Some(party) => party.clone(),
                    None => uri(org, ORG_URN),
                };
                element(id, attrs)
            })
            .collect();
        let locations: Vec<Json> = self
            .locations
            .iter()
            .map(|(id, attrs)| element(id.clone(), attrs.clone()))
            .collect();
        let mut classes: BTreeMap<&String, Vec<(String, Json)>> = self
            .classes
            .iter()
            .map(|(id, (product, chain))| {
                let mut attrs = vec![attribute("lotline:product", s(product.clone()))];
                if let Some(chain) = chain {
                    attrs.push(attribute("lotline:chain", s(*chain)));
                }
                (id, attrs)
            })
            .collect();
        for (id, attrs) in &self.registered_classes {
            classes.insert(id, attrs.clone());
        }
        let classes: Vec<Json> = classes
            .into_iter()
            .map(|(id, attrs)| element(class_uri(id), attrs))
            .collect();
        obj(vec![(
            "vocabularyList",
            Json::Array(vec![
                obj(vec![
                    ("type", s("urn:epcglobal:epcis:vtype:Party")),
                    ("vocabularyElementList", Json::Array(parties)),
                ]),
                obj(vec![
                    ("type", s("urn:epcglobal:epcis:vtype:Location")),
                    ("vocabularyElementList", Json::Array(locations)),
                ]),
                obj(vec![
                    ("type", s("urn:epcglobal:epcis:vtype:EPCClass")),
                    ("vocabularyElementList", Json::Array(classes)),
                ]),
            ]),
        )])
    }
}

/// The merged `@context` of an export.
#[derive(Debug)]
pub struct ContextMerge {
    /// prefix → namespace, in the order first seen.
    prefixes: Vec<(String, String)>,
    /// Other string entries of list-form contexts (besides the EPCIS context).
    urls: Vec<String>,
    /// For a source context's text: the renames its events need.
    renames: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for ContextMerge {
    fn default() -> Self {
        ContextMerge {
            prefixes: vec![(LOTLINE_PREFIX.to_string(), LOTLINE_NS.to_string())],
            urls: Vec::new(),
            renames: BTreeMap::new(),
        }
    }
}

impl ContextMerge {
    pub fn new() -> Self {
        ContextMerge::default()
    }

    /// Adds a source document's `@context` (its JSON text).
    pub fn add(&mut self, context_text: &str) {
        if self.renames.contains_key(context_text) {
            return;
        }
        let mut renames = BTreeMap::new();
        let Ok(context) = Json::parse(context_text) else {
            self.renames.insert(context_text.to_string(), renames);
            return;
        };
        let entries: Vec<Json> = match context {
            Json::Array(items) => items,
            other => vec![other],
        };
        for entry in entries {
            match entry {
                Json::String(url) if url != EPCIS_CONTEXT && !self.urls.contains(&url) => {
                    self.urls.push(url);
                }
                Json::Object(members) => {
                    for (prefix, value) in members {
                        let Json::String(iri) = value else { continue };
                        if prefix.starts_with('@') {
                            continue;
                        }
                        match self.prefixes.iter().find(|(p, _)| *p == prefix) {
                            Some((_, bound)) if *bound == iri => {}
                            Some(_) => {
                                // Bound elsewhere: reuse a prefix already bound to this IRI,
                                // else a new one.
                                let new = match self.prefixes.iter().find(|(_, i)| *i == iri) {
                                    Some((p, _)) => p.clone(),
                                    None => {
                                        let mut n = 2;
                                        while self
                                            .prefixes
                                            .iter()
                                            .any(|(p, _)| *p == format!("{prefix}_{n}"))
                                        {
                                            n += 1;
                                        }
                                        let p = format!("{prefix}_{n}");
                                        self.prefixes.push((p.clone(), iri.clone()));
                                        p
                                    }
                                };
                                renames.insert(prefix, new);
                            }
                            None => self.prefixes.push((prefix, iri)),
                        }
                    }
                }
                _ => {}
            }
        }
        self.renames.insert(context_text.to_string(), renames);
    }

    fn renames_for(&self, context_text: &str) -> BTreeMap<String, String> {
        self.renames.get(context_text).cloned().unwrap_or_default()
    }

    /// `[EPCIS context, other URLs…, {prefix: namespace…}]`.
    pub fn context(&self) -> Json {
        let mut items = vec![s(EPCIS_CONTEXT)];
        items.extend(self.urls.iter().map(|u| s(u.clone())));
        items.push(Json::Object(
            self.prefixes
                .iter()
                .map(|(p, i)| (p.clone(), s(i.clone())))
                .collect(),
        ));
        Json::Array(items)
    }
}

/// Rewrites `old:` keys (at any depth) and `old:`-prefixed string values to `new:`.
fn rename_prefixes(json: Json, renames: &BTreeMap<String, String>) -> Json {
    let rename = |text: &str| -> Option<String> {
        let (prefix, rest) = text.split_once(':')?;
        renames.get(prefix).map(|new| format!("{new}:{rest}"))
    };
    match json {
        Json::Object(members) => Json::Object(
            members
                .into_iter()
                .map(|(k, v)| (rename(&k).unwrap_or(k), rename_prefixes(v, renames)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|i| rename_prefixes(i, renames))
                .collect(),
        ),
        Json::String(text) => Json::String(rename(&text).unwrap_or(text)),
        other => other,
    }
}

/// Writes an `EPCISDocument` as a stream: the head, one event at a time, the tail.
pub struct DocumentWriter<W: Write> {
    out: W,
    first: bool,
}

impl<W: Write> DocumentWriter<W> {
    pub fn new(
        mut out: W,
        context: &Json,
        master_data: Option<&Json>,
        creation_date: &str,
    ) -> std::io::Result<Self> {
        let text = |j: &Json| serde_json::to_string(j).map_err(std::io::Error::other);
        write!(
            out,
            "{{\"@context\":{},\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":{}",
            text(context)?,
            text(&s(creation_date))?
        )?;
        if let Some(master) = master_data {
            write!(
                out,
                ",\"epcisHeader\":{{\"epcisMasterData\":{}}}",
                text(master)?
            )?;
        }
        write!(out, ",\"epcisBody\":{{\"eventList\":[")?;
        Ok(DocumentWriter { out, first: true })
    }

    pub fn event(&mut self, event: &Json) -> std::io::Result<()> {
        let text = serde_json::to_string(event).map_err(std::io::Error::other)?;
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        self.out.write_all(b"\n")?;
        self.out.write_all(text.as_bytes())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b"\n]}}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}
