//! The agent card of each assistant: at `/a2a/{assistant_id}/.well-known/agent-card.json`, and at
//! `/.well-known/agent-card.json?assistant_id=…` (both under `/langgraph` too). It names the
//! agent's URL twice: as A2A 1.0's interface and as 0.3's `url`, so clients of either find it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use uuid::Uuid;

use crate::api::{json_response, ApiError, AppState, Routes, User};
use crate::model::Assistant;
use crate::runs::find_assistant;
use crate::store::Entity;

pub fn routes() -> Routes {
    Routes::default()
        .route("/a2a/{assistant_id}/.well-known/agent-card.json", get(by_path))
        .route("/langgraph/a2a/{assistant_id}/.well-known/agent-card.json", get(by_path))
        .route("/.well-known/agent-card.json", get(by_query))
        .route("/langgraph/.well-known/agent-card.json", get(by_query))
}

async fn by_path(
    State(state): State<AppState>,
    User(user): User,
    Path(assistant_id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    card(&state, &user, &assistant_id, uri.path(), &headers).await
}

async fn by_query(
    State(state): State<AppState>,
    User(user): User,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The first `assistant_id` of the query, however often it is given.
    let named = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "assistant_id")
        .map(|(_, value)| value.into_owned());
    let assistant_id =
        named.ok_or_else(|| ApiError::BadRequest("Missing required query parameter: assistant_id".into()))?;
    card(&state, &user, &assistant_id, uri.path(), &headers).await
}

async fn card(
    state: &AppState,
    user: &crate::model::UserId,
    id: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(id)
        .map_err(|_| ApiError::BadRequest(format!("Invalid assistant ID '{id}': must be a UUID")))?;
    let assistant =
        find_assistant(state.store.as_ref(), user, id).await?.ok_or(ApiError::NotFound(Entity::Assistant))?;
    let root = if path.starts_with(crate::api::langgraph::PREFIX) { crate::api::langgraph::PREFIX } else { "" };
    let url = format!("{}{root}/a2a/{id}", base_url(state, headers));
    Ok(json_response(&describe(&assistant, &url)))
}

/// Where clients reach this API: `PUBLIC_API_URL`, or the request's host and scheme.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_api_url {
        return url.clone();
    }
    let header = |name| headers.get(name).and_then(|value: &header::HeaderValue| value.to_str().ok());
    let scheme = header(header::HeaderName::from_static("x-forwarded-proto")).unwrap_or("http");
    format!("{scheme}://{}", header(header::HOST).unwrap_or("localhost"))
}

fn describe(assistant: &Assistant, url: &str) -> serde_json::Value {
    let description = assistant
        .profile
        .as_ref()
        .and_then(|profile| profile.description.clone())
        .unwrap_or_else(|| format!("{} assistant", assistant.name));
    let modes = ["text/plain"];
    json!({
        "name": assistant.name,
        "description": description,
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": [{
            "id": format!("{}-main", assistant.assistant_id),
            "name": format!("{} Capabilities", assistant.name),
            "description": description,
            "tags": ["assistant", "opengpts"],
            "examples": [],
            "inputModes": modes,
            "outputModes": modes,
        }],
        "version": env!("CARGO_PKG_VERSION"),
    })
}
