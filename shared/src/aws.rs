//! The AWS clients every function builds once, each with the bounded waits its function
//! chose ([`Waits`], stated in the config): no call to DynamoDB, SQS or Secrets Manager
//! can hang a request or a batch, whether the service is down (refused at once) or
//! stalled (accepted, never answered).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedAsyncSleep, SharedCredentialsProvider};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;

use crate::config::Waits;

/// The SDK's configuration as every function builds it at start, from the variables
/// Lambda sets: `AWS_REGION` (or `AWS_DEFAULT_REGION`), the execution role's
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and the standard
/// `AWS_ENDPOINT_URL` (the emulator, locally), with Hookline's HTTPS client
/// ([`crate::aws_http`]).
///
/// Not `aws_config::load_defaults`: its chains (profile files, SSO, web identity, IMDS,
/// ECS, STS) are for machines that are not a Lambda; on a Lambda they only cost start
/// time and about a megabyte of code (`make bench-coldstart`).
pub async fn load() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => None,
    };
    config(
        var("AWS_ENDPOINT_URL"),
        var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
        credentials,
    )
}

/// An SDK configuration with these parts (the tests' emulator endpoint and dummy keys).
pub fn config(
    endpoint_url: Option<String>,
    region: Option<String>,
    credentials: Option<Credentials>,
) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(crate::aws_http::client())
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SystemTimeSource::new());
    builder.set_endpoint_url(endpoint_url);
    builder.set_region(region.map(Region::new));
    builder.set_credentials_provider(credentials.map(SharedCredentialsProvider::new));
    builder.build()
}

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
