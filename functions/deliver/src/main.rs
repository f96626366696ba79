//! Lambda entrypoint of the delivery function (SQS event source, ReportBatchItemFailures).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use hookline_core::Config;
use hookline_core::queue::SqsDeliveryQueue;
use hookline_core::sender::Sender;
use hookline_core::store::dynamo::{DynamoAttemptLog, DynamoEventStore, DynamoWebhookStore};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let r = &config.resources;
    let deliverer = deliver::Deliverer::new(
        Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table)),
        Arc::new(DynamoEventStore::new(dynamo.clone(), &r.events_table)),
        Arc::new(DynamoAttemptLog::new(dynamo, &r.attempts_table)),
        Arc::new(SqsDeliveryQueue::new(
            sqs,
            &r.delivery_queue_url,
            &r.dead_letter_queue_url,
        )),
        Sender::new(config.targets)?,
        config.retry,
        config.attempt_retention,
    );
    let deliverer = &deliverer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(deliverer.handle(event.payload).await)
    }))
    .await
}
