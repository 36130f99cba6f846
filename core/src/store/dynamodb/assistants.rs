//! The DynamoDB store's assistants.

use async_trait::async_trait;

use super::*;
use crate::store::AssistantStore;

#[async_trait]
impl AssistantStore for DynamoStore {
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let mut item = key(assistant_pk(assistant.assistant_id), "A");
        let order = order_key(assistant.updated_at, assistant.assistant_id);
        item.insert("user_id".into(), s(assistant.user_id.as_str()));
        item.insert("body".into(), s(to_json(assistant)?));
        item.insert("gsi1pk".into(), s(format!("USER#{}#ASSISTANTS", assistant.user_id)));
        item.insert("gsi1sk".into(), s(order.clone()));
        if assistant.public {
            item.insert("gsi2pk".into(), s("PUBLIC#ASSISTANTS"));
            item.insert("gsi2sk".into(), s(order));
        }
        let put = self.conditional_put(item, &assistant.user_id).send().await;
        conditional(put, Err(StoreError::NotFound(Entity::Assistant)))
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        let item = self.get(assistant_pk(assistant_id), "A").await?.ok_or(StoreError::NotFound(Entity::Assistant))?;
        let assistant: Assistant = body(&item)?;
        if &assistant.user_id == user || assistant.public {
            Ok(assistant)
        } else {
            Err(StoreError::NotFound(Entity::Assistant))
        }
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        self.list("gsi1", "gsi1pk", format!("USER#{user}#ASSISTANTS")).await
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        self.list("gsi2", "gsi2pk", "PUBLIC#ASSISTANTS".into()).await
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        // The files first: a deletion cut short leaves the assistant to be deleted again.
        self.delete_documents(assistant_id, user, Entity::Assistant).await?;
        self.delete_owned(key(assistant_pk(assistant_id), "A"), user, Entity::Assistant).await
    }
}
