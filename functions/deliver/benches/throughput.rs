//! `make bench`: deliveries per second of the delivery handler on SQS batches of 10,
//! against a receiver on 127.0.0.1 that answers 200 at once (store and queue in memory),
//! and in the same run a bare reqwest client sending the same requests at the same
//! concurrency (ten at a time, a batch after a batch). Prints both and the ratio, and
//! the CPU the process spent per delivery in each (on a small machine the sender, the
//! receiver and the handler share the cores, so CPU is what the ratio follows).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use axum::routing::post;
use deliver::Deliverer;
use hookline_core::clock::{DAY, Millis, now_ms};
use hookline_core::guard::TargetPolicy;
use hookline_core::model::{
    Attempt, AttemptStatus, DeliveryTask, Event, TASK_VERSION, Webhook, WebhookInput, WebhookSpec,
    decode_json,
};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::retry::Schedule;
use hookline_core::sender::Sender;
use hookline_core::store::memory::{InMemoryEventStore, InMemoryWebhookStore};
use hookline_core::store::{AttemptLog, Page, StoreError, WebhookStore};
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

/// The attempt log of the benchmark: it counts what it is given. A table in memory
/// (the tests' `InMemoryAttemptLog`, a sorted map under one lock) costs more CPU per
/// record than the handler's own bookkeeping, and in production the write is a DynamoDB
/// request whose cost is the network's; the handler still builds every record in full.
#[derive(Default)]
struct TallyAttemptLog {
    delivered: AtomicUsize,
    other: AtomicUsize,
}

#[async_trait::async_trait]
impl AttemptLog for TallyAttemptLog {
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError> {
        assert!(expires_at > attempt.created_at);
        let count = if attempt.status == AttemptStatus::Delivered {
            &self.delivered
        } else {
            &self.other
        };
        count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn for_webhook(
        &self,
        _: &str,
        _: &str,
        _: Option<AttemptStatus>,
        _: usize,
        _: Option<&str>,
        _: Millis,
    ) -> Result<Page<Attempt>, StoreError> {
        unreachable!("the benchmark never reads the attempt log")
    }

    async fn for_event(&self, _: &str, _: &str, _: Millis) -> Result<Vec<Attempt>, StoreError> {
        unreachable!("the benchmark never reads the attempt log")
    }
}

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

async fn handler_rate(url: &str) -> Measured {
    let webhooks = Arc::new(InMemoryWebhookStore::default());
    let spec = json!({"name": "bench", "url": url, "events": ["*"],
        "body": {"type": "json", "fields": {"order": "{{ data.order }}", "total": "{{ data.total }}", "type": "{{ event.type }}"}}});
    let spec =
        WebhookSpec::from_create(decode_json::<WebhookInput>(spec.to_string().as_bytes()).unwrap())
            .unwrap();
    let webhook = Webhook::new("bench", spec, now_ms());
    webhooks.create(&webhook).await.unwrap();
    let log = Arc::new(TallyAttemptLog::default());
    let deliverer = Deliverer::new(
        webhooks,
        Arc::new(InMemoryEventStore::default()),
        log.clone(),
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
    let measured = Measured::of(|| async {
        for b in events {
            let response = deliverer.handle(b).await;
            assert!(response.batch_item_failures.is_empty());
        }
    })
    .await;
    // Every delivery of the timed batches and the warm-up one was logged as delivered.
    assert_eq!(
        log.delivered.load(Ordering::Relaxed),
        (batches() + 1) * BATCH
    );
    assert_eq!(log.other.load(Ordering::Relaxed), 0);
    measured
}

async fn baseline_rate(url: &str) -> Measured {
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
    Measured::of(|| async {
        for _ in 0..batches() {
            futures_util::future::join_all((0..BATCH).map(|_| send())).await;
        }
    })
    .await
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
        let (h, b) = (Measured::median(handler), Measured::median(baseline));
        println!(
            "deliver/throughput: handler {:.0} deliveries/s, bare reqwest {:.0} requests/s, ratio {:.2} \
             ({} batches of {BATCH}, median of {ROUNDS} rounds)",
            h.rate,
            b.rate,
            h.rate / b.rate,
            batches()
        );
        if let (Some(hc), Some(bc)) = (h.cpu_us, b.cpu_us) {
            println!(
                "deliver/throughput: CPU per delivery (the whole process: sender, receiver, \
                 handler) handler {hc:.1} µs, bare reqwest {bc:.1} µs"
            );
        }
    });
}

/// One timed run: deliveries per second, and the CPU the process spent per delivery.
struct Measured {
    rate: f64,
    cpu_us: Option<f64>,
}

impl Measured {
    /// Times `run`, which makes `batches() * BATCH` deliveries.
    async fn of<F: Future<Output = ()>>(run: impl FnOnce() -> F) -> Measured {
        let deliveries = (batches() * BATCH) as f64;
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        run().await;
        let seconds = started.elapsed().as_secs_f64();
        let cpu_us = process_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| (after - before) * 1e6 / deliveries);
        Measured {
            rate: deliveries / seconds,
            cpu_us,
        }
    }

    /// The run of median rate (its CPU figure with it).
    fn median(mut runs: Vec<Measured>) -> Measured {
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        runs.swap_remove(runs.len() / 2)
    }
}

/// User and system CPU of this process, all threads, from /proc (Linux; `None`
/// elsewhere). /proc counts in USER_HZ ticks, 100 a second on Linux's ABI.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces):
    // state is the first; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
