//! `/runs/stream` over real HTTP: both generations' event formats, errors, disconnects, locking.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::mock_provider::{openai_events, parts, MockProvider, Part, Reply};
use integration_tests::{
    parse_sse, refusing_url, spawn_app, spawn_app_with, spawn_state, test_config, test_store, SseEvent, TestApp,
};
use opengpts::api::AppState;
use opengpts::runs::LambdaDispatch;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "alice";
const CHATBOT: fn() -> Value = || json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"}});

const API_KEY: &str = "sk-test-secret";

/// An app whose OpenAI models are served at `base`, and a thread of a chatbot on `model`.
async fn gpt_thread(base: &str, model: &str, extra: &[(&'static str, &'static str)]) -> (TestApp, String) {
    let base = base.to_string();
    let extra = extra.to_vec();
    let config = test_config(move |name| match name {
        "OPENAI_API_KEY" => Some(API_KEY.into()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        other => extra.iter().find(|(key, _)| *key == other).map(|(_, value)| value.to_string()),
    });
    let app = spawn_app_with(config, test_store().await).await;
    let (_, thread_id) =
        app.thread(USER, json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": model}})).await;
    (app, thread_id)
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|event| event.event.as_str()).collect()
}

#[tokio::test]
async fn latest_stream_sends_changed_messages_by_id() {
    let app = spawn_app().await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let input = json!([{"type": "human", "content": "hello"}]);
    let events = app.stream(USER, json!({"thread_id": thread_id, "input": input})).await;

    assert_eq!(events[0].event, "metadata");
    let run_id = events[0].json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(events.last().unwrap(), &SseEvent { event: "end".into(), data: None });
    let data: Vec<Value> = events.iter().filter(|e| e.event == "data").map(SseEvent::json).collect();
    // [human], [ai ""], one per token, then the final message twice.
    let answer = "Hello! How can I assist you today?";
    let tokens = 9;
    assert_eq!(data.len(), 2 + tokens + 2, "{data:#?}");
    assert_eq!(data[0][0]["type"], "human");
    assert_eq!(data[0][0]["content"], "hello");
    assert!(data[0][0]["id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    let ai_id = format!("run-{run_id}");
    for event in &data[1..] {
        assert_eq!(event.as_array().unwrap().len(), 1);
        assert_eq!(event[0]["id"], ai_id.as_str());
        assert_eq!(event[0]["type"], "ai");
    }
    assert_eq!(data[1][0]["content"], "");
    assert_eq!(data[2][0]["content"], "Hello");
    let last = &data[data.len() - 1][0];
    assert_eq!(last, &data[data.len() - 2][0]);
    assert_eq!(last["content"], answer);
    assert_eq!(last["response_metadata"]["finish_reason"], "stop");

    // The thread holds both messages, the AI one under the streamed id.
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"].as_array().unwrap().len(), 2);
    assert_eq!(state["values"][1], *last);
    assert_eq!(state["next"], json!([]));

    // A second run opens with the whole previous state plus its input.
    let input = json!([{"type": "human", "content": "my name is Ann"}]);
    let events = app.stream(USER, json!({"thread_id": thread_id, "input": input})).await;
    let opening = events[1].json();
    assert_eq!(opening.as_array().unwrap().len(), 3);
    assert_eq!(opening[2]["content"], "my name is Ann");
}

#[tokio::test]
async fn a_run_with_no_input_on_an_answered_thread_has_nothing_to_do() {
    let app = spawn_app().await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let input = json!([{"type": "human", "content": "hello"}]);
    app.stream(USER, json!({"thread_id": thread_id, "input": input})).await;
    let (_, before) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(kinds(&before), ["human", "ai"]);

    let events = app.stream(USER, json!({"thread_id": thread_id, "input": null})).await;
    assert_eq!(names(&events).first(), Some(&"metadata"));
    assert_eq!(names(&events).last(), Some(&"end"));
    assert!(!names(&events).contains(&"error"), "{events:?}");
    let run_id = events[0].json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(app.wait_for_run(USER, &run_id).await["status"], "success");
    let (_, after) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(after["values"], before["values"], "the question was answered twice");
}

#[tokio::test]
async fn seed_stream_sends_the_whole_thread_every_time() {
    let app = spawn_app().await;
    let (assistant_id, thread_id) = app.thread(USER, json!({"configurable": {"agent_type": "Offline"}})).await;
    let body = json!({"assistant_id": assistant_id, "thread_id": thread_id,
        "input": {"messages": [{"type": "human", "content": "hi"}]}});
    let events = app.stream(USER, body).await;
    assert_eq!(names(&events)[0], "metadata");
    assert_eq!(*names(&events).last().unwrap(), "end");
    let data: Vec<Value> = events.iter().filter(|e| e.event == "data").map(SseEvent::json).collect();
    for event in &data {
        let messages = event["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], json!({"content": "hi", "additional_kwargs": {}, "type": "human", "example": false}));
    }
    let last = &data[data.len() - 1]["messages"][1];
    assert_eq!(last["additional_kwargs"]["agent"]["type"], "AgentFinish");
    assert_eq!(last["additional_kwargs"]["agent"]["return_values"]["output"], last["content"]);
    assert_eq!(last.get("id"), None);
}

#[tokio::test]
async fn upstream_failure_sends_an_error_event_and_keeps_the_thread_consistent() {
    let mock = MockProvider::start(|_| {
        Reply::json_error(
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
        )
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 3.5 Turbo", &[]).await;
    let events = app.stream(USER, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]})).await;
    assert_eq!(names(&events), ["metadata", "data", "error", "end"]);
    let error = events[2].json();
    assert_eq!(error["status_code"], 429);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("openai") && message.contains("429") && message.contains("Rate limit reached"),
        "{message}"
    );
    assert!(!message.contains(API_KEY));

    // The input stays, no partial answer, the run says why, and the thread is free again.
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"].as_array().unwrap().len(), 1);
    assert_eq!(state["next"], json!(["chatbot"]));
    let run_id = events[0].json()["run_id"].as_str().unwrap().to_string();
    let run = app.wait_for_run(USER, &run_id).await;
    assert_eq!(run["status"], "error");
    assert!(run["error"].as_str().unwrap().contains("429"));
    let again = app.stream(USER, json!({"thread_id": thread_id, "input": null})).await;
    assert_eq!(names(&again), ["metadata", "data", "error", "end"]);
    // Each run asked three times (the provider was busy before any token) before it gave up.
    assert_eq!(mock.requests().len(), 6);
}

#[tokio::test]
async fn a_busy_provider_is_asked_again_after_the_wait_it_names_before_the_answer_starts() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let mock = MockProvider::start(move |_| match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 => {
            let mut reply = Reply::json_error(429, json!({"error": {"message": "Rate limit reached"}}));
            reply.headers.push(("retry-after", "1".into()));
            reply
        }
        1 => Reply::json_error(503, json!({"error": {"message": "overloaded"}})),
        _ => Reply::event_stream(parts(openai_events(&["Hello", " again"]))),
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 3.5 Turbo", &[]).await;
    let began = std::time::Instant::now();
    let events = app.stream(USER, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]})).await;
    assert!(began.elapsed() >= Duration::from_secs(1), "the provider's retry-after was waited for");
    assert_eq!(names(&events).last(), Some(&"end"));
    assert!(!names(&events).contains(&"error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let answer = &state["values"][1];
    assert_eq!(answer["content"], "Hello again");
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_still_gets_its_answer_stored() {
    let tokens: Vec<String> = (0..40).map(|i| format!("t{i} ")).collect();
    let events: Vec<String> = openai_events(&tokens.iter().map(String::as_str).collect::<Vec<_>>());
    let mock = MockProvider::start(move |_| {
        Reply::event_stream(events.iter().map(|e| Part::after(Duration::from_millis(10), e.clone())).collect())
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4o", &[]).await;
    let mut reader = app.open_stream(USER, &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "count"}], "on_disconnect": "continue"})).await;
    reader.read_until(|text| text.matches("\r\n\r\n").count() >= 3).await;
    let run_id = reader.run_id();
    drop(reader);

    let run = app.wait_for_run(USER, &run_id).await;
    assert_eq!(run["status"], "success");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"][1]["content"], tokens.concat());
    assert_eq!(state["values"][1]["response_metadata"]["model_name"], "gpt-4o");
    assert_eq!(state["values"][1]["usage_metadata"]["output_tokens"], 40);
}

/// A slow upstream, so runs overlap: 20 tokens 30 ms apart.
async fn slow_upstream() -> MockProvider {
    let tokens: Vec<String> = (0..20).map(|i| format!("t{i} ")).collect();
    let events = openai_events(&tokens.iter().map(String::as_str).collect::<Vec<_>>());
    MockProvider::start(move |_| {
        Reply::event_stream(events.iter().map(|e| Part::after(Duration::from_millis(30), e.clone())).collect())
    })
    .await
}

fn kinds(state: &Value) -> Vec<&str> {
    state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect()
}

/// Two tabs on one thread: the second stream waits for the first (with pings), then runs. Both
/// answers are stored, each after its own input.
#[tokio::test]
async fn a_second_run_on_a_busy_thread_waits_its_turn() {
    let mock = slow_upstream().await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4o", &[("SSE_PING_MS", "100")]).await;
    let mut first = app
        .open_stream(USER, &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "first tab"}]}))
        .await;
    first.read_until(|text| text.contains("event: data")).await;
    let second = app
        .request(Method::POST, "/runs/stream", Some(USER))
        .json(&json!({"thread_id": thread_id, "input": [{"type": "human", "content": "second tab"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let second = second.text().await.unwrap();
    first.read_to_end().await;
    assert!(second.contains(": ping - "), "the waiting stream is kept alive: {second}");
    let events = parse_sse(&second);
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let contents: Vec<&str> =
        state["values"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(kinds(&state), ["human", "ai", "human", "ai"]);
    assert_eq!((contents[0], contents[2]), ("first tab", "second tab"));
    // The second run read the thread before the first answered; once it held the thread it
    // read it again, so its model saw the first answer.
    let requests = mock.requests();
    let roles: Vec<&str> = requests.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .filter(|role| *role != "system")
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
}

/// A message added while a run answers (another tab's `POST /threads/{id}/messages`) is kept,
/// and the answer goes after it: neither is lost, whichever store moved first.
#[tokio::test]
async fn a_message_added_while_a_run_answers_is_kept_before_the_answer() {
    let mock = slow_upstream().await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4o", &[]).await;
    let mut stream = app
        .open_stream(USER, &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "question"}]}))
        .await;
    stream.read_until(|text| text.contains("event: data")).await;
    let (status, _) = app
        .post(
            &format!("/threads/{thread_id}/messages"),
            USER,
            json!({"messages": [{"type": "human", "content": "aside"}]}),
        )
        .await;
    assert_eq!(status, 200);
    stream.read_to_end().await;
    let events = stream.events();
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(kinds(&state), ["human", "human", "ai"]);
    assert_eq!(state["values"][1]["content"], "aside");
    assert!(state["values"][2]["content"].as_str().unwrap().starts_with("t0 "), "{state}");
    assert_eq!(state["next"], json!([]), "the run let go of the thread");
}

/// `interrupt` cancels the running run (its partial answer is dropped) and runs this one.
#[tokio::test]
async fn interrupt_cancels_the_running_run_and_takes_the_thread() {
    let mock = slow_upstream().await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4o", &[]).await;
    let (_, running) = app
        .post("/runs", USER, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "long one"}]}))
        .await;
    let body = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "never mind"}], "multitask_strategy": "interrupt"});
    let (status, run) = app.post("/runs", USER, body).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(app.wait_for_run(USER, running["run_id"].as_str().unwrap()).await["status"], "cancelled");
    assert_eq!(app.wait_for_run(USER, run["run_id"].as_str().unwrap()).await["status"], "success");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(kinds(&state), ["human", "human", "ai"], "the interrupted run left its input and no answer");
}

/// The latest UI's Cancel closes the stream: by default that cancels a list-input run.
#[tokio::test]
async fn closing_a_latest_stream_cancels_its_run() {
    let mock = slow_upstream().await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4o", &[]).await;
    let mut reader = app
        .open_stream(USER, &json!({"thread_id": thread_id, "input": [{"type": "human", "content": "stop me"}]}))
        .await;
    reader.read_until(|text| text.matches("event: data").count() >= 3).await;
    let run_id = reader.run_id();
    drop(reader);
    assert_eq!(app.wait_for_run(USER, &run_id).await["status"], "cancelled");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(kinds(&state), ["human"], "the input stays, the partial answer is dropped");
    let events = app.stream(USER, json!({"thread_id": thread_id, "input": null})).await;
    assert_eq!(events.last().unwrap().event, "end", "the thread is free again");
}

#[tokio::test]
async fn two_runs_on_one_thread_cannot_interleave() {
    let mock = MockProvider::start(|_| {
        let events = openai_events(&["slow ", "answer"]);
        Reply::event_stream(events.into_iter().map(|e| Part::after(Duration::from_millis(100), e)).collect())
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4", &[]).await;
    let body =
        json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}], "multitask_strategy": "reject"});
    let attempts = futures::future::join_all((0..4).map(|_| app.post("/runs", USER, body.clone()))).await;
    let started: Vec<&Value> = attempts.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, run)| run).collect();
    let refused: Vec<&Value> = attempts.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).map(|(_, e)| e).collect();
    assert_eq!((started.len(), refused.len()), (1, 3), "{attempts:?}");
    let run_id = started[0]["run_id"].as_str().unwrap();
    assert!(refused.iter().all(|error| error["detail"].as_str().unwrap().contains(run_id)));

    assert_eq!(app.wait_for_run(USER, run_id).await["status"], "success");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let kinds: Vec<&str> = state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["human", "ai"]);
    // Once it is done the thread takes runs again.
    assert_eq!(app.post("/runs", USER, body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn cancel_stops_a_run_and_frees_the_thread() {
    let mock = MockProvider::start(|_| {
        let events = openai_events(&["never ", "finishes"]);
        Reply::event_stream(events.into_iter().map(|e| Part::after(Duration::from_secs(5), e)).collect())
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4", &[]).await;
    let body = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]});
    let (_, run) = app.post("/runs", USER, body.clone()).await;
    let run_id = run["run_id"].as_str().unwrap();
    let (status, cancelled) = app.post(&format!("/runs/{run_id}/cancel"), USER, json!({})).await;
    assert_eq!((status, &cancelled["status"]), (StatusCode::OK, &json!("cancelled")));
    assert_eq!(app.wait_for_run(USER, run_id).await["status"], "cancelled");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"].as_array().unwrap().len(), 1, "the input stays, no partial answer");
    // Another user cannot see or cancel it.
    assert_eq!(app.post(&format!("/runs/{run_id}/cancel"), "mallory", json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/runs", USER, body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn background_runs_report_success_and_error() {
    let app = spawn_app().await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let (status, run) =
        app.post("/runs", USER, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["status"], "pending");
    assert_eq!(run["thread_id"], thread_id.as_str());
    assert_eq!(app.wait_for_run(USER, run["run_id"].as_str().unwrap()).await["status"], "success");

    // A provider that refuses connections.
    let (_refusing, dead) = refusing_url();
    let config = test_config(move |name| match name {
        "ANTHROPIC_API_KEY" => Some("k".into()),
        "ANTHROPIC_BASE_URL" => Some(dead.clone()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    let (_, thread_id) = app.thread(USER, json!({"configurable": {"agent_type": "Claude 2"}})).await;
    let (_, run) = app
        .post(
            "/runs",
            USER,
            json!({"thread_id": thread_id, "input": {"messages": [{"type": "human", "content": "hi"}]}}),
        )
        .await;
    let run = app.wait_for_run(USER, run["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "error");
    assert!(run["error"].as_str().unwrap().contains("anthropic could not be reached"), "{run}");
}

/// The `run-worker` function cannot be invoked: the client gets a 502 that says so, the run is
/// recorded as not started, and the thread is free for the next run.
#[tokio::test]
async fn a_worker_that_cannot_be_invoked_is_a_clear_502_and_frees_the_thread() {
    let (_refusing, refused) = refusing_url();
    let dispatch = LambdaDispatch::new("run-worker".into(), Some(refused)).await;
    let state = AppState::new(test_config(|_| None), test_store().await).unwrap().with_dispatch(Arc::new(dispatch));
    let app = spawn_state(state).await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let body =
        json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}], "multitask_strategy": "reject"});
    let (status, error) = app.post("/runs", USER, body.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{error}");
    assert!(error["detail"].as_str().unwrap().contains("could not be started in the background"), "{error}");
    let (status, again) = app.post("/runs", USER, body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "the thread was free again, not busy: {again}");
}

/// At init the functions that hand runs to `run-worker` open their connection to Lambda with a
/// read of its configuration (Lambda's `GetFunctionConfiguration`: nothing runs); a background
/// run is then an `Event` invoke carrying the job.
#[tokio::test]
async fn the_worker_is_reached_at_init_with_a_read_and_runs_with_an_event() {
    let lambda = MockProvider::start(|request| match request.path_and_query.ends_with("/configuration") {
        true => Reply::json(json!({"FunctionName": "run-worker", "State": "Active"})),
        false => Reply { status: 202, headers: vec![], parts: vec![] },
    })
    .await;
    let dispatch = LambdaDispatch::new("run-worker".into(), Some(lambda.base_url.clone())).await;
    let state = AppState::new(test_config(|_| None), test_store().await).unwrap().with_dispatch(Arc::new(dispatch));
    state.warm_up().await;
    let requests = lambda.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path_and_query, "/2015-03-31/functions/run-worker/configuration");

    let app = spawn_state(state).await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let (status, run) =
        app.post("/runs", USER, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let requests = lambda.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].headers["x-amz-invocation-type"], "Event");
    assert_eq!(requests[1].body["run"]["run_id"], run["run_id"]);
}

/// Lambda refuses the worker's invoke (throttled, or failing): the client retries it, and a
/// run whose invoke never passes ends as failed with the reason, its thread free; it never
/// stays pending.
#[tokio::test]
async fn a_throttled_or_failing_worker_invoke_is_retried_then_ends_the_run_clearly() {
    let invokes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = invokes.clone();
    let lambda = MockProvider::start(move |request| {
        if request.path_and_query.ends_with("/configuration") {
            return Reply::json(json!({"FunctionName": "run-worker", "State": "Active"}));
        }
        let refusal = |status: u16, kind: &str, body: Value| {
            let mut reply = Reply::json_error(status, body);
            reply.headers.push(("x-amzn-errortype", kind.into()));
            reply
        };
        // The first run's invoke is throttled twice, then taken; every later one fails.
        match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 1 => refusal(
                429,
                "TooManyRequestsException",
                json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}),
            ),
            2 => Reply { status: 202, headers: vec![], parts: vec![] },
            _ => refusal(500, "ServiceException", json!({"Type": "Service", "message": "Service error"})),
        }
    })
    .await;
    let dispatch = LambdaDispatch::new("run-worker".into(), Some(lambda.base_url.clone())).await;
    let state = AppState::new(test_config(|_| None), test_store().await).unwrap().with_dispatch(Arc::new(dispatch));
    let app = spawn_state(state).await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let input = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]});
    let (status, run) = app.post("/runs", USER, input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(invokes.load(std::sync::atomic::Ordering::SeqCst), 3, "throttled twice, then taken");

    // The fake worker never runs it: its lease runs out. A failing invoke is told at once.
    let (_, other) = app.thread(USER, CHATBOT()).await;
    let (status, error) = app.post("/runs", USER, json!({"thread_id": other, "input": input["input"]})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{error}");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("could not be started in the background"), "{detail}");
    let (_, runs) = app.get(&format!("/langgraph/threads/{other}/runs"), USER).await;
    assert_eq!(runs[0]["status"], "error", "{runs}");
    let (_, thread) = app.get(&format!("/langgraph/threads/{other}"), USER).await;
    assert_ne!(thread["status"], "busy", "the thread is free: {thread}");
}

/// `MAX_RUNS_PER_USER`: one more run than allowed is a 429 with `retry-after`, other users are
/// not affected, and a finished run makes room.
#[tokio::test]
async fn a_user_over_the_run_limit_gets_429_with_retry_after() {
    let mock = slow_upstream().await;
    let (app, first_thread) = gpt_thread(&mock.base_url, "GPT 4o", &[("MAX_RUNS_PER_USER", "1")]).await;
    let (_, second_thread) =
        app.thread(USER, json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}})).await;
    let input = json!([{"type": "human", "content": "hi"}]);
    let (_, running) = app.post("/runs", USER, json!({"thread_id": first_thread, "input": input})).await;
    let response = app
        .request(Method::POST, "/runs/stream", Some(USER))
        .json(&json!({"thread_id": second_thread, "input": input}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "5");
    let error: Value = response.json().await.unwrap();
    assert!(error["detail"].as_str().unwrap().contains("1 runs going"), "{error}");
    let (_, other_thread) = app.thread("bob", CHATBOT()).await;
    assert_eq!(app.post("/runs", "bob", json!({"thread_id": other_thread, "input": input})).await.0, StatusCode::OK);
    app.wait_for_run(USER, running["run_id"].as_str().unwrap()).await;
    assert_eq!(app.post("/runs", USER, json!({"thread_id": second_thread, "input": input})).await.0, StatusCode::OK);
}

/// `MAX_OUTPUT_TOKENS` caps an answer: the offline model stops there and says why.
#[tokio::test]
async fn answers_stop_at_the_output_token_cap() {
    let config = test_config(|name| (name == "MAX_OUTPUT_TOKENS").then(|| "3".into()));
    let app = spawn_app_with(config, test_store().await).await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let body =
        json!({"thread_id": thread_id, "input": [{"type": "human", "content": "please explain everything at length"}]});
    app.stream(USER, body).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    let answer = &state["values"][1];
    assert_eq!(answer["usage_metadata"]["output_tokens"], 3, "{answer}");
    assert_eq!(answer["response_metadata"]["finish_reason"], "length");
    assert_eq!(answer["content"], "I am the");
}

#[tokio::test]
async fn slow_models_get_pings_between_events() {
    let mock = MockProvider::start(|_| {
        let events = openai_events(&["late"]);
        let mut parts = parts(events);
        parts[1].delay = Duration::from_millis(400);
        Reply::event_stream(parts)
    })
    .await;
    let (app, thread_id) = gpt_thread(&mock.base_url, "GPT 4", &[("SSE_PING_MS", "100")]).await;
    let response = app
        .request(Method::POST, "/runs/stream", Some(USER))
        .json(&json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    let body = response.text().await.unwrap();
    let pings: Vec<&str> = body.split("\r\n\r\n").filter(|frame| frame.starts_with(": ping - ")).collect();
    assert!(pings.len() >= 2, "{body}");
    assert_eq!(parse_sse(&body).last().unwrap().event, "end");
}

#[tokio::test]
async fn stream_requests_are_validated_before_anything_starts() {
    let app = spawn_app().await;
    let (_, thread_id) = app.thread(USER, CHATBOT()).await;
    let (status, error) = app.post("/runs/stream", USER, json!({"input": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "thread_id"]));
    let bad_type = json!({"thread_id": thread_id, "input": [{"type": "bogus", "content": "x"}]});
    let (status, error) = app.post("/runs/stream", USER, bad_type).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "input", 0, "type"]));
    let unknown = json!({"thread_id": uuid::Uuid::new_v4(), "input": []});
    assert_eq!(
        app.post("/runs/stream", USER, unknown).await,
        (StatusCode::NOT_FOUND, json!({"detail": "Thread not found"}))
    );
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
    assert_eq!(state["values"], Value::Null);
}

#[tokio::test]
async fn schemas_describe_the_run_endpoints() {
    let app = spawn_app().await;
    for path in ["/runs/input_schema", "/runs/output_schema", "/runs/config_schema"] {
        let (status, schema) = app.get(path, USER).await;
        assert_eq!(status, StatusCode::OK);
        assert!(schema.is_object() && schema["title"].is_string(), "{path}: {schema}");
    }
    let (_, config) = app.get("/runs/config_schema", USER).await;
    let names = &config["properties"]["configurable"]["properties"]["type==agent/agent_type"]["enum"];
    assert!(names.as_array().unwrap().contains(&json!("GPT 4o")));
}

/// Each way a provider can fail ends the run with an error event naming it, an error status, the
/// input kept, no partial answer, and the thread free for the next run.
#[tokio::test]
async fn every_upstream_failure_ends_the_run_cleanly() {
    let (_refusing, refused) = refusing_url();
    let unauthorized = MockProvider::start(|_| {
        Reply::json_error(
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
        )
    })
    .await;
    let server_error =
        MockProvider::start(|_| Reply::json_error(500, json!({"error": {"message": "The server had an error"}}))).await;
    let stalled = MockProvider::start(|_| {
        let mut events = parts(openai_events(&["half", "never"]));
        events[2].delay = Duration::from_secs(30);
        Reply::event_stream(events)
    })
    .await;
    let cases = [
        (refused, 502, "could not be reached"),
        (unauthorized.base_url.clone(), 502, "HTTP 401: Incorrect API key provided"),
        (server_error.base_url.clone(), 502, "HTTP 500: The server had an error"),
        (stalled.base_url.clone(), 504, "sent nothing for 1 s"),
    ];
    for (base, status_code, expected) in cases {
        let (app, thread_id) = gpt_thread(&base, "GPT 4", &[("LLM_TIMEOUT_SECONDS", "1")]).await;
        let body = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]});
        let events = app.stream(USER, body.clone()).await;
        let error =
            events.iter().find(|e| e.event == "error").unwrap_or_else(|| panic!("{expected}: {events:?}")).json();
        assert_eq!(events.last().unwrap().event, "end");
        assert_eq!(error["status_code"], status_code, "{error}");
        assert!(error["message"].as_str().unwrap().contains(expected), "{error}");
        let run = app.wait_for_run(USER, events[0].json()["run_id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "error");
        assert!(run["error"].as_str().unwrap().contains(expected), "{run}");
        let (_, state) = app.get(&format!("/threads/{thread_id}/state"), USER).await;
        assert_eq!(state["values"].as_array().unwrap().len(), 1, "{expected}: {state}");
        assert_eq!(app.post("/runs", USER, json!({"thread_id": thread_id, "input": null})).await.0, StatusCode::OK);
    }
}

/// A reader in another process that finds a run silent past its lease records it failed; if the
/// run was only slow, it learns so at its next heartbeat and stops there, storing nothing more:
/// no answer lands after a failure its clients were told of, and the model is not paid to go on.
#[tokio::test]
async fn a_run_recorded_failed_elsewhere_stops_at_its_next_heartbeat() {
    let mock = MockProvider::start(|_| {
        let words: Vec<String> = (0..40).map(|i| format!("word{i} ")).collect();
        let events = openai_events(&words.iter().map(String::as_str).collect::<Vec<_>>());
        Reply::event_stream(events.into_iter().map(|e| Part::after(Duration::from_millis(100), e)).collect())
    })
    .await;
    let base = mock.base_url.clone();
    let config = test_config(move |name| match name {
        "OPENAI_API_KEY" => Some(API_KEY.into()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        // A heartbeat every third of a second.
        "RUN_LEASE_SECONDS" => Some("1".into()),
        _ => None,
    });
    let state = AppState::new(config, test_store().await).unwrap();
    let app = spawn_state(state.clone()).await;
    let (_, thread_id) =
        app.thread(USER, json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4"}})).await;
    let body = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi"}]});
    let (status, run) = app.post("/runs", USER, body).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_id: uuid::Uuid = run["run_id"].as_str().unwrap().parse().unwrap();
    let user = opengpts::model::UserId::new(USER).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.store.get_run(&user, run_id).await.unwrap().status.as_str() != "running" {
        assert!(tokio::time::Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut failed = state.store.get_run(&user, run_id).await.unwrap();
    failed.status = opengpts::model::RunStatus::Error;
    failed.error = Some("recorded failed by another process".into());
    assert!(state.store.update_run_if_going(&failed).await.unwrap());
    let recorded = tokio::time::Instant::now();
    let thread_id: uuid::Uuid = thread_id.parse().unwrap();
    while state.store.thread_view(&user, thread_id).await.unwrap().running {
        assert!(recorded.elapsed() < Duration::from_millis(1500), "the run went on past its next heartbeat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Long enough for the whole answer (40 words 100 ms apart) had the run gone on.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let messages = state.store.messages(&user, thread_id).await.unwrap();
    assert_eq!(messages.len(), 1, "nothing stored after the recorded failure: {messages:?}");
    let stored = state.store.get_run(&user, run_id).await.unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.error.as_deref()),
        ("error", Some("recorded failed by another process"))
    );
}
