//! Lambda entrypoint of the registration API.

use std::sync::Arc;

use hookline_core::Config;
use hookline_core::api::Authenticator;
use hookline_core::sender::Sender;
use hookline_core::store::dynamo::{DynamoApiKeyStore, DynamoAttemptLog, DynamoWebhookStore};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let r = &config.resources;
    let keys = Arc::new(DynamoApiKeyStore::new(dynamo.clone(), &r.api_keys_table));
    let state = register::AppState {
        webhooks: Arc::new(DynamoWebhookStore::new(dynamo.clone(), &r.webhooks_table)),
        keys: keys.clone(),
        attempts: Arc::new(DynamoAttemptLog::new(dynamo, &r.attempts_table)),
        auth: Authenticator::new(config.admin_key(&aws).await?, keys),
        sender: Sender::new(config.targets)?,
    };
    lambda_http::run(register::router(state)).await
}
