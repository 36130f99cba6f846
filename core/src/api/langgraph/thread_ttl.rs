//! Threads that end: the `ttl` of a thread's create and patch, what `?include=ttl` shows, and
//! `POST /threads/prune`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::requests::{Parsed, Prune};
use super::{detail, json_response, time};
use crate::api::auth::User;
use crate::api::{ApiError, AppState};
use crate::model::Thread;
use crate::schedules::retention;
use crate::store::StoreError;

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
pub(super) async fn prune(
    State(state): State<AppState>,
    User(user): User,
    Parsed(Prune { thread_ids, strategy }): Parsed<Prune>,
) -> Result<Response, ApiError> {
    let mut pruned = 0;
    for thread_id in thread_ids {
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
