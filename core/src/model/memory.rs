use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Timestamp;

/// One item of a user's long-term memory (the LangGraph API's store): a JSON object under a
/// namespace (a path of labels) and a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryItem {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Gone after this (the item's `ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Its embedding, when it was put with an index, for searches by meaning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vector: Vec<f32>,
}

impl MemoryItem {
    /// Where it sorts among its owner's items: namespace labels then key, with separators no
    /// label or key may hold, so the items under a namespace prefix are one contiguous range.
    pub fn sort_key(namespace: &[String], key: &str) -> String {
        format!("{}\u{1e}{key}", Self::prefix_key(namespace))
    }

    /// The start of the sort keys of every item whose namespace begins with `prefix`.
    pub fn prefix_key(prefix: &[String]) -> String {
        prefix.iter().map(|label| format!("{label}\u{1f}")).collect()
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}
