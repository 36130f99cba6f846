//! The SQLite store's thread event logs: a row per event.

use async_trait::async_trait;

use super::*;
use crate::store::{ThreadEventBatch, ThreadLogStore};

#[async_trait]
impl ThreadLogStore for SqliteStore {
    async fn add_thread_events(&self, thread_id: Uuid, batch: &ThreadEventBatch) -> StoreResult<()> {
        let thread_id = thread_id.to_string();
        let rows = batch
            .events
            .iter()
            .map(|event| Ok((event.seq as i64, to_json(&**event)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let expires_ms = batch.expires_at.datetime().timestamp_millis();
        self.write(move |tx| {
            // A deleted thread keeps no events: none are added after it has gone.
            if tx
                .query_row("SELECT 1 FROM threads WHERE thread_id = ?1", params![thread_id], |_| Ok(()))
                .optional()?
                .is_none()
            {
                return Ok(());
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO thread_events (thread_id, seq, body, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (seq, body) in &rows {
                insert.execute(params![thread_id, seq, body, expires_ms])?;
            }
            if rows.first().is_some_and(|(seq, _)| *seq == 1) {
                super::expiry::purge_thread_events(tx, Timestamp::now())?;
            }
            Ok(())
        })
        .await
    }

    async fn thread_events(&self, thread_id: Uuid, since: u64, limit: usize) -> StoreResult<Vec<ThreadEvent>> {
        let thread_id = thread_id.to_string();
        self.call(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT body FROM thread_events WHERE thread_id = ?1 AND seq > ?2 AND expires_ms > ?3 ORDER BY seq LIMIT ?4",
            )?;
            let now = Timestamp::now().datetime().timestamp_millis();
            let rows = statement.query_map(params![thread_id, since as i64, now, limit as i64], |row| row.get::<_, String>(0))?;
            rows.map(|body| from_json(&body?)).collect()
        })
        .await
    }

    async fn last_thread_event(&self, thread_id: Uuid) -> StoreResult<u64> {
        let thread_id = thread_id.to_string();
        self.call(move |connection| {
            let last: Option<i64> = connection.query_row(
                "SELECT MAX(seq) FROM thread_events WHERE thread_id = ?1",
                params![thread_id],
                |row| row.get(0),
            )?;
            Ok(last.unwrap_or(0) as u64)
        })
        .await
    }
}
