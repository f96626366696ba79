//! Liquid templating of a webhook's URL, headers and body.
//!
//! A [`CompiledWebhook`] is parsed once (at registration to reject bad templates with
//! their position, and once per webhook version in the delivery function) and rendered
//! for each event. Rendering never panics: a failure is a [`RenderError`] value.

mod condition;
mod context;
mod dates;
mod encode;
mod host;
mod limits;
mod numbers;
mod shape;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::LazyLock;

use liquid::{Parser, Template};
use serde_json::{Map, Value};

use crate::clock;
use crate::error::FieldError;
use crate::model::{BodyTemplate, Event, HttpMethod, Webhook, WebhookSpec};
use context::{Fields, Node, Object};
use host::HostRule;
use shape::Shape;

/// The most a rendered body may weigh.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most a rendered URL or header value may weigh.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

pub use condition::Condition;
pub use limits::{
    MAX_ITERATIONS, MAX_NESTING, MAX_PATH_PARTS, MAX_PRODUCED_BYTES, MAX_RENDER_TIME,
    MAX_UNIQ_ITEMS, MAX_VALUE_BYTES,
};

static PARSER: LazyLock<Option<Parser>> = LazyLock::new(|| limits::parser().ok());

/// The longest template error message passed on (Liquid quotes the values involved).
const MAX_MESSAGE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{field}: the template failed to render: {message}")]
    Failed { field: String, message: String },
    #[error("{field}: the rendered output is larger than {limit} bytes")]
    TooLarge { field: String, limit: usize },
    #[error("{field}: the rendered value contains a control character (CR, LF, NUL…)")]
    ControlCharacter { field: String },
    /// `{% abort_message(reason) %}`: not to be sent (SPEC §9). Not an error of the
    /// webhook's: its template decided so.
    #[error("aborted: {reason}")]
    Aborted { reason: String },
}

impl RenderError {
    /// The field that failed.
    pub fn field(&self) -> &str {
        match self {
            RenderError::Failed { field, .. }
            | RenderError::TooLarge { field, .. }
            | RenderError::ControlCharacter { field } => field,
            RenderError::Aborted { .. } => "",
        }
    }

    /// What the attempt log says of a message its template aborted: `aborted: reason`
    /// (`aborted` without one).
    pub fn abort_error(reason: &str) -> String {
        if reason.is_empty() {
            "aborted".to_string()
        } else {
            format!("aborted: {reason}")
        }
    }

    /// What failed, without Liquid's message (which can quote the template's values):
    /// for a process log, where the attempt log has the whole of it.
    pub fn summary(&self) -> String {
        match self {
            RenderError::Failed { field, .. } => format!("{field}: the template failed to render"),
            other => other.to_string(),
        }
    }
}

/// A request ready to send (or to show in a preview).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRequest {
    pub method: HttpMethod,
    pub url: String,
    /// Configured headers, rendered, plus `Content-Type` when the body has one.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a template may refer to besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub project_id: &'a str,
    pub webhook_id: &'a str,
    pub webhook_name: &'a str,
}

impl<'a> Subject<'a> {
    /// What a stored webhook's templates see of it.
    pub fn of(webhook: &'a Webhook) -> Subject<'a> {
        Subject {
            project_id: &webhook.project_id,
            webhook_id: &webhook.id,
            webhook_name: &webhook.spec.name,
        }
    }
}

fn object<'a, const N: usize>(entries: [(&'a str, Node<'a>); N]) -> Node<'a> {
    Node::Object(Object(Fields::from(entries)))
}

fn webhook_node(subject: Subject<'_>) -> Node<'_> {
    object([
        ("id", Node::str(subject.webhook_id)),
        ("name", Node::str(subject.webhook_name)),
    ])
}

fn project_node(id: &str) -> Node<'_> {
    object([("id", Node::str(id))])
}

/// The Liquid context of one event for one webhook (SPEC §6): `event`, `data`, `user`,
/// `webhook`, `project`.
pub struct RenderContext<'a> {
    root: Object<'a>,
    event: &'a Event,
    project_id: &'a str,
}

impl<'a> RenderContext<'a> {
    pub fn new(event: &'a Event, subject: Subject<'a>) -> RenderContext<'a> {
        let mut root = Fields::from([
            (
                "event",
                object([
                    ("id", Node::str(&event.id)),
                    ("type", Node::str(&event.event_type)),
                    (
                        "timestamp",
                        Node::string(clock::to_rfc3339(event.timestamp)),
                    ),
                    (
                        "channel",
                        event.channel.as_deref().map_or(Node::Nil, Node::str),
                    ),
                ]),
            ),
            ("data", Node::json(&event.data)),
            ("webhook", webhook_node(subject)),
            ("project", project_node(subject.project_id)),
        ]);
        if let Some(user) = &event.user {
            let mut u = Fields::from([("attributes", Node::json(&user.attributes))]);
            if let Some(id) = &user.id {
                u.insert("id", Node::str(id));
            }
            if let Some(locale) = &user.locale {
                u.insert("locale", Node::str(locale));
            }
            root.insert("user", Node::Object(Object(u)));
        }
        RenderContext {
            root: Object(root),
            event,
            project_id: subject.project_id,
        }
    }

    /// The same event's context for another webhook of the same project: what fan-out
    /// does between one webhook's filter and the next, instead of building it again.
    pub fn set_subject(&mut self, subject: Subject<'a>) {
        self.root.0.insert("webhook", webhook_node(subject));
        if subject.project_id != self.project_id {
            self.root
                .0
                .insert("project", project_node(subject.project_id));
            self.project_id = subject.project_id;
        }
    }

    fn locale(&self) -> Option<&str> {
        self.event.user.as_ref().and_then(|u| u.locale.as_deref())
    }

    /// The standard envelope of SPEC §4, sent when a webhook has no body template.
    fn envelope(&self) -> String {
        #[derive(serde::Serialize)]
        struct Envelope<'e> {
            id: &'e str,
            event: &'e str,
            /// The event type again, as the Standard Webhooks payload names it.
            #[serde(rename = "type")]
            event_type: &'e str,
            #[serde(skip_serializing_if = "Option::is_none")]
            channel: Option<&'e str>,
            timestamp: String,
            project_id: &'e str,
            data: &'e Map<String, Value>,
        }
        let e = self.event;
        serde_json::to_string(&Envelope {
            id: &e.id,
            event: &e.event_type,
            event_type: &e.event_type,
            channel: e.channel.as_deref(),
            timestamp: clock::to_rfc3339(e.timestamp),
            project_id: self.project_id,
            data: &e.data,
        })
        .unwrap_or_default()
    }
}

/// One parsed template, with its shape (see [`shape`]).
struct Compiled {
    liquid: Template,
    shape: Shape,
}

enum CompiledBody {
    /// The standard envelope of SPEC §4.
    Envelope,
    Json(Vec<(String, Compiled)>),
    Raw {
        template: Compiled,
        content_type: String,
    },
}

/// A URL template and the host it must keep (see [`host`]).
struct CompiledUrl {
    template: Compiled,
    host: Option<HostRule>,
}

fn compile_url(field: &str, source: &str) -> Result<CompiledUrl, FieldError> {
    Ok(CompiledUrl {
        template: parse(field, source)?,
        host: HostRule::of(source),
    })
}

impl CompiledUrl {
    fn render(&self, ctx: &RenderContext<'_>) -> Result<String, Failure> {
        let url = render_line(&self.template, ctx)?;
        if let Some(rule) = &self.host
            // One that does not parse, or has no host, is refused as it is sent.
            && let Ok(parsed) = url::Url::parse(&url)
            && let Some(host) = parsed.host_str()
            && !rule.allows(host)
        {
            return Err(Failure::Failed(rule.refusal(host)));
        }
        Ok(url)
    }
}

struct Variant {
    url: Option<CompiledUrl>,
    body: Option<CompiledBody>,
}

/// A webhook's templates, parsed.
pub struct CompiledWebhook {
    method: HttpMethod,
    url: CompiledUrl,
    headers: Vec<(String, Compiled)>,
    body: CompiledBody,
    locales: BTreeMap<String, Variant>,
    default_locale: Option<String>,
    filter: Option<Condition>,
}

impl std::fmt::Debug for CompiledWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledWebhook")
            .field("method", &self.method)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("locales", &self.locales.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn parse(field: &str, source: &str) -> Result<Compiled, FieldError> {
    let parser = PARSER.as_ref().ok_or_else(|| {
        FieldError::new(
            "invalid_template",
            field,
            "the Liquid parser is unavailable",
        )
    })?;
    let invalid = |message: String| FieldError::new("invalid_template", field, message);
    limits::check_nesting(source).map_err(invalid)?;
    limits::check_literals(source).map_err(invalid)?;
    limits::check_paths(source).map_err(invalid)?;
    let readable = limits::blank_abort_parentheses(source);
    let source = readable.as_ref();
    // The checks above keep Liquid's parser from the inputs it panics on; should one
    // remain, it costs this template, not the process.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse(source)))
        .map_err(|panic| {
            tracing::error!(field, panic = %crate::error::panic_message(&*panic), "Liquid's parser panicked");
            invalid("the Liquid template could not be parsed".to_string())
        })?;
    let liquid = parsed.map_err(|e| {
        invalid(format!(
            "the Liquid template does not parse: {}",
            describe(&e)
        ))
    })?;
    Ok(Compiled {
        liquid,
        shape: Shape::of(source),
    })
}

/// Liquid's parse error (a block that points at the place) as one line:
/// `line L, column C: what is wrong`.
fn describe(e: &liquid::Error) -> String {
    let text = e.to_string();
    let position = text
        .split_once("--> ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.split_once(':'))
        .and_then(|(l, c)| Some((l.parse::<usize>().ok()?, c.parse::<usize>().ok()?)));
    let mut lines = text.lines().map(str::trim);
    let what = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("= "))
        .unwrap_or_else(|| text.trim_start_matches("liquid:").trim());
    // Liquid names the tag it did not know; the list of those it knows is noise here.
    let detail = lines
        .find_map(|l| l.strip_prefix("requested="))
        .map(|r| format!(" (`{r}`)"))
        .unwrap_or_default();
    let what = shorten(&format!("{}{detail}", what.trim_end_matches('.')));
    match position {
        Some((line, column)) => format!("line {line}, column {column}: {what}"),
        None => what,
    }
}

fn compile_body(field: &str, body: Option<&BodyTemplate>) -> Result<CompiledBody, FieldError> {
    Ok(match body {
        None => CompiledBody::Envelope,
        Some(BodyTemplate::Json { fields }) => CompiledBody::Json(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), parse(&format!("{field}.fields.{k}"), v)?)))
                .collect::<Result<_, FieldError>>()?,
        ),
        Some(BodyTemplate::Raw {
            template,
            content_type,
        }) => CompiledBody::Raw {
            template: parse(&format!("{field}.template"), template)?,
            content_type: content_type.clone(),
        },
    })
}

/// A writer that refuses to grow past a limit, so a runaway loop cannot fill memory.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why one template failed, before we know which field to name.
enum Failure {
    Failed(String),
    TooLarge(usize),
    ControlCharacter,
    Aborted(String),
}

impl Failure {
    fn at(self, field: String) -> RenderError {
        match self {
            Failure::Failed(message) => RenderError::Failed { field, message },
            Failure::TooLarge(limit) => RenderError::TooLarge { field, limit },
            Failure::ControlCharacter => RenderError::ControlCharacter { field },
            Failure::Aborted(reason) => RenderError::Aborted { reason },
        }
    }
}

fn render_one(
    template: &Compiled,
    ctx: &RenderContext<'_>,
    limit: usize,
) -> Result<String, Failure> {
    let quick = match &template.shape {
        Shape::Text(text) => Some(text.clone()),
        Shape::Lookup(path) => Shape::look_up(path, &ctx.root),
        Shape::General => None,
    };
    if let Some(output) = quick {
        return if output.len() > limit {
            Err(Failure::TooLarge(limit))
        } else {
            Ok(output)
        };
    }
    let mut out = Capped {
        buf: Vec::with_capacity(64),
        limit,
        overflowed: false,
    };
    if let Err(e) = template.liquid.render_to(&mut out, &ctx.root) {
        if let Some(reason) = limits::take_abort() {
            return Err(Failure::Aborted(reason));
        }
        if out.overflowed {
            return Err(Failure::TooLarge(limit));
        }
        let message = e.to_string();
        return Err(Failure::Failed(shorten(
            message.trim_start_matches("liquid: ").trim(),
        )));
    }
    // Liquid writes only valid UTF-8 from UTF-8 sources; stay total anyway.
    Ok(String::from_utf8(out.buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The first [`MAX_MESSAGE_BYTES`] of a message, cut at a character boundary.
fn shorten(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// Appends `s` as a JSON string literal.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a str always serializes.
    let _ = serde_json::to_writer(out, s);
}

/// A URL or header value: one line, no control characters.
fn render_line(template: &Compiled, ctx: &RenderContext<'_>) -> Result<String, Failure> {
    let value = render_one(template, ctx, MAX_LINE_BYTES)?;
    if value.chars().any(char::is_control) {
        return Err(Failure::ControlCharacter);
    }
    Ok(value)
}

impl CompiledWebhook {
    /// Parses every template of the spec; the error names the field and the position.
    pub fn compile(spec: &WebhookSpec) -> Result<CompiledWebhook, FieldError> {
        let url = compile_url("url", &spec.url)?;
        let headers = spec
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), parse(&format!("headers.{k}"), v)?)))
            .collect::<Result<_, FieldError>>()?;
        let body = compile_body("body", spec.body.as_ref())?;
        let locales = spec
            .locales
            .iter()
            .map(|(tag, variant)| {
                let field = format!("locales.{tag}");
                let url = match &variant.url {
                    Some(u) => Some(compile_url(&format!("{field}.url"), u)?),
                    None => None,
                };
                let body = match &variant.body {
                    Some(b) => Some(compile_body(&format!("{field}.body"), Some(b))?),
                    None => None,
                };
                Ok((tag.to_ascii_lowercase(), Variant { url, body }))
            })
            .collect::<Result<_, FieldError>>()?;
        let filter = spec.filter.as_deref().map(Condition::compile).transpose()?;
        Ok(CompiledWebhook {
            method: spec.method,
            url,
            headers,
            body,
            locales,
            default_locale: spec.default_locale.as_ref().map(|l| l.to_ascii_lowercase()),
            filter,
        })
    }

    /// The webhook's filter, parsed.
    pub fn filter(&self) -> Option<&Condition> {
        self.filter.as_ref()
    }

    /// The variant for a locale: exact tag, then its language, then the default locale.
    fn variant(&self, locale: Option<&str>) -> Option<(&str, &Variant)> {
        let lookup = |tag: &str| {
            let tag = tag.to_ascii_lowercase().replace('_', "-");
            self.locales
                .get_key_value(tag.as_str())
                .or_else(|| {
                    let lang = tag.split('-').next().unwrap_or_default();
                    self.locales.get_key_value(lang)
                })
                .map(|(k, v)| (k.as_str(), v))
        };
        locale
            .and_then(lookup)
            .or_else(|| self.default_locale.as_deref().and_then(lookup))
    }

    /// Renders the request for one event, within one render budget (see [`limits`]).
    pub fn render(&self, ctx: &RenderContext<'_>) -> Result<RenderedRequest, RenderError> {
        limits::metered(|| self.render_unmetered(ctx))
    }

    fn render_unmetered(&self, ctx: &RenderContext<'_>) -> Result<RenderedRequest, RenderError> {
        let variant = self.variant(ctx.locale());
        let (url, url_locale) =
            match variant.and_then(|(tag, v)| v.url.as_ref().map(|u| (u, Some(tag)))) {
                Some(found) => found,
                None => (&self.url, None),
            };
        let url = url.render(ctx).map_err(|f| {
            f.at(url_locale.map_or_else(|| "url".to_string(), |tag| format!("locales.{tag}.url")))
        })?;
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, template) in &self.headers {
            let value = render_line(template, ctx).map_err(|f| f.at(format!("headers.{name}")))?;
            headers.push((name.clone(), value));
        }
        let (body, body_locale) =
            match variant.and_then(|(tag, v)| v.body.as_ref().map(|b| (b, Some(tag)))) {
                Some(found) => found,
                None => (&self.body, None),
            };
        let body_field =
            || body_locale.map_or_else(|| "body".to_string(), |tag| format!("locales.{tag}.body"));
        let (body, content_type) = match body {
            CompiledBody::Envelope => (ctx.envelope(), "application/json"),
            CompiledBody::Json(fields) => {
                // Written as it renders: the fields are already in key order, as a JSON
                // object of them would print.
                let mut json = Vec::with_capacity(64 * fields.len() + 2);
                json.push(b'{');
                let mut size = 0;
                for (key, template) in fields {
                    let value = render_one(template, ctx, MAX_BODY_BYTES - size)
                        .map_err(|f| f.at(format!("{}.fields.{key}", body_field())))?;
                    size += value.len();
                    if json.len() > 1 {
                        json.push(b',');
                    }
                    write_json_string(&mut json, key);
                    json.push(b':');
                    write_json_string(&mut json, &value);
                }
                json.push(b'}');
                // Every piece is UTF-8; stay total anyway.
                let json = String::from_utf8(json)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (json, "application/json")
            }
            CompiledBody::Raw {
                template,
                content_type,
            } => (
                render_one(template, ctx, MAX_BODY_BYTES)
                    .map_err(|f| f.at(format!("{}.template", body_field())))?,
                content_type.as_str(),
            ),
        };
        if self.method == HttpMethod::Get {
            return Ok(RenderedRequest {
                method: self.method,
                url,
                headers,
                body: String::new(),
            });
        }
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".to_string(), content_type.to_string()));
        }
        Ok(RenderedRequest {
            method: self.method,
            url,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests;
