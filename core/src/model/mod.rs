//! The wire types of the OpenGPTs API, serialized exactly as its clients expect.

mod assistant;
mod branch;
mod cron;
mod document;
mod feedback;
mod memory;
mod message;
mod run;
mod run_spec;
pub mod schedule;
mod thread;
mod thread_event;
mod time;
pub mod validate;

pub use assistant::{Assistant, AssistantInput, AssistantProfile, AssistantVersion, AssistantView};
pub use branch::{Archive, Branch, Forked, ARCHIVE_BYTES};
pub use cron::Cron;
pub use document::{DocumentChunk, DocumentIndex, EmbedderId};
pub use feedback::{Feedback, FeedbackInput};
pub use memory::MemoryItem;
pub use message::{Content, Generation, Message, MessageType, ToolStatus, WireMessage, WireMessages};
pub use run::{Run, RunProfile, RunStatus};
pub use run_spec::{
    AssistantChoice, GraphOptions, MultitaskStrategy, OnDisconnect, RunInput, RunSpec, StreamMode, ThreadTarget,
};
pub use thread::{Thread, ThreadInput, ThreadTtl, TtlStrategy};
pub use thread_event::ThreadEvent;
pub use time::Timestamp;

use serde::{Deserialize, Serialize};

/// The authenticated caller: the cookie value, or later a token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// `None` for an empty id: an empty cookie is no identity.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        (!id.is_empty()).then_some(UserId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
