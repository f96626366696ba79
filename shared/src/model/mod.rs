//! The domain's data: what a webhook is, what an event is, what travels on the queue, and
//! what an attempt records. Request types (`*Input`) are lenient about absence so that
//! validation can name the missing field; stored types are what validation produced.

pub mod event;
mod exact_numbers;
mod task;
mod webhook;

pub use event::{Event, EventInput, MAX_EVENT_BYTES, User};
pub use task::{Attempt, AttemptStatus, Delivery, DeliveryStatus, DeliveryTask, TASK_VERSION};
pub use webhook::{
    Auth, AuthInput, BodyTemplate, DisabledReason, HttpMethod, LocaleVariant, SigningSecrets,
    Webhook, WebhookInput, WebhookSpec, WebhookView, check_signing_secret, is_sensitive_header,
    mask_secret, sends_back_a_masked_secret, shown_header_value,
};

use crate::error::FieldError;
pub use object_only::optional as optional_object;

/// Decodes a JSON request body into `T`, naming the offending field on a type error.
/// Every body is a JSON object: serde would otherwise read an array as a struct's fields
/// in order, and answer with a puzzling error about `[0]`.
pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(FieldError::invalid("", "the body must be a JSON object"));
    }
    // One walk over the whole document finds duplicated keys, and syntax errors (nesting
    // deeper than 128 levels among them) wherever they are, even under a field of the
    // wrong type that the typed decoding below would stop at.
    match duplicate_key::find(bytes) {
        Ok(()) => {}
        Err(duplicate_key::Found::Duplicate(path)) => {
            return Err(FieldError::invalid(
                path,
                "is given twice in one JSON object",
            ));
        }
        Err(duplicate_key::Found::Malformed(e)) => {
            return Err(FieldError::new(
                "malformed_json",
                "",
                format!("the body is not valid JSON: {e}"),
            ));
        }
    }
    if let Some((path, number)) = exact_numbers::first_inexact(bytes) {
        return Err(FieldError::invalid(
            path,
            format!(
                "the number {number} would not arrive as sent (a JSON number is kept as a \
                 64-bit integer or a double): send it as a string"
            ),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            FieldError::new(
                "malformed_json",
                "",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            let field = if path == "." { String::new() } else { path };
            FieldError::invalid(field, clean_serde_message(&inner.to_string()))
        }
    })?;
    de.end().map_err(|e| {
        FieldError::new(
            "malformed_json",
            "",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// serde's derive reads a struct, and an internally tagged enum, from a JSON array too
/// (by position, or with the tag first), so `"user": [null, null]` would pass for a user.
/// Request bodies take JSON objects only: nested struct and enum fields deserialize through
/// these (`#[serde(default, deserialize_with = "…")]`).
pub(crate) mod object_only {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    /// `T`, from an object only.
    pub struct Object<T>(pub T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
        }
    }

    /// An optional `T`: absent or `null` is `None`, an object is `Some`.
    pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Ok(Option::<Object<T>>::deserialize(d)?.map(|Object(t)| t))
    }

    /// Like [`optional`], telling an explicit `null` (`Some(None)`) from absence (`None`,
    /// through `#[serde(default)]`).
    pub fn explicit_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        optional(d).map(Some)
    }

    /// An optional map whose values are objects.
    pub fn optional_map<'de, D, T>(
        d: D,
    ) -> Result<Option<std::collections::BTreeMap<String, T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        let map = Option::<std::collections::BTreeMap<String, Object<T>>>::deserialize(d)?;
        Ok(map.map(|m| m.into_iter().map(|(k, Object(v))| (k, v)).collect()))
    }
}

/// serde keeps the last of a map's duplicated keys (and refuses them only for a struct's
/// fields), so `{"headers": {"X-A": "1", "X-A": "2"}}` would pass with one of them. A key
/// given twice is ambiguous, and readers that keep the first would see another request:
/// request bodies may not have one anywhere.
mod duplicate_key {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    pub(super) enum Segment {
        Key(String),
        Index(usize),
    }

    /// Walks a document; on a duplicated key, leaves the path in `found` and stops.
    struct Walk<'a> {
        path: &'a RefCell<Vec<Segment>>,
        found: &'a RefCell<Option<String>>,
    }

    impl Walk<'_> {
        fn child(&self) -> Walk<'_> {
            Walk {
                path: self.path,
                found: self.found,
            }
        }
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                self.path.borrow_mut().push(Segment::Index(i));
                let more = seq.next_element_seed(self.child())?.is_some();
                self.path.borrow_mut().pop();
                if !more {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let duplicate = seen.contains(&key);
                self.path.borrow_mut().push(Segment::Key(key.clone()));
                if duplicate {
                    *self.found.borrow_mut() = Some(render(&self.path.borrow()));
                    return Err(A::Error::custom("duplicate key"));
                }
                map.next_value_seed(self.child())?;
                self.path.borrow_mut().pop();
                seen.insert(key);
            }
            Ok(())
        }
    }

    /// `a.b[2].c`, as serde_path_to_error names fields.
    pub(super) fn render(path: &[Segment]) -> String {
        let mut out = String::new();
        for segment in path {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// What stopped the walk.
    pub enum Found {
        /// The path of the first key given twice in one object.
        Duplicate(String),
        /// The document does not parse (or nests too deep).
        Malformed(serde_json::Error),
    }

    pub fn find(bytes: &[u8]) -> Result<(), Found> {
        let path = RefCell::new(Vec::new());
        let found = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let walked = Walk {
            path: &path,
            found: &found,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        match (walked, found.into_inner()) {
            (_, Some(path)) => Err(Found::Duplicate(path)),
            (Err(e), None) if e.is_syntax() || e.is_eof() => Err(Found::Malformed(e)),
            _ => Ok(()),
        }
    }
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn clean_serde_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Checks that a string is printable text without control characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(FieldError::invalid(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}
