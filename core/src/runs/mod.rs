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

mod answer;
pub mod configurable;
mod dispatch;
mod engine;
mod render;
mod request;

pub use dispatch::{BackgroundDispatch, DispatchError, InProcessDispatch, LambdaDispatch};
pub use engine::{Execution, Listener, PendingRun, RunEngine, RunEvent, RunJob};
pub use request::{MultitaskStrategy, OnDisconnect, RunInput, RunRequest};

use crate::llm::ModelConfigError;
use crate::store::StoreError;
use crate::tools::ToolConfigError;

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
}
