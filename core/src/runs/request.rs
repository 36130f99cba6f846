//! The body of POST `/runs` and `/runs/stream`, in either generation's shape.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::validate::{whole_number, FieldError, FieldErrors, FromJson, Loc, ObjectReader};
use crate::model::{Generation, Message, MultitaskStrategy, OnDisconnect, RunInput};

/// The strategies the OpenGPTs API takes (`rollback` is the LangGraph API's alone).
const STRATEGIES: [(&str, MultitaskStrategy); 3] = [
    ("reject", MultitaskStrategy::Reject),
    ("enqueue", MultitaskStrategy::Enqueue),
    ("interrupt", MultitaskStrategy::Interrupt),
];

const DISCONNECTS: [(&str, OnDisconnect); 2] = [("cancel", OnDisconnect::Cancel), ("continue", OnDisconnect::Continue)];

/// A string that must be one of `names`; the error lists them.
fn one_of<T: Copy>(value: &Value, loc: &Loc, names: &[(&'static str, T)]) -> Result<T, FieldErrors> {
    let text = String::from_json(value, loc)?;
    names.iter().find(|(name, _)| *name == text).map(|(_, item)| *item).ok_or_else(|| {
        let expected = names.iter().map(|(name, _)| format!("'{name}'")).collect::<Vec<_>>().join(", ");
        let mut error = FieldError::new("enum", loc, format!("Input should be one of {expected}"), value);
        error.ctx = Some(serde_json::json!({ "expected": expected }));
        vec![error]
    })
}

impl FromJson for MultitaskStrategy {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        one_of(value, loc, &STRATEGIES)
    }
}

impl FromJson for OnDisconnect {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        one_of(value, loc, &DISCONNECTS)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub thread_id: Uuid,
    /// Seed clients name the assistant; latest ones use the thread's.
    pub assistant_id: Option<Uuid>,
    pub input: RunInput,
    /// `configurable` values that override the assistant's for this run only.
    pub configurable: Map<String, Value>,
    /// `config.recursion_limit`: the most steps this run's agent may take.
    pub recursion_limit: Option<u32>,
    pub multitask_strategy: MultitaskStrategy,
    /// Unset: each generation's habit. The latest UI cancels by closing the stream; the seed
    /// era's clients relied on the run finishing.
    pub on_disconnect: OnDisconnect,
    /// How long the run waits, holding its thread, before it starts (`after_seconds`).
    pub start_after: Option<std::time::Duration>,
    /// Called with the run once it ends.
    pub webhook: Option<String>,
}

impl FromJson for RunRequest {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let thread_id = fields.required("thread_id");
        let assistant_id = fields.optional("assistant_id");
        let multitask_strategy = fields.optional("multitask_strategy").unwrap_or_default();
        let on_disconnect: Option<OnDisconnect> = fields.optional("on_disconnect");
        let webhook: Option<String> = fields.optional("webhook");
        let config: Option<Map<String, Value>> = fields.optional("config");
        let configurable = match config.as_ref().and_then(|config| config.get("configurable")) {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(configurable)) => Some(configurable.clone()),
            Some(other) => {
                let loc = fields.loc().key("config").key("configurable");
                fields.push_error(FieldError::new("dict_type", &loc, "Input should be a valid dictionary", other));
                None
            }
        };
        let recursion_limit = match config.as_ref().and_then(|config| config.get("recursion_limit")) {
            None | Some(Value::Null) => None,
            Some(raw) => match whole_number(raw).filter(|limit| (1..=1000).contains(limit)) {
                Some(limit) => Some(limit as u32),
                None => {
                    let loc = fields.loc().key("config").key("recursion_limit");
                    let message = "Input should be an integer from 1 to 1000";
                    fields.push_error(FieldError::new("int_type", &loc, message, raw));
                    None
                }
            },
        };
        let input_loc = fields.loc().key("input");
        let input = match fields.raw("input") {
            None | Some(Value::Null) => Ok(RunInput::Resume),
            Some(list @ Value::Array(_)) => Vec::<Message>::from_json(list, &input_loc).map(RunInput::Latest),
            Some(object @ Value::Object(_)) => ObjectReader::new(object, &input_loc).and_then(|mut input| {
                let messages = input.required("messages");
                input.finish(|| messages.map(RunInput::Seed))
            }),
            Some(other) => Err(vec![FieldError::new(
                "list_type",
                &input_loc,
                "Input should be a list of messages, an object with a 'messages' list, or null",
                other,
            )]),
        };
        let input = match input {
            Ok(input) => Some(input),
            Err(errors) => {
                errors.into_iter().for_each(|error| fields.push_error(error));
                None
            }
        };
        fields.finish(|| {
            let input = input?;
            let on_disconnect = on_disconnect.unwrap_or(match input.generation() {
                Generation::Latest | Generation::Graph => OnDisconnect::Cancel,
                Generation::Seed => OnDisconnect::Continue,
            });
            Some(RunRequest {
                thread_id: thread_id?,
                assistant_id,
                input,
                configurable: configurable?,
                recursion_limit,
                multitask_strategy,
                on_disconnect,
                start_after: None,
                webhook,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_shape_decides_the_generation() {
        let thread_id = Uuid::new_v4();
        let parse =
            |input: Value| RunRequest::from_json(&json!({"thread_id": thread_id, "input": input}), &Loc::body());
        assert_eq!(parse(json!({"messages": []})).unwrap().input, RunInput::Seed(vec![]));
        assert_eq!(parse(json!([])).unwrap().input, RunInput::Latest(vec![]));
        assert_eq!(parse(Value::Null).unwrap().input, RunInput::Resume);
        let errors = parse(json!("hello")).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("body"), json!("input")]);
    }

    #[test]
    fn strategies_parse_and_disconnects_default_per_generation() {
        let thread_id = Uuid::new_v4();
        let parse = |extra: Value| {
            let mut body = json!({"thread_id": thread_id, "input": []});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            RunRequest::from_json(&body, &Loc::body())
        };
        let default = parse(json!({})).unwrap();
        assert_eq!(
            (default.multitask_strategy, default.on_disconnect),
            (MultitaskStrategy::Enqueue, OnDisconnect::Cancel)
        );
        let seed = parse(json!({"input": {"messages": []}})).unwrap();
        assert_eq!(seed.on_disconnect, OnDisconnect::Continue);
        let chosen = parse(json!({"multitask_strategy": "interrupt", "on_disconnect": "continue"})).unwrap();
        assert_eq!(
            (chosen.multitask_strategy, chosen.on_disconnect),
            (MultitaskStrategy::Interrupt, OnDisconnect::Continue)
        );
        let errors = parse(json!({"multitask_strategy": "rollback"})).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("body"), json!("multitask_strategy")]);
    }

    #[test]
    fn a_recursion_limit_may_be_written_as_a_whole_float() {
        let parse = |limit: Value| {
            RunRequest::from_json(
                &json!({"thread_id": uuid::Uuid::nil(), "config": {"recursion_limit": limit}}),
                &Loc::body(),
            )
        };
        assert_eq!(parse(json!(158.0)).unwrap().recursion_limit, Some(158));
        assert!(parse(json!(158.5)).is_err());
        assert!(parse(json!(0)).is_err());
    }

    #[test]
    fn missing_thread_id_is_named() {
        let errors = RunRequest::from_json(&json!({"input": []}), &Loc::body()).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("body"), json!("thread_id")]);
    }
}
