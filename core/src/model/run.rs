use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Timestamp, UserId};

/// Where a run is in its life. Only `Pending` and `Running` hold the thread's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Error,
    Cancelled,
}

impl RunStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Success | RunStatus::Error | RunStatus::Cancelled)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [RunStatus::Pending, RunStatus::Running, RunStatus::Success, RunStatus::Error, RunStatus::Cancelled]
            .into_iter()
            .find(|status| status.as_str() == name)
    }

    /// The name on the wire and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// One execution of an assistant on a thread (OpenGPTs had no such record: runs were fire-and-forget).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: Uuid,
    pub thread_id: Uuid,
    pub assistant_id: Uuid,
    pub user_id: UserId,
    pub status: RunStatus,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// What a run started through the LangGraph API shows beside these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<RunProfile>,
}

/// A LangGraph run's own fields, kept as its client sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProfile {
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub kwargs: serde_json::Value,
    pub multitask_strategy: String,
}
