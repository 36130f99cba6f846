//! `/runs`: start runs in the background or as a stream, read and cancel them, and describe them.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use super::auth::User;
use super::extract::{path_id, JsonBody};
use super::schemas::{input_schema, offered_form, output_schema};
use super::{limits, sse, ApiError, AppState, Routes};
use crate::model::{Feedback, FeedbackInput, Run};
use crate::runs::{AssistantChoice, Mode, RunError, RunEvent, RunRequest, RunSpec, Started, StreamTo, ThreadTarget};

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

/// The OpenGPTs body as the run service takes it: a run on one of the user's threads.
fn spec(request: RunRequest) -> RunSpec {
    RunSpec {
        thread: ThreadTarget::Existing { thread_id: request.thread_id, create: false },
        assistant: AssistantChoice::ById(request.assistant_id),
        input: request.input,
        configurable: request.configurable,
        recursion_limit: request.recursion_limit,
        checkpoint: None,
        resume: None,
        strategy: request.multitask_strategy,
        on_disconnect: request.on_disconnect,
        start_after: request.start_after,
        webhook: request.webhook,
        graph: None,
    }
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<Json<Run>, ApiError> {
    check_limits(&state, &request)?;
    match state.runs.start(user, spec(request), Mode::Background).await? {
        Started::Background(run) => Ok(Json(run)),
        _ => Err(ApiError::Internal("a background run was not started in the background".into())),
    }
}

async fn stream(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<axum::response::Response, ApiError> {
    check_limits(&state, &request)?;
    let slot = state.streams.take(&user)?;
    let refusal = |error: RunError| refusal_event(ApiError::from(error));
    // The run's id goes out once its input is stored: a client that saw it may count on that.
    let announce = |run: &Run| {
        let metadata = json!({ "run_id": run.run_id }).to_string();
        RunEvent::Frame { event: "metadata", data: metadata, id: None }
    };
    let to = StreamTo { announce: Some(announce), refusal };
    let Started::Streaming { events, .. } = state.runs.start(user, spec(request), Mode::Stream(to)).await? else {
        return Err(ApiError::Internal("a streamed run was not started as a stream".into()));
    };
    Ok(sse::response(events, state.config.sse_ping_interval, slot))
}

/// A run refused once its stream had begun: an `error` event with the status it would have had.
pub(crate) fn refusal_event(error: ApiError) -> RunEvent {
    RunEvent::Error { status_code: error.status().as_u16(), message: error.to_string() }
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
