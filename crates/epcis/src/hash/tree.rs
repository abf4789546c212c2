//! The reference implementation's event tree and the two passes that turn it into the pre-hash
//! string.
//!
//! The reference converts an event into a tree of `(name, value, children)` nodes, the shape an
//! XML event has: a JSON list becomes repeated children named after its key, a key ending in
//! `List` becomes a parent of children named without the suffix (`epcList` → `epc`), and the
//! elements of `bizTransactionList`, `sourceList` and `destinationList` become pairs of their
//! first two members in document order. It then walks the canonical property order, writing and
//! consuming what it finds; whatever is left (user extensions, `ilmd`, and the three pair lists,
//! which the order names but never matches) is written after it, sorted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::HashError;
use super::value::{canonize, fix_timestamp, is_time_field, py_str_of_json_number, py_strip};
use crate::json::Json;

/// One node: an element name, its text value (empty for a parent) and its children. Names and
/// values are the event's own text where the tree takes them as they are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Node<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) value: Cow<'a, str>,
    pub(crate) children: Vec<Item<'a>>,
}

/// A child: a node, or the pair a `bizTransactionList`, `sourceList` or `destinationList`
/// element becomes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Item<'a> {
    Node(Node<'a>),
    Pair(Box<(Node<'a>, Node<'a>)>),
}

/// The lists whose elements become pairs and are never matched by the property order.
const PAIR_LISTS: [&str; 3] = ["sourceList", "destinationList", "bizTransactionList"];

/// Object keys the reference skips everywhere.
const SKIPPED_KEYS: [&str; 3] = ["#text", "rdfs:comment", "comment"];

/// Top-level children left out of the hash.
const EXCLUDED: [&str; 4] = ["recordTime", "eventID", "type", "errorDeclaration"];

/// An entry of the canonical property order: a child name and the order of its own children.
pub(crate) struct Prop {
    name: &'static str,
    sub: Option<&'static [Prop]>,
}

const fn leaf(name: &'static str) -> Prop {
    Prop { name, sub: None }
}

const fn parent(name: &'static str, sub: &'static [Prop]) -> Prop {
    Prop {
        name,
        sub: Some(sub),
    }
}

const EPC: &[Prop] = &[leaf("epc")];
const QUANTITY_ELEMENT: &[Prop] = &[parent(
    "quantityElement",
    &[leaf("epcClass"), leaf("quantity"), leaf("uom")],
)];
/// The reference names `(type, bizTransaction)` (and the source and destination twins) as a
/// tuple, which no child ever equals: these lists are written by the second pass.
const NEVER_MATCHED: &[Prop] = &[];
const SENSOR_METADATA: &[Prop] = &[
    leaf("time"),
    leaf("startTime"),
    leaf("endTime"),
    leaf("deviceID"),
    leaf("deviceMetadata"),
    leaf("rawData"),
    leaf("dataProcessingMethod"),
    leaf("bizRules"),
];
const SENSOR_REPORT: &[Prop] = &[
    leaf("type"),
    leaf("exception"),
    leaf("deviceID"),
    leaf("deviceMetadata"),
    leaf("rawData"),
    leaf("dataProcessingMethod"),
    leaf("time"),
    leaf("microorganism"),
    leaf("chemicalSubstance"),
    leaf("value"),
    leaf("component"),
    leaf("stringValue"),
    leaf("booleanValue"),
    leaf("hexBinaryValue"),
    leaf("uriValue"),
    leaf("minValue"),
    leaf("maxValue"),
    leaf("meanValue"),
    leaf("sDev"),
    leaf("percRank"),
    leaf("percValue"),
    leaf("uom"),
    leaf("coordinateReferenceSystem"),
];

/// The reference implementation's `PROP_ORDER`. It differs from the README's table: the
/// `certificationInfo` comes right after `eventTimeZoneOffset`, `parentID` comes before
/// `epcList`, and `ilmd` is not in it at all (it is written with the user extensions).
pub(crate) const PROP_ORDER: &[Prop] = &[
    leaf("eventTime"),
    leaf("eventTimeZoneOffset"),
    leaf("certificationInfo"),
    leaf("parentID"),
    parent("epcList", EPC),
    parent("inputEPCList", EPC),
    parent("childEPCs", EPC),
    parent("quantityList", QUANTITY_ELEMENT),
    parent("childQuantityList", QUANTITY_ELEMENT),
    parent("inputQuantityList", QUANTITY_ELEMENT),
    parent("outputEPCList", EPC),
    parent("outputQuantityList", QUANTITY_ELEMENT),
    leaf("action"),
    leaf("transformationID"),
    leaf("bizStep"),
    leaf("disposition"),
    parent("persistentDisposition", &[leaf("set"), leaf("unset")]),
    parent("readPoint", &[leaf("id")]),
    parent("bizLocation", &[leaf("id")]),
    parent("bizTransactionList", NEVER_MATCHED),
    parent("sourceList", NEVER_MATCHED),
    parent("destinationList", NEVER_MATCHED),
    parent(
        "sensorElementList",
        &[parent(
            "sensorElement",
            &[
                parent("sensorMetadata", SENSOR_METADATA),
                parent("sensorReport", SENSOR_REPORT),
            ],
        )],
    ),
];

/// Builds the tree of one event: bare values expanded, namespace prefixes replaced.
pub(crate) struct Builder<'a> {
    /// The reference's namespace map: prefix → namespace IRI.
    pub(crate) namespaces: &'a BTreeMap<String, String>,
    /// Replaces a bare value by its unique vocabulary IRI, if it has one.
    pub(crate) expand_bare: &'a dyn Fn(&str) -> Option<String>,
}

impl Builder<'_> {
    /// A key with a known prefix becomes `{namespace}local`.
    fn key<'j>(&self, key: &'j str) -> Cow<'j, str> {
        match key
            .split_once(':')
            .and_then(|(prefix, rest)| Some((self.namespaces.get(prefix)?, rest)))
        {
            Some((namespace, rest)) => {
                let mut key = String::with_capacity(namespace.len() + 2 + rest.len());
                key.push('{');
                key.push_str(namespace);
                key.push('}');
                key.push_str(rest);
                Cow::Owned(key)
            }
            None => Cow::Borrowed(key),
        }
    }

    /// A string value: the bare-value expansion, then a known prefix becomes its namespace.
    fn string<'j>(&self, s: &'j str) -> Cow<'j, str> {
        let s = self.bare(s);
        match s
            .split_once(':')
            .and_then(|(prefix, rest)| Some((self.namespaces.get(prefix)?, rest)))
        {
            Some((namespace, rest)) => {
                let mut value = String::with_capacity(namespace.len() + rest.len());
                value.extend(namespace.chars().filter(|c| !matches!(c, '{' | '}')));
                value.push_str(rest);
                Cow::Owned(value)
            }
            None => s,
        }
    }

    /// A value after the bare-value expansion.
    fn bare<'j>(&self, s: &'j str) -> Cow<'j, str> {
        match (self.expand_bare)(s) {
            Some(iri) => Cow::Owned(iri),
            None => Cow::Borrowed(s),
        }
    }

    /// Python's `str()` of a scalar as the reference builds it.
    fn scalar<'j>(&self, json: &'j Json) -> Cow<'j, str> {
        match json {
            Json::String(s) => self.string(s),
            Json::Number(text) => Cow::Owned(py_str_of_json_number(text)),
            Json::Bool(true) => Cow::Borrowed("True"),
            Json::Bool(false) => Cow::Borrowed("False"),
            Json::Null => Cow::Borrowed("None"),
            Json::Array(_) | Json::Object(_) => Cow::Borrowed(""),
        }
    }

    /// The reference's `_json_to_py`.
    pub(crate) fn raw<'j>(&self, json: &'j Json) -> Node<'j> {
        match json {
            Json::Array(items) => Node {
                name: Cow::Borrowed(""),
                value: Cow::Borrowed(""),
                children: items.iter().map(|i| Item::Node(self.raw(i))).collect(),
            },
            Json::Object(members) => {
                // The name and a `#text` value are taken as the document has them, after the
                // bare-value expansion but without namespace replacement.
                let name = match json.get("type") {
                    Some(Json::String(s)) => self.bare(s),
                    _ => Cow::Borrowed(""),
                };
                let value = match json.get("#text") {
                    Some(Json::String(s)) => self.bare(s),
                    Some(other) => self.scalar(other),
                    None => Cow::Borrowed(""),
                };
                let mut children = Vec::new();
                for (key, member) in members {
                    if SKIPPED_KEYS.contains(&key.as_str()) || key.starts_with("@xmlns") {
                        continue;
                    }
                    let child = self.raw(member);
                    let key = self.key(key);
                    if let Json::Array(_) = member {
                        for element in child.children {
                            if let Item::Node(element) = element {
                                children.push(Item::Node(Node {
                                    name: key.clone(),
                                    value: element.value,
                                    children: element.children,
                                }));
                            }
                        }
                    } else {
                        children.push(Item::Node(Node {
                            name: key,
                            value: child.value,
                            children: child.children,
                        }));
                    }
                }
                let keeps_order = members.iter().any(|(k, _)| {
                    matches!(k.as_str(), "bizTransaction" | "source" | "destination")
                });
                if !keeps_order {
                    children.sort();
                }
                Node {
                    name,
                    value,
                    children,
                }
            }
            scalar => Node {
                name: Cow::Borrowed(""),
                value: self.scalar(scalar),
                children: Vec::new(),
            },
        }
    }
}

/// The reference's `deep_structure_correction`: the JSON shape turned into the XML shape.
pub(crate) fn correct(node: Node<'_>) -> Result<Node<'_>, HashError> {
    let Node {
        name,
        value,
        children,
    } = node;
    let mut rest = Vec::with_capacity(children.len());
    let mut lists: Vec<(Cow<'_, str>, Vec<Node<'_>>)> = Vec::new();
    for item in children {
        match item {
            Item::Node(child) if child.name.ends_with("List") => {
                let element = Node {
                    name: without_list(&child.name),
                    value: child.value,
                    children: child.children,
                };
                match lists.iter_mut().find(|(list, _)| *list == child.name) {
                    Some((_, elements)) => elements.push(element),
                    None => lists.push((child.name, vec![element])),
                }
            }
            other => rest.push(other),
        }
    }
    for (list, elements) in lists {
        let children = if PAIR_LISTS.contains(&&*list) {
            elements
                .into_iter()
                .map(|element| {
                    let mut members = element.children.into_iter();
                    match (members.next(), members.next()) {
                        (Some(Item::Node(a)), Some(Item::Node(b))) => {
                            Ok(Item::Pair(Box::new((a, b))))
                        }
                        _ => Err(HashError::ReferenceFails(format!(
                            "an element of {list} has fewer than two members (the reference \
                             fails on the whole document)"
                        ))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            elements.into_iter().map(Item::Node).collect()
        };
        rest.push(Item::Node(Node {
            name: list,
            value: Cow::Borrowed(""),
            children,
        }));
    }

    let mut child_epcs = Vec::new();
    rest.retain(|item| match item {
        Item::Node(n) if n.name == "childEPCs" => {
            child_epcs.push(Item::Node(Node {
                name: Cow::Borrowed("epc"),
                value: n.value.clone(),
                children: Vec::new(),
            }));
            false
        }
        _ => true,
    });
    if !child_epcs.is_empty() {
        rest.push(Item::Node(Node {
            name: Cow::Borrowed("childEPCs"),
            value: Cow::Borrowed(""),
            children: child_epcs,
        }));
    }

    let children = rest
        .into_iter()
        .map(|item| match item {
            Item::Node(n) if !PAIR_LISTS.contains(&&*n.name) => correct(n).map(Item::Node),
            other => Ok(other),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let name = match &*name {
        "inputEPC" | "outputEPC" => Cow::Borrowed("epc"),
        "inputQuantity" | "outputQuantity" | "childQuantity" => Cow::Borrowed("quantityElement"),
        "quantity" if !children.is_empty() => Cow::Borrowed("quantityElement"),
        _ => name,
    };
    Ok(Node {
        name,
        value,
        children,
    })
}

/// A list's name without its `List` suffix (which it has).
fn without_list<'a>(name: &Cow<'a, str>) -> Cow<'a, str> {
    match name {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..s.len() - 4]),
        Cow::Owned(s) => Cow::Owned(s[..s.len() - 4].to_owned()),
    }
}

/// The reference's `_gather_user_extensions`: below the top level, children named
/// `{namespace/}local` are taken out to be written after their parent's regular fields. A list
/// holding a name containing `eventTime` or `action` counts as the top level (so a readPoint
/// extension named `…transaction…` stays in place and its parent is written twice), and a
/// namespace must end in `/` to be recognised.
fn gather_user_extensions<'a>(list: &mut Vec<Item<'a>>) -> Vec<Item<'a>> {
    if list.len() <= 1 {
        return Vec::new();
    }
    let top_level = list.iter().any(|item| match item {
        Item::Node(n) => n.name.contains("eventTime") || n.name.contains("action"),
        // Python's `in` on the pair's first tuple compares its name and value for equality.
        Item::Pair(pair) => {
            let first = &pair.0;
            [&*first.name, &*first.value]
                .iter()
                .any(|s| *s == "eventTime" || *s == "action")
        }
    });
    if top_level {
        return Vec::new();
    }
    let (extensions, rest): (Vec<Item<'a>>, Vec<Item<'a>>) =
        std::mem::take(list).into_iter().partition(
            |item| matches!(item, Item::Node(n) if n.name.contains('{') && n.name.contains("/}")),
        );
    *list = rest;
    extensions
}

/// The reference's `_child_to_pre_hash_string`.
fn child_pre_hash(node: &mut Node<'_>, sub: Option<&[Prop]>) -> Result<String, HashError> {
    let grand = match sub {
        Some(order) => ordered(&mut node.children, order)?,
        None => String::new(),
    };
    let mut value = String::new();
    if !node.value.is_empty() {
        let stripped = py_strip(&node.value);
        value = if is_time_field(&node.name) {
            fix_timestamp(stripped)?
        } else {
            canonize(stripped)?
        };
    }
    if value.is_empty() && grand.is_empty() {
        return Ok(String::new());
    }
    let mut text = String::with_capacity(node.name.len() + 1 + value.len() + grand.len());
    text.push_str(&node.name);
    if !value.is_empty() {
        text.push('=');
        text.push_str(&value);
    }
    text.push_str(&grand);
    Ok(text)
}

/// The reference's `_recurse_through_children_in_order`: writes the children named in `order`,
/// same-named ones sorted, and removes the ones it has fully written.
pub(crate) fn ordered(list: &mut Vec<Item<'_>>, order: &[Prop]) -> Result<String, HashError> {
    let extensions = gather_user_extensions(list);
    let mut pre_hash = String::new();
    for prop in order {
        let mut values = Vec::new();
        let mut i = 0;
        while i < list.len() {
            let Item::Node(node) = &mut list[i] else {
                i += 1;
                continue;
            };
            if node.name != prop.name {
                i += 1;
                continue;
            }
            let text = child_pre_hash(node, prop.sub)?;
            if !text.is_empty() {
                values.push(text);
            }
            if node.children.is_empty() {
                list.remove(i);
            } else {
                i += 1;
            }
        }
        values.sort();
        pre_hash.extend(values);
    }
    if !extensions.is_empty() {
        pre_hash.push_str(&generic(&extensions)?);
    }
    Ok(pre_hash)
}

/// The reference's `should_sort`: the members of a pair keep their document order.
fn should_sort<'i, 'a: 'i>(mut nodes: impl Iterator<Item = &'i Item<'a>>) -> bool {
    !nodes.any(|item| {
        matches!(item, Item::Node(n) if matches!(&*n.name, "bizTransaction" | "source" | "destination"))
    })
}

/// One node written by the second pass: `name=value` and its children.
fn generic_node(node: &Node<'_>) -> Result<String, HashError> {
    let stripped = py_strip(&node.value);
    let mut text = node.name.clone().into_owned();
    if !stripped.is_empty() {
        text.push('=');
        text.push_str(&canonize(stripped)?);
    }
    text.push_str(&generic(&node.children)?);
    Ok(text)
}

/// The reference's `_generic_child_list_to_prehash_string`: every child written, the results
/// sorted unless they are the two members of a pair.
pub(crate) fn generic(items: &[Item<'_>]) -> Result<String, HashError> {
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Node(node) => values.push(generic_node(node)?),
            Item::Pair(pair) => {
                let (a, b) = (&pair.0, &pair.1);
                let mut members = [generic_node(a)?, generic_node(b)?];
                let named =
                    |n: &Node<'_>| matches!(&*n.name, "bizTransaction" | "source" | "destination");
                if !(named(a) || named(b)) {
                    members.sort();
                }
                values.push(members.concat());
            }
        }
    }
    if items.len() > 1 && should_sort(items.iter()) {
        values.sort();
    }
    Ok(values.concat())
}

/// The pre-hash string of a corrected event tree.
pub(crate) fn pre_hash(root: Node<'_>) -> Result<String, HashError> {
    let Node {
        name, mut children, ..
    } = root;
    let ordered_part = ordered(&mut children, PROP_ORDER)?;
    let leftover: Vec<Item> = children
        .into_iter()
        .filter(|item| !matches!(item, Item::Node(n) if EXCLUDED.contains(&&*n.name)))
        .collect();
    let rest = if leftover.is_empty() {
        String::new()
    } else {
        generic(&leftover)?
    };
    Ok(format!("eventType={name}{ordered_part}{rest}"))
}
