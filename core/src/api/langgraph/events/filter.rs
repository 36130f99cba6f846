//! Which of a thread's events a stream or a subscription takes: its channels, and optionally
//! the namespaces (prefixes) and how deep below them.

use serde_json::{Map, Value};

use crate::model::validate::whole_number;
use crate::model::ThreadEvent;

const CHANNELS: [&str; 9] =
    ["values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom"];

#[derive(Debug, Clone, PartialEq)]
pub(in crate::api::langgraph) struct EventFilter {
    channels: Vec<String>,
    namespaces: Option<Vec<Vec<String>>>,
    depth: Option<usize>,
}

impl EventFilter {
    /// A `stream/events` body: the filter and `since`, or the reference's reason to refuse it.
    pub(super) fn from_request(raw: &Value) -> Result<(Self, u64), String> {
        let fields = raw.as_object().ok_or("channels is required and must be a non-empty array")?;
        let filter = Self::from_params(fields)?;
        let since = match fields.get("since").filter(|since| !since.is_null()) {
            None => 0,
            Some(since) => whole_number(since).ok_or("since must be a non-negative integer")?,
        };
        Ok((filter, since))
    }

    /// A subscription's params.
    pub(super) fn from_params(fields: &Map<String, Value>) -> Result<Self, String> {
        let listed = fields.get("channels").and_then(Value::as_array).filter(|channels| !channels.is_empty());
        let listed = listed.ok_or("channels is required and must be a non-empty array")?;
        let mut channels = Vec::new();
        let mut unsupported = Vec::new();
        for channel in listed {
            match channel.as_str() {
                Some(name)
                    if CHANNELS.contains(&name) || name.strip_prefix("custom:").is_some_and(|n| !n.is_empty()) =>
                {
                    channels.push(name.to_string())
                }
                other => unsupported.push(other.map_or_else(|| channel.to_string(), str::to_string)),
            }
        }
        if !unsupported.is_empty() {
            return Err(format!(
                "channels contains unsupported entries: {}. Allowed: values, updates, messages, tools, custom, lifecycle, input, tasks, or any `custom:<name>`.",
                unsupported.join(", ")
            ));
        }
        let namespaces = match fields.get("namespaces").filter(|value| !value.is_null()) {
            None => None,
            Some(Value::Array(prefixes)) => Some(
                prefixes
                    .iter()
                    .map(|prefix| {
                        let segments = prefix.as_array().ok_or("namespaces must be a list of lists of strings")?;
                        segments
                            .iter()
                            .map(|segment| {
                                segment
                                    .as_str()
                                    .map(str::to_string)
                                    .ok_or("namespaces must be a list of lists of strings")
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err("namespaces must be a list of lists of strings".into()),
        };
        let depth = match fields.get("depth").filter(|value| !value.is_null()) {
            None => None,
            Some(depth) => Some(whole_number(depth).ok_or("depth must be a non-negative integer")? as usize),
        };
        Ok(EventFilter { channels, namespaces, depth })
    }

    pub(super) fn passes(&self, event: &ThreadEvent) -> bool {
        let channel = event.channel();
        let named = self
            .channels
            .iter()
            .any(|wanted| wanted == channel || (channel == "custom" && wanted.starts_with("custom:")));
        named && self.in_namespaces(&event.namespace)
    }

    /// Under one of the prefixes (a segment without `:` matches a segment by its name before
    /// the `:`), at most `depth` below it.
    fn in_namespaces(&self, namespace: &[String]) -> bool {
        let root = [Vec::new()];
        let prefixes = self.namespaces.as_deref().unwrap_or(&root);
        prefixes.iter().any(|prefix| {
            let matches = prefix.len() <= namespace.len()
                && prefix.iter().zip(namespace).all(|(wanted, segment)| {
                    wanted == segment || (!wanted.contains(':') && segment.split(':').next() == Some(wanted.as_str()))
                });
            matches && self.depth.is_none_or(|depth| namespace.len() - prefix.len() <= depth)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(method: &str, namespace: &[&str]) -> ThreadEvent {
        let namespace = namespace.iter().map(|segment| segment.to_string()).collect();
        ThreadEvent { seq: 1, method: method.into(), namespace, envelope: String::new(), ends_run: None }
    }

    #[test]
    fn channels_namespaces_and_depth_select_events() {
        let (all, since) = EventFilter::from_request(&json!({"channels": ["messages", "input"], "since": 7})).unwrap();
        assert_eq!(since, 7);
        assert!(all.passes(&event("messages", &["tools:call_1"])));
        assert!(all.passes(&event("input.requested", &[])));
        assert!(!all.passes(&event("values", &[])));
        let root =
            EventFilter::from_request(&json!({"channels": ["messages"], "namespaces": [[]], "depth": 0})).unwrap().0;
        assert!(root.passes(&event("messages", &[])));
        assert!(!root.passes(&event("messages", &["tools:call_1"])));
        let tools = EventFilter::from_request(&json!({"channels": ["messages"], "namespaces": [["tools"]]})).unwrap().0;
        assert!(tools.passes(&event("messages", &["tools:call_1"])));
        assert!(!tools.passes(&event("messages", &[])));
    }

    #[test]
    fn a_bad_request_is_refused_in_the_references_words() {
        assert_eq!(
            EventFilter::from_request(&json!({})).unwrap_err(),
            "channels is required and must be a non-empty array"
        );
        let refused = EventFilter::from_request(&json!({"channels": ["values", "bogus"]})).unwrap_err();
        assert!(refused.starts_with("channels contains unsupported entries: bogus. Allowed:"), "{refused}");
        assert!(EventFilter::from_request(&json!({"channels": ["values"], "since": -1})).is_err());
    }
}
