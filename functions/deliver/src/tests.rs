use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;

use hookline_e2e::receiver::Receiver;
use serde_json::json;

use super::*;
use hookline_core::clock::{DAY, now_ms};
use hookline_core::guard::TargetPolicy;
use hookline_core::model::{WebhookInput, WebhookSpec, decode_json};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::signing;
use hookline_core::store::memory::{
    InMemoryAttemptLog, InMemoryEventStore, InMemoryHealthStore, InMemoryWebhookStore,
};
use hookline_core::store::{EventRecord, WebhookStore};

/// The scripted receiver the end-to-end tests use too (paths as `hookline_e2e::receiver`
/// documents them): its base URL, and the handle that reports what it received.
async fn receiver() -> (String, Receiver) {
    let rx = hookline_e2e::receiver::start().await;
    (rx.base.clone(), rx)
}

struct Harness {
    deliverer: Deliverer,
    webhooks: Arc<InMemoryWebhookStore>,
    events: Arc<InMemoryEventStore>,
    queue: Arc<InMemoryDeliveryQueue>,
    attempts: Arc<InMemoryAttemptLog>,
    health: Arc<InMemoryHealthStore>,
    metrics: Arc<Captured>,
}

/// Metric records, as the function would print them.
#[derive(Default)]
struct Captured(std::sync::Mutex<Vec<String>>);

impl MetricsSink for Captured {
    fn emit(&self, record: &str) {
        self.0.lock().unwrap().push(record.to_string());
    }
}

/// A deliverer over these stores and queue, sending to private addresses (the tests'
/// receivers) on the real schedule in seconds (`HOOKLINE_RETRY_SCALE=0.001`).
fn deliverer_over(
    webhooks: Arc<dyn WebhookStore>,
    events: Arc<InMemoryEventStore>,
    attempts: Arc<InMemoryAttemptLog>,
    health: Arc<InMemoryHealthStore>,
    queue: Arc<dyn hookline_core::queue::DeliveryQueue>,
) -> Deliverer {
    Deliverer::new(
        webhooks,
        events,
        attempts,
        health,
        queue,
        Sender::new(TargetPolicy {
            allow_private: true,
        })
        .unwrap(),
        Schedule::scaled(0.001),
        30 * DAY,
    )
}

fn harness() -> Harness {
    let webhooks = Arc::new(InMemoryWebhookStore::default());
    let events = Arc::new(InMemoryEventStore::default());
    let queue = Arc::new(InMemoryDeliveryQueue::default());
    let attempts = Arc::new(InMemoryAttemptLog::default());
    let health = Arc::new(InMemoryHealthStore::default());
    let metrics = Arc::new(Captured::default());
    let mut deliverer = deliverer_over(
        webhooks.clone(),
        events.clone(),
        attempts.clone(),
        health.clone(),
        queue.clone(),
    );
    deliverer.metrics = metrics.clone();
    Harness {
        deliverer,
        webhooks,
        events,
        queue,
        attempts,
        health,
        metrics,
    }
}

impl Harness {
    async fn hook(&self, url: &str, extra: serde_json::Value) -> Webhook {
        let mut json = json!({"name": "n", "url": url, "events": ["*"], "timeout_seconds": 1});
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        let spec = WebhookSpec::from_create(
            decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        let webhook = Webhook::new("acme", spec, now_ms());
        self.webhooks.create(&webhook).await.unwrap();
        webhook
    }

    /// Handles one message with a receive count; returns whether it was reported failed.
    async fn deliver(&self, body: &str, receive_count: u32) -> bool {
        let message: SqsMessage = serde_json::from_value(json!({
            "messageId": "m-1",
            "receiptHandle": "rh-1",
            "body": body,
            "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
        }))
        .unwrap();
        let event: SqsEvent = serde_json::from_value(json!({"Records": [message]})).unwrap();
        let response = self.deliverer.handle(event).await;
        let reported: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert!(reported.is_empty() || reported == vec!["m-1".to_string()]);
        !reported.is_empty()
    }

    fn last_attempt(&self) -> Attempt {
        self.attempts
            .all()
            .into_iter()
            .max_by_key(|a| (a.created_at, a.attempt))
            .unwrap()
    }

    fn visibility(&self) -> Vec<i32> {
        self.queue
            .recorded()
            .visibility
            .iter()
            .map(|(_, s)| *s)
            .collect()
    }
}

fn event() -> Event {
    Event::from_input(
        decode_json(br#"{"id":"ev-1","type":"order.placed","data":{"total":5}}"#).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap()
}

fn task(webhook: &Webhook) -> DeliveryTask {
    DeliveryTask {
        v: TASK_VERSION,
        delivery_id: "msg_stable".into(),
        project_id: webhook.project_id.clone(),
        webhook_id: webhook.id.clone(),
        event_id: "ev-1".into(),
        event: Some(event()),
        first_attempt_at: now_ms(),
        deliver_at: None,
        operational: false,
        attempts_before: 0,
        skip: None,
        webhook_version: webhook.version,
    }
}

fn body(task: &DeliveryTask) -> String {
    serde_json::to_string(task).unwrap()
}

/// The message of a task for `webhook` whose event (`ev-1`, `order.placed`) has `data`.
fn body_with_data(webhook: &Webhook, data: serde_json::Value) -> String {
    let mut t = task(webhook);
    t.event = Some(
        Event::from_input(
            decode_json(
                json!({"id": "ev-1", "type": "order.placed", "data": data})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap(),
            now_ms(),
            || unreachable!(),
        )
        .unwrap(),
    );
    body(&t)
}

#[tokio::test]
async fn a_2xx_is_delivered_signed_and_the_message_let_go() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    let again = h.deliver(&body(&task(&hook)), 1).await;
    assert!(!again);
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.status_code, a.attempt),
        (AttemptStatus::Delivered, Some(200), 1)
    );
    assert_eq!(a.response_excerpt.as_deref(), Some("ok"));
    assert!(h.visibility().is_empty());
    let first = seen.received()[0].clone();
    let (headers, sent) = (first.headers, first.body);
    assert_eq!(headers["webhook-id"], "msg_stable");
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(signing::verify(
        &hook.signing.current,
        "msg_stable",
        ts,
        sent.as_bytes(),
        headers["webhook-signature"].to_str().unwrap()
    ));
    let envelope: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(
        (envelope["event"].clone(), envelope["data"]["total"].clone()),
        (json!("order.placed"), json!(5))
    );
}

#[tokio::test]
async fn redirects_and_client_errors_fail_once_without_retry() {
    for (path, code) in [("/moved", 301), ("/status/404", 404)] {
        let h = harness();
        let (base, seen) = receiver().await;
        let hook = h.hook(&format!("{base}{path}"), json!({})).await;
        assert!(!h.deliver(&body(&task(&hook)), 1).await, "{path}");
        let a = h.last_attempt();
        assert_eq!(
            (a.status, a.status_code),
            (AttemptStatus::Failed, Some(code)),
            "{path}"
        );
        assert!(h.visibility().is_empty());
        assert!(h.queue.recorded().dead_letters.is_empty());
        let paths: Vec<_> = seen
            .received()
            .iter()
            .map(|r| r.uri.path().to_string())
            .collect();
        assert_eq!(paths, vec![path.to_string()], "no redirect was followed");
    }
}

#[tokio::test]
async fn a_408_retries_with_the_scheduled_visibility_delay() {
    let h = harness();
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/status/408"), json!({})).await;
    assert!(h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(
        h.visibility(),
        vec![1],
        "60 ms scaled, rounded up to a whole second"
    );
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.status_code),
        (AttemptStatus::Retrying, Some(408))
    );
    assert!(a.next_attempt_at.unwrap() > a.created_at);
}

#[tokio::test]
async fn a_429_honours_retry_after_unscaled() {
    let h = harness();
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/busy/3"), json!({})).await;
    assert!(h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(h.visibility(), vec![3]);
    assert_eq!(h.last_attempt().status, AttemptStatus::Retrying);
}

#[tokio::test]
async fn a_500_retries_five_times_then_is_dead_lettered_with_its_last_error() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/status/500"), json!({})).await;
    // A webhook that asked for reports of dead-lettered deliveries.
    let watcher = h
        .hook(
            &format!("{base}/ok"),
            json!({"events": ["delivery.dead_lettered"]}),
        )
        .await;
    let t = task(&hook);
    for receive in 1..=5 {
        assert!(
            h.deliver(&body(&t), receive).await,
            "attempt {receive} is retried"
        );
        assert_eq!(h.last_attempt().status, AttemptStatus::Retrying);
    }
    assert_eq!(h.visibility().len(), 5);
    // 60, 120, 240, 480 and 900 ms at this scale: each rounds up to one second.
    assert!(
        h.visibility().iter().all(|s| *s == 1),
        "{:?}",
        h.visibility()
    );
    assert!(!h.deliver(&body(&t), 6).await, "the sixth 5xx gives up");
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.attempt, a.status_code),
        (AttemptStatus::DeadLettered, 6, Some(500))
    );
    assert!(a.error.as_deref().unwrap().contains("6 attempts"));
    let dead = h.queue.recorded().dead_letters;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, body(&t));
    assert!(dead[0].2.contains("HTTP 500"));
    // Six requests, every one with the same webhook-id.
    let ids: Vec<_> = seen
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids, vec!["msg_stable"; 6]);
    // The report went out through the fan-out, to the webhook that asked for it only.
    let report: DeliveryTask = serde_json::from_str(&h.queue.recorded().sent[0].body).unwrap();
    assert_eq!(h.queue.recorded().sent.len(), 1);
    assert_eq!(
        (report.webhook_id.as_str(), report.operational),
        (watcher.id.as_str(), true)
    );
    let data = &report.event.as_ref().unwrap().data;
    assert_eq!(
        (
            data["delivery_id"].clone(),
            data["attempts"].clone(),
            data["last_status_code"].clone()
        ),
        (json!("msg_stable"), json!(6), json!(500))
    );
    assert_eq!(
        report.event.as_ref().unwrap().event_type,
        "delivery.dead_lettered"
    );
}

#[tokio::test]
async fn a_timeout_is_retried_with_no_status_code() {
    let h = harness();
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/slow/5"), json!({})).await;
    assert!(h.deliver(&body(&task(&hook)), 1).await);
    let a = h.last_attempt();
    assert_eq!((a.status, a.status_code), (AttemptStatus::Retrying, None));
    assert!(
        a.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        a.error
    );
    assert!(
        a.duration_ms >= 900 && a.duration_ms < 3_000,
        "{}",
        a.duration_ms
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_window_closes() {
    let h = harness();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let hook = h.hook(&format!("http://{addr}/"), json!({})).await;
    let mut t = task(&hook);
    assert!(h.deliver(&body(&t), 3).await);
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.status_code, a.attempt),
        (AttemptStatus::Retrying, None, 3)
    );
    assert!(a.error.as_deref().unwrap().starts_with("connection failed"));
    // The scaled 24-hour window is 86.4 s: a delivery first tried 90 s ago gives up.
    t.first_attempt_at = now_ms() - 90_000;
    assert!(!h.deliver(&body(&t), 12).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::DeadLettered);
    assert_eq!(h.queue.recorded().dead_letters.len(), 1);
}

#[tokio::test]
async fn disabled_and_deleted_webhooks_are_skipped_without_a_request() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h
        .hook(&format!("{base}/ok"), json!({"enabled": false}))
        .await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Skipped);
    assert_eq!(
        h.last_attempt().error.as_deref(),
        Some("the webhook is disabled")
    );
    let live = h.hook(&format!("{base}/ok"), json!({})).await;
    h.webhooks.delete("acme", &live.id).await.unwrap();
    assert!(!h.deliver(&body(&task(&live)), 2).await);
    assert_eq!(
        h.last_attempt().error.as_deref(),
        Some("the webhook was deleted")
    );
    assert!(seen.received().is_empty());
}

/// Stores the next version of a webhook, changed by `edit`, as the register API would.
async fn update(h: &Harness, hook: &Webhook, edit: impl FnOnce(&mut Webhook)) -> Webhook {
    let mut next = hook.clone();
    edit(&mut next);
    next.version = hook.version + 1;
    h.webhooks.update(&next, hook.version).await.unwrap();
    next
}

#[tokio::test]
async fn a_webhook_is_read_again_once_its_cache_period_ends() {
    let mut h = harness();
    h.deliverer.webhook_cache = 1_000; // milliseconds
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    // Edited and then disabled in the store: within the period the read is reused…
    let edited = update(&h, &hook, |w| w.spec.url = format!("{base}/ok/edited")).await;
    let disabled = update(&h, &edited, |w| w.spec.enabled = false).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    assert_eq!(seen.received().len(), 2);
    assert!(seen.received().iter().all(|r| r.uri.path() == "/ok"));
    // …after it, the store's word holds.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Skipped);
    // Enabled again at a new version: its new URL is rendered, not the cached templates.
    update(&h, &disabled, |w| w.spec.enabled = true).await;
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    assert_eq!(seen.received().last().unwrap().uri.path(), "/ok/edited");
}

/// A message made after a change (a fan-out or a resend that read the webhook at a newer
/// version) is never served the cached copy from before it: re-enabled and resent at once
/// is delivered, not skipped as disabled.
#[tokio::test]
async fn a_message_made_for_a_newer_version_reads_the_webhook_again() {
    let mut h = harness();
    h.deliverer.webhook_cache = 60_000; // milliseconds: the cache alone would hold all along
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    let disabled = update(&h, &hook, |w| w.spec.enabled = false).await;
    assert!(!h.deliver(&body(&task(&disabled)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Skipped);
    let enabled = update(&h, &disabled, |w| {
        w.spec.enabled = true;
        w.spec.url = format!("{base}/ok/moved");
    })
    .await;
    assert!(!h.deliver(&body(&task(&enabled)), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    // A message older than the cached copy (a retry made before the change) uses it.
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    let paths: Vec<String> = seen
        .received()
        .iter()
        .map(|r| r.uri.path().to_string())
        .collect();
    assert_eq!(paths, ["/ok", "/ok/moved", "/ok/moved"]);
}

#[tokio::test]
async fn a_cached_webhook_never_serves_another_projects_task() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    assert!(!h.deliver(&body(&task(&hook)), 1).await);
    let mut foreign = task(&hook);
    foreign.project_id = "globex".into();
    assert!(!h.deliver(&body(&foreign), 1).await);
    let last = h.last_attempt();
    assert_eq!(
        (last.status, last.project_id.as_str(), last.error.as_deref()),
        (
            AttemptStatus::Skipped,
            "globex",
            Some("the webhook was deleted")
        )
    );
    assert_eq!(seen.received().len(), 1);
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_never_fails_the_batch() {
    let h = harness();
    for poison in ["not json", r#"{"v": 99}"#] {
        assert!(!h.deliver(poison, 1).await);
    }
    let mut future =
        serde_json::to_value(task(&h.hook("https://example.com/", json!({})).await)).unwrap();
    future["v"] = json!(2);
    assert!(!h.deliver(&future.to_string(), 1).await);
    let dead = h.queue.recorded().dead_letters;
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0].0, "not json");
    assert_eq!(dead[0].1, "poison");
    assert!(dead[2].2.contains("version 2"));
    assert!(h.attempts.all().is_empty());
}

#[tokio::test]
async fn the_webhook_id_is_stable_and_the_signature_fresh_across_attempts() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/status/500"), json!({})).await;
    let t = task(&hook);
    h.deliver(&body(&t), 1).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    h.deliver(&body(&t), 2).await;
    let seen = seen.received();
    assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    assert_ne!(
        seen[0].headers["webhook-timestamp"],
        seen[1].headers["webhook-timestamp"]
    );
    assert_ne!(
        seen[0].headers["webhook-signature"],
        seen[1].headers["webhook-signature"]
    );
}

#[tokio::test]
async fn scheduled_deliveries_are_held_then_resent_when_within_fifteen_minutes() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    let mut t = task(&hook);
    t.deliver_at = Some(now_ms() + 3 * 3_600_000);
    assert!(h.deliver(&body(&t), 1).await, "held: shown again later");
    let hidden = h.visibility()[0];
    assert!((2 * 3_600..3 * 3_600).contains(&hidden), "{hidden}");
    t.deliver_at = Some(now_ms() + 10_000);
    assert!(
        !h.deliver(&body(&t), 2).await,
        "handed to a fresh delayed message"
    );
    let resent = &h.queue.recorded().sent[0];
    assert!((9..=11).contains(&resent.delay_seconds));
    let due: DeliveryTask = serde_json::from_str(&resent.body).unwrap();
    assert_eq!(due.deliver_at, None);
    assert_eq!(due.delivery_id, "msg_stable");
    assert!(seen.received().is_empty());
    assert!(h.attempts.all().is_empty());
}

#[tokio::test]
async fn an_event_stored_apart_is_read_from_the_event_store() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    let mut t = task(&hook);
    t.event = None;
    h.events
        .create(&EventRecord {
            project_id: "acme".into(),
            event: event(),
            deliveries: Default::default(),
            skipped: Default::default(),
            enqueued: Default::default(),
            complete: true,
            lease_until: 0,
            created_at: now_ms(),
            operational: false,
            expires_at: now_ms() + DAY,
        })
        .await
        .unwrap();
    assert!(!h.deliver(&body(&t), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    assert!(seen.received()[0].body.contains("\"total\":5"));
}

#[tokio::test]
async fn deliveries_of_operational_events_never_report_on_themselves() {
    let h = harness();
    let (base, _) = receiver().await;
    let hook = h
        .hook(
            &format!("{base}/status/404"),
            json!({"events": ["delivery.failed"]}),
        )
        .await;
    let mut t = task(&hook);
    t.operational = true;
    assert!(!h.deliver(&body(&t), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Failed);
    assert!(h.queue.recorded().sent.is_empty());
}

#[tokio::test]
async fn a_batch_reports_only_its_retried_messages() {
    let h = harness();
    let (base, _) = receiver().await;
    let ok = h.hook(&format!("{base}/ok"), json!({})).await;
    let bad = h.hook(&format!("{base}/status/500"), json!({})).await;
    let records: Vec<serde_json::Value> = [(&ok, "a"), (&bad, "b"), (&ok, "c")]
        .iter()
        .map(|(w, id)| json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body(&task(w)), "attributes": {"ApproximateReceiveCount": "1"}}))
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    let response = h.deliverer.handle(event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["b"]);
    assert_eq!(h.queue.recorded().visibility, vec![("rh-b".to_string(), 1)]);
}

/// The SqsEvent `sam local invoke DeliverFunction -e tests/events/deliver-sqs-batch.json`
/// uses is a delivery the handler carries out.
#[tokio::test]
async fn the_sam_local_sqs_fixture_is_delivered() {
    let h = harness();
    let (base, seen) = receiver().await;
    let mut hook = h.hook(&format!("{base}/ok"), json!({})).await;
    h.webhooks.delete("acme", &hook.id).await.unwrap();
    hook.id = "wh_01jc0000000000000000000000".into();
    h.webhooks.create(&hook).await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/events/deliver-sqs-batch.json");
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = h.deliverer.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    assert_eq!(
        seen.received()[0].headers["webhook-id"],
        "msg_01jc0000000000000000000000"
    );
}

/// The checked URL is kept per webhook version, but only for the same text: a URL that
/// renders differently is checked again, and a refused one never reaches the network.
#[tokio::test]
async fn every_rendered_url_is_checked_even_when_the_last_one_is_kept() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook("{{ data.url }}", json!({})).await;
    let with_url = |url: &str| body_with_data(&hook, json!({"url": url}));
    let ok = format!("{base}/ok");
    let refused = [
        "ftp://127.0.0.1/ok".to_string(),
        ok.replace("http://", "http://user:secret@"),
        "not a url".to_string(),
    ];
    for (i, url) in [
        ok.clone(),
        refused[0].clone(),
        ok.clone(),
        refused[1].clone(),
        refused[2].clone(),
        ok.clone(),
    ]
    .iter()
    .enumerate()
    {
        assert!(!h.deliver(&with_url(url), 1).await, "{url}");
        let a = h.last_attempt();
        if url == &ok {
            assert_eq!(a.status, AttemptStatus::Delivered, "{i}: {a:?}");
        } else {
            assert_eq!(
                (a.status, a.status_code),
                (AttemptStatus::Failed, None),
                "{i}: {a:?}"
            );
            assert!(!a.error.unwrap_or_default().contains("secret"));
        }
    }
    assert_eq!(seen.received().len(), 3);
}

/// An event's value right after the host written out cannot move the delivery to
/// another host: the attempt fails (not retried) and nothing is sent.
#[tokio::test]
async fn an_events_value_cannot_move_a_delivery_to_another_host() {
    let h = harness();
    let (base, seen) = receiver().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let hook = h.hook("http://localhost{{ data.rest }}", json!({})).await;
    let with_rest = |rest: &str| body_with_data(&hook, json!({"rest": rest}));
    assert!(!h.deliver(&with_rest(&format!(":{port}/ok")), 1).await);
    assert_eq!(h.last_attempt().status, AttemptStatus::Delivered);
    assert!(
        !h.deliver(&with_rest(&format!(".evil.example:{port}/ok")), 1)
            .await
    );
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.status_code),
        (AttemptStatus::Failed, None),
        "{a:?}"
    );
    let error = a.error.unwrap_or_default();
    assert!(
        error.contains("`localhost.evil.example`") && error.contains("would send it elsewhere"),
        "{error}"
    );
    assert_eq!(seen.received().len(), 1);
}

/// A webhook store with a bug: it panics when asked for one webhook.
struct PanicsOn {
    inner: Arc<InMemoryWebhookStore>,
    id: String,
}

#[async_trait::async_trait]
impl WebhookStore for PanicsOn {
    async fn create(&self, w: &Webhook) -> Result<(), hookline_core::store::StoreError> {
        self.inner.create(w).await
    }
    async fn get(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<Webhook>, hookline_core::store::StoreError> {
        if id == self.id {
            panic!("a bug in the store");
        }
        self.inner.get(project, id).await
    }
    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<hookline_core::store::Page<Webhook>, hookline_core::store::StoreError> {
        self.inner.list(project, limit, after).await
    }
    async fn update(&self, w: &Webhook, v: u64) -> Result<(), hookline_core::store::StoreError> {
        self.inner.update(w, v).await
    }
    async fn delete(&self, p: &str, id: &str) -> Result<bool, hookline_core::store::StoreError> {
        self.inner.delete(p, id).await
    }
    async fn subscribers(
        &self,
        p: &str,
        t: &str,
        c: Option<&str>,
        o: bool,
    ) -> Result<Vec<Webhook>, hookline_core::store::StoreError> {
        self.inner.subscribers(p, t, c, o).await
    }
}

/// A panic is a bug, never the customer's input; should one happen anyway, it costs the
/// message that caused it (dead-lettered with the reason, logged), not the rest of the
/// batch and not the process.
#[tokio::test]
async fn a_panic_costs_its_own_message_only() {
    let h = harness();
    let (base, seen) = receiver().await;
    let ok = h.hook(&format!("{base}/ok"), json!({})).await;
    let cursed = h.hook(&format!("{base}/ok"), json!({})).await;
    let deliverer = deliverer_over(
        Arc::new(PanicsOn {
            inner: h.webhooks.clone(),
            id: cursed.id.clone(),
        }),
        h.events.clone(),
        h.attempts.clone(),
        h.health.clone(),
        h.queue.clone(),
    );
    let records: Vec<serde_json::Value> = [(&ok, "a"), (&cursed, "b"), (&ok, "c")]
        .iter()
        .map(|(w, id)| {
            let mut t = task(w);
            t.delivery_id = format!("msg_{id}");
            json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body(&t), "attributes": {"ApproximateReceiveCount": "2"}})
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    let response = deliverer.handle(event).await;
    // Nothing is handed back for retry: retrying a bug would only panic again.
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        seen.received().len(),
        2,
        "both healthy messages were delivered"
    );
    let dead = h.queue.recorded().dead_letters;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].0.contains("msg_b"));
    assert!(dead[0].2.contains("a bug in the store"), "{dead:?}");
    let mut statuses: Vec<(String, AttemptStatus, u32)> = h
        .attempts
        .all()
        .into_iter()
        .map(|a| (a.delivery_id, a.status, a.attempt))
        .collect();
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        statuses,
        vec![
            ("msg_a".to_string(), AttemptStatus::Delivered, 2),
            ("msg_b".to_string(), AttemptStatus::DeadLettered, 2),
            ("msg_c".to_string(), AttemptStatus::Delivered, 2),
        ]
    );
}

/// SPEC §8: the hostile templates and event of `hookline_e2e::hostile` (a sample of the
/// property test's cases) delivered: each attempt is delivered or fails its render, and
/// none is a contained panic (dead-lettered as a bug).
#[tokio::test]
async fn hostile_templates_and_events_are_delivered_or_fail_their_render() {
    let h = harness();
    let (base, _) = receiver().await;
    let event: Event = Event::from_input(
        decode_json(
            hookline_e2e::hostile::hostile_event()
                .to_string()
                .as_bytes(),
        )
        .unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap();
    let cases = hookline_e2e::hostile::sample(100);
    let mut records = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let json = json!({"name": "h", "url": format!("{base}/ok/h"), "events": ["*"], "timeout_seconds": 5,
                          "body": {"type": "raw", "template": case.template}});
        let Ok(spec) = WebhookSpec::from_create(
            decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap(),
        ) else {
            continue;
        };
        // A project holds at most 1,000 webhooks.
        let webhook = Webhook::new(&format!("acme-{}", i / 1000), spec, now_ms());
        h.webhooks.create(&webhook).await.unwrap();
        let mut t = task(&webhook);
        t.event = Some(event.clone());
        t.delivery_id = format!("msg_{i}");
        records.push(json!({"messageId": format!("m{i}"), "receiptHandle": format!("rh{i}"), "body": body(&t),
                            "attributes": {"ApproximateReceiveCount": "1"}}));
    }
    let mut handled = 0;
    for batch in records.chunks(10) {
        let event: SqsEvent = serde_json::from_value(json!({"Records": batch})).unwrap();
        let response = h.deliverer.handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        handled += batch.len();
    }
    let attempts = h.attempts.all();
    assert_eq!(attempts.len(), handled);
    for a in &attempts {
        assert!(
            matches!(a.status, AttemptStatus::Delivered | AttemptStatus::Failed),
            "{a:?}"
        );
    }
    assert!(h.queue.recorded().dead_letters.is_empty());
    let delivered = attempts
        .iter()
        .filter(|a| a.status == AttemptStatus::Delivered)
        .count();
    println!("{handled} hostile deliveries: {delivered} delivered, the rest failed their render");
    assert!(delivered > 100);
}

fn record(id: &str, t: &DeliveryTask) -> serde_json::Value {
    json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body(t),
           "attributes": {"ApproximateReceiveCount": "1"}})
}

async fn run(h: &Harness, records: Vec<serde_json::Value>) -> SqsBatchResponse {
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    h.deliverer.handle(event).await
}

/// SPEC §10's budget: one health write per batch and webhook, no read; one metric
/// record per batch.
#[tokio::test]
async fn health_is_written_once_per_batch_and_webhook_and_metrics_once_per_batch() {
    let h = harness();
    let (base, _) = receiver().await;
    let ok = h.hook(&format!("{base}/ok"), json!({})).await;
    let bad = h.hook(&format!("{base}/status/500"), json!({})).await;
    let gone = h
        .hook(&format!("{base}/ok"), json!({"enabled": false}))
        .await;
    let mut records = Vec::new();
    for i in 0..6 {
        let mut t = task(&ok);
        t.delivery_id = format!("msg_ok{i}");
        records.push(record(&format!("a{i}"), &t));
    }
    for i in 0..3 {
        let mut t = task(&bad);
        t.delivery_id = format!("msg_bad{i}");
        records.push(record(&format!("b{i}"), &t));
    }
    records.push(record("c", &task(&gone)));
    run(&h, records).await;
    // The disabled webhook's skipped attempt sent nothing and counts nowhere.
    assert_eq!(h.health.writes.load(std::sync::atomic::Ordering::SeqCst), 2);
    let now = now_ms();
    let health = h
        .health
        .get("acme", &[ok.id.clone(), bad.id.clone(), gone.id.clone()])
        .await
        .unwrap();
    let ok_view = health[&ok.id].view(now);
    assert_eq!(
        (ok_view.delivered, ok_view.failed, ok_view.success_rate),
        (6, 0, Some(1.0))
    );
    assert!(ok_view.last_success_at.is_some() && ok_view.failing_since.is_none());
    let bad_view = health[&bad.id].view(now);
    assert_eq!(
        (bad_view.delivered, bad_view.failed, bad_view.success_rate),
        (0, 3, Some(0.0))
    );
    assert_eq!(bad_view.last_status_code, Some(500));
    assert!(bad_view.failing_since.is_some() && bad_view.last_error.is_some());
    assert!(!health.contains_key(&gone.id));
    let metrics = h.metrics.0.lock().unwrap().clone();
    assert_eq!(metrics.len(), 1);
    let record: serde_json::Value = serde_json::from_str(&metrics[0]).unwrap();
    assert_eq!(
        (
            record["Attempts"].as_u64(),
            record["Delivered"].as_u64(),
            record["Retrying"].as_u64(),
            record["Skipped"].as_u64()
        ),
        (Some(10), Some(6), Some(3), Some(1))
    );
}

/// Auto-disable: a webhook whose every attempt failed for the period is disabled (its
/// pending deliveries skipped) and `webhook.disabled` goes to a webhook that asked.
#[tokio::test]
async fn a_webhook_failing_for_the_period_is_disabled_and_reported() {
    let mut h = harness();
    h.deliverer.auto_disable_after = Some(50);
    h.deliverer.webhook_cache = 0;
    let (base, seen) = receiver().await;
    let failing = h.hook(&format!("{base}/status/503"), json!({})).await;
    let watcher = h
        .hook(
            &format!("{base}/ok/watch"),
            json!({"events": ["webhook.disabled"]}),
        )
        .await;
    let mut t = task(&failing);
    t.delivery_id = "msg_f1".into();
    run(&h, vec![record("1", &t)]).await;
    assert!(
        h.webhooks
            .get("acme", &failing.id)
            .await
            .unwrap()
            .unwrap()
            .spec
            .enabled
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    t.delivery_id = "msg_f2".into();
    run(&h, vec![record("2", &t)]).await;
    let disabled = h.webhooks.get("acme", &failing.id).await.unwrap().unwrap();
    assert!(!disabled.spec.enabled);
    assert_eq!(
        disabled.disabled_reason,
        Some(hookline_core::model::DisabledReason::Failing)
    );
    assert!(disabled.disabled_at.is_some() && disabled.version == failing.version + 1);
    // The report is on its way to the watcher, with what health said.
    let report: DeliveryTask = h
        .queue
        .recorded()
        .sent
        .iter()
        .map(|m| serde_json::from_str::<DeliveryTask>(&m.body).unwrap())
        .find(|t| t.webhook_id == watcher.id)
        .expect("a webhook.disabled delivery");
    let event = report.event.unwrap();
    assert_eq!(event.event_type, "webhook.disabled");
    assert_eq!(event.data["webhook_id"], failing.id.as_str());
    assert_eq!(event.data["reason"], "failing");
    assert_eq!(event.data["last_status_code"], 503);
    assert!(event.data["failing_since"].is_string());
    // A delivery still pending is skipped, not sent.
    let before = seen.received_on("/status").len();
    t.delivery_id = "msg_f3".into();
    run(&h, vec![record("3", &t)]).await;
    assert_eq!(seen.received_on("/status").len(), before);
    assert_eq!(h.last_attempt().status, AttemptStatus::Skipped);
}

#[tokio::test]
async fn a_resent_delivery_numbers_its_attempts_on_and_a_skip_sends_nothing() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    let mut t = task(&hook);
    t.attempts_before = 3;
    run(&h, vec![record("r", &t)]).await;
    let a = h.last_attempt();
    assert_eq!((a.attempt, a.status), (4, AttemptStatus::Delivered));
    assert_eq!(
        h.attempts.deliveries_recorded()[0].attempts,
        1,
        "one more attempt recorded"
    );
    // A task the fan-out marked as not to be sent (a filter that failed) is logged so.
    let mut skip = task(&hook);
    skip.delivery_id = "msg_skip".into();
    skip.skip = Some("filter: the condition failed to evaluate".into());
    let before = seen.received().len();
    run(&h, vec![record("s", &skip)]).await;
    assert_eq!(seen.received().len(), before);
    let a = h
        .attempts
        .all()
        .into_iter()
        .find(|a| a.delivery_id == "msg_skip")
        .unwrap();
    assert_eq!(
        (a.status, a.error.as_deref()),
        (
            AttemptStatus::Skipped,
            Some("filter: the condition failed to evaluate")
        )
    );
}

#[tokio::test]
async fn a_scheduled_delivery_held_for_its_time_is_pending() {
    let h = harness();
    let hook = h.hook("https://example.com/h", json!({})).await;
    let mut t = task(&hook);
    let due = now_ms() + 3 * 3_600_000;
    t.deliver_at = Some(due);
    run(&h, vec![record("h", &t)]).await;
    let deliveries = h.attempts.deliveries_recorded();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (
            deliveries[0].status,
            deliveries[0].attempts,
            deliveries[0].next_attempt_at
        ),
        (hookline_core::model::DeliveryStatus::Pending, 0, Some(due)),
        "pending, and when it is due"
    );
    assert!(h.attempts.all().is_empty(), "no attempt yet");
}

/// SPEC §9: a message its template aborts is not sent, not retried, logged skipped.
#[tokio::test]
async fn an_aborted_message_is_skipped_not_sent_not_retried() {
    let h = harness();
    let (base, seen) = receiver().await;
    let hook = h
        .hook(
            &format!("{base}/ok"),
            json!({"body": {"type": "raw", "template": "{% abort_message('no thanks') %}"}}),
        )
        .await;
    let again = h.deliver(&body(&task(&hook)), 1).await;
    assert!(!again, "not retried");
    assert!(seen.received().is_empty());
    let a = h.last_attempt();
    assert_eq!(
        (a.status, a.error.as_deref()),
        (AttemptStatus::Skipped, Some("aborted: no thanks"))
    );
    // It is not a failure of the webhook's: health does not count it.
    assert_eq!(h.health.writes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A message still in hand at the release margin is let go (reported for retry, no
/// attempt logged), while the rest of its batch is delivered and accounted for.
#[tokio::test]
async fn a_message_still_in_hand_near_the_timeout_is_let_go_and_the_rest_delivered() {
    let h = harness();
    let (base, seen) = receiver().await;
    let ok = h.hook(&format!("{base}/ok"), json!({})).await;
    let slow = h
        .hook(&format!("{base}/slow/20"), json!({"timeout_seconds": 30}))
        .await;
    let records = vec![record("fast", &task(&ok)), record("stuck", &task(&slow))];
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    let started = Instant::now();
    let response = h
        .deliverer
        .handle_until(event, started + RELEASE_MARGIN + Duration::from_millis(500))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not let go in time"
    );
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["stuck"]);
    // The slow receiver was reached; only the fast delivery has an attempt.
    assert_eq!(seen.received_on("/slow").len(), 1);
    let logged: Vec<_> = h
        .attempts
        .all()
        .into_iter()
        .map(|a| (a.webhook_id, a.status))
        .collect();
    assert_eq!(logged, vec![(ok.id.clone(), AttemptStatus::Delivered)]);
    // Its health and the batch's metric record were still written.
    assert_eq!(h.metrics.0.lock().unwrap().len(), 1);
}

/// `n` successive deliveries of `hook` as one batch.
async fn batch_of(h: &Harness, hook: &Webhook, n: usize, tag: &str) -> SqsBatchResponse {
    let records = (0..n)
        .map(|i| {
            let mut t = task(hook);
            t.delivery_id = format!("msg_{tag}{i}");
            record(&format!("{tag}{i}"), &t)
        })
        .collect();
    run(h, records).await
}

fn health_writes(h: &Harness) -> usize {
    h.health.writes.load(std::sync::atomic::Ordering::SeqCst)
}

async fn view(h: &Harness, hook: &Webhook) -> hookline_core::health::Health {
    h.health
        .get("acme", std::slice::from_ref(&hook.id))
        .await
        .unwrap()[&hook.id]
        .view(now_ms())
}

/// A healthy webhook's successes are held (no write) for the hold, then written; a
/// failure is written with its batch, with the successes held before it, and so is the
/// success that ends it. Nothing is lost or counted twice.
#[tokio::test]
async fn a_healthy_webhooks_successes_are_held_and_its_failures_written_at_once() {
    let mut h = harness();
    h.deliverer.health_hold = HealthHold::new(400);
    h.deliverer.webhook_cache = 0;
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    let other = h.hook(&format!("{base}/ok/other"), json!({})).await;
    // The first attempts this process sees of a webhook are written.
    batch_of(&h, &hook, 3, "a").await;
    assert_eq!(health_writes(&h), 1);
    assert_eq!(view(&h, &hook).await.delivered, 3);
    // Then its successes are held.
    batch_of(&h, &hook, 3, "b").await;
    assert_eq!(health_writes(&h), 1);
    assert_eq!(view(&h, &hook).await.delivered, 3);
    // A failure is written at once, the held successes with it.
    let failing = update(&h, &hook, |w| w.spec.url = format!("{base}/status/500")).await;
    batch_of(&h, &failing, 1, "c").await;
    assert_eq!(health_writes(&h), 2);
    let v = view(&h, &hook).await;
    assert_eq!(
        (v.delivered, v.failed, v.last_status_code),
        (6, 1, Some(500))
    );
    assert!(v.failing_since.is_some());
    // The success that ends it is written at once too.
    let healed = update(&h, &failing, |w| w.spec.url = format!("{base}/ok")).await;
    batch_of(&h, &healed, 1, "d").await;
    assert_eq!(health_writes(&h), 3);
    let v = view(&h, &hook).await;
    assert_eq!((v.delivered, v.failed), (7, 1));
    assert!(v.failing_since.is_none());
    // Held again, and written once the hold has passed, by a batch of another webhook.
    batch_of(&h, &healed, 2, "e").await;
    assert_eq!(health_writes(&h), 3);
    tokio::time::sleep(Duration::from_millis(450)).await;
    batch_of(&h, &other, 1, "f").await;
    assert_eq!(health_writes(&h), 5);
    let v = view(&h, &hook).await;
    assert_eq!((v.delivered, v.failed, v.success_rate), (9, 1, Some(0.9)));
    assert!(v.failing_since.is_none());
    // With no hold, every batch writes.
    h.deliverer.health_hold = HealthHold::new(0);
    batch_of(&h, &healed, 1, "g").await;
    batch_of(&h, &healed, 1, "h").await;
    assert_eq!(health_writes(&h), 7);
}

/// The scheduled sweep, as EventBridge invokes it.
async fn sweep(h: &Harness) {
    let sweep = Invocation {
        records: Vec::new(),
        hookline: Some("sweep".into()),
    };
    h.deliverer
        .invoke(sweep, Instant::now() + FUNCTION_TIMEOUT)
        .await;
}

/// A failure at `at` written to `hook`'s health by another instance of the function.
async fn another_instance_failed(h: &Harness, hook: &Webhook, at: Millis) {
    use hookline_core::health::{Observed, Update};
    let update = Update::of(vec![Observed {
        at,
        delivered: false,
        status_code: Some(503),
        error: Some("503".into()),
    }]);
    let now = now_ms();
    h.health
        .record("acme", &hook.id, &update, now, now + DAY)
        .await
        .unwrap();
}

/// Held successes written after another instance saw the webhook fail: they clear its
/// failing state only when they came after its last failure.
#[tokio::test]
async fn held_successes_clear_another_instances_failure_only_when_they_came_after_it() {
    let mut h = harness();
    h.deliverer.health_hold = HealthHold::new(200);
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/ok"), json!({})).await;
    batch_of(&h, &hook, 1, "a").await;
    // Held here; then another instance records a failure, later than them.
    batch_of(&h, &hook, 1, "b").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = now_ms();
    another_instance_failed(&h, &hook, later).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The sweep writes what was held: still failing, since the other's failure.
    let writes = health_writes(&h);
    sweep(&h).await;
    assert_eq!(health_writes(&h), writes + 1);
    let v = view(&h, &hook).await;
    assert_eq!((v.delivered, v.failed), (2, 1));
    assert_eq!(v.failing_since, Some(later));
    // This process now knows it failing: its next success is written at once and ends it.
    batch_of(&h, &hook, 1, "c").await;
    assert!(view(&h, &hook).await.failing_since.is_none());
    // Held again; another instance records a failure from before them.
    batch_of(&h, &hook, 1, "d").await;
    another_instance_failed(&h, &hook, now_ms() - 10_000).await;
    assert!(view(&h, &hook).await.failing_since.is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let writes = health_writes(&h);
    sweep(&h).await;
    // The held success, then the failing state cleared: two writes.
    assert_eq!(health_writes(&h), writes + 2);
    let v = view(&h, &hook).await;
    assert_eq!((v.delivered, v.failed), (4, 2));
    assert!(v.failing_since.is_none(), "{v:?}");
}

/// A queue that notes, whenever a retry's delay is set, how many attempts the attempt
/// log holds by then.
struct NotesTheLog {
    inner: Arc<InMemoryDeliveryQueue>,
    attempts: Arc<InMemoryAttemptLog>,
    logged_when_hidden: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl hookline_core::queue::DeliveryQueue for NotesTheLog {
    async fn send_batch(
        &self,
        messages: &[hookline_core::queue::OutgoingMessage],
    ) -> Result<Vec<String>, hookline_core::queue::QueueError> {
        self.inner.send_batch(messages).await
    }
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> Result<(), hookline_core::queue::QueueError> {
        self.logged_when_hidden
            .lock()
            .unwrap()
            .push(self.attempts.all().len());
        self.inner.change_visibility(receipt_handle, seconds).await
    }
    async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        last_error: &str,
    ) -> Result<(), hookline_core::queue::QueueError> {
        self.inner.dead_letter(body, reason, last_error).await
    }
}

/// The next attempt of a retried delivery may run on another instance as soon as the
/// message is visible again: its delay is set only once this attempt is in the log, so
/// the two records can never be written at once or out of order.
#[tokio::test]
async fn a_retry_is_scheduled_only_once_its_attempt_is_logged() {
    let h = harness();
    let (base, _) = receiver().await;
    let hook = h.hook(&format!("{base}/busy/1"), json!({})).await;
    let queue = Arc::new(NotesTheLog {
        inner: h.queue.clone(),
        attempts: h.attempts.clone(),
        logged_when_hidden: Default::default(),
    });
    let deliverer = deliverer_over(
        h.webhooks.clone(),
        h.events.clone(),
        h.attempts.clone(),
        h.health.clone(),
        queue.clone(),
    );
    let message: SqsMessage = serde_json::from_value(json!({
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": body(&task(&hook)),
        "attributes": {"ApproximateReceiveCount": "1"},
    }))
    .unwrap();
    let event: SqsEvent = serde_json::from_value(json!({"Records": [message]})).unwrap();
    let response = deliverer.handle(event).await;
    assert_eq!(response.batch_item_failures.len(), 1, "to be retried");
    assert_eq!(*queue.logged_when_hidden.lock().unwrap(), vec![1]);
    assert_eq!(h.visibility(), vec![1], "Retry-After: 1, unscaled");
    assert_eq!(h.last_attempt().status, AttemptStatus::Retrying);
}
