//! Property-based: malformed and hostile input at every endpoint. Never a 5xx, never a dropped
//! connection (a panic), and streams stay well-formed whatever the content.

use std::sync::OnceLock;

use integration_tests::{spawn_app, TestApp};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The user whose ids the hostile requests aim at (and may delete).
const TARGET: &str = "fuzzer";
/// The stream property's user: the hostile requests never act as this user, so its data stays.
const STREAMER: &str = "streamer";

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    target_assistant: String,
    target_thread: String,
    streamer_assistant: String,
}

/// One server for all cases, on a runtime that outlives each case.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (app, target_assistant, target_thread, streamer_assistant) = runtime.block_on(async {
            let app = spawn_app().await;
            let chatbot = json!({"configurable": {"type": "chatbot"}});
            let (target_assistant, target_thread) = app.thread(TARGET, chatbot.clone()).await;
            let streamer_assistant = app.assistant(STREAMER, chatbot, false).await;
            (app, target_assistant, target_thread, streamer_assistant)
        });
        Harness { runtime, app, target_assistant, target_thread, streamer_assistant }
    })
}

/// Text with what breaks naive SSE and JSON handling: newlines, `data:`, blank lines, quotes,
/// backslashes, control characters, non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\n",
        "\r\n",
        "\r\n\r\n",
        "data: ",
        "event: end",
        ": ping",
        "\"",
        "\\",
        "\u{0}",
        "\u{7f}",
        "é",
        "😀",
        "}",
        "{",
        "[[",
        "<script>",
        "%00",
        "../",
        " ",
        "hello",
        "my name is x",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(str::to_string), ".{0,12}"], 0..12)
        .prop_map(|parts| parts.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        hostile_text().prop_map(Value::from),
        Just(json!("00000000-0000-0000-0000-000000000000")),
        Just(json!("human")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop::sample::select(vec![
            "name",
            "config",
            "public",
            "assistant_id",
            "thread_id",
            "input",
            "messages",
            "values",
            "type",
            "content",
            "id",
            "configurable",
            "tool_call_id",
            "agent_type",
            "type==agent/agent_type",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.prop_map(str::to_string), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn path(assistant_id: &str, thread_id: &str) -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just(assistant_id.to_string()),
        Just(thread_id.to_string()),
        Just(uuid::Uuid::new_v4().to_string()),
        Just("not-a-uuid".to_string()),
        Just("%2e%2e%2f".to_string()),
        Just("x".repeat(300)),
        "[a-zA-Z0-9._~-]{0,20}",
    ];
    let template = prop::sample::select(vec![
        "/assistants",
        "/assistants/",
        "/assistants/public",
        "/assistants/{id}",
        "/threads",
        "/threads/{id}",
        "/threads/{id}/messages",
        "/threads/{id}/state",
        "/runs",
        "/runs/stream",
        "/runs/{id}",
        "/runs/{id}/cancel",
        "/runs/input_schema",
        "/ok",
        "/nope/{id}",
    ]);
    (template, id).prop_map(|(template, id)| template.replace("{id}", &id))
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH])
}

fn cookie() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some(format!("opengpts_user_id={TARGET}"))),
        Just(None),
        Just(Some("opengpts_user_id=".to_string())),
        Just(Some("opengpts_user_id=\"\"; a=b".to_string())),
        "[ -~]{0,40}".prop_map(|raw| Some(format!("opengpts_user_id={}", raw.replace(';', "")))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_requests_never_get_a_5xx(
        (method, path, body, raw_body, cookie) in {
            let harness = harness();
            let ids = path(&harness.target_assistant, &harness.target_thread);
            (method(), ids, json_value(), prop::option::of(hostile_text()), cookie())
        }
    ) {
        let Harness { runtime, app, .. } = harness();
        let status = runtime.block_on(async {
            let mut request = app.client.request(method.clone(), app.url(&path));
            if let Some(cookie) = &cookie {
                if let Ok(value) = reqwest::header::HeaderValue::from_str(cookie) {
                    request = request.header("cookie", value);
                }
            }
            request = match &raw_body {
                Some(raw) => request.header("content-type", "application/json").body(raw.clone()),
                None => request.json(&body),
            };
            let response = request.send().await.expect("the server answered (no panic, no dropped connection)");
            let status = response.status();
            response.bytes().await.expect("a complete body");
            status
        });
        prop_assert!(status.as_u16() < 500, "{method} {path} {body} -> {status}");
    }

    #[test]
    fn streams_stay_well_formed_whatever_the_content(content in hostile_text(), seed_era in any::<bool>()) {
        let Harness { runtime, app, streamer_assistant, .. } = harness();
        let events = runtime.block_on(async {
            let (status, thread) = app.post("/threads", STREAMER, json!({"name": "f", "assistant_id": streamer_assistant})).await;
            assert_eq!(status, 200, "{thread}");
            let message = json!({"type": "human", "content": content});
            let input = if seed_era { json!({"messages": [message]}) } else { json!([message]) };
            app.stream(STREAMER, json!({"thread_id": thread["thread_id"], "input": input})).await
        });
        prop_assert_eq!(&events[0].event, "metadata");
        prop_assert_eq!(&events.last().unwrap().event, "end");
        for event in &events[..events.len() - 1] {
            prop_assert!(serde_json::from_str::<Value>(event.data.as_deref().unwrap()).is_ok(), "{:?}", event);
        }
        let data: Vec<Value> = events.iter().filter(|e| e.event == "data").map(|e| e.json()).collect();
        let sent = if seed_era { &data[0]["messages"][0] } else { &data[0][0] };
        prop_assert_eq!(&sent["content"], &json!(content));
    }
}
