//! The event protocol's commands (`{"id", "method", "params"}`), answered with a success or an
//! error envelope, over HTTP (`POST /threads/{id}/commands`) or a WebSocket alike.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::super::requests::FromBody;
use super::super::run_request::{self, GraphRunBody};
use super::super::Body;
use super::EventFilter;
use crate::api::{ApiError, AppState};
use crate::model::{RunStatus, UserId};
use crate::runs::{next_nodes, review_interrupts, Mode};
use crate::store::StoreError;

/// A command as read: its id and method, and its params.
pub(super) struct Command {
    pub(super) id: i64,
    pub(super) method: String,
    pub(super) params: Map<String, Value>,
}

/// What a command gets back: the envelope a client reads.
pub(super) struct Reply(pub(super) Value);

impl Reply {
    pub(super) fn success(id: i64, result: Value) -> Self {
        Reply(json!({"type": "success", "id": id, "result": result, "meta": {"applied_through_seq": 0}}))
    }

    pub(super) fn error(id: Value, code: &str, message: impl Into<String>) -> Self {
        Reply(json!({"type": "error", "id": id, "error": code, "message": message.into()}))
    }
}

/// A frame that is not a command: the reference's refusal, with the id as sent.
pub(super) fn read(raw: Value) -> Result<Command, Reply> {
    let id = raw.get("id").and_then(Value::as_i64);
    let method = raw.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        let echoed = raw.get("id").cloned().unwrap_or(Value::Null);
        return Err(Reply::error(
            echoed,
            "invalid_argument",
            "Protocol commands must include an integer id and string method.",
        ));
    };
    let params = raw.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
    Ok(Command { id, method: method.to_string(), params })
}

/// The session a command runs in: none over HTTP, a socket's subscriptions over a WebSocket.
pub(super) trait Session: Send {
    fn subscribe(&mut self, filter: EventFilter) -> Result<Uuid, Reply>;
    fn unsubscribe(&mut self, id: &str) -> bool;
}

/// Answers a command on the user's thread.
pub(super) async fn answer(
    state: &AppState,
    user: &UserId,
    thread_id: Uuid,
    command: Command,
    session: &mut dyn Session,
) -> Reply {
    let id = command.id;
    let outcome = match command.method.as_str() {
        "run.start" => start(state, user, thread_id, &command.params).await,
        "input.respond" => respond(state, user, thread_id, &command.params).await,
        "subscription.subscribe" => match EventFilter::from_params(&command.params) {
            Ok(filter) => session.subscribe(filter).map(|id| json!({"subscription_id": id, "replayed_events": 0})),
            Err(_) => Err(Reply::error(
                json!(id),
                "invalid_argument",
                "subscription.subscribe received an unsupported channel.",
            )),
        },
        "subscription.unsubscribe" => {
            let named = command.params.get("subscription_id").and_then(Value::as_str).unwrap_or_default();
            match session.unsubscribe(named) {
                true => Ok(json!({})),
                false => Err(Reply::error(json!(id), "no_such_subscription", format!("Unknown subscription: {named}"))),
            }
        }
        // Subscriptions live as long as their socket: a new socket subscribes again, with `since`.
        "subscription.reconnect" => Ok(json!({"restored": false, "missed_events": 0})),
        "agent.getTree" => tree(state, user, thread_id, &command.params).await,
        other => Err(Reply::error(json!(id), "unknown_command", format!("Unknown protocol command: {other}"))),
    };
    match outcome {
        Ok(result) => Reply::success(id, result),
        Err(Reply(mut error)) => {
            error["id"] = json!(id);
            Reply(error)
        }
    }
}

/// A refusal the API would answer with a status: the reference words it `"<status>: <detail>"`.
fn refused(error: ApiError) -> Reply {
    let code = match error.status().as_u16() {
        400 | 422 => "invalid_argument",
        404 => "not_found",
        _ => "unknown_error",
    };
    let code = if matches!(error, ApiError::Detail { .. }) { "unknown_error" } else { code };
    Reply::error(Value::Null, code, format!("{}: {error}", error.status().as_u16()))
}

/// `run.start`: a run on the thread, made on first use, queued behind the thread's run. An input
/// that is not messages, on a thread waiting for the user, is the user's answer.
async fn start(state: &AppState, user: &UserId, thread_id: Uuid, params: &Map<String, Value>) -> Result<Value, Reply> {
    let assistant_id = params.get("assistant_id").filter(|value| !value.is_null());
    let Some(assistant_id) = assistant_id else {
        return Err(Reply::error(Value::Null, "invalid_argument", "run.start requires an assistant_id."));
    };
    let mut body = Map::new();
    body.insert("assistant_id".into(), assistant_id.clone());
    for key in ["config", "metadata", "multitask_strategy"] {
        if let Some(value) = params.get(key) {
            body.insert(key.into(), value.clone());
        }
    }
    body.entry("multitask_strategy").or_insert(json!("enqueue"));
    body.insert("if_not_exists".into(), json!("create"));
    if let Some(checkpoint) = params.get("config").and_then(|config| config["configurable"].get("checkpoint_id")) {
        if checkpoint.as_str().and_then(|id| Uuid::parse_str(id).ok()).is_none() {
            let shown = checkpoint.as_str().map_or_else(|| checkpoint.to_string(), str::to_string);
            let message = format!("Invalid config.configurable.checkpoint_id: '{shown}'.");
            return Err(Reply::error(Value::Null, "invalid_argument", message));
        }
        body.insert("checkpoint_id".into(), checkpoint.clone());
    }
    match params.get("input").filter(|input| !input.is_null()) {
        Some(input) if input.get("messages").is_some() => {
            body.insert("input".into(), input.clone());
        }
        Some(answer) => {
            body.insert("command".into(), json!({"resume": decisions(state, user, thread_id, answer).await?}));
        }
        None => {}
    }
    run(state, user, thread_id, Body(body)).await
}

async fn run(state: &AppState, user: &UserId, thread_id: Uuid, body: Body) -> Result<Value, Reply> {
    let request = GraphRunBody::from_body(&body).map_err(refused)?;
    let spec = run_request::spec(state, user, Some(thread_id), request).await.map_err(refused)?;
    match state.runs.start(user.clone(), spec, Mode::Background).await {
        Ok(started) => {
            let run = started.into_run();
            Ok(json!({"run_id": run.run_id}))
        }
        Err(error) => Err(refused(run_request::refused(error))),
    }
}

/// The user's answer to the calls the thread waits with, as review decisions: the decisions
/// themselves, or `true` / `false` to approve / reject every call.
async fn decisions(state: &AppState, user: &UserId, thread_id: Uuid, answer: &Value) -> Result<Value, Reply> {
    let calls = match state.store.thread_view(user, thread_id).await {
        Ok(view) => view.messages.last().map_or(0, |last| last.tool_calls.len()),
        Err(_) => 0,
    };
    let every = |kind: &str| json!({"decisions": vec![json!({"type": kind}); calls]});
    Ok(match answer {
        Value::Bool(true) => every("approve"),
        Value::Bool(false) => every("reject"),
        Value::String(word) if word == "approve" || word == "reject" => every(word),
        decisions => decisions.clone(),
    })
}

/// `input.respond`: answers the interrupt the thread waits with, in a new run. The batch form
/// (`responses`, one per interrupt pending at one checkpoint) is taken too: our bots stop with one
/// interrupt at a time, so a batch holds it once.
async fn respond(
    state: &AppState,
    user: &UserId,
    thread_id: Uuid,
    params: &Map<String, Value>,
) -> Result<Value, Reply> {
    let answers: Vec<&Map<String, Value>> = match params.get("responses") {
        Some(Value::Array(entries)) => entries.iter().filter_map(Value::as_object).collect(),
        _ => vec![params],
    };
    let named: Option<Vec<&str>> =
        answers.iter().map(|answer| answer.get("interrupt_id").and_then(Value::as_str)).collect();
    let Some(named) = named.filter(|named| !named.is_empty()) else {
        return Err(Reply::error(Value::Null, "invalid_argument", "input.respond requires an interrupt_id."));
    };
    if named.len() > 1 {
        let message = "input.respond received more than one response for the interrupt this thread waits with.";
        return Err(Reply::error(Value::Null, "invalid_argument", message));
    }
    let interrupt_id = named[0];
    let no_run = || Reply::error(Value::Null, "no_such_run", "No interrupted run is bound to this thread.");
    let view = match state.store.thread_view(user, thread_id).await {
        Ok(view) => view,
        Err(StoreError::NotFound(_)) => return Err(no_run()),
        Err(error) => return Err(refused(error.into())),
    };
    let waiting = (!next_nodes(&view).is_empty()).then(|| view.messages.last()).flatten();
    let Some(pending) = waiting else { return Err(no_run()) };
    let current = review_interrupts(thread_id, pending, false);
    if current[0]["id"].as_str() != Some(interrupt_id) {
        let message = format!("Unknown or already-consumed interrupt: {interrupt_id}");
        return Err(Reply::error(Value::Null, "no_such_interrupt", message));
    }
    let response = answers[0].get("response").cloned().unwrap_or(Value::Null);
    let mut body = Map::new();
    body.insert("assistant_id".into(), json!(view.thread.assistant_id.to_string()));
    body.insert("command".into(), json!({"resume": decisions(state, user, thread_id, &response).await?}));
    body.insert("multitask_strategy".into(), json!("enqueue"));
    run(state, user, thread_id, Body(body)).await.map(|_| json!({}))
}

/// `agent.getTree`: the thread's graph as its latest run (or the one named) runs it.
async fn tree(state: &AppState, user: &UserId, thread_id: Uuid, params: &Map<String, Value>) -> Result<Value, Reply> {
    let no_run = || Reply::error(Value::Null, "no_such_run", "No active run is bound to this thread.");
    let runs = state.runs.list(user, thread_id).await.map_err(|_| no_run())?;
    let named = params.get("run_id").and_then(Value::as_str);
    let run =
        runs.into_iter().find(|run| named.is_none_or(|named| run.run_id.to_string() == named)).ok_or_else(no_run)?;
    let status = match run.status {
        RunStatus::Pending | RunStatus::Running => "running",
        RunStatus::Success => "completed",
        RunStatus::Error | RunStatus::Cancelled => "failed",
    };
    let graph = crate::runs::find_assistant(state.store.as_ref(), user, run.assistant_id)
        .await
        .ok()
        .flatten()
        .map_or("agent", |assistant| crate::runs::Bot::of(&assistant).id());
    Ok(json!({"tree": {"namespace": [], "status": status, "graph_name": graph, "children": []}}))
}
