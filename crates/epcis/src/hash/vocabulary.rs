//! The CBV and GS1 vocabulary a JSON-LD expansion of a document yields.
//!
//! The reference implementation expands the whole document with the EPCIS 2.0 JSON-LD context,
//! keeps every expanded string that starts with `https://ref.gs1.org/cbv` or `https://gs1.org/voc`,
//! and then replaces every string value anywhere in the document (an extension field's as much as
//! a `bizStep`) by the one kept IRI that ends in `-value` or `/value`, if exactly one does. This
//! module computes that set of IRIs without a JSON-LD processor: it knows which EPCIS terms take
//! vocabulary values (with their enumerations from the context), which take IRIs, and which
//! compact IRI prefixes are defined, which is all the expansion needs for this purpose.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{self, DeserializeSeed};

use crate::json::Json;

/// The CBV web vocabulary namespace.
const CBV: &str = "https://ref.gs1.org/cbv/";
/// The GS1 web vocabulary namespace.
const GS1_VOC: &str = "https://gs1.org/voc/";

/// The prefixes the EPCIS 2.0 context defines.
const EPCIS_PREFIXES: [(&str, &str); 8] = [
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("cbv", CBV),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("gs1", GS1_VOC),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcterms", "http://purl.org/dc/terms/"),
];

/// Whether an expanded string is one the reference keeps for bare-value replacement.
pub(crate) fn is_kept(iri: &str) -> bool {
    iri.starts_with("https://ref.gs1.org/cbv") || iri.starts_with("https://gs1.org/voc")
}

/// Whether a context URL is the EPCIS 2.0 JSON-LD context (the reference ships the first two; the
/// others are fetched from the network by the reference and hold the same context).
pub(crate) fn is_epcis_context(url: &str) -> bool {
    url == "https://gs1.github.io/EPCIS/epcis-context.jsonld"
        || (url.starts_with("https://ref.gs1.org/standards/epcis/")
            && url.ends_with("epcis-context.jsonld"))
}

// The code lists of the EPCIS 2.0 context's scoped contexts, in the context's order.

/// CBV 2.0's standard business steps.
pub const BIZ_STEPS: [&str; 41] = [
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

/// CBV 2.0's standard dispositions.
pub const DISPOSITIONS: [&str; 33] = [
    "active",
    "available",
    "completeness_verified",
    "completeness_inferred",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_instance",
    "mismatch_class",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

const BIZ_TRANSACTION_TYPES: [&str; 13] = [
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

const SOURCE_DESTINATION_TYPES: [&str; 3] = ["owning_party", "possessing_party", "location"];

const MEASUREMENT_TYPES: [&str; 72] = [
    "AbsoluteHumidity",
    "AbsorbedDose",
    "AbsorbedDoseRate",
    "Acceleration",
    "Radioactivity",
    "Altitude",
    "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume",
    "Angle",
    "AngularAcceleration",
    "AngularMomentum",
    "AngularVelocity",
    "Area",
    "Capacitance",
    "Conductance",
    "Conductivity",
    "Count",
    "Density",
    "Dimensionless",
    "DoseEquivalent",
    "DoseEquivalentRate",
    "DynamicViscosity",
    "ElectricCharge",
    "ElectricCurrent",
    "ElectricCurrentDensity",
    "ElectricFieldStrength",
    "Energy",
    "Exposure",
    "Force",
    "Frequency",
    "Illuminance",
    "Inductance",
    "Irradiance",
    "KinematicViscosity",
    "Length",
    "LinearMomentum",
    "Luminance",
    "LuminousFlux",
    "LuminousIntensity",
    "MagneticFlux",
    "MagneticFluxDensity",
    "MagneticVectorPotential",
    "Mass",
    "MassConcentration",
    "MassFlowRate",
    "MassPerAreaTime",
    "MemoryCapacity",
    "MolalityOfSolute",
    "MolarEnergy",
    "MolarMass",
    "MolarVolume",
    "Power",
    "Pressure",
    "RadiantFlux",
    "RadiantIntensity",
    "RelativeHumidity",
    "Resistance",
    "Resistivity",
    "SolidAngle",
    "SpecificVolume",
    "Speed",
    "SurfaceDensity",
    "SurfaceTension",
    "Temperature",
    "Time",
    "Torque",
    "Voltage",
    "Volume",
    "VolumeFlowRate",
    "VolumeFraction",
    "VolumetricFlux",
    "Wavenumber",
];

const SENSOR_ALERT_TYPES: [&str; 2] = ["ALARM_CONDITION", "ERROR_CONDITION"];

const COMPONENTS: [&str; 14] = [
    "x",
    "y",
    "z",
    "axial_distance",
    "azimuth",
    "height",
    "spherical_radius",
    "polar_angle",
    "elevation_angle",
    "easting",
    "northing",
    "latitude",
    "longitude",
    "altitude",
];

const ERROR_REASONS: [&str; 2] = ["did_not_occur", "incorrect_data"];

/// Whether pyld (the reference's JSON-LD processor) takes a string for an absolute IRI: a scheme
/// (a letter, then letters, digits, `+`, `,`, `-` or `.`) or `_`, a colon, and no whitespace.
fn is_absolute_iri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme == "_"
        || scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | ',' | '-' | '.'));
    scheme_ok && !rest.chars().any(super::value::is_py_space)
}

/// A code list whose bare values expand to web vocabulary IRIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeList {
    BizStep,
    Disposition,
    BizTransactionType,
    SourceDestinationType,
    MeasurementType,
    SensorAlertType,
    Component,
    ErrorReason,
}

impl CodeList {
    /// The IRI a bare value of this list expands to, if it is one of the list's terms.
    fn expand(self, value: &str) -> Option<String> {
        let (terms, namespace, category): (&[&str], &str, &str) = match self {
            CodeList::BizStep => (&BIZ_STEPS, CBV, "BizStep-"),
            CodeList::Disposition => (&DISPOSITIONS, CBV, "Disp-"),
            CodeList::BizTransactionType => (&BIZ_TRANSACTION_TYPES, CBV, "BTT-"),
            CodeList::SourceDestinationType => (&SOURCE_DESTINATION_TYPES, CBV, "SDT-"),
            CodeList::MeasurementType => (&MEASUREMENT_TYPES, GS1_VOC, ""),
            CodeList::SensorAlertType => (&SENSOR_ALERT_TYPES, GS1_VOC, ""),
            CodeList::Component => (&COMPONENTS, CBV, "Comp-"),
            CodeList::ErrorReason => (&ERROR_REASONS, CBV, "ER-"),
        };
        terms
            .contains(&value)
            .then(|| format!("{namespace}{category}{value}"))
    }
}

/// A property-scoped context of the EPCIS 2.0 context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    BizTransactionList,
    SourceOrDestinationList,
    SensorElementList,
    SensorMetadata,
    SensorReport,
    ErrorDeclaration,
    PersistentDisposition,
}

/// How a term's values expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// An alias of `@id`: the value is an IRI.
    Id,
    /// An alias of `@type`: the values are vocabulary IRIs.
    Type,
    /// `"@type": "@id"`: string values are IRIs.
    IriValued,
    /// `"@type": "@vocab"`: string values are terms of a code list or vocabulary IRIs.
    Vocab(Option<CodeList>),
    /// Any other property: string values are literals; objects are nodes, in `Scope` if given.
    Plain(Option<Scope>),
}

/// A term of a scoped context.
fn scoped_term(scope: Scope, key: &str) -> Option<Term> {
    use Term::*;
    Some(match (scope, key) {
        (Scope::BizTransactionList, "bizTransaction") => Id,
        (Scope::BizTransactionList, "type") => Vocab(Some(CodeList::BizTransactionType)),
        (Scope::SourceOrDestinationList, "source" | "destination") => IriValued,
        (Scope::SourceOrDestinationList, "type") => Vocab(Some(CodeList::SourceDestinationType)),
        (
            Scope::SensorElementList,
            "deviceID" | "deviceMetadata" | "rawData" | "dataProcessingMethod",
        ) => IriValued,
        (Scope::SensorElementList, "time") => Plain(None),
        (Scope::SensorElementList, "type") => Type,
        (Scope::SensorElementList, "sensorMetadata") => Plain(Some(Scope::SensorMetadata)),
        (Scope::SensorElementList, "sensorReport") => Plain(Some(Scope::SensorReport)),
        (Scope::SensorMetadata, "startTime" | "endTime") => Plain(None),
        (Scope::SensorMetadata, "bizRules") => IriValued,
        (Scope::SensorReport, "type") => Vocab(Some(CodeList::MeasurementType)),
        (Scope::SensorReport, "exception") => Vocab(Some(CodeList::SensorAlertType)),
        (Scope::SensorReport, "component") => Vocab(Some(CodeList::Component)),
        (
            Scope::SensorReport,
            "coordinateReferenceSystem" | "microorganism" | "chemicalSubstance" | "uriValue",
        ) => IriValued,
        (
            Scope::SensorReport,
            "time" | "value" | "stringValue" | "booleanValue" | "hexBinaryValue" | "minValue"
            | "maxValue" | "meanValue" | "sDev" | "percRank" | "percValue",
        ) => Plain(None),
        (Scope::ErrorDeclaration, "reason") => Vocab(Some(CodeList::ErrorReason)),
        (Scope::ErrorDeclaration, "correctiveEventIDs") => IriValued,
        (Scope::ErrorDeclaration, "declarationTime") => Plain(None),
        (Scope::PersistentDisposition, "set" | "unset") => Vocab(Some(CodeList::Disposition)),
        _ => return None,
    })
}

/// A term of the EPCIS 2.0 context's top level.
fn top_term(key: &str) -> Option<Term> {
    use Term::*;
    Some(match key {
        "id" | "eventID" => Id,
        "type" => Type,
        "member" | "certificationInfo" | "bizLocation" | "readPoint" | "transformationID"
        | "epcList" | "epcClass" | "parentID" | "childEPCs" | "inputEPCList" | "outputEPCList"
        | "children" => IriValued,
        "bizStep" => Vocab(Some(CodeList::BizStep)),
        "disposition" => Vocab(Some(CodeList::Disposition)),
        "sourceList" | "destinationList" => Plain(Some(Scope::SourceOrDestinationList)),
        "persistentDisposition" => Plain(Some(Scope::PersistentDisposition)),
        "bizTransactionList" => Plain(Some(Scope::BizTransactionList)),
        "sensorElementList" => Plain(Some(Scope::SensorElementList)),
        "errorDeclaration" => Plain(Some(Scope::ErrorDeclaration)),
        "eventTime"
        | "recordTime"
        | "eventTimeZoneOffset"
        | "action"
        | "quantity"
        | "uom"
        | "quantityList"
        | "childQuantityList"
        | "inputQuantityList"
        | "outputQuantityList"
        | "creationDate"
        | "sender"
        | "receiver"
        | "instanceIdentifier"
        | "schemaVersion"
        | "ilmd"
        | "epcisHeader"
        | "masterData"
        | "vocabularyList"
        | "epcisBody"
        | "queryResults"
        | "subscriptionID"
        | "queryName"
        | "resultsBody"
        | "eventList"
        | "ObjectEvent"
        | "AggregationEvent"
        | "TransformationEvent"
        | "AssociationEvent"
        | "TransactionEvent"
        | "Collection"
        | "EPCISDocument"
        | "EPCISQueryDocument" => Plain(None),
        _ if EPCIS_PREFIXES.iter().any(|(p, _)| *p == key) => Plain(None),
        _ => return None,
    })
}

/// The JSON-LD terms in effect for a document: the EPCIS context's (if the document uses it) and
/// the string-valued terms of the document's own context.
pub(crate) struct Terms<'a> {
    /// Whether the EPCIS 2.0 context is in effect.
    pub(crate) epcis: bool,
    /// The document's own string-valued term definitions.
    pub(crate) document: &'a BTreeMap<String, String>,
}

impl Terms<'_> {
    /// The IRI a compact IRI prefix stands for. A document term is a prefix only if its IRI ends
    /// in a URI gen-delim character (JSON-LD 1.1, which the EPCIS context selects).
    fn prefix(&self, prefix: &str) -> Option<&str> {
        if self.epcis
            && let Some((_, iri)) = EPCIS_PREFIXES.iter().find(|(p, _)| *p == prefix)
        {
            return Some(iri);
        }
        self.document
            .get(prefix)
            .map(String::as_str)
            .filter(|iri| iri.ends_with([':', '/', '?', '#', '[', ']', '@']))
    }

    /// The IRI of a term, for vocabulary-relative expansion. Only prefix terms and the document's
    /// terms can expand to a kept IRI; the EPCIS context's other terms expand to `epcis:`,
    /// `rdfs:`, `owl:` or `dcterms:` IRIs, which are never kept, so they are left out.
    fn term_iri(&self, term: &str) -> Option<String> {
        if self.epcis
            && let Some((_, iri)) = EPCIS_PREFIXES.iter().find(|(p, _)| *p == term)
        {
            return Some((*iri).to_owned());
        }
        self.document.get(term).cloned()
    }

    /// JSON-LD IRI expansion of a value: compact IRIs with a known prefix are expanded; in
    /// vocabulary position terms are, too; anything else is kept.
    fn expand_iri(&self, value: &str, vocab: bool) -> String {
        if vocab && let Some(iri) = self.term_iri(value) {
            return iri;
        }
        if let Some((prefix, suffix)) = value.split_once(':')
            && !suffix.starts_with("//")
            && let Some(iri) = self.prefix(prefix)
        {
            return format!("{iri}{suffix}");
        }
        value.to_owned()
    }

    /// How a key of a node object in `scopes` expands, or `None` if expansion drops it.
    fn term(&self, scopes: &[Scope], key: &str) -> Option<Term> {
        if let Some(keyword) = key.strip_prefix('@') {
            return match keyword {
                "id" => Some(Term::Id),
                "type" => Some(Term::Type),
                "value" | "list" | "set" => Some(Term::Plain(None)),
                _ => None,
            };
        }
        if self.epcis {
            if let Some(term) = scopes.iter().rev().find_map(|s| scoped_term(*s, key)) {
                return Some(term);
            }
            if let Some(term) = top_term(key) {
                return Some(term);
            }
        }
        // Any other key is kept only if it expands to an absolute IRI (a document term, a compact
        // IRI, or an IRI); expansion drops the rest, including IRIs with whitespace.
        is_absolute_iri(&self.expand_iri(key, true)).then_some(Term::Plain(None))
    }

    /// Collects the kept IRIs of a node object.
    pub(crate) fn scan(&self, node: &Json, out: &mut BTreeSet<String>) {
        let mut scopes = Vec::new();
        self.scan_value(Term::Plain(None), node, &mut scopes, out);
    }

    fn scan_node(
        &self,
        members: &[(String, Json)],
        scopes: &mut Vec<Scope>,
        out: &mut BTreeSet<String>,
    ) {
        for (key, value) in members {
            if key == "@context" {
                continue;
            }
            if let Some(term) = self.term(scopes, key) {
                self.scan_value(term, value, scopes, out);
            }
        }
    }

    /// The kept IRI a string value under `term` expands to, if it expands to one.
    fn kept_iri(&self, term: Term, s: &str) -> Option<String> {
        let iri = match term {
            Term::Id | Term::IriValued => self.expand_iri(s, false),
            Term::Type | Term::Vocab(None) => self.expand_iri(s, true),
            Term::Vocab(Some(list)) => list.expand(s).unwrap_or_else(|| self.expand_iri(s, true)),
            // A literal is kept as it is: checked before it is copied.
            Term::Plain(_) => return is_kept(s).then(|| s.to_owned()),
        };
        is_kept(&iri).then_some(iri)
    }

    fn scan_value(
        &self,
        term: Term,
        value: &Json,
        scopes: &mut Vec<Scope>,
        out: &mut BTreeSet<String>,
    ) {
        match value {
            Json::Array(items) => {
                for item in items {
                    self.scan_value(term, item, scopes, out);
                }
            }
            Json::String(s) => {
                if let Some(iri) = self.kept_iri(term, s) {
                    out.insert(iri);
                }
            }
            Json::Object(members) => match term {
                Term::Id | Term::Type => {}
                Term::Plain(Some(scope)) => {
                    scopes.push(scope);
                    self.scan_node(members, scopes, out);
                    scopes.pop();
                }
                _ => self.scan_node(members, scopes, out),
            },
            Json::Null | Json::Bool(_) | Json::Number(_) => {}
        }
    }
}

/// The vocabulary scan of values read as they stream: for each value, what [`Terms::scan`] finds
/// in its [`Json`], found without building it (a first pass over a document builds nothing).
///
/// A `Json` object keeps the last value of a key written twice, in the first one's place; so the
/// IRIs each member finds are staged, and a member's are dropped when its key comes again.
pub(crate) struct StreamScan<'t> {
    terms: Terms<'t>,
    scopes: Vec<Scope>,
    /// The kept IRIs found so far in the value being read; cleared ones were overridden.
    staged: Vec<String>,
    /// The members of the objects being read, innermost last: key, and where its IRIs start
    /// and end in `staged`.
    members: Vec<(String, usize, usize)>,
}

impl<'t> StreamScan<'t> {
    pub(crate) fn new(terms: Terms<'t>) -> Self {
        StreamScan {
            terms,
            scopes: Vec::new(),
            staged: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Reads one value from `d`, adding what [`Terms::scan`] of it would find to `out`.
    pub(crate) fn value<'de, D: de::Deserializer<'de>>(
        &mut self,
        d: D,
        out: &mut BTreeSet<String>,
    ) -> Result<(), D::Error> {
        self.scopes.clear();
        self.staged.clear();
        self.members.clear();
        ValueSeed {
            scan: self,
            term: Term::Plain(None),
        }
        .deserialize(d)?;
        out.extend(self.staged.drain(..).filter(|iri| !iri.is_empty()));
        Ok(())
    }

    fn string(&mut self, term: Term, s: &str) {
        if let Some(iri) = self.terms.kept_iri(term, s) {
            self.staged.push(iri);
        }
    }
}

/// One value of a [`StreamScan`], under the term that names it.
struct ValueSeed<'s, 't> {
    scan: &'s mut StreamScan<'t>,
    term: Term,
}

impl<'de> de::DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    crate::json::scalars_hold_nothing!();
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scan.string(self.term, v);
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ValueSeed { scan, term } = self;
        while seq
            .next_element_seed(ValueSeed {
                scan: &mut *scan,
                term,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ValueSeed { scan, term } = self;
        let scope = match term {
            Term::Plain(Some(scope)) => Some(scope),
            _ => None,
        };
        // An `@id` or `@type` object is not scanned; nor is a number (a map of one member
        // under arbitrary precision), whose key is no term.
        let scanned = !matches!(term, Term::Id | Term::Type);
        if let Some(scope) = scope {
            scan.scopes.push(scope);
        }
        let base = scan.members.len();
        while let Some(key) = map.next_key::<String>()? {
            let term = if scanned && key != "@context" {
                scan.terms.term(&scan.scopes, &key)
            } else {
                None
            };
            let start = scan.staged.len();
            match term {
                Some(term) => map.next_value_seed(ValueSeed {
                    scan: &mut *scan,
                    term,
                })?,
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            let end = scan.staged.len();
            // A key written again: its earlier value is not the object's.
            if let Some(earlier) = scan.members[base..].iter_mut().find(|(k, ..)| *k == key) {
                let (from, to) = (earlier.1, earlier.2);
                for iri in &mut scan.staged[from..to] {
                    iri.clear();
                }
                (earlier.1, earlier.2) = (start, end);
            } else {
                scan.members.push((key, start, end));
            }
        }
        scan.members.truncate(base);
        if scope.is_some() {
            scan.scopes.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(doc: &str, document: &BTreeMap<String, String>) -> BTreeSet<String> {
        let terms = Terms {
            epcis: true,
            document,
        };
        let mut out = BTreeSet::new();
        terms.scan(&Json::parse(doc).unwrap(), &mut out);
        out
    }

    #[test]
    fn expands_code_lists_curies_and_literals() {
        let mut document = BTreeMap::new();
        document.insert("ex".to_owned(), "https://ns.example.com/".to_owned());
        let found = scan(
            r#"{"type": "ObjectEvent", "bizStep": "shipping", "disposition": "cbv:Disp-active",
                "bizTransactionList": [{"type": "po", "bizTransaction": "urn:x"}],
                "sourceList": [{"type": "location", "source": "gs1:x"}],
                "persistentDisposition": {"set": ["recalled"]},
                "sensorElementList": [{"sensorReport": [{"type": "Temperature", "component": "x",
                    "exception": "ALARM_CONDITION"}]}],
                "errorDeclaration": {"reason": "did_not_occur"},
                "ex:field": "https://gs1.org/voc/Literal", "undefined": "https://gs1.org/voc/No",
                "type2": "bizStep"}"#,
            &document,
        );
        let want: BTreeSet<String> = [
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "https://ref.gs1.org/cbv/Disp-active",
            "https://ref.gs1.org/cbv/BTT-po",
            "https://ref.gs1.org/cbv/SDT-location",
            "https://gs1.org/voc/x",
            "https://ref.gs1.org/cbv/Disp-recalled",
            "https://gs1.org/voc/Temperature",
            "https://ref.gs1.org/cbv/Comp-x",
            "https://gs1.org/voc/ALARM_CONDITION",
            "https://ref.gs1.org/cbv/ER-did_not_occur",
            "https://gs1.org/voc/Literal",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(found, want);
    }

    fn streamed(doc: &str, document: &BTreeMap<String, String>) -> BTreeSet<String> {
        let terms = Terms {
            epcis: true,
            document,
        };
        let mut out = BTreeSet::new();
        let mut de = serde_json::Deserializer::from_str(doc);
        StreamScan::new(terms).value(&mut de, &mut out).unwrap();
        out
    }

    #[test]
    fn a_streamed_scan_finds_what_the_scan_of_the_built_value_finds() {
        let mut document = BTreeMap::new();
        document.insert("ex".to_owned(), "https://ns.example.com/".to_owned());
        document.insert("voc".to_owned(), "https://gs1.org/voc/".to_owned());
        let mut docs: Vec<String> = [
            // A key written twice keeps its last value, in its first place, at every depth.
            r#"{"bizStep": "shipping", "disposition": "active", "bizStep": "receiving"}"#,
            r#"{"ilmd": {"ex:a": "https://gs1.org/voc/A", "ex:a": "https://gs1.org/voc/B"},
                "persistentDisposition": {"set": ["recalled"], "set": ["active"]}}"#,
            r#"{"bizStep": "shipping", "bizStep": 3, "x": {"bizStep": "receiving"}}"#,
            // Numbers, under every kind of term; ids and types are not scanned inside.
            r#"{"quantityList": [{"epcClass": "voc:c", "quantity": 2.50, "uom": "KGM"}],
                "eventID": {"bizStep": "shipping"}, "type": {"x": "https://gs1.org/voc/T"},
                "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 1e3,
                    "component": "x", "uriValue": "voc:u"}], "type": "gs1:Sensor"}]}"#,
            // Nested contexts are skipped; scopes hold only below their property.
            r#"{"@context": {"bizStep": "https://gs1.org/voc/No"}, "errorDeclaration":
                {"reason": "did_not_occur", "@context": "https://gs1.org/voc/X"},
                "reason": "did_not_occur", "voc:literal": ["https://ref.gs1.org/cbv/Lit", null,
                true, {"@id": "voc:id"}]}"#,
            r#"[{"bizStep": "shipping"}, "https://gs1.org/voc/Top", 12, [[{"type": "voc:T"}]]]"#,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonld") {
                docs.push(std::fs::read_to_string(&path).unwrap());
            }
        }
        let mut found = 0;
        for doc in &docs {
            let built = scan(doc, &document);
            assert_eq!(streamed(doc, &document), built, "{doc}");
            found += built.len();
        }
        assert!(
            found > 20,
            "the documents name too few IRIs to compare: {found}"
        );
        // The last value of a repeated key, not the first.
        let twice = scan(
            r#"{"bizStep": "shipping", "bizStep": "receiving"}"#,
            &document,
        );
        assert_eq!(
            twice,
            BTreeSet::from(["https://ref.gs1.org/cbv/BizStep-receiving".to_owned()])
        );
    }

    /// Random JSON text from the names and values the scan treats apart, with keys written
    /// twice now and then.
    fn next(state: &mut u64, n: u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % n
    }

    fn random_json(state: &mut u64, depth: u32, out: &mut String) {
        const KEYS: [&str; 18] = [
            "bizStep",
            "disposition",
            "type",
            "sourceList",
            "source",
            "sensorElementList",
            "sensorReport",
            "component",
            "errorDeclaration",
            "reason",
            "@context",
            "@id",
            "eventID",
            "ex:x",
            "persistentDisposition",
            "set",
            "ilmd",
            "quantity",
        ];
        const VALUES: [&str; 12] = [
            "\"shipping\"",
            "\"recalled\"",
            "\"did_not_occur\"",
            "\"Temperature\"",
            "\"https://gs1.org/voc/A\"",
            "\"cbv:Disp-active\"",
            "\"gs1:x\"",
            "\"ex:y\"",
            "\"urn:x\"",
            "2.50",
            "null",
            "true",
        ];
        match if depth == 0 { 2 } else { next(state, 4) } {
            0 => {
                out.push('{');
                let members = next(state, 5);
                for i in 0..members {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(KEYS[next(state, KEYS.len() as u64) as usize]);
                    out.push_str("\":");
                    random_json(state, depth - 1, out);
                }
                out.push('}');
            }
            1 => {
                out.push('[');
                for i in 0..next(state, 3) {
                    if i > 0 {
                        out.push(',');
                    }
                    random_json(state, depth - 1, out);
                }
                out.push(']');
            }
            _ => out.push_str(VALUES[next(state, VALUES.len() as u64) as usize]),
        }
    }

    #[test]
    fn a_streamed_scan_of_random_values_finds_what_the_scan_of_the_built_value_finds() {
        let mut document = BTreeMap::new();
        document.insert("ex".to_owned(), "https://gs1.org/voc/ex/".to_owned());
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut found, mut repeated) = (0, 0);
        for _ in 0..3000 {
            let mut text = String::new();
            random_json(&mut state, 4, &mut text);
            let built = scan(&text, &document);
            assert_eq!(streamed(&text, &document), built, "{text}");
            found += usize::from(!built.is_empty());
            repeated += usize::from(Json::parse(&text).unwrap().to_string().len() < text.len());
        }
        // Enough of them find IRIs, and enough write a key twice, for the comparison to count.
        assert!(found > 300 && repeated > 100, "{found} {repeated}");
    }

    #[test]
    fn code_list_terms_are_scoped() {
        // "Temperature" is a measurement type only under sensorReport's type.
        let found = scan(
            r#"{"bizStep": "Temperature", "disposition": "shipping"}"#,
            &BTreeMap::new(),
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
