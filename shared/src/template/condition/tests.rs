use super::*;
use crate::model::{Event, decode_json};
use crate::template::Subject;

fn event(json: serde_json::Value) -> Event {
    let mut base = serde_json::json!({"id": "ev_1", "type": "order.placed", "timestamp": "2026-11-22T07:00:00Z"});
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    Event::from_input(
        decode_json(base.to_string().as_bytes()).unwrap(),
        0,
        || unreachable!(),
    )
    .unwrap()
}

const SUBJECT: Subject<'static> = Subject {
    project_id: "acme",
    webhook_id: "wh_1",
    webhook_name: "crm",
};

fn holds(filter: &str, e: &Event) -> Result<bool, String> {
    Condition::compile(filter)
        .unwrap()
        .holds(&RenderContext::new(e, SUBJECT))
}

#[test]
fn filters_decide_as_liquid_if_does() {
    let e = event(serde_json::json!({
        "channel": "store",
        "data": {"total": 150, "tags": ["vip", "new"], "country": "KR", "note": "rush order", "zero": 0, "none": null},
        "user": {"id": "u1", "locale": "ko", "attributes": {"tier": "gold"}},
    }));
    for (filter, expected) in [
        ("data.total > 100", true),
        ("data.total > 100 and user.locale == \"ko\"", true),
        ("data.total > 100 and user.locale == 'en'", false),
        ("data.total < 100 or data.country == 'KR'", true),
        // `and` binds tighter than `or`.
        (
            "data.total < 100 and data.country == 'KR' or event.channel == 'store'",
            true,
        ),
        (
            "data.total < 100 and data.country == 'KR' or event.channel == 'web'",
            false,
        ),
        ("data.tags contains 'vip'", true),
        ("data.note contains 'rush'", true),
        ("data contains 'country'", true),
        ("user.attributes.tier != 'silver'", true),
        ("user.attributes.tier <> 'gold'", false),
        ("data.missing", false),
        ("data.zero", true),
        ("data.none", false),
        ("data.total >= 150 and data.total <= 150", true),
        ("data.missing == nil", true),
        ("data.tags != empty", true),
        (
            "event.type == 'order.placed' and webhook.name == 'crm' and project.id == 'acme'",
            true,
        ),
        ("data.total > 99.5", true),
        ("true", true),
        ("false or nil", false),
    ] {
        assert_eq!(holds(filter, &e), Ok(expected), "{filter}");
    }
}

/// Every filter the direct evaluation takes answers as Liquid's own `if` does, on every
/// kind of value: the same boolean, or an error from both.
#[test]
fn the_direct_evaluation_agrees_with_liquid() {
    let values = [
        "0",
        "1",
        "-3",
        "2.5",
        "'a'",
        "'abc'",
        "\"\"",
        "nil",
        "empty",
        "blank",
        "true",
        "false",
        "data.n",
        "data.f",
        "data.s",
        "data.empty_s",
        "data.list",
        "data.empty_list",
        "data.obj",
        "data.nothing",
        "data.obj.k",
        "data.list.first",
        "data.list.size",
        "user.id",
        "event.channel",
    ];
    let ops = ["==", "!=", "<", ">", "<=", ">=", "contains"];
    let e = event(serde_json::json!({
        "channel": "c",
        "data": {"n": 1, "f": 2.5, "s": "abc", "empty_s": "", "list": [1, "a", null], "empty_list": [],
                 "obj": {"k": "v"}},
        "user": {"id": "u1"},
    }));
    let none = event(serde_json::json!({}));
    let mut compared = 0;
    for a in values {
        for e in [&e, &none] {
            let ctx = RenderContext::new(e, SUBJECT);
            let c = Condition::compile(a).unwrap();
            assert!(c.is_direct(), "{a}");
            assert_eq!(
                c.holds(&ctx).is_ok(),
                c.holds_by_liquid(&ctx).is_ok(),
                "{a}"
            );
            assert_eq!(c.holds(&ctx).ok(), c.holds_by_liquid(&ctx).ok(), "{a}");
            compared += 1;
            for op in ops {
                for b in values {
                    for joined in [
                        format!("{a} {op} {b}"),
                        format!("{a} {op} {b} and {b} or {a} {op} {a}"),
                    ] {
                        let c = Condition::compile(&joined).unwrap();
                        assert!(c.is_direct(), "{joined}");
                        let (direct, liquid) = (c.holds(&ctx), c.holds_by_liquid(&ctx));
                        assert_eq!(
                            direct.is_ok(),
                            liquid.is_ok(),
                            "{joined}: {direct:?} vs {liquid:?}"
                        );
                        assert_eq!(direct.ok(), liquid.ok(), "{joined}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 10_000, "{compared}");
}

#[test]
fn filters_parse_at_registration_with_positions_in_their_own_text() {
    for (filter, needle) in [
        ("data.total >", "line 1, column"),
        ("data.total > 100 and", "line 1, column"),
        (
            "data.total > 99999999999999999999",
            "line 1, column 14: the number 99999999999999999999",
        ),
        ("{% if true %}", "write only the condition"),
        ("x }} {{ y", "write only the condition"),
    ] {
        let err = Condition::compile(filter).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("invalid_template", "filter"),
            "{filter}"
        );
        assert!(err.message.contains(needle), "{filter}: {}", err.message);
    }
    // The position is the filter's own: the bad `!` is its 12th character.
    let err = Condition::compile("data.total ! 5").unwrap_err();
    assert!(err.message.contains("line 1, column 1"), "{}", err.message);
    // What the direct evaluation does not take, Liquid evaluates.
    let e = event(serde_json::json!({"data": {"items": [1, 2, 3], "s": "Hello"}}));
    for (filter, expected) in [
        ("data.items.size > 2", true),
        ("data.items[0] == 1", true),
        ("data.s == 'Hello'", true),
    ] {
        assert_eq!(holds(filter, &e), Ok(expected), "{filter}");
    }
    assert!(
        !Condition::compile("data.items[0] == 1")
            .unwrap()
            .is_direct()
    );
}

#[test]
fn an_error_is_an_error_and_a_runaway_filter_meets_the_budget() {
    let e = event(serde_json::json!({"data": {"n": 5}}));
    // `contains` on nil: Liquid's error, whichever way it is evaluated (a number is
    // text to `contains`).
    assert_eq!(holds("data.n contains 5", &e), Ok(true));
    let err = holds("data.missing contains 5", &e).unwrap_err();
    assert!(err.contains("string | array | object"), "{err}");
    // A decided `or` never meets a later part's error.
    assert_eq!(
        holds("data.n == 5 or data.missing contains 5", &e),
        Ok(true)
    );
}

#[test]
fn a_context_given_another_subject_sees_that_webhook_and_project() {
    let e = event(serde_json::json!({"data": {"total": 1}}));
    let mut ctx = RenderContext::new(&e, SUBJECT);
    let filter = Condition::compile(
        "webhook.name == \"erp\" and webhook.id == \"wh_2\" and project.id == \"beta\"",
    )
    .unwrap();
    let liquid = Condition::compile("webhook.name == \"erp\" and project.id == \"beta\"").unwrap();
    assert_eq!(filter.holds(&ctx), Ok(false));
    ctx.set_subject(Subject {
        project_id: "beta",
        webhook_id: "wh_2",
        webhook_name: "erp",
    });
    assert_eq!(filter.holds(&ctx), Ok(true));
    assert_eq!(liquid.holds_by_liquid(&ctx), Ok(true));
    ctx.set_subject(SUBJECT);
    assert_eq!(filter.holds(&ctx), Ok(false));
}
