//! Waiting for a run from any process: `join` answers once it has ended, and a joined stream
//! replays and tails a resumable run's kept events.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::runs::{final_values, graph_stream, run_on, STREAM_BUFFER};
use super::unprocessable;
use crate::api::auth::User;
use crate::api::sse::frame_with_id;
use crate::api::{ApiError, AppState, Routes};
use crate::model::{Run, RunStatus, Timestamp, UserId};
use crate::runs::{event_position, RunEvent, StreamMode, BATCH_EVERY};

/// Joining a run: its end, or its stream.
pub(super) fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/join", get(join))
        .route("/langgraph/threads/{thread_id}/runs/{run_id}/stream", get(join_stream))
}

/// Polls the run's record (which every process can read) until it has ended.
pub(super) async fn ended(state: &AppState, user: &UserId, mut run: Run) -> Result<Run, ApiError> {
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
    let messages = match run.status {
        RunStatus::Error => None,
        _ => Some(super::threads::view(&state, &user, run.thread_id).await?.messages),
    };
    Ok(final_values(&run, messages.as_deref()))
}

#[derive(serde::Deserialize)]
pub(super) struct JoinParams {
    stream_mode: Option<String>,
}

/// Joins a run's stream, from any process: a resumable run's events are kept in the store.
/// With `Last-Event-ID` the events after it are replayed (`0`: all of them), then the run's
/// live events follow; without, only the events from now on. `stream_mode` keeps the events
/// of one mode. A run that is not resumable has nothing kept: its join gets its live events in
/// the process that executes it (the local server, one Lambda instance), and elsewhere ends
/// with it, with no events.
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
    // A run whose events are not kept can be watched in the process that executes it.
    let watching = if resumable { None } else { state.runs.watch(run.run_id) };
    let tail = async move {
        if let Some(mut events) = watching {
            loop {
                match events.recv().await {
                    Ok(RunEvent::Frame { event, data, id }) if wanted.is_none_or(|wanted| wanted.contains(&event)) => {
                        if sender.send(RunEvent::Frame { event, data, id }).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
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
                // What one read brings goes out in one write: a replay of thousands of events
                // is a few large writes, not thousands of small ones.
                let mut frames = Vec::new();
                for kept in events {
                    let name = graph_event_name(&kept.event);
                    let later = skip_through.is_none_or(|through| event_position(&kept.id) > through);
                    let shown = wanted.is_none_or(|wanted| wanted.contains(&name));
                    if later && shown {
                        frames.extend_from_slice(&frame_with_id(name, &kept.data, &kept.id));
                    }
                }
                let frames = String::from_utf8(frames).unwrap_or_default();
                if !frames.is_empty() && sender.send(RunEvent::Data(frames)).await.is_err() {
                    return;
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
