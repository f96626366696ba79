//! Logs: one subscriber for every function and the local runtime.
//!
//! - **Level**: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls: the
//!   template's `LogLevel`), else `RUST_LOG`, else `info`. It applies to Hookline's own
//!   crates.
//! - **No secret at any level**: every other crate logs at `info` at most, whatever the
//!   level. The AWS SDK's and hyper's debug and trace output is the wire log — request
//!   and response bodies, which carry API key hashes, bearer tokens, passwords and
//!   `whsec_` secrets inside DynamoDB items — so it is not offered. Hookline's own lines
//!   name ids, statuses and reasons, never a payload, a credential or a signature.
//! - **Format**: one JSON object per line when `AWS_LAMBDA_LOG_FORMAT=JSON` (the
//!   template's `LoggingConfig`), with `timestamp`, `level`, `message` and the fields at
//!   the top level as CloudWatch Logs Insights reads them; otherwise one readable line
//!   per event, UTC timestamp first.

use std::collections::HashMap;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Hookline's crates: their events follow the configured level.
pub const CRATES: &[&str] = &[
    "hookline_core",
    "register",
    "trigger",
    "deliver",
    "hookline_local",
    "hookline_e2e",
];

/// The most any other crate may log.
const OTHERS_AT_MOST: LevelFilter = LevelFilter::INFO;

/// The level Hookline's crates log at, from the environment. `RUST_LOG` may be a level
/// (`debug`) or directives (`info,hyper=trace`): its first bare level counts, and
/// directives for other crates are ignored (see the module's documentation).
pub fn level(vars: &HashMap<String, String>) -> LevelFilter {
    let raw = vars
        .get("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| vars.get("RUST_LOG"))
        .map(String::as_str)
        .unwrap_or_default();
    raw.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('='))
        .find_map(|d| d.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// What passes at `level`: Hookline's crates at it, every other crate at `info` at most.
pub fn filter(level: LevelFilter) -> Targets {
    CRATES
        .iter()
        .fold(Targets::new(), |targets, name| {
            targets.with_target(*name, level)
        })
        .with_default(level.min(OTHERS_AT_MOST))
}

/// Installs the subscriber on stdout (Lambda sends stdout to CloudWatch Logs).
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// [`init`] with another writer (the delivery benchmark writes to a sink). Does nothing
/// when a subscriber is already installed.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let vars: HashMap<String, String> = std::env::vars().collect();
    let filter = filter(level(&vars));
    let json = vars
        .get("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(writer),
            )
            .try_init()
    };
    // Already installed (a test calling twice): keep the first.
    let _ = installed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_and_ignores_other_crates_directives() {
        assert_eq!(level(&vars(&[])), LevelFilter::INFO);
        assert_eq!(level(&vars(&[("RUST_LOG", "debug")])), LevelFilter::DEBUG);
        assert_eq!(
            level(&vars(&[
                ("RUST_LOG", "debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN")
            ])),
            LevelFilter::WARN
        );
        assert_eq!(
            level(&vars(&[("RUST_LOG", "aws_smithy_runtime=trace,trace")])),
            LevelFilter::TRACE
        );
        assert_eq!(
            level(&vars(&[("RUST_LOG", "hyper=trace")])),
            LevelFilter::INFO
        );
    }

    #[test]
    fn other_crates_never_log_below_info_whatever_the_level() {
        let trace = filter(LevelFilter::TRACE);
        let enabled = |target: &str, level: Level| trace.would_enable(target, &level);
        assert!(enabled("deliver", Level::TRACE));
        assert!(enabled("hookline_core::store::dynamo", Level::TRACE));
        for wire in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_http_client",
            "aws_sigv4",
            "hyper_util::client",
            "h2::codec",
            "rustls",
            "reqwest::connect",
        ] {
            assert!(!enabled(wire, Level::DEBUG), "{wire}");
            assert!(!enabled(wire, Level::TRACE), "{wire}");
            assert!(enabled(wire, Level::INFO), "{wire}");
        }
        // A quieter level quiets everyone.
        let warn = filter(LevelFilter::WARN);
        assert!(!warn.would_enable("deliver", &Level::INFO));
        assert!(!warn.would_enable("aws_config", &Level::INFO));
    }
}
