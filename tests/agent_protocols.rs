//! Our assistants as MCP tools (`/mcp`) and A2A agents (`/a2a/{id}`), driven by the official
//! MCP and A2A Python SDKs: `tests/protocols/agents_suite.py`, on each store the test command
//! names; `lambda_emulator` runs it through the Lambda functions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_and_a2a_sdks_use_our_assistants() {
    let app = integration_tests::spawn_app_with(
        integration_tests::test_config(|name| (name == "OFFLINE_TOKEN_DELAY_MS").then(|| "2".into())),
        integration_tests::test_store().await,
    )
    .await;
    integration_tests::run_python_suite("protocols/agents_suite.py", vec![app.base.clone()]).await;
}
