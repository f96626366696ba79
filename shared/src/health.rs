//! Per-webhook health (SPEC §10): the last success and failure, counts over the last 24
//! hours, the success rate, and since when it has been failing — as the delivery function
//! keeps it, with one write per batch and webhook and no read.
//!
//! The stored record holds counts per hour (by the hour's number since the epoch), so
//! that a write adds to the current hour without reading, and a reader sums the hours
//! of the window. Which attempts count: every attempt that sent, or tried to send, a
//! request. A delivered one counts as delivered; any other — a 5xx, a 4xx (410 Gone
//! included), a timeout, a refused connection, a target the guard refused, a template
//! that failed to render — counts as failed. A skipped one (the webhook disabled or
//! deleted, a filter error, a message aborted by its template) sent nothing and counts
//! as neither: aborting by design must not look like failing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::{self, HOUR, Millis};

/// The window the counts cover, in hours.
pub const WINDOW_HOURS: i64 = 24;

/// The hour (since the epoch) a moment falls in.
pub fn hour_of(at: Millis) -> i64 {
    at.div_euclid(HOUR)
}

/// One attempt, as health counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub at: Millis,
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// What one batch adds to one webhook's health: its attempts summed up in time order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// Counts per hour.
    pub hours: BTreeMap<i64, (u64, u64)>,
    pub last_success_at: Option<Millis>,
    /// The latest failure: when, its status code and error.
    pub last_failure: Option<(Millis, Option<u16>, Option<String>)>,
    /// How the batch leaves `failing_since`.
    pub failing: Failing,
}

/// What a batch does to `failing_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failing {
    /// Nothing counted.
    #[default]
    Unchanged,
    /// The latest attempt delivered: no longer failing.
    Cleared,
    /// The latest attempt failed: failing since this, unless it already was (every
    /// attempt of the batch failed)…
    Since(Millis),
    /// …or since this whatever it was (a success came before the batch's failures).
    SinceExactly(Millis),
}

impl Update {
    /// Sums up attempts (in any order; they are sorted by time).
    pub fn of(mut attempts: Vec<Observed>) -> Update {
        attempts.sort_by_key(|a| a.at);
        let mut update = Update::default();
        let mut failing_from: Option<Millis> = None;
        let mut succeeded = false;
        for a in &attempts {
            let counts = update.hours.entry(hour_of(a.at)).or_default();
            if a.delivered {
                counts.0 += 1;
                update.last_success_at = Some(a.at);
                succeeded = true;
                failing_from = None;
            } else {
                counts.1 += 1;
                update.last_failure = Some((a.at, a.status_code, a.error.clone()));
                failing_from.get_or_insert(a.at);
            }
        }
        update.failing = match (attempts.last(), failing_from) {
            (None, _) => Failing::Unchanged,
            (Some(last), _) if last.delivered => Failing::Cleared,
            (Some(_), Some(from)) if succeeded => Failing::SinceExactly(from),
            (Some(_), Some(from)) => Failing::Since(from),
            (Some(_), None) => Failing::Unchanged,
        };
        update
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }
}

/// A webhook's health as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthRecord {
    /// The hour the record was last written in.
    pub hour: Option<i64>,
    /// Delivered and failed attempts, per hour.
    pub hours: BTreeMap<i64, (u64, u64)>,
    pub last_success_at: Option<Millis>,
    pub last_failure_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_status_code: Option<u16>,
    pub failing_since: Option<Millis>,
}

impl HealthRecord {
    /// The record after `update`, as the store applies it (the reference the adapters'
    /// tests hold the store to).
    pub fn apply(mut self, update: &Update, now: Millis) -> HealthRecord {
        let hour = hour_of(now);
        // A write more than a window after the last one starts the hours afresh.
        if self.hour.is_none_or(|last| last < hour - WINDOW_HOURS) {
            self.hours.clear();
        }
        self.hours.retain(|h, _| *h > hour - 2 * WINDOW_HOURS);
        for (h, (d, f)) in &update.hours {
            let counts = self.hours.entry(*h).or_default();
            counts.0 += d;
            counts.1 += f;
        }
        self.hour = Some(hour);
        if update.last_success_at.is_some() {
            self.last_success_at = update.last_success_at;
        }
        if let Some((at, code, error)) = &update.last_failure {
            self.last_failure_at = Some(*at);
            self.last_status_code = *code;
            self.last_error = error.clone();
        }
        match update.failing {
            Failing::Unchanged => {}
            Failing::Cleared => self.failing_since = None,
            Failing::Since(at) => {
                self.failing_since.get_or_insert(at);
            }
            Failing::SinceExactly(at) => self.failing_since = Some(at),
        }
        self
    }

    /// The record as the API shows it at `now`.
    pub fn view(&self, now: Millis) -> Health {
        let hour = hour_of(now);
        let (delivered, failed) = self
            .hours
            .iter()
            .filter(|(h, _)| **h > hour - WINDOW_HOURS && **h <= hour)
            .fold((0, 0), |(d, f), (_, (hd, hf))| (d + hd, f + hf));
        let total = delivered + failed;
        Health {
            last_success_at: self.last_success_at,
            last_failure_at: self.last_failure_at,
            last_error: self.last_error.clone(),
            last_status_code: self.last_status_code,
            window_hours: WINDOW_HOURS,
            delivered,
            failed,
            success_rate: (total > 0).then(|| delivered as f64 / total as f64),
            failing_since: self.failing_since,
        }
    }
}

/// `health` on a webhook (SPEC §10).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    #[serde(with = "clock::rfc3339::option")]
    pub last_success_at: Option<Millis>,
    #[serde(with = "clock::rfc3339::option")]
    pub last_failure_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_status_code: Option<u16>,
    pub window_hours: i64,
    pub delivered: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    #[serde(with = "clock::rfc3339::option")]
    pub failing_since: Option<Millis>,
}

impl Default for Health {
    fn default() -> Health {
        HealthRecord::default().view(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY, MINUTE};

    const T0: Millis = 1_764_583_200_000; // an hour's start

    fn ok(at: Millis) -> Observed {
        Observed {
            at,
            delivered: true,
            status_code: Some(200),
            error: None,
        }
    }

    fn fail(at: Millis, code: u16) -> Observed {
        Observed {
            at,
            delivered: false,
            status_code: Some(code),
            error: Some(format!("HTTP {code}")),
        }
    }

    #[test]
    fn a_batch_sums_up_in_time_order() {
        let u = Update::of(vec![fail(T0 + 3, 503), ok(T0 + 1), fail(T0 + 2, 500)]);
        assert_eq!(u.hours[&hour_of(T0)], (1, 2));
        assert_eq!(u.last_success_at, Some(T0 + 1));
        assert_eq!(
            u.last_failure,
            Some((T0 + 3, Some(503), Some("HTTP 503".into())))
        );
        // A success came first, so failing since the first failure after it, exactly.
        assert_eq!(u.failing, Failing::SinceExactly(T0 + 2));
        assert_eq!(
            Update::of(vec![fail(T0, 500), ok(T0 + 1)]).failing,
            Failing::Cleared
        );
        assert_eq!(
            Update::of(vec![fail(T0 + 5, 500)]).failing,
            Failing::Since(T0 + 5)
        );
        assert!(Update::of(vec![]).is_empty());
    }

    #[test]
    fn failing_since_is_the_first_failure_after_the_last_success() {
        let r = HealthRecord::default().apply(&Update::of(vec![ok(T0)]), T0);
        assert_eq!(r.view(T0).failing_since, None);
        let r = r.apply(&Update::of(vec![fail(T0 + MINUTE, 500)]), T0 + MINUTE);
        assert_eq!(r.failing_since, Some(T0 + MINUTE));
        // Further failures leave it where it started.
        let r = r.apply(
            &Update::of(vec![fail(T0 + 2 * MINUTE, 503)]),
            T0 + 2 * MINUTE,
        );
        assert_eq!(r.failing_since, Some(T0 + MINUTE));
        assert_eq!(
            (r.last_status_code, r.last_failure_at),
            (Some(503), Some(T0 + 2 * MINUTE))
        );
        // A success ends it; the last failure is remembered.
        let r = r.apply(&Update::of(vec![ok(T0 + 3 * MINUTE)]), T0 + 3 * MINUTE);
        assert_eq!(r.failing_since, None);
        assert_eq!(r.last_error.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn counts_cover_the_last_24_hours_and_the_rate_follows() {
        let mut r = HealthRecord::default();
        // One success an hour for 30 hours, and a failure in the last one.
        for h in 0..30 {
            let at = T0 + h * HOUR;
            r = r.apply(&Update::of(vec![ok(at)]), at);
        }
        let now = T0 + 29 * HOUR;
        r = r.apply(&Update::of(vec![fail(now + 1, 500)]), now + 1);
        let v = r.view(now);
        assert_eq!((v.delivered, v.failed, v.window_hours), (24, 1, 24));
        assert_eq!(v.success_rate, Some(24.0 / 25.0));
        // Hours older than two windows are not kept.
        assert!(r.hours.keys().all(|h| *h > hour_of(now) - 48));
        // A day later nothing is in the window: no rate rather than a made-up one.
        let later = r.view(now + DAY + HOUR);
        assert_eq!(
            (later.delivered, later.failed, later.success_rate),
            (0, 0, None)
        );
        assert_eq!(later.last_success_at, Some(T0 + 29 * HOUR));
    }

    #[test]
    fn a_write_after_a_long_silence_starts_the_hours_afresh() {
        let r = HealthRecord::default().apply(&Update::of(vec![ok(T0)]), T0);
        let back = T0 + 3 * DAY;
        let r = r.apply(&Update::of(vec![ok(back)]), back);
        assert_eq!(r.hours.len(), 1);
        assert_eq!(r.view(back).delivered, 1);
        // Nothing happened yet: empty, and serialised with nulls.
        let v = serde_json::to_value(Health::default()).unwrap();
        assert_eq!(v["success_rate"], serde_json::Value::Null);
        assert_eq!(v["window_hours"], 24);
    }
}
