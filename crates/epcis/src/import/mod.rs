//! EPCIS documents → lotline events (docs/epcis.md, "Master data" and "Events").
//!
//! An [`Importer`] is fed one document in order: its `@context`, the elements of its master data
//! (each becomes a registration event and is remembered), then each event of its event list.
//! Each EPCIS event becomes one lotline event that keeps the EPCIS form verbatim, its CBV 2.0
//! hash and the document's context in extensions; transformation records that share a
//! `transformationID` and lack inputs or outputs are held and joined at [`Importer::finish`].
//!
//! What the document does not register itself (the owner of a location, the org of a party,
//! the product of a class) comes from a [`Registry`]: the master data lotline recorded from
//! earlier documents and events. Memory: bounded caches of master data and the held records,
//! nothing per imported event.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use lotline_domain::quantity::{Quantity, Unit};
use lotline_domain::validate::validate;
use lotline_domain::{
    BusinessDocument, Certify, Chain, Correct, CustodyModel, Event, EventKind, Harvest,
    LotQuantity, Movement, Observe, OrgRole, OutputLot, Pay, RegisterClass, RegisterOrg,
    RegisterPlot, RegisterSite, Transform,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::gs1::canonical_lot_id;
use crate::hash::{Context, event_hash_json};
use crate::json::Json;
use crate::memo::{Memo, remembered};
use crate::names::{
    EVENT_URN, EXT_CONTEXT, EXT_EVENT, EXT_HASH, LOT_URN, LOTLINE_NS, LOTLINE_PREFIX, ORG_URN,
    PLOT_URN, SITE_URN,
};

pub mod document;
mod registry;
#[cfg(test)]
mod tests;

use registry::Known;
pub use registry::{
    Answers, Ask, CACHE_ENTRIES, KnownClass, KnownLocation, KnownOrg, NoRegistry, Registry,
    location_candidates,
};

/// What the command line adds to a document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The org of events whose location names no owning party.
    pub org: Option<String>,
    /// The chain of lot events nothing else gives one.
    pub chain: Option<Chain>,
    /// Only whether each part maps, for a pass whose results are not recorded: events are not
    /// hashed (an event without an `eventID` gets the id it gets when GS1's hash cannot be
    /// computed), which is most of the mapping's work.
    pub check_only: bool,
}

/// Where in the document a result comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A master-data vocabulary element, by id.
    MasterData(String),
    /// An event of the event list, by 0-based index.
    Event(usize),
    /// Transformation records joined by their `transformationID`.
    Joined(Vec<usize>),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::MasterData(id) => write!(f, "master data {id}"),
            Source::Event(i) => write!(f, "event #{i}"),
            Source::Joined(all) => {
                let list: Vec<String> = all.iter().map(|i| format!("#{i}")).collect();
                write!(f, "events {}", list.join(", "))
            }
        }
    }
}

/// One lotline event, or why a part of the document gives none.
#[derive(Debug)]
pub struct Mapped {
    pub source: Source,
    pub result: Result<Event, String>,
}

/// Transformation records waiting for their other half.
#[derive(Debug, Default)]
struct Held {
    parts: Vec<(usize, Json)>,
}

/// Maps one document's master data and events onto lotline events.
pub struct Importer {
    options: Options,
    context: Json,
    hashing: Context,
    /// Prefixes the document binds to lotline's namespace (`lotline` unless bound elsewhere).
    prefixes: Vec<String>,
    known: RefCell<Known>,
    /// Product classes with a product or chain but no owner to register them.
    unowned_classes: u64,
    held: BTreeMap<String, Held>,
}

impl Importer {
    /// An importer that knows the document's own master data only.
    pub fn new(options: Options) -> Importer {
        Importer::with_registry(options, Box::new(NoRegistry))
    }

    /// An importer that also knows what `registry` registered before.
    pub fn with_registry(options: Options, registry: Box<dyn Registry>) -> Importer {
        Importer {
            options,
            context: Json::Null,
            hashing: Context::epcis(),
            prefixes: vec![LOTLINE_PREFIX.to_string()],
            known: RefCell::new(Known::new(registry)),
            unowned_classes: 0,
            held: BTreeMap::new(),
        }
    }

    /// Why the registry could not answer, once it could not: the import must stop, since
    /// events would be mapped without what it knows.
    pub fn registry_failure(&self) -> Option<String> {
        self.known.borrow().failure()
    }

    /// Product classes that named a product or chain but no owner (`lotline:owningParty`, or
    /// `--org`): used for this document, not registered.
    pub fn unowned_classes(&self) -> u64 {
        self.unowned_classes
    }

    /// The document's `@context` (`Json::Null` if it has none) and the context to hash its
    /// events with.
    pub fn context(&mut self, context: &Json, hashing: Context) {
        self.context = context.clone();
        self.hashing = hashing;
        let mut prefixes = Vec::new();
        let mut lotline_bound_elsewhere = false;
        let mut scan = |members: &[(String, Json)]| {
            for (key, value) in members {
                if let Some(iri) = value.as_str() {
                    if iri == LOTLINE_NS {
                        prefixes.push(key.clone());
                    } else if key == LOTLINE_PREFIX {
                        lotline_bound_elsewhere = true;
                    }
                }
            }
        };
        match context {
            Json::Object(members) => scan(members),
            Json::Array(items) => {
                for item in items {
                    if let Json::Object(members) = item {
                        scan(members);
                    }
                }
            }
            _ => {}
        }
        if !lotline_bound_elsewhere && !prefixes.iter().any(|p| p == LOTLINE_PREFIX) {
            prefixes.push(LOTLINE_PREFIX.to_string());
        }
        self.prefixes = prefixes;
    }

    /// A whole `epcisHeader` at once: its parties first (locations need their owners' roles),
    /// then every other element. A streaming reader calls [`Importer::vocabulary`] instead, for
    /// the parties in a first pass over the header and for the rest in a second.
    pub fn header(&mut self, header: &Json) -> Vec<Mapped> {
        let Some(list) = header
            .get("epcisMasterData")
            .and_then(|m| m.get("vocabularyList"))
            .and_then(Json::as_array)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for parties_pass in [true, false] {
            for vocabulary in list {
                let kind = vocabulary.get("type").and_then(Json::as_str).unwrap_or("");
                if is_party_vocabulary(kind) != parties_pass {
                    continue;
                }
                for element in vocabulary
                    .get("vocabularyElementList")
                    .and_then(Json::as_array)
                    .unwrap_or(&[])
                {
                    out.extend(self.vocabulary(kind, element));
                }
            }
        }
        out
    }

    /// Master-data elements `(vocabulary type, element)` in document order, asking the
    /// registry at once for every party they name that is not known yet (a streaming reader
    /// gives them a few hundred at a time; one at a time, a document of many locations would
    /// ask once per location).
    pub fn vocabularies(&mut self, elements: &[(String, Json)]) -> Vec<Mapped> {
        let mut ask = Ask::default();
        for (_, element) in elements {
            for (id, value) in attribute_pairs(element) {
                let named = match self.normal_key(id).as_str() {
                    "lotline:owningParty" | "lotline:memberOf" => {
                        value.as_str().into_iter().collect::<Vec<_>>()
                    }
                    "lotline:certificate" => match value {
                        Json::Array(items) => items
                            .iter()
                            .filter_map(|c| c.get("certifier")?.as_str())
                            .collect(),
                        other => other
                            .get("certifier")
                            .and_then(Json::as_str)
                            .into_iter()
                            .collect(),
                    },
                    _ => Vec::new(),
                };
                for party in named {
                    if !party.trim().starts_with(ORG_URN)
                        && let Ok(id) = canon_id("party", party)
                    {
                        ask.parties.push(id);
                    }
                }
            }
        }
        self.known.get_mut().prefetch(ask);
        let mapped = elements
            .iter()
            .flat_map(|(kind, element)| self.vocabulary(kind, element))
            .collect();
        self.unless_failed(mapped)
    }

    /// Nothing mapped while the registry could not answer is kept: it would name orgs by
    /// default where the registry knows better, and a registration recorded so could not be
    /// corrected by importing the document again (its id is that of the element).
    fn unless_failed(&self, mapped: Vec<Mapped>) -> Vec<Mapped> {
        if self.registry_failure().is_some() {
            Vec::new()
        } else {
            mapped
        }
    }

    /// One master-data element of a vocabulary of type `kind`: Party, Location (and
    /// BusinessLocation, ReadPoint) and EPCClass elements become registration events; others
    /// are left out.
    pub fn vocabulary(&mut self, kind: &str, element: &Json) -> Vec<Mapped> {
        let local = kind.rsplit([':', '/', '#']).next().unwrap_or(kind);
        match local {
            "Party" => self.party(kind, element),
            "Location" | "BusinessLocation" | "ReadPoint" => {
                self.location(kind, element).into_iter().collect()
            }
            "EPCClass" => self.class(kind, element).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Events of the event list `(index, event)`, asking the registry at once for every name
    /// they use that is not known yet.
    pub fn events(&mut self, events: &[(usize, Json)]) -> Vec<Mapped> {
        let hashes = events.iter().map(|(_, e)| self.hash_of(&[e])).collect();
        self.events_hashed(events, hashes)
    }

    /// A chunk of events whose reference hashes are already known: `hashes[i]` is
    /// [`event_hashes`]' answer for `events[i]` with this document's hash context (`None` for
    /// every event of a checking pass).
    pub fn events_hashed(
        &mut self,
        events: &[(usize, Json)],
        hashes: Vec<Option<String>>,
    ) -> Vec<Mapped> {
        let mut ask = Ask::default();
        for (_, event) in events {
            self.names(event, &mut ask);
        }
        self.known.get_mut().prefetch(ask);
        let mapped = events
            .iter()
            .zip(hashes)
            .flat_map(|((index, event), hash)| self.hashed_event(*index, event, hash))
            .collect();
        self.unless_failed(mapped)
    }

    /// One event of the event list.
    pub fn event(&mut self, index: usize, event: &Json) -> Vec<Mapped> {
        let hash = self.hash_of(&[event]);
        self.hashed_event(index, event, hash)
    }

    /// The reference hash of an event, or of a joined transformation's records; none in a
    /// checking pass.
    fn hash_of(&self, parts: &[&Json]) -> Option<String> {
        if self.options.check_only {
            None
        } else {
            joined_hash(parts, &self.hashing)
        }
    }

    /// One event of the event list, with its reference hash.
    fn hashed_event(&mut self, index: usize, event: &Json, hash: Option<String>) -> Vec<Mapped> {
        let source = Source::Event(index);
        if event.as_object().is_none() {
            return vec![Mapped {
                source,
                result: Err("an EPCIS event must be a JSON object".into()),
            }];
        }
        let kind = event.get("type").and_then(Json::as_str).unwrap_or("");
        self.prefetch(event);
        if kind == "TransformationEvent"
            && event.get("errorDeclaration").is_none()
            && let Some(id) = event.get("transformationID").and_then(Json::as_str)
            && (!has_list(event, &["inputQuantityList", "inputEPCList"])
                || !has_list(event, &["outputQuantityList", "outputEPCList"]))
        {
            self.held
                .entry(id.to_string())
                .or_default()
                .parts
                .push((index, event.clone()));
            return Vec::new();
        }
        vec![Mapped {
            source,
            result: self.map_one(&[event], hash.as_deref()).and_then(checked),
        }]
    }

    /// The end of the document: joined transformations, and the records that never met their
    /// other half.
    pub fn finish(&mut self) -> Vec<Mapped> {
        let held = std::mem::take(&mut self.held);
        let mapped = held
            .into_iter()
            .map(|(id, held)| {
                let indices: Vec<usize> = held.parts.iter().map(|(i, _)| *i).collect();
                let source = if indices.len() == 1 {
                    Source::Event(indices[0])
                } else {
                    Source::Joined(indices)
                };
                let parts: Vec<&Json> = held.parts.iter().map(|(_, e)| e).collect();
                let complete = parts
                    .iter()
                    .any(|p| has_list(p, &["inputQuantityList", "inputEPCList"]))
                    && parts
                        .iter()
                        .any(|p| has_list(p, &["outputQuantityList", "outputEPCList"]));
                let result = if complete {
                    self.map_one(&parts, self.hash_of(&parts).as_deref())
                        .and_then(checked)
                } else {
                    Err(format!(
                        "transformation {id:?} has only {} in this document; the records with its {} never came",
                        if has_list(parts[0], &["inputQuantityList", "inputEPCList"]) {
                            "inputs"
                        } else {
                            "outputs"
                        },
                        if has_list(parts[0], &["inputQuantityList", "inputEPCList"]) {
                            "outputs"
                        } else {
                            "inputs"
                        },
                    ))
                };
                Mapped { source, result }
            })
            .collect();
        self.unless_failed(mapped)
    }

    // ----- master data -----

    fn party(&mut self, kind: &str, element: &Json) -> Vec<Mapped> {
        let raw = element.get("id").and_then(Json::as_str).unwrap_or("");
        let source = Source::MasterData(raw.to_string());
        let attrs = self.attributes(element);
        let result = (|| -> Result<Vec<Event>, String> {
            if raw.is_empty() {
                return Err("a Party element has no id".into());
            }
            let default_org = canon_org_id("id", raw)?;
            let org = attr_str(&attrs, "lotline:org").unwrap_or_else(|| default_org.clone());
            // A party id that neither is a PGLN nor maps to the org by itself is registered
            // with the org, so that later documents naming the party find it.
            let party = (org != default_org && pgln(raw).is_none() && !raw.starts_with(ORG_URN))
                .then(|| canon_id("id", raw))
                .transpose()?;
            let role = match attr_str(&attrs, "lotline:role") {
                Some(r) => Some(parse_role(&r).ok_or_else(|| {
                    format!("party {raw}: lotline:role {r:?} is not farm, cooperative, processor, trader, manufacturer, brand, retailer or certifier")
                })?),
                None => None,
            };
            let chain = attr_str(&attrs, "lotline:chain").and_then(|c| Chain::parse(&c));
            self.known.get_mut().learn_party(
                canon_id("id", raw)?,
                KnownOrg {
                    org: org.clone(),
                    role,
                    chain,
                    country: attr_str(&attrs, "cbvmda:countryCode"),
                },
            );
            let role = role.ok_or_else(|| format!("party {raw}: lotline:role is required"))?;
            let country = attr_str(&attrs, "cbvmda:countryCode")
                .ok_or_else(|| format!("party {raw}: cbvmda:countryCode is required"))?;
            let member_of = match attr_str(&attrs, "lotline:memberOf") {
                Some(m) => Some(self.party_org("lotline:memberOf", &m)?),
                None => None,
            };
            let gln = pgln(raw);
            let time = since(&attrs)?;
            // The party's chain is registered with it, so that a later document's events find it.
            // Registrations without one keep the id earlier releases gave them, so that
            // importing the same master data again is all duplicates.
            let id = match (chain.is_some(), party.is_some()) {
                (false, false) => md_id(kind, element),
                (true, false) => format!("{}-c", md_id(kind, element)),
                (false, true) => format!("{}-p", md_id(kind, element)),
                (true, true) => format!("{}-cp", md_id(kind, element)),
            };
            let mut events = vec![Event {
                id,
                time,
                org: org.clone(),
                chain,
                site: None,
                extensions: BTreeMap::new(),
                kind: EventKind::RegisterOrg(RegisterOrg {
                    name: attr_str(&attrs, "cbvmda:name").unwrap_or_else(|| raw.to_string()),
                    role,
                    country,
                    gln,
                    member_of,
                    party,
                }),
            }];
            let certificates = match attrs.get("lotline:certificate") {
                Some(Json::Array(items)) => items.clone(),
                Some(one @ Json::Object(_)) => vec![one.clone()],
                Some(_) => {
                    return Err(format!(
                        "party {raw}: lotline:certificate must be an object or a list of objects"
                    ));
                }
                None => Vec::new(),
            };
            for (n, cert) in certificates.iter().enumerate() {
                events.push(self.certificate(kind, element, n, &org, cert, time)?);
            }
            Ok(events)
        })();
        match result {
            Ok(events) => events
                .into_iter()
                .map(|e| Mapped {
                    source: source.clone(),
                    result: checked(e),
                })
                .collect(),
            Err(reason) => vec![Mapped {
                source,
                result: Err(reason),
            }],
        }
    }

    fn certificate(
        &self,
        kind: &str,
        element: &Json,
        n: usize,
        org: &str,
        cert: &Json,
        time: DateTime<FixedOffset>,
    ) -> Result<Event, String> {
        let field = |k: &str| cert.get(k).and_then(Json::as_str).map(str::to_string);
        let date = |k: &str| -> Result<Option<NaiveDate>, String> {
            field(k)
                .map(|d| {
                    NaiveDate::parse_from_str(d.get(..10).unwrap_or(&d), "%Y-%m-%d")
                        .map_err(|_| format!("lotline:certificate {k} {d:?} is not a date"))
                })
                .transpose()
        };
        let certifier = match field("certifier") {
            Some(c) => Some(self.party_org("lotline:certificate.certifier", &c)?),
            None => None,
        };
        let (recorder, subject) = match certifier {
            Some(c) => (c, Some(org.to_string())),
            None => (org.to_string(), None),
        };
        let lot = match field("lot") {
            Some(l) => Some(canon_id("lotline:certificate.lot", &l)?),
            None => None,
        };
        Ok(Event {
            id: format!("{}-cert-{n}", md_id(kind, element)),
            time,
            org: recorder,
            chain: None,
            site: None,
            extensions: BTreeMap::new(),
            kind: EventKind::Certify(Certify {
                standard: field("scheme").ok_or("lotline:certificate needs a scheme")?,
                certificate_id: field("id").ok_or("lotline:certificate needs an id")?,
                products: strings(cert.get("products")),
                valid_from: date("validFrom")?,
                valid_to: date("validTo")?,
                outcome: field("outcome").unwrap_or_else(|| "certified".into()),
                lot,
                subject_org: subject,
            }),
        })
    }

    fn location(&mut self, kind: &str, element: &Json) -> Option<Mapped> {
        let raw = element.get("id").and_then(Json::as_str).unwrap_or("");
        let source = Source::MasterData(raw.to_string());
        let attrs = self.attributes(element);
        let result = (|| -> Result<Option<Event>, String> {
            if raw.is_empty() {
                return Err("a Location element has no id".into());
            }
            let id = canon_id("id", raw)?;
            let owner = match attr_str(&attrs, "lotline:owningParty") {
                Some(p) => Some(self.party_org("lotline:owningParty", &p)?),
                None => self.options.org.clone(),
            };
            let geometry = match attrs.get("lotline:geometry") {
                Some(Json::String(s)) => Some(s.clone()),
                Some(g @ Json::Object(_)) => Some(g.to_string()),
                Some(_) => {
                    return Err(format!(
                        "location {raw}: lotline:geometry must be a GeoJSON object or its text"
                    ));
                }
                None => None,
            };
            let owner_known = owner.as_ref().map(|o| {
                self.known.get_mut().org(o).unwrap_or_else(|| KnownOrg {
                    org: o.clone(),
                    role: None,
                    chain: None,
                    country: None,
                })
            });
            let owner_is_farm = owner_known
                .as_ref()
                .is_some_and(|o| o.role == Some(OrgRole::Farm));
            let point = match (
                attr_str(&attrs, "cbvmda:latitude"),
                attr_str(&attrs, "cbvmda:longitude"),
            ) {
                (Some(lat), Some(lon)) if owner_is_farm => {
                    let lat: f64 = lat.parse().map_err(|_| {
                        format!("location {raw}: cbvmda:latitude {lat:?} is not a number")
                    })?;
                    let lon: f64 = lon.parse().map_err(|_| {
                        format!("location {raw}: cbvmda:longitude {lon:?} is not a number")
                    })?;
                    Some(format!(r#"{{"type":"Point","coordinates":[{lon},{lat}]}}"#))
                }
                _ => None,
            };
            let plot_geometry = geometry.or(point);
            // A location the document gives no owner is left to what the registry knows.
            if owner_known.is_some() {
                self.known.get_mut().learn_location(
                    id.clone(),
                    KnownLocation {
                        owner: owner_known.clone(),
                        plot: plot_geometry.is_some(),
                    },
                );
            }
            let Some(owner) = owner else {
                return Ok(None);
            };
            // A location without a country is in its owner's.
            let country = attr_str(&attrs, "cbvmda:countryCode")
                .or_else(|| owner_known.and_then(|o| o.country))
                .unwrap_or_default();
            let kind_of = match plot_geometry {
                Some(geometry) => EventKind::RegisterPlot(RegisterPlot {
                    plot: id.clone(),
                    geometry,
                    area_ha: match attr_str(&attrs, "lotline:areaHa") {
                        Some(a) => Some(a.parse::<Decimal>().map_err(|_| {
                            format!("location {raw}: lotline:areaHa {a:?} is not a number")
                        })?),
                        None => None,
                    },
                    country,
                }),
                None => EventKind::RegisterSite(RegisterSite {
                    site: id.clone(),
                    name: attr_str(&attrs, "cbvmda:name").unwrap_or_else(|| raw.to_string()),
                    gln: sgln(raw),
                    country,
                }),
            };
            Ok(Some(Event {
                id: md_id(kind, element),
                time: since(&attrs)?,
                org: owner,
                chain: None,
                site: None,
                extensions: BTreeMap::new(),
                kind: kind_of,
            }))
        })();
        match result {
            Ok(Some(event)) => Some(Mapped {
                source,
                result: checked(event),
            }),
            Ok(None) => None,
            Err(reason) => Some(Mapped {
                source,
                result: Err(reason),
            }),
        }
    }

    /// A product class: remembered for this document, and registered (RegisterClass) by its
    /// owner (`lotline:owningParty`, else `--org`) when it names a product, a chain or other
    /// attributes.
    fn class(&mut self, kind: &str, element: &Json) -> Option<Mapped> {
        let raw = element.get("id").and_then(Json::as_str).unwrap_or("");
        let source = Source::MasterData(raw.to_string());
        let attrs = self.attributes(element);
        let result = (|| -> Result<Option<Event>, String> {
            if raw.is_empty() {
                return Err("an EPCClass element has no id".into());
            }
            let key = class_key(&canon_id("id", raw)?);
            let product = attr_str(&attrs, "lotline:product");
            let chain = match attr_str(&attrs, "lotline:chain") {
                Some(c) => Some(Chain::parse(&c).ok_or_else(|| {
                    format!("class {raw}: lotline:chain {c:?} is not cocoa, coffee or textile")
                })?),
                None => None,
            };
            // A class that names neither product nor chain is left to what the registry knows.
            if product.is_some() || chain.is_some() {
                self.known.get_mut().learn_class(
                    key.clone(),
                    KnownClass {
                        product: product.clone(),
                        chain,
                    },
                );
            }
            let mut others = BTreeMap::new();
            for (id, value) in attribute_pairs(element) {
                let id = self.normal_key(id);
                if matches!(
                    id.as_str(),
                    "lotline:product" | "lotline:chain" | "lotline:owningParty" | "lotline:since"
                ) || others.contains_key(&id)
                {
                    continue;
                }
                others.insert(id, value.to_string());
            }
            if product.is_none() && chain.is_none() && others.is_empty() {
                return Ok(None);
            }
            let owner = match attr_str(&attrs, "lotline:owningParty") {
                Some(p) => Some(self.party_org("lotline:owningParty", &p)?),
                None => self.options.org.clone(),
            };
            let Some(owner) = owner else {
                self.unowned_classes += 1;
                return Ok(None);
            };
            Ok(Some(Event {
                id: md_id(kind, element),
                time: since(&attrs)?,
                org: owner,
                chain,
                site: None,
                extensions: BTreeMap::new(),
                kind: EventKind::RegisterClass(RegisterClass {
                    class: key,
                    product,
                    attributes: others,
                }),
            }))
        })();
        match result {
            Ok(Some(event)) => Some(Mapped {
                source,
                result: checked(event),
            }),
            Ok(None) => None,
            Err(reason) => Some(Mapped {
                source,
                result: Err(reason),
            }),
        }
    }

    /// A vocabulary element's attributes by normalised name (`cbvmda:x`, `lotline:x`).
    fn attributes(&self, element: &Json) -> HashMap<String, Json> {
        let mut out = HashMap::new();
        for (id, value) in attribute_pairs(element) {
            // A repeated attribute (one certificate each) gathers into a list.
            match out.entry(self.normal_key(id)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(value.clone());
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    let list = match std::mem::replace(slot.get_mut(), Json::Null) {
                        Json::Array(mut items) => {
                            items.push(value.clone());
                            items
                        }
                        first => vec![first, value.clone()],
                    };
                    *slot.get_mut() = Json::Array(list);
                }
            }
        }
        out
    }

    /// `cbvmda:x` and `lotline:x` whatever the document's spelling.
    fn normal_key(&self, key: &str) -> String {
        if let Some(rest) = key.strip_prefix("urn:epcglobal:cbv:mda#") {
            return format!("cbvmda:{rest}");
        }
        match self.lotline_local(key) {
            Some(local) => format!("lotline:{local}"),
            None => key.to_string(),
        }
    }

    /// The local name of a key in lotline's namespace: the full IRI, or any prefix the document
    /// binds to it (`lotline` unless bound elsewhere).
    fn lotline_local<'k>(&self, key: &'k str) -> Option<&'k str> {
        if let Some(rest) = key.strip_prefix(LOTLINE_NS) {
            return Some(rest);
        }
        let (prefix, rest) = key.split_once(':')?;
        self.prefixes.iter().any(|p| p == prefix).then_some(rest)
    }

    /// A `lotline:` member of an object (the event, or its ilmd).
    fn ext<'j>(&self, object: &'j Json, local: &str) -> Option<&'j Json> {
        object
            .as_object()?
            .iter()
            .find_map(|(k, v)| (self.lotline_local(k) == Some(local)).then_some(v))
    }

    fn ext_str(&self, object: &Json, local: &str) -> Option<String> {
        match self.ext(object, local)? {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.clone()),
            _ => None,
        }
    }

    /// The org a party id names: the document's or the registry's party, else the org id
    /// the party id maps to (docs/epcis.md).
    fn party_org(&self, field: &str, raw: &str) -> Result<String, String> {
        let default = canon_org_id(field, raw)?;
        if raw.trim().starts_with(ORG_URN) {
            return Ok(default);
        }
        let id = canon_id(field, raw)?;
        Ok(self
            .known
            .borrow_mut()
            .party(&id)
            .map(|p| p.org)
            .unwrap_or(default))
    }

    /// Asks the registry at once for every name an event uses that is not known yet.
    fn prefetch(&self, event: &Json) {
        let mut ask = Ask::default();
        self.names(event, &mut ask);
        self.known.borrow_mut().prefetch(ask);
    }

    /// The names an event uses that master data may say something of.
    fn names(&self, event: &Json, ask: &mut Ask) {
        for field in ["bizLocation", "readPoint"] {
            if let Ok(Some(id)) = location_id(event, field) {
                ask.locations.push(id);
            }
        }
        for (list_name, member) in [("sourceList", "source"), ("destinationList", "destination")] {
            for item in list(event, list_name) {
                if let Some(id) = item.get(member).and_then(Json::as_str)
                    && !id.trim().starts_with(ORG_URN)
                    && let Ok(id) = canon_id(member, id)
                {
                    ask.parties.push(id);
                }
            }
        }
        for name in [
            "quantityList",
            "inputQuantityList",
            "outputQuantityList",
            "childQuantityList",
        ] {
            for q in list(event, name) {
                if let Some(class) = q.get("epcClass").and_then(Json::as_str)
                    && let Ok(id) = canon_id(name, class)
                {
                    ask.classes.push(class_key(&id));
                }
            }
        }
        for name in ["epcList", "inputEPCList", "outputEPCList", "childEPCs"] {
            for e in list(event, name) {
                if let Some(epc) = e.as_str()
                    && let Ok(id) = canon_id(name, epc)
                {
                    ask.classes.push(class_key(&id));
                }
            }
        }
        if let Some(org) = &self.options.org {
            ask.orgs.push(org.clone());
        }
    }

    // ----- events -----

    /// Maps one event, or the records of one joined transformation (the first is the event),
    /// with its reference hash (of each part, space-separated) if it has one.
    fn map_one(&self, parts: &[&Json], hash: Option<&str>) -> Result<Event, String> {
        let event = parts.first().copied().ok_or("no event")?;
        let kind = event.get("type").and_then(Json::as_str).unwrap_or("");
        if !matches!(
            kind,
            "ObjectEvent"
                | "AggregationEvent"
                | "TransformationEvent"
                | "TransactionEvent"
                | "AssociationEvent"
        ) {
            return Err(format!(
                "type {}: not an EPCIS 2.0 event type (ObjectEvent, AggregationEvent, TransformationEvent, TransactionEvent, AssociationEvent)",
                event.get("type").map_or("missing".into(), Json::to_string)
            ));
        }
        let id = event_id(event, hash);
        let time = event_time(event, "eventTime")?;
        let read_point = location_id(event, "readPoint")?;
        let biz_location = location_id(event, "bizLocation")?;
        let site = biz_location.clone().or_else(|| read_point.clone());
        let org = self.org_of(event, biz_location.as_deref(), read_point.as_deref())?;

        let extensions = self.extensions_of(event, parts, hash);

        if let Some(declaration) = event.get("errorDeclaration") {
            return self.correction(declaration, id, org, site, extensions);
        }

        let ilmd = event.get("ilmd").cloned().unwrap_or(Json::Null);
        let biz_step = event
            .get("bizStep")
            .and_then(Json::as_str)
            .map(bare)
            .unwrap_or_default();
        let action = event
            .get("action")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let disposition = event
            .get("disposition")
            .and_then(Json::as_str)
            .map(bare)
            .unwrap_or_default();

        let kind_of = match kind {
            "TransformationEvent" => self.transform(parts, event, &ilmd, &biz_step)?,
            "ObjectEvent"
                if action == "ADD"
                    && biz_step == "commissioning"
                    && self.at_farm(&org, site.as_deref(), &ilmd) =>
            {
                self.harvest(event, &ilmd, site.as_deref())?
            }
            "ObjectEvent"
                if biz_step == "shipping"
                    && self
                        .counterparty(event, "destinationList", "destination")?
                        .is_some() =>
            {
                EventKind::Ship(Movement {
                    lots: lots(event, "quantityList", "epcList")?,
                    counterparty: self
                        .counterparty(event, "destinationList", "destination")?
                        .unwrap_or_default(),
                    documents: documents(event),
                })
            }
            "ObjectEvent"
                if biz_step == "receiving"
                    && self.counterparty(event, "sourceList", "source")?.is_some() =>
            {
                EventKind::Receive(Movement {
                    lots: lots(event, "quantityList", "epcList")?,
                    counterparty: self
                        .counterparty(event, "sourceList", "source")?
                        .unwrap_or_default(),
                    documents: documents(event),
                })
            }
            "TransactionEvent" if self.ext(event, "pricePerUnit").is_some() => {
                self.payment(event)?
            }
            _ => observation(kind, event, action, biz_step, disposition)?,
        };
        // Identifiers of the lists that did not make it into the mapping are still checked.
        for (field, _) in [("parentID", ()), ("childEPCs", ()), ("epcList", ())] {
            check_ids(event, field)?;
        }
        let needs_chain = matches!(
            kind_of,
            EventKind::Harvest(_)
                | EventKind::Transform(_)
                | EventKind::Ship(_)
                | EventKind::Receive(_)
                | EventKind::Pay(_)
        );
        let chain = self.chain_of(event, &ilmd, &kind_of, &org);
        if needs_chain && chain.is_none() {
            return Err("no chain: give lotline:chain on the event, its ilmd, its product class or its party, or import with --chain".into());
        }
        Ok(Event {
            id,
            time,
            org,
            chain,
            site,
            extensions,
            kind: kind_of,
        })
    }

    /// An error declaration: the correction of event `id`, under its own id
    /// (`lotline:correctionID`, else `<id>#errorDeclaration`).
    fn correction(
        &self,
        declaration: &Json,
        id: String,
        org: String,
        site: Option<String>,
        extensions: BTreeMap<String, String>,
    ) -> Result<Event, String> {
        let corrective = strings(declaration.get("correctiveEventIDs"))
            .into_iter()
            .map(|c| strip_urn(&c, EVENT_URN))
            .collect();
        let reason = declaration
            .get("reason")
            .and_then(Json::as_str)
            .map(bare)
            .unwrap_or_else(|| "incorrect_data".into());
        let own_id = self
            .ext_str(declaration, "correctionID")
            .unwrap_or_else(|| format!("{id}#errorDeclaration"));
        Ok(Event {
            id: own_id,
            time: event_time(declaration, "declarationTime")
                .map_err(|e| format!("errorDeclaration.{e}"))?,
            org,
            chain: None,
            site,
            extensions,
            kind: EventKind::Correct(Correct {
                corrected_event_id: id,
                reason,
                corrective_event_ids: corrective,
            }),
        })
    }

    /// The extensions an imported event keeps: its own `lotline:extensions`, and its EPCIS form
    /// verbatim (the event, or the joined records), its hash and the document's context.
    fn extensions_of(
        &self,
        event: &Json,
        parts: &[&Json],
        hash: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut extensions = BTreeMap::new();
        if let Some(Json::Object(members)) = self.ext(event, "extensions") {
            for (k, v) in members {
                let text = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                extensions.insert(k.clone(), text);
            }
        }
        extensions.insert(
            EXT_EVENT.to_string(),
            if parts.len() == 1 {
                event.to_string()
            } else {
                Json::Array(parts.iter().map(|p| (*p).clone()).collect()).to_string()
            },
        );
        if let Some(hash) = hash {
            extensions.insert(EXT_HASH.to_string(), hash.to_string());
        }
        if !matches!(self.context, Json::Null) {
            extensions.insert(EXT_CONTEXT.to_string(), self.context.to_string());
        }
        extensions
    }

    /// A transformation (or the joined records of one) as a Transform: inputs and outputs of
    /// every record, each output with what `lotline:outputs` says of it.
    fn transform(
        &self,
        parts: &[&Json],
        event: &Json,
        ilmd: &Json,
        biz_step: &str,
    ) -> Result<EventKind, String> {
        let mut inputs = Vec::new();
        let mut outputs_q = Vec::new();
        for part in parts {
            inputs.extend(lots(part, "inputQuantityList", "inputEPCList")?);
            outputs_q.extend(lots(part, "outputQuantityList", "outputEPCList")?);
        }
        let described = parts
            .iter()
            .filter_map(|p| p.get("ilmd"))
            .filter_map(|i| self.ext(i, "outputs"))
            .filter_map(Json::as_array)
            .flatten()
            .cloned()
            .collect::<Vec<_>>();
        let mut outputs = Vec::new();
        for out in outputs_q {
            let about = described.iter().find(|d| {
                d.get("lot")
                    .and_then(Json::as_str)
                    .and_then(|l| canon_id("lotline:outputs.lot", l).ok())
                    .is_some_and(|l| l == out.lot)
            });
            let product = about
                .and_then(|d| d.get("product"))
                .and_then(Json::as_str)
                .map(str::to_string)
                .or_else(|| self.ext_str(ilmd, "product"))
                .unwrap_or_else(|| self.product_of(&out.lot));
            let custody = match about.and_then(|d| d.get("custody")).and_then(Json::as_str) {
                Some(c) => parse_custody(c)?,
                None => self.custody(ilmd)?,
            };
            let claims = match about.and_then(|d| d.get("claims")) {
                Some(c) => strings(Some(c)),
                None => strings(self.ext(ilmd, "claims")),
            };
            outputs.push(OutputLot {
                lot: out.lot,
                product,
                quantity: out.quantity,
                custody,
                claims,
            });
        }
        let ratio =
            match self
                .ext_str(event, "conversionRatio")
                .or_else(|| self.ext_str(ilmd, "conversionRatio"))
            {
                Some(r) => Some(r.parse::<Decimal>().map_err(|_| {
                    format!("lotline:conversionRatio {r:?} is not a decimal number")
                })?),
                None => None,
            };
        Ok(EventKind::Transform(Transform {
            inputs,
            outputs,
            process: self
                .ext_str(event, "process")
                .or_else(|| (!biz_step.is_empty()).then(|| biz_step.to_string()))
                .unwrap_or_else(|| "transformation".into()),
            conversion_ratio: ratio,
        }))
    }

    /// A commissioning at a farm: the harvest of one lot, on the plot `lotline:plot` names (else
    /// where it happened).
    fn harvest(&self, event: &Json, ilmd: &Json, site: Option<&str>) -> Result<EventKind, String> {
        let mut found = lots(event, "quantityList", "epcList")?;
        if found.len() != 1 {
            return Err(format!(
                "a commissioning at a farm is a harvest of one lot; this one names {} lots (write one event per lot)",
                found.len()
            ));
        }
        let lot = found.remove(0);
        let plot = match self.ext_str(ilmd, "plot") {
            Some(p) => canon_id("ilmd.lotline:plot", &p)?,
            None => site
                .map(str::to_string)
                .ok_or("a harvest needs a plot: ilmd lotline:plot, a bizLocation or a readPoint")?,
        };
        let date = |k: &str| -> Result<Option<NaiveDate>, String> {
            let v = ilmd
                .as_object()
                .and_then(|m| {
                    m.iter()
                        .find(|(key, _)| self.normal_key(key) == format!("cbvmda:{k}") || key == k)
                })
                .and_then(|(_, v)| v.as_str());
            v.map(|d| {
                NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d")
                    .map_err(|_| format!("ilmd cbvmda:{k} {d:?} is not a date"))
            })
            .transpose()
        };
        Ok(EventKind::Harvest(Harvest {
            product: self
                .ext_str(ilmd, "product")
                .unwrap_or_else(|| self.product_of(&lot.lot)),
            lot: lot.lot,
            plot,
            quantity: lot.quantity,
            harvest_start: date("harvestStartDate")?,
            harvest_end: date("harvestEndDate")?,
            custody: self.custody(ilmd)?,
            claims: strings(self.ext(ilmd, "claims")),
        }))
    }

    /// A TransactionEvent with a price: a payment to the destination's owning party (else
    /// `lotline:payee`).
    fn payment(&self, event: &Json) -> Result<EventKind, String> {
        let price = self.ext_str(event, "pricePerUnit").unwrap_or_default();
        let decimal = |name: &str, v: &str| {
            v.parse::<Decimal>()
                .map_err(|_| format!("lotline:{name} {v:?} is not a decimal number"))
        };
        let payee =
            match self.counterparty(event, "destinationList", "destination")? {
                Some(p) => p,
                None => match self.ext_str(event, "payee") {
                    Some(p) => self.party_org("lotline:payee", &p)?,
                    None => return Err(
                        "a payment needs a payee: a destinationList owning_party or lotline:payee"
                            .into(),
                    ),
                },
            };
        Ok(EventKind::Pay(Pay {
            lots: lots(event, "quantityList", "epcList")?,
            payee_org: payee,
            currency: self
                .ext_str(event, "currency")
                .ok_or("a payment needs lotline:currency")?,
            price_per_unit: decimal("pricePerUnit", &price)?,
            price_unit: self
                .ext_str(event, "priceUnit")
                .ok_or("a payment needs lotline:priceUnit")?,
            premium_per_unit: self
                .ext_str(event, "premiumPerUnit")
                .map(|p| decimal("premiumPerUnit", &p))
                .transpose()?,
            contract_date: self
                .ext_str(event, "contractDate")
                .map(|d| {
                    NaiveDate::parse_from_str(d.get(..10).unwrap_or(&d), "%Y-%m-%d")
                        .map_err(|_| format!("lotline:contractDate {d:?} is not a date"))
                })
                .transpose()?,
        }))
    }

    /// The org: the owner of the bizLocation, else of the readPoint, else `lotline:org`, else
    /// `--org`.
    fn org_of(
        &self,
        event: &Json,
        biz: Option<&str>,
        read: Option<&str>,
    ) -> Result<String, String> {
        for loc in [biz, read].into_iter().flatten() {
            if let Some(owner) = self.known.borrow_mut().location(loc).and_then(|l| l.owner) {
                return Ok(owner.org);
            }
        }
        if let Some(org) = self.ext_str(event, "org") {
            return self.party_org("lotline:org", &org);
        }
        self.options.org.clone().ok_or_else(|| {
            format!(
                "no org: neither this document's master data nor lotline's registered sites and plots name an owner of its bizLocation {} or readPoint {}, and no --org was given",
                biz.unwrap_or("(none)"),
                read.unwrap_or("(none)")
            )
        })
    }

    fn at_farm(&self, org: &str, site: Option<&str>, ilmd: &Json) -> bool {
        let mut known = self.known.borrow_mut();
        self.ext(ilmd, "plot").is_some()
            || site.and_then(|s| known.location(s)).is_some_and(|l| l.plot)
            || known
                .org(org)
                .is_some_and(|o| o.role == Some(OrgRole::Farm))
    }

    fn custody(&self, ilmd: &Json) -> Result<Option<CustodyModel>, String> {
        match self.ext_str(ilmd, "custody") {
            Some(c) => parse_custody(&c),
            None => Ok(None),
        }
    }

    /// The owning (else possessing) party of a source or destination list.
    fn counterparty(
        &self,
        event: &Json,
        list_name: &str,
        member: &str,
    ) -> Result<Option<String>, String> {
        let items = list(event, list_name);
        for wanted in ["owning_party", "possessing_party"] {
            for (n, item) in items.iter().enumerate() {
                let kind = item
                    .get("type")
                    .and_then(Json::as_str)
                    .map(bare)
                    .unwrap_or_default();
                if kind == wanted
                    && let Some(id) = item.get(member).and_then(Json::as_str)
                {
                    return self
                        .party_org(&format!("{list_name}[{n}].{member}"), id)
                        .map(Some);
                }
            }
        }
        // Identifiers elsewhere in the list are still checked.
        for (n, item) in items.iter().enumerate() {
            if let Some(id) = item.get(member).and_then(Json::as_str) {
                canon_id(&format!("{list_name}[{n}].{member}"), id)?;
            }
        }
        Ok(None)
    }

    fn product_of(&self, lot: &str) -> String {
        self.known
            .borrow_mut()
            .class(&class_key(lot))
            .and_then(|c| c.product)
            .unwrap_or_else(|| class_key(lot))
    }

    fn chain_of(&self, event: &Json, ilmd: &Json, kind: &EventKind, org: &str) -> Option<Chain> {
        let parse = |s: Option<String>| s.and_then(|c| Chain::parse(&c));
        parse(self.ext_str(event, "chain"))
            .or_else(|| parse(self.ext_str(ilmd, "chain")))
            .or_else(|| {
                let lots: Vec<&str> = match kind {
                    EventKind::Harvest(h) => vec![h.lot.as_str()],
                    EventKind::Transform(t) => t
                        .inputs
                        .iter()
                        .map(|l| l.lot.as_str())
                        .chain(t.outputs.iter().map(|o| o.lot.as_str()))
                        .collect(),
                    EventKind::Ship(m) | EventKind::Receive(m) => {
                        m.lots.iter().map(|l| l.lot.as_str()).collect()
                    }
                    EventKind::Pay(p) => p.lots.iter().map(|l| l.lot.as_str()).collect(),
                    _ => Vec::new(),
                };
                let mut known = self.known.borrow_mut();
                lots.into_iter()
                    .find_map(|l| known.class(&class_key(l)).and_then(|c| c.chain))
            })
            .or_else(|| self.known.borrow_mut().org(org).and_then(|o| o.chain))
            .or(self.options.chain)
    }
}

/// Validation turns an event lotline would refuse into a reason.
/// Any other event: an observation that moves nothing (its lots, EPCs and parent as lotline
/// stores them).
fn observation(
    kind: &str,
    event: &Json,
    action: String,
    biz_step: String,
    disposition: String,
) -> Result<EventKind, String> {
    let (quantities, epcs) = match kind {
        "AggregationEvent" | "AssociationEvent" => ("childQuantityList", "childEPCs"),
        _ => ("quantityList", "epcList"),
    };
    let lots_q = quantity_lots(event, quantities)?;
    let mut ids = Vec::new();
    for (n, e) in list(event, epcs).iter().enumerate() {
        if let Some(s) = e.as_str() {
            ids.push(canon_id(&format!("{epcs}[{n}]"), s)?);
        }
    }
    let parent = match event.get("parentID").and_then(Json::as_str) {
        Some(p) => Some(canon_id("parentID", p)?),
        None => None,
    };
    Ok(EventKind::Observe(Observe {
        event_type: kind.to_string(),
        action,
        biz_step,
        disposition,
        lots: lots_q,
        epcs: ids,
        parent,
    }))
}

/// The reference hash of each event of a chunk, `None` where GS1's reference cannot hash it:
/// what [`Importer::events_hashed`] takes. It reads nothing but the events and the document's
/// hash context, so a thread of its own may compute it while the importer maps other events.
pub fn event_hashes(events: &[(usize, Json)], hashing: &Context) -> Vec<Option<String>> {
    events
        .iter()
        .map(|(_, event)| event_hash_json(event, hashing).ok())
        .collect()
}

/// The hash of an event, or of a joined transformation: each record's, space-separated, if every
/// record has one.
fn joined_hash(parts: &[&Json], hashing: &Context) -> Option<String> {
    let hashes: Vec<String> = parts
        .iter()
        .filter_map(|part| event_hash_json(part, hashing).ok())
        .collect();
    (hashes.len() == parts.len()).then(|| hashes.join(" "))
}

/// An imported event's id: its `eventID`, else its EPCIS hash, else (GS1's reference cannot hash
/// it) the SHA-256 of its text, so that importing it again is still a duplicate.
fn event_id(event: &Json, hash: Option<&str>) -> String {
    match event.get("eventID").and_then(Json::as_str) {
        Some(id) => strip_urn(id, EVENT_URN),
        None => match hash.and_then(|h| h.split(' ').next()) {
            Some(h) => h.to_string(),
            None => format!(
                "urn:lotline:sha256:{}",
                hex::encode(Sha256::digest(event.to_string().as_bytes()))
            ),
        },
    }
}

fn checked(event: Event) -> Result<Event, String> {
    validate(&event).map(|()| event).map_err(|e| e.to_string())
}

/// A vocabulary element's attributes as written: (id, value), in order.
fn attribute_pairs(element: &Json) -> impl Iterator<Item = (&str, &Json)> {
    element
        .get("attributes")
        .and_then(Json::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|attr| Some((attr.get("id")?.as_str()?, attr.get("attribute")?)))
}

/// Whether a vocabulary `type` is the Party vocabulary (in any spelling of its IRI).
pub fn is_party_vocabulary(kind: &str) -> bool {
    kind.rsplit([':', '/', '#']).next() == Some("Party")
}

fn has_list(event: &Json, names: &[&str]) -> bool {
    names.iter().any(|n| {
        event
            .get(n)
            .and_then(Json::as_array)
            .is_some_and(|a| !a.is_empty())
    })
}

fn list<'j>(event: &'j Json, name: &str) -> &'j [Json] {
    event.get(name).and_then(Json::as_array).unwrap_or(&[])
}

fn strings(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn attr_str(attrs: &HashMap<String, Json>, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.clone()),
        _ => None,
    }
}

/// The bare CBV name of a vocabulary value in any spelling (`shipping`, `cbv:BizStep-shipping`,
/// `https://ref.gs1.org/cbv/BizStep-shipping`, `urn:epcglobal:cbv:bizstep:shipping`).
fn bare(value: &str) -> String {
    let tail = value.rsplit([':', '/', '#']).next().unwrap_or(value);
    for prefix in ["BizStep-", "Disp-", "ER-", "BTT-", "SDT-"] {
        if let Some(rest) = tail.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    tail.to_string()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

pub(crate) fn strip_urn(id: &str, urn: &str) -> String {
    match id.strip_prefix(urn) {
        Some(rest) => percent_decode(rest),
        None => id.to_string(),
    }
}

/// An identifier as lotline keeps it: lotline's own URNs as bare ids, GS1 ids as their canonical
/// Digital Link (check digit verified), anything else verbatim.
///
/// A lot is named by every event that makes, moves or uses it, and each event's names are read
/// twice (once to ask the registry about them, once to map the event), so the GS1 ids of the
/// last few thousand are kept per thread ([`crate::memo`]).
pub(crate) fn canon_id(field: &str, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    for urn in [LOT_URN, SITE_URN, PLOT_URN, ORG_URN] {
        if raw.starts_with(urn) {
            return Ok(strip_urn(raw, urn));
        }
    }
    remembered(&CANON_MEMO, raw, |raw| {
        canonical_lot_id(raw).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("{field} {raw:?}: {e}"))
}

thread_local! {
    /// GS1 ids as written → their canonical Digital Link, or why they are not one.
    static CANON_MEMO: Memo<Result<String, String>> = crate::memo::empty();
}

/// The org id of a party: lotline's own (`urn:lotline:org:X` → `X`), `gln-<GLN>` for a PGLN, any
/// other id with the characters a NATS subject token cannot hold (`.`, `*`, `>`, spaces)
/// replaced by `_` (orgs are subject tokens in NATS mode).
fn canon_org_id(field: &str, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.starts_with(ORG_URN) {
        return Ok(strip_urn(raw, ORG_URN));
    }
    let id = canon_id(field, raw)?;
    if let Some(gln) = id.strip_prefix("https://id.gs1.org/417/") {
        return Ok(format!("gln-{gln}"));
    }
    Ok(id
        .chars()
        .map(|c| {
            if matches!(c, '.' | '*' | '>') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect())
}

/// The key a lot's product class is found by: its GTIN's Digital Link (or the id itself).
pub fn class_key(id: &str) -> String {
    for qualifier in ["/10/", "/21/"] {
        if id.starts_with("https://id.gs1.org/01/")
            && let Some(at) = id.find(qualifier)
        {
            return id[..at].to_string();
        }
    }
    id.to_string()
}

fn md_id(kind: &str, element: &Json) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update(b"\n");
    hasher.update(element.to_string().as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("md:{}", digest.get(..32).unwrap_or(&digest))
}

fn since(attrs: &HashMap<String, Json>) -> Result<DateTime<FixedOffset>, String> {
    let text = attr_str(attrs, "lotline:since").unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    DateTime::parse_from_rfc3339(&text)
        .map_err(|_| format!("lotline:since {text:?} is not an RFC 3339 time"))
}

/// The GLN of a party id that is a PGLN (URN or Digital Link).
pub fn party_gln(raw: &str) -> Option<String> {
    pgln(raw)
}

/// The org id a party id maps to when no registration says otherwise: `gln-<GLN>` for a PGLN,
/// lotline's own `urn:lotline:org:` ids bare, any other id with the characters a NATS subject
/// token cannot hold replaced by `_`.
pub fn party_default_org(raw: &str) -> Result<String, String> {
    canon_org_id("party", raw)
}

fn pgln(raw: &str) -> Option<String> {
    let id = canonical_lot_id(raw).ok()?;
    id.strip_prefix("https://id.gs1.org/417/")
        .map(str::to_string)
}

/// The GLN of a location id that is an SGLN (URN or Digital Link), without its extension.
pub fn sgln(raw: &str) -> Option<String> {
    let id = canonical_lot_id(raw).ok()?;
    let rest = id.strip_prefix("https://id.gs1.org/414/")?;
    Some(rest.split('/').next().unwrap_or(rest).to_string())
}

fn parse_role(s: &str) -> Option<OrgRole> {
    Some(
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "farm" | "producer" => OrgRole::Farm,
            "cooperative" | "co_op" | "coop" => OrgRole::Cooperative,
            "processor" => OrgRole::Processor,
            "trader" | "exporter" | "importer" => OrgRole::Trader,
            "manufacturer" => OrgRole::Manufacturer,
            "brand" => OrgRole::Brand,
            "retailer" => OrgRole::Retailer,
            "certifier" => OrgRole::Certifier,
            _ => return None,
        },
    )
}

fn parse_custody(s: &str) -> Result<Option<CustodyModel>, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "identity_preserved" | "ip" => Ok(Some(CustodyModel::IdentityPreserved)),
        "segregated" | "seg" => Ok(Some(CustodyModel::Segregated)),
        "mass_balance" | "mb" => Ok(Some(CustodyModel::MassBalance)),
        other => Err(format!(
            "lotline:custody {other:?} is not identity_preserved, segregated or mass_balance"
        )),
    }
}

fn event_time(object: &Json, field: &str) -> Result<DateTime<FixedOffset>, String> {
    let text = object
        .get(field)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{field} is required"))?;
    let time = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("{field} {text:?} is not an RFC 3339 time with an offset"))?;
    match object.get("eventTimeZoneOffset").and_then(Json::as_str) {
        Some(offset) if field == "eventTime" => {
            let parsed = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{offset}"))
                .map_err(|_| format!("eventTimeZoneOffset {offset:?} is not ±HH:MM"))?;
            Ok(time.with_timezone(parsed.offset()))
        }
        _ => Ok(time),
    }
}

fn location_id(event: &Json, field: &str) -> Result<Option<String>, String> {
    match event
        .get(field)
        .and_then(|l| l.get("id"))
        .and_then(Json::as_str)
    {
        Some(id) => canon_id(&format!("{field}.id"), id).map(Some),
        None => Ok(None),
    }
}

/// The lots of a quantity list (with amounts) and an EPC list (one piece each), summed per lot.
fn lots(event: &Json, quantities: &str, epcs: &str) -> Result<Vec<LotQuantity>, String> {
    let mut out = quantity_lots(event, quantities)?;
    for (n, e) in list(event, epcs).iter().enumerate() {
        let field = format!("{epcs}[{n}]");
        let id = e
            .as_str()
            .ok_or_else(|| format!("{field} is not a string"))?;
        let lot = canon_id(&field, id)?;
        match out
            .iter_mut()
            .find(|l| l.lot == lot && l.quantity.unit == Unit::Piece)
        {
            Some(l) => l.quantity.amount += Decimal::ONE,
            None => out.push(LotQuantity {
                lot,
                quantity: Quantity::new(Decimal::ONE, Unit::Piece),
            }),
        }
    }
    Ok(out)
}

fn quantity_lots(event: &Json, name: &str) -> Result<Vec<LotQuantity>, String> {
    let mut out = Vec::new();
    for (n, q) in list(event, name).iter().enumerate() {
        let field = format!("{name}[{n}]");
        let class = q
            .get("epcClass")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{field}.epcClass is required"))?;
        let lot = canon_id(&format!("{field}.epcClass"), class)?;
        let amount = match q.get("quantity") {
            Some(Json::Number(n)) | Some(Json::String(n)) => n
                .parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(n))
                .map_err(|_| format!("{field}.quantity {n:?} is not a number"))?,
            None => Decimal::ONE,
            Some(other) => return Err(format!("{field}.quantity {other} is not a number")),
        };
        if amount <= Decimal::ZERO {
            return Err(format!(
                "{field}.quantity {amount} must be greater than zero"
            ));
        }
        let unit = match q.get("uom").and_then(Json::as_str) {
            Some(u) => Unit::parse(u).ok_or_else(|| format!("{field}.uom {u:?} is not a unit"))?,
            None => Unit::Piece,
        };
        out.push(LotQuantity {
            lot,
            quantity: Quantity::new(amount, unit),
        });
    }
    Ok(out)
}

fn check_ids(event: &Json, field: &str) -> Result<(), String> {
    match event.get(field) {
        Some(Json::String(s)) => canon_id(field, s).map(|_| ()),
        Some(Json::Array(items)) => {
            for (n, i) in items.iter().enumerate() {
                if let Some(s) = i.as_str() {
                    canon_id(&format!("{field}[{n}]"), s)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn documents(event: &Json) -> Vec<BusinessDocument> {
    list(event, "bizTransactionList")
        .iter()
        .filter_map(|b| {
            let id = b.get("bizTransaction").and_then(Json::as_str)?;
            let kind = b
                .get("type")
                .and_then(Json::as_str)
                .map(bare)
                .unwrap_or_default();
            Some(BusinessDocument {
                kind: if kind == "inv" {
                    "invoice".into()
                } else {
                    kind
                },
                id: id.to_string(),
            })
        })
        .collect()
}
