//! A2A's shapes in the two dialects the reference answers in: A2A 1.0's (method names such as
//! `SendMessage`, enums such as `TASK_STATE_COMPLETED` and `ROLE_AGENT`, bare parts, results
//! wrapped by kind) for `a2a-sdk` 1.x, and the 0.3 specification's (`message/send`, lower-case
//! states and roles, parts and events tagged with `kind`) for the clients that still send it.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::model::{Message, MessageType, Timestamp};
use crate::runs::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V1,
    Legacy,
}

impl Dialect {
    /// A task as a result or stream event: A2A 1.0 wraps it by kind, 0.3 tags it.
    pub fn task_event(self, task: Value) -> Value {
        match self {
            Dialect::V1 => json!({"task": task}),
            Dialect::Legacy => task,
        }
    }
}

/// A task's state, as A2A 1.0 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Submitted,
    Working,
    Completed,
    Failed,
    Canceled,
    InputRequired,
}

impl State {
    fn v1(self) -> &'static str {
        match self {
            State::Submitted => "TASK_STATE_SUBMITTED",
            State::Working => "TASK_STATE_WORKING",
            State::Completed => "TASK_STATE_COMPLETED",
            State::Failed => "TASK_STATE_FAILED",
            State::Canceled => "TASK_STATE_CANCELED",
            State::InputRequired => "TASK_STATE_INPUT_REQUIRED",
        }
    }

    fn legacy(self) -> &'static str {
        match self {
            State::Submitted => "submitted",
            State::Working => "working",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Canceled => "canceled",
            State::InputRequired => "input-required",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, State::Submitted | State::Working)
    }
}

/// A task's id names its context (the thread) and its run, so `tasks/get` needs nothing else.
pub fn task_id(context_id: Uuid, run_id: Uuid) -> String {
    format!("{context_id}:{run_id}")
}

pub fn parse_task_id(task_id: &str) -> Option<(Uuid, Uuid)> {
    let (context, run) = task_id.split_once(':')?;
    Some((Uuid::parse_str(context).ok()?, Uuid::parse_str(run).ok()?))
}

/// Where a task stands and what it says, for a run that came to `outcome`.
pub fn status_of(outcome: &Outcome) -> (State, Option<String>) {
    match outcome {
        Outcome::Working => (State::Working, None),
        Outcome::Answered(_) => (State::Completed, None),
        Outcome::AwaitsConfirmation(calls) => {
            let names: Vec<&str> = calls.iter().filter_map(|call| call.get("name").and_then(Value::as_str)).collect();
            (
                State::InputRequired,
                Some(format!("The assistant waits for a confirmation before calling {}", names.join(", "))),
            )
        }
        Outcome::Cancelled => (State::Canceled, None),
        Outcome::Failed(reason) => (State::Failed, Some(format!("Error executing assistant: {reason}"))),
    }
}

/// Where a task is: its context, its id, and the dialect it is told in.
pub struct TaskRef<'a> {
    pub dialect: Dialect,
    pub context_id: Uuid,
    pub task_id: &'a str,
}

impl TaskRef<'_> {
    fn state(&self, state: State) -> &'static str {
        match self.dialect {
            Dialect::V1 => state.v1(),
            Dialect::Legacy => state.legacy(),
        }
    }

    fn text_part(&self, text: &str) -> Value {
        match self.dialect {
            Dialect::V1 => json!({"text": text}),
            Dialect::Legacy => json!({"kind": "text", "text": text}),
        }
    }

    /// A message of the conversation: the user's or the agent's.
    pub fn message(&self, from_user: bool, text: &str, message_id: &str) -> Value {
        let role = match (self.dialect, from_user) {
            (Dialect::V1, true) => "ROLE_USER",
            (Dialect::V1, false) => "ROLE_AGENT",
            (Dialect::Legacy, true) => "user",
            (Dialect::Legacy, false) => "agent",
        };
        let mut message = json!({"messageId": message_id, "role": role, "parts": [self.text_part(text)],
            "contextId": self.context_id, "taskId": self.task_id});
        if self.dialect == Dialect::Legacy {
            message["kind"] = json!("message");
        }
        message
    }

    pub fn status(&self, state: State, said: Option<&str>) -> Value {
        let mut status = json!({"state": self.state(state), "timestamp": Timestamp::now()});
        if let Some(text) = said {
            status["message"] = self.message(false, text, &Uuid::new_v4().to_string());
        }
        status
    }

    pub fn artifact(&self, answer: &str, assistant_id: Uuid) -> Value {
        json!({"artifactId": Uuid::new_v4(), "name": "Assistant Response",
            "description": format!("Response from assistant {assistant_id}"), "parts": [self.text_part(answer)]})
    }

    /// The thread's messages as the task's history: what the user and the assistant said, the
    /// last `limit` of them when a length is asked for.
    pub fn history(&self, messages: &[Message], limit: Option<usize>) -> Vec<Value> {
        let said: Vec<Value> = messages
            .iter()
            .filter(|message| matches!(message.kind, MessageType::Human | MessageType::Ai))
            .filter(|message| !message.content.text().is_empty())
            .map(|message| {
                let id = message.id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
                self.message(message.kind == MessageType::Human, &message.content.text(), &id)
            })
            .collect();
        let skip = limit.map_or(0, |limit| said.len().saturating_sub(limit));
        said.into_iter().skip(skip).collect()
    }

    pub fn task(&self, status: Value, artifacts: Vec<Value>, history: Option<Vec<Value>>) -> Value {
        let mut task = json!({"id": self.task_id, "contextId": self.context_id, "status": status});
        if !artifacts.is_empty() {
            task["artifacts"] = json!(artifacts);
        }
        if let Some(history) = history {
            task["history"] = json!(history);
        }
        if self.dialect == Dialect::Legacy {
            task["kind"] = json!("task");
        }
        task
    }

    pub fn status_event(&self, status: Value, last: bool) -> Value {
        let event = json!({"taskId": self.task_id, "contextId": self.context_id, "status": status});
        match self.dialect {
            Dialect::V1 => json!({"statusUpdate": event}),
            Dialect::Legacy => with(event, [("kind", json!("status-update")), ("final", json!(last))]),
        }
    }

    pub fn artifact_event(&self, artifact: Value) -> Value {
        let event = json!({"taskId": self.task_id, "contextId": self.context_id, "artifact": artifact,
            "append": false, "lastChunk": true});
        match self.dialect {
            Dialect::V1 => json!({"artifactUpdate": event}),
            Dialect::Legacy => with(event, [("kind", json!("artifact-update"))]),
        }
    }
}

fn with<const N: usize>(mut object: Value, fields: [(&str, Value); N]) -> Value {
    for (key, value) in fields {
        object[key] = value;
    }
    object
}
