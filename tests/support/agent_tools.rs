//! An agent's tools outside a run: a toolbox with some variables set, bound as an assistant
//! names its tools, and called as one AI message asks.

use std::sync::Arc;

use opengpts::documents::{Library, OfflineEmbedder};
use opengpts::model::{Message, MessageType};
use opengpts::store::MemoryStore;
use opengpts::tools::{AgentConfig, AgentTools, Toolbox};
use serde_json::{json, Value};

pub fn toolbox(vars: Vec<(&'static str, String)>) -> Toolbox {
    let config =
        crate::test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    Toolbox::new(&config, Library::new(Arc::new(MemoryStore::new()), Arc::new(OfflineEmbedder)))
}

/// The tools of an agent whose `type==agent/tools` is `tools`.
pub async fn bind(toolbox: &Toolbox, tools: Value) -> AgentTools {
    let configurable = json!({"type": "agent", "type==agent/tools": tools});
    let agent = AgentConfig::read(configurable.as_object().unwrap()).unwrap().expect("an agent");
    toolbox.bind(&agent, &[]).await.expect("the tools bind")
}

/// Calls each `(tool name, args)` at once, as one AI message asks.
pub async fn call(tools: &AgentTools, calls: &[(&str, Value)]) -> Vec<Message> {
    let mut ai = Message::new(MessageType::Ai, "");
    ai.tool_calls = calls
        .iter()
        .enumerate()
        .map(|(index, (name, args))| json!({"name": name, "args": args, "id": format!("call_{index}"), "type": "tool_call"}))
        .collect();
    tools.run(&ai).await
}
