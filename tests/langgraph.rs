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
