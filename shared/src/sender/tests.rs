use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;

use super::*;
use crate::model::{Auth, HttpMethod, SigningSecrets, WebhookInput, WebhookSpec, decode_json};

const OPEN: TargetPolicy = TargetPolicy {
    allow_private: true,
};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn request(url: String) -> SignedRequest {
    SignedRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: "{}".into(),
    }
}

async fn send(url: String, timeout_ms: u64) -> Sent {
    Sender::new(OPEN)
        .unwrap()
        .send(&request(url), Duration::from_millis(timeout_ms))
        .await
}

#[tokio::test]
async fn a_2xx_is_read_with_its_status_headers_and_body() {
    let base = serve(Router::new().route(
        "/",
        any(|| async { (StatusCode::ACCEPTED, [("x-receiver", "yes")], "thanks") }),
    ))
    .await;
    let sent = send(format!("{base}/"), 2_000).await;
    assert_eq!(
        sent.outcome,
        Outcome::Response {
            status: 202,
            retry_after: None
        }
    );
    let response = sent.response.unwrap();
    assert_eq!(response.excerpt, "thanks");
    assert!(
        response
            .headers
            .iter()
            .any(|(k, v)| k == "x-receiver" && v == "yes")
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let followed = Arc::new(AtomicUsize::new(0));
    let f = followed.clone();
    let base = serve(
        Router::new()
            .route(
                "/a",
                any(|| async { (StatusCode::MOVED_PERMANENTLY, [("location", "/b")]) }),
            )
            .route(
                "/b",
                any(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                    async { "b" }
                }),
            ),
    )
    .await;
    let sent = send(format!("{base}/a"), 2_000).await;
    assert_eq!(sent.outcome.status_code(), Some(301));
    assert!(!sent.outcome.is_retryable());
    assert_eq!(followed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn only_an_excerpt_of_a_huge_body_is_read() {
    let base = serve(Router::new().route("/", any(|| async { "é".repeat(1_000_000) }))).await;
    let sent = send(format!("{base}/"), 5_000).await;
    let excerpt = sent.response.unwrap().excerpt;
    assert!(excerpt.len() <= EXCERPT_BYTES && excerpt.len() >= EXCERPT_BYTES - 1);
    assert!(excerpt.chars().all(|c| c == 'é'));
}

#[tokio::test]
async fn retry_after_is_parsed_from_the_response() {
    let base = serve(Router::new().route(
        "/",
        any(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]) }),
    ))
    .await;
    let sent = send(format!("{base}/"), 2_000).await;
    assert_eq!(
        sent.outcome,
        Outcome::Response {
            status: 429,
            retry_after: Some(7_000)
        }
    );
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let base = serve(Router::new().route(
        "/",
        any(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    ))
    .await;
    let sent = send(format!("{base}/"), 200).await;
    assert_eq!(sent.outcome, Outcome::Timeout);
    assert!(sent.outcome.is_retryable());
    assert!(sent.duration_ms < 2_000);
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_connection_error_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let sent = send(format!("http://{addr}/secret-token-in-path"), 2_000).await;
    let Outcome::Connection(msg) = &sent.outcome else {
        panic!("{:?}", sent.outcome)
    };
    assert!(sent.outcome.is_retryable());
    assert!(!msg.contains("secret-token"), "{msg}");
}

#[tokio::test]
async fn internal_targets_are_refused_before_anything_is_sent_unless_allowed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/",
        any(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { "canary" }
        }),
    ))
    .await;
    let strict = Sender::new(TargetPolicy::default()).unwrap();
    for url in [
        format!("{base}/"),
        "http://localhost/".to_string(),
        "http://[::1]/".to_string(),
    ] {
        let sent = strict
            .send(&request(url.clone()), Duration::from_secs(2))
            .await;
        assert!(
            matches!(sent.outcome, Outcome::Refused(_)),
            "{url}: {:?}",
            sent.outcome
        );
        assert!(!sent.outcome.is_retryable());
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    send(format!("{base}/"), 2_000).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn signed_requests_verify_at_the_receiver_with_auth() {
    let seen: Arc<std::sync::Mutex<Option<(HeaderMap, String)>>> = Arc::default();
    let s = seen.clone();
    let base = serve(Router::new().route(
        "/",
        any(move |headers: HeaderMap, body: String| {
            *s.lock().unwrap() = Some((headers, body));
            async { StatusCode::NO_CONTENT.into_response() }
        }),
    ))
    .await;
    let spec = WebhookSpec::from_create(
        decode_json::<WebhookInput>(
            format!(r#"{{"name":"n","url":"{base}/","events":["*"],"auth":{{"type":"bearer","token":"tok"}}}}"#)
                .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    let secret = crate::signing::new_secret();
    let webhook = Webhook {
        id: "wh_1".into(),
        project_id: "p".into(),
        spec,
        signing: SigningSecrets {
            current: secret.clone(),
            previous: None,
            previous_expires_at: None,
        },
        created_at: 0,
        updated_at: 0,
        version: 1,
        disabled_reason: None,
        disabled_at: None,
    };
    let rendered = RenderedRequest {
        method: HttpMethod::Post,
        url: format!("{base}/"),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{"a":1}"#.into(),
    };
    let now = crate::clock::now_ms();
    let req = sign_request(rendered, &webhook, "msg_abc", now).unwrap();
    let sent = Sender::new(OPEN)
        .unwrap()
        .send(&req, Duration::from_secs(2))
        .await;
    assert_eq!(sent.outcome.status_code(), Some(204));
    let (headers, body) = seen.lock().unwrap().clone().unwrap();
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("webhook-id"), "msg_abc");
    assert_eq!(h("authorization"), "Bearer tok");
    assert!(h("user-agent").starts_with("Hookline/"));
    let ts: i64 = h("webhook-timestamp").parse().unwrap();
    assert!(crate::signing::verify(
        &secret,
        "msg_abc",
        ts,
        body.as_bytes(),
        &h("webhook-signature")
    ));
    assert!(matches!(webhook.spec.auth, Auth::Bearer { .. }));
}

#[test]
fn excerpts_cut_at_character_boundaries() {
    let body = "한".repeat(2_000);
    let e = excerpt(body.as_bytes());
    assert!(e.len() <= EXCERPT_BYTES);
    assert!(e.chars().all(|c| c == '한'));
    assert_eq!(excerpt(b"short"), "short");
}

/// An https receiver whose certificate chains to no root of Mozilla's program (here a
/// self-signed one for 127.0.0.1) is refused at the handshake: no request reaches it, and
/// the attempt fails as a connection error (retried, as a receiver may fix its
/// certificate). Guards the compiled-in trust store (`crate::tls`) against a verifier that
/// accepts anything.
#[tokio::test]
async fn an_https_receiver_with_an_untrusted_certificate_gets_no_request() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/self-signed.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/self-signed.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Blocking rustls on a thread: the handshake's result, and any request bytes read.
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 1024];
        std::io::Read::read(&mut tls, &mut buf).unwrap_or(0)
    });
    let sent = send(format!("https://127.0.0.1:{port}/hook"), 5_000).await;
    match &sent.outcome {
        Outcome::Connection(why) => assert!(why.to_lowercase().contains("certificate"), "{why}"),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    assert!(sent.outcome.is_retryable());
    assert_eq!(server.join().unwrap(), 0, "the receiver read request bytes");
}
