//! What the server adds to each step of an agent's loop, beyond the model and the tool: an agent
//! run through `/runs/stream` (the model asks for a tool, the tool answers, the model answers),
//! beside the same three calls made directly, one after another, to the same local services. The
//! tool is an HTTP service's (Wikipedia's API) or an MCP server's (the tests' MCP server, whose
//! `tools/call` the bench makes directly in a session of its own).

use std::time::{Duration, Instant};

use integration_tests::mcp_server::McpToolServer;
use integration_tests::mock_provider::{
    openai_events, openai_tool_call_events, parts, MockProvider, RecordedRequest, Reply,
};
use integration_tests::mock_services::{self, ui_tool};
use integration_tests::StreamReader;
use serde_json::json;

use crate::server::Server;
use crate::stats::{ms, summarize_ms, Summary};

/// The steps of one run: a model call, a tool round, a model call.
pub const STEPS: usize = 3;

/// The tool an agent calls in the measured loop: how the assistant names it, what the model
/// asks for, and the same call made directly.
pub struct LoopTool {
    pub config: serde_json::Value,
    pub name: &'static str,
    pub args: &'static str,
    pub direct: Box<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
}

/// Wikipedia's API, at the local stand-in.
pub fn wikipedia(services: &MockProvider) -> LoopTool {
    let url = format!("{}/w/api.php", services.base_url);
    LoopTool {
        config: ui_tool("wikipedia", json!({})),
        name: "wikipedia",
        args: r#"{"query":"the moon"}"#,
        direct: Box::new(move |client| client.get(&url).query(&[("gsrsearch", "the moon")])),
    }
}

/// An MCP server's `echo`; its direct call is made in a session the bench opens once.
pub async fn mcp(server: &McpToolServer) -> LoopTool {
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value, session: Option<&str>| {
        let mut request = client.post(&server.url).header("accept", "application/json, text/event-stream").json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session).header("mcp-protocol-version", "2025-06-18");
        }
        request.send()
    };
    let opened = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_string();
    opened.bytes().await.unwrap();
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), Some(&session)).await.unwrap();
    let url = server.url.clone();
    LoopTool {
        config: ui_tool("mcp_server", json!({"url": server.url})),
        name: "echo",
        args: r#"{"text":"the moon"}"#,
        direct: Box::new(move |client| {
            client
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-06-18")
                .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "the moon"}}}))
        }),
    }
}

/// A model that asks for `tool` until a tool has answered, then answers in 20 tokens.
pub async fn upstream(tool: &'static str, args: &'static str) -> MockProvider {
    MockProvider::start(move |request: &RecordedRequest| {
        let answered = request.body["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["role"] == "tool");
        let words: Vec<String> = (0..20).map(|i| format!("t{i} ")).collect();
        Reply::event_stream(parts(if answered {
            openai_events(&words.iter().map(String::as_str).collect::<Vec<_>>())
        } else {
            openai_tool_call_events(&[("call_bench", tool, args)])
        }))
    })
    .await
}

pub async fn services() -> MockProvider {
    mock_services::start().await
}

/// The server's variables for these services (and the MCP server on loopback).
pub fn env(llm: &MockProvider, services: &MockProvider) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "bench".into()),
        ("OPENAI_BASE_URL", format!("{}/v1", llm.base_url)),
        ("WIKIPEDIA_API_URL", format!("{}/w/api.php", services.base_url)),
        ("TOOL_URL_ALLOWLIST", "127.0.0.1".into()),
    ]
}

async fn read_all(request: reqwest::RequestBuilder) -> Duration {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    assert!(response.status().is_success());
    StreamReader::new(response).read_to_end().await;
    started.elapsed()
}

/// Per step, the time the server adds: (run through the server − the direct calls) / steps,
/// each run paired with direct calls made right after it.
pub async fn added_per_step(server: &Server, llm: &MockProvider, tool: &LoopTool, repeats: usize) -> Summary {
    let client = reqwest::Client::new();
    let cookie = "opengpts_user_id=bench-agent";
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{}{path}", server.base)).header("cookie", cookie).json(&body);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let config = json!({"configurable": {"type": "agent", "type==agent/agent_type": "GPT 4o",
        "type==agent/tools": [tool.config]}});
    let assistant = post("/assistants", json!({"name": "agent", "config": config})).await;
    let chat = |messages: serde_json::Value| {
        client
            .post(format!("{}/v1/chat/completions", llm.base_url))
            .bearer_auth("bench")
            .json(&json!({"model": "gpt-4o", "stream": true, "messages": messages}))
    };
    let mut added = Vec::with_capacity(repeats);
    // One run first, unmeasured: a server lists an MCP server's tools once, then keeps the list.
    for round in 0..=repeats {
        let thread = post("/threads", json!({"name": "a", "assistant_id": assistant["assistant_id"]})).await;
        let run = client
            .post(format!("{}/runs/stream", server.base))
            .header("cookie", cookie)
            .json(&json!({"thread_id": thread["thread_id"], "input": [{"type": "human", "content": "go"}]}));
        let through = read_all(run).await;
        let ask = read_all(chat(json!([{"role": "user", "content": "go"}]))).await;
        let tool = read_all((tool.direct)(&client)).await;
        let answer = read_all(chat(
            json!([{"role": "user", "content": "go"}, {"role": "tool", "content": "x", "tool_call_id": "c"}]),
        ))
        .await;
        if round > 0 {
            added.push((ms(through) - ms(ask + tool + answer)) / STEPS as f64);
        }
    }
    summarize_ms(&mut added)
}
