//! `/assistants`: create, replace, list, read and delete assistants.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::User;
use super::extract::{path_id, query_id, JsonBody, QueryParams};
use super::{json_response, limits, ApiError, AppState, Routes};
use crate::llm::ModelCatalog;
use crate::model::{Assistant, AssistantInput, AssistantView};
use crate::runs::configurable;
use crate::store::StoreError;
use axum::response::Response;

pub fn routes() -> Routes {
    Routes::default()
        .route("/assistants", get(list_own).post(create).put(create))
        .route("/assistants/public", get(list_public))
        .route("/assistants/{assistant_id}", get(read).put(replace).delete(remove))
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(input): JsonBody<AssistantInput>,
) -> Result<Json<Assistant>, ApiError> {
    save(&state, None, input.into_assistant(Uuid::new_v4(), user)).await
}

async fn replace(
    State(state): State<AppState>,
    User(user): User,
    Path(assistant_id): Path<String>,
    JsonBody(input): JsonBody<AssistantInput>,
) -> Result<Json<Assistant>, ApiError> {
    let assistant_id = path_id(&assistant_id, "assistant_id")?;
    // A bot saved again is an edit of the one stored: what the user changed decides.
    let stored = match state.store.get_assistant(&user, assistant_id).await {
        Ok(stored) if stored.user_id == user => Some(stored),
        Ok(_) | Err(StoreError::NotFound(_)) => None,
        Err(error) => return Err(error.into()),
    };
    save(&state, stored, input.into_assistant(assistant_id, user)).await
}

/// Checks and stores a bot, its settings settled (see `runs::configurable`) against `stored`.
async fn save(
    state: &AppState,
    stored: Option<Assistant>,
    mut assistant: Assistant,
) -> Result<Json<Assistant>, ApiError> {
    assistant.name = state.config.limits.shorten_name(assistant.name);
    limits::check_config(&state.config.limits, &assistant.config)?;
    configurable::settle_config(stored.as_ref().map(|stored| &stored.config), &mut assistant.config);
    ModelCatalog::check_config(&assistant.config)
        .map_err(|error| ApiError::Validation(vec![error.into_field_error()]))?;
    state
        .tools
        .check_config(&assistant.config)
        .map_err(|error| ApiError::Validation(vec![error.into_field_error()]))?;
    state.store.put_assistant(&assistant).await?;
    Ok(Json(assistant))
}

async fn list_own(State(state): State<AppState>, User(user): User) -> Result<Json<Vec<Assistant>>, ApiError> {
    Ok(Json(state.store.list_assistants(&user).await?))
}

#[derive(serde::Deserialize)]
struct PublicQuery {
    shared_id: Option<String>,
}

/// Every public assistant; with `?shared_id=` (the seed UI's share link), just that one if it is
/// public, and none otherwise.
async fn list_public(
    State(state): State<AppState>,
    User(user): User,
    QueryParams(query): QueryParams<PublicQuery>,
) -> Result<Response, ApiError> {
    let shown = match query.shared_id {
        None => state.store.list_public_assistants().await?,
        Some(shared_id) => match state.store.get_assistant(&user, query_id(&shared_id, "shared_id")?).await {
            Ok(assistant) if assistant.public => vec![assistant],
            Ok(_) | Err(StoreError::NotFound(_)) => Vec::new(),
            Err(error) => return Err(error.into()),
        },
    };
    let views: Vec<AssistantView<'_>> =
        shown.iter().map(|assistant| AssistantView { assistant, viewer: &user }).collect();
    Ok(json_response(&views))
}

async fn read(
    State(state): State<AppState>,
    User(user): User,
    Path(assistant_id): Path<String>,
) -> Result<Response, ApiError> {
    let assistant_id = path_id(&assistant_id, "assistant_id")?;
    let assistant = state.store.get_assistant(&user, assistant_id).await?;
    Ok(json_response(&AssistantView { assistant: &assistant, viewer: &user }))
}

async fn remove(
    State(state): State<AppState>,
    User(user): User,
    Path(assistant_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let assistant_id = path_id(&assistant_id, "assistant_id")?;
    state.store.delete_assistant(&user, assistant_id).await?;
    crate::schedules::forget_crons_on(state.store.as_ref(), state.schedules.as_ref(), &user, assistant_id).await;
    Ok(Json(json!({"status": "ok"})))
}
