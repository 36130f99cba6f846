//! Agents with tools from a real MCP server (the official Python SDK over Streamable HTTP): what
//! the model is told of them, their answers, failures, slowness and size as tool errors and cut
//! answers, a bearer token by reference, an allow-list, a server that is down, and a run through
//! the API on the store under test with a provider's tool call and with tool confirmation.

use integration_tests::agent_tools::{self, call};
use integration_tests::mcp_server::McpToolServer;
use integration_tests::mock_provider::{
    openai_events, openai_tool_call_events, parts, MockProvider, RecordedRequest, Reply,
};
use integration_tests::mock_services::ui_tool;
use integration_tests::{spawn_app_with, test_config, test_store, TestApp};
use opengpts::model::ToolStatus;
use opengpts::tools::{AgentTools, Toolbox};
use serde_json::{json, Value};

fn vars(extra: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        extra.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()).or_else(|| match name {
            "TOOL_URL_ALLOWLIST" => Some("127.0.0.1".into()),
            _ => None,
        })
    }
}

fn toolbox(extra: Vec<(&'static str, String)>) -> Toolbox {
    let mut vars = vec![("TOOL_URL_ALLOWLIST", "127.0.0.1".to_string())];
    vars.extend(extra);
    agent_tools::toolbox(vars)
}

fn mcp(config: Value) -> Value {
    ui_tool("mcp_server", config)
}

async fn bind(toolbox: &Toolbox, tools: Vec<Value>) -> AgentTools {
    agent_tools::bind(toolbox, json!(tools)).await
}

fn names(tools: &AgentTools) -> Vec<String> {
    tools.specs().into_iter().map(|spec| spec.name).collect()
}

#[tokio::test]
async fn an_agent_is_given_an_mcp_servers_tools_and_their_answers_failures_and_limits() {
    let server = McpToolServer::start();
    let toolbox = toolbox(vec![("TOOL_TIMEOUT_SECONDS", "2".into()), ("TOOL_RESPONSE_MAX_BYTES", "50000".into())]);
    let tools = bind(&toolbox, vec![mcp(json!({"url": server.url}))]).await;
    assert_eq!(names(&tools), ["add", "echo", "fail", "slow", "lookup", "huge"]);
    let add = tools.specs().into_iter().find(|spec| spec.name == "add").unwrap();
    assert_eq!(add.description, "Adds two whole numbers.");
    assert_eq!(add.parameters["properties"]["a"]["type"], "integer");
    assert_eq!(add.parameters["required"], json!(["a", "b"]));

    let answers = call(
        &tools,
        &[
            ("add", json!({"a": 2, "b": 3})),
            ("fail", json!({"reason": "no luck"})),
            ("slow", json!({"seconds": 30})),
            ("huge", json!({"characters": 20000})),
            ("huge", json!({"characters": 60000})),
            ("add", json!({"a": "two"})),
            ("echo", json!({"text": "still here"})),
        ],
    )
    .await;
    let outcome: Vec<(ToolStatus, String)> = answers
        .iter()
        .map(|message| (message.status.clone().unwrap(), message.content.text().chars().take(300).collect()))
        .collect();
    assert_eq!(outcome[0], (ToolStatus::Success, "5".into()));
    assert_eq!(outcome[1].0, ToolStatus::Error);
    assert!(
        outcome[1].1.starts_with("The tool fail failed:") && outcome[1].1.contains("failed on purpose: no luck"),
        "{outcome:?}"
    );
    assert_eq!(outcome[2], (ToolStatus::Error, "The tool slow failed: the call took longer than 2 s".into()));
    let cut = answers[3].content.text();
    assert!(cut.ends_with("\n[cut: the tool returned 20000 characters; the first 8000 are shown]"), "{}", &cut[8000..]);
    assert!(outcome[4].1.contains("answered with more than 50000 bytes"), "{:?}", outcome[4]);
    assert_eq!(outcome[5].0, ToolStatus::Error, "{:?}", outcome[5]);
    assert_eq!(outcome[6], (ToolStatus::Success, "echo: still here".into()));
}

#[tokio::test]
async fn a_token_by_reference_an_allow_list_and_servers_that_fail_leave_the_run_going() {
    let server = McpToolServer::start();
    let variable = format!("MCP_TOKEN_TEST_{}", std::process::id());
    std::env::set_var(&variable, &server.token);
    let toolbox = toolbox(vec![]);
    let private = mcp(json!({"url": server.private_url, "bearer_token_env": variable, "tools": ["lookup", "add"]}));
    let tools = bind(&toolbox, vec![private]).await;
    assert_eq!(names(&tools), ["add", "lookup"], "the allow-list, in the server's order");
    let answers = call(&tools, &[("lookup", json!({"query": "mcp"})), ("echo", json!({"text": "x"}))]).await;
    assert_eq!(answers[0].content.text(), "found in the dictionary: mcp");
    assert!(answers[1].content.text().starts_with("echo is not a valid tool"), "not allowed, not offered");

    // Without its token the server answers 401: its tools are left out and the others stay.
    let refused = mcp(json!({"url": server.private_url}));
    let closed = mcp(json!({"url": "http://127.0.0.1:9/mcp"}));
    let tools = bind(&toolbox, vec![refused, closed, ui_tool("wikipedia", json!({}))]).await;
    assert_eq!(names(&tools), ["wikipedia"]);
}

#[tokio::test]
async fn an_assistant_names_a_server_as_the_ui_saves_it_and_is_refused_what_would_leak() {
    let app = spawn_app_with(test_config(vars(vec![])), test_store().await).await;
    let save = |tool: Value| json!({"name": "mcp", "config": {"configurable": {"type": "agent", "type==agent/tools": [tool]}}});
    // The latest UI sends every field of the form, blank ones as "".
    let blank =
        mcp(json!({"url": "http://127.0.0.1:1/mcp", "tools": "", "bearer_token_env": "", "bearer_token_secret": ""}));
    let (status, answer) = app.post("/assistants", "mcp-user", save(blank)).await;
    assert_eq!(status, 200, "{answer}");
    for (config, says) in [
        (json!({"url": "http://169.254.169.254/mcp"}), "link-local"),
        (json!({"url": "https://mcp.example.com", "bearer_token_env": "AWS_SECRET_ACCESS_KEY"}), "MCP_TOKEN_"),
        (json!({"url": "https://mcp.example.com", "headers": {"authorization": "Bearer x"}}), "bearer_token_secret"),
        (json!({"tools": ["add"]}), "'url'"),
    ] {
        let (status, answer) = app.post("/assistants", "mcp-user", save(mcp(config.clone()))).await;
        assert_eq!(status, 422, "{config}: {answer}");
        let message = answer["detail"][0]["msg"].as_str().unwrap();
        assert!(message.starts_with("The tool 'MCP Server' is misconfigured") && message.contains(says), "{message}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "config", "configurable", "type==agent/tools", 0]));
    }
    let (_, schema) = app.get("/runs/config_schema", "mcp-user").await;
    let tools =
        schema["properties"]["configurable"]["properties"]["type==agent/tools"]["items"]["anyOf"].as_array().unwrap();
    let form = tools.iter().find(|tool| tool["properties"]["type"]["const"] == "mcp_server").expect("offered");
    assert_eq!(form["properties"]["config"]["required"], json!(["url"]));
    assert_eq!(form["properties"]["multi_use"]["const"], true);
}

async fn agent_app(server: &McpToolServer, llm: Option<&MockProvider>, interrupt: bool) -> (TestApp, String) {
    let mut extra = vec![];
    if let Some(llm) = llm {
        extra.push(("OPENAI_BASE_URL", format!("{}/v1", llm.base_url)));
        extra.push(("OPENAI_API_KEY", "sk-test".into()));
    }
    let app = spawn_app_with(test_config(vars(extra)), test_store().await).await;
    let model = if llm.is_some() { "GPT 3.5 Turbo" } else { "Offline" };
    let config = json!({"configurable": {"type": "agent", "type==agent/agent_type": model,
        "type==agent/tools": [mcp(json!({"url": server.url}))], "type==agent/interrupt_before_action": interrupt}});
    let (_, thread_id) = app.thread("mcp-user", config).await;
    (app, thread_id)
}

#[tokio::test]
async fn a_models_call_to_an_mcp_tool_is_answered_in_the_run() {
    let server = McpToolServer::start();
    let llm = MockProvider::start(|request: &RecordedRequest| {
        let last = request.body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
        Reply::event_stream(parts(if last["role"] == "tool" {
            openai_events(&["The ", "sum ", "is ", last["content"].as_str().unwrap_or("?")])
        } else {
            openai_tool_call_events(&[("call_add", "add", r#"{"a": 40, "b": 2}"#)])
        }))
    })
    .await;
    let (app, thread_id) = agent_app(&server, Some(&llm), false).await;
    let input = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "what is 40 + 2?"}]});
    app.stream("mcp-user", input).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), "mcp-user").await;
    let values = state["values"].as_array().unwrap();
    assert_eq!(values.len(), 4, "{state}");
    assert_eq!(values[2]["type"], "tool");
    assert_eq!(values[2]["name"], "add");
    assert_eq!(values[2]["content"], "42");
    assert_eq!(values[3]["content"], "The sum is 42");
    let told = &llm.requests()[0].body["tools"];
    let add = told.as_array().unwrap().iter().find(|tool| tool["function"]["name"] == "add").expect("add is offered");
    assert_eq!(add["function"]["description"], "Adds two whole numbers.");
    assert_eq!(add["function"]["parameters"]["required"], json!(["a", "b"]));
}

#[tokio::test]
async fn an_mcp_tool_waits_for_confirmation_as_the_others_do() {
    let server = McpToolServer::start();
    let (app, thread_id) = agent_app(&server, None, true).await;
    let ask = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "please lookup serendipity"}]});
    app.stream("mcp-user", ask).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), "mcp-user").await;
    assert_eq!(state["next"], json!(["action"]));
    assert_eq!(state["values"][1]["tool_calls"][0]["name"], "lookup");
    app.stream("mcp-user", json!({"thread_id": thread_id, "input": null})).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), "mcp-user").await;
    assert_eq!(state["values"][2]["content"], "found in the dictionary: please lookup serendipity");
    assert!(state["values"][3]["content"].as_str().unwrap().contains("found in the dictionary"), "{state}");
    assert_eq!(state["next"], json!([]));
}

/// A token kept in Secrets Manager (the DynamoDB emulator, moto, serves it too) is read when the
/// server is reached, and sent as the bearer token.
#[tokio::test]
async fn a_token_kept_in_secrets_manager_reaches_the_server() {
    let endpoint = std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the emulator");
    let server = McpToolServer::start();
    let name = format!("mcp/test-{}", uuid::Uuid::new_v4());
    let created = reqwest::Client::new()
        .post(&endpoint)
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0")
        .json(&json!({"Name": name, "SecretString": server.token}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());
    std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint);
    let toolbox = toolbox(vec![]);
    let tools =
        bind(&toolbox, vec![mcp(json!({"url": server.private_url, "bearer_token_secret": name, "tools": "echo"}))])
            .await;
    assert_eq!(names(&tools), ["echo"]);
    let answers = call(&tools, &[("echo", json!({"text": "from a secret"}))]).await;
    assert_eq!(answers[0].content.text(), "echo: from a secret");

    let missing = mcp(json!({"url": server.private_url, "bearer_token_secret": "mcp/no-such-secret"}));
    assert!(bind(&toolbox, vec![missing]).await.is_empty(), "a secret that cannot be read leaves the tools out");
}

/// A hostile server that answers every `tools/list` with an empty page and a next cursor is read
/// a bounded number of times, and its (no) tools leave the run as it was.
#[tokio::test]
async fn a_server_paging_forever_is_read_a_bounded_number_of_times() {
    use integration_tests::mock_provider::{MockProvider, RecordedRequest, Reply};
    let server = MockProvider::start(|request: &RecordedRequest| {
        let id = request.body["id"].clone();
        match request.body["method"].as_str().unwrap_or_default() {
            "initialize" => {
                Reply::json(json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18"}}))
            }
            "tools/list" => {
                Reply::json(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [], "nextCursor": "more"}}))
            }
            _ => Reply::text(202, "application/json", ""),
        }
    })
    .await;
    let tools = bind(&toolbox(vec![]), vec![mcp(json!({"url": format!("{}/mcp", server.base_url)}))]).await;
    assert!(tools.is_empty());
    let pages = server.requests().iter().filter(|request| request.body["method"] == "tools/list").count();
    assert_eq!(pages, 16);
}
