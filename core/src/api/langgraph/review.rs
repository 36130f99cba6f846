//! An agent's pending tool calls put to the user for review: the `interrupt()` that
//! agent-chat-ui renders. Its value is LangChain's human-in-the-loop middleware's
//! (`action_requests`, `review_configs`); the decisions are applied by the run service
//! (`runs::review`).

use serde_json::{json, Value};

use crate::api::{ApiError, AppState};
use crate::model::UserId;
use crate::runs::review_interrupts;
use crate::store::ThreadView;
use crate::tools::AgentConfig;

/// The interrupts of a thread whose agent waits for a review of its calls, as its state shows
/// them (`[{value, id}]`); `None` when it waits at a breakpoint, or does not wait.
pub async fn pending(state: &AppState, user: &UserId, view: &ThreadView) -> Result<Option<Value>, ApiError> {
    if super::threads::next_nodes(view).is_empty() {
        return Ok(None);
    }
    let named = view.thread.metadata.as_ref().and_then(|metadata| metadata.get("assistant_id"));
    let Some(assistant_id) = named.and_then(Value::as_str).and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
        return Ok(None);
    };
    let Some(assistant) = crate::runs::find_assistant(state.store.as_ref(), user, assistant_id).await? else {
        return Ok(None);
    };
    let reviews = AgentConfig::read(assistant.configurable()).ok().flatten().is_some_and(|agent| agent.tool_review);
    Ok(match (reviews, view.messages.last()) {
        (true, Some(calls)) => Some(review_interrupts(view.thread.thread_id, calls, false)),
        _ => None,
    })
}

/// The breakpoint's tasks and interrupts as the thread's `interrupts` map shows them.
pub fn thread_interrupts(task_id: uuid::Uuid, interrupts: &Value) -> Value {
    json!({ task_id.to_string(): interrupts })
}
