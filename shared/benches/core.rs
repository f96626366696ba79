#![allow(clippy::unwrap_used, clippy::panic)] // a benchmark: failing loudly is right
//! `make bench`: rendering the reference webhook, evaluating a typical filter, and signing
//! a 2 KiB body.
//!
//! The reference webhook (issue 2): a JSON body of 10 fields, 3 of them `default` on
//! absent variables, a Liquid URL and 2 templated headers. The render includes building
//! the Liquid context from the event, as the delivery function does per message.

use criterion::{Criterion, criterion_group, criterion_main};
use hookline_core::model::{Event, WebhookInput, WebhookSpec, decode_json};
use hookline_core::signing;
use hookline_core::template::{CompiledWebhook, Condition, RenderContext, Subject};
use std::hint::black_box;

fn reference_webhook() -> WebhookSpec {
    let json = serde_json::json!({
        "name": "crm-sync",
        "url": "https://api.example.com/u/{{ user.id | default: 'anon' }}/events/{{ event.type }}",
        "headers": {
            "X-Campaign": "{{ event.type }}",
            "X-Customer": "{{ data.customer.id }}"
        },
        "body": {"type": "json", "fields": {
            "event_id": "{{ event.id }}",
            "type": "{{ event.type }}",
            "at": "{{ event.timestamp }}",
            "order": "{{ data.order_id }}",
            "total": "{{ data.total }}",
            "currency": "{{ data.currency | upcase }}",
            "customer": "{{ data.customer.name }}",
            "email": "{{ user.attributes.email | default: 'n/a' }}",
            "phone": "{{ user.attributes.phone | default: 'none' }}",
            "coupon": "{{ data.coupon | default: 'NONE' }}"
        }},
        "events": ["order.placed"]
    });
    match WebhookSpec::from_create(
        decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap(),
    ) {
        Ok(spec) => spec,
        Err(e) => panic!("{e}"),
    }
}

fn reference_event() -> Event {
    let json = serde_json::json!({
        "id": "ev_01", "type": "order.placed", "timestamp": "2026-11-22T07:00:00Z",
        "data": {"order_id": "o-123", "total": 1999, "currency": "krw",
                 "customer": {"id": "c-9", "name": "Kim"}},
        "user": {"id": "u-1", "locale": "ko", "attributes": {}}
    });
    Event::from_input(
        decode_json(json.to_string().as_bytes()).unwrap(),
        0,
        || unreachable!(),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let spec = reference_webhook();
    let compiled = CompiledWebhook::compile(&spec).unwrap();
    let event = reference_event();
    let subject = Subject {
        project_id: "acme",
        webhook_id: "wh_01",
        webhook_name: "crm-sync",
    };
    c.bench_function("render_reference_webhook", |b| {
        b.iter(|| {
            let ctx = RenderContext::new(black_box(&event), subject);
            compiled.render(&ctx).unwrap()
        })
    });
    // A typical filter at fan-out: the context of the event for one webhook, then the
    // condition (SPEC §9; target < 2 µs).
    let filter = Condition::compile("data.total > 100 and user.locale == \"ko\"").unwrap();
    assert!(filter.is_direct());
    c.bench_function("evaluate_a_typical_filter", |b| {
        b.iter(|| {
            let ctx = RenderContext::new(black_box(&event), subject);
            filter.holds(&ctx).unwrap()
        })
    });
    let liquid_only = Condition::compile(
        "data.total > 100 and user.locale == \"ko\" and data.customer.name.size > 2",
    )
    .unwrap();
    c.bench_function("evaluate_a_filter_liquid_evaluates", |b| {
        b.iter(|| {
            let ctx = RenderContext::new(black_box(&event), subject);
            liquid_only.holds(&ctx).unwrap()
        })
    });
    let secrets = hookline_core::model::SigningSecrets {
        current: signing::new_secret(),
        previous: None,
        previous_expires_at: None,
    };
    let signer = signing::Signer::new(&secrets).unwrap();
    let body = "x".repeat(2048);
    c.bench_function("sign_2kib_body", |b| {
        b.iter(|| signer.header("msg_01", 1_700_000_000, black_box(body.as_bytes()), 0))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
