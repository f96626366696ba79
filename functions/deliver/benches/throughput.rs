//! `make bench`: deliveries per second of the delivery handler on SQS batches of 10,
//! against a receiver on 127.0.0.1 that answers 200 at once (store and queue in memory),
//! and in the same run a bare reqwest client sending the same requests at the same
//! concurrency (ten at a time). The two take turns batch by batch on the function's
//! one-thread runtime, so the machine's own noise slows both alike. Prints both rates,
//! the ratio (median of the rounds, with their range), and the CPU the process spent
//! per delivery on each side run alone. Then all of it again with the function's
//! tracing subscriber installed as Lambda configures it (JSON lines at `info`, one a
//! attempt), writing to a sink that counts the lines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::Router;
use axum::routing::post;
use deliver::{Deliverer, MetricsSink};
use hookline_core::clock::{DAY, Millis, now_ms};
use hookline_core::guard::TargetPolicy;
use hookline_core::health::{HealthRecord, Update};
use hookline_core::model::{
    Attempt, AttemptStatus, Delivery, DeliveryStatus, DeliveryTask, Event, TASK_VERSION, Webhook,
    WebhookInput, WebhookSpec, decode_json,
};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::retry::Schedule;
use hookline_core::sender::Sender;
use hookline_core::store::memory::{InMemoryEventStore, InMemoryWebhookStore};
use hookline_core::store::{AttemptLog, HealthStore, Page, StoreError, WebhookStore};
use serde_json::json;

/// The allocator of the function's binary (`src/main.rs`), for both measurements.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCHES: usize = 2000;

/// `HOOKLINE_BENCH_BATCHES` shortens a run (for profiling).
fn batches() -> usize {
    std::env::var("HOOKLINE_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BATCHES)
}
const BATCH: usize = 10;
const ROUNDS: usize = 7;

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

    async fn pending(&self, _: &Delivery, _: Millis) -> Result<(), StoreError> {
        unreachable!("the benchmark schedules nothing")
    }

    async fn reopen(&self, _: &Delivery, _: Millis, _: Millis) -> Result<bool, StoreError> {
        unreachable!("the benchmark resends nothing")
    }

    async fn restore(&self, _: &Delivery, _: Millis) -> Result<(), StoreError> {
        unreachable!("the benchmark resends nothing")
    }

    async fn deliveries(
        &self,
        _: &str,
        _: &str,
        _: Option<DeliveryStatus>,
        _: usize,
        _: Option<&str>,
        _: Millis,
    ) -> Result<Page<Delivery>, StoreError> {
        unreachable!("the benchmark never reads the attempt log")
    }

    async fn get_deliveries(
        &self,
        _: &str,
        _: &[(String, String)],
        _: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        unreachable!("the benchmark never reads the attempt log")
    }
}

/// Health, counted: the writes the handler makes (one per batch and webhook).
#[derive(Default)]
struct TallyHealth {
    writes: AtomicUsize,
}

#[async_trait::async_trait]
impl HealthStore for TallyHealth {
    async fn record(
        &self,
        _: &str,
        _: &str,
        update: &Update,
        now: Millis,
        _: Millis,
    ) -> Result<HealthRecord, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(HealthRecord::default().apply(update, now))
    }

    async fn get(
        &self,
        _: &str,
        _: &[String],
    ) -> Result<HashMap<String, HealthRecord>, StoreError> {
        unreachable!("the benchmark never reads health")
    }

    async fn clear_failing(&self, _: &str, _: &str) -> Result<(), StoreError> {
        unreachable!("the benchmark never enables a webhook")
    }
}

/// Metric records, counted: the function prints one per batch.
#[derive(Default)]
struct TallyMetrics {
    records: AtomicUsize,
}

impl MetricsSink for TallyMetrics {
    fn emit(&self, record: &str) {
        assert!(record.starts_with('{'));
        self.records.fetch_add(1, Ordering::Relaxed);
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
                attempts_before: 0,
                skip: None,
                webhook_version: webhook.version,
            };
            json!({"messageId": format!("{n}-{i}"), "receiptHandle": format!("rh-{n}-{i}"),
                   "body": serde_json::to_string(&task).unwrap(),
                   "attributes": {"ApproximateReceiveCount": "1"}})
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

/// The delivery handler over an in-memory store and queue, with one webhook whose body
/// template reads three fields of the event (as the README's examples do).
struct Handler {
    deliverer: Deliverer,
    webhook: Webhook,
    log: Arc<TallyAttemptLog>,
    health: Arc<TallyHealth>,
    metrics: Arc<TallyMetrics>,
    /// Batches handled in timed runs (the warm-up batch aside).
    batches: usize,
}

impl Handler {
    async fn new(url: &str) -> Handler {
        let webhooks = Arc::new(InMemoryWebhookStore::default());
        let spec = json!({"name": "bench", "url": url, "events": ["*"],
            "body": {"type": "json", "fields": {"order": "{{ data.order }}", "total": "{{ data.total }}", "type": "{{ event.type }}"}}});
        let spec = WebhookSpec::from_create(
            decode_json::<WebhookInput>(spec.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        let webhook = Webhook::new("bench", spec, now_ms());
        webhooks.create(&webhook).await.unwrap();
        let log = Arc::new(TallyAttemptLog::default());
        let health = Arc::new(TallyHealth::default());
        let metrics = Arc::new(TallyMetrics::default());
        let mut deliverer = Deliverer::new(
            webhooks,
            Arc::new(InMemoryEventStore::default()),
            log.clone(),
            health.clone(),
            Arc::new(InMemoryDeliveryQueue::default()),
            Sender::new(TargetPolicy {
                allow_private: true,
            })
            .unwrap(),
            Schedule::default(),
            DAY,
        );
        deliverer.metrics = metrics.clone();
        let handler = Handler {
            deliverer,
            webhook,
            log,
            health,
            metrics,
            batches: 0,
        };
        handler.run(handler.batch(usize::MAX)).await; // warm the connection pool
        handler
    }

    /// The SQS batch the event source would hand over (built outside any timing: the
    /// Lambda runtime parses it before the handler runs).
    fn batch(&self, n: usize) -> SqsEvent {
        batch(&self.webhook, n)
    }

    async fn run(&self, batch: SqsEvent) {
        let response = self.deliverer.handle(batch).await;
        assert!(response.batch_item_failures.is_empty());
    }

    /// Every delivery, warm-up included, was logged as delivered, and nothing else.
    fn check(&self) {
        assert_eq!(
            self.log.delivered.load(Ordering::Relaxed),
            (self.batches + 1) * BATCH
        );
        assert_eq!(self.log.other.load(Ordering::Relaxed), 0);
        // At most one health write a batch (all its attempts are of one webhook: the
        // budget of SPEC §10), and with the deployed hold far fewer: the first batch, then
        // one a hold. One metric record a batch.
        let writes = self.health.writes.load(Ordering::Relaxed);
        assert!((1..=self.batches + 1).contains(&writes), "{writes}");
        assert_eq!(
            self.metrics.records.load(Ordering::Relaxed),
            self.batches + 1
        );
    }

    /// Health writes per attempt (the attempt log's are one each, by construction).
    fn health_writes_per_attempt(&self) -> f64 {
        self.health.writes.load(Ordering::Relaxed) as f64
            / self.log.delivered.load(Ordering::Relaxed) as f64
    }
}

/// A bare reqwest client sending the handler's requests: the same URL, headers and body.
struct Bare {
    client: reqwest::Client,
    url: String,
}

impl Bare {
    async fn new(url: &str) -> Bare {
        let bare = Bare {
            client: hookline_core::tls::reqwest_builder().build().unwrap(),
            url: url.to_string(),
        };
        bare.run().await; // warm the connection pool
        bare
    }

    async fn send(&self) {
        let body = r#"{"order":"o-1","total":"1999","type":"order.placed"}"#;
        let r = self
            .client
            .post(&self.url)
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
    }

    /// One batch: ten requests at once, as the handler has ten messages in flight.
    async fn run(&self) {
        futures_util::future::join_all((0..BATCH).map(|_| self.send())).await;
    }
}

/// How long `f` took.
async fn timed<F: Future<Output = ()>>(f: F) -> Duration {
    let started = Instant::now();
    f.await;
    started.elapsed()
}

/// One round: the handler and the bare client take turns, a batch each, so that whatever
/// else the machine does at a moment slows both alike. Returns their rates.
async fn interleaved(handler: &mut Handler, bare: &Bare) -> (f64, f64) {
    let events: Vec<SqsEvent> = (0..batches()).map(|n| handler.batch(n)).collect();
    let (mut in_handler, mut in_bare) = (Duration::ZERO, Duration::ZERO);
    for (i, b) in events.into_iter().enumerate() {
        // Alternate who goes first, so neither always follows the other.
        if i % 2 == 0 {
            in_handler += timed(handler.run(b)).await;
            in_bare += timed(bare.run()).await;
        } else {
            in_bare += timed(bare.run()).await;
            in_handler += timed(handler.run(b)).await;
        }
    }
    handler.batches += batches();
    let deliveries = (batches() * BATCH) as f64;
    (
        deliveries / in_handler.as_secs_f64(),
        deliveries / in_bare.as_secs_f64(),
    )
}

/// The CPU the process spends per delivery on each side, each run alone for a whole
/// round (the CPU clock of /proc ticks too coarsely to split a batch).
async fn cpu_per_delivery(handler: &mut Handler, bare: &Bare) -> (Option<f64>, Option<f64>) {
    let deliveries = (batches() * BATCH) as f64;
    let events: Vec<SqsEvent> = (0..batches()).map(|n| handler.batch(n)).collect();
    handler.batches += events.len();
    let before = process_cpu_seconds();
    for b in events {
        handler.run(b).await;
    }
    let middle = process_cpu_seconds();
    for _ in 0..batches() {
        bare.run().await;
    }
    let after = process_cpu_seconds();
    let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1e6 / deliveries);
    (per(before, middle), per(middle, after))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seven interleaved rounds; prints the rates and the ratio (median, with the range).
async fn measure(handler: &mut Handler, bare: &Bare, label: &str) {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        rounds.push(interleaved(handler, bare).await);
    }
    let ratios: Vec<f64> = rounds.iter().map(|(h, b)| h / b).collect();
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    println!(
        "deliver/throughput{label}: handler {:.0} deliveries/s, bare reqwest {:.0} requests/s, \
         ratio {:.2} (median of {ROUNDS} rounds, each {} batches of {BATCH} taking turns \
         batch by batch; rounds ranged {low:.2}-{high:.2})",
        median(rounds.iter().map(|r| r.0).collect()),
        median(rounds.iter().map(|r| r.1).collect()),
        median(ratios),
        batches()
    );
}

fn main() {
    let url = start_receiver();
    // The function's own runtime (`src/main.rs`): one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut handler = Handler::new(&url).await;
        let bare = Bare::new(&url).await;
        // First as the benchmark has always run: no subscriber, so the attempt lines
        // cost nothing.
        measure(&mut handler, &bare, "").await;
        let (hc, bc) = cpu_per_delivery(&mut handler, &bare).await;
        println!(
            "deliver/throughput: store writes per attempt: attempt log 1, health {:.4} (the \
             deployed hold: a healthy webhook's successes written once a minute); one metric \
             record a batch",
            handler.health_writes_per_attempt()
        );
        if let (Some(hc), Some(bc)) = (hc, bc) {
            println!(
                "deliver/throughput: CPU per delivery (the whole process: sender, receiver, \
                 handler; each side alone for {} batches) handler {hc:.1} µs, bare reqwest {bc:.1} µs",
                batches()
            );
        }
        // Then as the function runs: its subscriber installed as Lambda configures it
        // (JSON lines, level info: one line per attempt), writing to a sink.
        let lambda = HashMap::from([("AWS_LAMBDA_LOG_FORMAT".to_string(), "JSON".to_string())]);
        tracing::dispatcher::set_global_default(hookline_core::logging::subscriber(
            &lambda,
            LineCount,
        ))
        .unwrap();
        let lines_before = LINES.load(Ordering::Relaxed);
        let deliveries_before = handler.log.delivered.load(Ordering::Relaxed);
        measure(&mut handler, &bare, " with the production subscriber").await;
        let (hc, bc) = cpu_per_delivery(&mut handler, &bare).await;
        handler.check();
        let lines = LINES.load(Ordering::Relaxed) - lines_before;
        let attempts = handler.log.delivered.load(Ordering::Relaxed) - deliveries_before;
        assert_eq!(lines, attempts, "one log line per attempt");
        if let (Some(hc), Some(bc)) = (hc, bc) {
            println!(
                "deliver/throughput with the production subscriber: CPU per delivery handler \
                 {hc:.1} µs, bare reqwest {bc:.1} µs; {lines} lines for {attempts} attempts"
            );
        }
    });
}

/// Log lines written, by the subscriber's writer below.
static LINES: AtomicUsize = AtomicUsize::new(0);

/// A sink that counts the lines it is given (the fmt layer writes one event per write).
#[derive(Default, Clone, Copy)]
struct LineCount;

impl std::io::Write for LineCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let lines = buf.iter().filter(|b| **b == b'\n').count();
        LINES.fetch_add(lines, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LineCount {
    type Writer = LineCount;
    fn make_writer(&'w self) -> LineCount {
        *self
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
