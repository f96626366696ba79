use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{check_text, object_only};
use crate::clock::{self, Millis};
use crate::error::FieldError;

pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
pub const MAX_EVENT_TYPES: usize = 100;
pub const MAX_EVENT_TYPE_BYTES: usize = 256;
pub const MAX_HEADERS: usize = 50;
pub const MAX_LOCALES: usize = 50;
pub const MIN_TIMEOUT_SECONDS: u32 = 1;
pub const MAX_TIMEOUT_SECONDS: u32 = 90;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 30;
pub const DEFAULT_JWT_TTL_SECONDS: u32 = 300;

/// Headers a webhook may not set: hop-by-hop, framing, and the signature headers we own.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Parts of a header's name that mark its value as a credential: responses show such a
/// header's value masked, as they show `auth` secrets. Broad on purpose; a header masked
/// that held nothing secret is only shown less, and still round-trips.
const SENSITIVE_HEADER_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "passw",
    "cookie",
    "session",
    "credential",
    "key",
    "private",
];

/// Whether responses mask the value of a webhook's header of this name (`Authorization`,
/// `Cookie`, `X-Api-Key`, `X-Functions-Key`, `X-Auth-Token`, …).
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_HEADER_PARTS
        .iter()
        .any(|part| name.contains(part))
}

/// A header's value as responses show it: a credential masked (an `Authorization`
/// value keeps its scheme, `Bearer ********`), anything else as it is.
pub fn shown_header_value(name: &str, value: &str) -> String {
    if !is_sensitive_header(name) {
        return value.to_string();
    }
    match value.split_once(' ') {
        Some((scheme, _))
            if name.eq_ignore_ascii_case("authorization")
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            format!("{scheme} {MASK}")
        }
        _ => MASK.to_string(),
    }
}

/// Whether a value given for a sensitive header is a mask as [`shown_header_value`]
/// writes it, which stands for nothing when no such header is stored.
fn looks_like_a_masked_header(name: &str, value: &str) -> bool {
    is_sensitive_header(name)
        && (value == MASK || value.rsplit_once(' ').is_some_and(|(_, tail)| tail == MASK))
}

/// Refuses a header value that is a mask (see [`looks_like_a_masked_header`]).
fn refuse_masked_headers<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a str)>,
) -> Result<(), FieldError> {
    for (name, value) in headers {
        if looks_like_a_masked_header(name, value) {
            return Err(FieldError::invalid(
                format!("headers.{name}"),
                "is a masked value, as responses show credentials: send the value itself, \
                 or leave the header out to keep the one stored",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Post,
    Get,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Get => "GET",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// The request body of a webhook; absent means the standard envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum BodyTemplate {
    /// A JSON object whose values are Liquid templates rendered as strings.
    Json { fields: BTreeMap<String, String> },
    /// Any text, sent with the given content type.
    Raw {
        template: String,
        #[serde(default = "default_raw_content_type")]
        content_type: String,
    },
}

fn default_raw_content_type() -> String {
    "text/plain; charset=utf-8".to_string()
}

/// A per-locale variant of the URL and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleVariant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::optional"
    )]
    pub body: Option<BodyTemplate>,
}

/// How a webhook authenticates to its receiver, as requested.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthInput {
    /// Braces, not a unit variant: serde ignores `deny_unknown_fields` on an internally
    /// tagged unit variant, and `{"type": "none", "token": "…"}` must be refused.
    None {},
    Bearer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        generate: bool,
    },
    Basic {
        username: String,
        password: String,
    },
    Jwt {
        secret: String,
        #[serde(default)]
        claims: Map<String, Value>,
        #[serde(default)]
        ttl_seconds: Option<u32>,
    },
}

/// How a webhook authenticates to its receiver, as stored (secrets in the clear: the
/// store is the only place that holds them; responses mask them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Auth {
    #[default]
    None,
    Bearer {
        token: String,
        #[serde(default)]
        generated: bool,
    },
    Basic {
        username: String,
        password: String,
    },
    Jwt {
        secret: String,
        #[serde(default)]
        claims: Map<String, Value>,
        ttl_seconds: u32,
    },
}

impl Auth {
    /// The field holding this auth's secret, and that secret as responses show it.
    fn masked_secret(&self) -> Option<(&'static str, String)> {
        match self {
            Auth::None => None,
            Auth::Bearer { token, .. } => Some(("token", mask_secret(token))),
            Auth::Basic { .. } => Some(("password", MASK.to_string())),
            Auth::Jwt { .. } => Some(("secret", MASK.to_string())),
        }
    }

    /// A new bearer token for a webhook whose token Hookline generated.
    pub fn generate_bearer() -> Auth {
        Auth::Bearer {
            token: format!("hlt_{}", crate::ids::random_token(32)),
            generated: true,
        }
    }
}

/// A create or patch request. Every field is optional here so that validation can say
/// which one is missing; read-only fields of a webhook are accepted and ignored so that a
/// client may send back what it read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    pub headers: Option<BTreeMap<String, String>>,
    /// `Some(None)` is an explicit `null`: back to the standard envelope.
    #[serde(default, deserialize_with = "object_only::explicit_null")]
    pub body: Option<Option<BodyTemplate>>,
    #[serde(default, deserialize_with = "object_only::optional_map")]
    pub locales: Option<BTreeMap<String, LocaleVariant>>,
    #[serde(default, deserialize_with = "explicit_null")]
    pub default_locale: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "object_only::optional")]
    pub auth: Option<AuthInput>,
    pub timeout_seconds: Option<u32>,
    pub channels: Option<Vec<String>>,
    pub filter: Option<String>,
    // Read-only fields of the response, ignored on input.
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "project_id")]
    _project_id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "version")]
    _version: Option<serde::de::IgnoredAny>,
    /// On create, a secret to sign with (moving from another sender without a new
    /// secret for every receiver); as a response shows it (masked), ignored.
    #[serde(default)]
    signing_secret: Option<Value>,
    #[serde(default, rename = "disabled_reason")]
    _disabled_reason: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "disabled_at")]
    _disabled_at: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "health")]
    _health: Option<serde::de::IgnoredAny>,
}

impl WebhookInput {
    /// The signing secret a create request gives, if it gives one: `null`, absent, or
    /// sent back masked as a response shows it (a webhook copied from another) is none,
    /// and a new one is made.
    pub fn given_secret(&self) -> Result<Option<String>, FieldError> {
        match &self.signing_secret {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.contains("****") => Ok(None),
            Some(Value::String(s)) => check_signing_secret("signing_secret", s).map(Some),
            Some(_) => Err(FieldError::invalid("signing_secret", "must be a string")),
        }
    }

    /// Checks a merge patch's fields and their types (as a request body would be
    /// checked), before there is a webhook to apply it to.
    ///
    /// A `null` inside an object (`{"headers": {"X-Old": null}}`) removes that key, as
    /// RFC 7396 has it, so it is not a value to type-check; the patched webhook is
    /// checked whole afterwards.
    /// A body or auth without its `type` merges into the current one, so it can only be
    /// checked once merged; it is left out here.
    pub fn check_patch(patch: &Map<String, Value>) -> Result<(), FieldError> {
        let patch = &without_read_only(patch);
        check_removed_keys("headers", patch.get("headers"), check_header_token)?;
        check_removed_keys("locales", patch.get("locales"), check_locale_tag)?;
        check_removed_keys(
            "body.fields",
            patch.get("body").and_then(|b| b.get("fields")),
            check_field_name,
        )?;
        if let Some(Value::Object(locales)) = patch.get("locales") {
            for (tag, locale) in locales {
                let headers = locale.get("headers");
                check_removed_keys(
                    &format!("locales.{tag}.headers"),
                    headers,
                    check_header_token,
                )?;
                let fields = locale.get("body").and_then(|b| b.get("fields"));
                check_removed_keys(
                    &format!("locales.{tag}.body.fields"),
                    fields,
                    check_field_name,
                )?;
            }
        }
        let typed: Map<String, Value> = patch
            .iter()
            .filter(|(k, v)| !merges_into_a_tagged_value(k, v))
            .map(|(k, v)| {
                let mut v = without_removals(v);
                if k == "locales"
                    && let Value::Object(locales) = &mut v
                {
                    for locale in locales.values_mut() {
                        if let Value::Object(parts) = locale
                            && parts
                                .get("body")
                                .is_some_and(|b| merges_into_a_tagged_value("body", b))
                        {
                            parts.remove("body");
                        }
                    }
                }
                (k.clone(), v)
            })
            .collect();
        let bytes =
            serde_json::to_vec(&typed).map_err(|e| FieldError::invalid("", e.to_string()))?;
        super::decode_json::<WebhookInput>(&bytes).map(|_| ())
    }
}

/// A patch without the fields a response shows and a request cannot set: the webhook's
/// read-only fields, and an auth's `generated`.
fn without_read_only(patch: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = patch.clone();
    patch.retain(|key, _| !READ_ONLY.contains(&key.as_str()));
    if let Some(Value::Object(auth)) = patch.get_mut("auth") {
        auth.remove("generated");
    }
    patch
}

/// The keys a patch removes (`{"X-Old": null}`) are names like any other: one that could
/// never be set (a header name that is no HTTP token, a bad locale tag, an empty body
/// field name) is refused rather than silently removed, as the document refuses it.
fn check_removed_keys(
    field: &str,
    object: Option<&Value>,
    check: fn(&str, &str) -> Result<(), FieldError>,
) -> Result<(), FieldError> {
    let Some(Value::Object(object)) = object else {
        return Ok(());
    };
    for name in object.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k) {
        check(&format!("{field}.{name}"), name)?;
    }
    Ok(())
}

fn check_header_token(field: &str, name: &str) -> Result<(), FieldError> {
    if is_header_token(name) {
        Ok(())
    } else {
        Err(FieldError::invalid(
            field,
            "is not a valid HTTP header name",
        ))
    }
}

fn check_field_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() || name.len() > 256 {
        return Err(FieldError::invalid(
            field,
            "a field name must be 1 to 256 bytes",
        ));
    }
    Ok(())
}

/// A patch of `body` or `auth` that names no `type`: it merges into the current value.
fn merges_into_a_tagged_value(key: &str, value: &Value) -> bool {
    (key == "body" || key == "auth") && value.as_object().is_some_and(|o| !o.contains_key("type"))
}

/// A patch value without the keys it removes (those set to `null` in its objects).
fn without_removals(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_removals(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn explicit_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The user-controlled part of a webhook, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSpec {
    pub name: String,
    pub url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyTemplate>,
    pub locales: BTreeMap<String, LocaleVariant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_locale: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub auth: Auth,
    pub timeout_seconds: u32,
    /// The channels it receives; empty: every channel, and none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// A Liquid condition an event must meet (see [`crate::template::Condition`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The most channels a webhook may list.
pub const MAX_CHANNELS: usize = 10;

/// Fields a patch cannot clear: `null` for one of them is refused by name.
const REQUIRED: [&str; 3] = ["name", "url", "events"];

/// The webhook's read-only fields, which a client may send back in a patch (ignored).
const READ_ONLY: &[&str] = &[
    "id",
    "project_id",
    "created_at",
    "updated_at",
    "version",
    "signing_secret",
    "disabled_reason",
    "disabled_at",
    "health",
];

impl WebhookSpec {
    /// Builds a spec from a create request: required fields must be present.
    pub fn from_create(input: WebhookInput) -> Result<WebhookSpec, FieldError> {
        let spec = WebhookSpec::from_input(input, None)?;
        spec.refuse_ambiguous(true, true)?;
        refuse_masked(&spec.auth)?;
        refuse_masked_headers(spec.headers.iter().map(|(k, v)| (k, v.as_str())))?;
        Ok(spec)
    }

    /// A spec from a whole request; `previous` lets `generate: true` keep a token Hookline
    /// generated before.
    fn from_input(input: WebhookInput, previous: Option<&Auth>) -> Result<WebhookSpec, FieldError> {
        let missing = |f: &str| FieldError::new("missing_field", f, "is required");
        let spec = WebhookSpec {
            name: input.name.ok_or_else(|| missing("name"))?,
            url: input.url.ok_or_else(|| missing("url"))?,
            method: input.method.unwrap_or_default(),
            headers: input.headers.unwrap_or_default(),
            body: input.body.flatten(),
            locales: input.locales.unwrap_or_default(),
            default_locale: input.default_locale.flatten(),
            events: input.events.ok_or_else(|| missing("events"))?,
            enabled: input.enabled.unwrap_or(true),
            auth: resolve_auth(input.auth, previous)?,
            timeout_seconds: input.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
            channels: input.channels.unwrap_or_default(),
            filter: input.filter,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// This spec as the create request that would make it (secrets in the clear: it
    /// never leaves the function), the document a patch applies to.
    fn as_request(&self) -> Map<String, Value> {
        let auth = match &self.auth {
            Auth::None => serde_json::json!({"type": "none"}),
            Auth::Bearer {
                generated: true, ..
            } => serde_json::json!({"type": "bearer", "generate": true}),
            Auth::Bearer { token, .. } => serde_json::json!({"type": "bearer", "token": token}),
            Auth::Basic { username, password } => {
                serde_json::json!({"type": "basic", "username": username, "password": password})
            }
            Auth::Jwt {
                secret,
                claims,
                ttl_seconds,
            } => {
                serde_json::json!({"type": "jwt", "secret": secret, "claims": claims, "ttl_seconds": ttl_seconds})
            }
        };
        let mut request = serde_json::json!({
            "name": self.name,
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "body": self.body,
            "locales": self.locales,
            "default_locale": self.default_locale,
            "events": self.events,
            "enabled": self.enabled,
            "auth": auth,
            "timeout_seconds": self.timeout_seconds,
            "channels": self.channels,
            "filter": self.filter,
        });
        if let Value::Object(map) = &mut request {
            map.retain(|_, v| !v.is_null());
            std::mem::take(map)
        } else {
            Map::new()
        }
    }

    /// Applies a patch, a JSON merge patch (RFC 7396): what it leaves out stays, `null`
    /// removes an optional field (back to its default), and objects merge key by key
    /// (`{"headers": {"X-Old": null}}` removes one header). Two rules on top: `body`,
    /// `auth` and a locale's `body` are replaced whole when the patch changes their
    /// `type` (the old type's fields mean nothing to the new one), and a bearer's `token`
    /// and `generate` exclude each other. Read-only fields are ignored (an auth's
    /// `generated` too), and an auth of the stored type whose secret is the masked value a
    /// response showed keeps the stored secret: a webhook read, edited and sent back
    /// whole changes what was edited. The result is validated as a whole, as a create is.
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<WebhookSpec, FieldError> {
        for field in REQUIRED {
            if patch.get(field).is_some_and(Value::is_null) {
                return Err(FieldError::invalid(
                    field,
                    "is required: null cannot clear it",
                ));
            }
        }
        let mut patch = without_read_only(patch);
        if let Some(Value::Object(headers)) = patch.get_mut("headers") {
            // A header sent back as a response showed it keeps its stored value.
            headers.retain(|name, value| {
                let shown = self.headers.get(name).map(|v| shown_header_value(name, v));
                value.as_str().is_none() || value.as_str() != shown.as_deref()
            });
            refuse_masked_headers(
                headers
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v))),
            )?;
        }
        if let Some(Value::Object(auth)) = patch.get_mut("auth") {
            let same_type = auth.get("type").is_none_or(|t| {
                serde_json::to_value(&self.auth).is_ok_and(|stored| stored["type"] == *t)
            });
            if let Some((field, shown)) = self.auth.masked_secret()
                && same_type
                && auth.get(field).and_then(Value::as_str) == Some(shown.as_str())
            {
                auth.remove(field);
            }
        }
        let mut document = self.as_request();
        replace_on_type_change(&mut document, &patch, "body");
        replace_on_type_change(&mut document, &patch, "auth");
        if let (Some(Value::Object(locales)), Some(Value::Object(patched))) =
            (document.get_mut("locales"), patch.get("locales"))
        {
            for (tag, variant) in patched {
                if let (Some(Value::Object(current)), Value::Object(variant)) =
                    (locales.get_mut(tag), variant)
                {
                    replace_on_type_change(current, variant, "body");
                }
            }
        }
        if let (Some(Value::Object(auth)), Some(Value::Object(patched))) =
            (document.get_mut("auth"), patch.get("auth"))
        {
            for (given, excluded) in [("token", "generate"), ("generate", "token")] {
                if patched.contains_key(given) {
                    auth.remove(excluded);
                }
            }
        }
        let touches_auth = patch.get("auth").is_some_and(|a| !a.is_null());
        let (touches_url, touches_headers) =
            (patch.contains_key("url"), patch.contains_key("headers"));
        let mut merged = Value::Object(document);
        merge_patch(&mut merged, &Value::Object(patch));
        let bytes =
            serde_json::to_vec(&merged).map_err(|e| FieldError::invalid("", e.to_string()))?;
        let spec = WebhookSpec::from_input(super::decode_json(&bytes)?, Some(&self.auth))?;
        spec.refuse_ambiguous(touches_url, touches_headers)?;
        // Only an auth the request gave: a secret stored masked by an earlier version of
        // this API must not stop a patch that does not touch it (a pause, say).
        if touches_auth {
            refuse_masked(&spec.auth)?;
        }
        Ok(spec)
    }

    /// What an earlier version of this API stored and now refuses, checked where the
    /// request gives it (on create, or a patch of the field), so that a webhook stored so
    /// can still be paused: a URL that begins or ends with whitespace (a URL parser trims
    /// it away when sending; stored, it only misleads), and two headers whose names
    /// differ only in case (which one is sent would be a guess).
    fn refuse_ambiguous(&self, url: bool, headers: bool) -> Result<(), FieldError> {
        if url && self.url.trim() != self.url {
            return Err(FieldError::invalid(
                "url",
                "must not begin or end with whitespace",
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for name in self.headers.keys().filter(|_| headers) {
            if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
                return Err(FieldError::invalid(
                    format!("headers.{name}"),
                    format!("is `{first}` again: header names are case-insensitive"),
                ));
            }
        }
        Ok(())
    }

    /// Field-level checks. Templates are parsed separately by [`crate::template`], and
    /// the URL's target by [`crate::guard`], because both need more than the text.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_text("name", &self.name, MAX_NAME_BYTES)?;
        check_template("url", &self.url)?;
        if self.headers.len() > MAX_HEADERS {
            return Err(FieldError::invalid(
                "headers",
                format!("at most {MAX_HEADERS} headers"),
            ));
        }
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            check_header_name(&field, name)?;
            if !matches!(self.auth, Auth::None) && name.eq_ignore_ascii_case("authorization") {
                return Err(FieldError::invalid(
                    field,
                    "conflicts with `auth`, which sets the Authorization header",
                ));
            }
            check_template(&field, value)?;
            if value.contains(['\r', '\n', '\0']) {
                return Err(FieldError::invalid(
                    field,
                    "a header value must not contain CR, LF or NUL",
                ));
            }
        }
        if let Some(body) = &self.body {
            check_body("body", body)?;
        }
        if self.locales.len() > MAX_LOCALES {
            return Err(FieldError::invalid(
                "locales",
                format!("at most {MAX_LOCALES} locales"),
            ));
        }
        for (tag, variant) in &self.locales {
            let field = format!("locales.{tag}");
            check_locale_tag(&field, tag)?;
            if variant.url.is_none() && variant.body.is_none() {
                return Err(FieldError::invalid(field, "a locale needs a url or a body"));
            }
            if let Some(url) = &variant.url {
                check_template(&format!("{field}.url"), url)?;
            }
            if let Some(body) = &variant.body {
                check_body(&format!("{field}.body"), body)?;
            }
        }
        if let Some(tag) = &self.default_locale {
            check_locale_tag("default_locale", tag)?;
        }
        check_event_types(&self.events)?;
        if self.channels.len() > MAX_CHANNELS {
            return Err(FieldError::invalid(
                "channels",
                format!("at most {MAX_CHANNELS} channels"),
            ));
        }
        for (i, channel) in self.channels.iter().enumerate() {
            let field = format!("channels[{i}]");
            super::event::check_channel(&field, channel)?;
            if self.channels[..i].contains(channel) {
                return Err(FieldError::invalid(field, "is listed twice"));
            }
        }
        if let Some(filter) = &self.filter {
            check_template("filter", filter)?;
            if filter.trim().is_empty() {
                return Err(FieldError::invalid(
                    "filter",
                    "must not be empty; leave it out (or null) for none",
                ));
            }
        }
        if !(MIN_TIMEOUT_SECONDS..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(FieldError::invalid(
                "timeout_seconds",
                format!("must be between {MIN_TIMEOUT_SECONDS} and {MAX_TIMEOUT_SECONDS}"),
            ));
        }
        check_auth(&self.auth)
    }

    /// Whether this webhook wants events of `event_type`.
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event_type)
    }

    /// Whether an event of this type and channel is for this webhook, before its filter
    /// (SPEC §9): its type is listed (or `*`, for product events only: an operational
    /// event must be named, so a catch-all webhook never hears about itself), and its
    /// channel is listed unless the webhook lists none. Operational events belong to no
    /// channel and pass a webhook's channels: they are about Hookline, not the product.
    pub fn matches(&self, event_type: &str, channel: Option<&str>, operational: bool) -> bool {
        if operational {
            return self.events.iter().any(|e| e == event_type);
        }
        self.subscribes_to(event_type)
            && (self.channels.is_empty()
                || channel.is_some_and(|c| self.channels.iter().any(|listed| listed == c)))
    }
}

/// RFC 7396: a patch object merges into the target key by key, `null` removes a key,
/// anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Drops `document[key]` when `patch[key]` gives it another `type`.
fn replace_on_type_change(
    document: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    key: &str,
) {
    let new_type = patch.get(key).and_then(|v| v.get("type"));
    let old_type = document.get(key).and_then(|v| v.get("type"));
    if new_type.is_some() && new_type != old_type {
        document.remove(key);
    }
}

/// Turns the requested auth into the stored one. `previous` lets a patch keep a
/// generated token when the same scheme is requested again without a new token.
fn resolve_auth(input: Option<AuthInput>, previous: Option<&Auth>) -> Result<Auth, FieldError> {
    Ok(match input {
        None | Some(AuthInput::None {}) => Auth::None,
        Some(AuthInput::Bearer { token, generate }) => match (token, generate) {
            (Some(_), true) => {
                return Err(FieldError::invalid(
                    "auth",
                    "give either `token` or `generate: true`, not both",
                ));
            }
            (Some(token), false) => Auth::Bearer {
                token,
                generated: false,
            },
            (None, true) => match previous {
                Some(
                    prev @ Auth::Bearer {
                        generated: true, ..
                    },
                ) => prev.clone(),
                _ => Auth::generate_bearer(),
            },
            (None, false) => {
                return Err(FieldError::new(
                    "missing_field",
                    "auth.token",
                    "a bearer auth needs `token` or `generate: true`",
                ));
            }
        },
        Some(AuthInput::Basic { username, password }) => Auth::Basic { username, password },
        Some(AuthInput::Jwt {
            secret,
            claims,
            ttl_seconds,
        }) => Auth::Jwt {
            secret,
            claims,
            ttl_seconds: ttl_seconds.unwrap_or(DEFAULT_JWT_TTL_SECONDS),
        },
    })
}

/// A secret given in a request that is a mask, as responses show secrets, and stands for
/// nothing stored (a patch of the same scheme has already put the stored one back).
fn refuse_masked(auth: &Auth) -> Result<(), FieldError> {
    let secret = match auth {
        Auth::None => None,
        Auth::Bearer { token, .. } => Some(("auth.token", token)),
        Auth::Basic { password, .. } => Some(("auth.password", password)),
        Auth::Jwt { secret, .. } => Some(("auth.secret", secret)),
    };
    match secret {
        Some((field, value)) if looks_masked(value) => Err(FieldError::invalid(
            field,
            "is a masked value, as responses show secrets: send the secret itself, or \
             leave auth out to keep the one stored",
        )),
        _ => Ok(()),
    }
}

fn check_auth(auth: &Auth) -> Result<(), FieldError> {
    match auth {
        Auth::None => Ok(()),
        Auth::Bearer { token, .. } => {
            if token.is_empty() || token.len() > 4096 {
                return Err(FieldError::invalid("auth.token", "must be 1 to 4096 bytes"));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FieldError::invalid(
                    "auth.token",
                    "must be visible ASCII without spaces",
                ));
            }
            Ok(())
        }
        Auth::Basic { username, password } => {
            if username.is_empty() || username.len() > 256 {
                return Err(FieldError::invalid(
                    "auth.username",
                    "must be 1 to 256 bytes",
                ));
            }
            if username.contains(':') || username.chars().any(char::is_control) {
                return Err(FieldError::invalid(
                    "auth.username",
                    "must not contain ':' or control characters",
                ));
            }
            if password.len() > 1024 || password.chars().any(char::is_control) {
                return Err(FieldError::invalid(
                    "auth.password",
                    "must be at most 1024 bytes without control characters",
                ));
            }
            Ok(())
        }
        Auth::Jwt {
            secret,
            claims,
            ttl_seconds,
        } => {
            if secret.is_empty() || secret.len() > 1024 {
                return Err(FieldError::invalid(
                    "auth.secret",
                    "must be 1 to 1024 bytes",
                ));
            }
            if !(1..=86_400).contains(ttl_seconds) {
                return Err(FieldError::invalid(
                    "auth.ttl_seconds",
                    "must be between 1 and 86400",
                ));
            }
            for reserved in ["iat", "exp"] {
                if claims.contains_key(reserved) {
                    return Err(FieldError::invalid(
                        format!("auth.claims.{reserved}"),
                        "is set by Hookline on every request",
                    ));
                }
            }
            if serde_json::to_vec(claims).map_or(usize::MAX, |v| v.len()) > 8 * 1024 {
                return Err(FieldError::invalid("auth.claims", "must be at most 8 KiB"));
            }
            Ok(())
        }
    }
}

fn check_template(field: &str, template: &str) -> Result<(), FieldError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(FieldError::new(
            "template_too_large",
            field,
            format!("a template must be at most {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    if template.contains('\0') {
        return Err(FieldError::invalid(field, "must not contain NUL"));
    }
    Ok(())
}

fn check_body(field: &str, body: &BodyTemplate) -> Result<(), FieldError> {
    match body {
        BodyTemplate::Json { fields } => {
            if fields.len() > 1000 {
                return Err(FieldError::invalid(
                    format!("{field}.fields"),
                    "at most 1000 fields",
                ));
            }
            let mut total = 0;
            for (key, value) in fields {
                let f = format!("{field}.fields.{key}");
                check_field_name(&f, key)?;
                check_template(&f, value)?;
                total += value.len();
            }
            if total > MAX_TEMPLATE_BYTES {
                return Err(FieldError::new(
                    "template_too_large",
                    format!("{field}.fields"),
                    format!("the fields together must be at most {MAX_TEMPLATE_BYTES} bytes"),
                ));
            }
            Ok(())
        }
        BodyTemplate::Raw {
            template,
            content_type,
        } => {
            check_template(&format!("{field}.template"), template)?;
            let ct_field = format!("{field}.content_type");
            check_text(&ct_field, content_type, 256)?;
            if !content_type.contains('/') {
                return Err(FieldError::invalid(
                    ct_field,
                    "must be a media type like text/plain",
                ));
            }
            Ok(())
        }
    }
}

/// An HTTP token (RFC 9110 §5.6.2) of 1 to 256 bytes.
fn is_header_token(name: &str) -> bool {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty() && name.len() <= 256 && name.bytes().all(is_tchar)
}

fn check_header_name(field: &str, name: &str) -> Result<(), FieldError> {
    check_header_token(field, name)?;
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        return Err(FieldError::new(
            "reserved_header",
            field,
            "this header is set by Hookline or by HTTP itself and cannot be configured",
        ));
    }
    Ok(())
}

fn check_locale_tag(field: &str, tag: &str) -> Result<(), FieldError> {
    let mut parts = tag.split(['-', '_']);
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if first_ok && rest_ok && tag.len() <= 35 {
        Ok(())
    } else {
        Err(FieldError::invalid(
            field,
            "is not a locale tag like `en` or `ko-KR`",
        ))
    }
}

/// A byte of an event type or event id: `A-Z a-z 0-9 . _ - :`.
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-:".contains(&b)
}

/// An event type name: 1–256 of `A-Z a-z 0-9 . _ - :`, or `*` for every type.
pub(crate) fn check_event_type(field: &str, name: &str) -> Result<(), FieldError> {
    let ok =
        !name.is_empty() && name.len() <= MAX_EVENT_TYPE_BYTES && name.bytes().all(is_name_byte);
    if ok {
        Ok(())
    } else {
        Err(FieldError::invalid(
            field,
            "an event type is 1 to 256 of A-Z, a-z, 0-9, '.', '_', '-', ':'",
        ))
    }
}

fn check_event_types(events: &[String]) -> Result<(), FieldError> {
    if events.is_empty() {
        return Err(FieldError::invalid(
            "events",
            "subscribe to at least one event type, or [\"*\"]",
        ));
    }
    if events.len() > MAX_EVENT_TYPES {
        return Err(FieldError::invalid(
            "events",
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    for (i, name) in events.iter().enumerate() {
        if name != "*" {
            check_event_type(&format!("events[{i}]"), name)?;
        }
        if events[..i].contains(name) {
            return Err(FieldError::invalid(
                format!("events[{i}]"),
                "is listed twice",
            ));
        }
    }
    Ok(())
}

/// The signing secrets of a webhook: the current one, and during a rotation the previous
/// one until it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningSecrets {
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<Millis>,
}

impl SigningSecrets {
    /// Rotates: a new current secret; the old one keeps signing for `overlap`.
    pub fn rotated(&self, new_secret: String, now: Millis, overlap: Millis) -> SigningSecrets {
        SigningSecrets {
            current: new_secret,
            previous: Some(self.current.clone()),
            previous_expires_at: Some(now + overlap),
        }
    }
}

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub project_id: String,
    #[serde(flatten)]
    pub spec: WebhookSpec,
    pub signing: SigningSecrets,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub version: u64,
    /// Why it is disabled: `manual` (a PATCH), or `failing` (Hookline, after failing
    /// for the deployment's auto-disable period). `None` while enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<DisabledReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Millis>,
}

/// Why a webhook is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    Manual,
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Manual => "manual",
            DisabledReason::Failing => "failing",
        }
    }
}

impl Webhook {
    /// The webhook after `spec` replaces its spec at `now`: a new version, and the
    /// disabled state following `enabled` (a disable by this change is `manual`; an
    /// enable clears it).
    pub fn changed(&self, spec: WebhookSpec, now: Millis) -> Webhook {
        let (disabled_reason, disabled_at) = match (self.spec.enabled, spec.enabled) {
            (true, false) => (Some(DisabledReason::Manual), Some(now)),
            (_, true) => (None, None),
            (false, false) => (self.disabled_reason, self.disabled_at),
        };
        Webhook {
            spec,
            updated_at: now.max(self.updated_at),
            version: self.version + 1,
            disabled_reason,
            disabled_at,
            ..self.clone()
        }
    }

    /// Disabled by Hookline because it kept failing.
    pub fn disabled_for_failing(&self, now: Millis) -> Webhook {
        let mut spec = self.spec.clone();
        spec.enabled = false;
        Webhook {
            disabled_reason: Some(DisabledReason::Failing),
            disabled_at: Some(now),
            ..self.changed(spec, now)
        }
    }
}

/// A webhook as the API shows it: secrets masked unless `reveal` (create and rotate), and
/// credential headers ([`is_sensitive_header`]) masked always.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyTemplate>,
    pub locales: BTreeMap<String, LocaleVariant>,
    pub default_locale: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub auth: Value,
    pub timeout_seconds: u32,
    pub signing_secret: String,
    #[serde(with = "clock::rfc3339")]
    pub created_at: Millis,
    #[serde(with = "clock::rfc3339")]
    pub updated_at: Millis,
    pub version: u64,
    pub channels: Vec<String>,
    pub filter: Option<String>,
    pub disabled_reason: Option<DisabledReason>,
    #[serde(with = "clock::rfc3339::option")]
    pub disabled_at: Option<Millis>,
    /// Its deliveries' health (SPEC §10); all null and zero before any attempt.
    pub health: crate::health::Health,
}

/// What a response shows for a secret too short to show part of, and for passwords.
const MASK: &str = "********";

/// Whether `value` has the shape of a masked secret (`********`, or `prefix_****wxyz` as
/// [`mask_secret`] writes it): what a client sends back when it copies a response.
fn looks_masked(value: &str) -> bool {
    value == MASK
        || value.split_once("****").is_some_and(|(prefix, tail)| {
            tail.chars().count() == 4
                && (prefix.is_empty() || prefix.ends_with('_'))
                && !prefix.contains('*')
        })
}

/// Whether a patch's `auth` sends back a secret masked as a response showed it (it then
/// keeps the stored secret, and the answer need not show it in full).
pub fn sends_back_a_masked_secret(patch: &Map<String, Value>) -> bool {
    patch
        .get("auth")
        .and_then(Value::as_object)
        .is_some_and(|auth| {
            ["token", "password", "secret"].iter().any(|field| {
                auth.get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(looks_masked)
            })
        })
}

/// `whsec_…wxyz`: enough to tell two secrets apart, not enough to use one.
pub fn mask_secret(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = secret.find('_').map_or("", |i| &secret[..=i]);
    if secret.len() >= 24 {
        format!("{prefix}****{tail}")
    } else {
        MASK.to_string()
    }
}

/// A signing secret a request gives: `whsec_` and the base64 of 24 to 64 bytes, as
/// Standard Webhooks' libraries (and Svix) take it.
pub fn check_signing_secret(field: &str, secret: &str) -> Result<String, FieldError> {
    if secret.starts_with(crate::signing::SECRET_PREFIX)
        && crate::signing::decode_secret(secret).is_ok()
    {
        Ok(secret.to_string())
    } else {
        Err(FieldError::invalid(
            field,
            format!(
                "a signing secret is `whsec_` followed by the base64 of {} to {} bytes; \
                 leave it out to have one made",
                crate::signing::MIN_SECRET_BYTES,
                crate::signing::MAX_SECRET_BYTES
            ),
        ))
    }
}

impl Webhook {
    /// What a patch says of the fields it cannot change: sent back as read (or as the
    /// create or rotate response showed the secret), they are ignored; anything else
    /// would be silently dropped, so it is refused by name — another webhook's `id` or
    /// `project_id` (the patch is aimed at the wrong one), or a new `signing_secret`
    /// (rotation changes it, keeping the old one signing meanwhile).
    pub fn check_sent_back(&self, patch: &Map<String, Value>) -> Result<(), FieldError> {
        for (field, own) in [("id", &self.id), ("project_id", &self.project_id)] {
            if let Some(given) = patch.get(field)
                && given.as_str() != Some(own.as_str())
            {
                return Err(FieldError::invalid(
                    field,
                    format!("is {own} for this webhook and cannot be changed"),
                ));
            }
        }
        if let Some(given) = patch.get("signing_secret") {
            let current = &self.signing.current;
            let as_shown = given
                .as_str()
                .is_some_and(|s| s == current || s == mask_secret(current));
            if !as_shown {
                return Err(FieldError::invalid(
                    "signing_secret",
                    "is changed by POST …/rotate (which takes a new secret or makes one), \
                     not by a patch",
                ));
            }
        }
        Ok(())
    }

    /// A new webhook of `project_id`: a fresh id, a fresh signing secret, version 1.
    pub fn new(project_id: &str, spec: WebhookSpec, now: Millis) -> Webhook {
        let spec_enabled = spec.enabled;
        Webhook {
            id: crate::ids::new_id("wh", now),
            project_id: project_id.to_string(),
            spec,
            signing: SigningSecrets {
                current: crate::signing::new_secret(),
                previous: None,
                previous_expires_at: None,
            },
            created_at: now,
            updated_at: now,
            version: 1,
            disabled_reason: (!spec_enabled).then_some(DisabledReason::Manual),
            disabled_at: (!spec_enabled).then_some(now),
        }
    }

    pub fn view(&self, reveal: bool) -> WebhookView {
        let hide = |s: &str| {
            if reveal {
                s.to_string()
            } else {
                mask_secret(s)
            }
        };
        let auth = match &self.spec.auth {
            Auth::None => serde_json::json!({"type": "none"}),
            Auth::Bearer { token, generated } => {
                serde_json::json!({"type": "bearer", "token": hide(token), "generated": generated})
            }
            Auth::Basic { username, password } => serde_json::json!({
                "type": "basic",
                "username": username,
                "password": if reveal { password.clone() } else { MASK.to_string() },
            }),
            Auth::Jwt {
                secret,
                claims,
                ttl_seconds,
            } => serde_json::json!({
                "type": "jwt",
                "secret": if reveal { secret.clone() } else { MASK.to_string() },
                "claims": claims,
                "ttl_seconds": ttl_seconds,
            }),
        };
        let s = &self.spec;
        WebhookView {
            id: self.id.clone(),
            project_id: self.project_id.clone(),
            name: s.name.clone(),
            url: s.url.clone(),
            method: s.method,
            headers: s
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), shown_header_value(name, value)))
                .collect(),
            body: s.body.clone(),
            locales: s.locales.clone(),
            default_locale: s.default_locale.clone(),
            events: s.events.clone(),
            enabled: s.enabled,
            auth,
            timeout_seconds: s.timeout_seconds,
            signing_secret: hide(&self.signing.current),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            channels: s.channels.clone(),
            filter: s.filter.clone(),
            disabled_reason: self.disabled_reason,
            disabled_at: self.disabled_at,
            health: crate::health::Health::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode_json;

    fn create(json: &str) -> Result<WebhookSpec, FieldError> {
        WebhookSpec::from_create(decode_json::<WebhookInput>(json.as_bytes())?)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({"name": "crm", "url": "https://example.com/h", "events": ["a.b"]})
    }

    fn with(key: &str, value: serde_json::Value) -> String {
        let mut v = base();
        v[key] = value;
        v.to_string()
    }

    fn field_of(json: &str) -> String {
        create(json).unwrap_err().field
    }

    #[test]
    fn create_applies_the_spec_defaults() {
        let spec = create(&base().to_string()).unwrap();
        assert_eq!(spec.method, HttpMethod::Post);
        assert!(spec.enabled);
        assert_eq!(spec.timeout_seconds, 30);
        assert_eq!(spec.auth, Auth::None);
        assert!(spec.body.is_none());
    }

    #[test]
    fn auth_of_type_none_takes_no_other_field() {
        let mut v = base();
        v["auth"] = serde_json::json!({"type": "none"});
        assert_eq!(create(&v.to_string()).unwrap().auth, Auth::None);
        v["auth"] = serde_json::json!({"type": "none", "token": "t"});
        assert_eq!(create(&v.to_string()).unwrap_err().field, "auth");
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in ["name", "url", "events"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(field);
            let err = create(&v.to_string()).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), ("missing_field", field));
        }
    }

    #[test]
    fn rejects_each_bad_field_by_name() {
        let long = "x".repeat(257);
        let huge = "x".repeat(64 * 1024 + 1);
        let cases: Vec<(String, &str)> = vec![
            (with("name", long.clone().into()), "name"),
            (with("name", "  ".into()), "name"),
            (with("method", "TRACE".into()), "method"),
            (with("timeout_seconds", 0.into()), "timeout_seconds"),
            (with("timeout_seconds", 91.into()), "timeout_seconds"),
            (with("events", serde_json::json!([])), "events"),
            (
                with(
                    "events",
                    serde_json::json!((0..101).map(|i| format!("e{i}")).collect::<Vec<_>>()),
                ),
                "events",
            ),
            (
                with("events", serde_json::json!(["ok", "bad type"])),
                "events[1]",
            ),
            (
                with("headers", serde_json::json!({"Bad Name": "x"})),
                "headers.Bad Name",
            ),
            (
                with("headers", serde_json::json!({"Host": "x"})),
                "headers.Host",
            ),
            (
                with("headers", serde_json::json!({"content-length": "1"})),
                "headers.content-length",
            ),
            (
                with(
                    "headers",
                    serde_json::json!({"Transfer-Encoding": "chunked"}),
                ),
                "headers.Transfer-Encoding",
            ),
            (
                with("headers", serde_json::json!({"Connection": "close"})),
                "headers.Connection",
            ),
            (
                with("headers", serde_json::json!({"webhook-signature": "v1,x"})),
                "headers.webhook-signature",
            ),
            (
                with("headers", serde_json::json!({"X-A": "a\r\nX-Injected: 1"})),
                "headers.X-A",
            ),
            (
                with("headers", serde_json::json!({"X-A": "a\nb"})),
                "headers.X-A",
            ),
            (
                with("headers", serde_json::json!({"X-A": "1", "x-a": "2"})),
                "headers.x-a",
            ),
            (with("url", " https://example.com/h".into()), "url"),
            (with("url", "https://example.com/h\n".into()), "url"),
            (
                with("body", serde_json::json!({"type": "raw", "template": huge})),
                "body.template",
            ),
            (
                with("body", serde_json::json!({"type": "xml"})),
                "body.type",
            ),
            (
                with(
                    "body",
                    serde_json::json!({"type": "json", "fields": {"a": "b"}, "extra": 1}),
                ),
                "body",
            ),
            (
                with("auth", serde_json::json!({"type": "magic"})),
                "auth.type",
            ),
            (
                with("auth", serde_json::json!({"type": "bearer"})),
                "auth.token",
            ),
            (
                with(
                    "auth",
                    serde_json::json!({"type": "basic", "username": "a:b", "password": "p"}),
                ),
                "auth.username",
            ),
            (
                with(
                    "auth",
                    serde_json::json!({"type": "jwt", "secret": "s", "claims": {"exp": 1}}),
                ),
                "auth.claims.exp",
            ),
            (
                with(
                    "locales",
                    serde_json::json!({"not a tag!": {"url": "https://x.y"}}),
                ),
                "locales.not a tag!",
            ),
            (with("default_locale", "123".into()), "default_locale"),
            (with("unknown", 1.into()), "unknown"),
        ];
        for (json, field) in cases {
            let err = create(&json).expect_err(&json);
            assert_eq!(err.field, field, "{json}: {err}");
        }
    }

    /// SPEC §9's matching, every case: types, `*`, channels listed or not, events with a
    /// channel or none, operational events.
    #[test]
    fn matching_by_type_channel_and_kind() {
        let spec = |events: &[&str], channels: &[&str]| {
            let mut v = base();
            v["events"] = serde_json::json!(events);
            v["channels"] = serde_json::json!(channels);
            create(&v.to_string()).unwrap()
        };
        let typed = spec(&["order.placed"], &[]);
        let star = spec(&["*"], &[]);
        let store = spec(&["order.placed"], &["store"]);
        let star_web = spec(&["*"], &["web", "store"]);
        let reports = spec(&["delivery.failed"], &["email"]);
        let star_reports = spec(&["*", "delivery.failed"], &[]);
        for (webhook, event_type, channel, operational, expected) in [
            (&typed, "order.placed", None, false, true),
            (&typed, "order.placed", Some("store"), false, true),
            (&typed, "order.paid", None, false, false),
            (&star, "anything", Some("x"), false, true),
            // `*` is the product's events only.
            (&star, "delivery.failed", None, true, false),
            (&store, "order.placed", Some("store"), false, true),
            (&store, "order.placed", Some("web"), false, false),
            // A webhook that lists channels takes no event without one.
            (&store, "order.placed", None, false, false),
            (&star_web, "x", Some("web"), false, true),
            (&star_web, "x", Some("sms"), false, false),
            // Operational events belong to no channel and pass a webhook's channels.
            (&reports, "delivery.failed", None, true, true),
            (&reports, "delivery.succeeded", None, true, false),
            (&star_reports, "delivery.failed", None, true, true),
            (&star_reports, "order.placed", Some("any"), false, true),
        ] {
            assert_eq!(
                webhook.matches(event_type, channel, operational),
                expected,
                "{:?} {:?} {event_type} {channel:?} {operational}",
                webhook.events,
                webhook.channels
            );
        }
    }

    #[test]
    fn channels_and_filters_are_checked_by_field() {
        let eleven: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
        for (value, field) in [
            (serde_json::json!(["ok", "bad channel"]), "channels[1]"),
            (serde_json::json!(["a", "b", "c", ""]), "channels[3]"),
            (serde_json::json!([&"x".repeat(129)]), "channels[0]"),
            (serde_json::json!(["dup", "dup"]), "channels[1]"),
            (serde_json::json!(eleven), "channels"),
            (serde_json::json!("store"), "channels"),
        ] {
            assert_eq!(field_of(&with("channels", value.clone())), field, "{value}");
        }
        assert_eq!(field_of(&with("filter", "   ".into())), "filter");
        assert_eq!(field_of(&with("filter", 5.into())), "filter");
        let ok = create(&with("channels", serde_json::json!(["store", "a.b:c-d_e"]))).unwrap();
        assert_eq!(ok.channels, ["store", "a.b:c-d_e"]);
        // A patch clears them with null, as any optional field.
        let cleared = ok
            .patched(&decode_json(br#"{"channels": null}"#).unwrap())
            .unwrap();
        assert!(cleared.channels.is_empty());
    }

    #[test]
    fn unknown_top_level_fields_are_rejected_and_read_only_ones_ignored() {
        let err = create(&with("colour", "red".into())).unwrap_err();
        assert!(err.message.contains("colour"), "{err}");
        let mut v = base();
        v["id"] = "wh_x".into();
        v["version"] = 3.into();
        v["signing_secret"] = "whsec_****".into();
        assert!(create(&v.to_string()).is_ok());
    }

    #[test]
    fn an_authorization_header_conflicts_with_auth() {
        let mut v = base();
        v["auth"] = serde_json::json!({"type": "bearer", "token": "t"});
        v["headers"] = serde_json::json!({"authorization": "Bearer x"});
        assert_eq!(field_of(&v.to_string()), "headers.authorization");
    }

    #[test]
    fn type_errors_name_the_nested_field() {
        let json = with("timeout_seconds", "thirty".into());
        assert_eq!(field_of(&json), "timeout_seconds");
        let json = with("headers", serde_json::json!({"X-A": 5}));
        assert_eq!(field_of(&json), "headers.X-A");
        let err = decode_json::<WebhookInput>(b"{\"name\": ").unwrap_err();
        assert_eq!(err.code, "malformed_json");
        let err = decode_json::<WebhookInput>(br#"["n", "https://example.com"]"#).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_field", ""));
        assert!(err.message.contains("JSON object"));
    }

    #[test]
    fn nested_objects_given_as_arrays_are_refused_with_their_path() {
        // serde's derive would read each of these by position (or with the tag first).
        for (field, value, path) in [
            ("auth", serde_json::json!(["none"]), "auth"),
            ("body", serde_json::json!(["raw", "x"]), "body"),
            (
                "locales",
                serde_json::json!({"ko": ["https://example.com/"]}),
                "locales.ko",
            ),
            (
                "locales",
                serde_json::json!({"ko": {"body": ["raw", "x"]}}),
                "locales.ko.body",
            ),
        ] {
            let json = with(field, value);
            let err = decode_json::<WebhookInput>(json.as_bytes()).unwrap_err();
            assert_eq!(
                (err.code, err.field.as_str()),
                ("invalid_field", path),
                "{json}"
            );
            assert!(
                err.message.contains("expected a JSON object"),
                "{}",
                err.message
            );
        }
        // null still means absent (or, for body, the standard envelope).
        let input =
            decode_json::<WebhookInput>(br#"{"auth": null, "body": null, "locales": null}"#)
                .unwrap();
        assert!(input.auth.is_none() && input.locales.is_none());
        assert_eq!(input.body, Some(None));
        let input = decode_json::<WebhookInput>(
            br#"{"locales": {"ko": {"body": {"type": "raw", "template": "x"}}}}"#,
        )
        .unwrap();
        assert!(input.locales.unwrap()["ko"].body.is_some());
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_is() {
        for (json, path) in [
            (r#"{"name": "a", "name": "b"}"#, "name"),
            (r#"{"headers": {"X-A": "1", "X-A": "2"}}"#, "headers.X-A"),
            (
                r#"{"auth": {"type": "jwt", "secret": "s", "claims": {"sub": 1, "sub": 2}}}"#,
                "auth.claims.sub",
            ),
            (
                r#"{"locales": {"ko": {"url": "u"}, "ko": {"url": "v"}}}"#,
                "locales.ko",
            ),
            (r#"{"events": [{"a": 1}, {"b": 1, "b": 2}]}"#, "events[1].b"),
        ] {
            let err = decode_json::<WebhookInput>(json.as_bytes()).unwrap_err();
            assert_eq!(
                (err.code, err.field.as_str()),
                ("invalid_field", path),
                "{json}"
            );
        }
        // The same key in sibling objects is not a duplicate.
        let input = decode_json::<WebhookInput>(
            br#"{"locales": {"ko": {"url": "u"}, "en": {"url": "v"}}, "headers": {"url": "x"}}"#,
        )
        .unwrap();
        assert_eq!(input.locales.unwrap().len(), 2);
    }

    #[test]
    fn patch_keeps_absent_fields_and_revalidates() {
        let spec = create(&base().to_string()).unwrap();
        let patched = spec
            .patched(&decode_json(br#"{"enabled": false}"#).unwrap())
            .unwrap();
        assert!(!patched.enabled);
        assert_eq!(patched.url, spec.url);
        let err = spec
            .patched(&decode_json(br#"{"timeout_seconds": 120}"#).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "timeout_seconds");
        let with_body = spec
            .patched(&decode_json(br#"{"body": {"type": "json", "fields": {"a": "b"}}}"#).unwrap())
            .unwrap();
        assert!(with_body.body.is_some());
        let cleared = with_body
            .patched(&decode_json(br#"{"body": null}"#).unwrap())
            .unwrap();
        assert!(cleared.body.is_none());
    }

    /// PATCH is a JSON merge patch (SPEC §8, RFC 7396).
    #[test]
    fn patch_is_a_json_merge_patch() {
        let mut v = base();
        v["headers"] = serde_json::json!({"X-A": "1", "X-B": "2"});
        v["method"] = "PUT".into();
        v["timeout_seconds"] = 9.into();
        v["default_locale"] = "en".into();
        v["body"] = serde_json::json!({"type": "json", "fields": {"a": "1", "b": "2"}});
        v["locales"] = serde_json::json!({"ko": {"url": "https://example.com/ko", "body": {"type": "raw", "template": "안녕"}}});
        v["auth"] = serde_json::json!({"type": "jwt", "secret": "s3cret", "claims": {"iss": "x", "aud": "y"}, "ttl_seconds": 60});
        let spec = create(&v.to_string()).unwrap();
        let patch = |json: &str| spec.patched(&decode_json(json.as_bytes()).unwrap());

        // null clears optional fields back to their defaults…
        let cleared = patch(
            r#"{"method": null, "timeout_seconds": null, "headers": null, "default_locale": null,
                "locales": null, "body": null, "auth": null, "enabled": null}"#,
        )
        .unwrap();
        assert_eq!(cleared.method, HttpMethod::Post);
        assert_eq!(cleared.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
        assert!(cleared.headers.is_empty() && cleared.locales.is_empty());
        assert_eq!((cleared.default_locale, cleared.body), (None, None));
        assert_eq!(cleared.auth, Auth::None);
        assert!(cleared.enabled);
        // …but never a required one, and the error names it.
        for field in ["name", "url", "events"] {
            let err = patch(&format!(r#"{{"{field}": null}}"#)).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), ("invalid_field", field));
        }

        // Objects merge key by key: one header removed, one added, one kept.
        let merged = patch(r#"{"headers": {"X-A": null, "X-C": "3"}}"#).unwrap();
        assert_eq!(
            merged.headers.into_iter().collect::<Vec<_>>(),
            vec![
                ("X-B".to_string(), "2".to_string()),
                ("X-C".to_string(), "3".to_string())
            ]
        );
        // …and so do a body's fields, a locale's parts and JWT claims, keeping the secret
        // the client never saw.
        let merged = patch(
            r#"{"body": {"fields": {"a": null, "c": "3"}}, "locales": {"ko": {"url": null}},
                "auth": {"claims": {"aud": null}, "ttl_seconds": 120}}"#,
        )
        .unwrap();
        let Some(BodyTemplate::Json { fields }) = &merged.body else {
            panic!()
        };
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert!(merged.locales["ko"].url.is_none() && merged.locales["ko"].body.is_some());
        let Auth::Jwt {
            secret,
            claims,
            ttl_seconds,
        } = &merged.auth
        else {
            panic!()
        };
        assert_eq!((secret.as_str(), *ttl_seconds), ("s3cret", 120));
        assert_eq!(claims.keys().collect::<Vec<_>>(), ["iss"]);

        // A new `type` replaces body, auth and a locale's body whole.
        let replaced = patch(
            r#"{"body": {"type": "raw", "template": "t"}, "auth": {"type": "basic", "username": "u", "password": "p"},
                "locales": {"ko": {"body": {"type": "json", "fields": {"k": "v"}}}}}"#,
        )
        .unwrap();
        assert!(matches!(replaced.body, Some(BodyTemplate::Raw { .. })));
        assert!(matches!(replaced.auth, Auth::Basic { .. }));
        assert!(matches!(
            replaced.locales["ko"].body,
            Some(BodyTemplate::Json { .. })
        ));
        // The same type without its required fields is an error naming them.
        let err = patch(r#"{"auth": {"type": "basic", "username": "u"}}"#).unwrap_err();
        assert_eq!(err.field, "auth");
        // Read-only fields are ignored, unknown ones refused.
        assert!(patch(r#"{"id": "wh_x", "version": 7, "signing_secret": "whsec_x"}"#).is_ok());
        assert_eq!(patch(r#"{"colour": "red"}"#).unwrap_err().field, "colour");
    }

    #[test]
    fn a_patch_is_type_checked_without_the_keys_it_removes_or_merges_into() {
        let check = |json: &str| WebhookInput::check_patch(&decode_json(json.as_bytes()).unwrap());
        // null inside an object removes that key: not a value of the wrong type.
        assert!(check(r#"{"headers": {"X-Old": null}, "locales": {"ko": {"url": null}}}"#).is_ok());
        // A body or auth without `type` merges into the current one (checked once merged).
        assert!(
            check(r#"{"body": {"fields": {"a": null}}, "auth": {"claims": {"aud": null}}}"#)
                .is_ok()
        );
        assert!(check(r#"{"locales": {"ko": {"body": {"template": "t"}}}}"#).is_ok());
        // Wrong types are still named.
        assert_eq!(
            check(r#"{"headers": {"X-New": 5}}"#).unwrap_err().field,
            "headers.X-New"
        );
        assert_eq!(
            check(r#"{"timeout_seconds": "9"}"#).unwrap_err().field,
            "timeout_seconds"
        );
        assert_eq!(
            check(r#"{"auth": {"type": "basic", "username": 5, "password": "p"}}"#)
                .unwrap_err()
                .field,
            "auth"
        );
        // A removed name must still be a header name (found by schemathesis).
        assert_eq!(
            check(r#"{"headers": {"/5U\u00ce": null}}"#)
                .unwrap_err()
                .field,
            "headers./5UÎ"
        );
        assert_eq!(
            check(r#"{"locales": {"ko": {"headers": {"a b": null}}}}"#)
                .unwrap_err()
                .field,
            "locales.ko.headers.a b"
        );
        assert_eq!(
            check(r#"{"locales": {"not a tag!": null}}"#)
                .unwrap_err()
                .field,
            "locales.not a tag!"
        );
        assert_eq!(
            check(r#"{"body": {"fields": {"": null}}}"#)
                .unwrap_err()
                .field,
            "body.fields."
        );
        // Removing what could exist is fine.
        assert!(
            check(r#"{"locales": {"pt-BR": null}, "body": {"fields": {"old": null}}}"#).is_ok()
        );
    }

    #[test]
    fn a_bearer_token_and_generation_exclude_each_other_in_a_patch() {
        let mut v = base();
        v["auth"] = serde_json::json!({"type": "bearer", "token": "given-token"});
        let given = create(&v.to_string()).unwrap();
        let generated = given
            .patched(&decode_json(br#"{"auth": {"generate": true}}"#).unwrap())
            .unwrap();
        let Auth::Bearer {
            token,
            generated: true,
        } = &generated.auth
        else {
            panic!("{:?}", generated.auth)
        };
        assert!(token.starts_with("hlt_"));
        let back = generated
            .patched(&decode_json(br#"{"auth": {"token": "another-token"}}"#).unwrap())
            .unwrap();
        assert_eq!(
            back.auth,
            Auth::Bearer {
                token: "another-token".into(),
                generated: false
            }
        );
    }

    #[test]
    fn generated_bearer_tokens_survive_a_patch_that_asks_for_generation_again() {
        let mut v = base();
        v["auth"] = serde_json::json!({"type": "bearer", "generate": true});
        let spec = create(&v.to_string()).unwrap();
        let Auth::Bearer { token, generated } = &spec.auth else {
            panic!("bearer expected")
        };
        assert!(*generated && token.starts_with("hlt_"));
        let again = spec
            .patched(&decode_json(br#"{"auth": {"type": "bearer", "generate": true}}"#).unwrap())
            .unwrap();
        assert_eq!(again.auth, spec.auth);
    }

    /// A webhook read (secrets masked), edited and sent back whole keeps its secrets: the
    /// masked value stood for the stored one and was stored as the secret before.
    #[test]
    fn a_masked_secret_sent_back_keeps_the_stored_one_and_stands_for_nothing_else() {
        let auth_patch = |auth: Value| {
            let mut patch = Map::new();
            patch.insert("auth".to_string(), auth);
            patch
        };
        let view_of = |spec: &WebhookSpec| {
            let hook = Webhook::new("p", spec.clone(), 0);
            serde_json::to_value(hook.view(false)).unwrap()
        };
        for auth in [
            serde_json::json!({"type": "bearer", "token": "short-token"}),
            serde_json::json!({"type": "bearer", "token": "tok_a-long-enough-token-to-show-part-of"}),
            serde_json::json!({"type": "bearer", "generate": true}),
            serde_json::json!({"type": "basic", "username": "u", "password": "hunter2"}),
            serde_json::json!({"type": "jwt", "secret": "s3cret", "claims": {"iss": "x"}}),
        ] {
            let mut v = base();
            v["auth"] = auth.clone();
            let spec = create(&v.to_string()).unwrap();
            let mut read = view_of(&spec);
            read["name"] = "renamed".into();
            let read = read.as_object().unwrap().clone();
            let back = spec.patched(&read).unwrap();
            assert_eq!(
                (back.name.as_str(), &back.auth),
                ("renamed", &spec.auth),
                "{auth}"
            );
            // The auth alone, with another field of it changed.
            let mut edited = read["auth"].clone();
            let other = match spec.auth {
                Auth::Basic { .. } => ("username", serde_json::json!("v")),
                Auth::Jwt { .. } => ("ttl_seconds", serde_json::json!(60)),
                _ => ("type", edited["type"].clone()),
            };
            edited[other.0] = other.1.clone();
            let patched = spec.patched(&auth_patch(edited)).unwrap();
            let secret = |a: &Auth| match a {
                Auth::None => String::new(),
                Auth::Bearer { token, .. } => token.clone(),
                Auth::Basic { password, .. } => password.clone(),
                Auth::Jwt { secret, .. } => secret.clone(),
            };
            assert_eq!(secret(&patched.auth), secret(&spec.auth), "{auth}");
            // A masked value of another scheme's secret, or on create, stands for nothing.
            let field = read["auth"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, v)| {
                    ["token", "password", "secret"].contains(&k.as_str()) && v.is_string()
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap();
            let mut copied = base();
            copied["auth"] = read["auth"].clone();
            copied["auth"].as_object_mut().unwrap().remove("generated");
            let err = create(&copied.to_string()).unwrap_err();
            assert_eq!(err.field, format!("auth.{}", field.0), "{auth}");
            let (switched, secret_field) = match spec.auth {
                Auth::Jwt { .. } => (
                    serde_json::json!({"type": "basic", "username": "u", "password": MASK}),
                    "password",
                ),
                _ => (serde_json::json!({"type": "jwt", "secret": MASK}), "secret"),
            };
            let err = spec.patched(&auth_patch(switched)).unwrap_err();
            assert_eq!(err.field, format!("auth.{secret_field}"), "{auth}");
        }
        // A secret stored masked before this rule does not stop a patch that leaves the
        // auth alone (a pause), and one that touches it is told what to send.
        let mut legacy = create(&base().to_string()).unwrap();
        legacy.auth = Auth::Basic {
            username: "u".into(),
            password: MASK.into(),
        };
        let paused = legacy
            .patched(&decode_json(br#"{"enabled": false}"#).unwrap())
            .unwrap();
        assert!(!paused.enabled);
        let err = legacy
            .patched(&decode_json(br#"{"auth": {"username": "v"}}"#).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "auth.password");
        // A secret that only resembles a mask is a secret.
        for real in ["****", "a****bcde", "x_*****abcd", "*********"] {
            assert!(!looks_masked(real), "{real}");
        }
        assert!(looks_masked("hlt_****abcd") && looks_masked("****abcd") && looks_masked(MASK));
    }

    #[test]
    fn views_mask_secrets_unless_revealed() {
        let mut v = base();
        v["auth"] = serde_json::json!({"type": "basic", "username": "u", "password": "hunter2"});
        let spec = create(&v.to_string()).unwrap();
        let hook = Webhook {
            id: "wh_1".into(),
            project_id: "p".into(),
            spec,
            signing: SigningSecrets {
                current: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                previous: None,
                previous_expires_at: None,
            },
            created_at: 0,
            updated_at: 0,
            version: 1,
            disabled_reason: None,
            disabled_at: None,
        };
        let masked = serde_json::to_string(&hook.view(false)).unwrap();
        assert!(!masked.contains("hunter2") && !masked.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2La"));
        assert!(masked.contains("whsec_****LaSw"));
        let shown = serde_json::to_string(&hook.view(true)).unwrap();
        assert!(shown.contains("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }

    #[test]
    fn what_is_refused_as_ambiguous_does_not_stop_a_pause_of_a_webhook_stored_so() {
        let mut stored = create(&base().to_string()).unwrap();
        stored.url = " https://example.com/h".into();
        stored.headers = [("X-A".into(), "1".into()), ("x-a".into(), "2".into())].into();
        let paused = stored
            .patched(&decode_json(br#"{"enabled": false}"#).unwrap())
            .unwrap();
        assert!(!paused.enabled);
        for (patch, field) in [
            (&br#"{"url": " https://example.com/h"}"#[..], "url"),
            (br#"{"headers": {"X-B": "3"}}"#, "headers.x-a"),
        ] {
            assert_eq!(
                stored
                    .patched(&decode_json(patch).unwrap())
                    .unwrap_err()
                    .field,
                field
            );
        }
        let fixed = stored
            .patched(
                &decode_json(br#"{"url": "https://example.com/h", "headers": {"x-a": null}}"#)
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(fixed.headers.len(), 1);
    }

    #[test]
    fn credential_headers_are_masked_and_keep_their_value_when_sent_back() {
        for (name, sensitive) in [
            ("Authorization", true),
            ("Cookie", true),
            ("X-Api-Key", true),
            ("x-functions-key", true),
            ("X-Auth-Token", true),
            ("X-Client-Secret", true),
            ("X-Session-Id", true),
            ("X-Trace", false),
            ("Content-Type", false),
            ("webhook-signature", false),
        ] {
            assert_eq!(is_sensitive_header(name), sensitive, "{name}");
        }
        assert_eq!(
            shown_header_value("Authorization", "Bearer abc"),
            "Bearer ********"
        );
        assert_eq!(shown_header_value("authorization", "abc"), MASK);
        assert_eq!(shown_header_value("X-Api-Key", "Bearer abc"), MASK);
        assert_eq!(shown_header_value("X-Trace", "abc"), "abc");

        let mut v = base();
        v["headers"] = serde_json::json!({
            "Authorization": "Token t-123", "X-Api-Key": "k-456", "X-Trace": "plain"
        });
        let spec = create(&v.to_string()).unwrap();
        let hook = Webhook::new("p", spec.clone(), 0);
        let read = serde_json::to_value(hook.view(true)).unwrap();
        assert_eq!(
            read["headers"],
            serde_json::json!({
                "Authorization": "Token ********", "X-Api-Key": MASK, "X-Trace": "plain"
            })
        );
        // Sent back whole, edited elsewhere: every header keeps its stored value.
        let mut back = read.as_object().unwrap().clone();
        back.insert("name".into(), "renamed".into());
        let patched = spec.patched(&back).unwrap();
        assert_eq!(
            (patched.name.as_str(), &patched.headers),
            ("renamed", &spec.headers)
        );
        // A new value replaces the stored one; a removal removes it.
        let patched = spec
            .patched(
                &decode_json(br#"{"headers": {"X-Api-Key": "k-789", "Authorization": null}}"#)
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            patched.headers.into_iter().collect::<Vec<_>>(),
            [
                ("X-Api-Key".into(), "k-789".into()),
                ("X-Trace".into(), "plain".into())
            ]
        );
        // A mask where nothing is stored under that name stands for nothing: refused by name,
        // on create and in a patch; a header that is no credential may hold asterisks.
        for header in [
            serde_json::json!({"X-Other-Key": MASK}),
            serde_json::json!({"authorization": "Token ********"}),
        ] {
            let name = header.as_object().unwrap().keys().next().unwrap().clone();
            let err = spec
                .patched(
                    &decode_json(
                        serde_json::json!({"headers": header})
                            .to_string()
                            .as_bytes(),
                    )
                    .unwrap(),
                )
                .unwrap_err();
            assert_eq!(err.field, format!("headers.{name}"));
            let mut v = base();
            v["headers"] = header;
            assert_eq!(field_of(&v.to_string()), format!("headers.{name}"));
        }
        let mut v = base();
        v["headers"] = serde_json::json!({"X-Trace": MASK, "X-Api-Key": "a****bcde"});
        assert!(create(&v.to_string()).is_ok());
    }

    #[test]
    fn rotation_keeps_the_previous_secret_for_the_overlap() {
        let s = SigningSecrets {
            current: "a".into(),
            previous: None,
            previous_expires_at: None,
        };
        let r = s.rotated("b".into(), 1_000, 500);
        assert_eq!(
            (
                r.current.as_str(),
                r.previous.as_deref(),
                r.previous_expires_at
            ),
            ("b", Some("a"), Some(1_500))
        );
    }
}
