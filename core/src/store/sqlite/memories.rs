//! Long-term memory in SQLite: one row per item, keyed by its owner and sort key.

use async_trait::async_trait;

use super::*;
use crate::store::MemoryItemStore;

impl SqliteStore {
    /// The owner's unexpired items from `start` on while their sort key begins with it
    /// (`exact`: only the one item whose sort key is `start`).
    pub(super) async fn read_memories(
        &self,
        owner: &UserId,
        start: String,
        exact: bool,
    ) -> StoreResult<Vec<MemoryItem>> {
        let owner = owner.to_string();
        self.call(move |connection| {
            let now = Timestamp::now().datetime().timestamp_millis();
            let sql = "SELECT sort_key, body FROM memory_items WHERE owner = ?1 AND sort_key >= ?2
                       AND (expires_ms IS NULL OR expires_ms > ?3) ORDER BY sort_key";
            let mut statement = connection.prepare_cached(sql)?;
            let rows = statement.query_map(params![owner, start, now], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut items = Vec::new();
            for row in rows {
                let (sort_key, body) = row?;
                let within = if exact { sort_key == start } else { sort_key.starts_with(&start) };
                if !within {
                    break;
                }
                items.push(from_json(&body)?);
            }
            Ok(items)
        })
        .await
    }
}

#[async_trait]
impl MemoryItemStore for SqliteStore {
    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()> {
        let (owner, sort_key, body) =
            (owner.to_string(), MemoryItem::sort_key(&item.namespace, &item.key), to_json(item)?);
        let expires_ms = item.expires_at.map(|at| at.datetime().timestamp_millis());
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO memory_items (owner, sort_key, body, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![owner, sort_key, body, expires_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<Option<MemoryItem>> {
        Ok(self.read_memories(owner, MemoryItem::sort_key(namespace, key), true).await?.pop())
    }

    async fn delete_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<()> {
        let (owner, sort_key) = (owner.to_string(), MemoryItem::sort_key(namespace, key));
        self.write(move |tx| {
            tx.execute("DELETE FROM memory_items WHERE owner = ?1 AND sort_key = ?2", params![owner, sort_key])?;
            Ok(())
        })
        .await
    }

    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>> {
        self.read_memories(owner, MemoryItem::prefix_key(prefix), false).await
    }
}
