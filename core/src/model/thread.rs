use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::validate::{FieldErrors, FromJson, Loc, ObjectReader};
use super::{Timestamp, UserId};

/// A conversation between a user and one assistant.
/// `metadata` appears only for latest-generation assistants (those with a `configurable.type`),
/// so seed-era clients see exactly the five fields of the user's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub thread_id: Uuid,
    pub assistant_id: Uuid,
    pub name: String,
    pub updated_at: Timestamp,
    pub user_id: UserId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<Map<String, Value>>,
    /// Kept for threads made through the LangGraph API, which shows it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_at: Option<Timestamp>,
    /// When and how the thread ends on its own; none unless asked for or configured.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ttl: Option<ThreadTtl>,
}

impl Thread {
    pub fn assistant_type(&self) -> Option<&str> {
        self.metadata.as_ref()?.get("assistant_type")?.as_str()
    }
}

/// The body of POST `/threads` and PUT `/threads/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadInput {
    pub name: String,
    pub assistant_id: Uuid,
}

impl FromJson for ThreadInput {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let name = fields.required("name");
        let assistant_id = fields.required("assistant_id");
        fields.finish(|| Some(ThreadInput { name: name?, assistant_id: assistant_id? }))
    }
}

/// What happens to a thread when its time is up (the LangGraph API's thread `ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtlStrategy {
    /// The thread goes, with everything that hangs off it.
    Delete,
    /// The thread keeps its latest state; the branches of its history are dropped, and its time
    /// starts again.
    KeepLatest,
}

impl TtlStrategy {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "delete" => Some(TtlStrategy::Delete),
            "keep_latest" => Some(TtlStrategy::KeepLatest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TtlStrategy::Delete => "delete",
            TtlStrategy::KeepLatest => "keep_latest",
        }
    }
}

/// A thread's time to live: set at create or patch, it runs from then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThreadTtl {
    pub strategy: TtlStrategy,
    pub minutes: f64,
    pub expires_at: Timestamp,
}

impl ThreadTtl {
    /// The longest lifetime kept as given: a century. Longer ones end then.
    pub const MAX_MINUTES: f64 = 100.0 * 365.25 * 24.0 * 60.0;

    /// `minutes` from `now`.
    pub fn starting(strategy: TtlStrategy, minutes: f64, now: Timestamp) -> Self {
        let lifetime = std::time::Duration::from_secs_f64(minutes.clamp(0.0, Self::MAX_MINUTES) * 60.0);
        ThreadTtl { strategy, minutes, expires_at: now.plus(lifetime) }
    }

    /// The same lifetime again, from `now`.
    pub fn restarted(self, now: Timestamp) -> Self {
        Self::starting(self.strategy, self.minutes, now)
    }
}
