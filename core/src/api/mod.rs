//! HTTP: one router per endpoint group, served the same way by the local server and by Lambda.
//! Nothing here knows which of the two it runs in.

#[cfg(feature = "agent_protocols")]
mod a2a;
pub mod assistants;
pub mod auth;
mod drain;
mod error;
pub mod extract;
#[cfg(feature = "files")]
pub mod ingest;
#[cfg(feature = "agent_protocols")]
mod jsonrpc;
pub mod jwt;
pub mod langgraph;
pub mod limits;
#[cfg(feature = "agent_protocols")]
mod mcp;
pub mod meta;
mod my_data;
#[cfg(feature = "runs")]
pub mod runs;
pub mod schemas;
#[cfg(feature = "runs")]
pub mod sse;
pub mod threads;

use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

pub use auth::{Authenticator, CookieAuth, User};
pub use error::ApiError;

use crate::config::{AuthConfig, Config, ConfigError};
#[cfg(feature = "files")]
use crate::documents::uploads::Uploads;
use crate::documents::{embedder_from_config, Library};
#[cfg(feature = "runs")]
use crate::llm::ModelCatalog;
#[cfg(feature = "runs")]
use crate::runs::{BackgroundDispatch, InProcessDispatch, RunEngine};
use crate::schedules::{InProcessSchedules, Schedules};
use crate::store::Store;
use crate::tools::Toolbox;

/// What every handler can reach. Cheap to clone: all shared behind `Arc`s. The run engine and
/// the uploads are there in the builds whose routes use them (the `runs` and `files` features).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<dyn Authenticator>,
    pub tools: Toolbox,
    pub library: Library,
    /// Large files through presigned S3 URLs, when `UPLOAD_BUCKET` is set.
    #[cfg(feature = "files")]
    pub uploads: Option<Arc<Uploads>>,
    #[cfg(feature = "runs")]
    pub runs: RunEngine,
    pub streams: limits::StreamSlots,
    /// Where crons' schedules are kept (see [`AppState::with_schedules`]).
    pub schedules: Arc<dyn Schedules>,
}

impl AppState {
    /// Background runs execute in this process (see [`AppState::with_dispatch`]).
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        // Any TLS the process speaks, not only its HTTP clients', through one crypto library.
        crate::config::install_tls_provider();
        let config = Arc::new(config);
        let library = Library::new(store.clone(), embedder_from_config(&config));
        #[cfg(feature = "files")]
        let library = library.with_limits(config.ingest.clone());
        let tools = Toolbox::new(&config, library.clone());
        let auth: Arc<dyn Authenticator> = match &config.auth {
            AuthConfig::Cookie { uuid_only, anonymous } => Arc::new(CookieAuth {
                uuid_only: *uuid_only,
                anonymous: anonymous.as_deref().and_then(crate::model::UserId::new),
            }),
            AuthConfig::JwtLocal { jwt, algorithm, decode_key } => {
                Arc::new(jwt::LocalJwt::new(jwt, algorithm, decode_key.expose()).map_err(|reason| ConfigError {
                    name: "JWT_DECODE_KEY_B64",
                    value: "(hidden)".into(),
                    reason,
                })?)
            }
            AuthConfig::JwtOidc { jwt } => Arc::new(jwt::OidcJwt::new(jwt.clone())),
        };
        Ok(AppState {
            #[cfg(feature = "runs")]
            runs: RunEngine::new(
                store.clone(),
                Arc::new(ModelCatalog::new(&config)),
                tools.clone(),
                library.clone(),
                config.clone(),
                Arc::new(InProcessDispatch),
            ),
            #[cfg(feature = "files")]
            uploads: config.uploads.clone().map(|settings| Arc::new(Uploads::new(settings))),
            streams: limits::StreamSlots::new(config.limits.max_streams_per_user),
            schedules: Arc::new(InProcessSchedules),
            config,
            store,
            auth,
            tools,
            library,
        })
    }

    /// The same state, handing background runs to `dispatch` (the `run-worker` function).
    #[cfg(feature = "runs")]
    pub fn with_dispatch(mut self, dispatch: Arc<dyn BackgroundDispatch>) -> Self {
        self.runs = self.runs.with_dispatch(dispatch);
        self
    }

    /// What fires crons: the run service, the store and the schedules of this state.
    #[cfg(feature = "runs")]
    pub fn crons(&self) -> crate::schedules::Crons {
        let (runs, store, schedules) = (self.runs.clone(), self.store.clone(), self.schedules.clone());
        crate::schedules::Crons { runs, store, schedules }
    }

    /// The same state, keeping crons' schedules in `schedules` (EventBridge Scheduler).
    pub fn with_schedules(mut self, schedules: Arc<dyn Schedules>) -> Self {
        self.schedules = schedules;
        self
    }

    /// Opens, during a Lambda's init, the connections its first request would otherwise pay
    /// for: the store's, and the run worker's where runs are handed to one.
    pub async fn warm_up(&self) {
        #[cfg(feature = "runs")]
        tokio::join!(self.store.warm_up(), self.runs.warm_up());
        #[cfg(not(feature = "runs"))]
        self.store.warm_up().await;
    }
}

/// The Lambda functions that answer HTTP, and the routes each serves: the one place that says
/// which function owns which route. The functions' mains serve these; `template.yaml`, the
/// `cargo lambda watch` router and `openapi.json` are checked against them (`tests/routes.rs`).
/// A function exists in the builds that carry what its routes need, so a binary built without
/// them does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `/assistants` and the service routes.
    Assistants,
    Threads,
    /// Every `/runs` route (the stream too, buffered, where the REST API's proxy sends it); hands
    /// background runs to `run-worker`.
    #[cfg(feature = "dispatch")]
    Runs,
    /// `POST /runs/stream`, answered through Lambda response streaming.
    #[cfg(feature = "runs")]
    RunsStream,
    /// `POST /ingest`: uploaded files read, embedded and stored.
    #[cfg(feature = "files")]
    Ingest,
}

impl Function {
    #[cfg(feature = "server")]
    pub const ALL: [Function; 5] =
        [Function::Assistants, Function::Threads, Function::Runs, Function::RunsStream, Function::Ingest];

    /// The binary's name under `functions/`, as `template.yaml` and `cargo lambda` call it.
    pub fn binary(self) -> &'static str {
        match self {
            Function::Assistants => "assistants",
            Function::Threads => "threads",
            #[cfg(feature = "dispatch")]
            Function::Runs => "runs",
            #[cfg(feature = "runs")]
            Function::RunsStream => "runs-stream",
            #[cfg(feature = "files")]
            Function::Ingest => "ingest",
        }
    }

    pub fn routes(self) -> Routes {
        match self {
            Function::Assistants => function_routes::assistants(),
            Function::Threads => function_routes::threads(),
            #[cfg(feature = "dispatch")]
            Function::Runs => function_routes::runs(),
            #[cfg(feature = "runs")]
            Function::RunsStream => function_routes::runs_stream(),
            #[cfg(feature = "files")]
            Function::Ingest => function_routes::ingest(),
        }
    }
}

/// Each function's routes, for its `main` to name: a function that chose among them at run time
/// would link every other function's routes too (what its features allow), and its zip carry them.
pub mod function_routes {
    use super::*;

    pub fn assistants() -> Routes {
        assistants::routes().merge(meta::routes()).merge(langgraph::service_routes())
    }

    pub fn threads() -> Routes {
        threads::routes().merge(langgraph::thread_routes()).merge(my_data::routes())
    }

    #[cfg(feature = "dispatch")]
    pub fn runs() -> Routes {
        runs::routes().merge(langgraph::run_routes())
    }

    #[cfg(feature = "runs")]
    pub fn runs_stream() -> Routes {
        let routes = runs::stream_routes().merge(langgraph::stream_routes());
        #[cfg(feature = "agent_protocols")]
        let routes = routes.merge(mcp::routes()).merge(a2a::routes());
        routes
    }

    #[cfg(feature = "files")]
    pub fn ingest() -> Routes {
        ingest::routes()
    }
}

/// Every route: what `functions/api` and the local server answer. The OpenGPTs API's are what
/// `openapi.json` describes (`/runs/stream` is among the `Runs` routes too); the LangGraph API's
/// are under `/langgraph`.
#[cfg(feature = "server")]
pub fn routes() -> Routes {
    Function::Assistants
        .routes()
        .merge(Function::Threads.routes())
        .merge(Function::Runs.routes())
        .merge(Function::Ingest.routes())
        .merge(langgraph::stream_routes())
        .merge(mcp::routes())
        .merge(a2a::routes())
}

/// A router that knows its paths, so the route table can be compared with its descriptions.
#[derive(Clone, Default)]
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    /// Routes `path` both with and without a trailing slash: OpenGPTs clients use both spellings.
    pub(crate) fn route(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.router = match path {
            "/" => self.router.route(path, methods),
            _ => self.router.route(path, methods.clone()).route(&format!("{path}/"), methods),
        };
        self.paths.push(path);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// The paths served, in axum's syntax (`/threads/{thread_id}`), without trailing slashes.
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }
}

/// A servable app from some routes: JSON 404 and 405 answers for everything they do not match,
/// and CORS headers for the configured browser origins.
pub fn app(routes: Routes, state: AppState) -> Router {
    let cors = cors(&state.config.cors_allow_origins);
    let app = routes
        .router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(drain::drain_unread))
        .layer(axum::middleware::from_fn(trace_request))
        .with_state(state);
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// One span per request, and one line when it is answered: method, route (the pattern, so no
/// ids), status and latency to the response head. The user is left out: it is personal data.
async fn trace_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let span = tracing::info_span!("request", method = %request.method(), route = route.as_deref().unwrap_or("-"));
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), latency_ms, "answered"));
    response
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{header, Method};
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static("last-event-id"),
            // What MCP's and A2A's browser clients send (the MCP Inspector, for one).
            header::HeaderName::from_static("mcp-protocol-version"),
            header::HeaderName::from_static("mcp-session-id"),
            header::HeaderName::from_static("a2a-version"),
        ])
        .expose_headers([
            header::LOCATION,
            header::CONTENT_LOCATION,
            header::HeaderName::from_static("x-pagination-total"),
            header::HeaderName::from_static("x-pagination-next"),
        ]);
    if origins.iter().any(|origin| origin == "*") {
        // Any origin, so no credentials: browsers refuse `*` together with cookies.
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let list: Vec<HeaderValue> = origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    let loopback = origins.iter().any(|origin| origin == crate::config::LOOPBACK_ORIGINS);
    let allowed = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        list.contains(origin) || (loopback && origin.to_str().is_ok_and(is_loopback_origin))
    });
    Some(layer.allow_origin(allowed).allow_credentials(true))
}

/// A page served from this machine (`http://localhost:3000`, `http://127.0.0.1:5173`, ...).
fn is_loopback_origin(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else { return false };
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// Serializes straight to the response body, without building a JSON tree first.
pub(crate) fn json_response(body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(error) => ApiError::Internal(format!("could not serialize the response: {error}")).into_response(),
    }
}
