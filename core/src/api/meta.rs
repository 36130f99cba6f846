//! Liveness, self-description and a page to try it: `/ok`, `/health`, `/openapi.json`, `/docs`, `/`.

use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use axum::Json;
use serde_json::json;

use super::Routes;

/// The OpenAPI description, written by hand next to the routers it describes.
const OPENAPI: &str = include_str!("openapi.json");
/// A self-contained page (no CDN) that renders [`OPENAPI`] and sends requests from the browser.
const DOCS: &str = include_str!("docs.html");
/// A self-contained chat page (no CDN, no build step): assistants from the config schema, chats
/// with streamed answers, the history of a chat on reload.
const PLAYGROUND: &str = include_str!("playground.html");

/// One schema of the OpenAPI description's components, for the JSON Schemas `/runs` serves.
pub(crate) fn openapi_schema(name: &str) -> serde_json::Value {
    static DESCRIPTION: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let description = DESCRIPTION.get_or_init(|| serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON"));
    description["components"]["schemas"][name].clone()
}

pub fn routes() -> Routes {
    Routes::default()
        .route("/ok", get(|| async { Json(json!({"ok": true})) }))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/docs", get(|| async { Html(DOCS) }))
        .route("/", get(|| async { Html(PLAYGROUND) }))
}
