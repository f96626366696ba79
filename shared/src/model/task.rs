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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryTask {
    pub v: u32,
    /// The `webhook-id` header of every attempt of this delivery (`msg_…`).
    pub delivery_id: String,
    pub project_id: String,
    pub webhook_id: String,
    pub event_id: String,
    /// The event itself, or `None` when it is stored apart because of its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// When the delivery became due: its first attempt. The 24-hour window counts from here.
    pub first_attempt_at: Millis,
    /// A scheduled delivery further ahead than SQS can delay a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<Millis>,
    /// A delivery of an operational event (`delivery.*`), which never emits another.
    #[serde(default)]
    pub operational: bool,
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
    pub project_id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
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
