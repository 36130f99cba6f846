//! The memory store's assistants.

use super::*;
use crate::store::AssistantStore;

#[async_trait]
impl AssistantStore for MemoryStore {
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(existing) = inner.assistants.get(&assistant.assistant_id) {
            if existing.user_id != assistant.user_id {
                return Err(StoreError::NotFound(Entity::Assistant));
            }
        }
        inner.assistants.insert(assistant.assistant_id, assistant.clone());
        Ok(())
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        self.lock()
            .assistants
            .get(&assistant_id)
            .filter(|assistant| &assistant.user_id == user || assistant.public)
            .cloned()
            .ok_or(StoreError::NotFound(Entity::Assistant))
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        let own = self.lock().assistants.values().filter(|a| &a.user_id == user).cloned().collect();
        Ok(newest_first(own, |a: &Assistant| a.updated_at))
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        let public = self.lock().assistants.values().filter(|a| a.public).cloned().collect();
        Ok(newest_first(public, |a: &Assistant| a.updated_at))
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.assistants.get(&assistant_id) {
            Some(assistant) if &assistant.user_id == user => {
                inner.assistants.remove(&assistant_id);
                inner.drop_documents(user, assistant_id);
                Ok(())
            }
            _ => Err(StoreError::NotFound(Entity::Assistant)),
        }
    }
}
