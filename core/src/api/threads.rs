//! `/threads`: threads, their messages (seed era) and their state (latest era).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::User;
use super::extract::{path_id, JsonBody};
use super::{json_response, limits, ApiError, AppState, Routes};
use crate::model::validate::{whole_number, FieldError, FieldErrors, FromJson, Loc, ObjectReader};
use crate::model::{Generation, Message, Thread, ThreadInput, ThreadTtl, Timestamp, UserId, WireMessages};
use crate::runs::{default_ttl, next_after, Bot, Next};
use crate::store::ThreadView;
use axum::response::Response;

pub fn routes() -> Routes {
    Routes::default()
        .route("/threads", get(list).post(create))
        .route("/threads/{thread_id}", get(read).put(replace).delete(remove))
        .route("/threads/{thread_id}/messages", get(messages).post(add_messages))
        .route("/threads/{thread_id}/state", get(state).post(update_state))
        .route("/threads/{thread_id}/history", get(history).post(history_with_limit))
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(input): JsonBody<ThreadInput>,
) -> Result<Json<Thread>, ApiError> {
    let ttl = default_ttl(&state.config.retention, Timestamp::now());
    save(&state, user, Uuid::new_v4(), input, ttl).await
}

async fn replace(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    JsonBody(input): JsonBody<ThreadInput>,
) -> Result<Json<Thread>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    // A replaced thread keeps the lifetime it was given.
    let ttl = match state.store.get_thread(&user, thread_id).await {
        Ok(existing) => existing.ttl,
        Err(_) => default_ttl(&state.config.retention, Timestamp::now()),
    };
    save(&state, user, thread_id, input, ttl).await
}

/// A thread may only name an assistant its user can see; its kind is copied into the metadata.
async fn save(
    state: &AppState,
    user: UserId,
    thread_id: Uuid,
    input: ThreadInput,
    ttl: Option<ThreadTtl>,
) -> Result<Json<Thread>, ApiError> {
    let assistant = state.store.get_assistant(&user, input.assistant_id).await?;
    let metadata = assistant.kind().map(|kind| {
        let mut metadata = Map::new();
        metadata.insert("assistant_type".into(), Value::from(kind));
        metadata
    });
    let thread = Thread {
        thread_id,
        assistant_id: input.assistant_id,
        name: state.config.limits.shorten_name(input.name),
        updated_at: Timestamp::now(),
        user_id: user,
        metadata,
        created_at: None,
        ttl,
    };
    state.store.put_thread(&thread).await?;
    Ok(Json(thread))
}

async fn list(State(state): State<AppState>, User(user): User) -> Result<Json<Vec<Thread>>, ApiError> {
    Ok(Json(state.store.list_threads(&user).await?))
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
) -> Result<Json<Thread>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    Ok(Json(state.store.get_thread(&user, thread_id).await?))
}

async fn remove(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    state.store.delete_thread(&user, thread_id).await?;
    crate::schedules::forget_crons_on(state.store.as_ref(), state.schedules.as_ref(), &user, thread_id).await;
    Ok(Json(json!({"status": "ok"})))
}

#[derive(Serialize)]
struct MessagesBody<'a> {
    messages: WireMessages<'a>,
}

async fn messages(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
) -> Result<Response, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    let messages = state.store.messages(&user, thread_id).await?;
    Ok(json_response(&MessagesBody { messages: WireMessages(&messages, Generation::Seed) }))
}

/// The seed era's `{"messages": [...]}` body.
pub struct MessagesInput(pub Vec<Message>);

impl FromJson for MessagesInput {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let messages = fields.required("messages");
        fields.finish(|| Some(MessagesInput(messages?)))
    }
}

async fn add_messages(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    JsonBody(MessagesInput(mut messages)): JsonBody<MessagesInput>,
) -> Result<Json<Value>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    limits::check_messages(&state.config.limits, &messages, "messages")?;
    messages.iter_mut().for_each(Message::ensure_id);
    // The thread's messages come with its revision: the append is one write at that revision.
    let view = state.store.thread_view(&user, thread_id).await?;
    crate::runs::check_thread_room(&state.config.limits, &view.messages, &messages)?;
    state.store.append_messages(&user, thread_id, &messages, Some(view.revision)).await?;
    Ok(Json(Value::Null))
}

#[derive(Serialize)]
struct StateBody<'a> {
    values: Option<WireMessages<'a>>,
    next: Vec<String>,
}

async fn state(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
) -> Result<Response, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    let view = state.store.thread_view(&user, thread_id).await?;
    let values = (!view.messages.is_empty()).then(|| WireMessages(&view.messages, Generation::Latest));
    Ok(json_response(&StateBody { values, next: next_step(&view, view.messages.len()) }))
}

/// The graph's next step after the first `upto` messages, which the latest UI offers as "Click to
/// continue": `action` for tool calls not yet run, the assistant's own node for words it has not
/// answered (see `runs::next_after`).
fn next_step(view: &ThreadView, upto: usize) -> Vec<String> {
    match next_after(view, upto) {
        Next::Nothing => vec![],
        Next::Tools => vec![Bot::ACTION.to_string()],
        Next::Answer => vec![view.thread.assistant_type().unwrap_or("agent").to_string()],
    }
}

/// One past state of a thread, in LangGraph's checkpoint shape.
#[derive(Serialize)]
struct Checkpoint<'a> {
    values: WireMessages<'a>,
    next: Vec<String>,
    config: Value,
    parent: Option<Value>,
}

/// The body of POST `/threads/{id}/history`.
pub struct HistoryRequest {
    limit: Option<usize>,
}

impl FromJson for HistoryRequest {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let limit = match fields.raw("limit") {
            None | Some(Value::Null) => None,
            Some(raw) => match whole_number(raw).filter(|limit| *limit > 0) {
                Some(limit) => Some(limit as usize),
                None => {
                    let loc = fields.loc().key("limit");
                    fields.push_error(FieldError::new("greater_than", &loc, "Input should be a positive integer", raw));
                    None
                }
            },
        };
        fields.finish(|| Some(HistoryRequest { limit }))
    }
}

/// The thread's past states, newest first (POST may limit how many): one after each message, as the message log has them
/// (an edited message shows its new content in every state). Each state's checkpoint id is the
/// id of its last message.
async fn history(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
) -> Result<Response, ApiError> {
    past_states(&state, &user, &thread_id, None).await
}

async fn history_with_limit(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    JsonBody(request): JsonBody<HistoryRequest>,
) -> Result<Response, ApiError> {
    past_states(&state, &user, &thread_id, request.limit).await
}

async fn past_states(
    state: &AppState,
    user: &UserId,
    thread_id: &str,
    limit: Option<usize>,
) -> Result<Response, ApiError> {
    let thread_id = path_id(thread_id, "thread_id")?;
    let view = state.store.thread_view(user, thread_id).await?;
    let checkpoint = |upto: usize| {
        let id = view.messages[upto - 1].id.clone().unwrap_or_else(|| format!("{thread_id}-{upto}"));
        json!({"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": id}})
    };
    let states: Vec<Checkpoint<'_>> = (1..=view.messages.len())
        .rev()
        .take(limit.unwrap_or(usize::MAX))
        .map(|upto| Checkpoint {
            values: WireMessages(&view.messages[..upto], Generation::Latest),
            next: next_step(&view, upto),
            config: checkpoint(upto),
            parent: (upto > 1).then(|| checkpoint(upto - 1)),
        })
        .collect();
    Ok(json_response(&states))
}

/// The latest era's `{"values": [...] | {"messages": [...]}}` body.
pub struct StateInput(pub Vec<Message>);

impl FromJson for StateInput {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let values_loc = fields.loc().key("values");
        let values = match fields.raw("values") {
            None | Some(Value::Null) => {
                fields.push_error(FieldError::missing(&values_loc, value));
                None
            }
            Some(values @ Value::Array(_)) => collect(&mut fields, Vec::<Message>::from_json(values, &values_loc)),
            Some(values @ Value::Object(_)) => {
                collect(&mut fields, MessagesInput::from_json(values, &values_loc).map(|input| input.0))
            }
            Some(other) => {
                fields.push_error(FieldError::new(
                    "list_type",
                    &values_loc,
                    "Input should be a list of messages or an object with a 'messages' list",
                    other,
                ));
                None
            }
        };
        fields.finish(|| Some(StateInput(values?)))
    }
}

fn collect<T>(fields: &mut ObjectReader<'_>, parsed: Result<T, FieldErrors>) -> Option<T> {
    match parsed {
        Ok(value) => Some(value),
        Err(errors) => {
            errors.into_iter().for_each(|error| fields.push_error(error));
            None
        }
    }
}

async fn update_state(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    JsonBody(StateInput(messages)): JsonBody<StateInput>,
) -> Result<Json<Value>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    limits::check_messages(&state.config.limits, &messages, "values")?;
    let view = state.store.thread_view(&user, thread_id).await?;
    crate::runs::update_state(state.store.as_ref(), &state.config.limits, &view, messages).await?;
    Ok(Json(Value::Null))
}
