//! The bots: which one an assistant is, parsed once from its `configurable.type`, and the graph
//! each declares (its nodes and edges, OpenGPTs' names), which both APIs read.

use serde_json::{Map, Value};

use crate::model::Assistant;

/// One of our bots. The LangGraph API calls each a graph, named by `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    Chatbot,
    ChatRetrieval,
    Agent,
}

impl Bot {
    pub const ALL: [Bot; 3] = [Bot::Agent, Bot::ChatRetrieval, Bot::Chatbot];
    /// The agent's node that runs the tools its model called.
    pub const ACTION: &'static str = "action";

    pub fn id(self) -> &'static str {
        match self {
            Bot::Chatbot => "chatbot",
            Bot::ChatRetrieval => "chat_retrieval",
            Bot::Agent => "agent",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|bot| bot.id() == id)
    }

    /// An assistant's bot: its type. Seed-era assistants, which have none, were agents.
    pub fn of(assistant: &Assistant) -> Self {
        Self::of_configurable(assistant.configurable())
    }

    /// The bot a run's merged `configurable` names.
    pub fn of_configurable(configurable: &Map<String, Value>) -> Self {
        configurable.get("type").and_then(Value::as_str).and_then(Self::parse).unwrap_or(Bot::Agent)
    }

    pub fn nodes(self) -> &'static [&'static str] {
        match self {
            Bot::Chatbot => &["chatbot"],
            Bot::ChatRetrieval => &["invoke_retrieval", "retrieve", "response"],
            Bot::Agent => &["agent", Bot::ACTION],
        }
    }

    /// The node in which a chatbot's or an agent's model answers.
    pub fn model_node(self) -> &'static str {
        match self {
            Bot::Chatbot => "chatbot",
            Bot::ChatRetrieval => "response",
            Bot::Agent => "agent",
        }
    }

    /// The graph's edges, `__start__` and `__end__` included.
    pub fn edges(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Bot::Chatbot => vec![("__start__", "chatbot"), ("chatbot", "__end__")],
            Bot::ChatRetrieval => vec![
                ("__start__", "invoke_retrieval"),
                ("invoke_retrieval", "retrieve"),
                ("retrieve", "response"),
                ("response", "__end__"),
            ],
            Bot::Agent => vec![("__start__", "agent"), ("agent", "action"), ("action", "agent"), ("agent", "__end__")],
        }
    }

    /// Every node of every bot: what a state update may name as the node it acts as.
    pub fn any_node(node: &str) -> bool {
        Self::ALL.iter().any(|bot| bot.nodes().contains(&node))
    }
}
