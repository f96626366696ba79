//! The values a template sees, with Liquid's lookup made lenient: an absent key is `nil`
//! (so `| default:` works and `{{ missing }}` renders empty) instead of an error.
//!
//! The `liquid` crate raises "Unknown variable" / "Unknown index" when a path is absent,
//! even under `default` (upstream issue 477). Rather than rewrite templates, the context
//! itself answers every lookup: objects return `nil` for keys they lack, and `nil` behaves
//! as an empty object, so `user.attributes.email` on an event without a user is `nil`.

use std::collections::BTreeMap;
use std::fmt;

use liquid_core::model::{
    ArrayView, DisplayCow, KString, KStringCow, ObjectView, ScalarCow, State, Value, ValueView,
};

static NIL: Node<'static> = Node::Nil;
static EMPTY: Object<'static> = Object(BTreeMap::new());

/// A context value. Strings and keys borrow from the event: building the context of a
/// render copies no text.
#[derive(Debug, Clone)]
pub(crate) enum Node<'a> {
    Nil,
    Scalar(ScalarCow<'a>),
    Array(Array<'a>),
    Object(Object<'a>),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Array<'a>(pub Vec<Node<'a>>);

#[derive(Debug, Clone, Default)]
pub(crate) struct Object<'a>(pub BTreeMap<&'a str, Node<'a>>);

impl<'a> Node<'a> {
    pub(crate) fn str(s: &'a str) -> Node<'a> {
        Node::Scalar(ScalarCow::new(s))
    }

    pub(crate) fn string(s: String) -> Node<'a> {
        Node::Scalar(ScalarCow::new(s))
    }
}

impl<'a> From<&'a serde_json::Value> for Node<'a> {
    fn from(v: &'a serde_json::Value) -> Node<'a> {
        use serde_json::Value as J;
        match v {
            J::Null => Node::Nil,
            J::Bool(b) => Node::Scalar(ScalarCow::new(*b)),
            J::Number(n) => match n.as_i64() {
                Some(i) => Node::Scalar(ScalarCow::new(i)),
                None => Node::Scalar(ScalarCow::new(n.as_f64().unwrap_or(0.0))),
            },
            J::String(s) => Node::str(s),
            J::Array(items) => Node::Array(Array(items.iter().map(Node::from).collect())),
            J::Object(map) => Node::Object(Object::from(map)),
        }
    }
}

impl<'a> From<&'a serde_json::Map<String, serde_json::Value>> for Object<'a> {
    fn from(map: &'a serde_json::Map<String, serde_json::Value>) -> Object<'a> {
        Object(
            map.iter()
                .map(|(k, v)| (k.as_str(), Node::from(v)))
                .collect(),
        )
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

impl ValueView for Node<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        match self {
            Node::Nil => DisplayCow::Borrowed(&""),
            Node::Scalar(s) => s.render(),
            Node::Array(a) => a.render(),
            Node::Object(o) => o.render(),
        }
    }

    fn source(&self) -> DisplayCow<'_> {
        match self {
            Node::Nil => DisplayCow::Borrowed(&"nil"),
            Node::Scalar(s) => s.source(),
            Node::Array(a) => a.source(),
            Node::Object(o) => o.source(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Node::Nil => "nil",
            Node::Scalar(s) => s.type_name(),
            Node::Array(_) => "array",
            Node::Object(_) => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        match self {
            Node::Nil => !matches!(state, State::Truthy),
            Node::Scalar(s) => s.query_state(state),
            Node::Array(a) => a.query_state(state),
            Node::Object(o) => o.query_state(state),
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
            Node::Array(a) => a.to_value(),
            Node::Object(o) => o.to_value(),
        }
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Node::Scalar(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Node::Array(a) => Some(a),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            Node::Object(o) => Some(o),
            // Looking into nothing finds nothing, not an error.
            Node::Nil => Some(&EMPTY),
            Node::Scalar(_) | Node::Array(_) => None,
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Node::Nil)
    }
}

impl ValueView for Array<'_> {
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
        "array"
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
    fn to_value(&self) -> Value {
        Value::Array(self.0.iter().map(ValueView::to_value).collect())
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        Some(self)
    }
}

impl ArrayView for Array<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.len() as i64
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.0.iter().map(|v| v as &dyn ValueView))
    }
    fn contains_key(&self, index: i64) -> bool {
        self.index(index).is_some()
    }
    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        Some(
            self.index(index)
                .map_or(&NIL as &dyn ValueView, |v| v as &dyn ValueView),
        )
    }
}

impl Array<'_> {
    fn index(&self, index: i64) -> Option<&Node<'_>> {
        let len = self.0.len() as i64;
        let i = if index < 0 { len + index } else { index };
        usize::try_from(i)
            .ok()
            .and_then(|i| self.0.as_slice().get(i))
    }
}

impl ValueView for Object<'_> {
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
        "object"
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
        match self.0.get(index) {
            Some(v) => Some(v),
            // Leave `size` to Liquid, which answers it for every object.
            None if index == "size" => None,
            None => Some(&NIL),
        }
    }
}
