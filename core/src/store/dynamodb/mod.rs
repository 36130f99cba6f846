//! DynamoDB: the cloud store. One table, on-demand billing, no Scan on any path.
//!
//! Key design (every key attribute a string):
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` | `gsi2pk` / `gsi2sk` |
//! |---|---|---|---|---|
//! | assistant | `ASSISTANT#<id>` | `A` | `USER#<user>#ASSISTANTS` / `<updated_at>#<id>` | `PUBLIC#ASSISTANTS` / `<updated_at>#<id>`, only while public (sparse) |
//! | thread | `THREAD#<id>` | `M` | `USER#<user>#THREADS` / `<updated_at>#<id>` | `THREADS#EXPIRING` / `<expires_at>#<id>`, only with a `ttl` (sparse) |
//! | message (part) | `THREAD#<id>` | `M#<seq, 12 digits>#<part, 3 digits>` | – | – |
//! | the branches forks left behind (one JSON list) | `THREAD#<id>` | `L` | – | – |
//! | run | `RUN#<run_id>` | `R` | – | – |
//! | run pointer | `THREAD#<id>` | `R#<run_id>` | – | – |
//! | a run's kept stream events (a batch, or a part of one) | `RUN#<run_id>` | `E#<batch, 10 digits>#<part, 3 digits>` | – | – |
//! | feedback | `THREAD#<id>` | `F#<run_id>#<created_at>#<feedback_id>` | – | – |
//! | a user's running runs (with `MAX_RUNS_PER_USER`) | `USER#<user>` | `RUNS` | – | – |
//! | a cron | `CRON#<id>` | `C` | `USER#<user>#CRONS` / `<created_at>#<id>` | `CRONS` / `<created_at>#<id>` |
//! | a memory item (the LangGraph store) | `MEMORY#<user>` | `I#<namespace labels, each ending in U+001F>U+001E<key>` | – | – |
//!
//! Access patterns:
//! - an assistant, a thread, a run: GetItem; ownership is checked on the item's `user_id`.
//! - a user's assistants or threads, newest first: Query `gsi1` descending.
//! - public assistants: Query the sparse `gsi2`.
//! - a thread's messages: one Query of the thread's partition for `sk` beginning with `M`. It
//!   returns the thread item first (checking ownership) and then the messages in order.
//! - append: the thread item's `next_seq` is the last sequence number given out, and the
//!   thread's revision. A writer that knows it writes the messages in one TransactWriteItems that
//!   moves it on, on condition that it has not moved; otherwise one UpdateItem reserves a range
//!   of numbers (only if the user owns the thread), then one TransactWriteItems writes them.
//! - a message larger than an item is stored in parts under consecutive `sk`s and rejoined on read.
//! - start a run: one TransactWriteItems takes the lease on the thread item (if it is free or
//!   expired, and the thread is at the revision the run read), writes the run, a pointer to it
//!   in the thread's partition and the run's input. When it fails on its condition, the thread
//!   item comes back with the refusal: busy, gone, or moved on (then it is tried again there).
//! - end a run: one TransactWriteItems adds its answer, records its status and gives the lease
//!   back (on condition that the run holds it and the thread is where the run left it).
//! - delete a thread: one Query of its partition (checking the owner on the thread item), then
//!   everything in it but the thread item and the runs it points to, in batches; the thread item
//!   last (conditionally on its owner), so a deletion cut short is still there to finish.
//! - expired threads: a Query of the sparse `gsi2` up to now; each is taken as a run takes it
//!   (a lease, on condition that none is held and its expiry is the one read), then deleted.
//! - the per-user run limit: the lease transaction also adds `<run_id>#<thread_id>` to the user's
//!   `active` string set, on condition that it holds fewer than the limit. Runs give back their
//!   thread, not their place: when the set looks full, places whose runs no longer hold their
//!   thread are dropped (a GetItem per place) and the start is tried once more.
//! - a run's kept stream events: one PutItem per batch (a run writes at most one batch per
//!   250 ms); a join reads them with one Query of the run's partition from the batch it has
//!   reached. They carry `expires_at`, the table's TTL attribute, and go with their thread.
//! - a user's memory items: GetItem, PutItem, DeleteItem by namespace and key; a search or a
//!   list of namespaces is one Query of the user's partition for `sk` beginning with the prefix.
//! - crons: GetItem, an UpdateItem to create or replace (on its owner) and one to claim a slot
//!   (on the last slot being earlier); a user's crons are a Query of `gsi1`, everyone's (what a
//!   scheduler in one process fires) a Query of `gsi2`.
//! - a run's feedback: one Query of its thread's partition for `sk` beginning with `F#<run_id>#`;
//!   it goes when the thread goes.
//! - creates and replaces are conditional on the owner: a PUT cannot take over another user's id.
//! - ingested files: a namespace's partition (`documents.rs`), read with one Query; deleted
//!   with their assistant or thread.

mod assistants;
mod crons;
mod documents;
mod errors;
mod events;
mod expiry;
mod memories;
mod requests;
mod run_writes;
mod runs;
mod table;
mod thread_log;
mod threads;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use requests::RequestCounter;
pub use table::{TableDefinition, TABLE};

use super::{Entity, Store, StoreError, StoreResult};
use crate::config::DynamoSettings;
use crate::model::{Assistant, UserId};
use errors::{backend, conditional, sdk_error};
use requests::CountRequests;
use table::{assistant_pk, body, key, order_key, s, to_json, Item};

/// BatchWriteItem takes at most 25 requests.
const BATCH_ITEMS: usize = 25;

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
                    .operation_attempt_timeout(settings.attempt_timeout)
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

    /// A TransactWriteItems with a token of its own. The SDK sends the same token when it retries
    /// (after a throttle, a 500, a dropped connection), so a transaction that landed but whose
    /// answer was lost is not applied twice: DynamoDB answers the retry with success for ten
    /// minutes. Each of our own attempts is a new transaction, with a new token.
    pub(super) fn transaction(
        &self,
    ) -> aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder {
        self.client.transact_write_items().client_request_token(Uuid::new_v4().to_string())
    }

    pub fn requests(&self) -> Arc<RequestCounter> {
        self.requests.clone()
    }

    pub(super) async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
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

    /// Deletes keys in batches of 25, retrying what DynamoDB leaves unprocessed.
    pub(super) async fn delete_all(&self, keys: Vec<Item>) -> StoreResult<()> {
        let requests: Vec<WriteRequest> = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(backend)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<StoreResult<_>>()?;
        self.write_all(requests).await
    }

    /// Writes in batches of 25, retrying what DynamoDB leaves unprocessed.
    async fn write_all(&self, writes: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in writes.chunks(BATCH_ITEMS) {
            let mut requests = chunk.to_vec();
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
    pub(super) async fn delete_owned(&self, key: Item, user: &UserId, entity: Entity) -> StoreResult<()> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        conditional(deleted, Err(StoreError::NotFound(entity)))
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

#[async_trait]
impl Store for DynamoStore {
    async fn warm_up(&self) {
        // A read of a key that never exists: allowed to every function, and opens the connection.
        let _ = self.get("WARMUP".into(), "-").await;
    }
}
