//! The LangGraph Platform API ("Agent Protocol") under `/langgraph`, over the same store and run
//! engine as the OpenGPTs API: what `langgraph-sdk`, `useStream` and agent-chat-ui speak.
//!
//! Our three bots are its graphs, with OpenGPTs' node names. An assistant is a graph with a
//! configuration; its graph is the bot type (`configurable.type`). A thread's state is
//! `{"messages": [...]}`, and a checkpoint is the thread as it stood after one of its messages.

mod assistants;
mod body;
mod branches;
pub mod crons;
#[cfg(feature = "runs")]
mod events;
#[cfg(feature = "runs")]
mod joins;
mod listing;
mod requests;
mod review;
#[cfg(feature = "runs")]
mod run_request;
#[cfg(feature = "runs")]
mod runs;
mod store;
mod thread_ttl;
mod threads;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Map, Value};

use super::{json_response, ApiError, Routes};
use crate::model::Timestamp;

use body::Body;

/// Where the API lives on the server.
pub const PREFIX: &str = "/langgraph";

/// Every route of the LangGraph API.
#[cfg(feature = "runs")]
pub fn routes() -> Routes {
    service_routes().merge(thread_routes()).merge(run_routes()).merge(stream_routes())
}

/// Health, server information and assistants: served with the OpenGPTs assistants.
pub fn service_routes() -> Routes {
    Routes::default()
        .route("/langgraph/ok", get(|| async { json_response(&json!({"ok": true, "services": {}})) }))
        .route("/langgraph/info", get(info))
        .merge(assistants::routes())
}

/// Threads, their state and history, and the store (long-term memory).
pub fn thread_routes() -> Routes {
    threads::routes().merge(store::routes())
}

/// The run routes that answer at once: create, read, list.
#[cfg(feature = "runs")]
pub fn run_routes() -> Routes {
    runs::routes().merge(crons::routes()).merge(events::command_routes())
}

/// The run routes that hold their connection open until a run ends or moves (stream, wait,
/// join, cancel with `wait`): on Lambda, served with response streaming.
#[cfg(feature = "runs")]
pub fn stream_routes() -> Routes {
    runs::stream_routes().merge(joins::routes()).merge(events::stream_routes())
}

async fn info() -> Response {
    json_response(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "langgraph_py_version": null,
        "flags": {"assistants": true, "crons": true, "langsmith": false, "langsmith_tracing_replicas": false},
        "host": {"kind": "opengpts-serverless", "project_id": null, "host_revision_id": null, "revision_id": null,
            "tenant_id": null},
    }))
}

/// A graph of the LangGraph API is one of our bots.
pub use crate::runs::Bot as Graph;

pub(crate) fn graph_names() -> String {
    Graph::ALL.iter().map(|graph| graph.id()).collect::<Vec<_>>().join(", ")
}

/// A `configurable` (or `context`) with each of OpenGPTs' settings also under the graph's own
/// `type==<graph>/` key, which is where the bots read them: LangGraph clients write them plain.
pub(crate) fn bot_keys(graph: Graph, mut configurable: Map<String, Value>) -> Map<String, Value> {
    let plain: Vec<(String, Value)> = configurable
        .iter()
        .filter(|(key, _)| !key.contains("==") && key.as_str() != "type")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for (key, value) in plain {
        // Plain `tools` are the seed's display names; a list of tool objects is the latest shape.
        let objects = value.as_array().is_some_and(|items| items.iter().all(Value::is_object));
        if key == "tools" && !objects {
            continue;
        }
        configurable.entry(format!("type=={}/{key}", graph.id())).or_insert(value);
    }
    configurable
}

/// An error with the reference server's status and `detail` text.
pub(crate) fn detail(status: StatusCode, text: impl Into<String>) -> ApiError {
    ApiError::Detail { status, detail: text.into() }
}

/// A request the reference's schema validation refuses: 422 with the reason.
pub(crate) fn unprocessable(text: impl Into<String>) -> ApiError {
    detail(StatusCode::UNPROCESSABLE_ENTITY, text)
}

pub(crate) fn not_found() -> ApiError {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

/// Time as the reference server writes it: microseconds and `+00:00`.
pub(crate) fn time(at: Timestamp) -> String {
    at.to_offset_rfc3339()
}

/// A page of a search, with the reference's pagination headers: `x-pagination-total` counts
/// what was skipped and returned, plus one when a next page exists, which `x-pagination-next`
/// then starts.
pub(crate) fn page<T: serde::Serialize>(mut items: Vec<T>, offset: usize, limit: usize) -> Response {
    let more = items.len() > limit;
    items.truncate(limit);
    let returned = items.len();
    let mut response = json_response(&items);
    let headers = response.headers_mut();
    let total = offset + returned + usize::from(more);
    headers.insert("x-pagination-total", HeaderValue::from(total));
    if more {
        headers.insert("x-pagination-next", HeaderValue::from(offset + limit));
    }
    response
}

/// Whether `metadata` holds every key of `filter` with the same value.
pub(crate) fn matches(metadata: &Map<String, Value>, filter: &Map<String, Value>) -> bool {
    filter.iter().all(|(key, value)| metadata.get(key) == Some(value))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
