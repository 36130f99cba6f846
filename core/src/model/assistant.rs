use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::validate::{FieldErrors, FromJson, Loc, ObjectReader};
use super::{Timestamp, UserId};

/// An assistant: a named model configuration, private to its owner unless public.
/// Field order is the one the user's document shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assistant {
    pub assistant_id: Uuid,
    pub name: String,
    pub config: Map<String, Value>,
    pub updated_at: Timestamp,
    pub public: bool,
    pub user_id: UserId,
    /// What the LangGraph API adds, on assistants made or edited through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<AssistantProfile>,
}

/// An assistant's LangGraph fields. Its graph is its `configurable.type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantProfile {
    pub metadata: Map<String, Value>,
    pub description: Option<String>,
    pub version: u32,
    pub created_at: Timestamp,
    /// Its other versions, newest first, at most [`AssistantProfile::KEPT_VERSIONS`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<AssistantVersion>,
}

impl AssistantProfile {
    /// How many versions besides the current one an assistant keeps (its record holds them).
    pub const KEPT_VERSIONS: usize = 20;
}

/// One version of an assistant, as it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantVersion {
    pub version: u32,
    pub name: String,
    pub config: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub description: Option<String>,
    pub created_at: Timestamp,
}

impl Assistant {
    /// The version the assistant stands at.
    pub fn current_version(&self) -> Option<AssistantVersion> {
        let profile = self.profile.as_ref()?;
        Some(AssistantVersion {
            version: profile.version,
            name: self.name.clone(),
            config: self.config.clone(),
            metadata: profile.metadata.clone(),
            description: profile.description.clone(),
            created_at: self.updated_at,
        })
    }

    /// Makes `chosen` the current version; the one it replaces is kept among the others.
    pub fn stand_at(&mut self, chosen: AssistantVersion) {
        let replaced = self.current_version();
        let Some(profile) = self.profile.as_mut() else { return };
        profile.versions.retain(|kept| kept.version != chosen.version);
        if let Some(replaced) = replaced.filter(|replaced| replaced.version != chosen.version) {
            profile.versions.retain(|kept| kept.version != replaced.version);
            profile.versions.push(replaced);
        }
        profile.versions.sort_by_key(|kept| std::cmp::Reverse(kept.version));
        profile.versions.truncate(AssistantProfile::KEPT_VERSIONS);
        profile.version = chosen.version;
        profile.metadata = chosen.metadata;
        profile.description = chosen.description;
        self.name = chosen.name;
        self.config = chosen.config;
        self.updated_at = chosen.created_at;
    }
}

impl Assistant {
    /// The assistant's kind in the latest generation (`configurable.type`: agent, chatbot …).
    pub fn kind(&self) -> Option<&str> {
        self.configurable().get("type").and_then(Value::as_str)
    }

    pub fn configurable(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.config.get("configurable").and_then(Value::as_object).unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }
}

/// An assistant as `viewer` may see it. Another user's public assistant comes without its
/// owner's id: under the cookie mock that id is the owner's credential, and no client reads it.
pub struct AssistantView<'a> {
    pub assistant: &'a Assistant,
    pub viewer: &'a UserId,
}

impl Serialize for AssistantView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let assistant = self.assistant;
        let own = &assistant.user_id == self.viewer;
        let mut fields = serializer.serialize_struct("Assistant", if own { 6 } else { 5 })?;
        fields.serialize_field("assistant_id", &assistant.assistant_id)?;
        fields.serialize_field("name", &assistant.name)?;
        fields.serialize_field("config", &assistant.config)?;
        fields.serialize_field("updated_at", &assistant.updated_at)?;
        fields.serialize_field("public", &assistant.public)?;
        if own {
            fields.serialize_field("user_id", &assistant.user_id)?;
        }
        fields.end()
    }
}

/// The body of POST/PUT `/assistants`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantInput {
    pub name: String,
    pub config: Map<String, Value>,
    pub public: bool,
}

impl AssistantInput {
    pub fn into_assistant(self, assistant_id: Uuid, user_id: UserId) -> Assistant {
        Assistant {
            assistant_id,
            name: self.name,
            config: self.config,
            updated_at: Timestamp::now(),
            public: self.public,
            user_id,
            profile: None,
        }
    }
}

impl FromJson for AssistantInput {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let name = fields.required("name");
        let config = fields.required("config");
        let public = fields.optional("public");
        fields.finish(|| Some(AssistantInput { name: name?, config: config?, public: public.unwrap_or(false) }))
    }
}
