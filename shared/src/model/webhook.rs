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
    None,
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
    #[serde(default, rename = "signing_secret")]
    _signing_secret: Option<serde::de::IgnoredAny>,
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
}

impl WebhookSpec {
    /// Builds a spec from a create request: required fields must be present.
    pub fn from_create(input: WebhookInput) -> Result<WebhookSpec, FieldError> {
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
            auth: resolve_auth(input.auth, None)?,
            timeout_seconds: input.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Applies a patch request: present fields replace, absent ones stay; then the whole
    /// result is validated again.
    pub fn patched(&self, input: WebhookInput) -> Result<WebhookSpec, FieldError> {
        let spec = WebhookSpec {
            name: input.name.unwrap_or_else(|| self.name.clone()),
            url: input.url.unwrap_or_else(|| self.url.clone()),
            method: input.method.unwrap_or(self.method),
            headers: input.headers.unwrap_or_else(|| self.headers.clone()),
            body: input.body.unwrap_or_else(|| self.body.clone()),
            locales: input.locales.unwrap_or_else(|| self.locales.clone()),
            default_locale: input
                .default_locale
                .unwrap_or_else(|| self.default_locale.clone()),
            events: input.events.unwrap_or_else(|| self.events.clone()),
            enabled: input.enabled.unwrap_or(self.enabled),
            auth: match input.auth {
                Some(auth) => resolve_auth(Some(auth), Some(&self.auth))?,
                None => self.auth.clone(),
            },
            timeout_seconds: input.timeout_seconds.unwrap_or(self.timeout_seconds),
        };
        spec.validate()?;
        Ok(spec)
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
}

/// Turns the requested auth into the stored one. `previous` lets a patch keep a
/// generated token when the same scheme is requested again without a new token.
fn resolve_auth(input: Option<AuthInput>, previous: Option<&Auth>) -> Result<Auth, FieldError> {
    Ok(match input {
        None | Some(AuthInput::None) => Auth::None,
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
                if key.is_empty() || key.len() > 256 {
                    return Err(FieldError::invalid(
                        f,
                        "a field name must be 1 to 256 bytes",
                    ));
                }
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

fn check_header_name(field: &str, name: &str) -> Result<(), FieldError> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || name.len() > 256 || !name.bytes().all(is_tchar) {
        return Err(FieldError::invalid(
            field,
            "is not a valid HTTP header name",
        ));
    }
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
}

/// A webhook as the API shows it: secrets masked unless `reveal` (create and rotate).
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
        "********".to_string()
    }
}

impl Webhook {
    /// A new webhook of `project_id`: a fresh id, a fresh signing secret, version 1.
    pub fn new(project_id: &str, spec: WebhookSpec, now: Millis) -> Webhook {
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
                "password": if reveal { password.clone() } else { "********".to_string() },
            }),
            Auth::Jwt {
                secret,
                claims,
                ttl_seconds,
            } => serde_json::json!({
                "type": "jwt",
                "secret": if reveal { secret.clone() } else { "********".to_string() },
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
            headers: s.headers.clone(),
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
            .patched(decode_json(br#"{"enabled": false}"#).unwrap())
            .unwrap();
        assert!(!patched.enabled);
        assert_eq!(patched.url, spec.url);
        let err = spec
            .patched(decode_json(br#"{"timeout_seconds": 120}"#).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "timeout_seconds");
        let with_body = spec
            .patched(decode_json(br#"{"body": {"type": "json", "fields": {"a": "b"}}}"#).unwrap())
            .unwrap();
        assert!(with_body.body.is_some());
        let cleared = with_body
            .patched(decode_json(br#"{"body": null}"#).unwrap())
            .unwrap();
        assert!(cleared.body.is_none());
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
            .patched(decode_json(br#"{"auth": {"type": "bearer", "generate": true}}"#).unwrap())
            .unwrap();
        assert_eq!(again.auth, spec.auth);
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
        };
        let masked = serde_json::to_string(&hook.view(false)).unwrap();
        assert!(!masked.contains("hunter2") && !masked.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2La"));
        assert!(masked.contains("whsec_****LaSw"));
        let shown = serde_json::to_string(&hook.view(true)).unwrap();
        assert!(shown.contains("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
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
