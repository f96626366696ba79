//! `json`: a value as JSON text, for raw bodies written as JSON, as Shopify's Liquid has
//! it (Jekyll's `jsonify`): `{"items": {{ data.items | json }}, "note": {{ data.note |
//! json }}}`. A string comes out quoted and escaped (a quote, a backslash or a newline
//! in event data can no longer break the body), a number or a boolean as it is, nil as
//! `null`, an array or an object whole, a date as its text. Without it a raw JSON body
//! can only splice text between quotes, and nothing but strings.
//!
//! Numbers are written as Liquid holds them: an integer as an integer, anything else as
//! the shortest text of its double (so an event's integer beyond `i64` comes out as a
//! float, as Liquid prints it too). Nesting is bounded, and so is the text: past
//! [`super::MAX_VALUE_BYTES`] the filter stops with an error instead of building more
//! (the render budget then charges what it produced, as for every filter).

use std::fmt;

use liquid_core::model::{Value, ValueView};
use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{Error, Filter, FilterReflection, ParseFilter, Result, Runtime};

/// Deeper than any event (serde_json stops at 128 levels) or anything a template builds.
const MAX_DEPTH: usize = 128;

#[derive(Clone, Copy)]
pub(super) struct Json;

impl FilterReflection for Json {
    fn name(&self) -> &str {
        "json"
    }
    fn description(&self) -> &str {
        "The value as JSON text: a string quoted and escaped, numbers, booleans, nil (null), arrays and objects whole."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Json {
    fn parse(&self, mut arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        if arguments.positional.next().is_some() || arguments.keyword.next().is_some() {
            return Err(Error::with_msg("`json` takes no argument"));
        }
        Ok(Box::new(JsonFilter))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct JsonFilter;

impl fmt::Display for JsonFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("json")
    }
}

impl Filter for JsonFilter {
    fn evaluate(&self, input: &dyn ValueView, _: &dyn Runtime) -> Result<Value> {
        let mut out = Vec::new();
        write(input, &mut out, 0)?;
        too_long(&out)?;
        // Only JSON was written, from strings: UTF-8 throughout.
        String::from_utf8(out)
            .map(Value::scalar)
            .map_err(|e| Error::with_msg(format!("`json`: {e}")))
    }
}

/// An error once `out` is past the value limit.
fn too_long(out: &[u8]) -> Result<()> {
    if out.len() > super::MAX_VALUE_BYTES {
        return Err(Error::with_msg(format!(
            "`json` would produce more than {} bytes",
            super::MAX_VALUE_BYTES
        )));
    }
    Ok(())
}

/// Appends `value` as JSON, stopping once the text is past the value limit.
fn write(value: &dyn ValueView, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    too_long(out)?;
    if depth > MAX_DEPTH {
        return Err(Error::with_msg(format!(
            "`json` nests at most {MAX_DEPTH} levels"
        )));
    }
    // Nil first: Hookline's view of an absent value also answers as an empty object.
    if value.is_nil() {
        out.extend_from_slice(b"null");
    } else if let Some(scalar) = value.as_scalar() {
        let plain = match scalar.type_name() {
            "whole number" => scalar.to_integer().map(serde_json::Value::from),
            "fractional number" => match scalar.to_float().and_then(serde_json::Number::from_f64) {
                Some(number) => Some(serde_json::Value::Number(number)),
                None => {
                    return Err(Error::with_msg(
                        "`json`: a number JSON cannot hold (infinite or not a number)",
                    ));
                }
            },
            "boolean" => scalar.to_bool().map(serde_json::Value::Bool),
            _ => None,
        };
        match plain {
            Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
            // Strings, and dates as the text Liquid prints for them.
            None => super::write_json_string(out, &scalar.into_cow_str()),
        }
    } else if let Some(array) = value.as_array() {
        out.push(b'[');
        for (i, item) in array.values().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write(item, out, depth + 1)?;
        }
        out.push(b']');
    } else if let Some(object) = value.as_object() {
        out.push(b'{');
        for (i, (key, item)) in object.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            super::write_json_string(out, key.as_str());
            out.push(b':');
            write(item, out, depth + 1)?;
        }
        out.push(b'}');
    } else {
        // `empty` and `blank`, which Liquid prints as nothing.
        out.extend_from_slice(b"null");
    }
    Ok(())
}
