//! DynamoDB adapters. The same code talks to AWS and to the local emulator: the SDK finds
//! the emulator through the standard `AWS_ENDPOINT_URL`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use std::collections::BTreeMap;

use super::{
    ApiKeyRecord, ApiKeyStore, AttemptLog, EventRecord, EventStore, HealthStore,
    MAX_WEBHOOKS_PER_PROJECT, Page, PortalTerms, StoreError, WebhookStore,
};
use crate::clock::Millis;
use crate::health::{Failing, HealthRecord, Update, WINDOW_HOURS, hour_of};
use crate::model::{Attempt, AttemptStatus, Delivery, DeliveryStatus, Webhook};

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

/// The most a deflated attribute may inflate to. The largest is an event record's `doc`:
/// an event of at most 256 KiB and its list of deliveries, deflated into DynamoDB's
/// 400 KB item, where JSON of ours shrinks to a half or a third; a blob that grows past
/// 8 MiB is not one of ours, and is refused before it takes the function's memory.
const MAX_INFLATED: usize = 8 << 20;

/// An event record's `doc`: its JSON deflated, as a binary attribute. A write is billed
/// by the size of the item (a unit a KiB, the larger of before and after), and an event's
/// JSON with its list of delivery ids deflates to about 45 % (the ids of one fan-out
/// share their leading digits), so a record of a small event is one unit instead of two,
/// both when it is created and when its fan-out completes.
fn encode_deflated_doc<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
        deflate(&json),
    )))
}

/// Reads [`encode_deflated_doc`]'s `doc`, or the JSON text of records written before it.
fn decode_deflated_doc<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    match item.get("doc") {
        Some(AttributeValue::B(blob)) => {
            let json = inflate(blob.as_ref()).map_err(|e| e.at("attribute doc"))?;
            serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => decode_doc(item),
    }
}

/// Raw deflate at level 1: nearly the ratio of the default on JSON, at a fraction of its
/// time for a 256 KiB event.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(bytes, 1)
}

/// Why a blob did not inflate.
struct Inflate(String);

impl Inflate {
    fn at(self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("{what}: {}", self.0))
    }
}

fn inflate(blob: &[u8]) -> Result<Vec<u8>, Inflate> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(blob, MAX_INFLATED)
        .map_err(|e| Inflate(e.to_string()))
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

/// The item beside a project's webhooks that counts them (`webhooks`, a number); it
/// sorts before every webhook id, and listings ask for ids that begin `wh_`.
const COUNT_ITEM: &str = "#count";
const WEBHOOK_ID_PREFIX: &str = "wh_";
const WEBHOOKS_OF_PROJECT: &str = "project_id = :p AND begins_with(webhook_id, :wh)";

/// Tries of a transaction that another one keeps cancelling.
const TRANSACT_TRIES: u32 = 4;
/// Tries of a create whose project's count is missing, or was counted meanwhile.
const COUNT_TRIES: u32 = 3;

/// How a transaction ended, short of an error.
enum Transacted {
    Done,
    /// Its item of this index failed its condition; nothing was written.
    ConditionFailed(usize),
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

    /// Writes `items` in one transaction. Another transaction on one of its items (two
    /// creates in one project, on its count) cancels it with `TransactionConflict`,
    /// which the SDK does not retry: it is tried again here, a few times, after a short
    /// random pause. `token` makes the first try idempotent (a retry of it by the SDK
    /// is not a second write); each try after a cancellation, which wrote nothing, has
    /// a token of its own.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        token: Option<&str>,
    ) -> Result<Transacted, StoreError> {
        let mut tries = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .set_client_request_token(token.map(|t| match tries {
                    0 => t.to_string(),
                    n => format!("{t}.{n}"),
                }))
                .send()
                .await;
            tries += 1;
            let ctx = match result {
                Ok(_) => return Ok(Transacted::Done),
                Err(SdkError::ServiceError(ctx)) => ctx,
                Err(other) => return Err(unavailable(other)),
            };
            if let TransactWriteItemsError::TransactionCanceledException(e) = ctx.err() {
                let codes: Vec<&str> = e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                if let Some(i) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                    return Ok(Transacted::ConditionFailed(i));
                }
                if codes.contains(&"TransactionConflict") && tries < TRANSACT_TRIES {
                    let pause = rand::random_range(10..=50) << (tries - 1);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    continue;
                }
            }
            return Err(unavailable(SdkError::ServiceError(ctx)));
        }
    }

    /// The project's count of webhooks, or `None` where they are not counted yet: a new
    /// project, or one whose webhooks were stored before they were counted.
    async fn count_of(&self, project: &str) -> Result<Option<i64>, StoreError> {
        let count = self.item_at(project, COUNT_ITEM).await?;
        Ok(count
            .as_ref()
            .and_then(|item| item.get("webhooks"))
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse().ok()))
    }

    /// A query of a project's webhooks (not its count).
    fn webhooks_of(
        &self,
        project: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(WEBHOOKS_OF_PROJECT)
            .expression_attribute_values(":p", s(project))
            .expression_attribute_values(":wh", s(WEBHOOK_ID_PREFIX))
    }

    /// The item of a project under a key, read consistently.
    async fn item_at(&self, project: &str, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("project_id", s(project))
            .key("webhook_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// Counts a project's webhooks into its count item, where there is none. Creates
    /// and deletes need the item, so none of them lands while it is missing and the
    /// count read is exact; of two counts at once, the first written stands.
    async fn count_webhooks(&self, project: &str) -> Result<(), StoreError> {
        let mut held: u64 = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .webhooks_of(project)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            held += u64::try_from(out.count()).unwrap_or_default();
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("project_id", s(project))
            .item("webhook_id", s(COUNT_ITEM))
            .item("webhooks", n(held))
            .condition_expression("attribute_not_exists(webhook_id)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) if ctx.err().is_condition_failed() => Ok(()),
            Err(other) => Err(unavailable(other)),
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
        if !webhook.spec.channels.is_empty() {
            item.insert(
                "channels".into(),
                AttributeValue::Ss(webhook.spec.channels.clone()),
            );
        }
        item.insert("doc".into(), encode_doc(webhook)?);
        Ok(item)
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    /// The webhook and its project's count in one transaction: the count goes up only
    /// with a webhook stored, and never past [`MAX_WEBHOOKS_PER_PROJECT`]. The webhook's
    /// id is the request token, so a retry of a try that landed is not a second create.
    async fn create(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(webhook)?))
            .condition_expression("attribute_not_exists(webhook_id)")
            .build()
            .map_err(unavailable)?;
        let count = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key("project_id", s(&webhook.project_id))
            .key("webhook_id", s(COUNT_ITEM))
            .update_expression("ADD webhooks :one")
            .condition_expression("webhooks < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_WEBHOOKS_PER_PROJECT))
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        let project = &webhook.project_id;
        let mut token = webhook.id.clone();
        for again in 1..=COUNT_TRIES {
            match self.transact(items.clone(), Some(&token)).await? {
                Transacted::Done => return Ok(()),
                Transacted::ConditionFailed(0) => return Err(StoreError::AlreadyExists),
                Transacted::ConditionFailed(_) => match self.count_of(project).await? {
                    Some(held) if held >= i64::from(MAX_WEBHOOKS_PER_PROJECT) => {
                        return Err(StoreError::LimitReached);
                    }
                    // Counted since this try (another create counted the project first).
                    Some(_) => {}
                    None => self.count_webhooks(project).await?,
                },
            }
            // Nothing was written; the next try has a token of its own.
            token = format!("{}.c{again}", webhook.id);
        }
        Err(StoreError::Unavailable(
            format!("project {project}'s webhook count kept changing").into(),
        ))
    }

    async fn get(&self, project: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        self.item_at(project, id)
            .await?
            .as_ref()
            .map(decode_doc)
            .transpose()
    }

    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>, StoreError> {
        let mut query = self
            .webhooks_of(project)
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

    /// The webhook and one off its project's count, in one transaction.
    async fn delete(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("project_id", s(project))
            .key("webhook_id", s(id))
            .condition_expression("attribute_exists(webhook_id)")
            .build()
            .map_err(unavailable)?;
        let count = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key("project_id", s(project))
            .key("webhook_id", s(COUNT_ITEM))
            .update_expression("ADD webhooks :minus_one")
            .condition_expression("attribute_exists(webhooks)")
            .expression_attribute_values(":minus_one", n(-1))
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        let mut counted = false;
        loop {
            match self.transact(items.clone(), None).await? {
                Transacted::Done => return Ok(true),
                Transacted::ConditionFailed(0) => return Ok(false),
                Transacted::ConditionFailed(_) if !counted => {
                    self.count_webhooks(project).await?;
                    counted = true;
                }
                Transacted::ConditionFailed(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "project {project}'s webhook count item holds no count"
                    )));
                }
            }
        }
    }

    async fn subscribers(
        &self,
        project: &str,
        event_type: &str,
        channel: Option<&str>,
        operational: bool,
    ) -> Result<Vec<Webhook>, StoreError> {
        // What `WebhookSpec::matches` says, as a filter of the one query: the type (or
        // `*`, for a product event), and the channel (a webhook that lists none takes
        // every one; an event without one goes only to those).
        let mut filter = if operational {
            "enabled = :on AND contains(events, :type)".to_string()
        } else {
            "enabled = :on AND (contains(events, :type) OR contains(events, :all))".to_string()
        };
        if !operational {
            filter.push_str(match channel {
                Some(_) => " AND (attribute_not_exists(channels) OR contains(channels, :ch))",
                None => " AND attribute_not_exists(channels)",
            });
        }
        let items = query_all(|| {
            let mut query = self
                .webhooks_of(project)
                .filter_expression(&filter)
                .expression_attribute_values(":on", AttributeValue::Bool(true))
                .expression_attribute_values(":type", s(event_type));
            if !operational {
                query = query.expression_attribute_values(":all", s("*"));
                if let Some(channel) = channel {
                    query = query.expression_attribute_values(":ch", s(channel));
                }
            }
            query
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

/// A project's keys oldest first (`key_id` sorts by creation).
const KEYS_BY_PROJECT: &str = "by_project";

impl DynamoApiKeyStore {
    fn decode(item: &Item) -> Result<ApiKeyRecord, StoreError> {
        let portal = match item.get("kind") {
            Some(AttributeValue::S(kind)) if kind == "portal" => Some(PortalTerms {
                read_only: matches!(item.get("read_only"), Some(AttributeValue::Bool(true))),
                expires_at: get_n(item, "expires_at")?.saturating_mul(1000),
            }),
            _ => None,
        };
        Ok(ApiKeyRecord {
            id: get_s(item, "key_id")?.to_string(),
            project_id: get_s(item, "project_id")?.to_string(),
            key_hash: get_s(item, "key_hash")?.to_string(),
            created_at: get_n(item, "created_at")?,
            portal,
            name: match item.get("name") {
                Some(AttributeValue::S(name)) => Some(name.clone()),
                _ => None,
            },
        })
    }
}

#[async_trait]
impl ApiKeyStore for DynamoApiKeyStore {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("key_id", s(&key.id))
            .item("project_id", s(&key.project_id))
            .item("key_hash", s(&key.key_hash))
            .item("created_at", n(key.created_at));
        if let Some(name) = &key.name {
            put = put.item("name", s(name));
        }
        if let Some(portal) = key.portal {
            // `expires_at` in seconds is the table's TTL attribute: an expired token
            // is refused at once and removed by DynamoDB within days.
            put = put
                .item("kind", s("portal"))
                .item("read_only", AttributeValue::Bool(portal.read_only))
                .item("expires_at", n(portal.expires_at / 1000));
        }
        put.condition_expression("attribute_not_exists(key_id)")
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
        out.item().map(Self::decode).transpose()
    }

    async fn list(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        // Expired tokens linger until TTL removes them: read past them, a page at a time.
        let mut found = Vec::new();
        let mut start = after.map(|a| {
            Item::from([
                ("project_id".to_string(), s(project)),
                ("key_id".to_string(), s(a)),
            ])
        });
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(KEYS_BY_PROJECT)
                .key_condition_expression("project_id = :p")
                .expression_attribute_values(":p", s(project))
                .set_exclusive_start_key(start)
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                let record = Self::decode(item)?;
                if !record.expired(now) {
                    found.push(record);
                }
            }
            start = out.last_evaluated_key().cloned();
            if found.len() > limit || start.is_none() {
                break;
            }
        }
        found.truncate(limit + 1);
        Ok(Page::from_overfetch(found, limit, |k| k.id.clone()))
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

/// The sort keys of delivery records all start so; the health record's is `health`, and
/// records of the attempt log's earlier shape start with a digit: both are passed over.
const DELIVERY_PREFIX: &str = "msg_";
/// Past every delivery id (Crockford base32 stops at `z`).
const DELIVERY_END: &str = "msg_~";

impl DynamoAttemptLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key(project: &str, webhook_id: &str) -> AttributeValue {
        s(format!("{project}#{webhook_id}"))
    }

    /// An update of `delivery`'s record, to be given its expression.
    fn update_delivery(
        &self,
        delivery: &Delivery,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(
                "webhook_key",
                Self::key(&delivery.project_id, &delivery.webhook_id),
            )
            .key("attempt_key", s(&delivery.id))
    }

    /// A delivery record back into a [`Delivery`].
    fn decode(item: &Item) -> Result<Delivery, StoreError> {
        let (project, webhook) = get_s(item, "webhook_key")?
            .split_once('#')
            .ok_or_else(|| StoreError::Corrupt("webhook_key has no '#'".into()))?;
        let opt_n = |key: &str| {
            item.get(key)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let history = match item.get("history") {
            Some(AttributeValue::L(entries)) => entries
                .iter()
                .map(decode_history_entry)
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let status = DeliveryStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| StoreError::Corrupt("unknown delivery status".into()))?;
        let id = get_s(item, "attempt_key")?;
        let event_id = get_s(item, "event_id")?;
        let event_type = item
            .get("event_type")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        // What the entries leave to their delivery (entries written before they did
        // carry it themselves).
        let mut history = history;
        for entry in &mut history {
            let fill = |field: &mut String, value: &str| {
                if field.is_empty() {
                    value.clone_into(field);
                }
            };
            fill(&mut entry.project_id, project);
            fill(&mut entry.webhook_id, webhook);
            fill(&mut entry.delivery_id, id);
            fill(&mut entry.event_id, event_id);
            fill(&mut entry.event_type, &event_type);
        }
        Ok(Delivery {
            id: id.to_string(),
            project_id: project.to_string(),
            webhook_id: webhook.to_string(),
            event_id: event_id.to_string(),
            event_type,
            status,
            attempts: opt_n("attempts").unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
            last_status_code: opt_n("last_status_code").and_then(|c| u16::try_from(c).ok()),
            last_error: item.get("last_error").and_then(|v| v.as_s().ok()).cloned(),
            next_attempt_at: opt_n("next_attempt_at"),
            created_at: get_n(item, "created_at")?,
            updated_at: get_n(item, "updated_at")?,
            history,
        })
    }

    /// Queries a webhook's delivery records newest first, from `start` (inclusive) down,
    /// with `filter` on top of the expiry; `take` says whether to go on after a record.
    /// Returns where it stopped when it read [`MAX_SCAN_PAGES`] pages with `take` still
    /// asking for more: the key of the last delivery it read, for a cursor that goes on
    /// below it.
    async fn scan_down(
        &self,
        project: &str,
        webhook_id: &str,
        from: &str,
        status: Option<(&str, AttributeValue)>,
        now: Millis,
        mut take: impl FnMut(Delivery) -> bool,
    ) -> Result<Option<String>, StoreError> {
        if from < DELIVERY_PREFIX {
            // A cursor edited below every delivery key: nothing is older, and DynamoDB
            // would refuse the inverted BETWEEN as a bad request.
            return Ok(None);
        }
        let mut filter = "expires_at > :now".to_string();
        if let Some((expression, _)) = &status {
            filter.push_str(" AND ");
            filter.push_str(expression);
        }
        let mut start: Option<Item> = None;
        for _ in 0..MAX_SCAN_PAGES {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("webhook_key = :pk AND attempt_key BETWEEN :lo AND :hi")
                .filter_expression(&filter)
                .expression_attribute_values(":pk", Self::key(project, webhook_id))
                .expression_attribute_values(":lo", s(DELIVERY_PREFIX))
                .expression_attribute_values(":hi", s(from))
                .expression_attribute_values(":now", n(now / 1000))
                .scan_index_forward(false)
                .limit(50)
                .set_exclusive_start_key(start.take());
            if let Some((expression, value)) = &status {
                for (name, attribute) in [("#sts", "statuses"), ("#st ", "status")] {
                    if expression.contains(name) {
                        query = query.expression_attribute_names(name.trim(), attribute);
                    }
                }
                query = query.expression_attribute_values(":status", value.clone());
            }
            let out = query.send().await.map_err(unavailable)?;
            for item in out.items() {
                if !take(Self::decode(item)?) {
                    return Ok(None);
                }
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(None),
            }
        }
        let stopped_at = start
            .as_ref()
            .and_then(|key| key.get("attempt_key"))
            .and_then(|key| key.as_s().ok())
            .cloned();
        Ok(stopped_at)
    }
}

/// The most pages of a partition one listing request reads. A listing filtered by status
/// or type reads past what the filter drops, and a webhook's deliveries (or a project's
/// events) may be a million: the few failures among them would have taken thousands of
/// queries, past the request's 9 s (a 503 every time). A request stops here, with what it
/// found (maybe nothing) and a cursor that goes on from where it stopped.
pub const MAX_SCAN_PAGES: usize = 20;

/// An attempt as its delivery's `history` keeps it: without what the delivery's item
/// holds once (project, webhook, delivery, event and its type), about 200 bytes fewer
/// per attempt. The item grows by one entry per attempt and every write is billed by
/// its size, so a delivery that keeps failing costs that much more with each retry.
#[derive(serde::Serialize)]
struct HistoryEntry<'a> {
    id: &'a str,
    attempt: u32,
    status: AttemptStatus,
    status_code: Option<u16>,
    duration_ms: u64,
    error: Option<&'a str>,
    response_excerpt: Option<&'a str>,
    #[serde(with = "crate::clock::rfc3339::option")]
    next_attempt_at: Option<Millis>,
    #[serde(with = "crate::clock::rfc3339")]
    created_at: Millis,
}

impl<'a> HistoryEntry<'a> {
    fn of(a: &'a Attempt) -> Self {
        HistoryEntry {
            id: &a.id,
            attempt: a.attempt,
            status: a.status,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error.as_deref(),
            response_excerpt: a.response_excerpt.as_deref(),
            next_attempt_at: a.next_attempt_at,
            created_at: a.created_at,
        }
    }
}

/// Entries longer than this are deflated even in a delivery's first attempt.
const DEFLATE_ENTRIES_OVER: usize = 512;

/// A history entry as stored: its JSON deflated (binary) where that pays, as text where
/// it does not. A delivery's item grows by an entry an attempt and each write is billed
/// by its size; entries deflate one by one (a list append cannot deflate the list), a
/// timed-out attempt's from about 280 bytes to 200, one with the first KiB of an error
/// page by a third or more. Deflating costs 10-20 µs (miniz sets up tables of its own
/// for each input), as much CPU as the rest of a delivery, and a first attempt's item
/// is a unit either way unless its entry is long: so only the entries of later attempts
/// and long ones are deflated, and a first attempt that delivers costs no deflating.
fn encode_history_entry(entry: &HistoryEntry<'_>) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if entry.attempt <= 1 && json.len() <= DEFLATE_ENTRIES_OVER {
        return Ok(s(json));
    }
    let deflated = deflate(json.as_bytes());
    Ok(if deflated.len() < json.len() {
        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(deflated))
    } else {
        s(json)
    })
}

fn decode_history_entry(value: &AttributeValue) -> Result<Attempt, StoreError> {
    let parsed = match value {
        AttributeValue::S(json) => serde_json::from_str(json),
        AttributeValue::B(blob) => {
            serde_json::from_slice(&inflate(blob.as_ref()).map_err(|e| e.at("a history entry"))?)
        }
        _ => {
            return Err(StoreError::Corrupt(
                "a history entry is neither text nor binary".into(),
            ));
        }
    };
    parsed.map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl AttemptLog for DynamoAttemptLog {
    async fn record(&self, attempt: &Attempt, expires_at: Millis) -> Result<(), StoreError> {
        let entry = encode_history_entry(&HistoryEntry::of(attempt))?;
        let mut set = vec![
            "#st = :st",
            "event_id = :ev",
            "updated_at = :at",
            "created_at = if_not_exists(created_at, :at)",
            "expires_at = :exp",
            "history = list_append(if_not_exists(history, :none), :entry)",
        ];
        let mut remove = Vec::new();
        let mut add = vec!["statuses :sts"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                "webhook_key",
                Self::key(&attempt.project_id, &attempt.webhook_id),
            )
            .key("attempt_key", s(&attempt.delivery_id))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(attempt.status.as_str()))
            .expression_attribute_values(":ev", s(&attempt.event_id))
            .expression_attribute_values(":at", n(attempt.created_at))
            .expression_attribute_values(":exp", n(expires_at / 1000))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":entry", AttributeValue::L(vec![entry]))
            .expression_attribute_values(
                ":sts",
                AttributeValue::Ss(vec![attempt.status.as_str().to_string()]),
            );
        if !attempt.event_type.is_empty() {
            set.push("event_type = :et");
            update = update.expression_attribute_values(":et", s(&attempt.event_type));
        }
        if attempt.status != AttemptStatus::Skipped {
            add.push("attempts :one");
            update = update.expression_attribute_values(":one", n(1));
        }
        match attempt.status_code {
            Some(code) => {
                set.push("last_status_code = :code");
                update = update.expression_attribute_values(":code", n(code));
            }
            None => remove.push("last_status_code"),
        }
        match &attempt.error {
            Some(error) => {
                set.push("last_error = :err");
                update = update.expression_attribute_values(":err", s(error));
            }
            None => remove.push("last_error"),
        }
        match attempt.next_attempt_at {
            Some(next) => {
                set.push("next_attempt_at = :next");
                update = update.expression_attribute_values(":next", n(next));
            }
            None => remove.push("next_attempt_at"),
        }
        let mut expression = format!("SET {} ADD {}", set.join(", "), add.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        update
            .update_expression(expression)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn pending(&self, delivery: &Delivery, expires_at: Millis) -> Result<(), StoreError> {
        const SET: &str = "SET #st = :st, event_id = :ev, event_type = :et, updated_at = :at, \
                           created_at = if_not_exists(created_at, :at), expires_at = :exp, \
                           attempts = if_not_exists(attempts, :n)";
        let update = match delivery.next_attempt_at {
            Some(due) => self
                .update_delivery(delivery)
                .update_expression(format!("{SET}, next_attempt_at = :next"))
                .expression_attribute_values(":next", n(due)),
            None => self
                .update_delivery(delivery)
                .update_expression(format!("{SET} REMOVE next_attempt_at")),
        };
        update
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":ev", s(&delivery.event_id))
            .expression_attribute_values(":et", s(&delivery.event_type))
            .expression_attribute_values(":at", n(delivery.updated_at))
            .expression_attribute_values(":exp", n(expires_at / 1000))
            .expression_attribute_values(":n", n(delivery.attempts))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn reopen(
        &self,
        seen: &Delivery,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_delivery(seen)
            // Its attempt is due now: shown as its next attempt, and what tells a resend
            // lost on the way (see the trigger's resend) from one still queued.
            .update_expression(
                "SET #st = :st, updated_at = :at, expires_at = :exp, next_attempt_at = :at",
            )
            .condition_expression("#st = :was AND updated_at = :was_at")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":at", n(now))
            .expression_attribute_values(":exp", n(expires_at / 1000))
            .expression_attribute_values(":was", s(seen.status.as_str()))
            .expression_attribute_values(":was_at", n(seen.updated_at))
            .send()
            .await;
        condition_held(result)
    }

    async fn restore(&self, seen: &Delivery, reopened_at: Millis) -> Result<(), StoreError> {
        let mut update = self
            .update_delivery(seen)
            .condition_expression("#st = :pending AND updated_at = :at")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":at", n(reopened_at))
            .expression_attribute_values(":was", s(seen.status.as_str()))
            .expression_attribute_values(":was_at", n(seen.updated_at));
        update = match seen.next_attempt_at {
            Some(next) => update
                .update_expression("SET #st = :was, updated_at = :was_at, next_attempt_at = :next")
                .expression_attribute_values(":next", n(next)),
            // The reopen set it to its own time: a finished delivery has none.
            None => update
                .update_expression("SET #st = :was, updated_at = :was_at REMOVE next_attempt_at"),
        };
        // Changed since (attempted after all, or resent again): that is newer; keep it.
        condition_held(update.send().await).map(|_| ())
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
        let from = after
            .and_then(super::parse_attempt_cursor)
            .map_or(DELIVERY_END, |(delivery, _)| delivery);
        let filter = status.map(|st| ("contains(#sts, :status)", s(st.as_str())));
        let mut found: Vec<(String, Attempt)> = Vec::new();
        let stopped = self
            .scan_down(project, webhook_id, from, filter, now, |delivery| {
                for (position, attempt) in super::attempts_of(&delivery, status, after) {
                    found.push((
                        super::attempt_cursor(&delivery.id, position),
                        attempt.clone(),
                    ));
                }
                found.len() <= limit
            })
            .await?;
        let page = Page::from_overfetch(found, limit, |(k, _)| k.clone()).map(|(_, a)| a);
        // Stopped short: go on below the last delivery read, none of its attempts left.
        Ok(page.or_after(stopped.map(|delivery| super::attempt_cursor(&delivery, 0))))
    }

    async fn deliveries(
        &self,
        project: &str,
        webhook_id: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
        after: Option<&str>,
        now: Millis,
    ) -> Result<Page<Delivery>, StoreError> {
        let filter = status.map(|st| ("#st = :status", s(st.as_str())));
        let from = after.unwrap_or(DELIVERY_END);
        let mut found = Vec::new();
        let stopped = self
            .scan_down(project, webhook_id, from, filter, now, |delivery| {
                // BETWEEN is inclusive: the cursor's own delivery was on the last page.
                if Some(delivery.id.as_str()) != after {
                    found.push(delivery);
                }
                found.len() <= limit
            })
            .await?;
        Ok(Page::from_overfetch(found, limit, |d| d.id.clone()).or_after(stopped))
    }

    async fn get_deliveries(
        &self,
        project: &str,
        keys: &[(String, String)],
        now: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|(webhook, delivery)| {
                    Item::from([
                        ("webhook_key".to_string(), Self::key(project, webhook)),
                        ("attempt_key".to_string(), s(delivery)),
                    ])
                })
                .collect();
            // BatchGetItem may leave keys unprocessed under load: ask again for those.
            for _ in 0..5 {
                if wanted.is_empty() {
                    break;
                }
                let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        if get_n(item, "expires_at")? > now / 1000 {
                            found.push(Self::decode(item)?);
                        }
                    }
                }
                if let Some(left) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    wanted = left.keys().to_vec();
                }
            }
            if !wanted.is_empty() {
                return Err(StoreError::Unavailable(
                    "DynamoDB left keys unprocessed".into(),
                ));
            }
        }
        Ok(found)
    }
}

/// Per-webhook health, in the attempts table beside the webhook's deliveries (sort key
/// `health`): `hour` (last written), `hb` (delivered and failed counts per hour, keys
/// `<hour>d` and `<hour>f`), `last_success_at`, `last_failure_at`, `last_error`,
/// `last_status_code`, `failing_since`. One UpdateItem per batch and webhook, which
/// adds to the hour's counts and drops the hours that left both windows; after a day of
/// silence (the condition says so) the counts start afresh with a second write.
pub struct DynamoHealthStore {
    client: Client,
    table: String,
}

const HEALTH_KEY: &str = "health";

impl DynamoHealthStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn decode(item: &Item) -> HealthRecord {
        let opt_n = |key: &str| {
            item.get(key)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let mut hours: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        if let Some(AttributeValue::M(counts)) = item.get("hb") {
            for (key, value) in counts {
                let (hour, kind) = key.split_at(key.len().saturating_sub(1));
                let (Ok(hour), Some(count)) = (
                    hour.parse::<i64>(),
                    value.as_n().ok().and_then(|v| v.parse::<u64>().ok()),
                ) else {
                    continue;
                };
                let entry = hours.entry(hour).or_default();
                match kind {
                    "d" => entry.0 = count,
                    "f" => entry.1 = count,
                    _ => {}
                }
            }
        }
        HealthRecord {
            hour: opt_n("hour"),
            hours,
            last_success_at: opt_n("last_success_at"),
            last_failure_at: opt_n("last_failure_at"),
            last_error: item.get("last_error").and_then(|v| v.as_s().ok()).cloned(),
            last_status_code: opt_n("last_status_code").and_then(|c| u16::try_from(c).ok()),
            failing_since: opt_n("failing_since"),
        }
    }

    /// One write of `update`: adding to the hours (`fresh` false, on condition that the
    /// record was written within a window), or replacing them (`fresh`, on condition
    /// that it was not).
    async fn write(
        &self,
        project: &str,
        webhook_id: &str,
        update: &Update,
        now: Millis,
        expires_at: Millis,
        fresh: bool,
    ) -> Result<HealthRecord, SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>>
    {
        let hour = hour_of(now);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("webhook_key", DynamoAttemptLog::key(project, webhook_id))
            .key("attempt_key", s(HEALTH_KEY))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .expression_attribute_values(":hour", n(hour))
            .expression_attribute_values(":exp", n(expires_at / 1000))
            .expression_attribute_values(":since", n(hour - WINDOW_HOURS));
        let mut set = vec!["#hour = :hour".to_string(), "expires_at = :exp".to_string()];
        let mut remove = Vec::new();
        request = request.expression_attribute_names("#hour", "hour");
        if fresh {
            let counts: HashMap<String, AttributeValue> = update
                .hours
                .iter()
                .flat_map(|(h, (d, f))| [(format!("{h}d"), n(d)), (format!("{h}f"), n(f))])
                .collect();
            set.push("hb = :fresh".into());
            request = request
                .expression_attribute_values(":fresh", AttributeValue::M(counts))
                .condition_expression("attribute_not_exists(#hour) OR #hour < :since");
        } else {
            request = request
                .expression_attribute_values(":zero", n(0))
                .condition_expression("#hour >= :since");
            for (i, (h, (d, f))) in update.hours.iter().enumerate() {
                for (kind, count) in [("d", d), ("f", f)] {
                    set.push(format!(
                        "hb.#h{i}{kind} = if_not_exists(hb.#h{i}{kind}, :zero) + :c{i}{kind}"
                    ));
                    request = request
                        .expression_attribute_names(format!("#h{i}{kind}"), format!("{h}{kind}"))
                        .expression_attribute_values(format!(":c{i}{kind}"), n(count));
                }
            }
            // The hours that have just left the window of the window: nobody reads them.
            for (i, old) in (hour - 2 * WINDOW_HOURS + 1..=hour - WINDOW_HOURS)
                .filter(|h| !update.hours.contains_key(h))
                .enumerate()
            {
                for kind in ["d", "f"] {
                    remove.push(format!("hb.#o{i}{kind}"));
                    request = request
                        .expression_attribute_names(format!("#o{i}{kind}"), format!("{old}{kind}"));
                }
            }
        }
        if let Some(at) = update.last_success_at {
            set.push("last_success_at = :ls".into());
            request = request.expression_attribute_values(":ls", n(at));
        }
        if let Some((at, code, error)) = &update.last_failure {
            set.push("last_failure_at = :lf".into());
            request = request.expression_attribute_values(":lf", n(at));
            match code {
                Some(code) => {
                    set.push("last_status_code = :lc".into());
                    request = request.expression_attribute_values(":lc", n(code));
                }
                None => remove.push("last_status_code".into()),
            }
            match error {
                Some(error) => {
                    set.push("last_error = :le".into());
                    request = request.expression_attribute_values(":le", s(error));
                }
                None => remove.push("last_error".into()),
            }
        }
        match update.failing {
            Failing::Unchanged => {}
            Failing::Cleared => remove.push("failing_since".into()),
            Failing::Since(at) => {
                set.push("failing_since = if_not_exists(failing_since, :fs)".into());
                request = request.expression_attribute_values(":fs", n(at));
            }
            Failing::SinceExactly(at) => {
                set.push("failing_since = :fs".into());
                request = request.expression_attribute_values(":fs", n(at));
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let out = request.update_expression(expression).send().await?;
        Ok(out.attributes().map(Self::decode).unwrap_or_default())
    }
}

#[async_trait]
impl HealthStore for DynamoHealthStore {
    async fn record(
        &self,
        project: &str,
        webhook_id: &str,
        update: &Update,
        now: Millis,
        expires_at: Millis,
    ) -> Result<HealthRecord, StoreError> {
        // Written within a window: add to the hours (the common case, one write). If
        // not, start them afresh; and if another writer started them meanwhile, add.
        let mut fresh = false;
        for _ in 0..3 {
            match self
                .write(project, webhook_id, update, now, expires_at, fresh)
                .await
            {
                Ok(record) => return Ok(record),
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().is_conditional_check_failed_exception() =>
                {
                    fresh = !fresh;
                }
                Err(other) => return Err(unavailable(other)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn get(
        &self,
        project: &str,
        webhook_ids: &[String],
    ) -> Result<HashMap<String, HealthRecord>, StoreError> {
        let keys: Vec<(String, String)> = webhook_ids
            .iter()
            .map(|w| (w.clone(), HEALTH_KEY.to_string()))
            .collect();
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|(w, k)| {
                    Item::from([
                        ("webhook_key".to_string(), DynamoAttemptLog::key(project, w)),
                        ("attempt_key".to_string(), s(k)),
                    ])
                })
                .collect();
            for _ in 0..5 {
                if wanted.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .build()
                    .map_err(unavailable)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some((_, webhook)) = get_s(item, "webhook_key")?.split_once('#') {
                        found.insert(webhook.to_string(), Self::decode(item));
                    }
                }
                if let Some(left) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    wanted = left.keys().to_vec();
                }
            }
        }
        Ok(found)
    }

    async fn clear_failing(&self, project: &str, webhook_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("webhook_key", DynamoAttemptLog::key(project, webhook_id))
            .key("attempt_key", s(HEALTH_KEY))
            .update_expression("REMOVE failing_since")
            .condition_expression("attribute_exists(attempt_key)")
            .send()
            .await;
        // No record: nothing to forget.
        condition_held(result).map(|_| ())
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
/// The events table's index of a project's events by age (`project_id`, `listed_key`),
/// projecting what the events listing shows.
pub const EVENTS_BY_PROJECT_INDEX: &str = "by_project";
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
            .item("doc", encode_deflated_doc(&doc)?)
            .item("complete", AttributeValue::Bool(record.complete))
            .item("lease_until", n(record.lease_until));
        if !record.complete {
            put = put.item("sweep", s(sweep_shard(&key)));
        }
        // What the `by_project` index lists.
        let summary = record.summary();
        put = put
            .item("project_id", s(&record.project_id))
            .item("listed_key", s(record.listed_key()))
            .item("event_type", s(&summary.event_type))
            .item("event_ts", n(summary.timestamp))
            .item("matched", n(summary.matched));
        if let Some(channel) = &summary.channel {
            put = put.item("channel", s(channel));
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
        let mut record: EventRecord = decode_deflated_doc(item)?;
        record.complete = matches!(item.get("complete"), Some(AttributeValue::Bool(true)));
        if record.complete {
            record.enqueued = record.deliveries.keys().cloned().collect();
        } else if let Some(AttributeValue::Ss(ids)) = item.get("enqueued") {
            record.enqueued = ids.iter().cloned().collect();
        }
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
        // Complete: out of the sweep's index, and no set of what was enqueued (every
        // delivery was; `get` says so): the item stays the size it was created at, which
        // is what the write is billed by. Not complete: what was sent is noted, and the
        // lease given up for whoever finishes it next.
        let expression = if complete {
            update = update.expression_attribute_values(":yes", AttributeValue::Bool(true));
            "SET complete = :yes REMOVE sweep, enqueued".to_string()
        } else {
            update = update.expression_attribute_values(":now", n(now));
            if webhook_ids.is_empty() {
                "SET lease_until = :now".to_string()
            } else {
                update = update
                    .expression_attribute_values(":ids", AttributeValue::Ss(webhook_ids.to_vec()));
                "SET lease_until = :now ADD enqueued :ids".to_string()
            }
        };
        update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| conditional(e, StoreError::Conflict))?;
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
        let mut found: Vec<(String, super::EventSummary)> = Vec::new();
        let mut start: Option<Item> = after.map(|a| {
            Item::from([
                ("project_id".to_string(), s(project)),
                ("listed_key".to_string(), s(a)),
                (
                    "event_key".to_string(),
                    s(format!(
                        "{project}#{}",
                        a.split_once('#').map_or("", |(_, e)| e)
                    )),
                ),
            ])
        });
        let mut filter = "expires_at > :now".to_string();
        if event_type.is_some() {
            filter.push_str(" AND event_type = :type");
        }
        for _ in 0..MAX_SCAN_PAGES {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(EVENTS_BY_PROJECT_INDEX)
                .key_condition_expression("project_id = :p")
                .filter_expression(&filter)
                .expression_attribute_values(":p", s(project))
                .expression_attribute_values(":now", n(now / 1000))
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if let Some(t) = event_type {
                query = query.expression_attribute_values(":type", s(t));
            }
            let out = query.send().await.map_err(unavailable)?;
            for item in out.items() {
                let key = get_s(item, "listed_key")?;
                let id = key.split_once('#').map_or("", |(_, e)| e).to_string();
                found.push((
                    key.to_string(),
                    super::EventSummary {
                        id,
                        event_type: get_s(item, "event_type")?.to_string(),
                        channel: item.get("channel").and_then(|v| v.as_s().ok()).cloned(),
                        timestamp: get_n(item, "event_ts")?,
                        matched: usize::try_from(get_n(item, "matched")?).unwrap_or(0),
                    },
                ));
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && found.len() <= limit => start = Some(key.clone()),
                _ => {
                    start = None;
                    break;
                }
            }
        }
        // Stopped short (the type filter dropped page after page): go on after the last
        // event read.
        let stopped = start
            .as_ref()
            .and_then(|key| key.get("listed_key"))
            .and_then(|key| key.as_s().ok())
            .cloned();
        Ok(Page::from_overfetch(found, limit, |(k, _)| k.clone())
            .map(|(_, e)| e)
            .or_after(stopped))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery's item as the attempt log writes it, with these history entries.
    fn delivery_item(entries: &[String]) -> Item {
        delivery_item_of(entries.iter().map(s).collect())
    }

    fn delivery_item_of(entries: Vec<AttributeValue>) -> Item {
        [
            ("webhook_key", s("proj_1#wh_1")),
            ("attempt_key", s("msg_1")),
            ("status", s("retrying")),
            ("event_id", s("ev_1")),
            ("event_type", s("a.b")),
            ("attempts", n(1)),
            ("created_at", n(1_000)),
            ("updated_at", n(2_000)),
            ("history", AttributeValue::L(entries)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn an_attempt() -> Attempt {
        Attempt {
            id: "att_1".into(),
            project_id: "proj_1".into(),
            event_id: "ev_1".into(),
            event_type: "a.b".into(),
            webhook_id: "wh_1".into(),
            delivery_id: "msg_1".into(),
            attempt: 1,
            status: AttemptStatus::Retrying,
            status_code: Some(503),
            duration_ms: 12,
            error: Some("HTTP 503".into()),
            response_excerpt: Some("busy".into()),
            next_attempt_at: Some(61_000),
            created_at: 1_000,
        }
    }

    #[test]
    fn history_entries_written_whole_or_slim_read_back_the_same() {
        let attempt = an_attempt();
        let slim = serde_json::to_string(&HistoryEntry::of(&attempt)).unwrap();
        let whole = serde_json::to_string(&attempt).unwrap();
        assert!(slim.len() + 60 < whole.len(), "{slim}");
        for entry in [slim, whole] {
            let delivery = DynamoAttemptLog::decode(&delivery_item(&[entry])).unwrap();
            assert_eq!(delivery.history, vec![attempt.clone()]);
        }
    }

    #[test]
    fn history_entries_are_deflated_where_that_is_smaller_and_read_back_the_same() {
        let mut attempt = an_attempt();
        // A short first attempt's entry stays text; the same entry of a later attempt
        // is deflated.
        assert!(
            encode_history_entry(&HistoryEntry::of(&attempt))
                .unwrap()
                .is_s()
        );
        attempt.attempt = 2;
        let small = encode_history_entry(&HistoryEntry::of(&attempt)).unwrap();
        assert!(small.is_b());
        let retried = attempt.clone();
        attempt.attempt = 1;
        attempt.response_excerpt = Some(format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>The server is taking too long to answer.</p>".repeat(20)
        ));
        let page = encode_history_entry(&HistoryEntry::of(&attempt)).unwrap();
        let json = serde_json::to_string(&HistoryEntry::of(&attempt)).unwrap();
        let deflated = page.as_b().unwrap().as_ref().len();
        assert!(deflated * 3 < json.len(), "{deflated} of {}", json.len());
        // Text and binary entries side by side, as an item written across the change holds.
        let text = s(serde_json::to_string(&HistoryEntry::of(&an_attempt())).unwrap());
        let delivery =
            DynamoAttemptLog::decode(&delivery_item_of(vec![text, small, page])).unwrap();
        assert_eq!(delivery.history, vec![an_attempt(), retried, attempt]);
        // An entry that does not inflate, or is neither, is a corrupt record.
        for broken in [
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0xff; 16])),
            n(1),
        ] {
            assert!(matches!(
                DynamoAttemptLog::decode(&delivery_item_of(vec![broken])),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn a_blob_that_would_inflate_past_the_limit_is_refused() {
        // 9 MiB of zeros deflate to a few KiB: a bomb, not a record of ours.
        let bomb = deflate(&vec![0u8; 9 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        assert!(inflate(&bomb).is_err());
        let item: Item = [(
            "doc".to_string(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bomb.clone())),
        )]
        .into();
        assert!(matches!(
            decode_deflated_doc::<serde_json::Value>(&item),
            Err(StoreError::Corrupt(_))
        ));
        let entry = AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bomb));
        assert!(matches!(
            decode_history_entry(&entry),
            Err(StoreError::Corrupt(_))
        ));
        // Just under the limit inflates whole.
        let big = deflate(&vec![b' '; (8 << 20) - 1]);
        assert_eq!(inflate(&big).ok().map(|v| v.len()), Some((8 << 20) - 1));
    }
}
