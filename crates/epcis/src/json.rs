//! An order-preserving JSON value.
//!
//! `serde_json::Value` keeps object members in a sorted map unless serde_json's `preserve_order`
//! feature is on, and the workspace does not turn it on (it would change every other crate's JSON).
//! The CBV 2.0 event hash, as GS1's reference implementation computes it, depends on the order in
//! which a document writes the `type` and the `bizTransaction` (or `source`, `destination`) of a
//! list element, so the hash needs the document's own order. [`Json`] keeps it, and keeps numbers
//! as the text the document wrote.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};

/// The key serde_json uses to pass a number through a map when its `arbitrary_precision` feature is
/// on (it is, in this workspace).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A JSON value that keeps object members in document order and numbers as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as the text the document wrote (for example `1500.50` or `1e3`).
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, with its members in document order. A repeated key keeps the position of its
    /// first occurrence and the value of its last, as Python's `json` module does.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text, keeping member order and number text.
    pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The value of an object member, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members in document order, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }
}

impl From<&serde_json::Value> for Json {
    /// Converts a `serde_json::Value`. Object members come in the order the `Value` holds them:
    /// sorted by key unless serde_json's `preserve_order` feature is on.
    fn from(value: &serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            serde_json::Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::from(v)))
                    .collect(),
            ),
        }
    }
}

impl Serialize for Json {
    /// Writes the value back with its members in order and its numbers as written, so that
    /// `serde_json::to_writer` (compact or pretty) reproduces what was read.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            // serde_json (with `arbitrary_precision`) writes this struct as the raw number text.
            Json::Number(text) => {
                let mut number = serializer.serialize_struct(NUMBER_TOKEN, 1)?;
                number.serialize_field(NUMBER_TOKEN, text)?;
                number.end()
            }
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl fmt::Display for Json {
    /// Compact JSON text, members in order, numbers as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// The scalar methods of a `Visitor<Value = ()>` that reads values only for what they hold
/// inside: a scalar is read and holds nothing.
macro_rules! scalars_hold_nothing {
    () => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    };
}
pub(crate) use scalars_hold_nothing;

/// Adds a member, replacing the value of an earlier member with the same key in place.
fn push_member(members: &mut Vec<(String, Json)>, key: String, value: Json) {
    match members.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => members.push((key, value)),
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        // Exponent notation always marks the text as a float, and it round-trips exactly.
        Ok(Json::Number(format!("{v:e}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Json::Object(members));
        };
        if first == NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return Ok(Json::Number(text));
        }
        let value = map.next_value()?;
        push_member(&mut members, first, value);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            push_member(&mut members, key, value);
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_member_order_and_number_text() {
        let json = Json::parse(r#"{"b": 1.50, "a": [true, null, "x"], "c": 12345678901234567890}"#)
            .unwrap();
        let members = json.as_object().unwrap();
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(json.get("b"), Some(&Json::Number("1.50".into())));
        assert_eq!(
            json.get("c"),
            Some(&Json::Number("12345678901234567890".into()))
        );
        assert_eq!(
            json.get("a"),
            Some(&Json::Array(vec![
                Json::Bool(true),
                Json::Null,
                Json::String("x".into())
            ]))
        );
    }

    #[test]
    fn writes_back_what_it_read() {
        let text =
            r#"{"z":1.50,"a":[true,null,"x\"y"],"c":12345678901234567890,"e":-0.000,"o":{}}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json.to_string(), text);
        assert_eq!(Json::parse(&json.to_string()).unwrap(), json);
    }

    #[test]
    fn repeated_key_keeps_first_position_and_last_value() {
        let json = Json::parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(
            json,
            Json::Object(vec![
                ("a".into(), Json::Number("3".into())),
                ("b".into(), Json::Number("2".into())),
            ])
        );
    }

    #[test]
    fn converts_from_serde_value() {
        let value: serde_json::Value = serde_json::from_str(r#"{"q": 2.0, "s": "x"}"#).unwrap();
        let json = Json::from(&value);
        assert_eq!(json.get("q"), Some(&Json::Number("2.0".into())));
        assert_eq!(json.get("s").and_then(Json::as_str), Some("x"));
    }

    #[test]
    fn malformed_text_is_an_error() {
        assert!(Json::parse("{\"a\": }").is_err());
        assert!(Json::parse("NaN").is_err());
    }
}
