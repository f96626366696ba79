//! Ports: what the functions need from storage, named for the capability. Adapters:
//! [`dynamo`] for DynamoDB (AWS and the local emulator alike), [`memory`] for tests.
//!
//! Table keys (the SAM template declares the same):
//!
//! | table | partition key | sort key | other |
//! |---|---|---|---|
//! | webhooks | `project_id` | `webhook_id` | `doc` (the webhook as JSON), `version`, `enabled`, `events` (string set) |
//! | api keys | `key_id` | — | `project_id`, `key_hash` (SHA-256 hex; the key itself is never stored) |
//! | attempts | `webhook_key` = `project#webhook` | `attempt_key` = `created_at#attempt_id` | GSI `by_event` on `event_key` = `project#event`; `expires_at` (TTL) |

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::clock::Millis;
use crate::health::{HealthRecord, Update};
use crate::model::{Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Webhook};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write failed: the item changed (or vanished) since it was read.
    #[error("the item changed since it was read")]
    Conflict,
    /// A create found the item already there.
    #[error("the item already exists")]
    AlreadyExists,
    /// A create would pass a limit on how many such items there may be.
    #[error("the limit on such items is reached")]
    LimitReached,
    /// An item that does not decode: a bug or a manual edit, never the caller's fault.
    #[error("a stored item does not decode: {0}")]
    Corrupt(String),
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
}

/// One page of a listing; `next` is the key to continue after.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// This page, or, when it has no next page of its own, one that goes on `after` a
    /// listing stopped short (a page of fewer items than asked, maybe none).
    pub fn or_after(mut self, after: Option<String>) -> Page<T> {
        if self.next.is_none() {
            self.next = after;
        }
        self
    }

    /// A page from up to `limit + 1` items read in order: the extra item only says there
    /// is more, and the cursor is the key of the last item kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }

    /// The same page with its items transformed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// The most webhooks one project may hold. One event's fan-out lists every webhook it
/// matched in the event's record, a DynamoDB item of at most 400 KB that also holds the
/// event (up to 256 KiB, deflated): 1,000 deliveries take about 50 KB of it, where
/// 8,000 would pass it with even a small event, and the event could then not be accepted
/// at all. A project is one customer; a customer with a thousand endpoints is past what
/// any webhook sender is for.
pub const MAX_WEBHOOKS_PER_PROJECT: u32 = 1000;

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new webhook; `AlreadyExists` if the id is taken, `LimitReached` if its
    /// project already holds [`MAX_WEBHOOKS_PER_PROJECT`].
    async fn create(&self, webhook: &Webhook) -> Result<(), StoreError>;
    async fn get(&self, project: &str, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// A project's webhooks in id (= creation) order, after `after`.
    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>, StoreError>;
    /// Replaces a webhook if its stored version is still `expected_version`, else `Conflict`.
    async fn update(&self, webhook: &Webhook, expected_version: u64) -> Result<(), StoreError>;
    /// Deletes; `false` if there was nothing to delete.
    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError>;
    /// The project's enabled webhooks an event of this type and channel may be for: at
    /// least those [`crate::model::WebhookSpec::matches`] says (the store may return
    /// more; the fan-out asks `matches` of each). One query, paged, however many.
    async fn subscribers(
        &self,
        project: &str,
        event_type: &str,
        channel: Option<&str>,
        operational: bool,
    ) -> Result<Vec<Webhook>, StoreError>;
}

/// A project API key or a portal token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub project_id: String,
    pub key_hash: String,
    pub created_at: Millis,
    /// A customer portal token's terms (SPEC §11); `None` for a project key.
    pub portal: Option<PortalTerms>,
    /// What its creator called it (`ci`, `billing backend`, `Acme's portal`), if anything.
    pub name: Option<String>,
}

/// What a portal token (`hlp_…`) may do, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalTerms {
    /// Only reads and previews.
    pub read_only: bool,
    /// When it stops working (whole seconds; the table's TTL then removes it).
    pub expires_at: Millis,
}

impl ApiKeyRecord {
    /// Whether it no longer works at `now`: a portal token past its time.
    pub fn expired(&self, now: Millis) -> bool {
        self.portal.is_some_and(|p| now >= p.expires_at)
    }
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// A project's keys and unexpired portal tokens, oldest first, `limit` at a time
    /// after the id `after`.
    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<ApiKeyRecord>, StoreError>;
    /// Deletes the key if it belongs to `project`; `false` otherwise.
    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError>;
}

/// The attempt log: one record per delivery (its `webhook-id`), holding where it stands
/// and every attempt of it. One write per attempt, no index: an event's deliveries are
/// found by the keys its record lists.
#[async_trait]
pub trait AttemptLog: Send + Sync {
    /// Records an attempt of its delivery; the record is kept until `expires_at`.
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError>;
    /// Marks a delivery pending (a scheduled delivery held for its time, due at its
    /// `next_attempt_at`), creating its record if there is none; its attempts stay.
    async fn pending(&self, delivery: &Delivery, expires_at: Millis) -> Result<(), StoreError>;
    /// Marks a delivery pending for a resend, due `now`, if its record still says what
    /// `seen` read (its status and `updated_at`), keeping it until `expires_at`: `false` when an
    /// attempt or another resend changed it in between, so that what was seen is sent
    /// again once, however many resends of it race.
    async fn reopen(
        &self,
        seen: &Delivery,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError>;
    /// Puts a delivery `reopen`ed at `reopened_at` back as `seen` was, if nothing has
    /// changed it since: its resend could not be queued.
    async fn restore(&self, seen: &Delivery, reopened_at: Millis) -> Result<(), StoreError>;
    /// A webhook's attempts, newest delivery first and its newest attempt first,
    /// optionally of one status, after a cursor key. A page may hold fewer than `limit`,
    /// even none, with a cursor to go on (a filtered listing reads a bounded number of
    /// pages per call).
    async fn for_webhook(
        &self,
        project: &str,
        webhook_id: &str,
        status: Option<AttemptStatus>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<Attempt>, StoreError>;
    /// A webhook's deliveries, newest first, optionally of one status, after a cursor
    /// key (a delivery id). Short pages as for [`AttemptLog::for_webhook`].
    async fn deliveries(
        &self,
        project: &str,
        webhook_id: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<Delivery>, StoreError>;
    /// The deliveries of these (webhook id, delivery id) keys that have a record.
    async fn get_deliveries(
        &self,
        project: &str,
        keys: &[(String, String)],
        now: Millis,
    ) -> Result<Vec<Delivery>, StoreError>;
}

/// Per-webhook health (see [`crate::health`]): written by the delivery function once
/// per batch and webhook, without reading it first.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Applies a batch's update at `now` and answers the record as it then is.
    async fn record(
        &self,
        project: &str,
        webhook_id: &str,
        update: &Update,
        now: Millis,
        expires_at: Millis,
    ) -> Result<HealthRecord, StoreError>;
    /// The records of these webhooks (absent ones: no attempt yet).
    async fn get(
        &self,
        project: &str,
        webhook_ids: &[String],
    ) -> Result<HashMap<String, HealthRecord>, StoreError>;
    /// Forgets `failing_since` (a webhook enabled again starts afresh).
    async fn clear_failing(&self, project: &str, webhook_id: &str) -> Result<(), StoreError>;
}

/// An accepted event and its fan-out: which webhooks it goes to (each with the delivery
/// id its attempts will carry), which of those are on the queue, and who is working on it.
///
/// States: created with every matched delivery listed and a lease (`enqueued` empty,
/// `complete` false) → deliveries added to `enqueued` as their messages are accepted by
/// SQS → `complete`. Whoever finds it incomplete with an expired lease — a POST of the
/// same event id, or the sweep — takes the lease and sends only what is not yet enqueued.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventRecord {
    pub project_id: String,
    pub event: Event,
    /// webhook id → delivery id (`msg_…`, the `webhook-id` header of its attempts).
    pub deliveries: BTreeMap<String, String>,
    /// Deliveries not to be sent, with why (a filter that failed to evaluate): their
    /// tasks carry it, and the delivery function logs them `skipped`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, String>,
    #[serde(default)]
    pub enqueued: BTreeSet<String>,
    #[serde(default)]
    pub complete: bool,
    pub lease_until: Millis,
    pub created_at: Millis,
    /// An operational event (`delivery.*`), whose deliveries never emit more.
    #[serde(default)]
    pub operational: bool,
    /// When the record may be removed (TTL).
    pub expires_at: Millis,
}

/// An event as the events listing shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub channel: Option<String>,
    #[serde(with = "crate::clock::rfc3339")]
    pub timestamp: Millis,
    /// Webhooks it matched.
    pub matched: usize,
}

impl EventRecord {
    pub fn summary(&self) -> EventSummary {
        EventSummary {
            id: self.event.id.clone(),
            event_type: self.event.event_type.clone(),
            channel: self.event.channel.clone(),
            timestamp: self.event.timestamp,
            matched: self.deliveries.len(),
        }
    }

    /// Its key in the events listing: newest last in key order.
    pub fn listed_key(&self) -> String {
        format!("{:013}#{}", self.created_at.max(0), self.event.id)
    }
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a new event record; `false` if one with the same id exists (a duplicate).
    async fn create(&self, record: &EventRecord) -> Result<bool, StoreError>;
    async fn get(&self, project: &str, event_id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// Takes the fan-out lease of an incomplete record whose lease has run out.
    async fn take_lease(
        &self,
        project: &str,
        event_id: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError>;
    /// Adds `webhook_ids` to the enqueued set; `complete` when nothing is left to send
    /// (a complete record reads back with every delivery enqueued, however the store
    /// keeps it). An incomplete fan-out gives its lease up (`now`), so a retry or the
    /// sweep can finish it at once.
    async fn mark_enqueued(
        &self,
        project: &str,
        event_id: &str,
        webhook_ids: &[String],
        complete: bool,
        now: Millis,
    ) -> Result<(), StoreError>;
    /// A project's events, newest first, optionally of one type, after a cursor key.
    async fn list(
        &self,
        project: &str,
        event_type: Option<&str>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<EventSummary>, StoreError>;
    /// Up to `limit` incomplete fan-outs whose lease ran out before `now`, as
    /// (project, event id): what a crash abandoned, for the sweep to finish.
    async fn abandoned(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// An attempts-listing cursor key: the delivery, and how many of its attempts (oldest
/// first) are still to come — stable however many attempts it gets meanwhile.
pub fn attempt_cursor(delivery_id: &str, remaining: usize) -> String {
    format!("{delivery_id}#{remaining}")
}

/// The parts of [`attempt_cursor`].
pub fn parse_attempt_cursor(key: &str) -> Option<(&str, usize)> {
    let (delivery, remaining) = key.rsplit_once('#')?;
    Some((delivery, remaining.parse().ok()?))
}

/// A delivery's attempts newest first, each with its position (oldest first), after an
/// attempts cursor and of one status: the one way both adapters page attempts.
pub fn attempts_of<'d>(
    delivery: &'d Delivery,
    status: Option<AttemptStatus>,
    after: Option<&str>,
) -> impl Iterator<Item = (usize, &'d Attempt)> + 'd {
    let remaining = after
        .and_then(parse_attempt_cursor)
        .filter(|(id, _)| *id == delivery.id)
        .map_or(delivery.history.len(), |(_, n)| {
            n.min(delivery.history.len())
        });
    delivery.history[..remaining]
        .iter()
        .enumerate()
        .rev()
        .filter(move |(_, a)| status.is_none_or(|s| a.status == s))
}

/// An opaque pagination cursor bound to one project and one listing.
pub fn encode_cursor(project: &str, scope: &str, key: &str) -> String {
    let raw = serde_json::json!({"p": project, "s": scope, "k": key}).to_string();
    URL_SAFE_NO_PAD.encode(raw)
}

/// The longest key a cursor may carry: an event's listing key (13 digits, `#`, an event
/// id of up to 256) is the longest issued; DynamoDB refuses a sort key over 1,024 bytes.
const CURSOR_KEY_MAX: usize = 300;

/// The key inside a cursor, if it was issued for this project and listing. A cursor is
/// opaque but not signed: one edited by hand still pages only this project's listing, and
/// a key no cursor could hold (empty, too long, outside the ids' alphabet) is refused
/// here rather than sent to the store, which would refuse it as a bad request.
pub fn decode_cursor(cursor: &str, project: &str, scope: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let key = v["k"].as_str()?;
    let plausible = (1..=CURSOR_KEY_MAX).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:#~-".contains(&b));
    (v["p"] == project && v["s"] == scope && plausible).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bound_to_their_project_and_listing() {
        let c = encode_cursor("acme", "webhooks", "wh_1");
        assert_eq!(
            decode_cursor(&c, "acme", "webhooks").as_deref(),
            Some("wh_1")
        );
        assert_eq!(decode_cursor(&c, "other", "webhooks"), None);
        assert_eq!(decode_cursor(&c, "acme", "attempts:wh_1"), None);
        assert_eq!(decode_cursor("garbage!", "acme", "webhooks"), None);
    }

    #[test]
    fn a_cursor_edited_to_hold_a_key_no_listing_issues_is_refused() {
        let edited = |k: &str| encode_cursor("acme", "events", k);
        let longest = format!("{:013}#{}", i64::MAX, "e".repeat(256));
        assert!(decode_cursor(&edited(&longest), "acme", "events").is_some());
        for k in [
            "",
            "a b",
            "wh_1\u{0}",
            "x\"y",
            &"a".repeat(CURSOR_KEY_MAX + 1),
        ] {
            assert_eq!(decode_cursor(&edited(k), "acme", "events"), None, "{k:?}");
        }
        let not_text = URL_SAFE_NO_PAD.encode(r#"{"p":"acme","s":"events","k":7}"#);
        assert_eq!(decode_cursor(&not_text, "acme", "events"), None);
    }
}
