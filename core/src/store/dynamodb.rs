//! DynamoDB: the cloud store. One table, on-demand billing, no Scan on any path.
//!
//! Key design (every key attribute a string):
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` | `gsi2pk` / `gsi2sk` |
//! |---|---|---|---|---|
//! | assistant | `ASSISTANT#<id>` | `A` | `USER#<user>#ASSISTANTS` / `<updated_at>#<id>` | `PUBLIC#ASSISTANTS` / `<updated_at>#<id>`, only while public (sparse) |
//! | thread | `THREAD#<id>` | `M` | `USER#<user>#THREADS` / `<updated_at>#<id>` | – |
//! | message (part) | `THREAD#<id>` | `M#<seq, 12 digits>#<part, 3 digits>` | – | – |
//! | run | `RUN#<run_id>` | `R` | – | – |
//! | run pointer | `THREAD#<id>` | `R#<run_id>` | – | – |
//!
//! Access patterns:
//! - an assistant, a thread, a run: GetItem; ownership is checked on the item's `user_id`.
//! - a user's assistants or threads, newest first: Query `gsi1` descending.
//! - public assistants: Query the sparse `gsi2`.
//! - a thread's messages: one Query of the thread's partition for `sk` beginning with `M`. It
//!   returns the thread item first (checking ownership) and then the messages in order.
//! - append: one UpdateItem on the thread item reserves a range of sequence numbers (only if the
//!   user owns the thread), then one TransactWriteItems writes the messages all or nothing.
//! - a message larger than an item is stored in parts under consecutive `sk`s and rejoined on read.
//! - start a run: one TransactWriteItems takes the lease on the thread item (if it is free or
//!   expired), writes the run and a pointer to it in the thread's partition.
//! - delete a thread: the thread item goes first (conditionally on its owner), then everything in
//!   its partition and the runs it points to, in batches.
//! - creates and replaces are conditional on the owner: a PUT cannot take over another user's id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::{Entity, Store, StoreError, StoreResult};
use crate::config::DynamoSettings;
use crate::model::{Assistant, Message, Run, Thread, Timestamp, UserId};

/// The table's keys and indexes: the one definition that `template.yaml` must match.
pub struct TableDefinition {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// (index name, partition key, sort key); every index projects all attributes.
    pub indexes: &'static [(&'static str, &'static str, &'static str)],
}

pub const TABLE: TableDefinition = TableDefinition {
    partition_key: "pk",
    sort_key: "sk",
    indexes: &[("gsi1", "gsi1pk", "gsi1sk"), ("gsi2", "gsi2pk", "gsi2sk")],
};

/// Largest slice of a message's JSON kept in one item, well under DynamoDB's 400 KB item limit.
const PART_BYTES: usize = 300 * 1024;
/// TransactWriteItems takes at most 100 actions; one is the counter or lease update.
const TRANSACTION_ITEMS: usize = 99;
/// BatchWriteItem takes at most 25 requests.
const BATCH_ITEMS: usize = 25;

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn assistant_pk(id: Uuid) -> String {
    format!("ASSISTANT#{id}")
}

fn thread_pk(id: Uuid) -> String {
    format!("THREAD#{id}")
}

fn run_pk(id: Uuid) -> String {
    format!("RUN#{id}")
}

fn order_key(updated_at: Timestamp, id: Uuid) -> String {
    format!("{}#{id}", updated_at.to_rfc3339())
}

fn message_sk(seq: u64, part: usize) -> String {
    format!("M#{seq:012}#{part:03}")
}

fn millis(at: Timestamp) -> i64 {
    at.datetime().timestamp_millis()
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("dynamodb: {error}"))
}

/// Service errors keep their message; transport ones their cause chain.
fn sdk_error<E: std::error::Error + 'static>(error: SdkError<E>) -> StoreError {
    match error.as_service_error() {
        Some(service) => backend(service),
        None => backend(aws_sdk_dynamodb::error::DisplayErrorContext(&error)),
    }
}

fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|error| backend(format!("could not encode a record: {error}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| backend(format!("a stored record is unreadable: {error}")))
}

fn text<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(backend(format!("item has no string attribute {name}"))),
    }
}

fn has(item: &Item, name: &str, value: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::S(found)) if found == value)
}

/// The item if it exists and `user` owns it; otherwise `NotFound`, whichever was the case.
fn owned(item: Option<Item>, user: &UserId, entity: Entity) -> StoreResult<Item> {
    item.filter(|item| has(item, "user_id", user.as_str())).ok_or(StoreError::NotFound(entity))
}

fn body<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    from_json(text(item, "body")?)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

/// Splits text into parts of at most `PART_BYTES`, never inside a character.
fn split_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > PART_BYTES {
        let mut cut = PART_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// Counts the requests this process sends to DynamoDB (retries included): how the README's
/// per-endpoint request counts are measured.
#[derive(Debug, Default)]
pub struct RequestCounter(AtomicU64);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct CountRequests(Arc<RequestCounter>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0 .0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<i32>,
    requests: Arc<RequestCounter>,
}

impl DynamoStore {
    /// Builds the client once (explicit retries and timeouts), and the table if asked.
    pub async fn connect(settings: DynamoSettings) -> StoreResult<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let requests = Arc::new(RequestCounter::default());
        let config =
            aws_sdk_dynamodb::config::Builder::from(&shared).interceptor(CountRequests(requests.clone())).build();
        let store = DynamoStore {
            client: Client::from_conf(config),
            table: settings.table,
            page_size: settings.page_size,
            requests,
        };
        if settings.create_table {
            store.create_table_if_missing().await?;
        }
        Ok(store)
    }

    pub fn requests(&self) -> Arc<RequestCounter> {
        self.requests.clone()
    }

    pub async fn create_table_if_missing(&self) -> StoreResult<()> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(sdk_error(error)),
        }
        let string_key = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        };
        let key_element = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(backend)
        };
        let mut create = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_key(TABLE.partition_key)?)
            .attribute_definitions(string_key(TABLE.sort_key)?)
            .key_schema(key_element(TABLE.partition_key, KeyType::Hash)?)
            .key_schema(key_element(TABLE.sort_key, KeyType::Range)?);
        for (name, pk, sk) in TABLE.indexes {
            create = create.attribute_definitions(string_key(pk)?).attribute_definitions(string_key(sk)?);
            let index = GlobalSecondaryIndex::builder()
                .index_name(*name)
                .key_schema(key_element(pk, KeyType::Hash)?)
                .key_schema(key_element(sk, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(backend)?;
            create = create.global_secondary_indexes(index);
        }
        match create.send().await {
            Ok(_) => Ok(()),
            // Another process created it first.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
            Err(error) => Err(sdk_error(error)),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await;
        Ok(output.map_err(sdk_error)?.item)
    }

    /// Every item of a Query, following `LastEvaluatedKey` across pages (an empty or absent one ends it).
    async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        newest_first: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take())
                .set_limit(self.page_size);
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            query = match index {
                Some(index) => query.index_name(index),
                None => query.consistent_read(true),
            };
            let page = query.send().await.map_err(sdk_error)?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    async fn list<T: DeserializeOwned>(&self, index: &str, pk_name: &str, pk: String) -> StoreResult<Vec<T>> {
        let condition = format!("{pk_name} = :pk");
        let items = self.query_all(Some(index), &condition, vec![(":pk", s(pk))], true).await?;
        items.iter().map(body).collect()
    }

    /// The thread's item and its messages (rejoined from their parts), in one Query.
    async fn thread_and_messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<(Item, Vec<(u64, Message)>)> {
        let values = vec![(":pk", s(thread_pk(thread_id))), (":m", s("M"))];
        let mut items = self.query_all(None, "pk = :pk AND begins_with(sk, :m)", values, false).await?.into_iter();
        let thread = owned(items.next().filter(|item| has(item, "sk", "M")), user, Entity::Thread)?;
        let mut messages: Vec<(u64, Message)> = Vec::new();
        let mut pending: Option<(u64, String)> = None;
        for item in items {
            let sk = text(&item, "sk")?;
            let seq: u64 = sk
                .get(2..14)
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| backend(format!("bad sort key {sk}")))?;
            match &mut pending {
                Some((current, json)) if *current == seq => json.push_str(text(&item, "body")?),
                _ => {
                    if let Some((done, json)) = pending.take() {
                        messages.push((done, from_json(&json)?));
                    }
                    pending = Some((seq, text(&item, "body")?.to_string()));
                }
            }
        }
        if let Some((done, json)) = pending {
            messages.push((done, from_json(&json)?));
        }
        Ok((thread, messages))
    }

    /// The items holding one message: one, or several parts when it is large.
    fn message_items(&self, thread_id: Uuid, seq: u64, message: &Message) -> StoreResult<Vec<Item>> {
        let json = to_json(message)?;
        Ok(split_parts(&json)
            .into_iter()
            .enumerate()
            .map(|(part, slice)| {
                let mut item = key(thread_pk(thread_id), &message_sk(seq, part));
                item.insert("body".into(), s(slice));
                if let Some(id) = &message.id {
                    item.insert("message_id".into(), s(id));
                }
                item
            })
            .collect())
    }

    /// Reserves `count` sequence numbers on a thread the user owns; returns the first.
    async fn reserve(&self, user: &UserId, thread_id: Uuid, count: usize) -> StoreResult<u64> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression("ADD next_seq :count")
            .condition_expression("user_id = :user")
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":user", s(user.as_str()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let output = match output {
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Err(StoreError::NotFound(Entity::Thread))
            }
            other => other.map_err(sdk_error)?,
        };
        let last = output
            .attributes
            .as_ref()
            .and_then(|item| number(item, "next_seq"))
            .ok_or_else(|| backend("no next_seq"))?;
        Ok(last as u64 - count as u64 + 1)
    }

    /// Writes items all or nothing (in as few transactions as the limits allow).
    async fn put_all(&self, items: Vec<Item>) -> StoreResult<()> {
        for chunk in items.chunks(TRANSACTION_ITEMS) {
            let mut transaction = self.client.transact_write_items();
            for item in chunk {
                let put =
                    Put::builder().table_name(&self.table).set_item(Some(item.clone())).build().map_err(backend)?;
                transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
            }
            transaction.send().await.map_err(sdk_error)?;
        }
        Ok(())
    }

    /// Deletes keys in batches of 25, retrying what DynamoDB leaves unprocessed.
    async fn delete_all(&self, keys: Vec<Item>) -> StoreResult<()> {
        for chunk in keys.chunks(BATCH_ITEMS) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let delete = DeleteRequest::builder().set_key(Some(key.clone())).build().map_err(backend)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<StoreResult<_>>()?;
            for attempt in 0.. {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                requests = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(backend("could not finish a batch delete"));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }

    /// Deletes an item only if `user` owns it; otherwise (or if absent) `NotFound`.
    async fn delete_owned(&self, key: Item, user: &UserId, entity: Entity) -> StoreResult<()> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        match deleted {
            Err(error) if is_conditional(&error) => Err(StoreError::NotFound(entity)),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }

    fn conditional_put(
        &self,
        item: Item,
        owner: &UserId,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(owner.as_str()))
    }
}

fn is_conditional<E>(error: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl Store for DynamoStore {
    async fn warm_up(&self) {
        // A read of a key that never exists: allowed to every function, and opens the connection.
        let _ = self.get("WARMUP".into(), "-").await;
    }

    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let mut item = key(assistant_pk(assistant.assistant_id), "A");
        let order = order_key(assistant.updated_at, assistant.assistant_id);
        item.insert("user_id".into(), s(assistant.user_id.as_str()));
        item.insert("body".into(), s(to_json(assistant)?));
        item.insert("gsi1pk".into(), s(format!("USER#{}#ASSISTANTS", assistant.user_id)));
        item.insert("gsi1sk".into(), s(order.clone()));
        if assistant.public {
            item.insert("gsi2pk".into(), s("PUBLIC#ASSISTANTS"));
            item.insert("gsi2sk".into(), s(order));
        }
        match self.conditional_put(item, &assistant.user_id).send().await {
            Err(error) if is_conditional(&error) => Err(StoreError::NotFound(Entity::Assistant)),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        let item = self.get(assistant_pk(assistant_id), "A").await?.ok_or(StoreError::NotFound(Entity::Assistant))?;
        let assistant: Assistant = body(&item)?;
        if &assistant.user_id == user || assistant.public {
            Ok(assistant)
        } else {
            Err(StoreError::NotFound(Entity::Assistant))
        }
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        self.list("gsi1", "gsi1pk", format!("USER#{user}#ASSISTANTS")).await
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        self.list("gsi2", "gsi2pk", "PUBLIC#ASSISTANTS".into()).await
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        self.delete_owned(key(assistant_pk(assistant_id), "A"), user, Entity::Assistant).await
    }

    async fn put_thread(&self, thread: &Thread) -> StoreResult<()> {
        // An update, not a put: the item also carries the message counter and the run lease.
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread.thread_id), "M")))
            .update_expression("SET user_id = :user, body = :body, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk")
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(thread.user_id.as_str()))
            .expression_attribute_values(":body", s(to_json(thread)?))
            .expression_attribute_values(":gsi1pk", s(format!("USER#{}#THREADS", thread.user_id)))
            .expression_attribute_values(":gsi1sk", s(order_key(thread.updated_at, thread.thread_id)))
            .send()
            .await;
        match updated {
            Err(error) if is_conditional(&error) => Err(StoreError::NotFound(Entity::Thread)),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }

    async fn get_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Thread> {
        body(&owned(self.get(thread_pk(thread_id), "M").await?, user, Entity::Thread)?)
    }

    async fn list_threads(&self, user: &UserId) -> StoreResult<Vec<Thread>> {
        self.list("gsi1", "gsi1pk", format!("USER#{user}#THREADS")).await
    }

    async fn delete_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
        self.delete_owned(key(thread_pk(thread_id), "M"), user, Entity::Thread).await?;
        let items = self.query_all(None, "pk = :pk", vec![(":pk", s(thread_pk(thread_id)))], false).await?;
        let mut keys = Vec::with_capacity(items.len());
        for item in &items {
            let sk = text(item, "sk")?;
            if let Some(run_id) = sk.strip_prefix("R#") {
                keys.push(key(format!("RUN#{run_id}"), "R"));
            }
            keys.push(key(thread_pk(thread_id), sk));
        }
        self.delete_all(keys).await
    }

    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>> {
        let (_, messages) = self.thread_and_messages(user, thread_id).await?;
        Ok(messages.into_iter().map(|(_, message)| message).collect())
    }

    async fn thread_with_messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<(Thread, Vec<Message>)> {
        let (thread, messages) = self.thread_and_messages(user, thread_id).await?;
        Ok((body(&thread)?, messages.into_iter().map(|(_, message)| message).collect()))
    }

    async fn append_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        if messages.is_empty() {
            return self.get_thread(user, thread_id).await.map(|_| ());
        }
        let first = self.reserve(user, thread_id, messages.len()).await?;
        let mut items = Vec::with_capacity(messages.len());
        for (offset, message) in messages.iter().enumerate() {
            items.extend(self.message_items(thread_id, first + offset as u64, message)?);
        }
        self.put_all(items).await
    }

    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        let (_, stored) = self.thread_and_messages(user, thread_id).await?;
        let seq_of: HashMap<&str, (u64, usize)> = stored
            .iter()
            .filter_map(|(seq, message)| {
                let parts = split_parts(&to_json(message).ok()?).len();
                Some((message.id.as_deref()?, (*seq, parts)))
            })
            .collect();
        let mut replacements = Vec::new();
        let mut stale_parts = Vec::new();
        let mut appended = Vec::new();
        for message in messages {
            match message.id.as_deref().and_then(|id| seq_of.get(id)) {
                Some(&(seq, old_parts)) => {
                    let items = self.message_items(thread_id, seq, message)?;
                    stale_parts
                        .extend((items.len()..old_parts).map(|part| key(thread_pk(thread_id), &message_sk(seq, part))));
                    replacements.extend(items);
                }
                None => appended.push(message.clone()),
            }
        }
        self.put_all(replacements).await?;
        self.delete_all(stale_parts).await?;
        self.append_messages(user, thread_id, &appended).await
    }

    async fn start_run(&self, run: &Run, lease: Duration) -> StoreResult<()> {
        let now = Timestamp::now();
        let take_lease = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(run.thread_id), "M")))
            .update_expression("SET lease_run_id = :run, lease_expires = :expires")
            .condition_expression("user_id = :user AND (attribute_not_exists(lease_run_id) OR lease_expires <= :now)")
            .expression_attribute_values(":run", s(run.run_id.to_string()))
            .expression_attribute_values(":expires", n(millis(now.plus(lease))))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":user", s(run.user_id.as_str()))
            .build()
            .map_err(backend)?;
        let mut record = key(run_pk(run.run_id), "R");
        record.insert("user_id".into(), s(run.user_id.as_str()));
        record.insert("body".into(), s(to_json(run)?));
        let pointer = key(thread_pk(run.thread_id), &format!("R#{}", run.run_id));
        let mut transaction =
            self.client.transact_write_items().transact_items(TransactWriteItem::builder().update(take_lease).build());
        for item in [record, pointer] {
            let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(backend)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let lease_refused = match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                        cancelled.cancellation_reasons().first().and_then(|reason| reason.code())
                            == Some("ConditionalCheckFailed")
                    }
                    _ => false,
                };
                if !lease_refused {
                    return Err(sdk_error(error));
                }
                let thread = owned(self.get(thread_pk(run.thread_id), "M").await?, &run.user_id, Entity::Thread)?;
                let holder = text(&thread, "lease_run_id").ok().and_then(|id| Uuid::parse_str(id).ok());
                Err(StoreError::ThreadBusy { run_id: holder.unwrap_or(Uuid::nil()) })
            }
        }
    }

    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        body(&owned(self.get(run_pk(run_id), "R").await?, user, Entity::Run)?)
    }

    async fn update_run(&self, run: &Run) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run.run_id), "R")))
            .update_expression("SET body = :body")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":body", s(to_json(run)?))
            .send()
            .await;
        match updated {
            Err(error) if is_conditional(&error) => Err(StoreError::NotFound(Entity::Run)),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }

    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
        let renewed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression("SET lease_expires = :expires")
            .condition_expression("lease_run_id = :run")
            .expression_attribute_values(":expires", n(millis(Timestamp::now().plus(lease))))
            .expression_attribute_values(":run", s(run_id.to_string()))
            .send()
            .await;
        match renewed {
            Err(error) if is_conditional(&error) => Err(StoreError::LeaseLost { run_id }),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }

    async fn release_lease(&self, thread_id: Uuid, run_id: Uuid) -> StoreResult<()> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression("REMOVE lease_run_id, lease_expires")
            .condition_expression("lease_run_id = :run")
            .expression_attribute_values(":run", s(run_id.to_string()))
            .send()
            .await;
        match released {
            // Someone else holds it now, or the thread is gone: nothing of ours to give back.
            Err(error) if is_conditional(&error) => Ok(()),
            other => other.map(|_| ()).map_err(sdk_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_rejoin_and_never_split_a_character() {
        let text = "é".repeat(PART_BYTES);
        let parts = split_parts(&text);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| part.len() <= PART_BYTES));
        assert_eq!(parts.concat(), text);
    }
}
