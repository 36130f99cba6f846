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
