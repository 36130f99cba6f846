//! An embedded SQLite file: the local default. It survives restarts and hot reloads, and several
//! processes (the functions under `cargo lambda watch`) share it safely. WAL lets readers run
//! beside a writer; every check-then-write is one IMMEDIATE transaction, so two processes cannot
//! both pass the same check.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use documents::delete_documents;
use messages::{insert_messages, revision};

mod crons;
mod documents;
mod memories;
mod messages;
mod runs;

use super::{
    stored_bytes, DocumentQuota, Entity, EventBatch, Fork, KeptEvent, Revision, RunStart, Started, Store, StoreError,
    StoreResult, ThreadView,
};
use crate::model::{
    Archive, Assistant, Cron, DocumentChunk, DocumentIndex, EmbedderId, Feedback, MemoryItem, Message, Run, RunStatus,
    Thread, Timestamp, UserId,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assistants (
    assistant_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    public INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assistants_by_user ON assistants (user_id, updated_at);
CREATE INDEX IF NOT EXISTS assistants_public ON assistants (public, updated_at);
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL,
    lease_run_id TEXT,
    lease_expires_ms INTEGER,
    last_outcome TEXT,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS threads_by_user ON threads (user_id, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (thread_id, message_id);
CREATE TABLE IF NOT EXISTS thread_archives (
    thread_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    body TEXT NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_run ON feedback (run_id, seq);
CREATE INDEX IF NOT EXISTS feedback_by_thread ON feedback (thread_id);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    body TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, batch)
);
CREATE INDEX IF NOT EXISTS run_events_by_thread ON run_events (thread_id);
CREATE INDEX IF NOT EXISTS run_events_by_expiry ON run_events (expires_ms);
CREATE TABLE IF NOT EXISTS memory_items (
    owner TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (owner, sort_key)
);
CREATE TABLE IF NOT EXISTS crons (
    cron_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    last_slot_ms INTEGER
);
CREATE INDEX IF NOT EXISTS crons_by_user ON crons (user_id, created_ms);
CREATE TABLE IF NOT EXISTS document_indexes (
    namespace TEXT PRIMARY KEY,
    embedder TEXT NOT NULL,
    owner TEXT,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS document_chunks (
    namespace TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (namespace, seq)
);
";

pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {error}"))
    }
}

fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|error| StoreError::Backend(format!("could not encode a record: {error}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Backend(format!("a stored record is unreadable: {error}")))
}

/// Adds the `columns` (name, definition) that `table` lacks.
fn add_missing_columns(connection: &Connection, table: &str, columns: &[(&str, &str)]) -> StoreResult<()> {
    let present: Vec<String> = connection
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (column, definition) in columns {
        if !present.iter().any(|found| found == column) {
            connection.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    Ok(())
}

fn millis(at: Timestamp) -> i64 {
    at.datetime().timestamp_millis()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its folder.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|error| StoreError::Backend(format!("cannot create {}: {error}", folder.display())))?;
        }
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        // Files made before threads recorded their last run's outcome, or their revision, and
        // before file indexes counted their owner's bytes (older files count as none).
        add_missing_columns(
            &connection,
            "threads",
            &[("last_outcome", "TEXT"), ("revision", "INTEGER NOT NULL DEFAULT 0")],
        )?;
        // ...and before runs were claimed by the process that executes them.
        add_missing_columns(&connection, "runs", &[("claimed", "INTEGER NOT NULL DEFAULT 0")])?;
        add_missing_columns(
            &connection,
            "document_indexes",
            &[("owner", "TEXT"), ("bytes", "INTEGER NOT NULL DEFAULT 0")],
        )?;
        connection.execute_batch("CREATE INDEX IF NOT EXISTS document_indexes_by_owner ON document_indexes (owner)")?;
        Ok(SqliteStore { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs blocking SQLite work off the async threads.
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("sqlite worker failed: {error}")))?
    }

    /// Like [`call`](Self::call), inside one IMMEDIATE transaction committed on success.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.call(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let result = work(&transaction)?;
            transaction.commit()?;
            Ok(result)
        })
        .await
    }
}

fn owner_of(connection: &Connection, table: &str, key: &str, id: Uuid) -> StoreResult<Option<String>> {
    let sql = format!("SELECT user_id FROM {table} WHERE {key} = ?1");
    Ok(connection.query_row(&sql, params![id.to_string()], |row| row.get(0)).optional()?)
}

/// A create-or-replace may go ahead: the id is free or already `user`'s (no takeover).
fn not_anothers(
    connection: &Connection,
    table: &str,
    key: &str,
    id: Uuid,
    user: &UserId,
    entity: Entity,
) -> StoreResult<()> {
    match owner_of(connection, table, key, id)? {
        Some(owner) if owner != user.as_str() => Err(StoreError::NotFound(entity)),
        _ => Ok(()),
    }
}

fn own_thread(connection: &Connection, user: &UserId, thread_id: Uuid) -> StoreResult<()> {
    match owner_of(connection, "threads", "thread_id", thread_id)? {
        Some(owner) if owner == user.as_str() => Ok(()),
        _ => Err(StoreError::NotFound(Entity::Thread)),
    }
}

fn bodies<T: DeserializeOwned>(connection: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement.query_map(args, |row| row.get::<_, String>(0))?;
    rows.map(|row| from_json(&row?)).collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let assistant = assistant.clone();
        self.write(move |tx| {
            not_anothers(
                tx,
                "assistants",
                "assistant_id",
                assistant.assistant_id,
                &assistant.user_id,
                Entity::Assistant,
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO assistants (assistant_id, user_id, public, updated_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    assistant.assistant_id.to_string(),
                    assistant.user_id.as_str(),
                    assistant.public,
                    assistant.updated_at.to_rfc3339(),
                    to_json(&assistant)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE assistant_id = ?1 AND (user_id = ?2 OR public = 1)";
            bodies(connection, sql, params![assistant_id.to_string(), user.as_str()])?
                .pop()
                .ok_or(StoreError::NotFound(Entity::Assistant))
        })
        .await
    }

    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>> {
        let user = user.clone();
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE user_id = ?1 ORDER BY updated_at DESC, assistant_id";
            bodies(connection, sql, params![user.as_str()])
        })
        .await
    }

    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>> {
        self.call(move |connection| {
            let sql = "SELECT body FROM assistants WHERE public = 1 ORDER BY updated_at DESC, assistant_id";
            bodies(connection, sql, [])
        })
        .await
    }

    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let sql = "DELETE FROM assistants WHERE assistant_id = ?1 AND user_id = ?2";
            match tx.execute(sql, params![assistant_id.to_string(), user.as_str()])? {
                0 => Err(StoreError::NotFound(Entity::Assistant)),
                _ => delete_documents(tx, assistant_id),
            }
        })
        .await
    }

    async fn put_thread(&self, thread: &Thread) -> StoreResult<()> {
        let thread = thread.clone();
        self.write(move |tx| {
            not_anothers(tx, "threads", "thread_id", thread.thread_id, &thread.user_id, Entity::Thread)?;
            tx.execute(
                "INSERT INTO threads (thread_id, user_id, updated_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (thread_id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body",
                params![
                    thread.thread_id.to_string(),
                    thread.user_id.as_str(),
                    thread.updated_at.to_rfc3339(),
                    to_json(&thread)?
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
            let id = thread_id.to_string();
            tx.execute("DELETE FROM messages WHERE thread_id = ?1", params![id])?;
            tx.execute("DELETE FROM thread_archives WHERE thread_id = ?1", params![id])?;
            tx.execute("DELETE FROM runs WHERE thread_id = ?1", params![id])?;
            tx.execute("DELETE FROM feedback WHERE thread_id = ?1", params![id])?;
            tx.execute("DELETE FROM run_events WHERE thread_id = ?1", params![id])?;
            tx.execute("DELETE FROM threads WHERE thread_id = ?1", params![id])?;
            delete_documents(tx, thread_id)
        })
        .await
    }

    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>> {
        self.read_messages(user, thread_id).await
    }

    async fn thread_view(&self, user: &UserId, thread_id: Uuid) -> StoreResult<ThreadView> {
        self.read_view(user, thread_id).await
    }

    async fn append_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        _seen: Option<Revision>,
    ) -> StoreResult<Revision> {
        self.append(user, thread_id, messages, _seen).await
    }

    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()> {
        self.upsert(user, thread_id, messages).await
    }

    async fn archive(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Archive> {
        self.read_archive(user, thread_id).await
    }

    async fn fork_thread(&self, fork: Fork<'_>) -> StoreResult<Revision> {
        self.fork(fork).await
    }

    async fn start_run(&self, start: RunStart<'_>) -> StoreResult<Started> {
        self.start(start).await
    }

    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run> {
        self.read_run(user, run_id).await
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
        self.thread_runs(user, thread_id).await
    }

    async fn add_run_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()> {
        self.keep_events(run, batch).await
    }

    async fn run_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)> {
        self.kept_events(run, from).await
    }

    async fn put_cron(&self, cron: &Cron) -> StoreResult<()> {
        self.write_cron(cron).await
    }

    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron> {
        self.read_cron(user, cron_id).await
    }

    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>> {
        self.read_crons(Some(user)).await
    }

    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()> {
        self.erase_cron(user, cron_id).await
    }

    async fn all_crons(&self) -> StoreResult<Vec<Cron>> {
        self.read_crons(None).await
    }

    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool> {
        self.claim_slot(cron_id, slot).await
    }

    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()> {
        self.write_memory(owner, item).await
    }

    async fn get_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<Option<MemoryItem>> {
        Ok(self.read_memories(owner, MemoryItem::sort_key(namespace, key), true).await?.pop())
    }

    async fn delete_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<()> {
        self.erase_memory(owner, namespace, key).await
    }

    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>> {
        self.read_memories(owner, MemoryItem::prefix_key(prefix), false).await
    }

    async fn update_run(&self, run: &Run) -> StoreResult<()> {
        self.write_run(run).await
    }

    async fn update_run_if_going(&self, run: &Run) -> StoreResult<bool> {
        self.update_if_going(run).await
    }

    async fn claim_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool> {
        self.claim(user, run_id).await
    }

    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()> {
        self.renew(thread_id, run_id, lease).await
    }

    async fn finish_run(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()> {
        self.finish(run, messages, seen).await
    }

    async fn keep_run_step(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<Revision> {
        self.keep_step(run, messages, seen).await
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

    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()> {
        self.put_document(namespace, owner, embedder, chunks, quota).await
    }

    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex> {
        self.read_documents(namespace).await
    }
}
