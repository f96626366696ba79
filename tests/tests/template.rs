#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! What infra/template.yaml must get right, read from the template itself.

use hookline_core::model::event::MAX_SCHEDULE_AHEAD_HOPS;
use hookline_core::retry::Schedule;
use hookline_e2e::template;

#[test]
fn the_visibility_arithmetic_holds() {
    let t = template();
    let r = &t["Resources"];
    let timeout = r["DeliverFunction"]["Properties"]["Timeout"]
        .as_i64()
        .unwrap();
    let visibility = r["DeliveryQueue"]["Properties"]["VisibilityTimeout"]
        .as_i64()
        .unwrap();
    let max_receives = r["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        .as_i64()
        .unwrap();
    // The function outlives the longest request (90 s) with room for bookkeeping, and
    // lets a message go before it times out.
    assert!(timeout >= 90 + 10, "DeliverFunction Timeout {timeout}");
    assert_eq!(
        timeout as u64,
        deliver::FUNCTION_TIMEOUT.as_secs(),
        "the handler's idea of its timeout"
    );
    assert!(deliver::RELEASE_MARGIN.as_secs() + 90 < timeout as u64);
    // AWS's rule for SQS event sources: visibility at least six times the function timeout.
    assert!(
        visibility >= 6 * timeout,
        "VisibilityTimeout {visibility} < 6 × {timeout}"
    );
    // The redrive catches crashes only: it must never cut the retry schedule short, nor
    // the holding of a delivery scheduled a week ahead.
    let attempts = i64::from(Schedule::default().max_attempts());
    assert!(
        max_receives > attempts,
        "maxReceiveCount {max_receives} <= {attempts} attempts"
    );
    assert!(
        max_receives > i64::from(MAX_SCHEDULE_AHEAD_HOPS),
        "maxReceiveCount {max_receives} too low to hold a week"
    );
    // The SQS event source reports partial batch failures.
    let source = &r["DeliverFunction"]["Properties"]["Events"]["Deliveries"]["Properties"];
    assert_eq!(
        source["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
}

#[test]
fn the_attempt_log_and_event_records_expire_and_webhooks_are_recoverable() {
    let t = template();
    let r = &t["Resources"];
    for table in ["AttemptsTable", "EventsTable"] {
        let ttl = &r[table]["Properties"]["TimeToLiveSpecification"];
        assert_eq!(
            (ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()),
            (Some("expires_at"), Some(true)),
            "{table}"
        );
    }
    assert_eq!(
        r["WebhooksTable"]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    for table in [
        "WebhooksTable",
        "ApiKeysTable",
        "EventsTable",
        "AttemptsTable",
    ] {
        assert_eq!(
            r[table]["Properties"]["BillingMode"], "PAY_PER_REQUEST",
            "{table}"
        );
    }
    assert_eq!(t["Parameters"]["AdminKey"]["NoEcho"], true);
}

#[test]
fn the_sam_local_env_files_override_only_what_the_template_declares() {
    let t = template();
    let declared = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    let root = hookline_e2e::workspace_root();
    let env: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("infra/local/sam-env.json")).unwrap(),
    )
    .unwrap();
    for (name, value) in env["Parameters"].as_object().unwrap() {
        assert!(
            declared.contains_key(name),
            "sam-env.json sets {name}, which the template does not declare"
        );
        // Table and queue names are the ones `emulator.py serve --prefix hookline-local` creates.
        if let Some(target) = declared[name]["Ref"].as_str()
            && t["Resources"][target]["Type"] == "AWS::DynamoDB::Table"
        {
            assert_eq!(value.as_str().unwrap(), format!("hookline-local-{target}"));
        }
        if let Some(target) = declared[name]["Ref"].as_str()
            && t["Resources"][target]["Type"] == "AWS::SQS::Queue"
        {
            assert!(
                value
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/hookline-local-{target}")),
                "{name}"
            );
        }
    }
    let container: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("infra/local/sam-container-env.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(container["HOOKLINE_ADMIN_KEY"], "local-admin-key");
}

#[test]
fn abandoned_fan_outs_are_swept_on_a_schedule() {
    let t = template();
    let sweep = &t["Resources"]["DeliverFunction"]["Properties"]["Events"]["Sweep"];
    assert_eq!(sweep["Type"], "Schedule");
    assert_eq!(sweep["Properties"]["Schedule"], "rate(1 minute)");
    let input: serde_json::Value =
        serde_json::from_str(sweep["Properties"]["Input"].as_str().unwrap()).unwrap();
    let invocation: deliver::Invocation = serde_json::from_value(input).unwrap();
    assert_eq!(invocation.hookline.as_deref(), Some("sweep"));
    let indexes = t["Resources"]["EventsTable"]["Properties"]["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap();
    for name in [
        hookline_core::store::dynamo::EVENTS_INCOMPLETE_INDEX,
        hookline_core::store::dynamo::EVENTS_BY_PROJECT_INDEX,
    ] {
        assert!(indexes.iter().any(|i| i["IndexName"] == name), "{name}");
    }
}

#[test]
fn the_api_is_throttled_before_any_function_runs() {
    let t = template();
    let settings = &t["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"];
    for (setting, parameter) in [
        ("ThrottlingRateLimit", "ApiRateLimit"),
        ("ThrottlingBurstLimit", "ApiBurstLimit"),
    ] {
        assert_eq!(settings[setting]["Ref"], parameter, "{setting}");
        let p = &t["Parameters"][parameter];
        assert_eq!(p["Type"], "Number", "{parameter}");
        assert!(p["Default"].as_i64().unwrap() >= 1, "{parameter}");
        assert_eq!(p["MinValue"], 1, "{parameter}");
    }
    // A burst below the steady rate would throttle a steady load.
    let default = |p: &str| t["Parameters"][p]["Default"].as_i64().unwrap();
    assert!(default("ApiBurstLimit") >= default("ApiRateLimit"));
}
