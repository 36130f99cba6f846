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

/// The streams each user has open in this process (`MAX_STREAMS_PER_USER`): a stream holds a
/// connection and a task for as long as its client keeps it, waiting runs included.
#[derive(Clone)]
pub struct StreamSlots {
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<crate::model::UserId, usize>>>,
    limit: usize,
}

/// One open stream; dropping it (the response ended, or its client left) frees the slot.
pub struct StreamSlot {
    slots: StreamSlots,
    user: crate::model::UserId,
}

impl StreamSlots {
    pub fn new(limit: usize) -> Self {
        StreamSlots { open: Default::default(), limit }
    }

    pub fn take(&self, user: &crate::model::UserId) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user.clone()).or_default();
        if *count >= self.limit {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "You have {} streams open, the most allowed at once (MAX_STREAMS_PER_USER); close one and try again",
                    self.limit
                ),
                retry_after_seconds: 1,
            });
        }
        *count += 1;
        Ok(StreamSlot { slots: self.clone(), user: user.clone() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}
