//! The domain's data: what a webhook is, what an event is, what travels on the queue, and
//! what an attempt records. Request types (`*Input`) are lenient about absence so that
//! validation can name the missing field; stored types are what validation produced.

pub mod event;
mod task;
mod webhook;

pub use event::{Event, EventInput, MAX_EVENT_BYTES, User};
pub use task::{Attempt, AttemptStatus, DeliveryTask, TASK_VERSION};
pub use webhook::{
    Auth, AuthInput, BodyTemplate, HttpMethod, LocaleVariant, SigningSecrets, Webhook,
    WebhookInput, WebhookSpec, WebhookView, mask_secret,
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

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn clean_serde_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Checks that a string is printable text without control characters.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
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
