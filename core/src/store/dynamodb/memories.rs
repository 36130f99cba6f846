//! Long-term memory in DynamoDB: a user's items in one partition, sorted by namespace and key,
//! so the items under a namespace prefix are one Query. An item's `expires_at` is the table's TTL
//! attribute; readers skip what has expired and not yet been removed.

use async_trait::async_trait;

use super::errors::sdk_error;
use super::table::{body, key, n, s, to_json};
use super::DynamoStore;
use crate::model::{MemoryItem, Timestamp, UserId};
use crate::store::{MemoryItemStore, StoreResult};

fn memory_pk(owner: &UserId) -> String {
    format!("MEMORY#{owner}")
}

fn memory_sk(sort_key: &str) -> String {
    format!("I#{sort_key}")
}

#[async_trait]
impl MemoryItemStore for DynamoStore {
    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()> {
        let mut record = key(memory_pk(owner), &memory_sk(&MemoryItem::sort_key(&item.namespace, &item.key)));
        record.insert("body".into(), s(to_json(item)?));
        if let Some(expires_at) = item.expires_at {
            record.insert("expires_at".into(), n(expires_at.datetime().timestamp()));
        }
        self.client.put_item().table_name(&self.table).set_item(Some(record)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn get_memory(&self, owner: &UserId, namespace: &[String], name: &str) -> StoreResult<Option<MemoryItem>> {
        let item = self.get(memory_pk(owner), &memory_sk(&MemoryItem::sort_key(namespace, name))).await?;
        let item: Option<MemoryItem> = item.as_ref().map(body).transpose()?;
        Ok(item.filter(|item| !item.expired(Timestamp::now())))
    }

    async fn delete_memory(&self, owner: &UserId, namespace: &[String], name: &str) -> StoreResult<()> {
        let item = key(memory_pk(owner), &memory_sk(&MemoryItem::sort_key(namespace, name)));
        self.client.delete_item().table_name(&self.table).set_key(Some(item)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>> {
        let values = vec![(":pk", s(memory_pk(owner))), (":prefix", s(memory_sk(&MemoryItem::prefix_key(prefix))))];
        let items = self.query_all(None, "pk = :pk AND begins_with(sk, :prefix)", values, false).await?;
        let now = Timestamp::now();
        let items: Vec<MemoryItem> = items.iter().map(body).collect::<StoreResult<_>>()?;
        Ok(items.into_iter().filter(|item| !item.expired(now)).collect())
    }
}
