//! `/langgraph/threads`: threads, their state and its history. A thread made here is an
//! OpenGPTs thread too, with the same messages.
//!
//! A checkpoint is the thread as it stood after one of its messages: the state after `k`
//! messages has an id derived from the thread, `k` and the `k`-th message's id, and its parent
//! is the state after `k - 1`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::requests::{
    HistoryPage, IfExists, Page, Parsed, StateUpdate, ThreadCreate, ThreadFilter, ThreadPatch, ThreadSearch,
};
use super::{detail, json_response, matches, no_content, page, thread_ttl, time};
use crate::api::auth::User;
use crate::api::{limits, ApiError, AppState, Routes};
use crate::model::{Message, RunStatus, Thread, Timestamp, UserId};
use crate::runs::State as Values;
pub(crate) use crate::runs::{checkpoint_id, new_thread, next_nodes};
use crate::store::{Fork, StoreError, ThreadView};

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads", post(create))
        .route("/langgraph/threads/search", post(search))
        .route("/langgraph/threads/count", post(count))
        .route("/langgraph/threads/prune", post(super::thread_ttl::prune))
        .route("/langgraph/threads/{thread_id}", get(read).patch(update).delete(remove))
        .route("/langgraph/threads/{thread_id}/copy", post(copy))
        .route("/langgraph/threads/{thread_id}/state", get(current_state).post(update_state))
        .route("/langgraph/threads/{thread_id}/state/{checkpoint_id}", get(state_at))
        .route("/langgraph/threads/{thread_id}/history", get(history).post(history_with_body))
}

/// 404 with the reference's text.
pub(crate) fn missing(thread_id: Uuid) -> ApiError {
    detail(StatusCode::NOT_FOUND, format!("Thread with ID {thread_id} not found"))
}

/// The thread as `user` may see it, or the reference's 404.
pub(crate) async fn view(state: &AppState, user: &UserId, thread_id: Uuid) -> Result<ThreadView, ApiError> {
    state.store.thread_view(user, thread_id).await.map_err(|error| match error {
        StoreError::NotFound(_) => missing(thread_id),
        other => other.into(),
    })
}

pub(crate) fn thread_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| detail(StatusCode::NOT_FOUND, format!("Thread with ID {raw} not found")))
}

pub(crate) fn status(view: &ThreadView) -> &'static str {
    if view.running {
        "busy"
    } else if view.last_outcome == Some(RunStatus::Error) {
        "error"
    } else if !next_nodes(view).is_empty() {
        "interrupted"
    } else {
        "idle"
    }
}

/// The head checkpoint: `{thread_id, checkpoint_ns, checkpoint_id}`.
pub(crate) fn head(view: &ThreadView) -> Value {
    let id = checkpoint_id(view.thread.thread_id, &view.messages, view.messages.len());
    json!({"thread_id": view.thread.thread_id, "checkpoint_ns": "", "checkpoint_id": id})
}

/// A thread as the LangGraph API shows it.
pub(crate) struct GraphThread<'a> {
    pub view: &'a ThreadView,
    pub values: bool,
    /// The review its agent waits for, if it waits for one (see `review`).
    pub review: Option<Value>,
}

impl Serialize for GraphThread<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let view = self.view;
        let thread = &view.thread;
        let created_at = time(thread.created_at.unwrap_or(thread.updated_at));
        let ran = !view.messages.is_empty();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("thread_id", &thread.thread_id)?;
        map.serialize_entry("created_at", &created_at)?;
        map.serialize_entry("updated_at", &time(thread.updated_at))?;
        map.serialize_entry("state_updated_at", &time(thread.updated_at))?;
        map.serialize_entry("metadata", &thread.metadata.clone().unwrap_or_default())?;
        map.serialize_entry("status", status(view))?;
        map.serialize_entry("config", &if ran { json!({"configurable": {}}) } else { json!({}) })?;
        if self.values {
            map.serialize_entry("values", &ran.then(|| Values(&view.messages, &[])))?;
        }
        if ran {
            let error = (view.last_outcome == Some(RunStatus::Error))
                .then(|| json!({"error": "RunError", "message": "The last run on this thread failed"}));
            map.serialize_entry("error", &error)?;
            let interrupts = match &self.review {
                Some(review) => {
                    let head = checkpoint_id(thread.thread_id, &view.messages, view.messages.len());
                    super::review::thread_interrupts(action_task(head), review)
                }
                None => json!({}),
            };
            map.serialize_entry("interrupts", &interrupts)?;
        }
        map.end()
    }
}

/// The task that runs an agent's pending calls, at the checkpoint where they wait.
fn action_task(checkpoint: Uuid) -> Uuid {
    Uuid::new_v5(&checkpoint, b"action")
}

async fn shown(state: &AppState, user: &UserId, view: &ThreadView) -> Result<Response, ApiError> {
    let review = super::review::pending(state, user, view).await?;
    Ok(json_response(&GraphThread { view, values: true, review }))
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<ThreadCreate>,
) -> Result<Response, ApiError> {
    let thread_id = request.thread_id.unwrap_or_else(Uuid::now_v7);
    match state.store.thread_view(&user, thread_id).await {
        Ok(existing) if request.if_exists == IfExists::DoNothing => return shown(&state, &user, &existing).await,
        Ok(_) => return Err(exists(thread_id)),
        Err(StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let mut thread = new_thread(&state.config, user, thread_id, request.metadata);
    if let Some(ttl) = request.ttl {
        thread.ttl = Some(ttl.starting(Timestamp::now()));
    }
    // Another user's id is refused by the store, as if it existed.
    state.store.put_thread(&thread).await.map_err(|error| match error {
        StoreError::NotFound(_) => exists(thread_id),
        other => other.into(),
    })?;
    shown(&state, &thread.user_id, &view(&state, &thread.user_id, thread_id).await?).await
}

fn exists(thread_id: Uuid) -> ApiError {
    detail(StatusCode::CONFLICT, format!("Thread with ID {thread_id} already exists"))
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let include_ttl = thread_ttl::includes_ttl(query.as_deref())?;
    let view = view(&state, &user, thread_id(&id)?).await?;
    if !include_ttl {
        return shown(&state, &user, &view).await;
    }
    let review = super::review::pending(&state, &user, &view).await?;
    let mut thread = serde_json::to_value(GraphThread { view: &view, values: true, review }).unwrap_or_default();
    thread["ttl"] = thread_ttl::shown(&view.thread);
    Ok(json_response(&thread))
}

async fn update(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(request): Parsed<ThreadPatch>,
) -> Result<Response, ApiError> {
    let thread_id = thread_id(&id)?;
    let mut thread = view(&state, &user, thread_id).await?.thread;
    thread.metadata.get_or_insert_with(Map::new).extend(request.metadata);
    thread.updated_at = Timestamp::now();
    if let Some(ttl) = request.ttl {
        thread.ttl = Some(ttl.starting(thread.updated_at));
    }
    state.store.put_thread(&thread).await?;
    shown(&state, &user, &view(&state, &user, thread_id).await?).await
}

async fn remove(State(state): State<AppState>, User(user): User, Path(id): Path<String>) -> Result<Response, ApiError> {
    let thread_id = thread_id(&id)?;
    state.store.delete_thread(&user, thread_id).await.map_err(|error| match error {
        StoreError::NotFound(_) => missing(thread_id),
        other => other.into(),
    })?;
    crate::schedules::forget_crons_on(state.store.as_ref(), state.schedules.as_ref(), &user, thread_id).await;
    Ok(no_content())
}

/// The user's threads that a search body picks, newest first (or as `arrange` orders them),
/// read with their state until `wanted` have been found.
async fn found(
    state: &AppState,
    user: &UserId,
    filter: &ThreadFilter,
    wanted: usize,
    arrange: impl FnOnce(&mut Vec<Thread>),
) -> Result<Vec<ThreadView>, ApiError> {
    let ThreadFilter { metadata, values, status: wanted_status, ids } = filter;
    let empty = Map::new();
    let mut candidates = state.store.list_threads(user).await?;
    arrange(&mut candidates);
    let candidates = candidates.into_iter().filter(|thread| {
        matches(thread.metadata.as_ref().unwrap_or(&empty), metadata)
            && ids.as_ref().is_none_or(|ids| ids.contains(&thread.thread_id))
    });
    let mut picked = Vec::new();
    for thread in candidates {
        if picked.len() >= wanted {
            break;
        }
        let view = match state.store.thread_view(user, thread.thread_id).await {
            Ok(view) => view,
            // Deleted since it was listed.
            Err(StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        let state_values = serde_json::to_value(Values(&view.messages, &[])).unwrap_or_default();
        let values_match = values.iter().all(|(key, value)| state_values.get(key) == Some(value));
        if wanted_status.is_none_or(|wanted| status(&view) == wanted) && values_match {
            picked.push(view);
        }
    }
    Ok(picked)
}

async fn search(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<ThreadSearch>,
) -> Result<Response, ApiError> {
    let ThreadSearch { page: Page { limit, offset }, listing, filter } = request;
    // An order the thread records tell is taken before any thread is read whole, and only the
    // page is; one by status needs them all read.
    let wanted = if listing.sort_field() == Some("status") { usize::MAX } else { offset + limit + 1 };
    let arrange = |threads: &mut Vec<Thread>| listing.sort_with(threads, record_field);
    let views = found(&state, &user, &filter, wanted, arrange).await?;
    let mut threads = Vec::with_capacity(views.len());
    for view in &views {
        let review = super::review::pending(&state, &user, view).await?;
        threads.push(serde_json::to_value(GraphThread { view, values: true, review }).unwrap_or_default());
    }
    listing.sort(&mut threads);
    let shown: Vec<Value> =
        threads.into_iter().skip(offset).take(limit + 1).map(|thread| listing.shape(thread)).collect();
    Ok(page(shown, offset, limit))
}

/// A thread search's sort field as the thread's record holds it, the way it is shown; none for
/// its status, which only its state tells.
fn record_field(thread: &Thread, field: &str) -> Option<Value> {
    match field {
        "thread_id" => Some(Value::from(thread.thread_id.to_string())),
        "created_at" => Some(Value::from(time(thread.created_at.unwrap_or(thread.updated_at)))),
        "updated_at" | "state_updated_at" => Some(Value::from(time(thread.updated_at))),
        _ => None,
    }
}

async fn count(
    State(state): State<AppState>,
    User(user): User,
    Parsed(filter): Parsed<ThreadFilter>,
) -> Result<Response, ApiError> {
    Ok(json_response(&found(&state, &user, &filter, usize::MAX, |_| {}).await?.len()))
}

async fn copy(State(state): State<AppState>, User(user): User, Path(id): Path<String>) -> Result<Response, ApiError> {
    let original = view(&state, &user, thread_id(&id)?).await?;
    // The branches that forks left behind are part of the history the copy shows, as a copy of
    // every checkpoint is in the reference.
    let archive = state.store.archive(&user, original.thread.thread_id).await?;
    let mut thread = original.thread.clone();
    thread.thread_id = Uuid::new_v4();
    thread.created_at = Some(Timestamp::now());
    thread.updated_at = Timestamp::now();
    state.store.put_thread(&thread).await?;
    let revision = state.store.append_messages(&user, thread.thread_id, &original.messages, None).await?;
    if !archive.is_empty() {
        let keep = original.messages.len();
        let fork =
            Fork { user: &user, thread_id: thread.thread_id, keep, tail: &[], archive: &archive, seen: revision };
        state.store.fork_thread(fork).await?;
    }
    let copied = view(&state, &user, thread.thread_id).await?;
    Ok(json_response(&GraphThread { view: &copied, values: false, review: None }))
}

/// A state of the thread: `values` are the messages from its start through the state's last
/// one, in the thread or in a branch a fork left behind (see `branches`).
pub(super) struct GraphState<'a> {
    pub(super) view: &'a ThreadView,
    pub(super) values: &'a [Message],
    /// The thread as it stands now, with what it waits for.
    pub(super) head: bool,
    /// The review the agent waits for at the newest checkpoint, if it waits for one.
    pub(super) review: Option<&'a Value>,
}

impl Serialize for GraphState<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let view = self.view;
        let thread_id = view.thread.thread_id;
        let checkpoint = |upto: usize| {
            let id = checkpoint_id(thread_id, self.values, upto);
            (json!({"checkpoint_id": id, "thread_id": thread_id, "checkpoint_ns": ""}), id)
        };
        let upto = self.values.len();
        let next = if self.head { next_nodes(view) } else { Vec::new() };
        let (this, this_id) = checkpoint(upto);
        let parent = upto.checked_sub(1).map(checkpoint);
        let review = self.review.filter(|_| self.head).cloned().unwrap_or_else(|| json!([]));
        let tasks: Vec<Value> = next
            .iter()
            .map(|node| {
                json!({"id": action_task(this_id), "name": node, "path": ["__pregel_pull", node],
                    "error": null, "interrupts": review, "checkpoint": null, "state": null, "result": null})
            })
            .collect();
        let metadata = json!({"source": if upto == 0 { "input" } else { "loop" },
            "step": upto as i64 - 1, "parents": {}, "thread_id": thread_id,
            "graph_id": view.thread.metadata.as_ref().and_then(|m| m.get("graph_id")).cloned()});
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("values", &Values(self.values, &[]))?;
        map.serialize_entry("next", &next)?;
        map.serialize_entry("tasks", &tasks)?;
        map.serialize_entry("metadata", &metadata)?;
        map.serialize_entry("created_at", &time(view.thread.updated_at))?;
        map.serialize_entry("checkpoint", &this)?;
        map.serialize_entry("parent_checkpoint", &parent.as_ref().map(|(parent, _)| parent))?;
        map.serialize_entry("interrupts", &review)?;
        map.serialize_entry("checkpoint_id", &this_id)?;
        map.serialize_entry("parent_checkpoint_id", &parent.map(|(_, id)| id))?;
        map.end()
    }
}

const EMPTY_STATE: &str = r#"{"values":{},"next":[],"tasks":[],"metadata":null,"created_at":null,"checkpoint":null,"parent_checkpoint":null,"interrupts":[],"checkpoint_id":null,"parent_checkpoint_id":null}"#;

async fn state_body(
    state: &AppState,
    user: &UserId,
    view: &ThreadView,
    values: &[Message],
) -> Result<Response, ApiError> {
    if view.messages.is_empty() && values.is_empty() {
        let empty: Value = serde_json::from_str(EMPTY_STATE).unwrap_or_default();
        return Ok(json_response(&empty));
    }
    let head =
        values.len() == view.messages.len() && values.last().map(|m| &m.id) == view.messages.last().map(|m| &m.id);
    let review = if head { super::review::pending(state, user, view).await? } else { None };
    Ok(json_response(&GraphState { view, values, head, review: review.as_ref() }))
}

async fn current_state(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = view(&state, &user, thread_id(&id)?).await?;
    state_body(&state, &user, &view, &view.messages).await
}

async fn state_at(
    State(state): State<AppState>,
    User(user): User,
    Path((id, checkpoint)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = view(&state, &user, thread_id(&id)?).await?;
    let values = super::branches::values_at(&state, &user, &view, &checkpoint).await?.ok_or_else(super::not_found)?;
    state_body(&state, &user, &view, &values).await
}

async fn update_state(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(StateUpdate { messages }): Parsed<StateUpdate>,
) -> Result<Response, ApiError> {
    let thread_id = thread_id(&id)?;
    let before = view(&state, &user, thread_id).await?;
    if before.running {
        return Err(detail(StatusCode::CONFLICT, "Thread is busy with a run; update its state once it has finished"));
    }
    limits::check_messages(&state.config.limits, &messages, "values")?;
    crate::runs::update_state(state.store.as_ref(), &state.config.limits, &before, messages).await?;
    let after = view(&state, &user, thread_id).await?;
    let checkpoint = head(&after);
    Ok(json_response(&json!({
        "checkpoint": checkpoint,
        "configurable": checkpoint,
        "checkpoint_id": checkpoint["checkpoint_id"],
    })))
}

async fn history(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    past_states(&state, &user, &id, HistoryPage::newest()).await
}

async fn history_with_body(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(request): Parsed<HistoryPage>,
) -> Result<Response, ApiError> {
    past_states(&state, &user, &id, request).await
}

/// The thread's states, newest first (see `branches::history`).
async fn past_states(state: &AppState, user: &UserId, id: &str, page: HistoryPage) -> Result<Response, ApiError> {
    let view = view(state, user, thread_id(id)?).await?;
    let HistoryPage { limit, before } = page;
    let archive = state.store.archive(user, view.thread.thread_id).await?;
    let archived = archive.states(&view.messages);
    let listed = super::branches::history(&view, &archive, &archived);
    let start = match before {
        Some(before) => {
            match listed.iter().position(|state| super::branches::is_checkpoint(&view, state.values, &before)) {
                Some(position) => position + 1,
                None => listed.len(),
            }
        }
        None => 0,
    };
    let review = super::review::pending(state, user, &view).await?;
    let states: Vec<GraphState<'_>> = listed
        .iter()
        .skip(start)
        .take(limit)
        .map(|listed| GraphState { view: &view, values: listed.values, head: listed.head, review: review.as_ref() })
        .collect();
    Ok(json_response(&states))
}
