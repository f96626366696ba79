//! DynamoDB adapters. The same code talks to AWS and to the local emulator: the SDK finds
//! the emulator through the standard `AWS_ENDPOINT_URL`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    ApiKeyRecord, ApiKeyStore, AttemptLog, EventRecord, EventStore, Page, StoreError, WebhookStore,
    attempt_sort_key,
};
use crate::clock::Millis;
use crate::model::{Attempt, AttemptStatus, Webhook};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {key} is missing or not a string")))
}

fn get_n(item: &Item, key: &str) -> Result<i64, StoreError> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {key} is missing or not a number")))
}

fn decode_doc<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(get_s(item, "doc")?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode_doc<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Maps a failed conditional write to `on_condition`, anything else to `Unavailable`.
fn conditional<E, R>(err: SdkError<E, R>, on_condition: StoreError) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static + ConditionFailed,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) if ctx.err().is_condition_failed() => on_condition,
        other => unavailable(other),
    }
}

/// A conditional write's result as "did the condition hold": `false` when it did not,
/// an error for anything else.
fn condition_held<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + Send + Sync + 'static + ConditionFailed,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(ctx)) if ctx.err().is_condition_failed() => Ok(false),
        Err(other) => Err(unavailable(other)),
    }
}

/// The SDK's per-operation errors that can report a failed condition.
pub trait ConditionFailed {
    fn is_condition_failed(&self) -> bool;
}

impl ConditionFailed for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// Runs a query to its last page; `query` builds the request for one page.
async fn query_all(
    query: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = query()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(unavailable)?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(items),
        }
    }
}

pub struct DynamoWebhookStore {
    client: Client,
    table: String,
}

impl DynamoWebhookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn item(webhook: &Webhook) -> Result<Item, StoreError> {
        let mut item = Item::new();
        item.insert("project_id".into(), s(&webhook.project_id));
        item.insert("webhook_id".into(), s(&webhook.id));
        item.insert("version".into(), n(webhook.version));
        item.insert("enabled".into(), AttributeValue::Bool(webhook.spec.enabled));
        item.insert(
            "events".into(),
            AttributeValue::Ss(webhook.spec.events.clone()),
        );
        item.insert("doc".into(), encode_doc(webhook)?);
        Ok(item)
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    async fn create(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(webhook)?))
            .condition_expression("attribute_not_exists(webhook_id)")
            .send()
            .await
            .map_err(|e| conditional(e, StoreError::AlreadyExists))?;
        Ok(())
    }

    async fn get(&self, project: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("project_id", s(project))
            .key("webhook_id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item().map(decode_doc).transpose()
    }

    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("project_id = :p")
            .expression_attribute_values(":p", s(project))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        if let Some(after) = after {
            query = query
                .exclusive_start_key("project_id", s(project))
                .exclusive_start_key("webhook_id", s(after));
        }
        let out = query.send().await.map_err(unavailable)?;
        let items = out
            .items()
            .iter()
            .map(decode_doc)
            .collect::<Result<Vec<Webhook>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |w| w.id.clone()))
    }

    async fn update(&self, webhook: &Webhook, expected_version: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(webhook)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await
            .map_err(|e| conditional(e, StoreError::Conflict))?;
        Ok(())
    }

    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("project_id", s(project))
            .key("webhook_id", s(id))
            .condition_expression("attribute_exists(webhook_id)")
            .send()
            .await;
        condition_held(result)
    }

    async fn subscribers(
        &self,
        project: &str,
        event_type: &str,
    ) -> Result<Vec<Webhook>, StoreError> {
        let items = query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("project_id = :p")
                .filter_expression(
                    "enabled = :on AND (contains(events, :type) OR contains(events, :all))",
                )
                .expression_attribute_values(":p", s(project))
                .expression_attribute_values(":on", AttributeValue::Bool(true))
                .expression_attribute_values(":type", s(event_type))
                .expression_attribute_values(":all", s("*"))
        })
        .await?;
        items.iter().map(decode_doc).collect()
    }
}

pub struct DynamoApiKeyStore {
    client: Client,
    table: String,
}

impl DynamoApiKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl ApiKeyStore for DynamoApiKeyStore {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("key_id", s(&key.id))
            .item("project_id", s(&key.project_id))
            .item("key_hash", s(&key.key_hash))
            .item("created_at", n(key.created_at))
            .condition_expression("attribute_not_exists(key_id)")
            .send()
            .await
            .map_err(|e| conditional(e, StoreError::AlreadyExists))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("key_id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        Ok(Some(ApiKeyRecord {
            id: get_s(item, "key_id")?.to_string(),
            project_id: get_s(item, "project_id")?.to_string(),
            key_hash: get_s(item, "key_hash")?.to_string(),
            created_at: get_n(item, "created_at")?,
        }))
    }

    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("key_id", s(id))
            .condition_expression("project_id = :p")
            .expression_attribute_values(":p", s(project))
            .send()
            .await;
        condition_held(result)
    }
}

pub struct DynamoAttemptLog {
    client: Client,
    table: String,
}

/// The attempt log's index by event.
pub const ATTEMPTS_BY_EVENT_INDEX: &str = "by_event";

impl DynamoAttemptLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl AttemptLog for DynamoAttemptLog {
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                "webhook_key",
                s(format!("{}#{}", attempt.project_id, attempt.webhook_id)),
            )
            .item("attempt_key", s(attempt_sort_key(attempt)))
            .item(
                "event_key",
                s(format!("{}#{}", attempt.project_id, attempt.event_id)),
            )
            .item("status", s(attempt.status.as_str()))
            // DynamoDB TTL reads epoch seconds.
            .item("expires_at", n(expires_at / 1000))
            .item("doc", encode_doc(attempt)?)
            .send()
            .await
            .map_err(unavailable)?;
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
        let pk = format!("{project}#{webhook_id}");
        let mut found: Vec<(String, Attempt)> = Vec::new();
        let mut start: Option<Item> = after.map(|a| {
            Item::from([
                ("webhook_key".to_string(), s(&pk)),
                ("attempt_key".to_string(), s(a)),
            ])
        });
        // TTL deletion lags (by days on AWS, forever in the emulator): filter expired
        // records here. A status filter is applied after the page limit, so keep reading
        // until the page is full or the partition ends.
        let mut filter = "expires_at > :now".to_string();
        if status.is_some() {
            filter.push_str(" AND #st = :status");
        }
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("webhook_key = :pk")
                .filter_expression(&filter)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":now", n(now / 1000))
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if let Some(st) = status {
                query = query
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":status", s(st.as_str()));
            }
            let out = query.send().await.map_err(unavailable)?;
            for item in out.items() {
                found.push((get_s(item, "attempt_key")?.to_string(), decode_doc(item)?));
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && found.len() <= limit => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(Page::from_overfetch(found, limit, |(k, _)| k.clone()).map(|(_, a)| a))
    }

    async fn for_event(
        &self,
        project: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<Vec<Attempt>, StoreError> {
        let items = query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(ATTEMPTS_BY_EVENT_INDEX)
                .key_condition_expression("event_key = :ek")
                .filter_expression("expires_at > :now")
                .expression_attribute_values(":ek", s(format!("{project}#{event_id}")))
                .expression_attribute_values(":now", n(now / 1000))
        })
        .await?;
        let mut found = items
            .iter()
            .map(decode_doc)
            .collect::<Result<Vec<Attempt>, _>>()?;
        found.sort_by_key(attempt_sort_key);
        Ok(found)
    }
}

pub struct DynamoEventStore {
    client: Client,
    table: String,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn event_key(project: &str, event_id: &str) -> AttributeValue {
    s(format!("{project}#{event_id}"))
}

/// The events table's sparse index of unfinished fan-outs: `sweep` (a shard, so that no
/// one index partition takes every event's writes) and `lease_until`. A record is in it
/// from its creation until its fan-out completes.
pub const EVENTS_INCOMPLETE_INDEX: &str = "incomplete";
/// Shards of [`EVENTS_INCOMPLETE_INDEX`]; the sweep reads each.
const SWEEP_SHARDS: u32 = 8;

fn sweep_shard(key: &str) -> String {
    // FNV-1a: stable across processes and versions, unlike the std hasher.
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % SWEEP_SHARDS).to_string()
}

/// The record's fixed part lives in `doc`; what changes (`enqueued`, `complete`,
/// `lease_until`) in attributes of its own, so updates never rewrite the event.
#[async_trait]
impl EventStore for DynamoEventStore {
    async fn create(&self, record: &EventRecord) -> Result<bool, StoreError> {
        let mut doc = record.clone();
        doc.enqueued.clear();
        let key = format!("{}#{}", record.project_id, record.event.id);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("doc", encode_doc(&doc)?)
            .item("complete", AttributeValue::Bool(record.complete))
            .item("lease_until", n(record.lease_until));
        if !record.complete {
            put = put.item("sweep", s(sweep_shard(&key)));
        }
        let result = put
            .item("event_key", s(key))
            .item("expires_at", n(record.expires_at / 1000))
            .condition_expression("attribute_not_exists(event_key)")
            .send()
            .await;
        condition_held(result)
    }

    async fn get(&self, project: &str, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("event_key", event_key(project, event_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let mut record: EventRecord = decode_doc(item)?;
        if let Some(AttributeValue::Ss(ids)) = item.get("enqueued") {
            record.enqueued = ids.iter().cloned().collect();
        }
        record.complete = matches!(item.get("complete"), Some(AttributeValue::Bool(true)));
        record.lease_until = get_n(item, "lease_until")?;
        Ok(Some(record))
    }

    async fn take_lease(
        &self,
        project: &str,
        event_id: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("event_key", event_key(project, event_id))
            .update_expression("SET lease_until = :until")
            .condition_expression("complete = :no AND lease_until < :now")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        condition_held(result)
    }

    async fn mark_enqueued(
        &self,
        project: &str,
        event_id: &str,
        webhook_ids: &[String],
        complete: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("event_key", event_key(project, event_id))
            .condition_expression("attribute_exists(event_key)");
        // Complete: out of the sweep's index. Not: the lease is given up for whoever
        // finishes it next.
        let mut expression = if complete {
            update = update.expression_attribute_values(":yes", AttributeValue::Bool(true));
            "SET complete = :yes REMOVE sweep".to_string()
        } else {
            update = update.expression_attribute_values(":now", n(now));
            "SET lease_until = :now".to_string()
        };
        if !webhook_ids.is_empty() {
            expression.push_str(" ADD enqueued :ids");
            update = update
                .expression_attribute_values(":ids", AttributeValue::Ss(webhook_ids.to_vec()));
        }
        update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| conditional(e, StoreError::Conflict))?;
        Ok(())
    }

    async fn abandoned(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::new();
        for shard in 0..SWEEP_SHARDS {
            if found.len() >= limit {
                break;
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(EVENTS_INCOMPLETE_INDEX)
                .key_condition_expression("sweep = :shard AND lease_until < :now")
                .expression_attribute_values(":shard", s(shard.to_string()))
                .expression_attribute_values(":now", n(now))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                // Project ids cannot hold '#'; event ids may.
                if let Some((project, event)) = get_s(item, "event_key")?.split_once('#') {
                    found.push((project.to_string(), event.to_string()));
                }
            }
        }
        Ok(found)
    }
}
