//! Parsing JSON input into typed values, collecting FastAPI-style errors that name each field.
//!
//! OpenGPTs clients already understand pydantic's 422 bodies
//! (`{"detail":[{"type","loc","msg","input"}]}`), so every input error is reported in that shape.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One problem with one input location, serialized as a pydantic v2 error item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl FieldError {
    pub fn new(kind: &'static str, loc: &Loc, msg: impl Into<String>, input: &Value) -> Self {
        FieldError { kind, loc: loc.to_vec(), msg: msg.into(), input: input.clone(), ctx: None }
    }

    pub fn missing(loc: &Loc, input: &Value) -> Self {
        Self::new("missing", loc, "Field required", input)
    }
}

pub type FieldErrors = Vec<FieldError>;

/// Where a value sits in the request, e.g. `["body", "input", 0, "type"]`.
#[derive(Debug, Clone, Default)]
pub struct Loc(Vec<Value>);

impl Loc {
    pub fn body() -> Self {
        Loc(vec![Value::from("body")])
    }

    pub fn root(place: &str) -> Self {
        Loc(vec![Value::from(place)])
    }

    pub fn key(&self, key: &str) -> Self {
        let mut path = self.0.clone();
        path.push(Value::from(key));
        Loc(path)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut path = self.0.clone();
        path.push(Value::from(index));
        Loc(path)
    }

    pub fn to_vec(&self) -> Vec<Value> {
        self.0.clone()
    }
}

/// A type that can be read from a JSON value at a location.
pub trait FromJson: Sized {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors>;
}

impl FromJson for String {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value {
            Value::String(text) => Ok(text.clone()),
            _ => Err(vec![FieldError::new("string_type", loc, "Input should be a valid string", value)]),
        }
    }
}

impl FromJson for bool {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value {
            Value::Bool(flag) => Ok(*flag),
            _ => Err(vec![FieldError::new("bool_type", loc, "Input should be a valid boolean", value)]),
        }
    }
}

/// A JSON number without a fractional part, however it is written (`158` or `158.0`): JSON
/// Schema counts both as integers, so a client generated from a description may send either.
pub fn whole_number(value: &Value) -> Option<u64> {
    /// The largest whole number a float holds exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|n| n.fract() == 0.0 && (0.0..=EXACT).contains(n)).map(|n| n as u64))
}

impl FromJson for u64 {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        whole_number(value)
            .ok_or_else(|| vec![FieldError::new("int_type", loc, "Input should be a whole number, 0 or more", value)])
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(vec![FieldError::new("dict_type", loc, "Input should be a valid dictionary", value)]),
        }
    }
}

impl FromJson for Value {
    fn from_json(value: &Value, _loc: &Loc) -> Result<Self, FieldErrors> {
        Ok(value.clone())
    }
}

impl FromJson for Uuid {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let text = String::from_json(value, loc)?;
        parse_uuid(&text, loc).map_err(|error| vec![error])
    }
}

pub fn parse_uuid(text: &str, loc: &Loc) -> Result<Uuid, FieldError> {
    Uuid::try_parse(text).map_err(|error| {
        FieldError::new("uuid_parsing", loc, format!("Input should be a valid UUID, {error}"), &Value::from(text))
    })
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let Value::Array(items) = value else {
            return Err(vec![FieldError::new("list_type", loc, "Input should be a valid list", value)]);
        };
        let mut parsed = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match T::from_json(item, &loc.index(index)) {
                Ok(value) => parsed.push(value),
                Err(mut item_errors) => errors.append(&mut item_errors),
            }
        }
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors)
        }
    }
}

/// Reads the fields of one JSON object, collecting every error instead of stopping at the first.
pub struct ObjectReader<'a> {
    object: &'a Map<String, Value>,
    loc: Loc,
    errors: FieldErrors,
}

impl<'a> ObjectReader<'a> {
    pub fn new(value: &'a Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value {
            Value::Object(object) => Ok(ObjectReader { object, loc: loc.clone(), errors: Vec::new() }),
            _ => Err(vec![FieldError::new("dict_type", loc, "Input should be a valid dictionary", value)]),
        }
    }

    /// A field that must be present and not null.
    pub fn required<T: FromJson>(&mut self, key: &str) -> Option<T> {
        match self.object.get(key) {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::missing(&self.loc.key(key), &Value::Object(self.object.clone())));
                None
            }
            Some(value) => self.parse(key, value),
        }
    }

    /// A field that may be absent or null.
    pub fn optional<T: FromJson>(&mut self, key: &str) -> Option<T> {
        match self.object.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => self.parse(key, value),
        }
    }

    /// The raw value of a field whose absence and `null` mean different things.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key)
    }

    pub fn loc(&self) -> &Loc {
        &self.loc
    }

    pub fn push_error(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    fn parse<T: FromJson>(&mut self, key: &str, value: &Value) -> Option<T> {
        match T::from_json(value, &self.loc.key(key)) {
            Ok(parsed) => Some(parsed),
            Err(mut errors) => {
                self.errors.append(&mut errors);
                None
            }
        }
    }

    /// Builds the value once all fields were read; `build` sees every required field present.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        build().ok_or_else(|| vec![FieldError::missing(&self.loc, &Value::Object(self.object.clone()))])
    }
}

/// Parses a request body: empty, malformed and mistyped bodies each give their FastAPI error.
pub fn parse_body<T: FromJson>(bytes: &[u8]) -> Result<T, FieldErrors> {
    let loc = Loc::body();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![FieldError::missing(&loc, &Value::Null)]);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|error| vec![json_error(bytes, &error)])?;
    T::from_json(&value, &loc)
}

fn json_error(bytes: &[u8], error: &serde_json::Error) -> FieldError {
    let text = String::from_utf8_lossy(bytes);
    let offset = char_offset(&text, error.line(), error.column());
    let reason = error.to_string();
    let reason = reason.split(" at line ").next().unwrap_or(&reason).to_string();
    FieldError {
        kind: "json_invalid",
        loc: vec![Value::from("body"), Value::from(offset)],
        msg: "JSON decode error".into(),
        input: Value::Object(Map::new()),
        ctx: Some(serde_json::json!({ "error": reason })),
    }
}

/// serde_json reports 1-based line and column; FastAPI reports a 0-based character offset.
fn char_offset(text: &str, line: usize, column: usize) -> usize {
    let before: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(|l| l.chars().count()).sum();
    before + column.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_json_reports_offset_of_the_error() {
        let errors = parse_body::<Value>(br#"{"name": "x", "config": }"#).unwrap_err();
        assert_eq!(errors[0].kind, "json_invalid");
        assert_eq!(errors[0].loc, vec![json!("body"), json!(24)]);
    }

    #[test]
    fn empty_body_is_missing_body() {
        let errors = parse_body::<Value>(b"  ").unwrap_err();
        assert_eq!(errors, vec![FieldError::missing(&Loc::body(), &Value::Null)]);
    }

    #[test]
    fn list_errors_carry_the_index() {
        let errors = Vec::<String>::from_json(&json!(["a", 1]), &Loc::body()).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("body"), json!(1)]);
    }
}
