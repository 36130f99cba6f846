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
use crate::llm::MODEL_NAMES;
use crate::model::Run;
use crate::runs::RunRequest;

/// Enough buffered events that a briefly slow client does not hold the model back.
const STREAM_BUFFER: usize = 256;

/// Every `/runs` route. The stream is among them so that the `runs` function also answers it
/// (buffered) where API Gateway's `/runs/{proxy+}` sends it, such as `/runs/stream/`.
pub fn routes() -> Routes {
    stream_routes()
        .route("/runs", post(create))
        .route("/runs/input_schema", get(|| async { Json(input_schema()) }))
        .route("/runs/output_schema", get(|| async { Json(output_schema()) }))
        .route("/runs/config_schema", get(|| async { Json(config_schema()) }))
        .route("/runs/{run_id}", get(read))
        .route("/runs/{run_id}/cancel", post(cancel))
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
    let job = state.runs.start(user, request).await?;
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
    let job = state.runs.start(user, request).await?;
    let run_id = job.run.run_id;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let engine = state.runs.clone();
    // The run lives in its own task: the client hanging up ends only the response. Its logs stay
    // inside this request's span (and so carry the Lambda request id).
    tokio::spawn(async move { engine.execute(job, Some(sender)).await }.in_current_span());
    Ok(sse::response(run_id, receiver, state.config.sse_ping_interval))
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path(run_id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let run_id = path_id(&run_id, "run_id")?;
    Ok(Json(state.runs.get(&user, run_id).await?))
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

pub fn config_schema() -> Value {
    let model = json!({"enum": MODEL_NAMES});
    let text = json!({"type": "string"});
    json!({
        "title": "Configurable",
        "type": "object",
        "properties": {
            "configurable": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["agent", "chatbot", "chat_retrieval"]},
                    "agent_type": model,
                    "llm_type": model,
                    "system_message": text,
                    "type==agent/agent_type": model,
                    "type==agent/system_message": text,
                    "type==chatbot/llm_type": model,
                    "type==chatbot/system_message": text,
                    "type==chat_retrieval/llm_type": model,
                    "type==chat_retrieval/system_message": text,
                },
            },
        },
    })
}
