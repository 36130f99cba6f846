//! Crons and webhooks: the local scheduler under a clock the test moves, the same firing as
//! EventBridge Scheduler delivers it to `run-worker` (its schedules kept in the emulator), and
//! webhooks received by a local server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use integration_tests::{spawn_state, test_config, test_store, TestApp};
use opengpts::api::AppState;
use opengpts::config::Config;
use opengpts::model::Timestamp;
use opengpts::runs::{webhook_signature, WEBHOOK_SIGNATURE_HEADER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const USER: &str = "cron-owner";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    test_config(move |name| vars.get(name).cloned())
}

async fn app(config: Config) -> (AppState, TestApp) {
    let state = AppState::new(config, test_store().await).unwrap();
    (state.clone(), spawn_state(state).await)
}

async fn runs_of(app: &TestApp, thread_id: &str) -> Vec<Value> {
    let (status, runs) = app.get(&format!("/langgraph/threads/{thread_id}/runs?limit=100"), USER).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    runs.as_array().unwrap().clone()
}

/// Every look of the scheduler at `at`, waiting for the runs it starts.
async fn look(state: &AppState, at: Timestamp, fired: &mut HashMap<Uuid, Timestamp>) -> usize {
    let tasks = state.crons().fire_due(at, fired).await.unwrap();
    let started = tasks.len();
    for task in tasks {
        task.await.unwrap();
    }
    started
}

fn later(seconds: u64) -> Timestamp {
    Timestamp::now().plus(Duration::from_secs(seconds))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_every_minute_fires_once_a_minute_until_its_end() {
    let (state, app) = app(config(&[("CRON_MIN_INTERVAL_SECONDS", "60")])).await;
    let (_, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;
    let body = json!({"assistant_id": "chatbot", "schedule": "* * * * *",
                      "input": {"messages": [{"role": "user", "content": "Good morning"}]}});
    let (status, cron) = app.post(&format!("/langgraph/threads/{thread_id}/runs/crons"), USER, body).await;
    assert_eq!(status, StatusCode::OK, "{cron}");
    assert_eq!(cron["thread_id"], json!(thread_id));
    // The clock is the test's from here: the first slot, and an end between the second and third.
    let first = Timestamp::parse(cron["next_run_date"].as_str().unwrap()).unwrap();
    let at = |seconds: u64| first.plus(Duration::from_secs(seconds));
    let end = json!({"end_time": at(90).to_rfc3339()});
    let path = format!("/langgraph/runs/crons/{}", cron["cron_id"].as_str().unwrap());
    let (status, _) = app.call(reqwest::Method::PATCH, &path, USER, Some(end)).await;
    assert_eq!(status, StatusCode::OK);

    let mut fired = HashMap::new();
    assert_eq!(look(&state, Timestamp::now(), &mut fired).await, 0, "nothing is due before the minute");
    assert_eq!(look(&state, at(0), &mut fired).await, 1, "due at the minute");
    assert_eq!(look(&state, at(30), &mut fired).await, 0, "a slot fires once");
    let runs = runs_of(&app, &thread_id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "success", "{runs:?}");
    assert_eq!(runs[0]["metadata"]["cron_id"], cron["cron_id"]);
    assert_eq!(look(&state, at(60), &mut fired).await, 1, "and again the next minute");
    assert_eq!(runs_of(&app, &thread_id).await.len(), 2);
    // Another scheduler (a second process, a restart) finds the slot taken.
    assert_eq!(look(&state, at(61), &mut HashMap::new()).await, 1, "it looks once more");
    assert_eq!(runs_of(&app, &thread_id).await.len(), 2, "but the store lets one run start per slot");
    assert_eq!(look(&state, at(120), &mut fired).await, 0, "past its end_time");
    assert_eq!(look(&state, at(3600), &mut fired).await, 0);

    let (_, thread) = app.get(&format!("/langgraph/threads/{thread_id}"), USER).await;
    let messages = thread["values"]["messages"].as_array().unwrap();
    let contents: Vec<&str> =
        messages.iter().filter(|m| m["type"] == "human").map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["Good morning", "Good morning"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_cron_runs_on_a_new_thread_each_time_and_deletes_it_unless_kept() {
    let (state, app) = app(config(&[("CRON_MIN_INTERVAL_SECONDS", "60")])).await;
    let input = json!({"messages": [{"role": "user", "content": "Report"}]});
    let (status, deleting) = app
        .post(
            "/langgraph/runs/crons",
            USER,
            json!({"assistant_id": "chatbot", "schedule": "* * * * *", "input": input}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleting}");
    assert_eq!(deleting["on_run_completed"], "delete");
    let body =
        json!({"assistant_id": "chatbot", "schedule": "*/2 * * * *", "input": input, "on_run_completed": "keep"});
    let (status, keeping) = app.post("/langgraph/runs/crons", USER, body).await;
    assert_eq!(status, StatusCode::OK, "{keeping}");

    let mut fired = HashMap::new();
    assert_eq!(look(&state, later(130), &mut fired).await, 2);
    let (_, threads) = app.post("/langgraph/threads/search", USER, json!({})).await;
    let threads = threads.as_array().unwrap();
    assert_eq!(threads.len(), 1, "only the kept thread remains: {threads:?}");
    let kept = &threads[0];
    assert_eq!(kept["values"]["messages"].as_array().unwrap().len(), 2, "{kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crons_are_their_owners_and_checked_as_runs_are() {
    let (_, app) = app(config(&[("MAX_CRONS_PER_USER", "2")])).await;
    let (_, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;
    let path = format!("/langgraph/threads/{thread_id}/runs/crons");
    let cases = [
        (json!({"assistant_id": "chatbot"}), "'schedule' is a required property"),
        (json!({"assistant_id": "chatbot", "schedule": "every day"}), "five fields"),
        (json!({"assistant_id": "chatbot", "schedule": "*/2 * * * *"}), "CRON_MIN_INTERVAL_SECONDS"),
        (json!({"assistant_id": "chatbot", "schedule": "0 9 * * *", "timezone": "Moon/Base"}), "not a time zone"),
        (json!({"assistant_id": "nope", "schedule": "0 9 * * *"}), "Invalid assistant"),
        (
            json!({"assistant_id": "chatbot", "schedule": "0 9 * * *", "webhook": "http://169.254.169.254/latest"}),
            "link-local",
        ),
        (json!({"assistant_id": "chatbot", "schedule": "0 9 * * *", "stream_mode": "telepathy"}), "stream_mode"),
    ];
    for (body, expected) in cases {
        let (status, answer) = app.post(&path, USER, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert!(answer.to_string().contains(expected), "{body} -> {answer}");
    }
    let (status, _) = app
        .post(
            &path.replace(&thread_id, &Uuid::new_v4().to_string()),
            USER,
            json!({"assistant_id": "chatbot", "schedule": "0 9 * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let daily = json!({"assistant_id": "chatbot", "schedule": "0 9 * * *", "timezone": "Europe/Paris", "metadata": {"kind": "daily"}});
    let (status, cron) = app.post(&path, USER, daily.clone()).await;
    assert_eq!(status, StatusCode::OK, "{cron}");
    let cron_id = cron["cron_id"].as_str().unwrap().to_string();
    let (status, _) = app.post(&path, USER, daily.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = app.post(&path, USER, daily).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("MAX_CRONS_PER_USER"), "{answer}");

    // Another user sees none of them, and cannot change or delete them.
    let (_, found) = app.post("/langgraph/runs/crons/search", "stranger", json!({})).await;
    assert_eq!(found, json!([]));
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/langgraph/runs/crons/{cron_id}"),
            "stranger",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&format!("/langgraph/runs/crons/{cron_id}"), "stranger").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, count) = app.post("/langgraph/runs/crons/count", USER, json!({"thread_id": thread_id})).await;
    assert_eq!(count, json!(2));
    let (status, updated) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/langgraph/runs/crons/{cron_id}"),
            USER,
            Some(json!({"enabled": false, "schedule": "30 7 * * MON-FRI"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["enabled"].clone(), updated["schedule"].clone(), updated["next_run_date"].clone()),
        (json!(false), json!("30 7 * * MON-FRI"), Value::Null)
    );
    assert_eq!(updated["metadata"], json!({"kind": "daily"}));
    let (_, enabled) = app
        .post("/langgraph/runs/crons/search", USER, json!({"enabled": true, "select": ["cron_id", "enabled"]}))
        .await;
    assert_eq!(enabled.as_array().unwrap().len(), 1, "{enabled}");
    assert_eq!(enabled[0].as_object().unwrap().len(), 2, "{enabled}");

    let (status, _) = app.delete(&format!("/langgraph/runs/crons/{cron_id}"), USER).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&format!("/langgraph/runs/crons/{cron_id}"), USER).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Deleting the thread takes its crons along.
    let (status, _) = app.delete(&format!("/threads/{thread_id}"), USER).await;
    assert_eq!(status, StatusCode::OK);
    let (_, count) = app.post("/langgraph/runs/crons/count", USER, json!({})).await;
    assert_eq!(count, json!(0));
}

/// A webhook receiver on loopback: what it was sent, and how it answers each call in turn.
struct Receiver {
    url: String,
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receiver(answers: Vec<u16>) -> Receiver {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let route = post(move |headers: HeaderMap, body: String| {
        let calls = recorded.clone();
        let answers = answers.clone();
        async move {
            let mut calls = calls.lock().unwrap();
            let status = answers.get(calls.len()).copied().unwrap_or(200);
            calls.push((headers, body));
            AxumStatus::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/hook", route)).await });
    Receiver { url, calls }
}

async fn until_called(receiver: &Receiver, times: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..200 {
        if receiver.calls.lock().unwrap().len() >= times {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Time for a call too many to arrive, were one coming.
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.calls.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_one_signed_post_per_run_and_a_retry_after_a_500() {
    let secret = "s3cret-of-this-deployment";
    let (_, app) = app(config(&[("WEBHOOK_SECRET", secret), ("TOOL_URL_ALLOWLIST", "127.0.0.1")])).await;
    let (assistant_id, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;

    // The OpenGPTs API: a background run.
    let hook = receiver(vec![]).await;
    let body = json!({"thread_id": thread_id, "assistant_id": assistant_id, "webhook": hook.url,
                      "input": [{"type": "human", "content": "Hi there", "example": false}]});
    let (status, answer) = app.post("/runs", USER, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let calls = until_called(&hook, 1).await;
    assert_eq!(calls.len(), 1, "one POST per run");
    let (headers, body) = &calls[0];
    let signature = headers[WEBHOOK_SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(signature, webhook_signature(secret.as_bytes(), body.as_bytes()));
    let run: Value = serde_json::from_str(body).unwrap();
    assert_eq!((run["status"].as_str(), run["thread_id"].as_str()), (Some("success"), Some(thread_id.as_str())));
    let messages = run["values"]["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["type"], "ai", "{run}");

    // The LangGraph API: the receiver fails once, and is tried again.
    let flaky = receiver(vec![500]).await;
    let body = json!({"assistant_id": "chatbot", "webhook": flaky.url, "input": {"messages": [{"role": "user", "content": "Again"}]}});
    let (status, waited) = app.post(&format!("/langgraph/threads/{thread_id}/runs/wait"), USER, body).await;
    assert_eq!(status, StatusCode::OK, "{waited}");
    let calls = until_called(&flaky, 2).await;
    assert_eq!(calls.len(), 2, "a 500, then the retry that succeeds");
    assert_eq!(calls[0].1, calls[1].1, "the same run both times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_never_reaches_loopback_unless_allowlisted() {
    let hook = receiver(vec![]).await;
    let (_, app) = app(config(&[])).await;
    let (assistant_id, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;
    let input = json!([{"type": "human", "content": "Hi", "example": false}]);
    let body = json!({"thread_id": thread_id, "assistant_id": assistant_id, "webhook": hook.url, "input": input});
    let (status, answer) = app.post("/runs", USER, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("loopback"), "{answer}");
    // A name that resolves to loopback passes the look at the URL, and is refused as it resolves:
    // the run itself succeeds.
    let by_name = hook.url.replace("127.0.0.1", "localhost");
    let body = json!({"assistant_id": "chatbot", "webhook": by_name, "input": {"messages": [{"role": "user", "content": "Hi"}]}});
    let (status, waited) = app.post(&format!("/langgraph/threads/{thread_id}/runs/wait"), USER, body).await;
    assert_eq!(status, StatusCode::OK, "{waited}");
    assert!(until_called(&hook, 1).await.is_empty(), "the receiver on loopback was never called");
    let runs = runs_of(&app, &thread_id).await;
    assert_eq!(runs[0]["status"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_keeps_one_schedule_per_cron_whose_delivery_runs_the_cron_once() {
    use opengpts::config::EventBridgeSettings;
    use opengpts::schedules::EventBridgeSchedules;
    let endpoint = std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the emulator (moto, EventBridge Scheduler too)");
    let settings = EventBridgeSettings {
        group: "default".into(),
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:run-worker".into(),
        role_arn: "arn:aws:iam::123456789012:role/opengpts-scheduler".into(),
        endpoint_url: Some(endpoint),
    };
    let schedules = Arc::new(EventBridgeSchedules::connect(&settings).await);
    let state = AppState::new(config(&[]), test_store().await).unwrap().with_schedules(schedules.clone());
    let app = spawn_state(state.clone()).await;
    let (_, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;
    let body = json!({"assistant_id": "chatbot", "schedule": "0 9 * * MON-FRI", "timezone": "Europe/Paris",
                      "end_time": "2030-01-01T00:00:00+00:00",
                      "input": {"messages": [{"role": "user", "content": "Weekday briefing"}]}});
    let (status, cron) = app.post(&format!("/langgraph/threads/{thread_id}/runs/crons"), USER, body).await;
    assert_eq!(status, StatusCode::OK, "{cron}");
    let cron_id: Uuid = cron["cron_id"].as_str().unwrap().parse().unwrap();

    let schedule = schedules.fetch(cron_id).await.unwrap().expect("the cron's schedule");
    assert_eq!(schedule["ScheduleExpression"], "cron(0 9 ? * 2-6 *)", "{schedule}");
    assert_eq!(schedule["ScheduleExpressionTimezone"], "Europe/Paris");
    assert_eq!(schedule["State"], "ENABLED");
    assert_eq!(schedule["GroupName"], "default");
    assert_eq!(schedule["Target"]["Arn"], settings.target_arn.as_str());
    assert_eq!(schedule["Target"]["RoleArn"], settings.role_arn.as_str());

    // What EventBridge hands run-worker: its input with the scheduled time filled in.
    let input = schedule["Target"]["Input"].as_str().unwrap();
    let delivered = input.replace("<aws.scheduler.scheduled-time>", &Timestamp::now().to_rfc3339());
    let event = || serde_json::from_str::<opengpts::serve::WorkerEvent>(&delivered).unwrap();
    let run = opengpts::serve::work(&state, event()).await.unwrap().expect("the cron's run");
    assert_eq!(run.status.as_str(), "success");
    assert_eq!(run.thread_id.to_string(), thread_id);
    assert!(opengpts::serve::work(&state, event()).await.unwrap().is_none(), "a delivery repeated starts nothing");
    assert_eq!(runs_of(&app, &thread_id).await.len(), 1);

    let path = format!("/langgraph/runs/crons/{cron_id}");
    let (status, _) = app.call(reqwest::Method::PATCH, &path, USER, Some(json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schedules.fetch(cron_id).await.unwrap().unwrap()["State"], "DISABLED");
    let (status, _) = app.delete(&path, USER).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(schedules.fetch(cron_id).await.unwrap().is_none(), "deleting the cron deletes its schedule");
}

#[tokio::test]
async fn a_cron_saved_before_crons_kept_their_run_still_fires() {
    let (state, app) = app(config(&[])).await;
    let (_, thread_id) = app.thread(USER, json!({"configurable": {"type": "chatbot"}})).await;
    let body = json!({"assistant_id": "chatbot", "schedule": "0 9 * * *", "metadata": {"source": "old"},
                      "input": {"messages": [{"role": "user", "content": "Still there?"}]}});
    let (status, cron) = app.post(&format!("/langgraph/threads/{thread_id}/runs/crons"), USER, body).await;
    assert_eq!(status, StatusCode::OK, "{cron}");
    let cron_id: Uuid = cron["cron_id"].as_str().unwrap().parse().unwrap();
    let owner = opengpts::model::UserId::new(USER).unwrap();
    // As an earlier version stored it: its request, and no run.
    let mut saved = state.store.get_cron(&owner, cron_id).await.unwrap();
    assert!(saved.run.is_some(), "a cron keeps the run it starts");
    saved.run = None;
    state.store.put_cron(&saved).await.unwrap();

    let firing = json!({"cron_firing": {"cron_id": cron_id, "user_id": USER,
                                        "scheduled_time": Timestamp::now().to_rfc3339()}});
    let event = serde_json::from_value::<opengpts::serve::WorkerEvent>(firing).unwrap();
    let run = opengpts::serve::work(&state, event).await.unwrap().expect("the cron's run");
    assert_eq!((run.status.as_str(), run.thread_id.to_string()), ("success", thread_id.clone()));
    let runs = runs_of(&app, &thread_id).await;
    assert_eq!(runs[0]["metadata"]["cron_id"], json!(cron_id), "{runs:?}");
    assert_eq!(runs[0]["metadata"]["source"], "old", "{runs:?}");
    assert!(state.store.get_cron(&owner, cron_id).await.unwrap().run.is_some(), "planned once, and kept");
}
