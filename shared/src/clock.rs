//! Time as the domain sees it: milliseconds since the Unix epoch, RFC 3339 at the edges.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// The wall clock. Pure code takes `now` as an argument instead of calling this.
pub fn now_ms() -> Millis {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as Millis
}

/// Formats a timestamp as RFC 3339 with millisecond precision, e.g. `2026-11-22T07:36:21.123Z`.
pub fn to_rfc3339(ms: Millis) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Parses an RFC 3339 timestamp (any offset) into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_millis_and_offsets() {
        let ms = parse_rfc3339("2026-11-22T07:36:21.123Z").unwrap();
        assert_eq!(to_rfc3339(ms), "2026-11-22T07:36:21.123Z");
        assert_eq!(parse_rfc3339("2026-11-22T16:36:21.123+09:00"), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}

/// Serde helpers that keep [`Millis`] as RFC 3339 strings on the wire.
pub mod rfc3339 {
    use super::{Millis, parse_rfc3339, to_rfc3339};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_rfc3339(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| D::Error::custom("expected an RFC 3339 timestamp"))
    }

    /// The same for `Option<Millis>`.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&to_rfc3339(*ms)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom("expected an RFC 3339 timestamp")),
                None => Ok(None),
            }
        }
    }
}
