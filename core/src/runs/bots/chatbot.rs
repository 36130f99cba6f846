//! The chatbot: its model answers, in one node. Its flow is the agent's loop without tools
//! (`agent::agent_loop`), which answers at once.

use super::Declaration;

pub(in crate::runs) const DECLARATION: Declaration = Declaration {
    id: "chatbot",
    nodes: &["chatbot"],
    edges: &[("__start__", "chatbot"), ("chatbot", "__end__")],
    model_node: "chatbot",
    tools_node: "chatbot",
};
