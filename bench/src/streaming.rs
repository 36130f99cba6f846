//! What the server adds to a streamed answer: the same upstream, called directly and through
//! `/runs/stream`, compared on time to first token and total time.

use std::time::{Duration, Instant};

use futures::StreamExt;
use integration_tests::mock_provider::{openai_events, MockProvider, Part, Reply};
use serde_json::json;

use crate::server::Server;
use crate::stats::{summarize, Summary};

pub struct StreamTimes {
    pub first_token: Summary,
    pub total: Summary,
}

/// A mock OpenAI-compatible upstream sending `tokens` tokens `gap` apart.
pub async fn upstream(tokens: usize, gap: Duration) -> MockProvider {
    let words: Vec<String> = (0..tokens).map(|i| format!("t{i} ")).collect();
    let events = openai_events(&words.iter().map(String::as_str).collect::<Vec<_>>());
    MockProvider::start(move |_| {
        Reply::event_stream(events.iter().map(|event| Part::after(gap, event.clone())).collect())
    })
    .await
}

/// Reads a streamed response, noting when the first token and the end arrive.
async fn timed(request: reqwest::RequestBuilder, first_token_marker: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        seen.extend_from_slice(&chunk.unwrap());
        if first.is_none() && String::from_utf8_lossy(&seen).contains(first_token_marker) {
            first = Some(started.elapsed());
        }
    }
    (first.expect("the first token arrived"), started.elapsed())
}

pub async fn direct(upstream: &MockProvider, repeats: usize) -> StreamTimes {
    let client = reqwest::Client::new();
    let (mut first, mut total) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let request = client
            .post(format!("{}/v1/chat/completions", upstream.base_url))
            .bearer_auth("bench")
            .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "go"}]}));
        let (f, t) = timed(request, r#""content":"t0 ""#).await;
        first.push(f);
        total.push(t);
    }
    StreamTimes { first_token: summarize(&mut first), total: summarize(&mut total) }
}

/// The server's CPU time per streamed token: all of it, and the user-space part (our code, as
/// opposed to syscalls and the loopback TCP stack).
pub struct CpuPerToken {
    pub total: Duration,
    pub user: Duration,
}

/// Streams through the server; also returns the server's CPU time per streamed token.
pub async fn through_server(server: &Server, repeats: usize, tokens: usize) -> (StreamTimes, CpuPerToken) {
    let client = reqwest::Client::new();
    let cookie = "opengpts_user_id=bench-stream";
    let config = json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}});
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{}{path}", server.base)).header("cookie", cookie).json(&body);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let assistant = post("/assistants", json!({"name": "stream", "config": config})).await;
    let (mut first, mut total) = (Vec::new(), Vec::new());
    let mut cpu = Duration::ZERO;
    let (user_before, _) = server.cpu_split();
    for _ in 0..repeats {
        let thread = post("/threads", json!({"name": "s", "assistant_id": assistant["assistant_id"]})).await;
        let request = client
            .post(format!("{}/runs/stream", server.base))
            .header("cookie", cookie)
            .json(&json!({"thread_id": thread["thread_id"], "input": [{"type": "human", "content": "go"}]}));
        let before = server.cpu_time();
        let (f, t) = timed(request, r#""content":"t0 ""#).await;
        cpu += server.cpu_time() - before;
        first.push(f);
        total.push(t);
    }
    let streamed = (repeats * tokens) as u32;
    let user = (server.cpu_split().0 - user_before) / streamed;
    let times = StreamTimes { first_token: summarize(&mut first), total: summarize(&mut total) };
    (times, CpuPerToken { total: cpu / streamed, user })
}
