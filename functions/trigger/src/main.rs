//! Lambda entrypoint of the event-intake API.

use std::sync::Arc;

use hookline_core::Config;
use hookline_core::api::Authenticator;
use hookline_core::fanout::FanOut;
use hookline_core::queue::SqsDeliveryQueue;
use hookline_core::store::dynamo::{
    DynamoApiKeyStore, DynamoAttemptLog, DynamoEventStore, DynamoWebhookStore,
};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let r = &config.resources;
    let state = trigger::AppState {
        fanout: FanOut {
            webhooks: Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table)),
            events: Arc::new(DynamoEventStore::new(dynamo.clone(), &r.events_table)),
            queue: Arc::new(SqsDeliveryQueue::new(
                sqs,
                &r.delivery_queue_url,
                &r.dead_letter_queue_url,
            )),
            retention: config.attempt_retention,
        },
        attempts: Arc::new(DynamoAttemptLog::new(dynamo.clone(), &r.attempts_table)),
        auth: Authenticator::new(
            config.admin_key(&aws).await?,
            Arc::new(DynamoApiKeyStore::new(dynamo, &r.api_keys_table)),
        ),
    };
    lambda_http::run(trigger::router(state)).await
}
