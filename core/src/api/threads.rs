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
use crate::model::validate::{FieldError, FieldErrors, FromJson, Loc, ObjectReader};
use crate::model::{Generation, Message, MessageType, Thread, ThreadInput, Timestamp, UserId, WireMessages};
use axum::response::Response;

pub fn routes() -> Routes {
    Routes::default()
        .route("/threads", get(list).post(create))
        .route("/threads/{thread_id}", get(read).put(replace).delete(remove))
        .route("/threads/{thread_id}/messages", get(messages).post(add_messages))
        .route("/threads/{thread_id}/state", get(state).post(update_state))
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(input): JsonBody<ThreadInput>,
) -> Result<Json<Thread>, ApiError> {
    save(&state, user, Uuid::new_v4(), input).await
}

async fn replace(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    JsonBody(input): JsonBody<ThreadInput>,
) -> Result<Json<Thread>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    save(&state, user, thread_id, input).await
}

/// A thread may only name an assistant its user can see; its kind is copied into the metadata.
async fn save(state: &AppState, user: UserId, thread_id: Uuid, input: ThreadInput) -> Result<Json<Thread>, ApiError> {
    let assistant = state.store.get_assistant(&user, input.assistant_id).await?;
    let metadata = assistant.kind().map(|kind| {
        let mut metadata = Map::new();
        metadata.insert("assistant_type".into(), Value::from(kind));
        metadata
    });
    let thread = Thread {
        thread_id,
        assistant_id: input.assistant_id,
        name: limits::shorten_name(&state.config.limits, input.name),
        updated_at: Timestamp::now(),
        user_id: user,
        metadata,
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
    state.store.append_messages(&user, thread_id, &messages).await?;
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
    let (thread, messages) = state.store.thread_with_messages(&user, thread_id).await?;
    // The graph's next step: the assistant answers whenever the last word is not its own.
    let waiting = messages.last().is_some_and(|last| last.kind != MessageType::Ai);
    let next = if waiting { vec![thread.assistant_type().unwrap_or("agent").to_string()] } else { vec![] };
    let values = (!messages.is_empty()).then(|| WireMessages(&messages, Generation::Latest));
    Ok(json_response(&StateBody { values, next }))
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
    JsonBody(StateInput(mut messages)): JsonBody<StateInput>,
) -> Result<Json<Value>, ApiError> {
    let thread_id = path_id(&thread_id, "thread_id")?;
    limits::check_messages(&state.config.limits, &messages, "values")?;
    messages.iter_mut().for_each(Message::ensure_id);
    state.store.upsert_messages(&user, thread_id, &messages).await?;
    Ok(Json(Value::Null))
}
