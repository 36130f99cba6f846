//! Liveness and self-description: `/ok`, `/health`, `/openapi.json`, `/docs`.

use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{route, AppState};

/// The OpenAPI description, written by hand next to the routers it describes.
const OPENAPI: &str = include_str!("openapi.json");
/// A self-contained page (no CDN) that renders [`OPENAPI`] and sends requests from the browser.
const DOCS: &str = include_str!("docs.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(route("/ok", get(|| async { Json(json!({"ok": true})) })))
        .merge(route("/health", get(|| async { Json(json!({"status": "ok"})) })))
        .merge(route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) })))
        .merge(route("/docs", get(|| async { Html(DOCS) })))
}
