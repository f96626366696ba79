use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use hookline_core::clock::{DAY, HOUR, now_ms};
use hookline_core::config::Secret;
use hookline_core::model::{
    Attempt, AttemptStatus, SigningSecrets, Webhook, WebhookInput, WebhookSpec, decode_json,
};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::store::memory::{
    InMemoryApiKeyStore, InMemoryAttemptLog, InMemoryEventStore, InMemoryWebhookStore,
};
use hookline_core::store::{ApiKeyStore, EventRecord, EventStore, WebhookStore};

/// The admin key the `sam local` fixtures in tests/events carry.
const ADMIN: &str = "local-admin-key";

struct Harness {
    app: Router,
    webhooks: Arc<InMemoryWebhookStore>,
    events: Arc<InMemoryEventStore>,
    queue: Arc<InMemoryDeliveryQueue>,
    attempts: Arc<InMemoryAttemptLog>,
    keys: Arc<InMemoryApiKeyStore>,
}

fn harness() -> Harness {
    let webhooks = Arc::new(InMemoryWebhookStore::default());
    let events = Arc::new(InMemoryEventStore::default());
    let queue = Arc::new(InMemoryDeliveryQueue::default());
    let attempts = Arc::new(InMemoryAttemptLog::default());
    let keys = Arc::new(InMemoryApiKeyStore::default());
    let state = AppState {
        fanout: FanOut {
            webhooks: webhooks.clone(),
            events: events.clone(),
            queue: queue.clone(),
            retention: 30 * DAY,
            conditions: Default::default(),
        },
        attempts: attempts.clone(),
        auth: Authenticator::new(Some(Secret::new(ADMIN)), keys.clone()),
    };
    Harness {
        app: router(state),
        webhooks,
        events,
        queue,
        attempts,
        keys,
    }
}

impl Harness {
    async fn raw(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post_event(&self, project: &str, event: Value) -> (StatusCode, Value) {
        self.raw(
            "POST",
            &format!("/v1/projects/{project}/events"),
            Some(ADMIN),
            Body::from(event.to_string()),
        )
        .await
    }

    async fn hook(&self, project: &str, events: &[&str], enabled: bool) -> String {
        let json = json!({"name": "n", "url": "https://example.com/", "events": events, "enabled": enabled});
        let spec = WebhookSpec::from_create(
            decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        let webhook = Webhook::new(project, spec, now_ms());
        self.webhooks.create(&webhook).await.unwrap();
        webhook.id
    }

    fn tasks(&self) -> Vec<DeliveryTask> {
        self.queue
            .recorded()
            .sent
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }
}

fn code(v: &Value) -> (&str, Option<&str>) {
    (
        v["error"]["code"].as_str().unwrap_or("?"),
        v["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn fans_out_to_enabled_subscribers_by_type_and_star_only() {
    let h = harness();
    let typed = h.hook("acme", &["order.placed"], true).await;
    let star = h.hook("acme", &["*"], true).await;
    h.hook("acme", &["order.placed"], false).await;
    h.hook("acme", &["user.created"], true).await;
    h.hook("globex", &["order.placed"], true).await;
    let (status, v) = h
        .post_event(
            "acme",
            json!({"id": "ev-1", "type": "order.placed", "data": {"total": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        v,
        json!({"event_id": "ev-1", "matched": 2, "duplicate": false})
    );
    let tasks = h.tasks();
    let mut targets: Vec<_> = tasks.iter().map(|t| t.webhook_id.clone()).collect();
    targets.sort();
    let mut expected = vec![typed, star];
    expected.sort();
    assert_eq!(targets, expected);
    for t in &tasks {
        assert_eq!(t.project_id, "acme");
        assert!(t.delivery_id.starts_with("msg_"));
        assert_eq!(t.event.as_ref().unwrap().data["total"], 5);
        assert!(!t.operational);
    }
    assert_ne!(tasks[0].delivery_id, tasks[1].delivery_id);
    let record = h.events.get("acme", "ev-1").await.unwrap().unwrap();
    assert!(record.complete);
    assert_eq!(record.enqueued.len(), 2);
}

#[tokio::test]
async fn a_generated_id_is_returned_when_the_client_gives_none() {
    let h = harness();
    h.hook("acme", &["*"], true).await;
    let (_, v) = h.post_event("acme", json!({"type": "a"})).await;
    assert!(v["event_id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(v["matched"], 1);
}

#[tokio::test]
async fn a_repeated_id_is_a_duplicate_and_enqueues_nothing_new() {
    let h = harness();
    h.hook("acme", &["*"], true).await;
    let (_, first) = h
        .post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    let (status, again) = h
        .post_event(
            "acme",
            json!({"id": "ev-1", "type": "a", "data": {"changed": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (first["duplicate"].clone(), again["duplicate"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(again["matched"], 1);
    assert_eq!(h.tasks().len(), 1);
    // It said something else than the event its id names: the answer says so.
    assert_eq!(again["differs"], true);
    assert_eq!(first.get("differs"), None);
    // A retry of the first request is a plain duplicate: its time is stamped anew and
    // its keys may come in another order, but it says the same.
    for retry in [
        json!({"id": "ev-1", "type": "a"}),
        json!({"type": "a", "id": "ev-1", "data": {}}),
        json!({"id": "ev-1", "type": "a", "timestamp": "2020-01-01T00:00:00Z"}),
    ] {
        let (_, v) = h.post_event("acme", retry.clone()).await;
        assert_eq!(
            v,
            json!({"event_id": "ev-1", "matched": 1, "duplicate": true}),
            "{retry}"
        );
    }
    for different in [
        json!({"id": "ev-1", "type": "b"}),
        json!({"id": "ev-1", "type": "a", "channel": "web"}),
        json!({"id": "ev-1", "type": "a", "user": {"id": "u1"}}),
        json!({"id": "ev-1", "type": "a", "data": {"n": 1}}),
    ] {
        let (_, v) = h.post_event("acme", different.clone()).await;
        assert_eq!(
            (&v["duplicate"], &v["differs"]),
            (&json!(true), &json!(true)),
            "{different}"
        );
    }
    assert_eq!(h.tasks().len(), 1);
    // The same id in another project is another event.
    let (_, other) = h
        .post_event("globex", json!({"id": "ev-1", "type": "a"}))
        .await;
    assert_eq!(other["duplicate"], false);
}

#[tokio::test]
async fn two_concurrent_identical_posts_fan_out_once() {
    let h = harness();
    for _ in 0..25 {
        h.hook("acme", &["*"], true).await;
    }
    let event = json!({"id": "ev-race", "type": "a"});
    let (a, b) = tokio::join!(
        h.post_event("acme", event.clone()),
        h.post_event("acme", event)
    );
    assert_eq!((a.0, b.0), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    let duplicates = [&a.1, &b.1]
        .iter()
        .filter(|v| v["duplicate"] == true)
        .count();
    assert_eq!(duplicates, 1);
    assert_eq!(h.tasks().len(), 25);
}

#[tokio::test]
async fn entries_sqs_rejects_are_retried() {
    let h = harness();
    let mut hooks = std::collections::BTreeSet::new();
    for _ in 0..23 {
        hooks.insert(h.hook("acme", &["*"], true).await);
    }
    h.queue.reject_entries.store(7, Ordering::SeqCst);
    let (status, v) = h
        .post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(h.tasks().len(), 23);
    assert!(h.queue.requests() > 3, "rejected entries were sent again");
    // Every webhook got its task once: the rejected ones were re-sent, none twice.
    let sent: std::collections::BTreeSet<_> = h.tasks().into_iter().map(|t| t.webhook_id).collect();
    assert_eq!(sent, hooks);
}

#[tokio::test]
async fn a_fan_out_that_stopped_half_way_is_finished_by_a_retried_post_without_resending() {
    let h = harness();
    let mut hooks = vec![];
    for _ in 0..25 {
        hooks.push(h.hook("acme", &["*"], true).await);
    }
    // The queue accepts one batch call, then fails every call.
    h.queue.fail_after_batches.store(1, Ordering::SeqCst);
    let (status, v) = h
        .post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    assert_eq!(
        (status, code(&v).0),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert_eq!(h.tasks().len(), 10);
    let record = h.events.get("acme", "ev-1").await.unwrap().unwrap();
    assert_eq!((record.enqueued.len(), record.complete), (10, false));
    let sent_first: Vec<_> = h.tasks().into_iter().map(|t| t.webhook_id).collect();

    // The request that gave up also gave its lease up: a retry finishes the fan-out at
    // once, sending only what was missing.
    h.queue.fail_after_batches.store(0, Ordering::SeqCst);
    let (status, v) = h
        .post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    assert_eq!(
        (status, v["duplicate"].clone(), v["matched"].clone()),
        (StatusCode::ACCEPTED, json!(true), json!(25))
    );
    let all: Vec<_> = h.tasks().into_iter().map(|t| t.webhook_id).collect();
    assert_eq!(all.len(), 25, "nothing sent twice");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 25);
    assert!(
        sent_first
            .iter()
            .all(|w| all.iter().filter(|x| *x == w).count() == 1)
    );
    assert!(
        h.events
            .get("acme", "ev-1")
            .await
            .unwrap()
            .unwrap()
            .complete
    );
}

/// A record as a crashed request leaves it: every delivery matched, `noted` of them
/// noted as sent, the lease until `lease_until`.
async fn abandoned(h: &Harness, id: &str, hooks: &[String], noted: usize, lease_until: Millis) {
    let event = Event::from_input(
        decode_json(format!(r#"{{"id":"{id}","type":"a"}}"#).as_bytes()).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap();
    let record = EventRecord {
        project_id: "acme".into(),
        event,
        deliveries: hooks
            .iter()
            .map(|w| (w.clone(), format!("msg_{id}_{w}")))
            .collect(),
        skipped: Default::default(),
        enqueued: hooks.iter().take(noted).cloned().collect(),
        complete: false,
        lease_until,
        created_at: now_ms(),
        operational: false,
        expires_at: now_ms() + DAY,
    };
    assert!(h.events.create(&record).await.unwrap());
}

/// A re-POST of an event whose fan-out another request holds (alive, or crashed less
/// than a lease ago) never says "duplicate" while nothing is finishing it: it answers
/// 503 with Retry-After until the lease lapses, then finishes the fan-out itself.
#[tokio::test]
async fn a_repost_while_the_fan_out_is_held_is_told_when_to_come_back() {
    let h = harness();
    let hooks = vec![
        h.hook("acme", &["*"], true).await,
        h.hook("acme", &["*"], true).await,
    ];
    abandoned(&h, "ev-held", &hooks, 0, now_ms() + 20_000).await;
    let request = Request::post("/v1/projects/acme/events")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(
            json!({"id": "ev-held", "type": "a"}).to_string(),
        ))
        .unwrap();
    let response = h.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&v).0, "unavailable");
    assert!(h.tasks().is_empty(), "the holder's work is left alone");
    // Lapsed: the next POST takes the fan-out over and finishes it.
    assert!(
        h.events
            .take_lease("acme", "ev-held", i64::MAX - 1, 0)
            .await
            .unwrap()
    );
    let (status, v) = h
        .post_event("acme", json!({"id": "ev-held", "type": "a"}))
        .await;
    assert_eq!(
        (status, v["duplicate"].clone()),
        (StatusCode::ACCEPTED, json!(true))
    );
    assert_eq!(h.tasks().len(), 2);
}

/// The sweep finishes what a crash abandoned with no POST at all: only fan-outs whose
/// lease lapsed, sending only what was not noted, and never a complete one.
#[tokio::test]
async fn the_sweep_finishes_abandoned_fan_outs_and_nothing_else() {
    let h = harness();
    let hooks: Vec<String> = [
        h.hook("acme", &["*"], true).await,
        h.hook("acme", &["*"], true).await,
        h.hook("acme", &["*"], true).await,
    ]
    .into();
    abandoned(&h, "ev-crashed", &hooks, 1, now_ms() - 1).await;
    abandoned(&h, "ev-running", &hooks, 0, now_ms() + 30_000).await;
    let (status, _) = h
        .post_event("acme", json!({"id": "ev-done", "type": "a"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let before = h.tasks().len();
    let fanout = FanOut {
        webhooks: h.webhooks.clone(),
        events: h.events.clone(),
        queue: h.queue.clone(),
        retention: DAY,
        conditions: Default::default(),
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let swept = fanout.sweep(until).await.unwrap();
    assert_eq!((swept.finished, swept.failed), (1, 0));
    let resumed: Vec<DeliveryTask> = h.tasks().into_iter().skip(before).collect();
    assert_eq!(resumed.len(), 2, "the two deliveries not noted as sent");
    assert!(
        resumed
            .iter()
            .all(|t| t.event_id == "ev-crashed" && t.webhook_id != hooks[0])
    );
    assert!(
        h.events
            .get("acme", "ev-crashed")
            .await
            .unwrap()
            .unwrap()
            .complete
    );
    assert!(
        !h.events
            .get("acme", "ev-running")
            .await
            .unwrap()
            .unwrap()
            .complete
    );
    // Nothing is left for a second sweep.
    assert_eq!(fanout.sweep(until).await.unwrap(), Default::default());
}

#[tokio::test]
async fn a_crash_before_anything_was_noted_is_resumed_from_the_record() {
    let h = harness();
    let a = h.hook("acme", &["*"], true).await;
    let b = h.hook("acme", &["*"], true).await;
    // A record as a crashed request leaves it: matched, nothing noted, lease lapsed.
    let event = Event::from_input(
        decode_json(br#"{"id":"ev-9","type":"a"}"#).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap();
    let record = EventRecord {
        project_id: "acme".into(),
        event,
        deliveries: [
            (a.clone(), "msg_a".to_string()),
            (b.clone(), "msg_b".to_string()),
        ]
        .into(),
        skipped: Default::default(),
        enqueued: [a.clone()].into(),
        complete: false,
        lease_until: 0,
        created_at: now_ms(),
        operational: false,
        expires_at: now_ms() + DAY,
    };
    h.events.create(&record).await.unwrap();
    let (status, v) = h
        .post_event("acme", json!({"id": "ev-9", "type": "a"}))
        .await;
    assert_eq!(
        (status, v["duplicate"].clone()),
        (StatusCode::ACCEPTED, json!(true))
    );
    let tasks = h.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0].webhook_id.as_str(), tasks[0].delivery_id.as_str()),
        (b.as_str(), "msg_b")
    );
}

#[tokio::test]
async fn bad_events_are_rejected_by_field_and_store_nothing() {
    let h = harness();
    h.hook("acme", &["*"], true).await;
    let far = clock::to_rfc3339(now_ms() + 8 * DAY);
    let cases: Vec<(Body, StatusCode, &str, Option<&str>)> = vec![
        (
            Body::from("{"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            Body::from("{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            Some("type"),
        ),
        (
            Body::from(r#"{"type": "a", "data": [1]}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("data"),
        ),
        (
            Body::from(r#"{"type": 7}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("type"),
        ),
        (
            Body::from(
                r#"{"type": "a", "data": {"order": {"id": 123456789012345678901234567890}}}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("data.order.id"),
        ),
        (
            Body::from(r#"{"type": "delivery.failed"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved_event_type",
            Some("type"),
        ),
        (
            Body::from(json!({"type": "a", "deliver_at": far}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("deliver_at"),
        ),
        (
            Body::from(r#"{"type": "a", "extra": 1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("extra"),
        ),
        (
            Body::from(
                json!({"type": "a", "data": {"blob": "x".repeat(MAX_REQUEST_BYTES)}}).to_string(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
    ];
    for (body, status, c, field) in cases {
        let (got, v) = h
            .raw("POST", "/v1/projects/acme/events", Some(ADMIN), body)
            .await;
        assert_eq!((got, code(&v)), (status, (c, field)), "{v}");
    }
    assert!(h.tasks().is_empty());
    let (status, _) = h
        .raw(
            "POST",
            "/v1/projects/acme/events",
            None,
            Body::from(r#"{"type":"a"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_project_key_cannot_trigger_read_or_recover_elsewhere() {
    let h = harness();
    let keys = Arc::new(InMemoryApiKeyStore::default());
    let (record, key) = hookline_core::api::new_api_key("acme", now_ms());
    hookline_core::store::ApiKeyStore::put(keys.as_ref(), &record)
        .await
        .unwrap();
    let state = AppState {
        fanout: FanOut {
            webhooks: h.webhooks.clone(),
            events: h.events.clone(),
            queue: h.queue.clone(),
            retention: DAY,
            conditions: Default::default(),
        },
        attempts: h.attempts.clone(),
        auth: Authenticator::new(None, keys),
    };
    let app = router(state);
    let globex = h.hook("globex", &["*"], true).await;
    h.post_event("globex", json!({"id": "g-1", "type": "a"}))
        .await;
    for (method, uri, body) in [
        (
            "POST",
            "/v1/projects/globex/events".to_string(),
            r#"{"type":"a"}"#,
        ),
        ("GET", "/v1/projects/globex/events/g-1".to_string(), ""),
        (
            "POST",
            format!("/v1/projects/globex/webhooks/{globex}/recover"),
            r#"{"since":"2020-01-01T00:00:00Z"}"#,
        ),
        ("GET", "/v1/projects/globex/events".to_string(), ""),
        (
            "GET",
            format!("/v1/projects/globex/webhooks/{globex}/deliveries"),
            "",
        ),
        (
            "POST",
            format!(
                "/v1/projects/globex/webhooks/{globex}/deliveries/{}/resend",
                h.tasks()[0].delivery_id
            ),
            "",
        ),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(body))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {uri}");
    }
    assert_eq!(h.tasks().len(), 1);
}

#[tokio::test]
async fn large_events_travel_by_reference_and_scheduled_ones_are_delayed_or_held() {
    let h = harness();
    h.hook("acme", &["*"], true).await;
    let big = "x".repeat(200 * 1024);
    let (status, _) = h
        .post_event(
            "acme",
            json!({"id": "big", "type": "a", "data": {"blob": big}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let message = &h.queue.recorded().sent[0];
    assert!(message.body.len() < 4096);
    let task: DeliveryTask = serde_json::from_str(&message.body).unwrap();
    assert!(task.event.is_none());
    assert_eq!(
        h.events
            .get("acme", "big")
            .await
            .unwrap()
            .unwrap()
            .event
            .data["blob"]
            .as_str()
            .unwrap()
            .len(),
        200 * 1024
    );

    let soon = clock::to_rfc3339(now_ms() + 5_000);
    h.post_event(
        "acme",
        json!({"id": "soon", "type": "a", "deliver_at": soon}),
    )
    .await;
    let later = now_ms() + 2 * 3_600_000;
    h.post_event(
        "acme",
        json!({"id": "later", "type": "a", "deliver_at": clock::to_rfc3339(later)}),
    )
    .await;
    let sent = h.queue.recorded().sent;
    assert!(
        (4..=6).contains(&sent[1].delay_seconds),
        "{}",
        sent[1].delay_seconds
    );
    let held: DeliveryTask = serde_json::from_str(&sent[2].body).unwrap();
    assert_eq!(sent[2].delay_seconds, 900);
    assert_eq!(held.deliver_at, Some(later));
    assert_eq!(held.first_attempt_at, later);
}

fn attempt(
    t: &DeliveryTask,
    n: u32,
    status: AttemptStatus,
    code: Option<u16>,
    at: Millis,
) -> Attempt {
    Attempt {
        id: ids::new_id("att", at),
        project_id: t.project_id.clone(),
        event_id: t.event_id.clone(),
        event_type: "a".into(),
        webhook_id: t.webhook_id.clone(),
        delivery_id: t.delivery_id.clone(),
        attempt: n,
        status,
        status_code: code,
        duration_ms: 1,
        error: None,
        response_excerpt: None,
        next_attempt_at: None,
        created_at: at,
    }
}

#[tokio::test]
async fn event_status_reports_each_delivery_from_the_attempt_log() {
    let h = harness();
    h.hook("acme", &["*"], true).await;
    h.hook("acme", &["*"], true).await;
    h.post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    let tasks = h.tasks();
    let now = now_ms();
    h.attempts
        .record(
            &attempt(&tasks[0], 1, AttemptStatus::Retrying, Some(500), now - 3),
            now + DAY,
        )
        .await
        .unwrap();
    h.attempts
        .record(
            &attempt(&tasks[0], 2, AttemptStatus::Delivered, Some(200), now - 2),
            now + DAY,
        )
        .await
        .unwrap();
    let (status, v) = h
        .raw(
            "GET",
            "/v1/projects/acme/events/ev-1",
            Some(ADMIN),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["id"].clone(), v["type"].clone()),
        (json!("ev-1"), json!("a"))
    );
    let deliveries = v["deliveries"].as_array().unwrap();
    let first = deliveries
        .iter()
        .find(|d| d["webhook_id"] == tasks[0].webhook_id.as_str())
        .unwrap();
    assert_eq!(
        (
            first["status"].clone(),
            first["attempts"].clone(),
            first["last_status_code"].clone()
        ),
        (json!("delivered"), json!(2), json!(200))
    );
    let second = deliveries
        .iter()
        .find(|d| d["webhook_id"] == tasks[1].webhook_id.as_str())
        .unwrap();
    assert_eq!(
        (
            second["status"].clone(),
            second["attempts"].clone(),
            second["last_status_code"].clone()
        ),
        (json!("pending"), json!(0), Value::Null)
    );
    let (status, _) = h
        .raw(
            "GET",
            "/v1/projects/acme/events/nope",
            Some(ADMIN),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recover_requeues_failed_and_dead_lettered_deliveries_since_a_time() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    for id in ["e1", "e2", "e3", "e4"] {
        h.post_event("acme", json!({"id": id, "type": "a"})).await;
    }
    let tasks = h.tasks();
    let now = now_ms();
    let log = |t: &DeliveryTask, st, at| attempt(t, 1, st, Some(500), at);
    h.attempts
        .record(
            &log(&tasks[0], AttemptStatus::DeadLettered, now - 100),
            now + DAY,
        )
        .await
        .unwrap();
    h.attempts
        .record(&log(&tasks[1], AttemptStatus::Failed, now - 90), now + DAY)
        .await
        .unwrap();
    h.attempts
        .record(
            &log(&tasks[2], AttemptStatus::Delivered, now - 80),
            now + DAY,
        )
        .await
        .unwrap();
    h.attempts
        .record(
            &log(&tasks[3], AttemptStatus::DeadLettered, now - 10 * DAY),
            now + DAY,
        )
        .await
        .unwrap();
    let since = clock::to_rfc3339(now - DAY);
    let uri = format!("/v1/projects/acme/webhooks/{hook}/recover");
    let (status, v) = h
        .raw(
            "POST",
            &uri,
            Some(ADMIN),
            Body::from(json!({"since": since}).to_string()),
        )
        .await;
    assert_eq!((status, v), (StatusCode::ACCEPTED, json!({"requeued": 2})));
    let requeued: Vec<DeliveryTask> = h.tasks().into_iter().skip(4).collect();
    let mut ids: Vec<_> = requeued.iter().map(|t| t.delivery_id.clone()).collect();
    ids.sort();
    let mut expected = vec![tasks[0].delivery_id.clone(), tasks[1].delivery_id.clone()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "the same delivery ids, so receivers can deduplicate"
    );
    assert!(
        requeued
            .iter()
            .all(|t| t.first_attempt_at >= now && t.event.is_some())
    );

    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::from("{}")).await;
    assert_eq!(
        (status, code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            ("missing_field", Some("since"))
        )
    );
    let (status, v) = h
        .raw(
            "POST",
            &uri,
            Some(ADMIN),
            Body::from(r#"{"since": "yesterday"}"#),
        )
        .await;
    assert_eq!(
        (status, code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("since"))
    );
    let (status, _) = h
        .raw(
            "POST",
            "/v1/projects/acme/webhooks/wh_00000000000000000000000000/recover",
            Some(ADMIN),
            Body::from(json!({"since": since}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The API Gateway v2 events `sam local invoke -e` uses (tests/events/trigger-*.json).
#[tokio::test]
async fn the_sam_local_fixtures_route_and_answer() {
    let h = harness();
    let json = json!({"name": "n", "url": "https://example.com/", "events": ["*"]});
    let webhook = Webhook {
        id: "wh_01jc0000000000000000000000".into(),
        project_id: "acme".into(),
        spec: WebhookSpec::from_create(
            decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap(),
        )
        .unwrap(),
        signing: SigningSecrets {
            current: hookline_core::signing::new_secret(),
            previous: None,
            previous_expires_at: None,
        },
        created_at: 0,
        updated_at: 0,
        version: 1,
        disabled_reason: None,
        disabled_at: None,
    };
    h.webhooks.create(&webhook).await.unwrap();
    let dir = hookline_e2e::workspace_root().join("tests/events");
    let expected = [
        ("trigger-health", StatusCode::OK),
        ("trigger-post-event", StatusCode::ACCEPTED),
        ("trigger-get-event", StatusCode::OK),
        ("trigger-recover", StatusCode::ACCEPTED),
    ];
    for (name, status) in expected {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let response = h.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{name}");
    }
    assert_eq!(h.tasks().len(), 1);
    assert_eq!(h.tasks()[0].webhook_id, webhook.id);
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("trigger-")
        })
        .count();
    assert_eq!(
        on_disk,
        expected.len(),
        "every trigger fixture is exercised"
    );
}

async fn get(h: &Harness, uri: &str, key: &str) -> (StatusCode, Value) {
    h.raw("GET", uri, Some(key), Body::empty()).await
}

/// Records the attempts a delivery had: `statuses` in order, a second apart.
async fn attempted(h: &Harness, t: &DeliveryTask, statuses: &[AttemptStatus]) {
    let now = now_ms();
    for (i, status) in statuses.iter().enumerate() {
        let code = if *status == AttemptStatus::Delivered {
            200
        } else {
            503
        };
        let mut a = attempt(t, i as u32 + 1, *status, Some(code), now + i as i64);
        a.error = (*status != AttemptStatus::Delivered).then(|| "HTTP 503".to_string());
        h.attempts.record(&a, now + DAY).await.unwrap();
    }
}

/// SPEC §10: a webhook's deliveries newest first, filtered by status, in pages.
#[tokio::test]
async fn deliveries_list_newest_first_with_a_status_filter_and_pages() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    for i in 0..5 {
        h.post_event("acme", json!({"id": format!("ev-{i}"), "type": "a"}))
            .await;
    }
    let tasks = h.tasks();
    attempted(
        &h,
        &tasks[0],
        &[AttemptStatus::Retrying, AttemptStatus::Delivered],
    )
    .await;
    attempted(&h, &tasks[1], &[AttemptStatus::DeadLettered]).await;
    attempted(&h, &tasks[2], &[AttemptStatus::Retrying]).await;
    attempted(&h, &tasks[3], &[AttemptStatus::Delivered]).await;
    let base = format!("/v1/projects/acme/webhooks/{hook}/deliveries");
    let (status, all) = get(&h, &base, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    // The fifth was not attempted yet: it has no record (the fan-out writes none).
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ev-3", "ev-2", "ev-1", "ev-0"]);
    let first = &all["data"][3];
    assert_eq!(
        (
            first["id"].as_str(),
            first["status"].as_str(),
            first["attempts"].as_u64(),
            first["last_status_code"].as_u64()
        ),
        (
            Some(tasks[0].delivery_id.as_str()),
            Some("delivered"),
            Some(2),
            Some(200)
        )
    );
    for key in [
        "event_type",
        "last_error",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    assert!(first.get("history").is_none());
    let (_, delivered) = get(&h, &format!("{base}?status=delivered&limit=1"), ADMIN).await;
    assert_eq!(delivered["data"][0]["event_id"], "ev-3");
    let cursor = delivered["next_cursor"].as_str().unwrap();
    let (_, rest) = get(
        &h,
        &format!("{base}?status=delivered&limit=1&cursor={cursor}"),
        ADMIN,
    )
    .await;
    assert_eq!(rest["data"][0]["event_id"], "ev-0");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, v) = get(&h, &format!("{base}?status=lost"), ADMIN).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::BAD_REQUEST, ("invalid_query", Some("status")))
    );
    // A cursor of another listing is refused; an unknown webhook is 404.
    let (status, _) = get(
        &h,
        "/v1/projects/acme/webhooks/wh_01jc0000000000000000000000/deliveries",
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// SPEC §10: resend sends one delivery again now — same id, attempts numbered on.
#[tokio::test]
async fn resend_sends_one_delivery_again_under_its_id() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    h.post_event(
        "acme",
        json!({"id": "ev-dead", "type": "a", "data": {"k": 1}}),
    )
    .await;
    let original = h.tasks()[0].clone();
    attempted(
        &h,
        &original,
        &[AttemptStatus::Retrying, AttemptStatus::DeadLettered],
    )
    .await;
    let uri = format!(
        "/v1/projects/acme/webhooks/{hook}/deliveries/{}/resend",
        original.delivery_id
    );
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(
        (status, v["delivery_id"].as_str()),
        (StatusCode::ACCEPTED, Some(original.delivery_id.as_str()))
    );
    let again = h.tasks().last().unwrap().clone();
    assert_eq!(again.delivery_id, original.delivery_id);
    assert_eq!(again.attempts_before, 2);
    assert_eq!(again.event.unwrap().data["k"], 1);
    assert!(again.first_attempt_at >= original.first_attempt_at);
    let (_, list) = get(
        &h,
        &format!("/v1/projects/acme/webhooks/{hook}/deliveries"),
        ADMIN,
    )
    .await;
    assert_eq!(list["data"][0]["status"], "pending");
    assert_eq!(list["data"][0]["attempts"], 2);
    for unknown in ["msg_01jc0000000000000000000000", "nope"] {
        let uri = format!("/v1/projects/acme/webhooks/{hook}/deliveries/{unknown}/resend");
        let (status, _) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    }
}

/// A resend goes out once: never beside a delivery's own live retries (which would send
/// it twice over), once however often it is clicked, and a resend the queue refused
/// leaves the delivery shown as it was, so it can be resent again.
#[tokio::test]
async fn a_resend_goes_out_once_and_never_beside_live_retries() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    h.post_event("acme", json!({"id": "ev-1", "type": "a"}))
        .await;
    let original = h.tasks()[0].clone();
    let uri = format!(
        "/v1/projects/acme/webhooks/{hook}/deliveries/{}/resend",
        original.delivery_id
    );
    let list = format!("/v1/projects/acme/webhooks/{hook}/deliveries");
    let now = now_ms();
    let mut retrying = attempt(&original, 1, AttemptStatus::Retrying, Some(503), now);
    retrying.next_attempt_at = Some(now + 30_000);
    h.attempts.record(&retrying, now + DAY).await.unwrap();
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(
        (status, code(&v).0),
        (StatusCode::CONFLICT, "delivery_in_progress"),
        "{v}"
    );
    let next = clock::to_rfc3339(now + 30_000);
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&next),
        "{v}"
    );
    assert_eq!(h.tasks().len(), 1, "nothing sent beside the retries");
    let (_, page) = get(&h, &list, ADMIN).await;
    assert_eq!(page["data"][0]["status"], "retrying");

    // Dead-lettered: the first resend goes, the second finds it pending.
    let dead = attempt(
        &original,
        2,
        AttemptStatus::DeadLettered,
        Some(503),
        now + 1,
    );
    h.attempts.record(&dead, now + DAY).await.unwrap();
    let (status, _) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Pending, its attempt due now.
    let (_, page) = get(&h, &list, ADMIN).await;
    let due = page["data"][0]["next_attempt_at"].as_str().unwrap();
    assert_eq!(page["data"][0]["status"], "pending");
    assert!(clock::parse_rfc3339(due).unwrap() >= now, "{page}");
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(
        (status, code(&v).0),
        (StatusCode::CONFLICT, "delivery_in_progress"),
        "{v}"
    );
    assert_eq!(h.tasks().len(), 2, "one resend went out");

    // Its attempt delivered it; a resend the queue refuses is a 503 and leaves it so.
    let delivered = attempt(&original, 3, AttemptStatus::Delivered, Some(200), now + 2);
    h.attempts.record(&delivered, now + DAY).await.unwrap();
    h.queue
        .fail_after_batches
        .store(h.queue.requests(), Ordering::SeqCst);
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(
        (status, code(&v).0),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let (_, page) = get(&h, &list, ADMIN).await;
    assert_eq!(
        (&page["data"][0]["status"], &page["data"][0]["attempts"]),
        (&json!("delivered"), &json!(3)),
        "shown as it was, not pending with nothing queued"
    );
    h.queue.fail_after_batches.store(0, Ordering::SeqCst);
    let (status, _) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.tasks().len(), 3);

    // Retrying with its next attempt over an hour past: its message is taken as lost
    // (moved aside by SQS's redrive after crashes), and it can be resent.
    h.post_event("acme", json!({"id": "ev-2", "type": "a"}))
        .await;
    let lost = h.tasks()[3].clone();
    let mut stale = attempt(&lost, 1, AttemptStatus::Retrying, Some(503), now - 3 * HOUR);
    stale.next_attempt_at = Some(now - 2 * HOUR);
    h.attempts.record(&stale, now + DAY).await.unwrap();
    let uri = format!(
        "/v1/projects/acme/webhooks/{hook}/deliveries/{}/resend",
        lost.delivery_id
    );
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(h.tasks().len(), 5);

    // So is a resend whose process died between its pending mark and the queue: due
    // over an hour ago and never attempted.
    let stuck = Delivery {
        next_attempt_at: Some(now - 2 * HOUR),
        ..Delivery::pending(&lost, "a", now - 2 * HOUR)
    };
    h.attempts.pending(&stuck, now + DAY).await.unwrap();
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), Body::empty()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(h.tasks().len(), 6);
}

/// Recover takes a delivery once: a second recover (or a resend) while the first one's
/// tasks wait for their attempts finds the deliveries pending and sends nothing again.
#[tokio::test]
async fn recover_twice_sends_each_delivery_once() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    h.post_event("acme", json!({"id": "e1", "type": "a"})).await;
    let original = h.tasks()[0].clone();
    let now = now_ms();
    h.attempts
        .record(
            &attempt(&original, 1, AttemptStatus::DeadLettered, Some(500), now),
            now + DAY,
        )
        .await
        .unwrap();
    let uri = format!("/v1/projects/acme/webhooks/{hook}/recover");
    let body = || Body::from(json!({"since": clock::to_rfc3339(now - DAY)}).to_string());
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), body()).await;
    assert_eq!((status, v), (StatusCode::ACCEPTED, json!({"requeued": 1})));
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), body()).await;
    assert_eq!((status, v), (StatusCode::ACCEPTED, json!({"requeued": 0})));
    let resend = format!(
        "/v1/projects/acme/webhooks/{hook}/deliveries/{}/resend",
        original.delivery_id
    );
    let (status, _) = h.raw("POST", &resend, Some(ADMIN), Body::empty()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(h.tasks().len(), 2, "the delivery went out again once");
}

/// A store that goes away half way through a recover: what was taken is sent before the
/// 503 (nothing is left shown pending with nothing queued), and a recover again sends
/// the rest, once.
#[tokio::test]
async fn a_recover_cut_short_sends_what_it_took_and_a_second_takes_the_rest() {
    let h = harness();
    let hook = h.hook("acme", &["*"], true).await;
    for id in ["e1", "e2"] {
        h.post_event("acme", json!({"id": id, "type": "a"})).await;
    }
    let originals = h.tasks();
    let now = now_ms();
    for t in &originals {
        h.attempts
            .record(
                &attempt(t, 1, AttemptStatus::DeadLettered, Some(500), now),
                now + DAY,
            )
            .await
            .unwrap();
    }
    let uri = format!("/v1/projects/acme/webhooks/{hook}/recover");
    let body = || Body::from(json!({"since": clock::to_rfc3339(now - DAY)}).to_string());
    h.events.fail_gets_after.store(1, Ordering::SeqCst);
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), body()).await;
    assert_eq!(
        (status, code(&v).0),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let sent: Vec<String> = h.tasks()[2..]
        .iter()
        .map(|t| t.delivery_id.clone())
        .collect();
    assert_eq!(sent.len(), 1, "the one taken before the store went away");
    let (_, page) = get(
        &h,
        &format!("/v1/projects/acme/webhooks/{hook}/deliveries"),
        ADMIN,
    )
    .await;
    let statuses: Vec<(String, String)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (id, status) in &statuses {
        let expected = if sent.contains(id) {
            "pending"
        } else {
            "dead_lettered"
        };
        assert_eq!(status, expected, "{statuses:?}");
    }
    h.events.fail_gets_after.store(0, Ordering::SeqCst);
    let (status, v) = h.raw("POST", &uri, Some(ADMIN), body()).await;
    assert_eq!((status, v), (StatusCode::ACCEPTED, json!({"requeued": 1})));
    let mut again: Vec<String> = h.tasks()[2..]
        .iter()
        .map(|t| t.delivery_id.clone())
        .collect();
    again.sort();
    let mut all: Vec<String> = originals.iter().map(|t| t.delivery_id.clone()).collect();
    all.sort();
    assert_eq!(again, all, "each sent again once");
}

/// SPEC §10: a project's events newest first, by type, in pages.
#[tokio::test]
async fn events_list_newest_first_with_a_type_filter_and_pages() {
    let h = harness();
    h.hook("acme", &["order.placed"], true).await;
    for (i, t) in ["order.placed", "user.created", "order.placed"]
        .iter()
        .enumerate()
    {
        h.post_event("acme", json!({"id": format!("e{i}"), "type": t}))
            .await;
    }
    h.post_event("other", json!({"id": "elsewhere", "type": "order.placed"}))
        .await;
    let (status, all) = get(&h, "/v1/projects/acme/events", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e2", "e1", "e0"]);
    assert_eq!(
        (
            all["data"][0]["matched"].as_u64(),
            all["data"][1]["matched"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(all["data"][0]["type"], "order.placed");
    assert!(all["data"][0]["timestamp"].is_string() && all["data"][0].get("channel").is_some());
    let (_, orders) = get(
        &h,
        "/v1/projects/acme/events?type=order.placed&limit=1",
        ADMIN,
    )
    .await;
    assert_eq!(orders["data"][0]["id"], "e2");
    let cursor = orders["next_cursor"].as_str().unwrap();
    let (_, rest) = get(
        &h,
        &format!("/v1/projects/acme/events?type=order.placed&limit=1&cursor={cursor}"),
        ADMIN,
    )
    .await;
    assert_eq!(rest["data"][0]["id"], "e0");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, v) = get(&h, "/v1/projects/acme/events?type=bad%20type", ADMIN).await;
    assert_eq!(
        (status, code(&v).1),
        (StatusCode::BAD_REQUEST, Some("type"))
    );
}

async fn hook_with(h: &Harness, events: &[&str], extra: Value) -> String {
    let mut json = json!({"name": "n", "url": "https://example.com/", "events": events});
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    let spec =
        WebhookSpec::from_create(decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap())
            .unwrap();
    let webhook = Webhook::new("acme", spec, now_ms());
    h.webhooks.create(&webhook).await.unwrap();
    webhook.id
}

/// SPEC §9 at fan-out: channels, then the filter; `matched` counts real matches only; a
/// filter that cannot be evaluated matches, and its task says to skip it.
#[tokio::test]
async fn channels_and_filters_decide_who_gets_an_event() {
    let h = harness();
    let any = hook_with(&h, &["order.placed"], json!({})).await;
    let store = hook_with(&h, &["order.placed"], json!({"channels": ["store"]})).await;
    let big = hook_with(&h, &["*"], json!({"filter": "data.total > 100"})).await;
    let broken = hook_with(&h, &["*"], json!({"filter": "data.tags contains 'vip'"})).await;
    let (_, small) = h
        .post_event("acme", json!({"id": "e-small", "type": "order.placed", "channel": "web", "data": {"total": 5}}))
        .await;
    // `any` takes every channel; `store` not web; `big` filters it out; `broken` fails
    // to evaluate (`contains` on nil) and matches.
    assert_eq!(small["matched"], 2);
    let tasks = h.tasks();
    let by_hook: std::collections::HashMap<&str, &DeliveryTask> =
        tasks.iter().map(|t| (t.webhook_id.as_str(), t)).collect();
    assert!(
        by_hook.contains_key(any.as_str())
            && !by_hook.contains_key(store.as_str())
            && !by_hook.contains_key(big.as_str())
    );
    let skip = by_hook[broken.as_str()].skip.as_deref().unwrap();
    assert!(skip.starts_with("filter: "), "{skip}");
    assert!(by_hook[any.as_str()].skip.is_none());
    let (_, status) = h
        .raw(
            "GET",
            "/v1/projects/acme/events/e-small",
            Some(ADMIN),
            Body::empty(),
        )
        .await;
    assert_eq!(status["deliveries"].as_array().unwrap().len(), 2);
    let (_, large) = h
        .post_event("acme", json!({"id": "e-large", "type": "order.placed", "channel": "store", "data": {"total": 500, "tags": []}}))
        .await;
    // Here `broken` evaluates (an empty list holds no 'vip'): no match.
    assert_eq!(large["matched"], 3);
    // The event's channel is in the events list.
    let (_, list) = h
        .raw(
            "GET",
            "/v1/projects/acme/events",
            Some(ADMIN),
            Body::empty(),
        )
        .await;
    // (Both may carry the same millisecond: found by id, not by position.)
    let channel_of = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .map(|e| e["channel"].clone())
    };
    assert_eq!(channel_of("e-large"), Some(json!("store")));
    assert_eq!(channel_of("e-small"), Some(json!("web")));
}

#[tokio::test]
async fn every_route_enforces_portal_tokens() {
    let h = harness();
    let now = now_ms();
    let token = |project: &str, read_only: bool, at: i64| {
        let (record, token) = hookline_core::api::new_portal_token(project, read_only, 60, at);
        (record, token)
    };
    let (full, full_token) = token("acme", false, now);
    let (read, read_token) = token("acme", true, now);
    let (other, other_token) = token("globex", false, now);
    let (expired, expired_token) = token("acme", false, now - 61_000);
    for r in [&full, &read, &other, &expired] {
        h.keys.put(r).await.unwrap();
    }
    let id = h.hook("acme", &["order.placed"], true).await;
    let (_, accepted) = h
        .post_event("acme", json!({"id": "ev_1", "type": "order.placed"}))
        .await;
    assert_eq!(accepted["matched"], 1);
    let task = h.tasks()[0].clone();
    attempted(&h, &task, &[AttemptStatus::DeadLettered]).await;
    let delivery = task.delivery_id;
    let p = "/v1/projects/acme";
    let routes = [
        ("GET", format!("{p}/events"), None, true),
        ("GET", format!("{p}/events/ev_1"), None, true),
        ("GET", format!("{p}/webhooks/{id}/deliveries"), None, true),
        (
            "POST",
            format!("{p}/events"),
            Some(json!({"type": "order.placed"})),
            false,
        ),
        (
            "POST",
            format!("{p}/webhooks/{id}/deliveries/{delivery}/resend"),
            None,
            false,
        ),
        (
            "POST",
            format!("{p}/webhooks/{id}/recover"),
            Some(json!({"since": "2026-01-01T00:00:00Z"})),
            false,
        ),
    ];
    for (method, uri, body, read_route) in routes {
        let body = || {
            body.as_ref()
                .map_or_else(Body::empty, |b| Body::from(b.to_string()))
        };
        let (status, v) = h.raw(method, &uri, Some(&expired_token), body()).await;
        assert_eq!(
            (status, code(&v).0),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{method} {uri}"
        );
        let (status, _) = h.raw(method, &uri, Some(&other_token), body()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
        let (status, v) = h.raw(method, &uri, Some(&read_token), body()).await;
        if read_route {
            assert_eq!(status, StatusCode::OK, "read-only {method} {uri}: {v}");
        } else {
            assert_eq!(
                (status, code(&v).0),
                (StatusCode::FORBIDDEN, "read_only"),
                "{method} {uri}"
            );
        }
        let (status, v) = h.raw(method, &uri, Some(&full_token), body()).await;
        assert!(status.is_success(), "full {method} {uri}: {status} {v}");
    }
}
