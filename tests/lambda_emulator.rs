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

/// An agent's run with `tools` on `text`, as a stream (`runs-stream`) and in the background
/// (`run-worker`): each way's thread messages once it ended without an error.
async fn agent_runs_both_ways(
    app: &TestApp,
    tools: serde_json::Value,
    text: &str,
) -> Vec<(&'static str, Vec<serde_json::Value>)> {
    let config =
        json!({"configurable": {"type": "agent", "type==agent/agent_type": "Offline", "type==agent/tools": tools}});
    let input = json!([{"type": "human", "content": text}]);
    let mut ran = Vec::new();
    for path in ["/runs/stream", "/runs"] {
        let (_, thread_id) = app.thread("agent-lambda-user", config.clone()).await;
        let response = app
            .request(Method::POST, path, Some("agent-lambda-user"))
            .json(&json!({"thread_id": thread_id, "input": input}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        if path == "/runs" {
            let run: serde_json::Value = serde_json::from_str(&body).unwrap();
            let run = app.wait_for_run("agent-lambda-user", run["run_id"].as_str().unwrap()).await;
            assert_eq!(run["status"], "success", "{run}");
        } else {
            assert!(body.contains("event: end") && !body.contains("event: error"), "{body}");
        }
        let (_, state) = app.get(&format!("/threads/{thread_id}/state"), "agent-lambda-user").await;
        let values = state["values"].as_array().unwrap().clone();
        let kinds: Vec<&str> = values.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["human", "ai", "tool", "ai"], "{path}: {state}");
        ran.push((path, values));
    }
    ran
}

/// Tools run inside the functions that run the model: `runs-stream` for a stream, `run-worker`
/// for a background run. The emulator's Wikipedia is a closed port, so the call fails, and the
/// agent says so.
#[tokio::test]
async fn agents_run_their_tools_in_the_stream_and_worker_functions() {
    let tools = json!([{"id": "w", "type": "wikipedia", "name": "Wikipedia", "description": "", "config": {}}]);
    for (path, values) in agent_runs_both_ways(&emulator(), tools, "search wikipedia for the moon").await {
        assert_eq!(values[2]["status"], "error", "{path}");
        assert!(
            values[2]["content"].as_str().unwrap().contains("Wikipedia could not be reached"),
            "{path}: {values:?}"
        );
    }
}

/// An MCP server's tools are listed and called from both functions that run the model.
#[tokio::test]
async fn agents_call_an_mcp_servers_tools_in_the_stream_and_worker_functions() {
    let server = integration_tests::mcp_server::McpToolServer::start();
    let tools = json!([{"id": "m", "type": "mcp_server", "name": "MCP Server", "description": "", "config": {"url": server.url}}]);
    for (path, values) in agent_runs_both_ways(&emulator(), tools, "lookup lambda").await {
        assert_eq!(values[2]["status"], "success", "{path}: {values:?}");
        assert_eq!(values[2]["content"], "found in the dictionary: lookup lambda", "{path}");
    }
}

/// `/ingest` is its own function: the multipart body reaches it whole, and the RAG bot, in
/// `runs-stream`, finds what it stored.
#[tokio::test]
async fn files_uploaded_through_the_ingest_function_are_found_by_a_rag_bot() {
    let app = emulator();
    let user = "ingest-lambda-user";
    let config = json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "Offline"}});
    let assistant_id = app.assistant(user, config, false).await;
    let notes = b"The secret code word is PAPAYA-42.\nThe moon base is called Tranquility.";
    let files: [(&str, &str, &[u8]); 1] = [("notes.txt", "text/plain", notes)];
    let (status, ids) =
        crate::retrieval::ingest(&app, user, &files, Some(json!({"configurable": {"assistant_id": assistant_id}})))
            .await;
    assert_eq!(status, 200, "{ids}");
    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let input = json!({"messages": [{"type": "human", "content": "what is the secret code word?"}]});
    let events = app.stream(user, json!({"thread_id": thread_id, "input": input})).await;
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    let answer = state["values"][3]["content"].as_str().unwrap();
    assert!(answer.contains("PAPAYA-42"), "{state}");
}

/// A file too large for a request: the `ingest` function signs the URL, the file goes to the
/// (emulated) bucket, and the bucket's event, sent to `ingest-worker` through the Lambda Invoke
/// API as S3 would send it, reads it.
#[tokio::test]
async fn large_files_are_read_by_the_ingest_worker_function() {
    let app = emulator();
    let user = "upload-lambda-user";
    let config = json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "Offline"}});
    let assistant_id = app.assistant(user, config, false).await;
    let manual = "The moon base is called Tranquility.\n".repeat(50);
    let for_assistant = json!({"configurable": {"assistant_id": assistant_id}});
    let (upload_id, key) = crate::uploads::upload(&app, user, for_assistant, "manual.txt", manual.as_bytes()).await;
    let invoke = format!("{}/2015-03-31/functions/ingest-worker/invocations", app.base);
    let event = crate::uploads::object_created("lambda-uploads", &key);
    let response = app.client.post(invoke).json(&event).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (_, outcome) = app.get(&format!("/ingest/uploads/{upload_id}"), user).await;
    assert_eq!(outcome["status"], "done", "{outcome}");
    assert!(outcome["ids"].as_array().unwrap().len() >= 2, "{outcome}");
}

/// The LangGraph API (`tests/langgraph/sdk_suite.py`) through the Lambda functions under `cargo lambda watch` (which `make test`
/// starts): each route served by the function `template.yaml` gives it, background runs handed
/// to the run worker, joins and cancels reaching runs in other processes through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_langgraph_python_sdk_drives_the_lambda_functions() {
    integration_tests::run_langgraph_suite(emulator().base).await;
}

/// The event protocol through the functions: commands through `runs`, which hands the runs to
/// `run-worker`, and the thread's events over SSE from `runs-stream`, each process reading the
/// others' writes through the store. The agent's tools fail there (Wikipedia is out of reach),
/// and each caller sends its cookie (a Lambda function lets no caller in without one).
#[tokio::test]
async fn the_event_protocol_streams_through_the_lambda_functions() {
    let checks = [
        "a_chat_streams_its_answer_and_its_output_is_the_thread",
        "a_confirmation_is_asked_on_input_and_answered_with_respond",
        "a_second_run_continues_the_threads_numbering",
        "a_reconnect_with_since_gets_every_later_event_once",
        "a_failed_run_ends_failed_and_output_raises",
        "a_run_of_any_protocol_is_on_the_threads_log",
        "anothers_thread_is_neither_read_nor_run",
        "errors_get_the_references_envelopes",
    ];
    let mut args = vec![emulator().base, "sse".to_string()];
    args.extend(checks.iter().map(|check| check.to_string()));
    integration_tests::run_python_suite("langgraph/events_suite.py", args).await;
    // A function cannot hold a socket: a WebSocket is refused in words that name SSE.
    let path = format!("/langgraph/threads/{}/stream/events", uuid::Uuid::new_v4());
    let (status, refused) = emulator().get(&path, "socket-user").await;
    assert_eq!(status, 501, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("over SSE only"), "{refused}");
}

/// A cron made through the `runs` function fires when `run-worker` is invoked with what its
/// EventBridge schedule sends, through the Lambda runtime protocol; a delivery repeated (as
/// EventBridge may) starts nothing.
#[tokio::test]
async fn a_cron_fires_when_run_worker_gets_its_schedules_input() {
    let app = emulator();
    let user = "cron-lambda-user";
    let (_, thread_id) = app.thread(user, json!({"configurable": {"type": "chatbot"}})).await;
    let body = json!({"assistant_id": "chatbot", "schedule": "0 9 * * *",
                      "input": {"messages": [{"role": "user", "content": "my name is Ada"}]}});
    let (status, cron) = app.post(&format!("/langgraph/threads/{thread_id}/runs/crons"), user, body).await;
    assert_eq!(status, 200, "{cron}");
    let firing = json!({"cron_firing": {"cron_id": cron["cron_id"], "user_id": user,
                                        "scheduled_time": "2026-12-07T09:00:00Z"}});
    let invoke = format!("{}/2015-03-31/functions/run-worker/invocations", app.base);
    for _ in 0..2 {
        let response = app.client.post(&invoke).json(&firing).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let (_, runs) = app.get(&format!("/langgraph/threads/{thread_id}/runs"), user).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "one run for the slot: {runs}");
    assert_eq!(runs[0]["status"], "success", "{runs}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert_eq!(state["values"][1]["content"], "Hello, Ada! How can I assist you today?", "{state}");
}

/// A thread made with a `ttl` through the `threads` function is deleted when `run-worker` is
/// invoked with what the expired-threads schedule sends; one without is left alone, and the
/// prune and "delete my data" routes answer from `threads`.
#[tokio::test]
async fn the_expired_threads_schedule_sweeps_through_run_worker() {
    let app = emulator();
    let user = "ttl-lambda-user";
    let (status, expiring) =
        app.post("/langgraph/threads", user, json!({"ttl": {"ttl": 0.001, "strategy": "delete"}})).await;
    assert_eq!(status, 200, "{expiring}");
    let (_, kept) = app.post("/langgraph/threads", user, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let invoke = format!("{}/2015-03-31/functions/run-worker/invocations", app.base);
    let response = app.client.post(&invoke).json(&json!({"sweep": "expired_threads"})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (status, _) = app.get(&format!("/langgraph/threads/{}", expiring["thread_id"].as_str().unwrap()), user).await;
    assert_eq!(status, 404, "the expired thread was swept");
    let kept_id = kept["thread_id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/langgraph/threads/{kept_id}"), user).await;
    assert_eq!(status, 200, "the other thread is left alone");
    let (status, pruned) = app.post("/langgraph/threads/prune", user, json!({"thread_ids": [kept_id]})).await;
    assert_eq!((status.as_u16(), &pruned), (200, &json!({"pruned_count": 1})));
    let (status, removed) = app.delete("/me/data", user).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["removed"]["threads"], 0, "{removed}");
}

/// MCP's and A2A's clients through the functions: `/mcp` and `/a2a/{id}` answer from the
/// streaming function, the assistants they use come from `assistants`, the threads they leave
/// are read through `threads`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_a2a_clients_use_the_streaming_function() {
    integration_tests::run_python_suite("protocols/agents_suite.py", vec![emulator().base]).await;
}
