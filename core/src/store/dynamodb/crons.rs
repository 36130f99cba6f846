//! Crons in DynamoDB: one item each (`CRON#<id>`, `C`), listed per user through `gsi1` and all
//! together through `gsi2` (crons are few: one partition holds them). The last slot a cron fired
//! for is an attribute of its own, which replacing the cron leaves alone, moved on by one
//! conditional update per firing.

use async_trait::async_trait;
use uuid::Uuid;

use super::errors::{conditional, is_conditional, sdk_error};
use super::table::{body, key, millis, n, order_key, owned, s, to_json};
use super::DynamoStore;
use crate::model::{Cron, Timestamp, UserId};
use crate::store::{CronStore, Entity, StoreError, StoreResult};

fn cron_pk(id: Uuid) -> String {
    format!("CRON#{id}")
}

const CRON_SK: &str = "C";
const ALL_CRONS: &str = "CRONS";

fn user_crons(user: &UserId) -> String {
    format!("USER#{user}#CRONS")
}

impl DynamoStore {
    /// Crons of `user`, or of everyone, oldest first.
    pub(super) async fn read_crons(&self, user: Option<&UserId>) -> StoreResult<Vec<Cron>> {
        let (index, condition, partition) = match user {
            Some(user) => ("gsi1", "gsi1pk = :pk", user_crons(user)),
            None => ("gsi2", "gsi2pk = :pk", ALL_CRONS.to_string()),
        };
        let items = self.query_all(Some(index), condition, vec![(":pk", s(partition))], false).await?;
        items.iter().map(body).collect()
    }
}

#[async_trait]
impl CronStore for DynamoStore {
    async fn put_cron(&self, cron: &Cron) -> StoreResult<()> {
        let order = order_key(cron.created_at, cron.cron_id);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(cron_pk(cron.cron_id), CRON_SK)))
            .update_expression(
                "SET user_id = :user, body = :body, gsi1pk = :gsi1pk, gsi1sk = :order, gsi2pk = :gsi2pk, gsi2sk = :order",
            )
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(cron.user_id.as_str()))
            .expression_attribute_values(":body", s(to_json(cron)?))
            .expression_attribute_values(":gsi1pk", s(user_crons(&cron.user_id)))
            .expression_attribute_values(":gsi2pk", s(ALL_CRONS))
            .expression_attribute_values(":order", s(order))
            .send()
            .await;
        conditional(updated, Err(StoreError::NotFound(Entity::Cron)))
    }

    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron> {
        body(&owned(self.get(cron_pk(cron_id), CRON_SK).await?, user, Entity::Cron)?)
    }

    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>> {
        self.read_crons(Some(user)).await
    }

    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()> {
        self.delete_owned(key(cron_pk(cron_id), CRON_SK), user, Entity::Cron).await
    }

    async fn all_crons(&self) -> StoreResult<Vec<Cron>> {
        self.read_crons(None).await
    }

    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(cron_pk(cron_id), CRON_SK)))
            .update_expression("SET last_slot = :slot")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(last_slot) OR last_slot < :slot)")
            .expression_attribute_values(":slot", n(millis(slot)))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            Err(error) if is_conditional(&error) => match self.get(cron_pk(cron_id), CRON_SK).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::NotFound(Entity::Cron)),
            },
            Err(error) => Err(sdk_error(error)),
        }
    }
}
