//! Runs and the per-thread lease. A run starts in one transaction (the lease, its record and its
//! input) and ends in one (its last messages, its record and the lease given back).

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use uuid::Uuid;

use super::errors::{backend, conditional, is_conditional, sdk_error};
use super::messages::{fit_one_transaction, revision, Refusal};
use super::table::{body, has, key, millis, n, number, owned, run_pk, s, text, thread_pk, to_json, Item};
use super::DynamoStore;
use crate::model::{Feedback, Message, Run, RunStatus, Timestamp, UserId};
use crate::store::{Entity, Revision, RunStart, Started, StoreError, StoreResult};

/// How many times a start or an end is tried again when the thread's messages moved meanwhile
/// (someone added some) or another transaction collided with it.
const ATTEMPTS: usize = 5;

/// How a run's write went.
enum RunWrite {
    Done(Revision),
    ThreadGone,
    /// Too large for one transaction, or the run's record is gone: to be written in steps.
    InSteps,
}

/// Why a start did not go through.
enum StartRefusal {
    /// The thread's messages moved on; it is at this revision now.
    Moved(Revision),
    Full(u32),
    Failed(StoreError),
}

impl DynamoStore {
    pub(super) async fn start(&self, start: RunStart<'_>) -> StoreResult<Started> {
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

    /// Takes the lease (if the thread is free and still at `seen`), records the run with a
    /// pointer from its thread, takes a place among the user's runs, and adds the input. An
    /// input too large for one transaction follows it, and is undone with the start if it fails.
    async fn start_transaction(&self, start: &RunStart<'_>, seen: Revision) -> Result<Revision, StartRefusal> {
        let failed = |error| StartRefusal::Failed(error);
        let run = start.run;
        let now = Timestamp::now();
        let items = self.items_after(run.thread_id, seen, start.input).map_err(failed)?;
        let actions = 3 + usize::from(start.max_user_runs.is_some());
        let input_inside = fit_one_transaction(&items, actions);
        let take_lease = self
            .thread_update(
                run.thread_id,
                "user_id = :user AND (attribute_not_exists(lease_run_id) OR lease_expires <= :now)",
                seen,
                start.input.len(),
                &["lease_run_id = :run", "lease_expires = :expires"],
                &[],
            )
            .expression_attribute_values(":run", s(run.run_id.to_string()))
            .expression_attribute_values(":expires", n(millis(now.plus(start.lease))))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":user", s(run.user_id.as_str()))
            .build()
            .map_err(|error| failed(backend(error)))?;
        let mut record = key(run_pk(run.run_id), "R");
        record.insert("user_id".into(), s(run.user_id.as_str()));
        record.insert("body".into(), s(to_json(run).map_err(failed)?));
        record.insert("run_status".into(), s(run.status.as_str()));
        let mut actions = vec![self.put(record).map_err(failed)?, self.put(pointer(run)).map_err(failed)?];
        if let Some(limit) = start.max_user_runs {
            // The user's places: a string set of `<run_id>#<thread_id>`, at most `limit` long.
            let take_place = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&run.user_id), "RUNS")))
                .update_expression("ADD active :place")
                .condition_expression("attribute_not_exists(active) OR size(active) < :limit")
                .expression_attribute_values(":place", place(run.run_id, run.thread_id))
                .expression_attribute_values(":limit", n(limit))
                .build()
                .map_err(|error| failed(backend(error)))?;
            actions.push(TransactWriteItem::builder().update(take_place).build());
        }
        let (inside, after) = if input_inside { (items, Vec::new()) } else { (Vec::new(), items) };
        match self.transact(take_lease, actions, inside).await {
            Ok(()) => {}
            Err(Refusal::Thread(old)) => return Err(start_refused(old, run, seen, now)),
            Err(Refusal::Action(3)) => return Err(StartRefusal::Full(start.max_user_runs.unwrap_or_default())),
            Err(Refusal::Action(_)) | Err(Refusal::Conflict) => return Err(StartRefusal::Moved(seen)),
            Err(Refusal::Failed(error)) => return Err(failed(error)),
        }
        if !after.is_empty() {
            if let Err(error) = self.put_all(after, None).await {
                self.undo_start(run).await;
                return Err(failed(error));
            }
        }
        Ok(Revision(seen.0 + start.input.len() as u64))
    }

    /// Takes back a start whose input could not be written: the lease, the run and its pointer.
    /// The numbers it gave out stay unused.
    async fn undo_start(&self, run: &Run) {
        let mut transaction = self.transaction();
        for item in [key(run_pk(run.run_id), "R"), pointer(run)] {
            if let Ok(delete) = Delete::builder().table_name(&self.table).set_key(Some(item)).build() {
                transaction = transaction.transact_items(TransactWriteItem::builder().delete(delete).build());
            }
        }
        let undone = async {
            transaction.send().await.map_err(sdk_error)?;
            self.release(run.thread_id, run.run_id, None).await
        };
        if let Err(error) = undone.await {
            tracing::error!(run_id = %run.run_id, %error, "could not undo a failed start; its lease will expire");
        }
    }

    /// Adds the run's last messages, records it and gives its thread back, in one transaction
    /// when its messages fit; in steps otherwise.
    pub(super) async fn finish(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
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
    pub(super) async fn keep_step(
        &self,
        run: &Run,
        messages: &[Message],
        seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        match self.write_for_run(run, messages, seen, false).await? {
            RunWrite::Done(revision) => Ok(revision),
            RunWrite::ThreadGone => Err(StoreError::NotFound(Entity::Thread)),
            RunWrite::InSteps => self.append(&run.user_id, run.thread_id, messages, None).await,
        }
    }

    /// Writes a run's messages in one transaction, on condition that the run holds its
    /// thread's lease, or that nothing was written to the thread since its last write (`seen`):
    /// otherwise they would land among another run's, and that is `LeaseLost`. `ending` also
    /// records the run and gives the lease back.
    async fn write_for_run(
        &self,
        run: &Run,
        messages: &[Message],
        seen: Option<Revision>,
        ending: bool,
    ) -> StoreResult<RunWrite> {
        let mut seen = match seen {
            Some(seen) => seen,
            None => match self.get(thread_pk(run.thread_id), "M").await? {
                Some(thread) if has(&thread, "user_id", run.user_id.as_str()) => revision(&thread),
                _ => return Ok(RunWrite::ThreadGone),
            },
        };
        let mut holds_lease = true;
        for _ in 0..ATTEMPTS {
            let items = self.items_after(run.thread_id, seen, messages)?;
            if !fit_one_transaction(&items, 2) {
                return Ok(RunWrite::InSteps);
            }
            let run_id = s(run.run_id.to_string());
            let thread = match (holds_lease, ending) {
                (true, true) => self
                    .thread_update(
                        run.thread_id,
                        "lease_run_id = :run",
                        seen,
                        messages.len(),
                        &["last_outcome = :outcome"],
                        &["lease_run_id", "lease_expires"],
                    )
                    .expression_attribute_values(":run", run_id)
                    .expression_attribute_values(":outcome", s(run.status.as_str())),
                (true, false) => self
                    .thread_update(run.thread_id, "lease_run_id = :run", seen, messages.len(), &[], &[])
                    .expression_attribute_values(":run", run_id),
                // Nothing of the thread's to change: the rest goes in steps.
                (false, _) if messages.is_empty() => return Ok(RunWrite::InSteps),
                (false, _) => {
                    self.thread_update(run.thread_id, "attribute_exists(user_id)", seen, messages.len(), &[], &[])
                }
            };
            let thread = thread.build().map_err(backend)?;
            let mut actions = Vec::new();
            if ending {
                let record = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(run_pk(run.run_id), "R")))
                    .update_expression("SET body = :body, run_status = :status")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":body", s(to_json(run)?))
                    .expression_attribute_values(":status", s(run.status.as_str()))
                    .build()
                    .map_err(backend)?;
                actions.push(TransactWriteItem::builder().update(record).build());
            }
            let written = Revision(seen.0 + messages.len() as u64);
            match self.transact(thread, actions, items).await {
                Ok(()) => return Ok(RunWrite::Done(written)),
                Err(Refusal::Thread(None)) => return Ok(RunWrite::ThreadGone),
                Err(Refusal::Thread(Some(thread)))
                    if holds_lease && has(&thread, "lease_run_id", &run.run_id.to_string()) =>
                {
                    seen = revision(&thread);
                }
                Err(Refusal::Conflict) => {}
                // The lease is not ours, or the answer was lost: if an earlier attempt landed,
                // writing the messages again would double them.
                Err(refusal @ (Refusal::Thread(Some(_)) | Refusal::Failed(_))) => {
                    if self.landed(run, messages, ending).await {
                        return Ok(RunWrite::Done(written));
                    }
                    match refusal {
                        Refusal::Failed(error) => return Err(error),
                        Refusal::Thread(Some(thread)) if holds_lease && revision(&thread) == seen => {
                            holds_lease = false;
                        }
                        _ if !messages.is_empty() => return Err(StoreError::LeaseLost { run_id: run.run_id }),
                        _ => return Ok(RunWrite::InSteps),
                    }
                }
                // The run's record is gone (deleted); its messages go in the plain way.
                Err(Refusal::Action(_)) => return Ok(RunWrite::InSteps),
            }
        }
        Err(backend("the thread kept changing while the run wrote to it"))
    }

    /// Whether a write of the run's whose answer was lost landed: its messages are in the
    /// thread, or (for its end without messages) its record shows how it ended.
    async fn landed(&self, run: &Run, messages: &[Message], ending: bool) -> bool {
        match messages.first().and_then(|message| message.id.as_deref()) {
            Some(id) => match self.thread_and_messages(&run.user_id, run.thread_id).await {
                Ok((_, stored)) => stored.iter().any(|(_, message)| message.id.as_deref() == Some(id)),
                Err(_) => false,
            },
            None if ending => {
                matches!(self.read_run(&run.user_id, run.run_id).await, Ok(stored) if stored.status == run.status)
            }
            None => false,
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

    /// The run's record and kept events (its partition), its pointer and its feedback (in its
    /// thread's partition).
    pub(super) async fn erase_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<()> {
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
    pub(super) async fn thread_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>> {
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

    pub(super) async fn write_run(&self, run: &Run) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run.run_id), "R")))
            .update_expression("SET body = :body, run_status = :status")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":body", s(to_json(run)?))
            .expression_attribute_values(":status", s(run.status.as_str()))
            .send()
            .await;
        conditional(updated, Err(StoreError::NotFound(Entity::Run)))
    }

    /// On the record's `run_status` (written with every body).
    pub(super) async fn update_if_going(&self, run: &Run) -> StoreResult<bool> {
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
    pub(super) async fn claim(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
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

    /// Gives the lease back if `run_id` still holds it, noting how the run ended (if it ran).
    async fn release(&self, thread_id: Uuid, run_id: Uuid, outcome: Option<RunStatus>) -> StoreResult<()> {
        let mut release = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(thread_pk(thread_id), "M")))
            .condition_expression("lease_run_id = :run")
            .expression_attribute_values(":run", s(run_id.to_string()));
        release = match outcome {
            Some(outcome) => release
                .update_expression("REMOVE lease_run_id, lease_expires SET last_outcome = :outcome")
                .expression_attribute_values(":outcome", s(outcome.as_str())),
            None => release.update_expression("REMOVE lease_run_id, lease_expires"),
        };
        // Someone else holds it now, or the thread is gone: nothing of ours to give back.
        conditional(release.send().await, Ok(()))
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

/// The key of the item in a thread's partition that points to one of its runs.
fn pointer(run: &Run) -> Item {
    key(thread_pk(run.thread_id), &format!("R#{}", run.run_id))
}

/// A run's place among its user's running runs.
fn place(run_id: Uuid, thread_id: Uuid) -> AttributeValue {
    AttributeValue::Ss(vec![format!("{run_id}#{thread_id}")])
}

/// What a refused start's thread item says: not there or not the user's, busy, or moved on.
fn start_refused(old: Option<Item>, run: &Run, seen: Revision, now: Timestamp) -> StartRefusal {
    let thread = match owned(old, &run.user_id, Entity::Thread) {
        Ok(thread) => thread,
        Err(error) => return StartRefusal::Failed(error),
    };
    let holder = text(&thread, "lease_run_id").ok().and_then(|id| Uuid::parse_str(id).ok());
    match holder {
        Some(holder) if number(&thread, "lease_expires").is_some_and(|expires| expires > millis(now)) => {
            StartRefusal::Failed(StoreError::ThreadBusy { run_id: holder })
        }
        // Moved on, or a lease that expired just now: either way, again from where it is.
        _ => StartRefusal::Moved(revision(&thread).max(seen)),
    }
}
