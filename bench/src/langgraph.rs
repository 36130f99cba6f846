//! What the LangGraph API's resumable streams cost: the store writes a run makes per second of
//! streaming (on DynamoDB, where they are billed), and how long a join takes to replay a run's
//! kept events.

use std::path::Path;
use std::time::{Duration, Instant};

use opengpts::config::DynamoSettings;
use opengpts::model::UserId;
use opengpts::store::{DynamoStore, EventStore, RunStore};

use crate::server::Server;
use crate::stats::{ms, summarize_ms, Summary};
use crate::streaming::{self, Api, Client};

/// Streams one resumable run; returns its location (relative to the LangGraph API's root, as the
/// SDKs read it), how many events it sent, and how long it took.
async fn resumable_run(server: &Server) -> (String, usize, Duration) {
    let client = Client::new(server);
    let assistant = client.chatbot(Api::LangGraph { resumable: true }).await;
    let started = Instant::now();
    let response = client.stream_request(Api::LangGraph { resumable: true }, &assistant).await.send().await.unwrap();
    let location = response.headers()["content-location"].to_str().unwrap().to_string();
    let text = response.text().await.unwrap();
    (location, text.matches("\r\nid: ").count(), started.elapsed())
}

/// Store writes per second of streaming, for a run of `tokens` tokens `gap` apart on DynamoDB.
pub async fn writes_per_second(binary: &Path, endpoint: &str, tokens: usize, gap: Duration) -> (u64, usize, Duration) {
    let upstream = streaming::upstream(tokens, gap).await;
    let table = format!("bench-resumable-{}", std::process::id());
    let env = vec![
        ("STORE", "dynamodb".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_string()),
        ("TABLE_NAME", table.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("OPENAI_API_KEY", "bench".to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", upstream.base_url)),
    ];
    let server = Server::start(binary, &env).await;
    let (location, events, took) = resumable_run(&server).await;
    let run_id = location.rsplit('/').next().unwrap().parse().unwrap();
    let settings = DynamoSettings {
        table,
        endpoint_url: Some(endpoint.to_string()),
        create_table: false,
        page_size: None,
        attempt_timeout: DynamoSettings::DEFAULT_ATTEMPT_TIMEOUT,
    };
    let store = DynamoStore::connect(settings).await.unwrap();
    let run = store.get_run(&UserId::new("bench-stream").unwrap(), run_id).await.unwrap();
    let (_, batches) = store.run_events(&run, 0).await.unwrap();
    (batches, events, took)
}

/// Replays a finished resumable run of `tokens` tokens from its first event, `repeats` times.
pub async fn replay(binary: &Path, tokens: usize, repeats: usize) -> (usize, Summary) {
    let upstream = streaming::upstream(tokens, Duration::ZERO).await;
    let env = vec![
        ("STORE", "memory".to_string()),
        ("OPENAI_API_KEY", "bench".to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", upstream.base_url)),
    ];
    let server = Server::start(binary, &env).await;
    let (location, events, _) = resumable_run(&server).await;
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        let response = http
            .get(format!("{}/langgraph{location}/stream", server.base))
            .header("cookie", "opengpts_user_id=bench-stream")
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap();
        let replayed = response.text().await.unwrap().matches("\r\nid: ").count();
        assert_eq!(replayed, events, "the whole run is replayed");
        times.push(ms(started.elapsed()));
    }
    (events, summarize_ms(&mut times))
}
