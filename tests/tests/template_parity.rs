#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The local emulator holds exactly the tables and queues of infra/template.yaml, as the
//! template defines them: local and AWS cannot drift.

use aws_sdk_sqs::types::QueueAttributeName;
use hookline_e2e::{Emulator, template};
use serde_json::Value;

#[tokio::test]
async fn the_emulator_has_the_templates_tables_and_queues() {
    let t = template();
    let emulator = Emulator::start();
    let aws = emulator.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let resources = t["Resources"].as_object().unwrap();
    let of_type = |ty: &str| -> Vec<(String, Value)> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"] == ty)
            .map(|(k, r)| (k.clone(), r["Properties"].clone()))
            .collect()
    };
    let tables = of_type("AWS::DynamoDB::Table");
    let queues = of_type("AWS::SQS::Queue");
    assert_eq!(tables.len(), 4);
    assert_eq!(queues.len(), 2);

    for (logical, props) in &tables {
        let name = emulator.resources[logical]["ref"].as_str().unwrap();
        let table = dynamo
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let table = table.table().unwrap();
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = props["KeySchema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_string(),
                    k["KeyType"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(keys, expected, "{logical} key schema");
        let indexes: Vec<String> = table
            .global_secondary_indexes()
            .iter()
            .map(|g| g.index_name().unwrap().to_string())
            .collect();
        let expected_indexes: Vec<String> = props["GlobalSecondaryIndexes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| g["IndexName"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(indexes, expected_indexes, "{logical} indexes");
        let ttl = dynamo
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let ttl_attribute = ttl
            .time_to_live_description()
            .and_then(|d| d.attribute_name())
            .map(str::to_string);
        assert_eq!(
            ttl_attribute.as_deref(),
            props["TimeToLiveSpecification"]["AttributeName"].as_str(),
            "{logical} TTL"
        );
    }

    for (logical, props) in &queues {
        let url = emulator.resources[logical]["ref"].as_str().unwrap();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        for (template_key, name) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
        ] {
            if let Some(v) = props.get(template_key) {
                assert_eq!(
                    attrs[&name],
                    v.as_i64().unwrap().to_string(),
                    "{logical} {template_key}"
                );
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let local: Value =
                serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
            assert_eq!(
                local["maxReceiveCount"].as_i64(),
                redrive["maxReceiveCount"].as_i64(),
                "{logical}"
            );
            let target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap();
            assert_eq!(
                local["deadLetterTargetArn"], emulator.resources[target]["arn"],
                "{logical} redrive target"
            );
        }
    }

    // The functions' table and queue variables come from the template's own !Refs.
    let globals = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    for (var, value) in globals {
        if let Some(target) = value["Ref"].as_str().filter(|r| resources.contains_key(*r)) {
            if resources[target]["Type"] == "AWS::SecretsManager::Secret" {
                continue;
            }
            assert_eq!(
                emulator.var(var),
                emulator.resources[target]["ref"].as_str().unwrap(),
                "{var}"
            );
        }
    }
}
