//! `date`: Liquid's, reading the dates webhooks carry. liquid-lib's reads only its own
//! formats (`2026-12-03 10:00:00 +0900`, `3 Dec 2026 …`, Unix seconds as a string), so
//! `{{ event.timestamp | date: "%Y-%m-%d" }}` gave the timestamp back unchanged: Hookline's
//! timestamps, and most APIs', are RFC 3339 (`2026-12-03T10:00:00.123Z`). This one reads,
//! in order:
//! - RFC 3339, any offset, with or without fractions of a second; ISO 8601 without an
//!   offset, a date alone or a date and a time (taken as UTC);
//! - a number as Unix seconds (an integer, or a float with its fraction), as Ruby's
//!   Liquid does (liquid-lib gave numbers back unchanged);
//! - whatever liquid-lib reads (`now`, `today`, its formats, Unix seconds as text).
//!
//! Formatting is liquid-lib's strftime, with field widths of at most [`MAX_WIDTH`]: it
//! pads to any width it is given, so `{{ 'now' | date: '%100000000000Y' }}` wrote 100 GB
//! of zeros inside one filter call, past every render limit (they see the output only
//! when the call returns), and took the process with it. Anything that is not a date,
//! or a number of seconds outside the years −9999 to 9999, comes back unchanged, as
//! liquid-lib answers.

use std::fmt;

use liquid_core::model::{DateTime, Value, ValueView};
use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{Error, Expression, Filter, FilterReflection, ParseFilter, Result, Runtime};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The widest field a format may ask for (`%10N`: nanoseconds, `%-20Y`).
pub const MAX_WIDTH: usize = 100;

const FORMAT: &[ParameterReflection] = &[ParameterReflection {
    name: "format",
    description: "The strftime format to write the date in.",
    is_optional: false,
}];

#[derive(Clone, Copy)]
pub(super) struct Date;

impl FilterReflection for Date {
    fn name(&self) -> &str {
        "date"
    }
    fn description(&self) -> &str {
        "Formats a date (RFC 3339, ISO 8601 without an offset as UTC, Unix seconds, or Liquid's own forms) with strftime."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        FORMAT
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Date {
    fn parse(&self, mut arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        let format = arguments.positional.next();
        let (Some(format), None, None) = (
            format,
            arguments.positional.next(),
            arguments.keyword.next(),
        ) else {
            return Err(Error::with_msg("`date` takes 1 argument, the format"));
        };
        Ok(Box::new(DateFilter { format }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct DateFilter {
    format: Expression,
}

impl fmt::Display for DateFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date: {}", self.format)
    }
}

impl Filter for DateFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let format = self.format.evaluate(runtime)?.to_kstr().into_owned();
        check_widths(&format)?;
        match read(input) {
            Some(date) if !format.is_empty() => date
                .format(format.as_str())
                .map(Value::scalar)
                .map_err(|_| Error::with_msg(format!("Invalid date-format string: {format}"))),
            _ => Ok(input.to_value()),
        }
    }
}

/// The date `input` stands for, if it stands for one.
fn read(input: &dyn ValueView) -> Option<DateTime> {
    let scalar = input.as_scalar()?;
    let at = match scalar.type_name() {
        "whole number" => OffsetDateTime::from_unix_timestamp(scalar.to_integer()?).ok(),
        "fractional number" => {
            let seconds = scalar.to_float()?;
            // Beyond ±2^53 seconds a float has no fraction left, and is out of range anyway.
            (seconds.is_finite() && seconds.abs() < 9_007_199_254_740_992.0)
                .then(|| OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128).ok())
                .flatten()
        }
        "string" => text(scalar.to_kstr().as_str()),
        _ => None,
    };
    match at {
        Some(at) => {
            let mut date = DateTime::default();
            *date = at;
            Some(date)
        }
        // liquid-lib's own reading: its date values, `now`, its text formats.
        None => scalar.to_date_time(),
    }
}

/// A date written as text: RFC 3339, or ISO 8601 without an offset (taken as UTC, the
/// zone a Lambda runs in): a date alone (midnight), or a date and a time, with or without
/// fractions of a second.
fn text(s: &str) -> Option<OffsetDateTime> {
    use time::macros::format_description;
    use time::{PrimitiveDateTime, UtcOffset};
    if let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(at);
    }
    if let Ok(day) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Some(day.midnight().assume_offset(UtcOffset::UTC));
    }
    PrimitiveDateTime::parse(
        s,
        format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        ),
    )
    .ok()
    .map(|at| at.assume_offset(UtcOffset::UTC))
}

/// Refuses a format with a field wider than [`MAX_WIDTH`], read as liquid-lib's strftime
/// reads one: `%`, flags (`-`, `_`, `0`, `^`, `#`), then the width's digits.
fn check_widths(format: &str) -> Result<()> {
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.next_if_eq(&'%').is_some() {
            continue;
        }
        while chars.next_if(|c| "-_0^#".contains(*c)).is_some() {}
        let mut width: usize = 0;
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            width = width
                .saturating_mul(10)
                .saturating_add(digit as usize - '0' as usize);
        }
        if width > MAX_WIDTH {
            return Err(Error::with_msg(format!(
                "`date`: a field width of at most {MAX_WIDTH}, not {width}"
            )));
        }
    }
    Ok(())
}
