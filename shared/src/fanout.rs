//! Fan-out: one event to every webhook of its project that subscribes to it, one delivery
//! task each on the queue. Shared by the trigger function (events posted by the API) and
//! the delivery function (operational `delivery.*` events), so both behave the same.
//!
//! Nothing is lost half-way: before anything is sent, the event record lists every
//! matched delivery with its delivery id; messages are sent in batches of ten (calls
//! concurrent, entries SQS rejects retried), and the record then notes what went out.
//! A fan-out that stopped half-way (SQS failing, or the process killed) is finished by
//! whoever finds it incomplete once its lease has lapsed: a repeated POST of the same
//! event id, or [`FanOut::sweep`], which runs on a schedule. Either sends only what is not
//! noted as sent. A crash between a send and the note can send a task twice; both copies
//! carry the same delivery id, the `webhook-id` receivers deduplicate on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::clock::{Millis, SECOND};
use crate::ids::new_id;
use crate::model::{DeliveryTask, Event, TASK_VERSION, Webhook};
use crate::queue::{BATCH, DeliveryQueue, MAX_DELAY_SECONDS, OutgoingMessage, QueueError};
use crate::store::{EventRecord, EventStore, StoreError, WebhookStore};
use crate::template::{Condition, RenderContext, Subject};

/// How long one fan-out holds an event before another request may finish it.
pub const LEASE: Millis = 30 * SECOND;
/// A task larger than this carries the event by reference (SQS takes 256 KiB).
pub const INLINE_EVENT_LIMIT: usize = 192 * 1024;
/// Rounds of sending before giving up on entries SQS keeps rejecting.
const SEND_ROUNDS: u32 = 4;
/// Batch calls in flight at once.
const CONCURRENT_BATCHES: usize = 16;

/// Event types Hookline emits itself; an API client may not post them.
pub fn is_operational(event_type: &str) -> bool {
    event_type.starts_with("delivery.") || event_type.starts_with("webhook.")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub event_id: String,
    pub matched: usize,
    pub duplicate: bool,
    /// A duplicate whose type, data, user or channel differ from the event accepted
    /// under its id: it was not delivered (see [`Event::says_the_same_as`]).
    pub differs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(
        "{unsent} of {total} deliveries are not yet enqueued; Hookline finishes them within minutes, or send the event again with the same id"
    )]
    Incomplete { unsent: usize, total: usize },
    /// The event's fan-out is unfinished and another request holds it; it is free again
    /// within `retry_after`.
    #[error("the event's deliveries are still being enqueued; send it again shortly")]
    Busy { retry_after: Millis },
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Abandoned fan-outs finished.
    pub finished: usize,
    /// Ones that could not be finished this time (the next sweep tries again).
    pub failed: usize,
}

/// The most abandoned fan-outs one sweep takes on.
pub const SWEEP_LIMIT: usize = 100;

/// The most bytes of filter errors one event's record keeps. The record is one
/// DynamoDB item (400 KB) with every delivery in it, and each of a project's 1,000
/// webhooks may have a filter that fails with a 512-byte error of its own: past this,
/// a skipped delivery's reason is [`SKIP_REASON_LEFT_OUT`], and the event is still
/// accepted.
pub const MAX_SKIP_REASONS_BYTES: usize = 32 * 1024;
pub const SKIP_REASON_LEFT_OUT: &str = "filter: failed to evaluate (its error is left out: this event's record holds 32 KiB of filter errors already)";

/// The fan-out and its ports.
#[derive(Clone)]
pub struct FanOut {
    pub webhooks: Arc<dyn WebhookStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    /// How long event records are kept (as long as the attempts that refer to them).
    pub retention: Millis,
    /// The webhooks' filters, parsed once per version.
    pub conditions: Conditions,
}

/// A webhook's filter as parsed (or why it did not parse).
type Parsed = Arc<Result<Condition, String>>;

/// Webhooks' filters as parsed, by webhook id with the version they were parsed from.
#[derive(Clone, Default)]
pub struct Conditions(Arc<Mutex<HashMap<String, (u64, Parsed)>>>);

/// The most filters kept parsed; past it the cache starts afresh.
const MAX_CONDITIONS: usize = 4096;

impl Conditions {
    /// Whether `webhook`'s filter admits the event, or why that cannot be told. `context`
    /// is the event's, built once per fan-out when a webhook first needs it.
    pub fn admit<'a>(
        &self,
        webhook: &'a Webhook,
        event: &'a Event,
        context: &mut Option<RenderContext<'a>>,
    ) -> Result<bool, String> {
        let Some(source) = &webhook.spec.filter else {
            return Ok(true);
        };
        let cached = self.0.lock().ok().and_then(|cache| {
            cache
                .get(&webhook.id)
                .filter(|(version, _)| *version == webhook.version)
                .map(|(_, c)| c.clone())
        });
        let condition = match cached {
            Some(condition) => condition,
            None => {
                let parsed = Arc::new(Condition::compile(source).map_err(|e| e.message));
                if let Ok(mut cache) = self.0.lock() {
                    if cache.len() >= MAX_CONDITIONS {
                        cache.clear();
                    }
                    cache.insert(webhook.id.clone(), (webhook.version, parsed.clone()));
                }
                parsed
            }
        };
        let condition = match &*condition {
            Ok(condition) => condition,
            Err(why) => return Err(why.clone()),
        };
        let subject = Subject::of(webhook);
        let context = match context {
            Some(context) => {
                context.set_subject(subject);
                context
            }
            None => context.insert(RenderContext::new(event, subject)),
        };
        condition.holds(context)
    }
}

/// When a delivery may first be attempted, how long SQS should delay it, and whether the
/// delivery function must hold it further.
fn schedule(deliver_at: Option<Millis>, now: Millis) -> (i32, Millis, Option<Millis>) {
    match deliver_at {
        Some(at) if at > now => {
            let seconds = crate::retry::round_up_to_seconds(at - now) / SECOND;
            if seconds <= i64::from(MAX_DELAY_SECONDS) {
                (seconds as i32, at, None)
            } else {
                (MAX_DELAY_SECONDS, at, Some(at))
            }
        }
        _ => (0, now, None),
    }
}

/// A task's message, with the event inline unless that makes it too large.
pub fn task_message<E: Serialize + Clone>(
    task: &DeliveryTask<E>,
    entry_id: String,
    delay_seconds: i32,
) -> Result<OutgoingMessage, serde_json::Error> {
    let mut body = serde_json::to_string(task)?;
    if body.len() > INLINE_EVENT_LIMIT && task.event.is_some() {
        let by_reference = DeliveryTask {
            event: None,
            ..task.clone()
        };
        body = serde_json::to_string(&by_reference)?;
    }
    Ok(OutgoingMessage {
        id: entry_id,
        body,
        delay_seconds,
    })
}

impl FanOut {
    /// Accepts an event once per id and enqueues a delivery for each subscriber.
    pub async fn submit(
        &self,
        project: &str,
        event: Event,
        operational: bool,
        now: Millis,
    ) -> Result<Submitted, FanOutError> {
        let subscribers = self
            .webhooks
            .subscribers(
                project,
                &event.event_type,
                event.channel.as_deref(),
                operational,
            )
            .await?;
        // Who gets it (SPEC §9): the type and channel, then the filter. A filter that
        // says no is no match; one that fails to evaluate matches, and its delivery is
        // logged skipped with the error rather than dropped unseen.
        let mut deliveries = std::collections::BTreeMap::new();
        let mut skipped = std::collections::BTreeMap::new();
        let mut reasons = 0;
        let mut versions = std::collections::BTreeMap::new();
        let mut context = None;
        for webhook in &subscribers {
            if !webhook
                .spec
                .matches(&event.event_type, event.channel.as_deref(), operational)
            {
                continue;
            }
            match self.conditions.admit(webhook, &event, &mut context) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(why) => {
                    let mut reason = format!("filter: {why}");
                    reasons += reason.len();
                    if reasons > MAX_SKIP_REASONS_BYTES {
                        reason = SKIP_REASON_LEFT_OUT.to_string();
                    }
                    skipped.insert(webhook.id.clone(), reason);
                }
            }
            deliveries.insert(webhook.id.clone(), new_id("msg", now));
            versions.insert(webhook.id.clone(), webhook.version);
        }
        drop(context);
        // Nobody asked for this report: nothing to record or send.
        if operational && deliveries.is_empty() {
            return Ok(Submitted {
                event_id: event.id,
                matched: 0,
                duplicate: false,
                differs: false,
            });
        }
        let record = EventRecord {
            project_id: project.to_string(),
            event,
            deliveries,
            skipped,
            enqueued: Default::default(),
            complete: false,
            lease_until: now + LEASE,
            created_at: now,
            operational,
            expires_at: now + self.retention,
        };
        let event_id = record.event.id.clone();
        let created = self.events.create(&record).await?;
        // A duplicate: finish the first request's fan-out if it stopped half-way; while
        // another request holds it, the client is told when to come back (never that the
        // event is done when nothing is finishing it).
        let existing = if created {
            None
        } else {
            let existing = self
                .events
                .get(project, &event_id)
                .await?
                .ok_or(StoreError::Conflict)?;
            // Unless the record found is this request's own: a create whose first try
            // landed but timed out is retried by the SDK, and its condition then fails
            // on what the first try wrote. The delivery ids, drawn afresh by each
            // request, tell it apart from another request's record.
            let own = existing.deliveries == record.deliveries
                && existing.created_at == record.created_at
                && existing.lease_until == record.lease_until;
            if own {
                tracing::warn!(event_id = %event_id, "the event record was written by a try that timed out: fanning out as its creator");
            }
            (!own).then_some(existing)
        };
        let Some(existing) = existing else {
            self.enqueue(&record, &versions, now).await?;
            return Ok(Submitted {
                event_id,
                matched: record.deliveries.len(),
                duplicate: false,
                differs: false,
            });
        };
        // The id's first event stands (SPEC §4); one that says something else is still
        // a duplicate, and the answer says that it differs rather than pass it silently.
        let differs = !existing.event.says_the_same_as(&record.event);
        if differs {
            tracing::warn!(event_id = %event_id, "an event of an id already accepted says something else: dropped as a duplicate");
        }
        if !existing.complete {
            if !self
                .events
                .take_lease(project, &event_id, now, now + LEASE)
                .await?
            {
                return Err(FanOutError::Busy {
                    retry_after: (existing.lease_until - now).clamp(SECOND, LEASE),
                });
            }
            tracing::warn!(event_id = %event_id, "resuming an incomplete fan-out");
            self.enqueue(&existing, &Default::default(), now).await?;
        }
        Ok(Submitted {
            event_id,
            matched: existing.deliveries.len(),
            duplicate: true,
            differs,
        })
    }

    /// Finishes fan-outs a crash (or a queue outage) left incomplete, whose lease ran out:
    /// what makes a 202 hold without the client posting again. Runs on a schedule (the
    /// delivery function on AWS, the local runtime's own timer locally); one at a time,
    /// and stops taking new ones at `until`.
    pub async fn sweep(&self, until: std::time::Instant) -> Result<Swept, StoreError> {
        let now = crate::clock::now_ms();
        let mut swept = Swept::default();
        for (project, event_id) in self.events.abandoned(now, SWEEP_LIMIT).await? {
            if std::time::Instant::now() >= until {
                break;
            }
            let now = crate::clock::now_ms();
            // Another sweep, or a POST, may have taken it meanwhile.
            if !self
                .events
                .take_lease(&project, &event_id, now, now + LEASE)
                .await?
            {
                continue;
            }
            let Some(record) = self.events.get(&project, &event_id).await? else {
                continue;
            };
            match self.enqueue(&record, &Default::default(), now).await {
                Ok(()) => {
                    tracing::warn!(project_id = %project, event_id = %event_id, "finished an abandoned fan-out");
                    swept.finished += 1;
                }
                Err(e) => {
                    tracing::error!(project_id = %project, event_id = %event_id, error = %crate::error::chain(&e), "could not finish an abandoned fan-out");
                    swept.failed += 1;
                }
            }
        }
        Ok(swept)
    }

    /// Sends the deliveries of `record` that are not yet enqueued, and notes them, each
    /// with the version its webhook had at the fan-out where that is known (`versions`).
    async fn enqueue(
        &self,
        record: &EventRecord,
        versions: &std::collections::BTreeMap<String, u64>,
        now: Millis,
    ) -> Result<(), FanOutError> {
        let (delay, first_attempt_at, hold) = schedule(record.event.deliver_at, now);
        // The event's JSON once, not once per delivery.
        let event = serde_json::value::to_raw_value(&record.event).map_err(|e| {
            tracing::error!(error = %e, "an event does not serialise");
            FanOutError::Incomplete {
                unsent: record.deliveries.len(),
                total: record.deliveries.len(),
            }
        })?;
        let tasks: Vec<DeliveryTask<&RawValue>> = record
            .deliveries
            .iter()
            .filter(|(webhook_id, _)| !record.enqueued.contains(*webhook_id))
            .map(|(webhook_id, delivery_id)| DeliveryTask {
                v: TASK_VERSION,
                delivery_id: delivery_id.clone(),
                project_id: record.project_id.clone(),
                webhook_id: webhook_id.clone(),
                event_id: record.event.id.clone(),
                event: Some(&*event),
                first_attempt_at,
                deliver_at: hold,
                operational: record.operational,
                attempts_before: 0,
                skip: record.skipped.get(webhook_id).cloned(),
                webhook_version: versions.get(webhook_id).copied().unwrap_or(0),
            })
            .collect();
        let total = tasks.len();
        let (sent, unsent) = self.send(tasks, delay).await;
        let complete = unsent.is_empty();
        self.events
            .mark_enqueued(&record.project_id, &record.event.id, &sent, complete, now)
            .await?;
        if complete {
            Ok(())
        } else {
            Err(FanOutError::Incomplete {
                unsent: unsent.len(),
                total,
            })
        }
    }

    /// Sends tasks in concurrent batches, retrying rejected entries; returns the webhook
    /// ids sent and the tasks that could not be.
    pub async fn send<E: Serialize + Clone>(
        &self,
        tasks: Vec<DeliveryTask<E>>,
        delay_seconds: i32,
    ) -> (Vec<String>, Vec<DeliveryTask<E>>) {
        let mut pending = Vec::with_capacity(tasks.len());
        let mut unsendable = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task_message(&task, format!("m{i}"), delay_seconds) {
                Ok(message) => pending.push((task, message)),
                Err(e) => {
                    tracing::error!(error = %e, "a delivery task does not serialise");
                    unsendable.push(task);
                }
            }
        }
        let mut sent = Vec::with_capacity(pending.len());
        for round in 0..SEND_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
            let queue = &self.queue;
            let results: Vec<_> = futures_util::stream::iter(batches(pending))
                .map(|(tasks, messages)| async move {
                    let result = queue.send_batch(&messages).await;
                    (tasks, messages, result)
                })
                .buffer_unordered(CONCURRENT_BATCHES)
                .collect()
                .await;
            pending = Vec::new();
            for (tasks, messages, result) in results {
                let entries = tasks.into_iter().zip(messages);
                match result {
                    Ok(rejected) => {
                        for (task, message) in entries {
                            if rejected.contains(&message.id) {
                                pending.push((task, message));
                            } else {
                                sent.push(task.webhook_id);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::error::chain(&e), "a batch send failed; retrying its entries");
                        pending.extend(entries);
                    }
                }
            }
        }
        unsendable.extend(pending.into_iter().map(|(task, _)| task));
        (sent, unsendable)
    }
}

/// Entries split into the queue's batches, each as its tasks and their messages.
#[allow(clippy::type_complexity)]
fn batches<T>(entries: Vec<(T, OutgoingMessage)>) -> Vec<(Vec<T>, Vec<OutgoingMessage>)> {
    let mut out: Vec<(Vec<T>, Vec<OutgoingMessage>)> =
        Vec::with_capacity(entries.len().div_ceil(BATCH));
    for (task, message) in entries {
        match out.last_mut() {
            Some((tasks, messages)) if tasks.len() < BATCH => {
                tasks.push(task);
                messages.push(message);
            }
            _ => out.push((vec![task], vec![message])),
        }
    }
    out
}

/// The `webhook.disabled` operational event (SPEC §10) of a webhook just disabled, with
/// what its health said then.
pub fn disabled_event(
    webhook: &crate::model::Webhook,
    health: &crate::health::HealthRecord,
    now: Millis,
) -> Event {
    let reason = webhook.disabled_reason.map_or("manual", |r| r.as_str());
    let at = webhook.disabled_at.unwrap_or(now);
    let data = serde_json::json!({
        "webhook_id": webhook.id,
        "webhook_name": webhook.spec.name,
        "reason": reason,
        "failing_since": health.failing_since.map(crate::clock::to_rfc3339),
        "last_error": health.last_error,
        "last_status_code": health.last_status_code,
    });
    Event {
        // One report per disabling, however often it is attempted.
        id: format!("{}.disabled.{at}", webhook.id),
        event_type: "webhook.disabled".to_string(),
        timestamp: at,
        data: data.as_object().cloned().unwrap_or_default(),
        user: None,
        deliver_at: None,
        channel: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::InMemoryDeliveryQueue;
    use crate::store::memory::{InMemoryEventStore, InMemoryWebhookStore};
    use crate::store::{EventSummary, Page};

    /// An event store whose create is written and then answered "exists": what DynamoDB
    /// answers a conditional PutItem the SDK retries after a first try that timed out
    /// but landed.
    struct LandsThenRetried(InMemoryEventStore);

    #[async_trait::async_trait]
    impl EventStore for LandsThenRetried {
        async fn create(&self, record: &EventRecord) -> Result<bool, StoreError> {
            self.0.create(record).await?;
            Ok(false)
        }
        async fn get(&self, project: &str, id: &str) -> Result<Option<EventRecord>, StoreError> {
            self.0.get(project, id).await
        }
        async fn take_lease(
            &self,
            project: &str,
            id: &str,
            now: Millis,
            until: Millis,
        ) -> Result<bool, StoreError> {
            self.0.take_lease(project, id, now, until).await
        }
        async fn mark_enqueued(
            &self,
            project: &str,
            id: &str,
            webhook_ids: &[String],
            complete: bool,
            now: Millis,
        ) -> Result<(), StoreError> {
            self.0
                .mark_enqueued(project, id, webhook_ids, complete, now)
                .await
        }
        async fn list(
            &self,
            project: &str,
            event_type: Option<&str>,
            limit: usize,
            after: Option<&str>,
            now: Millis,
        ) -> Result<Page<EventSummary>, StoreError> {
            self.0.list(project, event_type, limit, after, now).await
        }
        async fn abandoned(
            &self,
            now: Millis,
            limit: usize,
        ) -> Result<Vec<(String, String)>, StoreError> {
            self.0.abandoned(now, limit).await
        }
    }

    /// Stores a webhook of project `acme` made from its JSON.
    async fn add_webhook(webhooks: &InMemoryWebhookStore, json: &str) {
        let spec = crate::model::WebhookSpec::from_create(
            crate::model::decode_json(json.as_bytes()).unwrap(),
        )
        .unwrap();
        webhooks
            .create(&Webhook::new("acme", spec, 0))
            .await
            .unwrap();
    }

    fn fan_out(
        webhooks: Arc<InMemoryWebhookStore>,
        events: Arc<dyn EventStore>,
        queue: Arc<InMemoryDeliveryQueue>,
    ) -> FanOut {
        FanOut {
            webhooks,
            events,
            queue,
            retention: crate::clock::DAY,
            conditions: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_create_retried_after_it_landed_fans_out_as_its_creator() {
        let webhooks = Arc::new(InMemoryWebhookStore::default());
        add_webhook(
            &webhooks,
            r#"{"name": "n", "url": "https://example.com/", "events": ["*"]}"#,
        )
        .await;
        let events = Arc::new(LandsThenRetried(InMemoryEventStore::default()));
        let queue = Arc::new(InMemoryDeliveryQueue::default());
        let fanout = fan_out(webhooks, events.clone(), queue.clone());
        let now = crate::clock::now_ms();
        let event = |id: &str| {
            Event::from_input(
                crate::model::decode_json(format!(r#"{{"id": "{id}", "type": "a"}}"#).as_bytes())
                    .unwrap(),
                now,
                || unreachable!(),
            )
            .unwrap()
        };
        // Before, the record's lease (its own) made this a 503 "being enqueued" until
        // the sweep.
        let submitted = fanout
            .submit("acme", event("ev-1"), false, now)
            .await
            .unwrap();
        assert_eq!(
            (submitted.matched, submitted.duplicate),
            (1, false),
            "{submitted:?}"
        );
        assert_eq!(queue.recorded().sent.len(), 1);
        assert!(
            events
                .0
                .get("acme", "ev-1")
                .await
                .unwrap()
                .unwrap()
                .complete
        );
        // Another request's record is still a duplicate, and nothing is sent again.
        let again = fanout
            .submit("acme", event("ev-1"), false, now)
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(queue.recorded().sent.len(), 1);
    }

    /// Filters that fail to evaluate are each logged skipped with their error, but an
    /// event's record keeps a bounded amount of such errors: a project's 1,000 webhooks
    /// with failing filters would otherwise pass the record's 400 KB and make every
    /// event of that type a 5xx.
    #[tokio::test]
    async fn the_errors_of_failing_filters_are_kept_to_a_bound() {
        let webhooks = Arc::new(InMemoryWebhookStore::default());
        for i in 0..600 {
            add_webhook(
                &webhooks,
                &format!(
                    r#"{{"name": "n", "url": "https://example.com/", "events": ["*"], "filter": "data.missing_{i} contains 5"}}"#
                ),
            )
            .await;
        }
        let events = Arc::new(InMemoryEventStore::default());
        let fanout = fan_out(
            webhooks,
            events.clone(),
            Arc::new(InMemoryDeliveryQueue::default()),
        );
        let now = crate::clock::now_ms();
        let event = Event::from_input(
            crate::model::decode_json(br#"{"id": "ev-1", "type": "a"}"#).unwrap(),
            now,
            || unreachable!(),
        )
        .unwrap();
        let submitted = fanout.submit("acme", event, false, now).await.unwrap();
        assert_eq!(submitted.matched, 600);
        let record = events.get("acme", "ev-1").await.unwrap().unwrap();
        assert_eq!(record.skipped.len(), 600, "every one logged skipped");
        let (kept, left_out): (Vec<&String>, Vec<&String>) = record
            .skipped
            .values()
            .partition(|r| r.as_str() != SKIP_REASON_LEFT_OUT);
        assert!(
            kept.iter().all(|r| r.contains("missing_")),
            "{:?}",
            kept.first()
        );
        let kept_bytes: usize = kept.iter().map(|r| r.len()).sum();
        assert!(kept_bytes <= MAX_SKIP_REASONS_BYTES, "{kept_bytes}");
        assert!(kept_bytes > MAX_SKIP_REASONS_BYTES / 2, "{kept_bytes}");
        assert!(!left_out.is_empty());
    }

    #[test]
    fn scheduling_uses_sqs_delay_up_to_15_minutes_then_holds() {
        let now = 1_000_000;
        assert_eq!(schedule(None, now), (0, now, None));
        assert_eq!(schedule(Some(now - 5), now), (0, now, None));
        assert_eq!(schedule(Some(now + 1_500), now), (2, now + 1_500, None));
        assert_eq!(
            schedule(Some(now + 900_000), now),
            (900, now + 900_000, None)
        );
        let later = now + 2 * 3_600_000;
        assert_eq!(schedule(Some(later), now), (900, later, Some(later)));
    }

    #[test]
    fn a_task_with_the_event_serialised_once_is_the_same_message() {
        let input = serde_json::json!({"id": "ev_1", "type": "order.placed",
            "timestamp": "2026-11-22T07:00:00Z", "channel": "store-1",
            "data": {"total": 120, "items": [{"sku": "A-1"}]},
            "user": {"id": "u1", "locale": "ko", "attributes": {"tier": "gold"}}});
        let event = Event::from_input(
            crate::model::decode_json(input.to_string().as_bytes()).unwrap(),
            0,
            || unreachable!(),
        )
        .unwrap();
        let task = DeliveryTask {
            v: TASK_VERSION,
            delivery_id: "msg_1".into(),
            project_id: "acme".into(),
            webhook_id: "wh_1".into(),
            event_id: event.id.clone(),
            event: Some(event.clone()),
            first_attempt_at: 5,
            deliver_at: Some(7),
            operational: false,
            attempts_before: 0,
            skip: Some("filter: why".into()),
            webhook_version: 4,
        };
        let raw = serde_json::value::to_raw_value(&event).unwrap();
        let once = DeliveryTask {
            event: Some(&*raw),
            v: task.v,
            delivery_id: task.delivery_id.clone(),
            project_id: task.project_id.clone(),
            webhook_id: task.webhook_id.clone(),
            event_id: task.event_id.clone(),
            first_attempt_at: task.first_attempt_at,
            deliver_at: task.deliver_at,
            operational: task.operational,
            attempts_before: task.attempts_before,
            skip: task.skip.clone(),
            webhook_version: task.webhook_version,
        };
        let a = task_message(&task, "m0".into(), 3).unwrap();
        let b = task_message(&once, "m0".into(), 3).unwrap();
        assert_eq!(a.body, b.body);
        let back: DeliveryTask = serde_json::from_str(&b.body).unwrap();
        assert_eq!(back, task);
    }
}
