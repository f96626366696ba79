#![allow(clippy::unwrap_used, clippy::panic)] // an integration test file: every function here is test code
//! SPEC §10 end to end, over HTTP against the emulator and the local runtime: health,
//! auto-disable with a short period, resend of a dead-lettered delivery, the events and
//! deliveries listings with filters and cursors, a project key refused on another
//! project's new routes, and the metric records in the runtime's log.

use std::time::Duration;

use hookline_core::signing;
use hookline_e2e::receiver::{self, Received};
use hookline_e2e::stack::{Stack, eventually};
use serde_json::{Value, json};

fn verify(secret: &str, r: &Received) -> bool {
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    signing::verify(
        secret,
        r.header("webhook-id"),
        ts,
        r.body.as_bytes(),
        r.header("webhook-signature"),
    )
}

/// Every page of a listing, following `next_cursor`.
async fn all_pages(stack: &Stack, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = stack.admin("GET", &url, None).await;
        assert_eq!(status, 200, "{url}: {page}");
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_disabled_reported_and_enabled_again() {
    let stack = Stack::start(&[("HOOKLINE_AUTO_DISABLE_AFTER_SECONDS", "2")]).await;
    let rx = receiver::start().await;
    let failing = stack
        .webhook("acme", json!({"name": "down", "url": format!("{}/status/500/down", rx.base), "events": ["order.placed"]}))
        .await;
    let id = failing["id"].as_str().unwrap().to_string();
    stack
        .webhook("acme", json!({"name": "watch", "url": format!("{}/ok/watch", rx.base), "events": ["webhook.disabled"]}))
        .await;
    // Failures for longer than the period: the first one starts the clock, a later one
    // finds it run out.
    let mut i = 0;
    let disabled = eventually(60, || {
        i += 1;
        let n = i;
        let stack = &stack;
        let id = id.clone();
        async move {
            stack
                .event(
                    "acme",
                    json!({"id": format!("down-{n}"), "type": "order.placed"}),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, w) = stack
                .admin("GET", &format!("/v1/projects/acme/webhooks/{id}"), None)
                .await;
            (w["enabled"] == false).then_some(w)
        }
    })
    .await;
    assert_eq!(disabled["disabled_reason"], "failing");
    assert!(disabled["disabled_at"].is_string());
    let health = &disabled["health"];
    assert!(health["failing_since"].is_string(), "{health}");
    assert!(
        health["failed"].as_u64().unwrap() >= 2 && health["delivered"] == 0,
        "{health}"
    );
    assert_eq!(health["last_status_code"], 500);
    // The watcher was told, with what health said.
    let report = eventually(30, || async {
        rx.received_on("/ok/watch").into_iter().next()
    })
    .await;
    let body: Value = serde_json::from_str(&report.body).unwrap();
    assert_eq!(body["event"], "webhook.disabled");
    assert_eq!(
        (
            body["data"]["webhook_id"].as_str(),
            body["data"]["reason"].as_str()
        ),
        (Some(id.as_str()), Some("failing"))
    );
    assert_eq!(body["data"]["last_status_code"], 500);
    // Deliveries still pending (retries of the earlier events) are skipped, not sent…
    let skipped = eventually(30, || async {
        let attempts = stack.attempts("acme", &id).await;
        attempts.into_iter().find(|a| a["status"] == "skipped")
    })
    .await;
    assert_eq!(skipped["error"], "the webhook is disabled");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = rx.received_on("/status/500/down").len();
    // …and a new event does not match it at all.
    let after = stack
        .event(
            "acme",
            json!({"id": "after-disable", "type": "order.placed"}),
        )
        .await;
    assert_eq!(after["matched"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.received_on("/status/500/down").len(), sent);

    // Enabled again (and pointed at a receiver that answers): delivered again, and
    // failing_since is forgotten.
    let (status, on) = stack
        .admin(
            "PATCH",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(json!({"enabled": true, "url": format!("{}/ok/back", rx.base)})),
        )
        .await;
    assert_eq!(status, 200, "{on}");
    assert_eq!(
        (
            on["disabled_reason"].clone(),
            on["health"]["failing_since"].clone()
        ),
        (Value::Null, Value::Null)
    );
    stack
        .event("acme", json!({"id": "back", "type": "order.placed"}))
        .await;
    eventually(30, || async {
        (!rx.received_on("/ok/back").is_empty()).then_some(())
    })
    .await;
    let health = eventually(30, || async {
        let (_, w) = stack
            .admin("GET", &format!("/v1/projects/acme/webhooks/{id}"), None)
            .await;
        (w["health"]["delivered"] == 1).then_some(w["health"].clone())
    })
    .await;
    assert!(health["last_success_at"].is_string() && health["failing_since"].is_null());
    // One metric record per batch reached the log.
    let logs = stack.logs();
    let records: Vec<Value> = logs
        .lines()
        .filter(|l| l.starts_with("{\"_aws\"") || l.contains("\"CloudWatchMetrics\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !records.is_empty(),
        "no metric record in {}",
        stack.log.display()
    );
    assert!(
        records
            .iter()
            .all(|r| r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Hookline")
    );
    let failed: u64 = records
        .iter()
        .map(|r| r["Retrying"].as_u64().unwrap() + r["Failed"].as_u64().unwrap())
        .sum();
    assert!(failed >= 2);
}

#[tokio::test]
async fn a_dead_lettered_delivery_is_resent_under_its_id_with_a_fresh_signature() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    // Six 500s dead-letter a delivery; the receiver answers 200 from the seventh on.
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "r", "url": format!("{}/fail/6/resend", rx.base), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let secret = hook["signing_secret"].as_str().unwrap();
    stack
        .event(
            "acme",
            json!({"id": "ev-resend", "type": "a", "data": {"n": 1}}),
        )
        .await;
    let dead = eventually(60, || async {
        let (_, page) = stack
            .admin(
                "GET",
                &format!("/v1/projects/acme/webhooks/{id}/deliveries?status=dead_lettered"),
                None,
            )
            .await;
        page["data"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(
        (dead["attempts"].as_u64(), dead["last_status_code"].as_u64()),
        (Some(6), Some(500))
    );
    let delivery_id = dead["id"].as_str().unwrap();
    // Resend clicked twice at once: it goes out once (the other is told it is pending).
    let resend = format!("/v1/projects/acme/webhooks/{id}/deliveries/{delivery_id}/resend");
    let (a, b) = tokio::join!(
        stack.admin("POST", &resend, None),
        stack.admin("POST", &resend, None)
    );
    let (won, lost) = if a.0 == 202 { (a, b) } else { (b, a) };
    assert_eq!(
        (won.0, won.1["delivery_id"].as_str()),
        (202, Some(delivery_id))
    );
    assert_eq!(
        (lost.0, lost.1["error"]["code"].as_str()),
        (409, Some("delivery_in_progress")),
        "{}",
        lost.1
    );
    let seventh = eventually(30, || async {
        rx.received_on("/fail/6/resend").get(6).cloned()
    })
    .await;
    assert_eq!(seventh.header("webhook-id"), delivery_id);
    assert!(verify(secret, &seventh), "the resend is signed");
    let first = &rx.received_on("/fail/6/resend")[0];
    assert_ne!(
        first.header("webhook-signature"),
        seventh.header("webhook-signature")
    );
    let delivered = eventually(30, || async {
        let (_, page) = stack
            .admin(
                "GET",
                &format!("/v1/projects/acme/webhooks/{id}/deliveries"),
                None,
            )
            .await;
        let d = page["data"][0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(
        (delivered["id"].as_str(), delivered["attempts"].as_u64()),
        (Some(delivery_id), Some(7))
    );
    let attempts = stack.attempts("acme", id).await;
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=7).collect::<Vec<_>>(),
        "logged as further attempts"
    );
    // The event's status agrees.
    let (_, event) = stack
        .admin("GET", "/v1/projects/acme/events/ev-resend", None)
        .await;
    assert_eq!(
        (
            event["deliveries"][0]["status"].as_str(),
            event["deliveries"][0]["attempts"].as_u64()
        ),
        (Some("delivered"), Some(7))
    );
}

#[tokio::test]
async fn events_and_deliveries_list_with_filters_and_cursors() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let ok = stack
        .webhook(
            "acme",
            json!({"name": "ok", "url": format!("{}/ok/l", rx.base), "events": ["*"]}),
        )
        .await;
    let bad = stack
        .webhook(
            "acme",
            json!({"name": "bad", "url": format!("{}/status/404/l", rx.base), "events": ["b"]}),
        )
        .await;
    for i in 0..7 {
        let t = if i % 2 == 0 { "a" } else { "b" };
        stack
            .event("acme", json!({"id": format!("l-{i}"), "type": t}))
            .await;
    }
    stack
        .event("globex", json!({"id": "other", "type": "a"}))
        .await;
    let events = all_pages(&stack, "/v1/projects/acme/events?limit=2").await;
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["l-6", "l-5", "l-4", "l-3", "l-2", "l-1", "l-0"]);
    assert_eq!(
        (events[1]["type"].as_str(), events[1]["matched"].as_u64()),
        (Some("b"), Some(2))
    );
    let bs = all_pages(&stack, "/v1/projects/acme/events?type=b&limit=2").await;
    assert_eq!(
        bs.iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["l-5", "l-3", "l-1"]
    );

    let ok_id = ok["id"].as_str().unwrap();
    let bad_id = bad["id"].as_str().unwrap();
    eventually(60, || async {
        let d = all_pages(
            &stack,
            &format!("/v1/projects/acme/webhooks/{ok_id}/deliveries?status=delivered"),
        )
        .await;
        (d.len() == 7).then_some(())
    })
    .await;
    let delivered = all_pages(
        &stack,
        &format!("/v1/projects/acme/webhooks/{ok_id}/deliveries?status=delivered&limit=3"),
    )
    .await;
    let order: Vec<&str> = delivered
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["l-6", "l-5", "l-4", "l-3", "l-2", "l-1", "l-0"]);
    let failed = eventually(60, || async {
        let d = all_pages(
            &stack,
            &format!("/v1/projects/acme/webhooks/{bad_id}/deliveries?status=failed&limit=1"),
        )
        .await;
        (d.len() == 3).then_some(d)
    })
    .await;
    assert!(
        failed
            .iter()
            .all(|d| d["last_status_code"] == 404 && d["attempts"] == 1)
    );
    // A cursor of one listing means nothing to another.
    let (_, page) = stack
        .admin(
            "GET",
            &format!("/v1/projects/acme/webhooks/{ok_id}/deliveries?limit=1"),
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, v) = stack
        .admin(
            "GET",
            &format!("/v1/projects/acme/webhooks/{bad_id}/deliveries?cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("cursor"))
    );
    // Health counts what the receivers answered.
    let (_, list) = stack.admin("GET", "/v1/projects/acme/webhooks", None).await;
    let health = |name: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()["health"]
            .clone()
    };
    assert_eq!(
        (
            health("ok")["delivered"].as_u64(),
            health("ok")["success_rate"].as_f64()
        ),
        (Some(7), Some(1.0))
    );
    assert_eq!(
        (
            health("bad")["failed"].as_u64(),
            health("bad")["success_rate"].as_f64()
        ),
        (Some(3), Some(0.0))
    );
}

/// A change to a webhook reaches the next delivery made after it at once, whatever the
/// delivery function's cache period (here the longest allowed): an edited URL is where
/// the next event goes, and a delivery resent right after re-enabling is delivered, not
/// skipped as disabled (it was, for up to the cache period).
#[tokio::test]
async fn a_change_to_a_webhook_reaches_the_next_delivery_at_once() {
    let stack = Stack::start(&[("HOOKLINE_WEBHOOK_CACHE_SECONDS", "300")]).await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "c", "url": format!("{}/ok/before", rx.base), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/v1/projects/acme/webhooks/{id}");
    stack
        .event("acme", json!({"id": "ch-1", "type": "a"}))
        .await;
    let first = eventually(30, || async {
        rx.received_on("/ok/before").first().cloned()
    })
    .await;
    let delivery_id = first.header("webhook-id").to_string();
    let (status, _) = stack
        .admin(
            "PATCH",
            &path,
            Some(json!({"url": format!("{}/ok/after", rx.base)})),
        )
        .await;
    assert_eq!(status, 200);
    stack
        .event("acme", json!({"id": "ch-2", "type": "a"}))
        .await;
    eventually(30, || async {
        rx.received_on("/ok/after").first().cloned()
    })
    .await;
    let resend = format!("{path}/deliveries/{delivery_id}/resend");
    let latest = || async {
        let (_, page) = stack
            .admin("GET", &format!("{path}/deliveries"), None)
            .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == delivery_id.as_str())
            .cloned()
            .unwrap()
    };
    for (enabled, outcome) in [(false, "skipped"), (true, "delivered")] {
        let (status, _) = stack
            .admin("PATCH", &path, Some(json!({"enabled": enabled})))
            .await;
        assert_eq!(status, 200);
        let (status, _) = stack.admin("POST", &resend, None).await;
        assert_eq!(status, 202);
        let d = eventually(30, || async {
            let d = latest().await;
            // The resend wrote `pending` before it answered.
            (d["status"] != "pending").then_some(d)
        })
        .await;
        assert_eq!(d["status"], outcome, "enabled {enabled}: {d}");
    }
    let moved: Vec<String> = rx
        .received_on("/ok/after")
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert_eq!(moved[1], delivery_id, "the resend went to the new URL");
}

/// Cursors are opaque, not signed: one edited by hand (the key inside it changed, the
/// project and listing kept) pages that project's listing or is refused naming `cursor`,
/// and never reaches the store as a request it would refuse (a 503 before).
#[tokio::test]
async fn a_cursor_edited_by_hand_is_refused_or_pages_its_own_listing() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "c", "url": format!("{}/ok/c", rx.base), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    stack
        .webhook(
            "globex",
            json!({"name": "g", "url": format!("{}/ok/g", rx.base), "events": ["*"]}),
        )
        .await;
    for project in ["acme", "globex"] {
        stack
            .event(project, json!({"id": "c-1", "type": "a"}))
            .await;
    }
    stack.admin("POST", "/v1/projects/acme/keys", None).await;
    eventually(60, || async {
        (stack.attempts("acme", id).await.len() == 1).then_some(())
    })
    .await;
    let listings = [
        (
            "webhooks".to_string(),
            "/v1/projects/acme/webhooks".to_string(),
        ),
        ("events".to_string(), "/v1/projects/acme/events".to_string()),
        ("keys".to_string(), "/v1/projects/acme/keys".to_string()),
        (
            format!("attempts:{id}"),
            format!("/v1/projects/acme/webhooks/{id}/attempts"),
        ),
        (
            format!("deliveries:{id}"),
            format!("/v1/projects/acme/webhooks/{id}/deliveries"),
        ),
    ];
    let long = "9".repeat(2000);
    let keys = [
        "",
        "0",
        "a",
        "zzzz",
        "~",
        "#",
        "##",
        "msg_",
        "msg",
        "aaa#",
        "x#99999999999999999999",
        "msg_~#-1",
        "wh_",
        "key_",
        "0000000000000#",
        &long,
        "a b",
        "%00",
    ];
    for (scope, path) in &listings {
        for key in keys {
            let cursor = hookline_core::store::encode_cursor("acme", scope, key);
            let (status, v) = stack
                .admin("GET", &format!("{path}?cursor={cursor}"), None)
                .await;
            match status {
                200 => assert!(
                    v["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|item| { item.get("project_id").is_none_or(|p| p == "acme") }),
                    "{path} after {key:?}: {v}"
                ),
                400 => assert_eq!(v["error"]["field"], "cursor", "{path} after {key:?}: {v}"),
                _ => panic!("{path} after {key:?}: {status} {v}"),
            }
        }
    }
}

#[tokio::test]
async fn a_project_key_is_refused_on_another_projects_new_routes() {
    let stack = Stack::start(&[]).await;
    let (_, key) = stack.admin("POST", "/v1/projects/acme/keys", None).await;
    let key = key["key"].as_str().unwrap().to_string();
    let hook = stack
        .webhook(
            "globex",
            json!({"name": "g", "url": "https://example.com/g", "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", "/v1/projects/globex/events".to_string()),
        (
            "GET",
            format!("/v1/projects/globex/webhooks/{id}/deliveries"),
        ),
        (
            "POST",
            format!(
                "/v1/projects/globex/webhooks/{id}/deliveries/msg_01jc0000000000000000000000/resend"
            ),
        ),
    ] {
        let (status, v) = stack.call(method, &path, &key, None).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
    }
    // Its own project's, it may read.
    let (status, _) = stack
        .call("GET", "/v1/projects/acme/events", &key, None)
        .await;
    assert_eq!(status, 200);
}

/// Health with the successes held (as deployed, with a short hold): a healthy webhook's
/// counts trail its deliveries and then add up (the local runtime's timed sweep writes
/// what was held), and a failure shows at once.
#[tokio::test]
async fn held_health_adds_up_and_a_failure_shows_at_once() {
    let stack = Stack::start(&[
        ("HOOKLINE_HEALTH_HOLD_SECONDS", "2"),
        ("HOOKLINE_LOCAL_SWEEP_SECONDS", "1"),
    ])
    .await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook("acme", json!({"name": "held", "url": format!("{}/ok/held", rx.base), "events": ["order.placed"]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let health = || async {
        let (_, w) = stack
            .admin("GET", &format!("/v1/projects/acme/webhooks/{id}"), None)
            .await;
        w["health"].clone()
    };
    for n in 0..5 {
        stack
            .event(
                "acme",
                json!({"id": format!("held-{n}"), "type": "order.placed"}),
            )
            .await;
    }
    eventually(30, || async {
        (rx.received_on("/ok/held").len() == 5).then_some(())
    })
    .await;
    let counted = eventually(30, || async {
        let h = health().await;
        (h["delivered"] == 5).then_some(h)
    })
    .await;
    assert_eq!(
        (counted["failed"].clone(), counted["failing_since"].clone()),
        (json!(0), Value::Null)
    );
    // A failure is written with its batch, not held (the unit tests count the writes).
    let (status, _) = stack
        .admin(
            "PATCH",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(json!({"url": format!("{}/status/500/held", rx.base)})),
        )
        .await;
    assert_eq!(status, 200);
    stack
        .event("acme", json!({"id": "held-fail", "type": "order.placed"}))
        .await;
    let failing = eventually(30, || async {
        let h = health().await;
        h["failing_since"].is_string().then_some(h)
    })
    .await;
    assert_eq!(failing["delivered"], 5);
    assert_eq!(failing["last_status_code"], 500);
}
