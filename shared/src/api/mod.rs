//! What both API functions share: the error shape of SPEC §6, API-key authentication,
//! and reading request bodies within limits.

mod auth;

pub use auth::{
    Access, Authenticator, Caller, PORTAL_DEFAULT_TTL_SECONDS, PORTAL_MAX_TTL_SECONDS,
    check_project_id, new_api_key, new_portal_token,
};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{FieldError, Problem};
use crate::store::StoreError;

/// The largest request body an API accepts.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Every way an API request can fail, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("a valid API key is required")]
    Unauthorized,
    #[error("this API key is not allowed to do that")]
    Forbidden,
    /// A read-only portal token asked to change something.
    #[error("this portal link is read-only")]
    ReadOnly,
    #[error("not found")]
    NotFound,
    /// No route has this path (as opposed to an unknown id on a route that exists).
    #[error("no route matches this path")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An `Expect` other than `100-continue`.
    #[error("the only expectation this API meets is 100-continue")]
    ExpectationFailed,
    #[error("{0}")]
    Conflict(String),
    /// What is asked cannot be done in the state the thing is in (a resend of a delivery
    /// still being attempted, say): a 409 with its own `code`.
    #[error("{message}")]
    NotNow { code: &'static str, message: String },
    #[error("the request body is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// A body sent with a `Content-Encoding` (gzip, say): read as it came, it would be
    /// refused as malformed JSON, which misleads.
    #[error("request bodies are read as sent: send the JSON without a Content-Encoding")]
    UnsupportedEncoding,
    #[error(transparent)]
    Invalid(FieldError),
    /// A dependency is down or stalled, or a job is half done: the client should retry
    /// after `retry_after` seconds (sent as `Retry-After`).
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_query(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: "invalid_query",
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ReadOnly => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            ApiError::Conflict(_) | ApiError::NotNow { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        match self {
            ApiError::BadRequest {
                code,
                message,
                field,
            } => Problem::new(*code, message.clone(), field.clone()),
            ApiError::Unauthorized => Problem::new("unauthorized", self.to_string(), None),
            ApiError::Forbidden => Problem::new("forbidden", self.to_string(), None),
            ApiError::ReadOnly => Problem::new("read_only", self.to_string(), None),
            ApiError::NotFound => Problem::new("not_found", self.to_string(), None),
            ApiError::NoRoute => Problem::new("unknown_route", self.to_string(), None),
            ApiError::MethodNotAllowed => {
                Problem::new("method_not_allowed", self.to_string(), None)
            }
            ApiError::ExpectationFailed => Problem::new(
                "expectation_failed",
                self.to_string(),
                Some("Expect".to_string()),
            ),
            ApiError::Conflict(_) => Problem::new("version_conflict", self.to_string(), None),
            ApiError::NotNow { code, message } => Problem::new(*code, message.clone(), None),
            ApiError::TooLarge => Problem::new("payload_too_large", self.to_string(), None),
            ApiError::UnsupportedEncoding => Problem::new(
                "unsupported_encoding",
                self.to_string(),
                Some("Content-Encoding".to_string()),
            ),
            ApiError::Invalid(e) => Problem::from(e),
            ApiError::Unavailable { message, .. } => {
                Problem::new("unavailable", message.clone(), None)
            }
            // Never internal detail in a response.
            ApiError::Internal(_) => Problem::new("internal_error", "internal error", None),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        if e.code == "malformed_json" {
            ApiError::BadRequest {
                code: e.code,
                message: e.message,
                field: None,
            }
        } else {
            ApiError::Invalid(e)
        }
    }
}

impl ApiError {
    /// The error with its field named inside `prefix` (`url` → `webhook.url`), for a
    /// request that carries the object checked under a key of its own.
    pub fn within(self, prefix: &str) -> ApiError {
        match self {
            ApiError::Invalid(mut e) => {
                e.field = if e.field.is_empty() {
                    prefix.to_string()
                } else {
                    format!("{prefix}.{}", e.field)
                };
                ApiError::Invalid(e)
            }
            other => other,
        }
    }

    /// A dependency is down or stalled: 503, retry in a couple of seconds.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
            retry_after: 2,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict => {
                ApiError::Conflict("the resource changed; read it again".into())
            }
            StoreError::LimitReached => ApiError::NotNow {
                code: "webhook_limit",
                message: format!(
                    "this project holds {} webhooks, the most one may: delete one first",
                    crate::store::MAX_WEBHOOKS_PER_PROJECT
                ),
            },
            // An outage, not a bug: the cause is logged, the client told to retry.
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %crate::error::chain(cause.as_ref()), "the store is unavailable");
                ApiError::unavailable("the store is unavailable; retry shortly")
            }
            other @ (StoreError::AlreadyExists | StoreError::Corrupt(_)) => {
                ApiError::Internal(Box::new(other))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %crate::error::chain(cause.as_ref()), "request failed");
        }
        let mut response = (self.status(), Json(self.problem())).into_response();
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Unavailable { retry_after, .. } => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after),
                );
            }
            _ => {}
        }
        response
    }
}

/// axum's `Path`, answering a path that does not decode (bad percent-encoding, invalid
/// UTF-8) with the API's error shape instead of plain text.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|_| ApiError::BadRequest {
                code: "invalid_path",
                message: "the request path does not decode".into(),
                field: None,
            })
    }
}

/// Decodes a JSON body read by axum's `Bytes` extractor (under the body limit layer).
pub fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body_bytes(body)?;
    Ok(crate::model::decode_json(&bytes)?)
}

/// Like [`json_body`], but an empty body is `T::default()`. Only a body of no bytes at
/// all counts as absent: whitespace alone is not a JSON document, so it is malformed.
pub fn optional_json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body_bytes(body)?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    Ok(crate::model::decode_json(&bytes)?)
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                message: "the request body could not be read".into(),
                field: None,
            }
        }
    })
}

/// `?limit=` within 1..=100 (default 20).
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(20),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_query(
                "limit",
                "limit must be a whole number from 1 to 100",
            )),
        },
    }
}

/// `?limit&cursor` of a listing, with the rest of the query string.
pub struct PageRequest {
    pub limit: usize,
    /// The key to continue after, from a cursor issued for this project and listing.
    pub after: Option<String>,
    pub query: std::collections::HashMap<String, String>,
}

/// Reads `limit` (1–100, default 20) and a cursor bound to `project` and `scope`; the
/// listing's `filters` are the only other parameters it takes. A parameter it does not
/// take, or one given twice, is a 400 naming it: a misspelt filter (`?stauts=failed`)
/// would otherwise list everything, as if it had matched.
pub fn page_request(
    raw: Option<&str>,
    project: &str,
    scope: &str,
    filters: &[&str],
) -> Result<PageRequest, ApiError> {
    let query = query_map(raw, &[&["limit", "cursor"], filters].concat())?;
    let limit = page_limit(query.get("limit").map(String::as_str))?;
    let after = match query.get("cursor") {
        None => None,
        Some(c) => Some(
            crate::store::decode_cursor(c, project, scope).ok_or_else(|| {
                ApiError::bad_query("cursor", "the cursor is not valid for this listing")
            })?,
        ),
    };
    Ok(PageRequest {
        limit,
        after,
        query,
    })
}

/// The query string as a map of the `allowed` parameters, each given at most once.
fn query_map(
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut query = std::collections::HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&name.as_ref()) {
            return Err(ApiError::bad_query(
                &name,
                format!(
                    "this listing takes no parameter `{name}`; it takes {}",
                    allowed.join(", ")
                ),
            ));
        }
        if query.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(ApiError::bad_query(
                &name,
                format!("`{name}` is given twice"),
            ));
        }
    }
    Ok(query)
}

/// `GET /v1/health`.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// A router of `routes`, answering an unknown route and a known route's wrong method in
/// the API's error shape.
pub fn router<S: Clone + Send + Sync + 'static>(
    routes: Vec<(&'static str, axum::routing::MethodRouter<S>)>,
) -> axum::Router<S> {
    routes
        .into_iter()
        .fold(axum::Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(refuse_oversized))
        .layer(axum::middleware::from_fn(within_deadline))
        .layer(axum::middleware::from_fn(contain_panics))
}

/// How long an API request may take before it answers `503` (SPEC §8: within 10 s of a
/// stalled dependency; API Gateway itself gives up at 30 s). Each AWS call is bounded
/// on its own (`config::Waits::API`); this bounds a request's calls together.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(9);

/// Answers `503 unavailable` (with Retry-After) when a request outlives
/// [`REQUEST_DEADLINE`]. What it was doing is dropped: every write the API makes is one
/// conditional call, and a fan-out cut short is finished by the sweep. A test send is
/// the one request that waits on something else: the receiver, for up to the webhook's
/// own timeout (its store reads are bounded by their own timeouts).
async fn within_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let test_send =
        request.method() == axum::http::Method::POST && request.uri().path().ends_with("/test");
    if test_send {
        return next.run(request).await;
    }
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("a request outlived its deadline: a dependency stalled");
            ApiError::unavailable("a dependency did not answer in time; retry shortly")
                .into_response()
        }
    }
}

/// A handler that panics (a bug: no input may cause one) answers 500 in the error shape
/// and costs that request only, never the process that serves the others.
async fn contain_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            ApiError::Internal(crate::error::panic_message(&*panic).into()).into_response()
        }
    }
}

/// How much of a declared-oversized body is read (and dropped) before answering 413.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Answers an `Expect` it cannot meet with 417, a body sent with a `Content-Encoding`
/// other than `identity` with 415, and a body declared larger than
/// [`MAX_REQUEST_BYTES`] with 413, before any handler runs. The body is read and dropped first (up to [`DRAIN_LIMIT`]): a server that
/// answers and closes while the client is still sending makes the client see a
/// connection reset instead of the answer. On Lambda the body has already arrived whole.
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let unmet = request
        .headers()
        .get(axum::http::header::EXPECT)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if unmet {
        return ApiError::ExpectationFailed.into_response();
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_REQUEST_BYTES as u64 => {
            if length <= DRAIN_LIMIT {
                use futures_util::StreamExt;
                let mut body = request.into_body().into_data_stream();
                while let Some(Ok(_)) = body.next().await {}
            }
            ApiError::TooLarge.into_response()
        }
        _ if encoded(&request) => ApiError::UnsupportedEncoding.into_response(),
        _ => next.run(request).await,
    }
}

/// Whether a request that carries a body says it is encoded (`Content-Encoding` other
/// than `identity`).
fn encoded(request: &axum::extract::Request) -> bool {
    [Method::POST, Method::PUT, Method::PATCH].contains(request.method())
        && request
            .headers()
            .get_all(axum::http::header::CONTENT_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: &axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn an_encoded_body_is_refused_naming_content_encoding_before_any_handler() {
        async fn echo(body: Bytes) -> Response {
            match json_body::<serde_json::Value>(Ok(body)) {
                Ok(v) => Json(v).into_response(),
                Err(e) => e.into_response(),
            }
        }
        let app = router::<()>(vec![("/v1/echo", axum::routing::post(echo).get(echo))]);
        let send = |method: Method, encoding: Option<&'static str>, body: &'static [u8]| {
            let app = app.clone();
            async move {
                let mut request = axum::http::Request::builder()
                    .method(method)
                    .uri("/v1/echo");
                if let Some(encoding) = encoding {
                    request = request.header("content-encoding", encoding);
                }
                let response = app
                    .oneshot(request.body(Body::from(body)).unwrap())
                    .await
                    .unwrap();
                let status = response.status();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                (
                    status,
                    v["error"]["code"].clone(),
                    v["error"]["field"].clone(),
                )
            }
        };
        // gzip of `{}`: read as sent it would be a malformed-JSON 400.
        const GZIPPED: &[u8] = &[
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0xae, 0x05, 0x00,
            0x43, 0xbf, 0xa6, 0xa3, 0x02, 0x00, 0x00, 0x00,
        ];
        for (method, encoding) in [
            (Method::POST, "gzip"),
            (Method::POST, "GZIP"),
            (Method::POST, "identity, gzip"),
            (Method::POST, "br"),
            (Method::PATCH, "deflate"),
        ] {
            assert_eq!(
                send(method.clone(), Some(encoding), GZIPPED).await,
                (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding".into(),
                    "Content-Encoding".into()
                ),
                "{method} {encoding}"
            );
        }
        for encoding in [None, Some("identity"), Some(" Identity "), Some("")] {
            let (status, ..) = send(Method::POST, encoding, b"{}").await;
            assert_eq!(status, StatusCode::OK, "{encoding:?}");
        }
        // A request that carries no body is not refused for the header.
        let (status, ..) = send(Method::GET, Some("gzip"), b"{}").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_stalled_on_a_dependency_answers_503_within_its_deadline() {
        async fn stalled() -> &'static str {
            tokio::time::sleep(std::time::Duration::from_secs(75)).await;
            "too late"
        }
        let app = router::<()>(vec![
            ("/v1/stalled", axum::routing::get(stalled)),
            ("/v1/w/{id}/test", axum::routing::post(stalled)),
        ]);
        let started = tokio::time::Instant::now();
        let request = axum::http::Request::get("/v1/stalled")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(started.elapsed(), REQUEST_DEADLINE);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "2");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
        // A test send waits on its receiver, for up to the webhook's own timeout.
        let request = axum::http::Request::post("/v1/w/wh_1/test")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_panicking_handler_costs_its_request_only() {
        async fn boom() -> &'static str {
            panic!("a bug in a handler")
        }
        let app = router::<()>(vec![
            ("/boom", axum::routing::get(boom)),
            ("/ok", axum::routing::get(health)),
        ]);
        let (status, body) = call(&app, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "internal_error", "message": "internal error"}})
        );
        let (status, body) = call(&app, "/ok").await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );
    }
}
