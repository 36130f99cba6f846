//! The memory store's long-term memory items.

use super::*;
use crate::store::MemoryItemStore;

#[async_trait]
impl MemoryItemStore for MemoryStore {
    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()> {
        let sort_key = MemoryItem::sort_key(&item.namespace, &item.key);
        self.lock().memories.entry(owner.clone()).or_default().insert(sort_key, item.clone());
        Ok(())
    }

    async fn get_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<Option<MemoryItem>> {
        let inner = self.lock();
        let item = inner.memories.get(owner).and_then(|items| items.get(&MemoryItem::sort_key(namespace, key)));
        Ok(item.filter(|item| !item.expired(Timestamp::now())).cloned())
    }

    async fn delete_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<()> {
        if let Some(items) = self.lock().memories.get_mut(owner) {
            items.remove(&MemoryItem::sort_key(namespace, key));
        }
        Ok(())
    }

    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>> {
        let inner = self.lock();
        let start = MemoryItem::prefix_key(prefix);
        let now = Timestamp::now();
        let items = inner.memories.get(owner).into_iter().flat_map(|items| items.range(start.clone()..));
        Ok(items
            .take_while(|(sort_key, _)| sort_key.starts_with(&start))
            .map(|(_, item)| item)
            .filter(|item| !item.expired(now))
            .cloned()
            .collect())
    }
}
