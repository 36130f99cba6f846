//! LangGraph's thread-centric event protocol: commands in (`POST /threads/{id}/commands`), and a
//! thread's events out, on channels, over SSE (`POST /threads/{id}/stream/events`) or a WebSocket
//! on the same path. The events are the thread's log (`runs::ThreadFeed`): every run of the thread
//! writes to it, whichever protocol started it.

mod commands;
mod filter;
#[cfg(feature = "websocket")]
mod socket;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use super::{detail, unprocessable};
use crate::api::auth::User;
use crate::api::limits::StreamSlot;
use crate::api::{json_response, ApiError, AppState, Routes};
use crate::model::{ThreadEvent, UserId};
use crate::runs::ThreadFeed;
use commands::{Reply, Session};
pub(super) use filter::EventFilter;

/// How often an open stream says it is alive, events or not (the reference's interval).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The largest `stream/events` request: a filter, nothing more.
const STREAM_REQUEST_BYTES: usize = 64 * 1024;

/// The commands answer at once; the event stream holds its connection for as long as its client.
pub(super) fn command_routes() -> Routes {
    Routes::default().route("/langgraph/threads/{thread_id}/commands", post(command))
}

pub(super) fn stream_routes() -> Routes {
    #[cfg(feature = "websocket")]
    let events = post(stream_events).get(socket::upgrade);
    #[cfg(not(feature = "websocket"))]
    let events = post(stream_events).get(no_websocket);
    Routes::default().route("/langgraph/threads/{thread_id}/stream/events", events)
}

/// A Lambda function answers one request at a time and cannot hold a socket: the same events
/// come over SSE (docs/langgraph.md says why there is no WebSocket API on AWS).
async fn no_websocket() -> ApiError {
    detail(
        StatusCode::NOT_IMPLEMENTED,
        "This deployment streams a thread's events over SSE only, not WebSocket: POST this path with the same \
         filter as its body (langgraph-sdk: threads.stream(..., transport=\"sse\"), the default; \
         @langchain/langgraph-sdk: the default SSE transport)",
    )
}

fn thread_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| unprocessable(format!("'{raw}' is not a valid UUID ('thread_id')")))
}

/// The body as JSON, or the reference's 400.
async fn json_body(request: Request, limit: usize) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|_| detail(StatusCode::BAD_REQUEST, "Invalid JSON body"))
}

/// Over HTTP a command has no session: a subscription is accepted and is nothing (the stream's
/// body is the subscription there).
struct NoSession;

impl Session for NoSession {
    fn subscribe(&mut self, _filter: EventFilter) -> Result<Uuid, Reply> {
        Ok(Uuid::new_v4())
    }

    fn unsubscribe(&mut self, _id: &str) -> bool {
        false
    }
}

async fn command(
    State(state): State<AppState>,
    User(user): User,
    Path(raw_thread_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let thread_id = thread_id(&raw_thread_id)?;
    let raw = json_body(request, state.config.max_body_bytes).await?;
    let reply = match commands::read(raw) {
        Ok(command) => commands::answer(&state, &user, thread_id, command, &mut NoSession).await,
        Err(Reply(refusal)) => return Ok((StatusCode::BAD_REQUEST, json_response(&refusal)).into_response()),
    };
    Ok(json_response(&reply.0))
}

/// `POST /threads/{id}/stream/events`: the thread's events that pass the filter, after `since`,
/// then live, until the client leaves. A thread that is not (yet) the user's sends heartbeats.
async fn stream_events(
    State(state): State<AppState>,
    User(user): User,
    Path(raw_thread_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let thread_id = thread_id(&raw_thread_id)?;
    let raw = json_body(request, STREAM_REQUEST_BYTES).await?;
    let (filter, since) = EventFilter::from_request(&raw).map_err(|reason| detail(StatusCode::BAD_REQUEST, reason))?;
    let slot = state.streams.take(&user)?;
    let feed = ThreadFeed::new(state.store.clone(), state.runs.thread_logs(), user.clone(), thread_id, since);
    let stream = EventStream {
        feed,
        filter,
        heartbeat: heartbeat(),
        idle_end: state.config.event_stream_idle,
        last_sent: Instant::now(),
        state,
        user,
        thread_id,
        _slot: slot,
    };
    let frames = futures::stream::unfold(stream, |mut stream| async move {
        let frame = stream.next_frame().await?;
        Some((frame, stream))
    });
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::CONNECTION, HeaderValue::from_static("keep-alive")),
        (header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
        (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8")),
    ];
    Ok((headers, axum::body::Body::from_stream(frames.map(Ok::<_, Infallible>))).into_response())
}

fn heartbeat() -> tokio::time::Interval {
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat
}

/// The most bytes of events one write takes.
const WRITE_BYTES: usize = 64 * 1024;

/// `event`, framed as the reference frames it.
fn write_frame(frames: &mut Vec<u8>, event: &ThreadEvent) {
    use std::io::Write;
    let _ = write!(frames, "event: {}\r\ndata: {}\r\nid: {}\r\n\r\n", event.method, event.envelope, event.seq);
}

/// One open `stream/events` response.
struct EventStream {
    feed: ThreadFeed,
    filter: EventFilter,
    heartbeat: tokio::time::Interval,
    idle_end: Option<Duration>,
    last_sent: Instant,
    state: AppState,
    user: UserId,
    thread_id: Uuid,
    _slot: StreamSlot,
}

impl EventStream {
    /// The next event that passes the filter, or a heartbeat; `None` ends the response.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                _ = self.heartbeat.tick() => {
                    if self.idle().await {
                        return None;
                    }
                    return Some(Bytes::from_static(b": heartbeat\r\n\r\n"));
                }
                event = self.feed.next() => match event {
                    Ok(event) => {
                        // With it, the events already at hand, in one write (a replay, a fast model).
                        let mut frames = Vec::new();
                        let mut next = Some(event);
                        while let Some(event) = next.take() {
                            if self.filter.passes(&event) {
                                write_frame(&mut frames, &event);
                            }
                            if frames.len() < WRITE_BYTES {
                                match self.feed.next_at_hand().await {
                                    Ok(at_hand) => next = at_hand,
                                    Err(error) => tracing::warn!(%error, "a thread's event stream could not read the store"),
                                }
                            }
                        }
                        if !frames.is_empty() {
                            self.last_sent = Instant::now();
                            return Some(Bytes::from(frames));
                        }
                    }
                    Err(error) => {
                        // The stream ends; its client reconnects with the last `seq` it got.
                        tracing::warn!(%error, "a thread's event stream could not read the store");
                        return None;
                    }
                },
            }
        }
    }

    /// Whether the stream has been silent for its idle time with no run going on the thread.
    async fn idle(&self) -> bool {
        if self.idle_end.is_none_or(|idle| self.last_sent.elapsed() < idle) {
            return false;
        }
        match self.state.store.thread_view(&self.user, self.thread_id).await {
            Ok(view) => !view.running,
            Err(_) => true,
        }
    }
}
