//! Why a run ended without an answer, and what its record and stream then say.

use std::time::Duration;

use crate::llm::LlmError;
use crate::model::Run;
use crate::store::StoreError;

/// Why a run ended without an answer.
pub(super) enum Failure {
    Cancelled,
    /// Another process recorded the run's end (a reader that found it silent past its lease
    /// recorded it failed): the run stops and stores nothing more. The record as stored.
    EndedElsewhere(Box<Run>),
    Model(LlmError),
    Store(StoreError),
    /// The background worker could not be handed the run.
    NotStarted(String),
    /// The agent's tools could not be set up (a runner that cannot be reached).
    Tools(String),
    /// The agent took `recursion_limit` steps without answering.
    RecursionLimit(u32),
    /// The run reached `RUN_TIME_LIMIT_SECONDS`.
    TimeLimit(Duration),
    /// A bug: the run's code panicked.
    Panicked(String),
}

pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

impl Failure {
    pub(super) const STORE_STATUS: u16 = 503;

    /// The `status_code` of the stream's error event.
    pub(super) fn status_code(&self) -> u16 {
        match self {
            Failure::Cancelled => 409,
            Failure::EndedElsewhere(_) => Failure::STORE_STATUS,
            Failure::Model(error) => error.status_code(),
            Failure::Store(_) => Failure::STORE_STATUS,
            Failure::NotStarted(_) | Failure::Tools(_) => 502,
            Failure::RecursionLimit(_) => 500,
            Failure::TimeLimit(_) => 504,
            Failure::Panicked(_) => 500,
        }
    }

    /// What the run's record and the stream's error event say.
    pub(super) fn message(&self, run: &Run) -> String {
        match self {
            Failure::Cancelled => format!("Run {} was cancelled", run.run_id),
            Failure::EndedElsewhere(stored) => stored.error.clone().unwrap_or_else(|| {
                format!("Run {} was recorded as {} while it went on", run.run_id, stored.status.as_str())
            }),
            Failure::Model(error) => error.to_string(),
            Failure::Store(StoreError::LeaseLost { .. }) => {
                "The run lost its thread: its lease ran out before it was renewed (the data store did not \
                 answer in time, or this process was stopped or starved), and another run wrote to the thread \
                 meanwhile; this run's answer would have landed among that run's, so it was not added"
                    .into()
            }
            Failure::Store(error) => format!("The data store failed: {error}"),
            Failure::NotStarted(reason) => format!("The run was not started: {reason}"),
            Failure::Tools(reason) => format!("The agent's tools could not be set up: {reason}"),
            Failure::RecursionLimit(limit) => format!(
                "The agent took {limit} steps without a final answer (the recursion limit; set config.recursion_limit \
                 to allow more). Every step so far is saved; send input null to go on"
            ),
            Failure::TimeLimit(limit) => format!(
                "The run stopped after {} s, its time limit, before the function would be stopped. Every completed \
                 step is saved; send input null to go on",
                limit.as_secs()
            ),
            Failure::Panicked(reason) => {
                tracing::error!(run_id = %run.run_id, %reason, "the run panicked");
                "The server failed while running it (an internal error, logged)".into()
            }
        }
    }
}
