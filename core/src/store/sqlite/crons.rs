//! Crons in SQLite: one row each, the last slot it fired for in a column of its own, so that
//! replacing a cron never forgets when it fired.

use async_trait::async_trait;

use super::*;
use crate::store::CronStore;

impl SqliteStore {
    /// Crons of `user`, or of everyone.
    pub(super) async fn read_crons(&self, user: Option<&UserId>) -> StoreResult<Vec<Cron>> {
        let user = user.map(|user| user.to_string());
        self.call(move |connection| {
            bodies(
                connection,
                "SELECT body FROM crons WHERE ?1 IS NULL OR user_id = ?1 ORDER BY created_ms, cron_id",
                params![user],
            )
        })
        .await
    }
}

#[async_trait]
impl CronStore for SqliteStore {
    async fn put_cron(&self, cron: &Cron) -> StoreResult<()> {
        let (cron_id, owner, created_ms, body) =
            (cron.cron_id, cron.user_id.clone(), millis(cron.created_at), to_json(cron)?);
        self.write(move |tx| {
            not_anothers(tx, "crons", "cron_id", cron_id, &owner, Entity::Cron)?;
            tx.execute(
                "INSERT INTO crons (cron_id, user_id, created_ms, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (cron_id) DO UPDATE SET body = excluded.body",
                params![cron_id.to_string(), owner.as_str(), created_ms, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron> {
        let user = user.to_string();
        let found: Vec<Cron> = self
            .call(move |connection| {
                bodies(
                    connection,
                    "SELECT body FROM crons WHERE cron_id = ?1 AND user_id = ?2",
                    params![cron_id.to_string(), user],
                )
            })
            .await?;
        found.into_iter().next().ok_or(StoreError::NotFound(Entity::Cron))
    }

    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>> {
        self.read_crons(Some(user)).await
    }

    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()> {
        let user = user.to_string();
        let deleted = self
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM crons WHERE cron_id = ?1 AND user_id = ?2",
                    params![cron_id.to_string(), user],
                )?)
            })
            .await?;
        match deleted {
            0 => Err(StoreError::NotFound(Entity::Cron)),
            _ => Ok(()),
        }
    }

    async fn all_crons(&self) -> StoreResult<Vec<Cron>> {
        self.read_crons(None).await
    }

    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool> {
        let slot = millis(slot);
        self.write(move |tx| {
            let last: Option<Option<i64>> = tx
                .query_row("SELECT last_slot_ms FROM crons WHERE cron_id = ?1", params![cron_id.to_string()], |row| {
                    row.get(0)
                })
                .optional()?;
            match last {
                None => Err(StoreError::NotFound(Entity::Cron)),
                Some(Some(last)) if last >= slot => Ok(false),
                Some(_) => {
                    tx.execute(
                        "UPDATE crons SET last_slot_ms = ?2 WHERE cron_id = ?1",
                        params![cron_id.to_string(), slot],
                    )?;
                    Ok(true)
                }
            }
        })
        .await
    }
}
