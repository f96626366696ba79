#![allow(clippy::unwrap_used, clippy::panic)] // an integration test file: every function here is test code
//! The property test of SPEC §8: templates and event data are customer input, and no
//! case of `hookline_e2e::hostile` (every standard filter and tag, fed extreme values)
//! may panic while a webhook is compiled (registration) or rendered (preview, test send,
//! delivery). The handler tests drive a sample of the same cases through the routes and
//! the delivery handler.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hookline_core::model::{Event, EventInput, WebhookInput, WebhookSpec, decode_json};
use hookline_core::template::{CompiledWebhook, RenderContext, Subject};
use hookline_e2e::hostile;

fn spec(template: &str) -> Option<WebhookSpec> {
    let body = serde_json::json!({
        "name": "hostile", "url": "https://example.com/h", "events": ["*"],
        "body": {"type": "raw", "template": template},
    });
    WebhookSpec::from_create(decode_json::<WebhookInput>(body.to_string().as_bytes()).ok()?).ok()
}

#[test]
fn no_hostile_template_or_event_panics() {
    // Panics are counted here, not printed: a run with many would flood the output.
    std::panic::set_hook(Box::new(|_| {}));
    let event: EventInput = decode_json(hostile::hostile_event().to_string().as_bytes()).unwrap();
    let event = Event::from_input(event, 0, || unreachable!()).unwrap();
    let subject = Subject {
        project_id: "p",
        webhook_id: "wh_1",
        webhook_name: "hostile",
    };
    let ctx = RenderContext::new(&event, subject);
    let cases = hostile::all_cases();
    let (mut compiled, mut rendered, mut refused, mut failed) = (0, 0, 0, 0);
    let mut panics = Vec::new();
    for case in &cases {
        let Some(spec) = spec(&case.template) else {
            refused += 1;
            continue;
        };
        match catch_unwind(AssertUnwindSafe(|| CompiledWebhook::compile(&spec))) {
            Err(_) => panics.push(format!("compile: {}", case.what)),
            Ok(Err(_)) => refused += 1,
            Ok(Ok(webhook)) => {
                compiled += 1;
                match catch_unwind(AssertUnwindSafe(|| webhook.render(&ctx))) {
                    Err(_) => panics.push(format!("render: {}", case.what)),
                    Ok(Ok(_)) => rendered += 1,
                    Ok(Err(_)) => failed += 1,
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "{} cases: {compiled} compiled ({rendered} rendered, {failed} failed to render), \
         {refused} refused at registration, {} panicked",
        cases.len(),
        panics.len()
    );
    // Grouped by phase and filter (or tag), with one example each.
    let mut groups: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for p in &panics {
        let key: String = p
            .split(['|', ':', '%', '{'])
            .take(3)
            .collect::<Vec<_>>()
            .join("|")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        let entry = groups.entry(key).or_insert((0, p.clone()));
        entry.0 += 1;
    }
    assert!(
        panics.is_empty(),
        "{} of {} cases panicked:\n{}",
        panics.len(),
        cases.len(),
        groups
            .iter()
            .map(|(k, (n, e))| format!("{n:6} {k:40} e.g. {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
