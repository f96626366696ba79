#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The heavy end-to-end cases (`make test-e2e`): nothing is lost under receiver failures
//! at volume, or when the runtime is killed while deliveries are in flight.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures_util::StreamExt;
use hookline_e2e::receiver::{self, Receiver};
use hookline_e2e::stack::{AS_DEPLOYED, Stack, eventually};
use serde_json::{Value, json};

fn events_wanted(default: usize) -> usize {
    std::env::var("HOOKLINE_HEAVY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Posts `ids` as events of type `t`, eight at a time.
async fn post_all(stack: &Stack, ids: &[String]) {
    futures_util::stream::iter(ids.iter())
        .map(|id| async move {
            // A 503 says "send it again with the same id" (SPEC §8), as a client would:
            // on a slow host the emulator can stall a request past its deadline.
            let body = json!({"id": id, "type": "load", "data": {"n": id}});
            let deadline = Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let (status, v) = stack
                    .admin("POST", "/v1/projects/acme/events", Some(body.clone()))
                    .await;
                if status == 202 {
                    break;
                }
                assert!(
                    status == 503 && Instant::now() < deadline,
                    "POST {id}: {status} {v}"
                );
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

/// (event id, path) → the webhook-ids seen for it.
fn deliveries(rx: &Receiver, prefix: &str) -> HashMap<(String, String), HashSet<String>> {
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

#[tokio::test]
async fn nothing_is_lost_when_a_receiver_fails_a_fifth_of_requests() {
    let n = events_wanted(2_000);
    let mut env = vec![("HOOKLINE_LOCAL_CONCURRENCY", "8")];
    env.extend(AS_DEPLOYED);
    let stack = Stack::start(&env).await;
    let rx = receiver::start().await;
    for i in 0..3 {
        stack
            .webhook("acme", json!({"name": format!("h{i}"), "url": format!("{}/flaky/20/h{i}", rx.base), "events": ["load"]}))
            .await;
    }
    let ids: Vec<String> = (0..n).map(|i| format!("load-{i}")).collect();
    let started = Instant::now();
    post_all(&stack, &ids).await;
    let posted = started.elapsed();
    let expected = n * 3;
    eventually(1_800, || async {
        let got = deliveries(&rx, "/flaky").len();
        (got >= expected).then_some(())
    })
    .await;
    let seen = deliveries(&rx, "/flaky");
    for id in &ids {
        for i in 0..3 {
            let key = (id.clone(), format!("/flaky/20/h{i}"));
            let webhook_ids = seen
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} never arrived"));
            // Every repeat of a delivery carries the webhook-id it had the first time.
            assert_eq!(
                webhook_ids.len(),
                1,
                "{key:?} arrived under {webhook_ids:?}"
            );
        }
    }
    let requests = rx.received_on("/flaky").len();
    println!(
        "no-loss: {n} events × 3 webhooks = {expected} deliveries, {requests} requests (retries of 503s included), \
         posted in {:.1} s, all arrived after {:.1} s",
        posted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        requests > expected,
        "some requests were answered 503 and retried"
    );
    stack.assert_no_secrets_logged();
}

#[tokio::test]
async fn killing_the_runtime_mid_flight_loses_nothing() {
    let n = events_wanted(2_000) / 5;
    let mut stack = Stack::start(&[]).await;
    // A message taken by the killed runtime must come back within seconds.
    stack.shorten_visibility(3).await;
    let rx = receiver::start().await;
    // Each delivery's first attempt takes a second, so many are in flight at the kill.
    stack
        .webhook(
            "acme",
            json!({"name": "c", "url": format!("{}/slow/1/crash", rx.base), "events": ["load"]}),
        )
        .await;
    let ids: Vec<String> = (0..n).map(|i| format!("crash-{i}")).collect();
    post_all(&stack, &ids).await;
    // Kill it while deliveries are in flight: some done, most not.
    eventually(120, || async {
        (rx.received_on("/slow/1/crash").len() >= n / 10).then_some(())
    })
    .await;
    stack.kill_runtime();
    let at_kill = deliveries(&rx, "/slow/1/crash").len();
    let answered_before_kill = rx.received_on("/slow/1/crash").len();
    assert!(
        at_kill < n,
        "the kill came after everything was delivered; raise the load"
    );
    stack.start_runtime().await;
    eventually(600, || async {
        (deliveries(&rx, "/slow/1/crash").len() >= n).then_some(())
    })
    .await;
    let seen = deliveries(&rx, "/slow/1/crash");
    for id in &ids {
        let ids_seen = seen
            .get(&(id.clone(), "/slow/1/crash".to_string()))
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(ids_seen.len(), 1);
    }
    stack.assert_no_secrets_logged();
    println!(
        "crash: {n} events, {at_kill} reached the receiver before SIGKILL ({answered_before_kill} requests), \
         all {n} after restart ({} requests in all)",
        rx.received_on("/slow/1/crash").len()
    );
}
