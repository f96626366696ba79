use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use hookline_core::config::Secret;
use hookline_core::model::{Attempt, SigningSecrets};
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::store::memory::{
    InMemoryApiKeyStore, InMemoryAttemptLog, InMemoryEventStore, InMemoryHealthStore,
    InMemoryWebhookStore,
};

/// The admin key the `sam local` fixtures in tests/events carry.
const ADMIN: &str = "local-admin-key";

struct Harness {
    app: Router,
    attempts: Arc<InMemoryAttemptLog>,
    keys: Arc<InMemoryApiKeyStore>,
    health: Arc<InMemoryHealthStore>,
    queue: Arc<InMemoryDeliveryQueue>,
    webhooks: Arc<InMemoryWebhookStore>,
}

fn harness_with(policy: TargetPolicy) -> Harness {
    harness_sharing(policy, Arc::new(InMemoryWebhookStore::default()))
}

fn harness_sharing(policy: TargetPolicy, webhooks: Arc<InMemoryWebhookStore>) -> Harness {
    let keys = Arc::new(InMemoryApiKeyStore::default());
    let attempts = Arc::new(InMemoryAttemptLog::default());
    let health = Arc::new(InMemoryHealthStore::default());
    let queue = Arc::new(InMemoryDeliveryQueue::default());
    let state = AppState {
        webhooks: webhooks.clone(),
        keys: keys.clone(),
        attempts: attempts.clone(),
        health: health.clone(),
        reports: FanOut {
            webhooks: webhooks.clone(),
            events: Arc::new(InMemoryEventStore::default()),
            queue: queue.clone(),
            retention: DAY,
            conditions: Default::default(),
        },
        auth: Authenticator::new(Some(Secret::new(ADMIN)), keys.clone()),
        sender: Sender::new(policy).unwrap(),
    };
    Harness {
        app: router(state),
        attempts,
        keys,
        health,
        queue,
        webhooks,
    }
}

fn harness() -> Harness {
    harness_with(TargetPolicy::default())
}

impl Harness {
    async fn raw(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.raw(method, uri, key, &[], body).await
    }

    async fn create(&self, project: &str, body: Value) -> Value {
        let (status, v) = self
            .call(
                "POST",
                &format!("/v1/projects/{project}/webhooks"),
                Some(ADMIN),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    async fn project_key(&self, project: &str) -> String {
        let (status, v) = self
            .call(
                "POST",
                &format!("/v1/projects/{project}/keys"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["key"].as_str().unwrap().to_string()
    }
}

fn hook() -> Value {
    json!({"name": "crm", "url": "https://api.example.com/u/{{ user.id | default: 'anon' }}", "events": ["order.placed"]})
}

fn error_code(v: &Value) -> (&str, Option<&str>) {
    (
        v["error"]["code"].as_str().unwrap_or("?"),
        v["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn health_answers() {
    let h = harness();
    let (status, v) = h.call("GET", "/v1/health", None, None).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn create_applies_defaults_and_shows_the_secret_once() {
    let h = harness();
    let created = h.create("acme", hook()).await;
    assert_eq!(created["method"], "POST");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["timeout_seconds"], 30);
    assert_eq!(created["version"], 1);
    assert_eq!(created["project_id"], "acme");
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && !secret.contains('*'));
    let id = created["id"].as_str().unwrap();
    let (status, got) = h
        .call(
            "GET",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(got["signing_secret"].as_str().unwrap().contains("****"));
    assert!(!got.to_string().contains(secret));
}

#[tokio::test]
async fn generated_bearer_tokens_are_shown_on_create_and_masked_after() {
    let h = harness();
    let mut body = hook();
    body["auth"] = json!({"type": "bearer", "generate": true});
    let created = h.create("acme", body).await;
    let token = created["auth"]["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hlt_"));
    let id = created["id"].as_str().unwrap();
    let (_, got) = h
        .call(
            "GET",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert!(!got.to_string().contains(&token));
}

#[tokio::test]
async fn bad_requests_name_the_field_and_store_nothing() {
    let h = harness();
    let long_name = "n".repeat(300);
    let cases: Vec<(Body, StatusCode, &str, Option<&str>)> = vec![
        (Body::from("{\"name\": "), StatusCode::BAD_REQUEST, "malformed_json", None),
        (Body::from("[1,2]"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", None),
        (Body::from("{\"name\": \"x\"} trailing"), StatusCode::BAD_REQUEST, "malformed_json", None),
        (Body::from(json!({"url": "https://a.example", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "missing_field", Some("name")),
        (Body::from(json!({"name": long_name, "url": "https://a.example", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("name")),
        (Body::from(json!({"name": "n", "url": "https://a.example", "events": ["*"], "timeout_seconds": "x"}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("timeout_seconds")),
        (Body::from(json!({"name": "n", "url": "https://a.example", "events": ["*"], "auth": {"type": "oauth"}}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("auth.type")),
        (Body::from(json!({"name": "n", "url": "https://a.example", "events": ["*"], "colour": "red"}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("colour")),
        (Body::from(json!({"name": "n", "url": "https://a.example/{{ event.type | }}", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_template", Some("url")),
        (Body::from(json!({"name": "n", "url": "http://169.254.169.254/latest", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "forbidden_target", Some("url")),
        (Body::from(json!({"name": "n", "url": "https://example.com:8443/", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "forbidden_target", Some("url")),
        (Body::from(json!({"name": "n", "url": "https://u:p@example.com/", "events": ["*"]}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "forbidden_target", Some("url")),
        (Body::from(json!({"name": "n", "url": "https://a.example", "events": ["*"], "locales": {"ko": {"url": "http://localhost/"}}}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "forbidden_target", Some("locales.ko.url")),
        (Body::from(vec![b' '; MAX_REQUEST_BYTES + 1]), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
    ];
    for (body, status, code, field) in cases {
        let (got, v) = h
            .raw("POST", "/v1/projects/acme/webhooks", Some(ADMIN), &[], body)
            .await;
        assert_eq!((got, error_code(&v)), (status, (code, field)), "{v}");
    }
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    assert_eq!(list["data"], json!([]));
    // A project no browser or console link could reach again: `..` sent encoded.
    for project in ["%2E%2E", "%2e", "a%2Fb"] {
        let (got, v) = h
            .call(
                "POST",
                &format!("/v1/projects/{project}/webhooks"),
                Some(ADMIN),
                Some(hook()),
            )
            .await;
        assert_eq!(
            (got, error_code(&v)),
            (
                StatusCode::BAD_REQUEST,
                ("invalid_project", Some("project"))
            ),
            "{project}: {v}"
        );
    }
}

#[tokio::test]
async fn keys_authenticate_and_are_bound_to_their_project() {
    let h = harness();
    let acme = h.project_key("acme").await;
    let created = h.create("globex", hook()).await;
    let id = created["id"].as_str().unwrap();
    // No key, a garbled key → 401.
    for key in [
        None,
        Some("nope"),
        Some("hlk_0000000000000000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ] {
        let (status, v) = h.call("GET", "/v1/projects/acme/webhooks", key, None).await;
        assert_eq!(
            (status, error_code(&v).0),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
    // acme's key on globex: 403 whether the webhook exists or not.
    let existing = h
        .call(
            "GET",
            &format!("/v1/projects/globex/webhooks/{id}"),
            Some(&acme),
            None,
        )
        .await;
    let missing = h
        .call(
            "GET",
            "/v1/projects/globex/webhooks/wh_00000000000000000000000000",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(existing, missing);
    assert_eq!(existing.0, StatusCode::FORBIDDEN);
    for (method, uri) in [
        ("PATCH", format!("/v1/projects/globex/webhooks/{id}")),
        ("DELETE", format!("/v1/projects/globex/webhooks/{id}")),
        ("POST", format!("/v1/projects/globex/webhooks/{id}/rotate")),
        ("POST", format!("/v1/projects/globex/webhooks/{id}/test")),
        ("POST", format!("/v1/projects/globex/webhooks/{id}/preview")),
        ("GET", format!("/v1/projects/globex/webhooks/{id}/attempts")),
        ("POST", "/v1/projects/globex/webhooks".to_string()),
    ] {
        let (status, _) = h.call(method, &uri, Some(&acme), Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    // Its own project works; admin routes do not.
    let (status, _) = h
        .call(
            "POST",
            "/v1/projects/acme/webhooks",
            Some(&acme),
            Some(hook()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h
        .call("POST", "/v1/projects/acme/keys", Some(&acme), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_revoked_key_stops_working() {
    let h = harness();
    let (_, created) = h
        .call("POST", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await;
    let key = created["key"].as_str().unwrap();
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(
        h.call("GET", "/v1/projects/acme/webhooks", Some(key), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/v1/projects/globex/keys/{key_id}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/v1/projects/acme/keys/{key_id}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.call("GET", "/v1/projects/acme/webhooks", Some(key), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/v1/projects/acme/keys/{key_id}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

/// What a page weighs in Lambda's answer (its JSON written as a string: `"` and `\`
/// escaped once more), which must stay under Lambda's 6 MB.
fn in_lambdas_answer(page: &Value) -> usize {
    let json = page.to_string();
    json.len() + json.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
}

#[tokio::test]
async fn a_page_of_large_webhooks_stays_within_what_lambda_can_answer() {
    let h = harness();
    // Templates of quotes, the most a webhook's 256 KiB allows: each weighs four times
    // its length in Lambda's answer. 100 to a page would be 48 MB.
    let quotes = "\"".repeat(30_000);
    let raw = json!({"type": "raw", "content_type": "text/plain", "template": quotes});
    let mut ids = vec![];
    for i in 0..30 {
        let mut body = hook();
        body["name"] = json!(format!("large-{i}"));
        body["body"] = raw.clone();
        body["locales"] = json!({"ko": {"body": raw}, "ja": {"body": raw}, "de": {"body": raw}});
        ids.push(
            h.create("acme", body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut seen = vec![];
    let mut pages = 0;
    let mut uri = "/v1/projects/acme/webhooks?limit=100".to_string();
    loop {
        let (status, page) = h.call("GET", &uri, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let weight = in_lambdas_answer(&page);
        assert!(weight < 6_000_000, "page {pages}: {weight} bytes");
        let data = page["data"].as_array().unwrap();
        assert!(!data.is_empty(), "page {pages} is empty");
        seen.extend(data.iter().map(|w| w["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/projects/acme/webhooks?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every webhook once, in order");
    assert!(pages >= 3, "{pages} pages");
    // Small webhooks still come 100 to a page.
    for i in 0..120 {
        let mut body = hook();
        body["name"] = json!(format!("small-{i}"));
        h.create("globex", body).await;
    }
    let (_, page) = h
        .call(
            "GET",
            "/v1/projects/globex/webhooks?limit=100",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_project_past_its_webhook_limit_is_told_so_and_nothing_is_stored() {
    let h = harness();
    let limit = hookline_core::store::MAX_WEBHOOKS_PER_PROJECT as usize;
    let mut first = String::new();
    for i in 0..limit {
        let id = h.create("acme", hook()).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        if i == 0 {
            first = id;
        }
    }
    let count = async |h: &Harness| {
        h.webhooks
            .list("acme", 2 * limit, None)
            .await
            .unwrap()
            .items
            .len()
    };
    let (status, v) = h
        .call(
            "POST",
            "/v1/projects/acme/webhooks",
            Some(ADMIN),
            Some(hook()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), ("webhook_limit", None));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("1000"),
        "{v}"
    );
    assert_eq!(count(&h).await, limit);
    // Another project is not held by it; a delete frees a place.
    h.create("globex", hook()).await;
    let (status, _) = h
        .call(
            "DELETE",
            &format!("/v1/projects/acme/webhooks/{first}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    h.create("acme", hook()).await;
    assert_eq!(count(&h).await, limit);
}

#[tokio::test]
async fn listing_pages_with_an_opaque_cursor_bound_to_the_project() {
    let h = harness();
    let mut ids = vec![];
    for i in 0..5 {
        let mut body = hook();
        body["name"] = json!(format!("hook-{i}"));
        ids.push(
            h.create("acme", body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    h.create("globex", hook()).await;
    let mut seen = vec![];
    let mut uri = "/v1/projects/acme/webhooks?limit=2".to_string();
    loop {
        let (status, page) = h.call("GET", &uri, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK);
        for w in page["data"].as_array().unwrap() {
            assert!(w["signing_secret"].as_str().unwrap().contains("****"));
            seen.push(w["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                let (status, v) = h
                    .call(
                        "GET",
                        &format!("/v1/projects/globex/webhooks?cursor={c}"),
                        Some(ADMIN),
                        None,
                    )
                    .await;
                assert_eq!(
                    (status, error_code(&v)),
                    (StatusCode::BAD_REQUEST, ("invalid_query", Some("cursor")))
                );
                uri = format!("/v1/projects/acme/webhooks?limit=2&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in ["0", "101", "ten"] {
        let (status, v) = h
            .call(
                "GET",
                &format!("/v1/projects/acme/webhooks?limit={bad}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(
            (status, error_code(&v).1),
            (StatusCode::BAD_REQUEST, Some("limit"))
        );
    }
    // A parameter the listing does not take, or one given twice, is named, not ignored.
    let attempts = format!("/v1/projects/acme/webhooks/{}/attempts", ids[0]);
    for (uri, field) in [
        ("/v1/projects/acme/webhooks?limt=2".to_string(), "limt"),
        (
            "/v1/projects/acme/webhooks?status=failed".to_string(),
            "status",
        ),
        (
            "/v1/projects/acme/webhooks?limit=2&limit=50".to_string(),
            "limit",
        ),
        ("/v1/projects/acme/keys?kind=portal".to_string(), "kind"),
        (format!("{attempts}?stauts=failed"), "stauts"),
        (
            format!("{attempts}?status=failed&status=delivered"),
            "status",
        ),
    ] {
        let (status, v) = h.call("GET", &uri, Some(ADMIN), None).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::BAD_REQUEST, ("invalid_query", Some(field))),
            "{uri}: {v}"
        );
    }
    let (status, _) = h
        .call(
            "GET",
            &format!("{attempts}?status=failed&limit=5"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn patch_toggles_revalidates_and_honours_if_match() {
    let h = harness();
    let created = h.create("acme", hook()).await;
    let id = created["id"].as_str().unwrap();
    let uri = format!("/v1/projects/acme/webhooks/{id}");
    let (status, v) = h
        .raw(
            "PATCH",
            &uri,
            Some(ADMIN),
            &[("if-match", "1")],
            Body::from(r#"{"enabled": false}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["enabled"].clone(), v["version"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(v["url"], created["url"]);
    // A stale version is a conflict, and nothing changes.
    let (status, v) = h
        .raw(
            "PATCH",
            &uri,
            Some(ADMIN),
            &[("if-match", "1")],
            Body::from(r#"{"enabled": true}"#),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).0),
        (StatusCode::CONFLICT, "version_conflict")
    );
    let (status, v) = h
        .raw(
            "PATCH",
            &uri,
            Some(ADMIN),
            &[("if-match", "\"2\"")],
            Body::from(r#"{"enabled": true}"#),
        )
        .await;
    assert_eq!((status, v["version"].clone()), (StatusCode::OK, json!(3)));
    let (status, v) = h
        .raw(
            "PATCH",
            &uri,
            Some(ADMIN),
            &[("if-match", "abc")],
            Body::from("{}"),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::BAD_REQUEST, Some("If-Match"))
    );
    // Invalid patches are rejected whole.
    let (status, v) = h
        .call(
            "PATCH",
            &uri,
            Some(ADMIN),
            Some(json!({"name": "renamed", "timeout_seconds": 0})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("timeout_seconds"))
    );
    let (_, now) = h.call("GET", &uri, Some(ADMIN), None).await;
    assert_eq!(
        (now["name"].clone(), now["version"].clone()),
        (json!("crm"), json!(3))
    );
    let (status, _) = h
        .call(
            "PATCH",
            "/v1/projects/acme/webhooks/wh_00000000000000000000000000",
            Some(ADMIN),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A webhook read, edited and sent back whole (GET, change the name, PATCH) keeps its
/// auth secret and does not answer with it in full; before, the masked value became the
/// password the receiver was sent (and a bearer's `generated` was an unknown field).
#[tokio::test]
async fn a_webhook_sent_back_as_read_keeps_its_secrets_masked() {
    let h = harness();
    for auth in [
        json!({"type": "basic", "username": "u", "password": "hunter2"}),
        json!({"type": "bearer", "token": "given-token"}),
        json!({"type": "bearer", "generate": true}),
        json!({"type": "jwt", "secret": "s3cret"}),
    ] {
        let mut body = hook();
        body["auth"] = auth.clone();
        let created = h.create("acme", body).await;
        let id = created["id"].as_str().unwrap();
        let uri = format!("/v1/projects/acme/webhooks/{id}");
        let before = h.webhooks.get("acme", id).await.unwrap().unwrap();
        let (_, mut read) = h.call("GET", &uri, Some(ADMIN), None).await;
        read["name"] = json!("renamed");
        let (status, v) = h.call("PATCH", &uri, Some(ADMIN), Some(read.clone())).await;
        assert_eq!(status, StatusCode::OK, "{auth}: {v}");
        assert_eq!(
            (&v["name"], &v["auth"]),
            (&json!("renamed"), &read["auth"]),
            "{auth}"
        );
        assert!(
            v["signing_secret"].as_str().unwrap().contains("****"),
            "{v}"
        );
        let stored = h.webhooks.get("acme", id).await.unwrap().unwrap();
        assert_eq!(stored.spec.auth, before.spec.auth, "{auth}");
    }
    // Given anew, the auth is answered in full, as before.
    let created = h.create("acme", hook()).await;
    let uri = format!(
        "/v1/projects/acme/webhooks/{}",
        created["id"].as_str().unwrap()
    );
    let (_, v) = h
        .call(
            "PATCH",
            &uri,
            Some(ADMIN),
            Some(json!({"auth": {"type": "basic", "username": "u", "password": "new-pass"}})),
        )
        .await;
    assert_eq!(v["auth"]["password"], "new-pass");
}

#[tokio::test]
async fn credential_headers_are_never_answered_and_survive_a_round_trip() {
    let h = harness();
    let mut body = hook();
    body["headers"] = json!({"X-Api-Key": "hdr-key-secret", "Authorization": "Token hdr-auth-secret", "X-Trace": "plain"});
    let created = h.create("acme", body).await;
    let id = created["id"].as_str().unwrap();
    let uri = format!("/v1/projects/acme/webhooks/{id}");
    let shown =
        json!({"X-Api-Key": "********", "Authorization": "Token ********", "X-Trace": "plain"});
    assert_eq!(created["headers"], shown);
    let (_, read) = h.call("GET", &uri, Some(ADMIN), None).await;
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    let (_, preview) = h
        .call("POST", &format!("{uri}/preview"), Some(ADMIN), None)
        .await;
    for answer in [&created, &read, &list, &preview] {
        assert!(!answer.to_string().contains("hdr-"), "{answer}");
    }
    assert_eq!(read["headers"], shown);
    assert_eq!(preview["headers"]["X-Trace"], "plain");
    // Read, edited, sent back whole: the stored values stay.
    let before = h.webhooks.get("acme", id).await.unwrap().unwrap();
    let mut back = read.clone();
    back["name"] = json!("renamed");
    let (status, v) = h.call("PATCH", &uri, Some(ADMIN), Some(back)).await;
    assert_eq!((status, &v["headers"]), (StatusCode::OK, &shown), "{v}");
    let stored = h.webhooks.get("acme", id).await.unwrap().unwrap();
    assert_eq!(stored.spec.headers, before.spec.headers);
    // A mask for a header that is not stored is refused by name, and nothing changes.
    let (status, v) = h
        .call(
            "PATCH",
            &uri,
            Some(ADMIN),
            Some(json!({"headers": {"X-Auth-Token": "********"}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            ("invalid_field", Some("headers.X-Auth-Token"))
        ),
        "{v}"
    );
    let after = h.webhooks.get("acme", id).await.unwrap().unwrap();
    assert_eq!(after.version, stored.version);
}

#[tokio::test]
async fn delete_then_not_found_and_unknown_ids_are_404() {
    let h = harness();
    let id = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/v1/projects/acme/webhooks/{id}");
    assert_eq!(
        h.call("DELETE", &uri, Some(ADMIN), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.call("GET", &uri, Some(ADMIN), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call("DELETE", &uri, Some(ADMIN), None).await.0,
        StatusCode::NOT_FOUND
    );
    // An id that is not a webhook id is an unknown id; a path no route has is told apart.
    for (uri, code) in [
        ("/v1/projects/acme/webhooks/not-an-id", "not_found"),
        ("/v1/projects/acme/webhooks/../../etc", "unknown_route"),
        ("/v1/nowhere", "unknown_route"),
    ] {
        let (status, v) = h.call("GET", uri, Some(ADMIN), None).await;
        assert_eq!(
            (status, error_code(&v).0),
            (StatusCode::NOT_FOUND, code),
            "{uri}"
        );
    }
    let (status, v) = h
        .call("PUT", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, error_code(&v).0),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn rotate_reveals_the_new_secret_and_keeps_the_old_one_signing() {
    let h = harness();
    let mut body = hook();
    body["auth"] = json!({"type": "bearer", "generate": true});
    let created = h.create("acme", body).await;
    let id = created["id"].as_str().unwrap();
    let (status, rotated) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/rotate"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["signing_secret"], created["signing_secret"]);
    assert!(!rotated["signing_secret"].as_str().unwrap().contains('*'));
    assert_ne!(rotated["auth"]["token"], created["auth"]["token"]);
    assert_eq!(rotated["version"], 2);
}

/// Moving from another sender: a webhook can start, or rotate, with a secret its
/// receiver already has; what a patch cannot change it refuses by name instead of
/// dropping it.
#[tokio::test]
async fn a_signing_secret_can_be_brought_and_a_patch_cannot_drop_one() {
    let h = harness();
    let brought = hookline_core::signing::new_secret();
    let mut body = hook();
    body["signing_secret"] = json!(brought);
    let created = h.create("acme", body).await;
    assert_eq!(created["signing_secret"], brought.as_str());
    let id = created["id"].as_str().unwrap().to_string();
    let stored = h.webhooks.get("acme", &id).await.unwrap().unwrap();
    assert_eq!(stored.signing.current, brought);

    // Bad secrets are refused by name, and make nothing.
    for bad in [
        json!("whsec_c2hvcnQ="),
        json!(brought.trim_start_matches("whsec_")),
        json!("whsec_not base64!"),
        json!(format!("whsec_{}", "A".repeat(88))),
        json!(42),
    ] {
        let mut body = hook();
        body["signing_secret"] = bad.clone();
        let (status, v) = h
            .call(
                "POST",
                "/v1/projects/acme/webhooks",
                Some(ADMIN),
                Some(body),
            )
            .await;
        assert_eq!(
            (status, error_code(&v)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                ("invalid_field", Some("signing_secret"))
            ),
            "{bad}: {v}"
        );
    }
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // A webhook copied from a response (its secret masked) gets a secret of its own.
    let (status, copy) = h
        .call(
            "POST",
            "/v1/projects/acme/webhooks",
            Some(ADMIN),
            Some(list["data"][0].clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_ne!(copy["signing_secret"], brought.as_str());
    assert!(!copy["signing_secret"].as_str().unwrap().contains('*'));

    // Sent back as read, or as the create showed it: ignored. Anything else: refused.
    let path = format!("/v1/projects/acme/webhooks/{id}");
    for sent_back in [
        json!({"name": "a", "id": id, "project_id": "acme", "signing_secret": list["data"][0]["signing_secret"]}),
        json!({"name": "b", "signing_secret": brought}),
    ] {
        let (status, v) = h.call("PATCH", &path, Some(ADMIN), Some(sent_back)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let other = hookline_core::signing::new_secret();
    for (patch, field) in [
        (json!({"signing_secret": other}), "signing_secret"),
        (json!({"signing_secret": null}), "signing_secret"),
        (json!({"id": "wh_01jc0000000000000000000000"}), "id"),
        (json!({"project_id": "globex"}), "project_id"),
    ] {
        let (status, v) = h
            .call("PATCH", &path, Some(ADMIN), Some(patch.clone()))
            .await;
        assert_eq!(
            (status, error_code(&v)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                ("invalid_field", Some(field))
            ),
            "{patch}: {v}"
        );
    }
    let stored = h.webhooks.get("acme", &id).await.unwrap().unwrap();
    assert_eq!(
        (stored.signing.current.as_str(), stored.version),
        (brought.as_str(), 3)
    );

    // Rotation to a brought secret: the old one keeps signing meanwhile.
    let rotate = format!("{path}/rotate");
    for (body, field) in [
        (json!({"signing_secret": brought}), Some("signing_secret")),
        (json!({"signing_secret": "whsec_x"}), Some("signing_secret")),
        (json!({"secret": other}), Some("secret")),
    ] {
        let (status, v) = h
            .call("POST", &rotate, Some(ADMIN), Some(body.clone()))
            .await;
        assert_eq!(
            (status, error_code(&v).1),
            (StatusCode::UNPROCESSABLE_ENTITY, field),
            "{body}: {v}"
        );
    }
    let (status, rotated) = h
        .call(
            "POST",
            &rotate,
            Some(ADMIN),
            Some(json!({"signing_secret": other})),
        )
        .await;
    assert_eq!(
        (status, rotated["signing_secret"].as_str()),
        (StatusCode::OK, Some(other.as_str()))
    );
    let stored = h.webhooks.get("acme", &id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.signing.current.as_str(),
            stored.signing.previous.as_deref()
        ),
        (other.as_str(), Some(brought.as_str()))
    );
}

#[tokio::test]
async fn preview_renders_a_sample_or_a_given_event() {
    let h = harness();
    let mut body = hook();
    body["body"] = json!({"type": "json", "fields": {"email": "{{ user.attributes.email | default: 'n/a' }}", "total": "{{ data.total }}"}});
    body["headers"] = json!({"X-Event": "{{ event.type }}"});
    let id = h.create("acme", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/v1/projects/acme/webhooks/{id}/preview");
    let (status, sample) = h.call("POST", &uri, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{sample}");
    assert_eq!(sample["method"], "POST");
    assert_eq!(sample["url"], "https://api.example.com/u/user_sample");
    assert_eq!(sample["headers"]["X-Event"], "order.placed");
    let (status, given) = h
        .call(
            "POST",
            &uri,
            Some(ADMIN),
            Some(json!({"event": {"type": "order.placed", "data": {"total": 5}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(given["url"], "https://api.example.com/u/anon");
    let body: Value = serde_json::from_str(given["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"email": "n/a", "total": "5"}));
    let (status, v) = h
        .call(
            "POST",
            &uri,
            Some(ADMIN),
            Some(json!({"event": {"data": {}}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("event.type"))
    );
    // Only a body of no bytes means "use the sample": whitespace is not JSON.
    for blank in ["\r", " ", "\n\t"] {
        let (status, v) = h
            .raw(
                "POST",
                &uri,
                Some(ADMIN),
                &[("content-type", "application/json")],
                Body::from(blank),
            )
            .await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::BAD_REQUEST, ("malformed_json", None)),
            "{blank:?}: {v}"
        );
    }
}

#[tokio::test]
async fn test_send_signs_sends_and_reports_without_leaking_the_credential() {
    use axum::routing::any;
    let received = Arc::new(std::sync::Mutex::new(Vec::<(HeaderMap, String)>::new()));
    let r = received.clone();
    let receiver = Router::new()
        .route(
            "/ok",
            any(move |headers: HeaderMap, body: String| {
                r.lock().unwrap().push((headers, body));
                async { (StatusCode::OK, [("x-receiver", "1")], "got it") }
            }),
        )
        .route(
            "/fail",
            any(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let h = harness_with(TargetPolicy {
        allow_private: true,
    });
    let mut body = hook();
    body["url"] = json!(format!("http://{addr}/ok"));
    body["auth"] = json!({"type": "bearer", "token": "very-secret-token"});
    body["headers"] = json!({"X-Api-Key": "very-secret-key"});
    let created = h.create("acme", body).await;
    let id = created["id"].as_str().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    let (status, result) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/test"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["outcome"], "delivered");
    assert_eq!(result["retryable"], false);
    assert_eq!(result["error"], Value::Null);
    assert_eq!(result["response"]["status"], 200);
    assert_eq!(result["response"]["body"], "got it");
    assert_eq!(result["response"]["headers"]["x-receiver"], "1");
    assert!(!result.to_string().contains("very-secret"), "{result}");
    assert_eq!(result["request"]["headers"]["X-Api-Key"], "********");
    let (headers, sent_body) = received.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer very-secret-token");
    assert_eq!(headers["x-api-key"], "very-secret-key");
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(signing::verify(
        secret,
        headers["webhook-id"].to_str().unwrap(),
        ts,
        sent_body.as_bytes(),
        headers["webhook-signature"].to_str().unwrap()
    ));

    // A failing receiver is still a 200 answer, with the outcome in the body; nothing logged.
    let (_, v) = h
        .call(
            "PATCH",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(ADMIN),
            Some(json!({"url": format!("http://{addr}/fail")})),
        )
        .await;
    assert_eq!(v["version"], 2);
    let (status, result) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/test"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (result["outcome"].clone(), result["retryable"].clone()),
        (json!("failed"), json!(true))
    );
    assert_eq!(result["error"], "HTTP 503");
    assert!(h.attempts.all().is_empty());
}

#[tokio::test]
async fn a_test_send_waits_on_its_receiver_no_longer_than_api_gateway_does() {
    // A receiver that takes the request and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let h = harness_with(TargetPolicy {
        allow_private: true,
    });
    let mut body = hook();
    body["url"] = json!(format!("http://{addr}/slow"));
    body["timeout_seconds"] = json!(90);
    let id = h.create("acme", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, result) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/test"),
            Some(ADMIN),
            None,
        )
        .await;
    // Answered by Hookline before API Gateway's 30 s, saying why it stopped waiting.
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        (result["outcome"].clone(), result["retryable"].clone()),
        (json!("failed"), json!(true))
    );
    assert_eq!(
        result["error"],
        "no answer within 25 s, the most a test send waits (API Gateway answers for at most 30 s); deliveries wait the webhook's 90 s"
    );
    assert!(
        (25_000..30_000).contains(&result["duration_ms"].as_u64().unwrap()),
        "{result}"
    );
}

#[tokio::test]
async fn test_send_to_an_internal_address_is_refused_at_send_time() {
    use axum::routing::any;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let canary = Router::new().route(
        "/",
        any(move || {
            h2.fetch_add(1, Ordering::SeqCst);
            async { "canary" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, canary).await.unwrap() });
    // Registered while private targets were allowed; the deployment has since tightened.
    let store = Arc::new(InMemoryWebhookStore::default());
    let open = harness_sharing(
        TargetPolicy {
            allow_private: true,
        },
        store.clone(),
    );
    let mut body = hook();
    body["url"] = json!(format!("http://{addr}/"));
    let id = open.create("acme", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let strict = harness_sharing(TargetPolicy::default(), store);
    let (status, result) = strict
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/test"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (result["outcome"].clone(), result["retryable"].clone()),
        (json!("failed"), json!(false))
    );
    assert!(
        result["error"].as_str().unwrap().contains("not sent"),
        "{result}"
    );
    assert_eq!(result["response"], Value::Null);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn attempts_list_newest_first_filtered_and_paginated() {
    let h = harness();
    let id = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = clock::now_ms();
    for (i, status) in [
        AttemptStatus::Retrying,
        AttemptStatus::Retrying,
        AttemptStatus::Delivered,
    ]
    .into_iter()
    .enumerate()
    {
        let attempt = Attempt {
            id: format!("att_{i}"),
            project_id: "acme".into(),
            event_id: "ev_1".into(),
            event_type: "order.placed".into(),
            webhook_id: id.clone(),
            delivery_id: "msg_1".into(),
            attempt: i as u32 + 1,
            status,
            status_code: Some(if i < 2 { 500 } else { 200 }),
            duration_ms: 5,
            error: None,
            response_excerpt: None,
            next_attempt_at: None,
            created_at: now - 1_000 + i as i64,
        };
        h.attempts.record(&attempt, now + DAY).await.unwrap();
    }
    // An expired delivery is not shown even though TTL has not removed it.
    let mut expired = h.attempts.all()[0].clone();
    expired.id = "att_old".into();
    expired.delivery_id = "msg_0".into();
    expired.created_at = now - 5_000;
    h.attempts.record(&expired, now - 1).await.unwrap();

    let base = format!("/v1/projects/acme/webhooks/{id}/attempts");
    let (status, all) = h.call("GET", &base, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    let numbers: Vec<_> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1]);
    let (_, retrying) = h
        .call(
            "GET",
            &format!("{base}?status=retrying&limit=1"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(retrying["data"][0]["attempt"], 2);
    let cursor = retrying["next_cursor"].as_str().unwrap();
    let (_, rest) = h
        .call(
            "GET",
            &format!("{base}?status=retrying&limit=1&cursor={cursor}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(rest["data"][0]["attempt"], 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, v) = h
        .call("GET", &format!("{base}?status=lost"), Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
}

/// The API Gateway v2 events `sam local invoke -e` uses (tests/events/register-*.json)
/// go through this very router, as lambda_http hands them over on Lambda.
#[tokio::test]
async fn the_sam_local_fixtures_route_and_answer() {
    let store = Arc::new(InMemoryWebhookStore::default());
    let h = harness_sharing(TargetPolicy::default(), store.clone());
    let spec = WebhookSpec::from_create(
        hookline_core::model::decode_json::<WebhookInput>(hook().to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    let fixture_hook = Webhook {
        id: "wh_01jc0000000000000000000000".into(),
        project_id: "acme".into(),
        spec,
        signing: SigningSecrets {
            current: signing::new_secret(),
            previous: None,
            previous_expires_at: None,
        },
        created_at: 0,
        updated_at: 0,
        version: 1,
        disabled_reason: None,
        disabled_at: None,
    };
    store.create(&fixture_hook).await.unwrap();
    h.keys
        .put(&hookline_core::store::ApiKeyRecord {
            id: "key_01jc0000000000000000000000".into(),
            project_id: "acme".into(),
            key_hash: "0".repeat(64),
            created_at: 0,
            portal: None,
            name: None,
        })
        .await
        .unwrap();
    let expected = [
        ("register-health", StatusCode::OK),
        ("register-create-webhook", StatusCode::CREATED),
        ("register-list-webhooks", StatusCode::OK),
        ("register-get-webhook", StatusCode::OK),
        ("register-patch-webhook", StatusCode::OK),
        ("register-preview", StatusCode::OK),
        ("register-test", StatusCode::OK),
        ("register-attempts", StatusCode::OK),
        ("register-rotate", StatusCode::OK),
        ("register-create-key", StatusCode::CREATED),
        ("register-delete-key", StatusCode::NO_CONTENT),
        ("register-delete-webhook", StatusCode::NO_CONTENT),
    ];
    let dir = hookline_e2e::workspace_root().join("tests/events");
    let mut covered = 0;
    for (name, status) in expected {
        let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let request = lambda_http::request::from_str(&json).unwrap();
        let response = h.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{name}");
        covered += 1;
    }
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("register-")
        })
        .count();
    assert_eq!(covered, on_disk, "every register fixture is exercised");
}

/// SPEC §8: the hostile templates and event of `hookline_e2e::hostile` (a sample of the
/// property test's cases) through registration, preview and test send: every answer is
/// a success or a 4xx in the error shape, never a 500 (which a contained panic would be).
#[tokio::test]
async fn hostile_templates_and_events_never_fail_a_route() {
    let h = harness_with(TargetPolicy {
        allow_private: true,
    });
    let rx = hookline_e2e::receiver::start().await;
    let event = json!({"event": hookline_e2e::hostile::hostile_event()});
    let cases = hookline_e2e::hostile::sample(100);
    let (mut created, mut sent) = (0, 0);
    for case in &cases {
        let (status, v) = h
            .call(
                "POST",
                "/v1/projects/hostile/webhooks",
                Some(ADMIN),
                Some(
                    json!({"name": "h", "url": format!("{}/ok/h", rx.base), "events": ["*"],
                            "body": {"type": "raw", "template": case.template}}),
                ),
            )
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY,
            "create {}: {status} {v}",
            case.what
        );
        if status != StatusCode::CREATED {
            continue;
        }
        created += 1;
        let id = v["id"].as_str().unwrap();
        for route in ["preview", "test"] {
            let (status, v) = h
                .call(
                    "POST",
                    &format!("/v1/projects/hostile/webhooks/{id}/{route}"),
                    Some(ADMIN),
                    Some(event.clone()),
                )
                .await;
            assert!(
                status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{route} {}: {status} {v}",
                case.what
            );
            if route == "test" && status == StatusCode::OK {
                sent += 1;
            }
        }
    }
    println!(
        "{} hostile cases: {created} registered, {sent} test-sent, none failed a route",
        cases.len()
    );
    assert!(created > 100 && sent > 100, "{created} {sent}");
}

/// SPEC §10: every webhook, got or listed, carries its health; a list reads them all
/// in one go.
#[tokio::test]
async fn webhooks_carry_their_health() {
    use hookline_core::health::{Observed, Update};
    let h = harness();
    let a = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = clock::now_ms();
    let observed = |delivered: bool, at: Millis| Observed {
        at,
        delivered,
        status_code: Some(if delivered { 200 } else { 502 }),
        error: (!delivered).then(|| "HTTP 502".to_string()),
    };
    h.health
        .record(
            "acme",
            &a,
            &Update::of(vec![observed(true, now - 2), observed(false, now - 1)]),
            now,
            now + DAY,
        )
        .await
        .unwrap();
    let (_, got) = h
        .call(
            "GET",
            &format!("/v1/projects/acme/webhooks/{a}"),
            Some(ADMIN),
            None,
        )
        .await;
    let health = &got["health"];
    assert_eq!(
        (health["delivered"].as_u64(), health["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(health["success_rate"], 0.5);
    assert_eq!(health["window_hours"], 24);
    assert_eq!(
        (
            health["last_status_code"].as_u64(),
            health["last_error"].as_str()
        ),
        (Some(502), Some("HTTP 502"))
    );
    assert!(health["failing_since"].is_string() && health["last_success_at"].is_string());
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    let by_id: std::collections::HashMap<&str, &Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["id"].as_str().unwrap(), &w["health"]))
        .collect();
    assert_eq!(by_id[a.as_str()]["failed"], 1);
    // No attempt yet: zeros and nulls, not an absent field.
    assert_eq!(by_id[b.as_str()]["delivered"], 0);
    assert_eq!(by_id[b.as_str()]["success_rate"], Value::Null);
}

/// A manual disable says so and is reported like Hookline's own; enabling clears it,
/// and health's `failing_since` with it.
#[tokio::test]
async fn a_manual_disable_is_recorded_reported_and_cleared_on_enable() {
    use hookline_core::health::{Observed, Update};
    let h = harness();
    let id = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.create(
        "acme",
        json!({"name": "watch", "url": "https://example.com/w", "events": ["webhook.disabled"]}),
    )
    .await;
    let now = clock::now_ms();
    let failure = Observed {
        at: now,
        delivered: false,
        status_code: Some(500),
        error: Some("HTTP 500".into()),
    };
    h.health
        .record("acme", &id, &Update::of(vec![failure]), now, now + DAY)
        .await
        .unwrap();
    let path = format!("/v1/projects/acme/webhooks/{id}");
    let (status, off) = h
        .call("PATCH", &path, Some(ADMIN), Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(
        (off["enabled"].as_bool(), off["disabled_reason"].as_str()),
        (Some(false), Some("manual"))
    );
    assert!(off["disabled_at"].is_string());
    let sent = h.queue.recorded().sent;
    assert_eq!(sent.len(), 1, "one report, to the watcher");
    let task: hookline_core::model::DeliveryTask = serde_json::from_str(&sent[0].body).unwrap();
    let event = task.event.unwrap();
    assert_eq!(
        (event.event_type.as_str(), event.data["reason"].as_str()),
        ("webhook.disabled", Some("manual"))
    );
    assert_eq!(event.data["last_status_code"], 500);
    // Another PATCH of a disabled webhook keeps why and when it was disabled.
    let (_, renamed) = h
        .call(
            "PATCH",
            &path,
            Some(ADMIN),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(
        (
            renamed["disabled_reason"].clone(),
            renamed["disabled_at"].clone()
        ),
        (off["disabled_reason"].clone(), off["disabled_at"].clone())
    );
    let (_, on) = h
        .call("PATCH", &path, Some(ADMIN), Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        (on["disabled_reason"].clone(), on["disabled_at"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(on["health"]["failing_since"], Value::Null);
    let stored = h
        .health
        .get("acme", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(stored[&id].failing_since, None);
    assert_eq!(h.queue.recorded().sent.len(), 1, "enabling reports nothing");
    // A webhook created disabled is manually disabled from the start.
    let created = h.create("acme", json!({"name": "off", "url": "https://example.com/o", "events": ["*"], "enabled": false})).await;
    assert_eq!(created["disabled_reason"], "manual");
    let _ = &h.webhooks;
}

/// SPEC §9: a template may abort its message; preview and test send say so.
#[tokio::test]
async fn an_aborted_message_is_previewed_and_test_sent_as_aborted() {
    let h = harness_with(TargetPolicy {
        allow_private: true,
    });
    let rx = hookline_e2e::receiver::start().await;
    let created = h
        .create(
            "acme",
            json!({"name": "a", "url": format!("{}/ok/abort", rx.base), "events": ["*"],
                   "body": {"type": "raw", "template": "{% if data.total < 10 %}{% abort_message(\"too small\") %}{% endif %}{{ data.total }}"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let small = json!({"event": {"type": "order.placed", "data": {"total": 3}}});
    let (status, preview) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/preview"),
            Some(ADMIN),
            Some(small.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        preview,
        json!({"method": null, "url": null, "headers": null, "body": null, "aborted": "too small"})
    );
    let (status, test) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/test"),
            Some(ADMIN),
            Some(small),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            test["outcome"].as_str(),
            test["request"].clone(),
            test["response"].clone(),
            test["error"].as_str()
        ),
        (Some("aborted"), Value::Null, Value::Null, Some("too small"))
    );
    assert!(rx.received().is_empty(), "nothing was sent");
    // Otherwise as ever, `aborted` null.
    let big = json!({"event": {"type": "order.placed", "data": {"total": 30}}});
    let (_, preview) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/preview"),
            Some(ADMIN),
            Some(big),
        )
        .await;
    assert_eq!(
        (preview["body"].as_str(), preview["aborted"].clone()),
        (Some("30"), Value::Null)
    );
}

/// A filter is parsed at registration: 422 naming `filter` with a line and column in the
/// filter's own text, and nothing stored.
#[tokio::test]
async fn a_filter_that_does_not_parse_is_refused_with_its_position() {
    let h = harness();
    let mut body = hook();
    body["filter"] = json!("data.total >");
    let (status, v) = h
        .call(
            "POST",
            "/v1/projects/acme/webhooks",
            Some(ADMIN),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, error_code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            ("invalid_template", Some("filter"))
        )
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1, column"),
        "{v}"
    );
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(ADMIN), None)
        .await;
    assert!(list["data"].as_array().unwrap().is_empty());
    let mut body = hook();
    body["filter"] = json!("data.total > 100 and user.locale == 'ko'");
    body["channels"] = json!(["store"]);
    let created = h.create("acme", body).await;
    assert_eq!(
        (created["filter"].as_str(), created["channels"].clone()),
        (
            Some("data.total > 100 and user.locale == 'ko'"),
            json!(["store"])
        )
    );
    // The sample event of a preview is of the webhook's first channel.
    let id = created["id"].as_str().unwrap();
    let mut patch = json!({"body": {"type": "raw", "template": "{{ event.channel }}"}});
    patch["url"] = json!("https://example.com/x");
    h.call(
        "PATCH",
        &format!("/v1/projects/acme/webhooks/{id}"),
        Some(ADMIN),
        Some(patch),
    )
    .await;
    let (_, preview) = h
        .call(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/preview"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(preview["body"], "store");
}

impl Harness {
    async fn portal(&self, project: &str, key: &str, body: Value) -> Value {
        let (status, v) = self
            .call(
                "POST",
                &format!("/v1/projects/{project}/portal"),
                Some(key),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }
}

/// Every registration route on project `acme`, with a body each accepts.
fn acme_routes(id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let p = "/v1/projects/acme";
    vec![
        ("GET", format!("{p}/webhooks"), None),
        ("GET", format!("{p}/webhooks/{id}"), None),
        ("POST", format!("{p}/webhooks/{id}/preview"), None),
        ("GET", format!("{p}/webhooks/{id}/attempts"), None),
        ("POST", format!("{p}/webhooks"), Some(hook())),
        (
            "PATCH",
            format!("{p}/webhooks/{id}"),
            Some(json!({"name": "renamed"})),
        ),
        ("POST", format!("{p}/webhooks/{id}/rotate"), None),
        ("POST", format!("{p}/webhooks/{id}/test"), None),
        ("DELETE", format!("{p}/webhooks/{id}"), None),
        ("POST", format!("{p}/keys"), None),
        ("GET", format!("{p}/keys"), None),
        (
            "DELETE",
            format!("{p}/keys/key_00000000000000000000000000"),
            None,
        ),
        ("POST", format!("{p}/portal"), None),
    ]
}

#[tokio::test]
async fn portal_links_are_issued_by_keys_and_describe_their_session() {
    let h = harness();
    let acme = h.project_key("acme").await;
    for key in [ADMIN, acme.as_str()] {
        let link = h.portal("acme", key, json!({})).await;
        let token = link["token"].as_str().unwrap();
        assert!(token.starts_with("hlp_"));
        assert_eq!(
            link["url"],
            format!("http://localhost/console#token={token}")
        );
        assert_eq!(
            (link["project_id"].as_str(), link["read_only"].as_bool()),
            (Some("acme"), Some(false))
        );
        let (status, session) = h.call("GET", "/v1/portal/session", Some(token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(session["project_id"], "acme");
        assert_eq!(session["read_only"], false);
        assert_eq!(session["kind"], "portal");
        assert_eq!(session["expires_at"], link["expires_at"]);
        let expires = clock::parse_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
        let hour = expires - clock::now_ms();
        assert!((3_598_000..=3_600_000).contains(&hour), "{hour}");
    }
    // The link names the host it was asked on, https behind API Gateway.
    let (_, link) = h
        .raw(
            "POST",
            "/v1/projects/acme/portal",
            Some(ADMIN),
            &[
                ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
                ("x-forwarded-proto", "https"),
            ],
            Body::from(r#"{"ttl_seconds": 60, "read_only": true}"#),
        )
        .await;
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("https://abc.execute-api.eu-west-1.amazonaws.com/console#token=hlp_")
    );
    assert_eq!(link["read_only"], true);
    // Sessions of the other credentials.
    let (_, admin) = h.call("GET", "/v1/portal/session", Some(ADMIN), None).await;
    assert_eq!(
        (admin["kind"].as_str(), admin["project_id"].as_str()),
        (Some("admin"), None)
    );
    let (_, project) = h.call("GET", "/v1/portal/session", Some(&acme), None).await;
    assert_eq!(
        (project["kind"].as_str(), project["project_id"].as_str()),
        (Some("project"), Some("acme"))
    );
    let (status, _) = h.call("GET", "/v1/portal/session", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Bad terms name their field and store nothing.
    let before = h
        .call("GET", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await
        .1["data"]
        .as_array()
        .unwrap()
        .len();
    for (body, field) in [
        (json!({"ttl_seconds": 0}), "ttl_seconds"),
        (json!({"ttl_seconds": 86_401}), "ttl_seconds"),
        (json!({"ttl_seconds": 1.5}), "ttl_seconds"),
        (json!({"ttl_seconds": "60"}), "ttl_seconds"),
        (json!({"read_only": "yes"}), "read_only"),
        (json!({"ttl": 60}), "ttl"),
        (json!({"name": ""}), "name"),
        (json!({"name": 7}), "name"),
    ] {
        let (status, v) = h
            .call(
                "POST",
                "/v1/projects/acme/portal",
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, error_code(&v).1),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body} {v}"
        );
    }
    let after = h
        .call("GET", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await
        .1["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    // Another project's key gets nothing here.
    let globex = h.project_key("globex").await;
    let (status, _) = h
        .call("POST", "/v1/projects/acme/portal", Some(&globex), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_route_enforces_portal_tokens() {
    let h = harness();
    let full = h.portal("acme", ADMIN, json!({})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let read = h.portal("acme", ADMIN, json!({"read_only": true})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = h.portal("globex", ADMIN, json!({})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (expired, expired_token) =
        api::new_portal_token("acme", false, 60, clock::now_ms() - 61_000);
    h.keys.put(&expired).await.unwrap();
    let is_read = |method: &str, uri: &str| {
        (method == "GET" && !uri.ends_with("/keys"))
            || (method == "POST" && uri.ends_with("/preview"))
    };
    let credential = |uri: &str| uri.contains("/keys") || uri.ends_with("/portal");
    let id = h.create("acme", hook()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, uri, body) in acme_routes(&id) {
        let call = |token: String| {
            let (method, uri, body) = (method, uri.clone(), body.clone());
            let h = &h;
            async move { h.call(method, &uri, Some(&token), body).await }
        };
        // Expired: 401 everywhere. Another project's token: 403 everywhere.
        let (status, v) = call(expired_token.clone()).await;
        assert_eq!(
            (status, error_code(&v).0),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{method} {uri}"
        );
        let (status, _) = call(globex.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
        // Read-only: reads and previews, nothing else.
        let (status, v) = call(read.clone()).await;
        if is_read(method, &uri) {
            assert!(
                status.is_success(),
                "read-only {method} {uri}: {status} {v}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "read-only {method} {uri}: {v}"
            );
            if !credential(&uri) {
                assert_eq!(error_code(&v).0, "read_only", "{method} {uri}");
            }
        }
        // Full: everything but credentials (keys and portal links).
        let (status, v) = call(full.clone()).await;
        if credential(&uri) {
            assert_eq!(status, StatusCode::FORBIDDEN, "full {method} {uri}: {v}");
        } else if method == "POST" && uri.ends_with("/test") {
            // Sent to example.com, which this machine cannot reach: an answer, not a refusal.
            assert_eq!(status, StatusCode::OK, "full {method} {uri}: {v}");
        } else {
            assert!(status.is_success(), "full {method} {uri}: {status} {v}");
        }
    }
    // The read-only token left nothing behind: the full token created one webhook and
    // deleted the first.
    let (_, list) = h
        .call("GET", "/v1/projects/acme/webhooks", Some(&read), None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_and_portal_links_take_a_name_and_refuse_what_they_do_not_know() {
    let h = harness();
    let (status, key) = h
        .call(
            "POST",
            "/v1/projects/acme/keys",
            Some(ADMIN),
            Some(json!({"name": "billing backend"})),
        )
        .await;
    assert_eq!(
        (status, &key["name"]),
        (StatusCode::CREATED, &json!("billing backend"))
    );
    // No body, as before: a key without a name.
    let (status, plain) = h
        .call("POST", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, &plain["name"]),
        (StatusCode::CREATED, &Value::Null)
    );
    let link = h
        .portal("acme", ADMIN, json!({"name": "Acme's portal"}))
        .await;
    assert_eq!(link["name"], "Acme's portal");
    let listed = |v: Value| -> Vec<(Value, Value)> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["id"].clone(), k["name"].clone()))
            .collect()
    };
    let (_, list) = h
        .call("GET", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await;
    let expected = vec![
        (key["id"].clone(), json!("billing backend")),
        (plain["id"].clone(), Value::Null),
        (link["id"].clone(), json!("Acme's portal")),
    ];
    assert_eq!(listed(list), expected);
    // An unknown field, a bad name or a body that is no object is refused by name and
    // makes no key.
    for (body, field) in [
        (json!({"nme": "ci"}), Some("nme")),
        (json!({"name": ""}), Some("name")),
        (json!({"name": "a\u{7}b"}), Some("name")),
        (json!({"name": "x".repeat(101)}), Some("name")),
        (json!({"name": ["ci"]}), Some("name")),
        (json!(["ci"]), None),
    ] {
        let (status, v) = h
            .call(
                "POST",
                "/v1/projects/acme/keys",
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, error_code(&v).1),
            (StatusCode::UNPROCESSABLE_ENTITY, field),
            "{body} {v}"
        );
    }
    let (_, list) = h
        .call("GET", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await;
    assert_eq!(listed(list), expected);
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_a_project_key_revokes_only_its_portal_links() {
    let h = harness();
    let acme = h.project_key("acme").await;
    let globex = h.project_key("globex").await;
    let link = h
        .portal(
            "acme",
            &acme,
            json!({"read_only": true, "ttl_seconds": 600}),
        )
        .await;
    let other = h.portal("globex", &globex, json!({})).await;
    let (status, list) = h
        .call("GET", "/v1/projects/acme/keys", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kind"], "project");
    assert_eq!(
        (listed[1]["kind"].as_str(), listed[1]["read_only"].as_bool()),
        (Some("portal"), Some(true))
    );
    assert_eq!(listed[1]["id"], link["id"]);
    assert!(
        !list.to_string().contains(&acme)
            && !list.to_string().contains(link["token"].as_str().unwrap())
    );
    assert!(!list.to_string().contains("hash"));
    let (status, _) = h
        .call("GET", "/v1/projects/acme/keys", Some(&acme), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A project key revokes its project's link; not another project's, not a key.
    let acme_key_id = listed[0]["id"].as_str().unwrap();
    for (uri, expected) in [
        (
            format!("/v1/projects/acme/keys/{acme_key_id}"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/projects/acme/keys/{}", other["id"].as_str().unwrap()),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/projects/globex/keys/{}", other["id"].as_str().unwrap()),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/v1/projects/acme/keys/{}", link["id"].as_str().unwrap()),
            StatusCode::NO_CONTENT,
        ),
    ] {
        let (status, v) = h.call("DELETE", &uri, Some(&acme), None).await;
        assert_eq!(status, expected, "{uri} {v}");
    }
    let (status, _) = h
        .call("GET", "/v1/portal/session", link["token"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.call("GET", "/v1/portal/session", Some(&acme), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_draft_is_previewed_and_test_sent_without_being_stored() {
    let h = harness();
    let created = h.create("acme", hook()).await;
    let id = created["id"].as_str().unwrap();
    let uri = format!("/v1/projects/acme/webhooks/{id}/preview");
    let (status, v) = h
        .call(
            "POST",
            &uri,
            Some(ADMIN),
            Some(json!({"webhook": {"url": "https://api.example.com/draft/{{ event.type }}"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["url"], "https://api.example.com/draft/order.placed");
    // Its errors name the field inside `webhook`, at its line and column.
    let (status, v) = h
        .call("POST", &uri, Some(ADMIN), Some(json!({"webhook": {"body": {"type": "raw", "template": "{{ x ", "content_type": "text/plain"}}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v).1, Some("webhook.body.template"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1, column"),
        "{v}"
    );
    let (status, v) = h
        .call(
            "POST",
            &uri,
            Some(ADMIN),
            Some(json!({"webhook": {"name": null}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("webhook.name"))
    );
    let (status, v) = h
        .call(
            "POST",
            &uri,
            Some(ADMIN),
            Some(json!({"webhook": {"url": "http://127.0.0.1/x"}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("webhook.url")),
        "{v}"
    );
    // Nothing of it was stored.
    let (_, stored) = h
        .call(
            "GET",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(stored["url"], created["url"]);
    assert_eq!(stored["version"], created["version"]);
}

#[tokio::test]
async fn the_console_is_served_with_its_policy_and_nothing_else_is() {
    let h = harness();
    for (uri, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/style.css", "text/css; charset=utf-8"),
    ] {
        let response = h
            .app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], content_type);
        assert_eq!(
            headers["content-security-policy"],
            console::CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    for uri in [
        "/console/secret.js",
        "/console/..%2Fsrc%2Flib.rs",
        "/console/index.html/x",
    ] {
        let (status, v) = h.call("GET", uri, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(v["error"]["code"].is_string(), "{uri}: {v}");
    }
    let (status, _) = h.call("POST", "/console", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_patch_removes_nested_keys_with_null_through_the_route() {
    let h = harness();
    let created = h
        .create(
            "acme",
            json!({"name": "n", "url": "https://example.com/", "events": ["a"],
                   "headers": {"X-Old": "1", "X-Keep": "2"},
                   "body": {"type": "json", "fields": {"a": "1", "b": "2"}},
                   "locales": {"ko": {"url": "https://example.com/ko", "body": {"type": "raw", "template": "x"}}},
                   "auth": {"type": "jwt", "secret": "s", "claims": {"iss": "i", "aud": "a"}}}),
        )
        .await;
    let uri = format!(
        "/v1/projects/acme/webhooks/{}",
        created["id"].as_str().unwrap()
    );
    let (status, v) = h
        .call(
            "PATCH",
            &uri,
            Some(ADMIN),
            Some(
                json!({"headers": {"X-Old": null}, "body": {"fields": {"a": null}},
                        "locales": {"ko": {"url": null}}, "auth": {"claims": {"aud": null}}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["headers"], json!({"X-Keep": "2"}));
    assert_eq!(v["body"]["fields"], json!({"b": "2"}));
    assert!(
        v["locales"]["ko"]["url"].is_null() && v["locales"]["ko"]["body"]["template"] == "x",
        "{v}"
    );
    assert_eq!(v["auth"]["claims"], json!({"iss": "i"}));
    // A wrong type is still refused by name.
    let (status, v) = h
        .call(
            "PATCH",
            &uri,
            Some(ADMIN),
            Some(json!({"headers": {"X-New": 5}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&v).1),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("headers.X-New"))
    );
}
