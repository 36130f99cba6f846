//! Runs and the per-thread lease. A run starts in one transaction (the lease, its record and its
//! input) and ends in one (its last messages, its record and the lease given back).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::errors::{backend, conditional, is_conditional, sdk_error};
use super::run_writes::{pointer, RunWrite, StartRefusal, ATTEMPTS};
use super::table::{body, has, key, millis, n, owned, run_pk, s, text, thread_pk, to_json};
use super::threads::revision;
use super::DynamoStore;
use crate::model::{Feedback, Message, Run, RunStatus, Timestamp, UserId};
use crate::store::{Entity, Revision, RunStart, RunStore, Started, StoreError, StoreResult};

#[async_trait]
impl RunStore for DynamoStore {
    async fn start_run(&self, start: RunStart<'_>) -> StoreResult<Started> {
        let run = start.run;
        let (mut seen, mut unchanged) = match start.seen {
            Some(seen) => (seen, true),
            None => {
                (revision(&owned(self.get(thread_pk(run.thread_id), "M").await?, &run.user_id, Entity::Thread)?), false)
            }
        };
        let mut freed_places = false;
        for _ in 0..ATTEMPTS {
            match self.start_transaction(&start, seen).await {
                Ok(revision) => return Ok(Started { revision, unchanged }),
                Err(StartRefusal::Moved(now)) => {
                    (seen, unchanged) = (now, unchanged && now == seen);
                }
                // The user's places look full: those of runs that no longer hold their thread
                // are freed, and the start is tried once more.
                Err(StartRefusal::Full(limit))
                    if !freed_places && self.free_stale_places(&run.user_id, limit).await? =>
                {
                    freed_places = true;
                }
                Err(StartRefusal::Full(limit)) => return Err(StoreError::TooManyRuns { limit }),
                // The answer was lost, not necessarily the write: the lease tells whether it landed.
                Err(StartRefusal::Failed(error)) => {
                    return match self.get(thread_pk(run.thread_id), "M").await {
                        Ok(Some(thread)) if has(&thread, "lease_run_id", &run.run_id.to_string()) => {
                            let revision = revision(&thread);
                            let unchanged = unchanged && revision.0 == seen.0 + start.input.len() as u64;
                            Ok(Started { revision, unchanged })
                        }
                        _ => Err(error),
                    }
                }
            }
        }
        Err(backend("the thread kept changing while the run started"))
    }

    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        self.read_run(user, run_id).await
    }

    /// The run's record and kept events (its partition), its pointer and its feedback (in its
    /// thread's partition).
    async fn delete_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<()> {
        let run = self.read_run(user, run_id).await?;
        let own = self.query_all(None, "pk = :pk", vec![(":pk", s(run_pk(run_id)))], false).await?;
        let values = vec![(":pk", s(thread_pk(run.thread_id))), (":f", s(format!("F#{run_id}#")))];
        let feedback = self.query_all(None, "pk = :pk AND begins_with(sk, :f)", values, false).await?;
        let mut keys = vec![pointer(&run)];
        for item in own.iter().chain(&feedback) {
            keys.push(key(text(item, "pk")?.to_string(), text(item, "sk")?));
        }
        self.delete_all(keys).await
    }

    /// The thread's pointers to its runs, then the runs, read together.
    async fn list_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>> {
        owned(self.get(thread_pk(thread_id), "M").await?, user, Entity::Thread)?;
        let values = vec![(":pk", s(thread_pk(thread_id))), (":r", s("R#"))];
        let pointers = self.query_all(None, "pk = :pk AND begins_with(sk, :r)", values, false).await?;
        let ids = pointers.iter().filter_map(|item| text(item, "sk").ok()?.strip_prefix("R#")?.parse().ok());
        let reads = ids.map(|run_id: Uuid| self.read_run(user, run_id));
        let mut runs = Vec::new();
        for read in futures::future::join_all(reads).await {
            match read {
                Ok(run) => runs.push(run),
                // Deleted between the two reads.
                Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        runs.sort_by_key(|run| std::cmp::Reverse((run.created_at, run.run_id)));
        Ok(runs)
    }

    async fn update_run(&self, run: &Run) -> StoreResult<()> {
        self.write_run(run).await
    }

    /// On the record's `run_status` (written with every body).
    async fn update_run_if_going(&self, run: &Run) -> StoreResult<bool> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run.run_id), "R")))
            .update_expression("SET body = :body, run_status = :status")
            // Records written before `run_status` was: going, since their body said so when read.
            .condition_expression(
                "attribute_exists(pk) AND (run_status IN (:pending, :running) OR attribute_not_exists(run_status))",
            )
            .expression_attribute_values(":body", s(to_json(run)?))
            .expression_attribute_values(":status", s(run.status.as_str()))
            .expression_attribute_values(":pending", s(RunStatus::Pending.as_str()))
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            // Ended already, or gone: a read tells (only a race with the run's own end is here).
            Err(error) if is_conditional(&error) => match self.get(run_pk(run.run_id), "R").await? {
                Some(_) => Ok(false),
                None => Err(StoreError::NotFound(Entity::Run)),
            },
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// The record's `run_status` (written with every body) tells a pending run; `claimed` that
    /// a process took it.
    async fn claim_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run_id), "R")))
            .update_expression("SET claimed = :yes")
            .condition_expression("user_id = :user AND run_status = :pending AND attribute_not_exists(claimed)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":user", s(user.as_str()))
            .expression_attribute_values(":pending", s(RunStatus::Pending.as_str()))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            // Taken, not pending, or not the user's: a read tells (only a repeated delivery is here).
            Err(error) if is_conditional(&error) => {
                owned(self.get(run_pk(run_id), "R").await?, user, Entity::Run)?;
                Ok(false)
            }
            Err(error) => Err(sdk_error(error)),
        }
    }

    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
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

    /// Adds the run's last messages, records it and gives its thread back, in one transaction
    /// when its messages fit; in steps otherwise.
    async fn finish_run(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
        match self.write_for_run(run, messages, seen, true).await? {
            RunWrite::Done(_) | RunWrite::ThreadGone => return Ok(()),
            RunWrite::InSteps => {}
        }
        if !messages.is_empty() {
            match self.append(&run.user_id, run.thread_id, messages, None).await {
                Err(StoreError::NotFound(Entity::Thread)) => return Ok(()),
                other => other?,
            };
        }
        self.release(run.thread_id, run.run_id, Some(run.status)).await?;
        match self.write_run(run).await {
            Err(StoreError::NotFound(Entity::Run)) => Ok(()),
            other => other,
        }
    }

    /// Adds a step of a run that goes on (an agent's tool calls and their results).
    async fn keep_run_step(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<Revision> {
        match self.write_for_run(run, messages, seen, false).await? {
            RunWrite::Done(revision) => Ok(revision),
            RunWrite::ThreadGone => Err(StoreError::NotFound(Entity::Thread)),
            RunWrite::InSteps => self.append(&run.user_id, run.thread_id, messages, None).await,
        }
    }

    async fn add_feedback(&self, run: &Run, feedback: &Feedback) -> StoreResult<()> {
        let sk = format!("F#{}#{}#{}", run.run_id, feedback.created_at.to_rfc3339(), feedback.feedback_id);
        let mut item = key(thread_pk(run.thread_id), &sk);
        item.insert("body".into(), s(to_json(feedback)?));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn feedback(&self, run: &Run) -> StoreResult<Vec<Feedback>> {
        let values = vec![(":pk", s(thread_pk(run.thread_id))), (":f", s(format!("F#{}#", run.run_id)))];
        let items = self.query_all(None, "pk = :pk AND begins_with(sk, :f)", values, false).await?;
        items.iter().map(body).collect()
    }
}
