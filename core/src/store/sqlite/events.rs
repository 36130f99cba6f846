//! The SQLite store's kept stream events.

use async_trait::async_trait;

use super::*;
use crate::store::EventStore;

#[async_trait]
impl EventStore for SqliteStore {
    async fn add_run_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()> {
        let (run_id, thread_id, body) = (run.run_id.to_string(), run.thread_id.to_string(), to_json(&batch.events)?);
        let (number, expires_ms) = (batch.number, batch.expires_at.datetime().timestamp_millis());
        self.write(move |tx| {
            // A deleted thread takes its runs' events: none are added after it has gone.
            tx.execute(
                "INSERT OR REPLACE INTO run_events (run_id, thread_id, batch, body, expires_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM threads WHERE thread_id = ?2)",
                params![run_id, thread_id, number as i64, body, expires_ms],
            )?;
            if number == 0 {
                super::expiry::purge_run_events(tx, Timestamp::now())?;
            }
            Ok(())
        })
        .await
    }

    async fn run_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)> {
        let run_id = run.run_id.to_string();
        self.call(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT batch, body, expires_ms FROM run_events WHERE run_id = ?1 AND batch >= ?2 ORDER BY batch",
            )?;
            let rows = statement.query_map(params![run_id, from as i64], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
            })?;
            let now = Timestamp::now().datetime().timestamp_millis();
            let (mut events, mut next) = (Vec::new(), from);
            for row in rows {
                let (batch, body, expires_ms) = row?;
                if batch != next {
                    break;
                }
                next += 1;
                if expires_ms > now {
                    events.extend(from_json::<Vec<KeptEvent>>(&body)?);
                }
            }
            Ok((events, next))
        })
        .await
    }
}
