//! Amazon Bedrock's `ConverseStream` through the AWS SDK: credentials from the function's IAM
//! role, the region from the environment, no key to store. Text, tool use (`toolUse` blocks
//! whose input streams in pieces, `toolResult` blocks for the answers), usage and stop reasons;
//! throttling, validation and other errors, before or during the stream, become clear errors.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseStreamOutput, InferenceConfiguration,
    Message, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock,
    ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::{Document, Number};
use futures::StreamExt;
use serde_json::Value;

use super::{system_and_turns, ChatModel, ChatRequest, Chunk, ChunkStream, LlmError, Turn};

const PROVIDER: &str = "bedrock";

/// A Bedrock runtime client, made on first use (loading the SDK's configuration is async): the
/// function's credentials and region, at `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` when set.
pub struct BedrockClient {
    client: tokio::sync::OnceCell<aws_sdk_bedrockruntime::Client>,
    endpoint_url: Option<String>,
}

impl BedrockClient {
    pub fn new(endpoint_url: Option<String>) -> Self {
        BedrockClient { client: tokio::sync::OnceCell::new(), endpoint_url }
    }

    pub async fn get(&self) -> &aws_sdk_bedrockruntime::Client {
        self.client
            .get_or_init(|| async {
                aws_sdk_bedrockruntime::Client::new(&crate::config::aws_sdk_config(self.endpoint_url.as_deref()).await)
            })
            .await
    }
}

pub struct BedrockModel {
    client: BedrockClient,
    timeout: Duration,
}

impl BedrockModel {
    pub fn new(endpoint_url: Option<String>, timeout: Duration) -> Self {
        BedrockModel { client: BedrockClient::new(endpoint_url), timeout }
    }
}

/// JSON as the SDK's `Document`, for tool inputs and schemas.
fn document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(flag) => Document::Bool(*flag),
        Value::Number(number) => Document::Number(match (number.as_u64(), number.as_i64()) {
            (Some(n), _) => Number::PosInt(n),
            (None, Some(n)) => Number::NegInt(n),
            _ => Number::Float(number.as_f64().unwrap_or_default()),
        }),
        Value::String(text) => Document::String(text.clone()),
        Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        Value::Object(fields) => Document::Object(fields.iter().map(|(k, v)| (k.clone(), document(v))).collect()),
    }
}

fn malformed(reason: impl std::fmt::Display) -> LlmError {
    LlmError::Malformed { provider: PROVIDER, reason: reason.to_string() }
}

/// The conversation as Converse takes it: alternating user and assistant messages of content
/// blocks, tool calls as `toolUse`, their answers as `toolResult` blocks of the next user turn.
fn messages(turns: Vec<Turn>) -> Result<Vec<Message>, LlmError> {
    let mut merged: Vec<(ConversationRole, Vec<ContentBlock>)> = Vec::new();
    for turn in turns {
        let (role, blocks) = match turn {
            Turn::User(text) => (ConversationRole::User, vec![ContentBlock::Text(text)]),
            Turn::Ai { text, calls } => {
                let mut blocks: Vec<ContentBlock> = Vec::new();
                if !text.is_empty() || calls.is_empty() {
                    blocks.push(ContentBlock::Text(text));
                }
                for call in calls {
                    let tool_use = ToolUseBlock::builder()
                        .tool_use_id(call.id)
                        .name(call.name)
                        .input(document(&call.args))
                        .build()
                        .map_err(malformed)?;
                    blocks.push(ContentBlock::ToolUse(tool_use));
                }
                (ConversationRole::Assistant, blocks)
            }
            Turn::ToolResult { call_id, content, is_error, .. } => {
                let status = if is_error { ToolResultStatus::Error } else { ToolResultStatus::Success };
                let result = ToolResultBlock::builder()
                    .tool_use_id(call_id)
                    .content(ToolResultContentBlock::Text(content))
                    .status(status)
                    .build()
                    .map_err(malformed)?;
                (ConversationRole::User, vec![ContentBlock::ToolResult(result)])
            }
        };
        match merged.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => merged.push((role, blocks)),
        }
    }
    merged
        .into_iter()
        .map(|(role, content)| Message::builder().role(role).set_content(Some(content)).build().map_err(malformed))
        .collect()
}

fn tool_config(request: &ChatRequest) -> Result<Option<ToolConfiguration>, LlmError> {
    if request.tools.is_empty() {
        return Ok(None);
    }
    let tools = request
        .tools
        .iter()
        .map(|tool| {
            let spec = ToolSpecification::builder()
                .name(&tool.name)
                .description(&tool.description)
                .input_schema(ToolInputSchema::Json(document(&tool.parameters)))
                .build()
                .map_err(malformed)?;
            Ok(Tool::ToolSpec(spec))
        })
        .collect::<Result<Vec<_>, LlmError>>()?;
    ToolConfiguration::builder().set_tools(Some(tools)).build().map(Some).map_err(malformed)
}

/// A failed call, with Bedrock's reason: throttling is a 429 the client may retry.
fn call_error(
    error: aws_sdk_bedrockruntime::error::SdkError<
        aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError,
    >,
) -> LlmError {
    use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError as E;
    let Some(service) = error.as_service_error() else {
        let reason = aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string();
        return LlmError::Connect { provider: PROVIDER, reason };
    };
    let status = match service {
        E::ThrottlingException(_) | E::ServiceUnavailableException(_) => 429,
        E::ValidationException(_) => 400,
        E::AccessDeniedException(_) => 403,
        E::ResourceNotFoundException(_) => 404,
        E::ModelTimeoutException(_) => 408,
        _ => 500,
    };
    let message =
        aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(service).unwrap_or("no reason given").to_string();
    let kind = aws_sdk_bedrockruntime::error::ProvideErrorMetadata::code(service).unwrap_or("error");
    LlmError::Status { provider: PROVIDER, status, message: format!("{kind}: {message}"), retry_after: None }
}

/// The stream's state: which content block is which tool call.
struct Reading {
    /// The call's output, whose `stream` yields the events.
    output: aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamOutput,
    tool_blocks: HashMap<i32, usize>,
    timeout: Duration,
    done: bool,
}

fn chunks_of(event: ConverseStreamOutput, reading: &mut Reading) -> Vec<Result<Chunk, LlmError>> {
    match event {
        ConverseStreamOutput::ContentBlockStart(start) => match start.start {
            Some(ContentBlockStart::ToolUse(tool)) => {
                let index = reading.tool_blocks.len();
                reading.tool_blocks.insert(start.content_block_index, index);
                vec![Ok(Chunk::ToolCall {
                    index,
                    id: Some(tool.tool_use_id),
                    name: Some(tool.name),
                    arguments: String::new(),
                })]
            }
            _ => vec![],
        },
        ConverseStreamOutput::ContentBlockDelta(delta) => match delta.delta {
            Some(ContentBlockDelta::Text(text)) => vec![Ok(Chunk::Text(text))],
            Some(ContentBlockDelta::ToolUse(tool)) => match reading.tool_blocks.get(&delta.content_block_index) {
                Some(&index) => vec![Ok(Chunk::ToolCall { index, id: None, name: None, arguments: tool.input })],
                None => vec![Err(malformed("tool input for a block that started no tool use"))],
            },
            _ => vec![],
        },
        ConverseStreamOutput::MessageStop(stop) => {
            // OpenGPTs' clients read OpenAI's names.
            let reason = match stop.stop_reason.as_str() {
                "end_turn" | "stop_sequence" => "stop".to_string(),
                "tool_use" => "tool_calls".into(),
                "max_tokens" => "length".into(),
                "guardrail_intervened" | "content_filtered" => {
                    return vec![Err(LlmError::Upstream {
                        provider: PROVIDER,
                        message: format!("the answer was blocked ({})", stop.stop_reason.as_str()),
                    })]
                }
                other => other.to_string(),
            };
            vec![Ok(Chunk::Finish { reason })]
        }
        ConverseStreamOutput::Metadata(metadata) => metadata
            .usage
            .map(|usage| {
                Ok(Chunk::Usage {
                    input_tokens: usage.input_tokens.max(0) as u64,
                    output_tokens: usage.output_tokens.max(0) as u64,
                })
            })
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

#[async_trait]
impl ChatModel for BedrockModel {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let (system, turns) = system_and_turns(&request);
        let inference = InferenceConfiguration::builder().max_tokens(request.max_output_tokens as i32).build();
        let mut call = self
            .client
            .get()
            .await
            .converse_stream()
            .model_id(&request.model)
            .set_messages(Some(messages(turns)?))
            .inference_config(inference)
            .set_tool_config(tool_config(&request)?);
        if let Some(system) = system {
            call = call.system(SystemContentBlock::Text(system));
        }
        let output = tokio::time::timeout(self.timeout, call.send())
            .await
            .map_err(|_| LlmError::Timeout { provider: PROVIDER, seconds: self.timeout.as_secs() })?
            .map_err(call_error)?;
        let reading = Reading { output, tool_blocks: HashMap::new(), timeout: self.timeout, done: false };
        let events = futures::stream::unfold(reading, |mut reading| async move {
            if reading.done {
                return None;
            }
            let next = tokio::time::timeout(reading.timeout, reading.output.stream.recv()).await;
            let chunks = match next {
                Err(_) => {
                    reading.done = true;
                    vec![Err(LlmError::Timeout { provider: PROVIDER, seconds: reading.timeout.as_secs() })]
                }
                Ok(Ok(Some(event))) => chunks_of(event, &mut reading),
                Ok(Ok(None)) => return None,
                Ok(Err(error)) => {
                    reading.done = true;
                    let message = match error.as_service_error() {
                        Some(service) => format!(
                            "{}: {}",
                            aws_sdk_bedrockruntime::error::ProvideErrorMetadata::code(service).unwrap_or("error"),
                            aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(service)
                                .unwrap_or("no reason given")
                        ),
                        None => aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string(),
                    };
                    vec![Err(LlmError::Upstream { provider: PROVIDER, message })]
                }
            };
            Some((futures::stream::iter(chunks), reading))
        });
        Ok(events.flatten().boxed())
    }
}
