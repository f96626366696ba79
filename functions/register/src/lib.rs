//! The registration API: webhooks of a project, their secrets, test sends, previews,
//! attempt logs, and the project API keys. One axum `Router`, served by `lambda_http`
//! on Lambda and as-is by the local runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use hookline_core::api::{
    self, Access, ApiError, ApiPath, Authenticator, Caller, MAX_REQUEST_BYTES, PageRequest,
    check_project_id, json_body, new_api_key, optional_json_body,
};
use hookline_core::clock::{self, DAY, Millis};
use hookline_core::fanout::FanOut;
use hookline_core::guard::{self, TargetPolicy};
use hookline_core::health::HealthRecord;
use hookline_core::ids;
use hookline_core::model::{
    AttemptStatus, Auth, Event, EventInput, User, Webhook, WebhookInput, WebhookSpec,
    check_signing_secret, shown_header_value,
};
use hookline_core::sender::{Sender, sign_request};
use hookline_core::signing;
use hookline_core::store::{ApiKeyStore, AttemptLog, HealthStore, WebhookStore, encode_cursor};
use hookline_core::template::{
    CompiledWebhook, RenderContext, RenderError, RenderedRequest, Subject,
};

pub mod console;

/// How long a rotated-out signing secret keeps signing.
pub const ROTATION_OVERLAP: Millis = DAY;

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    pub webhooks: Arc<dyn WebhookStore>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub attempts: Arc<dyn AttemptLog>,
    pub health: Arc<dyn HealthStore>,
    /// Emits `webhook.disabled` when a PATCH disables a webhook.
    pub reports: FanOut,
    pub auth: Authenticator,
    pub sender: Sender,
}

impl AppState {
    /// The state over the deployment's DynamoDB tables (what `main` and the local runtime use).
    pub async fn from_config(
        config: &hookline_core::Config,
        aws: &aws_config::SdkConfig,
    ) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
        use hookline_core::queue::SqsDeliveryQueue;
        use hookline_core::store::dynamo::{
            DynamoApiKeyStore, DynamoAttemptLog, DynamoEventStore, DynamoHealthStore,
            DynamoWebhookStore,
        };
        let waits = hookline_core::config::Waits::API;
        let dynamo = hookline_core::aws::dynamo(aws, waits);
        let r = &config.resources;
        let keys = Arc::new(DynamoApiKeyStore::new(dynamo.clone(), &r.api_keys_table));
        let webhooks: Arc<dyn WebhookStore> =
            Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table));
        Ok(AppState {
            webhooks: webhooks.clone(),
            keys: keys.clone(),
            attempts: Arc::new(DynamoAttemptLog::new(dynamo.clone(), &r.attempts_table)),
            health: Arc::new(DynamoHealthStore::new(dynamo.clone(), &r.attempts_table)),
            reports: FanOut {
                webhooks,
                events: Arc::new(DynamoEventStore::new(dynamo, &r.events_table)),
                queue: Arc::new(SqsDeliveryQueue::new(
                    hookline_core::aws::sqs(aws, waits),
                    &r.delivery_queue_url,
                    &r.dead_letter_queue_url,
                )),
                retention: config.attempt_retention,
                conditions: Default::default(),
            },
            auth: Authenticator::new(config.admin_key(aws).await?, keys),
            sender: Sender::new(config.targets)?,
        })
    }

    fn policy(&self) -> TargetPolicy {
        self.sender.policy()
    }
}

/// The OpenAPI document of both API functions (`infra/openapi.yaml`, as JSON; see build.rs).
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The registration routes of SPEC §6, and `GET /v1/openapi.json`: the one list the
/// router is built from, so a test can hold it against the OpenAPI document.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(index)),
        ("/v1", get(index)),
        ("/v1/health", get(api::health)),
        ("/v1/openapi.json", get(openapi)),
        (
            "/v1/projects/{project}/webhooks",
            post(create_webhook).get(list_webhooks),
        ),
        (
            "/v1/projects/{project}/webhooks/{id}",
            get(get_webhook).patch(patch_webhook).delete(delete_webhook),
        ),
        ("/v1/projects/{project}/webhooks/{id}/rotate", post(rotate)),
        ("/v1/projects/{project}/webhooks/{id}/test", post(test_send)),
        (
            "/v1/projects/{project}/webhooks/{id}/preview",
            post(preview),
        ),
        (
            "/v1/projects/{project}/webhooks/{id}/attempts",
            get(list_attempts),
        ),
        (
            "/v1/projects/{project}/keys",
            post(create_key).get(list_keys),
        ),
        ("/v1/projects/{project}/keys/{id}", delete(delete_key)),
        ("/v1/projects/{project}/portal", post(create_portal_link)),
        ("/v1/portal/session", get(session)),
    ]
}

pub fn router(state: AppState) -> Router {
    api::router(routes().into_iter().chain(console::routes()).collect())
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// `GET /` and `GET /v1`: where to start, for a person or a client that found the host.
async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "Hookline",
        "version": env!("CARGO_PKG_VERSION"),
        "openapi": "/v1/openapi.json",
        "health": "/v1/health",
        "console": "/console",
        "api": "/v1/projects/{project}/…  (Authorization: Bearer <api key>)",
    }))
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
        .into_response()
}

async fn load(state: &AppState, project: &str, id: &str) -> Result<Webhook, ApiError> {
    if !ids::is_id("wh", id) {
        return Err(ApiError::NotFound);
    }
    state
        .webhooks
        .get(project, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Parses the templates and checks where the webhook points, as far as can be known
/// before an event: the URL rendered for a sample event must be an allowed target.
fn check_spec(
    spec: &WebhookSpec,
    policy: TargetPolicy,
    project: &str,
) -> Result<CompiledWebhook, ApiError> {
    let compiled = CompiledWebhook::compile(spec)?;
    let sample = sample_event(spec, clock::now_ms());
    let subject = Subject {
        project_id: project,
        webhook_id: "wh_sample",
        webhook_name: &spec.name,
    };
    let mut probes = vec![(None, sample.clone())];
    for tag in spec.locales.keys() {
        let mut localized = sample.clone();
        if let Some(user) = localized.user.as_mut() {
            user.locale = Some(tag.clone());
        }
        probes.push((Some(tag.clone()), localized));
    }
    for (tag, event) in probes {
        let rendered = match compiled.render(&RenderContext::new(&event, subject)) {
            Ok(rendered) => rendered,
            // Aborting is a template's right; its URL is checked at each send anyway.
            Err(RenderError::Aborted { .. }) => continue,
            Err(e) => return Err(render_error(e)),
        };
        if let Err(e) = guard::check_url(&rendered.url, policy) {
            let field = match tag {
                Some(tag) if spec.locales.get(&tag).is_some_and(|v| v.url.is_some()) => {
                    format!("locales.{tag}.url")
                }
                _ => "url".to_string(),
            };
            return Err(ApiError::Invalid(hookline_core::FieldError::new(
                "forbidden_target",
                field,
                e.to_string(),
            )));
        }
    }
    Ok(compiled)
}

fn render_error(e: RenderError) -> ApiError {
    ApiError::Invalid(hookline_core::FieldError::new(
        "render_failed",
        e.field(),
        e.to_string(),
    ))
}

/// The built-in event for previews and test sends without one.
pub fn sample_event(spec: &WebhookSpec, now: Millis) -> Event {
    let event_type = spec
        .events
        .iter()
        .find(|e| *e != "*")
        .cloned()
        .unwrap_or_else(|| "sample.event".to_string());
    let mut attributes = serde_json::Map::new();
    attributes.insert("email".into(), "user@example.com".into());
    attributes.insert("name".into(), "Sample User".into());
    let data = serde_json::json!({"id": "obj_sample", "amount": 1000, "currency": "USD"});
    Event {
        id: "evt_sample".to_string(),
        event_type,
        timestamp: now,
        data: data.as_object().cloned().unwrap_or_default(),
        user: Some(User {
            id: Some("user_sample".to_string()),
            locale: spec.default_locale.clone(),
            attributes,
        }),
        deliver_at: None,
        channel: spec.channels.first().cloned(),
    }
}

async fn create_webhook(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let input: WebhookInput = json_body(body)?;
    let secret = input.given_secret()?;
    let spec = WebhookSpec::from_create(input)?;
    check_spec(&spec, state.policy(), &project)?;
    let mut webhook = Webhook::new(&project, spec, clock::now_ms());
    if let Some(secret) = secret {
        webhook.signing.current = secret;
    }
    state.webhooks.create(&webhook).await?;
    tracing::info!(webhook_id = %webhook.id, project_id = %webhook.project_id, "webhook created");
    Ok((StatusCode::CREATED, Json(webhook.view(true))).into_response())
}

#[derive(Serialize)]
struct ListPage<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

async fn list_webhooks(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let PageRequest { limit, after, .. } =
        api::page_request(query.as_deref(), &project, "webhooks", &[])?;
    let page = state
        .webhooks
        .list(&project, limit, after.as_deref())
        .await?;
    // One batch read for the page's health, not one per webhook.
    let ids: Vec<String> = page.items.iter().map(|w| w.id.clone()).collect();
    let health = state.health.get(&project, &ids).await?;
    let now = clock::now_ms();
    let mut data: Vec<hookline_core::model::WebhookView> = Vec::with_capacity(page.items.len());
    let mut next = page.next;
    let mut weight = 0;
    for w in &page.items {
        let view = with_health(w.view(false), health.get(&w.id), now);
        weight += answer_weight(&view);
        if weight > MAX_PAGE_WEIGHT
            && let Some(last) = data.last()
        {
            // The next page goes on after the last webhook this one holds.
            next = Some(last.id.clone());
            break;
        }
        data.push(view);
    }
    Ok(Json(ListPage {
        data,
        next_cursor: next.map(|k| encode_cursor(&project, "webhooks", &k)),
    })
    .into_response())
}

/// What the webhooks of one page may weigh in Lambda's answer. Lambda answers API
/// Gateway with at most 6 MB, the body a JSON string inside it (each quote and backslash
/// escaped once more), and a webhook may be 256 KiB: a page of 100 large ones would pass
/// it, and the list would be a 500 (and the console's list with it). A page stops
/// before the webhook that would pass this (it holds at least one), and its cursor goes
/// on after the last it holds.
const MAX_PAGE_WEIGHT: usize = 5 * 1024 * 1024;

/// The bytes `value` takes in Lambda's answer: its JSON, each `"` and `\` escaped.
fn answer_weight(value: &impl Serialize) -> usize {
    struct Weigh(usize);
    impl std::io::Write for Weigh {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let escaped = buf.iter().filter(|b| matches!(b, b'"' | b'\\')).count();
            self.0 += buf.len() + escaped;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut weigh = Weigh(0);
    // A view that does not serialise here fails the answer itself, with its own error.
    let _ = serde_json::to_writer(&mut weigh, value);
    weigh.0
}

async fn get_webhook(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let webhook = load(&state, &project, &id).await?;
    let health = state
        .health
        .get(&project, std::slice::from_ref(&webhook.id))
        .await?;
    Ok(Json(with_health(
        webhook.view(false),
        health.get(&webhook.id),
        clock::now_ms(),
    ))
    .into_response())
}

fn with_health(
    mut view: hookline_core::model::WebhookView,
    record: Option<&HealthRecord>,
    now: Millis,
) -> hookline_core::model::WebhookView {
    if let Some(record) = record {
        view.health = record.view(now);
    }
    view
}

/// `If-Match: <version>` (quotes and a weak prefix tolerated).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or_default().trim();
    let text = text.trim_start_matches("W/").trim_matches('"');
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_header",
            message: "If-Match must be a version as returned by the API".into(),
            field: Some("If-Match".into()),
        })
}

async fn patch_webhook(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let expected = if_match(&headers)?;
    let patch: serde_json::Map<String, serde_json::Value> = json_body(body)?;
    // Unknown fields and wrong types are named before the webhook is read.
    WebhookInput::check_patch(&patch)?;
    let current = load(&state, &project, &id).await?;
    current.check_sent_back(&patch)?;
    if expected.is_some_and(|v| v != current.version) {
        return Err(ApiError::Conflict(format!(
            "version {} is stale; the webhook is at version {}",
            expected.unwrap_or_default(),
            current.version
        )));
    }
    // Secrets are shown in full when the request gave the auth, not when it sent back
    // what a response showed.
    let reveal = patch.get("auth").is_some_and(|a| !a.is_null())
        && !hookline_core::model::sends_back_a_masked_secret(&patch);
    let spec = current.spec.patched(&patch)?;
    check_spec(&spec, state.policy(), &project)?;
    let now = clock::now_ms();
    let updated = current.changed(spec, now);
    // The condition makes the write fail if anyone wrote in between, If-Match or not.
    state.webhooks.update(&updated, current.version).await?;
    tracing::info!(webhook_id = %id, version = updated.version, "webhook updated");
    let health = state
        .health
        .get(&project, std::slice::from_ref(&id))
        .await?;
    let record = health.get(&id).cloned().unwrap_or_default();
    match (current.spec.enabled, updated.spec.enabled) {
        (true, false) => {
            // Disabled by hand: the same report as Hookline's own disabling.
            let event = hookline_core::fanout::disabled_event(&updated, &record, now);
            if let Err(e) = state.reports.submit(&project, event, true, now).await {
                tracing::error!(webhook_id = %id, error = %hookline_core::error::chain(&e), "could not report the webhook disabled");
            }
        }
        (false, true) => {
            // Enabled again: it is no longer failing as far as auto-disable counts.
            state.health.clear_failing(&project, &id).await?;
        }
        _ => {}
    }
    let mut record = record;
    if !current.spec.enabled && updated.spec.enabled {
        record.failing_since = None;
    }
    Ok(Json(with_health(updated.view(reveal), Some(&record), now)).into_response())
}

async fn delete_webhook(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    if !ids::is_id("wh", &id) || !state.webhooks.delete(&project, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A rotation's optional body: the new secret, when the caller brings one.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    signing_secret: Option<String>,
}

async fn rotate(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    let request: RotateRequest = optional_json_body(body)?;
    let given = request
        .signing_secret
        .map(|s| check_signing_secret("signing_secret", &s))
        .transpose()?;
    let current = load(&state, &project, &id).await?;
    if given.as_ref() == Some(&current.signing.current) {
        return Err(hookline_core::FieldError::invalid(
            "signing_secret",
            "is the current secret already; a rotation takes a new one",
        )
        .into());
    }
    let now = clock::now_ms();
    let mut spec = current.spec.clone();
    if matches!(
        spec.auth,
        Auth::Bearer {
            generated: true,
            ..
        }
    ) {
        spec.auth = Auth::generate_bearer();
    }
    let rotated = Webhook {
        spec,
        signing: current.signing.rotated(
            given.unwrap_or_else(signing::new_secret),
            now,
            ROTATION_OVERLAP,
        ),
        updated_at: now.max(current.updated_at),
        version: current.version + 1,
        ..current.clone()
    };
    state.webhooks.update(&rotated, current.version).await?;
    tracing::info!(webhook_id = %id, "signing secret rotated");
    Ok(Json(rotated.view(true)).into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRequest {
    #[serde(default, deserialize_with = "hookline_core::model::optional_object")]
    event: Option<EventInput>,
    /// Unsaved changes to try (a merge patch, as PATCH takes): the console's live
    /// preview, and a test send before saving. Nothing is stored.
    #[serde(default)]
    webhook: Option<serde_json::Map<String, serde_json::Value>>,
}

fn event_for(request: EventRequest, spec: &WebhookSpec) -> Result<Event, ApiError> {
    let now = clock::now_ms();
    match request.event {
        None => Ok(sample_event(spec, now)),
        Some(input) => Event::from_input(input, now, || "evt_test".to_string()).map_err(|mut e| {
            e.field = format!("event.{}", e.field)
                .trim_end_matches('.')
                .to_string();
            ApiError::from(e)
        }),
    }
}

/// A request as shown (the test send's `request`).
#[derive(Serialize)]
struct Shown {
    method: &'static str,
    url: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A preview: the request, or (SPEC §9) null parts and why the template aborted it.
#[derive(Serialize)]
struct PreviewBody {
    method: Option<&'static str>,
    url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    aborted: Option<String>,
}

/// What preview and test send share: authorise, read the optional event, load the
/// webhook and render it for that event (or the sample).
/// `Err(reason)` inside: the template aborted the message.
async fn render_for(
    state: &AppState,
    project: &str,
    id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    access: Access,
) -> Result<(Webhook, Result<RenderedRequest, String>), ApiError> {
    state.auth.for_project(headers, project, access).await?;
    let mut request: EventRequest = optional_json_body(body)?;
    let mut webhook = load(state, project, id).await?;
    if let Some(patch) = request.webhook.take() {
        let draft = WebhookInput::check_patch(&patch)
            .map_err(ApiError::from)
            .and_then(|()| Ok(webhook.spec.patched(&patch)?))
            .and_then(|spec| check_spec(&spec, state.policy(), project).map(|_| spec))
            .map_err(|e| e.within("webhook"))?;
        webhook.spec = draft;
    }
    let event = event_for(request, &webhook.spec)?;
    let rendered = match CompiledWebhook::compile(&webhook.spec)?
        .render(&RenderContext::new(&event, Subject::of(&webhook)))
    {
        Ok(rendered) => Ok(rendered),
        Err(RenderError::Aborted { reason }) => Err(reason),
        Err(e) => return Err(render_error(e)),
    };
    Ok((webhook, rendered))
}

async fn preview(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let preview = match render_for(&state, &project, &id, &headers, body, Access::Read)
        .await?
        .1
    {
        Ok(rendered) => PreviewBody {
            method: Some(rendered.method.as_str()),
            url: Some(rendered.url),
            headers: Some(shown_headers(rendered.headers)),
            body: Some(rendered.body),
            aborted: None,
        },
        Err(reason) => PreviewBody {
            method: None,
            url: None,
            headers: None,
            body: None,
            aborted: Some(reason),
        },
    };
    Ok(Json(preview).into_response())
}

/// The test result of SPEC §6.
#[derive(Serialize)]
struct TestResult {
    request: Option<Shown>,
    response: Option<TestResponse>,
    duration_ms: u64,
    outcome: &'static str,
    retryable: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct TestResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// The longest a test send waits on its receiver. It answers within the request, and API
/// Gateway gives up on an HTTP API request at 30 s, answering 503 in its own shape while
/// the function goes on: a webhook's own timeout (up to 90 s) is for deliveries.
const TEST_SEND_WAIT: Duration = Duration::from_secs(25);

async fn test_send(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (webhook, rendered) =
        render_for(&state, &project, &id, &headers, body, Access::Write).await?;
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(reason) => {
            // Aborted by its template: nothing sent (SPEC §9).
            return Ok(Json(TestResult {
                request: None,
                response: None,
                duration_ms: 0,
                outcome: "aborted",
                retryable: false,
                error: Some(reason),
            })
            .into_response());
        }
    };
    let now = clock::now_ms();
    let signed = sign_request(rendered, &webhook, &ids::new_id("msg", now), now)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let timeout = Duration::from_secs(u64::from(webhook.spec.timeout_seconds));
    let waited = timeout.min(TEST_SEND_WAIT);
    let sent = state.sender.send(&signed, waited).await;
    tracing::info!(webhook_id = %id, status_code = sent.outcome.status_code(), reason = sent.outcome.error(), "test send");
    let error = match sent.outcome {
        hookline_core::retry::Outcome::Timeout if waited < timeout => Some(format!(
            "no answer within {} s, the most a test send waits (API Gateway answers for at most 30 s); deliveries wait the webhook's {} s",
            waited.as_secs(),
            timeout.as_secs()
        )),
        _ => sent.outcome.error(),
    };
    let delivered = matches!(sent.outcome.class(), hookline_core::retry::Class::Delivered);
    // The request is shown back; the credentials in it are not.
    let request_headers = shown_headers(signed.headers);
    Ok(Json(TestResult {
        request: Some(Shown {
            method: signed.method.as_str(),
            url: signed.url,
            headers: request_headers,
            body: signed.body,
        }),
        response: sent.response.map(|r| TestResponse {
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: r.excerpt,
        }),
        duration_ms: sent.duration_ms,
        outcome: if delivered { "delivered" } else { "failed" },
        retryable: sent.outcome.is_retryable(),
        error,
    })
    .into_response())
}

/// A request's headers as a response shows them: credentials masked.
fn shown_headers<T: FromIterator<(String, String)>>(
    headers: impl IntoIterator<Item = (String, String)>,
) -> T {
    headers
        .into_iter()
        .map(|(name, value)| {
            let value = shown_header_value(&name, &value);
            (name, value)
        })
        .collect()
}

async fn list_attempts(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .for_project(&headers, &project, Access::Read)
        .await?;
    let scope = format!("attempts:{id}");
    let PageRequest {
        limit,
        after,
        query: q,
    } = api::page_request(query.as_deref(), &project, &scope, &["status"])?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(AttemptStatus::parse(s).ok_or_else(|| {
            ApiError::bad_query(
                "status",
                "status is one of delivered, failed, retrying, dead_lettered, skipped",
            )
        })?),
    };
    // Attempts outlive a deleted webhook in the log, but the route answers for live ones.
    load(&state, &project, &id).await?;
    let page = state
        .attempts
        .for_webhook(
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
struct CreatedKey {
    id: String,
    key: String,
    project_id: String,
    name: Option<String>,
    #[serde(with = "clock::rfc3339")]
    created_at: Millis,
}

/// The longest name a key or portal link may have.
const MAX_KEY_NAME_BYTES: usize = 100;

/// `POST …/keys`: the body is optional; `name` labels the key in listings.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    name: Option<String>,
}

/// A key's or portal link's `name`, checked as a webhook's is.
fn key_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(name) = &name {
        hookline_core::model::check_text("name", name, MAX_KEY_NAME_BYTES)?;
    }
    Ok(name)
}

async fn create_key(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(&headers).await?;
    caller.require_admin()?;
    check_project_id(&project)?;
    let request: KeyRequest = optional_json_body(body)?;
    let (mut record, key) = new_api_key(&project, clock::now_ms());
    record.name = key_name(request.name)?;
    state.keys.put(&record).await?;
    tracing::info!(key_id = %record.id, project_id = %project, "api key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: record.id,
            key,
            project_id: record.project_id,
            name: record.name,
            created_at: record.created_at,
        }),
    )
        .into_response())
}

/// A project key or portal token as listed: never the key, nor its hash.
#[derive(Serialize)]
struct KeyView {
    id: String,
    /// `project` (an `hlk_` key) or `portal` (an `hlp_` token).
    kind: &'static str,
    name: Option<String>,
    read_only: bool,
    #[serde(with = "clock::rfc3339::option")]
    expires_at: Option<Millis>,
    #[serde(with = "clock::rfc3339")]
    created_at: Millis,
}

/// `GET …/keys` (admin): the project's keys and live portal tokens, oldest first.
async fn list_keys(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(&headers).await?;
    caller.require_admin()?;
    check_project_id(&project)?;
    let page = api::page_request(query.as_deref(), &project, "keys", &[])?;
    let found = state
        .keys
        .list(&project, page.limit, page.after.as_deref(), clock::now_ms())
        .await?;
    let data: Vec<KeyView> = found
        .items
        .into_iter()
        .map(|k| KeyView {
            id: k.id,
            kind: if k.portal.is_some() {
                "portal"
            } else {
                "project"
            },
            read_only: k.portal.is_some_and(|p| p.read_only),
            expires_at: k.portal.map(|p| p.expires_at),
            name: k.name,
            created_at: k.created_at,
        })
        .collect();
    Ok(Json(ListPage {
        data,
        next_cursor: found.next.map(|k| encode_cursor(&project, "keys", &k)),
    })
    .into_response())
}

/// `DELETE …/keys/{id}`: the admin revokes any key or token of the project; a project
/// key revokes the project's portal tokens (the links it hands out), never a key.
async fn delete_key(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(&headers).await?;
    caller.require_key()?;
    check_project_id(&project)?;
    if caller != Caller::Admin {
        caller.authorize(&project, Access::Write)?;
        // A key, or another project's token, is answered as a missing one is.
        let own_token = ids::is_id("key", &id)
            && state
                .keys
                .get(&id)
                .await?
                .is_some_and(|r| r.project_id == project && r.portal.is_some());
        if !own_token {
            return Err(ApiError::NotFound);
        }
    }
    if !ids::is_id("key", &id) || !state.keys.delete(&project, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(key_id = %id, "api key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalRequest {
    ttl_seconds: Option<serde_json::Value>,
    read_only: Option<serde_json::Value>,
    name: Option<String>,
}

#[derive(Serialize)]
struct PortalLink {
    id: String,
    token: String,
    url: String,
    project_id: String,
    name: Option<String>,
    read_only: bool,
    #[serde(with = "clock::rfc3339")]
    expires_at: Millis,
}

/// `POST …/portal`: a customer portal link (SPEC §11) for the admin key or the project's
/// own key; a portal token cannot make another.
async fn create_portal_link(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = state
        .auth
        .for_project(&headers, &project, Access::Write)
        .await?;
    caller.require_key()?;
    let request: PortalRequest = optional_json_body(body)?;
    let ttl = match request.ttl_seconds {
        None => api::PORTAL_DEFAULT_TTL_SECONDS,
        Some(v) => v
            .as_u64()
            .filter(|t| (1..=api::PORTAL_MAX_TTL_SECONDS).contains(t))
            .ok_or_else(|| {
                hookline_core::error::FieldError::invalid(
                    "ttl_seconds",
                    format!(
                        "ttl_seconds is a whole number of seconds from 1 to {}",
                        api::PORTAL_MAX_TTL_SECONDS
                    ),
                )
            })?,
    };
    let read_only = match request.read_only {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            hookline_core::error::FieldError::invalid("read_only", "read_only is true or false")
        })?,
    };
    let name = key_name(request.name)?;
    let (mut record, token) = api::new_portal_token(&project, read_only, ttl, clock::now_ms());
    record.name = name;
    state.keys.put(&record).await?;
    let expires_at = record.portal.map_or(0, |p| p.expires_at);
    tracing::info!(key_id = %record.id, project_id = %project, read_only, "portal link created");
    Ok((
        StatusCode::CREATED,
        Json(PortalLink {
            url: format!("{}/console#token={token}", public_base(&headers)),
            id: record.id,
            token,
            project_id: project,
            name: record.name,
            read_only,
            expires_at,
        }),
    )
        .into_response())
}

/// Where this deployment is reached, for the links it hands out: `HOOKLINE_PUBLIC_URL`
/// when set (a custom domain), otherwise the request's own host and scheme (API Gateway
/// forwards `https`; the local runtime is plain HTTP).
fn public_base(headers: &HeaderMap) -> String {
    if let Ok(base) = std::env::var("HOOKLINE_PUBLIC_URL")
        && !base.trim().is_empty()
    {
        return base.trim().trim_end_matches('/').to_string();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        Some("http") => "http",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Who a credential is: what the console signs in with.
#[derive(Serialize)]
struct Session {
    /// `admin`, `project` or `portal`.
    kind: &'static str,
    project_id: Option<String>,
    read_only: bool,
    #[serde(with = "clock::rfc3339::option")]
    expires_at: Option<Millis>,
}

/// `GET /v1/portal/session`: the credential's project and terms (any credential; for a
/// portal token, SPEC §11's `project_id`, `read_only`, `expires_at`).
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let session = match state.auth.authenticate(&headers).await? {
        Caller::Admin => Session {
            kind: "admin",
            project_id: None,
            read_only: false,
            expires_at: None,
        },
        Caller::Project(project) => Session {
            kind: "project",
            project_id: Some(project),
            read_only: false,
            expires_at: None,
        },
        Caller::Portal {
            project,
            read_only,
            expires_at,
        } => Session {
            kind: "portal",
            project_id: Some(project),
            read_only,
            expires_at: Some(expires_at),
        },
    };
    Ok(Json(session).into_response())
}

#[cfg(test)]
mod tests;
