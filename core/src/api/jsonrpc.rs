//! JSON-RPC 2.0 as MCP's and A2A's endpoints carry it: one message per POST, told apart as a
//! request, a notification or a response; answers with the request's id.

use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde_json::{json, Value};

use super::json_response;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// A request: it has an id and a method.
pub struct Call {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// What a POSTed message is.
pub enum Message {
    Call(Call),
    /// A notification or a response: nothing to answer but 202.
    NoAnswer,
}

/// Why a message is not one: the code and the text the protocols answer with, and the id when
/// the message had a usable one.
pub struct Malformed {
    pub code: i64,
    pub message: &'static str,
    pub id: Value,
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Message, Malformed> {
        let malformed = |code, message, id| Malformed { code, message, id };
        let value: Value =
            serde_json::from_slice(body).map_err(|_| malformed(PARSE_ERROR, "Invalid JSON", Value::Null))?;
        let Value::Object(mut object) = value else {
            return Err(malformed(INVALID_REQUEST, "Invalid message format: expected an object", Value::Null));
        };
        let id = object.remove("id").unwrap_or(Value::Null);
        let usable_id =
            if matches!(id, Value::String(_) | Value::Number(_) | Value::Null) { id.clone() } else { Value::Null };
        if object.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(malformed(
                INVALID_REQUEST,
                "Invalid JSON-RPC message: missing or invalid jsonrpc version",
                usable_id,
            ));
        }
        if !usable_id.eq(&id) {
            return Err(malformed(
                INVALID_REQUEST,
                "Invalid JSON-RPC request: 'id' must be a string, number, or null",
                Value::Null,
            ));
        }
        match (id, object.remove("method")) {
            (Value::Null, Some(_)) => Ok(Message::NoAnswer),
            (id, Some(Value::String(method))) => {
                Ok(Message::Call(Call { id, method, params: object.remove("params").unwrap_or_else(|| json!({})) }))
            }
            (id, Some(_)) => Err(malformed(METHOD_NOT_FOUND, "Method not found: method must be a string", id)),
            (Value::Null, None) => Err(malformed(
                INVALID_REQUEST,
                "Invalid message format: not a JSON-RPC request or notification",
                Value::Null,
            )),
            (_, None) if object.contains_key("result") || object.contains_key("error") => Ok(Message::NoAnswer),
            (id, None) => Err(malformed(INVALID_REQUEST, "Invalid JSON-RPC request: missing 'method' field", id)),
        }
    }
}

pub fn result(id: &Value, result: Value) -> Response {
    json_response(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// An error answer: HTTP 200 with the error in the body, as JSON-RPC over HTTP carries it.
pub fn error(id: &Value, code: i64, message: impl Into<String>) -> Response {
    json_response(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}}))
}

/// Whether the request's `Accept` allows `media_type` (directly or by a wildcard).
pub fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    accept.split(',').map(|range| range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()).any(
        |range| range == "*/*" || range == media_type || range.strip_suffix("/*").is_some_and(|prefix| prefix == kind),
    )
}
