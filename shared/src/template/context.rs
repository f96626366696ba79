//! The values a template sees, with Liquid's lookup made lenient: an absent key is `nil`
//! (so `| default:` works and `{{ missing }}` renders empty) instead of an error.
//!
//! The `liquid` crate raises "Unknown variable" / "Unknown index" when a path is absent,
//! even under `default` (upstream issue 477). Rather than rewrite templates, the context
//! itself answers every lookup: objects return `nil` for keys they lack, and `nil` behaves
//! as an empty object, so `user.attributes.email` on an event without a user is `nil`.

use std::fmt;

use liquid_core::model::{
    ArrayView, DisplayCow, KString, KStringCow, ObjectView, ScalarCow, State, Value, ValueView,
};
use ref_cast::RefCast;
use serde_json::Value as J;

static NIL: Node<'static> = Node::Nil;
static EMPTY: Object<'static> = Object(Fields(Vec::new()));

/// A context value. The event's JSON is seen where it lies, and the few values around
/// it borrow their text: building the context of a render copies nothing of the event.
#[derive(Debug, Clone)]
pub(crate) enum Node<'a> {
    Nil,
    Scalar(ScalarCow<'a>),
    Object(Object<'a>),
    /// An object of the event's JSON (`data`, `user.attributes`).
    Json(&'a JsonObject),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Object<'a>(pub Fields<'a>);

/// The few named values of a context object (at most five), kept sorted by name as a
/// map would iterate them. A render builds several, and a search of five entries costs
/// less than building a `BTreeMap` (`cargo bench -p deliver --bench throughput`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields<'a>(Vec<(&'a str, Node<'a>)>);

impl<'a> Fields<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets `key`, in its place.
    pub(crate) fn insert(&mut self, key: &'a str, value: Node<'a>) {
        match self.0.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&&'a str, &Node<'a>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    fn keys(&self) -> impl Iterator<Item = &&'a str> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &Node<'a>> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<'a, const N: usize> From<[(&'a str, Node<'a>); N]> for Fields<'a> {
    /// The entries sorted by name; of one name given twice, the last.
    fn from(entries: [(&'a str, Node<'a>); N]) -> Fields<'a> {
        let mut fields = Fields(Vec::with_capacity(N));
        for (k, v) in entries {
            fields.insert(k, v);
        }
        fields
    }
}

/// A JSON value seen as a Liquid value: `null` is nil, numbers are integers where they
/// fit and floats otherwise, and looking into an object is lenient as [`Object`] is.
/// `repr(transparent)` over the value, so a `&Value` is a `&Json` (`RefCast`).
#[derive(Debug, RefCast)]
#[repr(transparent)]
struct Json(J);

/// A JSON object, as [`Json`] sees one.
#[derive(Debug, RefCast)]
#[repr(transparent)]
pub(crate) struct JsonObject(serde_json::Map<String, J>);

/// A JSON array, as [`Json`] sees one.
#[derive(Debug, RefCast)]
#[repr(transparent)]
struct JsonArray(Vec<J>);

impl<'a> Node<'a> {
    pub(crate) fn str(s: &'a str) -> Node<'a> {
        Node::Scalar(ScalarCow::new(s))
    }

    pub(crate) fn string(s: String) -> Node<'a> {
        Node::Scalar(ScalarCow::new(s))
    }
}

impl<'a> Node<'a> {
    pub(crate) fn json(map: &'a serde_json::Map<String, J>) -> Node<'a> {
        Node::Json(JsonObject::ref_cast(map))
    }
}

/// Renders an owned liquid value where a borrowed one is not at hand.
struct Rendered(Value);

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.render())
    }
}

struct Sourced(Value);

impl fmt::Display for Sourced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.source())
    }
}

/// The part of `ValueView` the collections share (each is a tuple struct over a
/// collection with `is_empty`): printed and quoted as Liquid prints its own values,
/// always truthy, empty when it holds nothing.
macro_rules! collection_view {
    ($type_name:literal) => {
        fn as_debug(&self) -> &dyn fmt::Debug {
            self
        }
        fn render(&self) -> DisplayCow<'_> {
            DisplayCow::Owned(Box::new(Rendered(self.to_value())))
        }
        fn source(&self) -> DisplayCow<'_> {
            DisplayCow::Owned(Box::new(Sourced(self.to_value())))
        }
        fn type_name(&self) -> &'static str {
            $type_name
        }
        fn query_state(&self, state: State) -> bool {
            match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => self.0.is_empty(),
            }
        }
        fn to_kstr(&self) -> KStringCow<'_> {
            KStringCow::from_string(self.render().to_string())
        }
    };
}

impl ValueView for Node<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        match self {
            Node::Nil => DisplayCow::Borrowed(&""),
            Node::Scalar(s) => s.render(),
            Node::Object(o) => o.render(),
            Node::Json(o) => o.render(),
        }
    }

    fn source(&self) -> DisplayCow<'_> {
        match self {
            Node::Nil => DisplayCow::Borrowed(&"nil"),
            Node::Scalar(s) => s.source(),
            Node::Object(o) => o.source(),
            Node::Json(o) => o.source(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Node::Nil => "nil",
            Node::Scalar(s) => s.type_name(),
            Node::Object(_) | Node::Json(_) => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        match self {
            Node::Nil => !matches!(state, State::Truthy),
            Node::Scalar(s) => s.query_state(state),
            Node::Object(o) => o.query_state(state),
            Node::Json(o) => o.query_state(state),
        }
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        match self {
            Node::Nil => KStringCow::from_static(""),
            Node::Scalar(s) => s.to_kstr(),
            other => KStringCow::from_string(other.render().to_string()),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Nil => Value::Nil,
            Node::Scalar(s) => Value::Scalar(s.clone().into_owned()),
            Node::Object(o) => o.to_value(),
            Node::Json(o) => o.to_value(),
        }
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Node::Scalar(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            Node::Object(o) => Some(o),
            Node::Json(o) => Some(*o),
            // Looking into nothing finds nothing, not an error.
            Node::Nil => Some(&EMPTY),
            Node::Scalar(_) => None,
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Node::Nil)
    }
}

impl Json {
    /// The scalar a JSON scalar is to Liquid.
    fn scalar(&self) -> Option<ScalarCow<'_>> {
        match &self.0 {
            J::Bool(b) => Some(ScalarCow::new(*b)),
            J::Number(n) => Some(match n.as_i64() {
                Some(i) => ScalarCow::new(i),
                None => ScalarCow::new(n.as_f64().unwrap_or(0.0)),
            }),
            J::String(s) => Some(ScalarCow::new(s.as_str())),
            J::Null | J::Array(_) | J::Object(_) => None,
        }
    }

    fn of(value: &J) -> &dyn ValueView {
        Json::ref_cast(value)
    }
}

impl ValueView for Json {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        match &self.0 {
            J::Null => DisplayCow::Borrowed(&""),
            J::String(s) => DisplayCow::Borrowed(s),
            // Numbers, booleans and collections print as Liquid prints its own.
            _ => DisplayCow::Owned(Box::new(Rendered(self.to_value()))),
        }
    }
    fn source(&self) -> DisplayCow<'_> {
        match &self.0 {
            J::Null => DisplayCow::Borrowed(&"nil"),
            _ => DisplayCow::Owned(Box::new(Sourced(self.to_value()))),
        }
    }
    fn type_name(&self) -> &'static str {
        match &self.0 {
            J::Null => "nil",
            J::Array(_) => "array",
            J::Object(_) => "object",
            _ => self.scalar().map_or("nil", |s| s.type_name()),
        }
    }
    fn query_state(&self, state: State) -> bool {
        match &self.0 {
            J::Null => !matches!(state, State::Truthy),
            J::Array(items) => JsonArray::ref_cast(items).query_state(state),
            J::Object(map) => JsonObject::ref_cast(map).query_state(state),
            _ => self.scalar().is_some_and(|s| s.query_state(state)),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        match &self.0 {
            J::Null => KStringCow::from_static(""),
            J::String(s) => KStringCow::from_ref(s),
            J::Bool(_) | J::Number(_) => self
                .scalar()
                .map_or_else(KStringCow::default, |s| s.to_kstr().into_owned().into()),
            J::Array(_) | J::Object(_) => KStringCow::from_string(self.render().to_string()),
        }
    }
    fn to_value(&self) -> Value {
        match &self.0 {
            J::Null => Value::Nil,
            J::Array(items) => JsonArray::ref_cast(items).to_value(),
            J::Object(map) => JsonObject::ref_cast(map).to_value(),
            _ => self
                .scalar()
                .map_or(Value::Nil, |s| Value::Scalar(s.into_owned())),
        }
    }
    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        self.scalar()
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        match &self.0 {
            J::Array(items) => Some(JsonArray::ref_cast(items)),
            _ => None,
        }
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        match &self.0 {
            J::Object(map) => Some(JsonObject::ref_cast(map)),
            // Looking into nothing finds nothing, not an error.
            J::Null => Some(&EMPTY),
            _ => None,
        }
    }
    fn is_nil(&self) -> bool {
        self.0.is_null()
    }
}

impl ValueView for JsonArray {
    collection_view!("array");

    fn to_value(&self) -> Value {
        Value::Array(self.0.iter().map(|v| Json::of(v).to_value()).collect())
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        Some(self)
    }
}

impl ArrayView for JsonArray {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.len() as i64
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.0.iter().map(Json::of))
    }
    fn contains_key(&self, index: i64) -> bool {
        self.index(index).is_some()
    }
    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        Some(self.index(index).map_or(&NIL as &dyn ValueView, Json::of))
    }
}

impl JsonArray {
    fn index(&self, index: i64) -> Option<&J> {
        let len = self.0.len() as i64;
        let i = if index < 0 { len + index } else { index };
        usize::try_from(i).ok().and_then(|i| self.0.get(i))
    }
}

impl ValueView for JsonObject {
    collection_view!("object");

    fn to_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (KString::from_ref(k), Json::of(v).to_value()))
                .collect(),
        )
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for JsonObject {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.0.keys().map(|k| KStringCow::from_ref(k)))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.0.values().map(Json::of))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.0
                .iter()
                .map(|(k, v)| (KStringCow::from_ref(k), Json::of(v))),
        )
    }
    /// As [`Object`]'s: every key exists, the absent ones are `nil`.
    fn contains_key(&self, _index: &str) -> bool {
        true
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        lenient(self.0.get(index).map(Json::of), index)
    }
}

impl ValueView for Object<'_> {
    collection_view!("object");

    fn to_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (KString::from_ref(k), v.to_value()))
                .collect(),
        )
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for Object<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.0.keys().map(|k| KStringCow::from_ref(k)))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.0.values().map(|v| v as &dyn ValueView))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.0
                .iter()
                .map(|(k, v)| (KStringCow::from_ref(k), v as &dyn ValueView)),
        )
    }
    /// Every key "exists"; the absent ones are `nil`. Liquid asks this of the globals
    /// before it looks a root variable up. `assign` and loop variables live in frames
    /// above the globals, so they still shadow correctly.
    fn contains_key(&self, _index: &str) -> bool {
        true
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        lenient(self.0.get(index).map(|v| v as &dyn ValueView), index)
    }
}

/// An object's answer for `index`: what it holds, else `nil`, except `size`, which is
/// left to Liquid (it answers it for every object).
fn lenient<'s>(found: Option<&'s dyn ValueView>, index: &str) -> Option<&'s dyn ValueView> {
    match found {
        Some(v) => Some(v),
        None if index == "size" => None,
        None => Some(&NIL),
    }
}
