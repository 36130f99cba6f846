//! An agent's pending tool calls put to the user for review, and the user's decisions: the
//! `interrupt()` that agent-chat-ui renders and resumes with `Command(resume=...)`.
//!
//! The value is LangChain's human-in-the-loop middleware's (`action_requests`,
//! `review_configs`). The decisions come in its shape (`{"decisions": [{"type": "approve" |
//! "edit" | "reject", ...}]}`) or the agent inbox's (`[{"type": "accept" | "edit" | "response" |
//! "ignore", "args": ...}]`), one per pending call, in order.

use serde_json::{json, Value};

#[cfg(feature = "runs")]
use super::unprocessable;
use crate::api::{ApiError, AppState};
use crate::model::UserId;
#[cfg(feature = "runs")]
use crate::model::{Message, ToolStatus};
use crate::runs::review_interrupts;
use crate::store::ThreadView;
use crate::tools::AgentConfig;

/// What the user decided for the pending calls.
#[cfg(feature = "runs")]
pub enum Decided {
    /// Run them (with the arguments edited, where the user edited them): the AI message as it
    /// now reads.
    Run(Box<Message>),
    /// The user answered them instead (a rejection, or a response): the tools' messages.
    Answered(Vec<Message>),
}

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
    let Some(assistant) = super::find_assistant(state, user, assistant_id).await? else { return Ok(None) };
    let reviews = AgentConfig::read(assistant.configurable()).ok().flatten().is_some_and(|agent| agent.tool_review);
    Ok(match (reviews, view.messages.last()) {
        (true, Some(calls)) => Some(review_interrupts(view.thread.thread_id, calls, false)),
        _ => None,
    })
}

/// Applies `resume`'s decisions to the calls of `pending` (the thread's last message).
#[cfg(feature = "runs")]
pub fn decide(pending: &Message, resume: &Value) -> Result<Decided, ApiError> {
    let decisions = match resume {
        Value::Object(fields) => fields.get("decisions").and_then(Value::as_array),
        Value::Array(list) => Some(list),
        _ => None,
    }
    .ok_or_else(|| {
        unprocessable(
            "resume takes the decisions on the pending tool calls: {\"decisions\": [{\"type\": \"approve\"}, ...]}",
        )
    })?;
    if decisions.len() != pending.tool_calls.len() {
        return Err(unprocessable(format!(
            "{} decisions for {} pending tool calls: give one per call, in order",
            decisions.len(),
            pending.tool_calls.len()
        )));
    }
    let mut edited = pending.clone();
    let mut answers = Vec::new();
    for (index, decision) in decisions.iter().enumerate() {
        let call = &mut edited.tool_calls[index];
        let call_id = call["id"].as_str().unwrap_or_default().to_string();
        let name = call["name"].as_str().unwrap_or_default().to_string();
        let answer = |content: String, status| Message::tool_result(&name, &call_id, content, status);
        match decision["type"].as_str().unwrap_or_default() {
            "approve" | "accept" => {}
            "edit" => {
                let args = decision["edited_action"]["args"].as_object().or(decision["args"]["args"].as_object());
                let args = args.ok_or_else(|| {
                    unprocessable(format!("decision {index}: an edit gives the call's new arguments as edited_action.args"))
                })?;
                call["args"] = Value::Object(args.clone());
            }
            "reject" => {
                let reason = decision["message"].as_str().or(decision["args"].as_str());
                let text = reason.map_or("The user rejected this tool call.".to_string(), |reason| {
                    format!("The user rejected this tool call: {reason}")
                });
                answers.push(answer(text, ToolStatus::Error));
            }
            "response" => answers.push(answer(decision["args"].as_str().unwrap_or_default().to_string(), ToolStatus::Success)),
            "ignore" => answers.push(answer("The user chose not to run this tool call.".into(), ToolStatus::Error)),
            other => {
                return Err(unprocessable(format!(
                    "decision {index}: '{other}' is not one of 'approve', 'edit', 'reject' (or 'accept', 'response', 'ignore')"
                )))
            }
        }
    }
    match answers.len() {
        0 => {
            // The provider's own record of the calls follows the edit.
            edited.additional_kwargs.remove("tool_calls");
            Ok(Decided::Run(Box::new(edited)))
        }
        count if count == decisions.len() => Ok(Decided::Answered(answers)),
        _ => Err(unprocessable(
            "Decide the pending calls alike: approve or edit them all, or reject (or answer) them all",
        )),
    }
}

/// The breakpoint's tasks and interrupts as the thread's `interrupts` map shows them.
pub fn thread_interrupts(task_id: uuid::Uuid, interrupts: &Value) -> Value {
    json!({ task_id.to_string(): interrupts })
}
