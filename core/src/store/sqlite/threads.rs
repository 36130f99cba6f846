//! A thread's messages in SQLite: read, appended, replaced by id; a thread's revision.

use async_trait::async_trait;

use super::*;
use crate::store::ThreadStore;

/// Adds a message; the thread's last run outcome no longer describes its end.
fn insert_message(connection: &Connection, thread_id: &str, seq: i64, message: &Message) -> StoreResult<()> {
    connection.execute(
        "INSERT INTO messages (thread_id, seq, message_id, body) VALUES (?1, ?2, ?3, ?4)",
        params![thread_id, seq, message.id, to_json(message)?],
    )?;
    connection.execute(
        "UPDATE threads SET last_outcome = NULL, revision = revision + 1 WHERE thread_id = ?1",
        params![thread_id],
    )?;
    Ok(())
}

/// Adds messages after the thread's others; returns its revision then.
pub(super) fn insert_messages(connection: &Connection, thread_id: &str, messages: &[Message]) -> StoreResult<Revision> {
    let first = next_seq(connection, thread_id)?;
    for (offset, message) in messages.iter().enumerate() {
        insert_message(connection, thread_id, first + offset as i64, message)?;
    }
    revision(connection, thread_id)
}

pub(super) fn revision(connection: &Connection, thread_id: &str) -> StoreResult<Revision> {
    let revision: i64 =
        connection
            .query_row("SELECT revision FROM threads WHERE thread_id = ?1", params![thread_id], |row| row.get(0))?;
    Ok(Revision(revision as u64))
}

fn next_seq(connection: &Connection, thread_id: &str) -> StoreResult<i64> {
    let last: i64 = connection.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = ?1",
        params![thread_id],
        |r| r.get(0),
    )?;
    Ok(last + 1)
}

/// Removes a thread with everything that hangs off it.
pub(super) fn remove_thread(tx: &Transaction<'_>, thread_id: Uuid) -> StoreResult<()> {
    let id = thread_id.to_string();
    for table in ["messages", "thread_archives", "runs", "feedback", "run_events", "thread_events", "threads"] {
        tx.execute(&format!("DELETE FROM {table} WHERE thread_id = ?1"), params![id])?;
    }
    delete_documents(tx, thread_id)
}

#[async_trait]
impl ThreadStore for SqliteStore {
    async fn put_thread(&self, thread: &Thread) -> StoreResult<()> {
        let thread = thread.clone();
        self.write(move |tx| {
            not_anothers(tx, "threads", "thread_id", thread.thread_id, &thread.user_id, Entity::Thread)?;
            tx.execute(
                "INSERT INTO threads (thread_id, user_id, updated_at, body, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (thread_id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body,
                 expires_ms = excluded.expires_ms",
                params![
                    thread.thread_id.to_string(),
                    thread.user_id.as_str(),
                    thread.updated_at.to_rfc3339(),
                    to_json(&thread)?,
                    thread.ttl.map(|ttl| millis(ttl.expires_at)),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Thread> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM threads WHERE thread_id = ?1 AND user_id = ?2";
            bodies(connection, sql, params![thread_id.to_string(), user.as_str()])?
                .pop()
                .ok_or(StoreError::NotFound(Entity::Thread))
        })
        .await
    }

    async fn list_threads(&self, user: &UserId) -> StoreResult<Vec<Thread>> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM threads WHERE user_id = ?1 ORDER BY updated_at DESC, thread_id";
            bodies(connection, sql, params![user.as_str()])
        })
        .await
    }

    async fn delete_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            own_thread(tx, &user, thread_id)?;
            remove_thread(tx, thread_id)
        })
        .await
    }

    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>> {
        let user = user.clone();
        self.call(move |connection| {
            let tx = connection.transaction()?;
            own_thread(&tx, &user, thread_id)?;
            bodies(&tx, "SELECT body FROM messages WHERE thread_id = ?1 ORDER BY seq", params![thread_id.to_string()])
        })
        .await
    }

    async fn thread_view(&self, user: &UserId, thread_id: Uuid) -> StoreResult<ThreadView> {
        let user = user.clone();
        self.call(move |connection| {
            let tx = connection.transaction()?;
            let id = thread_id.to_string();
            let sql = "SELECT body, lease_expires_ms, last_outcome, revision, lease_run_id FROM threads \
                       WHERE thread_id = ?1 AND user_id = ?2";
            type Row = (String, Option<i64>, Option<String>, i64, Option<String>);
            let (body, lease_expires, last_outcome, revision, holder): Row = tx
                .query_row(sql, params![id, user.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })
                .optional()?
                .ok_or(StoreError::NotFound(Entity::Thread))?;
            let now = millis(Timestamp::now());
            let messages = bodies(&tx, "SELECT body FROM messages WHERE thread_id = ?1 ORDER BY seq", params![id])?;
            Ok(ThreadView {
                thread: from_json(&body)?,
                messages,
                running: lease_expires.is_some_and(|expires| expires > now),
                abandoned_by: holder
                    .filter(|_| lease_expires.is_some_and(|expires| expires <= now))
                    .and_then(|holder| Uuid::parse_str(&holder).ok()),
                last_outcome: last_outcome.as_deref().and_then(RunStatus::from_name),
                revision: Revision(revision as u64),
            })
        })
        .await
    }

    async fn append_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        _seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        let (user, messages) = (user.clone(), messages.to_vec());
        self.write(move |tx| {
            own_thread(tx, &user, thread_id)?;
            insert_messages(tx, &thread_id.to_string(), &messages)
        })
        .await
    }

    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        let (user, messages) = (user.clone(), messages.to_vec());
        self.write(move |tx| {
            own_thread(tx, &user, thread_id)?;
            let id = thread_id.to_string();
            for message in &messages {
                let replaced = match &message.id {
                    Some(message_id) => tx.execute(
                        "UPDATE messages SET body = ?1 WHERE thread_id = ?2 AND message_id = ?3",
                        params![to_json(message)?, id, message_id],
                    )?,
                    None => 0,
                };
                if replaced > 0 {
                    tx.execute("UPDATE threads SET revision = revision + 1 WHERE thread_id = ?1", params![id])?;
                } else {
                    let seq = next_seq(tx, &id)?;
                    insert_message(tx, &id, seq, message)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn archive(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Archive> {
        let user = user.clone();
        self.call(move |connection| {
            own_thread(connection, &user, thread_id)?;
            let sql = "SELECT body FROM thread_archives WHERE thread_id = ?1";
            Ok(bodies(connection, sql, params![thread_id.to_string()])?.pop().unwrap_or_default())
        })
        .await
    }

    async fn fork_thread(&self, fork: Fork<'_>) -> StoreResult<Revision> {
        let Fork { user, thread_id, keep, tail, archive, seen } = fork;
        let (user, tail, archive) = (user.clone(), tail.to_vec(), to_json(archive)?);
        self.write(move |tx| {
            own_thread(tx, &user, thread_id)?;
            if let Some(run_id) = runs::lease_holder(tx, thread_id, Timestamp::now())? {
                return Err(StoreError::ThreadBusy { run_id });
            }
            let id = thread_id.to_string();
            if revision(tx, &id)? != seen {
                return Err(StoreError::ThreadChanged);
            }
            tx.execute(
                "DELETE FROM messages WHERE thread_id = ?1 AND seq NOT IN \
                 (SELECT seq FROM messages WHERE thread_id = ?1 ORDER BY seq LIMIT ?2)",
                params![id, keep as i64],
            )?;
            tx.execute(
                "INSERT INTO thread_archives (thread_id, body) VALUES (?1, ?2) \
                 ON CONFLICT (thread_id) DO UPDATE SET body = excluded.body",
                params![id, archive],
            )?;
            tx.execute(
                "UPDATE threads SET last_outcome = NULL, revision = revision + 1 WHERE thread_id = ?1",
                params![id],
            )?;
            insert_messages(tx, &id, &tail)
        })
        .await
    }
}
