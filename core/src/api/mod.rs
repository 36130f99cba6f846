//! HTTP: one router per endpoint group, served the same way by the local server and by Lambda.
//! Nothing here knows which of the two it runs in.

pub mod assistants;
pub mod auth;
mod error;
pub mod extract;
pub mod jwt;
pub mod limits;
pub mod meta;
pub mod runs;
pub mod sse;
pub mod threads;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::{Authenticator, CookieAuth, User};
pub use error::ApiError;

use crate::config::{AuthConfig, Config, ConfigError};
use crate::llm::ModelCatalog;
use crate::runs::{BackgroundDispatch, InProcessDispatch, RunEngine};
use crate::store::Store;

/// What every handler can reach. Cheap to clone: all shared behind `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<dyn Authenticator>,
    pub models: Arc<ModelCatalog>,
    pub runs: RunEngine,
}

impl AppState {
    /// Background runs execute in this process.
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        Self::with_dispatch(config, store, Arc::new(InProcessDispatch))
    }

    pub fn with_dispatch(
        config: Config,
        store: Arc<dyn Store>,
        dispatch: Arc<dyn BackgroundDispatch>,
    ) -> Result<Self, ConfigError> {
        let config = Arc::new(config);
        let models = Arc::new(ModelCatalog::new(&config));
        let runs = RunEngine::new(store.clone(), models.clone(), config.clone(), dispatch);
        let auth: Arc<dyn Authenticator> = match &config.auth {
            AuthConfig::Cookie => Arc::new(CookieAuth),
            AuthConfig::JwtLocal { jwt, algorithm, decode_key } => {
                Arc::new(jwt::LocalJwt::new(jwt, algorithm, decode_key).map_err(|reason| ConfigError {
                    name: "JWT_DECODE_KEY_B64",
                    value: "(hidden)".into(),
                    reason,
                })?)
            }
            AuthConfig::JwtOidc { jwt } => Arc::new(jwt::OidcJwt::new(jwt.clone())),
        };
        Ok(AppState { config, store, auth, models, runs })
    }
}

/// Every route of the API.
pub fn routes() -> Router<AppState> {
    Router::new().merge(assistants::router()).merge(threads::router()).merge(runs::router()).merge(meta::router())
}

/// A servable app from some routes: JSON 404 and 405 answers for everything they do not match,
/// and CORS headers for the configured browser origins.
pub fn app(routes: Router<AppState>, state: AppState) -> Router {
    let cors = cors(&state.config.cors_allow_origins);
    let app = routes
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{header, Method};
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    if origins.iter().any(|origin| origin == "*") {
        // Any origin, so no credentials: browsers refuse `*` together with cookies.
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let list: Vec<HeaderValue> = origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    Some(layer.allow_origin(AllowOrigin::list(list)).allow_credentials(true))
}

/// Routes `path` both with and without a trailing slash: OpenGPTs clients use both spellings.
pub(crate) fn route(path: &str, methods: MethodRouter<AppState>) -> Router<AppState> {
    Router::new().route(path, methods.clone()).route(&format!("{path}/"), methods)
}

/// Serializes straight to the response body, without building a JSON tree first.
pub(crate) fn json_response(body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(error) => ApiError::Internal(format!("could not serialize the response: {error}")).into_response(),
    }
}
