//! The bots: which one an assistant is, parsed once from its `configurable.type`, the graph
//! each declares beside its flow (`bots`), which both APIs read, and each bot's default
//! assistant (as the LangGraph server makes one per graph).

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::bots::{self, Declaration};
use crate::model::{Assistant, AssistantProfile, Timestamp, UserId};
use crate::store::{Store, StoreError};

/// One of our bots. The LangGraph API calls each a graph, named by `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    Chatbot,
    ChatRetrieval,
    Agent,
}

impl Bot {
    pub const ALL: [Bot; 3] = [Bot::Agent, Bot::ChatRetrieval, Bot::Chatbot];
    /// The agent's node that runs the tools its model called, where a thread waits for the
    /// user's go-ahead.
    pub const ACTION: &'static str = bots::agent::ACTION;

    pub fn id(self) -> &'static str {
        self.declaration().id
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

    /// What the bot declares of itself, beside its flow (`bots`).
    pub(super) fn declaration(self) -> &'static Declaration {
        match self {
            Bot::Chatbot => &bots::chatbot::DECLARATION,
            Bot::ChatRetrieval => &bots::chat_retrieval::DECLARATION,
            Bot::Agent => &bots::agent::DECLARATION,
        }
    }

    pub fn nodes(self) -> &'static [&'static str] {
        self.declaration().nodes
    }

    /// The node in which its model answers.
    pub fn model_node(self) -> &'static str {
        self.declaration().model_node
    }

    /// The node that answers the tool calls its model makes.
    pub fn tools_node(self) -> &'static str {
        self.declaration().tools_node
    }

    /// The graph's edges, `__start__` and `__end__` included.
    pub fn edges(self) -> &'static [(&'static str, &'static str)] {
        self.declaration().edges
    }

    /// The id of the graph's default assistant, as the reference server derives it.
    pub fn default_assistant_id(self) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6ba7b821_9dad_11d1_80b4_00c04fd430c8);
        Uuid::new_v5(&NAMESPACE, self.id().as_bytes())
    }

    /// Every user's default assistant of this graph: the bot with its defaults. Nobody owns it,
    /// so nobody can change it.
    pub fn default_assistant(self) -> Assistant {
        let epoch = Timestamp::from_datetime(chrono::DateTime::UNIX_EPOCH);
        Assistant {
            assistant_id: self.default_assistant_id(),
            name: self.id().to_string(),
            config: Map::from_iter([("configurable".to_string(), json!({"type": self.id()}))]),
            updated_at: epoch,
            public: true,
            user_id: system_user(),
            profile: Some(AssistantProfile {
                metadata: Map::from_iter([("created_by".to_string(), json!("system"))]),
                description: None,
                version: 1,
                created_at: epoch,
                versions: Vec::new(),
            }),
        }
    }

    pub fn of_default_id(id: Uuid) -> Option<Self> {
        Self::ALL.into_iter().find(|graph| graph.default_assistant_id() == id)
    }

    /// Every node of every bot: what a state update may name as the node it acts as.
    pub fn any_node(node: &str) -> bool {
        Self::ALL.iter().any(|bot| bot.nodes().contains(&node))
    }
}

/// The owner of the default assistants: no cookie or token can name it (an id has a `:`).
fn system_user() -> UserId {
    UserId::new("system:langgraph").expect("not empty")
}

/// An assistant by id, a bot's default one included; `None` when the user cannot see it.
pub async fn find_assistant(store: &dyn Store, user: &UserId, id: Uuid) -> Result<Option<Assistant>, StoreError> {
    if let Some(bot) = Bot::of_default_id(id) {
        return Ok(Some(bot.default_assistant()));
    }
    match store.get_assistant(user, id).await {
        Ok(assistant) => Ok(Some(assistant)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}
