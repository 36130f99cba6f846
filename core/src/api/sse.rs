//! Server-Sent Events exactly as OpenGPTs sends them: CRLF line ends, one event per write,
//! `metadata` first, `end` last (with no data line), and `: ping` comments in long silences.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::runs::RunEvent;

fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\r\ndata: {data}\r\n\r\n"))
}

fn ping() -> Bytes {
    Bytes::from(format!(": ping - {}\r\n\r\n", chrono::Utc::now().naive_utc()))
}

const END: &[u8] = b"event: end\r\n\r\n";

pub fn response(
    run_id: Uuid,
    events: mpsc::Receiver<RunEvent>,
    ping_interval: Duration,
    slot: super::limits::StreamSlot,
) -> Response {
    let metadata = frame("metadata", &serde_json::json!({ "run_id": run_id }).to_string());
    // The slot goes with the body: it is freed when the response ends or its client leaves.
    let frames = futures::stream::unfold(Some((events, slot)), move |open| async move {
        let (mut events, slot) = open?;
        let next = match tokio::time::timeout(ping_interval, events.recv()).await {
            Err(_) => ping(),
            Ok(Some(RunEvent::Data(data))) => frame("data", &data),
            Ok(Some(RunEvent::Error { status_code, message })) => {
                frame("error", &serde_json::json!({ "status_code": status_code, "message": message }).to_string())
            }
            Ok(None) => return Some((Bytes::from_static(END), None)),
        };
        Some((next, Some((events, slot))))
    });
    let body = futures::stream::once(async move { metadata }).chain(frames).map(Ok::<_, Infallible>);
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONNECTION, "keep-alive"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

use futures::StreamExt;
