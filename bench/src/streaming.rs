//! What the server adds to a streamed answer: the same upstream, called directly and through
//! `/runs/stream`, compared on time to first token and total time.

use std::time::{Duration, Instant};

use integration_tests::mock_provider::{openai_events, MockProvider, Part, Reply};
use integration_tests::StreamReader;
use serde_json::json;

use crate::server::Server;
use crate::stats::{ms, summarize, summarize_ms, Summary};

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
    let mut reader = StreamReader::new(response);
    reader.read_until(|text| text.contains(first_token_marker)).await;
    let first = started.elapsed();
    reader.read_to_end().await;
    (first, started.elapsed())
}

/// The server's CPU time per streamed token: all of it, and the user-space part (our code, as
/// opposed to syscalls and the loopback TCP stack).
pub struct CpuPerToken {
    pub total: Duration,
    pub user: Duration,
}

/// Each request through the server paired with a direct call to the same upstream, started at
/// the same moment: what the server adds is the difference within each pair, so the scheduling
/// noise both share cancels out, and its percentiles are percentiles of real requests.
pub struct Paired {
    pub direct: StreamTimes,
    pub through: StreamTimes,
    pub added: StreamTimes,
}

/// Which API a stream goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /runs/stream`, the latest OpenGPTs client's.
    OpenGpts,
    /// `POST /langgraph/threads/{id}/runs/stream` in `messages-tuple` mode, as useStream asks.
    LangGraph { resumable: bool },
}

impl Api {
    pub fn label(self) -> &'static str {
        match self {
            Api::OpenGpts => "/runs/stream",
            Api::LangGraph { resumable: false } => "/langgraph …/runs/stream (messages-tuple)",
            Api::LangGraph { resumable: true } => "/langgraph …/runs/stream (messages-tuple, resumable)",
        }
    }
}

/// A client of one user of the server, in either API's shapes.
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie: &'static str,
}

impl Client {
    pub fn new(server: &Server) -> Self {
        Client { http: reqwest::Client::new(), base: server.base.clone(), cookie: "opengpts_user_id=bench-stream" }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let request = self.http.post(format!("{}{path}", self.base)).header("cookie", self.cookie).json(&body);
        request.send().await.unwrap().json::<serde_json::Value>().await.unwrap()
    }

    /// A chatbot on the model the upstream serves, and a way to stream one run of it on a new
    /// thread.
    pub async fn chatbot(&self, api: Api) -> serde_json::Value {
        let config = json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}});
        match api {
            Api::OpenGpts => self.post("/assistants", json!({"name": "stream", "config": config})).await,
            Api::LangGraph { .. } => {
                self.post("/langgraph/assistants", json!({"graph_id": "chatbot", "config": config})).await
            }
        }
    }

    pub async fn stream_request(&self, api: Api, assistant: &serde_json::Value) -> reqwest::RequestBuilder {
        let (path, body) = match api {
            Api::OpenGpts => {
                let thread =
                    self.post("/threads", json!({"name": "s", "assistant_id": assistant["assistant_id"]})).await;
                (
                    "/runs/stream".to_string(),
                    json!({"thread_id": thread["thread_id"], "input": [{"type": "human", "content": "go"}]}),
                )
            }
            Api::LangGraph { resumable } => {
                let thread = self.post("/langgraph/threads", json!({})).await;
                let path = format!("/langgraph/threads/{}/runs/stream", thread["thread_id"].as_str().unwrap());
                let body = json!({"assistant_id": assistant["assistant_id"], "stream_mode": ["messages-tuple"],
                    "stream_resumable": resumable, "input": {"messages": [{"role": "user", "content": "go"}]}});
                (path, body)
            }
        };
        self.http.post(format!("{}{path}", self.base)).header("cookie", self.cookie).json(&body)
    }
}

/// Streams through the server, each time beside a direct call; also returns the server's CPU
/// time per streamed token.
pub async fn paired(
    server: &Server,
    upstream: &MockProvider,
    repeats: usize,
    tokens: usize,
    api: Api,
) -> (Paired, CpuPerToken) {
    let client = reqwest::Client::new();
    let ours = Client::new(server);
    let assistant = ours.chatbot(api).await;
    let mut samples: [Vec<Duration>; 4] = Default::default();
    let (mut added_first, mut added_total) = (Vec::new(), Vec::new());
    let mut cpu = Duration::ZERO;
    let (user_before, _) = server.cpu_split();
    for _ in 0..repeats {
        let through = ours.stream_request(api, &assistant).await;
        let direct = client
            .post(format!("{}/v1/chat/completions", upstream.base_url))
            .bearer_auth("bench")
            .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "go"}]}));
        let before = server.cpu_time();
        let ((direct_first, direct_total), (through_first, through_total)) =
            tokio::join!(timed(direct, r#""content":"t0 ""#), timed(through, r#""content":"t0 ""#));
        cpu += server.cpu_time() - before;
        added_first.push(ms(through_first) - ms(direct_first));
        added_total.push(ms(through_total) - ms(direct_total));
        for (list, sample) in samples.iter_mut().zip([direct_first, direct_total, through_first, through_total]) {
            list.push(sample);
        }
    }
    let streamed = (repeats * tokens) as u32;
    let user = (server.cpu_split().0 - user_before) / streamed;
    let [mut direct_first, mut direct_total, mut through_first, mut through_total] = samples;
    let paired = Paired {
        direct: StreamTimes { first_token: summarize(&mut direct_first), total: summarize(&mut direct_total) },
        through: StreamTimes { first_token: summarize(&mut through_first), total: summarize(&mut through_total) },
        added: StreamTimes { first_token: summarize_ms(&mut added_first), total: summarize_ms(&mut added_total) },
    };
    (paired, CpuPerToken { total: cpu / streamed, user })
}
