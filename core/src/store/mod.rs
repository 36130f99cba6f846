//! The one way to data. Every backend implements [`Store`] and passes the same contract suite
//! (`tests/store_contract.rs`). Ownership and the per-thread run lease are enforced here, inside
//! each operation, so no handler can forget them.

pub mod dynamodb;
mod memory;
mod rules;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{
    Archive, Assistant, Cron, DocumentChunk, DocumentIndex, EmbedderId, Feedback, MemoryItem, Message, Run, RunStatus,
    Thread, ThreadEvent, Timestamp, UserId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Assistant,
    Thread,
    Run,
    Upload,
    Cron,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Assistant => "Assistant",
            Entity::Thread => "Thread",
            Entity::Run => "Run",
            Entity::Upload => "Upload",
            Entity::Cron => "Cron",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Absent, or owned by someone else: callers cannot tell the two apart, on purpose.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The thread's lease is held by a run that has not finished or expired.
    #[error("thread is busy with run {run_id}")]
    ThreadBusy { run_id: Uuid },
    /// The run no longer holds the lease it is renewing (it expired and another run took it).
    #[error("run {run_id} lost the thread's lease")]
    LeaseLost { run_id: Uuid },
    /// The thread was written to after the caller read it, which its write depended on.
    #[error("the thread changed since it was read")]
    ThreadChanged,
    /// The user already has as many runs going as allowed.
    #[error("{limit} runs of this user are already going")]
    TooManyRuns { limit: u32 },
    /// A namespace's files were embedded by another embedder than the one adding to it.
    #[error("the files here were indexed with {recorded}, not {offered}")]
    IndexMismatch { recorded: EmbedderId, offered: EmbedderId },
    /// The namespace's files would hold more chunks than `limit`.
    #[error("the files here would hold {would_hold} chunks; at most {limit} may be stored")]
    ChunkQuota { would_hold: u64, limit: u64 },
    /// The owner's files, all namespaces together, would hold more than `limit` bytes.
    #[error("the user's files would hold {would_hold} bytes; at most {limit} may be stored")]
    ByteQuota { would_hold: u64, limit: u64 },
    #[error("store backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What one namespace's files, and one user's files together, may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentQuota {
    pub max_chunks: u64,
    pub max_user_bytes: u64,
}

/// The bytes a user's quota counts for chunks: their text, and one byte per dimension of their
/// vectors (as DynamoDB keeps them, quantised).
pub fn stored_bytes(chunks: &[DocumentChunk]) -> u64 {
    chunks.iter().map(|chunk| (chunk.text.len() + chunk.vector.len()) as u64).sum()
}

/// One event of a run's stream, kept so that a client can join the stream later, from any
/// process (the LangGraph API's resumable streams).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptEvent {
    /// The SSE `id`, which a client names in `Last-Event-ID`.
    pub id: String,
    pub event: String,
    pub data: String,
}

/// Events of a run's stream written at once: the run's `number`th batch, kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    pub number: u64,
    pub events: Vec<KeptEvent>,
    pub expires_at: Timestamp,
}

/// A thread as its state shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadView {
    pub thread: Thread,
    pub messages: Vec<Message>,
    /// A run holds the thread: its lease has not expired.
    pub running: bool,
    /// The run whose lease on the thread expired without its giving the thread back: its process
    /// ended (a crash, a timeout), and its record may still say it is going.
    pub abandoned_by: Option<Uuid>,
    /// How the last run to let go of the thread ended, unless messages were added since.
    pub last_outcome: Option<RunStatus>,
    pub revision: Revision,
}

/// Where a thread's messages stand. It moves on whenever a message is added or replaced, so a
/// run that read the thread at one revision knows, when it starts, whether what it read is
/// still the thread; and a backend that knows it can write without reading first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
pub struct Revision(pub u64);

/// A run taking its thread.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// Recorded as given.
    pub run: &'a Run,
    pub lease: Duration,
    /// At most this many of the user's runs may hold threads (in any process).
    pub max_user_runs: Option<u32>,
    /// Added to the thread with the start: both happen or neither.
    pub input: &'a [Message],
    /// The revision at which the caller read the thread, if it did.
    pub seen: Option<Revision>,
}

impl<'a> RunStart<'a> {
    pub fn new(run: &'a Run, lease: Duration) -> Self {
        RunStart { run, lease, max_user_runs: None, input: &[], seen: None }
    }
}

/// A run that holds its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The thread's revision with the input added.
    pub revision: Revision,
    /// No message changed between `seen` and the start: what the caller read, with the input
    /// after it, is the thread.
    pub unchanged: bool,
}

/// A thread moving to another branch of its history (see [`Archive::fork`]).
#[derive(Debug, Clone, Copy)]
pub struct Fork<'a> {
    pub user: &'a UserId,
    pub thread_id: Uuid,
    /// The thread's first `keep` messages stay, and `tail` follows them.
    pub keep: usize,
    pub tail: &'a [Message],
    /// Replaces the thread's archived branches.
    pub archive: &'a Archive,
    /// The revision at which the caller read the thread and its archive.
    pub seen: Revision,
}

/// The one way to data: every store by concern, each backend implementing each in its file
/// for that concern. Handlers and the run engine hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    AssistantStore
    + ThreadStore
    + RunStore
    + EventStore
    + ThreadLogStore
    + MemoryItemStore
    + CronStore
    + DocumentStore
    + ExpiryStore
    + 'static
{
    /// Opens connections ahead of the first request (a Lambda's init is not billed the same
    /// way, and the first caller should not wait for a TLS handshake). Failures are ignored.
    async fn warm_up(&self) {}
}

/// Assistants, each its owner's, some public.
#[async_trait]
pub trait AssistantStore: Send + Sync {
    /// Creates or replaces an assistant. An id owned by another user is `NotFound`: no takeover.
    async fn put_assistant(&self, assistant: &Assistant) -> StoreResult<()>;
    /// The user's own assistant, or anyone's public one.
    async fn get_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<Assistant>;
    /// The user's assistants, most recently updated first.
    async fn list_assistants(&self, user: &UserId) -> StoreResult<Vec<Assistant>>;
    /// Every user's public assistants, most recently updated first.
    async fn list_public_assistants(&self) -> StoreResult<Vec<Assistant>>;
    /// Deletes the assistant and the files uploaded to it.
    async fn delete_assistant(&self, user: &UserId, assistant_id: Uuid) -> StoreResult<()>;
}

/// Threads and their messages, and the branches forks left behind.
#[async_trait]
pub trait ThreadStore: Send + Sync {
    /// Creates or replaces a thread, keeping its messages. Another user's id is `NotFound`.
    async fn put_thread(&self, thread: &Thread) -> StoreResult<()>;
    async fn get_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Thread>;
    /// The user's threads, most recently updated first.
    async fn list_threads(&self, user: &UserId) -> StoreResult<Vec<Thread>>;
    /// Deletes the thread with its messages, runs and the files uploaded to it.
    async fn delete_thread(&self, user: &UserId, thread_id: Uuid) -> StoreResult<()>;

    /// The thread's messages in the order they were added.
    async fn messages(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Message>>;
    /// The thread with its messages and what its runs are doing, read at once.
    async fn thread_view(&self, user: &UserId, thread_id: Uuid) -> StoreResult<ThreadView>;
    /// Adds messages after the others, all or nothing, and returns the thread's new revision.
    /// `seen`, the revision the caller last read, lets a backend write in one step when nothing
    /// changed since; the result is the same either way.
    async fn append_messages(
        &self,
        user: &UserId,
        thread_id: Uuid,
        messages: &[Message],
        seen: Option<Revision>,
    ) -> StoreResult<Revision>;
    /// Replaces the messages whose `id` matches one in `messages`; appends the others.
    async fn upsert_messages(&self, user: &UserId, thread_id: Uuid, messages: &[Message]) -> StoreResult<()>;

    /// The branches of the thread's history that forks left behind.
    async fn archive(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Archive>;
    /// Moves the thread to another branch of its history, all at once: `ThreadBusy` while a run
    /// holds it, `ThreadChanged` if it was written to since `seen`; nothing is written then.
    /// Returns the thread's new revision, later than any before (whatever the tail's length).
    async fn fork_thread(&self, fork: Fork<'_>) -> StoreResult<Revision>;
}

/// Threads whose time is up (see `model::ThreadTtl`), and deleting a thread that no run holds:
/// the sweep and prune take a thread as a run does, so one in use is never deleted under it.
#[async_trait]
pub trait ExpiryStore: Send + Sync {
    /// Every user's threads whose `ttl` ran out by `now`, the longest expired first, at most `limit`.
    async fn expired_threads(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Thread>>;
    /// Deletes the thread (as `delete_thread` does) once no run holds it and its `ttl` is still
    /// the one `thread`, as the caller read it, has: `ThreadBusy` while a run holds it,
    /// `ThreadChanged` when its `ttl` was set again since, `NotFound` when it is gone or not
    /// `thread.user_id`'s. Nothing is deleted then.
    async fn delete_idle_thread(&self, thread: &Thread) -> StoreResult<()>;
    /// Removes the single items whose expiry passed by `now` (memory items, runs' kept events,
    /// threads' event logs), which reads already treat as gone; returns how many went. DynamoDB's
    /// TTL attribute does this by itself, at no cost in writes: there it removes none.
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;
}

/// Runs, the thread leases they hold while they go, and the feedback on them.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records a new run, takes its thread's lease and adds its input, atomically: `ThreadBusy`
    /// when another run holds an unexpired lease, `TooManyRuns` when `max_user_runs` of the
    /// user's runs already hold leases (on any thread, in any process); nothing is stored then.
    async fn start_run(&self, start: RunStart<'_>) -> StoreResult<Started>;
    async fn get_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<Run>;
    /// Deletes one of the user's runs that has ended, with its feedback and kept events.
    async fn delete_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<()>;
    /// The runs started on the user's thread, newest first.
    async fn list_runs(&self, user: &UserId, thread_id: Uuid) -> StoreResult<Vec<Run>>;
    async fn update_run(&self, run: &Run) -> StoreResult<()>;
    /// Writes `run`'s record (its end: cancelled, or failed in a process gone silent; or a
    /// heartbeat) unless the stored one has ended already, atomically: `false` then, and nothing
    /// is written. The run's own end, or a cancel from another process, may land at any moment,
    /// and a cancel, a reader or a heartbeat must not overwrite it.
    async fn update_run_if_going(&self, run: &Run) -> StoreResult<bool>;
    /// Marks the user's run as taken by the process that executes it, atomically: `true` for the
    /// one caller that does, while the run is still `pending` (not cancelled, not taken before).
    /// A background run may be handed over more than once (Lambda delivers an event at least
    /// once, and an invoke whose answer was lost is sent again): only its claim executes it.
    async fn claim_run(&self, user: &UserId, run_id: Uuid) -> StoreResult<bool>;
    /// Extends the lease of a run still holding it; `LeaseLost` otherwise.
    async fn renew_lease(&self, thread_id: Uuid, run_id: Uuid, lease: Duration) -> StoreResult<()>;
    /// Ends a run at once: adds its last messages, records `run` as it ended, and gives its
    /// thread back noting the outcome. A run that lost its lease still has its messages and
    /// record kept if nothing was written to the thread since `seen` (its last write); the lease
    /// is not its to give. If something was, its messages would land among another run's: it
    /// gets `LeaseLost` and nothing is written. A thread deleted meanwhile took the run with it:
    /// nothing is kept, and that is no error. `seen` is as for `append_messages`.
    async fn finish_run(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<()>;
    /// Adds a step of a run that goes on (an agent's tool calls and their results) and returns
    /// the thread's revision: when the run holds its thread's lease, or when nothing was
    /// written to the thread since `seen` (its last write). Otherwise the step would land among
    /// another run's messages: `LeaseLost`, and nothing is written.
    async fn keep_run_step(&self, run: &Run, messages: &[Message], seen: Option<Revision>) -> StoreResult<Revision>;

    /// Keeps feedback on `run` (whose owner the caller has checked). It goes with the run's thread.
    async fn add_feedback(&self, run: &Run, feedback: &Feedback) -> StoreResult<()>;
    /// The feedback on `run`, oldest first.
    async fn feedback(&self, run: &Run) -> StoreResult<Vec<Feedback>>;
}

/// The stream events of runs whose streams are kept.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Keeps a batch of the run's stream events; a run writes its batches one after the other,
    /// numbered 0, 1, 2 ... Events go with their run's thread.
    async fn add_run_events(&self, run: &Run, batch: &EventBatch) -> StoreResult<()>;
    /// The run's events from batch `from` on, whole batches only, and the number of the batch
    /// after them (where the next read starts). Expired batches are gone.
    async fn run_events(&self, run: &Run, from: u64) -> StoreResult<(Vec<KeptEvent>, u64)>;
}

/// Each thread's event log, the LangGraph event protocol's (see `model::ThreadEvent`): written by
/// the run holding the thread, in batches of consecutive events, each kept until its expiry. The
/// caller has checked that the thread is the user's.
#[async_trait]
pub trait ThreadLogStore: Send + Sync {
    /// Adds events that follow the thread's last ones. A deleted thread keeps none.
    async fn add_thread_events(&self, thread_id: Uuid, batch: &ThreadEventBatch) -> StoreResult<()>;
    /// The events after `since`, oldest first: at most `limit`, read at once (a caller far
    /// behind reads again from the last one it got). Expired events are gone.
    async fn thread_events(&self, thread_id: Uuid, since: u64, limit: usize) -> StoreResult<Vec<ThreadEvent>>;
    /// The `seq` of the thread's last event written, expired or not: 0 before any.
    async fn last_thread_event(&self, thread_id: Uuid) -> StoreResult<u64>;
}

/// Consecutive events of a thread written at once, kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadEventBatch {
    /// Shared with the readers in the writer's process.
    pub events: Vec<std::sync::Arc<ThreadEvent>>,
    pub expires_at: Timestamp,
}

/// Long-term memory items (the LangGraph API's store), each its owner's.
#[async_trait]
pub trait MemoryItemStore: Send + Sync {
    /// Creates or replaces one of `owner`'s memory items (`item.created_at` is the caller's to keep).
    async fn put_memory(&self, owner: &UserId, item: &MemoryItem) -> StoreResult<()>;
    /// One of `owner`'s memory items; `None` when there is none, or it has expired.
    async fn get_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<Option<MemoryItem>>;
    async fn delete_memory(&self, owner: &UserId, namespace: &[String], key: &str) -> StoreResult<()>;
    /// `owner`'s unexpired memory items whose namespace begins with `prefix`, in namespace and
    /// key order.
    async fn memories(&self, owner: &UserId, prefix: &[String]) -> StoreResult<Vec<MemoryItem>>;
}

/// Crons and the slots they have fired for.
#[async_trait]
pub trait CronStore: Send + Sync {
    /// Creates or replaces one of its owner's crons; another user's id is `NotFound`. When the
    /// cron last fired is kept apart, by [`CronStore::claim_cron_slot`].
    async fn put_cron(&self, cron: &Cron) -> StoreResult<()>;
    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron>;
    /// The user's crons, oldest first.
    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>>;
    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()>;
    /// Every user's crons, oldest first: what a scheduler in this process fires.
    async fn all_crons(&self) -> StoreResult<Vec<Cron>>;
    /// Records, atomically, that the cron fires for its time `slot`: `false` when a firing for
    /// that slot or a later one is recorded already (a schedule delivered twice, two schedulers),
    /// so that each slot starts one run. `NotFound` when the cron is gone.
    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool>;
}

/// The index of uploaded files' chunks, per assistant or thread.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Adds one file's chunks (all of one `file_id`) to `namespace`'s index, whose owner the
    /// caller has checked: readers see the whole file or none of it, whatever fails part-way.
    /// The index keeps the embedder of its first file; another is `IndexMismatch`. A file that
    /// would bring the namespace past `quota.max_chunks` is `ChunkQuota`, and one that would
    /// bring its owner's files past `quota.max_user_bytes` (see [`stored_bytes`]) is `ByteQuota`:
    /// both checked atomically with the write, and nothing of the file is stored then. Deleting
    /// the namespace's assistant or thread gives its bytes back.
    async fn add_document(
        &self,
        namespace: Uuid,
        owner: &UserId,
        embedder: &EmbedderId,
        chunks: &[DocumentChunk],
        quota: DocumentQuota,
    ) -> StoreResult<()>;
    /// The complete files of a namespace, in the order they were added.
    async fn documents(&self, namespace: Uuid) -> StoreResult<DocumentIndex>;
}
