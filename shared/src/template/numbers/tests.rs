use super::super::limits;

fn ours(source: &str, globals: &liquid::Object) -> Result<String, String> {
    let template = limits::parser()
        .unwrap()
        .parse(source)
        .map_err(|e| e.to_string())?;
    limits::metered(|| template.render(globals)).map_err(|e| e.to_string())
}

fn liquid_lib(source: &str, globals: &liquid::Object) -> Result<String, String> {
    let template = liquid::ParserBuilder::with_stdlib()
        .build()
        .unwrap()
        .parse(source)
        .map_err(|e| e.to_string())?;
    template.render(globals).map_err(|e| e.to_string())
}

/// Values that liquid-lib handles without overflowing: there both must agree.
fn ordinary() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("zero", serde_json::json!(0)),
        ("one", serde_json::json!(1)),
        ("minus_seven", serde_json::json!(-7)),
        ("big", serde_json::json!(1_000_000_007)),
        ("half", serde_json::json!(0.5)),
        ("neg_float", serde_json::json!(-2.75)),
        ("int_text", serde_json::json!("12")),
        ("float_text", serde_json::json!("3.5")),
        ("word", serde_json::json!("abc")),
        ("unicode", serde_json::json!("héllo wörld")),
        ("nothing", serde_json::json!(null)),
        ("yes", serde_json::json!(true)),
        ("list", serde_json::json!([1, "b", 3.5, null])),
    ]
}

#[test]
fn arithmetic_agrees_with_liquid_lib_where_liquid_lib_does_not_overflow() {
    let values = ordinary();
    let globals = liquid::model::to_object(&serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    ))
    .unwrap();
    let mut compared = 0;
    for filter in [
        "plus",
        "minus",
        "times",
        "divided_by",
        "modulo",
        "at_least",
        "at_most",
    ] {
        for (a, _) in &values {
            for (b, _) in &values {
                let source = format!("{{{{ {a} | {filter}: {b} }}}}");
                let (mine, theirs) = (ours(&source, &globals), liquid_lib(&source, &globals));
                assert_eq!(
                    mine.is_ok(),
                    theirs.is_ok(),
                    "{source}: {mine:?} vs {theirs:?}"
                );
                if let (Ok(m), Ok(t)) = (&mine, &theirs) {
                    assert_eq!(m, t, "{source}");
                }
                compared += 1;
            }
        }
    }
    for call in [
        "abs",
        "ceil",
        "floor",
        "round",
        "round: 2",
        "round: -1",
        "slice: 1",
        "slice: -2, 2",
        "slice: 0, 3",
        "slice: 5",
    ] {
        for (a, _) in &values {
            // liquid-lib slices text by characters after measuring it in bytes, so a
            // negative offset into non-ASCII text selects nothing; ours counts characters
            // (see the `héllo` case below).
            if *a == "unicode" && call.starts_with("slice") {
                continue;
            }
            let source = format!("{{{{ {a} | {call} }}}}");
            let (mine, theirs) = (ours(&source, &globals), liquid_lib(&source, &globals));
            assert_eq!(
                mine.is_ok(),
                theirs.is_ok(),
                "{source}: {mine:?} vs {theirs:?}"
            );
            if let (Ok(m), Ok(t)) = (&mine, &theirs) {
                assert_eq!(m, t, "{source}");
            }
            compared += 1;
        }
    }
    assert!(compared > 1_000, "{compared}");
}

#[test]
fn results_past_64_bits_are_errors_naming_the_filter() {
    let globals = liquid::model::to_object(&serde_json::json!({
        "min": i64::MIN, "max": i64::MAX, "huge": 1e300, "min_text": "-9223372036854775808",
    }))
    .unwrap();
    for (source, needle) in [
        (
            "{{ min | abs }}",
            "`abs`: the result does not fit a 64-bit integer",
        ),
        ("{{ min_text | abs }}", "`abs`: the result does not fit"),
        (
            "{{ min | divided_by: -1 }}",
            "`divided_by`: the result does not fit",
        ),
        ("{{ max | plus: 1 }}", "`plus`: the result does not fit"),
        ("{{ min | minus: 1 }}", "`minus`: the result does not fit"),
        ("{{ max | times: 2 }}", "`times`: the result does not fit"),
        ("{{ huge | ceil }}", "`ceil`: 1000000"),
        ("{{ huge | round }}", "`round`: 1000000"),
        ("{{ 1 | divided_by: 0 }}", "`divided_by`: division by zero"),
        ("{{ 1 | modulo: 0.0 }}", "`modulo`: division by zero"),
        (
            "{{ 'x' | plus: 1 }}",
            "`plus`: the input must be a number, not string",
        ),
        (
            "{{ 1 | plus: nil }}",
            "`plus`: the operand must be a number, not nil",
        ),
        (
            "{{ 'abc' | slice: 1, 0 }}",
            "`slice`: length must be at least 1",
        ),
        (
            "{{ 'abc' | slice: 1.5 }}",
            "`slice`: offset must be a whole number",
        ),
    ] {
        let err = ours(source, &globals).expect_err(source);
        assert!(err.contains(needle), "{source}: {err}");
    }
    for (source, expected) in [
        ("{{ min | modulo: -1 }}", "0"),
        ("{{ max | minus: max }}", "0"),
        ("{{ min | at_most: 1 }}", "-9223372036854775808"),
        ("{{ 1.5 | round: 400 }}", "1.5"),
        ("{{ 'abc' | slice: min, max }}", ""),
        ("{{ 'abc' | slice: max, max }}", ""),
        ("{{ 'abc' | slice: -1, max }}", "c"),
        ("{{ 'héllo' | slice: -4, 2 }}", "él"),
    ] {
        assert_eq!(ours(source, &globals).as_deref(), Ok(expected), "{source}");
    }
}

#[test]
fn arguments_are_checked_at_parse_time() {
    let parser = limits::parser().unwrap();
    for (source, needle) in [
        ("{{ 1 | plus }}", "`plus` takes 1 argument, not 0"),
        ("{{ 1 | plus: 1, 2 }}", "`plus` takes 1 argument, not 2"),
        ("{{ 1 | abs: 1 }}", "`abs` takes 0 arguments, not 1"),
        ("{{ 'a' | slice }}", "`slice` takes 1 or 2 arguments, not 0"),
        (
            "{{ 1 | plus: 1, x: 2 }}",
            "`plus` takes no keyword argument `x`",
        ),
    ] {
        let err = parser.parse(source).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(needle), "{source}: {err}");
    }
}
