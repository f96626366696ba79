//! The delivery function: for each SQS message, one attempt of one delivery.
//!
//! Delivered → the message is left unreported, so the event source deletes it. Retry →
//! its visibility timeout is set to the retry delay and it is reported as a batch item
//! failure, so SQS hands it back after the delay. Give up → the attempt log says
//! `failed` or `dead_lettered` (the latter also sent to the DLQ with its last error), and
//! the message is let go. Attempts are numbered by the message's receive count, so an
//! attempt whose bookkeeping a crash cut short still counts.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::{FutureExt, StreamExt};
use serde_json::json;
use url::Url;

use hookline_core::clock::{self, Millis, SECOND};
use hookline_core::config::DEFAULT_WEBHOOK_CACHE;
use hookline_core::fanout::FanOut;
use hookline_core::ids;
use hookline_core::model::{
    Attempt, AttemptStatus, Delivery, DeliveryTask, Event, TASK_VERSION, Webhook,
};
use hookline_core::queue::{DeliveryQueue, MAX_DELAY_SECONDS, MAX_VISIBILITY_SECONDS};
use hookline_core::retry::{Decision, Outcome, Schedule};
use hookline_core::sender::{Sender, SignedRequest, sign_with};
use hookline_core::signing::Signer;
use hookline_core::store::{AttemptLog, EventStore, HealthStore, WebhookStore};
use hookline_core::template::{CompiledWebhook, RenderContext, Subject};

mod account;

use account::Batch;
pub use account::{HealthHold, MetricsSink, NAMESPACE, StdoutMetrics, Tally, emf};

/// Messages of one batch in flight at once.
pub const CONCURRENCY: usize = 10;

/// The most of a receiver's answer the attempt log keeps per attempt (a delivery's record
/// holds all its attempts, and DynamoDB bills its writes by the KiB).
pub const STORED_EXCERPT_BYTES: usize = 1024;

/// The delivery function's timeout (`DeliverFunction.Timeout` in infra/template.yaml; a
/// test holds the two together): the longest request a receiver may take (90 s) and
/// room for the bookkeeping around it.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);

/// How long before the function's timeout a message still in hand is let go.
pub const RELEASE_MARGIN: Duration = Duration::from_secs(15);

/// What the delivery function is invoked with: the SQS event source's batch, or the
/// scheduled `{"hookline": "sweep"}` that finishes fan-outs a crash abandoned. One
/// struct rather than an untagged enum, so a batch is read as directly as an `SqsEvent`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Invocation {
    #[serde(rename = "Records", default)]
    pub records: Vec<aws_lambda_events::event::sqs::SqsMessage>,
    #[serde(default)]
    pub hookline: Option<String>,
}

/// The delivery function's answer: the batch response, or what a sweep did.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    Batch(SqsBatchResponse),
    Swept { finished: usize, failed: usize },
}

/// What is prepared once per webhook version: parsed templates and keyed signatures,
/// and the last URL the target policy allowed (most webhooks render the same URL for
/// every event, and parsing and checking it costs more than the rest of a render).
struct Prepared {
    templates: CompiledWebhook,
    signer: Signer,
    last_url: Mutex<Option<(String, Url)>>,
}

/// A webhook as last read, with what was prepared from its version (or why that failed).
struct Loaded {
    webhook: Webhook,
    prepared: Arc<Result<Prepared, String>>,
}

impl Prepared {
    fn new(webhook: &Webhook) -> Result<Prepared, String> {
        Ok(Prepared {
            templates: CompiledWebhook::compile(&webhook.spec).map_err(|e| e.to_string())?,
            signer: Signer::new(&webhook.signing).map_err(|e| e.to_string())?,
            last_url: Mutex::new(None),
        })
    }

    /// The URL to send to, if the sender's target policy allows it.
    fn target(&self, sender: &Sender, raw: &str) -> Result<Url, String> {
        if let Ok(last) = self.last_url.lock()
            && let Some((text, url)) = &*last
            && text == raw
        {
            return Ok(url.clone());
        }
        let url = sender.check(raw).map_err(|e| e.to_string())?;
        if let Ok(mut last) = self.last_url.lock() {
            *last = Some((raw.to_string(), url.clone()));
        }
        Ok(url)
    }
}

impl Loaded {
    /// The signed request of one attempt of this webhook and the URL it goes to (checked
    /// against the sender's target policy), or why there is none.
    fn request(
        &self,
        sender: &Sender,
        event: &Event,
        delivery_id: &str,
        now: Millis,
    ) -> Result<(Url, SignedRequest), NotSent> {
        let prepared = match &*self.prepared {
            Ok(prepared) => prepared,
            Err(why) => {
                return Err(NotSent {
                    error: why.clone(),
                    summary: "the webhook's templates or keys could not be prepared".into(),
                    aborted: None,
                });
            }
        };
        let rendered = prepared
            .templates
            .render(&RenderContext::new(event, Subject::of(&self.webhook)))
            .map_err(|e| NotSent {
                error: e.to_string(),
                summary: e.summary(),
                aborted: match &e {
                    hookline_core::template::RenderError::Aborted { reason } => {
                        Some(reason.clone())
                    }
                    _ => None,
                },
            })?;
        let url = prepared
            .target(sender, &rendered.url)
            .map_err(|why| NotSent {
                error: why.clone(),
                summary: why,
                aborted: None,
            })?;
        let request = sign_with(
            rendered,
            &self.webhook.spec.auth,
            &prepared.signer,
            delivery_id,
            now,
        );
        Ok((url, request))
    }
}

/// Webhooks by id, with when each was read.
type WebhookCache = Arc<Mutex<HashMap<String, (Millis, Arc<Loaded>)>>>;

/// The most webhooks one function instance keeps; past it, expired ones are dropped,
/// then all of them.
const MAX_CACHED_WEBHOOKS: usize = 1024;

/// Whether a project has any webhook for an operational event type, and when that was
/// looked up: most projects subscribe to none, and a lookup per delivery would double
/// the delivery function's reads.
/// Keyed by project (looked up by `&str`, so a hit allocates nothing), one slot per
/// report kind of [`REPORT_KINDS`].
type ReportCache = Arc<Mutex<HashMap<String, [Option<(Millis, bool)>; 3]>>>;

/// The operational events a delivery can emit.
const REPORT_KINDS: [&str; 3] = [
    "delivery.succeeded",
    "delivery.failed",
    "delivery.dead_lettered",
];

/// How long "nobody listens" is believed. A webhook subscribed to `delivery.*` starts
/// receiving reports within this long.
pub const REPORT_CACHE: Millis = 10 * SECOND;

/// Everything the handler needs.
#[derive(Clone)]
pub struct Deliverer {
    pub attempts: Arc<dyn AttemptLog>,
    pub health: Arc<dyn HealthStore>,
    /// How long a webhook may fail (every attempt since `failing_since`) before Hookline
    /// disables it; `None`: never.
    pub auto_disable_after: Option<Millis>,
    /// Where the per-batch metric records go (stdout on Lambda, for CloudWatch).
    pub metrics: Arc<dyn MetricsSink>,
    /// Healthy webhooks' successes held between health writes.
    pub health_hold: HealthHold,
    /// The webhook and event stores and the queue, with the fan-out that emits the
    /// operational events (the trigger's own).
    pub fanout: FanOut,
    pub sender: Sender,
    pub schedule: Schedule,
    pub retention: Millis,
    /// How long a webhook read is reused ([`DEFAULT_WEBHOOK_CACHE`]; 0 reads every time).
    pub webhook_cache: Millis,
    webhooks: WebhookCache,
    listeners: ReportCache,
}

/// What one attempt produced, for the attempt log.
#[derive(Debug, Default)]
struct Logged {
    status_code: Option<u16>,
    duration_ms: u64,
    error: Option<String>,
    response_excerpt: Option<String>,
    next_attempt_at: Option<Millis>,
}

impl Logged {
    fn because(error: impl Into<String>) -> Logged {
        Logged {
            error: Some(error.into()),
            ..Logged::default()
        }
    }
}

/// What one attempt came to, decided once: its status, what the attempt log records,
/// the operational event it emits (when the delivery ended), and the reason the process
/// log gives.
struct Verdict {
    status: AttemptStatus,
    report: Option<&'static str>,
    logged: Logged,
    reason: Option<String>,
}

impl Verdict {
    /// An attempt that sent nothing (the webhook is gone or disabled, the event expired).
    fn without_request(status: AttemptStatus, report: Option<&'static str>, why: &str) -> Verdict {
        Verdict {
            status,
            report,
            logged: Logged::because(why),
            reason: Some(why.to_string()),
        }
    }
}

/// Why an attempt's request could not be made: in full for the project's attempt log,
/// and summed up for the process log (a render error can quote a template).
struct NotSent {
    error: String,
    summary: String,
    /// The template aborted the message (`abort_message`): its reason.
    aborted: Option<String>,
}

/// What a message's processing needs of it.
struct Incoming {
    id: Option<String>,
    body: String,
    receipt: String,
    received: u32,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Done with it: let the event source delete it.
    Done,
    /// Report it as failed: SQS shows it again when its visibility timeout ends.
    Again,
}

impl Deliverer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        webhooks: Arc<dyn WebhookStore>,
        events: Arc<dyn EventStore>,
        attempts: Arc<dyn AttemptLog>,
        health: Arc<dyn HealthStore>,
        queue: Arc<dyn DeliveryQueue>,
        sender: Sender,
        schedule: Schedule,
        retention: Millis,
    ) -> Deliverer {
        let fanout = FanOut {
            webhooks,
            events,
            queue,
            retention,
            conditions: Default::default(),
        };
        Deliverer {
            attempts,
            health,
            auto_disable_after: Some(hookline_core::config::DEFAULT_AUTO_DISABLE_AFTER),
            metrics: Arc::new(StdoutMetrics),
            health_hold: HealthHold::new(hookline_core::config::DEFAULT_HEALTH_HOLD),
            fanout,
            sender,
            schedule,
            retention,
            webhook_cache: DEFAULT_WEBHOOK_CACHE,
            webhooks: Arc::default(),
            listeners: Arc::default(),
        }
    }

    /// The handler over the deployment's tables and queues (what `main` and the local
    /// runtime use).
    pub fn from_config(
        config: &hookline_core::Config,
        aws: &aws_config::SdkConfig,
    ) -> Result<Deliverer, hookline_core::sender::ClientError> {
        use hookline_core::queue::SqsDeliveryQueue;
        use hookline_core::store::dynamo::{
            DynamoAttemptLog, DynamoEventStore, DynamoHealthStore, DynamoWebhookStore,
        };
        let dynamo = hookline_core::aws::dynamo(aws, hookline_core::config::Waits::DELIVERY);
        let sqs = hookline_core::aws::sqs(aws, hookline_core::config::Waits::DELIVERY);
        let r = &config.resources;
        let mut deliverer = Deliverer::new(
            Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table)),
            Arc::new(DynamoEventStore::new(dynamo.clone(), &r.events_table)),
            Arc::new(DynamoAttemptLog::new(dynamo.clone(), &r.attempts_table)),
            Arc::new(DynamoHealthStore::new(dynamo, &r.attempts_table)),
            Arc::new(SqsDeliveryQueue::new(
                sqs,
                &r.delivery_queue_url,
                &r.dead_letter_queue_url,
            )),
            Sender::new(config.targets)?,
            config.retry,
            config.attempt_retention,
        );
        deliverer.webhook_cache = config.webhook_cache;
        deliverer.auto_disable_after = config.auto_disable_after;
        deliverer.health_hold = HealthHold::new(config.health_hold);
        Ok(deliverer)
    }

    /// Handles one SQS batch with the function's whole timeout ahead.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, Instant::now() + FUNCTION_TIMEOUT)
            .await
    }

    /// What the function was invoked with: a batch, or the scheduled sweep.
    pub async fn invoke(&self, invocation: Invocation, deadline: Instant) -> Answer {
        match invocation.hookline.as_deref() {
            Some("sweep") => {
                // New fan-outs are taken on until a margin before the deadline.
                let answer = match self.fanout.sweep(deadline - RELEASE_MARGIN).await {
                    Ok(swept) => Answer::Swept {
                        finished: swept.finished,
                        failed: swept.failed,
                    },
                    Err(e) => {
                        tracing::error!(error = %hookline_core::error::chain(&e), "the sweep could not read the events table");
                        Answer::Swept {
                            finished: 0,
                            failed: 0,
                        }
                    }
                };
                // Then, with what time is left (deliveries a crash abandoned come first),
                // the successes this instance held past their hold.
                self.account(Vec::new(), deadline - RELEASE_MARGIN).await;
                answer
            }
            other => {
                if let Some(unknown) = other {
                    tracing::warn!(invocation = %unknown, "an unknown invocation; treated as a batch");
                }
                let mut event = SqsEvent::default();
                event.records = invocation.records;
                Answer::Batch(self.handle_until(event, deadline).await)
            }
        }
    }

    /// Handles one SQS batch; the response lists the messages SQS should show again. A
    /// message still in hand at [`RELEASE_MARGIN`] before `deadline` (the function's own
    /// timeout) is let go, reported for retry, so that a stalled store or queue costs a
    /// retry of that message, never a timed-out invocation and its whole batch.
    pub async fn handle_until(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        // What a message's processing needs, taken out of it first: the rest of the
        // message does not travel in the futures.
        let messages: Vec<Incoming> = event
            .records
            .into_iter()
            .map(|mut message| Incoming {
                id: message.message_id.take(),
                body: message.body.take().unwrap_or_default(),
                receipt: message.receipt_handle.take().unwrap_or_default(),
                received: message
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse::<u32>().ok())
                    .unwrap_or(1)
                    .max(1),
            })
            .collect();
        // Concurrent within this one task: the work between sends is small and the
        // function runs on a fraction of a vCPU, so a spawned task per message would only
        // add a clone, an allocation and a wake-up. Each message is its own unit of
        // failure: should processing one panic (a bug; customer input cannot cause one),
        // that message alone is poisoned and the rest of the batch completes.
        // The futures are made before the stream, so no closure over a borrowed message
        // is part of this future's type (which would make it not `Send` for rustc).
        let release_at = deadline - RELEASE_MARGIN;
        let batch = Batch::until(release_at);
        let work: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| self.one(i, m, &batch))
            .collect();
        // One deadline for the batch (a timer per message would cost ten registrations a
        // batch): what has not finished by then is let go.
        let mut dispositions: Vec<Option<Disposition>> = vec![None; messages.len()];
        {
            let mut running = futures_util::stream::iter(work).buffer_unordered(CONCURRENCY);
            let until = tokio::time::sleep_until(release_at.into());
            tokio::pin!(until);
            loop {
                tokio::select! {
                    biased;
                    next = running.next() => match next {
                        Some((i, disposition)) => dispositions[i] = Some(disposition),
                        None => break,
                    },
                    () = &mut until => break,
                }
            }
        }
        self.account(batch.into_tallies(), release_at).await;
        let mut response = SqsBatchResponse::default();
        for (m, disposition) in messages.iter().zip(dispositions) {
            let disposition = disposition.unwrap_or_else(|| {
                tracing::warn!(
                    message_id = m.id.as_deref(),
                    "released a message still in hand near the function's timeout"
                );
                Disposition::Again
            });
            if disposition == Disposition::Again {
                match &m.id {
                    Some(id) => response.add_failure(id.clone()),
                    None => tracing::error!("a message without an id cannot be reported for retry"),
                }
            }
        }
        response
    }

    /// The `i`th message of a batch, its processing contained: a panic in it is that
    /// message's alone.
    async fn one(&self, i: usize, m: &Incoming, batch: &Batch) -> (usize, Disposition) {
        // Boxed: the processing future is large (it holds the request's and the attempt
        // log's futures), and the batch's futures move into the stream's queue.
        let work = AssertUnwindSafe(Box::pin(
            self.process(&m.body, &m.receipt, m.received, batch),
        ));
        let disposition = match work.catch_unwind().await {
            Ok(disposition) => disposition,
            Err(panic) => {
                let what = hookline_core::error::panic_message(&*panic);
                self.contain(&m.body, m.received, what).await
            }
        };
        (i, disposition)
    }

    /// A message whose processing panicked: a bug, so trying it again would only panic
    /// again. It goes to the DLQ with the reason, and the attempt log says so.
    async fn contain(&self, body: &str, attempt: u32, panic: String) -> Disposition {
        tracing::error!(panic = %panic, "processing a message panicked");
        let why = format!(
            "Hookline failed while processing this delivery (a bug: {panic}); it was dead-lettered"
        );
        if let Ok(task) = serde_json::from_str::<DeliveryTask>(body) {
            let logged = AssertUnwindSafe(self.log(
                &task,
                "",
                attempt,
                AttemptStatus::DeadLettered,
                Logged::because(why.clone()),
                clock::now_ms(),
                Instant::now(),
            ));
            if logged.catch_unwind().await.is_err() {
                tracing::error!(delivery_id = %task.delivery_id, "could not log a contained panic");
            }
        }
        self.poison(body, &why).await
    }

    /// One message: `received` is its receive count, which numbers the attempt.
    async fn process(
        &self,
        body: &str,
        receipt: &str,
        received: u32,
        batch: &Batch,
    ) -> Disposition {
        let task: DeliveryTask = match serde_json::from_str(body) {
            Ok(task) => task,
            Err(e) => {
                return self
                    .poison(body, &format!("the message is not a delivery task: {e}"))
                    .await;
            }
        };
        if task.v != TASK_VERSION {
            return self
                .poison(
                    body,
                    &format!("delivery task version {} is not understood", task.v),
                )
                .await;
        }
        let now = clock::now_ms();
        if let Some(due) = task.deliver_at.filter(|due| *due > now) {
            return self.hold(&task, receipt, received, due, now).await;
        }
        // A resent or recovered delivery goes on numbering its attempts.
        let attempt = task.attempts_before.saturating_add(received);
        self.attempt(task, body, receipt, attempt, now, batch).await
    }

    /// A message that cannot be a delivery: to the DLQ with the reason, never retried.
    async fn poison(&self, body: &str, reason: &str) -> Disposition {
        tracing::error!(reason, "poison message");
        match self.fanout.queue.dead_letter(body, "poison", reason).await {
            Ok(()) => Disposition::Done,
            Err(e) => {
                tracing::error!(error = %hookline_core::error::chain(&e), "could not dead-letter a poison message");
                Disposition::Again
            }
        }
    }

    /// A scheduled delivery not yet due. Within SQS's 15-minute delay it is re-sent as a
    /// fresh message delayed to its time (so its receive count starts at one for the real
    /// attempts); further ahead it is hidden again, in hops of at most 12 hours.
    async fn hold(
        &self,
        task: &DeliveryTask,
        receipt: &str,
        received: u32,
        due: Millis,
        now: Millis,
    ) -> Disposition {
        if received == 1 {
            // Shown as pending in the deliveries listing until its time comes.
            let event_type = task.event.as_ref().map_or("", |e| e.event_type.as_str());
            let held = Delivery {
                next_attempt_at: Some(due),
                ..Delivery::pending(task, event_type, now)
            };
            if let Err(e) = self.attempts.pending(&held, now + self.retention).await {
                tracing::warn!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, "could not note a scheduled delivery");
            }
        }
        let remaining = due - now;
        let max_delay = i64::from(MAX_DELAY_SECONDS) * SECOND;
        if remaining <= max_delay {
            let due_task = DeliveryTask {
                deliver_at: None,
                ..task.clone()
            };
            let delay = (hookline_core::retry::round_up_to_seconds(remaining) / SECOND) as i32;
            let (sent, _) = self.fanout.send(vec![due_task], delay).await;
            return if sent.is_empty() {
                Disposition::Again
            } else {
                Disposition::Done
            };
        }
        let hide =
            ((remaining - max_delay / 3) / SECOND).min(i64::from(MAX_VISIBILITY_SECONDS)) as i32;
        if let Err(e) = self.fanout.queue.change_visibility(receipt, hide).await {
            tracing::warn!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, "could not hold a scheduled delivery");
        }
        Disposition::Again
    }

    /// The task's event: carried in the message, or else read from the event store
    /// (`None`: no longer stored).
    async fn load_event(
        &self,
        task: &mut DeliveryTask,
        until: Instant,
    ) -> Result<Option<Event>, hookline_core::store::StoreError> {
        if let Some(event) = task.event.take() {
            return Ok(Some(event));
        }
        let (project, id) = (&task.project_id, &task.event_id);
        let record = patiently(until, "read a stored event", || {
            self.fanout.events.get(project, id)
        })
        .await?;
        Ok(record.map(|r| r.event))
    }

    /// Drops a webhook from the cache (it just changed here).
    fn forget(&self, webhook_id: &str) {
        if let Ok(mut cache) = self.webhooks.lock() {
            cache.remove(webhook_id);
        }
    }

    /// The webhook as the store has it, read at most once per [`Deliverer::webhook_cache`]
    /// and again when the cached copy is older than `at_least` (the version a message was
    /// made for), with its templates and signer prepared once per version. `None`: deleted.
    async fn webhook(
        &self,
        project: &str,
        id: &str,
        at_least: u64,
        now: Millis,
    ) -> Result<Option<Arc<Loaded>>, hookline_core::store::StoreError> {
        let cached = self.webhooks.lock().ok().and_then(|cache| {
            cache
                .get(id)
                .filter(|(_, loaded)| loaded.webhook.project_id == project)
                .cloned()
        });
        if let Some((read_at, loaded)) = &cached
            && now - read_at < self.webhook_cache
            && loaded.webhook.version >= at_least
        {
            return Ok(Some(loaded.clone()));
        }
        let Some(webhook) = self.fanout.webhooks.get(project, id).await? else {
            if cached.is_some()
                && let Ok(mut cache) = self.webhooks.lock()
            {
                cache.remove(id);
            }
            return Ok(None);
        };
        let loaded = Arc::new(match cached {
            Some((_, old)) if old.webhook.version == webhook.version => Loaded {
                webhook,
                prepared: old.prepared.clone(),
            },
            _ => Loaded {
                prepared: Arc::new(Prepared::new(&webhook)),
                webhook,
            },
        });
        if let Ok(mut cache) = self.webhooks.lock() {
            if cache.len() >= MAX_CACHED_WEBHOOKS {
                cache.retain(|_, (read_at, _)| now - *read_at < self.webhook_cache);
                if cache.len() >= MAX_CACHED_WEBHOOKS {
                    cache.clear();
                }
            }
            cache.insert(id.to_string(), (now, loaded.clone()));
        }
        Ok(Some(loaded))
    }

    async fn attempt(
        &self,
        mut task: DeliveryTask,
        body: &str,
        receipt: &str,
        attempt: u32,
        now: Millis,
        batch: &Batch,
    ) -> Disposition {
        if let Some(reason) = task.skip.clone() {
            let event_type = task
                .event
                .as_ref()
                .map(|e| e.event_type.clone())
                .unwrap_or_default();
            let verdict = Verdict::without_request(AttemptStatus::Skipped, None, &reason);
            self.finish(&task, &event_type, attempt, verdict, now, batch)
                .await;
            return Disposition::Done;
        }
        let loaded = match patiently(batch.release_at, "read the webhook", || {
            self.webhook(
                &task.project_id,
                &task.webhook_id,
                task.webhook_version,
                now,
            )
        })
        .await
        {
            Ok(w) => w,
            Err(e) => {
                // The store is down: try again after the queue's visibility timeout.
                tracing::error!(error = %hookline_core::error::chain(&e), webhook_id = %task.webhook_id, "could not read the webhook");
                return Disposition::Again;
            }
        };
        let loaded = match loaded {
            Some(w) if w.webhook.spec.enabled => w,
            other => {
                let why = if other.is_some() {
                    "the webhook is disabled"
                } else {
                    "the webhook was deleted"
                };
                let verdict = Verdict::without_request(AttemptStatus::Skipped, None, why);
                self.finish(&task, "", attempt, verdict, now, batch).await;
                return Disposition::Done;
            }
        };
        let webhook = &loaded.webhook;
        let event = match self.load_event(&mut task, batch.release_at).await {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %hookline_core::error::chain(&e), event_id = %task.event_id, "could not read a stored event");
                return Disposition::Again;
            }
        };
        let Some(event) = event else {
            let why = "the event is no longer stored";
            let verdict =
                Verdict::without_request(AttemptStatus::Failed, Some("delivery.failed"), why);
            self.finish(&task, "", attempt, verdict, now, batch).await;
            return Disposition::Done;
        };
        let (outcome, response_excerpt, duration_ms, reason) =
            match loaded.request(&self.sender, &event, &task.delivery_id, now) {
                Ok((url, request)) => {
                    let timeout = Duration::from_secs(u64::from(webhook.spec.timeout_seconds));
                    let sent = self.sender.send_to(url, &request, timeout).await;
                    // Statuses, timeouts and connection errors say nothing of a template.
                    let reason = sent.outcome.error();
                    (
                        sent.outcome,
                        sent.response.map(|r| r.excerpt),
                        sent.duration_ms,
                        reason,
                    )
                }
                Err(NotSent {
                    aborted: Some(reason),
                    ..
                }) => {
                    // Its template decided: not sent, not retried (SPEC §9).
                    let why = hookline_core::template::RenderError::abort_error(&reason);
                    let mut verdict = Verdict::without_request(AttemptStatus::Skipped, None, &why);
                    // The reason may quote the event: the attempt log has it, the process
                    // log does not.
                    verdict.reason = Some("aborted by its template".to_string());
                    self.finish(&task, &event.event_type, attempt, verdict, now, batch)
                        .await;
                    return Disposition::Done;
                }
                Err(not_sent) => (
                    Outcome::Refused(not_sent.error),
                    None,
                    0,
                    Some(not_sent.summary),
                ),
            };
        let now = clock::now_ms();
        let decision = self.schedule.decide(
            &outcome,
            attempt,
            task.first_attempt_at,
            now,
            rand::random::<f64>(),
        );
        // A retry's delay is set once its attempt is logged: until then the message stays
        // hidden by the queue's visibility timeout, so the next attempt cannot start (on
        // another instance) while this one's record is still being written, and the
        // attempt log keeps the attempts in order.
        let mut retry_in = None;
        let (status, report, error, next_attempt_at) = match decision {
            Decision::Delivered => (
                AttemptStatus::Delivered,
                Some("delivery.succeeded"),
                None,
                None,
            ),
            Decision::Retry { delay } => {
                retry_in =
                    Some((delay / SECOND).clamp(0, i64::from(MAX_VISIBILITY_SECONDS)) as i32);
                (
                    AttemptStatus::Retrying,
                    None,
                    outcome.error(),
                    Some(now + delay),
                )
            }
            Decision::GiveUp {
                reason,
                dead_letter: false,
            } => (
                AttemptStatus::Failed,
                Some("delivery.failed"),
                Some(reason),
                None,
            ),
            Decision::GiveUp {
                reason,
                dead_letter: true,
            } => {
                if let Err(e) = patiently(batch.release_at, "dead-letter", || {
                    self.fanout
                        .queue
                        .dead_letter(body, "retries exhausted", &reason)
                })
                .await
                {
                    // Not in the DLQ yet: keep the message; the next receive tries again.
                    tracing::error!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, "could not dead-letter");
                    return Disposition::Again;
                }
                (
                    AttemptStatus::DeadLettered,
                    Some("delivery.dead_lettered"),
                    Some(reason),
                    None,
                )
            }
        };
        let verdict = Verdict {
            status,
            report,
            logged: Logged {
                status_code: outcome.status_code(),
                duration_ms,
                error,
                response_excerpt,
                next_attempt_at,
            },
            reason,
        };
        self.finish(&task, &event.event_type, attempt, verdict, now, batch)
            .await;
        if let Some(seconds) = retry_in
            && let Err(e) = self.fanout.queue.change_visibility(receipt, seconds).await
        {
            // The queue's own visibility timeout then decides when it comes back.
            tracing::warn!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, "could not set the retry delay");
        }
        if status == AttemptStatus::Retrying {
            Disposition::Again
        } else {
            Disposition::Done
        }
    }

    /// Where every attempt ends, whatever it came to: one line in the process log (with a
    /// reason that cannot quote a template: a template may hold a credential), the
    /// attempt record, and the operational event of a delivery that ended.
    async fn finish(
        &self,
        task: &DeliveryTask,
        event_type: &str,
        attempt: u32,
        verdict: Verdict,
        now: Millis,
        batch: &Batch,
    ) {
        batch.count(task, &verdict, now);
        let Verdict {
            status,
            report,
            logged,
            reason,
        } = verdict;
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    delivery_id = %task.delivery_id,
                    webhook_id = %task.webhook_id,
                    event_id = %task.event_id,
                    attempt,
                    status = %status.as_str(),
                    status_code = logged.status_code,
                    duration_ms = logged.duration_ms,
                    reason = reason.as_deref(),
                    "attempt"
                )
            };
        }
        match status {
            AttemptStatus::Delivered | AttemptStatus::Skipped => line!(info),
            AttemptStatus::Retrying | AttemptStatus::Failed | AttemptStatus::DeadLettered => {
                line!(warn)
            }
        }
        let (code, error) = (logged.status_code, logged.error.clone());
        self.log(
            task,
            event_type,
            attempt,
            status,
            logged,
            now,
            batch.release_at,
        )
        .await;
        if let Some(kind) = report {
            self.report(
                task,
                event_type,
                kind,
                attempt,
                code,
                error.as_deref().unwrap_or_default(),
                now,
            )
            .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        task: &DeliveryTask,
        event_type: &str,
        attempt: u32,
        status: AttemptStatus,
        what: Logged,
        now: Millis,
        until: Instant,
    ) {
        let record = Attempt {
            id: ids::new_id("att", now),
            project_id: task.project_id.clone(),
            event_id: task.event_id.clone(),
            event_type: event_type.to_string(),
            webhook_id: task.webhook_id.clone(),
            delivery_id: task.delivery_id.clone(),
            attempt,
            status,
            status_code: what.status_code,
            duration_ms: what.duration_ms,
            error: what.error,
            // The attempt log keeps the first KiB; the test send shows 4.
            response_excerpt: what
                .response_excerpt
                .map(|e| hookline_core::sender::excerpt_of(&e, STORED_EXCERPT_BYTES)),
            next_attempt_at: what.next_attempt_at,
            created_at: now,
        };
        let expires_at = now + self.retention;
        if let Err(e) = patiently(until, "write the attempt log", || {
            self.attempts.record(&record, expires_at)
        })
        .await
        {
            tracing::error!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, attempt, "could not write the attempt log");
        }
    }

    /// Emits `delivery.*` for a delivery that ended, unless it delivered an operational
    /// event itself.
    #[allow(clippy::too_many_arguments)]
    async fn report(
        &self,
        task: &DeliveryTask,
        event_type: &str,
        kind: &str,
        attempts: u32,
        last_status_code: Option<u16>,
        error: &str,
        now: Millis,
    ) {
        if task.operational || !self.anyone_listens(&task.project_id, kind, now).await {
            return;
        }
        let data = json!({
            "webhook_id": task.webhook_id,
            "event_id": task.event_id,
            "delivery_id": task.delivery_id,
            "event_type": event_type,
            "attempts": attempts,
            "retries": attempts.saturating_sub(1),
            "last_status_code": last_status_code,
            "error": if error.is_empty() { serde_json::Value::Null } else { error.into() },
        });
        let event = Event {
            // One report per delivery and kind, however often this message is processed.
            id: format!("{}.{}", task.delivery_id, kind),
            event_type: kind.to_string(),
            timestamp: now,
            data: data.as_object().cloned().unwrap_or_default(),
            user: None,
            deliver_at: None,
            channel: None,
        };
        // Boxed: a report is rare, and its future would otherwise weigh on every message's.
        let submitted = Box::pin(self.fanout.submit(&task.project_id, event, true, now)).await;
        if let Err(e) = submitted {
            tracing::error!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, kind, "could not emit an operational event");
        }
    }
}

impl Deliverer {
    /// Whether any webhook of the project subscribes to `kind` (cached briefly).
    async fn anyone_listens(&self, project: &str, kind: &str, now: Millis) -> bool {
        let Some(slot) = REPORT_KINDS.iter().position(|k| *k == kind) else {
            return true;
        };
        if let Ok(cache) = self.listeners.lock()
            && let Some(Some((at, listens))) = cache.get(project).map(|slots| slots[slot])
            && now - at < REPORT_CACHE
        {
            return listens;
        }
        let listens = match self
            .fanout
            .webhooks
            .subscribers(project, kind, None, true)
            .await
        {
            Ok(hooks) => hooks
                .iter()
                .any(|w| w.spec.events.iter().any(|e| e == kind)),
            // Unknown: try to report; the fan-out will look again.
            Err(_) => return true,
        };
        if let Ok(mut cache) = self.listeners.lock() {
            cache.entry(project.to_string()).or_default()[slot] = Some((now, listens));
        }
        listens
    }
}

/// Makes a store or queue call again, with growing pauses, for as long as one more try
/// ends before `until`: a dependency that stalls for a while costs the message a delay,
/// where giving up at once would hand it back to SQS until its visibility timeout (12
/// minutes) ends. Each try is bounded by the client's own timeouts.
async fn patiently<T, E, F, Fut>(until: Instant, what: &str, mut call: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut pause = Duration::from_millis(250);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e)
                if Instant::now() + pause + hookline_core::config::Waits::DELIVERY.operation
                    < until =>
            {
                tracing::warn!(error = %hookline_core::error::chain(&e), "could not {what}; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
