//! The user's document (`api-getting-started.md`), snippet by snippet, against any running API.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{parse_sse, TestApp};

const USER: &str = "foo";

fn messages_text(messages: &[(&str, &str)]) -> String {
    let rendered: Vec<String> = messages
        .iter()
        .map(|(kind, content)| match *kind {
            "ai" => format!(
                r#"{{"content":"{content}","additional_kwargs":{{"agent":{{"return_values":{{"output":"{content}"}},"log":"{content}","type":"AgentFinish"}}}},"type":"ai","example":false}}"#
            ),
            _ => format!(r#"{{"content":"{content}","additional_kwargs":{{}},"type":"{kind}","example":false}}"#),
        })
        .collect();
    format!(r#"{{"messages":[{}]}}"#, rendered.join(","))
}

/// Every snippet of the document in order, asserting each documented output.
pub async fn getting_started(app: &TestApp) {
    let text = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app.request(method, path, Some(USER));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };

    // Create an assistant: PUT /assistants, exactly as the document shows.
    let created =
        text(Method::PUT, "/assistants", Some(json!({"name": "bar", "config": {"configurable": {}}, "public": true})))
            .await;
    let assistant: Value = serde_json::from_str(&created).unwrap();
    let keys: Vec<&String> = assistant.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["assistant_id", "name", "config", "updated_at", "public", "user_id"]);
    assert_eq!(
        (&assistant["name"], &assistant["public"], &assistant["user_id"]),
        (&json!("bar"), &json!(true), &json!(USER))
    );
    let assistant_id = assistant["assistant_id"].as_str().unwrap();

    // Create a thread.
    let created = text(Method::POST, "/threads", Some(json!({"name": "hi", "assistant_id": assistant_id}))).await;
    let thread: Value = serde_json::from_str(&created).unwrap();
    let keys: Vec<&String> = thread.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["thread_id", "assistant_id", "name", "updated_at", "user_id"]);
    let thread_id = thread["thread_id"].as_str().unwrap();
    let messages_path = format!("/threads/{thread_id}/messages");

    // It starts empty; a message is added; it shows up.
    assert_eq!(text(Method::GET, &messages_path, None).await, r#"{"messages":[]}"#);
    let body = json!({"messages": [{"content": "hi! my name is bob", "type": "human"}]});
    text(Method::POST, &messages_path, Some(body)).await;
    assert_eq!(text(Method::GET, &messages_path, None).await, messages_text(&[("human", "hi! my name is bob")]));

    // Run the assistant with no new input; after a bit the AI answer is there.
    let run = json!({"assistant_id": assistant_id, "thread_id": thread_id, "input": {"messages": []}});
    let started: Value = serde_json::from_str(&text(Method::POST, "/runs", Some(run)).await).unwrap();
    app.wait_for_run(USER, started["run_id"].as_str().unwrap()).await;
    let expected = [("human", "hi! my name is bob"), ("ai", "Hello, Bob! How can I assist you today?")];
    assert_eq!(text(Method::GET, &messages_path, None).await, messages_text(&expected));

    // Run with a new message.
    let run = json!({"assistant_id": assistant_id, "thread_id": thread_id,
        "input": {"messages": [{"content": "whats my name? respond in spanish", "type": "human"}]}});
    let started: Value = serde_json::from_str(&text(Method::POST, "/runs", Some(run)).await).unwrap();
    app.wait_for_run(USER, started["run_id"].as_str().unwrap()).await;
    let expected =
        [expected[0], expected[1], ("human", "whats my name? respond in spanish"), ("ai", "Tu nombre es Bob.")];
    assert_eq!(text(Method::GET, &messages_path, None).await, messages_text(&expected));

    // Stream: the document's client prints the last message's content on every data event.
    let run = json!({"assistant_id": assistant_id, "thread_id": thread_id,
        "input": {"messages": [{"content": "have a good day!", "type": "human"}]}});
    let body = text(Method::POST, "/runs/stream", Some(run)).await;
    let printed: Vec<String> = parse_sse(&body)
        .iter()
        .filter(|event| event.event == "data")
        .map(|event| {
            event.json()["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string()
        })
        .collect();
    let answer = "You too! If you have any other questions, feel free to ask.";
    let mut documented: Vec<String> = Vec::new();
    let mut sofar = String::new();
    for token in [
        "You",
        " too",
        "!",
        " If",
        " you",
        " have",
        " any",
        " other",
        " questions",
        ",",
        " feel",
        " free",
        " to",
        " ask",
        ".",
    ] {
        sofar.push_str(token);
        documented.push(sofar.clone());
    }
    documented.extend([answer.to_string(), answer.to_string()]);
    assert_eq!(printed, documented);
}
