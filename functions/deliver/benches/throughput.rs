//! `make bench`: deliveries per second of the delivery handler on SQS batches of 10,
//! against a receiver on 127.0.0.1 that answers 200 at once (store and queue in memory),
//! and in the same run a bare reqwest client sending the same requests at the same
//! concurrency (ten at a time, a batch after a batch). Prints both and the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use axum::routing::post;
use deliver::Deliverer;
use hookline_core::clock::{DAY, now_ms};
use hookline_core::guard::TargetPolicy;
use hookline_core::model::{
    DeliveryTask, Event, TASK_VERSION, Webhook, WebhookInput, WebhookSpec, decode_json,
};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::retry::Schedule;
use hookline_core::sender::Sender;
use hookline_core::store::WebhookStore;
use hookline_core::store::memory::{InMemoryAttemptLog, InMemoryEventStore, InMemoryWebhookStore};
use serde_json::json;

/// The allocator of the function's binary (`src/main.rs`), for both measurements.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCHES: usize = 2000;

/// `HOOKLINE_BENCH_BATCHES` shortens a run (for profiling under valgrind).
fn batches() -> usize {
    std::env::var("HOOKLINE_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BATCHES)
}
const BATCH: usize = 10;
const ROUNDS: usize = 5;

/// The receiver runs on a thread and runtime of its own.
fn start_receiver() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().route("/hook", post(|| async { "ok" }));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/hook", rx.recv().unwrap())
}

fn batch(webhook: &Webhook, n: usize) -> SqsEvent {
    let event = Event::from_input(
        decode_json(br#"{"id":"ev-1","type":"order.placed","data":{"order":"o-1","total":1999,"currency":"KRW"}}"#).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap();
    let records: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            let task = DeliveryTask {
                v: TASK_VERSION,
                delivery_id: format!("msg_{n}_{i}"),
                project_id: webhook.project_id.clone(),
                webhook_id: webhook.id.clone(),
                event_id: "ev-1".into(),
                event: Some(event.clone()),
                first_attempt_at: now_ms(),
                deliver_at: None,
                operational: false,
            };
            json!({"messageId": format!("{n}-{i}"), "receiptHandle": format!("rh-{n}-{i}"),
                   "body": serde_json::to_string(&task).unwrap(),
                   "attributes": {"ApproximateReceiveCount": "1"}})
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

async fn handler_rate(url: &str) -> f64 {
    let webhooks = Arc::new(InMemoryWebhookStore::default());
    let spec = json!({"name": "bench", "url": url, "events": ["*"],
        "body": {"type": "json", "fields": {"order": "{{ data.order }}", "total": "{{ data.total }}", "type": "{{ event.type }}"}}});
    let spec =
        WebhookSpec::from_create(decode_json::<WebhookInput>(spec.to_string().as_bytes()).unwrap())
            .unwrap();
    let webhook = Webhook::new("bench", spec, now_ms());
    webhooks.create(&webhook).await.unwrap();
    let deliverer = Deliverer::new(
        webhooks,
        Arc::new(InMemoryEventStore::default()),
        Arc::new(InMemoryAttemptLog::default()),
        Arc::new(InMemoryDeliveryQueue::default()),
        Sender::new(TargetPolicy {
            allow_private: true,
        })
        .unwrap(),
        Schedule::default(),
        DAY,
    );
    let events: Vec<SqsEvent> = (0..batches()).map(|n| batch(&webhook, n)).collect();
    deliverer.handle(batch(&webhook, usize::MAX)).await; // warm the connection pool
    let started = Instant::now();
    for b in events {
        let response = deliverer.handle(b).await;
        assert!(response.batch_item_failures.is_empty());
    }
    (batches() * BATCH) as f64 / started.elapsed().as_secs_f64()
}

async fn baseline_rate(url: &str) -> f64 {
    let client = reqwest::Client::builder().build().unwrap();
    let body = r#"{"order":"o-1","total":"1999","type":"order.placed"}"#;
    let send = || async {
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", "1700000000")
            .header(
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            )
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await;
    };
    futures_util::future::join_all((0..BATCH).map(|_| send())).await;
    let started = Instant::now();
    for _ in 0..batches() {
        futures_util::future::join_all((0..BATCH).map(|_| send())).await;
    }
    (batches() * BATCH) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let url = start_receiver();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut handler = Vec::new();
        let mut baseline = Vec::new();
        for _ in 0..ROUNDS {
            baseline.push(baseline_rate(&url).await);
            handler.push(handler_rate(&url).await);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (h, b) = (median(&mut handler), median(&mut baseline));
        println!(
            "deliver/throughput: handler {h:.0} deliveries/s, bare reqwest {b:.0} requests/s, ratio {:.2} \
             ({} batches of {BATCH}, median of {ROUNDS} rounds)",
            h / b,
            batches()
        );
    });
}
