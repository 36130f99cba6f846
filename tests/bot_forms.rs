//! The bot forms of both OpenGPTs UIs, saved as those UIs save them: every key of
//! `/runs/config_schema` at its default, except the field the user touched (the bodies of
//! `../shared/spec/frontend-forms.md`), then run. What runs is what the user chose: the model that
//! answers, the instructions and the tools the provider receives. Also: editing a bot in either
//! UI, and a model asking for a tool its run lacks.

use integration_tests::mock_provider::{
    openai_events, openai_tool_call_events, parts, MockProvider, RecordedRequest, Reply,
};
use integration_tests::{spawn_app_with, test_config, test_store, TestApp};
use serde_json::{json, Map, Value};

const LATEST: &str = "latest";
const SEED: &str = "seed";

/// An app whose OpenAI models are answered by `llm` (every answer: the words "Aye aye").
async fn app_and_llm() -> (TestApp, MockProvider) {
    let llm = MockProvider::start(|request: &RecordedRequest| {
        let last = request.body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
        // A call for a tool nobody gave it, once; after its answer, words.
        let events = if last["content"].as_str().is_some_and(|text| text.contains("look it up")) {
            openai_tool_call_events(&[("call_x", "wikipedia", r#"{"query":"zorblax"}"#)])
        } else {
            openai_events(&["Aye", " aye"])
        };
        Reply::event_stream(parts(events))
    })
    .await;
    let vars = [("OPENAI_API_KEY", "sk-test".to_string()), ("OPENAI_BASE_URL", format!("{}/v1", llm.base_url))];
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    (spawn_app_with(config, test_store().await).await, llm)
}

/// The body a UI saves: every field of the form at its default, `type` and the touched ones set.
async fn form_body(app: &TestApp, user: &str, name: &str, bot: &str, touched: Value) -> Value {
    let (_, schema) = app.get("/runs/config_schema", user).await;
    let fields = schema["properties"]["configurable"]["properties"].as_object().expect("the form's fields");
    let mut configurable: Map<String, Value> =
        fields.iter().map(|(key, field)| (key.clone(), field["default"].clone())).collect();
    configurable.insert("type".into(), json!(bot));
    configurable.extend(touched.as_object().expect("touched fields").clone());
    json!({"name": name, "config": {"configurable": configurable}, "public": false})
}

/// Saves as each UI does: the latest UI POSTs a new bot, the seed UI PUTs it under an id it made.
async fn save(app: &TestApp, user: &str, ui: &str, body: Value) -> String {
    let (status, saved) = match ui {
        LATEST => app.post("/assistants", user, body).await,
        _ => app.put(&format!("/assistants/{}", uuid::Uuid::new_v4()), user, body).await,
    };
    assert_eq!(status, 200, "{saved}");
    saved["assistant_id"].as_str().unwrap().to_string()
}

/// Edits a stored bot as a UI does: the stored config with the touched fields changed, PUT back.
async fn edit(app: &TestApp, user: &str, assistant_id: &str, touched: Value) {
    let (_, mut stored) = app.get(&format!("/assistants/{assistant_id}"), user).await;
    let configurable = stored["config"]["configurable"].as_object_mut().unwrap();
    configurable.extend(touched.as_object().unwrap().clone());
    let body = json!({"name": stored["name"], "config": stored["config"], "public": false});
    let (status, saved) = app.put(&format!("/assistants/{assistant_id}"), user, body).await;
    assert_eq!(status, 200, "{saved}");
}

/// One chat turn on a new thread; the thread's messages after it.
async fn chat(app: &TestApp, user: &str, assistant_id: &str, text: &str) -> (String, Value) {
    let (status, thread) = app.post("/threads", user, json!({"assistant_id": assistant_id, "name": text})).await;
    assert_eq!(status, 200, "{thread}");
    let thread_id = thread["thread_id"].as_str().unwrap().to_string();
    let events = app.stream(user, json!({"thread_id": thread_id, "input": [{"type": "human", "content": text}]})).await;
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    (thread_id, state)
}

fn last_answer(state: &Value) -> &Value {
    state["values"].as_array().unwrap().last().unwrap()
}

fn types(state: &Value) -> Vec<&str> {
    state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect()
}

/// What the provider was told in its last request: the system message and the tools' names.
fn told(llm: &MockProvider) -> (String, Vec<String>) {
    let request = llm.requests().last().cloned().expect("the provider was called");
    let system = request.body["messages"][0]["content"].as_str().unwrap_or_default().to_string();
    let tools = request.body["tools"].as_array().cloned().unwrap_or_default();
    (system, tools.iter().map(|tool| tool["function"]["name"].as_str().unwrap().to_string()).collect())
}

#[tokio::test]
async fn the_model_picked_in_either_ui_is_the_one_that_answers() {
    let (app, llm) = app_and_llm().await;
    let user = "form-user";
    let cases = [
        (LATEST, "Chatbot on Offline", "chatbot", json!({"type==chatbot/llm_type": "Offline"})),
        (LATEST, "RAG on Offline", "chat_retrieval", json!({"type==chat_retrieval/llm_type": "Offline"})),
        (LATEST, "Assistant on Offline", "agent", json!({"type==agent/agent_type": "Offline"})),
        (SEED, "Seed Offline", "agent", json!({"agent_type": "Offline"})),
    ];
    for (ui, name, bot, touched) in cases {
        let body = form_body(&app, user, name, bot, touched).await;
        let assistant_id = save(&app, user, ui, body).await;
        let (_, state) = chat(&app, user, &assistant_id, "hi! my name is bob").await;
        assert_eq!(last_answer(&state)["response_metadata"]["model_name"], "offline", "{name}: {state}");
    }
    assert!(llm.requests().is_empty(), "no run reached OpenAI");
}

#[tokio::test]
async fn the_seed_uis_instructions_and_tools_reach_the_model() {
    let (app, llm) = app_and_llm().await;
    let user = "seed-form-user";
    let pirate = form_body(
        &app,
        user,
        "Seed Pirate",
        "agent",
        json!({"system_message": "PIRATE-MODE: always talk like a pirate."}),
    )
    .await;
    let pirate = save(&app, user, SEED, pirate).await;
    chat(&app, user, &pirate, "hello").await;
    assert_eq!(told(&llm), ("PIRATE-MODE: always talk like a pirate.".to_string(), vec![]));

    let ddg = form_body(&app, user, "Seed DDG", "agent", json!({"tools": ["DDG Search"]})).await;
    let ddg = save(&app, user, SEED, ddg).await;
    let (_, state) = chat(&app, user, &ddg, "hello").await;
    assert_eq!(told(&llm), ("You are a helpful assistant.".to_string(), vec!["duckduckgo_search".to_string()]));
    assert_eq!(last_answer(&state)["content"], "Aye aye");
    // Both UIs read back one value per setting: the one that runs.
    let (_, stored) = app.get(&format!("/assistants/{ddg}"), user).await;
    assert_eq!(stored["config"]["configurable"]["type==agent/tools"][0]["type"], "ddg_search");
}

#[tokio::test]
async fn the_seed_retrieval_bot_answers_from_its_file() {
    let (app, _llm) = app_and_llm().await;
    let user = "seed-rag-user";
    let body = form_body(
        &app,
        user,
        "Seed Zorblax (offline)",
        "agent",
        json!({"agent_type": "Offline", "tools": ["Retrieval"]}),
    )
    .await;
    let assistant_id = save(&app, user, SEED, body).await;
    let file: &[u8] = b"A zorblax is a small purple creature that hums at dawn.";
    let (status, ids) = crate::retrieval::ingest(
        &app,
        user,
        &[("zorblax.txt", "text/plain", file)],
        Some(json!({"configurable": {"assistant_id": assistant_id}})),
    )
    .await;
    assert_eq!(status, 200, "{ids}");
    // The seed UI's chat: a thread under an id it made, its messages, a stream of seed input.
    let thread_id = uuid::Uuid::new_v4().to_string();
    let question = "Ask the retriever: what is a zorblax?";
    let (status, _) =
        app.put(&format!("/threads/{thread_id}"), user, json!({"assistant_id": assistant_id, "name": question})).await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&format!("/threads/{thread_id}/messages"), user).await;
    assert_eq!(status, 200);
    let human = json!({"content": question, "additional_kwargs": {}, "type": "human", "example": false});
    let events = app
        .stream(user, json!({"input": {"messages": [human]}, "assistant_id": assistant_id, "thread_id": thread_id}))
        .await;
    assert!(events.iter().all(|event| event.event != "error"), "{events:?}");
    let (_, messages) = app.get(&format!("/threads/{thread_id}/messages"), user).await;
    let messages = messages["messages"].as_array().unwrap();
    let asked = messages.iter().find(|m| m["type"] == "ai" && m["additional_kwargs"].to_string().contains("Retriever"));
    assert!(asked.is_some(), "the agent called Retrieval: {messages:?}");
    let answer = messages.last().unwrap();
    assert_eq!(answer["type"], "ai", "{messages:?}");
    assert!(answer["content"].as_str().unwrap().contains("small purple creature"), "{messages:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert_eq!(state["next"], json!([]), "nothing left pending for a UI with no continue button");
}

#[tokio::test]
async fn a_bot_edited_in_the_other_ui_runs_as_last_edited() {
    let (app, llm) = app_and_llm().await;
    let user = "edit-user";
    let body = form_body(&app, user, "Seed made", "agent", json!({"agent_type": "Offline"})).await;
    let assistant_id = save(&app, user, SEED, body).await;
    let (_, stored) = app.get(&format!("/assistants/{assistant_id}"), user).await;
    assert_eq!(stored["config"]["configurable"]["type==agent/agent_type"], "Offline", "the latest UI shows what runs");

    // In the latest UI the user picks the form's default model back: that is an edit too.
    edit(&app, user, &assistant_id, json!({"type==agent/agent_type": "GPT 3.5 Turbo"})).await;
    let (_, state) = chat(&app, user, &assistant_id, "hello").await;
    assert_eq!(last_answer(&state)["response_metadata"]["model_name"], llm.requests()[0].body["model"]);

    // Then in the seed UI, new instructions; the model stays as last picked.
    edit(&app, user, &assistant_id, json!({"system_message": "Be brief."})).await;
    chat(&app, user, &assistant_id, "hello").await;
    assert_eq!(llm.requests().len(), 2);
    assert_eq!(told(&llm).0, "Be brief.");

    // A run's own override is an edit of its bot, for that run only.
    let (status, thread) = app.post("/threads", user, json!({"assistant_id": assistant_id, "name": "x"})).await;
    assert_eq!(status, 200);
    let body = json!({"thread_id": thread["thread_id"], "input": [{"type": "human", "content": "hi"}],
        "config": {"configurable": {"type==agent/system_message": "You are a helpful assistant."}}});
    app.stream(user, body).await;
    assert_eq!(told(&llm).0, "You are a helpful assistant.");
}

#[tokio::test]
async fn a_call_for_a_tool_the_run_lacks_is_answered_and_the_model_goes_on() {
    let (app, _llm) = app_and_llm().await;
    let user = "lacking-user";
    for (name, bot, touched) in
        [("No tools", "agent", json!({})), ("Chatbot", "chatbot", json!({"type==chatbot/llm_type": "GPT 3.5 Turbo"}))]
    {
        let body = form_body(&app, user, name, bot, touched).await;
        let assistant_id = save(&app, user, SEED, body).await;
        let (_, state) = chat(&app, user, &assistant_id, "please look it up").await;
        assert_eq!(types(&state), ["human", "ai", "tool", "ai"], "{name}: {state}");
        assert_eq!(state["values"][2]["tool_call_id"], "call_x");
        assert_eq!(state["values"][2]["status"], "error");
        assert!(state["values"][2]["content"].as_str().unwrap().contains("wikipedia is not a valid tool"), "{state}");
        assert_eq!(last_answer(&state)["content"], "Aye aye");
        assert_eq!(state["next"], json!([]), "{name}: nothing left pending");
    }
}
