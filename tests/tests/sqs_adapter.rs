#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! The SQS delivery-queue adapter against the emulator's queues from infra/template.yaml.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use hookline_core::queue::{DeliveryQueue, OutgoingMessage, SqsDeliveryQueue};
use hookline_e2e::Emulator;

#[tokio::test]
async fn batches_visibility_and_dead_letters_work_against_the_emulator() {
    let emulator = Emulator::start();
    let sqs = aws_sdk_sqs::Client::new(&emulator.sdk_config().await);
    let queue_url = emulator.var("HOOKLINE_DELIVERY_QUEUE_URL").to_string();
    let dlq_url = emulator.var("HOOKLINE_DEAD_LETTER_QUEUE_URL").to_string();
    let queue = SqsDeliveryQueue::new(sqs.clone(), &queue_url, &dlq_url);

    let messages: Vec<OutgoingMessage> = (0..10)
        .map(|i| OutgoingMessage {
            id: format!("m{i}"),
            body: format!("{{\"n\":{i}}}"),
            delay_seconds: 0,
        })
        .collect();
    assert_eq!(
        queue.send_batch(&messages).await.unwrap(),
        Vec::<String>::new()
    );

    let mut received = Vec::new();
    while received.len() < 10 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        received.extend(out.messages().iter().cloned());
    }
    // Hide one for a long time; make another visible at once: only that one comes back.
    let hidden = received[0].receipt_handle().unwrap();
    let shown = received[1].receipt_handle().unwrap();
    queue.change_visibility(hidden, 3_600).await.unwrap();
    queue.change_visibility(shown, 0).await.unwrap();
    let again = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    assert_eq!(again.messages().len(), 1);
    assert_eq!(again.messages()[0].body(), received[1].body());
    let count = again.messages()[0]
        .attributes()
        .unwrap()
        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
        .unwrap();
    assert_eq!(count, "2");

    queue
        .dead_letter(r#"{"n":99}"#, "exhausted", "HTTP 500")
        .await
        .unwrap();
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message = &dead.messages()[0];
    assert_eq!(message.body(), Some(r#"{"n":99}"#));
    let attrs = message.message_attributes().unwrap();
    assert_eq!(attrs["hookline_reason"].string_value(), Some("exhausted"));
    assert_eq!(
        attrs["hookline_last_error"].string_value(),
        Some("HTTP 500")
    );
}
