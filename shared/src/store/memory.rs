//! In-memory adapters for unit tests: the same contracts as DynamoDB, conditions included.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ApiKeyRecord, ApiKeyStore, AttemptLog, EventRecord, EventStore, HealthStore, Page, StoreError,
    WebhookStore,
};
use crate::clock::Millis;
use crate::health::{HealthRecord, Update};
use crate::model::{Attempt, AttemptStatus, Delivery, Webhook};

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("an in-memory store's lock was poisoned".into())
}

#[derive(Default)]
pub struct InMemoryWebhookStore {
    items: Mutex<BTreeMap<(String, String), Webhook>>,
}

#[async_trait]
impl WebhookStore for InMemoryWebhookStore {
    async fn create(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = (webhook.project_id.clone(), webhook.id.clone());
        if items.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        let held = items
            .keys()
            .filter(|(p, _)| *p == webhook.project_id)
            .count();
        if held >= super::MAX_WEBHOOKS_PER_PROJECT as usize {
            return Err(StoreError::LimitReached);
        }
        items.insert(key, webhook.clone());
        Ok(())
    }

    async fn get(&self, project: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items.get(&(project.to_string(), id.to_string())).cloned())
    }

    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        let all: Vec<Webhook> = items
            .iter()
            .filter(|((p, id), _)| p == project && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, w)| w)
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(all, limit, |w| w.id.clone()))
    }

    async fn update(&self, webhook: &Webhook, expected_version: u64) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = (webhook.project_id.clone(), webhook.id.clone());
        match items.get(&key) {
            Some(current) if current.version == expected_version => {
                items.insert(key, webhook.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .remove(&(project.to_string(), id.to_string()))
            .is_some())
    }

    async fn subscribers(
        &self,
        project: &str,
        event_type: &str,
        channel: Option<&str>,
        operational: bool,
    ) -> Result<Vec<Webhook>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .iter()
            .filter(|((p, _), w)| {
                p == project && w.spec.enabled && w.spec.matches(event_type, channel, operational)
            })
            .map(|(_, w)| w.clone())
            .collect())
    }
}

#[derive(Default)]
pub struct InMemoryApiKeyStore {
    items: Mutex<BTreeMap<String, ApiKeyRecord>>,
}

#[async_trait]
impl ApiKeyStore for InMemoryApiKeyStore {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        if items.contains_key(&key.id) {
            return Err(StoreError::AlreadyExists);
        }
        items.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.items.lock().map_err(poisoned)?.get(id).cloned())
    }

    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        let found = items
            .values()
            .filter(|k| k.project_id == project && !k.expired(now))
            .filter(|k| after.is_none_or(|a| k.id.as_str() > a))
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(found, limit, |k| k.id.clone()))
    }

    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        if items.get(id).is_some_and(|k| k.project_id == project) {
            items.remove(id);
            return Ok(true);
        }
        Ok(false)
    }
}

/// (project, webhook, delivery id).
type DeliveryKey = (String, String, String);

/// The attempt log in memory: deliveries by key, each with when it expires.
#[derive(Default)]
pub struct InMemoryAttemptLog {
    items: Mutex<BTreeMap<DeliveryKey, (Delivery, Millis)>>,
}

impl InMemoryAttemptLog {
    /// Every attempt recorded, oldest first (for assertions).
    pub fn all(&self) -> Vec<Attempt> {
        let mut all: Vec<Attempt> = self
            .items
            .lock()
            .map(|items| {
                items
                    .values()
                    .flat_map(|(d, _)| d.history.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Every delivery (for assertions).
    pub fn deliveries_recorded(&self) -> Vec<Delivery> {
        self.items
            .lock()
            .map(|items| items.values().map(|(d, _)| d.clone()).collect())
            .unwrap_or_default()
    }

    /// A webhook's live deliveries, newest first.
    fn of_webhook(
        &self,
        project: &str,
        webhook_id: &str,
        now: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .iter()
            .rev()
            .filter(|((p, w, _), (_, exp))| p == project && w == webhook_id && *exp > now)
            .map(|(_, (d, _))| d.clone())
            .collect())
    }
}

/// Where a delivery's record is kept: (project, webhook, delivery).
fn delivery_key(delivery: &Delivery) -> (String, String, String) {
    (
        delivery.project_id.clone(),
        delivery.webhook_id.clone(),
        delivery.id.clone(),
    )
}

#[async_trait]
impl AttemptLog for InMemoryAttemptLog {
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = (
            attempt.project_id.clone(),
            attempt.webhook_id.clone(),
            attempt.delivery_id.clone(),
        );
        let delivery = match items.remove(&key) {
            Some((d, _)) => d,
            None => Delivery {
                created_at: attempt.created_at,
                ..Delivery::pending(&task_of(attempt), &attempt.event_type, attempt.created_at)
            },
        };
        items.insert(key, (delivery.with(attempt), expires_at));
        Ok(())
    }

    async fn pending(&self, delivery: &Delivery, expires_at: Millis) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = delivery_key(delivery);
        let updated = match items.remove(&key) {
            Some((mut current, _)) => {
                current.status = crate::model::DeliveryStatus::Pending;
                current.next_attempt_at = delivery.next_attempt_at;
                current.updated_at = delivery.updated_at;
                current
            }
            None => delivery.clone(),
        };
        items.insert(key, (updated, expires_at));
        Ok(())
    }

    async fn reopen(
        &self,
        seen: &Delivery,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = delivery_key(seen);
        match items.get_mut(&key) {
            Some((current, expires))
                if current.status == seen.status && current.updated_at == seen.updated_at =>
            {
                current.status = crate::model::DeliveryStatus::Pending;
                current.next_attempt_at = Some(now);
                current.updated_at = now;
                *expires = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn restore(&self, seen: &Delivery, reopened_at: Millis) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = delivery_key(seen);
        if let Some((current, _)) = items.get_mut(&key)
            && current.status == crate::model::DeliveryStatus::Pending
            && current.updated_at == reopened_at
        {
            current.status = seen.status;
            current.next_attempt_at = seen.next_attempt_at;
            current.updated_at = seen.updated_at;
        }
        Ok(())
    }

    async fn for_webhook(
        &self,
        project: &str,
        webhook_id: &str,
        status: Option<AttemptStatus>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<Attempt>, StoreError> {
        let start = after
            .and_then(super::parse_attempt_cursor)
            .map(|(d, _)| d.to_string());
        let mut found: Vec<(String, Attempt)> = Vec::new();
        for delivery in self.of_webhook(project, webhook_id, now)? {
            if start.as_deref().is_some_and(|s| delivery.id.as_str() > s) {
                continue;
            }
            for (position, attempt) in super::attempts_of(&delivery, status, after) {
                found.push((
                    super::attempt_cursor(&delivery.id, position),
                    attempt.clone(),
                ));
            }
            if found.len() > limit {
                break;
            }
        }
        Ok(Page::from_overfetch(found, limit, |(k, _)| k.clone()).map(|(_, a)| a))
    }

    async fn deliveries(
        &self,
        project: &str,
        webhook_id: &str,
        status: Option<crate::model::DeliveryStatus>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<Delivery>, StoreError> {
        let found: Vec<Delivery> = self
            .of_webhook(project, webhook_id, now)?
            .into_iter()
            .filter(|d| after.is_none_or(|a| d.id.as_str() < a))
            .filter(|d| status.is_none_or(|s| d.status == s))
            .take(limit + 1)
            .collect();
        Ok(Page::from_overfetch(found, limit, |d| d.id.clone()))
    }

    async fn get_deliveries(
        &self,
        project: &str,
        keys: &[(String, String)],
        now: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(keys
            .iter()
            .filter_map(|(w, d)| items.get(&(project.to_string(), w.clone(), d.clone())))
            .filter(|(_, exp)| *exp > now)
            .map(|(d, _)| d.clone())
            .collect())
    }
}

/// The task a first attempt stands for, for [`Delivery::pending`].
fn task_of(attempt: &Attempt) -> crate::model::DeliveryTask {
    crate::model::DeliveryTask {
        v: crate::model::TASK_VERSION,
        delivery_id: attempt.delivery_id.clone(),
        project_id: attempt.project_id.clone(),
        webhook_id: attempt.webhook_id.clone(),
        event_id: attempt.event_id.clone(),
        event: None,
        first_attempt_at: attempt.created_at,
        deliver_at: None,
        operational: false,
        attempts_before: 0,
        skip: None,
        webhook_version: 0,
    }
}

/// Health records in memory, applied as [`HealthRecord::apply`] says the store does.
#[derive(Default)]
pub struct InMemoryHealthStore {
    items: Mutex<BTreeMap<(String, String), HealthRecord>>,
    /// Writes made (for the tests of the write budget).
    pub writes: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl HealthStore for InMemoryHealthStore {
    async fn record(
        &self,
        project: &str,
        webhook_id: &str,
        update: &Update,
        now: Millis,
        _expires_at: Millis,
    ) -> Result<HealthRecord, StoreError> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = (project.to_string(), webhook_id.to_string());
        let record = items.remove(&key).unwrap_or_default().apply(update, now);
        items.insert(key, record.clone());
        Ok(record)
    }

    async fn get(
        &self,
        project: &str,
        webhook_ids: &[String],
    ) -> Result<HashMap<String, HealthRecord>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(webhook_ids
            .iter()
            .filter_map(|w| {
                items
                    .get(&(project.to_string(), w.clone()))
                    .map(|r| (w.clone(), r.clone()))
            })
            .collect())
    }

    async fn clear_failing(&self, project: &str, webhook_id: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        if let Some(r) = items.get_mut(&(project.to_string(), webhook_id.to_string())) {
            r.failing_since = None;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct InMemoryEventStore {
    items: Mutex<BTreeMap<(String, String), EventRecord>>,
    /// After this many reads every read fails (the store gone half way); 0 = never.
    pub fail_gets_after: std::sync::atomic::AtomicUsize,
    gets: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn create(&self, record: &EventRecord) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = (record.project_id.clone(), record.event.id.clone());
        if items.contains_key(&key) {
            return Ok(false);
        }
        items.insert(key, record.clone());
        Ok(true)
    }

    async fn get(&self, project: &str, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let limit = self.fail_gets_after.load(SeqCst);
        if limit > 0 && self.gets.fetch_add(1, SeqCst) >= limit {
            return Err(StoreError::Unavailable("the event store went away".into()));
        }
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .get(&(project.to_string(), event_id.to_string()))
            .cloned())
    }

    async fn take_lease(
        &self,
        project: &str,
        event_id: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        match items.get_mut(&(project.to_string(), event_id.to_string())) {
            Some(r) if !r.complete && r.lease_until < now => {
                r.lease_until = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_enqueued(
        &self,
        project: &str,
        event_id: &str,
        webhook_ids: &[String],
        complete: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let record = items
            .get_mut(&(project.to_string(), event_id.to_string()))
            .ok_or(StoreError::Conflict)?;
        record.enqueued.extend(webhook_ids.iter().cloned());
        record.complete |= complete;
        if !record.complete {
            record.lease_until = now;
        }
        Ok(())
    }

    async fn list(
        &self,
        project: &str,
        event_type: Option<&str>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<super::EventSummary>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        let mut found: Vec<(String, super::EventSummary)> = items
            .values()
            .filter(|r| r.project_id == project && r.expires_at > now)
            .filter(|r| event_type.is_none_or(|t| r.event.event_type == t))
            .map(|r| (r.listed_key(), r.summary()))
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() < a))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        found.truncate(limit + 1);
        Ok(Page::from_overfetch(found, limit, |(k, _)| k.clone()).map(|(_, e)| e))
    }

    async fn abandoned(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .iter()
            .filter(|(_, r)| !r.complete && r.lease_until < now)
            .map(|(key, _)| key.clone())
            .take(limit)
            .collect())
    }
}
