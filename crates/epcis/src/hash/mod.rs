//! The CBV 2.0 EPCIS event hash: `ni:///sha-256;<lowercase hex>?ver=CBV2.0` over a canonical
//! pre-hash string, exactly as GS1's reference implementation computes it.
//!
//! The reference is the Python package `epcis-event-hash-generator` (github.com/RalphTro/
//! epcis-event-hash-generator; version 1.9.3 on PyPI was used to make this crate's test vectors).
//! Its README describes the algorithm; where the code and the README disagree, this module
//! follows the code, because the hashes must be equal to the reference's:
//!
//! - The property order is the code's `PROP_ORDER`: `certificationInfo` right after
//!   `eventTimeZoneOffset`, `parentID` before `epcList`, and no `ilmd` in it.
//! - `bizTransactionList`, `sourceList`, `destinationList` and `ilmd` are written after the
//!   ordered fields, sorted together with the user extensions, not at their places in the order.
//! - Inside a `bizTransactionList`, `sourceList` or `destinationList` element, `type` and the
//!   identifier are written in the order the document has them (hence [`Json`]); only the first
//!   two members of an element count, and an element with fewer makes the reference fail.
//! - Milliseconds are rounded half to even (`.1245` → `.124`), not half up.
//! - Keys are written as `{namespace}local` only for prefixes the document declares in a list-form
//!   `@context`; other prefixed keys (`cbvmda:lotNumber` with the EPCIS context alone) stay as
//!   written. The same prefixes are replaced in values.
//! - Bare values are expanded to CBV and GS1 web vocabulary IRIs wherever they occur, extension
//!   fields included, if exactly one IRI of the whole document's JSON-LD expansion ends in
//!   `-value` or `/value` (see `vocabulary`). [`Context::from_document`] reproduces this across a
//!   document; a [`Context`] built from the `@context` alone uses each event's own vocabulary.
//! - Every value is stripped and passed through the reference's numeric rewrite (`0042` → `42`,
//!   `1e3` → `1000`, `1.50` → `1.5`) and identifier normalisation (see `normalise`), whatever its
//!   field. JSON `true`, `false` and `null` are written `True`, `False` and `None`.
//! - Extensions of `readPoint`, `bizLocation`, `sensorMetadata` and `sensorReport` go after their
//!   parent's regular fields only if their namespace ends in `/` and no sibling name contains
//!   `eventTime` or `action`; otherwise the parent is written a second time among the leftovers.
//! - `eventID`, `recordTime` and `errorDeclaration` are left out; keys `comment` and
//!   `rdfs:comment` are ignored everywhere.
//!
//! Where the reference fails on an event (it then prints no hash for it), this module returns
//! [`HashError::ReferenceFails`].

mod normalise;
mod tree;
mod value;
mod vocabulary;

pub use vocabulary::{BIZ_STEPS, DISPOSITIONS};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::json::Json;
use tree::Builder;
use vocabulary::{Terms, is_epcis_context};

/// Why an event has no hash.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The event is not a JSON object.
    #[error("an EPCIS event must be a JSON object")]
    NotAnObject,
    /// The event is one the reference implementation fails on, so it has no reference hash.
    #[error("GS1's reference implementation cannot hash this event: {0}")]
    ReferenceFails(String),
    /// The document is not an EPCIS document or query document with an event list.
    #[error("not an EPCIS document: {0}")]
    NotADocument(String),
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the hash needs from the document around an event: its JSON-LD context and, for the
/// reference's document-wide expansion of bare values, the vocabulary of the whole document.
#[derive(Debug, Clone)]
pub struct Context {
    /// The reference's namespace map, built from a list-form `@context` only: each object
    /// member's key maps to its string value, each string entry maps to itself.
    namespaces: BTreeMap<String, String>,
    /// The document's string-valued JSON-LD term definitions, from any form of `@context`.
    terms: BTreeMap<String, String>,
    /// Whether the EPCIS 2.0 JSON-LD context is in effect.
    epcis: bool,
    /// The CBV and GS1 vocabulary IRIs of the whole document's expansion (empty unless built by
    /// [`Context::from_document`] or told of the document's parts by [`Context::observe`]).
    vocabulary: BTreeSet<String>,
    /// The vocabulary IRIs by every suffix that follows a `-` or `/` in them: the bare values
    /// each expands. Built on first use, and again after the vocabulary grows.
    bare_index: OnceLock<HashMap<String, BareMatch>>,
    /// Whether every event this context hashes was observed on its own, as the hash scans it:
    /// then an event's own vocabulary is already in `vocabulary`, and the hash need not scan
    /// the event again. Set by [`crate::stream::hash_context`] only.
    every_event_observed: bool,
}

/// The vocabulary IRIs a bare value matches.
#[derive(Debug, Clone)]
enum BareMatch {
    One(String),
    Several,
}

impl Default for Context {
    fn default() -> Self {
        Context::epcis()
    }
}

impl Context {
    /// The EPCIS 2.0 context alone: no extension namespaces, each event's own vocabulary.
    pub fn epcis() -> Context {
        Context {
            namespaces: BTreeMap::new(),
            terms: BTreeMap::new(),
            epcis: true,
            vocabulary: BTreeSet::new(),
            bare_index: OnceLock::new(),
            every_event_observed: false,
        }
    }

    /// The context of a document's `@context` value (a URL, an object, or a list of both). Bare
    /// values are expanded with each event's own vocabulary, which equals the reference's
    /// document-wide expansion unless a bare value in one event matches only a vocabulary IRI
    /// used by another; use [`Context::from_document`] when the whole document is at hand.
    pub fn from_context(context: &Json) -> Context {
        let mut ctx = Context {
            namespaces: BTreeMap::new(),
            terms: BTreeMap::new(),
            epcis: false,
            vocabulary: BTreeSet::new(),
            bare_index: OnceLock::new(),
            every_event_observed: false,
        };
        let add_terms = |ctx: &mut Context, members: &[(String, Json)], list_form: bool| {
            for (key, value) in members {
                // The reference fails on a non-string entry in a list-form context; such entries
                // (expanded term definitions, `@protected`) are skipped here.
                if let Json::String(iri) = value {
                    if list_form {
                        ctx.namespaces.insert(key.clone(), iri.clone());
                    }
                    if !key.starts_with('@') {
                        ctx.terms.insert(key.clone(), iri.clone());
                    }
                }
            }
        };
        match context {
            Json::String(url) => ctx.epcis = is_epcis_context(url),
            Json::Object(members) => add_terms(&mut ctx, members, false),
            Json::Array(entries) => {
                for entry in entries {
                    match entry {
                        Json::String(url) => {
                            ctx.epcis |= is_epcis_context(url);
                            ctx.namespaces.insert(url.clone(), url.clone());
                        }
                        Json::Object(members) => add_terms(&mut ctx, members, true),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        ctx
    }

    /// The context of a whole document: its `@context`, and the vocabulary of its entire JSON-LD
    /// expansion, which the reference uses to expand bare values in every event.
    pub fn from_document(document: &Json) -> Context {
        let mut ctx = document
            .get("@context")
            .map_or_else(|| Context::from_context(&Json::Null), Context::from_context);
        let mut vocabulary = BTreeSet::new();
        ctx.terms().scan(document, &mut vocabulary);
        ctx.vocabulary = vocabulary;
        ctx.bare_index = OnceLock::new();
        ctx
    }

    /// Adds the vocabulary of one part of the document (an event, or the header) to the
    /// document-wide vocabulary. A streaming reader can build the reference's document-wide
    /// context in a first pass over the events, with memory bounded by the set of vocabulary IRIs
    /// (at most a few hundred), and hash in a second pass: [`Context::from_context`] of the
    /// `@context`, then `observe` for the header and every event, equals
    /// [`Context::from_document`].
    pub fn observe(&mut self, part: &Json) {
        let mut vocabulary = std::mem::take(&mut self.vocabulary);
        self.terms().scan(part, &mut vocabulary);
        self.vocabulary = vocabulary;
        self.bare_index = OnceLock::new();
    }

    /// Reads one part of the document from `d` as it streams and observes it, as
    /// [`Context::observe`] would observe its [`Json`] (without building it).
    pub(crate) fn observe_streamed<'de, D: serde::Deserializer<'de>>(
        &mut self,
        d: D,
    ) -> Result<(), D::Error> {
        let terms = vocabulary::Terms {
            epcis: self.epcis,
            document: &self.terms,
        };
        vocabulary::StreamScan::new(terms).value(d, &mut self.vocabulary)?;
        self.bare_index = OnceLock::new();
        Ok(())
    }

    /// Records that [`Context::observe`] has seen every event this context will hash, each as
    /// the hash will see it. The hash then skips scanning each event for its own vocabulary,
    /// which the document-wide vocabulary already holds (a second scan of every event was a
    /// tenth of an import's hashing).
    pub(crate) fn mark_every_event_observed(&mut self) {
        self.every_event_observed = true;
    }

    /// The document's vocabulary IRIs by the bare values they expand: an IRI matches a bare
    /// value that is what follows one of its `-` or `/`.
    fn bare_index(&self) -> &HashMap<String, BareMatch> {
        self.bare_index.get_or_init(|| {
            let mut index = HashMap::new();
            for iri in &self.vocabulary {
                for (at, byte) in iri.bytes().enumerate() {
                    if matches!(byte, b'-' | b'/') {
                        // Two suffixes of one IRI differ in length, so a second entry is
                        // another IRI.
                        index
                            .entry(iri[at + 1..].to_string())
                            .and_modify(|m| *m = BareMatch::Several)
                            .or_insert_with(|| BareMatch::One(iri.clone()));
                    }
                }
            }
            index
        })
    }

    fn terms(&self) -> Terms<'_> {
        Terms {
            epcis: self.epcis,
            document: &self.terms,
        }
    }
}

/// The pre-hash string of an event given as a `serde_json::Value`.
///
/// A `Value` holds object members sorted by key (unless serde_json's `preserve_order` feature is
/// on), so a `bizTransactionList`, `sourceList` or `destinationList` element hashes as if the
/// document had written its identifier before its `type`. Use [`pre_hash_string_json`] with the
/// document's own order to match the reference on documents that write `type` first.
pub fn pre_hash_string(event: &serde_json::Value, context: &Context) -> Result<String, HashError> {
    pre_hash_string_json(&Json::from(event), context)
}

/// The event hash, `ni:///sha-256;<lowercase hex>?ver=CBV2.0`, of an event given as a
/// `serde_json::Value` (see [`pre_hash_string`] on member order).
pub fn event_hash(event: &serde_json::Value, context: &Context) -> Result<String, HashError> {
    event_hash_json(&Json::from(event), context)
}

/// The pre-hash string of an event, with the document's member order.
pub fn pre_hash_string_json(event: &Json, context: &Context) -> Result<String, HashError> {
    if event.as_object().is_none() {
        return Err(HashError::NotAnObject);
    }
    if let Some(kind) = event.get("type")
        && !matches!(kind, Json::String(_))
    {
        return Err(HashError::ReferenceFails(
            "the event's type is not a string".into(),
        ));
    }
    let mut own = BTreeSet::new();
    if !context.every_event_observed {
        context.terms().scan(event, &mut own);
    }
    // A bare value expands to the one vocabulary IRI (the document's, or this event's own) that
    // ends in `-value` or `/value`; with none or several it stays as it is.
    let index = context.bare_index();
    let own: Vec<&String> = own
        .iter()
        .filter(|iri| !context.vocabulary.contains(*iri))
        .collect();
    let expand_bare = |value: &str| -> Option<String> {
        let mut found = match index.get(value) {
            None => None,
            Some(BareMatch::One(iri)) => Some(iri),
            Some(BareMatch::Several) => return None,
        };
        for iri in &own {
            if iri
                .strip_suffix(value)
                .is_some_and(|head| head.ends_with(['-', '/']))
            {
                if found.is_some() {
                    return None;
                }
                found = Some(*iri);
            }
        }
        found.cloned()
    };
    let builder = Builder {
        namespaces: &context.namespaces,
        expand_bare: &expand_bare,
    };
    let root = tree::correct(builder.raw(event))?;
    tree::pre_hash(root)
}

/// The event hash of an event, with the document's member order.
pub fn event_hash_json(event: &Json, context: &Context) -> Result<String, HashError> {
    pre_hash_string_json(event, context).map(|pre| hash_pre_hash(&pre))
}

/// The `ni` URI (RFC 6920) of a pre-hash string: SHA-256 of its UTF-8 bytes in lower-case hex.
pub fn hash_pre_hash(pre_hash: &str) -> String {
    let digest = Sha256::digest(pre_hash.as_bytes());
    format!("ni:///sha-256;{}?ver=CBV2.0", hex::encode(digest))
}

/// An event's pre-hash string and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHash {
    /// The canonical pre-hash string.
    pub pre_hash: String,
    /// `ni:///sha-256;<lowercase hex>?ver=CBV2.0`.
    pub hash: String,
}

/// The events of an `EPCISDocument` (`epcisBody.eventList`, or a single `epcisBody.event`) or of
/// an `EPCISQueryDocument` (`epcisBody.queryResults.resultsBody.eventList`).
pub fn document_events(document: &Json) -> Result<Vec<&Json>, HashError> {
    let body = document
        .get("epcisBody")
        .ok_or_else(|| HashError::NotADocument("it has no epcisBody".into()))?;
    let list = body.get("eventList").or_else(|| {
        body.get("queryResults")
            .and_then(|q| q.get("resultsBody"))
            .and_then(|r| r.get("eventList"))
    });
    match (list, body.get("event")) {
        (Some(Json::Array(events)), _) => Ok(events.iter().collect()),
        (Some(_), _) => Err(HashError::NotADocument(
            "its eventList is not a list".into(),
        )),
        (None, Some(event)) => Ok(vec![event]),
        (None, None) => Err(HashError::NotADocument(
            "its epcisBody has no eventList or event".into(),
        )),
    }
}

/// The pre-hash strings and hashes of every event of an EPCIS document's JSON text, in document
/// order, with the document-wide vocabulary the reference uses. One event's failure does not
/// stop the others.
///
/// ```
/// use lotline_epcis::hash::document_hashes;
///
/// let document = r#"{
///   "@context": "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
///   "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2024-10-01T00:00:00Z",
///   "epcisBody": {"eventList": [{
///     "type": "ObjectEvent", "eventTime": "2024-10-01T12:00:00+02:00",
///     "eventTimeZoneOffset": "+02:00", "action": "OBSERVE", "bizStep": "receiving",
///     "epcList": ["urn:epc:id:sgtin:9506000.013435.7"]
///   }]}
/// }"#;
/// let hashes = document_hashes(document)?;
/// let event = hashes[0].as_ref().map_err(ToString::to_string)?;
/// assert_eq!(
///     event.pre_hash,
///     "eventType=ObjectEventeventTime=2024-10-01T10:00:00.000ZeventTimeZoneOffset=+02:00\
///      epcListepc=https://id.gs1.org/01/09506000134352/21/7action=OBSERVE\
///      bizStep=https://ref.gs1.org/cbv/BizStep-receiving"
/// );
/// assert!(event.hash.starts_with("ni:///sha-256;") && event.hash.ends_with("?ver=CBV2.0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn document_hashes(text: &str) -> Result<Vec<Result<EventHash, HashError>>, HashError> {
    let document = Json::parse(text)?;
    let context = Context::from_document(&document);
    Ok(document_events(&document)?
        .into_iter()
        .map(|event| {
            let pre_hash = pre_hash_string_json(event, &context)?;
            let hash = hash_pre_hash(&pre_hash);
            Ok(EventHash { pre_hash, hash })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(events: &str) -> String {
        format!(
            r#"{{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                {{"ex": "https://ns.example.com/epcis/"}}],
               "type": "EPCISDocument", "schemaVersion": "2.0",
               "creationDate": "2024-01-01T00:00:00Z", "epcisBody": {{"eventList": [{events}]}}}}"#
        )
    }

    #[test]
    fn hash_is_sha256_of_the_pre_hash_in_ni_form() {
        assert_eq!(
            hash_pre_hash(""),
            "ni:///sha-256;e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?ver=CBV2.0"
        );
    }

    #[test]
    fn bizstep_and_urns_are_canonicalised() {
        let text = doc(
            r#"{"type": "ObjectEvent", "eventTime": "2024-03-01T10:00:00+02:00",
                "eventTimeZoneOffset": "+02:00", "action": "OBSERVE", "bizStep": "shipping",
                "epcList": ["urn:epc:id:sgtin:9506000.013435.B", "urn:epc:id:sgtin:9506000.013435.A"],
                "eventID": "ni:///x", "recordTime": "2024-03-02T00:00:00Z"}"#,
        );
        let hashes = document_hashes(&text).unwrap();
        let event = hashes[0].as_ref().unwrap();
        assert_eq!(
            event.pre_hash,
            "eventType=ObjectEventeventTime=2024-03-01T08:00:00.000ZeventTimeZoneOffset=+02:00\
             epcListepc=https://id.gs1.org/01/09506000134352/21/Aepc=https://id.gs1.org/01/09506000134352/21/B\
             action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-shipping"
        );
        assert_eq!(event.hash, hash_pre_hash(&event.pre_hash));
    }

    #[test]
    fn value_and_serde_value_agree_when_order_does_not_matter() {
        let text = r#"{"type": "ObjectEvent", "eventTime": "2024-03-01T10:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "ADD",
            "bizTransactionList": [{"bizTransaction": "urn:x:1", "type": "po"}]}"#;
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let json = Json::parse(text).unwrap();
        let ctx = Context::epcis();
        assert_eq!(
            event_hash(&value, &ctx).unwrap(),
            event_hash_json(&json, &ctx).unwrap()
        );
        // Written type first, the reference hashes it differently.
        let swapped = text.replace(
            r#"{"bizTransaction": "urn:x:1", "type": "po"}"#,
            r#"{"type": "po", "bizTransaction": "urn:x:1"}"#,
        );
        assert_ne!(
            event_hash_json(&Json::parse(&swapped).unwrap(), &ctx).unwrap(),
            event_hash_json(&json, &ctx).unwrap()
        );
    }

    #[test]
    fn events_the_reference_fails_on_are_errors() {
        let ctx = Context::epcis();
        for event in [
            r#"{"type": "ObjectEvent", "eventTime": "2024-03-01T10:00:00.9999Z"}"#,
            r#"{"type": "ObjectEvent", "eventTime": "2024-03-01T10:00:00Z", "ex:x": "Infinity"}"#,
            r#"{"type": "ObjectEvent", "bizTransactionList": [{"bizTransaction": "urn:x"}]}"#,
            r#"{"type": 7}"#,
        ] {
            assert!(
                matches!(
                    pre_hash_string_json(&Json::parse(event).unwrap(), &ctx),
                    Err(HashError::ReferenceFails(_))
                ),
                "{event}"
            );
        }
        assert!(matches!(
            pre_hash_string_json(&Json::parse("[1]").unwrap(), &ctx),
            Err(HashError::NotAnObject)
        ));
        assert!(matches!(
            document_hashes("{\"epcisBody\": {}}"),
            Err(HashError::NotADocument(_))
        ));
        assert!(matches!(document_hashes("{"), Err(HashError::Json(_))));
    }
}

#[cfg(test)]
mod bare_value_tests {
    use super::*;

    fn pre_hash_with(vocabulary: &[&str]) -> String {
        let mut context = Context::epcis();
        context.vocabulary = vocabulary.iter().map(|s| s.to_string()).collect();
        let event: Json = serde_json::from_str::<serde_json::Value>(
            r#"{"type":"ObjectEvent","eventTime":"2026-03-01T08:00:00.000Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","ex:note":"dupvalue"}"#,
        )
        .map(|v| Json::from(&v))
        .unwrap();
        pre_hash_string_json(&event, &context).unwrap()
    }

    #[test]
    fn a_bare_value_expands_to_the_one_vocabulary_iri_that_ends_in_it() {
        let one = "https://ref.gs1.org/cbv/Disp-dupvalue";
        let other = "https://example.org/voc/dupvalue";
        assert!(
            pre_hash_with(&[one]).contains(one),
            "{}",
            pre_hash_with(&[one])
        );
        // Two IRIs end in it: it stays as it is.
        let both = pre_hash_with(&[one, other]);
        assert!(!both.contains(one) && !both.contains(other), "{both}");
        // An IRI that merely ends with the same letters does not match.
        let unrelated = pre_hash_with(&["https://example.org/voc/xdupvalue"]);
        assert!(!unrelated.contains("xdupvalue"), "{unrelated}");
        // Adding to the vocabulary after a hash rebuilds the index.
        let mut context = Context::epcis();
        context.vocabulary.insert(one.to_string());
        let event = Json::from(
            &serde_json::json!({"type": "ObjectEvent", "action": "OBSERVE", "ex:note": "dupvalue"}),
        );
        assert!(
            pre_hash_string_json(&event, &context)
                .unwrap()
                .contains(one)
        );
        context.observe(&Json::from(
            &serde_json::json!({"bizStep": "https://ref.gs1.org/cbv/BizStep-dupvalue"}),
        ));
        assert_eq!(context.vocabulary.len(), 2, "{:?}", context.vocabulary);
        let after = pre_hash_string_json(&event, &context).unwrap();
        assert!(
            !after.contains(one) && after.contains("=dupvalue"),
            "{after}"
        );
    }
}
