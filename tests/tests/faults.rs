#![allow(clippy::unwrap_used, clippy::panic)] // an integration test file: every function here is test code
//! SPEC §8 against the running local stack, the faults an unlucky operator and a hostile
//! customer bring (in `make test-e2e`, binary `faults`):
//! - templates and events that used to panic the function cost only their own delivery;
//! - the runtime SIGKILLed between intake and the end of fan-out loses nothing, with no
//!   re-post at all (the sweep) and with re-posts (which resume or are told to wait);
//! - a stalled emulator (SIGSTOP) gets every API call answered within 12 s, and every
//!   202'd event delivered once it is back;
//! - a dead emulator is a 503 in the error shape on every route;
//! - a trace-level run logs none of the secrets it handled.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hookline_e2e::receiver::{self, Receiver};
use hookline_e2e::stack::{ADMIN_KEY, AS_DEPLOYED, Stack, eventually};
use serde_json::{Value, json};

/// (event id) → the webhook-ids seen for it on paths under `prefix`, per path.
fn arrivals(rx: &Receiver, prefix: &str) -> HashMap<(String, String), HashSet<String>> {
    let mut seen: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for r in rx.received_on(prefix) {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let event = body["id"].as_str().unwrap().to_string();
        seen.entry((event, r.uri.path().to_string()))
            .or_default()
            .insert(r.header("webhook-id").to_string());
    }
    seen
}

/// A response that is either a success or SPEC §8's 503: the error shape, code
/// `unavailable`, and a Retry-After.
#[track_caller]
fn success_or_unavailable(what: &str, status: u16, retry_after: Option<&str>, body: &Value) {
    if status < 400 {
        return;
    }
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{what}: {body}");
    assert!(
        retry_after.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)),
        "{what}: Retry-After {retry_after:?}"
    );
}

/// A request with the admin key, with its status, Retry-After and JSON body.
async fn call(
    stack: &Stack,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut request = stack
        .http
        .request(method.parse().unwrap(), format!("{}{path}", stack.url))
        .bearer_auth(ADMIN_KEY)
        .timeout(Duration::from_secs(60));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn templates_that_used_to_panic_cost_only_their_own_delivery() {
    let stack = Stack::start(&[("HOOKLINE_LOCAL_CONCURRENCY", "2")]).await;
    let rx = receiver::start().await;
    // Each of these panicked the function (and with it its poller) on an event whose
    // `n` is i64::MIN; the sample event at registration has none, hence the default.
    let poison = [
        "{{ data.n | default: 1 | divided_by: -1 }}",
        "{{ data.n | default: 1 | abs }}",
        "{{ data.n | default: 1 | times: 2 }}",
        "{{ data.n | default: 1 | minus: 1 }}",
    ];
    let mut poisoned = Vec::new();
    for (i, template) in poison.iter().enumerate() {
        let hook = stack
            .webhook(
                "acme",
                json!({"name": format!("p{i}"), "url": format!("{}/ok/poison", rx.base), "events": ["poison"],
                       "body": {"type": "raw", "template": template}}),
            )
            .await;
        poisoned.push(hook["id"].as_str().unwrap().to_string());
    }
    // And what Liquid's parser panicked on is refused at registration, naming the place.
    let (status, _, body) = call(
        &stack,
        "POST",
        "/v1/projects/acme/webhooks",
        Some(json!({"name": "t", "url": format!("{}/ok/x", rx.base), "events": ["*"],
                    "body": {"type": "raw", "template": "{{ data.s | truncate: 99999999999999999999 }}"}})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("body.template")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1, column 23"),
        "{body}"
    );
    stack
        .webhook(
            "acme",
            json!({"name": "ordinary", "url": format!("{}/ok/ordinary", rx.base), "events": ["ordinary"]}),
        )
        .await;
    for i in 0..4 {
        stack
            .event(
                "acme",
                json!({"id": format!("poison-{i}"), "type": "poison", "data": {"n": i64::MIN}}),
            )
            .await;
    }
    // Every poisoned delivery ends as a failed render, logged as such, not retried.
    for id in &poisoned {
        let attempts = eventually(60, || async {
            let a = stack.attempts("acme", id).await;
            (a.len() >= 4).then_some(a)
        })
        .await;
        for a in &attempts {
            assert_eq!(a["status"], "failed", "{a}");
            assert!(
                a["error"].as_str().unwrap().contains("body.template"),
                "{a}"
            );
        }
    }
    assert!(rx.received_on("/ok/poison").is_empty());
    // The pollers are alive: twenty ordinary events, all delivered.
    for i in 0..20 {
        stack
            .event(
                "acme",
                json!({"id": format!("ordinary-{i}"), "type": "ordinary"}),
            )
            .await;
    }
    eventually(60, || async {
        (arrivals(&rx, "/ok/ordinary").len() == 20).then_some(())
    })
    .await;
    assert!(
        !stack.logs().contains("panicked"),
        "a panic in {}",
        stack.log.display()
    );
}

/// Calls until the answer is something other than a 503 with Retry-After, honouring it
/// (at most 5 s at a time) as the API tells its clients to: a store that is busy, or
/// a fan-out another instance holds, is a 503, never a lost event. Returns the last
/// answer and how many times the client was told to wait.
async fn call_honouring_retry_after(
    stack: &Stack,
    method: &str,
    path: &str,
    body: Option<Value>,
    seconds: u64,
) -> (u16, Value, usize) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut told_to_wait = 0;
    loop {
        let (status, retry_after, answer) = call(stack, method, path, body.clone()).await;
        if status != 503 {
            return (status, answer, told_to_wait);
        }
        success_or_unavailable(path, status, retry_after.as_deref(), &answer);
        told_to_wait += 1;
        assert!(
            Instant::now() < deadline,
            "{method} {path}: still told to wait after {seconds} s"
        );
        let wait: u64 = retry_after.unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_secs(wait.min(5))).await;
    }
}

/// Counts the records of `project` whose fan-out is not complete, straight from the table.
async fn incomplete(stack: &Stack, project: &str) -> usize {
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.emulator.sdk_config().await);
    let out = dynamo
        .scan()
        .table_name(stack.emulator.var("HOOKLINE_EVENTS_TABLE"))
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .filter(|item| {
            item["event_key"]
                .as_s()
                .is_ok_and(|k| k.starts_with(&format!("{project}#")))
                && !matches!(
                    item.get("complete"),
                    Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                )
        })
        .count()
}

const FANOUT_HOOKS: usize = 30;
const FANOUT_EVENTS: usize = 60;

/// Posts the events eight at a time and SIGKILLs the runtime once `kill_after` of them
/// were accepted and the table holds a fan-out not yet complete, so that some fan-outs
/// are half done (killing at the count alone left none half done on a fast host once,
/// the posts in flight not yet recorded or already complete). Returns the ids that got
/// 202.
async fn post_and_crash(stack: &mut Stack, project: &str, kill_after: usize) -> HashSet<String> {
    let accepted = std::sync::Mutex::new(HashSet::new());
    let ids: Vec<String> = (0..FANOUT_EVENTS)
        .map(|i| format!("{project}-{i}"))
        .collect();
    {
        let stack_ref = &*stack;
        let accepted = &accepted;
        let posts = futures_util::stream::iter(ids.iter())
            .map(|id| async move {
                let (status, _, _) = call(
                    stack_ref,
                    "POST",
                    &format!("/v1/projects/{project}/events"),
                    Some(json!({"id": id, "type": "fan"})),
                )
                .await;
                if status == 202 {
                    accepted.lock().unwrap().insert(id.clone());
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>();
        // Stop posting once enough went through and one is half done; the kill below
        // cuts the rest short.
        let enough = async {
            loop {
                let count = accepted.lock().unwrap().len();
                if count >= kill_after && incomplete(stack_ref, project).await > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            _ = posts => {},
            _ = enough => {},
        }
    }
    stack.kill_runtime();
    accepted.into_inner().unwrap()
}

async fn fan_stack(rx: &Receiver, project: &str) -> Stack {
    let mut env = vec![
        ("HOOKLINE_LOCAL_SWEEP_SECONDS", "2"),
        ("HOOKLINE_LOCAL_CONCURRENCY", "8"),
    ];
    env.extend(AS_DEPLOYED);
    let stack = Stack::start(&env).await;
    for i in 0..FANOUT_HOOKS {
        stack
            .webhook(project, json!({"name": format!("h{i}"), "url": format!("{}/ok/{project}/h{i}", rx.base), "events": ["fan"]}))
            .await;
    }
    // Messages the killed runtime had taken come back within seconds, not 12 minutes.
    stack.shorten_visibility(3).await;
    stack
}

/// Every event with a record (accepted, or cut short after its record was written) has
/// all its deliveries arrive, each under one webhook-id.
async fn every_recorded_event_is_delivered(
    stack: &Stack,
    rx: &Receiver,
    project: &str,
    accepted: &HashSet<String>,
) {
    let mut recorded = Vec::new();
    for i in 0..FANOUT_EVENTS {
        let id = format!("{project}-{i}");
        // Right after a restart the emulator is busy with the backlog: a read may be
        // told to wait, as any client would be. On a slow host the emulator (one Python
        // process) answered nothing within its timeouts for over two minutes of that
        // backlog (a CI run on 2026-12-02); what is tested is that nothing is lost, not
        // how fast the emulator recovers.
        let (status, _, _) = call_honouring_retry_after(
            stack,
            "GET",
            &format!("/v1/projects/{project}/events/{id}"),
            None,
            300,
        )
        .await;
        match status {
            200 => recorded.push(id),
            404 => assert!(
                !accepted.contains(&id),
                "{id} was accepted but has no record"
            ),
            other => panic!("GET event {id}: {other}"),
        }
    }
    let expected = recorded.len() * FANOUT_HOOKS;
    eventually(300, || async {
        (arrivals(rx, &format!("/ok/{project}/")).len() >= expected).then_some(())
    })
    .await;
    let seen = arrivals(rx, &format!("/ok/{project}/"));
    for id in &recorded {
        for h in 0..FANOUT_HOOKS {
            let ids = seen
                .get(&(id.clone(), format!("/ok/{project}/h{h}")))
                .unwrap_or_else(|| panic!("{id} never reached h{h}"));
            assert_eq!(ids.len(), 1, "{id} h{h} arrived under {ids:?}");
        }
    }
    println!(
        "{project}: {} accepted before the kill, {} recorded, {expected} deliveries all arrived",
        accepted.len(),
        recorded.len()
    );
}

#[tokio::test]
async fn a_crash_during_fan_out_loses_nothing_without_a_repost() {
    let rx = receiver::start().await;
    let mut stack = fan_stack(&rx, "norepost").await;
    let accepted = post_and_crash(&mut stack, "norepost", 20).await;
    let cut_short = incomplete(&stack, "norepost").await;
    assert!(
        cut_short > 0,
        "the kill left no fan-out half done; post more"
    );
    // No client action at all: the restarted runtime's sweep finishes them.
    stack.start_runtime().await;
    every_recorded_event_is_delivered(&stack, &rx, "norepost", &accepted).await;
    // Deliveries sent but not noted before the kill may arrive before the sweep has
    // marked their fan-out complete (it waits out the lease); it does so in the end.
    eventually(120, || async {
        (incomplete(&stack, "norepost").await == 0).then_some(())
    })
    .await;
    println!("norepost: {cut_short} fan-outs were half done at the kill");
}

#[tokio::test]
async fn a_crash_during_fan_out_loses_nothing_with_reposts() {
    let rx = receiver::start().await;
    let mut stack = fan_stack(&rx, "repost").await;
    let mut accepted = post_and_crash(&mut stack, "repost", 20).await;
    let cut_short = incomplete(&stack, "repost").await;
    assert!(
        cut_short > 0,
        "the kill left no fan-out half done; post more"
    );
    stack.start_runtime().await;
    // The client sends everything again: a held fan-out is a 503 with Retry-After
    // (never "duplicate" while nothing finishes it), which it honours. Each is accepted
    // within a few leases (30 s each) of the sweep's and the reposts' turns. Each id
    // gets 480 s: the emulator is slow while it holds a backlog (this test once took
    // 613 s, before infra/local/emulator.py took out moto's per-message receive cost,
    // and one id was still told to wait after 240 s on a slow host on 2026-12-02, the
    // emulator's calls timing out by the thousand).
    let mut told_to_wait = 0;
    for i in 0..FANOUT_EVENTS {
        let id = format!("repost-{i}");
        let (status, body, waits) = call_honouring_retry_after(
            &stack,
            "POST",
            "/v1/projects/repost/events",
            Some(json!({"id": id, "type": "fan"})),
            480,
        )
        .await;
        assert_eq!(status, 202, "{id}: {body}");
        accepted.insert(id);
        told_to_wait += waits;
    }
    every_recorded_event_is_delivered(&stack, &rx, "repost", &accepted).await;
    println!("repost: {cut_short} half done at the kill, {told_to_wait} re-posts told to wait");
}

#[tokio::test]
async fn a_stalled_emulator_gets_every_call_answered_within_twelve_seconds() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "s", "url": format!("{}/ok/stall", rx.base), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let mut accepted = Vec::new();
    for i in 0..5 {
        let e = stack
            .event("acme", json!({"id": format!("before-{i}"), "type": "a"}))
            .await;
        accepted.push(e["event_id"].as_str().unwrap().to_string());
    }
    stack.emulator.signal("STOP");
    let stalled_at = Instant::now();
    let requests: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/projects/acme/webhooks".into(), None),
        ("GET", format!("/v1/projects/acme/webhooks/{id}"), None),
        (
            "PATCH",
            format!("/v1/projects/acme/webhooks/{id}"),
            Some(json!({"name": "renamed"})),
        ),
        (
            "POST",
            format!("/v1/projects/acme/webhooks/{id}/preview"),
            None,
        ),
        (
            "GET",
            format!("/v1/projects/acme/webhooks/{id}/attempts"),
            None,
        ),
        (
            "POST",
            "/v1/projects/acme/events".into(),
            Some(json!({"id": "during", "type": "a"})),
        ),
        ("GET", "/v1/projects/acme/events/before-0".into(), None),
        (
            "POST",
            "/v1/projects/acme/webhooks".into(),
            Some(json!({"name": "n", "url": format!("{}/ok/n", rx.base), "events": ["a"]})),
        ),
    ];
    let mut answered = 0;
    while stalled_at.elapsed() < Duration::from_secs(20) {
        for (method, path, body) in &requests {
            let started = Instant::now();
            let (status, retry_after, value) = call(&stack, method, path, body.clone()).await;
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(12),
                "{method} {path} took {took:?}"
            );
            success_or_unavailable(
                &format!("{method} {path}"),
                status,
                retry_after.as_deref(),
                &value,
            );
            if status == 202 {
                accepted.push(value["event_id"].as_str().unwrap().to_string());
            }
            answered += 1;
        }
    }
    stack.emulator.signal("CONT");
    // Everything accepted before and during the stall is delivered once it is back.
    eventually(120, || async {
        let seen = arrivals(&rx, "/ok/stall");
        accepted
            .iter()
            .all(|e| seen.contains_key(&(e.clone(), "/ok/stall".to_string())))
            .then_some(())
    })
    .await;
    println!(
        "stall: {answered} calls answered within 12 s each; {} events delivered",
        accepted.len()
    );
}

#[tokio::test]
async fn a_dead_emulator_is_a_503_in_the_error_shape_everywhere() {
    let stack = Stack::start(&[]).await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "d", "url": "https://example.com/d", "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let (_, key) = stack.admin("POST", "/v1/projects/acme/keys", None).await;
    let key_id = key["id"].as_str().unwrap().to_string();
    stack.emulator.signal("KILL");
    let every_route: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v1/projects/acme/webhooks".into(),
            Some(json!({"name": "n", "url": "https://example.com/n", "events": ["a"]})),
        ),
        ("GET", "/v1/projects/acme/webhooks".into(), None),
        ("GET", format!("/v1/projects/acme/webhooks/{id}"), None),
        (
            "PATCH",
            format!("/v1/projects/acme/webhooks/{id}"),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/v1/projects/acme/webhooks/{id}"), None),
        (
            "POST",
            format!("/v1/projects/acme/webhooks/{id}/rotate"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/acme/webhooks/{id}/test"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/acme/webhooks/{id}/preview"),
            None,
        ),
        (
            "GET",
            format!("/v1/projects/acme/webhooks/{id}/attempts"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/acme/webhooks/{id}/recover"),
            Some(json!({"since": "2026-01-01T00:00:00Z"})),
        ),
        (
            "POST",
            "/v1/projects/acme/events".into(),
            Some(json!({"type": "a"})),
        ),
        ("GET", "/v1/projects/acme/events/evt-1".into(), None),
        ("POST", "/v1/projects/acme/keys".into(), None),
        ("DELETE", format!("/v1/projects/acme/keys/{key_id}"), None),
    ];
    for (method, path, body) in every_route {
        let started = Instant::now();
        let (status, retry_after, value) = call(&stack, method, &path, body).await;
        assert_eq!(status, 503, "{method} {path}: {value}");
        success_or_unavailable(
            &format!("{method} {path}"),
            status,
            retry_after.as_deref(),
            &value,
        );
        assert_eq!(
            value.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["error"]
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{method} {path}"
        );
    }
    // What needs no store still answers.
    let (status, _, _) = call(&stack, "GET", "/v1/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_trace_level_run_logs_no_secret() {
    let stack = Stack::start(&[("RUST_LOG", "trace")]).await;
    let rx = receiver::start().await;
    for (i, auth) in [
        json!({"type": "bearer", "token": "tok-trace-bearer-0123456789"}),
        json!({"type": "bearer", "generate": true}),
        json!({"type": "basic", "username": "u", "password": "pw-trace-basic-0123456789"}),
        json!({"type": "jwt", "secret": "jwt-trace-secret-0123456789", "claims": {"sub": "x"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let hook = stack
            .webhook("acme", json!({"name": "t", "url": format!("{}/ok/trace/{i}", rx.base), "events": ["*"], "auth": auth,
                                     "headers": {"X-Api-Key": "hdr-trace-secret-0123456789"}}))
            .await;
        let id = hook["id"].as_str().unwrap();
        stack
            .admin(
                "POST",
                &format!("/v1/projects/acme/webhooks/{id}/rotate"),
                None,
            )
            .await;
        stack
            .admin(
                "POST",
                &format!("/v1/projects/acme/webhooks/{id}/test"),
                None,
            )
            .await;
        stack
            .admin(
                "POST",
                &format!("/v1/projects/acme/webhooks/{id}/preview"),
                None,
            )
            .await;
    }
    let (_, key) = stack.admin("POST", "/v1/projects/acme/keys", None).await;
    let key = key["key"].as_str().unwrap().to_string();
    // The project key authenticates (a store read) and posts events.
    for i in 0..5 {
        let (status, _) = stack
            .call(
                "POST",
                "/v1/projects/acme/events",
                &key,
                Some(json!({"id": format!("t{i}"), "type": "a",
                "data": {"card": "card-trace-secret-0123456789"}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    eventually(60, || async {
        (arrivals(&rx, "/ok/trace").len() >= 20).then_some(())
    })
    .await;
    // Payload values are not logged either.
    assert!(!stack.logs().contains("card-trace-secret"));
    assert!(!stack.logs().contains("hdr-trace-secret"));
    stack.assert_no_secrets_logged();
    println!(
        "trace: {} bytes of log, no secret in it",
        stack.logs().len()
    );
}
