//! The LangGraph API under `/langgraph`, driven by its own Python client (`langgraph-sdk`, which
//! `make test` installs) through every call a user's code makes: `tests/langgraph/sdk_suite.py`.
//! Like the other HTTP suites, it runs on each store the test command names.

use integration_tests::{mock_services, spawn_app_with, test_config, test_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_assistants_threads_runs_and_interrupts() {
    let services = mock_services::start().await;
    let wikipedia = format!("{}/w/api.php", services.base_url);
    let config = test_config(|name| match name {
        "WIKIPEDIA_API_URL" => Some(wikipedia.clone()),
        // Slow enough that a run is still going when the suite cancels or interrupts it.
        "OFFLINE_TOKEN_DELAY_MS" => Some("5".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    integration_tests::run_langgraph_suite(app.base.clone()).await;
}

/// A stateless run's thread is its own: gone once a waited or streamed run ends, kept after a
/// background one (its answer is read there), and gone when the run could not start.
#[tokio::test]
async fn a_stateless_runs_thread_goes_with_it_unless_kept() {
    let app = integration_tests::spawn_app().await;
    let user = "stateless";
    let threads = || async {
        let (status, found) = app.post("/langgraph/threads/search", user, serde_json::json!({"limit": 100})).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{found}");
        found.as_array().unwrap().len()
    };
    let input = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
    let (status, waited) =
        app.post("/langgraph/runs/wait", user, serde_json::json!({"assistant_id": "chatbot", "input": input})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{waited}");
    assert_eq!(threads().await, 0, "a waited stateless run took its thread with it");

    let unknown_model = serde_json::json!({"configurable": {"llm_type": "No Such Model"}});
    let body = serde_json::json!({"assistant_id": "chatbot", "input": input, "config": unknown_model});
    let (status, refused) = app.post("/langgraph/runs/wait", user, body).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(threads().await, 0, "a run that could not start leaves no thread behind");

    let (status, run) =
        app.post("/langgraph/runs", user, serde_json::json!({"assistant_id": "chatbot", "input": input})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{run}");
    assert_eq!(threads().await, 1, "a background stateless run keeps its thread, where its answer is");
}
