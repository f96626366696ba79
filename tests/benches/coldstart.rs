#![allow(clippy::unwrap_used, clippy::panic)] // a benchmark binary: every function here is bench code
//! Cold start, memory and size of the three functions beside a bare `lambda_runtime`
//! hello-world built with the same release profile in the same run (`make
//! bench-coldstart`, which builds them all first).
//!
//! Each function is started as Lambda starts it: a fresh process with the Lambda
//! environment, talking to a Runtime API served here on loopback. Cold start is exec →
//! the first `GET /next` (init) plus the first invocation, up to its response, so work
//! moved from init into the first request still counts. The first invocation does real
//! work: a webhook read (register), an event read (trigger), a delivery of the SQS
//! fixture (deliver: reads its webhook, logs the attempt), against a stand-in AWS
//! endpoint on loopback that answers every call with `{}` at once — so the figure is
//! Hookline's own time, not a network's. RSS is the process's peak (VmHWM) after that
//! invocation. Sizes: the stripped x86-64 release binary, and the arm64 `bootstrap.zip`
//! cargo-lambda builds (target/lambda/<bin>/).
//!
//! Runs interleave the binaries, so whatever else the machine does slows them alike;
//! `COLDSTART_RUNS` (default 25) per binary, the median printed with the range.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookline_e2e::workspace_root;
use tokio::sync::Notify;

/// What the Runtime API saw of the current run.
#[derive(Default)]
struct Run {
    event: Vec<u8>,
    polled: Option<Instant>,
    answered: Option<(Instant, bool)>,
    handed_out: bool,
}

#[derive(Clone, Default)]
struct Api {
    run: Arc<Mutex<Run>>,
    changed: Arc<Notify>,
}

async fn next(State(api): State<Api>) -> Response {
    let event = {
        let mut run = api.run.lock().unwrap();
        if run.handed_out {
            None
        } else {
            run.polled = Some(Instant::now());
            run.handed_out = true;
            Some(run.event.clone())
        }
    };
    api.changed.notify_waiters();
    let Some(event) = event else {
        // The next invocation never comes: the process is killed while it waits.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = hookline_core::clock::now_ms() + 60_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "req-coldstart".to_string()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:coldstart".to_string(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".to_string(),
        ),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (StatusCode::OK, headers, event).into_response()
}

async fn answered(State(api): State<Api>, ok: bool, body: Bytes) -> StatusCode {
    if !ok {
        eprintln!(
            "the function reported an error: {}",
            String::from_utf8_lossy(&body)
        );
    }
    api.run.lock().unwrap().answered = Some((Instant::now(), ok));
    api.changed.notify_waiters();
    StatusCode::ACCEPTED
}

/// Every AWS call answered at once with an empty JSON document (DynamoDB and SQS speak
/// AWS JSON 1.0: an item not found, a write done).
async fn aws() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        "{}",
    )
        .into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr.to_string()
}

struct Function {
    name: &'static str,
    binary: &'static str,
    event: Vec<u8>,
    env: Vec<(&'static str, &'static str)>,
    bare: &'static str,
}

struct Measured {
    cold: Vec<Duration>,
    init: Vec<Duration>,
    rss_kb: Vec<u64>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/events").join(name)).unwrap()
}

fn peak_rss_kb(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn once(
    api: &Api,
    binary: &Path,
    f: &Function,
    aws_endpoint: &str,
    runtime_api: &str,
) -> (Duration, Duration, u64) {
    *api.run.lock().unwrap() = Run {
        event: f.event.clone(),
        ..Run::default()
    };
    let aws_endpoint = format!("http://{aws_endpoint}");
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", runtime_api),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart"),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/12/01/[$LATEST]coldstart",
            ),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "ASIACOLDSTART"),
            ("AWS_SECRET_ACCESS_KEY", "coldstart-secret"),
            ("AWS_SESSION_TOKEN", "coldstart-session"),
            ("AWS_ENDPOINT_URL", aws_endpoint.as_str()),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("TZ", ":UTC"),
        ])
        .envs(f.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let deadline = started + Duration::from_secs(20);
    let (polled, answered) = loop {
        let wait = api.changed.notified();
        {
            let run = api.run.lock().unwrap();
            if let (Some(p), Some(a)) = (run.polled, run.answered) {
                break (p, a);
            }
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("{} did not answer its first invocation", f.name);
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), wait).await;
    };
    // The second poll means the first invocation is fully done.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let rss = peak_rss_kb(&child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answered.1,
        "{} answered its first invocation with an error",
        f.name
    );
    (answered.0 - started, polled - started, rss)
}

fn stats(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let release = workspace_root().join("target/release");
    let runs: usize = std::env::var("COLDSTART_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let api = Api::default();
    let runtime_api = serve(
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|s: State<Api>, b: Bytes| answered(s, true, b)),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|s: State<Api>, b: Bytes| answered(s, false, b)),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|s: State<Api>, b: Bytes| answered(s, false, b)),
            )
            .with_state(api.clone()),
    )
    .await;
    let aws_endpoint = serve(Router::new().fallback(aws)).await;

    // What the template sets for every function as a literal (not a !Ref), as Lambda
    // would set it; then what its references would resolve to.
    let globals =
        hookline_e2e::template()["Globals"]["Function"]["Environment"]["Variables"].clone();
    let literal: Vec<(&'static str, &'static str)> = globals
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((leak(k), leak(v.as_str()?))))
        .collect();
    println!("from the template's Globals: {literal:?}");
    let mut hookline_env = literal;
    hookline_env.extend([
        ("RUST_LOG", "info"),
        ("HOOKLINE_ADMIN_KEY", "local-admin-key"),
        ("HOOKLINE_WEBHOOKS_TABLE", "hookline-WebhooksTable"),
        ("HOOKLINE_API_KEYS_TABLE", "hookline-ApiKeysTable"),
        ("HOOKLINE_EVENTS_TABLE", "hookline-EventsTable"),
        ("HOOKLINE_ATTEMPTS_TABLE", "hookline-AttemptsTable"),
        (
            "HOOKLINE_DELIVERY_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-DeliveryQueue",
        ),
        (
            "HOOKLINE_DEAD_LETTER_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-DeadLetterQueue",
        ),
    ]);
    let echo = br#"{"hello": "world"}"#.to_vec();
    let functions = [
        Function {
            name: "bare (multi-thread)",
            binary: "bare-lambda",
            event: echo.clone(),
            env: vec![],
            bare: "",
        },
        Function {
            name: "bare (current-thread)",
            binary: "bare-lambda",
            event: echo,
            env: vec![("BARE_FLAVOR", "current_thread")],
            bare: "",
        },
        Function {
            name: "register",
            binary: "register",
            event: fixture("register-get-webhook.json"),
            env: hookline_env.clone(),
            bare: "bare (multi-thread)",
        },
        Function {
            name: "trigger",
            binary: "trigger",
            event: fixture("trigger-get-event.json"),
            env: hookline_env.clone(),
            bare: "bare (multi-thread)",
        },
        Function {
            name: "deliver",
            binary: "deliver",
            event: fixture("deliver-sqs-batch.json"),
            env: hookline_env,
            bare: "bare (current-thread)",
        },
    ];
    let binaries: Vec<PathBuf> = functions.iter().map(|f| release.join(f.binary)).collect();
    for b in &binaries {
        assert!(
            b.exists(),
            "{} is missing: `make bench-coldstart` builds it (cargo build --release)",
            b.display()
        );
    }
    let mut measured: Vec<Measured> = functions
        .iter()
        .map(|_| Measured {
            cold: vec![],
            init: vec![],
            rss_kb: vec![],
        })
        .collect();
    // One unmeasured round: the page cache holds every binary afterwards, as Lambda's
    // host does after the first download.
    for (f, b) in functions.iter().zip(&binaries) {
        once(&api, b, f, &aws_endpoint, &runtime_api).await;
    }
    for _ in 0..runs {
        for ((f, b), m) in functions.iter().zip(&binaries).zip(&mut measured) {
            let (cold, init, rss) = once(&api, b, f, &aws_endpoint, &runtime_api).await;
            m.cold.push(cold);
            m.init.push(init);
            m.rss_kb.push(rss);
        }
    }

    println!(
        "cold start = exec -> first poll (init) + the first invocation; {runs} runs each, median (min-max)\n"
    );
    println!(
        "| binary | cold start | init | vs bare | peak RSS | stripped x86-64 | arm64 bootstrap.zip |"
    );
    println!("|---|---|---|---|---|---|---|");
    let medians: Vec<f64> = measured
        .iter()
        .map(|m| {
            let mut v: Vec<f64> = m.cold.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            stats(&mut v).0
        })
        .collect();
    for (i, (f, m)) in functions.iter().zip(&measured).enumerate() {
        let mut cold: Vec<f64> = m.cold.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let mut init: Vec<f64> = m.init.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let mut rss: Vec<f64> = m.rss_kb.iter().map(|&k| k as f64 / 1024.0).collect();
        let (c, c_lo, c_hi) = stats(&mut cold);
        let (n, _, _) = stats(&mut init);
        let (r, _, r_hi) = stats(&mut rss);
        let ratio = functions
            .iter()
            .position(|g| g.name == f.bare)
            .map(|j| format!("{:.2}x", medians[i] / medians[j]))
            .unwrap_or_else(|| "-".into());
        let stripped = file_size(&binaries[i])
            .map(mb)
            .unwrap_or_else(|| "-".into());
        let zip = file_size(
            &workspace_root()
                .join("target/lambda")
                .join(f.binary)
                .join("bootstrap.zip"),
        )
        .map(mb)
        .unwrap_or_else(|| "not built".into());
        println!(
            "| {} | {c:.2} ms ({c_lo:.2}-{c_hi:.2}) | {n:.2} ms | {ratio} | {r:.1} MB (max {r_hi:.1}) | {stripped} | {zip} |",
            f.name
        );
    }
    println!("\ntargets (issue 18): cold start <= 2x bare, peak RSS <= 12 MB, arm64 zip <= 3 MB");
}
