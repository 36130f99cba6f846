//! Assistants, threads, messages and state over real HTTP: both generations, and every error.

use integration_tests::{json_of, spawn_app, spawn_app_with, test_config, test_store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "alice";

#[tokio::test]
async fn assistants_crud_with_and_without_trailing_slash() {
    let app = spawn_app().await;
    let body = json!({"name": "one", "config": {"configurable": {"type": "chatbot"}}, "public": false});
    let (status, created) = app.post("/assistants", USER, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let id = created["assistant_id"].as_str().unwrap().to_string();
    assert_eq!(created["config"], body["config"]);
    assert!(created["updated_at"].as_str().unwrap().ends_with('Z'));

    // PUT /assistants/{id} replaces; a client-chosen new id creates.
    let (status, renamed) = app.put(&format!("/assistants/{id}"), USER, json!({"name": "renamed", "config": {}})).await;
    assert_eq!((status, &renamed["name"], &renamed["public"]), (StatusCode::OK, &json!("renamed"), &json!(false)));
    let chosen = uuid::Uuid::new_v4();
    let (status, made) =
        app.put(&format!("/assistants/{chosen}"), USER, json!({"name": "two", "config": {}, "public": true})).await;
    assert_eq!((status, made["assistant_id"].as_str().unwrap()), (StatusCode::OK, chosen.to_string().as_str()));

    for path in ["/assistants", "/assistants/"] {
        let (status, list) = app.get(path, USER).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["two", "renamed"], "newest first");
    }
    for path in ["/assistants/public", "/assistants/public/"] {
        let (_, public) = app.get(path, "bob").await;
        assert_eq!(public.as_array().unwrap().len(), 1);
        assert_eq!(public[0]["assistant_id"], chosen.to_string());
    }
    assert_eq!(app.get(&format!("/assistants/{id}"), USER).await.1["name"], "renamed");
    assert_eq!(app.get(&format!("/assistants/{chosen}"), "bob").await.0, StatusCode::OK, "public is readable");
    assert_eq!(app.delete(&format!("/assistants/{id}"), USER).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(
        app.get(&format!("/assistants/{id}"), USER).await,
        (StatusCode::NOT_FOUND, json!({"detail": "Assistant not found"}))
    );
    assert_eq!(app.delete(&format!("/assistants/{id}"), USER).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn threads_crud_messages_and_state() {
    let app = spawn_app().await;
    let latest = app.assistant(USER, json!({"configurable": {"type": "chatbot"}}), false).await;
    let (status, thread) = app.post("/threads/", USER, json!({"name": "hi", "assistant_id": latest})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(thread["metadata"], json!({"assistant_type": "chatbot"}));
    let thread_id = thread["thread_id"].as_str().unwrap().to_string();

    let (status, renamed) =
        app.put(&format!("/threads/{thread_id}"), USER, json!({"name": "bye", "assistant_id": latest})).await;
    assert_eq!((status, &renamed["name"]), (StatusCode::OK, &json!("bye")));
    assert_eq!(app.get("/threads", USER).await.1.as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/threads/{thread_id}"), USER).await.1["name"], "bye");

    // Latest state: empty, then edited by id.
    let state_path = format!("/threads/{thread_id}/state");
    assert_eq!(app.get(&state_path, USER).await.1, json!({"values": null, "next": []}));
    let (status, answer) =
        app.post(&state_path, USER, json!({"values": [{"type": "human", "content": "first"}]})).await;
    assert_eq!((status, answer), (StatusCode::OK, Value::Null));
    let (_, state) = app.get(&state_path, USER).await;
    assert_eq!(state["next"], json!(["chatbot"]));
    let stored = state["values"][0].clone();
    let keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["content", "additional_kwargs", "response_metadata", "type", "name", "id", "example"]);
    let mut edited = stored.clone();
    edited["content"] = json!("edited");
    let update = json!({"values": {"messages": [edited, {"type": "ai", "content": "reply", "id": "a1"}]}});
    assert_eq!(app.post(&state_path, USER, update).await.0, StatusCode::OK);
    let (_, state) = app.get(&state_path, USER).await;
    let contents: Vec<&str> =
        state["values"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["edited", "reply"]);
    assert_eq!(state["next"], json!([]));

    // Seed messages see the same thread.
    let (_, messages) = app.get(&format!("/threads/{thread_id}/messages"), USER).await;
    assert_eq!(messages["messages"][1]["content"], "reply");
    let list_content = json!({"messages": [{"type": "human", "content": [{"type": "text", "text": "parts"}]}]});
    assert_eq!(app.post(&format!("/threads/{thread_id}/messages"), USER, list_content).await.0, StatusCode::OK);
    assert_eq!(app.get(&state_path, USER).await.1["values"][2]["content"][0]["text"], "parts");

    assert_eq!(app.delete(&format!("/threads/{thread_id}"), USER).await, (StatusCode::OK, json!({"status": "ok"})));
    let gone = (StatusCode::NOT_FOUND, json!({"detail": "Thread not found"}));
    assert_eq!(app.get(&format!("/threads/{thread_id}"), USER).await, gone);
    assert_eq!(app.get(&state_path, USER).await, gone);
    assert_eq!(app.get(&format!("/threads/{thread_id}/messages"), USER).await, gone, "OpenGPTs answered [] here");
}

#[tokio::test]
async fn bad_input_gets_422_naming_the_field() {
    let app = spawn_app().await;
    let raw = |method: Method, path: &'static str, body: &'static str| {
        let request = app.request(method, path, Some(USER)).header("content-type", "application/json").body(body);
        async move { json_of(request.send().await.unwrap()).await }
    };
    let (status, error) = raw(Method::POST, "/assistants", r#"{"name": "x", "config": }"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["type"], "json_invalid");
    assert_eq!(error["detail"][0]["loc"], json!(["body", 24]));

    let (status, error) = raw(Method::POST, "/assistants", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["loc"], json!(["body"]));

    let (_, error) = app.post("/assistants", USER, json!({"name": "x"})).await;
    assert_eq!(error["detail"][0]["type"], "missing");
    assert_eq!(error["detail"][0]["loc"], json!(["body", "config"]));

    let (_, error) = app.post("/assistants", USER, json!({"name": ["x"], "config": "no", "public": "maybe"})).await;
    let kinds: Vec<(&str, &Value)> =
        error["detail"].as_array().unwrap().iter().map(|e| (e["type"].as_str().unwrap(), &e["loc"][1])).collect();
    assert_eq!(
        kinds,
        [("string_type", &json!("name")), ("dict_type", &json!("config")), ("bool_type", &json!("public"))]
    );

    let (status, error) = app.get("/assistants/not-a-uuid", USER).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["loc"], json!(["path", "assistant_id"]));
    assert_eq!(app.get("/threads/not-a-uuid/state", USER).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, error) = app.post("/threads", USER, json!({"name": "x", "assistant_id": "not-a-uuid"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "assistant_id"]));
    let unknown = json!({"name": "x", "assistant_id": uuid::Uuid::new_v4()});
    assert_eq!(
        app.post("/threads", USER, unknown).await,
        (StatusCode::NOT_FOUND, json!({"detail": "Assistant not found"}))
    );

    let (_, thread_id) = app.thread(USER, json!({})).await;
    let (status, error) = app.post(&format!("/threads/{thread_id}/messages"), USER, json!({"messages": "hi"})).await;
    assert_eq!((status, &error["detail"][0]["loc"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!(["body", "messages"])));
    let (status, error) = app.post(&format!("/threads/{thread_id}/state"), USER, json!({"values": "hello"})).await;
    assert_eq!((status, &error["detail"][0]["loc"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!(["body", "values"])));
    let tool_without_call = json!({"values": [{"type": "tool", "content": "42"}]});
    let (_, error) = app.post(&format!("/threads/{thread_id}/state"), USER, tool_without_call).await;
    assert_eq!(error["detail"][0]["loc"], json!(["body", "values", 0, "tool_call_id"]));

    let unknown_model = json!({"name": "x", "config": {"configurable": {"type==agent/agent_type": "GPT 9"}}});
    let (status, error) = app.post("/assistants", USER, unknown_model).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error["detail"][0]["msg"].as_str().unwrap().contains("'GPT 4o'"));
}

#[tokio::test]
async fn identity_routes_and_limits() {
    // A server others can reach (HOST not loopback) lets no caller in without an identity.
    let config = test_config(|name| match name {
        "MAX_BODY_BYTES" => Some("1000".into()),
        "HOST" => Some("0.0.0.0".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    let response = app.request(Method::GET, "/assistants", None).send().await.unwrap();
    let (status, error) = json_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["detail"].as_str().unwrap().contains("opengpts_user_id"));
    let empty_cookie = app.client.get(app.url("/threads")).header("cookie", "opengpts_user_id=").send().await.unwrap();
    assert_eq!(empty_cookie.status(), StatusCode::UNAUTHORIZED);

    let big = json!({"name": "x".repeat(2000), "config": {}});
    let (status, error) = app.post("/assistants", USER, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error["detail"].as_str().unwrap().contains("1000 bytes"));

    assert_eq!(app.get("/nope", USER).await, (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})));
    let response = app.request(Method::DELETE, "/assistants", Some(USER)).send().await.unwrap();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(json_of(response).await, (StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"})));
    assert!(allow.is_some_and(|allow| allow.contains("POST")));

    assert_eq!(app.get("/ok", USER).await, (StatusCode::OK, json!({"ok": true})));
    assert_eq!(app.get("/health", USER).await, (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn openapi_and_docs_work_offline() {
    let app = spawn_app().await;
    let (status, spec) = app.get("/openapi.json", USER).await;
    assert_eq!((status, &spec["openapi"]), (StatusCode::OK, &json!("3.1.0")));
    let page = app.request(Method::GET, "/docs", None).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(!html.contains("https://"), "the docs page loads nothing from the internet");
}

#[tokio::test]
async fn limits_answer_413_or_422_with_a_clear_detail() {
    let config = test_config(|name| match name {
        "MAX_MESSAGES_PER_REQUEST" => Some("3".into()),
        "MAX_MESSAGE_BYTES" => Some("100".into()),
        "MAX_CONFIG_BYTES" => Some("200".into()),
        "MAX_NAME_CHARS" => Some("10".into()),
        _ => None,
    });
    let app = spawn_app_with(config, test_store().await).await;
    // A long name (the UIs send the whole first message) is kept shortened, not refused.
    let (status, created) = app.post("/assistants", USER, json!({"name": "é".repeat(11), "config": {}})).await;
    assert_eq!((status, &created["name"]), (StatusCode::OK, &json!(format!("{}…", "é".repeat(9)))));
    let (_, ten) = app.post("/assistants", USER, json!({"name": "x".repeat(10), "config": {}})).await;
    assert_eq!(ten["name"], "x".repeat(10));
    let (status, error) = app.post("/assistants", USER, json!({"name": "x", "config": {"big": "y".repeat(300)}})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error["detail"].as_str().unwrap().contains("at most 200 bytes"), "{error}");

    let (_, thread_id) = app.thread(USER, json!({})).await;
    let four: Vec<Value> = (0..4).map(|i| json!({"type": "human", "content": format!("m{i}")})).collect();
    let (status, error) =
        app.post(&format!("/threads/{thread_id}/messages"), USER, json!({"messages": four.clone()})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error["detail"][0]["msg"].as_str().unwrap().contains("At most 3 messages"), "{error}");
    let (status, _) = app.post(&format!("/threads/{thread_id}/state"), USER, json!({"values": four.clone()})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.post("/runs", USER, json!({"thread_id": thread_id, "input": four})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let long = json!([{"type": "human", "content": "z".repeat(101)}]);
    let (status, error) = app.post("/runs/stream", USER, json!({"thread_id": thread_id, "input": long})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error["detail"].as_str().unwrap().contains("the limit is 100"), "{error}");
    assert_eq!(app.get(&format!("/threads/{thread_id}/state"), USER).await.1["values"], Value::Null, "nothing stored");
}

#[tokio::test]
async fn cors_lets_configured_browser_origins_in() {
    let config =
        test_config(|name| (name == "CORS_ALLOW_ORIGINS").then(|| "http://localhost:5173, https://ui.example".into()));
    let app = spawn_app_with(config, test_store().await).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/runs/stream"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(preflight.headers()["access-control-allow-credentials"], "true");
    let from =
        |origin: &'static str| app.request(Method::GET, "/assistants", Some(USER)).header("origin", origin).send();
    let allowed = from("https://ui.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://ui.example");
    let other = from("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// A local server (loopback `HOST`, any cookie value) needs nothing set for a page elsewhere on
/// this machine, such as agent-chat-ui on port 3000, which sends no cookie: it is let in as the
/// user `local`, and only pages of this machine get CORS answers. A server others can reach does
/// neither.
#[tokio::test]
async fn a_local_server_lets_pages_of_this_machine_in_without_an_identity() {
    let app = spawn_app_with(test_config(|_| None), test_store().await).await;
    let from =
        |origin: &'static str| app.request(Method::GET, "/langgraph/assistants/search", None).header("origin", origin);
    let page = from("http://localhost:3000").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED, "routed and let in");
    assert_eq!(page.headers()["access-control-allow-origin"], "http://localhost:3000");
    let made = app.request(Method::POST, "/langgraph/threads", None).json(&json!({})).send().await.unwrap();
    let (status, made) = json_of(made).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let anonymous = app.client.get(app.url(&format!("/langgraph/threads/{}", made["thread_id"].as_str().unwrap())));
    assert_eq!(anonymous.send().await.unwrap().status(), StatusCode::OK, "the same local user again");
    let (status, _) = app.get(&format!("/langgraph/threads/{}", made["thread_id"].as_str().unwrap()), USER).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a user with a cookie is not the local one");
    let elsewhere = from("https://evil.example").send().await.unwrap();
    assert!(elsewhere.headers().get("access-control-allow-origin").is_none(), "no page of another machine");

    let reachable = test_config(|name| (name == "HOST").then(|| "0.0.0.0".into()));
    let app = spawn_app_with(reachable, test_store().await).await;
    let page = app.request(Method::GET, "/langgraph/threads/search", None).header("origin", "http://localhost:3000");
    let page = page.send().await.unwrap();
    assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let refused = app.request(Method::POST, "/langgraph/threads", None).json(&json!({})).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
