#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary
//! What a million deliveries cost on AWS (`make bench-cost`), measured on the local stack.
//!
//! A reference load runs through the real handlers against the emulator: 1,000 events
//! posted to the trigger function's router, each fanned out to 10 webhooks, delivered by
//! the delivery handler from the delivery queue (batches of 10, as the template's event
//! source mapping hands them over) to receivers that answer 200 after 200 ms — and 503 to
//! the first attempt of 5 % of deliveries, which are then retried. Every AWS request
//! goes through a counting proxy in front of the emulator: requests by service and
//! operation (DynamoDB's by table), and DynamoDB request units computed from the items
//! read and from the items written as they were before and after each write (sizes by
//! DynamoDB's rules: the larger of before and after, and a global secondary index
//! charged only when its entry is added, removed or changed; a write whose condition
//! failed still billed; the emulator does not meter them). The items are read from the
//! emulator around each write, uncounted; a write landing on the same item in between
//! would blur one figure, not the count. Log bytes are what the functions write (the
//! production JSON log lines and the metric records).
//!
//! Lambda time cannot be read off this run as it is: the emulator (one Python process)
//! answers in tens of milliseconds to seconds under this load, where DynamoDB and SQS
//! answer in a few. So it is put together from what was measured and one stated
//! assumption: an invocation's duration is its receivers' wait (they answer after
//! `RECEIVER_LATENCY`, all of a batch at once), plus the CPU the process spent per invocation
//! (measured; it includes the proxy and the receivers, so it overstates), plus its
//! waits on AWS taken as `AWS_ROUND_TRIP` per round of calls the handler awaits one
//! after another (`DELIVER_ROUNDS`, `TRIGGER_ROUNDS`, from the code). The duration as
//! measured against the emulator is printed beside it.
//!
//! Then everything is priced at AWS's on-demand list prices for us-east-1 (`PRICES`,
//! with their date) and divided by the deliveries made.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tower::ServiceExt;

const EVENTS: usize = 1_000;
const WEBHOOKS: usize = 10;
const RECEIVER_LATENCY: Duration = Duration::from_millis(200);
/// One delivery in this many has its first attempt answered 503.
const FIRST_ATTEMPT_FAILS_ONE_IN: u64 = 20;
const POLLERS: usize = 8;
/// One DynamoDB or SQS call from a Lambda in the same region (the assumption above).
const AWS_ROUND_TRIP: Duration = Duration::from_millis(10);
/// Rounds of AWS calls a delivery invocation awaits in turn: the webhook read (when not
/// cached), the attempt-log writes (together), the health writes (together), and for a
/// retry its visibility change. Four, as an upper bound.
const DELIVER_ROUNDS: u32 = 4;
/// The event post: the event record, the webhook query, the enqueue, the record's
/// completion.
const TRIGGER_ROUNDS: u32 = 4;

/// On-demand list prices, us-east-1, as published by AWS in 2025 (the newest the author
/// had; this machine has no network to check them again on 2026-12-01). Free tiers left
/// out. USD.
struct Prices;
impl Prices {
    const DATE: &'static str =
        "2025 list prices (us-east-1, on demand; checked 2026-12-01 offline)";
    /// API Gateway HTTP API, per request (first 300 million a month).
    const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// Lambda, per request.
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda on arm64 (Graviton), per GB-second.
    const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    /// SQS standard queue, per request (each 64 KiB chunk of a payload is one).
    const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on-demand, per write request unit (since November 2024).
    const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit.
    const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// CloudWatch Logs, per GB ingested (standard class).
    const LOGS_GB: f64 = 0.50;
    /// Secrets Manager, per API call (the admin key, once per API cold start).
    const SECRETS_CALL: f64 = 0.05 / 10_000.0;
}

// --- The counting proxy ---------------------------------------------------------------

#[derive(Default)]
struct Tally {
    /// (service, operation) → requests.
    requests: BTreeMap<(String, String), u64>,
    /// operation → (read units, write units).
    units: BTreeMap<String, (f64, f64)>,
}

/// What a global secondary index holds of an item.
enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

struct Index {
    hash: String,
    range: Option<String>,
    projection: Projection,
}

/// A table's key attributes and its global secondary indexes.
struct Table {
    key: Vec<String>,
    indexes: Vec<Index>,
}

type Tables = HashMap<String, Table>;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    tally: Arc<Mutex<Tally>>,
    tables: Arc<Tables>,
}

/// An attribute value's size by DynamoDB's rules (names count too, at the item level).
fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(1, |n| n.len().div_ceil(2) + 1),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => inner.as_array().map_or(0, |a| {
            a.iter().map(|s| s.as_str().map_or(0, str::len)).sum()
        }),
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum()
            })
        }
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |l| l.iter().map(|v| value_size(v) + 1).sum())
        }
        _ => 0,
    }
}

fn item_size(item: &Value) -> usize {
    item.as_object()
        .map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

impl Proxy {
    /// What `index` of `table` holds of `item`: nothing when the item lacks the index's
    /// keys (a sparse index), else the table's keys, the index's and what it projects.
    fn entry(table: &Table, index: &Index, item: &Value) -> Option<serde_json::Map<String, Value>> {
        let item = item.as_object()?;
        item.get(&index.hash)?;
        if let Some(range) = &index.range {
            item.get(range)?;
        }
        let keep = |name: &str| {
            table.key.iter().any(|k| k == name)
                || index.hash == name
                || index.range.as_deref() == Some(name)
                || match &index.projection {
                    Projection::All => true,
                    Projection::KeysOnly => false,
                    Projection::Include(names) => names.iter().any(|n| n == name),
                }
        };
        Some(
            item.iter()
                .filter(|(name, _)| keep(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Write units of an item going from `before` to `after` (`Null`: absent), by
    /// DynamoDB's rules: the larger of the two sizes for the table, and for each index
    /// a put when the item enters it, a delete when it leaves, a delete and a put when
    /// the index's keys change, a write when what it projects changes, and nothing
    /// when the write leaves the index's entry as it was.
    fn item_write(&self, table: &str, before: &Value, after: &Value) -> f64 {
        let mut units = write_units(item_size(before).max(item_size(after)));
        let Some(t) = self.tables.get(table) else {
            return units;
        };
        let size = |m: &serde_json::Map<String, Value>| {
            m.iter()
                .map(|(k, v)| k.len() + value_size(v))
                .sum::<usize>()
        };
        for index in &t.indexes {
            let keys_of = |m: &serde_json::Map<String, Value>| {
                (
                    m.get(&index.hash).cloned(),
                    index.range.as_ref().and_then(|r| m.get(r).cloned()),
                )
            };
            units += match (Self::entry(t, index, before), Self::entry(t, index, after)) {
                (None, None) => 0.0,
                (None, Some(a)) => write_units(size(&a)),
                (Some(b), None) => write_units(size(&b)),
                (Some(b), Some(a)) if keys_of(&b) != keys_of(&a) => {
                    write_units(size(&b)) + write_units(size(&a))
                }
                (Some(b), Some(a)) if b != a => write_units(size(&b).max(size(&a))),
                _ => 0.0,
            };
        }
        units
    }

    /// The key of `item` in `table`.
    fn key_of(&self, table: &str, item: &Value) -> Value {
        let mut key = serde_json::Map::new();
        for name in self
            .tables
            .get(table)
            .map(|t| t.key.as_slice())
            .unwrap_or_default()
        {
            if let Some(v) = item.get(name) {
                key.insert(name.clone(), v.clone());
            }
        }
        Value::Object(key)
    }

    /// The item at `key` now (read from the emulator directly, not counted).
    async fn current(&self, table: &str, key: &Value) -> Value {
        let body = json!({"TableName": table, "Key": key, "ConsistentRead": true});
        let out = self
            .http
            .post(&self.upstream)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let v: Value = out.json().await.unwrap_or_default();
        v.get("Item").cloned().unwrap_or(Value::Null)
    }

    /// The (table, key) pairs a write request touches.
    fn written(&self, op: &str, request: &Value) -> Vec<(String, Value)> {
        let table = request["TableName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match op {
            "PutItem" => vec![(table.clone(), self.key_of(&table, &request["Item"]))],
            "UpdateItem" | "DeleteItem" => vec![(table, request["Key"].clone())],
            "BatchWriteItem" => request["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(t, writes)| {
                    writes.as_array().into_iter().flatten().map(move |w| {
                        let key = match w.get("PutRequest") {
                            Some(put) => self.key_of(t, &put["Item"]),
                            None => w["DeleteRequest"]["Key"].clone(),
                        };
                        (t.clone(), key)
                    })
                })
                .collect(),
            "TransactWriteItems" => request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let (kind, w) = item.as_object()?.iter().next()?;
                    // A ConditionCheck reads the item; it writes nothing.
                    if kind == "ConditionCheck" {
                        return None;
                    }
                    let t = w["TableName"].as_str()?.to_string();
                    let key = if kind == "Put" {
                        self.key_of(&t, &w["Item"])
                    } else {
                        w["Key"].clone()
                    };
                    Some((t, key))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The items a write request touches, as they are now.
    async fn items(&self, written: &[(String, Value)]) -> Vec<Value> {
        let mut items = Vec::with_capacity(written.len());
        for (table, key) in written {
            items.push(self.current(table, key).await);
        }
        items
    }

    /// Read and write units of a request, from the request, its response and the items
    /// it wrote as they were before and after (table, before, after). A write whose condition failed is billed
    /// as a write of the item as it stands.
    fn units(
        &self,
        op: &str,
        request: &Value,
        response: &Value,
        changes: &[(&str, &Value, &Value)],
        succeeded: bool,
    ) -> (f64, f64) {
        let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
        let writes = || -> f64 {
            let factor = if op == "TransactWriteItems" { 2.0 } else { 1.0 };
            changes
                .iter()
                .map(|(table, b, a)| {
                    if succeeded {
                        factor * self.item_write(table, b, a)
                    } else {
                        factor * write_units(item_size(b))
                    }
                })
                .sum()
        };
        match op {
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
                (0.0, writes())
            }
            "GetItem" => (read_units(item_size(&response["Item"]), consistent), 0.0),
            "Query" | "Scan" => {
                let bytes: usize = response["Items"]
                    .as_array()
                    .map_or(0, |items| items.iter().map(item_size).sum());
                (read_units(bytes, consistent), 0.0)
            }
            "BatchGetItem" => {
                let mut units = 0.0;
                for (_, items) in response["Responses"].as_object().into_iter().flatten() {
                    for item in items.as_array().into_iter().flatten() {
                        units += read_units(item_size(item), false);
                    }
                }
                (units, 0.0)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// The table's name in the rows printed: the template's logical name (`AttemptsTable`).
fn short_table(name: &str) -> &str {
    name.rsplit_once('-').map_or(name, |(_, t)| t)
}

async fn proxy(State(p): State<Proxy>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown.unknown")
        .to_string();
    let (service, op) = target.split_once('.').unwrap_or(("unknown", "unknown"));
    let service = if service.starts_with("DynamoDB") {
        "DynamoDB"
    } else if service.starts_with("AmazonSQS") {
        "SQS"
    } else if service.starts_with("secretsmanager") {
        "SecretsManager"
    } else {
        service
    };
    // DynamoDB: the request, and the items it writes as they were before it.
    let dynamo = service == "DynamoDB";
    let request: Value = if dynamo {
        serde_json::from_slice(&body).unwrap_or_default()
    } else {
        Value::Null
    };
    let written = if dynamo {
        p.written(op, &request)
    } else {
        Vec::new()
    };
    let before = p.items(&written).await;
    let mut forward = p.http.post(&p.upstream).body(body.clone());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let Ok(answer) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    let Ok(bytes) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    // A DynamoDB row names its table when the request has one.
    let label = match request["TableName"].as_str() {
        Some(table) => format!("{op} {}", short_table(table)),
        None => op.to_string(),
    };
    {
        let mut t = p.tally.lock().unwrap();
        *t.requests
            .entry((service.to_string(), label.clone()))
            .or_default() += 1;
    }
    let condition_failed =
        !status.is_success() && String::from_utf8_lossy(&bytes).contains("ConditionalCheckFailed");
    if dynamo && (status.is_success() || condition_failed) {
        let response: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let after = if status.is_success() {
            p.items(&written).await
        } else {
            before.clone()
        };
        let changes: Vec<(&str, &Value, &Value)> = written
            .iter()
            .zip(before.iter().zip(&after))
            .map(|((table, _), (b, a))| (table.as_str(), b, a))
            .collect();
        let (r, w) = p.units(op, &request, &response, &changes, status.is_success());
        let mut t = p.tally.lock().unwrap();
        let e = t.units.entry(label).or_default();
        e.0 += r;
        e.1 += w;
    }
    (
        StatusCode::from_u16(status.as_u16()).unwrap(),
        out_headers,
        bytes,
    )
        .into_response()
}

// --- Receivers, logs, metrics ----------------------------------------------------------

#[derive(Clone, Default)]
struct Receivers {
    delivered: Arc<Mutex<HashSet<String>>>,
    failed_once: Arc<Mutex<HashSet<String>>>,
    requests: Arc<AtomicU64>,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

async fn receive(State(r): State<Receivers>, headers: HeaderMap) -> StatusCode {
    r.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(RECEIVER_LATENCY).await;
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if fnv(&id).is_multiple_of(FIRST_ATTEMPT_FAILS_ONE_IN)
        && r.failed_once.lock().unwrap().insert(id.clone())
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.delivered.lock().unwrap().insert(id);
    StatusCode::OK
}

/// Counts the bytes the functions log (the production subscriber writes here).
#[derive(Clone, Default)]
struct CountingSink(Arc<AtomicU64>);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CountingSink {
    type Writer = CountingSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

struct CountingMetrics(Arc<AtomicU64>);

impl deliver::MetricsSink for CountingMetrics {
    fn emit(&self, record: &str) {
        self.0.fetch_add(record.len() as u64 + 1, Ordering::Relaxed);
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn call(
    router: &Router,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value, Duration) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", "Bearer bench-admin-key-0123")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let took = started.elapsed();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        took,
    )
}

/// This process's CPU time so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Lambda bills each invocation per started millisecond.
fn billed_ms(d: Duration) -> u64 {
    (d.as_micros() as u64).div_ceil(1000).max(1)
}

#[tokio::main]
async fn main() {
    let log_bytes = CountingSink::default();
    hookline_core::logging::init_with_writer(log_bytes.clone());
    let emulator = hookline_e2e::Emulator::start();
    let template = hookline_e2e::template();
    let memory_mb = template["Globals"]["Function"]["MemorySize"]
        .as_f64()
        .unwrap_or(128.0);

    // The proxy, and the tables' keys and indexes it needs for the units.
    let direct = aws_sdk_dynamodb::Client::new(&emulator.sdk_config().await);
    let mut tables = HashMap::new();
    for (var, table) in &emulator.env {
        if !var.ends_with("_TABLE") {
            continue;
        }
        let described = direct
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let t = described.table().unwrap();
        let key = t
            .key_schema()
            .iter()
            .map(|k| k.attribute_name().to_string())
            .collect();
        let indexes = t
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                use aws_sdk_dynamodb::types::ProjectionType;
                let schema = g.key_schema();
                let projection = g.projection().unwrap();
                Index {
                    hash: schema[0].attribute_name().to_string(),
                    range: schema.get(1).map(|k| k.attribute_name().to_string()),
                    projection: match projection.projection_type() {
                        Some(ProjectionType::All) => Projection::All,
                        Some(ProjectionType::Include) => {
                            Projection::Include(projection.non_key_attributes().to_vec())
                        }
                        _ => Projection::KeysOnly,
                    },
                }
            })
            .collect();
        tables.insert(table.clone(), Table { key, indexes });
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let proxy_url = serve(Router::new().fallback(proxy).with_state(Proxy {
        upstream: format!("{}/", emulator.endpoint),
        http: hookline_core::tls::reqwest_builder().build().unwrap(),
        tally: tally.clone(),
        tables: Arc::new(tables),
    }))
    .await;

    // The functions, as their mains build them, talking to the proxy.
    let mut vars: HashMap<String, String> = emulator.env.clone();
    vars.extend(
        [
            ("HOOKLINE_ADMIN_KEY", "bench-admin-key-0123"),
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true"),
            // 5xx is retried after 30 s (the table's first step); scaled, after ~1 s.
            ("HOOKLINE_RETRY_SCALE", "0.01"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let config = hookline_core::Config::from_vars(&vars).unwrap();
    let aws = hookline_core::aws::config(
        Some(proxy_url.clone()),
        Some("us-east-1".to_string()),
        Some(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "bench",
        )),
    );
    let register = register::router(
        register::AppState::from_config(&config, &aws)
            .await
            .unwrap(),
    );
    let trigger = trigger::router(trigger::AppState::from_config(&config, &aws).await.unwrap());
    let mut deliverer = deliver::Deliverer::from_config(&config, &aws).unwrap();
    let metric_bytes = Arc::new(AtomicU64::new(0));
    deliverer.metrics = Arc::new(CountingMetrics(metric_bytes.clone()));
    let deliverer = Arc::new(deliverer);

    let receivers = Receivers::default();
    let receiver_url = serve(
        Router::new()
            .fallback(receive)
            .with_state(receivers.clone()),
    )
    .await;
    for i in 0..WEBHOOKS {
        let (status, body, _) = call(
            &register,
            "POST",
            "/v1/projects/acme/webhooks",
            json!({
                "name": format!("receiver {i}"),
                "url": format!("{receiver_url}/hook/{i}"),
                "events": ["order.placed"],
                "body": {"type": "json", "fields": {"order": "{{ data.order_id }}", "total": "{{ data.total }}", "email": "{{ user.attributes.email | default: 'n/a' }}"}},
                "headers": {"X-Campaign": "{{ event.type }}"},
            }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Setup is not part of the load.
    *tally.lock().unwrap() = Tally::default();
    log_bytes.0.store(0, Ordering::Relaxed);

    // The load: events posted through the trigger function's router. The first
    // CALIBRATION alone, to measure the trigger's CPU per post; then the pollers start
    // and the rest is posted while deliveries run (a queue of 10,000 waiting messages
    // slows the emulator to a crawl), so the delivery CPU is what remains.
    // An overloaded emulator makes the trigger answer 503 with Retry-After; a client
    // posts again (the same id), and every post is an API request and an invocation.
    let posts = Arc::new(AtomicU64::new(0));
    let post = |i: usize| {
        let (trigger, posts) = (trigger.clone(), posts.clone());
        async move {
            let mut billed = 0;
            loop {
                let (status, body, took) = call(
                    &trigger,
                    "POST",
                    "/v1/projects/acme/events",
                    json!({"id": format!("ev-{i}"), "type": "order.placed",
                           "data": {"order_id": format!("o-{i}"), "total": 1999 + i},
                           "user": {"id": format!("u-{i}"), "attributes": {"email": format!("u{i}@example.com")}}}),
                )
                .await;
                posts.fetch_add(1, Ordering::Relaxed);
                billed += billed_ms(took);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                assert_eq!(status, StatusCode::ACCEPTED, "{body}");
                assert_eq!(body["matched"], WEBHOOKS);
                return billed;
            }
        }
    };
    const CALIBRATION: usize = 100;
    let started = Instant::now();
    let cpu_before_trigger = cpu_time();
    let mut trigger_ms = 0;
    for i in 0..CALIBRATION {
        trigger_ms += post(i).await;
    }
    let trigger_cpu_per_post = (cpu_time() - cpu_before_trigger) / CALIBRATION as u32;
    let cpu_before_deliver = cpu_time();
    let sqs = hookline_core::aws::sqs(&aws, hookline_core::config::Waits::LONG_POLL);
    let queue_url = config.resources.delivery_queue_url.clone();
    let deliver_ms = Arc::new(AtomicU64::new(0));
    let deliver_invocations = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for _ in 0..POLLERS {
        let (sqs, queue_url, deliverer) = (sqs.clone(), queue_url.clone(), deliverer.clone());
        let (deliver_ms, deliver_invocations, done) = (
            deliver_ms.clone(),
            deliver_invocations.clone(),
            done.clone(),
        );
        pollers.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let Ok(received) = sqs
                    .receive_message()
                    .queue_url(&queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send()
                    .await
                else {
                    continue; // the emulator, overloaded: as Lambda's poller, try again
                };
                let messages = received.messages().to_vec();
                if messages.is_empty() {
                    continue;
                }
                let event = hookline_local::sqs_event(
                    &messages,
                    "arn:aws:sqs:us-east-1:123456789012:q",
                    "us-east-1",
                )
                .unwrap();
                let started = Instant::now();
                let response = deliverer.handle(event).await;
                deliver_ms.fetch_add(billed_ms(started.elapsed()), Ordering::Relaxed);
                deliver_invocations.fetch_add(1, Ordering::Relaxed);
                hookline_local::delete_delivered(&sqs, &queue_url, &messages, &response).await;
            }
        }));
    }

    for i in CALIBRATION..EVENTS {
        trigger_ms += post(i).await;
    }
    let expected = EVENTS * WEBHOOKS;
    let deadline = Instant::now() + Duration::from_secs(600);
    while receivers.delivered.lock().unwrap().len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} delivered in 10 minutes",
            receivers.delivered.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, Ordering::Relaxed);
    for p in pollers {
        p.await.unwrap();
    }
    let deliver_cpu = (cpu_time() - cpu_before_deliver)
        .saturating_sub(trigger_cpu_per_post * (EVENTS - CALIBRATION) as u32);
    let elapsed = started.elapsed();

    // --- The bill -------------------------------------------------------------------
    let deliveries = expected as f64;
    let attempts = receivers.requests.load(Ordering::Relaxed) as f64;
    let t = tally.lock().unwrap();
    let per_million = |dollars: f64| dollars / deliveries * 1e6;
    println!(
        "{EVENTS} events x {WEBHOOKS} webhooks = {expected} deliveries, {attempts} attempts ({} retried after a 503), receivers answering after {} ms; {:.0} s",
        attempts as usize - expected,
        RECEIVER_LATENCY.as_millis(),
        elapsed.as_secs_f64()
    );
    println!("\nAWS requests (through the counting proxy):");
    println!("| service | operation | requests | per delivery | read units | write units |");
    println!("|---|---|---|---|---|---|");
    let (mut sqs_requests, mut reads, mut writes) = (0u64, 0.0, 0.0);
    for ((service, op), n) in &t.requests {
        let (r, w) = t.units.get(op).copied().unwrap_or_default();
        if service == "SQS" {
            sqs_requests += n;
        }
        reads += r;
        writes += w;
        println!(
            "| {service} | {op} | {n} | {:.3} | {r:.1} | {w:.1} |",
            *n as f64 / deliveries
        );
    }
    let gb = memory_mb / 1024.0;
    let trigger_invocations = posts.load(Ordering::Relaxed) as f64;
    let deliver_invocations = deliver_invocations.load(Ordering::Relaxed) as f64;
    let measured_gb_s = (trigger_ms + deliver_ms.load(Ordering::Relaxed)) as f64 / 1000.0 * gb;
    let rtt = AWS_ROUND_TRIP.as_secs_f64();
    let trigger_s = trigger_cpu_per_post.as_secs_f64() + f64::from(TRIGGER_ROUNDS) * rtt;
    let deliver_s = RECEIVER_LATENCY.as_secs_f64()
        + deliver_cpu.as_secs_f64() / deliver_invocations
        + f64::from(DELIVER_ROUNDS) * rtt;
    // Billed per started millisecond.
    let billed = |s: f64| (s * 1000.0).ceil() / 1000.0;
    let lambda_gb_s =
        (trigger_invocations * billed(trigger_s) + deliver_invocations * billed(deliver_s)) * gb;
    let logged = log_bytes.0.load(Ordering::Relaxed) + metric_bytes.load(Ordering::Relaxed);
    // Lambda's own lines: its start and report lines, about 350 bytes per invocation as
    // JSON, are INFO, sent only when the template's `SystemLogLevel` lets INFO through
    // (its default; the template says WARN, which leaves the warnings: timeouts, crashes).
    let system_level = template["Globals"]["Function"]["LoggingConfig"]["SystemLogLevel"]
        .as_str()
        .unwrap_or("INFO");
    let platform_per_invocation = if system_level == "WARN" { 0.0 } else { 350.0 };
    let platform_log = (trigger_invocations + deliver_invocations) * platform_per_invocation;
    let log_gb = (logged as f64 + platform_log) / 1e9;
    let lines = [
        (
            "API Gateway (HTTP API), event posts",
            trigger_invocations * Prices::HTTP_API_REQUEST,
        ),
        (
            "Lambda requests (trigger + deliver invocations)",
            (trigger_invocations + deliver_invocations) * Prices::LAMBDA_REQUEST,
        ),
        (
            "Lambda duration (arm64 GB-s)",
            lambda_gb_s * Prices::LAMBDA_ARM64_GB_SECOND,
        ),
        ("SQS requests", sqs_requests as f64 * Prices::SQS_REQUEST),
        ("DynamoDB write units", writes * Prices::DYNAMODB_WRITE_UNIT),
        ("DynamoDB read units", reads * Prices::DYNAMODB_READ_UNIT),
        ("CloudWatch Logs ingestion", log_gb * Prices::LOGS_GB),
    ];
    println!(
        "\nLambda at {memory_mb} MB: {trigger_invocations} trigger invocations of {:.1} ms ({:.2} ms CPU + {TRIGGER_ROUNDS} x {} ms AWS), {deliver_invocations} deliver invocations of {:.1} ms ({} ms receivers + {:.2} ms CPU + {DELIVER_ROUNDS} x {} ms AWS): {lambda_gb_s:.2} GB-s",
        trigger_s * 1e3,
        trigger_cpu_per_post.as_secs_f64() * 1e3,
        AWS_ROUND_TRIP.as_millis(),
        deliver_s * 1e3,
        RECEIVER_LATENCY.as_millis(),
        deliver_cpu.as_secs_f64() * 1e3 / deliver_invocations,
        AWS_ROUND_TRIP.as_millis(),
    );
    println!(
        "  (as measured against the emulator: {trigger_ms} + {} ms = {measured_gb_s:.1} GB-s, ${:.2} per million deliveries: the emulator's latency, not Lambda's)",
        deliver_ms.load(Ordering::Relaxed),
        per_million(measured_gb_s * Prices::LAMBDA_ARM64_GB_SECOND)
    );
    println!(
        "Logs: {logged} bytes from the functions ({:.0} per delivery, metric records included) + {platform_log:.0} of Lambda's own lines (SystemLogLevel {system_level})",
        logged as f64 / deliveries
    );
    println!("\nPer million deliveries, {}:", Prices::DATE);
    println!("| line | $ per million deliveries |");
    println!("|---|---|");
    let mut total = 0.0;
    for (name, dollars) in lines {
        total += per_million(dollars);
        println!("| {name} | {:.3} |", per_million(dollars));
    }
    println!("| **total** | **{total:.2}** |");
    println!(
        "\nNot per delivery: Secrets Manager ${:.5} per API cold start (one GetSecretValue) and $0.40 a month for the secret; the event source mapping's empty long polls while the queue is idle (about 0.3 M requests a month, $0.13); alarms and the dashboard.",
        Prices::SECRETS_CALL
    );
    println!(
        "target (issue 18): <= $1.00 per million deliveries; EventBridge API destinations about $1.20 (without an attempt log), Svix $100 in overage"
    );
}
