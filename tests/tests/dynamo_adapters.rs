#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The DynamoDB adapters against the emulator, with the tables of infra/template.yaml.

use std::sync::OnceLock;

use hookline_core::clock::{DAY, HOUR, now_ms};
use hookline_core::ids::new_id;
use hookline_core::model::{
    Attempt, AttemptStatus, Webhook, WebhookInput, WebhookSpec, decode_json,
};
use hookline_core::store::dynamo::{DynamoApiKeyStore, DynamoAttemptLog, DynamoWebhookStore};
use hookline_core::store::{
    ApiKeyRecord, ApiKeyStore, AttemptLog, MAX_WEBHOOKS_PER_PROJECT, PortalTerms, StoreError,
    WebhookStore,
};
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
async fn subscribers_are_found_in_one_query_as_matching_says() {
    let store = DynamoWebhookStore::new(dynamo().await, emulator().var("HOOKLINE_WEBHOOKS_TABLE"));
    let project = new_id("proj", now_ms());
    let with_channels = |events: &[&str], channels: &[&str]| {
        let mut w = webhook(&project, events, true);
        w.spec.channels = channels.iter().map(|c| c.to_string()).collect();
        w
    };
    let hooks = vec![
        webhook(&project, &["order.placed", "order.paid"], true),
        webhook(&project, &["*"], true),
        webhook(&project, &["user.created"], true),
        webhook(&project, &["order.placed"], false),
        with_channels(&["order.placed"], &["store"]),
        with_channels(&["*"], &["store", "web"]),
        with_channels(&["delivery.failed"], &["email"]),
        webhook(&project, &["delivery.failed", "*"], true),
    ];
    for w in &hooks {
        store.create(w).await.unwrap();
    }
    store
        .create(&webhook("another-project", &["*"], true))
        .await
        .unwrap();
    let mut checked = 0;
    for (event_type, operational) in [
        ("order.placed", false),
        ("user.created", false),
        ("nothing.listens", false),
        ("delivery.failed", true),
        ("webhook.disabled", true),
    ] {
        for channel in [None, Some("store"), Some("web"), Some("email"), Some("sms")] {
            let mut found: Vec<String> = store
                .subscribers(&project, event_type, channel, operational)
                .await
                .unwrap()
                .into_iter()
                .map(|w| w.id)
                .collect();
            found.sort();
            let mut expected: Vec<String> = hooks
                .iter()
                .filter(|w| w.spec.enabled && w.spec.matches(event_type, channel, operational))
                .map(|w| w.id.clone())
                .collect();
            expected.sort();
            assert_eq!(found, expected, "{event_type} {channel:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
}

#[tokio::test]
async fn a_project_holds_at_most_the_webhook_limit_counted_exactly() {
    use futures_util::StreamExt;
    let store = DynamoWebhookStore::new(dynamo().await, emulator().var("HOOKLINE_WEBHOOKS_TABLE"));
    let project = new_id("proj", now_ms());
    let limit = MAX_WEBHOOKS_PER_PROJECT as usize;
    let create_all = |n: usize| {
        let store = &store;
        let project = &project;
        futures_util::stream::iter(0..n)
            .map(move |_| async move {
                let w = webhook(project, &["a.b"], true);
                store.create(&w).await.map(|()| w.id)
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
    };
    let first: Vec<String> = create_all(limit - 10)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Twenty at once for the last ten places: ten get one, ten are refused.
    let last = create_all(20).await;
    assert_eq!(last.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(
        last.iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::LimitReached))
    );
    // The count is not a webhook: listings and subscribers hold the webhooks only.
    let (listed, _) = every_page(|cursor| {
        let store = &store;
        let project = &project;
        async move { store.list(project, 100, cursor.as_deref()).await.unwrap() }
    })
    .await;
    assert_eq!(listed.len(), limit);
    assert_eq!(
        store
            .subscribers(&project, "a.b", None, false)
            .await
            .unwrap()
            .len(),
        limit
    );
    // A delete frees one place, once; a create that finds its id taken takes none.
    assert!(store.delete(&project, &first[0]).await.unwrap());
    assert!(!store.delete(&project, &first[0]).await.unwrap());
    let taken = store.get(&project, &first[1]).await.unwrap().unwrap();
    assert!(matches!(
        store.create(&taken).await,
        Err(StoreError::AlreadyExists)
    ));
    store
        .create(&webhook(&project, &["a.b"], true))
        .await
        .unwrap();
    assert!(matches!(
        store.create(&webhook(&project, &["a.b"], true)).await,
        Err(StoreError::LimitReached)
    ));
    // Another project's count is its own.
    store
        .create(&webhook(&new_id("proj", now_ms()), &["a.b"], true))
        .await
        .unwrap();
}

/// Webhooks stored before projects' webhooks were counted are counted at the first
/// create or delete that finds no count, so the limit holds for them too and a delete
/// of one cannot take the count below what is stored.
#[tokio::test]
async fn webhooks_stored_before_counting_are_counted_once_found() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = dynamo().await;
    let table = emulator().var("HOOKLINE_WEBHOOKS_TABLE");
    let store = DynamoWebhookStore::new(client.clone(), table);
    let project = new_id("proj", now_ms());
    let count = || {
        let (client, table, project) = (client.clone(), table, project.clone());
        async move {
            let out = client
                .get_item()
                .table_name(table)
                .key("project_id", AttributeValue::S(project))
                .key("webhook_id", AttributeValue::S("#count".into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            out.item()
                .and_then(|i| i.get("webhooks"))
                .map(|n| n.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    let forget_count = || {
        let (client, table, project) = (client.clone(), table, project.clone());
        async move {
            client
                .delete_item()
                .table_name(table)
                .key("project_id", AttributeValue::S(project))
                .key("webhook_id", AttributeValue::S("#count".into()))
                .send()
                .await
                .unwrap();
        }
    };
    let mut ids = Vec::new();
    for _ in 0..5 {
        let w = webhook(&project, &["a.b"], true);
        store.create(&w).await.unwrap();
        ids.push(w.id);
    }
    assert_eq!(count().await, Some(5));
    // As a deployment from before the count finds its webhooks.
    forget_count().await;
    store
        .create(&webhook(&project, &["a.b"], true))
        .await
        .unwrap();
    assert_eq!(count().await, Some(6));
    forget_count().await;
    assert!(store.delete(&project, &ids[0]).await.unwrap());
    assert_eq!(count().await, Some(5));
    assert!(!store.delete(&project, &ids[0]).await.unwrap());
    assert_eq!(count().await, Some(5));
    // A project's first webhook: nothing to count, then one.
    let fresh = new_id("proj", now_ms());
    store
        .create(&webhook(&fresh, &["a.b"], true))
        .await
        .unwrap();
    let (listed, _) = every_page(|cursor| {
        let store = &store;
        let fresh = &fresh;
        async move { store.list(fresh, 100, cursor.as_deref()).await.unwrap() }
    })
    .await;
    assert_eq!(listed.len(), 1);
}

/// A DynamoDB that cancels each `TransactWriteItems` with the reasons `answers` gives
/// for its turn (none: success), noting each call's `ClientRequestToken`, and answers a
/// `GetItem` of the count with `held`.
async fn transactions_answered(
    answers: fn(usize) -> Option<&'static str>,
    held: u32,
) -> (
    DynamoWebhookStore,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use aws_sdk_dynamodb::config::Credentials;
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let json = [("content-type", "application/x-amz-json-1.0")];
            if headers["x-amz-target"] == "DynamoDB_20120810.GetItem" {
                let count = format!(r#"{{"Item":{{"webhooks":{{"N":"{held}"}}}}}}"#);
                return (axum::http::StatusCode::OK, json, count);
            }
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let turn = {
                let mut seen = seen.lock().unwrap();
                seen.push(request["ClientRequestToken"].as_str().unwrap_or("").to_string());
                seen.len() - 1
            };
            match answers(turn) {
                None => (axum::http::StatusCode::OK, json, "{}".to_string()),
                Some(reasons) => (
                    axum::http::StatusCode::BAD_REQUEST,
                    json,
                    format!(
                        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":{reasons}}}"#
                    ),
                ),
            }
        }
    },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The registration function's client, retries and all.
    let sdk = hookline_core::aws::config(
        Some(url),
        Some("us-east-1".into()),
        Some(Credentials::new("test", "test", None, None, "test")),
    );
    let client = hookline_core::aws::dynamo(&sdk, hookline_core::config::Waits::API);
    let store = DynamoWebhookStore::new(client, "webhooks");
    (store, tokens)
}

const CONFLICT: &str = r#"[{"Code":"None"},{"Code":"TransactionConflict"}]"#;

#[tokio::test]
async fn a_create_cancelled_by_another_transaction_is_tried_again_then_answered() {
    // Two creates in one project meet on its count: DynamoDB cancels one, which the SDK
    // does not retry. Tried again, with a token of its own each time.
    let (store, tokens) = transactions_answered(|turn| (turn < 2).then_some(CONFLICT), 0).await;
    let w = webhook("proj", &["a.b"], true);
    store.create(&w).await.unwrap();
    assert_eq!(
        *tokens.lock().unwrap(),
        [w.id.clone(), format!("{}.1", w.id), format!("{}.2", w.id)]
    );
    // One that keeps meeting others gives up after four tries: a 503, retry shortly.
    let (store, tokens) = transactions_answered(|_| Some(CONFLICT), 0).await;
    assert!(matches!(
        store.create(&w).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(tokens.lock().unwrap().len(), 4);
    // A failed condition is an answer, at once: which item's says which.
    let (store, tokens) = transactions_answered(
        |_| Some(r#"[{"Code":"None"},{"Code":"ConditionalCheckFailed"}]"#),
        MAX_WEBHOOKS_PER_PROJECT,
    )
    .await;
    assert!(matches!(
        store.create(&w).await,
        Err(StoreError::LimitReached)
    ));
    assert_eq!(tokens.lock().unwrap().len(), 1);
    let (store, _) = transactions_answered(
        |_| Some(r#"[{"Code":"ConditionalCheckFailed"},{"Code":"None"}]"#),
        MAX_WEBHOOKS_PER_PROJECT,
    )
    .await;
    assert!(matches!(
        store.create(&w).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(!store.delete("proj", &w.id).await.unwrap());
    // The count missing when the create tried, and there when it looked (another create
    // counted the project meanwhile): tried again, not refused.
    let (store, tokens) = transactions_answered(
        |turn| (turn == 0).then_some(r#"[{"Code":"None"},{"Code":"ConditionalCheckFailed"}]"#),
        5,
    )
    .await;
    store.create(&w).await.unwrap();
    assert_eq!(
        *tokens.lock().unwrap(),
        [w.id.clone(), format!("{}.c1", w.id)]
    );
}

#[tokio::test]
async fn api_keys_are_found_by_id_and_deleted_only_within_their_project() {
    let store = DynamoApiKeyStore::new(dynamo().await, emulator().var("HOOKLINE_API_KEYS_TABLE"));
    let record = ApiKeyRecord {
        id: new_id("key", now_ms()),
        project_id: "acme".into(),
        key_hash: "ab".repeat(32),
        created_at: 42,
        portal: None,
        name: Some("billing backend — 請求".into()),
    };
    store.put(&record).await.unwrap();
    assert_eq!(store.get(&record.id).await.unwrap(), Some(record.clone()));
    assert!(!store.delete("globex", &record.id).await.unwrap());
    assert!(store.delete("acme", &record.id).await.unwrap());
    assert_eq!(store.get(&record.id).await.unwrap(), None);
}

#[tokio::test]
async fn portal_tokens_keep_their_terms_and_a_project_lists_its_live_credentials_in_pages() {
    let store = DynamoApiKeyStore::new(dynamo().await, emulator().var("HOOKLINE_API_KEYS_TABLE"));
    let project = format!("keys-{}", new_id("p", now_ms()).to_lowercase());
    let now = now_ms();
    let mut live = Vec::new();
    for i in 0..7 {
        let portal = (i % 2 == 1).then_some(PortalTerms {
            read_only: i == 3,
            expires_at: (now / 1000 + 600) * 1000,
        });
        let record = ApiKeyRecord {
            id: new_id("key", now + i),
            project_id: project.clone(),
            key_hash: format!("{i:064}"),
            created_at: now + i,
            portal,
            name: (i % 3 == 0).then(|| format!("credential {i}")),
        };
        store.put(&record).await.unwrap();
        assert_eq!(store.get(&record.id).await.unwrap().as_ref(), Some(&record));
        live.push(record);
        // Expired tokens between the live ones: never listed.
        let expired = ApiKeyRecord {
            id: new_id("key", now + i),
            project_id: project.clone(),
            key_hash: "e".repeat(64),
            created_at: now - 7_200_000,
            portal: Some(PortalTerms {
                read_only: false,
                expires_at: (now / 1000 - 60) * 1000,
            }),
            name: None,
        };
        store.put(&expired).await.unwrap();
    }
    live.sort_by(|a, b| a.id.cmp(&b.id));
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&project, 3, after.as_deref(), now)
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        listed.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, live);
    assert!(
        store
            .list("other-project", 10, None, now)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn attempt(
    project: &str,
    webhook: &str,
    delivery: &str,
    n: u32,
    status: AttemptStatus,
    at: i64,
) -> Attempt {
    Attempt {
        id: new_id("att", at),
        project_id: project.into(),
        event_id: format!("ev_{delivery}"),
        event_type: "a.b".into(),
        webhook_id: webhook.into(),
        delivery_id: delivery.into(),
        attempt: n,
        status,
        status_code: Some(if status == AttemptStatus::Delivered {
            200
        } else {
            500
        }),
        duration_ms: 3,
        error: (status != AttemptStatus::Delivered).then(|| "HTTP 500".into()),
        response_excerpt: Some("oops".into()),
        next_attempt_at: None,
        created_at: at,
    }
}

#[tokio::test]
async fn the_attempt_log_keeps_deliveries_with_their_attempts_and_skips_expired_ones() {
    use hookline_core::model::{Delivery, DeliveryStatus};
    let log = DynamoAttemptLog::new(dynamo().await, emulator().var("HOOKLINE_ATTEMPTS_TABLE"));
    let project = new_id("proj", now_ms());
    let now = now_ms();
    let (d1, d2, d3) = (
        new_id("msg", now - 3),
        new_id("msg", now - 2),
        new_id("msg", now - 1),
    );
    use AttemptStatus::{DeadLettered, Delivered, Retrying};
    let mut recorded = Vec::new();
    for (delivery, statuses) in [
        (&d1, vec![Retrying, Retrying, DeadLettered]),
        (&d2, vec![Retrying, Delivered]),
        (&d3, vec![Delivered]),
    ] {
        for (i, st) in statuses.into_iter().enumerate() {
            let a = attempt(
                &project,
                "wh_1",
                delivery,
                i as u32 + 1,
                st,
                now - 10_000 + i as i64 * 100,
            );
            log.record(&a, now + DAY).await.unwrap();
            recorded.push(a);
        }
    }
    log.record(
        &attempt(&project, "wh_2", &d1, 1, Delivered, now),
        now + DAY,
    )
    .await
    .unwrap();
    // Expired but not yet removed by TTL: never shown.
    let old = new_id("msg", now - 50_000);
    log.record(
        &attempt(&project, "wh_1", &old, 1, Retrying, now - 50_000),
        now - 1_000,
    )
    .await
    .unwrap();

    // Attempts: newest delivery first, its newest attempt first.
    let page = log
        .for_webhook(&project, "wh_1", None, 10, None, now)
        .await
        .unwrap();
    let seen: Vec<(String, u32)> = page
        .items
        .iter()
        .map(|a| (a.delivery_id.clone(), a.attempt))
        .collect();
    assert_eq!(
        seen,
        vec![
            (d3.clone(), 1),
            (d2.clone(), 2),
            (d2.clone(), 1),
            (d1.clone(), 3),
            (d1.clone(), 2),
            (d1.clone(), 1)
        ]
    );
    assert!(page.next.is_none());
    assert_eq!(page.items[0].response_excerpt.as_deref(), Some("oops"));
    // Each attempt reads back as it was recorded, though its entry leaves the ids to
    // its delivery's item (kept once there, not once per attempt).
    for a in &page.items {
        assert!(recorded.contains(a), "{a:?} was not recorded as such");
    }
    let raw = dynamo()
        .await
        .get_item()
        .table_name(emulator().var("HOOKLINE_ATTEMPTS_TABLE"))
        .key(
            "webhook_key",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{project}#wh_1")),
        )
        .key(
            "attempt_key",
            aws_sdk_dynamodb::types::AttributeValue::S(d1.clone()),
        )
        .send()
        .await
        .unwrap();
    let entries = raw.item().unwrap()["history"].as_l().unwrap();
    assert_eq!(entries.len(), 3);
    for (i, entry) in entries.iter().enumerate() {
        // The first attempt's short entry as text, the later ones deflated.
        let entry = if i == 0 {
            entry.as_s().unwrap().clone()
        } else {
            let blob = entry.as_b().unwrap().as_ref();
            String::from_utf8(miniz_oxide::inflate::decompress_to_vec(blob).unwrap()).unwrap()
        };
        for once in [
            "project_id",
            "webhook_id",
            "delivery_id",
            "event_id",
            "event_type",
        ] {
            assert!(!entry.contains(once), "{entry}");
        }
    }
    // A status filter, in pages that cut through a delivery.
    let (log_ref, project_ref) = (&log, project.as_str());
    let (retrying, _) = every_page(|cursor| async move {
        let page = log_ref
            .for_webhook(
                project_ref,
                "wh_1",
                Some(Retrying),
                2,
                cursor.as_deref(),
                now,
            )
            .await
            .unwrap();
        page.map(|a| (a.delivery_id, a.attempt))
    })
    .await;
    assert_eq!(
        retrying,
        vec![(d2.clone(), 1), (d1.clone(), 2), (d1.clone(), 1)]
    );

    // Deliveries: newest first, where each stands.
    let all = log
        .deliveries(&project, "wh_1", None, 10, None, now)
        .await
        .unwrap();
    let standing: Vec<(String, DeliveryStatus, u32)> = all
        .items
        .iter()
        .map(|d| (d.id.clone(), d.status, d.attempts))
        .collect();
    assert_eq!(
        standing,
        vec![
            (d3.clone(), DeliveryStatus::Delivered, 1),
            (d2.clone(), DeliveryStatus::Delivered, 2),
            (d1.clone(), DeliveryStatus::DeadLettered, 3)
        ]
    );
    assert_eq!(all.items[2].last_error.as_deref(), Some("HTTP 500"));
    let first = log
        .deliveries(
            &project,
            "wh_1",
            Some(DeliveryStatus::Delivered),
            1,
            None,
            now,
        )
        .await
        .unwrap();
    assert_eq!(first.items[0].id, d3);
    let second = log
        .deliveries(
            &project,
            "wh_1",
            Some(DeliveryStatus::Delivered),
            1,
            first.next.as_deref(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (second.items[0].id.clone(), second.next),
        (d2.clone(), None)
    );

    // By key, across webhooks (an event's deliveries).
    let keys = vec![
        ("wh_1".to_string(), d1.clone()),
        ("wh_2".to_string(), d1.clone()),
        ("wh_1".to_string(), old.clone()),
        ("wh_9".to_string(), d1.clone()),
    ];
    let mut found = log.get_deliveries(&project, &keys, now).await.unwrap();
    found.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
    assert_eq!(found.len(), 2);
    assert_eq!(
        (found[0].history.len(), found[1].status),
        (3, DeliveryStatus::Delivered)
    );

    // Pending (a resend): its attempts stay.
    let again = Delivery {
        updated_at: now + 1,
        ..found[0].clone()
    };
    log.pending(&again, now + DAY).await.unwrap();
    let got = log.get_deliveries(&project, &keys[..1], now).await.unwrap();
    assert_eq!(
        (got[0].status, got[0].attempts, got[0].history.len()),
        (DeliveryStatus::Pending, 3, 3)
    );

    // Reopened for a resend only while it is as it was read: of two, one wins.
    let seen = found[1].clone();
    assert!(log.reopen(&seen, now + 2, now + DAY).await.unwrap());
    assert!(!log.reopen(&seen, now + 3, now + DAY).await.unwrap());
    let got = log
        .get_deliveries(&project, &keys[1..2], now)
        .await
        .unwrap();
    assert_eq!(
        (got[0].status, got[0].updated_at, got[0].next_attempt_at),
        (DeliveryStatus::Pending, now + 2, Some(now + 2))
    );
    // Put back as it was when its resend was not queued, unless changed since.
    log.restore(&seen, now + 9).await.unwrap();
    let got = log
        .get_deliveries(&project, &keys[1..2], now)
        .await
        .unwrap();
    assert_eq!(
        got[0].status,
        DeliveryStatus::Pending,
        "changed since: kept"
    );
    log.restore(&seen, now + 2).await.unwrap();
    let got = log
        .get_deliveries(&project, &keys[1..2], now)
        .await
        .unwrap();
    assert_eq!(
        (
            got[0].status,
            got[0].updated_at,
            got[0].next_attempt_at,
            got[0].history.len()
        ),
        (
            seen.status,
            seen.updated_at,
            seen.next_attempt_at,
            seen.history.len()
        )
    );
    // A scheduled delivery held for its time shows when it is due.
    let held = Delivery {
        next_attempt_at: Some(now + HOUR),
        updated_at: now + 10,
        ..seen.clone()
    };
    log.pending(&held, now + DAY).await.unwrap();
    let got = log
        .get_deliveries(&project, &keys[1..2], now)
        .await
        .unwrap();
    assert_eq!(
        (got[0].status, got[0].next_attempt_at),
        (DeliveryStatus::Pending, Some(now + HOUR))
    );
}

#[tokio::test]
async fn health_is_kept_per_webhook_without_reads_and_read_in_one_go() {
    use hookline_core::clock::HOUR;
    use hookline_core::health::{HealthRecord, Observed, Update};
    use hookline_core::store::HealthStore;
    use hookline_core::store::dynamo::DynamoHealthStore;
    let store = DynamoHealthStore::new(dynamo().await, emulator().var("HOOKLINE_ATTEMPTS_TABLE"));
    let project = new_id("proj", now_ms());
    let now = now_ms();
    let seen = |delivered: bool, at: i64| Observed {
        at,
        delivered,
        status_code: Some(if delivered { 200 } else { 503 }),
        error: (!delivered).then(|| "HTTP 503".to_string()),
    };
    // The store applies updates as the reference says, through the first write, later
    // ones, one a day later (counts afresh), and a failure streak.
    let mut reference = HealthRecord::default();
    for (at, batch) in [
        (now - 30 * HOUR, vec![seen(true, now - 30 * HOUR)]),
        (
            now - 2 * HOUR,
            vec![seen(true, now - 2 * HOUR), seen(false, now - 2 * HOUR + 1)],
        ),
        (now - HOUR, vec![seen(false, now - HOUR)]),
        (now, vec![seen(false, now), seen(false, now + 1)]),
    ] {
        let update = Update::of(batch);
        let written = store
            .record(&project, "wh_a", &update, at, now + DAY)
            .await
            .unwrap();
        reference = reference.apply(&update, at);
        assert_eq!(written, reference, "after the write at {at}");
    }
    let view = reference.view(now);
    assert_eq!((view.delivered, view.failed), (1, 4));
    assert_eq!(view.failing_since, Some(now - 2 * HOUR + 1));
    store
        .record(
            &project,
            "wh_b",
            &Update::of(vec![seen(true, now)]),
            now,
            now + DAY,
        )
        .await
        .unwrap();
    let ids: Vec<String> = (0..150)
        .map(|i| format!("wh_{i}"))
        .chain(["wh_a".into(), "wh_b".into()])
        .collect();
    let all = store.get(&project, &ids).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["wh_a"], reference);
    store.clear_failing(&project, "wh_a").await.unwrap();
    store.clear_failing(&project, "wh_none").await.unwrap();
    let after = store.get(&project, &["wh_a".to_string()]).await.unwrap();
    assert_eq!(after["wh_a"].failing_since, None);
    assert_eq!(after["wh_a"].last_status_code, Some(503));
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
        skipped: Default::default(),
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
    // …without a set of what was enqueued kept on the item (every delivery was): the
    // completing write is billed by the item's size, which it does not grow.
    let raw = dynamo()
        .await
        .get_item()
        .table_name(emulator().var("HOOKLINE_EVENTS_TABLE"))
        .key(
            "event_key",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{project}#ev-1")),
        )
        .send()
        .await
        .unwrap();
    let raw = raw.item().unwrap();
    assert!(
        !raw.contains_key("enqueued") && !raw.contains_key("sweep"),
        "{raw:?}"
    );
    // The record's JSON is stored deflated, so the item is billed by the smaller size.
    let mut legacy = record.clone();
    legacy.enqueued.clear();
    let json = serde_json::to_string(&legacy).unwrap();
    let deflated = raw["doc"].as_b().unwrap().as_ref().len();
    assert!(
        deflated < json.len() * 3 / 4,
        "{deflated} of {}",
        json.len()
    );
    // Beside it, the same item under another event id with another `doc`.
    use aws_sdk_dynamodb::types::AttributeValue;
    let put_as = |event_id: &str, doc: AttributeValue| {
        let mut item = raw.clone();
        item.insert(
            "event_key".into(),
            AttributeValue::S(format!("{project}#{event_id}")),
        );
        item.insert("doc".into(), doc);
        async move {
            dynamo()
                .await
                .put_item()
                .table_name(emulator().var("HOOKLINE_EVENTS_TABLE"))
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    };
    // A record written before, with its JSON as text, still reads (complete, here).
    put_as(
        "ev-old",
        AttributeValue::S(json.replace("\"ev-1\"", "\"ev-old\"")),
    )
    .await;
    let read = store.get(&project, "ev-old").await.unwrap().unwrap();
    assert_eq!(read.event.id, "ev-old");
    assert_eq!(read.deliveries, record.deliveries);
    assert!(read.complete);
    // A doc that does not inflate is reported as corrupt, not a panic nor a record.
    put_as(
        "ev-broken",
        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0xff; 64])),
    )
    .await;
    assert!(matches!(
        store.get(&project, "ev-broken").await,
        Err(StoreError::Corrupt(_))
    ));
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

#[tokio::test]
async fn events_are_listed_newest_first_by_type_in_pages() {
    use hookline_core::model::Event;
    use hookline_core::store::dynamo::DynamoEventStore;
    use hookline_core::store::{EventRecord, EventStore};
    let store = DynamoEventStore::new(dynamo().await, emulator().var("HOOKLINE_EVENTS_TABLE"));
    let project = new_id("proj", now_ms());
    let now = now_ms();
    for (i, t) in ["a.b", "c.d", "a.b", "a.b"].iter().enumerate() {
        let event = Event::from_input(
            decode_json(format!(r#"{{"id":"e{i}","type":"{t}"}}"#).as_bytes()).unwrap(),
            now,
            || unreachable!(),
        )
        .unwrap();
        let record = EventRecord {
            project_id: project.clone(),
            event,
            deliveries: [("wh_1".to_string(), format!("msg_{i}"))].into(),
            skipped: Default::default(),
            enqueued: Default::default(),
            complete: true,
            lease_until: now,
            created_at: now + i as i64,
            operational: false,
            expires_at: now + DAY,
        };
        assert!(store.create(&record).await.unwrap());
    }
    let all = store.list(&project, None, 10, None, now).await.unwrap();
    let ids: Vec<&str> = all.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e3", "e2", "e1", "e0"]);
    assert_eq!(
        (all.items[0].matched, all.items[0].event_type.as_str()),
        (1, "a.b")
    );
    let (store_ref, project_ref) = (&store, project.as_str());
    let (typed, _) = every_page(|cursor| async move {
        let page = store_ref
            .list(project_ref, Some("a.b"), 2, cursor.as_deref(), now)
            .await
            .unwrap();
        page.map(|e| e.id)
    })
    .await;
    assert_eq!(typed, ["e3", "e2", "e0"]);
    assert!(
        store
            .list("elsewhere", None, 10, None, now)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Follows a listing's cursors to its end: the items of all its pages, and the calls.
async fn every_page<T, F, Fut>(mut call: F) -> (Vec<T>, usize)
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = hookline_core::store::Page<T>>,
{
    let (mut items, mut calls, mut cursor) = (Vec::new(), 0, None);
    loop {
        calls += 1;
        let page = call(cursor.take()).await;
        items.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (items, calls),
        }
    }
}

#[tokio::test]
async fn filtered_listings_read_a_bounded_number_of_pages_and_go_on_by_cursor() {
    use futures_util::StreamExt;
    use hookline_core::model::{DeliveryStatus, Event};
    use hookline_core::store::dynamo::{DynamoEventStore, MAX_SCAN_PAGES};
    use hookline_core::store::{EventRecord, EventStore};

    // One failure, oldest, below more deliveries than one call reads (50 a page).
    let log = DynamoAttemptLog::new(dynamo().await, emulator().var("HOOKLINE_ATTEMPTS_TABLE"));
    let project = new_id("proj", now_ms());
    let now = now_ms();
    let failed = new_id("msg", now - 900_000);
    let many = MAX_SCAN_PAGES * 50 + 100;
    let mut attempts = vec![attempt(
        &project,
        "wh_1",
        &failed,
        1,
        AttemptStatus::Failed,
        now - 900_000,
    )];
    attempts.extend((0..many).map(|i| {
        let at = now - 800_000 + i as i64 * 10;
        attempt(
            &project,
            "wh_1",
            &new_id("msg", at),
            1,
            AttemptStatus::Delivered,
            at,
        )
    }));
    futures_util::stream::iter(&attempts)
        .for_each_concurrent(16, |a| async {
            log.record(a, now + DAY).await.unwrap();
        })
        .await;
    let (log, project) = (&log, project.as_str());
    let (found, calls) = every_page(|cursor| async move {
        let page = log
            .deliveries(
                project,
                "wh_1",
                Some(DeliveryStatus::Failed),
                10,
                cursor.as_deref(),
                now,
            )
            .await
            .unwrap();
        page.map(|d| d.id)
    })
    .await;
    assert_eq!((found, calls), (vec![failed.clone()], 2));
    let (found, calls) = every_page(|cursor| async move {
        let page = log
            .for_webhook(
                project,
                "wh_1",
                Some(AttemptStatus::Failed),
                10,
                cursor.as_deref(),
                now,
            )
            .await
            .unwrap();
        page.map(|a| a.delivery_id)
    })
    .await;
    assert_eq!((found, calls), (vec![failed], 2));
    // Unfiltered, pages are full as before.
    let page = log
        .deliveries(project, "wh_1", None, 100, None, now)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 100);

    // Events: a page of 10 reads 11 a query. One of another type, oldest.
    let store = DynamoEventStore::new(dynamo().await, emulator().var("HOOKLINE_EVENTS_TABLE"));
    let record = |i: usize, t: &str| {
        let event = Event::from_input(
            decode_json(format!(r#"{{"id":"e{i}","type":"{t}"}}"#).as_bytes()).unwrap(),
            now,
            || unreachable!(),
        )
        .unwrap();
        EventRecord {
            project_id: project.to_string(),
            event,
            deliveries: Default::default(),
            skipped: Default::default(),
            enqueued: Default::default(),
            complete: true,
            lease_until: now,
            created_at: now + i as i64,
            operational: false,
            expires_at: now + DAY,
        }
    };
    let mut records = vec![record(0, "rare.one")];
    records.extend((1..=MAX_SCAN_PAGES * 11 + 30).map(|i| record(i, "common.one")));
    futures_util::stream::iter(&records)
        .for_each_concurrent(16, |r| async {
            assert!(store.create(r).await.unwrap());
        })
        .await;
    let store = &store;
    let (found, calls) = every_page(|cursor| async move {
        let page = store
            .list(project, Some("rare.one"), 10, cursor.as_deref(), now)
            .await
            .unwrap();
        page.map(|e| e.id)
    })
    .await;
    assert_eq!((found, calls), (vec!["e0".to_string()], 2));
}
