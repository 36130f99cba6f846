//! Runs in SQLite: a run's start with its lease and input, its record, its lease renewed, its end with its answer.

use super::*;

impl SqliteStore {
    pub(super) async fn start(&self, start: RunStart<'_>) -> StoreResult<Started> {
        let RunStart { run, lease, max_user_runs, input, seen } = start;
        let (run, input) = (run.clone(), input.to_vec());
        self.write(move |tx| {
            own_thread(tx, &run.user_id, run.thread_id)?;
            let now = Timestamp::now();
            not_leased(tx, run.thread_id, now)?;
            if let Some(limit) = max_user_runs {
                // A thread's runs are its owner's, so the user's running runs are their leased threads.
                let running: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM threads WHERE user_id = ?1 AND lease_run_id IS NOT NULL AND lease_expires_ms > ?2",
                    params![run.user_id.as_str(), millis(now)],
                    |row| row.get(0),
                )?;
                if running >= i64::from(limit) {
                    return Err(StoreError::TooManyRuns { limit });
                }
            }
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

    pub(super) async fn read_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM runs WHERE run_id = ?1 AND user_id = ?2";
            bodies(connection, sql, params![run_id.to_string(), user.as_str()])?
                .pop()
                .ok_or(StoreError::NotFound(Entity::Run))
        })
        .await
    }

    pub(super) async fn thread_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>> {
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

    pub(super) async fn keep_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()> {
        let (run_id, thread_id, body) = (run.run_id.to_string(), run.thread_id.to_string(), to_json(&batch.events)?);
        let (number, expires_ms) = (batch.number, batch.expires_at.datetime().timestamp_millis());
        self.write(move |tx| {
            // A deleted thread takes its runs' events: none are added after it has gone.
            tx.execute(
                "INSERT OR REPLACE INTO run_events (run_id, thread_id, batch, body, expires_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM threads WHERE thread_id = ?2)",
                params![run_id, thread_id, number as i64, body, expires_ms],
            )?;
            if number == 0 {
                let now = Timestamp::now().datetime().timestamp_millis();
                tx.execute("DELETE FROM run_events WHERE expires_ms <= ?1", params![now])?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn kept_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)> {
        let run_id = run.run_id.to_string();
        self.call(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT batch, body, expires_ms FROM run_events WHERE run_id = ?1 AND batch >= ?2 ORDER BY batch",
            )?;
            let rows = statement.query_map(params![run_id, from as i64], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
            })?;
            let now = Timestamp::now().datetime().timestamp_millis();
            let (mut events, mut next) = (Vec::new(), from);
            for row in rows {
                let (batch, body, expires_ms) = row?;
                if batch != next {
                    break;
                }
                next += 1;
                if expires_ms > now {
                    events.extend(from_json::<Vec<KeptEvent>>(&body)?);
                }
            }
            Ok((events, next))
        })
        .await
    }

    pub(super) async fn write_run(&self, run: &Run) -> StoreResult<()> {
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

    pub(super) async fn update_if_going(&self, run: &Run) -> StoreResult<bool> {
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

    pub(super) async fn claim(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
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

    pub(super) async fn renew(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
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

    pub(super) async fn finish(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
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

    pub(super) async fn keep_step(
        &self,
        run: &Run,
        messages: &[Message],
        seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        let (run, messages) = (run.clone(), messages.to_vec());
        self.write(move |tx| {
            own_thread(tx, &run.user_id, run.thread_id)?;
            may_write_for(tx, &run, &messages, seen)?;
            insert_messages(tx, &run.thread_id.to_string(), &messages)
        })
        .await
    }
}

/// Whether a run may add messages to its thread: it holds the lease, or nothing was written
/// since `seen`; otherwise they would land among another run's.
fn may_write_for(tx: &Connection, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
    let thread_id = run.thread_id.to_string();
    let holder: Option<String> =
        tx.query_row("SELECT lease_run_id FROM threads WHERE thread_id = ?1", params![thread_id], |row| row.get(0))?;
    let holds_lease = holder.as_deref() == Some(run.run_id.to_string().as_str());
    let moved = match seen {
        Some(seen) => super::messages::revision(tx, &thread_id)? != seen,
        None => false,
    };
    if !holds_lease && !messages.is_empty() && moved {
        return Err(StoreError::LeaseLost { run_id: run.run_id });
    }
    Ok(())
}

/// `ThreadBusy` while a run's lease on the thread has not expired at `now`.
pub(super) fn not_leased(connection: &Connection, thread_id: Uuid, now: Timestamp) -> StoreResult<()> {
    let held: Option<(Option<String>, Option<i64>)> = connection
        .query_row(
            "SELECT lease_run_id, lease_expires_ms FROM threads WHERE thread_id = ?1",
            params![thread_id.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match held {
        Some((Some(holder), Some(expires))) if expires > millis(now) => {
            let run_id = Uuid::parse_str(&holder).map_err(|e| StoreError::Backend(e.to_string()))?;
            Err(StoreError::ThreadBusy { run_id })
        }
        _ => Ok(()),
    }
}
