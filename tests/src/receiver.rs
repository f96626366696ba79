//! A real HTTP receiver on 127.0.0.1:0 whose paths answer as the tests need, and which
//! records every request it gets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: std::time::Instant,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Requests per (path, webhook-id), for answers that change over attempts.
    counts: Arc<Mutex<HashMap<(String, String), u32>>>,
}

/// The receiver's base URL and what it saw.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    shared: Shared,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn received_on(&self, path_prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.uri.path().starts_with(path_prefix))
            .collect()
    }
}

/// Answers, by the first path segment:
/// - `/ok/...` 200; `/status/{code}/...` that status;
/// - `/fail/{n}/...` 500 to the first n attempts of a delivery, then 200;
/// - `/busy/{seconds}/...` 429 with `Retry-After: seconds` once per delivery, then 200;
/// - `/slow/{seconds}/...` sleeps that long on a delivery's first attempt, then 200;
/// - `/moved/...` 301 to `/ok/moved`;
/// - `/flaky/{percent}/...` 503 to that share of requests at random, else 200.
pub async fn start() -> Receiver {
    let shared = Shared::default();
    let app = Router::new()
        .route("/{kind}", any(answer_simple))
        .route("/{kind}/{*rest}", any(answer))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        base: format!("http://{addr}"),
        shared,
    }
}

async fn answer_simple(
    State(shared): State<Shared>,
    Path(kind): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(shared, kind, String::new(), method, uri, headers, body).await
}

async fn answer(
    State(shared): State<Shared>,
    Path((kind, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(shared, kind, rest, method, uri, headers, body).await
}

async fn respond(
    shared: Shared,
    kind: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delivery = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut counts = shared.counts.lock().expect("counts");
        let c = counts
            .entry((uri.path().to_string(), delivery))
            .or_insert(0);
        *c += 1;
        *c
    };
    shared.seen.lock().expect("seen").push(Received {
        at: std::time::Instant::now(),
        method,
        uri,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let arg: u64 = rest
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    match kind.as_str() {
        "ok" => (StatusCode::OK, "ok").into_response(),
        "status" => StatusCode::from_u16(arg as u16)
            .unwrap_or(StatusCode::OK)
            .into_response(),
        "fail" if u64::from(n) <= arg => {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
        }
        "fail" => (StatusCode::OK, "ok").into_response(),
        "busy" if n == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", arg.to_string())],
        )
            .into_response(),
        "busy" => (StatusCode::OK, "ok").into_response(),
        "slow" => {
            if n == 1 {
                tokio::time::sleep(Duration::from_secs(arg)).await;
            }
            (StatusCode::OK, "ok").into_response()
        }
        "moved" => (StatusCode::MOVED_PERMANENTLY, [("location", "/ok/moved")]).into_response(),
        "flaky" if rand::random_range(0..100) < arg => {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        "flaky" => (StatusCode::OK, "ok").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
