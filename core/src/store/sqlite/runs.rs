//! Runs in SQLite: a run's start with its lease and input, its record, its lease renewed, its end with its answer.

use async_trait::async_trait;

use super::*;
use crate::store::rules::{check_run_write, check_start};
use crate::store::RunStore;

/// Whether a run may add messages to its thread: it holds the lease, or nothing was written
/// since `seen`; otherwise they would land among another run's.
fn may_write_for(tx: &Connection, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
    let thread_id = run.thread_id.to_string();
    let holder: Option<String> =
        tx.query_row("SELECT lease_run_id FROM threads WHERE thread_id = ?1", params![thread_id], |row| row.get(0))?;
    let holds_lease = holder.as_deref() == Some(run.run_id.to_string().as_str());
    let moved = match seen {
        Some(seen) => super::threads::revision(tx, &thread_id)? != seen,
        None => false,
    };
    check_run_write(run.run_id, holds_lease, messages.len(), moved)
}

/// The run whose lease on the thread has not expired at `now`, if one has.
pub(super) fn lease_holder(connection: &Connection, thread_id: Uuid, now: Timestamp) -> StoreResult<Option<Uuid>> {
    let held: Option<(Option<String>, Option<i64>)> = connection
        .query_row(
            "SELECT lease_run_id, lease_expires_ms FROM threads WHERE thread_id = ?1",
            params![thread_id.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match held {
        Some((Some(holder), Some(expires))) if expires > millis(now) => {
            Ok(Some(Uuid::parse_str(&holder).map_err(|e| StoreError::Backend(e.to_string()))?))
        }
        _ => Ok(None),
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn start_run(&self, start: RunStart<'_>) -> StoreResult<Started> {
        let RunStart { run, lease, max_user_runs, input, seen } = start;
        let (run, input) = (run.clone(), input.to_vec());
        self.write(move |tx| {
            own_thread(tx, &run.user_id, run.thread_id)?;
            let now = Timestamp::now();
            let holder = lease_holder(tx, run.thread_id, now)?;
            // A thread's runs are its owner's, so the user's running runs are their leased threads.
            let running: i64 = match (holder, max_user_runs) {
                (None, Some(_)) => tx.query_row(
                    "SELECT COUNT(*) FROM threads WHERE user_id = ?1 AND lease_run_id IS NOT NULL AND lease_expires_ms > ?2",
                    params![run.user_id.as_str(), millis(now)],
                    |row| row.get(0),
                )?,
                _ => 0,
            };
            check_start(holder, running as usize, max_user_runs)?;
            tx.execute(
                "UPDATE threads SET lease_run_id = ?1, lease_expires_ms = ?2 WHERE thread_id = ?3",
                params![run.run_id.to_string(), millis(now.plus(lease)), run.thread_id.to_string()],
            )?;
            tx.execute(
                "INSERT INTO runs (run_id, user_id, thread_id, body) VALUES (?1, ?2, ?3, ?4)",
                params![run.run_id.to_string(), run.user_id.as_str(), run.thread_id.to_string(), to_json(&run)?],
            )?;
            let thread_id = run.thread_id.to_string();
            let unchanged = seen == Some(revision(tx, &thread_id)?);
            let revision = insert_messages(tx, &thread_id, &input)?;
            Ok(Started { revision, unchanged })
        })
        .await
    }

    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM runs WHERE run_id = ?1 AND user_id = ?2";
            bodies(connection, sql, params![run_id.to_string(), user.as_str()])?
                .pop()
                .ok_or(StoreError::NotFound(Entity::Run))
        })
        .await
    }

    async fn delete_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let id = run_id.to_string();
            if tx.execute("DELETE FROM runs WHERE run_id = ?1 AND user_id = ?2", params![id, user.as_str()])? == 0 {
                return Err(StoreError::NotFound(Entity::Run));
            }
            tx.execute("DELETE FROM feedback WHERE run_id = ?1", params![id])?;
            tx.execute("DELETE FROM run_events WHERE run_id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    async fn list_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>> {
        let user = user.clone();
        self.call(move |connection| {
            let owner = "SELECT 1 FROM threads WHERE thread_id = ?1 AND user_id = ?2";
            if !connection.prepare_cached(owner)?.exists(params![thread_id.to_string(), user.as_str()])? {
                return Err(StoreError::NotFound(Entity::Thread));
            }
            let sql = "SELECT body FROM runs WHERE thread_id = ?1 AND user_id = ?2";
            let mut runs: Vec<Run> = bodies(connection, sql, params![thread_id.to_string(), user.as_str()])?;
            runs.sort_by_key(|run| std::cmp::Reverse((run.created_at, run.run_id)));
            Ok(runs)
        })
        .await
    }

    async fn update_run(&self, run: &Run) -> StoreResult<()> {
        let run = run.clone();
        self.write(move |tx| {
            match tx.execute(
                "UPDATE runs SET body = ?1 WHERE run_id = ?2",
                params![to_json(&run)?, run.run_id.to_string()],
            )? {
                0 => Err(StoreError::NotFound(Entity::Run)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn update_run_if_going(&self, run: &Run) -> StoreResult<bool> {
        let run = run.clone();
        self.write(move |tx| {
            let id = run.run_id.to_string();
            let status: String = tx
                .query_row("SELECT json_extract(body, '$.status') FROM runs WHERE run_id = ?1", params![id], |row| {
                    row.get(0)
                })
                .optional()?
                .ok_or(StoreError::NotFound(Entity::Run))?;
            if RunStatus::from_name(&status).is_none_or(RunStatus::is_finished) {
                return Ok(false);
            }
            tx.execute("UPDATE runs SET body = ?1 WHERE run_id = ?2", params![to_json(&run)?, id])?;
            Ok(true)
        })
        .await
    }

    async fn claim_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
        let user = user.clone();
        self.write(move |tx| {
            let id = run_id.to_string();
            let status: Option<String> = tx
                .query_row(
                    "SELECT json_extract(body, '$.status') FROM runs WHERE run_id = ?1 AND user_id = ?2",
                    params![id, user.as_str()],
                    |row| row.get(0),
                )
                .optional()?
                .ok_or(StoreError::NotFound(Entity::Run))?;
            if status.as_deref() != Some(RunStatus::Pending.as_str()) {
                return Ok(false);
            }
            Ok(tx.execute("UPDATE runs SET claimed = 1 WHERE run_id = ?1 AND claimed = 0", params![id])? == 1)
        })
        .await
    }

    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
        self.write(move |tx| {
            let sql = "UPDATE threads SET lease_expires_ms = ?1 WHERE thread_id = ?2 AND lease_run_id = ?3";
            let expires = millis(Timestamp::now().plus(lease));
            match tx.execute(sql, params![expires, thread_id.to_string(), run_id.to_string()])? {
                0 => Err(StoreError::LeaseLost { run_id }),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn finish_run(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
        let (run, messages) = (run.clone(), messages.to_vec());
        self.write(move |tx| {
            if own_thread(tx, &run.user_id, run.thread_id).is_err() {
                return Ok(());
            }
            let thread_id = run.thread_id.to_string();
            may_write_for(tx, &run, &messages, seen)?;
            insert_messages(tx, &thread_id, &messages)?;
            tx.execute(
                "UPDATE threads SET lease_run_id = NULL, lease_expires_ms = NULL, last_outcome = ?3 \
                 WHERE thread_id = ?1 AND lease_run_id = ?2",
                params![thread_id, run.run_id.to_string(), run.status.as_str()],
            )?;
            tx.execute("UPDATE runs SET body = ?1 WHERE run_id = ?2", params![to_json(&run)?, run.run_id.to_string()])?;
            Ok(())
        })
        .await
    }

    async fn keep_run_step(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<Revision> {
        let (run, messages) = (run.clone(), messages.to_vec());
        self.write(move |tx| {
            own_thread(tx, &run.user_id, run.thread_id)?;
            may_write_for(tx, &run, &messages, seen)?;
            insert_messages(tx, &run.thread_id.to_string(), &messages)
        })
        .await
    }

    async fn add_feedback(&self, run: &Run, feedback: &Feedback) -> StoreResult<()> {
        let (run, feedback) = (run.clone(), feedback.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO feedback (feedback_id, run_id, thread_id, seq, body) \
                 VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM feedback WHERE run_id = ?2), ?4)",
                params![
                    feedback.feedback_id.to_string(),
                    run.run_id.to_string(),
                    run.thread_id.to_string(),
                    to_json(&feedback)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn feedback(&self, run: &Run) -> StoreResult<Vec<Feedback>> {
        let run_id = run.run_id.to_string();
        self.call(move |connection| {
            bodies(connection, "SELECT body FROM feedback WHERE run_id = ?1 ORDER BY seq", params![run_id])
        })
        .await
    }
}
