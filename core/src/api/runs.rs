//! `/runs`: start runs in the background or as a stream, read and cancel them, and describe them.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::auth::User;
use super::extract::{path_id, JsonBody};
use super::schemas::{input_schema, offered_form, output_schema};
use super::{limits, sse, ApiError, AppState, Routes};
use crate::model::{Feedback, FeedbackInput, Run};
use crate::runs::{Execution, Listener, MultitaskStrategy, OnDisconnect, PendingRun, RunError, RunEvent, RunRequest};
use crate::store::StoreError;

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
