//! Reading an EPCIS document as a stream: its context, header and events one at a time.
//!
//! serde visitors walk the document as `serde_json` reads it from a buffered reader, so that
//! each event is built as a [`Json`] value, handed to the caller and dropped before the next
//! one is read: memory is bounded by the largest event, not the document.

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
    /// The `epcisHeader` value.
    Header(Json),
    /// An event of the event list, numbered from 0.
    Event(usize, Json),
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
    visit: &'a mut dyn FnMut(Part) -> Result<(), String>,
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
        (self.visit)(part).map_err(|reason| {
            self.aborted = Some(reason.clone());
            E::custom(reason)
        })
    }

    fn wrong<E: de::Error>(&mut self, reason: String) -> E {
        self.not_a_document = Some(reason.clone());
        E::custom(reason)
    }
}

/// Reads a document, calling `visit` with its `@context`, its `epcisHeader` and each event in
/// turn (an `EPCISDocument`'s `epcisBody.eventList` or single `epcisBody.event`, an
/// `EPCISQueryDocument`'s `epcisBody.queryResults.resultsBody.eventList`).
pub fn read_document<R: Read>(
    reader: R,
    visit: &mut dyn FnMut(Part) -> Result<(), String>,
) -> Result<DocumentInfo, StreamError> {
    let mut state = Reader {
        visit,
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
pub fn hash_context<R: Read>(reader: R) -> Result<Context, StreamError> {
    let mut context: Option<Context> = None;
    let mut pending: Vec<Json> = Vec::new();
    read_document(reader, &mut |part| {
        match part {
            Part::Context(c) => {
                let mut ctx = Context::from_context(&c);
                for p in pending.drain(..) {
                    ctx.observe(&p);
                }
                context = Some(ctx);
            }
            Part::Header(h) | Part::Event(_, h) => match context.as_mut() {
                Some(ctx) => ctx.observe(&h),
                // Parts before a late @context: observed once it is known (bounded by what a
                // document puts before its context, normally nothing).
                None => pending.push(h),
            },
        }
        Ok(())
    })?;
    let mut ctx = context.unwrap_or_else(|| Context::from_context(&Json::Null));
    for p in pending.drain(..) {
        ctx.observe(&p);
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
                    let header: Json = map.next_value()?;
                    state.info.header_after_body = state.body_seen;
                    state.emit(Part::Header(header))?;
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
        while let Some(event) = seq.next_element::<Json>()? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(DocumentInfo, Vec<Part>), StreamError> {
        let mut parts = Vec::new();
        let info = read_document(text.as_bytes(), &mut |p| {
            parts.push(p);
            Ok(())
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
            Ok(())
        })
        .unwrap();
        assert_eq!(info.events, events);
        assert!(first_at.unwrap() < text.len() / 100, "{first_at:?}");
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
            let mut hashes = Vec::new();
            read_document(text.as_bytes(), &mut |p| {
                if let Part::Event(_, e) = p {
                    hashes.push(crate::hash::event_hash_json(&e, &context).unwrap());
                }
                Ok(())
            })
            .unwrap();
            let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
            assert_eq!(hashes, expected, "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 5);
    }
}
