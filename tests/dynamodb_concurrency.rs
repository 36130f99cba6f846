//! The DynamoDB store under simultaneous requests, through the HTTP API: runs racing for the same
//! threads and appends racing on the same threads. The emulator answers one request at a time,
//! so each request is atomic as on DynamoDB: a lost, duplicated, overwritten or interleaved
//! message here is a bug in our condition expressions or transactions, not an emulator race.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::future::join_all;
use integration_tests::{parse_sse, spawn_app_with, test_config, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const THREADS: usize = 20;
const RUNS_PER_THREAD: usize = 3;
const APPENDS_PER_THREAD: usize = 8;

async fn app() -> TestApp {
    // A small pause between tokens keeps the runs of one thread overlapping.
    // One user stands for many clients here: the per-user stream limit is not under test.
    let config = test_config(|name| match name {
        "OFFLINE_TOKEN_DELAY_MS" => Some("2".into()),
        "MAX_STREAMS_PER_USER" => Some("1000".into()),
        _ => None,
    });
    spawn_app_with(config, Arc::new(integration_tests::dynamodb_store().await)).await
}

async fn threads(app: &TestApp, user: &str) -> Vec<String> {
    let assistant = app.assistant(user, json!({"configurable": {"type": "chatbot"}}), false).await;
    let created = join_all(
        (0..THREADS).map(|i| app.post("/threads", user, json!({"name": format!("t{i}"), "assistant_id": assistant}))),
    )
    .await;
    created
        .into_iter()
        .map(|(status, thread)| {
            assert_eq!(status, StatusCode::OK, "{thread}");
            thread["thread_id"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn contents(app: &TestApp, user: &str, thread_id: &str) -> Vec<(String, String)> {
    let (status, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    let values = state["values"].as_array().cloned().unwrap_or_default();
    values
        .iter()
        .map(|m| (m["type"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
        .collect()
}

/// Starts a stream and reads it to the end: `Some(input)` if the run went through, `None` if the
/// thread was busy (under `reject`).
async fn race(app: &TestApp, user: &str, thread_id: &str, input: String, strategy: &str) -> Option<String> {
    let body =
        json!({"thread_id": thread_id, "input": [{"type": "human", "content": input}], "multitask_strategy": strategy});
    let response = app.request(Method::POST, "/runs/stream", Some(user)).json(&body).send().await.unwrap();
    match response.status() {
        StatusCode::CONFLICT => None,
        StatusCode::OK => {
            let events = parse_sse(&response.text().await.unwrap());
            assert_eq!(events.last().unwrap().event, "end");
            assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
            Some(input)
        }
        other => panic!("{other}: {}", response.text().await.unwrap()),
    }
}

#[tokio::test]
async fn simultaneous_runs_refused_when_busy_never_interleave_or_lose_a_message() {
    let busy_refusals = simultaneous_runs("reject").await;
    // The race is real: runs met a busy thread.
    assert!(busy_refusals > 0, "no run was ever refused: the runs did not overlap");
}

#[tokio::test]
async fn simultaneous_runs_queued_when_busy_all_run_one_after_another() {
    assert_eq!(simultaneous_runs("enqueue").await, 0, "a queued run was refused");
}

/// Races `RUNS_PER_THREAD` streams on each thread under `strategy`; checks every thread and
/// returns how many runs were refused.
async fn simultaneous_runs(strategy: &str) -> usize {
    let app = app().await;
    let user = "racer";
    let threads = threads(&app, user).await;
    let races = threads
        .iter()
        .flat_map(|thread_id| (0..RUNS_PER_THREAD).map(move |k| (thread_id.clone(), format!("note {thread_id} {k}"))));
    let results = join_all(races.map(|(thread_id, input)| {
        let app = &app;
        async move { (thread_id.clone(), race(app, user, &thread_id, input, strategy).await) }
    }))
    .await;
    let mut started: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (thread_id, input) in results {
        started.entry(thread_id).or_default().extend(input);
    }

    let mut busy_refusals = 0;
    for thread_id in &threads {
        let ran = &started[thread_id];
        assert!(!ran.is_empty(), "no run went through on {thread_id}");
        busy_refusals += RUNS_PER_THREAD - ran.len();
        let messages = contents(&app, user, thread_id).await;
        // One (input, answer) pair per run that went through, each answer right after its own
        // input: a second run slipping past the lease would interleave them.
        assert_eq!(messages.len(), 2 * ran.len(), "{thread_id}: {messages:?}");
        for pair in messages.chunks(2) {
            let (human, ai) = (&pair[0], &pair[1]);
            assert_eq!(human.0, "human", "{messages:?}");
            assert_eq!(ai.0, "ai", "{messages:?}");
            assert!(ai.1.contains(&human.1), "an answer follows another run's input: {messages:?}");
        }
        let stored: HashSet<&String> = messages.iter().filter(|m| m.0 == "human").map(|m| &m.1).collect();
        let expected: HashSet<&String> = ran.iter().collect();
        assert_eq!(stored, expected, "{thread_id}: refused inputs are not stored, accepted ones are");
    }
    busy_refusals
}

#[tokio::test]
async fn simultaneous_appends_keep_every_message_once_and_each_request_together() {
    let app = app().await;
    let user = "appender";
    let threads = threads(&app, user).await;
    let appends = threads.iter().flat_map(|thread_id| (0..APPENDS_PER_THREAD).map(move |k| (thread_id.clone(), k)));
    let answers = join_all(appends.map(|(thread_id, k)| {
        let app = &app;
        // Requests of one to three messages, so a transaction's all-or-nothing shows.
        let messages: Vec<Value> = (0..1 + k % 3)
            .map(|part| json!({"type": "human", "content": format!("{thread_id} request {k} part {part}")}))
            .collect();
        async move { app.post(&format!("/threads/{thread_id}/messages"), user, json!({"messages": messages})).await }
    }))
    .await;
    for (status, body) in answers {
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    for thread_id in &threads {
        let messages: Vec<String> = contents(&app, user, thread_id).await.into_iter().map(|m| m.1).collect();
        let expected: usize = (0..APPENDS_PER_THREAD).map(|k| 1 + k % 3).sum();
        assert_eq!(messages.len(), expected, "lost or overwritten: {messages:?}");
        assert_eq!(messages.iter().collect::<HashSet<_>>().len(), expected, "duplicated: {messages:?}");
        // Each request's messages stand together, in their order.
        for k in 0..APPENDS_PER_THREAD {
            let first = messages.iter().position(|m| m == &format!("{thread_id} request {k} part 0")).unwrap();
            for part in 1..1 + k % 3 {
                assert_eq!(messages[first + part], format!("{thread_id} request {k} part {part}"), "{messages:?}");
            }
        }
    }
}
