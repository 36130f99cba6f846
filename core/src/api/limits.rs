//! Limits on what one request may carry, so no client can fill the store or a model's context
//! by accident or on purpose. Counts and names answer 422; sizes answer 413.

use serde_json::{Map, Value};

use super::ApiError;
use crate::config::Limits;
use crate::model::validate::{FieldError, Loc};
use crate::model::Message;

fn too_long(loc: Loc, msg: String, input: Value) -> ApiError {
    ApiError::Validation(vec![FieldError::new("too_long", &loc, msg, &input)])
}

/// A name as stored: whole, or its first characters and `…` past `max_name_chars`. Both UIs
/// name a thread with the whole first message, which may be long: refusing it would lose the
/// message, and keeping it whole would make every list carry it.
pub fn shorten_name(limits: &Limits, name: String) -> String {
    if name.chars().count() <= limits.max_name_chars {
        return name;
    }
    let mut short: String = name.chars().take(limits.max_name_chars.saturating_sub(1)).collect();
    short.push('…');
    short
}

pub fn check_config(limits: &Limits, config: &Map<String, Value>) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(config).map(|json| json.len()).unwrap_or(usize::MAX);
    if bytes > limits.max_config_bytes {
        return Err(ApiError::TooLarge(format!(
            "An assistant's config may be at most {} bytes of JSON; this one is {bytes}",
            limits.max_config_bytes
        )));
    }
    Ok(())
}

/// `field` names where the messages sit in the body (`messages`, `values`, `input`).
pub fn check_messages(limits: &Limits, messages: &[Message], field: &str) -> Result<(), ApiError> {
    if messages.len() > limits.max_messages_per_request {
        let msg = format!(
            "At most {} messages may be sent in one request; this one has {}",
            limits.max_messages_per_request,
            messages.len()
        );
        return Err(too_long(Loc::body().key(field), msg, Value::from(messages.len())));
    }
    if let Some((index, message)) =
        messages.iter().enumerate().find(|(_, message)| message.content.len() > limits.max_message_bytes)
    {
        return Err(ApiError::TooLarge(format!(
            "Message {index} of '{field}' has {} bytes of content; the limit is {}",
            message.content.len(),
            limits.max_message_bytes
        )));
    }
    Ok(())
}
