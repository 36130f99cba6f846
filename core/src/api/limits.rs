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

pub fn check_name(limits: &Limits, name: &str) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if chars > limits.max_name_chars {
        let msg = format!("A name may have at most {} characters; this one has {chars}", limits.max_name_chars);
        return Err(too_long(Loc::body().key("name"), msg, Value::from(name)));
    }
    Ok(())
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
