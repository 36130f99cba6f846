//! The bodies of `/langgraph/threads`.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::body::messages;
use super::super::listing::{Fields, Listing};
use super::super::{detail, unprocessable, Graph};
use super::{Body, FromBody, IfExists, Page};
use crate::api::ApiError;
use crate::model::{Message, ThreadTtl, Timestamp, TtlStrategy};

/// The most threads one prune takes: the reference's batch.
const MAX_PRUNE: usize = 100;

/// A thread's lifetime as a create or a patch asks for it; it runs from then.
#[derive(Clone, Copy)]
pub(in crate::api::langgraph) struct TtlRequest {
    strategy: TtlStrategy,
    minutes: f64,
}

impl TtlRequest {
    /// A `ttl` as the SDKs send it: `{"ttl": minutes, "strategy": "delete" | "keep_latest"}`, or
    /// minutes alone. Absent or null: none given.
    fn read(body: &Body) -> Result<Option<Self>, ApiError> {
        let (minutes, strategy) = match body.raw("ttl") {
            None => return Ok(None),
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
        Ok(Some(TtlRequest { strategy, minutes }))
    }

    pub fn starting(self, now: Timestamp) -> ThreadTtl {
        ThreadTtl::starting(self.strategy, self.minutes, now)
    }
}

/// The reference's 422 for a strategy it does not know.
fn unknown_strategy(name: impl std::fmt::Display) -> ApiError {
    unprocessable(format!("Invalid strategy: {name}. Expected 'delete' or 'keep_latest'."))
}

pub(in crate::api::langgraph) struct ThreadCreate {
    pub if_exists: IfExists,
    pub metadata: Map<String, Value>,
    pub thread_id: Option<Uuid>,
    pub ttl: Option<TtlRequest>,
}

impl FromBody for ThreadCreate {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ThreadCreate {
            if_exists: IfExists::read(body)?,
            metadata: body.object("metadata")?,
            thread_id: body.id("thread_id")?,
            ttl: TtlRequest::read(body)?,
        })
    }
}

/// A thread's metadata merged with more, and perhaps a new lifetime.
pub(in crate::api::langgraph) struct ThreadPatch {
    pub metadata: Map<String, Value>,
    pub ttl: Option<TtlRequest>,
}

impl FromBody for ThreadPatch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ThreadPatch { metadata: body.object("metadata")?, ttl: TtlRequest::read(body)? })
    }
}

/// Which threads a search or a count takes.
pub(in crate::api::langgraph) struct ThreadFilter {
    pub metadata: Map<String, Value>,
    pub values: Map<String, Value>,
    pub status: Option<&'static str>,
    /// Ids that are not UUIDs name no thread.
    pub ids: Option<Vec<Uuid>>,
}

impl FromBody for ThreadFilter {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ThreadFilter {
            metadata: body.object("metadata")?,
            values: body.object("values")?,
            status: body.choice("status", &["idle", "busy", "interrupted", "error"])?,
            ids: body.raw("ids").map(|ids| {
                let listed = ids.as_array().into_iter().flatten();
                listed.filter_map(|id| id.as_str().and_then(|id| Uuid::parse_str(id).ok())).collect()
            }),
        })
    }
}

/// What a thread search may select and sort by, as the reference allows.
const THREAD_FIELDS: Fields = Fields {
    selectable: &[
        "thread_id",
        "created_at",
        "updated_at",
        "state_updated_at",
        "metadata",
        "config",
        "status",
        "values",
        "interrupts",
    ],
    sortable: &["thread_id", "status", "created_at", "updated_at", "state_updated_at"],
    extractable: true,
};

pub(in crate::api::langgraph) struct ThreadSearch {
    pub page: Page,
    pub listing: Listing,
    pub filter: ThreadFilter,
}

impl FromBody for ThreadSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(ThreadSearch {
            page: Page::read(body, 10)?,
            listing: Listing::read(body, &THREAD_FIELDS)?,
            filter: ThreadFilter::from_body(body)?,
        })
    }
}

/// `POST /threads/prune`: at most `MAX_PRUNE` threads, each deleted or kept at its latest state.
pub(in crate::api::langgraph) struct Prune {
    pub thread_ids: Vec<Uuid>,
    pub strategy: TtlStrategy,
}

impl FromBody for Prune {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let ids = match body.raw("thread_ids") {
            Some(Value::Array(ids)) => ids,
            _ => return Err(unprocessable("'thread_ids' is a required list of thread IDs")),
        };
        if ids.len() > MAX_PRUNE {
            return Err(unprocessable(format!("At most {MAX_PRUNE} threads may be pruned at once, not {}", ids.len())));
        }
        let thread_ids = ids
            .iter()
            .map(|id| id.as_str().and_then(|id| Uuid::parse_str(id).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| unprocessable("Invalid thread ID: must be a UUID"))?;
        let strategy = match body.string("strategy")? {
            None => TtlStrategy::Delete,
            Some(name) => TtlStrategy::parse(&name).ok_or_else(|| unknown_strategy(name))?,
        };
        Ok(Prune { thread_ids, strategy })
    }
}

/// `POST /threads/{id}/state`: the messages that become the thread's state.
pub(in crate::api::langgraph) struct StateUpdate {
    pub messages: Vec<Message>,
}

impl FromBody for StateUpdate {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        if let Some(node) = body.string("as_node")? {
            if !Graph::any_node(&node) {
                return Err(unprocessable(format!("Node '{node}' is not a node of this graph")));
            }
        }
        let messages = match body.raw("values") {
            Some(Value::Object(values)) => match values.get("messages") {
                Some(list) => messages(list, "values.messages")?,
                None => Vec::new(),
            },
            Some(list @ Value::Array(_)) => messages(list, "values")?,
            None => Vec::new(),
            Some(other) => {
                return Err(detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{other} is not of type 'object' ('values')"),
                ))
            }
        };
        Ok(StateUpdate { messages })
    }
}

/// A page of a thread's history: `limit` states from the one before `before`.
pub(in crate::api::langgraph) struct HistoryPage {
    pub limit: usize,
    /// The checkpoint id the page starts after.
    pub before: Option<String>,
}

impl HistoryPage {
    const DEFAULT_LIMIT: usize = 10;

    /// The newest states, as a `GET` (which has no body) asks for them.
    pub fn newest() -> Self {
        HistoryPage { limit: Self::DEFAULT_LIMIT, before: None }
    }
}

impl FromBody for HistoryPage {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let before = body.raw("before").map(|before| {
            let id = before["configurable"]["checkpoint_id"].as_str().or(before["checkpoint_id"].as_str());
            id.unwrap_or_default().to_string()
        });
        Ok(HistoryPage { limit: body.count("limit", Self::DEFAULT_LIMIT)?, before })
    }
}
