//! The filters Hookline implements itself instead of taking liquid-lib's: arithmetic
//! (`abs`, `plus`, `minus`, `times`, `divided_by`, `modulo`, `ceil`, `floor`, `round`,
//! `at_least`, `at_most`) and `slice`. Templates and event data are customer input, and
//! liquid-lib's versions overflow on it: `i64::MIN | abs`, `divided_by: -1` and `times`
//! panic (division in any build, the rest where overflow checks are on) or wrap silently.
//!
//! Here integer arithmetic is checked: a result that does not fit 64 bits is an error,
//! and so is a float that has to become an integer but is out of range (`1e300 | ceil`)
//! — never a saturated or wrapped value. Otherwise these behave as liquid-lib's: both
//! operands integers (strings holding integers count) make an integer, a float on either
//! side makes a float, and anything else is an error naming the filter.

use std::fmt;

use liquid_core::model::{Value, ValueView};
use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{Error, Expression, Filter, FilterReflection, ParseFilter, Result, Runtime};

/// What a filter computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Abs,
    Ceil,
    Floor,
    Round,
    Plus,
    Minus,
    Times,
    DividedBy,
    Modulo,
    AtLeast,
    AtMost,
    Slice,
}

/// One of the filters above, as the parser registers it.
#[derive(Clone)]
pub(super) struct Checked {
    op: Op,
    name: &'static str,
    description: &'static str,
    positional: &'static [ParameterReflection],
}

const fn parameter(name: &'static str, is_optional: bool) -> ParameterReflection {
    ParameterReflection {
        name,
        description: "",
        is_optional,
    }
}

const OPERAND: &[ParameterReflection] = &[parameter("operand", false)];
const NONE: &[ParameterReflection] = &[];

/// Every filter this module owns.
pub(super) fn filters() -> Vec<Checked> {
    let make = |op, name, description, positional| Checked {
        op,
        name,
        description,
        positional,
    };
    const ROUND: &[ParameterReflection] = &[parameter("decimal_places", true)];
    const SLICE: &[ParameterReflection] = &[parameter("offset", false), parameter("length", true)];
    vec![
        make(Op::Abs, "abs", "The absolute value of a number.", NONE),
        make(Op::Ceil, "ceil", "Rounds up to a whole number.", NONE),
        make(Op::Floor, "floor", "Rounds down to a whole number.", NONE),
        make(
            Op::Round,
            "round",
            "Rounds to the nearest whole number, or to that many decimal places.",
            ROUND,
        ),
        make(Op::Plus, "plus", "Adds a number.", OPERAND),
        make(Op::Minus, "minus", "Subtracts a number.", OPERAND),
        make(Op::Times, "times", "Multiplies by a number.", OPERAND),
        make(Op::DividedBy, "divided_by", "Divides by a number.", OPERAND),
        make(
            Op::Modulo,
            "modulo",
            "The remainder of a division.",
            OPERAND,
        ),
        make(
            Op::AtLeast,
            "at_least",
            "Limits a number to a minimum.",
            OPERAND,
        ),
        make(
            Op::AtMost,
            "at_most",
            "Limits a number to a maximum.",
            OPERAND,
        ),
        make(
            Op::Slice,
            "slice",
            "The items (or characters) from offset, length of them (1).",
            SLICE,
        ),
    ]
}

impl FilterReflection for Checked {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        self.description
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        self.positional
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        NONE
    }
}

impl ParseFilter for Checked {
    fn parse(&self, mut arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        let args: Vec<Expression> = arguments.positional.by_ref().collect();
        if let Some((keyword, _)) = arguments.keyword.next() {
            return Err(Error::with_msg(format!(
                "`{}` takes no keyword argument `{keyword}`",
                self.name
            )));
        }
        let required = self.positional.iter().filter(|p| !p.is_optional).count();
        if args.len() < required || args.len() > self.positional.len() {
            return Err(Error::with_msg(format!(
                "`{}` takes {} argument{}, not {}",
                self.name,
                if required == self.positional.len() {
                    required.to_string()
                } else {
                    format!("{required} or {}", self.positional.len())
                },
                if self.positional.len() == 1 { "" } else { "s" },
                args.len()
            )));
        }
        Ok(Box::new(CheckedFilter {
            op: self.op,
            name: self.name,
            args,
        }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct CheckedFilter {
    op: Op,
    name: &'static str,
    args: Vec<Expression>,
}

impl fmt::Display for CheckedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

/// A number as the arithmetic filters see one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(x) => x,
        }
    }

    fn value(self) -> Value {
        match self {
            Num::Int(i) => Value::scalar(i),
            Num::Float(x) => Value::scalar(x),
        }
    }
}

impl CheckedFilter {
    fn error(&self, why: impl fmt::Display) -> Error {
        Error::with_msg(format!("`{}`: {why}", self.name))
    }

    fn number(&self, value: &dyn ValueView, what: &str) -> Result<Num> {
        let scalar = value.as_scalar();
        scalar
            .as_ref()
            .and_then(|s| s.to_integer().map(Num::Int))
            .or_else(|| scalar.as_ref().and_then(|s| s.to_float()).map(Num::Float))
            .ok_or_else(|| {
                self.error(format_args!(
                    "{what} must be a number, not {}",
                    value.type_name()
                ))
            })
    }

    fn whole(&self, value: &dyn ValueView, what: &str) -> Result<i64> {
        value
            .as_scalar()
            .and_then(|s| s.to_integer())
            .ok_or_else(|| {
                self.error(format_args!(
                    "{what} must be a whole number, not {}",
                    value.type_name()
                ))
            })
    }

    /// A float that has to become an integer, if it fits one.
    fn to_int(&self, x: f64) -> Result<Value> {
        // i64::MIN is exactly -2^63; i64::MAX rounds up to 2^63 as a float.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if x.is_finite() && (-LIMIT..LIMIT).contains(&x) {
            Ok(Value::scalar(x as i64))
        } else {
            Err(self.error(format_args!("{x} does not fit a 64-bit integer")))
        }
    }

    fn overflow(&self) -> Error {
        self.error("the result does not fit a 64-bit integer")
    }

    /// Integer or float arithmetic on two numbers; `int` answers `None` on overflow.
    fn arithmetic(
        &self,
        a: Num,
        b: Num,
        int: impl Fn(i64, i64) -> Option<i64>,
        float: impl Fn(f64, f64) -> f64,
    ) -> Result<Value> {
        match (a, b) {
            (Num::Int(a), Num::Int(b)) => {
                int(a, b).map(Value::scalar).ok_or_else(|| self.overflow())
            }
            _ => Ok(Value::scalar(float(a.float(), b.float()))),
        }
    }

    fn slice(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let offset = self.whole(self.args[0].evaluate(runtime)?.as_view(), "offset")?;
        let length = match self.args.get(1) {
            Some(e) => self.whole(e.evaluate(runtime)?.as_view(), "length")?,
            None => 1,
        };
        if length < 1 {
            return Err(self.error("length must be at least 1"));
        }
        // Liquid's rule, in i128 so no input overflows: a negative offset counts from the
        // end, one still before the start selects nothing.
        let window = |len: usize| -> (usize, usize) {
            let len = len as i128;
            let start = match i128::from(offset) {
                o if o < 0 => o + len,
                o => o.min(len),
            };
            if start < 0 {
                return (0, 0);
            }
            let take = i128::from(length).min(len - start);
            (start as usize, take as usize)
        };
        if let Some(array) = input.as_array() {
            let (skip, take) = window(usize::try_from(array.size()).unwrap_or(0));
            Ok(Value::array(
                array.values().skip(skip).take(take).map(|v| v.to_value()),
            ))
        } else {
            let text = input.to_kstr();
            let (skip, take) = window(text.chars().count());
            Ok(Value::scalar(
                text.chars().skip(skip).take(take).collect::<String>(),
            ))
        }
    }
}

impl Filter for CheckedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        if self.op == Op::Slice {
            return self.slice(input, runtime);
        }
        let a = self.number(input, "the input")?;
        let operand = match self.args.first() {
            Some(e) if self.op != Op::Round => {
                Some(self.number(e.evaluate(runtime)?.as_view(), "the operand")?)
            }
            _ => None,
        };
        let b = || operand.unwrap_or(Num::Int(0));
        match self.op {
            Op::Abs => match a {
                Num::Int(i) => i
                    .checked_abs()
                    .map(Value::scalar)
                    .ok_or_else(|| self.overflow()),
                Num::Float(x) => Ok(Value::scalar(x.abs())),
            },
            Op::Ceil => self.to_int(a.float().ceil()),
            Op::Floor => self.to_int(a.float().floor()),
            Op::Round => {
                let places = match self.args.first() {
                    Some(e) => self.whole(e.evaluate(runtime)?.as_view(), "decimal places")?,
                    None => 0,
                };
                let x = a.float();
                if places <= 0 {
                    return self.to_int(x.round());
                }
                // Past 308 places the multiplier is infinite; the number is already as
                // precise as a float can be.
                let multiplier = 10_f64.powi(places.min(400) as i32);
                let scaled = x * multiplier;
                Ok(Value::scalar(if scaled.is_finite() {
                    scaled.round() / multiplier
                } else {
                    x
                }))
            }
            Op::Plus => self.arithmetic(a, b(), i64::checked_add, |x, y| x + y),
            Op::Minus => self.arithmetic(a, b(), i64::checked_sub, |x, y| x - y),
            Op::Times => self.arithmetic(a, b(), i64::checked_mul, |x, y| x * y),
            Op::DividedBy | Op::Modulo => {
                if b().float() == 0.0 {
                    return Err(self.error("division by zero"));
                }
                if self.op == Op::DividedBy {
                    self.arithmetic(a, b(), i64::checked_div, |x, y| x / y)
                } else {
                    // i64::MIN % -1 overflows in the machine, but its remainder is 0.
                    self.arithmetic(
                        a,
                        b(),
                        |x, y| Some(x.checked_rem(y).unwrap_or(0)),
                        |x, y| x % y,
                    )
                }
            }
            Op::AtLeast => Ok(match (a, b()) {
                (Num::Int(x), Num::Int(y)) => Num::Int(x.max(y)),
                (x, y) => Num::Float(x.float().max(y.float())),
            }
            .value()),
            Op::AtMost => Ok(match (a, b()) {
                (Num::Int(x), Num::Int(y)) => Num::Int(x.min(y)),
                (x, y) => Num::Float(x.float().min(y.float())),
            }
            .value()),
            Op::Slice => self.slice(input, runtime),
        }
    }
}

#[cfg(test)]
mod tests;
