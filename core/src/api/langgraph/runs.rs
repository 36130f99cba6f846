//! `/langgraph/threads/{id}/runs` and the stateless `/langgraph/runs`: a graph run is a run of
//! the one engine, streamed in LangGraph's events.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::requests::Parsed;
use super::run_request::{refused, spec, GraphRunBody};
use super::threads::{self, view};
use super::unprocessable;
use super::{detail, json_response, not_found};
use crate::api::auth::User;
use crate::api::runs::refusal_event;
use crate::api::sse::{frame, frame_with_id, stream_body, Framing};
use crate::api::{limits, ApiError, AppState, Routes};
use crate::model::{Message, Run, RunStatus, Timestamp, UserId};
use crate::runs::{GraphRun, Mode, RunError, RunEvent, RunSpec, Started, State as Values, StreamTo};
use crate::store::StoreError;

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs", get(list).post(create))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}", get(read).delete(remove))
        .route("/langgraph/runs", post(create))
}

pub fn stream_routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs/stream", post(stream))
        .route("/langgraph/threads/{thread_id}/runs/wait", post(wait))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/cancel", post(cancel))
        .route("/langgraph/runs/stream", post(stream))
        .route("/langgraph/runs/wait", post(wait))
}

/// How long a stream may be silent before a heartbeat comment.
const HEARTBEAT: Duration = Duration::from_secs(5);
pub(super) const STREAM_BUFFER: usize = 256;

/// The run's stream and record, as `location` and `content-location` name them: relative to the
/// LangGraph API's root (`/langgraph` here, with a stage before it on API Gateway), as the
/// reference server's are to its own, because the SDKs append them to the URL they were given.
fn paths(run: &Run, stateless: bool) -> (String, String) {
    let base = match stateless {
        true => format!("/runs/{}", run.run_id),
        false => format!("/threads/{}/runs/{}", run.thread_id, run.run_id),
    };
    (format!("{base}/stream"), base)
}

/// The SSE response of a graph run: each event one write (with its id when the stream is
/// kept), heartbeats in silences, an `error` event on failure, and no `end` event. The run's
/// `metadata` event comes from the run itself, so a joined stream replays it too.
pub(super) fn graph_stream(
    run: &Run,
    stateless: bool,
    events: mpsc::Receiver<RunEvent>,
    slot: limits::StreamSlot,
) -> Response {
    let (location, content_location) = paths(run, stateless);
    let framing = Framing {
        ping: HEARTBEAT,
        idle: || Bytes::from_static(b": heartbeat\r\n\r\n"),
        event: |event| match event {
            RunEvent::Frame { event, data, id: Some(id) } => frame_with_id(event, &data, &id),
            RunEvent::Frame { event, data, id: None } => frame(event, &data),
            // Events already framed: a joined stream's replay.
            RunEvent::Data(frames) => Bytes::from(frames),
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

/// A run request as the run service takes it, for the caller: on the thread its path names, or
/// (on the stateless routes, `/runs/...`) on a thread of its own.
struct Planned {
    user: UserId,
    thread_id: Option<Uuid>,
    spec: RunSpec,
}

impl FromRequest<AppState> for Planned {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let User(user) = User::from_request_parts(&mut parts, state).await?;
        let thread = Option::<Path<String>>::from_request_parts(&mut parts, state).await.map_err(|_| not_found())?;
        let thread_id = thread.map(|Path(thread_id)| threads::thread_id(&thread_id)).transpose()?;
        let Parsed(request) = Parsed::<GraphRunBody>::from_request(Request::from_parts(parts, body), state).await?;
        let spec = spec(state, &user, thread_id, request).await?;
        Ok(Planned { user, thread_id, spec })
    }
}

async fn stream(
    State(state): State<AppState>,
    Planned { user, thread_id, spec }: Planned,
) -> Result<Response, ApiError> {
    let slot = state.streams.take(&user)?;
    let to = StreamTo { announce: None, refusal: |error| refusal_event(refused(error)) };
    let started = state.runs.start(user, spec, Mode::Stream(to)).await.map_err(refused)?;
    let Started::Streaming { run, events } = started else {
        return Err(ApiError::Internal("a streamed run was not started as a stream".into()));
    };
    Ok(graph_stream(&run, thread_id.is_none(), events, slot))
}

/// Runs to its end apart from the request (a client that leaves does not stop it), then
/// answers the thread's values, or the run's error.
async fn wait(State(state): State<AppState>, Planned { user, spec, .. }: Planned) -> Result<Response, ApiError> {
    let Started::Finished { run, messages } = state.runs.start(user, spec, Mode::Wait).await.map_err(refused)? else {
        return Err(ApiError::Internal("a waited run was not run to its end".into()));
    };
    let mut response = final_values(&run, messages.as_deref());
    // A stateless run's too name its thread, as the reference's do (077).
    let (_, content_location) = paths(&run, false);
    for (name, path) in
        [(header::LOCATION, format!("{content_location}/join")), (header::CONTENT_LOCATION, content_location)]
    {
        if let Ok(value) = HeaderValue::from_str(&path) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// What `wait` and `join` answer once a run has ended: the thread's values (its `messages`, read
/// when the run ended), or the run's error.
pub(super) fn final_values(run: &Run, messages: Option<&[Message]>) -> Response {
    match (run.status, messages) {
        (RunStatus::Error, _) | (_, None) => {
            let message = run.error.clone().unwrap_or_default();
            json_response(&json!({"__error__": {"error": "RunError", "message": message}}))
        }
        (_, Some(messages)) => json_response(&Values(messages, &[] as &[Message])),
    }
}

async fn create(State(state): State<AppState>, Planned { user, spec, .. }: Planned) -> Result<Response, ApiError> {
    let Started::Background(run) = state.runs.start(user, spec, Mode::Background).await.map_err(refused)? else {
        return Err(ApiError::Internal("a background run was not started in the background".into()));
    };
    let mut response = json_response(&GraphRun(&run));
    let (_, content_location) = paths(&run, false);
    if let Ok(value) = HeaderValue::from_str(&content_location) {
        response.headers_mut().insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// The run, if it is on the thread named.
pub(super) async fn run_on(state: &AppState, user: &UserId, thread_id: &str, run_id: &str) -> Result<Run, ApiError> {
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
    Ok(json_response(&GraphRun(&run_on(&state, &user, &thread_id, &run_id).await?)))
}

/// Deletes a run that has ended; one still going is to be cancelled first.
async fn remove(
    State(state): State<AppState>,
    User(user): User,
    Path((thread_id, run_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let run = run_on(&state, &user, &thread_id, &run_id).await?;
    if !run.status.is_finished() {
        return Err(detail(StatusCode::CONFLICT, "The run has not ended: cancel it first, then delete it"));
    }
    state.store.delete_run(&user, run.run_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
    let runs = state.runs.list(&user, thread_id).await.map_err(|error| match error {
        RunError::Store(StoreError::NotFound(_)) => threads::missing(thread_id),
        other => other.into(),
    })?;
    let shown: Vec<GraphRun<'_>> =
        runs.iter().skip(paging.offset.unwrap_or(0)).take(paging.limit.unwrap_or(10)).map(GraphRun).collect();
    Ok(json_response(&shown))
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
    Ok(json_response(&json!({})))
}
