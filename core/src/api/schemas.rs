//! The JSON Schemas the API serves: a run's input and output, and the assistant form both
//! OpenGPTs UIs draw (`/runs/*_schema`, and the LangGraph assistants' `schemas`).

use serde_json::{json, Value};

use super::AppState;
use crate::llm::{DEFAULT_MODEL_NAME, DEFAULT_SYSTEM_MESSAGE, MODEL_NAMES};
use crate::tools::{ToolKind, RETRIEVAL_DESCRIPTION};

/// A message, as `openapi.json` describes it (per type: a tool message needs `tool_call_id`).
fn message_schema() -> Value {
    super::meta::openapi_schema("Message")
}

pub fn input_schema() -> Value {
    json!({
        "title": "RunInput",
        "description": "A list of messages (latest clients), {\"messages\": [...]} (seed clients), or null to continue the thread.",
        "anyOf": [
            {"type": "array", "items": message_schema()},
            {"type": "object", "required": ["messages"], "properties": {"messages": {"type": "array", "items": message_schema()}}},
            {"type": "null"},
        ],
    })
}

pub fn output_schema() -> Value {
    json!({
        "title": "RunOutput",
        "description": "Each `data` event of /runs/stream: the changed messages (list input or null) or {\"messages\": whole thread} (object input).",
        "anyOf": [
            {"type": "array", "items": message_schema()},
            {"type": "object", "properties": {"messages": {"type": "array", "items": message_schema()}}},
        ],
    })
}

/// A tool as the latest UI's picker reads it: `name`, `type` and `description` as constants with
/// defaults, the `config` fields it asks for, and whether it may be added more than once.
fn tool_schema(kind: ToolKind) -> Value {
    let constant = |title: &str, value: &str| json!({"title": title, "type": "string", "const": value, "default": value, "enum": [value]});
    let fields: serde_json::Map<String, Value> = kind
        .config_fields()
        .iter()
        .chain(kind.optional_config_fields())
        .map(|field| (field.to_string(), json!({"title": field.to_uppercase(), "type": "string"})))
        .collect();
    let mut config = json!({"title": "Config", "type": "object", "properties": fields});
    if !kind.config_fields().is_empty() {
        config["required"] = json!(kind.config_fields());
    }
    json!({
        "title": kind.display_name(),
        "type": "object",
        "properties": {
            "type": constant("Type", kind.tag()),
            "name": constant("Name", kind.display_name()),
            "description": constant("Description", kind.description()),
            "config": config,
            "multi_use": {"title": "Multi Use", "type": "boolean", "const": kind.multi_use(), "default": kind.multi_use()},
        },
    })
}

/// The form as this server offers it: a tool whose key the server lacks says which variable it
/// needs (`x-needs`), so a form can show it unavailable instead of failing on save.
pub(crate) fn offered_form(state: &AppState) -> Value {
    let mut schema = config_schema();
    let tools = &mut schema["properties"]["configurable"]["properties"]["type==agent/tools"]["items"]["anyOf"];
    for tool in tools.as_array_mut().into_iter().flatten() {
        let kind = tool["properties"]["type"]["const"].as_str().and_then(ToolKind::from_tag);
        if let Some(variable) = kind.and_then(|kind| state.tools.missing_variable(kind)) {
            tool["x-needs"] = json!(variable);
        }
    }
    schema
}

/// The assistant form both UIs draw: every field with `type`, `title`, `enum` and `default`, as
/// OpenGPTs describes it, and no `$ref`s to resolve. The latest UI shows the `type==<bot>/...`
/// fields of the chosen bot type; the seed UI shows `agent_type` and `system_message`.
pub fn config_schema() -> Value {
    let model =
        |title: &str| json!({"title": title, "type": "string", "enum": MODEL_NAMES, "default": DEFAULT_MODEL_NAME});
    let instructions = |title: &str| json!({"title": title, "type": "string", "default": DEFAULT_SYSTEM_MESSAGE});
    json!({
        "title": "Configurable",
        "type": "object",
        "properties": {
            "configurable": {
                "title": "Configurable",
                "type": "object",
                "properties": {
                    "type": {
                        "title": "Bot Type",
                        "type": "string",
                        "enum": ["chatbot", "chat_retrieval", "agent"],
                        "default": "agent",
                    },
                    "type==agent/agent_type": model("Agent Type"),
                    "type==agent/system_message": instructions("Instructions"),
                    "type==agent/tools": {
                        "title": "Tools",
                        "type": "array",
                        "default": [],
                        "items": {"anyOf": ToolKind::all_offered().map(tool_schema).collect::<Vec<_>>()},
                    },
                    "type==agent/retrieval_description": {
                        "title": "Retrieval Instructions",
                        "type": "string",
                        "default": RETRIEVAL_DESCRIPTION,
                    },
                    "type==agent/interrupt_before_action": {
                        "title": "Tool Confirmation",
                        "description": "If Yes, you'll be prompted to continue before each tool is executed.\nIf No, tools will be executed automatically by the agent.",
                        "type": "boolean",
                        "default": false,
                    },
                    "type==chatbot/llm_type": model("LLM Type"),
                    "type==chatbot/system_message": instructions("Instructions"),
                    "type==chat_retrieval/llm_type": model("LLM Type"),
                    "type==chat_retrieval/system_message": instructions("Instructions"),
                    "agent_type": model("Agent Type"),
                    "llm_type": model("LLM Type"),
                    "system_message": instructions("System Message"),
                    "tools": {
                        "title": "Tools",
                        "type": "array",
                        "default": [],
                        "items": {"title": "Tools", "type": "string", "enum": ToolKind::seed_names()},
                    },
                },
            },
        },
    })
}
