//! How many DynamoDB requests each endpoint makes, counted by an SDK interceptor on a real
//! emulator. Prints the table docs/performance.md shows (`cargo test --test dynamodb_requests -- --nocapture`)
//! and holds the counts that matter for cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::{spawn_app_with, test_config};
use opengpts::model::UserId;
use opengpts::store::{DynamoStore, RunStore, Store};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn requests_per_endpoint() {
    let settings = integration_tests::dynamodb_settings(None);
    let store = DynamoStore::connect(settings.clone()).await.unwrap();
    // A second client of the same table, whose requests are not counted, to watch runs finish.
    let observer = DynamoStore::connect(settings).await.unwrap();
    let counter = store.requests();
    let app_store: Arc<dyn Store> = Arc::new(store);
    let app = spawn_app_with(test_config(|_| None), app_store.clone()).await;
    let user = "counted";
    let mut rows: Vec<(String, u64)> = Vec::new();
    let mut measure = |label: &str, before: u64| rows.push((label.to_string(), counter.get() - before));

    let before = counter.get();
    let (_, assistant) =
        app.post("/assistants", user, json!({"name": "a", "config": {"configurable": {"type": "chatbot"}}})).await;
    measure("POST /assistants", before);
    let assistant_id = assistant["assistant_id"].as_str().unwrap().to_string();
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/assistants".into(), None),
        (Method::GET, format!("/assistants/{assistant_id}"), None),
        (Method::GET, "/assistants/public".into(), None),
        (Method::PUT, format!("/assistants/{assistant_id}"), Some(json!({"name": "b", "config": {}}))),
    ];
    for (method, path, body) in calls {
        let before = counter.get();
        let (status, _) = app.call(method.clone(), &path, user, body).await;
        assert_eq!(status, 200, "{method} {path}");
        measure(&format!("{method} {}", path.replace(&assistant_id, "{id}")), before);
    }
    let before = counter.get();
    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    measure("POST /threads", before);
    let thread_id = thread["thread_id"].as_str().unwrap().to_string();
    let message = json!({"messages": [{"type": "human", "content": "hi"}]});
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/threads".into(), None),
        (Method::GET, format!("/threads/{thread_id}"), None),
        (Method::POST, format!("/threads/{thread_id}/messages"), Some(message)),
        (Method::GET, format!("/threads/{thread_id}/messages"), None),
        (Method::GET, format!("/threads/{thread_id}/state"), None),
        (
            Method::POST,
            format!("/threads/{thread_id}/state"),
            Some(json!({"values": [{"type": "human", "content": "again"}]})),
        ),
    ];
    for (method, path, body) in calls {
        let before = counter.get();
        let (status, _) = app.call(method.clone(), &path, user, body).await;
        assert_eq!(status, 200, "{method} {path}");
        measure(&format!("{method} {}", path.replace(&thread_id, "{id}")), before);
    }
    let before = counter.get();
    let (_, run) =
        app.post("/runs", user, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "x"}]})).await;
    let run_id = run["run_id"].as_str().unwrap().to_string();
    // A finished run has freed its thread before its record says so: nothing more will come.
    let run_id_parsed = run_id.parse().unwrap();
    let owner = UserId::new(user).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !observer.get_run(&owner, run_id_parsed).await.unwrap().status.is_finished() {
        assert!(Instant::now() < deadline, "the background run did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    measure("POST /runs (whole run: answer and background work)", before);
    let before = counter.get();
    app.get(&format!("/runs/{run_id}"), user).await;
    measure("GET /runs/{run_id}", before);
    let before = counter.get();
    let events = app.stream(user, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "y"}]})).await;
    // `end` comes once the run is recorded and its thread freed.
    assert_eq!(events.last().unwrap().event, "end");
    measure("POST /runs/stream (whole run)", before);
    // An agent's run: the model asks for a tool, the tool answers, the model answers; each
    // step is stored as it completes.
    let services = integration_tests::mock_services::start().await;
    let agent_app = spawn_app_with(
        test_config(|name| (name == "WIKIPEDIA_API_URL").then(|| format!("{}/w/api.php", services.base_url))),
        app_store.clone(),
    )
    .await;
    let tools = json!([integration_tests::mock_services::ui_tool("wikipedia", json!({}))]);
    let config =
        json!({"configurable": {"type": "agent", "type==agent/agent_type": "Offline", "type==agent/tools": tools}});
    let (_, agent_thread) = agent_app.thread(user, config).await;
    let before = counter.get();
    let events = agent_app
        .stream(user, json!({"thread_id": agent_thread, "input": [{"type": "human", "content": "search wikipedia"}]}))
        .await;
    assert_eq!(events.last().unwrap().event, "end");
    measure("POST /runs/stream (agent: model, tool round, model)", before);

    let before = counter.get();
    app.delete(&format!("/threads/{thread_id}"), user).await;
    measure("DELETE /threads/{id} (6 messages, 2 runs)", before);
    let before = counter.get();
    app.delete(&format!("/assistants/{assistant_id}"), user).await;
    measure("DELETE /assistants/{id}", before);

    println!("| endpoint | DynamoDB requests |\n|---|---|");
    for (label, count) in &rows {
        println!("| {label} | {count} |");
    }
    let count = |label: &str| rows.iter().find(|(l, _)| l == label).map(|(_, c)| *c).unwrap();
    assert_eq!(count("GET /threads/{id}/messages"), 1, "one Query");
    assert_eq!(count("GET /threads/{id}/state"), 1, "one Query");
    assert_eq!(count("POST /assistants"), 1);
    assert_eq!(count("GET /assistants"), 1);
    assert_eq!(count("POST /threads/{id}/messages"), 2, "reserve, then one transaction");
    // A run reads the thread with its messages and the assistant, starts in one transaction
    // (lease, record, input) and ends in one (answer, record, lease given back). Its thread's
    // event log costs one Query (where the log ends) and one write per 250 ms of the run.
    assert_eq!(count("POST /runs/stream (whole run)"), 6);
    // In the background it is recorded pending, then running when a worker takes it.
    assert_eq!(count("POST /runs (whole run: answer and background work)"), 7);
    let per_step =
        (count("POST /runs/stream (agent: model, tool round, model)") - count("POST /runs/stream (whole run)")) / 2;
    println!("\nDynamoDB requests per agent step (a tool round, or a model call after one): {per_step}");
    assert_eq!(per_step, 1, "each step is one transaction at the revision the run knows");
}

/// A LangGraph run streamed with `stream_resumable` keeps its events for clients that join it
/// later, writing them in batches: at most one write per 250 ms of streaming, and one more at
/// its end.
#[tokio::test]
async fn a_resumable_stream_writes_at_most_one_batch_per_250_ms() {
    let store = DynamoStore::connect(integration_tests::dynamodb_settings(None)).await.unwrap();
    let counter = store.requests();
    let config = test_config(|name| (name == "OFFLINE_TOKEN_DELAY_MS").then(|| "20".into()));
    let app = spawn_app_with(config, Arc::new(store)).await;
    let user = "resumable";
    let (_, thread) = app.post("/langgraph/threads", user, json!({})).await;
    let path = format!("/langgraph/threads/{}/runs/stream", thread["thread_id"].as_str().unwrap());
    let mut measured = Vec::new();
    for resumable in [false, true] {
        let body = json!({"assistant_id": "chatbot", "stream_resumable": resumable,
            "stream_mode": ["values", "messages-tuple"],
            "input": {"messages": [{"role": "user", "content": "Tell me about the weather in Paris today"}]}});
        let before = counter.get();
        let started = Instant::now();
        let response = app.request(Method::POST, &path, Some(user)).json(&body).send().await.unwrap();
        let text = response.text().await.unwrap();
        measured.push((counter.get() - before, started.elapsed(), text.matches("\r\nid: ").count()));
    }
    let [(plain, _, plain_ids), (kept, took, ids)] = [measured[0], measured[1]];
    assert_eq!(plain_ids, 0);
    assert!(ids > 20, "every event has an id: {ids}");
    let writes = kept - plain;
    let allowed = (took.as_millis() / 250) as u64 + 1;
    println!("resumable stream: {ids} events in {took:?}, {writes} extra DynamoDB writes (at most {allowed})");
    assert!(writes >= 1 && writes <= allowed, "{writes} writes in {took:?}");
}

/// What a conversation's end costs: a thread of 10 exchanges swept once its `ttl` ran out, in
/// DynamoDB requests (docs/storage.md prices them). A sweep reads the expired threads (one Query
/// of the sparse index), takes the thread (one conditional update), reads its partition and each
/// run's, and deletes in batches of 25.
#[tokio::test]
async fn sweeping_an_expired_conversation() {
    use opengpts::model::{ThreadTtl, Timestamp, TtlStrategy};
    use opengpts::schedules::{retention, InProcessSchedules};
    let settings = integration_tests::dynamodb_settings(None);
    let store = DynamoStore::connect(settings).await.unwrap();
    let counter = store.requests();
    let app_store: Arc<dyn Store> = Arc::new(store);
    let app = spawn_app_with(test_config(|_| None), app_store.clone()).await;
    let user = "sweeper";
    let (_, thread_id) = app.thread(user, json!({"configurable": {"type": "chatbot"}})).await;
    for exchange in 0..10 {
        let input = json!([{"type": "human", "content": format!("question {exchange}")}]);
        let events = app.stream(user, json!({"thread_id": thread_id, "input": input})).await;
        assert_eq!(events.last().unwrap().event, "end");
    }
    let owner = UserId::new(user).unwrap();
    let thread_id = uuid::Uuid::parse_str(&thread_id).unwrap();
    let mut thread = app_store.get_thread(&owner, thread_id).await.unwrap();
    let past = Timestamp::from_datetime(Timestamp::now().datetime() - chrono::Duration::seconds(1));
    thread.ttl = Some(ThreadTtl { strategy: TtlStrategy::Delete, minutes: 1.0, expires_at: past });
    app_store.put_thread(&thread).await.unwrap();
    let runs = app_store.list_runs(&owner, thread_id).await.unwrap().len();

    let before = counter.get();
    let config = opengpts::config::Config::defaults();
    let swept = retention::sweep(app_store.as_ref(), &InProcessSchedules, &config.retention).await.unwrap();
    let requests = counter.get() - before;
    assert_eq!(swept.deleted, 1);
    assert!(app_store.get_thread(&owner, thread_id).await.is_err());
    println!("sweeping a thread of 10 exchanges ({runs} runs, 20 messages): {requests} DynamoDB requests");
    // The index Query, the take, the partition's Query and one per run, the batches (20
    // messages, 10 run pointers, 10 run records, the event log: under three batches of 25), the
    // file index Query, the thread item, and the user's crons listed.
    assert!(requests <= 4 + runs as u64 + 4 + 2, "{requests} requests");
}
