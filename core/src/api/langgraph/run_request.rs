//! A run request of the LangGraph API: read once, then named as a run of the engine on its
//! thread (made for it when it has none), with the user's decisions on a review applied.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::threads::{self, new_thread, view};
use super::unprocessable;
use super::{detail, resolve_assistant, Body, Graph};
use crate::api::{limits, ApiError, AppState};
use crate::model::{Assistant, RunProfile, UserId};
use crate::runs::{
    Execution, GraphStream, MultitaskStrategy, OnDisconnect, PendingRun, RunError, RunInput, RunRequest, StreamMode,
};
use crate::store::{StoreError, ThreadView};

/// A run request of the LangGraph API, read once.
pub(super) struct GraphRunBody {
    assistant: Assistant,
    input: RunInput,
    modes: Vec<StreamMode>,
    configurable: Map<String, Value>,
    recursion_limit: Option<u32>,
    strategy: MultitaskStrategy,
    strategy_name: &'static str,
    on_disconnect: OnDisconnect,
    metadata: Map<String, Value>,
    checkpoint: Option<String>,
    /// The user's decisions on the tool calls an agent waits with.
    resume: Option<Value>,
    resumable: bool,
    start_after: Option<Duration>,
    create_thread: bool,
    keep_thread: bool,
    webhook: Option<String>,
    kwargs: Value,
}

impl GraphRunBody {
    async fn read(state: &AppState, user: &UserId, body: &Body) -> Result<Self, ApiError> {
        let assistant_id = body.required_string("assistant_id")?;
        let assistant = resolve_assistant(state, user, &assistant_id).await?;
        let graph = Graph::of(&assistant);
        let modes = stream_modes(body.raw("stream_mode"))?;
        let input = match body.raw("input") {
            None => RunInput::Resume,
            Some(Value::Object(input)) => match input.get("messages") {
                None | Some(Value::Null) if input.is_empty() || !input.contains_key("messages") => RunInput::Resume,
                Some(list) => RunInput::Latest(super::body::messages(list, "input.messages")?),
                None => RunInput::Resume,
            },
            Some(other) => return Err(unprocessable(format!("{other} is not of type 'object', 'null' ('input')"))),
        };
        let resume = match body.raw("command") {
            None => None,
            Some(command) => match command.get("resume").filter(|resume| !resume.is_null()) {
                Some(resume) if input == RunInput::Resume => Some(resume.clone()),
                _ => {
                    return Err(unprocessable(
                        "A command may only resume an agent waiting for a review of its tool calls ({\"resume\": ...}, with no input)",
                    ))
                }
            },
        };
        let config = body.object("config")?;
        let mut configurable = match config.get("configurable") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(configurable)) => configurable.clone(),
            Some(other) => {
                return Err(unprocessable(format!("{other} is not of type 'object' ('config.configurable')")))
            }
        };
        configurable.extend(body.object("context")?);
        let configurable = super::bot_keys(graph, configurable);
        let mut overrides = configurable.clone();
        for key in ["interrupt_before", "interrupt_after"] {
            if let Some(nodes) = body.raw(key) {
                let stops_at_action =
                    nodes == "*" || nodes.as_array().is_some_and(|nodes| nodes.iter().any(|node| node == "action"));
                if key == "interrupt_before" && stops_at_action {
                    overrides.insert("type==agent/interrupt_before_action".into(), json!(true));
                } else if nodes.as_array().is_none_or(|nodes| !nodes.is_empty()) {
                    return Err(unprocessable(format!(
                        "{key} may name only the agent's 'action' node, before which it waits for confirmation"
                    )));
                }
            }
        }
        let recursion_limit = match config.get("recursion_limit") {
            None | Some(Value::Null) => None,
            Some(limit) => Some(
                limit
                    .as_u64()
                    .filter(|limit| (1..=1000).contains(limit))
                    .ok_or_else(|| unprocessable("config.recursion_limit must be an integer from 1 to 1000"))?
                    as u32,
            ),
        };
        let strategy_name =
            body.choice("multitask_strategy", &["reject", "enqueue", "interrupt", "rollback"])?.unwrap_or("enqueue");
        let strategy = match strategy_name {
            "reject" => MultitaskStrategy::Reject,
            "interrupt" => MultitaskStrategy::Interrupt,
            // A rollback has cancelled and deleted the running runs before this run waits (see
            // `prepare`); it then waits as a queued run does.
            _ => MultitaskStrategy::Enqueue,
        };
        let start_after = start_delay(body.raw("after_seconds"))?;
        let on_disconnect = match body.choice("on_disconnect", &["cancel", "continue"])?.unwrap_or("continue") {
            "cancel" => OnDisconnect::Cancel,
            _ => OnDisconnect::Continue,
        };
        let checkpoint = match body.raw("checkpoint") {
            Some(checkpoint) => checkpoint["checkpoint_id"].as_str().map(str::to_string),
            None => body.string("checkpoint_id")?,
        };
        let create_thread = body.choice("if_not_exists", &["create", "reject"])? == Some("create");
        let keep_thread = body.choice("on_completion", &["delete", "keep"])? == Some("keep");
        let metadata = body.object("metadata")?;
        let kwargs = json!({
            "input": body.raw("input"),
            "command": body.raw("command"),
            "config": {"configurable": configurable, "metadata": metadata},
            "context": body.object("context")?,
            "stream_mode": modes.iter().map(|mode| mode.as_str()).collect::<Vec<_>>(),
            "interrupt_before": body.raw("interrupt_before"),
            "interrupt_after": body.raw("interrupt_after"),
            "webhook": body.raw("webhook"),
            "feedback_keys": null,
            "temporary": false,
            "subgraphs": body.boolean("stream_subgraphs")?,
            "resumable": body.boolean("stream_resumable")?,
            "checkpoint_during": true,
            "durability": "async",
        });
        Ok(GraphRunBody {
            assistant,
            input,
            modes,
            configurable: overrides,
            recursion_limit,
            strategy,
            strategy_name,
            on_disconnect,
            metadata,
            checkpoint,
            resume,
            resumable: body.boolean("stream_resumable")?,
            start_after,
            create_thread,
            keep_thread,
            webhook: body.string("webhook")?,
            kwargs,
        })
    }
}

/// The longest `after_seconds`: the run waits in the function that runs it, whose time is limited
/// (15 minutes on Lambda), and the wait leaves time for the run.
const MAX_START_DELAY_SECONDS: f64 = 600.0;

/// `after_seconds`: how long the run waits before it starts.
fn start_delay(raw: Option<&Value>) -> Result<Option<Duration>, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(seconds) => match seconds.as_f64() {
            Some(seconds) if (0.0..=MAX_START_DELAY_SECONDS).contains(&seconds) => {
                Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
            }
            _ => Err(unprocessable(format!(
                "after_seconds must be a number of seconds from 0 to {MAX_START_DELAY_SECONDS} (got {seconds}); a later start needs a schedule"
            ))),
        },
    }
}

/// `stream_mode`: one name or a list; `values` when absent.
fn stream_modes(raw: Option<&Value>) -> Result<Vec<StreamMode>, ApiError> {
    let names: Vec<&Value> = match raw {
        None => return Ok(vec![StreamMode::Values]),
        Some(Value::Array(names)) => names.iter().collect(),
        Some(name) => vec![name],
    };
    let mut modes = Vec::new();
    for name in names {
        let mode = name.as_str().and_then(StreamMode::parse).ok_or_else(|| {
            let supported = StreamMode::NAMES.iter().map(|(name, _)| format!("'{name}'")).collect::<Vec<_>>();
            unprocessable(format!("{name} is not a supported stream_mode: use {}", supported.join(", ")))
        })?;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    Ok(modes)
}

/// A cron's run request, checked now as a run's is when it starts: its assistant.
pub(super) async fn check(state: &AppState, user: &UserId, body: &Body) -> Result<Assistant, ApiError> {
    let request = GraphRunBody::read(state, user, body).await?;
    limits::check_messages(&state.config.limits, request.input.messages(), "input")?;
    limits::check_config(&state.config.limits, &request.configurable)?;
    if let Some(url) = &request.webhook {
        state.runs.check_webhook(url)?;
    }
    Ok(request.assistant)
}

/// A run ready to take its thread; `ephemeral` when its thread goes with it (a stateless run).
pub(super) struct Prepared {
    pub(super) pending: PendingRun,
    pub(super) ephemeral: bool,
}

pub(super) async fn prepare(
    state: &AppState,
    user: &UserId,
    thread_id: Option<Uuid>,
    body: &Body,
    execution: Execution,
) -> Result<Prepared, ApiError> {
    let mut request = GraphRunBody::read(state, user, body).await?;
    limits::check_messages(&state.config.limits, request.input.messages(), "input")?;
    limits::check_config(&state.config.limits, &request.configurable)?;
    let (thread_id, ephemeral) = match thread_id {
        Some(thread_id) => (thread_id, false),
        None => (Uuid::now_v7(), !request.keep_thread),
    };
    let mut view = match state.store.thread_view(user, thread_id).await {
        Ok(view) => view,
        Err(StoreError::NotFound(_)) if ephemeral || request.create_thread => {
            let thread = new_thread(state, user.clone(), thread_id, Map::new());
            state.store.put_thread(&thread).await.map_err(|_| threads::missing(thread_id))?;
            view(state, user, thread_id).await?
        }
        Err(StoreError::NotFound(_)) => {
            return Err(detail(StatusCode::NOT_FOUND, "Thread or assistant not found."));
        }
        Err(error) => return Err(error.into()),
    };
    if request.strategy_name == "rollback" && view.running {
        roll_back(state, user, thread_id).await?;
    }
    if let Some(checkpoint) = &request.checkpoint {
        view = super::branches::fork_to(state, user, view, checkpoint, request.strategy).await?;
    }
    if let Some(resume) = &request.resume {
        let waiting = (!threads::next_nodes(&view).is_empty()).then(|| view.messages.last()).flatten();
        let pending = waiting.ok_or_else(|| {
            detail(StatusCode::CONFLICT, "The thread is not waiting for a decision on tool calls: nothing to resume")
        })?;
        match super::review::decide(pending, resume)? {
            super::review::Decided::Run(calls) => {
                state.store.upsert_messages(user, thread_id, std::slice::from_ref(&*calls)).await?;
                view = threads::view(state, user, thread_id).await?;
            }
            super::review::Decided::Answered(answers) => request.input = RunInput::Latest(answers),
        }
    }
    stamp(state, &mut view, &request.assistant).await?;
    let graph = Graph::of(&request.assistant);
    let metadata = view.thread.metadata.clone().unwrap_or_default();
    let stream = GraphStream {
        modes: request.modes.clone(),
        graph_id: graph.id().to_string(),
        metadata,
        resumable: request.resumable,
    };
    let mut run_metadata = request.metadata.clone();
    run_metadata.insert("graph_id".into(), json!(graph.id()));
    run_metadata.insert("assistant_id".into(), json!(request.assistant.assistant_id));
    let profile = RunProfile {
        metadata: run_metadata,
        kwargs: request.kwargs.clone(),
        multitask_strategy: request.strategy_name.to_string(),
    };
    let run_request = RunRequest {
        thread_id,
        assistant_id: Some(request.assistant.assistant_id),
        input: request.input,
        configurable: request.configurable,
        recursion_limit: request.recursion_limit,
        multitask_strategy: request.strategy,
        on_disconnect: request.on_disconnect,
        start_after: request.start_after,
        webhook: request.webhook,
    };
    let pending =
        state.runs.plan(user.clone(), view, &request.assistant, run_request, execution, Some((stream, profile)))?;
    Ok(Prepared { pending, ephemeral })
}

/// Cancels the runs going on the thread, waits for it to be free (as long as a queued run would),
/// and deletes them, as `multitask_strategy: "rollback"` asks. Their input stays in the thread.
async fn roll_back(state: &AppState, user: &UserId, thread_id: Uuid) -> Result<(), ApiError> {
    let going: Vec<Uuid> = state
        .store
        .list_runs(user, thread_id)
        .await?
        .into_iter()
        .filter(|run| !run.status.is_finished())
        .map(|run| run.run_id)
        .collect();
    for run_id in &going {
        state.runs.cancel(user, *run_id).await?;
    }
    let deadline = tokio::time::Instant::now() + state.config.run_queue_wait;
    while view(state, user, thread_id).await?.running && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for run_id in going {
        match state.store.delete_run(user, run_id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The thread's first run names its assistant and graph, in its record and its metadata, so
/// the thread lists under them (agent-chat-ui searches threads by `graph_id`).
async fn stamp(state: &AppState, view: &mut ThreadView, assistant: &Assistant) -> Result<(), ApiError> {
    let thread = &mut view.thread;
    let metadata = thread.metadata.get_or_insert_with(Map::new);
    let graph_id = json!(Graph::of(assistant).id());
    let assistant_id = json!(assistant.assistant_id);
    if metadata.get("graph_id") == Some(&graph_id)
        && metadata.get("assistant_id") == Some(&assistant_id)
        && thread.assistant_id == assistant.assistant_id
    {
        return Ok(());
    }
    metadata.insert("graph_id".into(), graph_id);
    metadata.insert("assistant_id".into(), assistant_id);
    if assistant.user_id == thread.user_id {
        // OpenGPTs' clients load a thread's assistant: only one they can read is named there.
        thread.assistant_id = assistant.assistant_id;
        if let Some(kind) = assistant.kind() {
            metadata.insert("assistant_type".into(), json!(kind));
        }
    }
    state.store.put_thread(thread).await?;
    Ok(())
}

/// A busy thread under `reject`, in the reference's words.
pub(super) fn busy(error: RunError) -> ApiError {
    match error {
        RunError::Store(StoreError::ThreadBusy { .. }) => detail(
            StatusCode::CONFLICT,
            "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
        ),
        other => other.into(),
    }
}
