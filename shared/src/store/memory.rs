//! In-memory adapters for unit tests: the same contracts as DynamoDB, conditions included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ApiKeyRecord, ApiKeyStore, AttemptLog, EventRecord, EventStore, Page, StoreError, WebhookStore,
    attempt_sort_key,
};
use crate::clock::Millis;
use crate::model::{Attempt, AttemptStatus, Webhook};

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
    ) -> Result<Vec<Webhook>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(items
            .iter()
            .filter(|((p, _), w)| {
                p == project && w.spec.enabled && w.spec.subscribes_to(event_type)
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

    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        if items.get(id).is_some_and(|k| k.project_id == project) {
            items.remove(id);
            return Ok(true);
        }
        Ok(false)
    }
}

#[derive(Default)]
pub struct InMemoryAttemptLog {
    items: Mutex<BTreeMap<String, (Attempt, Millis)>>,
}

impl InMemoryAttemptLog {
    /// Every attempt recorded, oldest first (for assertions).
    pub fn all(&self) -> Vec<Attempt> {
        self.items
            .lock()
            .map(|items| items.values().map(|(a, _)| a.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl AttemptLog for InMemoryAttemptLog {
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let key = format!(
            "{}#{}#{}",
            attempt.project_id,
            attempt.webhook_id,
            attempt_sort_key(attempt)
        );
        items.insert(key, (attempt.clone(), expires_at));
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
        let items = self.items.lock().map_err(poisoned)?;
        let mut found: Vec<(String, Attempt)> = items
            .values()
            .filter(|(a, exp)| {
                a.project_id == project
                    && a.webhook_id == webhook_id
                    && *exp > now
                    && status.is_none_or(|s| a.status == s)
            })
            .map(|(a, _)| (attempt_sort_key(a), a.clone()))
            .filter(|(k, _)| after.is_none_or(|after| k.as_str() < after))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        found.truncate(limit + 1);
        Ok(Page::from_overfetch(found, limit, |(k, _)| k.clone()).map(|(_, a)| a))
    }

    async fn for_event(
        &self,
        project: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<Vec<Attempt>, StoreError> {
        let items = self.items.lock().map_err(poisoned)?;
        let mut found: Vec<Attempt> = items
            .values()
            .filter(|(a, exp)| a.project_id == project && a.event_id == event_id && *exp > now)
            .map(|(a, _)| a.clone())
            .collect();
        found.sort_by_key(attempt_sort_key);
        Ok(found)
    }
}

#[derive(Default)]
pub struct InMemoryEventStore {
    items: Mutex<BTreeMap<(String, String), EventRecord>>,
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
