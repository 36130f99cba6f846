//! Google Gemini: `models/{model}:streamGenerateContent?alt=sse`. Each event is a whole
//! `GenerateContentResponse`: text parts are deltas, a `functionCall` part is a complete tool
//! call, and safety blocks arrive as `promptFeedback.blockReason` or `finishReason: SAFETY`.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::sse_client::{events, json_data, UpstreamEvent};
use super::{
    send_checked, system_and_turns, ChatModel, ChatRequest, Chunk, ChunkStream, KeyedEndpoint, LlmError, Turn,
};

const PROVIDER: &str = "gemini";

pub struct GeminiModel(KeyedEndpoint);

impl GeminiModel {
    pub fn new(endpoint: KeyedEndpoint) -> Self {
        GeminiModel(endpoint)
    }
}

/// Gemini knows `user` and `model` turns; system messages join the system instruction, tool
/// calls are `functionCall` parts, and tool results `functionResponse` parts of one user turn.
fn wire_body(request: &ChatRequest) -> Value {
    let (system, turns) = system_and_turns(request);
    let mut contents: Vec<Value> = Vec::with_capacity(turns.len());
    for turn in turns {
        match turn {
            Turn::User(text) => contents.push(json!({"role": "user", "parts": [{"text": text}]})),
            Turn::Ai { text, calls } => {
                let text_part = (!text.is_empty() || calls.is_empty()).then(|| json!({"text": text}));
                let call_parts =
                    calls.into_iter().map(|call| json!({"functionCall": {"name": call.name, "args": call.args}}));
                contents.push(
                    json!({"role": "model", "parts": text_part.into_iter().chain(call_parts).collect::<Vec<_>>()}),
                );
            }
            Turn::ToolResult { name, content, .. } => {
                let part = json!({"functionResponse": {"name": name, "response": {"content": content}}});
                match contents.last_mut() {
                    Some(last) if last["parts"][0].get("functionResponse").is_some() => {
                        last["parts"].as_array_mut().expect("parts are a list").push(part)
                    }
                    _ => contents.push(json!({"role": "user", "parts": [part]})),
                }
            }
        }
    }
    let mut body = json!({
        "contents": contents,
        "generationConfig": {"maxOutputTokens": request.max_output_tokens},
    });
    if let Some(system) = system {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    body
}

#[async_trait]
impl ChatModel for GeminiModel {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let endpoint = &self.0;
        let url = endpoint.url(&format!("/v1beta/models/{}:streamGenerateContent?alt=sse", request.model));
        let send = endpoint.client.post(url).header("x-goog-api-key", endpoint.api_key.expose());
        let response = send_checked(PROVIDER, endpoint.timeout, send.json(&wire_body(&request)).send()).await?;
        let mut calls = 0;
        let chunks = events(PROVIDER, response, endpoint.timeout)
            .flat_map(move |event| futures::stream::iter(parse_event(event, &mut calls)));
        Ok(chunks.boxed())
    }
}

/// One response of the stream as chunks; `calls` numbers the tool calls across responses.
fn parse_event(event: Result<UpstreamEvent, LlmError>, calls: &mut usize) -> Vec<Result<Chunk, LlmError>> {
    let (_, value): (_, Value) = match json_data(PROVIDER, event) {
        Ok(parsed) => parsed,
        Err(error) => return vec![Err(error)],
    };
    if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
        return vec![Err(LlmError::Upstream { provider: PROVIDER, message: message.to_string() })];
    }
    if let Some(reason) = value.pointer("/promptFeedback/blockReason").and_then(Value::as_str) {
        let message = format!("the prompt was blocked ({reason}); rephrase it");
        return vec![Err(LlmError::Upstream { provider: PROVIDER, message })];
    }
    let mut chunks = Vec::new();
    let candidate = value.pointer("/candidates/0");
    let parts = candidate.and_then(|c| c.pointer("/content/parts")).and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            chunks.push(Ok(Chunk::Text(text.to_string())));
        } else if let Some(call) = part.get("functionCall") {
            chunks.push(Ok(Chunk::ToolCall {
                index: *calls,
                // Gemini gives calls no ids; ours must be unique in the thread, where tool
                // messages name the call they answer.
                id: Some(format!("call_{}", uuid::Uuid::new_v4().simple())),
                name: call.get("name").and_then(Value::as_str).map(str::to_string),
                arguments: call.get("args").map(Value::to_string).unwrap_or_default(),
            }));
            *calls += 1;
        }
    }
    if let Some(usage) = value.get("usageMetadata") {
        let count = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
        if usage.get("candidatesTokenCount").is_some() {
            chunks.push(Ok(Chunk::Usage {
                input_tokens: count("promptTokenCount"),
                output_tokens: count("candidatesTokenCount"),
            }));
        }
    }
    match candidate.and_then(|c| c.get("finishReason")).and_then(Value::as_str) {
        Some(reason @ ("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII")) => {
            let message = format!("the answer was blocked ({reason})");
            chunks.push(Err(LlmError::Upstream { provider: PROVIDER, message }));
        }
        // OpenGPTs' clients read OpenAI's names.
        Some("MAX_TOKENS") => chunks.push(Ok(Chunk::Finish { reason: "length".into() })),
        Some(reason) => chunks.push(Ok(Chunk::Finish { reason: reason.to_lowercase() })),
        None => {}
    }
    chunks
}
