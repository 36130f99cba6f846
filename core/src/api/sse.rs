//! Server-Sent Events exactly as OpenGPTs sends them: CRLF line ends, one event per write,
//! `metadata` first, `end` last (with no data line), and `: ping` comments in long silences.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::runs::RunEvent;

pub(crate) fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\r\ndata: {data}\r\n\r\n"))
}

/// An event with an `id` line after its data, as the LangGraph API sends kept events.
pub(crate) fn frame_with_id(event: &str, data: &str, id: &str) -> Bytes {
    Bytes::from(format!("event: {event}\r\ndata: {data}\r\nid: {id}\r\n\r\n"))
}

pub(crate) fn ping() -> Bytes {
    Bytes::from(format!(": ping - {}\r\n\r\n", chrono::Utc::now().naive_utc()))
}

const END: &[u8] = b"event: end\r\n\r\n";

pub fn response(
    events: mpsc::Receiver<RunEvent>,
    ping_interval: Duration,
    slot: super::limits::StreamSlot,
) -> Response {
    let framing = Framing {
        ping: ping_interval,
        idle: ping,
        event: |event| match event {
            RunEvent::Data(data) => frame("data", &data),
            RunEvent::Frame { event, data, .. } => frame(event, &data),
            RunEvent::Error { status_code, message } => {
                frame("error", &serde_json::json!({ "status_code": status_code, "message": message }).to_string())
            }
        },
        end: Some(Bytes::from_static(END)),
    };
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONNECTION, HeaderValue::from_static("keep-alive")),
        (header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
        (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8")),
    ];
    (headers, stream_body(events, framing, slot)).into_response()
}

/// How one API writes its streams.
pub(crate) struct Framing {
    /// How long a silence lasts before `idle` is sent.
    pub ping: Duration,
    pub idle: fn() -> Bytes,
    pub event: fn(RunEvent) -> Bytes,
    /// Sent when the run's events end.
    pub end: Option<Bytes>,
}

/// A stream's body: each event one write, the slot freed when the response ends or its client
/// leaves.
pub(crate) fn stream_body(events: mpsc::Receiver<RunEvent>, framing: Framing, slot: super::limits::StreamSlot) -> Body {
    let Framing { ping, idle, event, end } = framing;
    let frames = futures::stream::unfold(Some((events, slot, end)), move |open| async move {
        let (mut events, slot, end) = open?;
        let next = match tokio::time::timeout(ping, events.recv()).await {
            Err(_) => idle(),
            Ok(Some(next)) => event(next),
            Ok(None) => return end.map(|end| (end, None)),
        };
        Some((next, Some((events, slot, end))))
    });
    Body::from_stream(frames.map(Ok::<_, Infallible>))
}

use axum::http::HeaderValue;
use futures::StreamExt;
