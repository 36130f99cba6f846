use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::validate::{FieldError, FieldErrors, FromJson, Loc, ObjectReader};

/// Which OpenGPTs generation a client speaks; it decides how messages are written back.
/// - `Seed` (Nov 2023): `{"content","additional_kwargs","type","example"}`, no ids, as the user's
///   document shows.
/// - `Latest` (2025): LangChain's full serialization with `id`, `name`, `response_metadata`, and
///   for AI messages `tool_calls`, `invalid_tool_calls`, `usage_metadata`.
/// - `Graph`: the LangGraph Platform API that succeeded OpenGPTs: `Latest` without `example`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    Seed,
    Latest,
    Graph,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Human,
    Ai,
    System,
    Tool,
    Function,
    Chat,
}

impl MessageType {
    const NAMES: [(&'static str, MessageType); 6] = [
        ("human", MessageType::Human),
        ("ai", MessageType::Ai),
        ("system", MessageType::System),
        ("tool", MessageType::Tool),
        ("function", MessageType::Function),
        ("chat", MessageType::Chat),
    ];

    /// Accepts LangChain's type tags, including the `*MessageChunk` class names of streamed chunks.
    pub fn parse(tag: &str) -> Option<Self> {
        let base = match tag {
            "HumanMessageChunk" => "human",
            "AIMessageChunk" => "ai",
            "SystemMessageChunk" => "system",
            "ToolMessageChunk" => "tool",
            "FunctionMessageChunk" => "function",
            "ChatMessageChunk" => "chat",
            other => other,
        };
        Self::NAMES.iter().find(|(name, _)| *name == base).map(|(_, kind)| *kind)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(_, kind)| *kind == self).map(|(name, _)| *name).unwrap_or("human")
    }
}

/// How a tool call went, on a tool message (LangChain's `ToolMessage.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolStatus {
    #[default]
    Success,
    Error,
}

impl FromJson for ToolStatus {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value.as_str() {
            Some("success") => Ok(ToolStatus::Success),
            Some("error") => Ok(ToolStatus::Error),
            _ => Err(vec![FieldError::new("literal_error", loc, "Input should be 'success' or 'error'", value)]),
        }
    }
}

/// Message content: plain text, or a list of parts (`{"type":"text","text":...}`, images …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Value>),
}

impl Content {
    /// The text a model reads: the string, or the text parts joined.
    pub fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    Value::String(text) => Some(text.as_str()),
                    Value::Object(fields) => fields.get("text").and_then(Value::as_str),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Content::Text(text) => text.len(),
            Content::Parts(parts) => parts.iter().map(|part| part.to_string().len()).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Content {
    fn default() -> Self {
        Content::Text(String::new())
    }
}

/// A LangChain message. Stored with every field; written to clients through [`Message::wire`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub content: Content,
    #[serde(default)]
    pub additional_kwargs: Map<String, Value>,
    #[serde(default)]
    pub response_metadata: Map<String, Value>,
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub example: bool,
    #[serde(default)]
    pub tool_calls: Vec<Value>,
    #[serde(default)]
    pub invalid_tool_calls: Vec<Value>,
    #[serde(default)]
    pub usage_metadata: Option<Value>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// Tool messages only: whether the tool succeeded, and what it returned beside the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ToolStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Value>,
}

impl Message {
    pub fn new(kind: MessageType, content: impl Into<String>) -> Self {
        Message {
            content: Content::Text(content.into()),
            additional_kwargs: Map::new(),
            response_metadata: Map::new(),
            kind,
            name: None,
            id: None,
            example: false,
            tool_calls: Vec::new(),
            invalid_tool_calls: Vec::new(),
            usage_metadata: None,
            tool_call_id: None,
            status: None,
            artifact: None,
        }
    }

    /// A tool's answer to the call `tool_call_id` of the AI message before it.
    pub fn tool_result(name: &str, tool_call_id: &str, content: String, status: ToolStatus) -> Self {
        let mut message = Message::new(MessageType::Tool, content);
        message.name = Some(name.to_string());
        message.tool_call_id = Some(tool_call_id.to_string());
        message.status = Some(status);
        message.ensure_id();
        message
    }

    /// Gives the message an id if it has none. Every stored message has one, whichever
    /// generation sent it, so that an edit through the state replaces it instead of adding a
    /// copy (seed-era shapes do not show ids).
    pub fn ensure_id(&mut self) {
        self.id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
    }

    /// This message as a client of `generation` expects it, serialized without building a tree.
    pub fn wire(&self, generation: Generation) -> WireMessage<'_> {
        WireMessage { message: self, generation }
    }
}

pub struct WireMessage<'a> {
    message: &'a Message,
    generation: Generation,
}

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.message;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("content", &m.content)?;
        map.serialize_entry("additional_kwargs", &m.additional_kwargs)?;
        match self.generation {
            // The seed era's agents spoke OpenAI's legacy functions: a tool's answer is a
            // `function` message, without `example`.
            Generation::Seed if m.kind == MessageType::Tool => {
                map.serialize_entry("type", &MessageType::Function)?;
                map.serialize_entry("name", &m.name)?;
            }
            Generation::Seed => {
                map.serialize_entry("type", &m.kind)?;
                if let Some(name) = &m.name {
                    map.serialize_entry("name", name)?;
                }
                // No `id`: seed-era shapes had none, and every stored message now has one. No
                // `tool_calls` either: the era's calls are `additional_kwargs.function_call`.
                map.serialize_entry("example", &m.example)?;
                if let Some(tool_call_id) = &m.tool_call_id {
                    map.serialize_entry("tool_call_id", tool_call_id)?;
                }
            }
            // LangChain's ToolMessage has no `example`, and `artifact` and `status` after its id.
            Generation::Latest | Generation::Graph if m.kind == MessageType::Tool => {
                map.serialize_entry("response_metadata", &m.response_metadata)?;
                map.serialize_entry("type", &m.kind)?;
                map.serialize_entry("name", &m.name)?;
                map.serialize_entry("id", &m.id)?;
                map.serialize_entry("tool_call_id", &m.tool_call_id)?;
                map.serialize_entry("artifact", &m.artifact)?;
                map.serialize_entry("status", &m.status.unwrap_or_default())?;
            }
            Generation::Latest | Generation::Graph => {
                map.serialize_entry("response_metadata", &m.response_metadata)?;
                map.serialize_entry("type", &m.kind)?;
                map.serialize_entry("name", &m.name)?;
                map.serialize_entry("id", &m.id)?;
                if self.generation == Generation::Latest {
                    map.serialize_entry("example", &m.example)?;
                }
                if m.kind == MessageType::Ai {
                    map.serialize_entry("tool_calls", &m.tool_calls)?;
                    map.serialize_entry("invalid_tool_calls", &m.invalid_tool_calls)?;
                    map.serialize_entry("usage_metadata", &m.usage_metadata)?;
                }
                if let Some(tool_call_id) = &m.tool_call_id {
                    map.serialize_entry("tool_call_id", tool_call_id)?;
                }
            }
        }
        map.end()
    }
}

/// Writes a list of messages for one generation.
pub struct WireMessages<'a>(pub &'a [Message], pub Generation);

impl Serialize for WireMessages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|message| message.wire(self.1)))
    }
}

fn list_of_values(fields: &mut ObjectReader<'_>, key: &str) -> Vec<Value> {
    fields.optional::<Vec<Value>>(key).unwrap_or_default()
}

impl FromJson for Content {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        match value {
            Value::String(text) => Ok(Content::Text(text.clone())),
            Value::Array(parts) => {
                // LangChain's content blocks: text, or an object such as {"type": "text", ...}.
                let errors: FieldErrors = parts
                    .iter()
                    .enumerate()
                    .filter(|(_, part)| !part.is_string() && !part.is_object())
                    .map(|(index, part)| {
                        let message = "Input should be a valid string or a content block object";
                        FieldError::new("model_type", &loc.index(index), message, part)
                    })
                    .collect();
                if errors.is_empty() {
                    Ok(Content::Parts(parts.clone()))
                } else {
                    Err(errors)
                }
            }
            _ => Err(vec![FieldError::new(
                "string_type",
                loc,
                "Input should be a valid string or a list of content parts",
                value,
            )]),
        }
    }
}

impl FromJson for MessageType {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let tag = String::from_json(value, loc)?;
        MessageType::parse(&tag).ok_or_else(|| {
            let mut error = FieldError::new(
                "literal_error",
                loc,
                "Input should be 'human', 'ai', 'system', 'tool', 'function' or 'chat'",
                value,
            );
            error.ctx = Some(serde_json::json!({"expected": "'human', 'ai', 'system', 'tool', 'function' or 'chat'"}));
            vec![error]
        })
    }
}

impl FromJson for Message {
    fn from_json(value: &Value, loc: &Loc) -> Result<Self, FieldErrors> {
        let mut fields = ObjectReader::new(value, loc)?;
        let kind = fields.required::<MessageType>("type");
        let content = fields.required::<Content>("content");
        let additional_kwargs = fields.optional("additional_kwargs").unwrap_or_default();
        let response_metadata = fields.optional("response_metadata").unwrap_or_default();
        let name = fields.optional("name");
        let id = fields.optional("id");
        let example = fields.optional("example").unwrap_or(false);
        let tool_calls = list_of_values(&mut fields, "tool_calls");
        let invalid_tool_calls = list_of_values(&mut fields, "invalid_tool_calls");
        let usage_metadata = fields.optional::<Map<String, Value>>("usage_metadata").map(Value::Object);
        let tool_call_id = fields.optional::<String>("tool_call_id");
        let status = fields.optional::<ToolStatus>("status");
        let artifact = fields.raw("artifact").filter(|value| !value.is_null()).cloned();
        if kind == Some(MessageType::Tool) && tool_call_id.is_none() {
            let error = FieldError::missing(&fields.loc().key("tool_call_id"), value);
            fields.push_error(error);
        }
        fields.finish(|| {
            Some(Message {
                content: content?,
                additional_kwargs,
                response_metadata,
                kind: kind?,
                name,
                id,
                example,
                tool_calls,
                invalid_tool_calls,
                usage_metadata,
                tool_call_id,
                status,
                artifact,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_wire_matches_the_users_document() {
        let message = Message::new(MessageType::Human, "hi! my name is bob");
        let text = serde_json::to_string(&message.wire(Generation::Seed)).unwrap();
        assert_eq!(text, r#"{"content":"hi! my name is bob","additional_kwargs":{},"type":"human","example":false}"#);
    }

    #[test]
    fn latest_wire_matches_langchain_for_ai_messages() {
        let mut message = Message::new(MessageType::Ai, "");
        message.id = Some("run-1".into());
        let text = serde_json::to_string(&message.wire(Generation::Latest)).unwrap();
        assert_eq!(
            text,
            r#"{"content":"","additional_kwargs":{},"response_metadata":{},"type":"ai","name":null,"id":"run-1","example":false,"tool_calls":[],"invalid_tool_calls":[],"usage_metadata":null}"#
        );
    }

    #[test]
    fn tool_messages_have_langchains_shape_in_each_generation() {
        let mut message = Message::tool_result("wikipedia", "call_1", "found".into(), ToolStatus::Error);
        message.id = Some("t1".into());
        let latest = serde_json::to_string(&message.wire(Generation::Latest)).unwrap();
        assert_eq!(
            latest,
            r#"{"content":"found","additional_kwargs":{},"response_metadata":{},"type":"tool","name":"wikipedia","id":"t1","tool_call_id":"call_1","artifact":null,"status":"error"}"#
        );
        let seed = serde_json::to_string(&message.wire(Generation::Seed)).unwrap();
        assert_eq!(seed, r#"{"content":"found","additional_kwargs":{},"type":"function","name":"wikipedia"}"#);
    }

    #[test]
    fn unknown_type_names_the_field() {
        let errors = Message::from_json(&json!({"type": "bogus", "content": "x"}), &Loc::body()).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("body"), json!("type")]);
        assert_eq!(errors[0].kind, "literal_error");
    }

    #[test]
    fn content_blocks_and_usage_must_be_objects() {
        let errors = Message::from_json(
            &json!({"type": "ai", "content": ["text", [null]], "usage_metadata": [1]}),
            &Loc::body(),
        )
        .unwrap_err();
        let locs: Vec<Vec<Value>> = errors.iter().map(|error| error.loc.clone()).collect();
        assert_eq!(
            locs,
            [vec![json!("body"), json!("content"), json!(1)], vec![json!("body"), json!("usage_metadata")]]
        );
    }

    #[test]
    fn chunk_class_names_are_accepted() {
        let message = Message::from_json(&json!({"type": "AIMessageChunk", "content": []}), &Loc::body()).unwrap();
        assert_eq!(message.kind, MessageType::Ai);
    }
}
