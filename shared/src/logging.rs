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

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

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

/// [`init`] with another writer (the cost benchmark counts the bytes). Does nothing
/// when a subscriber is already installed.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let vars: HashMap<String, String> = std::env::vars().collect();
    // Already installed (a test calling twice): keep the first.
    let _ = tracing::dispatcher::set_global_default(subscriber(&vars, writer));
}

/// The subscriber [`init`] installs for the environment `vars`, writing to `writer`
/// (the delivery benchmark installs it with Lambda's `AWS_LAMBDA_LOG_FORMAT=JSON`,
/// writing to a sink).
pub fn subscriber<W>(vars: &HashMap<String, String>, writer: W) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter(level(vars));
    let json = vars
        .get("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(writer),
            )
            .into()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(writer),
            )
            .into()
    }
}

/// One JSON object per event: `timestamp`, `level`, the event's fields (its `message`
/// among them) at the top level, and `target`: what tracing-subscriber's JSON format
/// writes with `flatten_event(true)` and no spans, written straight to the line. That
/// format gathers the fields into a map of `serde_json` values first, which cost about
/// 4 µs an event, a sixth of a delivery's CPU (`cargo bench -p deliver --bench
/// throughput`, "with the production subscriber").
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = JsonFields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`. 128-bit integers are left to `record_debug`
/// (a string), as tracing-subscriber's format does.
struct JsonFields<'w, 'a> {
    out: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .out
                .write_char(',')
                .and_then(|()| write_json_str(self.out, field.name()))
                .and_then(|()| self.out.write_char(':'))
                .and_then(|()| value(self.out));
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_json_str(out, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes those as null.
        self.field(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value}")?;
            out.write_char('"')
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

fn write_json_str(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(&mut *out).write_str(s)?;
    out.write_char('"')
}

/// A writer that escapes what it is given as the inside of a JSON string.
struct Escaped<W>(W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", u32::from(c))?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
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
            "aws_smithy_runtime_api::client",
            "aws_sigv4",
            "hyper_util::client",
            "hyper::proto",
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

    /// What a subscriber under test wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    #[test]
    fn json_lines_read_as_tracing_subscribers_own_json_format() {
        let emit = || {
            tracing::info!(
                delivery_id = %"msg_1",
                attempt = 3u32,
                status_code = Some(200u16),
                duration_ms = 12u64,
                reason = Some("a \"quoted\"\nline\twith \u{1}\u{8}\u{1f} controls, \\ and ünïcode 💥"),
                ok = true,
                ratio = 0.5,
                negative = -4i64,
                "attempt"
            );
            tracing::warn!(error = %"boom", none = None::<&str>, "could not {} the {}", "write", "log");
            let e = std::io::Error::other("disk \"full\"");
            tracing::error!(error = &e as &(dyn std::error::Error + 'static), debug = ?vec!["a", "b"], nan = f64::NAN, big = u128::MAX, "with a debug value");
            // Not Hookline's crate and below info: filtered out by both.
            tracing::debug!(target: "hyper", "wire");
        };
        let ours = Captured::default();
        let lambda = vars(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
        tracing::dispatcher::with_default(&subscriber(&lambda, ours.clone()), emit);
        let theirs = Captured::default();
        let reference: tracing::Dispatch = tracing_subscriber::registry()
            .with(filter(LevelFilter::INFO))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(theirs.clone()),
            )
            .into();
        tracing::dispatcher::with_default(&reference, emit);
        let (mut ours, mut theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 3);
        for line in ours.iter_mut().chain(theirs.iter_mut()) {
            let timestamp = line.as_object_mut().unwrap().remove("timestamp").unwrap();
            let timestamp = timestamp.as_str().unwrap();
            assert!(
                crate::clock::parse_rfc3339(timestamp).is_some() && timestamp.ends_with('Z'),
                "{timestamp}"
            );
        }
        assert_eq!(ours, theirs);
        assert_eq!(ours[0]["message"], "attempt");
        assert_eq!(ours[1]["message"], "could not write the log");
    }
}
