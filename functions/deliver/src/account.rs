//! What a batch leaves behind besides its attempts: one metric record (CloudWatch
//! embedded metric format), one health write per webhook it attempted, and — when a
//! webhook has failed for the deployment's auto-disable period — the webhook disabled
//! and `webhook.disabled` reported.

use std::collections::BTreeMap;
use std::sync::Mutex;
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

impl Deliverer {
    /// After a batch: its metric record, and one health write per webhook it attempted
    /// (skipped attempts sent nothing and do not count), all by `until`.
    pub(super) async fn account(&self, tallies: Vec<Tally>, until: Instant) {
        if let Some(record) = emf(&tallies, clock::now_ms()) {
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
        let writes: Vec<_> = by_webhook
            .into_iter()
            .map(|((project, webhook), observed)| {
                self.keep_health(project, webhook, observed, until)
            })
            .collect();
        let all = futures_util::stream::iter(writes)
            .buffer_unordered(super::CONCURRENCY)
            .collect::<Vec<()>>();
        if tokio::time::timeout_at(until.into(), all).await.is_err() {
            tracing::warn!("health writes were cut short near the function's timeout");
        }
    }

    async fn keep_health(
        &self,
        project: String,
        webhook_id: String,
        observed: Vec<Observed>,
        until: Instant,
    ) {
        let update = Update::of(observed);
        let now = clock::now_ms();
        let expires_at = now + self.retention;
        let written = super::patiently(until, "write the webhook's health", || {
            self.health
                .record(&project, &webhook_id, &update, now, expires_at)
        })
        .await;
        match written {
            Ok(record) => {
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
