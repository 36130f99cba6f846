//! LangGraph's thread-centric event protocol (`/threads/{id}/commands`, `/stream/events` over SSE
//! and WebSocket), driven by its own Python client's `client.threads.stream()` and by raw HTTP:
//! `tests/langgraph/events_suite.py`. Like the other HTTP suites, it runs on each store the test
//! command names; `lambda_emulator` runs it through the Lambda functions.

use integration_tests::{spawn_app_with, test_config, test_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_streams_a_threads_events_over_sse_and_websocket() {
    let (app, _wikipedia) = integration_tests::spawn_sdk_app().await;
    integration_tests::run_python_suite("langgraph/events_suite.py", vec![app.base.clone(), "both".into()]).await;
}

/// Hostile use is bounded: a command body past `MAX_BODY_BYTES` is refused whole, and a user
/// holds at most `MAX_STREAMS_PER_USER` event streams open at once (a closed one frees its slot).
#[tokio::test]
async fn commands_and_streams_are_bounded() {
    use reqwest::StatusCode;
    let config = test_config(|name| match name {
        "MAX_BODY_BYTES" => Some("2000".into()),
        "MAX_STREAMS_PER_USER" => Some("2".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    let thread = uuid::Uuid::new_v4();
    let big = serde_json::json!({"id": 1, "method": "run.start", "params": {"assistant_id": "chatbot",
        "input": {"messages": [{"role": "user", "content": "x".repeat(3000)}]}}});
    let (status, refused) = app.post(&format!("/langgraph/threads/{thread}/commands"), "bounded", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("2000 bytes"), "{refused}");
    let (status, _) = app.get(&format!("/langgraph/threads/{thread}"), "bounded").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was started");

    let open = || {
        app.request(reqwest::Method::POST, &format!("/langgraph/threads/{thread}/stream/events"), Some("bounded"))
            .json(&serde_json::json!({"channels": ["lifecycle"]}))
            .send()
    };
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let mut again = open().await.unwrap().status();
    for _ in 0..50 {
        if again == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        again = open().await.unwrap().status();
    }
    assert_eq!(again, StatusCode::OK, "a closed stream gives its slot back");
}

/// A model faster than a reader: a live stream of a run of 5,000 tokens sent at once, read while
/// the run writes it, gets every event of the thread once, in order (a reader that falls behind
/// the run reads what it missed from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_slower_than_the_model_misses_nothing() {
    use futures::StreamExt;
    use integration_tests::mock_provider::{openai_events, parts, MockProvider, Reply};
    let words: Vec<String> = (0..5000).map(|i| format!("t{i} ")).collect();
    let events = openai_events(&words.iter().map(String::as_str).collect::<Vec<_>>());
    let upstream = MockProvider::start(move |_| Reply::event_stream(parts(events.clone()))).await;
    let openai = format!("{}/v1", upstream.base_url);
    let config = test_config(|name| match name {
        "OPENAI_API_KEY" => Some("test".into()),
        "OPENAI_BASE_URL" => Some(openai.clone()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    let user = "fast-model";
    let body =
        serde_json::json!({"graph_id": "chatbot", "config": {"configurable": {"type==chatbot/llm_type": "GPT 4o"}}});
    let (_, assistant) = app.post("/langgraph/assistants", user, body).await;
    let thread = uuid::Uuid::new_v4();
    let stream = app
        .request(reqwest::Method::POST, &format!("/langgraph/threads/{thread}/stream/events"), Some(user))
        .json(&serde_json::json!({"channels": ["messages", "lifecycle", "values", "updates", "tools", "input"]}))
        .send()
        .await
        .unwrap();
    let start = serde_json::json!({"id": 1, "method": "run.start", "params": {"assistant_id": assistant["assistant_id"],
        "input": {"messages": [{"role": "user", "content": "go"}]}}});
    let (_, started) = app.post(&format!("/langgraph/threads/{thread}/commands"), user, start).await;
    assert_eq!(started["type"], "success", "{started}");
    let mut body = stream.bytes_stream();
    let mut text = String::new();
    while !text.contains("||completed\"") {
        // Slower than the run: the reader falls behind what it is sent live.
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        text.push_str(&String::from_utf8_lossy(&body.next().await.expect("the stream goes on").unwrap()));
    }
    let seqs: Vec<u64> =
        text.split("\r\nid: ").skip(1).map(|rest| rest.split("\r\n").next().unwrap().parse().unwrap()).collect();
    let out_of_place = seqs.iter().zip(1..).find(|(seq, expected)| **seq != *expected);
    assert_eq!(out_of_place, None, "every event once, in order (of {})", seqs.len());
    assert!(seqs.len() > 5000, "{} events", seqs.len());
}

/// A run of the OpenGPTs API is on its thread's event log too: a client of the event protocol
/// watches it like any other.
#[tokio::test]
async fn an_opengpts_run_is_on_its_threads_event_log() {
    use futures::StreamExt;
    let app = integration_tests::spawn_app().await;
    let user = "opengpts-watcher";
    let (_, thread_id) = app.thread(user, serde_json::json!({"configurable": {"type": "chatbot"}})).await;
    let input = serde_json::json!([{"type": "human", "content": "Hello, my name is Ada"}]);
    let events = app.stream(user, serde_json::json!({"thread_id": thread_id, "input": input})).await;
    assert_eq!(events.last().unwrap().event, "end");
    let watch = serde_json::json!({"channels": ["lifecycle", "messages"], "since": 0});
    let response = app
        .request(reqwest::Method::POST, &format!("/langgraph/threads/{thread_id}/stream/events"), Some(user))
        .json(&watch)
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("||completed") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next()).await;
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the run's events").unwrap().unwrap()));
    }
    assert!(text.contains(r#""data":{"event":"running","graph_name":"chatbot"}"#), "{text}");
    assert!(text.contains("Hello, Ada!"), "the answer's text: {text}");
}
