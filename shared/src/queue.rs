//! The delivery queue port, its SQS adapter, and an in-memory fake.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// SQS's ceiling on `DelaySeconds`.
pub const MAX_DELAY_SECONDS: i32 = 900;
/// SQS's ceiling on a visibility timeout: 12 hours.
pub const MAX_VISIBILITY_SECONDS: i32 = 43_200;
/// SQS's batch size.
pub const BATCH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable")]
    Unavailable(#[source] BoxError),
}

/// A message to enqueue; `id` is unique within its batch.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub id: String,
    pub body: String,
    pub delay_seconds: i32,
}

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Sends up to [`BATCH`] messages; returns the ids of those SQS did not accept.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<Vec<String>, QueueError>;
    /// Hides a received message for `seconds` more (0 makes it visible now).
    async fn change_visibility(&self, receipt_handle: &str, seconds: i32)
    -> Result<(), QueueError>;
    /// Puts a message on the dead-letter queue with the reason it is there.
    async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        last_error: &str,
    ) -> Result<(), QueueError>;
}

pub struct SqsDeliveryQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsDeliveryQueue {
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> QueueError {
    QueueError::Unavailable(Box::new(e))
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    // SQS rejects empty attribute values.
    let value = if value.is_empty() { "-" } else { value };
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(unavailable)
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<Vec<String>, QueueError> {
        let entries = messages
            .iter()
            .map(|m| {
                SendMessageBatchRequestEntry::builder()
                    .id(&m.id)
                    .message_body(&m.body)
                    .delay_seconds(m.delay_seconds.clamp(0, MAX_DELAY_SECONDS))
                    .build()
                    .map_err(unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.failed().iter().map(|f| f.id().to_string()).collect())
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds.clamp(0, MAX_VISIBILITY_SECONDS))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        last_error: &str,
    ) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .message_attributes("hookline_reason", string_attribute(reason)?)
            .message_attributes("hookline_last_error", string_attribute(last_error)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// What an [`InMemoryDeliveryQueue`] saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub sent: Vec<OutgoingMessage>,
    pub visibility: Vec<(String, i32)>,
    pub dead_letters: Vec<(String, String, String)>,
}

/// A fake queue that records what it is asked, and can be told to fail.
#[derive(Default)]
pub struct InMemoryDeliveryQueue {
    recorded: Mutex<Recorded>,
    requests: AtomicUsize,
    /// The next this-many entries are rejected (as SQS's partial batch failures).
    pub reject_entries: AtomicUsize,
    /// After this many successful batch calls every call fails (a crash stand-in); 0 = never.
    pub fail_after_batches: AtomicUsize,
}

impl InMemoryDeliveryQueue {
    pub fn recorded(&self) -> Recorded {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Requests made to the queue so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn poisoned<T>(_: T) -> QueueError {
    QueueError::Unavailable("an in-memory queue's lock was poisoned".into())
}

#[async_trait]
impl DeliveryQueue for InMemoryDeliveryQueue {
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<Vec<String>, QueueError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let limit = self.fail_after_batches.load(Ordering::SeqCst);
        if limit > 0 && n >= limit {
            return Err(QueueError::Unavailable("the queue went away".into()));
        }
        let mut recorded = self.recorded.lock().map_err(poisoned)?;
        let mut failed = Vec::new();
        for m in messages {
            let reject = self
                .reject_entries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                .is_ok();
            if reject {
                failed.push(m.id.clone());
            } else {
                recorded.sent.push(m.clone());
            }
        }
        Ok(failed)
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> Result<(), QueueError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.recorded
            .lock()
            .map_err(poisoned)?
            .visibility
            .push((receipt_handle.to_string(), seconds));
        Ok(())
    }

    async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        last_error: &str,
    ) -> Result<(), QueueError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.recorded.lock().map_err(poisoned)?.dead_letters.push((
            body.to_string(),
            reason.to_string(),
            last_error.to_string(),
        ));
        Ok(())
    }
}
