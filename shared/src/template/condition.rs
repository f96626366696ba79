//! A webhook's `filter` (SPEC §9): a Liquid condition, the text one would write in
//! `{% if … %}`, over the template context. Parsed at registration by Liquid itself (so
//! its errors and positions are Liquid's, counted within the filter's own text), and
//! evaluated at fan-out for every webhook an event reaches — so the common shapes (paths,
//! literals, comparisons, `and` / `or`) are evaluated directly, as Liquid's `if`
//! evaluates them: `and` binds tighter than `or`, comparisons are Liquid's own
//! (`ValueViewCmp`), a bare value is its truthiness. Anything else, and anything the
//! direct evaluation would answer with an error, goes to Liquid, within the render
//! budget templates have.

use liquid::Template;
use liquid_core::model::{
    KString, ObjectView, Scalar, State, Value, ValueView, ValueViewCmp, try_find,
};

use super::{RenderContext, limits, parse};
use crate::error::FieldError;

/// The text put before the filter to make it a template (`{% if `).
const OPENING: &str = "{% if ";

/// A parsed filter.
pub struct Condition {
    liquid: Template,
    quick: Option<Or>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("quick", &self.quick.is_some())
            .finish_non_exhaustive()
    }
}

/// `a or b or …`, each a conjunction.
#[derive(Debug)]
struct Or(Vec<And>);

/// `a and b and …`.
#[derive(Debug)]
struct And(Vec<Atom>);

#[derive(Debug)]
enum Atom {
    /// A bare value: true when truthy.
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Contains,
}

#[derive(Debug)]
enum Operand {
    Path(Vec<Scalar>),
    Literal(Value),
}

impl Condition {
    /// Parses a filter; the error names `filter` and a line and column in its text.
    pub fn compile(source: &str) -> Result<Condition, FieldError> {
        if ["{%", "%}", "{{", "}}"].iter().any(|m| source.contains(m)) {
            return Err(FieldError::new(
                "invalid_template",
                "filter",
                "write only the condition, as it would stand inside {% if … %}, e.g. data.total > 100",
            ));
        }
        let wrapped = format!("{OPENING}{source} %}}1{{% endif %}}");
        let liquid = parse("filter", &wrapped)
            .map_err(|mut e| {
                e.message = within_filter(&e.message, source);
                e
            })?
            .liquid;
        Ok(Condition {
            liquid,
            quick: quick(source),
        })
    }

    /// Whether an event meets the filter, or why that cannot be told.
    pub fn holds(&self, ctx: &RenderContext<'_>) -> Result<bool, String> {
        if let Some(answer) = self.quick.as_ref().and_then(|q| q.eval(&ctx.root)) {
            return Ok(answer);
        }
        self.by_liquid(ctx)
    }

    fn by_liquid(&self, ctx: &RenderContext<'_>) -> Result<bool, String> {
        limits::metered(|| self.liquid.render(&ctx.root))
            .map(|out| out == "1")
            .map_err(|e| super::shorten(e.to_string().trim_start_matches("liquid: ").trim()))
    }

    /// Whether the filter is evaluated without Liquid (for tests and the benchmark).
    pub fn is_direct(&self) -> bool {
        self.quick.is_some()
    }

    /// The answer Liquid gives, never the direct evaluation (for tests).
    pub fn holds_by_liquid(&self, ctx: &RenderContext<'_>) -> Result<bool, String> {
        self.by_liquid(ctx)
    }
}

/// Liquid's position in the wrapped template, as a position in the filter's own text.
fn within_filter(message: &str, source: &str) -> String {
    let Some(at) = message.find("line 1, column ") else {
        return message.to_string();
    };
    let start = at + "line 1, column ".len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(column) = digits.parse::<usize>() else {
        return message.to_string();
    };
    let limit = source.lines().next().map_or(0, |l| l.chars().count()) + 1;
    let column = column.saturating_sub(OPENING.len()).clamp(1, limit.max(1));
    format!(
        "{}line 1, column {column}{}",
        &message[..at],
        &message[start + digits.len()..]
    )
}

impl Or {
    /// The answer, or `None` when Liquid must give it (it would be an error there).
    /// Liquid's `or` and `and` stop at the first part that decides, so a later part's
    /// error is never met; the same here.
    fn eval(&self, globals: &dyn ObjectView) -> Option<bool> {
        for and in &self.0 {
            if and.eval(globals)? {
                return Some(true);
            }
        }
        Some(false)
    }
}

impl And {
    fn eval(&self, globals: &dyn ObjectView) -> Option<bool> {
        for atom in &self.0 {
            if !atom.eval(globals)? {
                return Some(false);
            }
        }
        Some(true)
    }
}

impl Atom {
    fn eval(&self, globals: &dyn ObjectView) -> Option<bool> {
        match self {
            Atom::Exists(operand) => {
                // Liquid's existence check reads leniently: a path it cannot follow is nil.
                let truthy = operand
                    .resolve(globals)
                    .is_some_and(|v| v.query_state(State::Truthy));
                Some(truthy)
            }
            Atom::Compare(a, op, b) => {
                let (a, b) = (a.resolve(globals)?, b.resolve(globals)?);
                let (ca, cb) = (
                    ValueViewCmp::new(a.as_view()),
                    ValueViewCmp::new(b.as_view()),
                );
                Some(match op {
                    Op::Eq => ca == cb,
                    Op::Ne => ca != cb,
                    Op::Lt => ca < cb,
                    Op::Gt => ca > cb,
                    Op::Le => ca <= cb,
                    Op::Ge => ca >= cb,
                    Op::Contains => contains(a.as_view(), b.as_view())?,
                })
            }
        }
    }
}

/// Liquid's `contains`: `None` where Liquid answers an error.
fn contains(a: &dyn ValueView, b: &dyn ValueView) -> Option<bool> {
    if let Some(a) = a.as_scalar() {
        Some(a.to_kstr().contains(b.to_kstr().as_str()))
    } else if let Some(a) = a.as_object() {
        Some(
            b.as_scalar()
                .is_some_and(|b| a.contains_key(b.to_kstr().as_str())),
        )
    } else {
        a.as_array().map(|a| {
            a.values()
                .any(|e| ValueViewCmp::new(e) == ValueViewCmp::new(b))
        })
    }
}

impl Operand {
    /// The operand's value as Liquid's runtime hands it to a comparison: owned (so the
    /// context's lenient nil, which stands in for an empty object, is a plain nil again,
    /// at any depth), or `None` where Liquid cannot follow the path.
    fn resolve(&self, globals: &dyn ObjectView) -> Option<Value> {
        match self {
            Operand::Literal(value) => Some(value.clone()),
            Operand::Path(path) => try_find(globals.as_value(), path).map(|v| v.to_value()),
        }
    }
}

/// The filter as a direct evaluation, if it has one of the common shapes.
fn quick(source: &str) -> Option<Or> {
    let tokens = tokens(source)?;
    let mut tokens = tokens.into_iter().peekable();
    let mut or = Vec::new();
    loop {
        let mut and = Vec::new();
        loop {
            let a = operand(tokens.next()?)?;
            let atom = match tokens.peek().and_then(|t| op(t)) {
                Some(op) => {
                    tokens.next();
                    Atom::Compare(a, op, operand(tokens.next()?)?)
                }
                None => Atom::Exists(a),
            };
            and.push(atom);
            if tokens.peek().map(String::as_str) == Some("and") {
                tokens.next();
            } else {
                break;
            }
        }
        or.push(And(and));
        match tokens.next().as_deref() {
            None => return Some(Or(or)),
            Some("or") => {}
            Some(_) => return None,
        }
    }
}

fn op(token: &str) -> Option<Op> {
    Some(match token {
        "==" => Op::Eq,
        "!=" | "<>" => Op::Ne,
        "<" => Op::Lt,
        ">" => Op::Gt,
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "contains" => Op::Contains,
        _ => return None,
    })
}

fn operand(token: String) -> Option<Operand> {
    let literal = |v: Value| Some(Operand::Literal(v));
    match token.as_str() {
        "nil" | "null" => return literal(Value::Nil),
        "empty" => return literal(Value::State(State::Empty)),
        "blank" => return literal(Value::State(State::Blank)),
        "true" => return literal(Value::scalar(true)),
        "false" => return literal(Value::scalar(false)),
        "and" | "or" | "contains" => return None,
        _ => {}
    }
    let first = token.chars().next()?;
    if first == '"' || first == '\'' {
        return literal(Value::scalar(token[1..token.len() - 1].to_string()));
    }
    if first.is_ascii_digit() || first == '-' || first == '+' {
        if let Ok(i) = token.parse::<i64>() {
            return literal(Value::scalar(i));
        }
        // Liquid's float literals: digits, a point, digits.
        let digits = token.trim_start_matches(['-', '+']);
        let float = digits.split_once('.').is_some_and(|(w, f)| {
            !w.is_empty()
                && !f.is_empty()
                && (w.chars().chain(f.chars())).all(|c| c.is_ascii_digit())
        });
        return if float {
            token
                .parse::<f64>()
                .ok()
                .and_then(|f| literal(Value::scalar(f)))
        } else {
            None
        };
    }
    let segments: Vec<&str> = token.split('.').collect();
    let identifier = |s: &&str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !segments.iter().all(identifier) {
        return None;
    }
    Some(Operand::Path(
        segments
            .into_iter()
            .map(|s| Scalar::new(KString::from_ref(s)))
            .collect(),
    ))
}

/// The filter's words: quoted strings whole, operators apart. `None` for anything that
/// is not a word of the common shapes (brackets, filters, ranges).
fn tokens(source: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            let quote = c;
            let mut word = String::from(quote);
            chars.next();
            loop {
                let next = chars.next()?;
                word.push(next);
                if next == quote {
                    break;
                }
            }
            out.push(word);
        } else if "=!<>".contains(c) {
            let mut word = String::from(c);
            chars.next();
            if let Some(&next) = chars.peek()
                && (next == '=' || (c == '<' && next == '>'))
            {
                word.push(next);
                chars.next();
            }
            if word == "!" || word == "=" {
                return None;
            }
            out.push(word);
        } else if c.is_ascii_alphanumeric() || "_.-+".contains(c) {
            let mut word = String::new();
            while let Some(&next) = chars.peek() {
                if next.is_ascii_alphanumeric() || "_.-+".contains(next) {
                    word.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
