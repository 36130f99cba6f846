//! The user's decisions on the tool calls an agent waits with: the `interrupt()` that
//! agent-chat-ui renders and resumes with `Command(resume=...)`, applied before the run that
//! resumes takes the thread.
//!
//! The decisions come in LangChain's human-in-the-loop middleware's shape (`{"decisions":
//! [{"type": "approve" | "edit" | "reject", ...}]}`) or the agent inbox's (`[{"type": "accept" |
//! "edit" | "response" | "ignore", "args": ...}]`), one per pending call, in order.

use serde_json::Value;

use super::RunError;
use crate::model::{Message, ToolStatus};

/// What the user decided for the pending calls.
pub enum Decided {
    /// Run them (with the arguments edited, where the user edited them): the AI message as it
    /// now reads.
    Run(Box<Message>),
    /// The user answered them instead (a rejection, or a response): the tools' messages.
    Answered(Vec<Message>),
}

/// Applies `resume`'s decisions to the calls of `pending` (the thread's last message).
pub fn decide(pending: &Message, resume: &Value) -> Result<Decided, RunError> {
    let decisions = match resume {
        Value::Object(fields) => fields.get("decisions").and_then(Value::as_array),
        Value::Array(list) => Some(list),
        _ => None,
    }
    .ok_or_else(|| {
        RunError::Review(
            "resume takes the decisions on the pending tool calls: {\"decisions\": [{\"type\": \"approve\"}, ...]}"
                .into(),
        )
    })?;
    if decisions.len() != pending.tool_calls.len() {
        return Err(RunError::Review(format!(
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
                    RunError::Review(format!("decision {index}: an edit gives the call's new arguments as edited_action.args"))
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
                return Err(RunError::Review(format!(
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
        _ => Err(RunError::Review(
            "Decide the pending calls alike: approve or edit them all, or reject (or answer) them all".into(),
        )),
    }
}
