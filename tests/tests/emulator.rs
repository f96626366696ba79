#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The emulator keeps DynamoDB's promise that each request to an item is applied whole
//! (infra/local/emulator.py mends moto, which updates items in place on a thread per
//! request). The fan-out's leases, the attempt log's appends and the health counters
//! all rely on it, in the tests as on AWS.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use hookline_e2e::Emulator;

async fn table(emulator: &Emulator) -> aws_sdk_dynamodb::Client {
    let dynamo = aws_sdk_dynamodb::Client::new(&emulator.sdk_config().await);
    dynamo
        .create_table()
        .table_name("concurrency")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("k")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("k")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    dynamo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_item_are_all_applied() {
    let emulator = Emulator::start();
    let dynamo = table(&emulator).await;
    let writers = (0..8).map(|w| {
        let dynamo = dynamo.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                dynamo
                    .update_item()
                    .table_name("concurrency")
                    .key("k", AttributeValue::S("one".into()))
                    .update_expression(
                        "ADD n :one SET history = list_append(if_not_exists(history, :none), :entry)",
                    )
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":none", AttributeValue::L(vec![]))
                    .expression_attribute_values(
                        ":entry",
                        AttributeValue::L(vec![AttributeValue::S(format!("{w}-{i} {}", "x".repeat(300)))]),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let item = dynamo
        .get_item()
        .table_name("concurrency")
        .key("k", AttributeValue::S("one".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["n"].as_n().unwrap(), "200");
    assert_eq!(item["history"].as_l().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_conditional_creates_exactly_one_wins() {
    let emulator = Emulator::start();
    let dynamo = table(&emulator).await;
    for round in 0..20 {
        let key = format!("lease-{round}");
        let tries = (0..8).map(|w| {
            let dynamo = dynamo.clone();
            let key = key.clone();
            tokio::spawn(async move {
                dynamo
                    .put_item()
                    .table_name("concurrency")
                    .item("k", AttributeValue::S(key))
                    .item("holder", AttributeValue::N(w.to_string()))
                    .condition_expression("attribute_not_exists(k)")
                    .send()
                    .await
                    .is_ok()
            })
        });
        let mut won = 0;
        for attempt in tries.collect::<Vec<_>>() {
            won += usize::from(attempt.await.unwrap());
        }
        assert_eq!(won, 1, "{key}: {won} creates passed the condition");
    }
}
