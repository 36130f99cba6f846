//! The run engine: one path for background runs (`/runs`) and streamed runs (`/runs/stream`).
//!
//! A run takes its thread's lease in the store (so two runs never interleave on one thread),
//! appends its input, streams the model, and appends the finished AI message. It executes in its
//! own task, apart from any HTTP connection, so a client that leaves does not lose the answer;
//! a model that fails leaves the input in place and no half answer behind.

mod dispatch;
mod engine;
mod render;
mod request;

pub use dispatch::{BackgroundDispatch, InProcessDispatch, LambdaDispatch};
pub use engine::{RunEngine, RunEvent, RunJob};
pub use request::{RunInput, RunRequest};

use crate::llm::ModelConfigError;
use crate::model::validate::FieldErrors;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid run request")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Model(#[from] ModelConfigError),
}
