//! Side by side with the reference LangGraph server (`langgraph dev` from `langgraph-cli[inmem]`,
//! its in-memory runtime) running the same chatbot graph (`bench/reference/graph.py`) on the same
//! mock upstream: server CPU per streamed token and resident memory, for each protocol (the
//! classic run stream in `messages-tuple` mode, and the event protocol's `run.start` with the
//! thread's `messages` stream), and the event protocol's replay of a long thread from `since`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::server::{free_port, Server};
use crate::stats::Summary;
use crate::streaming;

/// One server's figures.
pub struct Figures {
    pub cpu_per_token: Duration,
    pub rss_mib: f64,
    /// Of that, the pages of the server's own binary's code.
    pub code_rss_mib: f64,
}

/// The user both servers see.
const COOKIE: &str = "opengpts_user_id=bench-reference";

/// POSTs `body` as the bench's user and returns the JSON answer.
async fn post_json(client: &reqwest::Client, url: &str, body: Value) -> Value {
    client.post(url).header("cookie", COOKIE).json(&body).send().await.unwrap().json().await.unwrap()
}

/// How a run is started and streamed.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// `POST /threads/{id}/runs/stream` in `messages-tuple` mode.
    Classic,
    /// `run.start`, then the thread's `messages` and `lifecycle` over `stream/events`.
    Events,
}

/// One run of `tokens` tokens streamed through `base`, read to its end.
async fn stream_run(client: &reqwest::Client, base: &str, assistant: &str, protocol: Protocol, tokens: usize) {
    let input = json!({"messages": [{"role": "user", "content": "go"}]});
    let text = match protocol {
        Protocol::Classic => {
            let thread = post_json(client, &format!("{base}/threads"), json!({})).await;
            let path = format!("{base}/threads/{}/runs/stream", thread["thread_id"].as_str().unwrap());
            let body = json!({"assistant_id": assistant, "stream_mode": ["messages-tuple"], "input": input});
            client.post(path).header("cookie", COOKIE).json(&body).send().await.unwrap().text().await.unwrap()
        }
        Protocol::Events => {
            let thread = uuid::Uuid::new_v4();
            let command =
                json!({"id": 1, "method": "run.start", "params": {"assistant_id": assistant, "input": input}});
            let started = post_json(client, &format!("{base}/threads/{thread}/commands"), command).await;
            assert_eq!(started["type"], "success", "{started}");
            events_until_end(client, base, thread, 0).await.0
        }
    };
    assert!(text.contains(&format!("t{} ", tokens - 1)), "every token streamed: {}", &text[..text.len().min(300)]);
}

/// The thread's `messages` and `lifecycle` events after `since`, read until the root run ends
/// (the stream itself does not end); their text and how many there were.
pub async fn events_until_end(client: &reqwest::Client, base: &str, thread: uuid::Uuid, since: u64) -> (String, usize) {
    use futures::StreamExt;
    let body = json!({"channels": ["messages", "lifecycle"], "since": since});
    let response = client
        .post(format!("{base}/threads/{thread}/stream/events"))
        .header("cookie", COOKIE)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut chunks = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = chunks.next().await {
        // Only what arrived is searched (with enough before it for a marker cut in two).
        let from = text.len().saturating_sub(16);
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        let arrived = &text[text.floor_char_boundary(from)..];
        if arrived.contains("||completed\"") || arrived.contains("||failed\"") {
            break;
        }
    }
    let events = text.matches("\r\nid: ").count();
    (text, events)
}

/// Streams `repeats` runs of `tokens` tokens through `base` (the LangGraph API's root) and
/// returns the server's CPU per token and its memory once idle after.
async fn measure(
    server: &Server,
    base: &str,
    assistant: &str,
    protocol: Protocol,
    repeats: usize,
    tokens: usize,
) -> Figures {
    let client = reqwest::Client::new();
    let run = || stream_run(&client, base, assistant, protocol, tokens);
    for _ in 0..2 {
        run().await;
    }
    let before = server.tree_cpu_time();
    for _ in 0..repeats {
        run().await;
    }
    let used = server.tree_cpu_time() - before;
    // Memory once the load is over: our connections closed, and a moment for the server to
    // settle (ours gives the free memory of the load back within a second or two).
    drop(client);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    Figures {
        cpu_per_token: used / (repeats * tokens) as u32,
        rss_mib: server.tree_rss_mib(),
        code_rss_mib: server.code_rss_mib(),
    }
}

/// Our server's figures on the chatbot graph, against `openai` (the mock OpenAI API).
pub async fn ours(binary: &Path, openai: &str, protocol: Protocol, repeats: usize, tokens: usize) -> Figures {
    let (ours, assistant) = our_server(binary, openai).await;
    let base = format!("{}/langgraph", ours.base);
    measure(&ours, &base, &assistant, protocol, repeats, tokens).await
}

/// Our server on the memory store, and a chatbot assistant on it whose model is at `openai`.
pub async fn our_server(binary: &Path, openai: &str) -> (Server, String) {
    let env = vec![
        ("STORE", "memory".to_string()),
        ("OPENAI_API_KEY", "bench".to_string()),
        ("OPENAI_BASE_URL", openai.to_string()),
    ];
    let ours = Server::start(binary, &env).await;
    let client = reqwest::Client::new();
    let config = json!({"configurable": {"type==chatbot/llm_type": "GPT 4o"}});
    let assistant = post_json(
        &client,
        &format!("{}/langgraph/assistants", ours.base),
        json!({"graph_id": "chatbot", "config": config}),
    )
    .await;
    (ours, assistant["assistant_id"].as_str().unwrap().to_string())
}

/// Both servers' figures: ours, then the reference's.
pub async fn compare(
    binary: &Path,
    venv: &Path,
    protocol: Protocol,
    repeats: usize,
    tokens: usize,
) -> (Figures, Figures) {
    let upstream = streaming::upstream(tokens, Duration::ZERO).await;
    let openai = format!("{}/v1", upstream.base_url);
    let our_figures = ours(binary, &openai, protocol, repeats, tokens).await;
    let reference = reference_server(venv, &openai).await;
    let reference_figures = measure(&reference, &reference.base.clone(), "chatbot", protocol, repeats, tokens).await;
    (our_figures, reference_figures)
}

/// `langgraph dev` on the chatbot graph, its model at `openai`.
pub async fn reference_server(venv: &Path, openai: &str) -> Server {
    let port = free_port();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    let mut command = Command::new(venv.join("bin/langgraph"));
    command
        .args(["dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(&folder)
        .env("OPENAI_API_KEY", "bench")
        .env("OPENAI_BASE_URL", openai)
        .env("LANGGRAPH_NO_VERSION_CHECK", "true")
        .env("LANGGRAPH_CLI_NO_ANALYTICS", "1")
        .env("LANGSMITH_TRACING", "false")
        .env("LANGCHAIN_TRACING_V2", "false");
    Server::spawn(command, port, "/ok", Duration::from_secs(120)).await
}

/// How long a new `stream/events` connection takes to replay a finished thread of a run of
/// `tokens` tokens from `since` 0, `repeats` times, on the server whose LangGraph root is `base`.
pub async fn replay(base: &str, assistant: &str, tokens: usize, repeats: usize) -> (usize, Summary) {
    let client = reqwest::Client::new();
    let thread = uuid::Uuid::new_v4();
    let input = json!({"messages": [{"role": "user", "content": "go"}]});
    let command = json!({"id": 1, "method": "run.start", "params": {"assistant_id": assistant, "input": input}});
    post_json(&client, &format!("{base}/threads/{thread}/commands"), command).await;
    let (text, events) = events_until_end(&client, base, thread, 0).await;
    assert!(text.contains(&format!("t{} ", tokens - 1)), "every token streamed");
    let mut times = Vec::new();
    for _ in 0..repeats {
        let started = std::time::Instant::now();
        let (_, replayed) = events_until_end(&client, base, thread, 0).await;
        times.push(crate::stats::ms(started.elapsed()));
        assert_eq!(replayed, events, "the whole thread is replayed");
    }
    (events, crate::stats::summarize_ms(&mut times))
}
