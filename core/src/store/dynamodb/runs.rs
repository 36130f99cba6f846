//! Runs and the per-thread lease: a run and its lease are taken in one transaction.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::errors::{backend, conditional, sdk_error};
use super::table::{body, key, millis, n, number, owned, run_pk, s, text, thread_pk, to_json};
use super::DynamoStore;
use crate::model::{Feedback, Run, RunStatus, Timestamp, UserId};
use crate::store::{Entity, StoreError, StoreResult};

impl DynamoStore {
    /// Takes the lease, and under a per-user limit a place among the user's running runs; when
    /// the user's places look full, the ones whose runs no longer hold their thread are freed
    /// and the start is tried once more.
    pub(super) async fn take_lease(&self, run: &Run, lease: Duration, max_user_runs: Option<u32>) -> StoreResult<()> {
        match self.lease_transaction(run, lease, max_user_runs).await {
            Err(StoreError::TooManyRuns { limit }) if self.free_stale_places(&run.user_id, limit).await? => {
                self.lease_transaction(run, lease, max_user_runs).await
            }
            other => other,
        }
    }

    async fn lease_transaction(&self, run: &Run, lease: Duration, max_user_runs: Option<u32>) -> StoreResult<()> {
        let now = Timestamp::now();
        let take_lease = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(run.thread_id), "M")))
            .update_expression("SET lease_run_id = :run, lease_expires = :expires")
            .condition_expression("user_id = :user AND (attribute_not_exists(lease_run_id) OR lease_expires <= :now)")
            .expression_attribute_values(":run", s(run.run_id.to_string()))
            .expression_attribute_values(":expires", n(millis(now.plus(lease))))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":user", s(run.user_id.as_str()))
            .build()
            .map_err(backend)?;
        let mut record = key(run_pk(run.run_id), "R");
        record.insert("user_id".into(), s(run.user_id.as_str()));
        record.insert("body".into(), s(to_json(run)?));
        let pointer = key(thread_pk(run.thread_id), &format!("R#{}", run.run_id));
        let mut transaction =
            self.client.transact_write_items().transact_items(TransactWriteItem::builder().update(take_lease).build());
        for item in [record, pointer] {
            let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(backend)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
        }
        if let Some(limit) = max_user_runs {
            // The user's places: a string set of `<run_id>#<thread_id>`, at most `limit` long.
            let take_place = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&run.user_id), "RUNS")))
                .update_expression("ADD active :place")
                .condition_expression("attribute_not_exists(active) OR size(active) < :limit")
                .expression_attribute_values(":place", place(run.run_id, run.thread_id))
                .expression_attribute_values(":limit", n(limit))
                .build()
                .map_err(backend)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().update(take_place).build());
        }
        let Err(error) = transaction.send().await else { return Ok(()) };
        let refused: Vec<bool> = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code() == Some("ConditionalCheckFailed"))
                .collect(),
            _ => return Err(sdk_error(error)),
        };
        if refused.first() == Some(&true) {
            let thread = owned(self.get(thread_pk(run.thread_id), "M").await?, &run.user_id, Entity::Thread)?;
            let holder = text(&thread, "lease_run_id").ok().and_then(|id| Uuid::parse_str(id).ok());
            return Err(StoreError::ThreadBusy { run_id: holder.unwrap_or(Uuid::nil()) });
        }
        match max_user_runs {
            Some(limit) if refused.get(3) == Some(&true) => Err(StoreError::TooManyRuns { limit }),
            _ => Err(sdk_error(error)),
        }
    }

    /// Drops the user's places whose runs no longer hold their thread (finished, or crashed and
    /// expired); true if any was freed. Runs release their thread, not their place, so this is
    /// where places are given back: a read of the user's item and of each place's thread.
    async fn free_stale_places(&self, user: &UserId, limit: u32) -> StoreResult<bool> {
        let Some(item) = self.get(user_pk(user), "RUNS").await? else { return Ok(false) };
        let places = match item.get("active") {
            Some(AttributeValue::Ss(places)) => places.clone(),
            _ => return Ok(false),
        };
        let now = millis(Timestamp::now());
        let mut stale = Vec::new();
        for entry in &places {
            let (run_id, thread_id) = entry.split_once('#').ok_or_else(|| backend(format!("bad place {entry}")))?;
            let holds = match self.get(format!("THREAD#{thread_id}"), "M").await? {
                Some(thread) => {
                    text(&thread, "lease_run_id").ok() == Some(run_id)
                        && number(&thread, "lease_expires").is_some_and(|expires| expires > now)
                }
                None => false,
            };
            if !holds {
                stale.push(entry.clone());
            }
        }
        if stale.is_empty() || places.len() - stale.len() >= limit as usize {
            return Ok(false);
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), "RUNS")))
            .update_expression("DELETE active :stale")
            .expression_attribute_values(":stale", AttributeValue::Ss(stale))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(true)
    }

    pub(super) async fn read_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        body(&owned(self.get(run_pk(run_id), "R").await?, user, Entity::Run)?)
    }

    pub(super) async fn write_run(&self, run: &Run) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run.run_id), "R")))
            .update_expression("SET body = :body")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":body", s(to_json(run)?))
            .send()
            .await;
        conditional(updated, Err(StoreError::NotFound(Entity::Run)))
    }

    pub(super) async fn renew(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
        let renewed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression("SET lease_expires = :expires")
            .condition_expression("lease_run_id = :run")
            .expression_attribute_values(":expires", n(millis(Timestamp::now().plus(lease))))
            .expression_attribute_values(":run", s(run_id.to_string()))
            .send()
            .await;
        conditional(renewed, Err(StoreError::LeaseLost { run_id }))
    }

    pub(super) async fn release(&self, thread_id: Uuid, run_id: Uuid, outcome: RunStatus) -> StoreResult<()> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .update_expression("REMOVE lease_run_id, lease_expires SET last_outcome = :outcome")
            .condition_expression("lease_run_id = :run")
            .expression_attribute_values(":run", s(run_id.to_string()))
            .expression_attribute_values(":outcome", s(outcome.as_str()))
            .send()
            .await;
        // Someone else holds it now, or the thread is gone: nothing of ours to give back.
        conditional(released, Ok(()))
    }

    pub(super) async fn put_feedback(&self, run: &Run, feedback: &Feedback) -> StoreResult<()> {
        let sk = format!("F#{}#{}#{}", run.run_id, feedback.created_at.to_rfc3339(), feedback.feedback_id);
        let mut item = key(thread_pk(run.thread_id), &sk);
        item.insert("body".into(), s(to_json(feedback)?));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(super) async fn list_feedback(&self, run: &Run) -> StoreResult<Vec<Feedback>> {
        let values = vec![(":pk", s(thread_pk(run.thread_id))), (":f", s(format!("F#{}#", run.run_id)))];
        let items = self.query_all(None, "pk = :pk AND begins_with(sk, :f)", values, false).await?;
        items.iter().map(body).collect()
    }
}

fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// A run's place among its user's running runs.
fn place(run_id: Uuid, thread_id: Uuid) -> AttributeValue {
    AttributeValue::Ss(vec![format!("{run_id}#{thread_id}")])
}
