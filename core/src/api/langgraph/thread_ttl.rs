//! Threads that end: the `ttl` of a thread's create and patch, what `?include=ttl` shows, and
//! `POST /threads/prune`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{detail, json_response, time, unprocessable, Body};
use crate::api::auth::User;
use crate::api::{ApiError, AppState};
use crate::model::{Thread, ThreadTtl, Timestamp, TtlStrategy};
use crate::schedules::retention;
use crate::store::StoreError;

/// The most threads one prune takes: the reference's batch.
pub(super) const MAX_PRUNE: usize = 100;

/// A `ttl` as the SDKs send it: `{"ttl": minutes, "strategy": "delete" | "keep_latest"}`, or
/// minutes alone. Absent or null: none given.
pub(super) fn read_ttl(body: &Body, now: Timestamp) -> Result<Option<ThreadTtl>, ApiError> {
    let (minutes, strategy) = match body.raw("ttl") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(ttl)) => (ttl.get("ttl"), ttl.get("strategy")),
        Some(minutes) => (Some(minutes), None),
    };
    let minutes = minutes
        .and_then(Value::as_f64)
        .filter(|minutes| *minutes > 0.0)
        .ok_or_else(|| unprocessable("'ttl.ttl' is the thread's lifetime in minutes: a number over 0"))?;
    let strategy = match strategy {
        None | Some(Value::Null) => TtlStrategy::Delete,
        Some(name) => name.as_str().and_then(TtlStrategy::parse).ok_or_else(|| unknown_strategy(name))?,
    };
    Ok(Some(ThreadTtl::starting(strategy, minutes, now)))
}

/// The reference's 422 for a strategy it does not know.
fn unknown_strategy(name: impl std::fmt::Display) -> ApiError {
    unprocessable(format!("Invalid strategy: {name}. Expected 'delete' or 'keep_latest'."))
}

/// What `?include=ttl` adds to a thread: its `ttl`, or null when it has none.
pub(super) fn shown(thread: &Thread) -> Value {
    match thread.ttl {
        Some(ttl) => json!({"strategy": ttl.strategy.name(), "ttl_minutes": ttl.minutes,
            "expires_at": time(ttl.expires_at)}),
        None => Value::Null,
    }
}

/// `POST /threads/prune {thread_ids, strategy}`: each of the caller's threads that no run holds
/// is deleted, or keeps only its latest state; `pruned_count` counts them.
pub(super) async fn prune(State(state): State<AppState>, User(user): User, body: Body) -> Result<Response, ApiError> {
    let ids = match body.raw("thread_ids") {
        Some(Value::Array(ids)) => ids,
        _ => return Err(unprocessable("'thread_ids' is a required list of thread IDs")),
    };
    if ids.len() > MAX_PRUNE {
        return Err(unprocessable(format!("At most {MAX_PRUNE} threads may be pruned at once, not {}", ids.len())));
    }
    let ids: Vec<Uuid> = ids
        .iter()
        .map(|id| id.as_str().and_then(|id| Uuid::parse_str(id).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| unprocessable("Invalid thread ID: must be a UUID"))?;
    let strategy = match body.string("strategy")? {
        None => TtlStrategy::Delete,
        Some(name) => TtlStrategy::parse(&name).ok_or_else(|| unknown_strategy(name))?,
    };
    let mut pruned = 0;
    for thread_id in ids {
        let thread = match state.store.get_thread(&user, thread_id).await {
            Ok(thread) => thread,
            // Another user's thread is as absent as one that never was: skipped, as the reference does.
            Err(StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        if retention::prune(state.store.as_ref(), state.schedules.as_ref(), &thread, strategy).await? {
            pruned += 1;
        }
    }
    Ok(json_response(&json!({ "pruned_count": pruned })))
}

/// Which fields a `GET /threads/{id}` adds: only `ttl` exists.
pub(super) fn includes_ttl(query: Option<&str>) -> Result<bool, ApiError> {
    let mut ttl = false;
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "include" {
            match value {
                "ttl" => ttl = true,
                other => {
                    return Err(detail(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("Invalid include '{other}'. Supported values: ttl"),
                    ))
                }
            }
        }
    }
    Ok(ttl)
}
