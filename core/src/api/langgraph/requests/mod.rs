//! The LangGraph API's request bodies, each read once into its own type before its handler
//! runs. A wrong field is a 422 that names it, as the reference's schema validation answers;
//! a handler sees only typed values.

mod assistants;
#[cfg(feature = "runs")]
mod crons;
mod store;
mod threads;

use axum::extract::{FromRequest, Request};

use super::body::Body;
use crate::api::{ApiError, AppState};

pub(super) use assistants::{
    AssistantCreate, AssistantFilter, AssistantPatch, AssistantSearch, BotSettings, VersionChoice, VersionSearch,
};
#[cfg(feature = "runs")]
pub(super) use crons::{CronFields, CronFilter, CronSearch};
pub(super) use store::{labels, ItemKey, ItemPut, ItemSearch, NamespaceSearch};
pub(super) use threads::{HistoryPage, Prune, StateUpdate, ThreadCreate, ThreadFilter, ThreadPatch, ThreadSearch};

/// A request body's type: how it is read from the body's fields.
pub(super) trait FromBody: Sized {
    fn from_body(body: &Body) -> Result<Self, ApiError>;
}

/// A body parsed into `T`; an empty body is read as `{}` (the SDKs send none for some calls).
pub(super) struct Parsed<T>(pub T);

impl<T: FromBody> FromRequest<AppState> for Parsed<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let body = Body::from_request(request, state).await?;
        T::from_body(&body).map(Parsed)
    }
}

/// `limit` and `offset` of a search.
#[derive(Clone, Copy)]
pub(super) struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    fn read(body: &Body, default_limit: usize) -> Result<Self, ApiError> {
        Ok(Page { limit: body.count("limit", default_limit)?, offset: body.count("offset", 0)? })
    }
}

/// What a create does when the record exists: `raise` a 409, or `do_nothing` and show it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum IfExists {
    Raise,
    DoNothing,
}

impl IfExists {
    fn read(body: &Body) -> Result<Self, ApiError> {
        Ok(match body.choice("if_exists", &["raise", "do_nothing"])? {
            Some("do_nothing") => IfExists::DoNothing,
            _ => IfExists::Raise,
        })
    }
}
