//! `/langgraph/assistants`: our bots' configurations, as LangGraph assistants. One made here is
//! an OpenGPTs assistant too (its graph is its bot type), and the other way round.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::requests::{
    AssistantCreate, AssistantFilter, AssistantPatch, AssistantSearch, BotSettings, IfExists, Page, Parsed,
    VersionChoice, VersionSearch,
};
use super::{detail, json_response, matches, no_content, not_found, page, time, Graph};
use crate::api::auth::User;
use crate::api::{limits, ApiError, AppState, Routes};
use crate::model::{Assistant, AssistantProfile, AssistantVersion, Timestamp, UserId};
use crate::runs::find_assistant;

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/assistants", post(create))
        .route("/langgraph/assistants/search", post(search))
        .route("/langgraph/assistants/count", post(count))
        .route("/langgraph/assistants/{assistant_id}", get(read).patch(update).delete(remove))
        .route("/langgraph/assistants/{assistant_id}/schemas", get(schemas))
        .route("/langgraph/assistants/{assistant_id}/graph", get(graph))
        .route("/langgraph/assistants/{assistant_id}/versions", post(versions))
        .route("/langgraph/assistants/{assistant_id}/latest", post(latest))
}

/// An assistant as the LangGraph API shows it.
pub struct GraphAssistant<'a>(pub &'a Assistant);

impl GraphAssistant<'_> {
    /// The configuration as its author wrote it: without the bot type we keep in it.
    fn config(&self) -> Map<String, Value> {
        let mut config = self.0.config.clone();
        if let Some(Value::Object(configurable)) = config.get_mut("configurable") {
            configurable.remove("type");
        }
        config
    }
}

impl Serialize for GraphAssistant<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let assistant = self.0;
        let profile = assistant.profile.clone().unwrap_or_else(|| fresh_profile(assistant.updated_at));
        let config = self.config();
        let context = config.get("configurable").cloned().unwrap_or_else(|| json!({}));
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("assistant_id", &assistant.assistant_id)?;
        map.serialize_entry("graph_id", Graph::of(assistant).id())?;
        map.serialize_entry("config", &config)?;
        map.serialize_entry("context", &context)?;
        map.serialize_entry("metadata", &profile.metadata)?;
        map.serialize_entry("name", &assistant.name)?;
        map.serialize_entry("created_at", &time(profile.created_at))?;
        map.serialize_entry("updated_at", &time(assistant.updated_at))?;
        map.serialize_entry("version", &profile.version)?;
        map.serialize_entry("description", &profile.description)?;
        map.end()
    }
}

/// An assistant's configuration: its `config`, whose `configurable` (with `context` merged in)
/// names the graph's bot type and its settings.
fn bot_config(settings: BotSettings, graph: Graph) -> Map<String, Value> {
    let BotSettings { mut config, configurable } = settings;
    let mut configurable = super::bot_keys(graph, configurable);
    configurable.insert("type".into(), json!(graph.id()));
    config.insert("configurable".into(), Value::Object(configurable));
    config
}

async fn create(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<AssistantCreate>,
) -> Result<Response, ApiError> {
    let config = bot_config(request.settings, request.graph);
    limits::check_config(&state.config.limits, &config)?;
    let assistant_id = request.assistant_id.unwrap_or_else(Uuid::new_v4);
    if let Some(existing) = find_assistant(state.store.as_ref(), &user, assistant_id).await? {
        return match request.if_exists {
            IfExists::DoNothing => Ok(json_response(&GraphAssistant(&existing))),
            IfExists::Raise => Err(detail(StatusCode::CONFLICT, "Assistant already exists")),
        };
    }
    let now = Timestamp::now();
    let name = request.name.unwrap_or_else(|| "Untitled".into());
    let assistant = Assistant {
        assistant_id,
        name: state.config.limits.shorten_name(name),
        config,
        updated_at: now,
        public: false,
        user_id: user,
        profile: Some(AssistantProfile {
            metadata: request.metadata,
            description: request.description,
            version: 1,
            created_at: now,
            versions: Vec::new(),
        }),
    };
    // Another user's id is refused by the store, as if it existed.
    state.store.put_assistant(&assistant).await.map_err(|error| match error {
        crate::store::StoreError::NotFound(_) => detail(StatusCode::CONFLICT, "Assistant already exists"),
        other => other.into(),
    })?;
    Ok(json_response(&GraphAssistant(&assistant)))
}

async fn visible(state: &AppState, user: &UserId, raw_id: &str) -> Result<Assistant, ApiError> {
    let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    find_assistant(state.store.as_ref(), user, id).await?.ok_or_else(not_found)
}

/// The user's own assistant: a default one, or another user's public one, is not theirs to change.
async fn own(state: &AppState, user: &UserId, raw_id: &str) -> Result<Assistant, ApiError> {
    let assistant = visible(state, user, raw_id).await?;
    if &assistant.user_id != user {
        return Err(detail(
            StatusCode::FORBIDDEN,
            "This assistant is not yours to change: make your own from its graph",
        ));
    }
    Ok(assistant)
}

async fn read(State(state): State<AppState>, User(user): User, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(json_response(&GraphAssistant(&visible(&state, &user, &id).await?)))
}

async fn update(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(request): Parsed<AssistantPatch>,
) -> Result<Response, ApiError> {
    let mut assistant = own(&state, &user, &id).await?;
    let graph = request.graph.unwrap_or_else(|| Graph::of(&assistant));
    let created_at = assistant.profile.as_ref().map_or(assistant.updated_at, |profile| profile.created_at);
    let profile = assistant.profile.get_or_insert_with(|| fresh_profile(created_at));
    let newest = profile.versions.iter().map(|kept| kept.version).chain([profile.version]).max().unwrap_or(1);
    let mut next = assistant.current_version().expect("a profile");
    next.version = newest + 1;
    next.created_at = Timestamp::now();
    if let Some(settings) = request.settings {
        next.config = bot_config(settings, graph);
        limits::check_config(&state.config.limits, &next.config)?;
    }
    if let Some(name) = request.name {
        next.name = state.config.limits.shorten_name(name);
    }
    next.metadata.extend(request.metadata);
    if let Some(description) = request.description {
        next.description = Some(description);
    }
    assistant.stand_at(next);
    state.store.put_assistant(&assistant).await?;
    Ok(json_response(&GraphAssistant(&assistant)))
}

/// The LangGraph fields of an assistant made through the OpenGPTs API.
fn fresh_profile(created_at: Timestamp) -> AssistantProfile {
    AssistantProfile { metadata: Map::new(), description: None, version: 1, created_at, versions: Vec::new() }
}

async fn remove(State(state): State<AppState>, User(user): User, Path(id): Path<String>) -> Result<Response, ApiError> {
    let assistant = own(&state, &user, &id).await?;
    state.store.delete_assistant(&user, assistant.assistant_id).await?;
    crate::schedules::forget_crons_on(state.store.as_ref(), state.schedules.as_ref(), &user, assistant.assistant_id)
        .await;
    Ok(no_content())
}

/// The default assistants, then the user's own, newest first, as a search body filters them.
async fn found(state: &AppState, user: &UserId, filter: &AssistantFilter) -> Result<Vec<Assistant>, ApiError> {
    let AssistantFilter { graph_id: graph, metadata, name } = filter;
    let mut all = state.store.list_assistants(user).await?;
    all.sort_by_key(|assistant| std::cmp::Reverse(assistant.profile.as_ref().map(|p| p.created_at)));
    all.extend(Graph::ALL.iter().map(|graph| graph.default_assistant()));
    let empty = Map::new();
    Ok(all
        .into_iter()
        .filter(|assistant| graph.as_deref().is_none_or(|graph| Graph::of(assistant).id() == graph))
        .filter(|assistant| matches(assistant.profile.as_ref().map_or(&empty, |p| &p.metadata), metadata))
        .filter(|assistant| name.as_deref().is_none_or(|name| assistant.name.contains(name)))
        .collect())
}

async fn search(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<AssistantSearch>,
) -> Result<Response, ApiError> {
    let AssistantSearch { page: Page { limit, offset }, listing, filter } = request;
    let all = found(&state, &user, &filter).await?;
    let mut assistants: Vec<Value> =
        all.iter().map(|assistant| serde_json::to_value(GraphAssistant(assistant)).unwrap_or_default()).collect();
    listing.sort(&mut assistants);
    let shown: Vec<Value> =
        assistants.into_iter().skip(offset).take(limit + 1).map(|assistant| listing.shape(assistant)).collect();
    Ok(page(shown, offset, limit))
}

async fn count(
    State(state): State<AppState>,
    User(user): User,
    Parsed(filter): Parsed<AssistantFilter>,
) -> Result<Response, ApiError> {
    Ok(json_response(&found(&state, &user, &filter).await?.len()))
}

async fn schemas(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let assistant = visible(&state, &user, &id).await?;
    let messages = |title: &str| {
        json!({"title": title, "type": "object", "properties": {"messages": {"title": "Messages", "type": "array",
            "items": {"type": "object"}}}, "required": ["messages"]})
    };
    let form = crate::api::schemas::offered_form(&state);
    let context = form["properties"]["configurable"].clone();
    Ok(json_response(&json!({
        "graph_id": Graph::of(&assistant).id(),
        "input_schema": messages("Input"),
        "output_schema": messages("Output"),
        "state_schema": messages("State"),
        "config_schema": form,
        "context_schema": context,
    })))
}

async fn graph(State(state): State<AppState>, User(user): User, Path(id): Path<String>) -> Result<Response, ApiError> {
    let graph = Graph::of(&visible(&state, &user, &id).await?);
    let runnable = |name: &str| json!({"id": name, "type": "runnable", "data": {"name": name}});
    let mut nodes = vec![runnable("__start__")];
    nodes.extend(graph.nodes().iter().map(|node| runnable(node)));
    nodes.push(json!({"id": "__end__"}));
    let edges: Vec<Value> = graph
        .edges()
        .iter()
        .map(|&(source, target)| match (source, target) {
            // The agent decides between its tools and the end.
            ("agent", _) => json!({"source": source, "target": target, "conditional": true}),
            _ => json!({"source": source, "target": target}),
        })
        .collect();
    Ok(json_response(&json!({"nodes": nodes, "edges": edges})))
}

/// One version of an assistant, as `versions` lists them.
struct Version<'a> {
    assistant: &'a Assistant,
    version: AssistantVersion,
}

impl Serialize for Version<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut shown = self.assistant.clone();
        shown.config = self.version.config.clone();
        let config = GraphAssistant(&shown).config();
        let version = &self.version;
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("assistant_id", &self.assistant.assistant_id)?;
        map.serialize_entry("version", &version.version)?;
        map.serialize_entry("graph_id", Graph::of(self.assistant).id())?;
        map.serialize_entry("config", &config)?;
        map.serialize_entry("context", &config.get("configurable").cloned().unwrap_or_else(|| json!({})))?;
        map.serialize_entry("metadata", &version.metadata)?;
        map.serialize_entry("created_at", &time(version.created_at))?;
        map.serialize_entry("name", &version.name)?;
        map.serialize_entry("description", &version.description)?;
        map.end()
    }
}

/// Every version kept, newest first: the current one and up to `KEPT_VERSIONS` before it.
fn all_versions(assistant: &Assistant) -> Vec<AssistantVersion> {
    let current = assistant.current_version().or_else(|| {
        let mut profiled = assistant.clone();
        profiled.profile = Some(fresh_profile(assistant.updated_at));
        profiled.current_version()
    });
    let kept = assistant.profile.as_ref().map(|profile| profile.versions.clone()).unwrap_or_default();
    let mut all: Vec<AssistantVersion> = current.into_iter().chain(kept).collect();
    all.sort_by_key(|version| std::cmp::Reverse(version.version));
    all
}

async fn versions(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(request): Parsed<VersionSearch>,
) -> Result<Response, ApiError> {
    let assistant = visible(&state, &user, &id).await?;
    let VersionSearch { page: Page { limit, offset }, metadata } = request;
    let shown: Vec<Version<'_>> = all_versions(&assistant)
        .into_iter()
        .filter(|version| matches(&version.metadata, &metadata))
        .skip(offset)
        .take(limit)
        .map(|version| Version { assistant: &assistant, version })
        .collect();
    Ok(json_response(&shown))
}

/// Makes one of the kept versions the assistant's current one.
async fn latest(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    Parsed(VersionChoice { version: wanted }): Parsed<VersionChoice>,
) -> Result<Response, ApiError> {
    let mut assistant = own(&state, &user, &id).await?;
    let chosen = all_versions(&assistant).into_iter().find(|version| version.version as usize == wanted);
    let chosen = chosen.ok_or_else(|| {
        detail(
            StatusCode::NOT_FOUND,
            format!(
                "Version {wanted} of this assistant is not kept: an assistant keeps its current version and the {} before it",
                AssistantProfile::KEPT_VERSIONS
            ),
        )
    })?;
    if assistant.profile.is_none() {
        assistant.profile = Some(fresh_profile(assistant.updated_at));
    }
    assistant.stand_at(chosen);
    state.store.put_assistant(&assistant).await?;
    Ok(json_response(&GraphAssistant(&assistant)))
}
