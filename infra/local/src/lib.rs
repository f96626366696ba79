//! Hookline on one machine, without AWS and without Docker: the routers the API Lambdas
//! serve, on a socket, routed as API Gateway routes them (infra/template.yaml), and the
//! SQS event source mapping emulated for the delivery handler — long-poll the queue,
//! invoke the handler with a real `SqsEvent`, delete exactly what it did not report as
//! failed, and leave the rest to their visibility timeout.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use axum::Router;
use futures_util::FutureExt;
use tokio::sync::watch;

pub mod http;

/// The event source's settings (the template's parameters of the same names).
#[derive(Debug, Clone, Copy)]
pub struct EventSource {
    /// Messages per invocation (DeliveryBatchSize).
    pub batch_size: i32,
    /// How long to wait for a fuller batch (DeliveryBatchingWindowSeconds).
    pub batching_window: Duration,
    /// Invocations at once (DeliveryMaxConcurrency).
    pub concurrency: usize,
}

impl Default for EventSource {
    fn default() -> Self {
        EventSource {
            batch_size: 10,
            batching_window: Duration::ZERO,
            concurrency: 4,
        }
    }
}

/// One router for both API functions: the trigger function's routes go to its router,
/// everything else to the registration router — as the HTTP API routes them.
pub fn api(register: Router, trigger: Router) -> Router {
    // axum nests routers only under a prefix, so the trigger's routes forward the request
    // to its router as API Gateway would hand it over: without this router's path
    // parameters (kept in the extensions), which the inner router would see twice.
    let to_trigger = move |request: axum::extract::Request| {
        let trigger = trigger.clone();
        let (mut parts, body) = request.into_parts();
        parts.extensions = axum::http::Extensions::new();
        let request = axum::extract::Request::from_parts(parts, body);
        async move { tower::ServiceExt::oneshot(trigger, request).await }
    };
    Router::new()
        .route(
            "/v1/projects/{project}/events",
            axum::routing::any(to_trigger.clone()),
        )
        .route(
            "/v1/projects/{project}/events/{id}",
            axum::routing::any(to_trigger.clone()),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}/recover",
            axum::routing::any(to_trigger.clone()),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}/deliveries",
            axum::routing::any(to_trigger.clone()),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}/deliveries/{delivery_id}/resend",
            axum::routing::any(to_trigger),
        )
        .fallback_service(register)
}

/// The SqsEvent Lambda would hand the function for these messages.
pub fn sqs_event(
    messages: &[Message],
    queue_arn: &str,
    region: &str,
) -> Result<SqsEvent, serde_json::Error> {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), serde_json::Value::String(v.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records }))
}

/// Polls the queue and invokes the handler until `stop` turns true; a batch in hand is
/// finished first.
pub async fn poll(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    deliverer: Arc<deliver::Deliverer>,
    source: EventSource,
    mut stop: watch::Receiver<bool>,
) {
    let queue_arn = match sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
    {
        Ok(out) => out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "cannot read the delivery queue");
            String::new()
        }
    };
    let wait = source.batching_window.as_secs().clamp(1, 20) as i32;
    while !*stop.borrow() {
        let received = tokio::select! {
            _ = stop.changed() => break,
            r = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(source.batch_size.clamp(1, 10))
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send() => r,
        };
        let messages = match received {
            Ok(out) => out.messages().to_vec(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = match sqs_event(&messages, &queue_arn, "us-east-1") {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "could not build an SqsEvent");
                continue;
            }
        };
        // The handler contains a panic to the message that caused it; this keeps a bug
        // in the batch bookkeeping from ending the poller (the batch comes back after
        // its visibility timeout).
        let response = match AssertUnwindSafe(deliverer.handle(event))
            .catch_unwind()
            .await
        {
            Ok(response) => response,
            Err(panic) => {
                let what = hookline_core::error::panic_message(&*panic);
                tracing::error!(panic = %what, "the delivery handler panicked");
                continue;
            }
        };
        delete_delivered(&sqs, &queue_url, &messages, &response).await;
    }
}

/// What the event source mapping does after an invocation: deletes the messages the
/// handler did not report as failed (those come back after their visibility timeout).
pub async fn delete_delivered(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
    response: &aws_lambda_events::event::sqs::SqsBatchResponse,
) {
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.message_id().is_some_and(|id| !failed.contains(id)))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .set_receipt_handle(m.receipt_handle().map(str::to_string))
                .build()
                .ok()
        })
        .collect();
    if !done.is_empty()
        && let Err(e) = sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(done))
            .send()
            .await
    {
        // Undeleted messages come back and are delivered again, with the same webhook-id.
        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed");
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
