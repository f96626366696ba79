//! Event intake: `POST events` fans an event out to the project's subscribed webhooks
//! (one delivery task each on the queue), `GET events/{id}` reports how its deliveries
//! went, and `POST webhooks/{id}/recover` re-sends a webhook's failed deliveries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use hookline_core::FieldError;
use hookline_core::api::{self, ApiError, ApiPath, Authenticator, MAX_REQUEST_BYTES, json_body};
use hookline_core::clock::{self, Millis};
use hookline_core::fanout::{FanOut, FanOutError, is_operational};
use hookline_core::ids;
use hookline_core::model::{AttemptStatus, DeliveryTask, Event, EventInput, TASK_VERSION};
use hookline_core::store::AttemptLog;

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
        ("/v1/projects/{project}/events", post(post_event)),
        ("/v1/projects/{project}/events/{id}", get(get_event)),
        (
            "/v1/projects/{project}/webhooks/{id}/recover",
            post(recover),
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
}

async fn post_event(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state.auth.for_project(&headers, &project).await?;
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
    deliveries: Vec<DeliveryStatus>,
}

#[derive(Serialize)]
struct DeliveryStatus {
    webhook_id: String,
    delivery_id: String,
    /// The latest attempt's status, or `pending` before the first attempt.
    status: &'static str,
    attempts: usize,
    last_status_code: Option<u16>,
}

async fn get_event(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.auth.for_project(&headers, &project).await?;
    let record = state
        .fanout
        .events
        .get(&project, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let attempts = state
        .attempts
        .for_event(&project, &id, clock::now_ms())
        .await?;
    let deliveries = record
        .deliveries
        .iter()
        .map(|(webhook_id, delivery_id)| {
            let mine: Vec<_> = attempts
                .iter()
                .filter(|a| &a.delivery_id == delivery_id)
                .collect();
            let last = mine.last();
            DeliveryStatus {
                webhook_id: webhook_id.clone(),
                delivery_id: delivery_id.clone(),
                status: last.map_or("pending", |a| a.status.as_str()),
                attempts: mine
                    .iter()
                    .filter(|a| a.status != AttemptStatus::Skipped)
                    .count(),
                last_status_code: last.and_then(|a| a.status_code),
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
    state.auth.for_project(&headers, &project).await?;
    let request: RecoverRequest = json_body(body)?;
    let since = request
        .since
        .ok_or_else(|| FieldError::new("missing_field", "since", "is required"))?;
    let since = clock::parse_rfc3339(&since)
        .ok_or_else(|| FieldError::invalid("since", "must be an RFC 3339 timestamp"))?;
    if !ids::is_id("wh", &id) || state.fanout.webhooks.get(&project, &id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let now = clock::now_ms();
    // The newest attempt of each delivery since `since` says how it ended.
    let mut latest: HashMap<String, (String, AttemptStatus)> = HashMap::new();
    let mut cursor: Option<String> = None;
    'pages: loop {
        let page = state
            .attempts
            .for_webhook(&project, &id, None, 100, cursor.as_deref(), now)
            .await?;
        for attempt in page.items {
            if attempt.created_at < since {
                break 'pages;
            }
            latest
                .entry(attempt.delivery_id.clone())
                .or_insert((attempt.event_id.clone(), attempt.status));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut events: BTreeMap<String, Option<Event>> = BTreeMap::new();
    let mut tasks = Vec::new();
    for (delivery_id, (event_id, status)) in latest {
        if !matches!(status, AttemptStatus::Failed | AttemptStatus::DeadLettered) {
            continue;
        }
        if !events.contains_key(&event_id) {
            let record = state.fanout.events.get(&project, &event_id).await?;
            events.insert(event_id.clone(), record.map(|r| r.event));
        }
        let Some(Some(event)) = events.get(&event_id) else {
            tracing::warn!(event_id = %event_id, "cannot recover a delivery whose event has expired");
            continue;
        };
        tasks.push(DeliveryTask {
            v: TASK_VERSION,
            delivery_id,
            project_id: project.clone(),
            webhook_id: id.clone(),
            event_id,
            event: Some(event.clone()),
            first_attempt_at: now,
            deliver_at: None,
            operational: false,
        });
    }
    let total = tasks.len();
    let (sent, unsent) = state.fanout.send(tasks, 0).await;
    if !unsent.is_empty() {
        return Err(fanout_error(FanOutError::Incomplete {
            unsent: unsent.len(),
            total,
        }));
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
