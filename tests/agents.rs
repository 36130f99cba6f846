//! Agent runs over HTTP on the store under test: the tool loop on every provider's wire format,
//! tool failures, the recursion limit, tool confirmation (interrupt, edit, resume), clients that
//! leave mid-loop, and threads left mid-loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use integration_tests::mock_provider::{
    anthropic_events, anthropic_tool_use_events, bedrock_converse_events, gemini_events, gemini_function_call_events,
    openai_events, openai_tool_call_events, parts, MockProvider, RecordedRequest, Reply,
};
use integration_tests::mock_services::{self, query_param, tool_vars, ui_tool};
use integration_tests::{spawn_app_with, test_config, test_store, SseEvent, TestApp};
use serde_json::{json, Value};

async fn app(vars: Vec<(&'static str, String)>) -> TestApp {
    let config =
        test_config(move |name| vars.iter().rev().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    spawn_app_with(config, test_store().await).await
}

/// An app whose OpenAI is `llm` and whose tools' services are `services`.
async fn app_with_llm(services: &MockProvider, llm: &MockProvider, extra: Vec<(&'static str, String)>) -> TestApp {
    let mut vars = tool_vars(services);
    vars.push(("OPENAI_BASE_URL", format!("{}/v1", llm.base_url)));
    vars.extend(extra);
    app(vars).await
}

fn agent(model: &str, tools: Vec<Value>, interrupt: bool) -> Value {
    json!({"configurable": {"type": "agent", "type==agent/agent_type": model, "type==agent/tools": tools,
        "type==agent/interrupt_before_action": interrupt}})
}

fn wikipedia() -> Vec<Value> {
    vec![ui_tool("wikipedia", json!({}))]
}

fn ask(thread_id: &str, text: &str) -> Value {
    json!({"thread_id": thread_id, "input": [{"type": "human", "content": text}]})
}

fn resume(thread_id: &str) -> Value {
    json!({"thread_id": thread_id, "input": null})
}

async fn thread_state(app: &TestApp, user: &str, thread_id: &str) -> Value {
    let (status, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert_eq!(status, 200, "{state}");
    state
}

fn types(messages: &Value) -> Vec<&str> {
    messages.as_array().expect("messages").iter().map(|m| m["type"].as_str().unwrap_or("?")).collect()
}

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

/// Each `data` event's message types, and for each the tool calls it shows: the run's shape.
fn shape(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event.event.as_str() {
            "data" => {
                let data = event.json();
                let described: Vec<String> = data
                    .as_array()
                    .expect("latest events are lists")
                    .iter()
                    .map(|m| match m["tool_calls"].as_array().map(Vec::len).unwrap_or(0) {
                        0 => m["type"].as_str().unwrap_or("?").to_string(),
                        calls => format!("ai+{calls}"),
                    })
                    .collect();
                described.join(",")
            }
            other => other.to_string(),
        })
        .collect()
}

/// Collapses runs of the same entry: "ai" ×12 → "ai*".
fn collapsed(shape: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in shape {
        match out.last_mut() {
            Some(last) if last.trim_end_matches('*') == entry => {
                if !last.ends_with('*') {
                    last.push('*');
                }
            }
            _ => out.push(entry.clone()),
        }
    }
    out
}

#[tokio::test]
async fn an_offline_agent_calls_the_tools_named_and_answers_from_them() {
    let services = mock_services::start().await;
    let app = app(tool_vars(&services)).await;
    let tools = vec![ui_tool("wikipedia", json!({})), ui_tool("ddg_search", json!({}))];
    let (_, thread_id) = app.thread("agent-user", agent("Offline", tools, false)).await;
    let events = app.stream("agent-user", ask(&thread_id, "Search Wikipedia and DuckDuckGo for the moon")).await;
    // As OpenGPTs streams it: the input, the AI message growing its calls and sent twice when
    // complete, every tool message of the round in one event, then the answer.
    assert_eq!(
        collapsed(&shape(&events)),
        ["metadata", "human", "ai", "ai+1", "ai+2*", "tool,tool", "ai*", "end"],
        "{events:#?}"
    );
    let calling = events
        .iter()
        .filter(|e| e.event == "data")
        .map(SseEvent::json)
        .find(|d| d[0]["tool_calls"].as_array().is_some_and(|c| c.len() == 2))
        .unwrap();
    let ai = &calling[0];
    assert_eq!(
        keys(ai).join(" "),
        "content additional_kwargs response_metadata type name id example tool_calls invalid_tool_calls usage_metadata"
    );
    assert_eq!(keys(&ai["additional_kwargs"]["tool_calls"][0]).join(" "), "index id function type");
    assert_eq!(keys(&ai["additional_kwargs"]["tool_calls"][0]["function"]).join(" "), "arguments name");
    assert_eq!(keys(&ai["tool_calls"][0]).join(" "), "name args id type");
    let round =
        events.iter().find(|e| e.data.as_deref().is_some_and(|d| d.contains(r#""type":"tool""#))).unwrap().json();
    assert_eq!(
        keys(&round[0]).join(" "),
        "content additional_kwargs response_metadata type name id tool_call_id artifact status"
    );
    assert_eq!(round[0]["tool_call_id"], ai["tool_calls"][0]["id"]);
    assert_eq!((round[0]["name"].as_str(), round[1]["name"].as_str()), (Some("wikipedia"), Some("duckduckgo_search")));

    let state = thread_state(&app, "agent-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "tool", "ai"]);
    assert_eq!(state["next"], json!([]));
    let answer = state["values"][4]["content"].as_str().unwrap();
    assert!(answer.contains("(searched: Search Wikipedia and DuckDuckGo for the moon)"), "{answer}");
    assert!(answer.contains("duckduckgo_search returned: The Moon orbits the Earth."), "{answer}");
    assert_eq!(state["values"][1]["response_metadata"]["finish_reason"], "tool_calls");
    assert_ne!(state["values"][1]["id"], state["values"][4]["id"], "each model call is its own message");
}

/// A provider stand-in that asks for `wikipedia` until a tool has answered, then answers in
/// words quoting the tool, as the capture's mock did.
fn scripted(provider: &'static str) -> impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static {
    move |request: &RecordedRequest| {
        let body = &request.body;
        let tool_answered = match provider {
            "openai" => body["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["role"] == "tool"),
            "anthropic" => body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"][0]["type"] == "tool_result"),
            "bedrock" => body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"][0].get("toolResult").is_some()),
            _ => body["contents"]
                .as_array()
                .and_then(|c| c.last())
                .is_some_and(|c| c["parts"][0].get("functionResponse").is_some()),
        };
        match (provider, tool_answered) {
            ("bedrock", false) => {
                return Reply::eventstream(bedrock_converse_events(
                    &[],
                    &[("tooluse_1", "wikipedia", r#"{"query": "the moon"}"#)],
                ))
            }
            ("bedrock", true) => {
                return Reply::eventstream(bedrock_converse_events(&["Based", " on", " the", " tool"], &[]))
            }
            _ => {}
        }
        let events = match (provider, tool_answered) {
            ("openai", false) => openai_tool_call_events(&[("call_Ab3", "wikipedia", r#"{"query":"the moon"}"#)]),
            ("openai", true) => openai_events(&["Based", " on", " the", " tool"]),
            ("anthropic", false) => {
                anthropic_tool_use_events(&[("toolu_01A", "wikipedia", r#"{"query": "the moon"}"#)])
            }
            ("anthropic", true) => anthropic_events(&["Based", " on", " the", " tool"]),
            (_, false) => gemini_function_call_events(&[("wikipedia", json!({"query": "the moon"}))]),
            (_, true) => gemini_events(&["Based", " on", " the", " tool"]),
        };
        Reply::event_stream(parts(events))
    }
}

#[tokio::test]
async fn every_provider_speaks_its_own_tool_protocol() {
    let services = mock_services::start().await;
    let providers = [
        ("openai", "GPT 4o"),
        ("anthropic", "Claude 2"),
        ("gemini", "GEMINI"),
        ("bedrock", "Claude 2 (Amazon Bedrock)"),
    ];
    for (provider, model) in providers {
        let llm = MockProvider::start(scripted(provider)).await;
        let mut vars = tool_vars(&services);
        vars.extend([
            ("OFFLINE_FALLBACK", "false".to_string()),
            ("OPENAI_BASE_URL", format!("{}/v1", llm.base_url)),
            ("ANTHROPIC_API_KEY", "sk-ant".into()),
            ("ANTHROPIC_BASE_URL", llm.base_url.clone()),
            ("GEMINI_API_KEY", "gm".into()),
            ("GEMINI_BASE_URL", llm.base_url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", llm.base_url.clone()),
        ]);
        let app = app(vars).await;
        let (_, thread_id) = app.thread("provider-user", agent(model, wikipedia(), false)).await;
        let events = app.stream("provider-user", ask(&thread_id, "What is the moon?")).await;
        assert_eq!(events.last().unwrap().event, "end", "{provider}: {events:?}");
        assert!(events.iter().all(|e| e.event != "error"), "{provider}: {events:?}");
        let state = thread_state(&app, "provider-user", &thread_id).await;
        assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai"], "{provider}");
        let call = &state["values"][1]["tool_calls"][0];
        assert_eq!(
            (call["name"].as_str(), &call["args"]),
            (Some("wikipedia"), &json!({"query": "the moon"})),
            "{provider}"
        );
        let tool = &state["values"][2];
        assert_eq!(tool["tool_call_id"], call["id"], "{provider}");
        assert!(tool["content"].as_str().unwrap().contains("(searched: the moon)"), "{provider}: {tool}");
        assert_eq!(state["values"][3]["content"], "Based on the tool", "{provider}");

        let requests = llm.requests();
        assert_eq!(requests.len(), 2, "{provider}");
        let (first, second) = (&requests[0].body, &requests[1].body);
        let content = tool["content"].as_str().unwrap();
        match provider {
            "openai" => {
                assert_eq!(first["tools"][0]["type"], "function");
                assert_eq!(first["tools"][0]["function"]["name"], "wikipedia");
                assert_eq!(first["tools"][0]["function"]["parameters"]["required"], json!(["query"]));
                let messages = second["messages"].as_array().unwrap();
                let n = messages.len();
                assert_eq!(
                    messages[n - 2],
                    json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_Ab3", "type": "function",
                        "function": {"name": "wikipedia", "arguments": r#"{"query":"the moon"}"#}}]})
                );
                assert_eq!(messages[n - 1], json!({"role": "tool", "content": content, "tool_call_id": "call_Ab3"}));
                // While streaming, the arguments showed as far as they had come.
                let args: Vec<Value> = events
                    .iter()
                    .filter(|e| e.event == "data")
                    .map(|e| e.json()[0]["tool_calls"][0]["args"].clone())
                    .filter(|args| !args.is_null())
                    .collect();
                assert_eq!(args[..3], [json!({}), json!({}), json!({"query": "the mo"})]);
            }
            "anthropic" => {
                assert_eq!(first["tools"][0]["name"], "wikipedia");
                assert_eq!(first["tools"][0]["input_schema"]["type"], "object");
                let messages = second["messages"].as_array().unwrap();
                let n = messages.len();
                assert_eq!(
                    messages[n - 2],
                    json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A", "name": "wikipedia", "input": {"query": "the moon"}}]})
                );
                assert_eq!(
                    messages[n - 1],
                    json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": content, "is_error": false}]})
                );
            }
            "bedrock" => {
                let spec = &first["toolConfig"]["tools"][0]["toolSpec"];
                assert_eq!(spec["name"], "wikipedia");
                assert_eq!(spec["inputSchema"]["json"]["required"], json!(["query"]));
                let messages = second["messages"].as_array().unwrap();
                let n = messages.len();
                let asked =
                    json!({"toolUse": {"toolUseId": "tooluse_1", "name": "wikipedia", "input": {"query": "the moon"}}});
                assert_eq!(messages[n - 2], json!({"role": "assistant", "content": [asked]}));
                let answered = json!({"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": content}], "status": "success"}});
                assert_eq!(messages[n - 1], json!({"role": "user", "content": [answered]}));
            }
            _ => {
                assert_eq!(first["tools"][0]["functionDeclarations"][0]["name"], "wikipedia");
                let contents = second["contents"].as_array().unwrap();
                let n = contents.len();
                assert_eq!(
                    contents[n - 2],
                    json!({"role": "model", "parts": [{"functionCall": {"name": "wikipedia", "args": {"query": "the moon"}}}]})
                );
                assert_eq!(
                    contents[n - 1],
                    json!({"role": "user", "parts": [{"functionResponse": {"name": "wikipedia", "response": {"content": content}}}]})
                );
            }
        }
    }
}

#[tokio::test]
async fn failing_slow_and_unknown_tools_answer_with_errors_and_the_model_goes_on() {
    let services = mock_services::start().await;
    let llm = MockProvider::start(|request: &RecordedRequest| {
        let answered = request.body["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["role"] == "tool");
        Reply::event_stream(parts(if answered {
            openai_events(&["Sorry", ", the", " tools", " failed"])
        } else {
            openai_tool_call_events(&[
                ("call_1", "wikipedia", r#"{"query":"x"}"#),
                ("call_2", "arxiv", r#"{"query":"x"}"#),
                ("call_3", "nope", "{}"),
            ])
        }))
    })
    .await;
    let failing = vec![
        ("WIKIPEDIA_API_URL", format!("{}/fail", services.base_url)),
        ("ARXIV_API_URL", format!("{}/slow", services.base_url)),
        ("TOOL_TIMEOUT_SECONDS", "1".into()),
    ];
    let app = app_with_llm(&services, &llm, failing).await;
    let tools = vec![ui_tool("wikipedia", json!({})), ui_tool("arxiv", json!({}))];
    let (_, thread_id) = app.thread("failing-user", agent("GPT 3.5 Turbo", tools, false)).await;
    let events = app.stream("failing-user", ask(&thread_id, "look it up")).await;
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
    let run = app.wait_for_run("failing-user", events[0].json()["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "success");
    let state = thread_state(&app, "failing-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "tool", "tool", "ai"]);
    let tools: Vec<(&str, &str)> = (2..5)
        .map(|i| (state["values"][i]["status"].as_str().unwrap(), state["values"][i]["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tools,
        [
            ("error", "The tool wikipedia failed: Wikipedia answered HTTP 500: upstream exploded"),
            ("error", "The tool arxiv failed: the call took longer than 1 s"),
            ("error", "nope is not a valid tool, try one of [wikipedia, arxiv]."),
        ]
    );
    // The model read every failure.
    let second = &llm.requests()[1].body["messages"];
    let results: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["call_1", "call_2", "call_3"]);
}

#[tokio::test]
async fn malformed_arguments_end_the_run_with_an_invalid_tool_call() {
    let llm = MockProvider::start(|_: &RecordedRequest| {
        Reply::event_stream(parts(openai_tool_call_events(&[("call_9", "wikipedia", r#"{"query": moon"#)])))
    })
    .await;
    let app = app(vec![("OPENAI_API_KEY", "sk".into()), ("OPENAI_BASE_URL", format!("{}/v1", llm.base_url))]).await;
    let (_, thread_id) = app.thread("invalid-user", agent("GPT 4", wikipedia(), false)).await;
    let events = app.stream("invalid-user", ask(&thread_id, "hi")).await;
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
    let state = thread_state(&app, "invalid-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai"]);
    let ai = &state["values"][1];
    assert_eq!(ai["tool_calls"], json!([]));
    assert_eq!(
        ai["invalid_tool_calls"],
        json!([{"name": "wikipedia", "args": r#"{"query": moon"#, "id": "call_9", "error": null, "type": "invalid_tool_call"}])
    );
    assert_eq!(state["next"], json!([]));
    assert_eq!(llm.requests().len(), 1, "nothing was run, and the model was not called again");
}

#[tokio::test]
async fn the_recursion_limit_stops_a_looping_agent_and_a_later_run_goes_on() {
    let services = mock_services::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // Asks for a tool on its first two calls, answers on the third.
    let llm = MockProvider::start(move |_: &RecordedRequest| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::event_stream(parts(if n < 2 {
            openai_tool_call_events(&[(&format!("call_{n}"), "wikipedia", r#"{"query":"again"}"#)])
        } else {
            openai_events(&["Done"])
        }))
    })
    .await;
    let app = app_with_llm(&services, &llm, vec![]).await;
    let (_, thread_id) = app.thread("limit-user", agent("GPT 3.5 Turbo", wikipedia(), false)).await;
    let (status, answer) = app
        .post(
            "/runs/stream",
            "limit-user",
            json!({"thread_id": thread_id, "input": [], "config": {"recursion_limit": 0}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "config", "recursion_limit"]));

    let mut body = ask(&thread_id, "loop");
    body["config"] = json!({"recursion_limit": 3});
    let events = app.stream("limit-user", body).await;
    let error = events.iter().find(|e| e.event == "error").expect("an error event").json();
    assert_eq!(error["status_code"], 500);
    assert!(error["message"].as_str().unwrap().contains("took 3 steps without a final answer"), "{error}");
    assert_eq!(events.last().unwrap().event, "end");
    let run = app.wait_for_run("limit-user", events[0].json()["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "error");
    // Every step up to the limit is kept, and the thread says what comes next.
    let state = thread_state(&app, "limit-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai"]);
    assert_eq!(state["next"], json!(["action"]));

    let events = app.stream("limit-user", resume(&thread_id)).await;
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
    let state = thread_state(&app, "limit-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai", "tool", "ai"]);
    assert_eq!(state["values"][5]["content"], "Done");
}

#[tokio::test]
async fn tool_confirmation_stops_before_the_action_which_may_be_edited_then_resumed() {
    let services = mock_services::start().await;
    let app = app(tool_vars(&services)).await;
    let (_, thread_id) = app.thread("hitl-user", agent("Offline", wikipedia(), true)).await;
    let events = app.stream("hitl-user", ask(&thread_id, "search wikipedia for the moon")).await;
    assert_eq!(collapsed(&shape(&events)), ["metadata", "human", "ai", "ai+1*", "end"]);
    let state = thread_state(&app, "hitl-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai"]);
    assert_eq!(state["next"], json!(["action"]));
    let (_, history) = app.get(&format!("/threads/{thread_id}/history"), "hitl-user").await;
    assert_eq!(history[0]["next"], json!(["action"]));

    // The UI's message editor posts the whole AI message back with the arguments changed.
    let mut edited = state["values"][1].clone();
    edited["tool_calls"][0]["args"]["query"] = json!("the edited moon");
    let (status, _) = app.post(&format!("/threads/{thread_id}/state"), "hitl-user", json!({"values": [edited]})).await;
    assert_eq!(status, 200);
    let state = thread_state(&app, "hitl-user", &thread_id).await;
    assert_eq!(state["next"], json!(["action"]));
    assert_eq!(state["values"][1]["tool_calls"][0]["args"]["query"], "the edited moon");

    let events = app.stream("hitl-user", resume(&thread_id)).await;
    assert_eq!(collapsed(&shape(&events)), ["metadata", "human,ai+1", "tool", "ai*", "end"]);
    assert_eq!(
        services.requests().iter().filter_map(|r| query_param(r, "gsrsearch")).collect::<Vec<_>>(),
        ["the edited moon"]
    );
    let state = thread_state(&app, "hitl-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai"]);
    assert_eq!(state["next"], json!([]));

    // Writing again instead of continuing leaves the call unrun, as OpenGPTs does.
    app.stream("hitl-user", ask(&thread_id, "search wikipedia for the sun")).await;
    assert_eq!(thread_state(&app, "hitl-user", &thread_id).await["next"], json!(["action"]));
    app.stream("hitl-user", ask(&thread_id, "never mind, thank you")).await;
    let state = thread_state(&app, "hitl-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai", "human", "ai", "human", "ai"]);
    assert_eq!(state["next"], json!([]));
    assert_eq!(services.requests().len(), 1, "the second call never ran");
}

#[tokio::test]
async fn a_call_left_unanswered_is_not_sent_to_the_provider() {
    let services = mock_services::start().await;
    let llm = MockProvider::start(|request: &RecordedRequest| {
        let last = request.body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
        Reply::event_stream(parts(if last["content"] == "use wikipedia" {
            openai_tool_call_events(&[("call_left", "wikipedia", r#"{"query":"x"}"#)])
        } else {
            openai_events(&["Fine"])
        }))
    })
    .await;
    let app = app_with_llm(&services, &llm, vec![]).await;
    let (_, thread_id) = app.thread("left-user", agent("GPT 3.5 Turbo", wikipedia(), true)).await;
    app.stream("left-user", ask(&thread_id, "use wikipedia")).await;
    app.stream("left-user", ask(&thread_id, "forget it")).await;
    let sent = &llm.requests()[1].body["messages"];
    assert!(sent.as_array().unwrap().iter().all(|m| m.get("tool_calls").is_none() && m["role"] != "tool"), "{sent}");
    assert_eq!(types(&thread_state(&app, "left-user", &thread_id).await["values"]), ["human", "ai", "human", "ai"]);
}

#[tokio::test]
async fn a_client_that_leaves_mid_loop() {
    let services = mock_services::start().await;
    let mut vars = tool_vars(&services);
    vars.push(("WIKIPEDIA_API_URL", format!("{}/slow", services.base_url)));
    let app = app(vars).await;
    let asked_for_tools = |text: &str| text.contains(r#""finish_reason":"tool_calls""#);

    // Told to go on without it, the run finishes the loop and keeps every step.
    let (_, thread_id) = app.thread("leaving-user", agent("Offline", wikipedia(), false)).await;
    let mut body = ask(&thread_id, "search wikipedia");
    body["on_disconnect"] = json!("continue");
    let mut stream = app.open_stream("leaving-user", &body).await;
    stream.read_until(asked_for_tools).await;
    let run_id = stream.run_id();
    drop(stream);
    assert_eq!(app.wait_for_run("leaving-user", &run_id).await["status"], "success");
    assert_eq!(types(&thread_state(&app, "leaving-user", &thread_id).await["values"]), ["human", "ai", "tool", "ai"]);

    // The latest UI's habit: leaving cancels. The steps done stay, and the next run goes on.
    let (_, thread_id) = app.thread("leaving-user", agent("Offline", wikipedia(), false)).await;
    let mut stream = app.open_stream("leaving-user", &ask(&thread_id, "search wikipedia")).await;
    stream.read_until(asked_for_tools).await;
    let run_id = stream.run_id();
    drop(stream);
    assert_eq!(app.wait_for_run("leaving-user", &run_id).await["status"], "cancelled");
    assert_eq!(types(&thread_state(&app, "leaving-user", &thread_id).await["values"]), ["human", "ai"]);
    let events = app.stream("leaving-user", resume(&thread_id)).await;
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
    assert_eq!(types(&thread_state(&app, "leaving-user", &thread_id).await["values"]), ["human", "ai", "tool", "ai"]);
}

/// A run that stops between steps (a crash, a timeout) leaves its thread as a stored step left it.
#[tokio::test]
async fn a_thread_left_mid_loop_is_continued_by_the_next_run() {
    let services = mock_services::start().await;
    let app = app(tool_vars(&services)).await;
    let human = json!({"type": "human", "content": "search wikipedia", "id": "h1"});
    let ai = json!({"type": "ai", "content": "", "id": "a1",
        "tool_calls": [{"name": "wikipedia", "args": {"query": "left off"}, "id": "call_left", "type": "tool_call"}]});
    let tool = json!({"type": "tool", "content": "The Moon, found before the crash", "id": "t1", "name": "wikipedia", "tool_call_id": "call_left"});
    for (left, next, ran_tool) in
        [(vec![human.clone(), ai.clone()], "action", true), (vec![human, ai, tool], "agent", false)]
    {
        let (_, thread_id) = app.thread("crash-user", agent("Offline", wikipedia(), false)).await;
        let (status, _) = app.post(&format!("/threads/{thread_id}/state"), "crash-user", json!({"values": left})).await;
        assert_eq!(status, 200);
        assert_eq!(thread_state(&app, "crash-user", &thread_id).await["next"], json!([next]));
        let before = services.requests().len();
        let events = app.stream("crash-user", resume(&thread_id)).await;
        assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
        let state = thread_state(&app, "crash-user", &thread_id).await;
        assert_eq!(types(&state["values"]), ["human", "ai", "tool", "ai"], "after {next}");
        assert_eq!(services.requests().len() - before, usize::from(ran_tool), "after {next}");
        assert!(state["values"][3]["content"].as_str().unwrap().contains("wikipedia returned"), "{state}");
    }
}

#[tokio::test]
async fn seed_clients_see_the_function_messages_of_their_era() {
    let services = mock_services::start().await;
    let app = app(tool_vars(&services)).await;
    let assistant_id = uuid::Uuid::new_v4();
    let config =
        json!({"configurable": {"agent_type": "Offline", "system_message": "Be brief", "tools": ["Wikipedia"]}});
    let (status, _) = app
        .put(
            &format!("/assistants/{assistant_id}"),
            "seed-agent",
            json!({"name": "seed", "config": config, "public": false}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, thread) = app.post("/threads", "seed-agent", json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let events = app
        .stream(
            "seed-agent",
            json!({"assistant_id": assistant_id, "thread_id": thread_id,
            "input": {"messages": [{"type": "human", "content": "search wikipedia for the moon", "example": false}]}}),
        )
        .await;
    let last = events.iter().rev().find(|e| e.event == "data").unwrap().json();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(types(&last["messages"]), ["human", "ai", "function", "ai"]);
    assert_eq!(keys(&messages[2]).join(" "), "content additional_kwargs type name");
    assert_eq!(messages[1]["additional_kwargs"]["function_call"]["name"], "wikipedia");
    assert_eq!(messages[1]["additional_kwargs"]["agent"]["type"], "AgentActionMessageLog");
    assert_eq!(messages[3]["additional_kwargs"]["agent"]["type"], "AgentFinish");
    let (_, stored) = app.get(&format!("/threads/{thread_id}/messages"), "seed-agent").await;
    assert_eq!(types(&stored["messages"]), ["human", "ai", "function", "ai"]);
}

#[tokio::test]
async fn a_run_at_its_time_limit_stops_between_steps_with_a_clear_error() {
    let services = mock_services::start().await;
    let mut vars = tool_vars(&services);
    vars.extend([("WIKIPEDIA_API_URL", format!("{}/slow", services.base_url)), ("RUN_TIME_LIMIT_SECONDS", "1".into())]);
    let app = app(vars).await;
    let (_, thread_id) = app.thread("deadline-user", agent("Offline", wikipedia(), false)).await;
    let events = app.stream("deadline-user", ask(&thread_id, "search wikipedia")).await;
    let error = events.iter().find(|e| e.event == "error").expect("an error event").json();
    assert_eq!(error["status_code"], 504);
    assert!(error["message"].as_str().unwrap().contains("its time limit"), "{error}");
    let state = thread_state(&app, "deadline-user", &thread_id).await;
    assert_eq!(types(&state["values"]), ["human", "ai"], "the tool step was cut off whole");
    assert_eq!(state["next"], json!(["action"]), "and the thread says how to go on");
}
