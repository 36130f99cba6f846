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
use threads::{insert_messages, revision};

mod assistants;
mod crons;
mod documents;
mod events;
mod expiry;
mod memories;
mod runs;
mod thread_log;
mod threads;

use super::{
    stored_bytes, DocumentQuota, Entity, EventBatch, Fork, KeptEvent, Revision, RunStart, Started, Store, StoreError,
    StoreResult, ThreadView,
};
use crate::model::{
    Archive, Assistant, Cron, DocumentChunk, DocumentIndex, EmbedderId, Feedback, MemoryItem, Message, Run, RunStatus,
    Thread, ThreadEvent, Timestamp, UserId,
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
    revision INTEGER NOT NULL DEFAULT 0,
    expires_ms INTEGER
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
CREATE TABLE IF NOT EXISTS thread_events (
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS thread_events_by_expiry ON thread_events (expires_ms);
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
            &[("last_outcome", "TEXT"), ("revision", "INTEGER NOT NULL DEFAULT 0"), ("expires_ms", "INTEGER")],
        )?;
        // Only threads with a `ttl` are in it.
        connection.execute_batch(
            "CREATE INDEX IF NOT EXISTS threads_by_expiry ON threads (expires_ms) WHERE expires_ms IS NOT NULL",
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
impl Store for SqliteStore {}
