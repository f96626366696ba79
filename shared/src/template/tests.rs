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
        serde_json::json!({"id": "ev_1", "event": "order.placed", "type": "order.placed",
            "timestamp": "2026-11-22T07:00:00.000Z", "project_id": "acme", "data": {"a": 1}})
    );
    // An event's channel is in the envelope, and in the context as event.channel.
    let req = render(
        serde_json::json!({"headers": {"X-Channel": "[{{ event.channel }}]"}}),
        serde_json::json!({"channel": "store"}),
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["channel"], "store");
    assert_eq!(header(&req, "x-channel"), Some("[store]"));
    let none = render(
        serde_json::json!({"headers": {"X-Channel": "[{{ event.channel }}]"}}),
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(header(&none, "x-channel"), Some("[]"));
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
    assert_eq!(
        err.message,
        "the Liquid template does not parse: line 1, column 17: expected Identifier"
    );
    // Further lines and columns, and the tag Liquid did not know.
    let bad = spec(serde_json::json!({"body": {"type": "raw", "template": "a\n\n  {% endif %}"}}));
    let err = CompiledWebhook::compile(&bad).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.message.as_str()),
        (
            "body.template",
            "the Liquid template does not parse: line 3, column 6: Unknown tag (`endif`)"
        )
    );
    // An integer Liquid's parser could not hold is refused before it sees it.
    let bad = spec(
        serde_json::json!({"url": "https://x.y/{{ 'a' | truncate: 1 }}\n{{ \"9\" | truncate: 99999999999999999999 }}"}),
    );
    let err = CompiledWebhook::compile(&bad).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.message.as_str()),
        (
            "url",
            "line 2, column 20: the number 99999999999999999999 does not fit a 64-bit integer"
        )
    );
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
fn an_events_values_cannot_move_a_url_to_another_host() {
    let url = |template: &str, data: serde_json::Value| {
        render(
            serde_json::json!({"url": template}),
            serde_json::json!({"data": data}),
        )
        .map(|r| r.url)
    };
    // A value meant for the path, right after the host.
    let template = "https://api.example.com{{ data.path }}";
    assert_eq!(
        url(template, serde_json::json!({"path": "/orders/1"})).unwrap(),
        "https://api.example.com/orders/1"
    );
    let err = url(template, serde_json::json!({"path": ".evil.com/x"})).unwrap_err();
    assert_eq!(err.field(), "url");
    let message = err.to_string();
    assert!(
        message.contains("`api.example.com.evil.com`")
            && message.contains("must begin the port or the path"),
        "{message}"
    );
    // A tenant's subdomain stays under the domain written out.
    let template = "https://{{ data.tenant }}.example.com/hooks";
    assert!(url(template, serde_json::json!({"tenant": "acme"})).is_ok());
    for tenant in ["evil.com/", "evil.com?", "evil.com#", "evil.com\\"] {
        let err = url(template, serde_json::json!({"tenant": tenant})).unwrap_err();
        assert!(err.to_string().contains("`evil.com`"), "{tenant}: {err}");
    }
    // A scheme from the event cannot bring a host with it, however the URL parser reads
    // `https:evil.com` (a host, with no slashes).
    let template = "{{ data.scheme }}://api.example.com/hooks";
    assert!(url(template, serde_json::json!({"scheme": "https"})).is_ok());
    let err = url(template, serde_json::json!({"scheme": "https:evil.com/x"})).unwrap_err();
    assert!(err.to_string().contains("`evil.com`"), "{err}");
    // A locale's URL is held to its own template.
    let err = render(
        serde_json::json!({"locales": {"ko": {"url": "https://kr.example.com{{ data.path }}"}}}),
        serde_json::json!({"data": {"path": ".evil.com"}, "user": {"id": "u", "locale": "ko"}}),
    )
    .unwrap_err();
    assert_eq!(err.field(), "locales.ko.url");
    // A host the template leaves wholly to Liquid is the author's choice.
    assert!(
        url(
            "https://{{ data.host }}/",
            serde_json::json!({"host": "evil.com"})
        )
        .is_ok()
    );
}

#[test]
fn runaway_output_is_cut_off_as_an_error() {
    // A KiB an iteration: past the 1 MiB body in about a thousand, well inside the 250 ms
    // a render may take even on a loaded machine (at 16 bytes it took 65,536 iterations,
    // and a debug build beside a compiler was cut off by the clock instead).
    let template = format!(
        "{{% for i in (1..100000) %}}{}{{% endfor %}}",
        "x".repeat(1024)
    );
    let err = render(
        serde_json::json!({"body": {"type": "raw", "template": template}}),
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

#[test]
fn templates_are_sorted_into_text_lookup_and_general() {
    let shape = |source: &str| match Shape::of(source) {
        Shape::Text(_) => "text",
        Shape::Lookup(_) => "lookup",
        Shape::General => "general",
    };
    let text = ["https://example.com/hook", "", "a { b } c %}", "100%"];
    let lookup = [
        "{{ data.order }}",
        "{{data.a_b.c1}}",
        "{{\n  _x \t}}",
        "{{ size }}",
    ];
    let general = [
        "{{ data.order | upcase }}",
        "x{{ data.order }}",
        "{{ data.order }} ",
        "{{ a }}{{ b }}",
        "{{- a -}}",
        "{{ nil }}",
        "{{ true }}",
        "{{ data[0] }}",
        "{{ data.items[0] }}",
        "{{ data.1 }}",
        "{{ data.kebab-case }}",
        "{{ 'text' }}",
        "{{ 42 }}",
        "{{}}",
        "{% if a %}b{% endif %}",
    ];
    for (expected, sources) in [
        ("text", &text[..]),
        ("lookup", &lookup),
        ("general", &general),
    ] {
        for source in sources {
            assert_eq!(shape(source), expected, "{source}");
        }
    }
}

/// The quick shapes print exactly what Liquid prints, on every kind of value and path,
/// and leave to Liquid whatever it would refuse.
#[test]
fn text_and_lookups_render_exactly_as_liquid_does() {
    let data = serde_json::json!({
        "order": "o-1", "total": 1999, "negative": -7, "price": 19.99, "whole": 1.0,
        "huge": 1e300, "tiny": 1e-7, "beyond": 18446744073709551615_u64, "zero": -0.0,
        "flag": true, "off": false, "none": null, "empty": "", "emoji": "주문 😀",
        "items": [{"name": "a"}, 2, "three", null, [4, 5], true],
        "nothing": [],
        "obj": {"k": "v", "n": 1, "nested": {"deep": [1, 2]}},
        "sized": {"size": "own"},
        "a_b": {"c1": "x"}
    });
    let paths = [
        "data.order",
        "data.total",
        "data.negative",
        "data.price",
        "data.whole",
        "data.huge",
        "data.tiny",
        "data.beyond",
        "data.zero",
        "data.flag",
        "data.off",
        "data.none",
        "data.empty",
        "data.emoji",
        "data.emoji.size",
        "data.order.size",
        "data.total.size",
        "data.items",
        "data.items.size",
        "data.items.first",
        "data.items.last",
        "data.items.first.name",
        "data.items.last.x",
        "data.nothing.first",
        "data.nothing.size",
        "data.obj",
        "data.obj.size",
        "data.obj.nested",
        "data.obj.nested.deep.last",
        "data.sized.size",
        "data.missing",
        "data.missing.deeper.still",
        "data.order.first",
        "data.flag.x",
        "data.none.x",
        "data.a_b.c1",
        "data",
        "event",
        "event.id",
        "event.type",
        "event.timestamp",
        "event.missing",
        "user",
        "user.id",
        "user.locale",
        "user.attributes.email",
        "user.attributes.tier",
        "webhook",
        "webhook.id",
        "webhook.name",
        "project.id",
        "size",
        "nothing",
        "nothing.deeper",
        "_private",
    ];
    const OBJECTS: [&str; 7] = [
        "data",
        "data.obj",
        "data.obj.nested",
        "data.sized",
        "event",
        "user",
        "webhook",
    ];
    let users = [
        serde_json::json!({}),
        serde_json::json!({"user": {"id": "u-1", "locale": "ko-KR",
            "attributes": {"email": "a@example.com", "tier": 3}}}),
    ];
    let liquid_only = |source: &str| Compiled {
        liquid: PARSER.as_ref().unwrap().parse(source).unwrap(),
        shape: Shape::General,
    };
    // Lookups the quick path answered itself, and those Liquid renders without an error.
    let (mut answered, mut lookups_liquid_answers) = (0, 0);
    for user in users {
        let mut input = serde_json::json!({"data": data.clone()});
        input
            .as_object_mut()
            .unwrap()
            .extend(user.as_object().unwrap().clone());
        let event = event(input);
        let ctx = RenderContext::new(&event, SUBJECT);
        let mut sources: Vec<String> = paths.iter().map(|p| format!("{{{{ {p} }}}}")).collect();
        sources
            .extend(["https://example.com/h?a=1&b=2", "", "plain { text } 100%"].map(String::from));
        for source in sources {
            let quick = parse("t", &source).unwrap();
            if let Shape::Lookup(path) = &quick.shape {
                answered += usize::from(Shape::look_up(path, &ctx.root).is_some());
                lookups_liquid_answers +=
                    usize::from(render_one(&liquid_only(&source), &ctx, MAX_BODY_BYTES).is_ok());
            }
            assert!(!matches!(quick.shape, Shape::General), "{source}");
            let slow = liquid_only(&source);
            let (quick, slow) = (
                render_one(&quick, &ctx, MAX_BODY_BYTES),
                render_one(&slow, &ctx, MAX_BODY_BYTES),
            );
            // Liquid prints an object's pairs in the order of a hash map of its own, a
            // fresh one each time: compare those outputs as multisets of characters.
            let sorted = |s: &str| {
                let mut chars: Vec<char> = s.chars().collect();
                chars.sort_unstable();
                chars
            };
            match (&quick, &slow) {
                (Ok(q), Ok(s)) if OBJECTS.iter().any(|o| source == format!("{{{{ {o} }}}}")) => {
                    assert_eq!(sorted(q), sorted(s), "{source}");
                }
                (Ok(q), Ok(s)) => assert_eq!(q, s, "{source}"),
                (Err(Failure::Failed(q)), Err(Failure::Failed(s))) => assert_eq!(q, s, "{source}"),
                _ => panic!("{source}: quick and Liquid disagree on success"),
            }
        }
    }
    // The quick path answered every lookup Liquid answers, and left it only the errors.
    assert_eq!(answered, lookups_liquid_answers);
    assert!(answered > 90, "{answered}");
}

#[test]
fn quick_shapes_keep_the_output_limits() {
    let text = parse("t", &"x".repeat(100)).unwrap();
    let ctx_event = event(serde_json::json!({"data": {"long": "y".repeat(100)}}));
    let ctx = RenderContext::new(&ctx_event, SUBJECT);
    assert!(matches!(
        render_one(&text, &ctx, 99),
        Err(Failure::TooLarge(99))
    ));
    assert_eq!(
        render_one(&text, &ctx, 100).ok().map(|s| s.len()),
        Some(100)
    );
    let lookup = parse("t", "{{ data.long }}").unwrap();
    assert!(matches!(lookup.shape, Shape::Lookup(_)));
    assert!(matches!(
        render_one(&lookup, &ctx, 99),
        Err(Failure::TooLarge(99))
    ));
    // A URL that is plain text is still checked for control characters.
    let err = render(
        serde_json::json!({"headers": {"X-A": "{{ data.line }}"}}),
        serde_json::json!({"data": {"line": "a\r\nInjected: 1"}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, RenderError::ControlCharacter { .. }),
        "{err:?}"
    );
}

/// The event's JSON, seen in place by the context, behaves in loops, conditions and
/// filters as Liquid's own values built from the same JSON do.
#[test]
fn the_event_json_behaves_as_liquid_values_do() {
    let data = serde_json::json!({
        "order": "o-1", "total": 1999, "price": 19.99, "flag": true, "off": false,
        "none": null, "empty": "", "emoji": "주문 😀", "kind": "a",
        "items": ["b", "a", "c"], "nums": [3, 1, 2], "mixed": [1, "two", 3.5, true, null],
        "people": [{"name": "kim", "age": 30}, {"name": "lee", "age": 25}],
        "nothing": [], "obj": {"k": "v"}, "nested": {"list": [10, 20, 30]}
    });
    let templates = [
        "{% for i in data.items %}[{{ i }}]{% endfor %}",
        "{% for i in data.mixed %}<{{ i }}>{% endfor %}",
        "{% for p in data.people %}{{ p.name }}:{{ p.age }};{% endfor %}",
        "{% for i in data.nothing %}x{% else %}none{% endfor %}",
        "{{ data.items | join: ',' }}|{{ data.items | size }}|{{ data.items | first }}|{{ data.items | last }}",
        "{{ data.nums | sort | join: '-' }}|{{ data.items | reverse | join: '' }}",
        "{{ data.people | map: 'name' | join: ',' }}",
        "{% if data.total > 100 %}big{% else %}small{% endif %}",
        "{% if data.flag %}y{% endif %}{% if data.off %}n{% endif %}{% if data.none %}z{% endif %}",
        "{% if data.nothing == empty %}e{% endif %}{% if data.empty == blank %}b{% endif %}",
        "{% unless data.items contains 'a' %}no{% else %}yes{% endunless %}",
        "{% case data.kind %}{% when 'a' %}A{% else %}B{% endcase %}",
        "{{ data.price | times: 2 }}|{{ data.total | plus: 1 }}|{{ data.price | round }}",
        "{{ data.order | upcase | append: '!' }}|{{ data.emoji | size }}",
        "{{ data.obj.k | default: 'd' }}|{{ data.none | default: 'd' }}|{{ data.off | default: 'd' }}",
        "{{ data.nested.list[1] }}|{{ data.items[0] }}|{{ data.items[-1] }}|{{ data.nested.list.size }}",
        "{{ data.mixed }}|{{ data.nums }}|{{ data.total }}|{{ data.price }}|{{ data.flag }}",
        "{% assign n = data.nums | size %}{{ n | plus: data.total }}",
    ];
    let event = event(serde_json::json!({"data": data.clone()}));
    let ctx = RenderContext::new(&event, SUBJECT);
    let reference = liquid::model::to_object(&serde_json::json!({"data": data})).unwrap();
    let mut outputs = Vec::new();
    for source in templates {
        let compiled = parse("t", source).unwrap();
        let ours = limits::metered(|| render_one(&compiled, &ctx, MAX_BODY_BYTES)).ok();
        let theirs = limits::metered(|| compiled.liquid.render(&reference)).unwrap();
        assert_eq!(ours.as_deref(), Some(theirs.as_str()), "{source}");
        outputs.push(theirs);
    }
    assert_eq!(outputs[0], "[b][a][c]");
    assert_eq!(outputs[3], "none");
    assert_eq!(outputs[5], "1-2-3|cab");
    assert_eq!(outputs[7], "big");
    assert_eq!(outputs[8], "y");
}

#[test]
fn abort_message_stops_a_render_with_its_reason() {
    let aborted = |template: &str, event: serde_json::Value| {
        render(
            serde_json::json!({"body": {"type": "raw", "template": template}}),
            event,
        )
    };
    assert_eq!(
        aborted(
            r#"{% if data.total < 10 %}{% abort_message("too small") %}{% endif %}total {{ data.total }}"#,
            serde_json::json!({"data": {"total": 5}})
        ),
        Err(RenderError::Aborted {
            reason: "too small".into()
        })
    );
    let sent = aborted(r#"{% if data.total < 10 %}{% abort_message("too small") %}{% endif %}total {{ data.total }}"#, serde_json::json!({"data": {"total": 50}})).unwrap();
    assert_eq!(sent.body, "total 50");
    // Without a reason, with spaces and whitespace control, with a value for a reason.
    for (template, reason) in [
        ("{% abort_message() %}", ""),
        ("{%- abort_message ( 'x y' ) -%}", "x y"),
        ("{% abort_message(data.why) %}", "because"),
    ] {
        assert_eq!(
            aborted(template, serde_json::json!({"data": {"why": "because"}})),
            Err(RenderError::Aborted {
                reason: reason.into()
            }),
            "{template}"
        );
    }
    // Anywhere: the URL too, and a header.
    let in_url = render(
        serde_json::json!({"url": "https://example.com/{% abort_message('no url') %}"}),
        serde_json::json!({}),
    );
    assert_eq!(
        in_url,
        Err(RenderError::Aborted {
            reason: "no url".into()
        })
    );
    assert_eq!(RenderError::abort_error(""), "aborted");
    assert_eq!(RenderError::abort_error("too small"), "aborted: too small");
    // Parse errors keep their place, the blanked parentheses notwithstanding.
    let bad = spec(
        serde_json::json!({"body": {"type": "raw", "template": "{% abort_message('a') %}\n{% abort_message('b' 'c') %}"}}),
    );
    let err = CompiledWebhook::compile(&bad).unwrap_err();
    assert!(err.message.contains("line 2"), "{}", err.message);
}

#[test]
fn json_writes_any_value_as_json_a_raw_body_can_hold() {
    let data = serde_json::json!({
        "note": "say \"hi\"\n\\ 주문 ✓ \u{1}",
        "zip": "02134",
        "n": -7,
        "big": i64::MAX,
        "x": 12.5,
        "tiny": 1e-300,
        "yes": true,
        "none": null,
        "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
        "nested": {"a": {"b": [1, [2, []], {}]}},
    });
    let template = r#"{"note": {{ data.note | json }}, "zip": {{ data.zip | json }}, "n": {{ data.n | json }}, "big": {{ data.big | json }}, "x": {{ data.x | json }}, "tiny": {{ data.tiny | json }}, "yes": {{ data.yes | json }}, "none": {{ data.none | json }}, "missing": {{ data.nothing.at.all | json }}, "items": {{ data.items | json }}, "nested": {{ data.nested | json }}, "all": {{ data | json }}, "split": {{ "a,b" | split: "," | json }}, "sum": {{ data.n | plus: 10 | json }}, "half": {{ 5 | divided_by: 2.0 | json }}, "event": {{ event.id | json }}}"#;
    let req = render(
        serde_json::json!({"body": {"type": "raw", "template": template, "content_type": "application/json"}}),
        serde_json::json!({"data": data}),
    )
    .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&req.body).unwrap_or_else(|e| panic!("{e}: {}", req.body));
    for key in [
        "note", "zip", "n", "big", "x", "tiny", "yes", "none", "items", "nested",
    ] {
        assert_eq!(body[key], data[key], "{key}");
    }
    assert_eq!(body["missing"], serde_json::Value::Null);
    assert_eq!(body["all"], data, "the whole object, every key");
    assert_eq!(body["split"], serde_json::json!(["a", "b"]));
    assert_eq!(body["sum"], serde_json::json!(3));
    assert_eq!(body["half"], serde_json::json!(2.5));
    assert_eq!(body["event"], serde_json::json!("ev_1"));
}

#[test]
fn json_takes_no_argument_and_keeps_the_output_limit() {
    let refused = CompiledWebhook::compile(&spec(serde_json::json!({
        "body": {"type": "raw", "template": "{{ data | json: 2 }}"}
    })));
    assert!(refused.is_err());
    // An array that `json` would write past the value limit fails the render, and an
    // array of many stops being written once it is.
    let long = "x".repeat(600 * 1024);
    for items in [vec![long.clone(), long], vec!["y".repeat(1024); 2000]] {
        let failed = render(
            serde_json::json!({"body": {"type": "raw", "template": "{{ data.items | json }}"}}),
            serde_json::json!({"data": {"items": items}}),
        );
        let error = failed.map(|r| r.body.len()).unwrap_err().to_string();
        assert!(error.contains("`json` would produce more than"), "{error}");
    }
}

#[test]
fn date_reads_rfc_3339_unix_seconds_and_liquids_own_forms() {
    let cases = [
        // Hookline's own timestamps and most APIs': RFC 3339.
        (
            "{{ event.timestamp | date: '%Y-%m-%d %H:%M' }}",
            "2026-11-22 07:00",
        ),
        (
            "{{ data.utc | date: '%d/%m/%Y %H:%M:%S' }}",
            "03/12/2026 10:00:00",
        ),
        (
            "{{ data.seoul | date: '%Y-%m-%d %H:%M %z' }}",
            "2026-12-03 10:00 +0900",
        ),
        ("{{ data.fraction | date: '%s' }}", "1796261400"),
        // ISO 8601 without an offset: a date alone, a date and a time (UTC).
        ("{{ data.birthday | date: '%B %d, %Y' }}", "May 17, 1990"),
        (
            "{{ data.local | date: '%Y-%m-%d %H:%M:%S %z' }}",
            "2026-12-03 10:00:05 +0000",
        ),
        (
            "{{ data.local_fraction | date: '%H:%M:%S.%L' }}",
            "10:00:05.250",
        ),
        // Unix seconds, as a number (Ruby's Liquid reads them) or as text (liquid-lib).
        ("{{ data.epoch | date: '%Y-%m-%d' }}", "2026-12-03"),
        (
            "{{ data.epoch_float | date: '%Y-%m-%d %H:%M:%S' }}",
            "2026-12-03 10:34:44",
        ),
        ("{{ data.epoch_text | date: '%Y' }}", "2026"),
        ("{{ 0 | date: '%Y-%m-%d' }}", "1970-01-01"),
        ("{{ -86400 | date: '%Y-%m-%d' }}", "1969-12-31"),
        // liquid-lib's own forms still read.
        (
            "{{ '2016-06-13 02:30:00 +0300' | date: '%Y-%m-%d' }}",
            "2016-06-13",
        ),
        (
            "{{ '13 Jun 2016 02:30:00 +0300' | date: '%b %d' }}",
            "Jun 13",
        ),
        // What is not a date, or seconds outside years -9999..9999, comes back as it was.
        ("{{ data.word | date: '%Y' }}", "soon"),
        ("{{ data.huge | date: '%Y' }}", "9223372036854775807"),
        ("{{ data.epoch | date: '' }}", "1796293800"),
        ("{{ data.nothing | date: '%Y' }}", ""),
        ("{{ 253402300799 | date: '%Y-%m-%d' }}", "9999-12-31"),
        ("{{ 253402300800 | date: '%Y' }}", "253402300800"),
    ];
    let data = serde_json::json!({
        "utc": "2026-12-03T10:00:00Z",
        "seoul": "2026-12-03T10:00:00+09:00",
        "fraction": "2026-12-03T10:30:00.250+09:00",
        "birthday": "1990-05-17",
        "local": "2026-12-03T10:00:05",
        "local_fraction": "2026-12-03T10:00:05.25",
        "epoch": 1_796_293_800_i64,
        "epoch_float": 1_796_294_084.75,
        "epoch_text": "1796293800",
        "word": "soon",
        "huge": i64::MAX,
    });
    for (template, want) in cases {
        let req = render(
            serde_json::json!({"body": {"type": "raw", "template": template}}),
            serde_json::json!({"data": data}),
        )
        .unwrap_or_else(|e| panic!("{template}: {e}"));
        assert_eq!(req.body, want, "{template}");
    }
    // A format cut short is an error; so is a call without a format, or with two.
    let bad = render(
        serde_json::json!({"body": {"type": "raw", "template": "{{ data.utc | date: '%Y-%' }}"}}),
        serde_json::json!({"data": data}),
    );
    assert!(bad.is_err(), "{bad:?}");
    for template in ["{{ data.utc | date }}", "{{ data.utc | date: '%Y', '%m' }}"] {
        let refused = CompiledWebhook::compile(&spec(
            serde_json::json!({"body": {"type": "raw", "template": template}}),
        ));
        assert!(refused.is_err(), "{template}");
    }
}

#[test]
fn date_refuses_a_field_wider_than_its_limit_before_writing_it() {
    let render_with = |format: &str| {
        render(
            serde_json::json!({"body": {"type": "raw", "template": "{{ data.at | date: data.format }}"}}),
            serde_json::json!({"data": {"at": "2026-12-03T10:00:00Z", "format": format}}),
        )
    };
    // A hundred is the widest; flags and `%%` read as strftime reads them.
    assert_eq!(render_with("%100Y").unwrap().body.len(), 100);
    assert_eq!(
        render_with("%-5d|%_3m|%010Y").unwrap().body,
        "3| 12|0000002026"
    );
    assert_eq!(render_with("%%101Y").unwrap().body, "%101Y");
    // Wider is an error naming the limit, at once, whatever the digits (it used to pad
    // to any width: 100 GB for `%100000000000Y`).
    for format in [
        "%101Y",
        "%0101d",
        "%-_^#1000000000000000000000000000000N",
        "x %Y %100000000000Y",
    ] {
        let error = render_with(format).unwrap_err().to_string();
        assert!(
            error.contains("a field width of at most 100"),
            "{format}: {error}"
        );
    }
    // And where the format is a literal of the template (registration renders the
    // sample event, so such a webhook is refused there).
    let literal = render(
        serde_json::json!({"body": {"type": "raw", "template": "{{ 'now' | date: '%100000000000Y' }}"}}),
        serde_json::json!({}),
    );
    assert!(literal.is_err());
}
