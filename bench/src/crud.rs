//! Requests per second and latency of the everyday reads and writes, at concurrency 1 and 16.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::stats::{summarize, Summary};

pub struct CrudResult {
    pub requests_per_second: f64,
    pub latency: Summary,
}

const USER: &str = "opengpts_user_id=bench";

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    client.post(url).header("cookie", USER).json(&body).send().await.unwrap().json().await.unwrap()
}

/// An assistant list of 10 and a thread of 20 messages to read.
pub async fn seed(client: &reqwest::Client, base: &str) -> (String, String) {
    let mut assistant_id = String::new();
    for i in 0..10 {
        let body = json!({"name": format!("bench {i}"), "config": {"configurable": {"type": "chatbot"}}});
        assistant_id = post(client, format!("{base}/assistants"), body).await["assistant_id"].as_str().unwrap().into();
    }
    let thread = post(client, format!("{base}/threads"), json!({"name": "bench", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap().to_string();
    let messages: Vec<Value> =
        (0..20).map(|i| json!({"type": "human", "content": format!("message number {i}")})).collect();
    client
        .post(format!("{base}/threads/{thread_id}/messages"))
        .header("cookie", USER)
        .json(&json!({"messages": messages}))
        .send()
        .await
        .unwrap();
    (assistant_id, thread_id)
}

pub async fn measure(
    base: &str,
    endpoint: &'static str,
    concurrency: usize,
    total: usize,
    assistant_id: &str,
    thread_id: &str,
) -> CrudResult {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (client, next) = (client.clone(), next.clone());
        let (base, assistant_id, thread_id) = (base.to_string(), assistant_id.to_string(), thread_id.to_string());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let request = match endpoint {
                    "GET /threads/{id}/messages" => client.get(format!("{base}/threads/{thread_id}/messages")),
                    "GET /assistants" => client.get(format!("{base}/assistants")),
                    _ => {
                        client.post(format!("{base}/threads")).json(&json!({"name": "t", "assistant_id": assistant_id}))
                    }
                };
                let sent = Instant::now();
                let response = request.header("cookie", USER).send().await.unwrap();
                assert_eq!(response.status(), 200, "{endpoint}");
                response.bytes().await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        })
    });
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker.unwrap());
    }
    let elapsed = started.elapsed();
    CrudResult { requests_per_second: total as f64 / elapsed.as_secs_f64(), latency: summarize(&mut latencies) }
}
