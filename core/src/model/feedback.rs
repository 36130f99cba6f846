use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::validate::{FieldError, FieldErrors, FromJson, Loc, ObjectReader};
use super::Timestamp;

/// A user's judgement of a run (the UIs' thumbs up and down), as OpenGPTs' feedback request
/// carries it. OpenGPTs sent it to LangSmith; it is kept with the run here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub feedback_id: Uuid,
    pub run_id: Uuid,
    /// What is judged, e.g. `user_score`.
    pub key: String,
    /// A number or a boolean.
    pub score: Option<Value>,
    /// A display value: a number, boolean, string or object.
    pub value: Option<Value>,
    pub comment: Option<String>,
    pub created_at: Timestamp,
}

/// The body of POST `/runs/feedback`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackInput {
    pub run_id: Uuid,
    pub key: String,
    pub score: Option<Value>,
    pub value: Option<Value>,
    pub comment: Option<String>,
}

impl FeedbackInput {
    pub fn into_feedback(self) -> Feedback {
        Feedback {
            feedback_id: Uuid::new_v4(),
            run_id: self.run_id,
            key: self.key,
            score: self.score,
            value: self.value,
            comment: self.comment,
            created_at: Timestamp::now(),
        }
    }
}

/// A JSON value of one of the kinds `allowed` says, or an error naming them.
fn kind_of(value: &Value, loc: &Loc, allowed: fn(&Value) -> bool, expected: &str) -> Result<Value, FieldErrors> {
    if allowed(value) {
        Ok(value.clone())
    } else {
        Err(vec![FieldError::new("type_error", loc, format!("Input should be {expected}"), value)])
    }
}

struct Score(Value);
struct DisplayValue(Value);

impl FromJson for Score {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        kind_of(value, loc, |v| v.is_number() || v.is_boolean(), "a number or a boolean").map(Score)
    }
}

impl FromJson for DisplayValue {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let allowed = |v: &Value| v.is_number() || v.is_boolean() || v.is_string() || v.is_object();
        kind_of(value, loc, allowed, "a number, a boolean, a string or an object").map(DisplayValue)
    }
}

impl FromJson for FeedbackInput {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let run_id = fields.required("run_id");
        let key = fields.required("key");
        let score = fields.optional::<Score>("score").map(|score| score.0);
        let value = fields.optional::<DisplayValue>("value").map(|value| value.0);
        let comment = fields.optional("comment");
        fields.finish(|| Some(FeedbackInput { run_id: run_id?, key: key?, score, value, comment }))
    }
}
