//! Support for Hookline's emulator-backed and end-to-end tests.
//!
//! [`Emulator::start`] runs `infra/local/emulator.py` from the project virtualenv (made by
//! `make setup`): moto on a free loopback port, with the tables and queues of
//! `infra/template.yaml` created under a fresh prefix. The emulator exits with the test
//! process.

#![allow(clippy::expect_used, clippy::panic)] // test support: failing loudly is right

pub mod hostile;
pub mod receiver;
pub mod stack;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aws_sdk_dynamodb::config::Credentials;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The project virtualenv's Python.
pub fn venv_python() -> PathBuf {
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup` (or `make test`, which runs it)",
        python.display()
    );
    python
}

/// A running emulator with the template's resources.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    /// The functions' environment: table names and queue URLs.
    pub env: HashMap<String, String>,
    /// Logical id → `{"ref", "arn", …}` of each created resource.
    pub resources: serde_json::Value,
}

impl Emulator {
    /// Starts an emulator; blocks until its resources exist.
    pub fn start() -> Emulator {
        let prefix = format!("t{}", std::process::id());
        // The emulator's own log goes to a file: an inherited stderr would keep the test's
        // output open after it ends.
        let log_dir = workspace_root().join("target/emulator-logs");
        std::fs::create_dir_all(&log_dir).expect("create target/emulator-logs");
        let log =
            std::fs::File::create(log_dir.join(format!("{prefix}.log"))).expect("emulator log");
        let mut child = Command::new(venv_python())
            .arg(workspace_root().join("infra/local/emulator.py"))
            .args(["serve", "--prefix", &prefix, "--parent-pid"])
            .arg(std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(json) = line.strip_prefix("READY ") {
                        break json.to_string();
                    }
                }
                other => panic!("the emulator stopped before it was ready: {other:?}"),
            }
        };
        let ready: serde_json::Value = serde_json::from_str(&ready).expect("READY json");
        let env = ready["env"]
            .as_object()
            .expect("env")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        Emulator {
            child,
            endpoint: ready["endpoint"].as_str().expect("endpoint").to_string(),
            env,
            resources: ready["resources"].clone(),
        }
    }

    /// An SDK configuration that talks to this emulator with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        hookline_core::aws::config(
            Some(self.endpoint.clone()),
            Some("us-east-1".to_string()),
            Some(Credentials::new(
                "local",
                "local",
                None,
                None,
                "hookline-tests",
            )),
        )
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the emulator process: a stalled or a
    /// dead dependency, on demand.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("the template defines no {name}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `infra/template.yaml` as JSON (read with cfn-lint's decoder, as the emulator reads it).
pub fn template() -> serde_json::Value {
    let out = Command::new(venv_python())
        .arg(workspace_root().join("infra/local/emulator.py"))
        .arg("template-json")
        .output()
        .expect("run emulator.py template-json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template JSON")
}
