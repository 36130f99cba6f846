//! User-hosted action runners: each action a runner lists becomes a tool of its own. Their URLs
//! come from the assistant's config, so every request goes through the guarded client; their
//! keys come from the server's environment.

use serde_json::{json, Map, Value};

use super::http::{fetch, fetch_json};
use super::{BoundTool, Call, ToolError, Toolbox};
use crate::llm::ToolSpec;

/// The most actions one runner (or tools one MCP server) may add, so a runner cannot flood the model's tool list.
pub(super) const MAX_ACTIONS: usize = 64;

/// A function name as models accept it: letters, digits, `_` and `-`, at most 64.
pub(super) fn function_name(raw: &str) -> String {
    let name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect();
    if name.is_empty() {
        "action".into()
    } else {
        name
    }
}

fn join(base: &url::Url, path: &str) -> Result<url::Url, ToolError> {
    let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), path.trim_start_matches('/'));
    url::Url::parse(&joined).map_err(|error| ToolError::Failed(format!("'{joined}' is not a URL: {error}")))
}

/// Connery's runner API: `GET /v1/actions` lists, `POST /v1/actions/{id}/run` runs.
pub async fn connery_tools(toolbox: &Toolbox, runner: &url::Url) -> Result<Vec<BoundTool>, ToolError> {
    let inner = &toolbox.inner;
    let key = connery_key(toolbox)?;
    let request = inner.guarded.get(join(runner, "v1/actions")?).header("x-api-key", key.expose());
    let listed = fetch_json("The Connery runner", request, inner.settings.max_response_bytes).await?;
    if listed.get("status").and_then(Value::as_str) != Some("success") {
        return Err(ToolError::Failed(format!(
            "The Connery runner did not list its actions: {}",
            connery_error(&listed)
        )));
    }
    let actions = listed.get("data").and_then(Value::as_array).into_iter().flatten().take(MAX_ACTIONS);
    Ok(actions
        .filter_map(|action| {
            let id = action.get("id").and_then(Value::as_str)?;
            let mut properties = Map::new();
            let mut required = Vec::new();
            for parameter in action.get("inputParameters").and_then(Value::as_array).into_iter().flatten() {
                let Some(key) = parameter.get("key").and_then(Value::as_str) else { continue };
                let title = parameter.get("title").and_then(Value::as_str).unwrap_or(key);
                let about = parameter.get("description").and_then(Value::as_str).unwrap_or_default();
                properties.insert(key.into(), json!({"type": "string", "description": format!("{title}: {about}")}));
                if parameter.pointer("/validation/required").and_then(Value::as_bool) == Some(true) {
                    required.push(key);
                }
            }
            let title = action.get("title").and_then(Value::as_str).unwrap_or(id);
            let about = action.get("description").and_then(Value::as_str).unwrap_or_default();
            Some(BoundTool {
                spec: ToolSpec {
                    name: function_name(id),
                    description: format!("{title}: {about}"),
                    parameters: json!({"type": "object", "properties": properties, "required": required}),
                },
                call: Call::Connery { runner: runner.clone(), action_id: id.to_string() },
            })
        })
        .collect())
}

pub async fn run_connery(
    toolbox: &Toolbox,
    runner: &url::Url,
    action_id: &str,
    args: &Value,
) -> Result<String, ToolError> {
    let inner = &toolbox.inner;
    let key = connery_key(toolbox)?;
    let url = join(runner, &format!("v1/actions/{action_id}/run"))?;
    let request = inner.guarded.post(url).header("x-api-key", key.expose()).json(&json!({"input": args}));
    let answer = fetch_json("The Connery runner", request, inner.settings.max_response_bytes).await?;
    match answer.get("status").and_then(Value::as_str) {
        Some("success") => Ok(answer.pointer("/data/output").cloned().unwrap_or(Value::Null).to_string()),
        _ => Err(ToolError::Failed(format!("the action failed: {}", connery_error(&answer)))),
    }
}

fn connery_key(toolbox: &Toolbox) -> Result<&crate::config::Secret, ToolError> {
    let key = toolbox.inner.settings.connery_runner_api_key.as_ref();
    key.ok_or_else(|| ToolError::Failed("CONNERY_RUNNER_API_KEY is not set".into()))
}

fn connery_error(answer: &Value) -> String {
    answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("no reason given").to_string()
}

/// Sema4.ai's Action Server publishes its actions as an OpenAPI document: each POST operation
/// is an action, its JSON request body the arguments.
pub async fn action_server_tools(toolbox: &Toolbox, server: &url::Url) -> Result<Vec<BoundTool>, ToolError> {
    let inner = &toolbox.inner;
    let request = authorized(toolbox, inner.guarded.get(join(server, "openapi.json")?));
    let document = fetch_json("The Action Server", request, inner.settings.max_response_bytes).await?;
    let schemas = document.pointer("/components/schemas").cloned().unwrap_or(Value::Null);
    let paths = document.get("paths").and_then(Value::as_object).into_iter().flatten();
    let mut tools = Vec::new();
    for (path, operations) in paths {
        let Some(post) = operations.get("post") else { continue };
        let name = post.get("operationId").and_then(Value::as_str).unwrap_or(path);
        let description = ["description", "summary"]
            .iter()
            .find_map(|key| post.get(key).and_then(Value::as_str).filter(|text| !text.is_empty()))
            .unwrap_or(name);
        let body = post.pointer("/requestBody/content/application~1json/schema").cloned().unwrap_or_else(|| json!({}));
        let mut parameters = resolve_ref(&body, &schemas);
        if parameters.get("type").is_none() {
            parameters["type"] = json!("object");
        }
        tools.push(BoundTool {
            spec: ToolSpec { name: function_name(name), description: description.to_string(), parameters },
            call: Call::ActionServer { url: join(server, path)? },
        });
        if tools.len() == MAX_ACTIONS {
            break;
        }
    }
    Ok(tools)
}

/// A schema's `$ref` into `components.schemas`, followed once (action bodies are flat objects).
fn resolve_ref(schema: &Value, schemas: &Value) -> Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
    {
        Some(name) => schemas.get(name).cloned().unwrap_or_else(|| json!({})),
        None => schema.clone(),
    }
}

pub async fn run_action_server(toolbox: &Toolbox, url: &url::Url, args: &Value) -> Result<String, ToolError> {
    let inner = &toolbox.inner;
    let request = authorized(toolbox, inner.guarded.post(url.clone()).json(args));
    fetch("The Action Server", request, inner.settings.max_response_bytes).await
}

fn authorized(toolbox: &Toolbox, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &toolbox.inner.settings.action_server_api_key {
        Some(key) => request.bearer_auth(key.expose()),
        None => request,
    }
}
