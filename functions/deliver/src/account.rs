//! What a batch leaves behind besides its attempts: one metric record (CloudWatch
//! embedded metric format), one health write per webhook it attempted, and — when a
//! webhook has failed for the deployment's auto-disable period — the webhook disabled
//! and `webhook.disabled` reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;

use hookline_core::clock::{self, Millis};
use hookline_core::health::{Failing, HealthRecord, Observed, Update};
use hookline_core::model::{AttemptStatus, DeliveryTask};
use hookline_core::store::StoreError;

use super::{Deliverer, Verdict};

/// One attempt of a batch, as health and metrics count it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub project_id: String,
    pub webhook_id: String,
    pub status: AttemptStatus,
    pub at: Millis,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The attempts of the batch in hand.
pub(super) struct Batch {
    /// When a message still in hand is let go; bookkeeping may go on trying until then.
    pub(super) release_at: Instant,
    tallies: Mutex<Vec<Tally>>,
}

impl Batch {
    pub(super) fn until(release_at: Instant) -> Batch {
        Batch {
            release_at,
            tallies: Mutex::default(),
        }
    }

    pub(super) fn count(&self, task: &DeliveryTask, verdict: &Verdict, now: Millis) {
        if let Ok(mut tallies) = self.tallies.lock() {
            tallies.push(Tally {
                project_id: task.project_id.clone(),
                webhook_id: task.webhook_id.clone(),
                status: verdict.status,
                at: now,
                status_code: verdict.logged.status_code,
                error: verdict.logged.error.clone(),
                duration_ms: verdict.logged.duration_ms,
            });
        }
    }

    pub(super) fn into_tallies(self) -> Vec<Tally> {
        self.tallies.into_inner().unwrap_or_default()
    }
}

/// Where metric records go.
pub trait MetricsSink: Send + Sync {
    fn emit(&self, record: &str);
}

/// Standard output, one record a line: on Lambda, CloudWatch Logs extracts the metrics.
pub struct StdoutMetrics;

impl MetricsSink for StdoutMetrics {
    fn emit(&self, record: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{record}");
    }
}

/// The metric namespace, and the dimension every record carries.
pub const NAMESPACE: &str = "Hookline";
const DIMENSION: (&str, &str) = ("Function", "deliver");
/// The most attempt durations one record lists (EMF takes 100 values a metric).
const MAX_DURATIONS: usize = 100;

/// A batch's metric record in CloudWatch's embedded metric format: attempts in all and
/// by outcome, and their durations. `None` for a batch that attempted nothing.
///
/// Serialised from a typed record rather than built as a `serde_json::Value`: the record
/// is written once a batch, and a tree of maps cost more than the rest of the batch's
/// bookkeeping together (`cargo bench -p deliver --bench throughput`).
pub fn emf(tallies: &[Tally], now: Millis) -> Option<String> {
    if tallies.is_empty() {
        return None;
    }
    let count = |status: AttemptStatus| tallies.iter().filter(|t| t.status == status).count();
    let durations: Vec<u64> = tallies
        .iter()
        .filter(|t| t.status != AttemptStatus::Skipped)
        .map(|t| t.duration_ms)
        .take(MAX_DURATIONS)
        .collect();
    let metrics: &[Metric] = if durations.is_empty() {
        &METRICS[..METRICS.len() - 1]
    } else {
        &METRICS
    };
    let record = Record {
        function: DIMENSION.1,
        attempts: tallies.len(),
        delivered: count(AttemptStatus::Delivered),
        retrying: count(AttemptStatus::Retrying),
        failed: count(AttemptStatus::Failed),
        dead_lettered: count(AttemptStatus::DeadLettered),
        skipped: count(AttemptStatus::Skipped),
        attempt_duration: (!durations.is_empty()).then_some(durations),
        aws: Directive {
            timestamp: now,
            cloud_watch_metrics: [Metrics {
                namespace: NAMESPACE,
                dimensions: [[DIMENSION.0]],
                metrics,
            }],
        },
    };
    serde_json::to_string(&record).ok()
}

/// One metric of the directive.
#[derive(serde::Serialize)]
struct Metric {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

/// Every metric a record may carry; the last, the durations, only when there are some.
const METRICS: [Metric; 7] = [
    Metric {
        name: "Attempts",
        unit: "Count",
    },
    Metric {
        name: "Delivered",
        unit: "Count",
    },
    Metric {
        name: "Retrying",
        unit: "Count",
    },
    Metric {
        name: "Failed",
        unit: "Count",
    },
    Metric {
        name: "DeadLettered",
        unit: "Count",
    },
    Metric {
        name: "Skipped",
        unit: "Count",
    },
    Metric {
        name: "AttemptDuration",
        unit: "Milliseconds",
    },
];

/// The record: the dimension, the values, and the `_aws` directive that names them.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    /// [`DIMENSION`]'s value, under its name.
    function: &'static str,
    attempts: usize,
    delivered: usize,
    retrying: usize,
    failed: usize,
    dead_lettered: usize,
    skipped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_duration: Option<Vec<u64>>,
    #[serde(rename = "_aws")]
    aws: Directive<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    timestamp: Millis,
    cloud_watch_metrics: [Metrics<'a>; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metrics<'a> {
    namespace: &'static str,
    dimensions: [[&'static str; 1]; 1],
    metrics: &'a [Metric],
}

/// What the delivery function holds of each webhook's health between writes
/// ([`hookline_core::config::DEFAULT_HEALTH_HOLD`]): a healthy webhook's successes are
/// written at most once per hold, where every batch would otherwise write (a fan-out
/// puts one attempt of each webhook in a batch: a health write per delivery, about half
/// the DynamoDB bill; `make bench-cost`). Failures are never held, nor a success after a
/// failure, nor the first attempts this process sees of a webhook: what people watch a
/// webhook for (failing or not, since when, the last error) is written with its batch.
/// The cost: a healthy webhook's counts and `last_success_at` trail by up to the hold,
/// and successes held when Lambda retires an idle instance are not counted.
#[derive(Clone, Default)]
pub struct HealthHold {
    /// How long successes may be held (0: never).
    pub hold: Millis,
    webhooks: Arc<Mutex<HashMap<(String, String), Kept>>>,
}

/// One webhook, as this process last wrote it.
struct Kept {
    /// Its health said it was not failing.
    healthy: bool,
    written_at: Millis,
    /// Successes since, not yet written.
    held: Vec<Observed>,
}

/// The most successes held for one webhook, and the most webhooks kept.
const MAX_HELD: usize = 1_000;
const MAX_KEPT: usize = 10_000;

/// A health write to make.
struct Write {
    project: String,
    webhook_id: String,
    observed: Vec<Observed>,
    /// Only held successes: what the webhook's health says of failing stays as it is.
    held_only: bool,
}

impl HealthHold {
    pub fn new(hold: Millis) -> HealthHold {
        HealthHold {
            hold,
            ..HealthHold::default()
        }
    }

    /// The writes after a batch that observed `by_webhook`: each webhook's attempts are
    /// held or written (with what was held before them), and successes held for the
    /// hold are written whether or not the batch saw their webhook.
    fn writes(
        &self,
        by_webhook: BTreeMap<(String, String), Vec<Observed>>,
        now: Millis,
    ) -> Vec<Write> {
        let Ok(mut kept) = self.webhooks.lock() else {
            return by_webhook
                .into_iter()
                .map(|((project, webhook_id), observed)| Write {
                    project,
                    webhook_id,
                    observed,
                    held_only: false,
                })
                .collect();
        };
        let mut writes = Vec::new();
        for (key, observed) in by_webhook {
            let entry = kept.get_mut(&key);
            let holdable = self.hold > 0
                && observed.iter().all(|o| o.delivered)
                && entry.as_ref().is_some_and(|k| {
                    k.healthy
                        && now - k.written_at < self.hold
                        && k.held.len() + observed.len() <= MAX_HELD
                });
            match entry {
                Some(k) if holdable => k.held.extend(observed),
                entry => {
                    let mut all = entry
                        .map(|k| std::mem::take(&mut k.held))
                        .unwrap_or_default();
                    all.extend(observed);
                    writes.push(Write {
                        project: key.0,
                        webhook_id: key.1,
                        observed: all,
                        held_only: false,
                    });
                }
            }
        }
        for ((project, webhook_id), k) in kept.iter_mut() {
            if !k.held.is_empty() && now - k.written_at >= self.hold {
                writes.push(Write {
                    project: project.clone(),
                    webhook_id: webhook_id.clone(),
                    observed: std::mem::take(&mut k.held),
                    held_only: true,
                });
            }
        }
        // A webhook not written for a hold is written at its next attempt anyway.
        kept.retain(|_, k| !k.held.is_empty() || now - k.written_at < self.hold);
        writes
    }

    /// Notes a write: the webhook's health as it stands after it.
    fn written(&self, project: &str, webhook_id: &str, record: &HealthRecord, now: Millis) {
        if self.hold == 0 {
            return;
        }
        let Ok(mut kept) = self.webhooks.lock() else {
            return;
        };
        if kept.len() >= MAX_KEPT {
            // Written for each webhook within the hold: forget what holds nothing.
            kept.retain(|_, k| !k.held.is_empty());
            if kept.len() >= MAX_KEPT {
                return;
            }
        }
        let k = kept
            .entry((project.to_string(), webhook_id.to_string()))
            .or_insert(Kept {
                healthy: true,
                written_at: now,
                held: Vec::new(),
            });
        k.healthy = record.failing_since.is_none();
        k.written_at = now;
    }
}

impl Deliverer {
    /// After a batch: its metric record, and the health writes of the webhooks it
    /// attempted (skipped attempts sent nothing and do not count): at most one per
    /// webhook, none for a healthy webhook's successes within the hold ([`HealthHold`]),
    /// all by `until`.
    pub(super) async fn account(&self, tallies: Vec<Tally>, until: Instant) {
        let now = clock::now_ms();
        if let Some(record) = emf(&tallies, now) {
            self.metrics.emit(&record);
        }
        let mut by_webhook: BTreeMap<(String, String), Vec<Observed>> = BTreeMap::new();
        for t in tallies {
            if t.status == AttemptStatus::Skipped {
                continue;
            }
            by_webhook
                .entry((t.project_id, t.webhook_id))
                .or_default()
                .push(Observed {
                    at: t.at,
                    delivered: t.status == AttemptStatus::Delivered,
                    status_code: t.status_code,
                    error: t.error,
                });
        }
        let writes: Vec<_> = self
            .health_hold
            .writes(by_webhook, now)
            .into_iter()
            .map(|write| self.keep_health(write, until))
            .collect();
        let all = futures_util::stream::iter(writes)
            .buffer_unordered(super::CONCURRENCY)
            .collect::<Vec<()>>();
        if tokio::time::timeout_at(until.into(), all).await.is_err() {
            tracing::warn!("health writes were cut short near the function's timeout");
        }
    }

    async fn keep_health(&self, write: Write, until: Instant) {
        let Write {
            project,
            webhook_id,
            observed,
            held_only,
        } = write;
        let last_success_at = observed.iter().map(|o| o.at).max();
        let mut update = Update::of(observed);
        if held_only {
            // Held while the webhook was healthy; another instance may have seen it fail
            // since, which these successes (maybe older) must not clear.
            update.failing = Failing::Unchanged;
        }
        let now = clock::now_ms();
        let expires_at = now + self.retention;
        let mut written = super::patiently(until, "write the webhook's health", || {
            self.health
                .record(&project, &webhook_id, &update, now, expires_at)
        })
        .await;
        if held_only
            && let Ok(record) = &written
            && record.failing_since.is_some()
            && last_success_at > record.last_failure_at
        {
            // Failing by another instance's word, but these successes came after its
            // last failure: the webhook is not failing.
            let cleared = Update {
                failing: Failing::Cleared,
                ..Update::default()
            };
            written = super::patiently(until, "write the webhook's health", || {
                self.health
                    .record(&project, &webhook_id, &cleared, now, expires_at)
            })
            .await;
        }
        match written {
            Ok(record) => {
                self.health_hold
                    .written(&project, &webhook_id, &record, now);
                if matches!(update.failing, Failing::Since(_) | Failing::SinceExactly(_)) {
                    self.disable_if_failing_too_long(&project, &webhook_id, &record, now)
                        .await;
                }
            }
            Err(e) => {
                tracing::warn!(webhook_id = %webhook_id, error = %hookline_core::error::chain(&e), "could not write the webhook's health");
            }
        }
    }

    /// Disables a webhook whose every attempt since `failing_since` failed for the
    /// auto-disable period, and reports it. The webhook is read only then.
    async fn disable_if_failing_too_long(
        &self,
        project: &str,
        webhook_id: &str,
        record: &HealthRecord,
        now: Millis,
    ) {
        let (Some(period), Some(since)) = (self.auto_disable_after, record.failing_since) else {
            return;
        };
        if now - since < period {
            return;
        }
        let current = match self.fanout.webhooks.get(project, webhook_id).await {
            Ok(Some(w)) if w.spec.enabled => w,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(webhook_id, error = %hookline_core::error::chain(&e), "could not read a webhook to disable");
                return;
            }
        };
        let disabled = current.disabled_for_failing(now);
        match self
            .fanout
            .webhooks
            .update(&disabled, current.version)
            .await
        {
            Ok(()) => {}
            // Changed meanwhile (edited, or disabled by another instance): the next
            // failure looks again.
            Err(StoreError::Conflict) => return,
            Err(e) => {
                tracing::warn!(webhook_id, error = %hookline_core::error::chain(&e), "could not disable a failing webhook");
                return;
            }
        }
        self.forget(webhook_id);
        tracing::warn!(
            webhook_id,
            failing_since = %clock::to_rfc3339(since),
            "disabled a webhook that kept failing"
        );
        let event = hookline_core::fanout::disabled_event(&disabled, record, now);
        if let Err(e) = Box::pin(self.fanout.submit(project, event, true, now)).await {
            tracing::error!(webhook_id, error = %hookline_core::error::chain(&e), "could not report the webhook disabled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tally(status: AttemptStatus, duration_ms: u64) -> Tally {
        Tally {
            project_id: "p".into(),
            webhook_id: "w".into(),
            status,
            at: 0,
            status_code: None,
            error: None,
            duration_ms,
        }
    }

    #[test]
    fn one_metric_record_a_batch_in_embedded_metric_format() {
        assert_eq!(emf(&[], 1), None);
        let batch = [
            tally(AttemptStatus::Delivered, 12),
            tally(AttemptStatus::Delivered, 30),
            tally(AttemptStatus::Retrying, 1_000),
            tally(AttemptStatus::Skipped, 0),
        ];
        let record: serde_json::Value =
            serde_json::from_str(&emf(&batch, 1_700_000_000_000).unwrap()).unwrap();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(record["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], "Hookline");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(record["Function"], "deliver");
        // Every metric the directive names is a member of the record.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(!record[name].is_null(), "{name}");
        }
        assert_eq!(
            (
                record["Attempts"].as_u64(),
                record["Delivered"].as_u64(),
                record["Retrying"].as_u64(),
                record["Skipped"].as_u64()
            ),
            (Some(4), Some(2), Some(1), Some(1))
        );
        // Skipped attempts sent nothing: no duration.
        assert_eq!(record["AttemptDuration"], json!([12, 30, 1000]));
        let many: Vec<Tally> = (0..500)
            .map(|i| tally(AttemptStatus::Delivered, i))
            .collect();
        let record: serde_json::Value = serde_json::from_str(&emf(&many, 0).unwrap()).unwrap();
        assert_eq!(record["AttemptDuration"].as_array().unwrap().len(), 100);
    }
}
