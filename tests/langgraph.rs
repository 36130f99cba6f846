//! The LangGraph API under `/langgraph`, driven by its own Python client (`langgraph-sdk`, which
//! `make test` installs) through every call a user's code makes: `tests/langgraph/sdk_suite.py`.
//! Like the other HTTP suites, it runs on each store the test command names.

use integration_tests::{spawn_app_with, test_config, test_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_assistants_threads_runs_and_interrupts() {
    let (app, _wikipedia) = integration_tests::spawn_sdk_app().await;
    integration_tests::run_langgraph_suite(app.base.clone()).await;
}

/// Data that ends, through langgraph-sdk (`tests/langgraph/lifecycle_suite.py`): threads' `ttl`
/// carried out by the local server's own sweep loop, prune, lean searches, store items' `ttl`
/// refreshed by reads, and `DELETE /me/data`; on each store the test command names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_sets_lifetimes_prunes_and_removes_a_users_data() {
    let config = test_config(|name| (name == "TTL_SWEEP_SECONDS").then(|| "1".into()));
    let state = opengpts::api::AppState::new(config, test_store().await).expect("a valid configuration");
    let app = integration_tests::spawn_state(state.clone()).await;
    let sweeping = tokio::spawn(opengpts::serve::sweep_expired_threads(state));
    integration_tests::run_python_suite("langgraph/lifecycle_suite.py", vec![app.base.clone()]).await;
    sweeping.abort();
}

/// `THREAD_TTL_MINUTES` gives threads made without a `ttl` their lifetime, in both APIs; a
/// replaced OpenGPTs thread keeps the one it had, and a LangGraph `ttl` overrides the default.
#[tokio::test]
async fn threads_made_without_a_ttl_get_the_configured_one() {
    use serde_json::json;
    let config = test_config(|name| match name {
        "THREAD_TTL_MINUTES" => Some("60".into()),
        "THREAD_TTL_STRATEGY" => Some("keep_latest".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    let user = "ttl-default";
    let (_, assistant) =
        app.post("/assistants", user, json!({"name": "a", "config": {"configurable": {"type": "chatbot"}}})).await;
    let (status, thread) =
        app.post("/threads", user, json!({"name": "t", "assistant_id": assistant["assistant_id"]})).await;
    assert_eq!(status, 200, "{thread}");
    assert_eq!((&thread["ttl"]["strategy"], &thread["ttl"]["minutes"]), (&json!("keep_latest"), &json!(60.0)));
    let path = format!("/threads/{}", thread["thread_id"].as_str().unwrap());
    let (_, replaced) = app
        .call(
            reqwest::Method::PUT,
            &path,
            user,
            Some(json!({"name": "renamed",
        "assistant_id": assistant["assistant_id"]})),
        )
        .await;
    assert_eq!((&replaced["name"], &replaced["ttl"]), (&json!("renamed"), &thread["ttl"]), "{replaced}");
    let (_, graph_thread) = app.post("/langgraph/threads", user, json!({})).await;
    let (_, shown) =
        app.get(&format!("/langgraph/threads/{}?include=ttl", graph_thread["thread_id"].as_str().unwrap()), user).await;
    assert_eq!((&shown["ttl"]["strategy"], &shown["ttl"]["ttl_minutes"]), (&json!("keep_latest"), &json!(60.0)));
    let (_, given) = app.post("/langgraph/threads", user, json!({"ttl": {"ttl": 5}})).await;
    let (_, shown) =
        app.get(&format!("/langgraph/threads/{}?include=ttl", given["thread_id"].as_str().unwrap()), user).await;
    assert_eq!((&shown["ttl"]["strategy"], &shown["ttl"]["ttl_minutes"]), (&json!("delete"), &json!(5.0)));
}

/// A stateless run's thread is its own: gone once a waited or streamed run ends, kept after a
/// background one (its answer is read there), and gone when the run could not start.
#[tokio::test]
async fn a_stateless_runs_thread_goes_with_it_unless_kept() {
    let app = integration_tests::spawn_app().await;
    let user = "stateless";
    let threads = || async {
        let (status, found) = app.post("/langgraph/threads/search", user, serde_json::json!({"limit": 100})).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{found}");
        found.as_array().unwrap().len()
    };
    let input = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
    let (status, waited) =
        app.post("/langgraph/runs/wait", user, serde_json::json!({"assistant_id": "chatbot", "input": input})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{waited}");
    assert_eq!(threads().await, 0, "a waited stateless run took its thread with it");

    let unknown_model = serde_json::json!({"configurable": {"llm_type": "No Such Model"}});
    let body = serde_json::json!({"assistant_id": "chatbot", "input": input, "config": unknown_model});
    let (status, refused) = app.post("/langgraph/runs/wait", user, body).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(threads().await, 0, "a run that could not start leaves no thread behind");

    let (status, run) =
        app.post("/langgraph/runs", user, serde_json::json!({"assistant_id": "chatbot", "input": input})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{run}");
    assert_eq!(threads().await, 1, "a background stateless run keeps its thread, where its answer is");
}

/// agent-chat-ui's calls, as `../shared/spec/langgraph/agent-chat-ui.md` recorded them, from its
/// own origin (a port of this machine) against a local server, with nothing but the Deployment
/// URL: no cookie, no key, no setting. Every call is let in (as the local user) and answered with
/// CORS: the preflights, the sidebar's search, a chat streamed, the history, the thread found
/// again, and the tool calls an agent puts up for review approved with agent-chat-ui's body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_chat_ui_needs_nothing_but_the_deployment_url() {
    use reqwest::Method;
    use serde_json::{json, Value};
    let services = integration_tests::mock_services::start().await;
    let wikipedia = format!("{}/w/api.php", services.base_url);
    let config = test_config(|name| (name == "WIKIPEDIA_API_URL").then(|| wikipedia.clone()));
    let app = spawn_app_with(config, test_store().await).await;
    const ORIGIN: &str = "http://localhost:3000";
    let call = |method: Method, path: &str, body: Option<Value>| {
        let url = app.url(&format!("/langgraph{path}"));
        let mut request = app.client.request(method, url).header("origin", ORIGIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let allowed = response.headers().get("access-control-allow-origin").cloned();
            assert_eq!(allowed.as_ref().and_then(|value| value.to_str().ok()), Some(ORIGIN), "{status}");
            (status, response.text().await.unwrap())
        }
    };
    let json_of = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/langgraph/threads/search"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-api-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);
    let (status, info) = call(Method::GET, "/info", None).await;
    assert_eq!(status, 200, "{info}");
    let search = json!({"metadata": {"graph_id": "agent"}, "limit": 100, "offset": 0});
    let (status, found) = call(Method::POST, "/threads/search", Some(search.clone())).await;
    assert_eq!((status.as_u16(), json_of(&found)), (200, json!([])));

    let (status, thread) = call(Method::POST, "/threads", Some(json!({"metadata": {}}))).await;
    assert_eq!(status, 200, "{thread}");
    let thread_id = json_of(&thread)["thread_id"].as_str().unwrap().to_string();
    let message = |text: &str| json!({"messages": [{"id": uuid::Uuid::new_v4(), "type": "human", "content": [{"type": "text", "text": text}]}]});
    let send = |input: Value, extra: Value| {
        let mut body = json!({"input": input, "stream_mode": ["values", "messages-tuple", "custom"],
            "stream_subgraphs": true, "stream_resumable": true, "assistant_id": "agent", "on_disconnect": "continue"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        call(Method::POST, &format!("/threads/{thread_id}/runs/stream"), Some(body))
    };
    let (status, streamed) = send(message("Hello, my name is Bob"), json!({})).await;
    assert_eq!(status, 200, "{streamed}");
    assert!(streamed.contains("Hello, Bob!"), "{streamed}");
    let (status, history) =
        call(Method::POST, &format!("/threads/{thread_id}/history"), Some(json!({"limit": 10}))).await;
    assert_eq!(status, 200, "{history}");
    let head = json_of(&history)[0]["checkpoint"].clone();
    let (_, found) = call(Method::POST, "/threads/search", Some(search)).await;
    let found = json_of(&found);
    assert_eq!(found[0]["thread_id"], thread_id.as_str(), "the sidebar finds the thread: {found}");
    assert_eq!(found[0]["values"]["messages"][0]["content"][0]["text"], "Hello, my name is Bob", "its title");

    // An agent whose tool calls wait for review, approved as agent-chat-ui approves them.
    let tools = json!([{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia", "config": {}}]);
    let made = json!({"graph_id": "agent", "config": {"configurable": {"tools": tools, "tool_review": true}}});
    let (status, agent) = call(Method::POST, "/assistants", Some(made)).await;
    assert_eq!(status, 200, "{agent}");
    let assistant_id = json_of(&agent)["assistant_id"].clone();
    let checkpoint = json!({"checkpoint": head});
    let mut extra = checkpoint.clone();
    extra["assistant_id"] = assistant_id.clone();
    let (status, waiting) = send(message("Look up the moon in wikipedia"), extra).await;
    assert_eq!(status, 200, "{waiting}");
    assert!(waiting.contains("\"__interrupt__\"") && waiting.contains("action_requests"), "{waiting}");
    let approve = json!({"input": {}, "command": {"resume": {"decisions": [{"type": "approve"}]}},
        "stream_mode": ["messages-tuple", "values", "custom"], "stream_resumable": false,
        "assistant_id": assistant_id, "on_disconnect": "cancel"});
    let (status, approved) = call(Method::POST, &format!("/threads/{thread_id}/runs/stream"), Some(approve)).await;
    assert_eq!(status, 200, "{approved}");
    let (_, state) = call(Method::GET, &format!("/threads/{thread_id}/state"), None).await;
    let kinds: Vec<Value> =
        json_of(&state)["values"]["messages"].as_array().unwrap().iter().map(|m| m["type"].clone()).collect();
    assert_eq!(kinds, ["human", "ai", "human", "ai", "tool", "ai"], "{state}");
}
