//! The writes behind a run's start and end: the transaction that takes a thread's lease with the
//! run's record and input, the one that ends it, and the bookkeeping of a user's running runs.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use uuid::Uuid;

use super::errors::{backend, conditional, sdk_error};
use super::table::{body, has, key, millis, n, number, owned, run_pk, s, text, thread_pk, to_json, Item};
use super::threads::{fit_one_transaction, revision, Refusal};
use super::DynamoStore;
use crate::model::{Message, Run, RunStatus, Timestamp, UserId};
use crate::store::{Entity, Revision, RunStart, StoreError, StoreResult};

/// How many times a start or an end is tried again when the thread's messages moved meanwhile
/// (someone added some) or another transaction collided with it.
pub(super) const ATTEMPTS: usize = 5;

/// How a run's write went.
pub(super) enum RunWrite {
    Done(Revision),
    ThreadGone,
    /// Too large for one transaction, or the run's record is gone: to be written in steps.
    InSteps,
}

/// Why a start did not go through.
pub(super) enum StartRefusal {
    /// The thread's messages moved on; it is at this revision now.
    Moved(Revision),
    Full(u32),
    Failed(StoreError),
}

impl DynamoStore {
    /// Takes the lease (if the thread is free and still at `seen`), records the run with a
    /// pointer from its thread, takes a place among the user's runs, and adds the input. An
    /// input too large for one transaction follows it, and is undone with the start if it fails.
    pub(super) async fn start_transaction(
        &self,
        start: &RunStart<'_>,
        seen: Revision,
    ) -> Result<Revision, StartRefusal> {
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
    pub(super) async fn undo_start(&self, run: &Run) {
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

    /// Writes a run's messages in one transaction, on condition that the run holds its
    /// thread's lease, or that nothing was written to the thread since its last write (`seen`):
    /// otherwise they would land among another run's, and that is `LeaseLost`. `ending` also
    /// records the run and gives the lease back.
    pub(super) async fn write_for_run(
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
    pub(super) async fn landed(&self, run: &Run, messages: &[Message], ending: bool) -> bool {
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
    pub(super) async fn free_stale_places(&self, user: &UserId, limit: u32) -> StoreResult<bool> {
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
            .update_expression("SET body = :body, run_status = :status")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":body", s(to_json(run)?))
            .expression_attribute_values(":status", s(run.status.as_str()))
            .send()
            .await;
        conditional(updated, Err(StoreError::NotFound(Entity::Run)))
    }

    /// Gives the lease back if `run_id` still holds it, noting how the run ended (if it ran).
    pub(super) async fn release(&self, thread_id: Uuid, run_id: Uuid, outcome: Option<RunStatus>) -> StoreResult<()> {
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
}

fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// The key of the item in a thread's partition that points to one of its runs.
pub(super) fn pointer(run: &Run) -> Item {
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
