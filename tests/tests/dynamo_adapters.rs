#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The DynamoDB adapters against the emulator, with the tables of infra/template.yaml.

use std::sync::OnceLock;

use hookline_core::clock::{DAY, now_ms};
use hookline_core::ids::new_id;
use hookline_core::model::{
    Attempt, AttemptStatus, Webhook, WebhookInput, WebhookSpec, decode_json,
};
use hookline_core::store::dynamo::{DynamoApiKeyStore, DynamoAttemptLog, DynamoWebhookStore};
use hookline_core::store::{ApiKeyRecord, ApiKeyStore, AttemptLog, StoreError, WebhookStore};
use hookline_e2e::Emulator;

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(Emulator::start)
}

async fn dynamo() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator().sdk_config().await)
}

fn webhook(project: &str, events: &[&str], enabled: bool) -> Webhook {
    let json = serde_json::json!({"name": "n", "url": "https://example.com/", "events": events, "enabled": enabled});
    let spec =
        WebhookSpec::from_create(decode_json::<WebhookInput>(json.to_string().as_bytes()).unwrap())
            .unwrap();
    Webhook::new(project, spec, now_ms())
}

#[tokio::test]
async fn webhooks_round_trip_list_update_conditionally_and_delete() {
    let store = DynamoWebhookStore::new(dynamo().await, emulator().var("HOOKLINE_WEBHOOKS_TABLE"));
    let project = new_id("proj", now_ms());
    let mut ids = vec![];
    for _ in 0..5 {
        let w = webhook(&project, &["a.b"], true);
        store.create(&w).await.unwrap();
        ids.push(w.id);
    }
    let first = store.get(&project, &ids[0]).await.unwrap().unwrap();
    assert_eq!(first.spec.events, vec!["a.b"]);
    assert!(matches!(
        store.create(&first).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(store.get("other-project", &ids[0]).await.unwrap().is_none());

    let page1 = store.list(&project, 2, None).await.unwrap();
    let page2 = store
        .list(&project, 2, page1.next.as_deref())
        .await
        .unwrap();
    let page3 = store
        .list(&project, 2, page2.next.as_deref())
        .await
        .unwrap();
    let listed: Vec<String> = [page1.items, page2.items, page3.items]
        .concat()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, ids);
    assert!(page3.next.is_none());

    let mut changed = first.clone();
    changed.spec.enabled = false;
    changed.version = 2;
    store.update(&changed, 1).await.unwrap();
    // A second writer holding version 1 loses.
    assert!(matches!(
        store.update(&changed, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get(&project, &first.id)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );

    assert!(store.delete(&project, &first.id).await.unwrap());
    assert!(!store.delete(&project, &first.id).await.unwrap());
    assert!(store.get(&project, &first.id).await.unwrap().is_none());
}

#[tokio::test]
async fn subscribers_are_the_enabled_webhooks_of_the_type_or_star() {
    let store = DynamoWebhookStore::new(dynamo().await, emulator().var("HOOKLINE_WEBHOOKS_TABLE"));
    let project = new_id("proj", now_ms());
    let typed = webhook(&project, &["order.placed", "order.paid"], true);
    let star = webhook(&project, &["*"], true);
    let other = webhook(&project, &["user.created"], true);
    let disabled = webhook(&project, &["order.placed"], false);
    let elsewhere = webhook("another-project", &["order.placed"], true);
    for w in [&typed, &star, &other, &disabled, &elsewhere] {
        store.create(w).await.unwrap();
    }
    let mut found: Vec<String> = store
        .subscribers(&project, "order.placed")
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    found.sort();
    let mut expected = vec![typed.id.clone(), star.id.clone()];
    expected.sort();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn api_keys_are_found_by_id_and_deleted_only_within_their_project() {
    let store = DynamoApiKeyStore::new(dynamo().await, emulator().var("HOOKLINE_API_KEYS_TABLE"));
    let record = ApiKeyRecord {
        id: new_id("key", now_ms()),
        project_id: "acme".into(),
        key_hash: "ab".repeat(32),
        created_at: 42,
    };
    store.put(&record).await.unwrap();
    assert_eq!(store.get(&record.id).await.unwrap(), Some(record.clone()));
    assert!(!store.delete("globex", &record.id).await.unwrap());
    assert!(store.delete("acme", &record.id).await.unwrap());
    assert_eq!(store.get(&record.id).await.unwrap(), None);
}

fn attempt(
    project: &str,
    webhook: &str,
    event: &str,
    n: u32,
    status: AttemptStatus,
    at: i64,
) -> Attempt {
    Attempt {
        id: new_id("att", at),
        project_id: project.into(),
        event_id: event.into(),
        event_type: "a.b".into(),
        webhook_id: webhook.into(),
        delivery_id: "msg_1".into(),
        attempt: n,
        status,
        status_code: Some(500),
        duration_ms: 3,
        error: Some("HTTP 500".into()),
        response_excerpt: Some("oops".into()),
        next_attempt_at: None,
        created_at: at,
    }
}

#[tokio::test]
async fn attempts_list_per_webhook_newest_first_and_per_event_skipping_expired() {
    let log = DynamoAttemptLog::new(dynamo().await, emulator().var("HOOKLINE_ATTEMPTS_TABLE"));
    let project = new_id("proj", now_ms());
    let now = now_ms();
    let statuses = [
        AttemptStatus::Retrying,
        AttemptStatus::Retrying,
        AttemptStatus::Retrying,
        AttemptStatus::DeadLettered,
    ];
    for (i, st) in statuses.into_iter().enumerate() {
        let a = attempt(
            &project,
            "wh_1",
            "ev_1",
            i as u32 + 1,
            st,
            now - 10_000 + i as i64 * 100,
        );
        log.record(&a, now + DAY).await.unwrap();
    }
    log.record(
        &attempt(
            &project,
            "wh_2",
            "ev_1",
            1,
            AttemptStatus::Delivered,
            now - 5_000,
        ),
        now + DAY,
    )
    .await
    .unwrap();
    // Expired but not yet removed by TTL: never shown.
    log.record(
        &attempt(
            &project,
            "wh_1",
            "ev_1",
            9,
            AttemptStatus::Retrying,
            now - 20_000,
        ),
        now - 1_000,
    )
    .await
    .unwrap();

    let page = log
        .for_webhook(&project, "wh_1", None, 10, None, now)
        .await
        .unwrap();
    let numbers: Vec<u32> = page.items.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, vec![4, 3, 2, 1]);
    assert!(page.next.is_none());

    let retrying1 = log
        .for_webhook(
            &project,
            "wh_1",
            Some(AttemptStatus::Retrying),
            2,
            None,
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        retrying1
            .items
            .iter()
            .map(|a| a.attempt)
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
    let retrying2 = log
        .for_webhook(
            &project,
            "wh_1",
            Some(AttemptStatus::Retrying),
            2,
            retrying1.next.as_deref(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        retrying2
            .items
            .iter()
            .map(|a| a.attempt)
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert!(retrying2.next.is_none());

    let by_event = log.for_event(&project, "ev_1", now).await.unwrap();
    assert_eq!(by_event.len(), 5);
    assert_eq!(by_event[0].attempt, 1);
    assert_eq!(by_event.last().unwrap().webhook_id, "wh_2");
    assert_eq!(by_event.last().unwrap().status, AttemptStatus::Delivered);
    assert_eq!(by_event[0].response_excerpt.as_deref(), Some("oops"));
}

#[tokio::test]
async fn event_records_are_created_once_leased_and_marked() {
    use hookline_core::model::Event;
    use hookline_core::store::dynamo::DynamoEventStore;
    use hookline_core::store::{EventRecord, EventStore};
    let store = DynamoEventStore::new(dynamo().await, emulator().var("HOOKLINE_EVENTS_TABLE"));
    let project = new_id("proj", now_ms());
    let event = Event::from_input(
        decode_json(br#"{"id":"ev-1","type":"a.b","data":{"k":"v"}}"#).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap();
    let now = now_ms();
    let record = EventRecord {
        project_id: project.clone(),
        event,
        deliveries: [
            ("wh_a".to_string(), "msg_a".to_string()),
            ("wh_b".to_string(), "msg_b".to_string()),
        ]
        .into(),
        enqueued: Default::default(),
        complete: false,
        lease_until: now + 30_000,
        created_at: now,
        operational: false,
        expires_at: now + DAY,
    };
    assert!(store.create(&record).await.unwrap());
    assert!(
        !store.create(&record).await.unwrap(),
        "a second create is a duplicate"
    );
    // The lease holds while it is current, and the sweep leaves it alone.
    assert!(
        !store
            .take_lease(&project, "ev-1", now, now + 60_000)
            .await
            .unwrap()
    );
    let mine =
        |found: Vec<(String, String)>| found.into_iter().any(|(p, e)| p == project && e == "ev-1");
    assert!(!mine(store.abandoned(now, 1000).await.unwrap()));
    // A fan-out that stops half-way gives its lease up: the sweep sees it at once…
    store
        .mark_enqueued(&project, "ev-1", &["wh_a".to_string()], false, now)
        .await
        .unwrap();
    let got = store.get(&project, "ev-1").await.unwrap().unwrap();
    assert_eq!(got.enqueued, ["wh_a".to_string()].into());
    assert!(!got.complete);
    assert_eq!(got.lease_until, now);
    assert_eq!(got.event.data["k"], "v");
    assert_eq!(got.deliveries.len(), 2);
    let later = now + 1;
    assert!(mine(store.abandoned(later, 1000).await.unwrap()));
    // …and exactly one taker wins it.
    assert!(
        store
            .take_lease(&project, "ev-1", later, later + 30_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_lease(&project, "ev-1", later, later + 30_000)
            .await
            .unwrap()
    );
    store
        .mark_enqueued(&project, "ev-1", &["wh_b".to_string()], true, later)
        .await
        .unwrap();
    let done = store.get(&project, "ev-1").await.unwrap().unwrap();
    assert!(done.complete);
    assert_eq!(done.enqueued.len(), 2);
    // A complete record leaves the sweep's index, and cannot be leased again.
    assert!(!mine(store.abandoned(later + 100_000, 1000).await.unwrap()));
    assert!(
        !store
            .take_lease(&project, "ev-1", later + 100_000, later + 200_000)
            .await
            .unwrap()
    );
    assert!(store.get("other", "ev-1").await.unwrap().is_none());
}
