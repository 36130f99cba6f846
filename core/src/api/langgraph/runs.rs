//! `/langgraph/threads/{id}/runs` and the stateless `/langgraph/runs`: a graph run is a run of
//! the one engine, streamed in LangGraph's events.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use super::threads::{self, new_thread, view};
use super::{detail, json_body, not_found, resolve_assistant, time, Body, Graph};
use crate::api::auth::User;
use crate::api::sse::{frame, frame_with_id, stream_body, Framing};
use crate::api::{limits, ApiError, AppState, Routes};
use crate::model::{Assistant, Message, Run, RunProfile, RunStatus, Timestamp, UserId};
use crate::runs::{
    event_position, Execution, GraphStream, MultitaskStrategy, OnDisconnect, PendingRun, RunError, RunEvent, RunInput,
    RunRequest, State as Values, StreamMode, BATCH_EVERY,
};
use crate::store::{StoreError, ThreadView};

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs", get(list).post(create))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}", get(read))
        .route("/langgraph/runs", post(create_stateless))
}

pub fn stream_routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs/stream", post(stream))
        .route("/langgraph/threads/{thread_id}/runs/wait", post(wait))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/join", get(join))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/stream", get(join_stream))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/cancel", post(cancel))
        .route("/langgraph/runs/stream", post(stream_stateless))
        .route("/langgraph/runs/wait", post(wait_stateless))
}

/// How long a stream may be silent before a heartbeat comment.
const HEARTBEAT: Duration = Duration::from_secs(5);
const STREAM_BUFFER: usize = 256;

fn unprocessable(text: impl Into<String>) -> ApiError {
    detail(StatusCode::UNPROCESSABLE_ENTITY, text)
}

/// A run request of the LangGraph API, read once.
struct GraphRunBody {
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
    create_thread: bool,
    keep_thread: bool,
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
            "enqueue" => MultitaskStrategy::Enqueue,
            // A rolled-back run is cancelled, and its input stays in the thread.
            _ => MultitaskStrategy::Interrupt,
        };
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
            "webhook": null,
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
            create_thread,
            keep_thread,
            kwargs,
        })
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

/// A run ready to take its thread; `ephemeral` when its thread goes with it (a stateless run).
struct Prepared {
    pending: PendingRun,
    ephemeral: bool,
}

async fn prepare(
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
    if let Some(checkpoint) = &request.checkpoint {
        if threads::checkpoint_position(&view, checkpoint) != Some(view.messages.len()) {
            return Err(detail(
                StatusCode::CONFLICT,
                "Runs start from the thread's latest checkpoint; forking from an earlier one is not supported",
            ));
        }
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
    };
    let pending =
        state.runs.plan(user.clone(), view, &request.assistant, run_request, execution, Some((stream, profile)))?;
    Ok(Prepared { pending, ephemeral })
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
fn busy(error: RunError) -> ApiError {
    match error {
        RunError::Store(StoreError::ThreadBusy { .. }) => detail(
            StatusCode::CONFLICT,
            "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
        ),
        other => other.into(),
    }
}

fn paths(run: &Run, stateless: bool) -> (String, String) {
    let base = match stateless {
        true => format!("{}/runs/{}", super::PREFIX, run.run_id),
        false => format!("{}/threads/{}/runs/{}", super::PREFIX, run.thread_id, run.run_id),
    };
    (format!("{base}/stream"), base)
}

/// The SSE response of a graph run: each event one write (with its id when the stream is
/// kept), heartbeats in silences, an `error` event on failure, and no `end` event. The run's
/// `metadata` event comes from the run itself, so a joined stream replays it too.
fn graph_stream(run: &Run, stateless: bool, events: mpsc::Receiver<RunEvent>, slot: limits::StreamSlot) -> Response {
    let (location, content_location) = paths(run, stateless);
    let framing = Framing {
        first: Bytes::new(),
        ping: HEARTBEAT,
        idle: || Bytes::from_static(b": heartbeat\r\n\r\n"),
        event: |event| match event {
            RunEvent::Frame { event, data, id: Some(id) } => frame_with_id(event, &data, &id),
            RunEvent::Frame { event, data, id: None } => frame(event, &data),
            RunEvent::Data(data) => frame("values", &data),
            RunEvent::Error { message, .. } => {
                frame("error", &json!({"error": "RunError", "message": message}).to_string())
            }
        },
        end: None,
    };
    let header_value = |text: String| HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("/"));
    (
        [
            (header::LOCATION, header_value(location)),
            (header::CONTENT_LOCATION, header_value(content_location)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONNECTION, HeaderValue::from_static("keep-alive")),
            (header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8")),
        ],
        stream_body(events, framing, slot),
    )
        .into_response()
}

async fn stream(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    start_stream(state, user, Some(threads::thread_id(&thread_id)?), body).await
}

async fn stream_stateless(State(state): State<AppState>, User(user): User, body: Body) -> Result<Response, ApiError> {
    start_stream(state, user, None, body).await
}

async fn start_stream(
    state: AppState,
    user: UserId,
    thread_id: Option<Uuid>,
    body: Body,
) -> Result<Response, ApiError> {
    let slot = state.streams.take(&user)?;
    let Prepared { pending, ephemeral } = prepare(&state, &user, thread_id, &body, Execution::Streamed).await?;
    let run = pending.job.run.clone();
    let receiver = crate::api::runs::start_streamed(&state, pending, busy, ephemeral).await?;
    Ok(graph_stream(&run, thread_id.is_none(), receiver, slot))
}

/// Runs to its end apart from the request (a client that leaves does not stop it), then
/// answers the thread's values, or the run's error.
async fn wait(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    run_to_end(state, user, Some(threads::thread_id(&thread_id)?), body).await
}

async fn wait_stateless(State(state): State<AppState>, User(user): User, body: Body) -> Result<Response, ApiError> {
    run_to_end(state, user, None, body).await
}

async fn run_to_end(state: AppState, user: UserId, thread_id: Option<Uuid>, body: Body) -> Result<Response, ApiError> {
    let Prepared { pending, ephemeral } = prepare(&state, &user, thread_id, &body, Execution::Streamed).await?;
    let job = state.runs.acquire(&pending, Some(&|| true)).await.map_err(busy)?;
    let engine = state.runs.clone();
    let finished = tokio::spawn(async move { engine.execute(job, None).await }.in_current_span())
        .await
        .map_err(|error| ApiError::Internal(format!("the run's task failed: {error}")))?;
    let outcome = final_values(&state, &user, &finished).await;
    if ephemeral {
        state.store.delete_thread(&user, finished.thread_id).await?;
    }
    let (location, _) = paths(&finished, thread_id.is_none());
    let mut response = outcome?;
    if let Ok(value) = HeaderValue::from_str(&location.replace("/stream", "/join")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// What `wait` and `join` answer once a run has ended: the thread's values, or its error.
async fn final_values(state: &AppState, user: &UserId, run: &Run) -> Result<Response, ApiError> {
    if run.status == RunStatus::Error {
        let message = run.error.clone().unwrap_or_default();
        return Ok(json_body(&json!({"__error__": {"error": "RunError", "message": message}})));
    }
    let view = view(state, user, run.thread_id).await?;
    Ok(json_body(&Values(&view.messages, &[] as &[Message])))
}

/// A run as the LangGraph API shows it.
struct GraphRun<'a>(&'a Run);

impl Serialize for GraphRun<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let run = self.0;
        let profile = run.profile.clone();
        let status = match run.status {
            RunStatus::Cancelled => "interrupted",
            other => other.as_str(),
        };
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("run_id", &run.run_id)?;
        map.serialize_entry("thread_id", &run.thread_id)?;
        map.serialize_entry("assistant_id", &run.assistant_id)?;
        map.serialize_entry("metadata", &profile.as_ref().map(|p| p.metadata.clone()).unwrap_or_default())?;
        map.serialize_entry("status", status)?;
        map.serialize_entry("kwargs", &profile.as_ref().map_or(json!({}), |p| p.kwargs.clone()))?;
        map.serialize_entry("multitask_strategy", &profile.as_ref().map_or("enqueue", |p| &p.multitask_strategy))?;
        map.serialize_entry("created_at", &time(run.created_at))?;
        map.serialize_entry("updated_at", &time(run.updated_at))?;
        map.serialize_entry("langsmith_session_name", &Value::Null)?;
        map.end()
    }
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    start_background(state, user, Some(threads::thread_id(&thread_id)?), body).await
}

async fn create_stateless(State(state): State<AppState>, User(user): User, body: Body) -> Result<Response, ApiError> {
    start_background(state, user, None, body).await
}

async fn start_background(
    state: AppState,
    user: UserId,
    thread_id: Option<Uuid>,
    body: Body,
) -> Result<Response, ApiError> {
    // A stateless background run keeps its thread: its result is read from it later.
    let Prepared { pending, .. } = prepare(&state, &user, thread_id, &body, Execution::Background).await?;
    let job = state.runs.acquire(&pending, Some(&|| true)).await.map_err(busy)?;
    let run = job.run.clone();
    state.runs.run_in_background(job).await?;
    let mut response = json_body(&GraphRun(&run));
    let (_, content_location) = paths(&run, false);
    if let Ok(value) = HeaderValue::from_str(&content_location) {
        response.headers_mut().insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// The run, if it is on the thread named.
async fn run_on(state: &AppState, user: &UserId, thread_id: &str, run_id: &str) -> Result<Run, ApiError> {
    let thread_id = threads::thread_id(thread_id)?;
    let run_id = Uuid::parse_str(run_id).map_err(|_| not_found())?;
    let run = state.runs.get(user, run_id).await.map_err(|error| match error {
        RunError::Store(StoreError::NotFound(_)) => not_found(),
        other => other.into(),
    })?;
    if run.thread_id != thread_id {
        return Err(not_found());
    }
    Ok(run)
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path((thread_id, run_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(json_body(&GraphRun(&run_on(&state, &user, &thread_id, &run_id).await?)))
}

#[derive(serde::Deserialize)]
struct Paging {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Response, ApiError> {
    let thread_id = threads::thread_id(&thread_id)?;
    let runs = state.store.list_runs(&user, thread_id).await.map_err(|error| match error {
        StoreError::NotFound(_) => threads::missing(thread_id),
        other => other.into(),
    })?;
    let shown: Vec<GraphRun<'_>> =
        runs.iter().skip(paging.offset.unwrap_or(0)).take(paging.limit.unwrap_or(10)).map(GraphRun).collect();
    Ok(json_body(&shown))
}

/// Polls the run's record (which every process can read) until it has ended.
async fn ended(state: &AppState, user: &UserId, mut run: Run) -> Result<Run, ApiError> {
    let mut pause = Duration::from_millis(20);
    while !run.status.is_finished() {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
        run = state.runs.get(user, run.run_id).await?;
    }
    Ok(run)
}

async fn join(
    State(state): State<AppState>,
    User(user): User,
    Path((thread_id, run_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let run = run_on(&state, &user, &thread_id, &run_id).await?;
    let run = ended(&state, &user, run).await?;
    final_values(&state, &user, &run).await
}

#[derive(serde::Deserialize)]
struct JoinParams {
    stream_mode: Option<String>,
}

/// Joins a run's stream, from any process: a resumable run's events are kept in the store.
/// With `Last-Event-ID` the events after it are replayed (`0`: all of them), then the run's
/// live events follow; without, only the events from now on. `stream_mode` keeps the events
/// of one mode. A run that is not resumable has nothing kept: its join ends when it does.
async fn join_stream(
    State(state): State<AppState>,
    User(user): User,
    Path((thread_id, run_id)): Path<(String, String)>,
    Query(params): Query<JoinParams>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let run = run_on(&state, &user, &thread_id, &run_id).await?;
    let wanted: Option<&'static [&'static str]> = match params.stream_mode.as_deref().filter(|mode| !mode.is_empty()) {
        Some(mode) => Some(
            StreamMode::parse(mode)
                .map(StreamMode::events)
                .ok_or_else(|| unprocessable(format!("'{mode}' is not a supported stream_mode")))?,
        ),
        None => None,
    };
    let after = headers.get("last-event-id").and_then(|value| value.to_str().ok()).map(event_position);
    let resumable = run.profile.as_ref().is_some_and(|profile| profile.kwargs["resumable"] == true);
    let slot = state.streams.take(&user)?;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let watched = run.clone();
    let tail = async move {
        let mut batch = 0;
        let mut skip_through = after;
        if after.is_none() && resumable {
            // Live events only: those kept already are skipped, and those made before now and
            // not yet written are known by their time.
            if let Ok((_, next)) = state.store.run_events(&watched, 0).await {
                batch = next;
            }
            skip_through = Some((Timestamp::now().datetime().timestamp_millis() - 1, u64::MAX));
        }
        loop {
            let ended = state.runs.get(&user, watched.run_id).await.map_or(true, |run| run.status.is_finished());
            if resumable {
                let Ok((events, next)) = state.store.run_events(&watched, batch).await else { return };
                batch = next;
                for kept in events {
                    let name = graph_event_name(&kept.event);
                    let later = skip_through.is_none_or(|through| event_position(&kept.id) > through);
                    let shown = wanted.is_none_or(|wanted| wanted.contains(&name));
                    if later && shown {
                        let event = RunEvent::Frame { event: name, data: kept.data, id: Some(kept.id) };
                        if sender.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if ended {
                return;
            }
            tokio::time::sleep(BATCH_EVERY).await;
        }
    };
    tokio::spawn(tail.in_current_span());
    Ok(graph_stream(&run, false, receiver, slot))
}

/// A kept event's name as one of the stream's own (they are few, and known).
fn graph_event_name(name: &str) -> &'static str {
    const NAMES: [&str; 8] =
        ["metadata", "values", "updates", "messages", "messages/metadata", "messages/partial", "custom", "error"];
    NAMES.into_iter().find(|known| *known == name).unwrap_or("custom")
}

#[derive(serde::Deserialize)]
struct CancelParams {
    wait: Option<String>,
    action: Option<String>,
}

async fn cancel(
    State(state): State<AppState>,
    User(user): User,
    Path((thread_id, run_id)): Path<(String, String)>,
    Query(params): Query<CancelParams>,
) -> Result<Response, ApiError> {
    if let Some(action) = params.action.as_deref().filter(|action| !["interrupt", "rollback"].contains(action)) {
        return Err(unprocessable(format!("'{action}' is not one of ['interrupt', 'rollback'] ('action')")));
    }
    let run = run_on(&state, &user, &thread_id, &run_id).await?;
    state.runs.cancel(&user, run.run_id).await?;
    let wait = params.wait.as_deref().is_some_and(|wait| ["1", "true", "True"].contains(&wait));
    if !wait {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    // The run has let go of its thread once the thread is free of it.
    let started = Timestamp::now();
    loop {
        let view = view(&state, &user, run.thread_id).await?;
        let waited = Timestamp::now().datetime() - started.datetime();
        if !view.running || waited > chrono::Duration::seconds(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(json_body(&json!({})))
}
