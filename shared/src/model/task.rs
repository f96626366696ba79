use serde::{Deserialize, Serialize};

use super::Event;
use crate::clock::{self, Millis};

/// The version of [`DeliveryTask`] this code writes and reads.
pub const TASK_VERSION: u32 = 1;

/// What travels on the delivery queue: one delivery of one event to one webhook.
///
/// Small on purpose: the webhook is loaded by id (its current settings apply), and the
/// event travels inline unless it is too large, in which case only `event_id` does and the
/// delivery function reads the stored event.
///
/// `E` is how the event is held: an [`Event`], or at fan-out the event's JSON serialised
/// once for all of its deliveries (the message is the same either way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "E: Deserialize<'de>"))]
pub struct DeliveryTask<E = Event> {
    pub v: u32,
    /// The `webhook-id` header of every attempt of this delivery (`msg_…`).
    pub delivery_id: String,
    pub project_id: String,
    pub webhook_id: String,
    pub event_id: String,
    /// The event itself, or `None` when it is stored apart because of its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<E>,
    /// When the delivery became due: its first attempt. The 24-hour window counts from here.
    pub first_attempt_at: Millis,
    /// A scheduled delivery further ahead than SQS can delay a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<Millis>,
    /// A delivery of an operational event (`delivery.*`), which never emits another.
    #[serde(default)]
    pub operational: bool,
    /// Attempts this delivery had before this message (a resend or a recovery carries
    /// them, so its attempts go on being numbered where they were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before: u32,
    /// Not to be sent: logged `skipped` with this reason (a filter that failed to
    /// evaluate at fan-out). It travels through the queue so that the fan-out's outbox
    /// covers it as it covers every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// The webhook's version when this message was made (0: not known). A delivery
    /// function whose cached copy is older reads the webhook again, so a delivery made
    /// after a change (re-enabled, a new URL or template) never runs on what was before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub webhook_version: u64,
}

fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// Where a delivery stands: its latest attempt's status, or `pending` before one (a
/// scheduled delivery held for its time, a resend not yet attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Delivered,
    Failed,
    DeadLettered,
    Skipped,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::DeadLettered,
        DeliveryStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::DeadLettered => "dead_lettered",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl From<AttemptStatus> for DeliveryStatus {
    fn from(status: AttemptStatus) -> DeliveryStatus {
        match status {
            AttemptStatus::Delivered => DeliveryStatus::Delivered,
            AttemptStatus::Failed => DeliveryStatus::Failed,
            AttemptStatus::Retrying => DeliveryStatus::Retrying,
            AttemptStatus::DeadLettered => DeliveryStatus::DeadLettered,
            AttemptStatus::Skipped => DeliveryStatus::Skipped,
        }
    }
}

/// One delivery of one event to one webhook, as the attempt log keeps it: where it
/// stands, and its attempts (oldest first). `id` is its `webhook-id` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub project_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts that sent (or tried to send) a request: skipped ones do not count.
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "clock::rfc3339::option")]
    pub next_attempt_at: Option<Millis>,
    #[serde(with = "clock::rfc3339")]
    pub created_at: Millis,
    #[serde(with = "clock::rfc3339")]
    pub updated_at: Millis,
    /// Every attempt, oldest first (not shown in the deliveries listing).
    #[serde(skip_serializing, default)]
    pub history: Vec<Attempt>,
}

impl Delivery {
    /// A delivery before its first attempt.
    pub fn pending(task: &DeliveryTask, event_type: &str, now: Millis) -> Delivery {
        Delivery {
            id: task.delivery_id.clone(),
            project_id: task.project_id.clone(),
            webhook_id: task.webhook_id.clone(),
            event_id: task.event_id.clone(),
            event_type: event_type.to_string(),
            status: DeliveryStatus::Pending,
            attempts: task.attempts_before,
            last_status_code: None,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
            history: Vec::new(),
        }
    }

    /// The delivery with one more attempt: what the attempt log stores after it.
    pub fn with(mut self, attempt: &Attempt) -> Delivery {
        self.status = attempt.status.into();
        if attempt.status != AttemptStatus::Skipped {
            self.attempts += 1;
        }
        if !attempt.event_type.is_empty() {
            self.event_type = attempt.event_type.clone();
        }
        self.last_status_code = attempt.status_code;
        self.last_error = attempt.error.clone();
        self.next_attempt_at = attempt.next_attempt_at;
        self.updated_at = attempt.created_at;
        self.history.push(attempt.clone());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Delivered,
    Failed,
    Retrying,
    DeadLettered,
    Skipped,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Delivered => "delivered",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Retrying => "retrying",
            AttemptStatus::DeadLettered => "dead_lettered",
            AttemptStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        [
            AttemptStatus::Delivered,
            AttemptStatus::Failed,
            AttemptStatus::Retrying,
            AttemptStatus::DeadLettered,
            AttemptStatus::Skipped,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the delivery is over after an attempt with this status.
    pub fn is_final(self) -> bool {
        !matches!(self, AttemptStatus::Retrying)
    }
}

/// One attempt of one delivery, as the attempt log keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    // What its delivery says too: the attempt log keeps them once per delivery, not in
    // each attempt ([`crate::store::dynamo`]), and fills them in when it reads one.
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub event_id: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub webhook_id: String,
    #[serde(default)]
    pub delivery_id: String,
    /// Numbered from 1.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    #[serde(with = "clock::rfc3339::option")]
    pub next_attempt_at: Option<Millis>,
    #[serde(with = "clock::rfc3339")]
    pub created_at: Millis,
}
