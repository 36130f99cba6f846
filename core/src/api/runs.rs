//! `/runs`: start runs in the background or as a stream, read and cancel them, and describe them.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::auth::User;
use super::extract::{path_id, JsonBody};
use super::{limits, sse, ApiError, AppState, Routes};
use crate::llm::{DEFAULT_MODEL_NAME, DEFAULT_SYSTEM_MESSAGE, MODEL_NAMES};
use crate::model::{Feedback, FeedbackInput, Run};
use crate::runs::{Execution, Listener, MultitaskStrategy, OnDisconnect, PendingRun, RunError, RunEvent, RunRequest};
use crate::store::StoreError;
use crate::tools::{ToolKind, RETRIEVAL_DESCRIPTION};

/// Enough buffered events that a briefly slow client does not hold the model back.
const STREAM_BUFFER: usize = 256;

/// Every `/runs` route. The stream is among them so that the `runs` function also answers it
/// (buffered) where API Gateway's `/runs/{proxy+}` sends it, such as `/runs/stream/`.
pub fn routes() -> Routes {
    stream_routes()
        .route("/runs", post(create))
        .route("/runs/input_schema", get(|| async { Json(input_schema()) }))
        .route("/runs/output_schema", get(|| async { Json(output_schema()) }))
        .route("/runs/config_schema", get(|State(state): State<AppState>| async move { Json(offered_form(&state)) }))
        .route("/runs/{run_id}", get(read))
        .route("/runs/{run_id}/cancel", post(cancel))
        .route("/runs/feedback", post(add_feedback))
        .route("/runs/{run_id}/feedback", get(list_feedback))
}

/// The stream alone: on Lambda, its own function with response streaming.
pub fn stream_routes() -> Routes {
    Routes::default().route("/runs/stream", post(stream))
}

fn check_limits(state: &AppState, request: &RunRequest) -> Result<(), ApiError> {
    limits::check_messages(&state.config.limits, request.input.messages(), "input")?;
    limits::check_config(&state.config.limits, &request.configurable)
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<Json<Run>, ApiError> {
    check_limits(&state, &request)?;
    let pending = state.runs.prepare(user, request, Execution::Background).await?;
    // A busy thread is waited for here (bounded), so the answer says whether the run started.
    let job = state.runs.acquire(&pending, Some(&|| true)).await?;
    let run = job.run.clone();
    state.runs.run_in_background(job).await?;
    Ok(Json(run))
}

async fn stream(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<axum::response::Response, ApiError> {
    check_limits(&state, &request)?;
    let slot = state.streams.take(&user)?;
    let pending = state.runs.prepare(user, request, Execution::Streamed).await?;
    // The run's id goes out once its input is stored: a client that saw it may count on that.
    let metadata = json!({ "run_id": pending.job.run.run_id }).to_string();
    let announce = RunEvent::Frame { event: "metadata", data: metadata, id: None };
    let receiver = start_streamed(&state, pending, ApiError::from, false, Some(announce)).await?;
    Ok(sse::response(receiver, state.config.sse_ping_interval, slot))
}

/// Starts a streamed run and returns its events. A free thread is taken before answering, so a
/// refusal is an HTTP error (`refused` words it, and the events a refusal met while waiting).
/// A busy one, unless the client asked for `reject`, is waited for inside the stream. The run
/// lives in its own task: the client hanging up ends only the response, unless it asked for the
/// run to be cancelled then; `delete_thread` takes its thread with it when it ends (a stateless
/// run). Its logs stay inside this request's span (and so carry the Lambda request id).
/// `announce`, when given, is the stream's first event, sent once the run holds its thread.
pub(crate) async fn start_streamed(
    state: &AppState,
    pending: PendingRun,
    refused: fn(RunError) -> ApiError,
    delete_thread: bool,
    announce: Option<RunEvent>,
) -> Result<mpsc::Receiver<RunEvent>, ApiError> {
    let started = match state.runs.acquire(&pending, None).await {
        Ok(job) => Some(job),
        Err(RunError::Store(StoreError::ThreadBusy { .. })) if pending.strategy != MultitaskStrategy::Reject => None,
        Err(error) => return Err(refused(error)),
    };
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let engine = state.runs.clone();
    let store = state.store.clone();
    let run = async move {
        let job = match started {
            Some(job) => job,
            None => {
                // A client that leaves while waiting, and asked for cancel on disconnect, has its
                // run dropped before anything of it is stored.
                let cancel_on_disconnect = pending.on_disconnect == OnDisconnect::Cancel;
                let listening = || !(cancel_on_disconnect && sender.is_closed());
                match engine.acquire(&pending, Some(&listening)).await {
                    Ok(job) => job,
                    Err(error) => {
                        let refused = refused(error);
                        let event =
                            RunEvent::Error { status_code: refused.status().as_u16(), message: refused.to_string() };
                        let _ = sender.send(event).await;
                        return;
                    }
                }
            }
        };
        if let Some(announce) = announce {
            let _ = sender.send(announce).await;
        }
        let ended = engine.execute(job, Some(Listener { events: sender, on_disconnect: pending.on_disconnect })).await;
        if delete_thread {
            if let Err(error) = store.delete_thread(&ended.user_id, ended.thread_id).await {
                tracing::warn!(%error, "a stateless run's thread could not be deleted");
            }
        }
    };
    tokio::spawn(run.in_current_span());
    Ok(receiver)
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path(run_id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let run_id = path_id(&run_id, "run_id")?;
    Ok(Json(state.runs.get(&user, run_id).await?))
}

/// The UIs' thumbs: kept with the run, for its owner only. Answers as OpenGPTs did.
async fn add_feedback(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(input): JsonBody<FeedbackInput>,
) -> Result<Json<Value>, ApiError> {
    let run = state.store.get_run(&user, input.run_id).await?;
    state.store.add_feedback(&run, &input.into_feedback()).await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn list_feedback(
    State(state): State<AppState>,
    User(user): User,
    Path(run_id): Path<String>,
) -> Result<Json<Vec<Feedback>>, ApiError> {
    let run = state.store.get_run(&user, path_id(&run_id, "run_id")?).await?;
    Ok(Json(state.store.feedback(&run).await?))
}

async fn cancel(
    State(state): State<AppState>,
    User(user): User,
    Path(run_id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let run_id = path_id(&run_id, "run_id")?;
    Ok(Json(state.runs.cancel(&user, run_id).await?))
}

/// A message, as `openapi.json` describes it (per type: a tool message needs `tool_call_id`).
fn message_schema() -> Value {
    super::meta::openapi_schema("Message")
}

pub fn input_schema() -> Value {
    json!({
        "title": "RunInput",
        "description": "A list of messages (latest clients), {\"messages\": [...]} (seed clients), or null to continue the thread.",
        "anyOf": [
            {"type": "array", "items": message_schema()},
            {"type": "object", "required": ["messages"], "properties": {"messages": {"type": "array", "items": message_schema()}}},
            {"type": "null"},
        ],
    })
}

pub fn output_schema() -> Value {
    json!({
        "title": "RunOutput",
        "description": "Each `data` event of /runs/stream: the changed messages (list input or null) or {\"messages\": whole thread} (object input).",
        "anyOf": [
            {"type": "array", "items": message_schema()},
            {"type": "object", "properties": {"messages": {"type": "array", "items": message_schema()}}},
        ],
    })
}

/// A tool as the latest UI's picker reads it: `name`, `type` and `description` as constants with
/// defaults, the `config` fields it asks for, and whether it may be added more than once.
fn tool_schema(kind: ToolKind) -> Value {
    let constant = |title: &str, value: &str| json!({"title": title, "type": "string", "const": value, "default": value, "enum": [value]});
    let fields: serde_json::Map<String, Value> = kind
        .config_fields()
        .iter()
        .map(|field| (field.to_string(), json!({"title": field.to_uppercase(), "type": "string"})))
        .collect();
    let mut config = json!({"title": "Config", "type": "object", "properties": fields});
    if !kind.config_fields().is_empty() {
        config["required"] = json!(kind.config_fields());
    }
    json!({
        "title": kind.display_name(),
        "type": "object",
        "properties": {
            "type": constant("Type", kind.tag()),
            "name": constant("Name", kind.display_name()),
            "description": constant("Description", kind.description()),
            "config": config,
            "multi_use": {"title": "Multi Use", "type": "boolean", "const": kind.multi_use(), "default": kind.multi_use()},
        },
    })
}

/// The form as this server offers it: a tool whose key the server lacks says which variable it
/// needs (`x-needs`), so a form can show it unavailable instead of failing on save.
pub(crate) fn offered_form(state: &AppState) -> Value {
    let mut schema = config_schema();
    let tools = &mut schema["properties"]["configurable"]["properties"]["type==agent/tools"]["items"]["anyOf"];
    for tool in tools.as_array_mut().into_iter().flatten() {
        let kind = tool["properties"]["type"]["const"].as_str().and_then(ToolKind::from_tag);
        if let Some(variable) = kind.and_then(|kind| state.tools.missing_variable(kind)) {
            tool["x-needs"] = json!(variable);
        }
    }
    schema
}

/// The assistant form both UIs draw: every field with `type`, `title`, `enum` and `default`, as
/// OpenGPTs describes it, and no `$ref`s to resolve. The latest UI shows the `type==<bot>/...`
/// fields of the chosen bot type; the seed UI shows `agent_type` and `system_message`.
pub fn config_schema() -> Value {
    let model =
        |title: &str| json!({"title": title, "type": "string", "enum": MODEL_NAMES, "default": DEFAULT_MODEL_NAME});
    let instructions = |title: &str| json!({"title": title, "type": "string", "default": DEFAULT_SYSTEM_MESSAGE});
    json!({
        "title": "Configurable",
        "type": "object",
        "properties": {
            "configurable": {
                "title": "Configurable",
                "type": "object",
                "properties": {
                    "type": {
                        "title": "Bot Type",
                        "type": "string",
                        "enum": ["chatbot", "chat_retrieval", "agent"],
                        "default": "agent",
                    },
                    "type==agent/agent_type": model("Agent Type"),
                    "type==agent/system_message": instructions("Instructions"),
                    "type==agent/tools": {
                        "title": "Tools",
                        "type": "array",
                        "default": [],
                        "items": {"anyOf": ToolKind::all_offered().map(tool_schema).collect::<Vec<_>>()},
                    },
                    "type==agent/retrieval_description": {
                        "title": "Retrieval Instructions",
                        "type": "string",
                        "default": RETRIEVAL_DESCRIPTION,
                    },
                    "type==agent/interrupt_before_action": {
                        "title": "Tool Confirmation",
                        "description": "If Yes, you'll be prompted to continue before each tool is executed.\nIf No, tools will be executed automatically by the agent.",
                        "type": "boolean",
                        "default": false,
                    },
                    "type==chatbot/llm_type": model("LLM Type"),
                    "type==chatbot/system_message": instructions("Instructions"),
                    "type==chat_retrieval/llm_type": model("LLM Type"),
                    "type==chat_retrieval/system_message": instructions("Instructions"),
                    "agent_type": model("Agent Type"),
                    "llm_type": model("LLM Type"),
                    "system_message": instructions("System Message"),
                    "tools": {
                        "title": "Tools",
                        "type": "array",
                        "default": [],
                        "items": {"title": "Tools", "type": "string", "enum": ToolKind::seed_names()},
                    },
                },
            },
        },
    })
}
