//! How a thread ends: deleted whole, by its owner or by the sweep. Threads with a `ttl` are in
//! the sparse `gsi2` partition `THREADS#EXPIRING`, sorted by expiry, so the sweep reads the
//! expired ones with one Query and never a Scan.
//!
//! A thread is many items (its messages, runs, files), more than a TTL delete of one item
//! reaches, and its owner's stored bytes must be given back; so the sweep deletes it. It takes
//! the thread first, as a run does: a lease, on condition that no run holds one and that the
//! thread's expiry is still the one it read, and marks it `deleting`, so that every reader finds
//! it gone at once rather than half deleted. Cut short by a fault, the lease runs out and the
//! next sweep finds the thread again (the sparse index still holds it).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::errors::sdk_error;
use super::table::{body, has, key, millis, n, number, order_key, owned, s, text, thread_pk};
use super::DynamoStore;
use crate::model::{Thread, Timestamp, UserId};
use crate::store::{Entity, ExpiryStore, StoreError, StoreResult};

pub(super) const EXPIRING_THREADS: &str = "THREADS#EXPIRING";

/// How long the sweep holds a thread it deletes: well past one deletion, short enough that a
/// sweep cut short leaves the thread to the next one soon.
const SWEEP_LEASE_MS: i64 = 60_000;

impl DynamoStore {
    /// Removes a thread with everything that hangs off it. The thread item goes last (on its
    /// owner), so that a deletion cut short by a fault is still there to be deleted again.
    pub(super) async fn remove_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
        let items = self.query_all(None, "pk = :pk", vec![(":pk", s(thread_pk(thread_id)))], false).await?;
        // Not `owned`: a thread the sweep began to delete is deleted again, to the end.
        if !items.iter().any(|item| has(item, "sk", "M") && has(item, "user_id", user.as_str())) {
            return Err(StoreError::NotFound(Entity::Thread));
        }
        let mut keys = Vec::with_capacity(items.len());
        for item in &items {
            let sk = text(item, "sk")?;
            if sk == "M" {
                continue;
            }
            if let Some(run_id) = sk.strip_prefix("R#") {
                // The run's record and its kept events.
                let run = self.query_all(None, "pk = :pk", vec![(":pk", s(format!("RUN#{run_id}")))], false).await?;
                for item in &run {
                    keys.push(key(format!("RUN#{run_id}"), text(item, "sk")?));
                }
            }
            keys.push(key(thread_pk(thread_id), sk));
        }
        self.delete_all(keys).await?;
        self.delete_documents(thread_id, user, Entity::Thread).await?;
        self.delete_owned(key(thread_pk(thread_id), "M"), user, Entity::Thread).await
    }
}

#[async_trait]
impl ExpiryStore for DynamoStore {
    async fn expired_threads(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Thread>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :expiring AND gsi2sk <= :now")
            .expression_attribute_values(":expiring", s(EXPIRING_THREADS))
            .expression_attribute_values(":now", s(order_key(now, Uuid::max())))
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        page.items.unwrap_or_default().iter().take(limit).map(body).collect()
    }

    async fn delete_idle_thread(&self, thread: &Thread) -> StoreResult<()> {
        let now = millis(Timestamp::now());
        let expiry = match thread.ttl {
            Some(_) => "ttl_ms = :ttl_ms",
            None => "attribute_not_exists(ttl_ms)",
        };
        let mut taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread.thread_id), "M")))
            .update_expression("SET lease_run_id = :sweep, lease_expires = :until, deleting = :deleting")
            .condition_expression(format!(
                "user_id = :user AND (attribute_not_exists(lease_run_id) OR lease_expires <= :now) AND {expiry}"
            ))
            .expression_attribute_values(":sweep", s(Uuid::nil().to_string()))
            .expression_attribute_values(":deleting", AttributeValue::Bool(true))
            .expression_attribute_values(":until", n(now + SWEEP_LEASE_MS))
            .expression_attribute_values(":user", s(thread.user_id.as_str()))
            .expression_attribute_values(":now", n(now));
        if let Some(ttl) = thread.ttl {
            taken = taken.expression_attribute_values(":ttl_ms", n(millis(ttl.expires_at)));
        }
        if let Err(error) = taken.send().await {
            if !super::errors::is_conditional(&error) {
                return Err(sdk_error(error));
            }
            // Why it was refused: gone or another's, held by a run, or given a new expiry.
            let stored = owned(self.get(thread_pk(thread.thread_id), "M").await?, &thread.user_id, Entity::Thread)?;
            let holder = text(&stored, "lease_run_id").ok().and_then(|id| Uuid::parse_str(id).ok());
            return match holder {
                Some(run_id) if number(&stored, "lease_expires").is_some_and(|expires| expires > now) => {
                    Err(StoreError::ThreadBusy { run_id })
                }
                _ => Err(StoreError::ThreadChanged),
            };
        }
        match self.remove_thread(&thread.user_id, thread.thread_id).await {
            // Deleted meanwhile by its owner: what was asked is done.
            Err(StoreError::NotFound(_)) => Ok(()),
            removed => removed,
        }
    }

    async fn purge_expired(&self, _now: Timestamp) -> StoreResult<u64> {
        // Expired items carry `expires_at`, the table's TTL attribute: DynamoDB removes them.
        Ok(0)
    }
}
