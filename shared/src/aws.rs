//! The AWS clients every function builds once, each with the bounded waits its function
//! chose ([`Waits`], stated in the config): no call to DynamoDB, SQS or Secrets Manager
//! can hang a request or a batch, whether the service is down (refused at once) or
//! stalled (accepted, never answered).

use aws_config::SdkConfig;

use crate::config::Waits;

pub fn dynamo(sdk: &SdkConfig, waits: Waits) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(waits.timeouts())
        .retry_config(waits.retries())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

pub fn sqs(sdk: &SdkConfig, waits: Waits) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(waits.timeouts())
        .retry_config(waits.retries())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

pub fn secrets(sdk: &SdkConfig, waits: Waits) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(waits.timeouts())
        .retry_config(waits.retries())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}
