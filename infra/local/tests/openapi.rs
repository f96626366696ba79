#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! infra/openapi.yaml is kept true: every operation it documents is served by the API as
//! API Gateway routes it (both functions' routers, joined as `hookline-local` joins them),
//! every route the routers serve is documented, the SAM template routes the same paths,
//! and `GET /v1/openapi.json` serves the YAML document faithfully.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use hookline_core::api::Authenticator;
use hookline_core::clock::DAY;
use hookline_core::fanout::FanOut;
use hookline_core::guard::TargetPolicy;
use hookline_core::queue::InMemoryDeliveryQueue;
use hookline_core::sender::Sender;
use hookline_core::store::memory::{
    InMemoryApiKeyStore, InMemoryAttemptLog, InMemoryEventStore, InMemoryWebhookStore,
};

/// Every method a route could answer (HEAD is answered wherever GET is, by axum; the
/// document lists GET).
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

type Operations = BTreeSet<(String, String)>;

fn api() -> Router {
    let webhooks = Arc::new(InMemoryWebhookStore::default());
    let keys = Arc::new(InMemoryApiKeyStore::default());
    let attempts = Arc::new(InMemoryAttemptLog::default());
    let auth = Authenticator::new(None, keys.clone());
    let events = Arc::new(InMemoryEventStore::default());
    let queue = Arc::new(InMemoryDeliveryQueue::default());
    let register = register::router(register::AppState {
        webhooks: webhooks.clone(),
        keys,
        attempts: attempts.clone(),
        health: Arc::new(hookline_core::store::memory::InMemoryHealthStore::default()),
        reports: FanOut {
            webhooks: webhooks.clone(),
            events: events.clone(),
            queue: queue.clone(),
            retention: DAY,
            conditions: Default::default(),
        },
        auth: auth.clone(),
        sender: Sender::new(TargetPolicy {
            allow_private: false,
        })
        .unwrap(),
    });
    let trigger = trigger::router(trigger::AppState {
        fanout: FanOut {
            webhooks,
            events,
            queue,
            retention: DAY,
            conditions: Default::default(),
        },
        attempts,
        auth,
    });
    hookline_local::api(register, trigger)
}

fn document() -> serde_json::Value {
    serde_json::from_str(register::OPENAPI_JSON).unwrap()
}

fn documented(doc: &serde_json::Value) -> Operations {
    let mut ops = Operations::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// What the API answers, found by asking: every path the routers are built from, with
/// every method; a method is served unless the answer is 405 `method_not_allowed`.
async fn served() -> Operations {
    let app = api();
    let paths: BTreeSet<&str> = register::routes()
        .into_iter()
        .map(|(p, _)| p)
        .chain(trigger::routes().into_iter().map(|(p, _)| p))
        .collect();
    let mut ops = Operations::new();
    for path in paths {
        let uri = path.replace("{project}", "acme").replace("{id}", "wh_x");
        for method in METHODS {
            let response = app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(*method)
                        .uri(&uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = body["error"]["code"].as_str().unwrap_or_default();
            assert_ne!(
                code, "unknown_route",
                "{method} {uri}: a router path is unrouted"
            );
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert_eq!(code, "method_not_allowed", "{method} {uri}");
            } else {
                ops.insert((method.to_string(), path.to_string()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_and_the_routers_list_the_same_operations() {
    let doc = documented(&document());
    let served = served().await;
    let undocumented: Vec<_> = served.difference(&doc).collect();
    let unserved: Vec<_> = doc.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}\ndocumented but not served: {unserved:?}"
    );
    // SPEC §6: every route, health, the index and this document included.
    // SPEC §11 added the key listing, portal links and the session.
    assert_eq!(doc.len(), 24, "{doc:?}");
}

#[tokio::test]
async fn an_unknown_path_is_told_apart_from_an_unknown_id() {
    let app = api();
    for (uri, code) in [
        ("/v1/nothing/here", "unknown_route"),
        ("/v1/projects/acme/webhooks/wh_x/nothing", "unknown_route"),
        ("/v1/projects/acme/events/evt_x/", "unknown_route"),
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
    }
}

#[test]
fn the_sam_template_routes_the_documented_paths_to_the_functions() {
    let doc = document();
    let documented = documented(&doc);
    let template = hookline_e2e::template();
    let mut routed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, resource) in template["Resources"].as_object().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_object() else {
            continue;
        };
        for event in events.values() {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                routed
                    .entry(p["Path"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(p["Method"].as_str().unwrap().to_ascii_uppercase());
            }
        }
    }
    // The console's page and assets are routed too, and are not part of the API's document.
    let console: BTreeSet<String> = register::console::PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    for path in &console {
        assert_eq!(
            routed.remove(path),
            Some(BTreeSet::from(["GET".to_string()])),
            "{path}"
        );
    }
    let doc_paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    let routed_paths: BTreeSet<&String> = routed.keys().collect();
    assert_eq!(doc_paths, routed_paths);
    for (method, path) in &documented {
        let methods = &routed[path];
        assert!(
            methods.contains("ANY") || methods.contains(method),
            "{method} {path} is not routed by the template ({methods:?})"
        );
    }
    for (path, methods) in &routed {
        for method in methods.iter().filter(|m| *m != "ANY") {
            assert!(
                documented.contains(&(method.clone(), path.clone())),
                "the template routes {method} {path}, which the document lacks"
            );
        }
    }
}

#[tokio::test]
async fn get_openapi_json_serves_the_yaml_document() {
    let response = api()
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let served: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // Read by another YAML parser (PyYAML, in the project virtualenv) than the build's.
    let path = hookline_e2e::workspace_root().join("infra/openapi.yaml");
    let out = Command::new(hookline_e2e::venv_python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(served, yaml);
    assert_eq!(served["openapi"], "3.1.0");
}
