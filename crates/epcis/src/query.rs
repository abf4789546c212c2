//! The EPCIS 2.0 query language's parameters (EPCIS 2.0 §8.2.7.1, as the REST binding passes them
//! in a URI query string): parsed once into a [`Query`], then matched against EPCIS events in
//! their JSON form.
//!
//! Identifiers are compared in the form lotline keeps them (an EPC URN and a Digital Link of one
//! lot are the same lot; lotline's own URNs are bare ids), CBV values as bare words whichever of
//! their spellings (`shipping`, `urn:epcglobal:cbv:bizstep:shipping`,
//! `https://ref.gs1.org/cbv/BizStep-shipping`) either side used. A class pattern
//! (`urn:epc:idpat:sgtin:CP.ITEM.*`, or a Digital Link of a GTIN alone) matches every lot and
//! serial of that GTIN.

use chrono::{DateTime, FixedOffset, Utc};

use crate::import::{canon_id, strip_urn};
use crate::json::Json;
use crate::names::EVENT_URN;

/// A parameter lotline cannot take, and why (an EPCIS `QueryParameterException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct QueryError {
    pub parameter: String,
    pub reason: String,
}

fn bad(parameter: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        parameter: parameter.to_string(),
        reason: reason.into(),
    }
}

/// The EPCIS event types.
pub const EVENT_TYPES: [&str; 5] = [
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

/// Which field orders the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderBy {
    EventTime,
    RecordTime,
}

/// One identifier a `MATCH_` parameter names: an id, or every id of a GTIN (a class pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMatch {
    /// The id in the form lotline keeps it.
    Exact(String),
    /// Every lot and serial of a trade item: the canonical Digital Link of the GTIN alone.
    Class(String),
}

impl IdMatch {
    fn parse(parameter: &str, value: &str) -> Result<IdMatch, QueryError> {
        let id = canon_id(parameter, value).map_err(|reason| bad(parameter, reason))?;
        // A GTIN alone (`/01/{14 digits}`, the canonical form of an SGTIN or LGTIN pattern).
        let is_class = id
            .strip_prefix("https://id.gs1.org/01/")
            .is_some_and(|gtin| gtin.len() == 14 && gtin.bytes().all(|b| b.is_ascii_digit()));
        Ok(if is_class {
            IdMatch::Class(id)
        } else {
            IdMatch::Exact(id)
        })
    }

    fn matches(&self, id: &str) -> bool {
        match self {
            IdMatch::Exact(want) => want == id,
            IdMatch::Class(gtin) => {
                id == gtin
                    || id
                        .strip_prefix(gtin.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }
        }
    }
}

/// The fields each `MATCH_` parameter looks in.
/// A field a `MATCH_` parameter looks in, and whether it lists quantities (`epcClass`) or EPCs.
type Field = (&'static str, bool);

const EPC_FIELDS: &[Field] = &[("epcList", false), ("childEPCs", false)];
const PARENT_FIELDS: &[Field] = &[("parentID", false)];
const INPUT_EPC_FIELDS: &[Field] = &[("inputEPCList", false)];
const OUTPUT_EPC_FIELDS: &[Field] = &[("outputEPCList", false)];
const ANY_EPC_FIELDS: &[Field] = &[
    ("epcList", false),
    ("childEPCs", false),
    ("inputEPCList", false),
    ("outputEPCList", false),
    ("parentID", false),
];
const CLASS_FIELDS: &[Field] = &[("quantityList", true), ("childQuantityList", true)];
const INPUT_CLASS_FIELDS: &[Field] = &[("inputQuantityList", true)];
const OUTPUT_CLASS_FIELDS: &[Field] = &[("outputQuantityList", true)];
const ANY_CLASS_FIELDS: &[Field] = &[
    ("quantityList", true),
    ("childQuantityList", true),
    ("inputQuantityList", true),
    ("outputQuantityList", true),
];
/// Every field that names an EPC or a class: the REST binding's `/epcs/{epc}/events`.
const EVERY_ID_FIELD: &[Field] = &[
    ("epcList", false),
    ("childEPCs", false),
    ("inputEPCList", false),
    ("outputEPCList", false),
    ("parentID", false),
    ("quantityList", true),
    ("childQuantityList", true),
    ("inputQuantityList", true),
    ("outputQuantityList", true),
];

/// A `MATCH_` parameter: the fields it looks in and the ids it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IdFilter {
    fields: &'static [Field],
    ids: Vec<IdMatch>,
}

impl IdFilter {
    fn matches(&self, event: &Json) -> bool {
        self.fields.iter().any(|&(field, classes)| {
            let values: Vec<&str> = match event.get(field) {
                Some(Json::String(one)) => vec![one.as_str()],
                Some(Json::Array(items)) if classes => items
                    .iter()
                    .filter_map(|q| q.get("epcClass").and_then(Json::as_str))
                    .collect(),
                Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
                _ => Vec::new(),
            };
            values.into_iter().any(|raw| {
                canon_id(field, raw).is_ok_and(|id| self.ids.iter().any(|m| m.matches(&id)))
            })
        })
    }
}

/// An EPCIS query: every parameter given, combined with AND; the values of one parameter with OR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The parameters as given (names and values), sorted: what a page token carries.
    params: Vec<(String, String)>,
    event_types: Vec<String>,
    event_time: (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>),
    record_time: (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>),
    error_time: (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>),
    actions: Vec<String>,
    biz_steps: Vec<String>,
    dispositions: Vec<String>,
    persistent_set: Vec<String>,
    persistent_unset: Vec<String>,
    read_points: Vec<String>,
    biz_locations: Vec<String>,
    transformation_ids: Vec<String>,
    id_filters: Vec<IdFilter>,
    event_ids: Vec<String>,
    error_declaration: bool,
    error_reasons: Vec<String>,
    corrective_ids: Vec<String>,
    order_by: Option<OrderBy>,
    ascending: bool,
    /// The field that orders the results, and whether ascending.
    pub order: Option<(OrderBy, bool)>,
    /// At most this many results (`eventCountLimit`, with `orderBy`).
    pub event_count_limit: Option<usize>,
    /// More results than this is an error (`maxEventCount`).
    pub max_event_count: Option<usize>,
}

/// A CBV value as a bare word, whichever spelling: `urn:epcglobal:cbv:<kind>:<word>`,
/// `https://ref.gs1.org/cbv/<Vocab>-<word>`, `cbv:<Vocab>-<word>`, or the word itself.
fn cbv_word(value: &str, urn_kind: &str, vocabulary: &str) -> String {
    let value = value.trim();
    let urn = format!("urn:epcglobal:cbv:{urn_kind}:");
    for prefix in [
        urn,
        format!("https://ref.gs1.org/cbv/{vocabulary}-"),
        format!("cbv:{vocabulary}-"),
        format!("gs1:{vocabulary}-"),
    ] {
        if let Some(word) = value.strip_prefix(&prefix) {
            return word.to_string();
        }
    }
    value.to_string()
}

fn time(parameter: &str, value: &str) -> Result<DateTime<FixedOffset>, QueryError> {
    // A `+` left unescaped in a query string arrives as a space.
    DateTime::parse_from_rfc3339(&value.trim().replace(' ', "+")).map_err(|e| {
        bad(
            parameter,
            format!("{value:?} is not a date-time (RFC 3339, e.g. 2024-05-01T00:00:00Z): {e}"),
        )
    })
}

fn count(parameter: &str, value: &str) -> Result<usize, QueryError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(
            parameter,
            format!("{value:?} is not a positive integer"),
        )),
    }
}

/// The values of a pipe-delimited parameter; none may be empty.
fn values(parameter: &str, value: &str) -> Result<Vec<String>, QueryError> {
    let items: Vec<String> = value.split('|').map(|v| v.trim().to_string()).collect();
    if items.iter().any(String::is_empty) {
        return Err(bad(
            parameter,
            "an empty value (values are separated by `|`)",
        ));
    }
    Ok(items)
}

/// A location's id as lotline keeps it (its SGLN as a Digital Link, lotline's site URN bare).
fn location(parameter: &str, value: &str) -> Result<String, QueryError> {
    canon_id(parameter, value).map_err(|reason| bad(parameter, reason))
}

/// An event id as lotline keeps it (lotline's event URN bare).
pub fn stored_event_id(id: &str) -> String {
    strip_urn(id.trim(), EVENT_URN)
}

impl Query {
    /// The query the parameters give. Paging parameters (`perPage`, `nextPageToken`) are the
    /// door's, not the query's: pass the rest.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Query, QueryError> {
        let mut query = Query::default();
        for (name, value) in params {
            query.add(name, value)?;
        }
        query.check()?;
        Ok(query)
    }

    /// The same query with one more parameter (a path resource such as
    /// `/eventTypes/{eventType}/events` adds its own).
    pub fn with(mut self, name: &str, value: &str) -> Result<Query, QueryError> {
        self.add(name, value)?;
        self.check()?;
        Ok(self)
    }

    /// The same query limited to events that name `epc` in any list (as an EPC, a parent or a
    /// class): the REST binding's `/epcs/{epc}/events`.
    pub fn naming(mut self, epc: &str) -> Result<Query, QueryError> {
        self.id_filters.push(IdFilter {
            fields: EVERY_ID_FIELD,
            ids: vec![IdMatch::parse("epc", epc)?],
        });
        Ok(self)
    }

    /// The parameters as given, sorted by name: enough to parse the same query again.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Settles what depends on several parameters, then checks them together.
    fn check(&mut self) -> Result<(), QueryError> {
        // orderDirection (DESC unless given) applies only with orderBy, in either order.
        self.order = self.order_by.map(|by| (by, self.ascending));
        if self.event_count_limit.is_some() && self.max_event_count.is_some() {
            return Err(bad(
                "eventCountLimit",
                "eventCountLimit and maxEventCount may not be given together",
            ));
        }
        if self.event_count_limit.is_some() && self.order.is_none() {
            return Err(bad("eventCountLimit", "eventCountLimit needs orderBy"));
        }
        Ok(())
    }

    fn add(&mut self, name: &str, value: &str) -> Result<(), QueryError> {
        if self.params.iter().any(|(n, _)| n == name) {
            return Err(bad(
                name,
                "given twice (give several values as one, separated by `|`)",
            ));
        }
        let ids = |fields: &'static [Field]| -> Result<IdFilter, QueryError> {
            Ok(IdFilter {
                fields,
                ids: values(name, value)?
                    .iter()
                    .map(|v| IdMatch::parse(name, v))
                    .collect::<Result<_, _>>()?,
            })
        };
        match name {
            "eventType" => {
                let types = values(name, value)?;
                if let Some(t) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
                    return Err(bad(
                        name,
                        format!(
                            "{t:?} is not an EPCIS event type ({})",
                            EVENT_TYPES.join(", ")
                        ),
                    ));
                }
                self.event_types = types;
            }
            "GE_eventTime" => self.event_time.0 = Some(time(name, value)?),
            "LT_eventTime" => self.event_time.1 = Some(time(name, value)?),
            "GE_recordTime" => self.record_time.0 = Some(time(name, value)?),
            "LT_recordTime" => self.record_time.1 = Some(time(name, value)?),
            "GE_errorDeclarationTime" => self.error_time.0 = Some(time(name, value)?),
            "LT_errorDeclarationTime" => self.error_time.1 = Some(time(name, value)?),
            "EQ_action" => {
                let actions = values(name, value)?;
                if let Some(a) = actions
                    .iter()
                    .find(|a| !["ADD", "OBSERVE", "DELETE"].contains(&a.as_str()))
                {
                    return Err(bad(name, format!("{a:?} is not ADD, OBSERVE or DELETE")));
                }
                self.actions = actions;
            }
            "EQ_bizStep" => {
                self.biz_steps = values(name, value)?
                    .iter()
                    .map(|v| cbv_word(v, "bizstep", "BizStep"))
                    .collect();
            }
            "EQ_disposition" => {
                self.dispositions = values(name, value)?
                    .iter()
                    .map(|v| cbv_word(v, "disp", "Disp"))
                    .collect();
            }
            "EQ_persistentDisposition_set" => {
                self.persistent_set = values(name, value)?
                    .iter()
                    .map(|v| cbv_word(v, "disp", "Disp"))
                    .collect();
            }
            "EQ_persistentDisposition_unset" => {
                self.persistent_unset = values(name, value)?
                    .iter()
                    .map(|v| cbv_word(v, "disp", "Disp"))
                    .collect();
            }
            "EQ_readPoint" => {
                self.read_points = values(name, value)?
                    .iter()
                    .map(|v| location(name, v))
                    .collect::<Result<_, _>>()?;
            }
            "EQ_bizLocation" => {
                self.biz_locations = values(name, value)?
                    .iter()
                    .map(|v| location(name, v))
                    .collect::<Result<_, _>>()?;
            }
            "EQ_transformationID" => self.transformation_ids = values(name, value)?,
            "MATCH_epc" => self.id_filters.push(ids(EPC_FIELDS)?),
            "MATCH_parentID" => self.id_filters.push(ids(PARENT_FIELDS)?),
            "MATCH_inputEPC" => self.id_filters.push(ids(INPUT_EPC_FIELDS)?),
            "MATCH_outputEPC" => self.id_filters.push(ids(OUTPUT_EPC_FIELDS)?),
            "MATCH_anyEPC" => self.id_filters.push(ids(ANY_EPC_FIELDS)?),
            "MATCH_epcClass" => self.id_filters.push(ids(CLASS_FIELDS)?),
            "MATCH_inputEPCClass" => self.id_filters.push(ids(INPUT_CLASS_FIELDS)?),
            "MATCH_outputEPCClass" => self.id_filters.push(ids(OUTPUT_CLASS_FIELDS)?),
            "MATCH_anyEPCClass" => self.id_filters.push(ids(ANY_CLASS_FIELDS)?),
            "EQ_eventID" => self.event_ids = values(name, value)?,
            "EXISTS_errorDeclaration" => {
                self.error_declaration = match value.trim() {
                    "true" | "" => true,
                    "false" => false,
                    other => return Err(bad(name, format!("{other:?} is not true or false"))),
                };
            }
            "EQ_errorReason" => {
                self.error_reasons = values(name, value)?
                    .iter()
                    .map(|v| cbv_word(v, "er", "ER"))
                    .collect();
            }
            "EQ_correctiveEventID" => self.corrective_ids = values(name, value)?,
            "orderBy" => {
                let by = match value.trim() {
                    "eventTime" => OrderBy::EventTime,
                    "recordTime" => OrderBy::RecordTime,
                    other => {
                        return Err(bad(
                            name,
                            format!("{other:?}: lotline orders by eventTime or recordTime only"),
                        ));
                    }
                };
                self.order_by = Some(by);
            }
            "orderDirection" => {
                self.ascending = match value.trim() {
                    "ASC" => true,
                    "DESC" => false,
                    other => return Err(bad(name, format!("{other:?} is not ASC or DESC"))),
                };
            }
            "eventCountLimit" => self.event_count_limit = Some(count(name, value)?),
            "maxEventCount" => self.max_event_count = Some(count(name, value)?),
            other => {
                return Err(bad(
                    other,
                    if other.starts_with("EQ_")
                        || other.starts_with("GE_")
                        || other.starts_with("GT_")
                        || other.starts_with("LE_")
                        || other.starts_with("LT_")
                        || other.starts_with("WD_")
                        || other.starts_with("MATCH_")
                        || other.starts_with("EXISTS_")
                        || other.starts_with("HASATTR_")
                        || other.starts_with("EQATTR_")
                    {
                        "lotline does not support this query parameter (see docs/epcis.md, \"REST binding\")"
                    } else {
                        "not an EPCIS query parameter"
                    },
                ));
            }
        }
        self.params.push((name.to_string(), value.to_string()));
        self.params.sort();
        Ok(())
    }

    /// The event ids the query is limited to (`EQ_eventID`), as lotline keeps them.
    pub fn event_ids(&self) -> Vec<String> {
        self.event_ids
            .iter()
            .map(|id| stored_event_id(id))
            .collect()
    }

    /// Ids whose events hold every result, if the query names them exactly: the ids of a
    /// `MATCH_` parameter without class patterns (every event that names an id is in lotline's
    /// lot index under it). The narrowest such parameter is chosen.
    pub fn indexed_ids(&self) -> Option<Vec<String>> {
        self.id_filters
            .iter()
            .filter_map(|f| {
                f.ids
                    .iter()
                    .map(|m| match m {
                        IdMatch::Exact(id) => Some(id.clone()),
                        IdMatch::Class(_) => None,
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .min_by_key(Vec::len)
    }

    /// The bounds on record time, for a walk of the log (which is in record-time order).
    pub fn record_time_bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (
            self.record_time.0.map(|t| t.with_timezone(&Utc)),
            self.record_time.1.map(|t| t.with_timezone(&Utc)),
        )
    }

    /// Whether `event` (an EPCIS event in JSON, recorded at `record_time`) is a result.
    pub fn matches(&self, event: &Json, record_time: DateTime<Utc>) -> bool {
        let text = |field: &str| event.get(field).and_then(Json::as_str);
        let in_range =
            |t: Option<DateTime<FixedOffset>>,
             (ge, lt): (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>)| {
                if ge.is_none() && lt.is_none() {
                    return true;
                }
                let Some(t) = t else { return false };
                ge.is_none_or(|ge| t >= ge) && lt.is_none_or(|lt| t < lt)
            };
        let one_of = |wanted: &[String], got: Option<String>| {
            wanted.is_empty() || got.is_some_and(|g| wanted.contains(&g))
        };
        let location = |field: &str| {
            event
                .get(field)
                .and_then(|l| l.get("id"))
                .and_then(Json::as_str)
                .and_then(|id| canon_id(field, id).ok())
        };
        if !one_of(&self.event_types, text("type").map(str::to_string)) {
            return false;
        }
        let event_time = text("eventTime").and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        if !in_range(event_time, self.event_time)
            || !in_range(Some(record_time.fixed_offset()), self.record_time)
        {
            return false;
        }
        if !one_of(&self.actions, text("action").map(str::to_string))
            || !one_of(
                &self.biz_steps,
                text("bizStep").map(|v| cbv_word(v, "bizstep", "BizStep")),
            )
            || !one_of(
                &self.dispositions,
                text("disposition").map(|v| cbv_word(v, "disp", "Disp")),
            )
            || !one_of(&self.read_points, location("readPoint"))
            || !one_of(&self.biz_locations, location("bizLocation"))
            || !one_of(
                &self.transformation_ids,
                text("transformationID").map(str::to_string),
            )
        {
            return false;
        }
        if !self.event_ids.is_empty()
            && !text("eventID").is_some_and(|id| {
                self.event_ids
                    .iter()
                    .any(|want| want == id || stored_event_id(want) == stored_event_id(id))
            })
        {
            return false;
        }
        for (wanted, member) in [
            (&self.persistent_set, "set"),
            (&self.persistent_unset, "unset"),
        ] {
            if wanted.is_empty() {
                continue;
            }
            let listed: Vec<String> = event
                .get("persistentDisposition")
                .and_then(|p| p.get(member))
                .and_then(Json::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(Json::as_str)
                .map(|v| cbv_word(v, "disp", "Disp"))
                .collect();
            if !wanted.iter().any(|w| listed.contains(w)) {
                return false;
            }
        }
        let declaration = event.get("errorDeclaration");
        let filters_declaration = self.error_declaration
            || self.error_time.0.is_some()
            || self.error_time.1.is_some()
            || !self.error_reasons.is_empty()
            || !self.corrective_ids.is_empty();
        if filters_declaration {
            let Some(declaration) = declaration else {
                return false;
            };
            let declared = declaration
                .get("declarationTime")
                .and_then(Json::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            if !in_range(declared, self.error_time)
                || !one_of(
                    &self.error_reasons,
                    declaration
                        .get("reason")
                        .and_then(Json::as_str)
                        .map(|v| cbv_word(v, "er", "ER")),
                )
            {
                return false;
            }
            if !self.corrective_ids.is_empty() {
                let corrective: Vec<&str> = declaration
                    .get("correctiveEventIDs")
                    .and_then(Json::as_array)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Json::as_str)
                    .collect();
                if !self
                    .corrective_ids
                    .iter()
                    .any(|c| corrective.contains(&c.as_str()))
                {
                    return false;
                }
            }
        }
        self.id_filters.iter().all(|f| f.matches(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> Json {
        Json::parse(text).unwrap()
    }

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    const SHIP: &str = r#"{"type":"ObjectEvent","eventTime":"2024-05-02T10:00:00+02:00",
        "eventID":"ni:///sha-256;abc?ver=CBV2.0","action":"OBSERVE",
        "bizStep":"urn:epcglobal:cbv:bizstep:shipping","disposition":"in_transit",
        "readPoint":{"id":"urn:epc:id:sgln:9506000.00001.0"},
        "epcList":["urn:epc:id:sgtin:9506000.013435.7"],
        "quantityList":[{"epcClass":"urn:epc:class:lgtin:9506000.013435.LOT1","quantity":5,"uom":"KGM"}]}"#;

    fn q(params: &[(&str, &str)]) -> Result<Query, QueryError> {
        Query::parse(params.iter().copied())
    }

    #[test]
    fn each_parameter_selects_and_excludes() {
        let e = event(SHIP);
        let rt = at("2024-05-03T00:00:00Z");
        let yes: &[&[(&str, &str)]] = &[
            &[],
            &[("eventType", "ObjectEvent|AggregationEvent")],
            &[("GE_eventTime", "2024-05-02T08:00:00Z")],
            &[("LT_eventTime", "2024-05-02T08:00:01Z")],
            &[("GE_recordTime", "2024-05-03T00:00:00Z")],
            &[("EQ_action", "OBSERVE")],
            &[("EQ_bizStep", "shipping")],
            &[("EQ_bizStep", "https://ref.gs1.org/cbv/BizStep-shipping")],
            &[("EQ_disposition", "urn:epcglobal:cbv:disp:in_transit")],
            &[("EQ_readPoint", "https://id.gs1.org/414/9506000000015")],
            &[("MATCH_epc", "https://id.gs1.org/01/09506000134352/21/7")],
            &[("MATCH_anyEPC", "urn:epc:id:sgtin:9506000.013435.7")],
            &[(
                "MATCH_epcClass",
                "https://id.gs1.org/01/09506000134352/10/LOT1",
            )],
            &[("MATCH_epcClass", "urn:epc:idpat:sgtin:9506000.013435.*")],
            &[(
                "MATCH_anyEPCClass",
                "urn:epc:class:lgtin:9506000.013435.LOT1",
            )],
            &[("EQ_eventID", "ni:///sha-256;abc?ver=CBV2.0")],
        ];
        for params in yes {
            assert!(
                q(params).unwrap().matches(&e, rt),
                "{params:?} should match"
            );
        }
        let no: &[&[(&str, &str)]] = &[
            &[("eventType", "AggregationEvent")],
            &[("GE_eventTime", "2024-05-02T08:00:01Z")],
            &[("LT_eventTime", "2024-05-02T08:00:00Z")],
            &[("LT_recordTime", "2024-05-03T00:00:00Z")],
            &[("EQ_action", "ADD")],
            &[("EQ_bizStep", "receiving")],
            &[("EQ_disposition", "in_progress")],
            &[("EQ_bizLocation", "https://id.gs1.org/414/9506000000015")],
            &[("MATCH_epc", "https://id.gs1.org/01/09506000134352/21/8")],
            &[("MATCH_inputEPC", "urn:epc:id:sgtin:9506000.013435.7")],
            &[(
                "MATCH_epcClass",
                "https://id.gs1.org/01/09506000134352/10/LOT2",
            )],
            &[("MATCH_epcClass", "urn:epc:idpat:sgtin:9506000.013436.*")],
            &[("EQ_eventID", "ni:///sha-256;abd?ver=CBV2.0")],
            &[("EXISTS_errorDeclaration", "true")],
        ];
        for params in no {
            assert!(
                !q(params).unwrap().matches(&e, rt),
                "{params:?} should not match"
            );
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        for (params, parameter) in [
            (vec![("eventType", "Thing")], "eventType"),
            (vec![("GE_eventTime", "yesterday")], "GE_eventTime"),
            (vec![("EQ_action", "MOVE")], "EQ_action"),
            (
                vec![("MATCH_epc", "urn:epc:id:sgtin:9506000.013435")],
                "MATCH_epc",
            ),
            (vec![("MATCH_epc", "a||b")], "MATCH_epc"),
            (vec![("eventCountLimit", "3")], "eventCountLimit"),
            (
                vec![("eventCountLimit", "-1"), ("orderBy", "eventTime")],
                "eventCountLimit",
            ),
            (vec![("orderBy", "quantity")], "orderBy"),
            (vec![("orderDirection", "UP")], "orderDirection"),
            (vec![("EQ_quantity", "3")], "EQ_quantity"),
            (vec![("colour", "red")], "colour"),
            (
                vec![("EQ_action", "ADD"), ("EQ_action", "OBSERVE")],
                "EQ_action",
            ),
        ] {
            let e = q(&params).unwrap_err();
            assert_eq!(e.parameter, parameter, "{params:?}: {e}");
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn order_and_indexed_ids() {
        let query = q(&[("orderDirection", "ASC"), ("orderBy", "eventTime")]).unwrap();
        assert_eq!(query.order, Some((OrderBy::EventTime, true)));
        let query = q(&[("orderBy", "recordTime")]).unwrap();
        assert_eq!(query.order, Some((OrderBy::RecordTime, false)));
        let query = q(&[
            ("MATCH_epcClass", "urn:epc:idpat:sgtin:9506000.013435.*"),
            (
                "MATCH_anyEPC",
                "urn:epc:class:lgtin:9506000.013435.A|urn:lotline:lot:B",
            ),
        ])
        .unwrap();
        assert_eq!(
            query.indexed_ids(),
            Some(vec![
                "https://id.gs1.org/01/09506000134352/10/A".to_string(),
                "B".to_string()
            ])
        );
        assert_eq!(
            q(&[("eventType", "ObjectEvent")]).unwrap().indexed_ids(),
            None
        );
        // The parameters round-trip.
        let again = Query::parse(query.params().iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let again = again.unwrap();
        assert_eq!(again.params(), query.params());
        assert_eq!(again.indexed_ids(), query.indexed_ids());
    }
}
