//! Chat models: one [`ChatModel`] trait that streams [`Chunk`]s, the providers behind it, and the
//! [`ModelCatalog`] that turns an assistant's OpenGPTs configuration into a provider and model id.

mod anthropic;
mod bedrock;
mod catalog;
mod gemini;
mod offline;
mod openai;
pub mod partial_json;
pub(crate) mod sse_client;

pub use anthropic::AnthropicModel;
pub use bedrock::{BedrockClient, BedrockModel};
pub use catalog::{
    ModelCatalog, ModelConfigError, ResolvedModel, DEFAULT_MODEL_NAME, DEFAULT_SYSTEM_MESSAGE, MODEL_NAMES,
};
pub use gemini::GeminiModel;
pub use offline::OfflineModel;
pub use openai::{OpenAiEndpoint, OpenAiModel};

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::model::Message;

/// What a model is asked: the conversation, an optional system prompt, and the model id.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// The most tokens the answer may have (`MAX_OUTPUT_TOKENS`): a cap on what one run costs.
    pub max_output_tokens: u32,
    /// The tools the model may call; none for a chatbot.
    pub tools: Vec<ToolSpec>,
}

/// A tool as a model sees it: a function name, what it is for, and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    Text(String),
    /// A fragment of a tool call; fragments with the same `index` concatenate.
    ToolCall {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    Finish {
        reason: String,
    },
}

pub type ChunkStream = BoxStream<'static, Result<Chunk, LlmError>>;

/// What a RAG bot's model is told between its instructions and the retrieved text.
pub const RETRIEVAL_PROMPT: &str =
    "Respond to the user using ONLY the context provided below. Do not make anything up.";

#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// The provider's name, for error messages and metadata.
    fn provider(&self) -> &'static str;
    /// Whether it can write a search query from a conversation (a RAG bot's later turns).
    fn writes_search_queries(&self) -> bool {
        true
    }
    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError>;
}

/// Why a provider failed. Messages name the provider and the cause, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("{provider} could not be reached: {reason}")]
    Connect { provider: &'static str, reason: String },
    #[error("{provider} answered HTTP {status}: {message}{}", retry_after.as_ref().map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    Status { provider: &'static str, status: u16, message: String, retry_after: Option<String> },
    #[error("{provider} sent a malformed stream: {reason}")]
    Malformed { provider: &'static str, reason: String },
    #[error("{provider} sent nothing for {seconds} s")]
    Timeout { provider: &'static str, seconds: u64 },
    #[error("{provider} reported an error mid-stream: {message}")]
    Upstream { provider: &'static str, message: String },
}

impl LlmError {
    /// Whether the same request may succeed if sent again: the provider was unreachable, slow,
    /// busy or failing, not refusing the request itself.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Connect { .. } | LlmError::Timeout { .. } => true,
            LlmError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529),
            LlmError::Malformed { .. } | LlmError::Upstream { .. } => false,
        }
    }

    /// The wait the provider asked for (`retry-after`, in seconds).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            LlmError::Status { retry_after: Some(seconds), .. } => seconds
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .map(std::time::Duration::from_secs_f64),
            _ => None,
        }
    }

    /// The HTTP status that best describes the failure to our client.
    pub fn status_code(&self) -> u16 {
        match self {
            LlmError::Status { status: 429, .. } => 429,
            LlmError::Timeout { .. } => 504,
            _ => 502,
        }
    }
}

/// A provider's API reached with one key: the shape Anthropic and Gemini share.
pub struct KeyedEndpoint {
    pub client: reqwest::Client,
    pub base_url: String,
    pub api_key: crate::config::Secret,
    pub timeout: std::time::Duration,
}

impl KeyedEndpoint {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }
}

/// One turn of the conversation, as providers without a system role take it.
#[derive(Debug, Clone, PartialEq)]
enum Turn {
    User(String),
    Ai { text: String, calls: Vec<ToolCallRequest> },
    ToolResult { call_id: String, name: String, content: String, is_error: bool },
}

/// A tool call of an AI message, parsed from LangChain's `{name, args, id}`.
#[derive(Debug, Clone, PartialEq)]
struct ToolCallRequest {
    id: String,
    name: String,
    args: Value,
}

impl ToolCallRequest {
    fn all(message: &crate::model::Message) -> Vec<Self> {
        message
            .tool_calls
            .iter()
            .map(|call| ToolCallRequest {
                id: call.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: call.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                args: call.get("args").cloned().unwrap_or_else(|| serde_json::json!({})),
            })
            .collect()
    }
}

/// The conversation as providers without a system role take it: one system prompt (the
/// request's, then any system messages) and the other turns.
fn system_and_turns(request: &ChatRequest) -> (Option<String>, Vec<Turn>) {
    use crate::model::MessageType;
    let mut system: Vec<String> = request.system.iter().cloned().collect();
    let mut turns = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let text = message.content.text();
        match message.kind {
            MessageType::System => system.push(text),
            MessageType::Ai => turns.push(Turn::Ai { text, calls: ToolCallRequest::all(message) }),
            MessageType::Tool | MessageType::Function if message.tool_call_id.is_some() => {
                turns.push(Turn::ToolResult {
                    call_id: message.tool_call_id.clone().unwrap_or_default(),
                    name: message.name.clone().unwrap_or_default(),
                    content: text,
                    is_error: message.status == Some(crate::model::ToolStatus::Error),
                })
            }
            _ => turns.push(Turn::User(text)),
        }
    }
    ((!system.is_empty()).then(|| system.join("\n\n")), turns)
}

/// The conversation a model may be sent: a tool call that was never answered (a run stopped
/// before its tools ran, then the user wrote again) is left out, since providers refuse an
/// unanswered call; its AI message stays if it said anything.
pub fn answered_conversation(messages: &[crate::model::Message]) -> Vec<crate::model::Message> {
    let answered: std::collections::HashSet<&str> =
        messages.iter().filter_map(|message| message.tool_call_id.as_deref()).collect();
    messages
        .iter()
        .filter_map(|message| {
            if message.tool_calls.is_empty() {
                return Some(message.clone());
            }
            let mut kept = message.clone();
            kept.tool_calls
                .retain(|call| call.get("id").and_then(Value::as_str).is_some_and(|id| answered.contains(id)));
            (!kept.tool_calls.is_empty() || !kept.content.is_empty()).then_some(kept)
        })
        .collect()
}

/// Sends a provider request within `timeout`; a non-2xx answer becomes [`LlmError::Status`].
async fn send_checked(
    provider: &'static str,
    timeout: std::time::Duration,
    send: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) -> Result<reqwest::Response, LlmError> {
    let response = tokio::time::timeout(timeout, send)
        .await
        .map_err(|_| LlmError::Timeout { provider, seconds: timeout.as_secs() })?
        .map_err(|error| LlmError::Connect { provider, reason: error.without_url().to_string() })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    Err(LlmError::Status { provider, status: status.as_u16(), message: error_message(&body), retry_after })
}

/// The text of an upstream error body: its `error.message` when JSON, else the body, cut short.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|value| value.pointer("/error/message").or_else(|| value.get("message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().to_string());
    message.chars().take(300).collect()
}
