//! A server killed (SIGKILL) in the middle of a streamed run, restarted on the same SQLite file:
//! the thread is consistent, it is not locked past the lease, the lost run says what happened,
//! and nothing secret reached the logs. An agent killed mid-loop leaves the steps it completed,
//! and the next run goes on from there. A server stopped (SIGSTOP) past its runs' leases loses
//! nothing when it goes on.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use integration_tests::mock_provider::{openai_events, MockProvider, Part, Reply};
use integration_tests::process::{spawn_api, KilledAtEnd};
use integration_tests::{parse_sse, temp_path, TestApp};
use opengpts::store::RunStore;
use reqwest::Method;
use serde_json::json;

const SECRET: &str = "sk-crash-test-secret-value";
const USER: &str = "crash-user-cookie-value";

/// Starts the server on the SQLite file, with the model at `upstream`.
async fn start(database: &PathBuf, upstream: &str, log: &PathBuf, extra: &[(&str, String)]) -> (KilledAtEnd, TestApp) {
    let mut env: Vec<(&str, String)> = vec![
        ("STORE", "sqlite".into()),
        ("SQLITE_PATH", database.display().to_string()),
        ("RUN_LEASE_SECONDS", "1".into()),
        ("OPENAI_API_KEY", SECRET.into()),
        ("OPENAI_BASE_URL", upstream.into()),
        ("RUST_LOG", "debug".into()),
    ];
    env.extend(extra.iter().cloned());
    let (server, app) = spawn_api(log, &env).await;
    (KilledAtEnd(server), app)
}

/// A model answering `tokens` words ("t0 t1 ..."), `pause` apart; a database and a log beside it.
async fn paced_model(tokens: usize, pause: Duration) -> (MockProvider, PathBuf, PathBuf) {
    let upstream = MockProvider::start(move |_| {
        let tokens: Vec<String> = (0..tokens).map(|i| format!("t{i} ")).collect();
        let events = openai_events(&tokens.iter().map(String::as_str).collect::<Vec<_>>());
        Reply::event_stream(events.into_iter().map(|e| Part::after(pause, e)).collect())
    })
    .await;
    let database = temp_path("server.sqlite3");
    let log = database.with_file_name("server.log");
    (upstream, database, log)
}

#[tokio::test]
async fn a_killed_server_leaves_a_consistent_thread_that_frees_itself() {
    let (upstream, database, log) = paced_model(60, Duration::from_millis(50)).await;
    let (mut server, app) = start(&database, &upstream.base_url, &log, &[]).await;

    let (_, thread_id) =
        app.thread(USER, json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}})).await;
    let mut reader = app
        .open_stream(
            USER,
            &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "before the crash"}]}),
        )
        .await;
    reader.read_until(|text| text.matches("event: data").count() >= 4).await;
    let crashed_run = reader.run_id();
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    drop(reader);

    let (mut server, app) = start(&database, &upstream.base_url, &log, &[]).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let values = state["values"].as_array().expect("the thread survived");
    assert_eq!(values.len(), 1, "the input is kept and no half answer is stored: {state}");
    assert_eq!(values[0]["content"], "before the crash");

    // Not locked past the lease: within a few seconds a new run goes through to the end.
    let events = continue_when_free(&app, &thread_id).await;
    assert_eq!(events.last().unwrap().event, "end");
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"].as_array().unwrap().len(), 2);

    // The next run recorded the lost one failed: its record says so before anyone reads it.
    let store = opengpts::store::SqliteStore::open(&database).unwrap();
    let user = opengpts::model::UserId::new(USER).unwrap();
    let recorded = store.get_run(&user, crashed_run.parse().unwrap()).await.unwrap();
    assert_eq!(recorded.status, opengpts::model::RunStatus::Error, "{recorded:?}");
    let (_, lost) = app.get(&format!("/runs/{crashed_run}"), USER).await;
    assert_eq!(lost["status"], "error", "{lost}");
    assert!(lost["error"].as_str().unwrap().contains("stopped without finishing"));

    server.kill().unwrap();
    server.wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.is_empty(), "the server logged nothing at debug level");
    assert!(!logs.contains(SECRET), "an API key reached the logs");
    assert!(!logs.contains(USER), "a cookie value reached the logs");
    assert!(!logs.contains('\x1b'), "colour codes in a log that is not a terminal");
    assert!(logs.contains(r#"route="/runs/stream"}: answered status=200"#), "no request line: {logs}");
    assert!(logs.contains("run finished") && logs.contains("outcome=\"success\""), "no run line: {logs}");
}

/// Waits out the killed run's lease, then continues the thread with `input: null`.
async fn continue_when_free(app: &TestApp, thread_id: &str) -> Vec<integration_tests::SseEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app
            .request(Method::POST, "/runs/stream", Some(USER))
            .json(&json!({"thread_id": thread_id, "input": null}))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            return parse_sse(&response.text().await.unwrap());
        }
        assert_eq!(response.status(), 409, "only the old lease may refuse");
        assert!(Instant::now() < deadline, "the thread stayed locked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_agent_killed_while_its_tool_runs_is_continued_by_the_next_run() {
    let services = integration_tests::mock_services::start().await;
    let database = temp_path("agent-crash.sqlite3");
    let log = database.with_file_name("server.log");
    // The tool takes seconds: the server is killed while it runs.
    let extra = [("WIKIPEDIA_API_URL", format!("{}/slow/w/api.php", services.base_url))];
    let (mut server, app) = start(&database, "http://127.0.0.1:9/v1", &log, &extra).await;
    let tools = json!([integration_tests::mock_services::ui_tool("wikipedia", json!({}))]);
    let (_, thread_id) = app
        .thread(
            USER,
            json!({"configurable": {"type": "agent", "type==agent/agent_type": "Offline", "type==agent/tools": tools}}),
        )
        .await;
    let mut reader = app
        .open_stream(
            USER,
            &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "search wikipedia"}]}),
        )
        .await;
    reader.read_until(|text| text.matches(r#""finish_reason":"tool_calls""#).count() >= 2).await;
    // The AI message is stored right after it is sent; the tool then runs for seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    drop(reader);
    let services_called = services.requests().len();
    assert_eq!(services_called, 1, "the tool was running when the server died");

    let (mut server, app) = start(&database, "http://127.0.0.1:9/v1", &log, &extra).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let kinds: Vec<&str> = state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["human", "ai"], "the completed step is kept: {state}");
    assert_eq!(state["values"][1]["tool_calls"][0]["name"], "wikipedia");

    let events = continue_when_free(&app, &thread_id).await;
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let kinds: Vec<&str> = state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["human", "ai", "tool", "ai"], "{state}");
    assert_eq!(services.requests().len(), 2, "the pending call ran once more, to completion");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Stops the server's process (SIGSTOP) for `stopped`, then lets it go on (SIGCONT).
async fn stop_for(server: &Child, stopped: Duration) {
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill").args([name, &server.id().to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()), "kill {name}");
    };
    signal("-STOP");
    tokio::time::sleep(stopped).await;
    signal("-CONT");
}

/// A process stopped or starved past its runs' leases (a laptop asleep, a CPU-starved host) is
/// not dead: when it goes on, a run queued in it waits for the run holding the thread there, which
/// finishes its answer, instead of taking the thread and leaving the first tab without one.
#[tokio::test]
async fn a_server_stopped_past_the_lease_gives_two_tabs_on_one_thread_both_their_answer() {
    let (upstream, database, log) = paced_model(40, Duration::from_millis(30)).await;
    let (mut server, app) = start(&database, &upstream.base_url, &log, &[]).await;
    let (_, thread_id) =
        app.thread(USER, json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}})).await;
    let tab = |content: &str| json!({"thread_id": thread_id, "input": [{"type": "human", "content": content}]});
    let mut first = app.open_stream(USER, &tab("from the first tab")).await;
    first.read_until(|text| text.matches("event: data").count() >= 2).await;
    // Its answer comes once the stream is open: the run waits in the stream for the thread.
    let mut second = app.open_stream(USER, &tab("from the second tab")).await;
    // Each stop outlasts the 1 s lease; a heartbeat (every third of it) and the queued run's next
    // try are both due when the process goes on, and either may come first.
    for _ in 0..3 {
        stop_for(&server, Duration::from_millis(1600)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    first.read_to_end().await;
    second.read_to_end().await;
    let exited = server.try_wait().unwrap();
    assert!(exited.is_none(), "the server exited ({exited:?}): {}", std::fs::read_to_string(&log).unwrap());
    for (tab, stream) in [("first", first.events()), ("second", second.events())] {
        assert!(stream.iter().all(|event| event.event != "error"), "the {tab} tab: {stream:?}");
        assert_eq!(stream.last().map(|event| event.event.as_str()), Some("end"), "the {tab} tab: {stream:?}");
    }
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let messages: Vec<(&str, &str)> = state["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| (message["type"].as_str().unwrap(), message["content"].as_str().unwrap()))
        .collect();
    let answer: String = (0..40).map(|i| format!("t{i} ")).collect();
    assert_eq!(
        messages,
        [("human", "from the first tab"), ("ai", &*answer), ("human", "from the second tab"), ("ai", &*answer)]
    );
}
