//! Each agent tool against a local server speaking its service's documented API, and the guard
//! on URLs that users configure.

use integration_tests::agent_tools::{bind, call, toolbox};
use integration_tests::mock_services::{self, query_param, tool_vars, ui_tool};
use integration_tests::{spawn_app_with, test_config, test_store};
use opengpts::model::{Message, ToolStatus};
use opengpts::tools::AgentConfig;
use serde_json::{json, Value};
use std::sync::Arc;

fn text(message: &Message) -> String {
    message.content.text()
}

#[tokio::test]
async fn every_tool_reads_its_services_documented_answer() {
    let mock = mock_services::start().await;
    let toolbox = toolbox(tool_vars(&mock));
    let tools = bind(
        &toolbox,
        json!([
            ui_tool("wikipedia", json!({})),
            ui_tool("ddg_search", json!({})),
            ui_tool("search_tavily", json!({})),
            ui_tool("search_tavily_answer", json!({})),
            ui_tool("arxiv", json!({})),
            ui_tool("pubmed", json!({})),
            ui_tool("you_search", json!({})),
            ui_tool("dall_e", json!({})),
            ui_tool("ai_action_runner_by_connery", json!({"url": format!("{}/connery", mock.base_url)})),
            ui_tool("action_server_by_sema4ai", json!({"url": format!("{}/actions", mock.base_url)})),
        ]),
    )
    .await;
    let names: Vec<String> = tools.specs().into_iter().map(|spec| spec.name).collect();
    assert_eq!(
        names,
        [
            "wikipedia",
            "duckduckgo_search",
            "search_tavily",
            "search_tavily_answer",
            "arxiv",
            "pub_med_search",
            "you_search",
            "Dall-E-Image-Generator",
            "CAF979E6D2FF4C8B946EEBAFCB3BA475",
            "greeter_greet"
        ]
    );
    let connery = &tools.specs()[8];
    assert_eq!(connery.parameters["required"], json!(["recipient"]));
    assert_eq!(tools.specs()[9].parameters["properties"]["name"]["description"], "Who to greet");

    let moon = json!({"query": "the moon"});
    let results = call(
        &tools,
        &[
            ("wikipedia", moon.clone()),
            ("duckduckgo_search", moon.clone()),
            ("search_tavily", moon.clone()),
            ("search_tavily_answer", moon.clone()),
            ("arxiv", moon.clone()),
            ("pub_med_search", moon.clone()),
            ("you_search", moon.clone()),
            ("Dall-E-Image-Generator", json!({"query": "a cat on the moon"})),
            ("CAF979E6D2FF4C8B946EEBAFCB3BA475", json!({"recipient": "ada@example.com", "body": "hi"})),
            ("greeter_greet", json!({"name": "Ada"})),
        ],
    )
    .await;
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.status, Some(ToolStatus::Success), "{}", text(result));
        assert_eq!(result.tool_call_id.as_deref(), Some(format!("call_{index}").as_str()));
        assert_eq!(result.name.as_deref(), Some(names[index].as_str()));
    }
    assert_eq!(
        text(&results[0]),
        "Page: Moon\nSummary: The Moon is Earth's only natural satellite. (searched: the moon)\n\n\
         Page: Moon landing\nSummary: A Moon landing is the arrival of a spacecraft on the Moon."
    );
    assert_eq!(
        text(&results[1]),
        "The Moon orbits the Earth. (searched: the moon)\n\nLunar - relating to the Moon\n\nApollo 11 - first crewed Moon landing"
    );
    let sources: Value = serde_json::from_str(&text(&results[2])).unwrap();
    assert_eq!(
        sources,
        json!([{"url": "https://example.com/moon", "content": "The Moon orbits Earth every 27 days."}])
    );
    assert_eq!(text(&results[3]), "The Moon is about 384,400 km from Earth.");
    assert_eq!(
        text(&results[4]),
        "Published: 2020-01-01\nTitle: Tides of the Moon\nAuthors: Ada Lovelace, Alan Turing\nSummary: We study lunar tides & orbits."
    );
    assert_eq!(
        text(&results[5]),
        "Title: Lunar cycles and sleep.\nPublished: 2021\nSummary: Sleep varies with the moon.\nLess sleep before a full moon."
    );
    assert_eq!(text(&results[6]), "The Moon is bright tonight.\n\nIt has phases.\n\nIt causes tides.");
    assert_eq!(text(&results[7]), "https://images.example.com/moon.png");
    assert_eq!(text(&results[8]), r#"{"messageId":"sent to ada@example.com"}"#);
    assert_eq!(text(&results[9]), r#""Hello, Ada!""#);

    // What reached the services: their documented parameters and credentials.
    let requests = mock.requests();
    let find = |path: &str| requests.iter().find(|r| r.path_and_query.starts_with(path)).expect(path).clone();
    assert_eq!(query_param(&find("/w/api.php"), "gsrsearch").as_deref(), Some("the moon"));
    assert_eq!(query_param(&find("/w/api.php"), "explaintext").as_deref(), Some("1"));
    assert_eq!(query_param(&find("/ddg/"), "format").as_deref(), Some("json"));
    let tavily = find("/tavily/search");
    assert_eq!(tavily.headers["authorization"], "Bearer tvly-test");
    assert_eq!(query_param(&find("/arxiv/"), "search_query").as_deref(), Some("all:the moon"));
    assert_eq!(query_param(&find("/pubmed/efetch.fcgi"), "id").as_deref(), Some("111"));
    assert_eq!(find("/you/search").headers["x-api-key"], "ydc-test");
    let dalle = find("/openai/v1/images/generations");
    assert_eq!(
        (dalle.body["model"].as_str(), dalle.body["prompt"].as_str()),
        (Some("dall-e-3"), Some("a cat on the moon"))
    );
    assert_eq!(find("/connery/v1/actions/").body, json!({"input": {"recipient": "ada@example.com", "body": "hi"}}));
    assert_eq!(find("/connery/v1/actions").headers["x-api-key"], "connery-test");
}

#[tokio::test]
async fn failing_slow_oversized_and_unknown_tools_answer_with_errors() {
    let mock = mock_services::start().await;
    let mut vars = tool_vars(&mock);
    vars.retain(|(name, _)| !["WIKIPEDIA_API_URL", "ARXIV_API_URL", "DUCKDUCKGO_API_URL"].contains(name));
    vars.push(("WIKIPEDIA_API_URL", format!("{}/fail", mock.base_url)));
    vars.push(("ARXIV_API_URL", format!("{}/slow", mock.base_url)));
    vars.push(("DUCKDUCKGO_API_URL", format!("{}/big", mock.base_url)));
    vars.push(("TOOL_TIMEOUT_SECONDS", "1".into()));
    let tools = bind(
        &toolbox(vars),
        json!([ui_tool("wikipedia", json!({})), ui_tool("arxiv", json!({})), ui_tool("ddg_search", json!({}))]),
    )
    .await;
    let started = std::time::Instant::now();
    let results = call(
        &tools,
        &[
            ("wikipedia", json!({"query": "x"})),
            ("arxiv", json!({"query": "x"})),
            ("duckduckgo_search", json!({"query": "x"})),
            ("nope", json!({})),
            ("wikipedia", json!({"q": "the argument has the wrong name"})),
        ],
    )
    .await;
    assert!(started.elapsed() < mock_services::SLOW, "the calls ran at once, and the slow one was cut off");
    let said: Vec<(Option<ToolStatus>, String)> = results.iter().map(|r| (r.status, text(r))).collect();
    let error = Some(ToolStatus::Error);
    assert_eq!(said[0], (error, "The tool wikipedia failed: Wikipedia answered HTTP 500: upstream exploded".into()));
    assert_eq!(said[1], (error, "The tool arxiv failed: the call took longer than 1 s".into()));
    assert_eq!(
        said[2],
        (error, "The tool duckduckgo_search failed: DuckDuckGo answered with more than 2097152 bytes".into())
    );
    assert_eq!(said[3], (error, "nope is not a valid tool, try one of [wikipedia, arxiv, duckduckgo_search].".into()));
    assert_eq!(
        said[4],
        (error, "The tool wikipedia failed: the argument 'query' (a non-empty string) is missing".into())
    );
}

#[tokio::test]
async fn long_answers_are_cut_to_the_configured_size() {
    let mock = mock_services::start().await;
    let mut vars = tool_vars(&mock);
    vars.push(("TOOL_OUTPUT_MAX_CHARS", "40".into()));
    let tools = bind(&toolbox(vars), json!([ui_tool("wikipedia", json!({}))])).await;
    let results = call(&tools, &[("wikipedia", json!({"query": "moon"}))]).await;
    let content = text(&results[0]);
    assert!(content.starts_with("Page: Moon\nSummary: The Moon is Earth's \n[cut: the tool returned"), "{content}");
}

/// A runner's URL is the user's to choose, so it may not reach this server's own network.
#[tokio::test]
async fn configured_urls_cannot_reach_private_addresses() {
    let mock = mock_services::start().await;
    let runner = |url: String| json!([ui_tool("action_server_by_sema4ai", json!({"url": url}))]);
    let configurable = |tools: Value| json!({"configurable": {"type": "agent", "type==agent/tools": tools}});

    // Saved assistants are checked: no allowlist, so loopback is refused with a clear 422.
    let strict = spawn_app_with(test_config(|_| None), test_store().await).await;
    let body = json!({"name": "a", "config": configurable(runner(format!("{}/actions", mock.base_url)))});
    let (status, answer) = strict.post("/assistants", "ssrf-user", body).await;
    assert_eq!(status, 422, "{answer}");
    let detail = answer["detail"][0]["msg"].as_str().unwrap();
    assert!(detail.contains("loopback addresses are not allowed"), "{detail}");
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "config", "configurable", "type==agent/tools", 0]));
    for url in ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/", "file:///etc/passwd", "not a url"] {
        let (status, answer) = strict
            .post("/assistants", "ssrf-user", json!({"name": "a", "config": configurable(runner(url.into()))}))
            .await;
        assert_eq!(status, 422, "{url}: {answer}");
    }
    let with_key = json!([ui_tool(
        "action_server_by_sema4ai",
        json!({"url": "https://actions.example.com", "api_key": "secret"})
    )]);
    let (status, answer) =
        strict.post("/assistants", "ssrf-user", json!({"name": "a", "config": configurable(with_key)})).await;
    assert_eq!(status, 422);
    assert!(answer["detail"][0]["msg"].as_str().unwrap().contains("ACTION_SERVER_API_KEY"), "{answer}");
    let (status, answer) = strict
        .post(
            "/assistants",
            "ssrf-user",
            json!({"name": "a", "config": configurable(json!([ui_tool("search_tavily", json!({}))]))}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(answer["detail"][0]["msg"].as_str().unwrap().contains("TAVILY_API_KEY"), "{answer}");

    // Names are checked as they resolve, and redirects as they are followed.
    let allowed = toolbox(vec![("TOOL_URL_ALLOWLIST", "127.0.0.1".into())]);
    let port = mock.base_url.rsplit(':').next().unwrap();
    let agent = |url: String| {
        let configurable = json!({"type==agent/tools": runner(url)});
        AgentConfig::read(configurable.as_object().unwrap()).unwrap().unwrap()
    };
    let by_name = allowed.bind(&agent(format!("http://localhost:{port}/actions")), &[]).await.err().expect("refused");
    assert!(by_name.to_string().contains("localhost resolves to a loopback address"), "{by_name}");
    let bound = allowed.bind(&agent(format!("{}/actions", mock.base_url)), &[]).await.expect("allowlisted");
    assert_eq!(bound.specs()[0].name, "greeter_greet");
    let redirected =
        allowed.bind(&agent(format!("{}/redirect-to-metadata", mock.base_url)), &[]).await.err().expect("refused");
    assert!(redirected.to_string().contains("169.254.169.254"), "{redirected}");
    assert!(mock.requests().iter().all(|r| !r.path_and_query.contains("meta-data")));
}

#[tokio::test]
async fn the_assistant_form_offers_the_tools_as_the_uis_read_them() {
    let app = spawn_app_with(test_config(|_| None), test_store().await).await;
    let (_, schema) = app.get("/runs/config_schema", "schema-user").await;
    let fields = &schema["properties"]["configurable"]["properties"];
    let tools = fields["type==agent/tools"]["items"]["anyOf"].as_array().unwrap();
    // The latest UI's useToolsSchemas reads exactly these.
    let picker: Vec<(Value, Value, bool)> = tools
        .iter()
        .map(|tool| {
            let properties = &tool["properties"];
            assert!(properties["description"]["const"].is_string());
            assert!(properties["config"]["properties"].is_object());
            (
                properties["name"]["const"].clone(),
                properties["type"]["default"].clone(),
                properties["multi_use"]["const"] == true,
            )
        })
        .collect();
    assert_eq!(picker[0], (json!("Action Server by Sema4.ai"), json!("action_server_by_sema4ai"), true));
    assert!(picker.iter().any(|(name, kind, _)| name == "Wikipedia" && kind == "wikipedia"));
    assert!(picker.iter().any(|(name, kind, _)| name == "Retrieval" && kind == "retrieval"));
    assert!(picker.iter().all(|(name, _, _)| !name.as_str().unwrap().contains("Kay.ai")), "not in this build");
    let retrieval_description = fields["type==agent/retrieval_description"]["default"].as_str().unwrap();
    assert!(retrieval_description.starts_with("Can be used to look up"));
    assert_eq!(fields["type==agent/interrupt_before_action"]["title"], "Tool Confirmation");
    assert_eq!(fields["type==agent/interrupt_before_action"]["type"], "boolean");
    let seed = fields["tools"]["items"]["enum"].as_array().unwrap();
    assert!(seed.contains(&json!("DDG Search")) && seed.contains(&json!("Wikipedia")), "{seed:?}");
}

/// A service that answers without end (a gigabyte, lazily), and one that sends its headers and
/// then nothing; it counts the bytes it managed to send.
async fn hostile_service() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use axum::body::Body;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let endless = move || {
        let counter = counter.clone();
        async move {
            let chunk = bytes::Bytes::from(vec![b'x'; 64 << 10]);
            let body = futures::stream::iter(0..(1u64 << 30) / (64 << 10)).map(move |_| {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok::<_, std::convert::Infallible>(chunk.clone())
            });
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(body))
                .unwrap()
        }
    };
    let stalled = || async {
        let body = futures::stream::once(async { Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"{")) })
            .chain(futures::stream::pending());
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(body))
            .unwrap()
    };
    let app = axum::Router::new()
        .route("/endless", axum::routing::get(endless))
        .route("/stalled", axum::routing::get(stalled));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, sent)
}

#[tokio::test]
async fn a_tool_answering_gigabytes_or_never_finishing_costs_its_cap_and_its_timeout() {
    let mock = mock_services::start().await;
    let (base, sent) = hostile_service().await;
    let mut vars = tool_vars(&mock);
    vars.retain(|(name, _)| !["ARXIV_API_URL", "DUCKDUCKGO_API_URL"].contains(name));
    vars.push(("DUCKDUCKGO_API_URL", format!("{base}/endless")));
    vars.push(("ARXIV_API_URL", format!("{base}/stalled")));
    vars.push(("TOOL_TIMEOUT_SECONDS", "2".into()));
    let tools = bind(&toolbox(vars), json!([ui_tool("ddg_search", json!({})), ui_tool("arxiv", json!({}))])).await;
    let started = std::time::Instant::now();
    let results = call(&tools, &[("duckduckgo_search", json!({"query": "x"})), ("arxiv", json!({"query": "x"}))]).await;
    let took = started.elapsed();
    assert_eq!(
        text(&results[0]),
        "The tool duckduckgo_search failed: DuckDuckGo answered with more than 2097152 bytes"
    );
    assert_eq!(text(&results[1]), "The tool arxiv failed: the call took longer than 2 s");
    assert!(took < std::time::Duration::from_secs(4), "the timeout, and no more: {took:?}");
    // What the endless service got out before the reader hung up: the cap and what the socket
    // buffers held, not the gigabyte.
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 64 << 20, "{sent} bytes were sent");
}
