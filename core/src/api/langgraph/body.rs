//! A LangGraph request's JSON object, as the request types of `requests` read it field by field:
//! each wrong field a 422 that names it, as the reference's schema validation does.

use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use super::unprocessable;
use crate::api::{ApiError, AppState};
use crate::model::validate::{whole_number, FromJson, Loc};
use crate::model::Message;

/// A JSON object body; an empty body is an empty object (the SDK sends none for some calls).
pub struct Body(pub Map<String, Value>);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(fields)) => Ok(Body(fields)),
            Ok(other) => Err(unprocessable(format!("{other} is not of type 'object'"))),
            Err(_) => Err(unprocessable("Invalid JSON in request body")),
        }
    }
}

impl Body {
    fn present(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|value| !value.is_null())
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.present(key)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(unprocessable(format!("{other} is not of type 'string' ('{key}')"))),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, ApiError> {
        self.string(key)?.ok_or_else(|| unprocessable(format!("'{key}' is a required property")))
    }

    pub fn object(&self, key: &str) -> Result<Map<String, Value>, ApiError> {
        match self.present(key) {
            None => Ok(Map::new()),
            Some(Value::Object(fields)) => Ok(fields.clone()),
            Some(other) => Err(unprocessable(format!("{other} is not of type 'object' ('{key}')"))),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<bool, ApiError> {
        match self.present(key) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(unprocessable(format!("{other} is not of type 'boolean' ('{key}')"))),
        }
    }

    /// A count such as `limit` or `offset`.
    pub fn count(&self, key: &str, default: usize) -> Result<usize, ApiError> {
        match self.present(key) {
            None => Ok(default),
            Some(value) => whole_number(value)
                .map(|count| count as usize)
                .ok_or_else(|| unprocessable(format!("{value} is not of type 'integer' ('{key}')"))),
        }
    }

    /// A string that must be one of `allowed`.
    pub fn choice(&self, key: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, ApiError> {
        let Some(text) = self.string(key)? else { return Ok(None) };
        allowed.iter().find(|choice| **choice == text).map(|choice| Some(*choice)).ok_or_else(|| {
            let names = allowed.iter().map(|choice| format!("'{choice}'")).collect::<Vec<_>>().join(", ");
            unprocessable(format!("'{text}' is not one of [{names}] ('{key}')"))
        })
    }

    /// A UUID field, such as `thread_id`.
    pub fn id(&self, key: &str) -> Result<Option<uuid::Uuid>, ApiError> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => uuid::Uuid::parse_str(&text)
                .map(Some)
                .map_err(|_| unprocessable(format!("'{text}' is not a valid UUID ('{key}')"))),
        }
    }
}

/// Messages of a state update or a run's input: LangChain's dicts (`type`) or OpenAI's
/// (`role`: user, assistant, system, tool).
pub fn messages(value: &Value, key: &str) -> Result<Vec<Message>, ApiError> {
    let Value::Array(items) = value else {
        return Err(unprocessable(format!("{value} is not of type 'array' ('{key}')")));
    };
    let mut messages = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut item = item.clone();
        if let Some(fields) = item.as_object_mut() {
            if !fields.contains_key("type") {
                if let Some(role) = fields.remove("role") {
                    let kind = match role.as_str() {
                        Some("user") => "human",
                        Some("assistant") => "ai",
                        Some(other) => other,
                        None => "",
                    };
                    fields.insert("type".into(), Value::from(kind));
                }
            }
        }
        let loc = Loc::root(key).index(index);
        let message = Message::from_json(&item, &loc).map_err(|errors| {
            let reasons: Vec<String> = errors
                .iter()
                .map(|error| {
                    let path: Vec<String> = error.loc.iter().map(|part| part.to_string().replace('"', "")).collect();
                    format!("{}: {}", path.join("."), error.msg)
                })
                .collect();
            unprocessable(format!("Invalid message in '{key}': {}", reasons.join("; ")))
        })?;
        messages.push(message);
    }
    Ok(messages)
}
