//! Which key of an assistant's `configurable` decides each setting of its bot.
//!
//! Both OpenGPTs UIs draw the bot form from `GET /runs/config_schema` and send back every key of
//! it: the user's value in the field they touched, the form's default in all others. That form
//! holds both generations' fields, so a saved config names most settings twice, under the bot
//! type's own key (`type==<bot>/<field>`, the latest UI) and under the seed's plain key (the seed
//! UI). For each setting, among the keys present:
//!
//! 1. on an edit (a bot saved again, or a run's overrides over its bot), a key whose value the
//!    edit changed from the one stored wins;
//! 2. otherwise a value that differs from the form's default wins over one that equals it;
//! 3. otherwise (both differ, or neither does) the bot type's own key wins.
//!
//! The winner is then written to every key of that setting that the config holds, so the stored
//! config says one thing, both UIs show what runs, and the next edit is read against it. A config
//! that names a setting once (API clients, the user's document) is kept as it is.

use serde_json::{json, Map, Value};

use crate::llm::{DEFAULT_MODEL_NAME, DEFAULT_SYSTEM_MESSAGE};
use crate::tools::ToolKind;

/// The settings that both generations name: each has one key per generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Model,
    Instructions,
    Tools,
}

impl Setting {
    const ALL: [Setting; 3] = [Setting::Model, Setting::Instructions, Setting::Tools];

    /// The keys that may hold this setting for a bot of type `bot`, its own key first. A model
    /// may sit under either plain key: API clients of the seed era wrote `llm_type` for agents too.
    fn keys(self, bot: &str) -> Vec<String> {
        let own_model_key = if bot == "agent" { "agent_type" } else { "llm_type" };
        let other_model_key = if bot == "agent" { "llm_type" } else { "agent_type" };
        match self {
            Setting::Model => {
                vec![format!("type=={bot}/{own_model_key}"), own_model_key.into(), other_model_key.into()]
            }
            Setting::Instructions => vec![format!("type=={bot}/system_message"), "system_message".into()],
            // Only agents have tools; a chatbot's seed `tools` key is left alone.
            Setting::Tools if bot == "agent" => vec!["type==agent/tools".into(), "tools".into()],
            Setting::Tools => Vec::new(),
        }
    }

    /// The form's default, which both keys of a setting share.
    fn default_value(self) -> Value {
        match self {
            Setting::Model => json!(DEFAULT_MODEL_NAME),
            Setting::Instructions => json!(DEFAULT_SYSTEM_MESSAGE),
            Setting::Tools => json!([]),
        }
    }

    /// `value`, found under `from`, written as `to` holds it: tools are objects under the latest
    /// key and display names under the seed's.
    fn convert(self, from: &str, to: &str, value: &Value) -> Value {
        let seed = |key: &str| !key.starts_with("type==");
        if self != Setting::Tools || seed(from) == seed(to) {
            return value.clone();
        }
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        if seed(to) {
            let names = items.iter().filter_map(|tool| {
                tool.get("type").and_then(Value::as_str).and_then(ToolKind::from_tag).and_then(ToolKind::seed_name)
            });
            Value::Array(names.map(Value::from).collect())
        } else {
            let tools = items.iter().filter_map(Value::as_str).filter_map(ToolKind::from_seed_name).map(|kind| {
                json!({"id": kind.tag(), "type": kind.tag(), "name": kind.display_name(),
                    "description": kind.description(), "config": {}, "multi_use": kind.multi_use()})
            });
            Value::Array(tools.collect())
        }
    }
}

/// The bot type a `configurable` names; OpenGPTs' default is an agent.
fn bot_type(configurable: &Map<String, Value>) -> String {
    configurable.get("type").and_then(Value::as_str).unwrap_or("agent").to_string()
}

/// Makes every setting of `config` say one thing, by the rule above. `previous` is what the
/// edit starts from (the stored bot), if anything.
pub fn settle(previous: Option<&Map<String, Value>>, config: &mut Map<String, Value>) {
    let bot = bot_type(config);
    for setting in Setting::ALL {
        let present: Vec<String> = setting.keys(&bot).into_iter().filter(|key| config.contains_key(key)).collect();
        if present.len() < 2 {
            continue;
        }
        let changed = |key: &&String| {
            previous
                .and_then(|previous| previous.get(key.as_str()))
                .is_some_and(|before| Some(before) != config.get(*key))
        };
        let default = setting.default_value();
        let chosen = present
            .iter()
            .find(changed)
            .or_else(|| present.iter().find(|key| config[key.as_str()] != default))
            .unwrap_or(&present[0])
            .clone();
        let value = config[&chosen].clone();
        for key in present.iter().filter(|key| **key != chosen) {
            config.insert(key.clone(), setting.convert(&chosen, key, &value));
        }
    }
}

/// A run's `configurable`: its bot's, settled (a bot may predate the rule), with the run's
/// overrides read as an edit of it. A key the run sets is an edit even where the bot lacked it:
/// unlike a form's defaults, the run named it on purpose.
pub fn with_overrides(stored: &Map<String, Value>, overrides: Map<String, Value>) -> Map<String, Value> {
    let mut before = stored.clone();
    settle(None, &mut before);
    let mut merged = before.clone();
    for key in overrides.keys() {
        before.entry(key.clone()).or_insert(Value::Null);
    }
    merged.extend(overrides);
    settle(Some(&before), &mut merged);
    merged
}

/// Settles the `configurable` inside an assistant's `config`, against the stored one.
pub fn settle_config(previous: Option<&Map<String, Value>>, config: &mut Map<String, Value>) {
    let previous = previous.and_then(|previous| previous.get("configurable")).and_then(Value::as_object);
    if let Some(Value::Object(configurable)) = config.get_mut("configurable") {
        settle(previous, configurable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the form, at its default, as both UIs send it.
    fn form(bot: &str, touched: Value) -> Map<String, Value> {
        let schema = crate::api::schemas::config_schema();
        let fields = schema["properties"]["configurable"]["properties"].as_object().unwrap();
        let mut config: Map<String, Value> =
            fields.iter().map(|(key, field)| (key.clone(), field["default"].clone())).collect();
        config.insert("type".into(), json!(bot));
        config.extend(touched.as_object().unwrap().clone());
        config
    }

    fn settled(previous: Option<&Map<String, Value>>, mut config: Map<String, Value>) -> Map<String, Value> {
        settle(previous, &mut config);
        config
    }

    #[test]
    fn the_defaults_are_the_forms() {
        let schema = crate::api::schemas::config_schema();
        let fields = &schema["properties"]["configurable"]["properties"];
        for bot in ["agent", "chatbot", "chat_retrieval"] {
            for setting in Setting::ALL {
                for key in setting.keys(bot) {
                    assert_eq!(fields[&key]["default"], setting.default_value(), "{key}");
                }
            }
        }
    }

    #[test]
    fn the_field_a_user_touched_decides_in_either_ui() {
        let latest = settled(None, form("chatbot", json!({"type==chatbot/llm_type": "Offline"})));
        assert_eq!((&latest["llm_type"], &latest["agent_type"]), (&json!("Offline"), &json!("Offline")));
        let seed = settled(None, form("agent", json!({"agent_type": "Offline", "system_message": "Arr"})));
        assert_eq!(seed["type==agent/agent_type"], "Offline");
        assert_eq!(seed["type==agent/system_message"], "Arr");
        assert_eq!(seed["type==chatbot/llm_type"], DEFAULT_MODEL_NAME, "other bot types keep their own");
    }

    #[test]
    fn tools_cross_between_names_and_objects() {
        let seed = settled(None, form("agent", json!({"tools": ["DDG Search", "Retrieval"]})));
        let tags: Vec<&str> =
            seed["type==agent/tools"].as_array().unwrap().iter().map(|tool| tool["type"].as_str().unwrap()).collect();
        assert_eq!(tags, ["ddg_search", "retrieval"]);
        let latest = settled(
            None,
            form(
                "agent",
                json!({"type==agent/tools": [{"type": "wikipedia", "config": {}},
            {"type": "ai_action_runner_by_connery", "config": {"url": "https://runner.example"}}]}),
            ),
        );
        assert_eq!(latest["tools"], json!(["Wikipedia"]), "a tool the seed cannot name is left out there");
    }

    #[test]
    fn an_edit_back_to_the_default_is_an_edit() {
        let stored = settled(None, form("agent", json!({"agent_type": "Offline"})));
        let mut edited = stored.clone();
        edited.insert("type==agent/agent_type".into(), json!(DEFAULT_MODEL_NAME));
        let edited = settled(Some(&stored), edited);
        assert_eq!(edited["agent_type"], DEFAULT_MODEL_NAME);
        // A key the stored bot lacked is not an edit: the UI filled it with the form's default.
        let api_made: Map<String, Value> = json!({"agent_type": "Offline"}).as_object().unwrap().clone();
        let reopened = settled(Some(&api_made), form("agent", json!({"agent_type": "Offline"})));
        assert_eq!(reopened["type==agent/agent_type"], "Offline");
    }

    #[test]
    fn a_runs_override_decides_even_under_a_key_its_bot_lacks() {
        let stored: Map<String, Value> = json!({"agent_type": "Claude 2"}).as_object().unwrap().clone();
        let overrides = json!({"type==agent/agent_type": DEFAULT_MODEL_NAME}).as_object().unwrap().clone();
        let run = with_overrides(&stored, overrides);
        assert_eq!(run["agent_type"], DEFAULT_MODEL_NAME);
    }

    #[test]
    fn one_generations_keys_are_kept_and_conflicts_go_to_the_bot_types_own() {
        let seed_only: Map<String, Value> =
            json!({"agent_type": "Claude 2", "tools": ["Arxiv"]}).as_object().unwrap().clone();
        assert_eq!(settled(None, seed_only.clone()), seed_only);
        let both = json!({"type": "agent", "type==agent/system_message": "Mine", "system_message": "Theirs"});
        let both = settled(None, both.as_object().unwrap().clone());
        assert_eq!(both["system_message"], "Mine");
    }
}
