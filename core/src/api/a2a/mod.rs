//! A2A at `/a2a/{assistant_id}` (and under `/langgraph`, as the reference serves it at its
//! root): each assistant the caller may run is an agent. JSON-RPC `SendMessage`,
//! `SendStreamingMessage` (SSE), `GetTask` and `CancelTask`, or their 0.3 names; an agent card
//! per assistant. A2A's `contextId` is the thread: a conversation goes on on its thread, and
//! shows in every UI. A task is one run, its id `{contextId}:{run_id}`.

mod card;
mod render;
mod stream;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use uuid::Uuid;

use self::render::{parse_task_id, status_of, task_id, Dialect, TaskRef};
use super::jsonrpc::{self, Call, Message, INVALID_PARAMS, METHOD_NOT_FOUND};
use super::{ApiError, AppState, Routes, User};
use crate::model::UserId;
use crate::runs::{find_assistant, Outcome, RunError, Turn};

/// A2A's own error codes.
const TASK_NOT_FOUND: i64 = -32001;
const TASK_NOT_CANCELABLE: i64 = -32002;

pub fn routes() -> Routes {
    Routes::default()
        .route("/a2a/{assistant_id}", post(serve))
        .route("/langgraph/a2a/{assistant_id}", post(serve))
        .merge(card::routes())
}

/// The method a call names, in A2A 1.0's words, and the dialect to answer in.
fn method(name: &str) -> Option<(&'static str, Dialect)> {
    Some(match name {
        "SendMessage" => ("SendMessage", Dialect::V1),
        "SendStreamingMessage" => ("SendStreamingMessage", Dialect::V1),
        "GetTask" => ("GetTask", Dialect::V1),
        "CancelTask" => ("CancelTask", Dialect::V1),
        "message/send" => ("SendMessage", Dialect::Legacy),
        "message/stream" => ("SendStreamingMessage", Dialect::Legacy),
        "tasks/get" => ("GetTask", Dialect::Legacy),
        "tasks/cancel" => ("CancelTask", Dialect::Legacy),
        _ => return None,
    })
}

async fn serve(
    State(state): State<AppState>,
    User(user): User,
    Path(assistant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let call = match Message::parse(&body) {
        Ok(Message::Call(call)) => call,
        Ok(Message::NoAnswer) => return Ok(StatusCode::ACCEPTED.into_response()),
        Err(malformed) => return Ok(jsonrpc::error(&malformed.id, malformed.code, malformed.message)),
    };
    let Some((method, dialect)) = method(&call.method) else {
        return Ok(jsonrpc::error(&call.id, METHOD_NOT_FOUND, format!("Method not found: {}", call.method)));
    };
    let streaming = method == "SendStreamingMessage";
    let wanted = if streaming { "text/event-stream" } else { "application/json" };
    if !jsonrpc::accepts(&headers, wanted) {
        return Err(ApiError::BadRequest(format!("Accept header must include {wanted}")));
    }
    let Ok(assistant_id) = Uuid::parse_str(&assistant_id) else {
        return Ok(jsonrpc::error(&call.id, INVALID_PARAMS, "Invalid assistant ID: must be a UUID"));
    };
    if find_assistant(state.store.as_ref(), &user, assistant_id).await?.is_none() {
        return Ok(jsonrpc::error(&call.id, INVALID_PARAMS, format!("Assistant {assistant_id} not found")));
    }
    let agent = Agent { state, user, assistant_id, dialect };
    match method {
        "SendMessage" | "SendStreamingMessage" => {
            let (turn, history_length) = match agent.turn(&call) {
                Ok(turn) => turn,
                Err(reason) => return Ok(jsonrpc::error(&call.id, INVALID_PARAMS, reason)),
            };
            if streaming {
                agent.stream(call.id, turn).await
            } else {
                agent.send(&call.id, turn, history_length).await
            }
        }
        "GetTask" => agent.get(&call).await,
        _ => agent.cancel(&call).await,
    }
}

/// One call to one assistant's agent.
struct Agent {
    state: AppState,
    user: UserId,
    assistant_id: Uuid,
    dialect: Dialect,
}

/// The text of a message's text parts, in either dialect.
fn text_of(message: &Value) -> String {
    let parts = message.get("parts").and_then(Value::as_array).into_iter().flatten();
    parts.filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
}

/// A history length asked for: a whole number, or none.
fn history_length(value: Option<&Value>) -> Result<Option<usize>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(length) => match length.as_u64() {
            Some(length) => Ok(Some(length as usize)),
            None => Err("historyLength must be a non-negative integer".into()),
        },
    }
}

impl Agent {
    fn task_ref<'a>(&self, context_id: Uuid, task_id: &'a str) -> TaskRef<'a> {
        TaskRef { dialect: self.dialect, context_id, task_id }
    }

    /// The turn a message asks for: its text, on its context's thread (or a new one).
    fn turn(&self, call: &Call) -> Result<(Turn, Option<usize>), String> {
        let message = call.params.get("message").filter(|message| message.is_object());
        let message = message.ok_or("Missing or invalid 'message' in params")?;
        let text = text_of(message);
        if text.trim().is_empty() {
            return Err("The message has no text part".into());
        }
        let from_task =
            message.get("taskId").and_then(Value::as_str).and_then(parse_task_id).map(|(context, _)| context);
        let thread_id = match message.get("contextId").and_then(Value::as_str) {
            Some(context) => Some(
                Uuid::parse_str(context).map_err(|_| format!("contextId '{context}' is not a UUID (a thread's id)"))?,
            ),
            None => from_task,
        };
        let length = history_length(call.params.pointer("/configuration/historyLength"))?;
        Ok((
            Turn { assistant_id: self.assistant_id, thread_id: Some(thread_id.unwrap_or_else(Uuid::now_v7)), text },
            length,
        ))
    }

    async fn send(&self, id: &Value, turn: Turn, history_length: Option<usize>) -> Result<Response, ApiError> {
        let (run, messages, outcome) = match self.state.runs.take_turn(self.user.clone(), turn).await {
            Ok(turn) => turn,
            Err(error) => return Ok(refused(id, error)),
        };
        let task = task_id(run.thread_id, run.run_id);
        let task = self.task(&self.task_ref(run.thread_id, &task), &messages, &outcome, history_length);
        Ok(jsonrpc::result(id, self.dialect.task_event(task)))
    }

    /// A task as stored: its status, its answer as an artifact, its history.
    fn task(
        &self,
        at: &TaskRef,
        messages: &[crate::model::Message],
        outcome: &Outcome,
        history_length: Option<usize>,
    ) -> Value {
        let (state, said) = status_of(outcome);
        let artifacts = match outcome {
            Outcome::Answered(answer) => vec![at.artifact(answer, self.assistant_id)],
            _ => Vec::new(),
        };
        let history = (history_length != Some(0)).then(|| at.history(messages, history_length));
        at.task(at.status(state, said.as_deref()), artifacts, history)
    }

    async fn stream(self, id: Value, turn: Turn) -> Result<Response, ApiError> {
        let slot = self.state.streams.take(&self.user)?;
        let text = turn.text.clone();
        let (run, events) = match self.state.runs.stream_turn(self.user.clone(), turn, stream::refusal).await {
            Ok(started) => started,
            Err(error) => return Ok(refused(&id, error)),
        };
        Ok(stream::response(self, id, run, text, events, slot))
    }

    /// The run the call's task names, when it is one of this assistant's tasks for this user.
    async fn named_task(
        &self,
        call: &Call,
    ) -> Result<Result<(crate::model::Run, Vec<crate::model::Message>, Outcome), Response>, ApiError> {
        let name = call.params.get("id").and_then(Value::as_str).unwrap_or_default();
        let not_found = || jsonrpc::error(&call.id, TASK_NOT_FOUND, format!("Task not found: {name}"));
        let Some((context_id, run_id)) = parse_task_id(name) else { return Ok(Err(not_found())) };
        match self.state.runs.turn_state(&self.user, run_id).await {
            Ok(found) if found.0.thread_id == context_id && found.0.assistant_id == self.assistant_id => Ok(Ok(found)),
            Ok(_) | Err(RunError::Store(crate::store::StoreError::NotFound(_))) => Ok(Err(not_found())),
            Err(error) => Err(error.into()),
        }
    }

    async fn get(&self, call: &Call) -> Result<Response, ApiError> {
        let length = match history_length(call.params.get("historyLength")) {
            Ok(length) => length,
            Err(reason) => return Ok(jsonrpc::error(&call.id, INVALID_PARAMS, reason)),
        };
        let (run, messages, outcome) = match self.named_task(call).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        let task = task_id(run.thread_id, run.run_id);
        Ok(jsonrpc::result(&call.id, self.task(&self.task_ref(run.thread_id, &task), &messages, &outcome, length)))
    }

    async fn cancel(&self, call: &Call) -> Result<Response, ApiError> {
        let (run, _, outcome) = match self.named_task(call).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        if status_of(&outcome).0.is_final() {
            return Ok(jsonrpc::error(&call.id, TASK_NOT_CANCELABLE, "Task cannot be canceled: it has ended"));
        }
        self.state.runs.cancel(&self.user, run.run_id).await?;
        let (run, messages, outcome) = self.state.runs.turn_state(&self.user, run.run_id).await?;
        let task = task_id(run.thread_id, run.run_id);
        Ok(jsonrpc::result(&call.id, self.task(&self.task_ref(run.thread_id, &task), &messages, &outcome, None)))
    }
}

/// A turn that could not start: the thread is another's, full, or busy past the wait.
fn refused(id: &Value, error: RunError) -> Response {
    let error = ApiError::from(error);
    let code = if error.status().is_client_error() { INVALID_PARAMS } else { jsonrpc::INTERNAL_ERROR };
    jsonrpc::error(id, code, error.to_string())
}
