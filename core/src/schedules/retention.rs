//! Data that ends: threads whose time is up, swept away on a schedule (EventBridge invoking
//! `run-worker` in the cloud, a loop in the local server); threads pruned on request; and all of
//! a user's data removed on request.
//!
//! A thread is deleted or pruned only when no run holds it, taken as a run takes it, so one in
//! use is never cut from under its run: the sweep leaves it to the next one.

use std::collections::HashSet;

use serde::Serialize;
use uuid::Uuid;

use super::{forget, forget_crons_on, ForgetError, Schedules};
use crate::config::RetentionSettings;
use crate::model::{Archive, Thread, Timestamp, TtlStrategy, UserId};
use crate::store::{Fork, Store, StoreError};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub deleted: usize,
    pub kept_latest: usize,
    /// Held by a run, or given a new lifetime since they were read: left to the next sweep.
    pub left: usize,
    /// Expired single items removed (SQLite's and memory's; DynamoDB's TTL removes its own).
    pub purged: u64,
}

/// Applies each expired thread's strategy, at most `settings.sweep_limit` threads, and removes
/// the expired single items. A thread that fails is logged and left to the next sweep; the
/// sweep goes on.
pub async fn sweep(
    store: &dyn Store,
    schedules: &dyn Schedules,
    settings: &RetentionSettings,
) -> Result<Swept, StoreError> {
    let now = Timestamp::now();
    let mut swept = Swept { purged: store.purge_expired(now).await?, ..Swept::default() };
    for thread in store.expired_threads(now, settings.sweep_limit).await? {
        let Some(ttl) = thread.ttl else { continue };
        match prune(store, schedules, &thread, ttl.strategy).await {
            Ok(true) if ttl.strategy == TtlStrategy::Delete => swept.deleted += 1,
            Ok(true) => swept.kept_latest += 1,
            Ok(false) => swept.left += 1,
            Err(error) => {
                tracing::warn!(thread_id = %thread.thread_id, %error, "could not sweep an expired thread yet");
                swept.left += 1;
            }
        }
    }
    if swept != Swept::default() {
        tracing::info!(?swept, "swept expired threads");
    }
    Ok(swept)
}

/// Applies `strategy` to `thread` (as read) once no run holds it: `false` when a run holds it,
/// it was given a new lifetime since it was read, or it is gone.
pub async fn prune(
    store: &dyn Store,
    schedules: &dyn Schedules,
    thread: &Thread,
    strategy: TtlStrategy,
) -> Result<bool, StoreError> {
    match strategy {
        TtlStrategy::Delete => match store.delete_idle_thread(thread).await {
            Ok(()) => {
                forget_crons_on(store, schedules, &thread.user_id, thread.thread_id).await;
                Ok(true)
            }
            Err(StoreError::ThreadBusy { .. } | StoreError::ThreadChanged | StoreError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        },
        TtlStrategy::KeepLatest => keep_latest(store, thread).await,
    }
}

/// Drops the branches of the thread's history that are not its latest state, and starts its
/// lifetime again.
async fn keep_latest(store: &dyn Store, thread: &Thread) -> Result<bool, StoreError> {
    let user = &thread.user_id;
    let view = match store.thread_view(user, thread.thread_id).await {
        Ok(view) if !view.running => view,
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(false),
        Err(error) => return Err(error),
    };
    if view.thread.ttl.map(|ttl| ttl.expires_at) != thread.ttl.map(|ttl| ttl.expires_at) {
        return Ok(false);
    }
    if !store.archive(user, thread.thread_id).await?.is_empty() {
        let empty = Archive::default();
        let fork = Fork {
            user,
            thread_id: thread.thread_id,
            keep: view.messages.len(),
            tail: &[],
            archive: &empty,
            seen: view.revision,
        };
        match store.fork_thread(fork).await {
            Ok(_) => {}
            Err(StoreError::ThreadBusy { .. } | StoreError::ThreadChanged) => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    let mut renewed = view.thread;
    renewed.ttl = renewed.ttl.map(|ttl| ttl.restarted(Timestamp::now()));
    store.put_thread(&renewed).await?;
    Ok(true)
}

/// What removing a user's data removed, in both APIs' terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub assistants: usize,
    pub threads: usize,
    pub files: usize,
    pub memories: usize,
    pub crons: usize,
    pub feedback: usize,
}

/// Removes everything `user` owns: crons first (so none fires on what goes next), then threads
/// (with their messages, runs, feedback and files), assistants (with their files) and memory
/// items. Each step lists what is left, so a call cut short by a fault is finished by the next
/// one, and a second call removes nothing more.
pub async fn remove_user_data(
    store: &dyn Store,
    schedules: &dyn Schedules,
    user: &UserId,
) -> Result<Removed, ForgetError> {
    let mut removed = Removed::default();
    for cron in store.list_crons(user).await? {
        forget(store, schedules, user, cron.cron_id).await?;
        removed.crons += 1;
    }
    for thread in store.list_threads(user).await? {
        removed.files += files_in(store, thread.thread_id).await?;
        for run in store.list_runs(user, thread.thread_id).await? {
            removed.feedback += store.feedback(&run).await?.len();
        }
        match store.delete_thread(user, thread.thread_id).await {
            Ok(()) => removed.threads += 1,
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    for assistant in store.list_assistants(user).await? {
        removed.files += files_in(store, assistant.assistant_id).await?;
        match store.delete_assistant(user, assistant.assistant_id).await {
            Ok(()) => removed.assistants += 1,
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    for item in store.memories(user, &[]).await? {
        store.delete_memory(user, &item.namespace, &item.key).await?;
        removed.memories += 1;
    }
    Ok(removed)
}

/// How many files a namespace's index holds.
async fn files_in(store: &dyn Store, namespace: Uuid) -> Result<usize, StoreError> {
    let index = store.documents(namespace).await?;
    Ok(index.chunks.iter().map(|chunk| chunk.file_id).collect::<HashSet<_>>().len())
}
