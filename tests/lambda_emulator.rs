//! The functions of `functions/` behind `cargo lambda watch`, through the Lambda runtime protocol:
//! the user's paths routed to each function, a shared store, background runs executed by
//! `run-worker`, and a stream whose events arrive as they are produced.

use std::time::Duration;

use integration_tests::{StreamReader, TestApp};
use reqwest::Method;
use serde_json::json;

fn emulator() -> TestApp {
    let base = std::env::var("LAMBDA_EMULATOR_URL")
        .expect("LAMBDA_EMULATOR_URL is not set: run `make test`, which starts `cargo lambda watch`");
    TestApp::remote(base)
}

#[tokio::test]
async fn the_getting_started_document_works_through_the_lambda_functions() {
    integration_tests::walkthrough::getting_started(&emulator()).await;
}

#[tokio::test]
async fn a_background_run_is_finished_by_the_worker_function() {
    let app = emulator();
    let (_, thread_id) = app.thread("worker-user", json!({"configurable": {"type": "chatbot"}})).await;
    let (status, run) = app
        .post(
            "/runs",
            "worker-user",
            json!({"thread_id": thread_id, "input": [{"type": "human", "content": "my name is Zoe"}]}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let run = app.wait_for_run("worker-user", run["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "success", "{run}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), "worker-user").await;
    assert_eq!(state["values"][1]["content"], "Hello, Zoe! How can I assist you today?");
}

#[tokio::test]
async fn streamed_events_arrive_as_they_are_produced() {
    let app = emulator();
    let (_, thread_id) = app.thread("stream-user", json!({"configurable": {"type": "chatbot"}})).await;
    let response = app
        .request(Method::POST, "/runs/stream", Some("stream-user"))
        .json(&json!({"thread_id": thread_id, "input": [{"type": "human", "content": "have a good day!"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut reader = StreamReader::new(response);
    reader.read_to_end().await;
    let events = reader.events();
    assert_eq!(events.first().unwrap().event, "metadata");
    assert_eq!(events.last().unwrap().event, "end");
    // The offline model pauses between its 15 tokens; a buffered response would come as one burst.
    let arrivals = &reader.arrivals;
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(arrivals.len() >= 10, "{} reads: {arrivals:?}", arrivals.len());
    assert!(spread >= Duration::from_millis(200), "all within {spread:?}: {arrivals:?}");
}
