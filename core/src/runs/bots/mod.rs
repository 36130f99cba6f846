//! Each bot in a file of its own: what it declares of its graph (its nodes, its edges, the node
//! where its model answers and the one where its tools run), which both APIs read, and, where
//! runs execute, its flow. The steps flows are made of are `flows`'.

pub(super) mod agent;
pub(super) mod chat_retrieval;
pub(super) mod chatbot;

/// A bot's graph, as both APIs show it and its flow walks it: a flow that enters a node its
/// bot does not declare fails (see `EventSink::enter`).
#[derive(Debug)]
pub struct Declaration {
    /// The graph's id in the LangGraph API; the assistant's `type` in OpenGPTs'.
    pub id: &'static str,
    pub nodes: &'static [&'static str],
    /// `__start__` and `__end__` included.
    pub edges: &'static [(&'static str, &'static str)],
    /// The node in which its model answers.
    pub model_node: &'static str,
    /// The node that answers the tool calls its model makes (a bot without tools answers them,
    /// with an error its model reads, in its model's node).
    pub tools_node: &'static str,
}
