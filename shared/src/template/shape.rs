//! The two shapes most webhook templates have, rendered without building a Liquid
//! runtime per template: plain text, and one bare lookup such as `{{ data.order.id }}`.
//!
//! Every template is still parsed by Liquid (so registration reports errors the same
//! way), and anything else, or a lookup Liquid would answer with an error, is rendered
//! by Liquid. A lookup is resolved the way Liquid's frame of the globals resolves a
//! variable: the globals are asked whether they hold the root key (ours hold every key;
//! absent ones are nil), then `try_find` walks the path (with `size`, `first` and
//! `last`), and the value is written with `render()`. The tests compare the two on
//! every kind of value and path.

use liquid_core::model::{ObjectView, Scalar, ValueView, try_find};

/// What a template is, as far as rendering it goes.
pub(super) enum Shape {
    /// No `{{` and no `{%`: Liquid prints the text as it is.
    Text(String),
    /// `{{ a.b.c }}` and nothing else: identifiers joined by dots.
    Lookup(Vec<Scalar>),
    /// Anything else: Liquid renders it.
    General,
}

/// Words Liquid reads as literals, not variables.
const LITERALS: [&str; 6] = ["nil", "null", "empty", "blank", "true", "false"];

impl Shape {
    pub(super) fn of(source: &str) -> Shape {
        if !source.contains("{{") && !source.contains("{%") {
            return Shape::Text(source.to_string());
        }
        let Some(inner) = source
            .strip_prefix("{{")
            .and_then(|s| s.strip_suffix("}}"))
            .map(|s| s.trim_matches(|c: char| c.is_ascii_whitespace()))
        else {
            return Shape::General;
        };
        let segments: Vec<&str> = inner.split('.').collect();
        let identifier = |s: &&str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !segments.iter().all(identifier) || LITERALS.contains(&segments[0]) {
            return Shape::General;
        }
        Shape::Lookup(
            segments
                .into_iter()
                .map(|s| Scalar::new(s.to_string()))
                .collect(),
        )
    }

    /// The output of a lookup over `globals`, or `None` when Liquid must answer (it
    /// would report an unknown variable or index).
    pub(super) fn look_up(path: &[Scalar], globals: &dyn ObjectView) -> Option<String> {
        let root = path.first()?.to_kstr();
        if !globals.contains_key(root.as_str()) {
            return None;
        }
        let value = try_find(globals.as_value(), path)?;
        Some(value.render().to_string())
    }
}
