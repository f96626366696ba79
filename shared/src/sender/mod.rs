//! The one HTTP client that talks to receivers: signs, authenticates, sends with the
//! webhook's timeout, reads at most an excerpt of the answer, and classifies the outcome.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::clock::{Millis, SECOND};
use crate::guard::{self, BlockedTarget, GuardedResolver, TargetPolicy};
use crate::model::Webhook;
use crate::retry::{Outcome, parse_retry_after};
use crate::signing;
use crate::template::RenderedRequest;

/// The most of a response body that is read and kept.
pub const EXCERPT_BYTES: usize = 4 * 1024;

pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// A request with its signature and auth headers, ready to go.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRequest {
    pub method: crate::model::HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the webhook's signing secret is unusable: {0}")]
    Secret(#[from] signing::SigningError),
}

/// Adds the Standard Webhooks headers (fresh timestamp and signature, the delivery's
/// stable `webhook-id`) and the auth header to a rendered request.
pub fn sign_request(
    rendered: RenderedRequest,
    webhook: &Webhook,
    delivery_id: &str,
    now: Millis,
) -> Result<SignedRequest, SignError> {
    let signer = signing::Signer::new(&webhook.signing)?;
    Ok(sign_with(
        rendered,
        &webhook.spec.auth,
        &signer,
        delivery_id,
        now,
    ))
}

/// [`sign_request`] with a signer prepared in advance (the delivery function keeps one
/// per webhook version).
pub fn sign_with(
    rendered: RenderedRequest,
    auth: &crate::model::Auth,
    signer: &signing::Signer,
    delivery_id: &str,
    now: Millis,
) -> SignedRequest {
    let ts = now.div_euclid(SECOND);
    let signature = signer.header(delivery_id, ts, rendered.body.as_bytes(), now);
    let mut headers = rendered.headers;
    headers.push(("webhook-id".into(), delivery_id.to_string()));
    headers.push(("webhook-timestamp".into(), ts.to_string()));
    headers.push(("webhook-signature".into(), signature));
    if let Some(auth) = signing::authorization(auth, ts) {
        headers.push(("Authorization".into(), auth));
    }
    SignedRequest {
        method: rendered.method,
        url: rendered.url,
        headers,
        body: rendered.body,
    }
}

/// What the receiver said, as far as we read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most [`EXCERPT_BYTES`] of the body, cut at a character boundary.
    pub excerpt: String,
}

/// The result of one send.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub outcome: Outcome,
    pub response: Option<Response>,
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the HTTP client could not be built: {0}")]
pub struct ClientError(#[source] reqwest::Error);

/// The shared sender. Cheap to clone; one per process.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: TargetPolicy,
}

impl Sender {
    pub fn new(policy: TargetPolicy) -> Result<Sender, ClientError> {
        let client = crate::tls::reqwest_builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .no_proxy()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(ClientError)?;
        Ok(Sender { client, policy })
    }

    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Sends once, never following redirects, and classifies what happened.
    pub async fn send(&self, req: &SignedRequest, timeout: Duration) -> Sent {
        match self.check(&req.url) {
            Ok(url) => self.send_to(url, req, timeout).await,
            Err(why) => Sent {
                outcome: Outcome::Refused(why.to_string()),
                response: None,
                duration_ms: 0,
            },
        }
    }

    /// The URL to send to, if the target policy allows it. A pure function of the URL
    /// and the policy, so a caller may keep the answer for the same URL; names are
    /// still checked when they are resolved, at each connection.
    pub fn check(&self, raw: &str) -> Result<url::Url, guard::TargetError> {
        guard::check_url(raw, self.policy)
    }

    /// [`Sender::send`] to a URL [`Sender::check`] allowed (`req.url` is not read again).
    pub async fn send_to(&self, url: url::Url, req: &SignedRequest, timeout: Duration) -> Sent {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis() as u64;
        let refused = |why: String, started: Instant| Sent {
            outcome: Outcome::Refused(why),
            response: None,
            duration_ms: elapsed(started),
        };
        let mut headers = HeaderMap::with_capacity(req.headers.len());
        for (name, value) in &req.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return refused(format!("header {name} is not a valid HTTP header"), started);
            };
            headers.append(name, value);
        }
        let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        // Built whole rather than through a builder, which would copy the headers into
        // a map of its own.
        let mut request = reqwest::Request::new(method, url);
        *request.headers_mut() = headers;
        *request.timeout_mut() = Some(timeout);
        if !req.body.is_empty() {
            *request.body_mut() = Some(req.body.clone().into());
        }
        let mut response = match self.client.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                return Sent {
                    outcome: classify_error(&e),
                    response: None,
                    duration_ms: elapsed(started),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, crate::clock::now_ms()));
        let response_headers = std::mem::take(response.headers_mut());
        // Read at most an excerpt; a receiver that streams forever cannot hold us, and the
        // rest of the body is dropped with the connection.
        let mut body = Vec::with_capacity(512);
        while body.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Sent {
            outcome: Outcome::Response {
                status,
                retry_after,
            },
            response: Some(Response {
                status,
                headers: response_headers,
                excerpt: excerpt(&body),
            }),
            duration_ms: elapsed(started),
        }
    }
}

/// The first [`EXCERPT_BYTES`] of a body as text, cut at a character boundary.
pub fn excerpt(body: &[u8]) -> String {
    excerpt_bytes(body, EXCERPT_BYTES)
}

/// The first `limit` bytes of a text, cut at a character boundary.
pub fn excerpt_of(text: &str, limit: usize) -> String {
    excerpt_bytes(text.as_bytes(), limit)
}

fn excerpt_bytes(body: &[u8], limit: usize) -> String {
    let cut = &body[..body.len().min(limit)];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => {
            // A multi-byte character was cut in half at the end.
            String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    }
}

fn classify_error(e: &reqwest::Error) -> Outcome {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<BlockedTarget>() {
            return Outcome::Refused(blocked.to_string());
        }
        source = err.source();
    }
    if e.is_timeout() {
        return Outcome::Timeout;
    }
    Outcome::Connection(describe(e))
}

/// The innermost causes of an error, without the URL (which may carry a secret).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(err) = source {
        parts.push(err.to_string());
        source = err.source();
    }
    if parts.is_empty() {
        // reqwest's own message names the URL, which may carry a secret.
        parts.push("the request could not be sent".to_string());
    }
    // Keep the two most specific causes; outer layers repeat them.
    let n = parts.len();
    parts[n.saturating_sub(2)..].join(": ")
}

#[cfg(test)]
mod tests;
