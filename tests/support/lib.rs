//! Shared by the integration tests: the app on a random port driven over real HTTP, and local
//! servers that speak the model providers' streaming wire formats.

pub mod agent_tools;
pub mod contract;
pub mod contract_lifecycle;
pub mod hostile;
pub mod mcp_server;
pub mod mock_provider;
pub mod mock_services;
pub mod process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opengpts::api::AppState;
use opengpts::config::Config;
use opengpts::config::DynamoSettings;
use opengpts::store::{DynamoStore, MemoryStore, SqliteStore, Store};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

pub mod walkthrough;

/// A client for an API under test, wherever it runs: spawned here, or behind the Lambda emulator.
pub struct TestApp {
    pub base: String,
    pub client: Client,
}

/// The app with default settings (offline model without delay) on the store under test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config(|_| None), test_store().await).await
}

/// A fresh, empty store of the backend named by `TEST_STORE` (memory unless set), so the same
/// HTTP suites run against every backend.
pub async fn test_store() -> Arc<dyn Store> {
    match std::env::var("TEST_STORE").as_deref().unwrap_or("memory") {
        "memory" => Arc::new(MemoryStore::new()),
        "sqlite" => Arc::new(SqliteStore::open(&temp_path("api.sqlite3")).expect("a sqlite store")),
        "dynamodb" => Arc::new(dynamodb_store().await),
        other => panic!("TEST_STORE={other} is not a store backend"),
    }
}

/// Defaults for tests: no token delay; `vars` may set any configuration variable.
pub fn test_config(vars: impl Fn(&str) -> Option<String>) -> Config {
    Config::from_lookup(|name| vars(name).or_else(|| (name == "OFFLINE_TOKEN_DELAY_MS").then(|| "0".into())))
        .expect("valid test configuration")
}

pub async fn spawn_app_with(config: Config, store: Arc<dyn Store>) -> TestApp {
    spawn_state(AppState::new(config, store).expect("a valid test configuration")).await
}

/// A URL whose port refuses connections while the returned socket is kept. The socket is bound
/// but not listening: no other listener, of this test or of one beside it, can take the port
/// meanwhile, as one could a port a dropped listener freed (a test's provider then answered
/// another test's runs).
pub fn refusing_url() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind("127.0.0.1:0".parse().expect("an address")).expect("a free port");
    let url = format!("http://{}", socket.local_addr().expect("bound address"));
    (socket, url)
}

/// Serves every route with `state` on a port of its own.
pub async fn spawn_state(state: AppState) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound address");
    tokio::spawn(opengpts::serve::serve_http(listener, state));
    TestApp::remote(format!("http://{address}"))
}

impl TestApp {
    pub fn remote(base: String) -> Self {
        TestApp { base, client: Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `user` (`None`: no cookie at all).
    pub fn request(&self, method: Method, path: &str, user: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match user {
            Some(user) => request.header("cookie", format!("opengpts_user_id={user}")),
            None => request,
        }
    }

    pub async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path, Some(user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        json_of(response).await
    }

    pub async fn get(&self, path: &str, user: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, user, None).await
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, user, Some(body)).await
    }

    pub async fn put(&self, path: &str, user: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, user, Some(body)).await
    }

    pub async fn delete(&self, path: &str, user: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, user, None).await
    }

    /// Creates an assistant and returns its id.
    pub async fn assistant(&self, user: &str, config: Value, public: bool) -> String {
        let body = serde_json::json!({"name": "bot", "config": config, "public": public});
        let (status, assistant) = self.post("/assistants", user, body).await;
        assert_eq!(status, StatusCode::OK, "{assistant}");
        assistant["assistant_id"].as_str().expect("an id").to_string()
    }

    /// Creates a thread on a new assistant and returns (assistant_id, thread_id).
    pub async fn thread(&self, user: &str, config: Value) -> (String, String) {
        let assistant_id = self.assistant(user, config, false).await;
        let body = serde_json::json!({"name": "t", "assistant_id": assistant_id});
        let (status, thread) = self.post("/threads", user, body).await;
        assert_eq!(status, StatusCode::OK, "{thread}");
        (assistant_id, thread["thread_id"].as_str().expect("an id").to_string())
    }

    /// Posts to `/runs/stream` and returns its stream, to read as it arrives.
    pub async fn open_stream(&self, user: &str, body: &Value) -> StreamReader {
        let response = self.request(Method::POST, "/runs/stream", Some(user)).json(body).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        StreamReader::new(response)
    }

    /// Posts to `/runs/stream` and reads the whole event stream.
    pub async fn stream(&self, user: &str, body: Value) -> Vec<SseEvent> {
        let response = self.request(Method::POST, "/runs/stream", Some(user)).json(&body).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        parse_sse(&response.text().await.expect("a body"))
    }

    /// Polls a run until it has finished.
    pub async fn wait_for_run(&self, user: &str, run_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, run) = self.get(&format!("/runs/{run_id}"), user).await;
            if ["success", "error", "cancelled"].contains(&run["status"].as_str().unwrap_or("")) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {run_id} did not finish: {run}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A response body read as it arrives: the text so far, and when each read came.
pub struct StreamReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    started: Instant,
    pub text: String,
    /// Time from the reader's creation to each read.
    pub arrivals: Vec<Duration>,
}

impl StreamReader {
    pub fn new(response: Response) -> Self {
        use futures::StreamExt;
        StreamReader {
            body: response.bytes_stream().boxed(),
            started: Instant::now(),
            text: String::new(),
            arrivals: Vec::new(),
        }
    }

    /// Reads on until `done` holds for the text so far; the stream may not end before.
    pub async fn read_until(&mut self, done: impl Fn(&str) -> bool) {
        while !done(&self.text) {
            assert!(self.read().await, "the stream ended early: {:?}", self.text);
        }
    }

    /// Reads to the end of the stream.
    pub async fn read_to_end(&mut self) {
        while self.read().await {}
    }

    /// The run's id, from the `metadata` event.
    pub fn run_id(&self) -> String {
        self.events()[0].json()["run_id"].as_str().expect("a run id").to_string()
    }

    /// The complete events read so far.
    pub fn events(&self) -> Vec<SseEvent> {
        self.text.rfind("\r\n\r\n").map(|end| parse_sse(&self.text[..end + 4])).unwrap_or_default()
    }

    async fn read(&mut self) -> bool {
        use futures::StreamExt;
        match self.body.next().await {
            Some(chunk) => {
                self.text.push_str(std::str::from_utf8(&chunk.expect("a readable stream")).expect("UTF-8"));
                self.arrivals.push(self.started.elapsed());
                true
            }
            None => false,
        }
    }
}

/// One server-sent event: its name and its data (`None` for `end`, which has no data line).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: Option<String>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("a data line")).expect("JSON data")
    }
}

/// Splits an SSE body on its CRLF blank lines, failing on any frame OpenGPTs would not send.
pub fn parse_sse(body: &str) -> Vec<SseEvent> {
    assert!(body.ends_with("\r\n\r\n"), "the stream ends with a blank line: {body:?}");
    body.trim_end_matches("\r\n\r\n")
        .split("\r\n\r\n")
        .filter(|frame| !frame.starts_with(": ping"))
        .map(|frame| {
            let mut lines = frame.split("\r\n");
            let event = lines.next().and_then(|l| l.strip_prefix("event: ")).expect("an event line").to_string();
            let data = lines.next().map(|l| l.strip_prefix("data: ").expect("a data line").to_string());
            assert!(lines.next().is_none(), "one data line per event: {frame:?}");
            SseEvent { event, data }
        })
        .collect()
}

/// A DynamoDB store on a new table of the emulator the test command started. Pages are small, so
/// every list crosses page boundaries.
pub async fn dynamodb_store() -> DynamoStore {
    dynamodb_store_paged(Some(7)).await
}

/// The same with a chosen Query page size (`None`: DynamoDB's own 1 MB pages).
pub async fn dynamodb_store_paged(page_size: Option<i32>) -> DynamoStore {
    DynamoStore::connect(dynamodb_settings(page_size)).await.expect("the emulator answers")
}

/// Settings for a new table on the emulator the test command started; a second store connected
/// with the same settings is a second client of the same table.
pub fn dynamodb_settings(page_size: Option<i32>) -> DynamoSettings {
    let endpoint = std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the DynamoDB emulator (moto)");
    DynamoSettings {
        table: format!("test-{}", uuid::Uuid::new_v4()),
        endpoint_url: Some(endpoint),
        create_table: true,
        page_size,
        // The emulator answers one request at a time: with every suite at it at once on a busy
        // machine, a request may wait its turn longer than DynamoDB ever takes to answer.
        // Atomicity is under test here, not latency (the fault suites set their own timeouts).
        attempt_timeout: std::time::Duration::from_secs(30),
    }
}

/// A fresh path in a folder of its own under the system temp dir, for one test's files.
pub fn temp_path(file: &str) -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("opengpts-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&folder).expect("a temp folder");
    folder.join(file)
}

/// Runs `tests/langgraph/sdk_suite.py` against the API at `base`.
/// The server the SDK suites drive: Wikipedia is the stand-in (kept while the app is), and the
/// offline model's tokens come 5 ms apart, so a run is still going when a client acts on it.
pub async fn spawn_sdk_app() -> (TestApp, mock_provider::MockProvider) {
    let services = mock_services::start().await;
    let wikipedia = format!("{}/w/api.php", services.base_url);
    let config = test_config(|name| match name {
        "WIKIPEDIA_API_URL" => Some(wikipedia.clone()),
        "OFFLINE_TOKEN_DELAY_MS" => Some("5".into()),
        _ => None,
    });
    (spawn_app_with(config, test_store().await).await, services)
}

pub async fn run_langgraph_suite(base: String) {
    run_python_suite("langgraph/sdk_suite.py", vec![base]).await;
}

/// Runs one of the Python suites under `tests/` (a client's own package driving the server), and
/// fails with what it printed unless every check passed.
pub async fn run_python_suite(script: &str, args: Vec<String>) {
    let suite = format!("{}/{script}", env!("CARGO_MANIFEST_DIR"));
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new("python").arg(suite).args(args).output())
            .await
            .unwrap()
            .expect("python on PATH: run `make test`, which puts the test tools' virtualenv there");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!printed.contains("No module named 'langgraph_sdk'"), "langgraph-sdk is missing: run `make test`");
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("passed"), "{printed}");
}
