//! A local stand-in for a model provider's HTTP API. It records every request and answers with
//! exact bytes, written in the parts and at the pace a test scripts, so the real clients are
//! exercised against the providers' documented streaming wire formats.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// One write of the response body, after a pause.
#[derive(Debug, Clone)]
pub struct Part {
    pub delay: Duration,
    pub bytes: Vec<u8>,
}

impl Part {
    pub fn now(bytes: impl Into<Vec<u8>>) -> Self {
        Part { delay: Duration::ZERO, bytes: bytes.into() }
    }

    pub fn after(delay: Duration, bytes: impl Into<Vec<u8>>) -> Self {
        Part { delay, bytes: bytes.into() }
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub parts: Vec<Part>,
}

impl Reply {
    pub fn event_stream(parts: Vec<Part>) -> Self {
        Reply { status: 200, headers: vec![("content-type", "text/event-stream".into())], parts }
    }

    pub fn json(body: Value) -> Self {
        Self::json_error(200, body)
    }

    /// A body of any type, written at once.
    pub fn text(status: u16, content_type: &str, body: &str) -> Self {
        Reply { status, headers: vec![("content-type", content_type.into())], parts: vec![Part::now(body)] }
    }

    pub fn redirect(location: &str) -> Self {
        Reply { status: 302, headers: vec![("location", location.into())], parts: vec![] }
    }

    pub fn json_error(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            parts: vec![Part::now(body.to_string())],
        }
    }
}

type Script = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

#[derive(Clone)]
struct MockState {
    script: Script,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

pub struct MockProvider {
    pub base_url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl MockProvider {
    pub async fn start(script: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = MockState { script: Arc::new(script), requests: requests.clone() };
        let app = axum::Router::new().fallback(answer).with_state(state);
        // Each scripted part leaves at once, as a real provider's tokens do.
        let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap_or_default());
        tokio::spawn(async move { axum::serve(listener, app).await });
        MockProvider { base_url, requests }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

async fn answer(State(state): State<MockState>, request: Request) -> Response {
    let path_and_query = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap_or_default();
    let recorded =
        RecordedRequest { path_and_query, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    let reply = (state.script)(&recorded);
    state.requests.lock().expect("not poisoned").push(recorded);
    let body = futures::stream::iter(reply.parts).then(|part| async move {
        // Even a zero sleep waits for the next timer tick (1 ms): only sleep for real pauses.
        if !part.delay.is_zero() {
            tokio::time::sleep(part.delay).await;
        }
        Ok::<_, std::convert::Infallible>(Bytes::from(part.bytes))
    });
    let mut response = (StatusCode::from_u16(reply.status).expect("a status"), Body::from_stream(body)).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().expect("a header value"));
    }
    response
}

/// The text of the last user message of an OpenAI or Anthropic request.
pub fn last_user_text(request: &RecordedRequest) -> String {
    request.body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|message| message["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// OpenAI Chat Completions chunks, as its API reference shows them, for the given tokens:
/// a role chunk, one chunk per token, the finish chunk, the usage chunk, and `[DONE]`.
pub fn openai_events(tokens: &[&str]) -> Vec<String> {
    let chunk = |choices: Value, usage: Value| {
        let body = json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices": choices, "usage": usage,
        });
        format!("data: {body}\n\n")
    };
    let choice =
        |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut events = vec![chunk(choice(json!({"role": "assistant", "content": ""}), Value::Null), Value::Null)];
    events.extend(tokens.iter().map(|token| chunk(choice(json!({"content": token}), Value::Null), Value::Null)));
    events.push(chunk(choice(json!({}), json!("stop")), Value::Null));
    let usage = json!({"prompt_tokens": 9, "completion_tokens": tokens.len(), "total_tokens": 9 + tokens.len()});
    events.push(chunk(json!([]), usage));
    events.push("data: [DONE]\n\n".to_string());
    events
}

/// Anthropic Messages stream events, as its streaming documentation shows them.
pub fn anthropic_events(tokens: &[&str]) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    events.extend(tokens.iter().map(|token| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": token}}),
        )
    }));
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": tokens.len()}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

/// Each event as its own write.
/// Gemini's `streamGenerateContent?alt=sse`: one `GenerateContentResponse` a token, CRLF framed,
/// usage in every response, `finishReason` in the last, as Google's docs show.
pub fn gemini_events(tokens: &[&str]) -> Vec<String> {
    tokens
        .iter()
        .enumerate()
        .map(|(index, token)| {
            let mut candidate = json!({"content": {"parts": [{"text": token}], "role": "model"}, "index": 0});
            if index + 1 == tokens.len() {
                candidate["finishReason"] = json!("STOP");
            }
            let usage = json!({"promptTokenCount": 8, "candidatesTokenCount": index + 1, "totalTokenCount": 9 + index});
            let body = json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.0-flash"});
            format!("data: {body}\r\n\r\n")
        })
        .collect()
}

pub fn parts(events: Vec<String>) -> Vec<Part> {
    events.into_iter().map(Part::now).collect()
}

/// Every event cut in two, the halves written apart, so no read holds a whole event.
pub fn split_parts(events: Vec<String>) -> Vec<Part> {
    events
        .into_iter()
        .flat_map(|event| {
            let bytes = event.into_bytes();
            let middle = bytes.len() / 2;
            [Part::now(bytes[..middle].to_vec()), Part::after(Duration::from_millis(2), bytes[middle..].to_vec())]
        })
        .collect()
}

/// An OpenAI stream that asks for tools, as its API reference shows tool-call chunks: the first
/// delta of each call names it, the arguments follow in 8-character pieces, then
/// `finish_reason: "tool_calls"`, usage and `[DONE]`. `calls` are (id, name, arguments).
pub fn openai_tool_call_events(calls: &[(&str, &str, &str)]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let body = json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        format!("data: {body}\n\n")
    };
    let mut events = Vec::new();
    for (index, (id, name, arguments)) in calls.iter().enumerate() {
        let first = json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
        let delta = if index == 0 {
            json!({"role": "assistant", "content": null, "tool_calls": [first]})
        } else {
            json!({"tool_calls": [first]})
        };
        events.push(chunk(delta, Value::Null));
        let characters: Vec<char> = arguments.chars().collect();
        for piece in characters.chunks(8) {
            let piece: String = piece.iter().collect();
            events
                .push(chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), Value::Null));
        }
    }
    events.push(chunk(json!({}), json!("tool_calls")));
    let usage = json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}});
    events.push(format!("data: {usage}\n\n"));
    events.push("data: [DONE]\n\n".to_string());
    events
}

/// An Anthropic stream that asks for tools, as its tool-use streaming documentation shows:
/// a `tool_use` content block whose input arrives as `input_json_delta` pieces, and
/// `stop_reason: "tool_use"`.
pub fn anthropic_tool_use_events(calls: &[(&str, &str, &str)]) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
            "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 472, "output_tokens": 2}}}),
    )];
    for (index, (id, name, arguments)) in calls.iter().enumerate() {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        let characters: Vec<char> = arguments.chars().collect();
        for piece in std::iter::once(&[][..]).chain(characters.chunks(8)) {
            let piece: String = piece.iter().collect();
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 89}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

/// A Gemini response that calls functions: whole `functionCall` parts, as its function-calling
/// documentation shows.
pub fn gemini_function_call_events(calls: &[(&str, Value)]) -> Vec<String> {
    let parts: Vec<Value> =
        calls.iter().map(|(name, args)| json!({"functionCall": {"name": name, "args": args}})).collect();
    let body = json!({
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5, "totalTokenCount": 35},
        "modelVersion": "gemini-2.0-flash",
    });
    vec![format!("data: {body}\r\n\r\n")]
}

/// A stand-in embedding model: a text becomes a normalised bag of its words (without the
/// commonest English ones) hashed into 256 dimensions. It is no language model, but like one it
/// puts texts that share words near each other.
pub fn bag_of_words(text: &str) -> Vec<f64> {
    const COMMON: [&str; 24] = [
        "the", "a", "an", "of", "in", "on", "is", "are", "was", "and", "or", "to", "for", "what", "which", "how",
        "why", "where", "did", "does", "do", "its", "it", "by",
    ];
    let mut vector = vec![0f64; 256];
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty() && !COMMON.contains(w)) {
        let hash = word.bytes().fold(5381u64, |h, b| h.wrapping_mul(33) ^ u64::from(b));
        vector[(hash % 256) as usize] += 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
    vector.iter().map(|v| v / norm).collect()
}

/// OpenAI's `POST /embeddings` answer, as its API reference shows it, from [`bag_of_words`].
pub fn openai_embeddings(request: &RecordedRequest) -> Reply {
    let inputs: Vec<String> = match &request.body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(texts) => texts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => {
            return Reply::json_error(
                400,
                json!({"error": {"message": "'input' is required", "type": "invalid_request_error"}}),
            )
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": bag_of_words(text)}))
        .collect();
    let tokens: usize = inputs.iter().map(|text| text.split_whitespace().count()).sum();
    Reply::json(json!({"object": "list", "data": data, "model": request.body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
}

/// Bedrock's `InvokeModel` answer for Amazon Titan Text Embeddings v2 (`POST
/// /model/{modelId}/invoke`), as its model documentation shows it, from [`bag_of_words`].
pub fn titan_embeddings(request: &RecordedRequest) -> Reply {
    let Some(text) = request.body["inputText"].as_str() else {
        return Reply::json_error(
            400,
            json!({"message": "Malformed input request: required key [inputText] not found"}),
        );
    };
    Reply::json(json!({"embedding": bag_of_words(text), "inputTextTokenCount": text.split_whitespace().count()}))
}

/// One frame of Bedrock's `ConverseStream` answer (`application/vnd.amazon.eventstream`), as
/// the AWS event stream encoding defines it: prelude, headers, JSON payload, CRCs. `kind` is
/// `event` (with an `:event-type`) or `exception` (with an `:exception-type`).
pub fn eventstream_frame(kind: &str, name: &str, payload: Value) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let type_header = if kind == "event" { ":event-type" } else { ":exception-type" };
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(type_header, HeaderValue::String(name.to_string().into())))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())))
        .add_header(Header::new(":message-type", HeaderValue::String(kind.to_string().into())));
    let mut frame = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut frame).expect("an encodable frame");
    frame
}

/// A ConverseStream answer: text tokens, then the tool calls (id, name, input JSON in pieces),
/// the stop reason and the usage metadata, each its own frame, as Bedrock's API reference shows.
pub fn bedrock_converse_events(tokens: &[&str], calls: &[(&str, &str, &str)]) -> Vec<Vec<u8>> {
    let event = |name: &str, payload: Value| eventstream_frame("event", name, payload);
    let mut frames = vec![event("messageStart", json!({"role": "assistant"}))];
    if !tokens.is_empty() {
        frames.extend(
            tokens
                .iter()
                .map(|token| event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": token}}))),
        );
        frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    }
    for (offset, (id, name, input)) in calls.iter().enumerate() {
        let block = offset + 1;
        frames.push(event(
            "contentBlockStart",
            json!({"contentBlockIndex": block, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
        ));
        let characters: Vec<char> = input.chars().collect();
        for piece in characters.chunks(8) {
            let piece: String = piece.iter().collect();
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}}),
            ));
        }
        frames.push(event("contentBlockStop", json!({"contentBlockIndex": block})));
    }
    let stop = if calls.is_empty() { "end_turn" } else { "tool_use" };
    frames.push(event("messageStop", json!({"stopReason": stop})));
    frames.push(event(
        "metadata",
        json!({"usage": {"inputTokens": 30, "outputTokens": tokens.len() + calls.len(), "totalTokens": 30 + tokens.len() + calls.len()},
            "metrics": {"latencyMs": 120}}),
    ));
    frames
}

impl Reply {
    pub fn eventstream(frames: Vec<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type", "application/vnd.amazon.eventstream".into())],
            parts: frames.into_iter().map(Part::now).collect(),
        }
    }
}
