//! The bodies of `/langgraph/assistants`.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::listing::{Fields, Listing};
use super::super::{detail, graph_names, Graph};
use super::{Body, FromBody, IfExists, Page};
use crate::api::ApiError;

/// An assistant's `config` and `context`, before they are made its bot's configuration.
pub(in crate::api::langgraph) struct BotSettings {
    /// `config` without its `configurable`.
    pub config: Map<String, Value>,
    /// `config.configurable` with `context` merged in.
    pub configurable: Map<String, Value>,
}

impl BotSettings {
    fn read(body: &Body) -> Result<Self, ApiError> {
        let mut config = body.object("config")?;
        let mut configurable = match config.remove("configurable") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(configurable)) => configurable,
            Some(other) => {
                return Err(detail(StatusCode::UNPROCESSABLE_ENTITY, format!("{other} is not of type 'object'")));
            }
        };
        configurable.extend(body.object("context")?);
        Ok(BotSettings { config, configurable })
    }
}

pub(in crate::api::langgraph) struct AssistantCreate {
    pub graph: Graph,
    pub if_exists: IfExists,
    pub settings: BotSettings,
    pub assistant_id: Option<Uuid>,
    pub name: Option<String>,
    pub metadata: Map<String, Value>,
    pub description: Option<String>,
}

impl FromBody for AssistantCreate {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let graph_id = body.required_string("graph_id")?;
        let graph = Graph::parse(&graph_id).ok_or_else(|| {
            detail(StatusCode::NOT_FOUND, format!("Graph '{graph_id}' not found; the graphs are {}", graph_names()))
        })?;
        Ok(AssistantCreate {
            graph,
            if_exists: IfExists::read(body)?,
            settings: BotSettings::read(body)?,
            assistant_id: body.id("assistant_id")?,
            name: body.string("name")?,
            metadata: body.object("metadata")?,
            description: body.string("description")?,
        })
    }
}

/// A new version of an assistant: only what the body names changes.
pub(in crate::api::langgraph) struct AssistantPatch {
    pub graph: Option<Graph>,
    /// Given when the body has a `config` or a `context`.
    pub settings: Option<BotSettings>,
    pub name: Option<String>,
    pub metadata: Map<String, Value>,
    pub description: Option<String>,
}

impl FromBody for AssistantPatch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let graph = match body.string("graph_id")? {
            Some(graph_id) => Some(
                Graph::parse(&graph_id)
                    .ok_or_else(|| detail(StatusCode::NOT_FOUND, format!("Graph '{graph_id}' not found")))?,
            ),
            None => None,
        };
        let named = body.raw("config").is_some() || body.raw("context").is_some();
        Ok(AssistantPatch {
            graph,
            settings: named.then(|| BotSettings::read(body)).transpose()?,
            name: body.string("name")?,
            metadata: body.object("metadata")?,
            description: body.string("description")?,
        })
    }
}

/// Which assistants a search or a count takes.
pub(in crate::api::langgraph) struct AssistantFilter {
    pub graph_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub name: Option<String>,
}

impl FromBody for AssistantFilter {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(AssistantFilter {
            graph_id: body.string("graph_id")?,
            metadata: body.object("metadata")?,
            name: body.string("name")?,
        })
    }
}

/// What an assistant search may select and sort by, as the reference allows.
const ASSISTANT_FIELDS: Fields = Fields {
    selectable: &[
        "assistant_id",
        "graph_id",
        "name",
        "description",
        "config",
        "context",
        "created_at",
        "updated_at",
        "metadata",
        "version",
    ],
    sortable: &["assistant_id", "graph_id", "name", "created_at", "updated_at"],
    extractable: false,
};

pub(in crate::api::langgraph) struct AssistantSearch {
    pub page: Page,
    pub listing: Listing,
    pub filter: AssistantFilter,
}

impl FromBody for AssistantSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(AssistantSearch {
            page: Page::read(body, 10)?,
            listing: Listing::read(body, &ASSISTANT_FIELDS)?,
            filter: AssistantFilter::from_body(body)?,
        })
    }
}

/// Which of an assistant's kept versions a listing shows.
pub(in crate::api::langgraph) struct VersionSearch {
    pub page: Page,
    pub metadata: Map<String, Value>,
}

impl FromBody for VersionSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(VersionSearch { page: Page::read(body, 10)?, metadata: body.object("metadata")? })
    }
}

/// The version an assistant is to stand at.
pub(in crate::api::langgraph) struct VersionChoice {
    pub version: usize,
}

impl FromBody for VersionChoice {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(VersionChoice { version: body.count("version", 0)? })
    }
}
