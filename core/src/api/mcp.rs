//! The MCP server at `/mcp` (and `/langgraph/mcp`, as the reference serves it at its root):
//! Streamable HTTP without sessions, JSON-RPC answered with JSON. Each of the caller's
//! assistants is a tool that takes a message and returns the assistant's answer; a call is a
//! run of its own on a thread that goes with it, started through the run service.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};

use super::jsonrpc::{self, Message, INVALID_PARAMS, METHOD_NOT_FOUND};
use super::{ApiError, AppState, Routes, User};
use crate::model::{Assistant, UserId};
use crate::runs::{Outcome, Turn};

/// The protocol versions this server speaks; a client asking for another is offered the latest.
const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const PAGE: usize = 100;

pub fn routes() -> Routes {
    // No GET (no stream to resume) and no DELETE (no session to end): the router's 405.
    Routes::default().route("/mcp", post(serve)).route("/langgraph/mcp", post(serve))
}

async fn serve(
    State(state): State<AppState>,
    User(user): User,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let message = Message::parse(&body).map_err(|malformed| ApiError::BadRequest(malformed.message.into()))?;
    if !jsonrpc::accepts(&headers, "application/json") && !jsonrpc::accepts(&headers, "text/event-stream") {
        return Err(ApiError::BadRequest("Accept header must include application/json or text/event-stream".into()));
    }
    let Message::Call(call) = message else {
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    Ok(match call.method.as_str() {
        "initialize" => jsonrpc::result(&call.id, initialize(&call.params)),
        "ping" => jsonrpc::result(&call.id, json!({})),
        "tools/list" => jsonrpc::result(&call.id, tools_list(&state, &user, &call.params).await?),
        "tools/call" => match tools_call(&state, user, &call.params).await? {
            Ok(result) => jsonrpc::result(&call.id, result),
            Err(refusal) => jsonrpc::error(&call.id, INVALID_PARAMS, refusal),
        },
        other => jsonrpc::error(&call.id, METHOD_NOT_FOUND, format!("Method not found: {other}")),
    })
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
    let version = VERSIONS.iter().find(|known| **known == asked).unwrap_or(&VERSIONS[VERSIONS.len() - 1]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "OpenGPTs Serverless", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// An assistant's name as a tool name (`^[a-zA-Z0-9_.-]{1,128}$`): blanks become `_`, other
/// characters go.
fn tool_name(name: &str) -> String {
    let joined = name.split_whitespace().collect::<Vec<_>>().join("_");
    joined.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(128).collect()
}

/// The caller's assistants that are tools: each name once (the first of a name wins, as the
/// reference keeps it), in the order of their names.
async fn tools(state: &AppState, user: &UserId) -> Result<Vec<(String, Assistant)>, ApiError> {
    let mut assistants = state.store.list_assistants(user).await?;
    assistants.sort_by(|a, b| a.name.cmp(&b.name).then(a.assistant_id.cmp(&b.assistant_id)));
    let mut seen = std::collections::HashSet::new();
    Ok(assistants
        .into_iter()
        .map(|assistant| (tool_name(&assistant.name), assistant))
        .filter(|(name, _)| !name.is_empty() && seen.insert(name.clone()))
        .collect())
}

async fn tools_list(state: &AppState, user: &UserId, params: &Value) -> Result<Value, ApiError> {
    let offset = match params.get("cursor") {
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        Some(Value::Number(number)) => number.as_u64().unwrap_or(0) as usize,
        _ => 0,
    };
    let all = tools(state, user).await?;
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(|(name, assistant)| {
            let description = assistant.profile.as_ref().and_then(|profile| profile.description.clone());
            json!({
                "name": name,
                "title": assistant.name,
                "description": description.unwrap_or_else(|| format!("Tool based on the {} assistant", assistant.name)),
                "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string", "description": "What to ask the assistant"}},
                    "required": ["message"],
                },
                "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true},
            })
        })
        .collect();
    let mut result = json!({"tools": page});
    if all.len() > offset + PAGE {
        result["nextCursor"] = json!((offset + PAGE).to_string());
    }
    Ok(result)
}

/// The call's answer, or why the call names no tool or says nothing to ask (JSON-RPC's invalid
/// params). What the assistant came to, a failure among it, is the tool's result.
async fn tools_call(state: &AppState, user: UserId, params: &Value) -> Result<Result<Value, String>, ApiError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
    let Some((_, assistant)) = tools(state, &user).await?.into_iter().find(|(tool, _)| tool == name) else {
        return Ok(Err(format!("Unknown tool: {name}")));
    };
    let Some(text) = question(params.get("arguments").unwrap_or(&Value::Null)) else {
        return Ok(Err("Invalid params: the argument 'message' (a text) is required".into()));
    };
    let turn = Turn { assistant_id: assistant.assistant_id, thread_id: None, text };
    let (text, failed) = match state.runs.take_turn(user, turn).await {
        Ok((_, _, Outcome::Answered(answer))) => (answer, false),
        Ok((_, _, Outcome::AwaitsConfirmation(calls))) => {
            let names: Vec<&str> = calls.iter().filter_map(|call| call.get("name").and_then(Value::as_str)).collect();
            (format!("The assistant stopped for a confirmation before calling {}", names.join(", ")), true)
        }
        Ok((_, _, Outcome::Failed(reason))) => (reason, true),
        Ok((_, _, Outcome::Cancelled | Outcome::Working)) => ("The assistant's run was cancelled".into(), true),
        // A refused start is this call's failure, told to the caller as the tool's.
        Err(error) => (ApiError::from(error).to_string(), true),
    };
    let mut result = json!({"content": [{"type": "text", "text": text}]});
    if failed {
        result["isError"] = json!(true);
    }
    Ok(Ok(result))
}

/// The text to ask: `message`, or the last of the reference's `messages` (text or `{content}`).
fn question(arguments: &Value) -> Option<String> {
    let last = arguments.get("messages").and_then(Value::as_array).and_then(|messages| messages.last());
    let text = match (arguments.get("message"), last) {
        (Some(Value::String(text)), _) => text.clone(),
        (_, Some(Value::String(text))) => text.clone(),
        (_, Some(message)) => message.get("content").and_then(Value::as_str)?.to_string(),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_tool_names_and_questions_are_found_in_either_shape() {
        assert_eq!(tool_name("  Research  helper (v2) "), "Research_helper_v2");
        assert_eq!(tool_name("日本"), "");
        assert_eq!(question(&json!({"message": "hi"})), Some("hi".into()));
        assert_eq!(question(&json!({"messages": [{"role": "user", "content": "hello"}]})), Some("hello".into()));
        assert_eq!(question(&json!({"message": "  "})), None);
        assert_eq!(question(&json!({})), None);
    }
}
