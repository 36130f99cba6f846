//! The provider clients against local servers speaking each provider's streaming wire format.

use std::time::Duration;

use futures::StreamExt;
use integration_tests::mock_provider::{
    anthropic_events, bedrock_converse_events, eventstream_frame, gemini_events, last_user_text, openai_events, parts,
    split_parts, MockProvider, Part, Reply,
};
use integration_tests::test_config;
use opengpts::llm::{ChatRequest, Chunk, LlmError, ModelCatalog, ResolvedModel};
use opengpts::model::{Message, MessageType};
use serde_json::{json, Value};

fn model(vars: Vec<(&'static str, String)>, configurable: Value) -> ResolvedModel {
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    ModelCatalog::new(&config).resolve(configurable.as_object().unwrap()).expect("a known model")
}

fn conversation() -> Vec<Message> {
    vec![
        Message::new(MessageType::Human, "hi"),
        Message::new(MessageType::Ai, "hello"),
        Message::new(MessageType::Human, "count to three"),
    ]
}

async fn run(resolved: &ResolvedModel) -> Vec<Result<Chunk, LlmError>> {
    let request = ChatRequest {
        model: resolved.model_id.clone(),
        system: resolved.system_message.clone(),
        messages: conversation(),
        max_output_tokens: 321,
        tools: Vec::new(),
    };
    match resolved.model.stream(request).await {
        Ok(stream) => stream.collect().await,
        Err(error) => vec![Err(error)],
    }
}

fn texts(chunks: &[Result<Chunk, LlmError>]) -> String {
    chunks
        .iter()
        .filter_map(|c| match c {
            Ok(Chunk::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn openai(mock: &MockProvider) -> Vec<(&'static str, String)> {
    vec![("OPENAI_API_KEY", "sk-test".into()), ("OPENAI_BASE_URL", format!("{}/v1", mock.base_url))]
}

const GPT: fn() -> Value = || {
    json!({"type": "chatbot", "type==chatbot/llm_type": "GPT 3.5 Turbo",
    "type==chatbot/system_message": "You are helpful"})
};

#[tokio::test]
async fn openai_stream_split_across_reads_with_usage_and_done() {
    let mock =
        MockProvider::start(|_| Reply::event_stream(split_parts(openai_events(&["one", ", two", ", three"])))).await;
    let chunks = run(&model(openai(&mock), GPT())).await;
    assert_eq!(texts(&chunks), "one, two, three");
    let tail: Vec<&Chunk> =
        chunks.iter().filter_map(|c| c.as_ref().ok()).filter(|c| !matches!(c, Chunk::Text(_))).collect();
    assert_eq!(tail, [&Chunk::Finish { reason: "stop".into() }, &Chunk::Usage { input_tokens: 9, output_tokens: 3 }]);

    let request = &mock.requests()[0];
    assert_eq!(request.path_and_query, "/v1/chat/completions");
    assert_eq!(request.headers["authorization"], "Bearer sk-test");
    assert_eq!(request.body["model"], "gpt-3.5-turbo");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["max_tokens"], 321, "the run's output cap");
    let roles: Vec<&str> =
        request.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(request.body["messages"][0]["content"], "You are helpful");
    assert_eq!(last_user_text(request), "count to three");
}

#[tokio::test]
async fn openai_errors_name_the_provider_and_status() {
    let mock = MockProvider::start(|_| {
        let mut reply = Reply::json_error(
            429,
            json!({"error": {"message": "Rate limit reached for requests",
            "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
        );
        reply.headers.push(("retry-after", "7".into()));
        reply
    })
    .await;
    let chunks = run(&model(openai(&mock), GPT())).await;
    let Err(error) = &chunks[0] else { panic!("{chunks:?}") };
    assert_eq!(error.status_code(), 429);
    assert_eq!(error.to_string(), "openai answered HTTP 429: Rate limit reached for requests (retry after 7 s)");

    let mock =
        MockProvider::start(|_| Reply::json_error(500, json!({"error": {"message": "The server had an error"}}))).await;
    let chunks = run(&model(openai(&mock), GPT())).await;
    assert!(matches!(&chunks[0], Err(LlmError::Status { status: 500, .. })), "{chunks:?}");
}

#[tokio::test]
async fn openai_error_mid_stream_and_malformed_data_end_the_stream_with_an_error() {
    let mock = MockProvider::start(|_| {
        let mut events = openai_events(&["partial"]);
        events.insert(
            2,
            "data: {\"error\": {\"message\": \"The model is overloaded\", \"type\": \"server_error\"}}\n\n".into(),
        );
        Reply::event_stream(parts(events))
    })
    .await;
    let chunks = run(&model(openai(&mock), GPT())).await;
    assert!(chunks
        .iter()
        .any(|c| matches!(c, Err(LlmError::Upstream { message, .. }) if message == "The model is overloaded")));

    let mock = MockProvider::start(|_| Reply::event_stream(vec![Part::now("data: {not json\n\n")])).await;
    let chunks = run(&model(openai(&mock), GPT())).await;
    assert!(matches!(&chunks[0], Err(LlmError::Malformed { provider: "openai", .. })), "{chunks:?}");
}

#[tokio::test]
async fn a_slow_first_token_is_waited_for_but_a_stalled_stream_times_out() {
    let mock = MockProvider::start(|_| {
        let mut events = parts(openai_events(&["late"]));
        events[0].delay = Duration::from_millis(600);
        Reply::event_stream(events)
    })
    .await;
    let mut vars = openai(&mock);
    vars.push(("LLM_TIMEOUT_SECONDS", "2".into()));
    assert_eq!(texts(&run(&model(vars, GPT())).await), "late");

    let mock = MockProvider::start(|_| {
        let mut events = parts(openai_events(&["first", "never"]));
        events[2].delay = Duration::from_secs(30);
        Reply::event_stream(events)
    })
    .await;
    let mut vars = openai(&mock);
    vars.push(("LLM_TIMEOUT_SECONDS", "1".into()));
    let chunks = run(&model(vars, GPT())).await;
    assert_eq!(texts(&chunks), "first");
    assert!(matches!(chunks.last(), Some(Err(LlmError::Timeout { seconds: 1, .. }))), "{chunks:?}");
}

#[tokio::test]
async fn azure_and_ollama_use_their_own_urls_and_credentials() {
    let mock = MockProvider::start(|_| Reply::event_stream(parts(openai_events(&["ok"])))).await;
    let vars = vec![
        ("AZURE_OPENAI_API_KEY", "azure-key".to_string()),
        ("AZURE_OPENAI_API_BASE", mock.base_url.clone()),
        ("AZURE_OPENAI_DEPLOYMENT_NAME", "my-gpt4".into()),
        ("AZURE_OPENAI_API_VERSION", "2024-06-01".into()),
    ];
    let chunks = run(&model(vars, json!({"agent_type": "GPT 4 (Azure OpenAI)"}))).await;
    assert_eq!(texts(&chunks), "ok");
    let request = &mock.requests()[0];
    assert_eq!(request.path_and_query, "/openai/deployments/my-gpt4/chat/completions?api-version=2024-06-01");
    assert_eq!(request.headers["api-key"], "azure-key");
    assert!(request.headers.get("authorization").is_none());

    let mock = MockProvider::start(|_| Reply::event_stream(parts(openai_events(&["local"])))).await;
    let vars = vec![("OLLAMA_BASE_URL", mock.base_url.clone()), ("OLLAMA_MODEL", "llama3.2".into())];
    let chunks = run(&model(vars, json!({"type": "agent", "type==agent/agent_type": "Ollama"}))).await;
    assert_eq!(texts(&chunks), "local");
    let request = &mock.requests()[0];
    assert_eq!((request.path_and_query.as_str(), &request.body["model"]), ("/v1/chat/completions", &json!("llama3.2")));
    assert!(request.headers.get("authorization").is_none());
}

fn anthropic(mock: &MockProvider) -> Vec<(&'static str, String)> {
    vec![("ANTHROPIC_API_KEY", "sk-ant-test".into()), ("ANTHROPIC_BASE_URL", mock.base_url.clone())]
}

const CLAUDE: fn() -> Value = || json!({"agent_type": "Claude 2", "system_message": "Be brief"});

#[tokio::test]
async fn anthropic_stream_split_across_reads() {
    let mock = MockProvider::start(|_| Reply::event_stream(split_parts(anthropic_events(&["Hel", "lo", "!"])))).await;
    let chunks = run(&model(anthropic(&mock), CLAUDE())).await;
    assert_eq!(texts(&chunks), "Hello!");
    let tail: Vec<&Chunk> =
        chunks.iter().filter_map(|c| c.as_ref().ok()).filter(|c| !matches!(c, Chunk::Text(_))).collect();
    assert_eq!(
        tail,
        [&Chunk::Usage { input_tokens: 25, output_tokens: 3 }, &Chunk::Finish { reason: "end_turn".into() }]
    );

    let request = &mock.requests()[0];
    assert_eq!(request.path_and_query, "/v1/messages");
    assert_eq!(request.headers["x-api-key"], "sk-ant-test");
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
    assert_eq!(request.body["system"], "Be brief");
    assert_eq!(request.body["max_tokens"], 321, "the run's output cap");
    assert_eq!(request.body["stream"], true);
    let roles: Vec<&str> =
        request.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
}

#[tokio::test]
async fn anthropic_errors_before_and_during_the_stream() {
    let mock = MockProvider::start(|_| {
        Reply::json_error(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    })
    .await;
    let chunks = run(&model(anthropic(&mock), CLAUDE())).await;
    assert_eq!(chunks[0].as_ref().unwrap_err().to_string(), "anthropic answered HTTP 529: Overloaded");

    let mock = MockProvider::start(|_| {
        let mut events = anthropic_events(&["part"]);
        events.insert(4, "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n".into());
        Reply::event_stream(parts(events))
    })
    .await;
    let chunks = run(&model(anthropic(&mock), CLAUDE())).await;
    assert_eq!(texts(&chunks), "part");
    assert!(chunks.iter().any(|c| matches!(c, Err(LlmError::Upstream { provider: "anthropic", .. }))), "{chunks:?}");
}

fn gemini(mock: &MockProvider) -> Vec<(&'static str, String)> {
    vec![("GEMINI_API_KEY", "gemini-test-key".into()), ("GEMINI_BASE_URL", mock.base_url.clone())]
}

const GEMINI: fn() -> Value = || json!({"agent_type": "GEMINI", "system_message": "Be brief"});

#[tokio::test]
async fn gemini_stream_split_across_reads() {
    let mock = MockProvider::start(|_| Reply::event_stream(split_parts(gemini_events(&["Hel", "lo", "!"])))).await;
    let chunks = run(&model(gemini(&mock), GEMINI())).await;
    assert_eq!(texts(&chunks), "Hello!");
    let last: Vec<&Chunk> = chunks.iter().rev().take(2).filter_map(|c| c.as_ref().ok()).collect();
    assert_eq!(last, [&Chunk::Finish { reason: "stop".into() }, &Chunk::Usage { input_tokens: 8, output_tokens: 3 }]);

    let request = &mock.requests()[0];
    assert_eq!(request.path_and_query, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
    assert_eq!(request.headers["x-goog-api-key"], "gemini-test-key");
    assert_eq!(request.body["systemInstruction"]["parts"][0]["text"], "Be brief");
    assert_eq!(request.body["generationConfig"]["maxOutputTokens"], 321, "the run's output cap");
    let roles: Vec<&str> =
        request.body["contents"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "model", "user"]);
}

#[tokio::test]
async fn gemini_function_calls_become_tool_calls() {
    let mock = MockProvider::start(|_| {
        let call = json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "search", "args": {"query": "rust"}}},
            {"functionCall": {"name": "wiki", "args": {}}}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}});
        Reply::event_stream(parts(vec![format!("data: {call}\r\n\r\n")]))
    })
    .await;
    let chunks = run(&model(gemini(&mock), GEMINI())).await;
    let calls: Vec<(usize, Option<String>, Option<String>, String)> = chunks
        .iter()
        .filter_map(|c| match c {
            Ok(Chunk::ToolCall { index, id, name, arguments }) => {
                Some((*index, id.clone(), name.clone(), arguments.clone()))
            }
            _ => None,
        })
        .collect();
    let named: Vec<(usize, Option<String>, String)> =
        calls.iter().map(|(index, _, name, arguments)| (*index, name.clone(), arguments.clone())).collect();
    assert_eq!(
        named,
        [(0, Some("search".into()), r#"{"query":"rust"}"#.into()), (1, Some("wiki".into()), "{}".into())]
    );
    // Gemini names no call; each gets an id of its own, unique in the thread.
    let ids: Vec<&str> = calls.iter().map(|call| call.1.as_deref().expect("an id")).collect();
    assert!(ids.iter().all(|id| id.starts_with("call_") && id.len() == 37), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn gemini_safety_blocks_and_errors_are_clear() {
    let blocked_prompt = MockProvider::start(|_| {
        let body = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}});
        Reply::event_stream(parts(vec![format!("data: {body}\r\n\r\n")]))
    })
    .await;
    let chunks = run(&model(gemini(&blocked_prompt), GEMINI())).await;
    assert_eq!(
        chunks.last().unwrap().as_ref().unwrap_err().to_string(),
        "gemini reported an error mid-stream: the prompt was blocked (SAFETY); rephrase it"
    );

    let blocked_answer = MockProvider::start(|_| {
        let mut events = gemini_events(&["Sure, "]);
        let stop =
            json!({"candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": "SAFETY", "index": 0}]});
        events.push(format!("data: {stop}\r\n\r\n"));
        Reply::event_stream(parts(events))
    })
    .await;
    let chunks = run(&model(gemini(&blocked_answer), GEMINI())).await;
    assert!(chunks.last().unwrap().as_ref().unwrap_err().to_string().contains("the answer was blocked (SAFETY)"));

    let bad_key = MockProvider::start(|_| {
        Reply::json_error(400, json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}))
    })
    .await;
    let chunks = run(&model(gemini(&bad_key), GEMINI())).await;
    assert_eq!(
        chunks[0].as_ref().unwrap_err().to_string(),
        "gemini answered HTTP 400: API key not valid. Please pass a valid API key."
    );
}

/// Bedrock goes through the AWS SDK, which signs with the environment's credentials.
fn bedrock(mock: &MockProvider) -> Vec<(&'static str, String)> {
    assert!(
        std::env::var("AWS_ACCESS_KEY_ID").is_ok(),
        "AWS_ACCESS_KEY_ID is not set: run `make test`, which gives the AWS SDK test credentials"
    );
    vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", mock.base_url.clone()),
        ("OFFLINE_FALLBACK", "false".into()),
    ]
}

const BEDROCK: fn() -> Value = || json!({"agent_type": "Claude 2 (Amazon Bedrock)", "system_message": "Be brief"});

#[tokio::test]
async fn bedrock_converse_stream_through_the_aws_sdk() {
    let mock = MockProvider::start(|_| Reply::eventstream(bedrock_converse_events(&["Hel", "lo", "!"], &[]))).await;
    let resolved = model(bedrock(&mock), BEDROCK());
    assert_eq!(
        (resolved.model.provider(), resolved.model_id.as_str()),
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0")
    );
    let chunks = run(&resolved).await;
    assert_eq!(texts(&chunks), "Hello!");
    let tail: Vec<&Chunk> =
        chunks.iter().filter_map(|c| c.as_ref().ok()).filter(|c| !matches!(c, Chunk::Text(_))).collect();
    assert_eq!(tail, [&Chunk::Finish { reason: "stop".into() }, &Chunk::Usage { input_tokens: 30, output_tokens: 3 }]);

    let request = &mock.requests()[0];
    assert_eq!(request.path_and_query, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
    assert!(request.headers["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 "), "signed with SigV4");
    assert_eq!(request.body["system"], json!([{"text": "Be brief"}]));
    assert_eq!(request.body["inferenceConfig"]["maxTokens"], 321);
    assert_eq!(request.body["messages"][0], json!({"role": "user", "content": [{"text": "hi"}]}));
    assert_eq!(request.body["messages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bedrock_throttling_and_validation_errors_are_clear() {
    let throttled = MockProvider::start(|_| Reply {
        status: 429,
        headers: vec![("content-type", "application/json".into()), ("x-amzn-errortype", "ThrottlingException".into())],
        parts: vec![Part::now(r#"{"message":"Too many requests, please wait before trying again."}"#)],
    })
    .await;
    let chunks = run(&model(bedrock(&throttled), BEDROCK())).await;
    let error = chunks[0].as_ref().unwrap_err();
    assert_eq!(error.status_code(), 429, "{error}");
    assert!(error.to_string().contains("ThrottlingException: Too many requests"), "{error}");

    let invalid = MockProvider::start(|_| Reply {
        status: 400,
        headers: vec![("content-type", "application/json".into()), ("x-amzn-errortype", "ValidationException".into())],
        parts: vec![Part::now(r#"{"message":"The provided model identifier is invalid."}"#)],
    })
    .await;
    let chunks = run(&model(bedrock(&invalid), BEDROCK())).await;
    let error = chunks[0].as_ref().unwrap_err().to_string();
    assert_eq!(error, "bedrock answered HTTP 400: ValidationException: The provided model identifier is invalid.");

    let mid_stream = MockProvider::start(|_| {
        let mut frames = bedrock_converse_events(&["part"], &[]);
        frames.insert(2, eventstream_frame("exception", "throttlingException", json!({"message": "Rate exceeded"})));
        Reply::eventstream(frames)
    })
    .await;
    let chunks = run(&model(bedrock(&mid_stream), BEDROCK())).await;
    assert_eq!(texts(&chunks), "part");
    let last = chunks.last().unwrap().as_ref().unwrap_err().to_string();
    assert!(last.contains("bedrock reported an error mid-stream") && last.contains("Rate exceeded"), "{last}");
}
