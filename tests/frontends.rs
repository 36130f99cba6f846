//! The two OpenGPTs UIs, replayed: each test sends the requests one UI action sends (as
//! `../shared/spec/frontend-calls.md` records them, bodies and trailing slashes included) and
//! checks what that UI reads from the answers.

use integration_tests::{spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What the UIs' users are called: random UUIDs, as both UIs generate them.
fn user() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn ok(app: &TestApp, method: Method, path: &str, user: &str, body: Option<Value>) -> Value {
    let (status, answer) = app.call(method.clone(), path, user, body).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
    answer
}

/// What every page load of either UI sends.
async fn load(app: &TestApp, user: &str) {
    for path in ["/threads/", "/assistants/", "/runs/config_schema", "/assistants/public/"] {
        ok(app, Method::GET, path, user, None).await;
    }
}

fn human(content: &str) -> Value {
    json!({"content": content, "additional_kwargs": {}, "type": "human", "example": false, "id": format!("human-{}", rand_suffix())})
}

fn rand_suffix() -> String {
    format!("0.{}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000_000)
}

/// The latest UI's stream: the run id from `metadata`, and every event.
async fn latest_stream(app: &TestApp, user: &str, body: Value) -> (String, Vec<integration_tests::SseEvent>) {
    let events = app.stream(user, body).await;
    (events[0].json()["run_id"].as_str().unwrap().to_string(), events)
}

#[tokio::test]
async fn the_bot_form_has_a_labelled_model_choice_with_a_default_in_both_uis() {
    let app = spawn_app().await;
    let schema = ok(&app, Method::GET, "/runs/config_schema", &user(), None).await;
    let fields = &schema["properties"]["configurable"]["properties"];
    let bot_type = &fields["type"];
    assert_eq!(
        (&bot_type["type"], &bot_type["title"], &bot_type["default"]),
        (&json!("string"), &json!("Bot Type"), &json!("agent"))
    );
    for bot in bot_type["enum"].as_array().unwrap() {
        let bot = bot.as_str().unwrap();
        // The latest UI draws a radio group for a string field with an enum, labelled by its title.
        let model_key =
            if bot == "agent" { "type==agent/agent_type".to_string() } else { format!("type=={bot}/llm_type") };
        let model = &fields[&model_key];
        assert_eq!(model["type"], "string", "{model_key}");
        assert!(
            model["title"].is_string() && model["enum"].as_array().unwrap().contains(&model["default"]),
            "{model_key}: {model}"
        );
        let instructions = &fields[format!("type=={bot}/system_message")];
        assert_eq!(
            (&instructions["title"], &instructions["default"]),
            (&json!("Instructions"), &json!("You are a helpful assistant."))
        );
    }
    // The seed UI draws `agent_type` and `system_message`, preselecting their defaults.
    assert_eq!(
        (&fields["agent_type"]["title"], &fields["agent_type"]["default"]),
        (&json!("Agent Type"), &json!("GPT 3.5 Turbo"))
    );
    assert_eq!(fields["system_message"]["title"], "System Message");
    assert!(!schema.to_string().contains("$ref"), "no references to resolve");
}

#[tokio::test]
async fn latest_ui_first_message_names_the_thread_whatever_its_length() {
    let app = spawn_app().await;
    let me = user();
    load(&app, &me).await;
    let config = json!({"configurable": {"type": "chatbot", "type==chatbot/system_message": "You are a helpful assistant.", "type==agent/tools": []}});
    let bot = ok(
        &app,
        Method::POST,
        "/assistants",
        &me,
        Some(json!({"name": "Latest Bot", "config": config, "public": false})),
    )
    .await;
    let first = format!(
        "please repeat this long sentence {}",
        (0..60).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ")
    );
    assert!(first.len() > 400);
    let thread =
        ok(&app, Method::POST, "/threads", &me, Some(json!({"assistant_id": bot["assistant_id"], "name": first})))
            .await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    assert!(thread["name"].as_str().unwrap().starts_with("please repeat this long sentence word0"));
    let (_, events) = latest_stream(&app, &me, json!({"input": [human(&first)], "thread_id": thread_id})).await;
    assert_eq!(events.last().unwrap().event, "end");
    ok(&app, Method::GET, &format!("/threads/{thread_id}"), &me, None).await;
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    assert_eq!(state["values"][0]["content"], first.as_str(), "the first message is kept whole");
    assert_eq!(state["next"], json!([]));
}

#[tokio::test]
async fn seed_ui_long_first_message_and_share_link() {
    let app = spawn_app().await;
    let (owner, visitor) = (user(), user());
    load(&app, &owner).await;
    let bot_id = uuid::Uuid::new_v4();
    let body =
        json!({"name": "Seed Public Bot", "config": {"configurable": {"agent_type": "Offline"}}, "public": true});
    ok(&app, Method::PUT, &format!("/assistants/{bot_id}"), &owner, Some(body)).await;
    let private_id = uuid::Uuid::new_v4();
    let body = json!({"name": "Private", "config": {"configurable": {}}, "public": false});
    ok(&app, Method::PUT, &format!("/assistants/{private_id}"), &owner, Some(body)).await;

    // The share link: the visitor's UI asks for that one bot only.
    let shared = ok(&app, Method::GET, &format!("/assistants/public/?shared_id={bot_id}"), &visitor, None).await;
    let ids: Vec<&str> = shared.as_array().unwrap().iter().map(|a| a["assistant_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [bot_id.to_string().as_str()]);
    let private = ok(&app, Method::GET, &format!("/assistants/public/?shared_id={private_id}"), &visitor, None).await;
    assert_eq!(private, json!([]), "a private bot is not shared");

    let thread_id = uuid::Uuid::new_v4();
    let name = "please repeat this sentence ".repeat(20);
    let body = json!({"assistant_id": bot_id, "name": name});
    ok(&app, Method::PUT, &format!("/threads/{thread_id}"), &visitor, Some(body)).await;
    let message = json!({"content": name, "additional_kwargs": {}, "type": "human", "example": false});
    let body = json!({"input": {"messages": [message]}, "assistant_id": bot_id, "thread_id": thread_id});
    let events = app.stream(&visitor, body).await;
    assert_eq!(events.last().unwrap().event, "end");
    let messages = ok(&app, Method::GET, &format!("/threads/{thread_id}/messages"), &visitor, None).await;
    let messages = messages["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.get("id").is_none()), "seed shapes have no ids");
}

#[tokio::test]
async fn every_message_has_an_id_so_an_edit_replaces_it() {
    let app = spawn_app().await;
    let me = user();
    let config = json!({"configurable": {"type": "chat_retrieval", "type==agent/tools": []}});
    let bot = ok(
        &app,
        Method::POST,
        "/assistants",
        &me,
        Some(json!({"name": "Latest RAG Bot", "config": config, "public": false})),
    )
    .await;
    let thread = ok(
        &app,
        Method::POST,
        "/threads",
        &me,
        Some(json!({"assistant_id": bot["assistant_id"], "name": "what is the secret word?"})),
    )
    .await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    // The latest UI sends RAG runs in the seed shape, and gets the latest one, as OpenGPTs
    // answers it (its transcript 35): lists of messages, each with its id.
    let body = json!({"input": {"messages": [human("what is the secret word?")]}, "thread_id": thread_id});
    let events = app.stream(&me, body).await;
    let last_data = events.iter().rev().find(|event| event.event == "data").unwrap().json();
    assert!(last_data.as_array().unwrap().iter().all(|m| m["id"].is_string()), "latest-shaped events");
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    let values = state["values"].as_array().unwrap();
    assert_eq!(values.len(), 4, "the question, the retrieval call and its documents, the answer");
    assert!(values.iter().all(|m| m["id"].is_string()), "{state}");

    let mut edited = values[3].clone();
    edited["content"] = json!("The secret word is (edited)");
    ok(&app, Method::POST, &format!("/threads/{thread_id}/state"), &me, Some(json!({"values": [edited]}))).await;
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    let values = state["values"].as_array().unwrap();
    assert_eq!(values.len(), 4, "replaced, not added");
    assert_eq!(values[3]["content"], "The secret word is (edited)");
    let history = ok(&app, Method::GET, &format!("/threads/{thread_id}/history"), &me, None).await;
    assert_eq!(history.as_array().unwrap().len(), 4);
    assert_eq!(history[0]["values"], state["values"]);
    assert_eq!(history[0]["parent"], history[1]["config"]);
    assert_eq!(history[3]["parent"], Value::Null);
    assert_eq!(history[3]["next"], json!(["chat_retrieval"]), "an older state awaited the answer");
}

#[tokio::test]
async fn thumbs_up_and_down_are_kept_with_the_run_for_its_owner() {
    let app = spawn_app().await;
    let (me, other) = (user(), user());
    let (_, thread_id) = app.thread(&me, json!({"configurable": {"type": "chatbot"}})).await;
    let (run_id, _) = latest_stream(&app, &me, json!({"input": [human("thanks!")], "thread_id": thread_id})).await;
    for score in [1, 0] {
        let answer = ok(
            &app,
            Method::POST,
            "/runs/feedback",
            &me,
            Some(json!({"run_id": run_id, "key": "user_score", "score": score})),
        )
        .await;
        assert_eq!(answer, json!({"status": "ok"}));
    }
    let kept = ok(&app, Method::GET, &format!("/runs/{run_id}/feedback"), &me, None).await;
    let scores: Vec<&Value> = kept.as_array().unwrap().iter().map(|f| &f["score"]).collect();
    assert_eq!(scores, [&json!(1), &json!(0)]);
    let stranger = app.post("/runs/feedback", &other, json!({"run_id": run_id, "key": "user_score", "score": 0})).await;
    assert_eq!(stranger, (StatusCode::NOT_FOUND, json!({"detail": "Run not found"})));
    assert_eq!(app.get(&format!("/runs/{run_id}/feedback"), &other).await.0, StatusCode::NOT_FOUND);
    let (status, error) =
        app.post("/runs/feedback", &me, json!({"run_id": run_id, "key": "user_score", "score": "great"})).await;
    assert_eq!((status, &error["detail"][0]["loc"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!(["body", "score"])));
}

#[tokio::test]
async fn two_tabs_on_one_thread_both_get_their_answer() {
    let app = spawn_app_with_slow_offline_model().await;
    let me = user();
    let (_, thread_id) = app.thread(&me, json!({"configurable": {"type": "chatbot"}})).await;
    let mut first = app.open_stream(&me, &json!({"input": [human("please repeat this long sentence word0 word1 word2 word3")], "thread_id": thread_id})).await;
    first.read_until(|text| text.contains("event: data")).await;
    let (second_run, second) =
        latest_stream(&app, &me, json!({"input": [human("hi from the second tab")], "thread_id": thread_id})).await;
    first.read_to_end().await;
    let first_run = first.run_id();
    let first = first.events();
    assert!(first.iter().chain(&second).all(|event| event.event != "error"), "{first:?}\n{second:?}");
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    let kinds: Vec<&str> = state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    if kinds != ["human", "ai", "human", "ai"] {
        // How each run ended tells a cancelled first run from a lost answer.
        let (_, first_record) = app.get(&format!("/runs/{first_run}"), &me).await;
        let (_, second_record) = app.get(&format!("/runs/{second_run}"), &me).await;
        panic!("{kinds:?}: {state}\nthe first run: {first_record}\nthe second run: {second_record}\nthe first tab's stream: {first:?}");
    }
    assert_eq!(state["values"][2]["content"], "hi from the second tab");
}

#[tokio::test]
async fn the_latest_ui_cancel_stops_the_run_and_offers_no_continue() {
    let app = spawn_app_with_slow_offline_model().await;
    let me = user();
    let (_, thread_id) = app.thread(&me, json!({"configurable": {"type": "chatbot"}})).await;
    let mut reader = app.open_stream(&me, &json!({"input": [human("please repeat this long sentence word0 word1 word2 word3 word4")], "thread_id": thread_id})).await;
    reader.read_until(|text| text.matches("event: data").count() >= 3).await;
    let run_id = reader.run_id();
    // While it answers, the UI must not offer "Click to continue".
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    assert_eq!(state["next"], json!([]), "{state}");
    drop(reader);
    assert_eq!(app.wait_for_run(&me, &run_id).await["status"], "cancelled");
    let state = ok(&app, Method::GET, &format!("/threads/{thread_id}/state"), &me, None).await;
    assert_eq!((state["values"].as_array().unwrap().len(), &state["next"]), (1, &json!([])), "{state}");
    // A new message after a cancel is answered as usual.
    let (_, events) = latest_stream(&app, &me, json!({"input": [human("hello there")], "thread_id": thread_id})).await;
    assert!(parse_sse_ok(&events));
}

fn parse_sse_ok(events: &[integration_tests::SseEvent]) -> bool {
    events.last().is_some_and(|event| event.event == "end") && events.iter().all(|event| event.event != "error")
}

/// The offline model with a pause between tokens, so a run is still answering when a UI acts.
async fn spawn_app_with_slow_offline_model() -> TestApp {
    let config = integration_tests::test_config(|name| (name == "OFFLINE_TOKEN_DELAY_MS").then(|| "40".into()));
    integration_tests::spawn_app_with(config, integration_tests::test_store().await).await
}
