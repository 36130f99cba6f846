//! LangGraph's thread-centric event protocol (`/threads/{id}/commands`, `/stream/events` over SSE
//! and WebSocket), driven by its own Python client's `client.threads.stream()` and by raw HTTP:
//! `tests/langgraph/events_suite.py`. Like the other HTTP suites, it runs on each store the test
//! command names; `lambda_emulator` runs it through the Lambda functions.

use integration_tests::{mock_services, spawn_app_with, test_config, test_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_streams_a_threads_events_over_sse_and_websocket() {
    let services = mock_services::start().await;
    let wikipedia = format!("{}/w/api.php", services.base_url);
    let config = test_config(|name| match name {
        "WIKIPEDIA_API_URL" => Some(wikipedia.clone()),
        "OFFLINE_TOKEN_DELAY_MS" => Some("5".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    integration_tests::run_python_suite("langgraph/events_suite.py", vec![app.base.clone(), "both".into()]).await;
}
