//! serde_json keeps a JSON number as a 64-bit integer or a double, so a number that is
//! neither (`123456789012345678901234567890`, or a decimal with more digits than a double
//! holds) would be stored and sent on as another number: `1.2345678901234568e29`. A
//! webhook carries what it was given or refuses it; this finds the first number of a
//! (valid) document that would not arrive as it was sent.

use super::duplicate_key::{Segment, render};

/// The path of the first number in `bytes` that reading it as serde_json does and
/// writing it again would change, with that number's text.
pub(super) fn first_inexact(bytes: &[u8]) -> Option<(String, String)> {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                None => {}
            },
            b'"' => {
                let end = string_end(bytes, i);
                if let Some(Frame::Object { key, want_key }) = stack.last_mut()
                    && *want_key
                {
                    *key = serde_json::from_slice::<String>(&bytes[i..end]).ok();
                    *want_key = false;
                }
                i = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = std::str::from_utf8(&bytes[start..i]).unwrap_or_default();
                if !survives(token) {
                    let path: Vec<Segment> = stack
                        .iter()
                        .filter_map(|f| match f {
                            Frame::Object { key, .. } => key.clone().map(Segment::Key),
                            Frame::Array { index } => Some(Segment::Index(*index)),
                        })
                        .collect();
                    return Some((render(&path), token.to_string()));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the string that starts at `start` (its opening quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether the number `token` comes out of serde_json as the same number it went in.
fn survives(token: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(token) else {
        // Not a number serde_json reads (out of range): the parse refuses it already.
        return true;
    };
    if value.is_i64() || value.is_u64() {
        return true;
    }
    decimal(token) == decimal(&value.to_string())
}

/// A decimal number's value as (negative, significant digits, exponent), zero as one
/// value whatever its sign: `12.30` and `1.23e1` are the same, `1.2345678901234568e29`
/// and `123456789012345678901234567890` are not.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    let exponent = exponent - frac.len() as i64 + (significant.len() - trimmed.len()) as i64;
    Some((negative, trimmed.to_string(), exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inexact(json: &str) -> Option<(String, String)> {
        first_inexact(json.as_bytes())
    }

    #[test]
    fn numbers_that_travel_as_sent_pass() {
        for json in [
            r#"{"a": 1, "b": -1, "c": 18446744073709551615, "d": -9223372036854775808}"#,
            r#"{"a": 0.1, "b": 12.30, "c": 1e2, "d": 1E-7, "e": -0, "f": -0.0, "g": 0e10}"#,
            r#"{"a": 5e-324, "b": 1.7976931348623157e308, "c": 3.141592653589793}"#,
            r#"{"a": "123456789012345678901234567890", "b": "1.00000000000000000001"}"#,
            r#"{"a\"1,": [1, {"b": 2.5}], "c": true, "d": null}"#,
        ] {
            assert_eq!(inexact(json), None, "{json}");
        }
    }

    #[test]
    fn numbers_that_would_change_are_found_by_path() {
        let cases = [
            (r#"{"x": 123456789012345678901234567890}"#, "x"),
            (r#"{"a": {"b": [1, 2, 18446744073709551616]}}"#, "a.b[2]"),
            (r#"{"a": [0, -9223372036854775809]}"#, "a[1]"),
            (r#"{"data": {"pi": 3.14159265358979323846}}"#, "data.pi"),
            (r#"{"k,\"": {"v": 1.00000000000000000001}}"#, "k,\".v"),
            (r#"{"tiny": 1e-400}"#, "tiny"),
            (r#"{"a": [[1.5], {"b": 2}, 9007199254740993.0]}"#, "a[2]"),
        ];
        for (json, path) in cases {
            assert_eq!(
                inexact(json).map(|(p, _)| p).as_deref(),
                Some(path),
                "{json}"
            );
        }
        assert_eq!(
            inexact(r#"{"x": 123456789012345678901234567890}"#).map(|(_, n)| n),
            Some("123456789012345678901234567890".to_string())
        );
    }
}
