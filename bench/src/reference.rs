//! Side by side with the reference LangGraph server (`langgraph dev` from `langgraph-cli[inmem]`,
//! its in-memory runtime) running the same chatbot graph (`bench/reference/graph.py`) on the same
//! mock upstream: server CPU per streamed token in `messages-tuple` mode, and resident memory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::server::{free_port, Server};
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

/// Streams `repeats` runs of `tokens` tokens through `base` (the LangGraph API's root) and
/// returns the server's CPU per token and its memory once idle after.
async fn measure(server: &Server, base: &str, assistant: &str, repeats: usize, tokens: usize) -> Figures {
    let client = reqwest::Client::new();
    let run = || async {
        let thread = post_json(&client, &format!("{base}/threads"), json!({})).await;
        let path = format!("{base}/threads/{}/runs/stream", thread["thread_id"].as_str().unwrap());
        let body = json!({"assistant_id": assistant, "stream_mode": ["messages-tuple"],
            "input": {"messages": [{"role": "user", "content": "go"}]}});
        let text = client.post(path).header("cookie", COOKIE).json(&body).send().await.unwrap().text().await.unwrap();
        assert!(text.contains(&format!("t{} ", tokens - 1)), "every token streamed: {}", &text[..text.len().min(300)]);
    };
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

/// Our server's figures on the chatbot graph, against `upstream` (the mock OpenAI API).
pub async fn ours(binary: &Path, openai: &str, repeats: usize, tokens: usize) -> Figures {
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
    let base = format!("{}/langgraph", ours.base);
    measure(&ours, &base, assistant["assistant_id"].as_str().unwrap(), repeats, tokens).await
}

/// Both servers' figures: ours, then the reference's.
pub async fn compare(binary: &Path, venv: &Path, repeats: usize, tokens: usize) -> (Figures, Figures) {
    let upstream = streaming::upstream(tokens, Duration::ZERO).await;
    let openai = format!("{}/v1", upstream.base_url);
    let our_figures = ours(binary, &openai, repeats, tokens).await;

    let port = free_port();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    let mut command = Command::new(venv.join("bin/langgraph"));
    command
        .args(["dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(&folder)
        .env("OPENAI_API_KEY", "bench")
        .env("OPENAI_BASE_URL", &openai)
        .env("LANGGRAPH_NO_VERSION_CHECK", "true")
        .env("LANGGRAPH_CLI_NO_ANALYTICS", "1")
        .env("LANGSMITH_TRACING", "false")
        .env("LANGCHAIN_TRACING_V2", "false");
    let reference = Server::spawn(command, port, "/ok", Duration::from_secs(120)).await;
    let reference_figures = measure(&reference, &reference.base.clone(), "chatbot", repeats, tokens).await;
    (our_figures, reference_figures)
}
