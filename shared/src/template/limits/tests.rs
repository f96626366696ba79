use super::*;

/// Renders `source` with `globals` in a fresh budget, as the webhook renderer does, but
/// with a deadline a minute away: these tests check the budgets of iterations, bytes and
/// depth, which a loaded machine (a debug build counting to 100,000 beside a compiler)
/// could otherwise see cut short by the 250 ms clock first. The clock has its own test.
fn render(source: &str, globals: serde_json::Value) -> std::result::Result<String, String> {
    render_until(Instant::now() + Duration::from_secs(60), source, globals)
}

fn render_until(
    deadline: Instant,
    source: &str,
    globals: serde_json::Value,
) -> std::result::Result<String, String> {
    let template = parser()
        .unwrap()
        .parse(source)
        .map_err(|e| format!("parse: {e}"))?;
    let globals = liquid::model::to_object(&globals).unwrap();
    metered_until(deadline, || template.render(&globals)).map_err(|e| e.to_string())
}

fn ok(source: &str, globals: serde_json::Value) -> String {
    render(source, globals).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn refused(source: &str, globals: serde_json::Value) -> String {
    match render(source, globals) {
        Ok(out) => panic!("{source} rendered {} bytes", out.len()),
        Err(e) => e,
    }
}

#[test]
fn for_iterates_ranges_and_collections_as_liquid_does() {
    let data = serde_json::json!({"items": ["a", "b", "c", "d"], "empty": [], "obj": {"k": 1}, "n": 3, "nothing": null});
    for (source, expected) in [
        ("{% for i in (1..5) %}{{ i }}{% endfor %}", "12345"),
        ("{% for i in (1..n) %}{{ i }}{% endfor %}", "123"),
        (
            "{% for i in (3..1) %}{{ i }}{% else %}none{% endfor %}",
            "none",
        ),
        ("{% for i in (-2..0) %}{{ i }},{% endfor %}", "-2,-1,0,"),
        ("{% for i in (1..10) limit:3 %}{{ i }}{% endfor %}", "123"),
        ("{% for i in (1..10) offset:8 %}{{ i }}{% endfor %}", "910"),
        (
            "{% for i in (1..5) offset:3 limit:5 %}{{ i }}{% endfor %}",
            "45",
        ),
        ("{% for i in (1..5) reversed %}{{ i }}{% endfor %}", "54321"),
        (
            "{% for i in (1..5) offset:1 limit:2 reversed %}{{ i }}{% endfor %}",
            "32",
        ),
        ("{% for x in items %}{{ x }}{% endfor %}", "abcd"),
        ("{% for x in items reversed %}{{ x }}{% endfor %}", "dcba"),
        (
            "{% for x in items offset:1 limit:2 %}{{ x }}{% endfor %}",
            "bc",
        ),
        (
            "{% for x in items offset:9 %}{{ x }}{% else %}none{% endfor %}",
            "none",
        ),
        (
            "{% for x in empty %}{{ x }}{% else %}none{% endfor %}",
            "none",
        ),
        (
            "{% for x in nothing %}{{ x }}{% else %}none{% endfor %}",
            "none",
        ),
        ("{% for p in obj %}{{ p[0] }}={{ p[1] }}{% endfor %}", "k=1"),
        (
            "{% for x in items %}{{ forloop.index }}/{{ forloop.index0 }}/{{ forloop.rindex }}/{{ forloop.rindex0 }}/{{ forloop.length }}{% if forloop.first %}F{% endif %}{% if forloop.last %}L{% endif %} {% endfor %}",
            "1/0/4/3/4F 2/1/3/2/4 3/2/2/1/4 4/3/1/0/4L ",
        ),
        (
            "{% for a in (1..2) %}{% for b in (1..2) %}{{ forloop.parentloop.index }}{{ b }} {% endfor %}{% endfor %}",
            "11 12 21 22 ",
        ),
        (
            "{% for i in (1..9) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
            "12",
        ),
        (
            "{% for i in (1..4) %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
            "134",
        ),
    ] {
        assert_eq!(ok(source, data.clone()), expected, "{source}");
    }
}

#[test]
fn assign_capture_and_filters_still_work() {
    let out = ok(
        "{% assign t = items | join: '-' | upcase %}{% capture c %}[{{ t }}]{% endcapture %}{{ c }} {{ 'a,b,a' | split: ',' | uniq | join: '' }} {{ 'xyx' | replace: 'x', 'ab' }} {% cycle 'o', 'e' %}{% cycle 'o', 'e' %}",
        serde_json::json!({"items": ["a", "b"]}),
    );
    assert_eq!(out, "[A-B] ab abyab oe");
}

#[test]
fn huge_ranges_are_refused_without_being_materialised() {
    // The standard `for` would allocate the whole range first (and abort the process).
    for source in [
        "{% for i in (1..2000000000) %}{% endfor %}",
        "{% for i in (-9223372036854775808..9223372036854775807) %}{% endfor %}",
        "{% for i in (1..2000000000) reversed %}{% endfor %}",
        "{% for i in (1..200000) offset:5 %}x{% endfor %}",
    ] {
        let e = refused(source, serde_json::json!({}));
        assert!(e.contains("100000 loop iterations"), "{source}: {e}");
    }
}

#[test]
fn nested_loops_share_one_iteration_budget() {
    let items: Vec<u32> = (0..400).collect();
    let e = refused(
        "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
        serde_json::json!({"items": items}),
    );
    assert!(e.contains("loop iterations"), "{e}");
    // 300 × 300 = 90,000 fits.
    let items: Vec<u32> = (0..300).collect();
    ok(
        "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
        serde_json::json!({"items": items}),
    );
}

#[test]
fn values_that_double_are_stopped_at_the_value_cap() {
    for source in [
        "{% assign s = 'xxxxxxxx' %}{% for i in (1..60) %}{% assign s = s | append: s %}{% endfor %}",
        "{% assign s = 'xxxxxxxx' %}{% for i in (1..60) %}{% capture s %}{{ s }}{{ s }}{% endcapture %}{% endfor %}",
        "{% capture s %}{% for i in (1..99999) %}0123456789abcdef{% endfor %}{% endcapture %}",
    ] {
        let e = refused(source, serde_json::json!({}));
        assert!(e.contains("more than 1048576 bytes"), "{source}: {e}");
    }
}

#[test]
fn filters_that_multiply_their_input_are_checked_before_they_run() {
    // 64 KiB replaced into each of 64 Ki places would be 4 GiB.
    let e = refused(
        "{% assign s = 'x' | append: big %}{{ s | replace: 'x', big }}",
        serde_json::json!({"big": "x".repeat(64 * 1024)}),
    );
    assert!(e.contains("`replace` would produce more than"), "{e}");
    let e = refused(
        "{{ '' | replace: '', big }}{{ 'abcdefgh' | replace: '', big }}",
        serde_json::json!({"big": "y".repeat(200 * 1024)}),
    );
    assert!(e.contains("`replace` would produce"), "{e}");
    let e = refused(
        "{{ items | join: big }}",
        serde_json::json!({"items": vec![1; 1000], "big": "z".repeat(2048)}),
    );
    assert!(e.contains("`join` would produce"), "{e}");
    let many: Vec<u32> = (0..2001).collect();
    let e = refused(
        "{{ items | uniq | size }}",
        serde_json::json!({"items": many}),
    );
    assert!(e.contains("uniq takes at most 2000 items"), "{e}");
    let fine: Vec<u32> = (0..2000).collect();
    assert_eq!(
        ok(
            "{{ items | uniq | size }}",
            serde_json::json!({"items": fine})
        ),
        "2000"
    );
}

#[test]
fn everything_produced_in_one_render_counts_against_one_byte_budget() {
    // Each value is under the cap, but 40 × 512 KiB is more than 16 MiB.
    let e = refused(
        "{% for i in (1..40) %}{% assign s = big | append: '' %}{% endfor %}",
        serde_json::json!({"big": "b".repeat(512 * 1024)}),
    );
    assert!(e.contains("16777216 bytes produced"), "{e}");
}

#[test]
fn a_render_past_its_deadline_stops() {
    let e = render_until(
        Instant::now() - Duration::from_secs(1),
        "{% for i in (1..1000) %}{% endfor %}",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(e.contains("took longer than 250 ms"), "{e}");
}

#[test]
fn tags_without_a_bound_or_a_use_here_do_not_parse() {
    for source in [
        "{% include 'x' %}",
        "{% render 'x' %}",
        "{% tablerow i in (1..3) %}{{ i }}{% endtablerow %}",
        "{% ifchanged %}x{% endifchanged %}",
    ] {
        let e = render(source, serde_json::json!({})).unwrap_err();
        assert!(e.starts_with("parse:"), "{source}: {e}");
    }
}

#[test]
fn rendering_outside_a_budget_is_an_error_not_unbounded() {
    let template = parser()
        .unwrap()
        .parse("{% for i in (1..2) %}{% endfor %}")
        .unwrap();
    let e = template.render(&liquid::object!({})).unwrap_err();
    assert!(e.to_string().contains("within a budget"), "{e}");
}

#[test]
fn deep_nesting_is_refused_before_the_parser_recurses() {
    // Nested as deep as 64 KiB allows, each of these overflows a 2 MiB stack when parsed.
    for (open, close) in [
        ("{% if true %}", "{% endif %}"),
        ("{% for i in (1..1) %}", "{% endfor %}"),
        ("{% capture a %}", "{% endcapture %}"),
        ("{% case 1 %}{% when 1 %}", "{% endcase %}"),
        ("{%- unless false -%}", "{%- endunless -%}"),
    ] {
        let levels = 64 * 1024 / (open.len() + close.len());
        let source = format!("{}x{}", open.repeat(levels), close.repeat(levels));
        assert_eq!(
            check_nesting(&source),
            Err("the template nests deeper than 32 levels".to_string()),
            "{open}"
        );
        // As deep as allowed parses and renders on a small stack.
        let source = format!("{}x{}", open.repeat(MAX_NESTING), close.repeat(MAX_NESTING));
        assert_eq!(check_nesting(&source), Ok(()));
        let rendered = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || render(&source, serde_json::json!({})))
            .unwrap()
            .join()
            .unwrap();
        assert!(rendered.is_ok(), "{open}: {rendered:?}");
    }
    let index = format!("{{{{ a{}0{} }}}}", "[a".repeat(20_000), "]".repeat(20_000));
    assert!(check_nesting(&index).is_err());
    // Sequences are not nesting, and raw text is not tags.
    let flat = "{% if a %}x{% endif %}".repeat(2_000);
    assert_eq!(check_nesting(&flat), Ok(()));
    let raw = format!("{{% raw %}}{}{{% endraw %}}", "{% if a %}".repeat(100));
    assert_eq!(check_nesting(&raw), Ok(()));
    assert_eq!(render(&raw, serde_json::json!({})).unwrap().len(), 1000);
}

#[test]
fn elsif_chains_long_conditions_and_unseen_nesting_are_refused() {
    let levels = |e: String| {
        assert!(
            e.contains("nest deeper than 100 levels") && e.starts_with("line 1, column "),
            "{e}"
        );
    };
    // A chain of `elsif` is a chain of nested `if`s to Liquid: 4,500 overflowed 2 MiB.
    let chain = |n: usize| format!("{{% if a %}}{}{{% endif %}}", "{% elsif a %}x".repeat(n));
    levels(check_nesting(&chain(4_500)).unwrap_err());
    levels(check_nesting(&chain(MAX_LEVELS)).unwrap_err());
    assert_eq!(check_nesting(&chain(MAX_LEVELS - 1)), Ok(()));
    // Blocks and `elsif`s count together, but only while open.
    let inner = format!("{{% if a %}}{}{{% endif %}}", "{% elsif a %}x".repeat(80));
    let wrapped = format!(
        "{}{inner}{}",
        "{% for i in (1..1) %}".repeat(30),
        "{% endfor %}".repeat(30)
    );
    levels(check_nesting(&wrapped).unwrap_err());
    let side_by_side = format!(
        "{inner}{}",
        "{% if a %}{% elsif a %}{% endif %}".repeat(2_000)
    );
    assert_eq!(check_nesting(&side_by_side), Ok(()));

    // Conditions joined by `and` / `or` are a tree as deep as they are long.
    let joined = |tag: &str, n: usize, op: &str| {
        let end = if tag == "unless" {
            "endunless"
        } else {
            "endif"
        };
        let conditions = vec!["a"; n + 1].join(op);
        if tag == "elsif" {
            format!("{{% if a %}}{{% elsif {conditions} %}}x{{% endif %}}")
        } else {
            format!("{{% {tag} {conditions} %}}x{{% {end} %}}")
        }
    };
    for tag in ["if", "elsif", "unless"] {
        for op in [" or ", " and ", "\n\tor  "] {
            let e = check_nesting(&joined(tag, 12_000, op)).unwrap_err();
            assert!(e.contains("more than 100 conditions"), "{tag}: {e}");
            assert!(check_nesting(&joined(tag, MAX_OPERATORS + 1, op)).is_err());
            assert_eq!(
                check_nesting(&joined(tag, MAX_OPERATORS, op)),
                Ok(()),
                "{tag}"
            );
        }
    }
    // Words in strings, names that hold the letters and `when`'s list are not counted.
    let words = " or ".repeat(500);
    for source in [
        format!("{{% if a == \"{words}\" or a == '{words}' %}}x{{% endif %}}"),
        format!(
            "{{% if {} %}}x{{% endif %}}",
            vec!["order"; 500].join(" == ")
        ),
        format!(
            "{{% case a %}}{{% when {} %}}x{{% endcase %}}",
            vec!["1"; 500].join(" or ")
        ),
    ] {
        assert_eq!(check_nesting(&source), Ok(()), "{source}");
    }

    // Liquid parses the tags inside a comment and drops those that do not parse, so a
    // stray end tag there closes nothing: each of these opens one more `if`.
    let unseen = format!(
        "{}{}",
        "{% if a %}{% comment %}{% endif %}{% endcomment %}".repeat(1_200),
        "{% endif %}".repeat(1_200)
    );
    assert_eq!(
        check_nesting(&unseen),
        Err("the template nests deeper than 32 levels".to_string())
    );

    // A `raw` never closed is refused before Liquid's parser, which panics on one inside
    // a comment; closed, it is Liquid's to read.
    for source in [
        "{% comment %}{% raw %}{% endcomment %}",
        "{% raw %}",
        "{% if a %}{%- raw -%}x{% endif %}",
    ] {
        let refused = check_nesting(source).unwrap_err();
        assert!(refused.contains("`{% raw %}` is never closed"), "{refused}");
    }
    assert_eq!(
        check_nesting("{% comment %}{% raw %}{% endraw %}{% endcomment %}"),
        Ok(())
    );
    assert_eq!(
        ok("{% raw %}{{ a }}{% endraw %}", serde_json::json!({})),
        "{{ a }}"
    );

    // The most of each at once still parses and renders on a small stack: a debug build
    // needs more than 256 KiB for it, a release build less; threads have 2 MiB.
    let deepest = format!(
        "{}{{% if a %}}{}{{% elsif {}{} %}}x{{% endif %}}{}",
        "{% if true %}".repeat(MAX_NESTING - 1),
        "{% elsif a %}".repeat(MAX_LEVELS - MAX_NESTING - 1),
        vec!["a"; MAX_OPERATORS].join(" or "),
        " or s".to_string() + &".size".repeat(MAX_PATH_PARTS - 1),
        "{% endif %}".repeat(MAX_NESTING - 1),
    );
    assert_eq!(check_nesting(&deepest), Ok(()));
    assert_eq!(check_paths(&deepest), Ok(()));
    let rendered = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || render(&deepest, serde_json::json!({"a": false, "s": "xyz"})))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(rendered, Ok("x".to_string()));
}

#[test]
fn long_paths_are_refused_before_liquid_looks_them_up() {
    // Each part of these is found (a number's `size` is a number, an array's `first` an
    // array), and Liquid recurses a frame per part: 10,000 overflow a 2 MiB stack.
    // (A path through arrays ends where the data does, an error past it.)
    let data = serde_json::json!({"s": "xyz", "deep": [[[1]]]});
    for (start, part, found) in [
        ("s", ".size", true),
        ("deep", ".first", false),
        ("s", "[\"size\"]", true),
        ("deep", "[0]", false),
    ] {
        let long = format!("{{{{ {start}{} }}}}", part.repeat(10_000));
        let refused = check_paths(&long).unwrap_err();
        assert!(
            refused.starts_with("line 1, column ") && refused.ends_with("has more than 64 parts"),
            "{part}: {refused}"
        );
        // As long as allowed is looked up on a small stack.
        let most = format!("{{{{ {start}{} }}}}", part.repeat(MAX_PATH_PARTS));
        assert_eq!(check_paths(&most), Ok(()), "{part}");
        let rendered = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn({
                let data = data.clone();
                move || render(&most, data)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(rendered.is_ok(), found, "{part}: {rendered:?}");
        let one_more = format!("{{{{ {start}{} }}}}", part.repeat(MAX_PATH_PARTS + 1));
        assert!(check_paths(&one_more).is_err(), "{part}");
    }
    // Wherever a path is read: tags, filter arguments, inside brackets; the position is
    // where the limit is passed.
    let parts = ".size".repeat(100);
    for source in [
        format!("{{% if s{parts} > 1 %}}x{{% endif %}}"),
        format!("{{% assign n = s{parts} %}}"),
        format!("{{{{ s | append: s{parts} }}}}"),
        format!("{{{{ a[s{parts}] }}}}"),
    ] {
        assert!(check_paths(&source).is_err(), "{source}");
    }
    assert_eq!(
        check_paths(&format!("x\n  {{{{ s{parts} }}}}")),
        Err("line 2, column 327: a variable's path has more than 64 parts".to_string())
    );
    // Paths side by side are each their own, and so is one inside brackets; dots in
    // strings, numbers and ranges are no parts.
    let short = ".size".repeat(40);
    for source in [
        format!("{{{{ s{short} | append: s{short} }}}}"),
        format!("{{% if s{short} == s{short} or s{short} %}}{{% endif %}}"),
        format!("{{{{ deep[s{short}]{} }}}}", "[0]".repeat(40)),
        format!(
            "{{{{ '{}' | append: \"{}\" }}}}",
            "a.b".repeat(1_000),
            "[c]".repeat(1_000)
        ),
        format!(
            "{{% for i in (1..3) %}}{{{{ {} }}}}{{% endfor %}}",
            "1.5 ".repeat(1_000)
        ),
    ] {
        assert_eq!(check_paths(&source), Ok(()), "{source}");
    }
}
