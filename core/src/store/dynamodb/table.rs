//! The table: its key design (see the module above), the keys of each item, and how items are
//! read and written as attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::errors::{backend, sdk_error};
use super::DynamoStore;
use crate::model::{Timestamp, UserId};
use crate::store::{Entity, StoreError, StoreResult};

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

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn assistant_pk(id: Uuid) -> String {
    format!("ASSISTANT#{id}")
}

pub(super) fn thread_pk(id: Uuid) -> String {
    format!("THREAD#{id}")
}

pub(super) fn run_pk(id: Uuid) -> String {
    format!("RUN#{id}")
}

pub(super) fn order_key(updated_at: Timestamp, id: Uuid) -> String {
    format!("{}#{id}", updated_at.to_rfc3339())
}

pub(super) fn message_sk(seq: u64, part: usize) -> String {
    format!("M#{seq:012}#{part:03}")
}

pub(super) fn millis(at: Timestamp) -> i64 {
    at.datetime().timestamp_millis()
}

pub(super) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|error| backend(format!("could not encode a record: {error}")))
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| backend(format!("a stored record is unreadable: {error}")))
}

pub(super) fn text<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(backend(format!("item has no string attribute {name}"))),
    }
}

pub(super) fn has(item: &Item, name: &str, value: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::S(found)) if found == value)
}

/// The item if it exists and `user` owns it; otherwise `NotFound`, whichever was the case. A
/// thread the sweep is deleting (`deleting`, see `expiry.rs`) is gone already for every reader.
pub(super) fn owned(item: Option<Item>, user: &UserId, entity: Entity) -> StoreResult<Item> {
    item.filter(|item| has(item, "user_id", user.as_str()) && !item.contains_key(DELETING))
        .ok_or(StoreError::NotFound(entity))
}

/// Set on a thread item by the sweep that deletes it, before anything else goes.
pub(super) const DELETING: &str = "deleting";

pub(super) fn body<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    from_json(text(item, "body")?)
}

pub(super) fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

impl DynamoStore {
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
}
