//! The run engine: one path for background runs (`/runs`) and streamed runs (`/runs/stream`).
//!
//! A run takes its thread's lease in the store (so two runs never interleave on one thread)
//! together with its input, streams the model, and stores the finished AI message together with
//! its end (its status, the lease given back). It executes in its own task, apart from any HTTP
//! connection, so a client that leaves does not lose the answer; a model that fails leaves the
//! input in place and no half answer behind.
//!
//! An agent's run loops: the model answers with tool calls, the tools run, their answers go
//! back to the model, until it answers in words. Each step is stored as it completes.

#[cfg(feature = "runs")]
mod answer;
mod bot;
mod bots;
pub mod configurable;
#[cfg(feature = "runs")]
mod dispatch;
#[cfg(feature = "runs")]
mod engine;
#[cfg(feature = "runs")]
mod execution;
#[cfg(feature = "runs")]
mod failure;
#[cfg(feature = "runs")]
mod flows;
#[cfg(feature = "runs")]
mod graph_events;
mod graph_state;
#[cfg(feature = "runs")]
mod job;
#[cfg(feature = "runs")]
mod lifecycle;
#[cfg(feature = "runs")]
mod preparation;
#[cfg(feature = "runs")]
mod protocol_events;
#[cfg(feature = "runs")]
mod recorder;
#[cfg(feature = "runs")]
mod render;
mod request;
#[cfg(feature = "runs")]
mod review;
#[cfg(feature = "runs")]
mod service;
#[cfg(feature = "runs")]
mod thread_feed;
#[cfg(feature = "runs")]
mod thread_log;
mod thread_state;
#[cfg(feature = "runs")]
mod turns;
#[cfg(feature = "runs")]
mod webhook;

pub use crate::model::{
    AssistantChoice, GraphOptions, MultitaskStrategy, OnDisconnect, RunInput, RunSpec, StreamMode, ThreadTarget,
};
pub use bot::{find_assistant, Bot};
#[cfg(feature = "runs")]
pub use dispatch::InProcessDispatch;
#[cfg(feature = "dispatch")]
pub use dispatch::LambdaDispatch;
#[cfg(feature = "runs")]
pub use engine::{BackgroundDispatch, RunEngine};
pub use graph_state::{review_interrupts, GraphRun, GraphStream, State};
#[cfg(feature = "runs")]
pub use job::{RunEvent, RunJob};
#[cfg(feature = "runs")]
pub use recorder::{event_position, BATCH_EVERY};
pub use request::RunRequest;
#[cfg(feature = "runs")]
pub use review::{decide, Decided};
#[cfg(feature = "runs")]
pub use service::{Mode, Started, StreamTo};
#[cfg(feature = "runs")]
pub use thread_feed::{ThreadFeed, EVENTS_PER_READ};
#[cfg(feature = "runs")]
pub use thread_log::{Attached, ThreadLogs};
pub use thread_state::{
    checkpoint_id, checkpoint_position, default_ttl, is_checkpoint, new_thread, next_after, next_nodes, update_state,
    Next,
};
#[cfg(feature = "runs")]
pub use turns::{Outcome, Turn};
#[cfg(feature = "runs")]
pub use webhook::{signature as webhook_signature, Webhooks, SIGNATURE_HEADER as WEBHOOK_SIGNATURE_HEADER};

use crate::llm::ModelConfigError;
use crate::store::StoreError;
use crate::tools::ToolConfigError;

/// The worker could not be handed the run; the run never started.
#[derive(Debug, thiserror::Error)]
#[error("could not hand the run to {worker}: {reason}")]
pub struct DispatchError {
    pub worker: String,
    pub reason: String,
}

/// Why a run could not be started (or read, or cancelled). Failures after the start belong to
/// the run: they end up in its record and stream, not here.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    #[error(transparent)]
    Tools(#[from] ToolConfigError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("{0}")]
    ThreadFull(String),
    /// The run's `webhook` is not a URL that may be called.
    #[error("{0}")]
    Webhook(String),
    #[error("Checkpoint {0} is not one of this thread's")]
    CheckpointNotFound(String),
    #[error(
        "A run from this checkpoint would move {moved} messages between branches; at most {limit} may be moved: \
         start from a later checkpoint, or copy the thread"
    )]
    ForkTooLarge { moved: usize, limit: usize },
    #[error("The thread is not waiting for a decision on tool calls: nothing to resume")]
    NothingToResume,
    /// The decisions on the pending tool calls cannot be applied; the text says why.
    #[error("{0}")]
    Review(String),
    /// The task that executed the run ended without its record (the runtime shut down).
    #[error("the run's task failed: {0}")]
    Task(String),
}

/// Whether a thread holding `existing` has room for `adding`, under `MAX_THREAD_MESSAGES` and
/// `MAX_THREAD_BYTES` (of content). A thread that grew without end would make every run read it
/// all, so past these it takes no more input: the user starts a new thread.
pub fn check_thread_room(
    limits: &crate::config::Limits,
    existing: &[crate::model::Message],
    adding: &[crate::model::Message],
) -> Result<(), RunError> {
    let messages = existing.len() + adding.len();
    let bytes: usize = existing.iter().chain(adding).map(|message| message.content.len()).sum();
    let full = |what: &str, count: usize, limit: usize, variable: &str| {
        RunError::ThreadFull(format!(
            "The thread would hold {count} {what}; a thread holds at most {limit} ({variable}): start a new thread, or raise {variable}"
        ))
    };
    if messages > limits.max_thread_messages {
        return Err(full("messages", messages, limits.max_thread_messages, "MAX_THREAD_MESSAGES"));
    }
    if bytes > limits.max_thread_bytes {
        return Err(full("bytes of content", bytes, limits.max_thread_bytes, "MAX_THREAD_BYTES"));
    }
    Ok(())
}
