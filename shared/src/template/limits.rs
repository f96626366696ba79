//! Liquid with limits: templates come from a project's customers, so rendering one must
//! not be able to spin or fill memory.
//!
//! Liquid's standard library has no limits of its own: `{% for i in (1..2000000000) %}`
//! materialises the whole range before the first iteration, `uniq` is quadratic,
//! `replace` and `join` multiply their input, and `assign` / `capture` in a loop grow a
//! value without bound. So the parser here registers:
//!
//! - our own `for` (ranges and collections iterated lazily, `limit` / `offset` /
//!   `reversed` / `else` / `forloop` as in Liquid), `assign` and `capture`, which charge a
//!   per-render [`Budget`];
//! - every standard filter behind [`Metered`], which caps the value a filter may produce
//!   (checked beforehand for the filters that multiply their input) and charges it;
//! - the remaining standard tags, except `include` and `render` (there are no partials),
//!   `tablerow` and `ifchanged` (HTML helpers that buffer without a bound).
//!
//! The budget is deterministic (loop iterations and bytes produced), so a template that
//! fits it at registration fits it at delivery for the same data; a wall-clock deadline,
//! checked between steps, backs it up against work that is cheap to count but slow to
//! do (comparing large values in a loop).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use liquid::ValueView as DeriveValueView;
use liquid_core::model::{KString, KStringRef, ObjectView, ScalarCow, Value, ValueCow, ValueView};
use liquid_core::parser::{BlockElement, FilterArguments, FilterChain, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, StackFrame};
use liquid_core::{
    BlockReflection, Error, Expression, Filter, FilterReflection, Language, ParseBlock,
    ParseFilter, ParseTag, Renderable, Result, Runtime, TagBlock, TagReflection, TagTokenIter,
    Template,
};
use liquid_lib::stdlib;

/// Loop iterations allowed in one webhook render (all templates of the request together).
pub const MAX_ITERATIONS: u32 = 100_000;
/// Bytes that filters, `assign` and `capture` may produce in one webhook render.
pub const MAX_PRODUCED_BYTES: usize = 16 * 1024 * 1024;
/// The largest value a filter, `assign` or `capture` may produce.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// The most items `uniq` takes (it compares every pair).
pub const MAX_UNIQ_ITEMS: i64 = 2_000;
/// Wall-clock time one webhook render may take.
pub const MAX_RENDER_TIME: Duration = Duration::from_millis(250);

/// What one webhook render may still spend.
#[derive(Debug, Clone, Copy)]
struct Budget {
    iterations: u32,
    bytes: usize,
    deadline: Instant,
    steps: u32,
}

thread_local! {
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
    /// Set by `abort_message` during a render: the reason the message is not to be sent.
    static ABORTED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The reason `abort_message` gave in the render that just ended, if it did.
pub(super) fn take_abort() -> Option<String> {
    ABORTED.with(|a| a.borrow_mut().take())
}

/// Runs `render` with a fresh budget. Rendering is synchronous, so the budget lives in a
/// thread-local for the duration of the call (a nested call gets its own).
pub(super) fn metered<R>(render: impl FnOnce() -> R) -> R {
    metered_until(Instant::now() + MAX_RENDER_TIME, render)
}

fn metered_until<R>(deadline: Instant, render: impl FnOnce() -> R) -> R {
    let fresh = Budget {
        iterations: MAX_ITERATIONS,
        bytes: MAX_PRODUCED_BYTES,
        deadline,
        steps: 0,
    };
    /// Puts the outer budget back however the render ends, a panic included.
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|b| b.replace(Some(fresh))));
    ABORTED.with(|a| a.borrow_mut().take());
    render()
}

fn spend(iterations: u32, bytes: usize) -> Result<()> {
    BUDGET.with(|cell| {
        let Some(mut budget) = cell.get() else {
            return Err(Error::with_msg("templates render only within a budget"));
        };
        if iterations > budget.iterations {
            return Err(Error::with_msg(format!(
                "the template exceeds its render budget of {MAX_ITERATIONS} loop iterations"
            )));
        }
        if bytes > budget.bytes {
            return Err(Error::with_msg(format!(
                "the template exceeds its render budget of {MAX_PRODUCED_BYTES} bytes produced by filters, assign and capture"
            )));
        }
        budget.iterations -= iterations;
        budget.bytes -= bytes;
        // Reading the clock costs more than a step; every 64th step is often enough.
        budget.steps = budget.steps.wrapping_add(1);
        if budget.steps % 64 == 0 && Instant::now() > budget.deadline {
            return Err(Error::with_msg(format!(
                "the template took longer than {} ms to render",
                MAX_RENDER_TIME.as_millis()
            )));
        }
        cell.set(Some(budget));
        Ok(())
    })
}

/// A value `produced` by a filter, `assign` or `capture`: capped, then charged.
fn produce(weight: usize, what: &str) -> Result<()> {
    if weight > MAX_VALUE_BYTES {
        return Err(Error::with_msg(format!(
            "{what} would produce more than {MAX_VALUE_BYTES} bytes"
        )));
    }
    spend(0, weight)
}

/// Roughly the bytes a value occupies: text length, plus a word per item.
pub(super) fn weight(value: &dyn ValueView) -> usize {
    const WORD: usize = 8;
    if let Some(scalar) = value.as_scalar() {
        WORD + scalar.to_kstr().len()
    } else if let Some(array) = value.as_array() {
        array
            .values()
            .fold(WORD, |sum, item| sum.saturating_add(weight(item)))
    } else if let Some(object) = value.as_object() {
        object.iter().fold(WORD, |sum, (key, item)| {
            sum.saturating_add(key.len()).saturating_add(weight(item))
        })
    } else {
        WORD
    }
}

/// How deeply blocks (`if`, `for`, …) and `[…]` indexes may nest in a template. Liquid's
/// parser and renderer recurse per level, and a 64 KiB template could nest thousands of
/// levels: enough to overflow a thread's stack, which aborts the process.
pub const MAX_NESTING: usize = 32;

/// How many levels the open blocks and their `elsif`s may make together. Liquid holds
/// an `elsif` as an `if` inside the `else` of the one before, so it parses, renders and
/// frees a chain of them recursively, a level each: 4,500 (a 64 KiB template) overflowed
/// a 2 MiB stack. `case` / `when` has no such cost.
pub const MAX_LEVELS: usize = 100;

/// How many `and` / `or` one condition may join. Liquid holds `a or b or c` as a tree as
/// deep as it is long, and evaluates and frees it recursively: 12,000 (`{% if a or a or
/// … %}`, 60 KB) overflowed a 2 MiB stack.
pub const MAX_OPERATORS: usize = 100;

pub(super) const BLOCK_TAGS: &[&str] = &[
    "if",
    "unless",
    "for",
    "case",
    "capture",
    "comment",
    "raw",
    "tablerow",
    "ifchanged",
];

/// One `{{ … }}` or `{% … %}` of a template: where its inside starts (a byte offset into
/// the source), whether it is a tag, and its inside. The content of `{% raw %}` is text,
/// and is skipped.
pub(super) struct Markup<'a> {
    pub(super) offset: usize,
    pub(super) tag: bool,
    pub(super) inner: &'a str,
}

/// The markup of a template, in order, as Liquid's lexer finds it.
pub(super) fn markup(source: &str) -> impl Iterator<Item = Markup<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let open = at + source.get(at..)?.find('{')?;
            let close = match source.as_bytes().get(open + 1) {
                Some(b'{') => "}}",
                Some(b'%') => "%}",
                _ => {
                    at = open + 1;
                    continue;
                }
            };
            let start = open + 2;
            let end = start + source[start..].find(close)?;
            at = end + 2;
            let inner = &source[start..end];
            let tag = close == "%}";
            if tag && tag_name(inner) == "raw" {
                // Its content is text, not markup.
                at = source[at..].find("endraw").map_or(source.len(), |i| at + i);
            }
            return Some(Markup {
                offset: start,
                tag,
                inner,
            });
        }
    })
}

/// The name a tag's inside starts with.
pub(super) fn tag_name(inner: &str) -> &str {
    inner
        .trim_start_matches('-')
        .trim_start()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default()
}

/// `line L, column C` of a byte offset, as Liquid's own errors count them (from 1, in
/// characters).
pub(super) fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Refuses, before the parser sees it, a template that nests blocks deeper than
/// [`MAX_NESTING`], blocks and `elsif`s deeper than [`MAX_LEVELS`], or that joins more than
/// [`MAX_OPERATORS`] conditions in one tag.
///
/// An end tag closes a block only when it names the innermost one open, as Liquid reads
/// it: inside `{% comment %}` Liquid parses the tags and drops what does not parse, so a
/// stray `{% endif %}` there closes nothing, and counting it would let each
/// `{% if a %}{% comment %}{% endif %}{% endcomment %}` nest one level unseen.
pub(super) fn check_nesting(source: &str) -> std::result::Result<(), String> {
    let too_deep = || format!("the template nests deeper than {MAX_NESTING} levels");
    // The blocks open, innermost last, each with the `elsif`s seen in it.
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut levels = 0_usize;
    for m in markup(source) {
        let mut brackets = 0_usize;
        for c in m.inner.chars() {
            match c {
                '[' => brackets += 1,
                ']' => brackets = brackets.saturating_sub(1),
                _ => {}
            }
            if brackets > MAX_NESTING {
                return Err(too_deep());
            }
        }
        if !m.tag {
            continue;
        }
        let name = tag_name(m.inner);
        if name == "raw" && !source[m.offset + m.inner.len()..].contains("endraw") {
            // Refused as Liquid refuses it, where its parser would panic on it (inside
            // `{% comment %}`), logged as a bug a customer could repeat at will.
            let (line, column) = position(source, m.offset);
            return Err(format!(
                "line {line}, column {column}: `{{% raw %}}` is never closed: {{% endraw %}} tag expected"
            ));
        }
        if matches!(name, "if" | "elsif" | "unless") && operators(m.inner) > MAX_OPERATORS {
            let (line, column) = position(source, m.offset);
            return Err(format!(
                "line {line}, column {column}: a condition joins more than {MAX_OPERATORS} conditions with `and` / `or`"
            ));
        }
        if BLOCK_TAGS.contains(&name) && name != "raw" {
            open.push((name, 0));
            levels += 1;
            if open.len() > MAX_NESTING {
                return Err(too_deep());
            }
        } else if name == "elsif" {
            if let Some((_, elsifs)) = open.last_mut() {
                *elsifs += 1;
                levels += 1;
            }
        } else if let Some(closed) = name.strip_prefix("end")
            && open
                .last()
                .is_some_and(|(innermost, _)| *innermost == closed)
            && let Some((_, elsifs)) = open.pop()
        {
            levels -= 1 + elsifs;
        }
        if levels > MAX_LEVELS {
            let (line, column) = position(source, m.offset);
            return Err(format!(
                "line {line}, column {column}: the blocks and `elsif`s open here nest deeper than {MAX_LEVELS} levels (a long chain of `elsif` reads better as `case` / `when`)"
            ));
        }
    }
    Ok(())
}

/// How many `and` / `or` a tag's inside holds, as words outside string literals.
fn operators(inner: &str) -> usize {
    let bytes = inner.as_bytes();
    let mut count = 0;
    let mut word = 0;
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => {
                quote = None;
                word = i + 1;
            }
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b.is_ascii_whitespace() => {
                if matches!(&bytes[word..i], b"and" | b"or") {
                    count += 1;
                }
                word = i + 1;
            }
            None => {}
        }
    }
    count
}

/// The most parts (`.name` or `[…]`) a variable's path may have. Liquid looks a path up
/// recursively, a stack frame per part, and some paths find every part they name: a
/// number's `size` is a number, so `{{ data.size.size.… }}` goes as deep as it is long.
/// Ten thousand parts fit a 64 KiB template and overflow a 2 MiB stack, which aborts the
/// process: the register function at registration, the trigger at the fan-out of an
/// event that a webhook's `filter` reads so, the delivery function when only the event's
/// data reaches such a path.
pub const MAX_PATH_PARTS: usize = 64;

/// Refuses a variable whose path has more than [`MAX_PATH_PARTS`] parts, before the
/// parser sees it. Paths are found as Liquid's grammar writes them: a name, then `.name`
/// or `[…]` with nothing between; a path inside brackets (`a[b.c]`) is one of its own.
pub(super) fn check_paths(source: &str) -> std::result::Result<(), String> {
    let starts_name =
        |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-'));
    for m in markup(source) {
        let bytes = m.inner.as_bytes();
        // The parts of the path being read at each bracket depth, outermost last.
        let mut parts: Vec<usize> = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            let mut part = false;
            match bytes[i] {
                quote @ (b'"' | b'\'') => {
                    if let Some(n) = parts.last_mut() {
                        *n = 0;
                    }
                    i += 1 + m.inner[i + 1..]
                        .find(quote as char)
                        .map_or(bytes.len(), |e| e + 1);
                    continue;
                }
                b'.' => part = starts_name(bytes.get(i + 1)),
                b'[' => part = true,
                b']' if parts.len() > 1 => {
                    parts.pop();
                }
                b if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') => {}
                _ => {
                    if let Some(n) = parts.last_mut() {
                        *n = 0;
                    }
                }
            }
            if part {
                let n = parts.last().map_or(1, |n| n + 1);
                if n > MAX_PATH_PARTS {
                    let (line, column) = position(source, m.offset + i);
                    return Err(format!(
                        "line {line}, column {column}: a variable's path has more than {MAX_PATH_PARTS} parts"
                    ));
                }
                if let Some(last) = parts.last_mut() {
                    *last = n;
                }
                if bytes[i] == b'[' {
                    parts.push(0);
                }
            }
            i += 1;
        }
    }
    Ok(())
}

/// Refuses an integer literal that does not fit 64 bits (`truncate: 99999999999999999999`)
/// before the parser sees it: Liquid's parser panics on one. Integers are found as
/// Liquid's grammar finds them: digits with an optional sign, outside string literals,
/// not part of a name and not the whole part of a float.
pub(super) fn check_literals(source: &str) -> std::result::Result<(), String> {
    for m in markup(source) {
        let bytes = m.inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                quote @ (b'"' | b'\'') => {
                    i += 1 + m.inner[i + 1..]
                        .find(quote as char)
                        .map_or(bytes.len(), |e| e + 1);
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    // A name (`v1`, `a_2`): its digits are not a number.
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric()
                            || bytes[i] == b'_'
                            || bytes[i] == b'-')
                    {
                        i += 1;
                    }
                }
                b if b.is_ascii_digit()
                    || ((b == b'-' || b == b'+')
                        && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
                {
                    let start = i;
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    let float = bytes.get(i) == Some(&b'.')
                        && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                    if float {
                        i += 1;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                    } else if m.inner[start..i].parse::<i64>().is_err() {
                        let (line, column) = position(source, m.offset + start);
                        return Err(format!(
                            "line {line}, column {column}: the number {} does not fit a 64-bit integer",
                            &m.inner[start..i]
                        ));
                    }
                }
                _ => i += 1,
            }
        }
    }
    Ok(())
}

/// The Liquid parser every webhook template is parsed with.
pub(super) fn parser() -> Result<liquid::Parser> {
    let filters: Vec<Box<dyn ParseFilter>> = vec![
        Box::new(stdlib::Append),
        Box::new(stdlib::Capitalize),
        Box::new(stdlib::Compact),
        Box::new(stdlib::Concat),
        Box::new(super::dates::Date),
        Box::new(stdlib::Default),
        Box::new(stdlib::Downcase),
        Box::new(stdlib::Escape),
        Box::new(stdlib::EscapeOnce),
        Box::new(stdlib::First),
        Box::new(stdlib::Join),
        Box::new(stdlib::Last),
        Box::new(stdlib::Lstrip),
        Box::new(stdlib::Map),
        Box::new(stdlib::NewlineToBr),
        Box::new(stdlib::Prepend),
        Box::new(stdlib::Remove),
        Box::new(stdlib::RemoveFirst),
        Box::new(stdlib::Replace),
        Box::new(stdlib::ReplaceFirst),
        Box::new(stdlib::Reverse),
        Box::new(stdlib::Rstrip),
        Box::new(stdlib::Size),
        Box::new(stdlib::Sort),
        Box::new(stdlib::SortNatural),
        Box::new(stdlib::Split),
        Box::new(stdlib::Strip),
        Box::new(stdlib::StripHtml),
        Box::new(stdlib::StripNewlines),
        Box::new(stdlib::Truncate),
        Box::new(stdlib::TruncateWords),
        Box::new(stdlib::Uniq),
        Box::new(stdlib::Upcase),
        Box::new(stdlib::UrlDecode),
        Box::new(stdlib::UrlEncode),
        Box::new(stdlib::Where),
        Box::new(super::encode::Json),
    ];
    // Arithmetic and `slice` are checked versions of our own (see `numbers`).
    let filters = filters.into_iter().chain(
        super::numbers::filters()
            .into_iter()
            .map(|f| Box::new(f) as Box<dyn ParseFilter>),
    );
    let builder = liquid::ParserBuilder::new()
        .tag(AssignTag)
        .tag(AbortTag)
        .tag(stdlib::BreakTag)
        .tag(stdlib::ContinueTag)
        .tag(stdlib::CycleTag)
        .tag(stdlib::IncrementTag)
        .tag(stdlib::DecrementTag)
        .block(stdlib::RawBlock)
        .block(stdlib::IfBlock)
        .block(stdlib::UnlessBlock)
        .block(stdlib::CommentBlock)
        .block(stdlib::CaseBlock)
        .block(ForBlock)
        .block(CaptureBlock);
    filters
        .fold(builder, |builder, filter| builder.filter(Metered(filter)))
        .build()
}

// ---- filters ----

/// A standard filter with its output capped and charged, and the filters that multiply
/// their input checked before they run.
#[derive(Clone)]
struct Metered(Box<dyn ParseFilter>);

impl ParseFilter for Metered {
    fn parse(&self, arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        let positional: Vec<Expression> = arguments.positional.collect();
        let inner = self.0.parse(FilterArguments {
            positional: Box::new(positional.clone().into_iter()),
            keyword: arguments.keyword,
        })?;
        let name = self.0.reflection().name().to_string();
        let check = match name.as_str() {
            "replace" => Check::Replace,
            "join" => Check::Join,
            "uniq" => Check::Uniq,
            _ => Check::Output,
        };
        Ok(Box::new(MeteredFilter {
            name,
            check,
            inner,
            positional,
        }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

/// What a filter is checked for before it runs (all are checked for what they produce).
#[derive(Debug, Clone, Copy)]
enum Check {
    /// `replace`: hits × replacement can dwarf the input.
    Replace,
    /// `join`: items × glue can dwarf the input.
    Join,
    /// `uniq`: compares every pair.
    Uniq,
    Output,
}

#[derive(Debug)]
struct MeteredFilter {
    /// For messages.
    name: String,
    check: Check,
    inner: Box<dyn Filter>,
    positional: Vec<Expression>,
}

impl fmt::Display for MeteredFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl MeteredFilter {
    /// Positional argument `i` as text, if given.
    fn text_arg(&self, i: usize, runtime: &dyn Runtime) -> Result<Option<String>> {
        match self.positional.get(i) {
            Some(e) => Ok(Some(e.evaluate(runtime)?.to_kstr().to_string())),
            None => Ok(None),
        }
    }

    /// What the filter would produce, for the filters whose output can be much larger
    /// than their input; `None` for the rest.
    fn predicted_weight(
        &self,
        input: &dyn ValueView,
        runtime: &dyn Runtime,
    ) -> Result<Option<usize>> {
        Ok(match self.check {
            Check::Replace => {
                let text = input.to_kstr();
                let search = self.text_arg(0, runtime)?.unwrap_or_default();
                let with = self.text_arg(1, runtime)?.unwrap_or_default();
                let hits = if search.is_empty() {
                    text.chars().count() + 1
                } else {
                    text.matches(search.as_str()).count()
                };
                Some(
                    (text.len() - hits * search.len())
                        .saturating_add(hits.saturating_mul(with.len())),
                )
            }
            Check::Join => match input.as_array() {
                Some(array) => {
                    let glue = self.text_arg(0, runtime)?.map_or(1, |g| g.len());
                    let items = usize::try_from(array.size()).unwrap_or(0);
                    Some(weight(input).saturating_add(items.saturating_mul(glue)))
                }
                None => None,
            },
            Check::Uniq => {
                if input.as_array().is_some_and(|a| a.size() > MAX_UNIQ_ITEMS) {
                    return Err(Error::with_msg(format!(
                        "uniq takes at most {MAX_UNIQ_ITEMS} items"
                    )));
                }
                None
            }
            Check::Output => None,
        })
    }
}

impl Filter for MeteredFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        spend(0, 0)?;
        let what = || format!("`{}`", self.name);
        if let Some(predicted) = self.predicted_weight(input, runtime)?
            && predicted > MAX_VALUE_BYTES
        {
            return Err(Error::with_msg(format!(
                "{} would produce more than {MAX_VALUE_BYTES} bytes",
                what()
            )));
        }
        let value = self.inner.evaluate(input, runtime)?;
        produce(weight(&value), &what())?;
        Ok(value)
    }
}

// ---- assign ----

#[derive(Clone, Copy, Debug)]
struct AssignTag;

impl TagReflection for AssignTag {
    fn tag(&self) -> &'static str {
        "assign"
    }
    fn description(&self) -> &'static str {
        "Sets a variable, within the render budget."
    }
}

/// The variable name a tag starts with (`assign x`, `capture x`, `for x`).
fn identifier<'a>(arguments: &mut TagTokenIter<'a>) -> Result<&'a str> {
    arguments
        .expect_next("Identifier expected.")?
        .expect_identifier()
        .into_result()
}

impl ParseTag for AssignTag {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let name = identifier(&mut arguments)?;
        arguments
            .expect_next("\"=\" expected.")?
            .expect_str("=")
            .into_result_custom_msg("\"=\" expected.")?;
        let value = arguments
            .expect_next("A value expected.")?
            .expect_filter_chain(options)
            .into_result()?;
        arguments.expect_nothing()?;
        Ok(Box::new(Assign {
            name: KString::from_ref(name),
            value,
        }))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

#[derive(Debug)]
struct Assign {
    name: KString,
    value: FilterChain,
}

impl Renderable for Assign {
    fn render_to(&self, _: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let value = self.value.evaluate(runtime)?;
        produce(weight(value.as_view()), &format!("assign {}", self.name))?;
        runtime.set_global(self.name.clone(), value.into_owned());
        Ok(())
    }
}

// ---- abort_message ----

/// Braze's `{% abort_message("reason") %}` (also without a reason): the message is not
/// sent. Written `abort_message("…")`, which Liquid's grammar does not take; the
/// parentheses are blanked before parsing (`super::parse`), keeping every position.
#[derive(Clone, Copy, Debug)]
struct AbortTag;

pub(super) const ABORT_TAG: &str = "abort_message";

impl TagReflection for AbortTag {
    fn tag(&self) -> &'static str {
        ABORT_TAG
    }
    fn description(&self) -> &'static str {
        "Stops the render: the message is not sent, with the reason given."
    }
}

impl ParseTag for AbortTag {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        _options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let reason = match arguments.next() {
            Some(token) => Some(token.expect_value().into_result()?),
            None => None,
        };
        arguments.expect_nothing()?;
        Ok(Box::new(Abort { reason }))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

#[derive(Debug)]
struct Abort {
    reason: Option<Expression>,
}

impl Renderable for Abort {
    fn render_to(&self, _: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let reason = match &self.reason {
            Some(e) => e.evaluate(runtime)?.to_kstr().to_string(),
            None => String::new(),
        };
        let reason: String = reason.chars().take(1024).collect();
        ABORTED.with(|a| *a.borrow_mut() = Some(reason));
        Err(Error::with_msg("the template aborted the message"))
    }
}

/// A template with `{% abort_message(…) %}` as Liquid's grammar can read it: the
/// parentheses of each such tag blanked, so every other character keeps its place.
pub(super) fn blank_abort_parentheses(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains(ABORT_TAG) {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut bytes = source.as_bytes().to_vec();
    for m in markup(source) {
        if !m.tag || tag_name(m.inner) != ABORT_TAG {
            continue;
        }
        let name_end = m.offset + m.inner.find(ABORT_TAG).unwrap_or(0) + ABORT_TAG.len();
        let rest = &source[name_end..m.offset + m.inner.len()];
        let open = rest.len() - rest.trim_start().len();
        if rest.trim_start().starts_with('(') {
            bytes[name_end + open] = b' ';
            if let Some(close) = rest.rfind(')') {
                bytes[name_end + close] = b' ';
            }
        }
    }
    std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| source.to_string()))
}

// ---- capture ----

#[derive(Clone, Copy, Debug)]
struct CaptureBlock;

impl BlockReflection for CaptureBlock {
    fn start_tag(&self) -> &str {
        "capture"
    }
    fn end_tag(&self) -> &str {
        "endcapture"
    }
    fn description(&self) -> &str {
        "Renders its content into a variable, within the render budget."
    }
}

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut block: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let name = identifier(&mut arguments)?;
        arguments.expect_nothing()?;
        let body = Template::new(block.parse_all(options)?);
        block.assert_empty();
        Ok(Box::new(Capture {
            name: KString::from_ref(name),
            body,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct Capture {
    name: KString,
    body: Template,
}

/// The buffer of a `capture`: capped, each write charged.
#[derive(Default)]
struct CaptureBuffer {
    bytes: Vec<u8>,
    refused: Option<Error>,
}

impl Write for CaptureBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let charged = if self.bytes.len() + data.len() > MAX_VALUE_BYTES {
            Err(Error::with_msg(format!(
                "capture would produce more than {MAX_VALUE_BYTES} bytes"
            )))
        } else {
            spend(0, data.len())
        };
        if let Err(e) = charged {
            self.refused = Some(e);
            return Err(io::Error::other("capture limit"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Renderable for Capture {
    fn render_to(&self, _: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let mut buffer = CaptureBuffer::default();
        if let Err(e) = self.body.render_to(&mut buffer, runtime) {
            return Err(buffer.refused.unwrap_or(e));
        }
        let text = String::from_utf8(buffer.bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        runtime.set_global(self.name.clone(), Value::scalar(text));
        Ok(())
    }
}

// ---- for ----

#[derive(Clone, Copy, Debug)]
struct ForBlock;

impl BlockReflection for ForBlock {
    fn start_tag(&self) -> &str {
        "for"
    }
    fn end_tag(&self) -> &str {
        "endfor"
    }
    fn description(&self) -> &str {
        "Repeats its content for each item, within the render budget."
    }
}

#[derive(Debug)]
enum Source {
    Collection(Expression),
    Range(Expression, Expression),
}

#[derive(Debug)]
struct For {
    var: KString,
    source: Source,
    limit: Option<Expression>,
    offset: Option<Expression>,
    reversed: bool,
    body: Template,
    otherwise: Option<Template>,
}

fn attribute(arguments: &mut TagTokenIter<'_>) -> Result<Expression> {
    arguments
        .expect_next("\":\" expected.")?
        .expect_str(":")
        .into_result_custom_msg("\":\" expected.")?;
    arguments
        .expect_next("A value expected.")?
        .expect_value()
        .into_result()
}

impl ParseBlock for ForBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut block: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let var = identifier(&mut arguments)?;
        arguments
            .expect_next("\"in\" expected.")?
            .expect_str("in")
            .into_result_custom_msg("\"in\" expected.")?;
        let source = match arguments
            .expect_next("An array or a range expected.")?
            .expect_value()
        {
            TryMatchToken::Matches(collection) => Source::Collection(collection),
            TryMatchToken::Fails(token) => match token.expect_range() {
                TryMatchToken::Matches((start, stop)) => Source::Range(start, stop),
                TryMatchToken::Fails(token) => return Err(token.raise_error()),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = arguments.next() {
            match token.as_str() {
                "limit" => limit = Some(attribute(&mut arguments)?),
                "offset" => offset = Some(attribute(&mut arguments)?),
                "reversed" => reversed = true,
                _ => {
                    return Err(
                        token.raise_custom_error("\"limit\", \"offset\" or \"reversed\" expected.")
                    );
                }
            }
        }
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = block.next()? {
            match element {
                BlockElement::Tag(mut tag) if tag.name() == "else" => {
                    tag.tokens().expect_nothing()?;
                    otherwise = Some(Template::new(block.parse_all(options)?));
                    break;
                }
                BlockElement::Tag(tag) => body.push(tag.parse(&mut block, options)?),
                element => body.push(element.parse(&mut block, options)?),
            }
        }
        block.assert_empty();
        Ok(Box::new(For {
            var: KString::from_ref(var),
            source,
            limit,
            offset,
            reversed,
            body: Template::new(body),
            otherwise,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

fn whole_number(expression: &Expression, runtime: &dyn Runtime, what: &str) -> Result<i64> {
    let value = expression.evaluate(runtime)?;
    value
        .as_scalar()
        .and_then(|s| s.to_integer())
        .ok_or_else(|| {
            Error::with_msg(format!(
                "for: {what} must be a whole number, found {}",
                value.type_name()
            ))
        })
}

/// `forloop`, as Liquid defines it.
#[derive(Debug, DeriveValueView, liquid::ObjectView)]
struct Forloop<'p> {
    length: i64,
    parentloop: Option<&'p dyn ValueView>,
    index0: i64,
    index: i64,
    rindex0: i64,
    rindex: i64,
    first: bool,
    last: bool,
}

impl For {
    /// Which items of `len` the loop visits: `(skip, take)`.
    fn window(&self, len: u64, runtime: &dyn Runtime) -> Result<(u64, u64)> {
        let attr = |e: &Option<Expression>, what| match e {
            Some(e) => whole_number(e, runtime, what).map(|n| Some(u64::try_from(n).unwrap_or(0))),
            None => Ok(None),
        };
        let skip = attr(&self.offset, "offset")?.unwrap_or(0).min(len);
        let take = attr(&self.limit, "limit")?
            .unwrap_or(u64::MAX)
            .min(len - skip);
        Ok((skip, take))
    }

    /// [`For::each`] over the `offset`/`limit` window of a collection's `len` items,
    /// reversed if asked (collecting only the window).
    fn each_in_window<'v>(
        &self,
        writer: &mut dyn Write,
        runtime: &dyn Runtime,
        len: u64,
        items: impl Iterator<Item = ValueCow<'v>>,
    ) -> Result<()> {
        let (skip, take) = self.window(len, runtime)?;
        let items = items
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(take).unwrap_or(usize::MAX));
        if self.reversed {
            let window: Vec<_> = items.collect();
            self.each(writer, runtime, take, window.into_iter().rev())
        } else {
            self.each(writer, runtime, take, items)
        }
    }

    fn each<'v>(
        &self,
        writer: &mut dyn Write,
        runtime: &dyn Runtime,
        len: u64,
        items: impl Iterator<Item = ValueCow<'v>>,
    ) -> Result<()> {
        if len == 0 {
            return match &self.otherwise {
                Some(otherwise) => otherwise.render_to(writer, runtime),
                None => Ok(()),
            };
        }
        let length = i64::try_from(len).unwrap_or(i64::MAX);
        let parent = runtime.try_get(&[ScalarCow::new("forloop")]);
        let parentloop = parent.as_ref().map(|p| p.as_view());
        for (i, item) in (0_i64..).zip(items) {
            spend(1, 0)?;
            let forloop = Forloop {
                length,
                parentloop,
                index0: i,
                index: i + 1,
                rindex0: length - i - 1,
                rindex: length - i,
                first: i == 0,
                last: i == length - 1,
            };
            let mut frame = HashMap::<KStringRef<'_>, &dyn ValueView>::with_capacity(2);
            frame.insert("forloop".into(), &forloop);
            frame.insert(self.var.as_ref(), &item);
            let scope = StackFrame::new(runtime, &frame);
            self.body.render_to(writer, &scope)?;
            let interrupt = scope.registers().get_mut::<InterruptRegister>().reset();
            if let Some(Interrupt::Break) = interrupt {
                break;
            }
        }
        Ok(())
    }
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        match &self.source {
            Source::Range(start, stop) => {
                let start = whole_number(start, runtime, "the range start")?;
                let stop = whole_number(stop, runtime, "the range end")?;
                let span = (i128::from(stop) - i128::from(start) + 1).max(0);
                let len = u64::try_from(span).unwrap_or(u64::MAX);
                let (skip, take) = self.window(len, runtime)?;
                // In i128: start + skip + take may pass i64::MAX only where the range ends.
                let first = i128::from(start) + i128::from(skip);
                let nth = move |i: u64| {
                    let i = if self.reversed { take - 1 - i } else { i };
                    let n = i64::try_from(first + i128::from(i)).unwrap_or(i64::MAX);
                    ValueCow::Owned(Value::scalar(n))
                };
                self.each(writer, runtime, take, (0..take).map(nth))
            }
            Source::Collection(expression) => {
                let collection = expression.evaluate(runtime)?;
                if let Some(array) = collection.as_array() {
                    let len = u64::try_from(array.size()).unwrap_or(0);
                    let items = array.values().map(ValueCow::Borrowed);
                    self.each_in_window(writer, runtime, len, items)
                } else if let Some(object) = collection.as_object() {
                    // Liquid iterates an object as [key, value] pairs.
                    let len = u64::try_from(object.size()).unwrap_or(0);
                    let pairs = object.iter().map(|(key, value)| {
                        ValueCow::Owned(Value::Array(vec![
                            Value::scalar(key.into_owned()),
                            value.to_value(),
                        ]))
                    });
                    self.each_in_window(writer, runtime, len, pairs)
                } else if collection.is_nil() || collection.is_state() {
                    self.each(writer, runtime, 0, std::iter::empty())
                } else {
                    Err(Error::with_msg(format!(
                        "for: expected an array, an object or a range, found {}",
                        collection.type_name()
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
