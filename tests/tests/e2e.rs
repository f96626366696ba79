#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! End to end, over HTTP only: the emulator, the local runtime (the binary `make dev`
//! runs), and a real receiver on 127.0.0.1.

use std::time::Duration;

use hookline_core::signing;
use hookline_e2e::receiver::{self, Receiver};
use hookline_e2e::stack::{Stack, eventually};
use serde_json::{Value, json};

fn verify(secret: &str, r: &hookline_e2e::receiver::Received) -> bool {
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    signing::verify(
        secret,
        r.header("webhook-id"),
        ts,
        r.body.as_bytes(),
        r.header("webhook-signature"),
    )
}

async fn wait_for(
    receiver: &Receiver,
    prefix: &str,
    n: usize,
) -> Vec<hookline_e2e::receiver::Received> {
    eventually(60, || async {
        let got = receiver.received_on(prefix);
        (got.len() >= n).then_some(got)
    })
    .await
}

#[tokio::test]
async fn a_registered_webhook_receives_the_rendered_signed_request() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let json_hook = stack
        .webhook("acme", json!({
            "name": "crm",
            "url": format!("{}/ok/u/{{{{ user.id | default: 'anon' }}}}", rx.base),
            "headers": {"X-Campaign": "{{ event.type }}", "X-Missing": "{{ user.attributes.tier | default: 'basic' }}"},
            "body": {"type": "json", "fields": {"email": "{{ user.attributes.email | default: 'n/a' }}", "total": "{{ data.total }}", "quote": "{{ data.text }}"}},
            "events": ["order.placed"],
            "auth": {"type": "bearer", "token": "tok-e2e-bearer-secret"}
        }))
        .await;
    let form_hook = stack
        .webhook("acme", json!({
            "name": "sms",
            "method": "PUT",
            "url": format!("{}/ok/form", rx.base),
            "body": {"type": "raw", "template": "to={{ data.to | url_encode }}&text={{ data.text | url_encode }}", "content_type": "application/x-www-form-urlencoded"},
            "events": ["order.placed"],
            "auth": {"type": "basic", "username": "hook", "password": "pw-e2e-basic-secret"}
        }))
        .await;
    let locale_hook = stack
        .webhook("acme", json!({
            "name": "i18n",
            "url": format!("{}/ok/base", rx.base),
            "locales": {"ko": {"url": format!("{}/ok/ko", rx.base), "body": {"type": "raw", "template": "안녕하세요 {{ user.attributes.name | default: '고객' }}님", "content_type": "text/plain; charset=utf-8"}}},
            "default_locale": "en",
            "events": ["*"],
            "auth": {"type": "jwt", "secret": "jwt-e2e-hmac-secret", "claims": {"iss": "hookline"}, "ttl_seconds": 60}
        }))
        .await;
    stack
        .event(
            "acme",
            json!({
                "id": "ev-render", "type": "order.placed",
                "data": {"total": 1999, "to": "+82 10", "text": "say \"hi\"\n"},
                "user": {"id": "u-1", "locale": "ko-KR", "attributes": {}}
            }),
        )
        .await;
    let received = wait_for(&rx, "/ok", 3).await;
    let find = |path: &str| {
        received
            .iter()
            .find(|r| r.uri.path() == path)
            .unwrap()
            .clone()
    };

    let r = find("/ok/u/u-1");
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("x-campaign"), "order.placed");
    assert_eq!(r.header("x-missing"), "basic");
    assert_eq!(r.header("authorization"), "Bearer tok-e2e-bearer-secret");
    assert_eq!(r.header("content-type"), "application/json");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"email": "n/a", "total": "1999", "quote": "say \"hi\"\n"})
    );
    assert!(verify(json_hook["signing_secret"].as_str().unwrap(), &r));

    let r = find("/ok/form");
    assert_eq!(r.method, "PUT");
    assert_eq!(r.body, "to=%2B82%2010&text=say%20%22hi%22%0A");
    assert_eq!(
        r.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        r.header("authorization"),
        "Basic aG9vazpwdy1lMmUtYmFzaWMtc2VjcmV0"
    );
    assert!(verify(form_hook["signing_secret"].as_str().unwrap(), &r));

    let r = find("/ok/ko");
    assert_eq!(r.body, "안녕하세요 고객님");
    assert!(r.header("authorization").starts_with("Bearer ey"));
    assert!(verify(locale_hook["signing_secret"].as_str().unwrap(), &r));

    // The attempt log and the event's status agree.
    let id = json_hook["id"].as_str().unwrap();
    let attempts = stack.attempts("acme", id).await;
    assert_eq!(
        (
            attempts[0]["status"].clone(),
            attempts[0]["status_code"].clone()
        ),
        (json!("delivered"), json!(200))
    );
    let (_, status) = stack
        .admin("GET", "/v1/projects/acme/events/ev-render", None)
        .await;
    assert_eq!(status["deliveries"].as_array().unwrap().len(), 3);

    stack.assert_no_secrets_logged();
}

/// An event too large to ride in its SQS task (over 192 KiB) travels as its id, and the
/// delivery function reads it from its record, which is stored deflated: the receiver
/// still gets every byte of it, and the record still reads.
#[tokio::test]
async fn an_event_too_large_for_its_task_is_delivered_whole_from_its_record() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "big", "url": format!("{}/ok/big", rx.base), "events": ["doc.uploaded"]}),
        )
        .await;
    // 230,000 characters that deflate no better than text does (a fixed xorshift).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob: String = (0..230_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789 "[(state % 37) as usize])
        })
        .collect();
    stack
        .event(
            "acme",
            json!({"id": "ev-big", "type": "doc.uploaded", "data": {"blob": blob, "n": 1}}),
        )
        .await;
    let received = wait_for(&rx, "/ok/big", 1).await;
    let body: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["data"]["blob"].as_str().unwrap(), blob);
    assert_eq!(body["data"]["n"], 1);
    assert!(verify(
        hook["signing_secret"].as_str().unwrap(),
        &received[0]
    ));
    let (status, event) = stack
        .admin("GET", "/v1/projects/acme/events/ev-big", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(event["id"], "ev-big");
    assert_eq!(event["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_retry_rule_table_end_to_end() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let mut hooks = Vec::new();
    for (name, path, timeout) in [
        ("flaky", "fail/3", 30),
        ("down", "status/500", 30),
        ("gone", "status/404", 30),
        ("busy", "busy/2", 30),
        ("slow", "slow/3", 1),
        ("moved", "moved", 30),
    ] {
        let h = stack
            .webhook("acme", json!({"name": name, "url": format!("{}/{path}", rx.base), "events": ["*"], "timeout_seconds": timeout}))
            .await;
        hooks.push((name, h));
    }
    stack
        .event(
            "acme",
            json!({"id": "ev-rules", "type": "a", "data": {"card": "card-4242-never-logged"}}),
        )
        .await;
    let finals = |a: &[Value]| a.last().is_some_and(|l| l["status"] != "retrying");
    let mut logs = std::collections::HashMap::new();
    for (name, hook) in &hooks {
        let id = hook["id"].as_str().unwrap().to_string();
        let attempts = eventually(90, || {
            let id = id.clone();
            let stack = &stack;
            async move {
                let a = stack.attempts("acme", &id).await;
                finals(&a).then_some(a)
            }
        })
        .await;
        logs.insert(*name, attempts);
    }
    let statuses = |name: &str| -> Vec<String> {
        logs[name]
            .iter()
            .map(|a| a["status"].as_str().unwrap().to_string())
            .collect()
    };
    // 500 three times, then 200: delivered on attempt 4.
    assert_eq!(
        statuses("flaky"),
        ["retrying", "retrying", "retrying", "delivered"]
    );
    assert_eq!(logs["flaky"][3]["attempt"], 4);
    // 500 forever: six attempts, then dead-lettered.
    assert_eq!(
        statuses("down"),
        [
            "retrying",
            "retrying",
            "retrying",
            "retrying",
            "retrying",
            "dead_lettered"
        ]
    );
    assert_eq!(logs["down"][5]["status_code"], 500);
    // 404: one attempt, failed.
    assert_eq!(statuses("gone"), ["failed"]);
    // 429 with Retry-After: 2 is honoured (unscaled) before the second attempt.
    assert_eq!(statuses("busy"), ["retrying", "delivered"]);
    let busy = rx.received_on("/busy");
    assert!(
        busy[1].at - busy[0].at >= Duration::from_millis(1_900),
        "{:?}",
        busy[1].at - busy[0].at
    );
    // A timeout is retried; its attempt has no status code and says why.
    assert_eq!(statuses("slow"), ["retrying", "delivered"]);
    assert_eq!(logs["slow"][0]["status_code"], Value::Null);
    assert!(
        logs["slow"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    // 301: failed, not followed, not retried.
    assert_eq!(statuses("moved"), ["failed"]);
    assert!(rx.received_on("/ok/moved").is_empty());
    // Every attempt of one delivery carried the same webhook-id.
    let down = rx.received_on("/status/500");
    assert_eq!(down.len(), 6);
    assert!(
        down.iter()
            .all(|r| r.header("webhook-id") == down[0].header("webhook-id"))
    );
    stack.assert_no_secrets_logged();
    let attempts: usize = logs.values().map(Vec::len).sum();
    assert_reads_well(&stack.logs(), attempts);
}

/// What a person reading `make dev`'s output needs (SPEC §8, issue 19): every line a UTC
/// timestamp and a level first, plain values (no Rust `Some(..)`/`None`), one line per
/// attempt, and the reason of every attempt that did not deliver; never a payload.
fn assert_reads_well(log: &str, attempts: usize) {
    let mut attempt_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('{') {
            // A CloudWatch embedded-metric record: JSON by design.
            let record: Result<Value, _> = serde_json::from_str(line);
            assert!(
                record.is_ok_and(|r| r["_aws"].is_object()),
                "a JSON line that is no metric record: {line}"
            );
            continue;
        }
        let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            stamp.len() >= 20
                && stamp.ends_with('Z')
                && stamp.as_bytes()[10] == b'T'
                && stamp[..4].bytes().all(|b| b.is_ascii_digit()),
            "a line without a UTC timestamp first: {line}"
        );
        let level = rest.trim_start().split(' ').next().unwrap_or("");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "a line without a level: {line}"
        );
        assert!(
            !line.contains("Some(") && !line.contains("=None") && !line.contains("None,"),
            "Rust Debug text in a log line: {line}"
        );
        assert!(
            !line.contains("card-4242"),
            "a payload value logged: {line}"
        );
        let fields = &rest.trim_start()[level.len()..].trim_start();
        if fields.starts_with("attempt ") {
            attempt_lines += 1;
            if !fields.contains("status=delivered") {
                assert!(
                    fields.contains("reason="),
                    "an attempt that did not deliver, logged without its reason: {line}"
                );
            }
            if ["retrying", "failed", "dead_lettered"]
                .iter()
                .any(|s| fields.contains(&format!("status={s} ")))
            {
                assert_eq!(level, "WARN", "a failed attempt below WARN: {line}");
            }
        }
    }
    assert_eq!(attempt_lines, attempts, "one log line per attempt");
}

#[tokio::test]
async fn disabled_webhooks_get_nothing_until_enabled_and_deleted_ones_skip_pending_retries() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "t", "url": format!("{}/ok/toggle", rx.base), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let uri = format!("/v1/projects/acme/webhooks/{id}");
    let (status, _) = stack
        .admin("PATCH", &uri, Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, 200);
    let ev = stack
        .event("acme", json!({"id": "while-off", "type": "a"}))
        .await;
    assert_eq!(ev["matched"], 0, "a disabled webhook is not a subscriber");
    let (status, _) = stack
        .admin("PATCH", &uri, Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, 200);
    stack
        .event("acme", json!({"id": "while-on", "type": "a"}))
        .await;
    let got = wait_for(&rx, "/ok/toggle", 1).await;
    assert!(got[0].body.contains("while-on"));
    assert_eq!(rx.received_on("/ok/toggle").len(), 1);

    // A delivery pending retry for a webhook that is then deleted is skipped, not sent.
    let doomed = stack
        .webhook(
            "acme",
            json!({"name": "d", "url": format!("{}/fail/100", rx.base), "events": ["b"]}),
        )
        .await;
    stack
        .event("acme", json!({"id": "doomed", "type": "b"}))
        .await;
    wait_for(&rx, "/fail/100", 1).await;
    let (status, _) = stack
        .admin(
            "DELETE",
            &format!(
                "/v1/projects/acme/webhooks/{}",
                doomed["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let doomed_id = doomed["id"].as_str().unwrap();
    let delivery = eventually(30, || async {
        let (_, v) = stack
            .admin("GET", "/v1/projects/acme/events/doomed", None)
            .await;
        let d = v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["webhook_id"] == doomed_id)
            .cloned()
            .unwrap();
        (d["status"] == "skipped").then_some(d)
    })
    .await;
    assert!(delivery["attempts"].as_u64().unwrap() >= 1);
    let sent = rx.received_on("/fail/100").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rx.received_on("/fail/100").len(),
        sent,
        "nothing sent after deletion"
    );
    stack.assert_no_secrets_logged();
}

#[tokio::test]
async fn a_duplicate_event_is_delivered_once_and_recover_resends_dead_letters() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    stack
        .webhook(
            "acme",
            json!({"name": "once", "url": format!("{}/ok/once", rx.base), "events": ["a"]}),
        )
        .await;
    let first = stack
        .event("acme", json!({"id": "dup-1", "type": "a"}))
        .await;
    let again = stack
        .event("acme", json!({"id": "dup-1", "type": "a"}))
        .await;
    assert_eq!(
        (first["duplicate"].clone(), again["duplicate"].clone()),
        (json!(false), json!(true))
    );
    wait_for(&rx, "/ok/once", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.received_on("/ok/once").len(), 1);

    let down = stack
        .webhook(
            "acme",
            json!({"name": "down", "url": format!("{}/status/503", rx.base), "events": ["b"]}),
        )
        .await;
    let id = down["id"].as_str().unwrap();
    stack
        .event("acme", json!({"id": "lost-1", "type": "b"}))
        .await;
    eventually(60, || async {
        let a = stack.attempts("acme", id).await;
        a.last()
            .is_some_and(|l| l["status"] == "dead_lettered")
            .then_some(())
    })
    .await;
    let first_id = rx.received_on("/status/503")[0]
        .header("webhook-id")
        .to_string();
    // The receiver is fixed; recover sends the dead-lettered delivery again.
    let (status, _) = stack
        .admin(
            "PATCH",
            &format!("/v1/projects/acme/webhooks/{id}"),
            Some(json!({"url": format!("{}/ok/recovered", rx.base)})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = stack
        .admin(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!((status, v), (202, json!({"requeued": 1})));
    let recovered = wait_for(&rx, "/ok/recovered", 1).await;
    assert_eq!(
        recovered[0].header("webhook-id"),
        first_id,
        "the same webhook-id, so receivers deduplicate"
    );
    assert!(recovered[0].body.contains("lost-1"));
    stack.assert_no_secrets_logged();
}

#[tokio::test]
async fn a_project_key_cannot_touch_another_project() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let (_, acme) = stack.admin("POST", "/v1/projects/acme/keys", None).await;
    let acme_key = acme["key"].as_str().unwrap().to_string();
    let theirs = stack
        .webhook(
            "globex",
            json!({"name": "g", "url": format!("{}/ok/globex", rx.base), "events": ["*"]}),
        )
        .await;
    let gid = theirs["id"].as_str().unwrap();
    stack
        .event("globex", json!({"id": "g-1", "type": "a"}))
        .await;
    for (method, path, body) in [
        ("GET", "/v1/projects/globex/webhooks".to_string(), None),
        (
            "POST",
            "/v1/projects/globex/webhooks".to_string(),
            Some(json!({"name": "x", "url": "https://example.com", "events": ["*"]})),
        ),
        ("GET", format!("/v1/projects/globex/webhooks/{gid}"), None),
        (
            "PATCH",
            format!("/v1/projects/globex/webhooks/{gid}"),
            Some(json!({"enabled": false})),
        ),
        (
            "DELETE",
            format!("/v1/projects/globex/webhooks/{gid}"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/globex/webhooks/{gid}/rotate"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/globex/webhooks/{gid}/test"),
            None,
        ),
        (
            "POST",
            format!("/v1/projects/globex/webhooks/{gid}/preview"),
            None,
        ),
        (
            "GET",
            format!("/v1/projects/globex/webhooks/{gid}/attempts"),
            None,
        ),
        (
            "POST",
            "/v1/projects/globex/events".to_string(),
            Some(json!({"type": "a"})),
        ),
        ("GET", "/v1/projects/globex/events/g-1".to_string(), None),
        (
            "POST",
            format!("/v1/projects/globex/webhooks/{gid}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        ("POST", "/v1/projects/globex/keys".to_string(), None),
    ] {
        let (status, v) = stack.call(method, &path, &acme_key, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert!(
            !v.to_string().contains(gid),
            "{method} {path} leaked the webhook"
        );
    }
    // Globex's webhook is untouched and got exactly its one event.
    let (_, still) = stack
        .admin("GET", &format!("/v1/projects/globex/webhooks/{gid}"), None)
        .await;
    assert_eq!(
        (still["enabled"].clone(), still["version"].clone()),
        (json!(true), json!(1))
    );
    wait_for(&rx, "/ok/globex", 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.received_on("/ok/globex").len(), 1);
    // Acme's key works on acme.
    let (status, _) = stack
        .call("GET", "/v1/projects/acme/webhooks", &acme_key, None)
        .await;
    assert_eq!(status, 200);
    stack.assert_no_secrets_logged();
}

/// SPEC §9 over HTTP: three channels to three webhooks, a filter on one, a catch-all,
/// and the envelope's `type` and `channel`.
#[tokio::test]
async fn events_are_routed_by_channel_and_filter() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    for (name, channels, filter) in [
        ("email", json!(["email"]), Value::Null),
        ("sms", json!(["sms"]), Value::Null),
        (
            "push",
            json!(["push"]),
            json!("data.priority == 'high' and user.locale == 'ko'"),
        ),
        ("all", json!([]), Value::Null),
    ] {
        stack
            .webhook(
                "acme",
                json!({"name": name, "url": format!("{}/ok/{name}", rx.base), "events": ["notify"],
                                     "channels": channels, "filter": filter}),
            )
            .await;
    }
    let user = json!({"id": "u", "locale": "ko"});
    let events = [
        ("n1", Some("email"), "low", 2),
        ("n2", Some("sms"), "low", 2),
        ("n3", Some("push"), "high", 2),
        ("n4", Some("push"), "low", 1),
        ("n5", None, "high", 1),
        ("n6", Some("email"), "high", 2),
    ];
    for (id, channel, priority, matched) in events {
        let mut event =
            json!({"id": id, "type": "notify", "data": {"priority": priority}, "user": user});
        if let Some(c) = channel {
            event["channel"] = json!(c);
        }
        let accepted = stack.event("acme", event).await;
        assert_eq!(accepted["matched"], matched, "{id}");
    }
    let received = wait_for(&rx, "/ok/", 10).await;
    let got = |name: &str| {
        let mut ids: Vec<String> = received
            .iter()
            .filter(|r| r.uri.path() == format!("/ok/{name}"))
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(got("email"), ["n1", "n6"]);
    assert_eq!(got("sms"), ["n2"]);
    assert_eq!(got("push"), ["n3"]);
    assert_eq!(got("all"), ["n1", "n2", "n3", "n4", "n5", "n6"]);
    let n3: Value = serde_json::from_str(
        &received
            .iter()
            .find(|r| r.uri.path() == "/ok/push")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        (
            n3["type"].as_str(),
            n3["event"].as_str(),
            n3["channel"].as_str()
        ),
        (Some("notify"), Some("notify"), Some("push"))
    );
    let n5: Value = serde_json::from_str(
        &received
            .iter()
            .find(|r| r.uri.path() == "/ok/all" && r.body.contains("\"n5\""))
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(n5.get("channel").is_none(), "no channel, no key: {n5}");
}

/// Moving from another sender: a webhook brings the secret its receiver has, and a
/// rotation to another brought secret signs with both for the overlap.
#[tokio::test]
async fn a_brought_signing_secret_signs_and_a_rotation_to_another_signs_beside_it() {
    let stack = Stack::start(&[]).await;
    let rx = receiver::start().await;
    let (old, new) = (signing::new_secret(), signing::new_secret());
    let hook = stack
        .webhook(
            "acme",
            json!({"name": "moved", "url": format!("{}/ok/moved", rx.base), "events": ["*"], "signing_secret": old}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    stack
        .event("acme", json!({"id": "moved-1", "type": "a"}))
        .await;
    let first = wait_for(&rx, "/ok/moved", 1).await;
    assert!(verify(&old, &first[0]), "signed with the brought secret");
    let (status, rotated) = stack
        .admin(
            "POST",
            &format!("/v1/projects/acme/webhooks/{id}/rotate"),
            Some(json!({"signing_secret": new})),
        )
        .await;
    assert_eq!(
        (status, rotated["signing_secret"].as_str()),
        (200, Some(new.as_str()))
    );
    stack
        .event("acme", json!({"id": "moved-2", "type": "a"}))
        .await;
    // The delivery function may reuse the webhook it read for a few seconds.
    let after = eventually(60, || async {
        rx.received_on("/ok/moved")
            .into_iter()
            .skip(1)
            .find(|r| verify(&new, r))
    })
    .await;
    assert!(verify(&old, &after), "the old secret signs along");
}
