//! The deployment's settings, read once at start from the environment. A bad value stops
//! the function at start with a message naming the variable, not at the first request.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::clock::{DAY, Millis, SECOND};
use crate::guard::TargetPolicy;
use crate::retry::Schedule;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} has an invalid value: {why}")]
    Invalid { name: &'static str, why: String },
}

/// How long the delivery function reuses a webhook it read from the store, unless
/// `HOOKLINE_WEBHOOK_CACHE_SECONDS` says otherwise. A change to a webhook (disabled,
/// deleted, edited, its secret rotated) reaches deliveries made before it within this
/// long, and those made after it at once (their messages carry the newer version).
pub const DEFAULT_WEBHOOK_CACHE: Millis = 5 * SECOND;

/// How long the delivery function may hold a healthy webhook's successes before it
/// writes them to its health, unless `HOOKLINE_HEALTH_HOLD_SECONDS` says otherwise
/// (`0`: every batch writes). Failures, and a success after a failure, are written with
/// their batch; so are the successes of a webhook not written for this long.
pub const DEFAULT_HEALTH_HOLD: Millis = 60 * SECOND;

/// How long a webhook may fail, every attempt since its first failure after a success,
/// before Hookline disables it, unless `HOOKLINE_AUTO_DISABLE_AFTER_SECONDS` says
/// otherwise (`0`: never): five days, as Svix. Not multiplied by the retry scale.
pub const DEFAULT_AUTO_DISABLE_AFTER: Millis = 5 * DAY;

/// How long one function waits on AWS, and how often it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// To open a connection (DNS + TCP + TLS).
    pub connect: Duration,
    /// For one attempt of a call, from sending the request to the whole answer.
    pub attempt: Duration,
    /// For a call, every attempt and backoff included.
    pub operation: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
}

impl Waits {
    /// The API functions (registration and event intake). An API request makes at most
    /// three calls in a row (the API key, the webhook, the write); API Gateway gives up
    /// at 30 s and SPEC §8 wants an outage answered `503` within 10 s. DynamoDB and SQS
    /// answer in milliseconds, so an attempt that takes 2 s is a stall: one retry after
    /// it, and a call ends within 4.5 s. The request deadline ([`crate::api`], 9 s)
    /// bounds the sum.
    pub const API: Waits = Waits {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
        operation: Duration::from_millis(4_500),
        max_attempts: 2,
    };

    /// The delivery function: no client waits on it, but a stalled call holds the
    /// message (and its batch's invocation). Three attempts of 3 s, a call ends within
    /// 10 s; the handler lets a message go before the function's timeout in any case.
    pub const DELIVERY: Waits = Waits {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(3),
        operation: Duration::from_secs(10),
        max_attempts: 3,
    };

    /// The admin key read from Secrets Manager at cold start: a stall fails the start
    /// (Lambda retries the init) rather than hanging it.
    pub const INIT: Waits = Waits {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(5),
        max_attempts: 2,
    };

    /// The local runtime's SQS poller, which long-polls for up to 20 s.
    pub const LONG_POLL: Waits = Waits {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(25),
        operation: Duration::from_secs(30),
        max_attempts: 2,
    };

    pub(crate) fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    pub(crate) fn retries(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Duration::from_millis(50))
    }
}

/// The admin key: it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// The names of the tables and queues this deployment uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub webhooks_table: String,
    pub api_keys_table: String,
    pub events_table: String,
    pub attempts_table: String,
    pub delivery_queue_url: String,
    pub dead_letter_queue_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The admin key; `None` when admin access is disabled (or it lives in Secrets
    /// Manager: see `admin_key_secret_arn`).
    pub admin_key: Option<Secret>,
    /// On AWS the admin key is a Secrets Manager secret, read at cold start.
    pub admin_key_secret_arn: Option<String>,
    pub targets: TargetPolicy,
    pub retry_scale: f64,
    pub retry: Schedule,
    /// How long attempt records are kept.
    pub attempt_retention: Millis,
    /// How long the delivery function reuses a webhook it read (0: reads every time).
    pub webhook_cache: Millis,
    /// See [`DEFAULT_AUTO_DISABLE_AFTER`]; `None`: never.
    pub auto_disable_after: Option<Millis>,
    /// See [`DEFAULT_HEALTH_HOLD`]; 0: never held.
    pub health_hold: Millis,
    pub resources: Resources,
}

impl Config {
    /// The admin key, from the environment or, on AWS, from Secrets Manager.
    pub async fn admin_key(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<Option<Secret>, ConfigError> {
        let Some(arn) = &self.admin_key_secret_arn else {
            return Ok(self.admin_key.clone());
        };
        let client = crate::aws::secrets(aws, Waits::INIT);
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| ConfigError::Invalid {
                name: "HOOKLINE_ADMIN_KEY_SECRET_ARN",
                why: format!(
                    "the secret could not be read: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ),
            })?;
        let key = out.secret_string().unwrap_or_default().trim();
        if key.len() < 12 {
            return Err(ConfigError::Invalid {
                name: "HOOKLINE_ADMIN_KEY_SECRET_ARN",
                why: "the secret must hold a key of at least 12 characters".to_string(),
            });
        }
        Ok(Some(Secret::new(key)))
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&std::env::vars().collect())
    }

    /// The same from any map of variables, so tests never touch the process environment.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| {
            get(name)
                .map(str::to_string)
                .ok_or(ConfigError::Missing(name))
        };

        let allow_private = match get("HOOKLINE_ALLOW_PRIVATE_TARGETS") {
            None => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "HOOKLINE_ALLOW_PRIVATE_TARGETS",
                        why: format!("expected true or false, got `{v}`"),
                    });
                }
            },
        };
        let retry_scale = match get("HOOKLINE_RETRY_SCALE") {
            None => 1.0,
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 && x <= 100.0 => x,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "HOOKLINE_RETRY_SCALE",
                        why: format!("expected a number in (0, 100], got `{v}`"),
                    });
                }
            },
        };
        // A whole number of `unit` in `range`, or `default` when unset.
        let whole =
            |name: &'static str, range: std::ops::RangeInclusive<i64>, unit: &str, default: i64| {
                let Some(v) = get(name) else {
                    return Ok(default);
                };
                match v.parse::<i64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        why: format!(
                            "expected whole {unit} from {} to {}, got `{v}`",
                            range.start(),
                            range.end()
                        ),
                    }),
                }
            };
        let retention_days = whole("HOOKLINE_ATTEMPT_RETENTION_DAYS", 1..=3650, "days", 30)?;
        let webhook_cache = whole(
            "HOOKLINE_WEBHOOK_CACHE_SECONDS",
            0..=300,
            "seconds",
            DEFAULT_WEBHOOK_CACHE / SECOND,
        )? * SECOND;
        let auto_disable = whole(
            "HOOKLINE_AUTO_DISABLE_AFTER_SECONDS",
            0..=365 * 86_400,
            "seconds",
            DEFAULT_AUTO_DISABLE_AFTER / SECOND,
        )?;
        let health_hold = whole(
            "HOOKLINE_HEALTH_HOLD_SECONDS",
            0..=600,
            "seconds",
            DEFAULT_HEALTH_HOLD / SECOND,
        )? * SECOND;
        let admin_key = match get("HOOKLINE_ADMIN_KEY") {
            None => None,
            Some(k) if k.len() < 12 => {
                return Err(ConfigError::Invalid {
                    name: "HOOKLINE_ADMIN_KEY",
                    why: "must be at least 12 characters".to_string(),
                });
            }
            Some(k) => Some(Secret::new(k)),
        };
        let admin_key_secret_arn = get("HOOKLINE_ADMIN_KEY_SECRET_ARN").map(str::to_string);
        if admin_key.is_some() && admin_key_secret_arn.is_some() {
            return Err(ConfigError::Invalid {
                name: "HOOKLINE_ADMIN_KEY",
                why: "set either HOOKLINE_ADMIN_KEY or HOOKLINE_ADMIN_KEY_SECRET_ARN, not both"
                    .to_string(),
            });
        }
        Ok(Config {
            admin_key,
            admin_key_secret_arn,
            targets: TargetPolicy { allow_private },
            retry_scale,
            retry: Schedule::scaled(retry_scale),
            attempt_retention: retention_days * DAY,
            webhook_cache,
            auto_disable_after: (auto_disable > 0).then_some(auto_disable * SECOND),
            health_hold,
            resources: Resources {
                webhooks_table: required("HOOKLINE_WEBHOOKS_TABLE")?,
                api_keys_table: required("HOOKLINE_API_KEYS_TABLE")?,
                events_table: required("HOOKLINE_EVENTS_TABLE")?,
                attempts_table: required("HOOKLINE_ATTEMPTS_TABLE")?,
                delivery_queue_url: required("HOOKLINE_DELIVERY_QUEUE_URL")?,
                dead_letter_queue_url: required("HOOKLINE_DEAD_LETTER_QUEUE_URL")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = [
            ("HOOKLINE_WEBHOOKS_TABLE", "w"),
            ("HOOKLINE_API_KEYS_TABLE", "k"),
            ("HOOKLINE_EVENTS_TABLE", "e"),
            ("HOOKLINE_ATTEMPTS_TABLE", "a"),
            ("HOOKLINE_DELIVERY_QUEUE_URL", "http://q"),
            ("HOOKLINE_DEAD_LETTER_QUEUE_URL", "http://dlq"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, val) in extra {
            v.insert(k.to_string(), val.to_string());
        }
        v
    }

    #[test]
    fn defaults_are_safe() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert!(!c.targets.allow_private);
        assert_eq!(c.retry_scale, 1.0);
        assert_eq!(c.retry, Schedule::default());
        assert_eq!(c.attempt_retention, 30 * DAY);
        assert_eq!(c.webhook_cache, DEFAULT_WEBHOOK_CACHE);
        assert_eq!(c.health_hold, DEFAULT_HEALTH_HOLD);
        assert!(c.admin_key.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("HOOKLINE_RETRY_SCALE", "fast"),
            ("HOOKLINE_RETRY_SCALE", "0"),
            ("HOOKLINE_RETRY_SCALE", "-1"),
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "maybe"),
            ("HOOKLINE_ATTEMPT_RETENTION_DAYS", "0"),
            ("HOOKLINE_ADMIN_KEY", "short"),
            ("HOOKLINE_WEBHOOK_CACHE_SECONDS", "-1"),
            ("HOOKLINE_WEBHOOK_CACHE_SECONDS", "301"),
            ("HOOKLINE_WEBHOOK_CACHE_SECONDS", "soon"),
            ("HOOKLINE_HEALTH_HOLD_SECONDS", "601"),
            ("HOOKLINE_HEALTH_HOLD_SECONDS", "-1"),
        ] {
            let err = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        // The key comes from one place only.
        let both = vars(&[
            ("HOOKLINE_ADMIN_KEY", "local-admin-key"),
            (
                "HOOKLINE_ADMIN_KEY_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:k",
            ),
        ]);
        let err = Config::from_vars(&both).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let mut v = vars(&[]);
        v.remove("HOOKLINE_EVENTS_TABLE");
        assert_eq!(
            Config::from_vars(&v),
            Err(ConfigError::Missing("HOOKLINE_EVENTS_TABLE"))
        );
    }

    #[test]
    fn the_waits_add_up_to_an_answer_within_ten_seconds() {
        let api = Waits::API;
        // A stalled call ends within its operation timeout, and the request deadline
        // answers before API Gateway's 30 s and within SPEC §8's 10 s.
        assert!(api.attempt * api.max_attempts <= api.operation);
        assert!(api.operation * 2 <= crate::api::REQUEST_DEADLINE);
        assert!(crate::api::REQUEST_DEADLINE < Duration::from_secs(10));
        // The delivery function's calls end well inside the margin it keeps before its
        // own timeout.
        let d = Waits::DELIVERY;
        assert!(d.attempt * d.max_attempts <= d.operation);
        assert!(d.operation < Duration::from_secs(15));
        // The local poller's attempt outlasts SQS's longest long poll.
        assert!(Waits::LONG_POLL.attempt > Duration::from_secs(20));
    }

    #[test]
    fn the_scale_reaches_the_schedule_and_the_admin_key_never_prints() {
        let c = Config::from_vars(&vars(&[
            ("HOOKLINE_RETRY_SCALE", "0.001"),
            ("HOOKLINE_ADMIN_KEY", "local-admin-key-0123"),
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true"),
        ]))
        .unwrap();
        assert_eq!(c.retry.base, 60);
        assert!(c.targets.allow_private);
        assert!(!format!("{c:?}").contains("local-admin-key"));
    }
}
