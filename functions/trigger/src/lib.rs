//! Event intake: `POST events` fans an event out to the project's subscribed webhooks
//! (one delivery task each on the queue), `GET events/{id}` reports how its deliveries
//! went, and `POST webhooks/{id}/recover` re-sends a webhook's failed deliveries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use hookline_core::FieldError;
use hookline_core::api::{
    self, Access, ApiError, ApiPath, Authenticator, MAX_REQUEST_BYTES, PageRequest, json_body,
};
use hookline_core::clock::{self, DAY, HOUR, Millis};
use hookline_core::fanout::{FanOut, FanOutError, is_operational};
use hookline_core::ids;
use hookline_core::model::{
    Delivery, DeliveryStatus, DeliveryTask, Event, EventInput, TASK_VERSION, Webhook,
};
use hookline_core::store::{AttemptLog, encode_cursor};

#[derive(Clone)]
pub struct AppState {
    pub fanout: FanOut,
    pub attempts: Arc<dyn AttemptLog>,
    pub auth: Authenticator,
}

impl AppState {
    /// The state over the deployment's tables and queue (what `main` and the local runtime use).
    pub async fn from_config(
        config: &hookline_core::Config,
        aws: &aws_config::SdkConfig,
    ) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
        use hookline_core::queue::SqsDeliveryQueue;
        use hookline_core::store::dynamo::{
            DynamoApiKeyStore, DynamoAttemptLog, DynamoEventStore, DynamoWebhookStore,
        };
        let dynamo = hookline_core::aws::dynamo(aws, hookline_core::config::Waits::API);
        let sqs = hookline_core::aws::sqs(aws, hookline_core::config::Waits::API);
        let r = &config.resources;
        Ok(AppState {
            fanout: FanOut {
                webhooks: Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table)),
                events: Arc::new(DynamoEventStore::new(dynamo.clone(), &r.events_table)),
                queue: Arc::new(SqsDeliveryQueue::new(
                    sqs,
                    &r.delivery_queue_url,
                    &r.dead_letter_queue_url,
                )),
                retention: config.attempt_retention,
                conditions: Default::default(),
            },
            attempts: Arc::new(DynamoAttemptLog::new(dynamo.clone(), &r.attempts_table)),
            auth: Authenticator::new(
                config.admin_key(aws).await?,
                Arc::new(DynamoApiKeyStore::new(dynamo, &r.api_keys_table)),
            ),
        })
    }
}

/// The trigger routes of SPEC §6: the one list the router is built from, so a test can
/// hold it against the OpenAPI document.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/v1/health", get(api::health)),
        (
            "/v1/projects/{project}/events",
            post(post_event).get(list_events),
        ),
        ("/v1/projects/{project}/events/{id}", get(get_event)),
        (
            "/v1/projects/{project}/webhooks/{id}/recover",
            post(recover),
        ),
        (
            "/v1/projects/{project}/webhooks/{id}/deliveries",
            get(list_deliveries),
        ),
        (
            "/v1/projects/{project}/webhooks/{id}/deliveries/{delivery_id}/resend",
            post(resend),
        ),
    ]
}

pub fn router(state: AppState) -> Router {
    api::router(routes())
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

fn fanout_error(e: FanOutError) -> ApiError {
    match e {
        FanOutError::Incomplete { .. } => ApiError::unavailable(e.to_string()),
        FanOutError::Busy { retry_after } => ApiError::Unavailable {
            message: e.to_string(),
            retry_after: u64::try_from(
                hookline_core::retry::round_up_to_seconds(retry_after) / 1000,
            )
            .unwrap_or(1)
            .max(1),
        },
        FanOutError::Queue(q) => {
            tracing::error!(error = %hookline_core::error::chain(&q), "the delivery queue failed");
            ApiError::unavailable(
                "the delivery queue is unavailable; send the event again with the same id",
            )
        }
        FanOutError::Store(s) => ApiError::from(s),
    }
}

#[derive(Serialize)]
struct Accepted {
    event_id: String,
    matched: usize,
    duplicate: bool,
    /// Only on a duplicate that says something else than the event its id was accepted
    /// for (a reused id): `true`, and it was not delivered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    differs: bool,
}

async fn post_event(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let input: EventInput = json_body(body)?;
    let now = clock::now_ms();
    let event = Event::from_input(input, now, || ids::new_id("evt", now))?;
    if is_operational(&event.event_type) {
        return Err(ApiError::Invalid(FieldError::new(
            "reserved_event_type",
            "type",
            "event types starting with `delivery.` or `webhook.` are Hookline's own",
        )));
    }
    let submitted = state
        .fanout
        .submit(&project, event, false, now)
        .await
        .map_err(fanout_error)?;
    tracing::info!(event_id = %submitted.event_id, matched = submitted.matched, duplicate = submitted.duplicate, "event accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            event_id: submitted.event_id,
            matched: submitted.matched,
            duplicate: submitted.duplicate,
            differs: submitted.differs,
        }),
    )
        .into_response())
}

#[derive(Serialize)]
struct EventStatus {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(with = "clock::rfc3339")]
    timestamp: Millis,
    deliveries: Vec<DeliveryStatusView>,
}

#[derive(Serialize)]
struct DeliveryStatusView {
    webhook_id: String,
    delivery_id: String,
    /// The latest attempt's status, or `pending` before the first attempt.
    status: &'static str,
    attempts: u32,
    last_status_code: Option<u16>,
}

async fn get_event(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let record = state
        .fanout
        .events
        .get(&project, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // The record lists its deliveries: their records are read by key, not searched for.
    let keys: Vec<(String, String)> = record
        .deliveries
        .iter()
        .map(|(w, d)| (w.clone(), d.clone()))
        .collect();
    let found: HashMap<String, Delivery> = state
        .attempts
        .get_deliveries(&project, &keys, clock::now_ms())
        .await?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    let deliveries = record
        .deliveries
        .iter()
        .map(|(webhook_id, delivery_id)| {
            let delivery = found.get(delivery_id);
            DeliveryStatusView {
                webhook_id: webhook_id.clone(),
                delivery_id: delivery_id.clone(),
                status: delivery.map_or("pending", |d| d.status.as_str()),
                attempts: delivery.map_or(0, |d| d.attempts),
                last_status_code: delivery.and_then(|d| d.last_status_code),
            }
        })
        .collect();
    Ok(Json(EventStatus {
        id: record.event.id,
        event_type: record.event.event_type,
        timestamp: record.event.timestamp,
        deliveries,
    })
    .into_response())
}

#[derive(Serialize)]
struct ListPage<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

/// `GET events?type&limit&cursor`: the project's events, newest first.
async fn list_events(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let PageRequest {
        limit,
        after,
        query: q,
    } = api::page_request(query.as_deref(), &project, "events", &["type"])?;
    let event_type = q.get("type").map(String::as_str);
    if let Some(t) = event_type {
        hookline_core::model::event::check_type_filter(t)
            .map_err(|e| ApiError::bad_query("type", e.message))?;
    }
    let page = state
        .fanout
        .events
        .list(
            &project,
            event_type,
            limit,
            after.as_deref(),
            clock::now_ms(),
        )
        .await?;
    Ok(Json(ListPage {
        data: page.items,
        next_cursor: page.next.map(|k| encode_cursor(&project, "events", &k)),
    })
    .into_response())
}

/// The webhook of a route, or 404 (also for an id that cannot be one).
async fn existing_webhook(state: &AppState, project: &str, id: &str) -> Result<Webhook, ApiError> {
    if !ids::is_id("wh", id) {
        return Err(ApiError::NotFound);
    }
    state
        .fanout
        .webhooks
        .get(project, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET webhooks/{id}/deliveries?status&limit&cursor`: newest first.
async fn list_deliveries(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let scope = format!("deliveries:{id}");
    let PageRequest {
        limit,
        after,
        query: q,
    } = api::page_request(query.as_deref(), &project, &scope, &["status"])?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::bad_query(
                "status",
                "status is one of pending, retrying, delivered, failed, dead_lettered, skipped",
            )
        })?),
    };
    existing_webhook(&state, &project, &id).await?;
    let page = state
        .attempts
        .deliveries(
            &project,
            &id,
            status,
            limit,
            after.as_deref(),
            clock::now_ms(),
        )
        .await?;
    Ok(Json(ListPage {
        data: page.items,
        next_cursor: page.next.map(|k| encode_cursor(&project, &scope, &k)),
    })
    .into_response())
}

#[derive(Serialize)]
struct Resent {
    delivery_id: String,
}

/// `POST webhooks/{id}/deliveries/{delivery_id}/resend`: that delivery, again, now —
/// the same `webhook-id`, a fresh signature, its attempts numbered on from where they
/// were, with a fresh retry budget.
async fn resend(
    State(state): State<AppState>,
    ApiPath((project, id, delivery_id)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let webhook = existing_webhook(&state, &project, &id).await?;
    if !ids::is_id("msg", &delivery_id) {
        return Err(ApiError::NotFound);
    }
    let now = clock::now_ms();
    let delivery = state
        .attempts
        .get_deliveries(&project, &[(id.clone(), delivery_id.clone())], now)
        .await?
        .pop()
        .ok_or(ApiError::NotFound)?;
    if let Some(message) = still_attempted(&delivery, now) {
        return Err(ApiError::NotNow {
            code: "delivery_in_progress",
            message,
        });
    }
    let event = state
        .fanout
        .events
        .get(&project, &delivery.event_id)
        .await?
        .ok_or_else(|| ApiError::NotNow {
            code: "event_expired",
            message: "the delivery's event is no longer stored; it cannot be resent".into(),
        })?
        .event;
    let task = task_again(&delivery, event, webhook.version, now);
    // Pending first (were it written after the send, it could land after the attempt),
    // and only if the delivery is still as read: of two resends racing, one goes out.
    if !state
        .attempts
        .reopen(&delivery, now, now + state.fanout.retention)
        .await?
    {
        return Err(ApiError::NotNow {
            code: "delivery_in_progress",
            message: "the delivery changed while this resend was made (an attempt or \
                      another resend came first); read it again"
                .into(),
        });
    }
    let (sent, _) = state.fanout.send(vec![task], 0).await;
    if sent.is_empty() {
        if let Err(e) = state.attempts.restore(&delivery, now).await {
            tracing::warn!(error = %hookline_core::error::chain(&e), delivery_id = %delivery_id, "a resend that was not queued stays shown pending");
        }
        return Err(ApiError::unavailable(
            "the delivery queue is unavailable; resend it again",
        ));
    }
    tracing::info!(webhook_id = %id, delivery_id = %delivery_id, "delivery resent");
    Ok((StatusCode::ACCEPTED, Json(Resent { delivery_id })).into_response())
}

/// How long past its due attempt a delivery is taken as lost (its message crashed the
/// delivery function until SQS's redrive moved it aside, or a resend's process died
/// before it was queued), and may be resent.
const OVERDUE: Millis = HOUR;
/// When a `pending` record without a due time (written before records had one) is
/// taken as lost: a scheduled delivery is held up to 7 days (SPEC §4).
const PENDING_AT_MOST: Millis = 8 * DAY;

/// Why `delivery` cannot be resent at `now`, if it cannot: it is still being attempted
/// (its attempt is queued or scheduled, or its retries are), and a resend would send it
/// twice over.
fn still_attempted(delivery: &Delivery, now: Millis) -> Option<String> {
    let (state, due) = match delivery.status {
        DeliveryStatus::Pending => (
            "pending",
            delivery
                .next_attempt_at
                .unwrap_or(delivery.updated_at + PENDING_AT_MOST - OVERDUE),
        ),
        DeliveryStatus::Retrying => (
            "retrying",
            delivery.next_attempt_at.unwrap_or(delivery.updated_at),
        ),
        DeliveryStatus::Delivered
        | DeliveryStatus::Failed
        | DeliveryStatus::DeadLettered
        | DeliveryStatus::Skipped => return None,
    };
    (now < due + OVERDUE).then(|| {
        format!(
            "the delivery is {state}: its next attempt is due at {}; resend it once it is \
             delivered, failed, dead-lettered or skipped (a resend now would send it twice)",
            clock::to_rfc3339(due)
        )
    })
}

/// A delivery sent once more: its id and event, its attempts counted on, and a fresh
/// retry budget from now, as the webhook is at `webhook_version` or later.
fn task_again(
    delivery: &Delivery,
    event: Event,
    webhook_version: u64,
    now: Millis,
) -> DeliveryTask {
    DeliveryTask {
        v: TASK_VERSION,
        delivery_id: delivery.id.clone(),
        project_id: delivery.project_id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        event_id: delivery.event_id.clone(),
        event: Some(event),
        first_attempt_at: now,
        deliver_at: None,
        operational: false,
        attempts_before: delivery.attempts,
        skip: None,
        webhook_version,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverRequest {
    since: Option<String>,
}

#[derive(Serialize)]
struct Requeued {
    requeued: usize,
}

async fn recover(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let request: RecoverRequest = json_body(body)?;
    let since = request
        .since
        .ok_or_else(|| FieldError::new("missing_field", "since", "is required"))?;
    let since = clock::parse_rfc3339(&since)
        .ok_or_else(|| FieldError::invalid("since", "must be an RFC 3339 timestamp"))?;
    let webhook = existing_webhook(&state, &project, &id).await?;
    let now = clock::now_ms();
    // The deliveries whose latest attempt since then failed or was dead-lettered. A
    // delivery is attempted for at most a day after it is due, so those created more
    // than a day before `since` are past.
    let mut candidates = Vec::new();
    let mut cursor: Option<String> = None;
    'pages: loop {
        let page = state
            .attempts
            .deliveries(&project, &id, None, 100, cursor.as_deref(), now)
            .await?;
        for delivery in page.items {
            // Newest first: once a delivery was made more than a day before `since`
            // (its id says when), so were all that follow.
            if ids::time_of("msg", &delivery.id).is_some_and(|made| made < since - DAY) {
                break 'pages;
            }
            if delivery.updated_at >= since
                && matches!(
                    delivery.status,
                    DeliveryStatus::Failed | DeliveryStatus::DeadLettered
                )
            {
                candidates.push(delivery);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut events: BTreeMap<String, Option<Event>> = BTreeMap::new();
    let mut tasks = Vec::new();
    let mut reopened = HashMap::new();
    let mut failed = None;
    // Once one is taken, a store error stops the loop instead of returning at once: what
    // is taken is sent (so nothing is left shown pending unsent) before the 503, and a
    // recover again finds the rest as they were.
    for delivery in candidates {
        if !events.contains_key(&delivery.event_id) {
            match state.fanout.events.get(&project, &delivery.event_id).await {
                Ok(record) => {
                    events.insert(delivery.event_id.clone(), record.map(|r| r.event));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let Some(Some(event)) = events.get(&delivery.event_id) else {
            tracing::warn!(event_id = %delivery.event_id, "cannot recover a delivery whose event has expired");
            continue;
        };
        // Pending first, and only if still as read, as a resend does: a delivery that a
        // recover or resend racing this one took is theirs to send.
        match state
            .attempts
            .reopen(&delivery, now, now + state.fanout.retention)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        tasks.push(task_again(&delivery, event.clone(), webhook.version, now));
        reopened.insert(delivery.id.clone(), delivery);
    }
    let total = tasks.len();
    let (sent, unsent) = state.fanout.send(tasks, 0).await;
    for task in &unsent {
        if let Some(seen) = reopened.get(&task.delivery_id)
            && let Err(e) = state.attempts.restore(seen, now).await
        {
            tracing::warn!(error = %hookline_core::error::chain(&e), delivery_id = %task.delivery_id, "a recovered delivery that was not queued stays shown pending");
        }
    }
    if !unsent.is_empty() {
        return Err(fanout_error(FanOutError::Incomplete {
            unsent: unsent.len(),
            total,
        }));
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    tracing::info!(webhook_id = %id, requeued = sent.len(), "deliveries recovered");
    Ok((
        StatusCode::ACCEPTED,
        Json(Requeued {
            requeued: sent.len(),
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests;
