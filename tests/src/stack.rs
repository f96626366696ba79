//! The whole local stack for end-to-end tests: the emulator and the `hookline-local`
//! process (the same binary `make dev` runs) on free loopback ports, driven over HTTP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Emulator, workspace_root};

pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789";

/// The emulator plus a running local runtime.
pub struct Stack {
    pub emulator: Emulator,
    runtime: Option<Child>,
    pub url: String,
    /// Where the runtime's logs (stdout and stderr) go.
    pub log: PathBuf,
    env: Vec<(String, String)>,
    pub http: reqwest::Client,
    /// Every secret this stack handed out or was given: none may reach the logs.
    secrets: std::sync::Mutex<Vec<String>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `hookline-local` next to the test binary's `deps/` (target/debug for tests), or the
/// debug build when a benchmark runs from target/release.
fn runtime_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let candidates = [
        profile_dir.join("hookline-local"),
        profile_dir
            .parent()
            .map(|t| t.join("debug/hookline-local"))
            .unwrap_or_default(),
    ];
    candidates
        .into_iter()
        .find(|bin| bin.exists())
        .unwrap_or_else(|| {
            panic!(
                "hookline-local is missing: `cargo build -p hookline-local` (make test builds it)"
            )
        })
}

/// What load tests add to [`Stack::start`]'s defaults to run as deployed: health held for
/// a minute, webhooks cached for 5 s. For tests that neither read health nor change a
/// webhook: the emulator (one core) then has about half the writes to do.
pub const AS_DEPLOYED: [(&str, &str); 2] = [
    ("HOOKLINE_HEALTH_HOLD_SECONDS", "60"),
    ("HOOKLINE_WEBHOOK_CACHE_SECONDS", "5"),
];

impl Stack {
    /// Starts the emulator and the runtime with `HOOKLINE_RETRY_SCALE=0.001`, private
    /// targets allowed, no webhook cache, health written every batch, and `extra` on top.
    pub async fn start(extra: &[(&str, &str)]) -> Stack {
        let emulator = Emulator::start();
        let port = free_port();
        let mut env: Vec<(String, String)> = emulator.env.clone().into_iter().collect();
        for (k, v) in [
            ("AWS_ENDPOINT_URL", emulator.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_REGION", "us-east-1"),
            ("HOOKLINE_ADMIN_KEY", ADMIN_KEY),
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true"),
            ("HOOKLINE_RETRY_SCALE", "0.001"),
            // Every delivery reads its webhook, so a test that disables or deletes one
            // sees the effect at once rather than within the default 5 s.
            ("HOOKLINE_WEBHOOK_CACHE_SECONDS", "0"),
            // Every batch writes health, so a test counts it as soon as it is delivered
            // (`ops.rs` runs the default's holding on its own).
            ("HOOKLINE_HEALTH_HOLD_SECONDS", "0"),
            ("RUST_LOG", "info"),
            ("PORT", &port.to_string()),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let log_dir = workspace_root().join("target/e2e-logs");
        std::fs::create_dir_all(&log_dir).expect("target/e2e-logs");
        let log = log_dir.join(format!("runtime-{}-{port}.log", std::process::id()));
        let mut stack = Stack {
            emulator,
            runtime: None,
            url: format!("http://127.0.0.1:{port}"),
            log,
            env,
            http: hookline_core::tls::reqwest_builder()
                .build()
                .expect("an HTTP client"),
            secrets: std::sync::Mutex::new(vec![ADMIN_KEY.to_string()]),
        };
        stack.start_runtime().await;
        stack
    }

    /// (Re)starts the runtime process, appending to the same log.
    pub async fn start_runtime(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("runtime log");
        let child = Command::new(runtime_binary())
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hookline-local");
        self.runtime = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(format!("{}/v1/health", self.url))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("hookline-local did not answer; see {}", self.log.display());
    }

    /// Shortens the delivery queue's visibility timeout. A message taken by a runtime
    /// that is then killed comes back after it (720 s in the template, six times the
    /// function's timeout); a crash test wants it back in seconds.
    pub async fn shorten_visibility(&self, seconds: u32) {
        let sqs = aws_sdk_sqs::Client::new(&self.emulator.sdk_config().await);
        sqs.set_queue_attributes()
            .queue_url(self.emulator.var("HOOKLINE_DELIVERY_QUEUE_URL"))
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                seconds.to_string(),
            )
            .send()
            .await
            .expect("set the visibility timeout");
    }

    /// SIGKILL: no shutdown, no bookkeeping — a crash.
    pub fn kill_runtime(&mut self) {
        if let Some(mut child) = self.runtime.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The runtime's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request with `key` as the bearer token; returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.call_bytes(method, path, key, body).await
    }

    /// Like [`Stack::call`], with the body as raw bytes sent as JSON (malformed on purpose).
    pub async fn call_bytes(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.remember_secrets(&value);
        (status, value)
    }

    /// Notes the secrets a response reveals: signing secrets, credentials, new API keys.
    fn remember_secrets(&self, value: &Value) {
        let mut found = Vec::new();
        for pointer in [
            "/signing_secret",
            "/auth/token",
            "/auth/password",
            "/auth/secret",
            "/key",
        ] {
            if let Some(secret) = value.pointer(pointer).and_then(Value::as_str)
                && !secret.contains("****")
                && secret.len() >= 8
            {
                found.push(secret.to_string());
            }
        }
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.extend(found);
        }
    }

    /// Asserts that nothing the runtime logged contains a secret this stack handled.
    pub fn assert_no_secrets_logged(&self) {
        let logs = self.logs();
        assert!(!logs.is_empty(), "no runtime log at {}", self.log.display());
        let secrets = self.secrets.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(secrets.len() > 1, "the test handled no secret to look for");
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret appears in {}",
                self.log.display()
            );
        }
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, ADMIN_KEY, body).await
    }

    /// Registers a webhook as admin; panics unless 201.
    pub async fn webhook(&self, project: &str, body: Value) -> Value {
        let (status, v) = self
            .admin(
                "POST",
                &format!("/v1/projects/{project}/webhooks"),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// Posts an event as admin; panics unless 202.
    pub async fn event(&self, project: &str, body: Value) -> Value {
        let (status, v) = self
            .admin(
                "POST",
                &format!("/v1/projects/{project}/events"),
                Some(body),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        v
    }

    /// A webhook's attempts, oldest first.
    pub async fn attempts(&self, project: &str, webhook_id: &str) -> Vec<Value> {
        let (_, v) = self
            .admin(
                "GET",
                &format!("/v1/projects/{project}/webhooks/{webhook_id}/attempts?limit=100"),
                None,
            )
            .await;
        let mut items = v["data"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }

    /// The environment the runtime got (for tests that need a value from it).
    pub fn env(&self) -> HashMap<String, String> {
        self.env.iter().cloned().collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.runtime.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `seconds` for `check` to return `Some`.
pub async fn eventually<T, F, Fut>(seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting after {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
