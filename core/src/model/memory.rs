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
    /// The lifetime it was put with, in minutes: a read may start it again (`refresh_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<f64>,
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

    /// Its lifetime started again at `now`; `None` when it has none.
    pub fn refreshed(&self, now: Timestamp) -> Option<MemoryItem> {
        let minutes = self.ttl_minutes?;
        let lifetime = std::time::Duration::from_secs_f64(minutes * 60.0);
        Some(MemoryItem { expires_at: Some(now.plus(lifetime)), ..self.clone() })
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}
