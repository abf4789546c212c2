//! Reading an EPCIS document as a stream: its context, master data and events one at a time.
//!
//! serde visitors walk the document as `serde_json` reads it from a buffered reader, so that
//! each master-data element and each event is built as a [`Json`] value, handed to the caller
//! and dropped before the next one is read: memory is bounded by the largest element or event,
//! not the document (nor its header).

use std::cell::RefCell;
use std::fmt;
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::hash::Context;
use crate::json::Json;

/// One part of a document, in document order.
#[derive(Debug)]
pub enum Part {
    /// The `@context` value.
    Context(Json),
    /// A member of the `epcisHeader` other than its master data's vocabulary elements, as a
    /// header of that member alone (`{"sbdh:...": ...}`, `{"epcisMasterData": {"x": ...}}`).
    Header(Json),
    /// One element of a master-data vocabulary (`epcisHeader.epcisMasterData.vocabularyList[]
    /// .vocabularyElementList[]`), with the vocabulary's `type`.
    Vocabulary { kind: String, element: Json },
    /// An event of the event list, numbered from 0.
    Event(usize, Json),
}

/// Whether the reader goes on after a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop reading here: the document is not read further and not checked to its end.
    Stop,
}

impl Part {
    /// The part as a header alone: what the event-hash vocabulary pass observes (the reference
    /// scans the whole header; scanning each member, and each element at its place, finds the
    /// same IRIs).
    pub fn header_view(&self) -> Option<Json> {
        match self {
            Part::Header(h) => Some(h.clone()),
            Part::Vocabulary { kind, element } => Some(Json::Object(vec![(
                "epcisMasterData".into(),
                Json::Object(vec![(
                    "vocabularyList".into(),
                    Json::Array(vec![Json::Object(vec![
                        ("type".into(), Json::String(kind.clone())),
                        (
                            "vocabularyElementList".into(),
                            Json::Array(vec![element.clone()]),
                        ),
                    ])]),
                )]),
            )])),
            _ => None,
        }
    }
}

/// What the reader saw of a document.
#[derive(Debug, Clone, Default)]
pub struct DocumentInfo {
    /// The document's `type`: `EPCISDocument`, `EPCISQueryDocument`, or empty if absent.
    pub kind: String,
    /// Events read.
    pub events: usize,
    /// Whether the `epcisHeader` came after the `epcisBody`.
    pub header_after_body: bool,
    /// Whether the caller stopped the reading before the end.
    pub stopped: bool,
}

/// Why a document could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The text is not JSON (or ends early) at this place.
    #[error(
        "invalid JSON at line {line} column {column}, after {events_before} event(s): {message}"
    )]
    Json {
        line: usize,
        column: usize,
        message: String,
        events_before: usize,
    },
    /// JSON, but not an EPCIS document.
    #[error("not an EPCIS 2.0 document: {0}")]
    NotADocument(String),
    /// The caller stopped the reading.
    #[error("{0}")]
    Aborted(String),
    /// The input could not be read.
    #[error("cannot read the document: {0}")]
    Io(String),
}

/// Callback state shared by the visitors.
struct Reader<'a> {
    visit: &'a mut dyn FnMut(Part) -> Result<Flow, String>,
    /// Where the events of the list are observed as they stream, once it holds a context
    /// (the first pass's): then they are not built, and `visit` sees none of them.
    observe: Option<&'a RefCell<Option<Context>>>,
    info: DocumentInfo,
    body_seen: bool,
    list_seen: bool,
    /// Set when the callback refused a part (the serde error then only unwinds).
    aborted: Option<String>,
    /// Set when the document's shape is wrong.
    not_a_document: Option<String>,
}

impl Reader<'_> {
    fn emit<E: de::Error>(&mut self, part: Part) -> Result<(), E> {
        match (self.visit)(part) {
            Ok(Flow::Continue) => Ok(()),
            Ok(Flow::Stop) => {
                self.info.stopped = true;
                Err(E::custom("stopped by the caller"))
            }
            Err(reason) => {
                self.aborted = Some(reason.clone());
                Err(E::custom(reason))
            }
        }
    }

    fn wrong<E: de::Error>(&mut self, reason: String) -> E {
        self.not_a_document = Some(reason.clone());
        E::custom(reason)
    }
}

/// Reads a document, calling `visit` with its `@context`, each master-data element and other
/// member of its `epcisHeader`, and each event in turn (an `EPCISDocument`'s
/// `epcisBody.eventList` or single `epcisBody.event`, an `EPCISQueryDocument`'s
/// `epcisBody.queryResults.resultsBody.eventList`), until the end or until `visit` says
/// [`Flow::Stop`].
pub fn read_document<R: Read>(
    reader: R,
    visit: &mut dyn FnMut(Part) -> Result<Flow, String>,
) -> Result<DocumentInfo, StreamError> {
    read(reader, visit, None)
}

fn read<R: Read>(
    reader: R,
    visit: &mut dyn FnMut(Part) -> Result<Flow, String>,
    observe: Option<&RefCell<Option<Context>>>,
) -> Result<DocumentInfo, StreamError> {
    let mut state = Reader {
        visit,
        observe,
        info: DocumentInfo::default(),
        body_seen: false,
        list_seen: false,
        aborted: None,
        not_a_document: None,
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader));
    let result = DocumentSeed(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(reason) = state.aborted {
        return Err(StreamError::Aborted(reason));
    }
    if state.info.stopped {
        return Ok(state.info);
    }
    if let Some(reason) = state.not_a_document {
        return Err(StreamError::NotADocument(reason));
    }
    if let Err(e) = result {
        if e.is_io() {
            return Err(StreamError::Io(e.to_string()));
        }
        return Err(StreamError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
            events_before: state.info.events,
        });
    }
    if !matches!(
        state.info.kind.as_str(),
        "EPCISDocument" | "EPCISQueryDocument"
    ) {
        return Err(StreamError::NotADocument(if state.info.kind.is_empty() {
            "it has no \"type\" (EPCISDocument or EPCISQueryDocument)".into()
        } else {
            format!(
                "its type is {:?}, not EPCISDocument or EPCISQueryDocument",
                state.info.kind
            )
        }));
    }
    if !state.list_seen {
        return Err(StreamError::NotADocument(
            "it has no epcisBody.eventList (or queryResults.resultsBody.eventList)".into(),
        ));
    }
    Ok(state.info)
}

/// The first pass for the event hash: the document-wide context GS1's reference implementation
/// hashes every event with (the `@context`, and the vocabulary of the header and every event).
/// The context is for the events of this document only: the hash takes each event's own
/// vocabulary from what this pass observed of it.
///
/// Once the context is known, each event is observed as it streams, without being built.
pub fn hash_context<R: Read>(reader: R) -> Result<Context, StreamError> {
    let context: RefCell<Option<Context>> = RefCell::new(None);
    let mut pending: Vec<Json> = Vec::new();
    let mut contexts = 0;
    let mut visit = |part| {
        let mut context = context.borrow_mut();
        match part {
            Part::Context(c) => {
                contexts += 1;
                let mut ctx = Context::from_context(&c);
                for p in pending.drain(..) {
                    ctx.observe(&p);
                }
                *context = Some(ctx);
            }
            part => {
                let seen = match part {
                    Part::Event(_, e) => e,
                    other => other.header_view().unwrap_or(Json::Null),
                };
                match context.as_mut() {
                    Some(ctx) => ctx.observe(&seen),
                    // Parts before a late @context: observed once it is known (bounded by
                    // what a document puts before its context, normally nothing).
                    None => pending.push(seen),
                }
            }
        }
        Ok(Flow::Continue)
    };
    read(reader, &mut visit, Some(&context))?;
    let mut ctx = context
        .into_inner()
        .unwrap_or_else(|| Context::from_context(&Json::Null));
    for p in pending.drain(..) {
        ctx.observe(&p);
    }
    // Each event was observed alone, as the hash sees it, unless a second `@context` started
    // the vocabulary again: then each event's own is taken as it is hashed.
    if contexts <= 1 {
        ctx.mark_every_event_observed();
    }
    Ok(ctx)
}

struct DocumentSeed<'r, 'a>(&'r mut Reader<'a>);

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an EPCIS document (a JSON object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "@context" => {
                    let context: Json = map.next_value()?;
                    state.emit(Part::Context(context))?;
                }
                "type" => {
                    let kind: Json = map.next_value()?;
                    state.info.kind = kind.as_str().unwrap_or_default().to_string();
                    if !matches!(
                        state.info.kind.as_str(),
                        "EPCISDocument" | "EPCISQueryDocument"
                    ) {
                        let reason = format!(
                            "its type is {}, not EPCISDocument or EPCISQueryDocument",
                            kind
                        );
                        return Err(state.wrong(reason));
                    }
                }
                "epcisHeader" => {
                    state.info.header_after_body = state.body_seen;
                    map.next_value_seed(HeaderSeed {
                        reader: state,
                        level: Level::Header,
                        kind: None,
                    })?;
                }
                "epcisBody" => {
                    state.body_seen = true;
                    map.next_value_seed(BodySeed(state))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.wrong("it is a JSON array, not an object".into()))
    }
}

/// Where in the header a [`HeaderSeed`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// `epcisHeader`: an object.
    Header,
    /// `epcisMasterData`: an object.
    MasterData,
    /// `vocabularyList`: a list of vocabularies.
    Vocabularies,
    /// One vocabulary: an object with `type` and `vocabularyElementList`.
    Vocabulary,
    /// `vocabularyElementList`: a list of elements.
    Elements,
}

/// The header, read member by member: each vocabulary element is emitted on its own
/// ([`Part::Vocabulary`]); any other member as a header of that member alone ([`Part::Header`]).
/// A header of another shape than the standard's is read and passed on as it is.
struct HeaderSeed<'r, 'a> {
    reader: &'r mut Reader<'a>,
    level: Level,
    /// The vocabulary's type, for its elements.
    kind: Option<String>,
}

impl HeaderSeed<'_, '_> {
    /// A value found at this level, as a header of it alone (lists are transparent to the
    /// vocabulary scan, so an element's place in its list does not matter).
    fn wrap_self(level: Level, kind: Option<&str>, value: Json) -> Json {
        let one = |k: &str, v: Json| Json::Object(vec![(k.to_string(), v)]);
        match level {
            Level::Header => value,
            Level::MasterData => one("epcisMasterData", value),
            Level::Vocabularies | Level::Vocabulary => {
                one("epcisMasterData", one("vocabularyList", value))
            }
            Level::Elements => {
                let mut vocabulary = Vec::new();
                if let Some(kind) = kind {
                    vocabulary.push(("type".to_string(), Json::String(kind.to_string())));
                }
                vocabulary.push(("vocabularyElementList".to_string(), value));
                one(
                    "epcisMasterData",
                    one("vocabularyList", Json::Object(vocabulary)),
                )
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an epcisHeader")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let HeaderSeed {
            reader,
            level,
            mut kind,
        } = self;
        // Elements that came before their vocabulary's type wait for it (a document that
        // writes `type` after the list; normally none).
        let mut waiting: Vec<Json> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let next = match (level, key.as_str()) {
                (Level::Header, "epcisMasterData") => Some(Level::MasterData),
                (Level::MasterData, "vocabularyList") => Some(Level::Vocabularies),
                (Level::Vocabulary, "vocabularyElementList") => Some(Level::Elements),
                _ => None,
            };
            if let Some(next) = next {
                if next == Level::Elements && kind.is_none() {
                    let elements: Json = map.next_value()?;
                    match elements {
                        Json::Array(items) => waiting.extend(items),
                        other => waiting.push(other),
                    }
                    continue;
                }
                map.next_value_seed(HeaderSeed {
                    reader: &mut *reader,
                    level: next,
                    kind: kind.clone(),
                })?;
                continue;
            }
            let value: Json = map.next_value()?;
            if level == Level::Vocabulary && key == "type" {
                let name = value.as_str().unwrap_or_default().to_string();
                kind = Some(name.clone());
                for element in waiting.drain(..) {
                    reader.emit(Part::Vocabulary {
                        kind: name.clone(),
                        element,
                    })?;
                }
            }
            let part =
                HeaderSeed::wrap_self(level, kind.as_deref(), Json::Object(vec![(key, value)]));
            reader.emit(Part::Header(part))?;
        }
        // A vocabulary without a type: its elements are of no known kind.
        for element in waiting {
            reader.emit(Part::Vocabulary {
                kind: String::new(),
                element,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let HeaderSeed {
            reader,
            level,
            kind,
        } = self;
        match level {
            Level::Vocabularies => {
                while seq
                    .next_element_seed(HeaderSeed {
                        reader: &mut *reader,
                        level: Level::Vocabulary,
                        kind: None,
                    })?
                    .is_some()
                {}
            }
            Level::Elements => {
                let kind = kind.unwrap_or_default();
                while let Some(element) = seq.next_element::<Json>()? {
                    reader.emit(Part::Vocabulary {
                        kind: kind.clone(),
                        element,
                    })?;
                }
            }
            _ => {
                // A list where an object belongs: passed on as it is, for the hash.
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Json>()? {
                    items.push(item);
                }
                let part = HeaderSeed::wrap_self(level, kind.as_deref(), Json::Array(items));
                reader.emit(Part::Header(part))?;
            }
        }
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let part = HeaderSeed::wrap_self(
            self.level,
            self.kind.as_deref(),
            Json::String(v.to_string()),
        );
        self.reader.emit(Part::Header(part))
    }
    crate::json::scalars_hold_nothing!();
}

/// `epcisBody`, and inside it `queryResults` and `resultsBody`: objects whose `eventList` (or
/// `event`) holds the events.
struct BodySeed<'r, 'a>(&'r mut Reader<'a>);

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an epcisBody object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "eventList" => {
                    state.list_seen = true;
                    map.next_value_seed(ListSeed(state))?;
                }
                "event" => {
                    state.list_seen = true;
                    let event: Json = map.next_value()?;
                    let index = state.info.events;
                    state.info.events += 1;
                    state.emit(Part::Event(index, event))?;
                }
                "queryResults" | "resultsBody" => {
                    map.next_value_seed(BodySeed(&mut *state))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

struct ListSeed<'r, 'a>(&'r mut Reader<'a>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event list (a JSON array)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        loop {
            if let Some(observe) = state.observe
                && observe.borrow().is_some()
            {
                if seq.next_element_seed(ObserveSeed(observe))?.is_none() {
                    break;
                }
                state.info.events += 1;
                continue;
            }
            let Some(event) = seq.next_element::<Json>()? else {
                break;
            };
            let index = state.info.events;
            state.info.events += 1;
            state.emit(Part::Event(index, event))?;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self
            .0
            .wrong("its eventList is an object, not a list".into()))
    }
}

/// An event of the list observed into the first pass's context as it streams.
struct ObserveSeed<'c>(&'c RefCell<Option<Context>>);

impl<'de> DeserializeSeed<'de> for ObserveSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.borrow_mut().as_mut() {
            Some(context) => context.observe_streamed(d),
            None => d.deserialize_any(IgnoredAny).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(DocumentInfo, Vec<Part>), StreamError> {
        let mut parts = Vec::new();
        let info = read_document(text.as_bytes(), &mut |p| {
            parts.push(p);
            Ok(Flow::Continue)
        })?;
        Ok((info, parts))
    }

    #[test]
    fn reads_both_kinds_of_document_in_order() {
        let (info, parts) = read(
            r#"{"@context": "x", "type": "EPCISDocument", "epcisHeader": {"a": 1},
                "epcisBody": {"eventList": [{"n": 1}, {"n": 2}]}}"#,
        )
        .unwrap();
        assert_eq!(info.events, 2);
        assert!(!info.header_after_body);
        assert!(matches!(parts[0], Part::Context(_)));
        assert!(matches!(parts[1], Part::Header(_)));
        assert!(
            matches!(&parts[3], Part::Event(1, e) if e.get("n") == Some(&Json::Number("2".into())))
        );
        let (info, parts) = read(
            r#"{"type": "EPCISQueryDocument", "epcisBody": {"queryResults": {"queryName": "q",
                "resultsBody": {"eventList": [{"n": 1}]}}}}"#,
        )
        .unwrap();
        assert_eq!(info.kind, "EPCISQueryDocument");
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn says_where_a_broken_document_breaks() {
        let err = read(
            r#"{"type": "EPCISDocument", "epcisBody": {"eventList": [{"n": 1},
            {"n": "#,
        )
        .unwrap_err();
        match err {
            StreamError::Json {
                line,
                events_before,
                ..
            } => {
                assert_eq!(line, 2);
                assert_eq!(events_before, 1);
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            read(r#"{"type": "Invoice", "epcisBody": {"eventList": []}}"#),
            Err(StreamError::NotADocument(_))
        ));
        assert!(matches!(
            read(r#"{"type": "EPCISDocument"}"#),
            Err(StreamError::NotADocument(_))
        ));
        let (info, _) =
            read(r#"{"type": "EPCISDocument", "epcisBody": {"eventList": []}, "epcisHeader": {}}"#)
                .unwrap();
        assert!(info.header_after_body);
    }

    /// A reader that records how many bytes were read when the first event arrived.
    struct Counting<'a> {
        data: &'a [u8],
        at: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.data.len()).min(4096);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.at.set(self.at.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn reads_events_as_they_come() {
        let events = 200_000;
        let mut text = String::from(r#"{"type": "EPCISDocument", "epcisBody": {"eventList": ["#);
        for n in 0..events {
            if n > 0 {
                text.push(',');
            }
            text.push_str(&format!(r#"{{"type": "ObjectEvent", "n": {n}}}"#));
        }
        text.push_str("]}}");
        let at = std::rc::Rc::new(std::cell::Cell::new(0));
        let reader = Counting {
            data: text.as_bytes(),
            at: at.clone(),
        };
        let mut first_at = None;
        let mut next = 0usize;
        let info = read_document(reader, &mut |p| {
            if let Part::Event(i, e) = p {
                assert_eq!(i, next);
                assert_eq!(e.get("n"), Some(&Json::Number(i.to_string())));
                next += 1;
                first_at.get_or_insert(at.get());
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        assert_eq!(info.events, events);
        assert!(first_at.unwrap() < text.len() / 100, "{first_at:?}");
    }

    /// `f` of every event of a document, in order.
    fn each_event<T>(text: &str, mut f: impl FnMut(&Json) -> T) -> Vec<T> {
        let mut out = Vec::new();
        read_document(text.as_bytes(), &mut |p| {
            if let Part::Event(_, e) = p {
                out.push(f(&e));
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        out
    }

    #[test]
    fn the_two_passes_give_the_reference_hashes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "jsonld") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let expected = std::fs::read_to_string(path.with_extension("hashes")).unwrap();
            let context = hash_context(text.as_bytes()).unwrap();
            let hashes = each_event(&text, |e| {
                crate::hash::event_hash_json(e, &context).unwrap()
            });
            let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
            assert_eq!(hashes, expected, "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 5);
    }

    #[test]
    fn an_events_own_vocabulary_counts_however_the_contexts_are_placed() {
        // The note's bare `custom` expands to the one vocabulary IRI that ends in it, which
        // only this event's bizStep names.
        let event = r#"{"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE",
            "bizStep": "https://ref.gs1.org/cbv/BizStep-custom", "ex:note": "custom"}"#;
        let context = r#"["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"ex": "https://example.com/ns/"}]"#;
        let body = format!(r#""type": "EPCISDocument", "epcisBody": {{"eventList": [{event}]}}"#);
        for text in [
            format!(r#"{{"@context": {context}, {body}}}"#),
            // After the events: they wait for it.
            format!(r#"{{{body}, "@context": {context}}}"#),
            // Twice: the second starts the vocabulary again, so the first one's is lost.
            format!(r#"{{"@context": {context}, {body}, "@context": {context}}}"#),
        ] {
            let hashing = hash_context(text.as_bytes()).unwrap();
            let pre_hashes = each_event(&text, |e| {
                crate::hash::pre_hash_string_json(e, &hashing).unwrap()
            });
            assert_eq!(pre_hashes.len(), 1, "{text}");
            assert_eq!(
                pre_hashes[0]
                    .matches("=https://ref.gs1.org/cbv/BizStep-custom")
                    .count(),
                2,
                "{}",
                pre_hashes[0]
            );
        }
    }

    #[test]
    fn master_data_comes_one_element_at_a_time_and_hashes_as_the_whole_header() {
        let text = r#"{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                {"ex": "https://example.com/ns/"}],
            "type": "EPCISDocument",
            "epcisHeader": {"ex:note": "urn:example:note",
              "epcisMasterData": {"vocabularyList": [
                {"vocabularyElementList": [{"id": "urn:epc:id:sgln:4012345.00001.0",
                   "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": "Before its type"}]}],
                 "type": "urn:epcglobal:epcis:vtype:BusinessLocation"},
                {"type": "urn:epcglobal:epcis:vtype:Party", "vocabularyElementList": [
                  {"id": "urn:epc:id:pgln:4012345.00002", "attributes": [
                    {"id": "https://example.com/ns/kind", "attribute": "https://example.com/ns/Farm"}]},
                  {"id": "urn:epc:id:pgln:4012345.00003"}]}]}},
            "epcisBody": {"eventList": [{"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z",
              "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": ["urn:epc:id:sgtin:4012345.012345.1"],
              "bizStep": "Farm", "ex:kind": "Farm"}]}}"#;
        let (_, parts) = read(text).unwrap();
        let elements: Vec<(&str, &str)> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Vocabulary { kind, element } => Some((
                    kind.as_str(),
                    element.get("id").and_then(Json::as_str).unwrap(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            elements,
            [
                (
                    "urn:epcglobal:epcis:vtype:BusinessLocation",
                    "urn:epc:id:sgln:4012345.00001.0"
                ),
                (
                    "urn:epcglobal:epcis:vtype:Party",
                    "urn:epc:id:pgln:4012345.00002"
                ),
                (
                    "urn:epcglobal:epcis:vtype:Party",
                    "urn:epc:id:pgln:4012345.00003"
                ),
            ]
        );
        // No part holds the whole master data.
        assert!(parts.iter().all(|p| match p {
            Part::Header(h) => !h.to_string().contains("vocabularyElementList"),
            _ => true,
        }));
        let whole = Context::from_document(&serde_json::from_str::<Json>(text).unwrap());
        let streamed = hash_context(text.as_bytes()).unwrap();
        let event = parts
            .iter()
            .find_map(|p| match p {
                Part::Event(_, e) => Some(e.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            crate::hash::pre_hash_string_json(&event, &streamed).unwrap(),
            crate::hash::pre_hash_string_json(&event, &whole).unwrap()
        );
    }

    #[test]
    fn the_caller_can_stop_the_reading() {
        let text = r#"{"type": "EPCISDocument", "epcisHeader": {"epcisMasterData": {"vocabularyList": [
            {"type": "t", "vocabularyElementList": [{"id": "a"}]}]}},
            "epcisBody": {"eventList": [{"n": 1}, {"n": "#;
        let mut seen = 0;
        let info = read_document(text.as_bytes(), &mut |p| {
            seen += 1;
            Ok(match p {
                Part::Event(..) => Flow::Stop,
                _ => Flow::Continue,
            })
        })
        .unwrap();
        assert!(info.stopped);
        assert_eq!(seen, 3, "the type, the element, the first event");
    }
}
