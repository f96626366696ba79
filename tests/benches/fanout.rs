//! `make bench-fanout`: one event fanned out to 1,000 matching webhooks — the number of
//! SQS requests and the wall time, with in-memory fakes and against the emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookline_core::clock::{DAY, now_ms};
use hookline_core::fanout::FanOut;
use hookline_core::model::{Event, Webhook, WebhookInput, WebhookSpec, decode_json};
use hookline_core::queue::{
    DeliveryQueue, InMemoryDeliveryQueue, OutgoingMessage, QueueError, SqsDeliveryQueue,
};
use hookline_core::store::dynamo::{DynamoEventStore, DynamoWebhookStore};
use hookline_core::store::memory::{InMemoryEventStore, InMemoryWebhookStore};
use hookline_core::store::{EventStore, WebhookStore};
use hookline_e2e::Emulator;

const WEBHOOKS: usize = 1_000;
const RUNS: usize = 5;

/// Counts the requests that reach the queue.
struct Counting<Q> {
    inner: Q,
    requests: AtomicUsize,
}

#[async_trait]
impl<Q: DeliveryQueue> DeliveryQueue for Counting<Q> {
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<Vec<String>, QueueError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.send_batch(messages).await
    }
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> Result<(), QueueError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.change_visibility(receipt_handle, seconds).await
    }
    async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        last_error: &str,
    ) -> Result<(), QueueError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.dead_letter(body, reason, last_error).await
    }
}

fn webhook(project: &str) -> Webhook {
    let json = r#"{"name":"bench","url":"https://example.com/hook","events":["order.placed"]}"#;
    let spec =
        WebhookSpec::from_create(decode_json::<WebhookInput>(json.as_bytes()).unwrap()).unwrap();
    Webhook::new(project, spec, now_ms())
}

fn event(id: &str) -> Event {
    let json =
        format!(r#"{{"id":"{id}","type":"order.placed","data":{{"order":"o-1","total":1999}}}}"#);
    Event::from_input(
        decode_json(json.as_bytes()).unwrap(),
        now_ms(),
        || unreachable!(),
    )
    .unwrap()
}

/// Fans one event out per run; each run gets its own queue (`queues[run]`), because
/// moto's SendMessageBatch slows down with every message already queued and SQS allows one
/// purge a minute: the figure is then the fan-out's, not the emulator's backlog.
async fn run<Q: DeliveryQueue + 'static>(
    label: &str,
    webhooks: Arc<dyn WebhookStore>,
    events: Arc<dyn EventStore>,
    queues: Vec<Arc<Counting<Q>>>,
    project: &str,
) {
    for _ in 0..WEBHOOKS {
        webhooks.create(&webhook(project)).await.unwrap();
    }
    let mut times = Vec::new();
    let mut requests = Vec::new();
    for (run, queue) in queues.into_iter().enumerate() {
        let fanout = FanOut {
            webhooks: webhooks.clone(),
            events: events.clone(),
            queue: queue.clone(),
            retention: DAY,
            conditions: Default::default(),
        };
        let started = Instant::now();
        let submitted = fanout
            .submit(project, event(&format!("bench-{run}")), false, now_ms())
            .await
            .expect("fan-out");
        times.push(started.elapsed());
        requests.push(queue.requests.load(Ordering::SeqCst));
        assert_eq!(submitted.matched, WEBHOOKS);
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!(
        "fanout/{label}: {WEBHOOKS} webhooks -> SQS requests per event {:?}, wall time median {:.1} ms (min {:.1}, max {:.1}) over {} events",
        requests,
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len(),
    );
}

fn counting<Q>(inner: Q) -> Arc<Counting<Q>> {
    Arc::new(Counting {
        inner,
        requests: AtomicUsize::new(0),
    })
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        run(
            "in-memory",
            Arc::new(InMemoryWebhookStore::default()),
            Arc::new(InMemoryEventStore::default()),
            (0..RUNS)
                .map(|_| counting(InMemoryDeliveryQueue::default()))
                .collect(),
            "bench",
        )
        .await;

        let emulator = Emulator::start();
        let config = emulator.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let mut queues = Vec::new();
        for run in 0..RUNS {
            let url = sqs
                .create_queue()
                .queue_name(format!("bench-{run}"))
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_string();
            queues.push(counting(SqsDeliveryQueue::new(
                sqs.clone(),
                url,
                emulator.var("HOOKLINE_DEAD_LETTER_QUEUE_URL"),
            )));
        }
        run(
            "emulator",
            Arc::new(DynamoWebhookStore::new(
                dynamo.clone(),
                emulator.var("HOOKLINE_WEBHOOKS_TABLE"),
            )),
            Arc::new(DynamoEventStore::new(
                dynamo,
                emulator.var("HOOKLINE_EVENTS_TABLE"),
            )),
            queues,
            "bench",
        )
        .await;
    });
}
