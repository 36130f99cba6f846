//! The SQLite store's assistants.

use async_trait::async_trait;

use super::*;
use crate::store::AssistantStore;

#[async_trait]
impl AssistantStore for SqliteStore {
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let assistant = assistant.clone();
        self.write(move |tx| {
            not_anothers(
                tx,
                "assistants",
                "assistant_id",
                assistant.assistant_id,
                &assistant.user_id,
                Entity::Assistant,
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO assistants (assistant_id, user_id, public, updated_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    assistant.assistant_id.to_string(),
                    assistant.user_id.as_str(),
                    assistant.public,
                    assistant.updated_at.to_rfc3339(),
                    to_json(&assistant)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE assistant_id = ?1 AND (user_id = ?2 OR public = 1)";
            bodies(connection, sql, params![assistant_id.to_string(), user.as_str()])?
                .pop()
                .ok_or(StoreError::NotFound(Entity::Assistant))
        })
        .await
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE user_id = ?1 ORDER BY updated_at DESC, assistant_id";
            bodies(connection, sql, params![user.as_str()])
        })
        .await
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE public = 1 ORDER BY updated_at DESC, assistant_id";
            bodies(connection, sql, [])
        })
        .await
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let sql = "DELETE FROM assistants WHERE assistant_id = ?1 AND user_id = ?2";
            match tx.execute(sql, params![assistant_id.to_string(), user.as_str()])? {
                0 => Err(StoreError::NotFound(Entity::Assistant)),
                _ => delete_documents(tx, assistant_id),
            }
        })
        .await
    }
}
