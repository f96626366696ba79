//! Hostile templates and events: every standard filter and tag of Hookline's Liquid, fed
//! extreme values (i64::MIN/MAX, 0, -1, huge and tiny floats, long and odd strings, deep
//! nesting, mixed arrays) from the event and as literal arguments. Shared by the
//! template-level property test (`tests/tests/template_panics.rs`, every case) and the
//! handler tests of registration, preview, test send and delivery (a sample).
//!
//! Each case is a template and the event data it runs on. A case may render, or fail
//! with an error; it may never panic.

use serde_json::{Value, json};

/// Every filter Hookline's parser registers, with how many positional arguments it takes
/// at most.
pub const FILTERS: &[(&str, usize)] = &[
    ("abs", 0),
    ("append", 1),
    ("at_least", 1),
    ("at_most", 1),
    ("capitalize", 0),
    ("ceil", 0),
    ("compact", 0),
    ("concat", 1),
    ("date", 1),
    ("default", 1),
    ("divided_by", 1),
    ("downcase", 0),
    ("escape", 0),
    ("escape_once", 0),
    ("first", 0),
    ("floor", 0),
    ("join", 1),
    ("json", 0),
    ("last", 0),
    ("lstrip", 0),
    ("map", 1),
    ("minus", 1),
    ("modulo", 1),
    ("newline_to_br", 0),
    ("plus", 1),
    ("prepend", 1),
    ("remove", 1),
    ("remove_first", 1),
    ("replace", 2),
    ("replace_first", 2),
    ("reverse", 0),
    ("round", 1),
    ("rstrip", 0),
    ("size", 0),
    ("slice", 2),
    ("sort", 1),
    ("sort_natural", 1),
    ("split", 1),
    ("strip", 0),
    ("strip_html", 0),
    ("strip_newlines", 0),
    ("times", 1),
    ("truncate", 2),
    ("truncatewords", 2),
    ("uniq", 0),
    ("upcase", 0),
    ("url_decode", 0),
    ("url_encode", 0),
    ("where", 2),
];

/// The extreme values an event carries, as `data.v0` … `data.vN`.
pub fn extreme_values() -> Vec<Value> {
    let deep = (0..100).fold(json!(1), |inner, _| json!([inner]));
    vec![
        json!(i64::MIN),
        json!(i64::MAX),
        json!(-1),
        json!(0),
        json!(1),
        json!(9_007_199_254_740_993_i64),
        json!(u64::MAX),
        json!(1.7976931348623157e308),
        json!(-1.7976931348623157e308),
        json!(5e-324),
        json!(-0.0),
        json!(0.5),
        json!(""),
        json!(" "),
        json!("-9223372036854775808"),
        json!("99999999999999999999"),
        json!("1e400"),
        json!("%ZZ%%%41"),
        json!("%-100000000000d %_99999999999999999999999999Y"),
        json!("e\u{301}\u{200d}👩‍👩‍👧\u{202e}ǅ\u{0}\r\n\t"),
        json!("<script>alert(1)</script>&amp;"),
        json!("x".repeat(50_000)),
        json!(" a  b ".repeat(2_000)),
        json!(null),
        json!(true),
        json!([]),
        json!([null, 1, "a", 1.5, [2], {"k": 1}, true]),
        json!([i64::MIN, i64::MAX, -1, 0]),
        json!((0..3_000).collect::<Vec<_>>()),
        json!({}),
        json!({"k": i64::MIN, "a": [1, 2], "": "empty key"}),
        deep,
    ]
}

/// Literal arguments, as written in a template. The out-of-range integers must be refused
/// at registration, never reach Liquid's parser.
pub const LITERALS: &[&str] = &[
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "-99999999999999999999",
    "-1",
    "0",
    "1",
    "2",
    "-0.0",
    "1.5",
    "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0",
    "\"\"",
    "\"%Y-%m-%d %H:%M:%S %z %s %N %%\"",
    // strftime pads to any width it is given (100 GB here, before `date` refused it).
    "\"%100000000000Y\"",
    "\"k\"",
    "nil",
    "true",
    "empty",
];

/// One case: a template, the event it renders for, and what it exercises (for messages).
#[derive(Debug, Clone)]
pub struct Case {
    pub template: String,
    pub what: String,
}

/// The event every case renders for: `data.v0` … `data.vN` are [`extreme_values`], and
/// the user carries some of them too.
pub fn hostile_event() -> Value {
    let data: serde_json::Map<String, Value> = extreme_values()
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("v{i}"), v))
        .collect();
    json!({
        "id": "evt_hostile",
        "type": "hostile.case",
        "data": data,
        "user": {"id": "u", "locale": "ko", "attributes": {"n": i64::MIN, "s": "x".repeat(1000)}},
    })
}

/// An argument to a filter: a literal, or one of the event's extreme values.
fn arguments() -> Vec<String> {
    let n = extreme_values().len();
    LITERALS
        .iter()
        .map(|s| s.to_string())
        .chain((0..n).map(|i| format!("data.v{i}")))
        .collect()
}

/// A few arguments for second positions (every literal kind, and some values).
fn second_arguments() -> Vec<String> {
    [
        "-9223372036854775808",
        "9223372036854775807",
        "-1",
        "0",
        "1",
        "1.5",
        "\"\"",
        "\"k\"",
        "nil",
        "data.v0",
        "data.v20",
        "data.v25",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Filter cases: each filter, on each extreme value, with no argument, each argument, and
/// (for filters taking two) pairs. `inputs` picks which `data.vN` are inputs.
pub fn filter_cases() -> Vec<Case> {
    let inputs: Vec<String> = (0..extreme_values().len())
        .map(|i| format!("data.v{i}"))
        .chain(["data.missing".to_string(), "user.attributes.n".to_string()])
        .collect();
    let args = arguments();
    let seconds = second_arguments();
    let mut cases = Vec::new();
    for (filter, arity) in FILTERS {
        for input in &inputs {
            let mut push = |call: String| {
                cases.push(Case {
                    template: format!("{{{{ {input} | {call} }}}}"),
                    what: format!("{input} | {call}"),
                });
            };
            push(filter.to_string());
            if *arity >= 1 {
                for a in &args {
                    push(format!("{filter}: {a}"));
                }
            }
            if *arity >= 2 {
                for a in &args {
                    for b in &seconds {
                        push(format!("{filter}: {a}, {b}"));
                    }
                }
            }
        }
        // Chains: a filter's output fed to the arithmetic and string filters again.
        for next in [
            "plus: 1",
            "times: -1",
            "abs",
            "size",
            "slice: -1",
            "round: 9",
        ] {
            cases.push(Case {
                template: format!("{{{{ data.v0 | {filter}: data.v1 | {next} }}}}"),
                what: format!("chain {filter} | {next}"),
            });
        }
    }
    cases
}

/// Tag cases: loops, conditions, assignment, capture, cycles, counters, indexes.
pub fn tag_cases() -> Vec<Case> {
    let n = extreme_values().len();
    let values: Vec<String> = (0..n)
        .map(|i| format!("data.v{i}"))
        .chain(LITERALS.iter().map(|s| s.to_string()))
        .collect();
    let mut cases = Vec::new();
    let mut push = |template: String| {
        cases.push(Case {
            what: template.chars().take(120).collect(),
            template,
        });
    };
    for a in &values {
        push(format!(
            "{{% for i in ({a}..3) %}}{{{{ i }}}}{{% endfor %}}"
        ));
        push(format!(
            "{{% for i in (-3..{a}) %}}{{{{ i }}}}{{% endfor %}}"
        ));
        push(format!(
            "{{% for i in ({a}..{a}) reversed %}}{{{{ forloop.rindex }}}}{{% endfor %}}"
        ));
        push(format!(
            "{{% for x in data.v27 limit: {a} offset: {a} %}}{{{{ x }}}}{{% endfor %}}"
        ));
        push(format!(
            "{{% for x in data.v25 offset: {a} reversed %}}{{{{ x }}}}{{% else %}}none{{% endfor %}}"
        ));
        push(format!(
            "{{% for x in {a} %}}{{{{ x }}}}{{% break %}}{{% endfor %}}"
        ));
        push(format!(
            "{{% assign x = {a} | plus: 1 %}}{{% capture c %}}{{{{ x }}}}{{{{ {a} }}}}{{% endcapture %}}{{{{ c | size }}}}"
        ));
        push(format!(
            "{{% cycle {a}, 1, {a} %}}{{% cycle {a}, 1, {a} %}}"
        ));
        push(format!("{{{{ data.v25[{a}] }}}}{{{{ data.v29[{a}] }}}}"));
        push(format!(
            "{{{{ {a}.size }}}}{{{{ {a}.first }}}}{{{{ {a}.last }}}}"
        ));
        push(format!(
            "{{% case {a} %}}{{% when {a}, 1 %}}a{{% when nil %}}b{{% else %}}c{{% endcase %}}"
        ));
        push(format!(
            "{{% unless {a} %}}u{{% endunless %}}{{% if {a} == empty or {a} == blank %}}e{{% endif %}}"
        ));
        for op in ["==", "!=", "<", ">", "<=", ">=", "contains"] {
            for b in ["data.v0", "data.v7", "data.v12", "data.v25", "1.5", "\"a\""] {
                push(format!(
                    "{{% if {a} {op} {b} and {b} {op} {a} or {a} %}}y{{% else %}}n{{% endif %}}"
                ));
            }
        }
    }
    push("{% increment n %}{% increment n %}{% decrement n %}{% decrement m %}".to_string());
    push(
        "{% raw %}{{ data.v0 | divided_by: -1 }}{% endraw %}{% comment %}{{ x }}{% endcomment %}"
            .to_string(),
    );
    push("{{ data.v30 }}{{ data.v30 | size }}{{ data.v30 | first | first }}".to_string());
    push("{% for a in data.v30 %}{% for b in a %}{{ b }}{% endfor %}{% endfor %}".to_string());
    cases
}

/// Every case.
pub fn all_cases() -> Vec<Case> {
    let mut cases = filter_cases();
    cases.extend(tag_cases());
    cases
}

/// Every `step`-th case (and all tag cases): the sample the handler tests run.
pub fn sample(step: usize) -> Vec<Case> {
    let mut cases: Vec<Case> = filter_cases().into_iter().step_by(step.max(1)).collect();
    cases.extend(tag_cases().into_iter().step_by((step / 10).max(1)));
    cases
}
