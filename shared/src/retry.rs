//! The retry rule table of SPEC §3 as a pure function.
//!
//! | response                          | outcome        | retried                                   |
//! |-----------------------------------|----------------|-------------------------------------------|
//! | 2xx                               | delivered      | —                                         |
//! | 3xx                               | failed         | no (redirects are not followed)           |
//! | 408, 429                          | failed attempt | yes, until 24 h after the first attempt   |
//! | other 4xx                         | failed         | no                                        |
//! | 5xx                               | failed attempt | yes: gives up at the 6th attempt          |
//! | timeout, connection or TLS error  | failed attempt | yes, until 24 h after the first attempt   |
//!
//! Delays grow exponentially from one minute (1, 2, 4, 8, 15 min for 5xx; capped at one
//! hour otherwise), with ±10 % jitter; `Retry-After` replaces a shorter computed delay
//! (capped at one hour). Every delay, window and cap is multiplied by the deployment's
//! retry scale, except the receiver's own `Retry-After` value (its cap is scaled).

use crate::clock::{HOUR, MINUTE, Millis, SECOND};

/// What happened when a request was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered. `retry_after` is its `Retry-After`, already resolved to a
    /// delay from the moment of the answer.
    Response {
        status: u16,
        retry_after: Option<Millis>,
    },
    /// No answer within the webhook's timeout.
    Timeout,
    /// DNS, TCP or TLS failed: the receiver may come back.
    Connection(String),
    /// The request was never sent because it may not be (a forbidden target, a URL that
    /// does not render to something sendable): retrying cannot help.
    Refused(String),
}

/// How an outcome counts against the retry budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Delivered,
    /// Failed, and retrying will not help (3xx, 4xx but 408/429, a refused target).
    Permanent,
    /// 5xx: retried a bounded number of times.
    ServerError,
    /// Timeouts, connection/TLS errors, 408 and 429: retried for the whole window.
    Transient,
}

impl Outcome {
    /// The one place that decides what is retryable.
    pub fn class(&self) -> Class {
        match self {
            Outcome::Response { status, .. } => match status {
                200..=299 => Class::Delivered,
                408 | 429 => Class::Transient,
                500..=599 => Class::ServerError,
                _ => Class::Permanent,
            },
            Outcome::Timeout | Outcome::Connection(_) => Class::Transient,
            Outcome::Refused(_) => Class::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), Class::ServerError | Class::Transient)
    }

    pub fn status_code(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A human-readable error for the attempt log, or `None` on success.
    pub fn error(&self) -> Option<String> {
        match self {
            Outcome::Response { status, .. } if (200..=299).contains(status) => None,
            Outcome::Response { status, .. } if (300..=399).contains(status) => {
                Some(format!("HTTP {status}: redirects are not followed"))
            }
            Outcome::Response { status, .. } => Some(format!("HTTP {status}")),
            Outcome::Timeout => Some("timed out waiting for the receiver".to_string()),
            Outcome::Connection(e) => Some(format!("connection failed: {e}")),
            Outcome::Refused(e) => Some(format!("not sent: {e}")),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Try again after `delay` (whole seconds, as SQS visibility timeouts are).
    Retry {
        delay: Millis,
    },
    /// Stop. `dead_letter` when a retryable failure ran out of budget.
    GiveUp {
        reason: String,
        dead_letter: bool,
    },
}

/// The deployment's retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The first retry's delay.
    pub base: Millis,
    /// The largest delay between 5xx retries.
    pub server_error_cap: Millis,
    /// Attempts (first + retries) after which a 5xx gives up.
    pub server_error_attempts: u32,
    /// The largest delay between other retries.
    pub transient_cap: Millis,
    /// How long after the first attempt retries stop.
    pub window: Millis,
    /// The longest `Retry-After` honoured.
    pub retry_after_cap: Millis,
    /// ± this fraction of jitter on computed delays.
    pub jitter: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            base: MINUTE,
            server_error_cap: 15 * MINUTE,
            server_error_attempts: 6,
            transient_cap: HOUR,
            window: 24 * HOUR,
            retry_after_cap: HOUR,
            jitter: 0.1,
        }
    }
}

fn scale_ms(ms: Millis, scale: f64) -> Millis {
    ((ms as f64) * scale).round() as Millis
}

impl Schedule {
    /// The default schedule with every delay, window and cap multiplied by `scale`.
    pub fn scaled(scale: f64) -> Schedule {
        let d = Schedule::default();
        Schedule {
            base: scale_ms(d.base, scale),
            server_error_cap: scale_ms(d.server_error_cap, scale),
            transient_cap: scale_ms(d.transient_cap, scale),
            window: scale_ms(d.window, scale),
            retry_after_cap: scale_ms(d.retry_after_cap, scale),
            ..d
        }
    }

    /// The computed delay after attempt `attempt` (1-based), before jitter.
    pub fn nominal_delay(&self, class: Class, attempt: u32) -> Millis {
        let cap = match class {
            Class::ServerError => self.server_error_cap,
            _ => self.transient_cap,
        };
        let exp = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << exp).min(cap)
    }

    /// Decides what follows attempt number `attempt` (1-based) of a delivery first
    /// attempted at `first_attempt_at`. `jitter` is a sample from `[0, 1)`.
    pub fn decide(
        &self,
        outcome: &Outcome,
        attempt: u32,
        first_attempt_at: Millis,
        now: Millis,
        jitter: f64,
    ) -> Decision {
        let class = outcome.class();
        let what = outcome.error().unwrap_or_default();
        match class {
            Class::Delivered => return Decision::Delivered,
            Class::Permanent => {
                return Decision::GiveUp {
                    reason: what,
                    dead_letter: false,
                };
            }
            Class::ServerError if attempt >= self.server_error_attempts => {
                return Decision::GiveUp {
                    reason: format!("{what}; gave up after {attempt} attempts"),
                    dead_letter: true,
                };
            }
            Class::ServerError | Class::Transient => {}
        }
        let deadline = first_attempt_at.saturating_add(self.window);
        if now >= deadline {
            return Decision::GiveUp {
                reason: format!("{what}; retried for the whole retry window"),
                dead_letter: true,
            };
        }
        let nominal = self.nominal_delay(class, attempt) as f64;
        let factor = 1.0 + self.jitter * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        let mut delay = (nominal * factor).round() as Millis;
        if let Outcome::Response {
            retry_after: Some(ra),
            ..
        } = outcome
        {
            let ra = (*ra).clamp(0, self.retry_after_cap);
            delay = delay.max(ra);
        }
        // The last attempt lands at the end of the window, not after it.
        delay = delay.min(deadline - now);
        Decision::Retry {
            delay: round_up_to_seconds(delay),
        }
    }
}

impl Schedule {
    /// The most attempts one delivery can take: a receiver that times out every time,
    /// with the shortest jitter and no time spent sending, until the window closes. The
    /// queue's maxReceiveCount must stay above this (the redrive is for crashes).
    pub fn max_attempts(&self) -> u32 {
        let (start, mut now, mut attempt) = (0, 0, 1);
        loop {
            match self.decide(&Outcome::Timeout, attempt, start, now, 0.0) {
                Decision::Retry { delay } => {
                    now += delay.max(SECOND);
                    attempt += 1;
                }
                _ => return attempt,
            }
        }
    }
}

/// SQS counts visibility timeouts in whole seconds: round up.
pub fn round_up_to_seconds(ms: Millis) -> Millis {
    if ms <= 0 {
        0
    } else {
        (ms + SECOND - 1) / SECOND * SECOND
    }
}

/// Parses `Retry-After` (delta-seconds or an HTTP-date) into a delay from `now`.
pub fn parse_retry_after(value: &str, now: Millis) -> Option<Millis> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = value.parse().unwrap_or(i64::MAX / SECOND);
        return Some(secs.saturating_mul(SECOND));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| Millis::try_from(d.as_millis()).ok())?;
    Some((at - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const MID: f64 = 0.5; // no jitter

    fn status(code: u16) -> Outcome {
        Outcome::Response {
            status: code,
            retry_after: None,
        }
    }

    fn decide(outcome: Outcome, attempt: u32, now: Millis) -> Decision {
        Schedule::default().decide(&outcome, attempt, T0, now, MID)
    }

    fn retry(delay: Millis) -> Decision {
        Decision::Retry { delay }
    }

    #[test]
    fn two_hundreds_are_delivered() {
        for code in [200, 201, 204, 299] {
            assert_eq!(decide(status(code), 1, T0), Decision::Delivered);
        }
    }

    #[test]
    fn redirects_and_client_errors_fail_without_retry() {
        for code in [301, 302, 307, 308, 400, 401, 403, 404, 410, 422] {
            match decide(status(code), 1, T0) {
                Decision::GiveUp { dead_letter, .. } => assert!(!dead_letter, "{code}"),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn server_errors_retry_five_times_within_about_thirty_minutes() {
        let mut now = T0;
        let mut delays = vec![];
        for attempt in 1..=5 {
            match decide(status(500), attempt, now) {
                Decision::Retry { delay } => {
                    delays.push(delay / MINUTE);
                    now += delay;
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 15]);
        assert_eq!(now - T0, 30 * MINUTE);
        match decide(status(503), 6, now) {
            Decision::GiveUp {
                dead_letter,
                reason,
            } => {
                assert!(dead_letter);
                assert!(reason.contains("6 attempts"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_count_not_the_clock_ends_server_errors_and_jitter_stays_within_ten_percent() {
        let s = Schedule::default();
        for j in [0.0, 0.25, 0.999] {
            let Decision::Retry { delay } = s.decide(&status(502), 4, T0, T0, j) else {
                panic!()
            };
            assert!(
                (7 * MINUTE + 12 * SECOND..=8 * MINUTE + 48 * SECOND).contains(&delay),
                "{delay}"
            );
        }
        let low = s.decide(&status(502), 4, T0, T0, 0.0);
        let high = s.decide(&status(502), 4, T0, T0, 0.999);
        assert_ne!(low, high);
    }

    #[test]
    fn timeouts_connection_errors_408_and_429_retry_for_24_hours_capped_at_an_hour() {
        for outcome in [
            Outcome::Timeout,
            Outcome::Connection("refused".into()),
            status(408),
            status(429),
        ] {
            assert_eq!(decide(outcome.clone(), 1, T0), retry(MINUTE));
            assert_eq!(decide(outcome.clone(), 7, T0 + HOUR), retry(HOUR));
            assert_eq!(decide(outcome.clone(), 30, T0 + 20 * HOUR), retry(HOUR));
            // The last retry lands at the end of the window…
            assert_eq!(
                decide(outcome.clone(), 40, T0 + 23 * HOUR + 50 * MINUTE),
                retry(10 * MINUTE)
            );
            // …and after it the delivery is dead-lettered.
            match decide(outcome, 41, T0 + 24 * HOUR) {
                Decision::GiveUp { dead_letter, .. } => assert!(dead_letter),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn server_errors_also_stop_at_the_window() {
        match decide(status(500), 2, T0 + 24 * HOUR) {
            Decision::GiveUp { dead_letter, .. } => assert!(dead_letter),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refused_targets_are_not_retried() {
        assert!(matches!(
            decide(Outcome::Refused("private address".into()), 1, T0),
            Decision::GiveUp {
                dead_letter: false,
                ..
            }
        ));
    }

    #[test]
    fn retry_after_seconds_and_http_date_both_parse() {
        assert_eq!(parse_retry_after("120", T0), Some(120 * SECOND));
        assert_eq!(parse_retry_after(" 0 ", T0), Some(0));
        let at = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis((T0 + 90 * SECOND) as u64),
        );
        assert_eq!(parse_retry_after(&at, T0), Some(90 * SECOND));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", T0),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", T0), None);
        assert_eq!(parse_retry_after("-5", T0), None);
    }

    #[test]
    fn retry_after_replaces_a_shorter_delay_and_is_capped_at_an_hour() {
        let with_ra = |code, ra| Outcome::Response {
            status: code,
            retry_after: Some(ra),
        };
        assert_eq!(decide(with_ra(429, 5 * MINUTE), 1, T0), retry(5 * MINUTE));
        assert_eq!(decide(with_ra(503, 5 * MINUTE), 1, T0), retry(5 * MINUTE));
        assert_eq!(decide(with_ra(429, 10 * SECOND), 3, T0), retry(4 * MINUTE));
        assert_eq!(decide(with_ra(429, 5 * HOUR), 1, T0), retry(HOUR));
    }

    #[test]
    fn the_scale_multiplies_delays_windows_and_caps_but_not_retry_after() {
        let s = Schedule::scaled(0.001);
        assert_eq!(s.base, 60);
        assert_eq!(s.window, 86_400);
        assert_eq!(s.retry_after_cap, 3_600);
        // 60 ms rounds up to the next whole second.
        assert_eq!(s.decide(&status(500), 1, T0, T0, MID), retry(SECOND));
        // Retry-After 2 s is honoured as given; 2 h is capped at the scaled hour (3.6 s → 4 s).
        let ra = |ms| Outcome::Response {
            status: 429,
            retry_after: Some(ms),
        };
        assert_eq!(s.decide(&ra(2 * SECOND), 1, T0, T0, MID), retry(2 * SECOND));
        assert_eq!(s.decide(&ra(2 * HOUR), 1, T0, T0, MID), retry(4 * SECOND));
        // The scaled 24-hour window is 86.4 s.
        assert!(matches!(
            s.decide(&Outcome::Timeout, 50, T0, T0 + 87 * SECOND, MID),
            Decision::GiveUp {
                dead_letter: true,
                ..
            }
        ));
    }

    #[test]
    fn the_most_attempts_a_delivery_can_take_is_bounded() {
        // 1, 2, 4, 8, 16, 32 minutes less 10 % jitter (57 min), then every 54 min to
        // 24 h: 1 + 6 + 26 attempts.
        let n = Schedule::default().max_attempts();
        assert_eq!(n, 33);
        // Scaled, every delay rounds up to a whole second, so fewer attempts fit.
        assert!(Schedule::scaled(0.001).max_attempts() <= n);
    }

    #[test]
    fn delays_round_up_to_whole_seconds() {
        assert_eq!(round_up_to_seconds(1), SECOND);
        assert_eq!(round_up_to_seconds(1_000), SECOND);
        assert_eq!(round_up_to_seconds(1_001), 2 * SECOND);
        assert_eq!(round_up_to_seconds(0), 0);
    }
}
