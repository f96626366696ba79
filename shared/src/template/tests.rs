use super::*;
use crate::model::{WebhookInput, decode_json};

fn spec(json: serde_json::Value) -> WebhookSpec {
    let mut base = serde_json::json!({"name": "t", "url": "https://example.com/", "events": ["*"]});
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    WebhookSpec::from_create(decode_json::<WebhookInput>(base.to_string().as_bytes()).unwrap())
        .unwrap()
}

fn event(json: serde_json::Value) -> Event {
    let mut base = serde_json::json!({"id": "ev_1", "type": "order.placed", "timestamp": "2026-11-22T07:00:00Z"});
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    Event::from_input(
        decode_json(base.to_string().as_bytes()).unwrap(),
        0,
        || unreachable!(),
    )
    .unwrap()
}

const SUBJECT: Subject<'static> = Subject {
    project_id: "acme",
    webhook_id: "wh_1",
    webhook_name: "crm-sync",
};

fn render(
    spec_json: serde_json::Value,
    event_json: serde_json::Value,
) -> Result<RenderedRequest, RenderError> {
    let compiled = CompiledWebhook::compile(&spec(spec_json)).unwrap();
    compiled.render(&RenderContext::new(&event(event_json), SUBJECT))
}

fn header<'a>(req: &'a RenderedRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn default_renders_for_absent_variables_at_any_depth() {
    let req = render(
        serde_json::json!({
            "url": "https://example.com/u/{{ user.id | default: 'anon' }}",
            "body": {"type": "json", "fields": {
                "email": "{{ user.attributes.email | default: 'n/a' }}",
                "deep": "{{ data.a.b.c.d | default: 'none' }}",
                "top": "{{ nothing | default: 'x' }}",
                "plain": "[{{ data.missing }}]",
                "present": "{{ data.total | default: 0 }}"
            }}
        }),
        serde_json::json!({"data": {"total": 42}}),
    )
    .unwrap();
    assert_eq!(req.url, "https://example.com/u/anon");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"email": "n/a", "deep": "none", "top": "x", "plain": "[]", "present": "42"})
    );
}

#[test]
fn present_variables_win_over_default_and_conditionals_see_absence() {
    let req = render(
        serde_json::json!({"body": {"type": "raw", "template":
            "{% if user.attributes.vip %}vip{% else %}regular{% endif %} {{ user.id | default: 'anon' }} {{ data.items | size }} {% for i in data.items %}{{ i }},{% endfor %}{% for x in data.nothing %}never{% endfor %}",
            "content_type": "text/plain"}}),
        serde_json::json!({"user": {"id": "u1", "attributes": {}}, "data": {"items": [1, 2]}}),
    )
    .unwrap();
    assert_eq!(req.body, "regular u1 2 1,2,");
    assert_eq!(header(&req, "content-type"), Some("text/plain"));
}

#[test]
fn json_fields_escape_hostile_values_into_valid_json() {
    let hostile = "quote\" backslash\\ newline\n tab\t nul\u{0} bell\u{7} 한국어 emoji🎉 </script>";
    let req = render(
        serde_json::json!({"body": {"type": "json", "fields": {"v": "{{ data.v }}", "k\"ey": "x"}}}),
        serde_json::json!({"data": {"v": hostile}}),
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["v"], hostile);
    assert_eq!(body["k\"ey"], "x");
    // Byte for byte what serde_json prints for the object: keys in order, compact.
    assert_eq!(req.body, body.to_string());
    assert_eq!(header(&req, "content-type"), Some("application/json"));
}

#[test]
fn no_body_template_sends_the_standard_envelope() {
    let req = render(serde_json::json!({}), serde_json::json!({"data": {"a": 1}})).unwrap();
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"id": "ev_1", "event": "order.placed", "timestamp": "2026-11-22T07:00:00.000Z",
            "project_id": "acme", "data": {"a": 1}})
    );
}

#[test]
fn the_context_exposes_event_webhook_and_project() {
    let req = render(
        serde_json::json!({"body": {"type": "raw", "template": "{{ event.id }}|{{ event.type }}|{{ event.timestamp }}|{{ webhook.id }}|{{ webhook.name }}|{{ project.id }}|{{ user.locale }}"}}),
        serde_json::json!({"user": {"locale": "ko"}}),
    )
    .unwrap();
    assert_eq!(
        req.body,
        "ev_1|order.placed|2026-11-22T07:00:00.000Z|wh_1|crm-sync|acme|ko"
    );
}

#[test]
fn form_bodies_and_filters_work() {
    let req = render(
        serde_json::json!({"body": {"type": "raw", "template": "to={{ data.to | url_encode }}&text={{ data.text | upcase }}",
            "content_type": "application/x-www-form-urlencoded"}}),
        serde_json::json!({"data": {"to": "a b&c", "text": "hi"}}),
    )
    .unwrap();
    assert_eq!(req.body, "to=a%20b%26c&text=HI");
}

#[test]
fn locale_variants_fall_back_to_language_then_default_locale_then_base() {
    let s = serde_json::json!({
        "url": "https://example.com/base",
        "locales": {
            "ko": {"url": "https://example.com/ko", "body": {"type": "raw", "template": "안녕 {{ user.id }}"}},
            "en": {"body": {"type": "raw", "template": "hello"}}
        },
        "default_locale": "en"
    });
    let ko = render(
        s.clone(),
        serde_json::json!({"user": {"id": "u", "locale": "ko-KR"}}),
    )
    .unwrap();
    assert_eq!(
        (ko.url.as_str(), ko.body.as_str()),
        ("https://example.com/ko", "안녕 u")
    );
    let fr = render(s.clone(), serde_json::json!({"user": {"locale": "fr"}})).unwrap();
    assert_eq!(
        (fr.url.as_str(), fr.body.as_str()),
        ("https://example.com/base", "hello")
    );
    let none = render(s, serde_json::json!({})).unwrap();
    assert_eq!(none.body, "hello");
}

#[test]
fn parse_errors_name_the_field_and_the_position() {
    let bad = spec(serde_json::json!({"headers": {"X-A": "{{ event.type | }}"}}));
    let err = CompiledWebhook::compile(&bad).unwrap_err();
    assert_eq!(
        (err.code, err.field.as_str()),
        ("invalid_template", "headers.X-A")
    );
    assert!(err.message.contains("1:"), "{}", err.message);
    let bad = spec(
        serde_json::json!({"locales": {"ko": {"body": {"type": "json", "fields": {"a": "{% if %}"}}}}}),
    );
    assert_eq!(
        CompiledWebhook::compile(&bad).unwrap_err().field,
        "locales.ko.body.fields.a"
    );
}

#[test]
fn rendered_headers_and_urls_with_line_breaks_are_errors() {
    let err = render(
        serde_json::json!({"headers": {"X-A": "{{ data.v }}"}}),
        serde_json::json!({"data": {"v": "a\r\nX-Injected: yes"}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        RenderError::ControlCharacter {
            field: "headers.X-A".into()
        }
    );
    let err = render(
        serde_json::json!({"url": "https://{{ data.host }}/"}),
        serde_json::json!({"data": {"host": "a.com\r\nHost: b"}}),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::ControlCharacter { .. }));
}

#[test]
fn runaway_output_is_cut_off_as_an_error() {
    let err = render(
        serde_json::json!({"body": {"type": "raw", "template": "{% for i in (1..100000) %}0123456789abcdef{% endfor %}"}}),
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::TooLarge { .. }), "{err:?}");
}

#[test]
fn get_requests_carry_no_body() {
    let req = render(serde_json::json!({"method": "GET"}), serde_json::json!({})).unwrap();
    assert!(req.body.is_empty());
    assert_eq!(header(&req, "content-type"), None);
}

#[test]
fn assigned_and_loop_variables_shadow_the_lenient_globals() {
    let req = render(
        serde_json::json!({"body": {"type": "raw", "template": "{% assign who = user.id | default: 'anon' %}{{ who }}{% for data in (1..2) %}{{ data }}{% endfor %}"}}),
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(req.body, "anon12");
}
