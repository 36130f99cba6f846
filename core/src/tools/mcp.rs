//! Tools from MCP servers: an assistant names a server (its Streamable HTTP URL, headers, a
//! bearer token by reference, an allow-list of its tools), and each tool the server lists is
//! offered to the model under its own name and schema. Lists are kept per process for
//! `MCP_TOOLS_CACHE_SECONDS` with the session they came from. A server that cannot list its
//! tools takes nothing from the run but its tools; a call that fails or hangs is a tool error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::actions::{function_name, MAX_ACTIONS};
use super::mcp_wire::{Endpoint, Session, WireError};
use super::{BoundTool, Call, ToolError, Toolbox, UrlGuard};
use crate::config::{McpSettings, Secret, MCP_TOKEN_VARIABLE_PREFIX};
use crate::llm::ToolSpec;

/// The most `tools/list` pages read from one server.
const MAX_PAGES: usize = 16;

/// One MCP server as an assistant configures it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    url: url::Url,
    headers: Vec<(String, String)>,
    token: Option<TokenSource>,
    /// Only these of its tools, when given.
    allowed: Option<Vec<String>>,
}

/// Where a bearer token is read when it is sent: never from the assistant.
#[derive(Debug, Clone, PartialEq)]
enum TokenSource {
    Variable(String),
    Secret(String),
}

/// A config value that says nothing: forms send empty strings for the fields left blank.
fn given<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    config.get(key).filter(|value| !value.is_null() && value.as_str().is_none_or(|text| !text.trim().is_empty()))
}

impl McpServer {
    /// The server of a tool's `config`, or what is wrong with it.
    pub fn read(config: &Map<String, Value>, guard: &UrlGuard, settings: &McpSettings) -> Result<Self, String> {
        let text = given(config, "url")
            .and_then(Value::as_str)
            .ok_or("'url' (the server's Streamable HTTP URL) is missing")?;
        let url = url::Url::parse(text.trim()).map_err(|error| format!("'url': '{text}' is not a URL ({error})"))?;
        guard.check(&url).map_err(|refused| format!("'url': {refused}"))?;
        let mut headers = Vec::new();
        if let Some(given) = given(config, "headers") {
            let object = given.as_object().ok_or("'headers' must be an object of header names and text values")?;
            for (name, value) in object {
                let value = value.as_str().ok_or_else(|| format!("the header '{name}' must have a text value"))?;
                if name.eq_ignore_ascii_case("authorization") {
                    return Err("an Authorization header is not kept in an assistant: name the token with \
                                'bearer_token_env' or 'bearer_token_secret'"
                        .into());
                }
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("'{name}' is not a header name"))?;
                reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| format!("the header '{name}' has a value no HTTP header may carry"))?;
                headers.push((name.clone(), value.to_string()));
            }
        }
        let variable = given(config, "bearer_token_env").map(|value| value.as_str().unwrap_or_default().trim());
        let secret = given(config, "bearer_token_secret").map(|value| value.as_str().unwrap_or_default().trim());
        let token = match (variable, secret) {
            (Some(_), Some(_)) => return Err("give 'bearer_token_env' or 'bearer_token_secret', not both".into()),
            (Some(name), None)
                if !name.starts_with(MCP_TOKEN_VARIABLE_PREFIX) || name.len() == MCP_TOKEN_VARIABLE_PREFIX.len() =>
            {
                return Err(format!(
                    "'bearer_token_env' must name a variable {MCP_TOKEN_VARIABLE_PREFIX}…: '{name}' is not one"
                ))
            }
            (Some(name), None) if std::env::var(name).map_or(true, |value| value.is_empty()) => {
                return Err(format!("'bearer_token_env': this server has no variable {name}"))
            }
            (Some(name), None) => Some(TokenSource::Variable(name.to_string())),
            (None, Some(name))
                if !name.starts_with(&settings.secret_prefix) || name.len() == settings.secret_prefix.len() =>
            {
                return Err(format!(
                    "'bearer_token_secret' must name a secret under '{}' (MCP_SECRET_PREFIX): '{name}' is not one",
                    settings.secret_prefix
                ))
            }
            (None, Some(name)) => Some(TokenSource::Secret(name.to_string())),
            (None, None) => None,
        };
        let allowed = match given(config, "tools") {
            None => None,
            Some(Value::String(names)) => {
                Some(names.split(',').map(|name| name.trim().to_string()).filter(|n| !n.is_empty()).collect())
            }
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|name| name.as_str().map(str::to_string).ok_or("'tools' must list tool names as text"))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => {
                return Err("'tools' must be a list of the server's tool names, or one comma-separated text".into())
            }
        };
        Ok(McpServer { url, headers, token, allowed })
    }

    fn host(&self) -> String {
        self.url.host_str().map(|host| format!("'{host}'")).unwrap_or_else(|| "?".into())
    }

    fn cache_key(&self) -> String {
        format!("{}\n{:?}\n{:?}", self.url, self.headers, self.token)
    }
}

/// A tool a server listed, as its `tools/list` described it.
#[derive(Debug, Clone)]
struct Listed {
    name: String,
    description: String,
    input_schema: Value,
}

struct Known {
    tools: Arc<Vec<Listed>>,
    session: Session,
    fetched: Instant,
}

/// The servers this process has listed, and the tokens it has read from Secrets Manager.
#[derive(Default)]
pub struct McpServers {
    known: Mutex<HashMap<String, Known>>,
    secrets: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
    tokens: Mutex<HashMap<String, (Secret, Instant)>>,
}

/// A call bound to one tool of one server.
#[derive(Debug, Clone)]
pub struct McpCall {
    server: Arc<McpServer>,
    tool: String,
}

impl Toolbox {
    /// The tools a server offers to a run: listed now, or from this process's recent list.
    pub(super) async fn mcp_tools(&self, server: McpServer) -> Vec<BoundTool> {
        let server = Arc::new(server);
        let listed = match self.mcp_listing(&server).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(server = %server.host(), %error, "an MCP server's tools are left out of a run");
                return Vec::new();
            }
        };
        listed
            .iter()
            .filter(|tool| server.allowed.as_ref().is_none_or(|allowed| allowed.contains(&tool.name)))
            .take(MAX_ACTIONS)
            .map(|tool| BoundTool {
                spec: ToolSpec {
                    name: function_name(&tool.name),
                    description: tool.description.clone(),
                    parameters: tool.input_schema.clone(),
                },
                call: Call::Mcp(McpCall { server: server.clone(), tool: tool.name.clone() }),
            })
            .collect()
    }

    async fn mcp_listing(&self, server: &McpServer) -> Result<Arc<Vec<Listed>>, ToolError> {
        let settings = &self.inner.settings;
        let key = server.cache_key();
        let cached = self
            .inner
            .mcp
            .known
            .lock()
            .expect("not poisoned")
            .get(&key)
            .map(|known| (known.tools.clone(), known.fetched));
        if let Some((tools, fetched)) = &cached {
            if fetched.elapsed() < settings.mcp.tools_cache {
                return Ok(tools.clone());
            }
        }
        let listing = tokio::time::timeout(settings.timeout, self.list_mcp_tools(server));
        match listing.await.unwrap_or(Err(ToolError::TimedOut(settings.timeout.as_secs()))) {
            Ok((tools, session)) => {
                let tools = Arc::new(tools);
                let known = Known { tools: tools.clone(), session, fetched: Instant::now() };
                self.inner.mcp.known.lock().expect("not poisoned").insert(key, known);
                Ok(tools)
            }
            // A list this process had still names the server's tools; a call says if it is down.
            Err(error) => cached.map(|(tools, _)| tools).ok_or(error),
        }
    }

    async fn list_mcp_tools(&self, server: &McpServer) -> Result<(Vec<Listed>, Session), ToolError> {
        let headers = self.mcp_headers(server).await?;
        let endpoint = self.endpoint(server, &headers);
        let session = endpoint.open().await?;
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        // Pages until the server has no more or the run has as many as it may offer; a server
        // that sends empty pages with a next cursor forever is read a bounded number of times.
        for _ in 0..MAX_PAGES {
            if tools.len() >= MAX_ACTIONS {
                break;
            }
            let params = cursor.take().map(|cursor| json!({"cursor": cursor}));
            let (result, _) = endpoint.post(Some(&session), "tools/list", params).await.map_err(wire_error)?;
            for tool in result.get("tools").and_then(Value::as_array).into_iter().flatten() {
                let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
                let mut input_schema = tool.get("inputSchema").cloned().unwrap_or_else(|| json!({}));
                if input_schema.get("type").is_none() {
                    input_schema["type"] = json!("object");
                }
                tools.push(Listed {
                    name: name.to_string(),
                    description: tool.get("description").and_then(Value::as_str).unwrap_or(name).to_string(),
                    input_schema,
                });
            }
            match result.get("nextCursor").filter(|cursor| !cursor.is_null()) {
                Some(next) => cursor = Some(next.clone()),
                None => break,
            }
        }
        Ok((tools, session))
    }

    /// `tools/call` in the session the tools were listed in; a session the server forgot is
    /// opened again once.
    pub(super) async fn run_mcp(&self, call: &McpCall, args: &Value) -> Result<String, ToolError> {
        let server = &call.server;
        let headers = self.mcp_headers(server).await?;
        let endpoint = self.endpoint(server, &headers);
        let key = server.cache_key();
        let kept = self.inner.mcp.known.lock().expect("not poisoned").get(&key).map(|known| known.session.clone());
        let session = match kept {
            Some(session) => session,
            None => endpoint.open().await?,
        };
        let params = json!({"name": call.tool, "arguments": args});
        let result = match endpoint.post(Some(&session), "tools/call", Some(params.clone())).await {
            Err(WireError::SessionGone) => {
                let session = endpoint.open().await?;
                if let Some(known) = self.inner.mcp.known.lock().expect("not poisoned").get_mut(&key) {
                    known.session = session.clone();
                }
                endpoint.post(Some(&session), "tools/call", Some(params)).await
            }
            answer => answer,
        };
        let (result, _) = result.map_err(wire_error)?;
        tool_result(&result)
    }

    fn endpoint<'a>(&'a self, server: &'a McpServer, headers: &'a [(String, String)]) -> Endpoint<'a> {
        Endpoint {
            client: &self.inner.guarded,
            url: &server.url,
            headers,
            max_bytes: self.inner.settings.max_response_bytes,
            name: server.url.host_str().unwrap_or("?"),
        }
    }

    /// The server's headers, with its bearer token read where the assistant named it. Boxed, as
    /// `Endpoint::post` is: a Secrets Manager read is a large future to copy into each caller's.
    fn mcp_headers<'a>(
        &'a self,
        server: &'a McpServer,
    ) -> futures::future::BoxFuture<'a, Result<Vec<(String, String)>, ToolError>> {
        Box::pin(self.read_mcp_headers(server))
    }

    async fn read_mcp_headers(&self, server: &McpServer) -> Result<Vec<(String, String)>, ToolError> {
        let mut headers = server.headers.clone();
        let token = match &server.token {
            None => return Ok(headers),
            Some(TokenSource::Variable(name)) => {
                std::env::var(name).ok().filter(|value| !value.is_empty()).ok_or_else(|| {
                    ToolError::Failed(format!("this server has no variable {name} for the MCP server's token"))
                })?
            }
            Some(TokenSource::Secret(name)) => self.mcp_secret(name).await?.expose().clone(),
        };
        headers.push(("authorization".into(), format!("Bearer {token}")));
        Ok(headers)
    }

    async fn mcp_secret(&self, name: &str) -> Result<Secret, ToolError> {
        let mcp = &self.inner.mcp;
        let kept = mcp.tokens.lock().expect("not poisoned").get(name).cloned();
        if let Some((token, read)) = kept {
            if read.elapsed() < self.inner.settings.mcp.tools_cache {
                return Ok(token);
            }
        }
        let client = mcp
            .secrets
            .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(&crate::config::aws_sdk_config(None).await) })
            .await;
        let failed = |reason: String| ToolError::Failed(format!("the secret '{name}' could not be read: {reason}"));
        let answer = client.get_secret_value().secret_id(name).send().await;
        let answer =
            answer.map_err(|error| failed(aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string()))?;
        let token = Secret::new(
            answer.secret_string().ok_or_else(|| failed("it has no text value".into()))?.trim().to_string(),
        );
        mcp.tokens.lock().expect("not poisoned").insert(name.to_string(), (token.clone(), Instant::now()));
        Ok(token)
    }
}

fn wire_error(error: WireError) -> ToolError {
    match error {
        WireError::SessionGone => ToolError::Failed("the MCP server forgot the session it opened".into()),
        WireError::Failed(error) => error,
    }
}

/// A `tools/call` result as the model reads it: its text, a note for what is not text, its
/// structured content when there is nothing else; `isError` makes it a tool error.
fn tool_result(result: &Value) -> Result<String, ToolError> {
    let mut parts = Vec::new();
    for item in result.get("content").and_then(Value::as_array).into_iter().flatten() {
        let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        parts.push(match item.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => text("text"),
            "image" | "audio" => format!("[{} ({})]", text("type"), text("mimeType")),
            "resource" => match item.pointer("/resource/text").and_then(Value::as_str) {
                Some(text) => text.to_string(),
                None => format!("[resource {}]", item.pointer("/resource/uri").and_then(Value::as_str).unwrap_or("?")),
            },
            "resource_link" => format!("[link {}: {}]", text("name"), text("uri")),
            other => format!("[{other}]"),
        });
    }
    if parts.is_empty() {
        if let Some(structured) = result.get("structuredContent") {
            parts.push(structured.to_string());
        }
    }
    let content = parts.join("\n");
    match result.get("isError").and_then(Value::as_bool) {
        Some(true) => Err(ToolError::Failed(if content.is_empty() { "it reported an error".into() } else { content })),
        _ => Ok(content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> McpSettings {
        McpSettings { tools_cache: std::time::Duration::from_secs(300), secret_prefix: "mcp/".into() }
    }

    fn read(config: Value) -> Result<McpServer, String> {
        McpServer::read(config.as_object().unwrap(), &UrlGuard::new(vec![]), &settings())
    }

    #[test]
    fn a_server_is_read_with_what_forms_leave_blank_and_refused_for_what_would_leak() {
        let server = read(json!({"url": "https://mcp.example.com/mcp", "tools": "add, echo", "bearer_token_env": "",
            "headers": {"X-Team": "blue"}}))
        .unwrap();
        assert_eq!(server.allowed, Some(vec!["add".to_string(), "echo".to_string()]));
        assert_eq!(server.headers, [("X-Team".to_string(), "blue".to_string())]);
        assert!(read(json!({"url": "http://169.254.169.254/mcp"})).unwrap_err().contains("link-local"));
        assert!(read(json!({"url": "https://a.example/mcp", "headers": {"Authorization": "Bearer x"}}))
            .unwrap_err()
            .contains("bearer_token_env"));
        assert!(read(json!({"url": "https://a.example/mcp", "bearer_token_env": "AWS_SECRET_ACCESS_KEY"}))
            .unwrap_err()
            .contains("MCP_TOKEN_"));
        assert!(read(json!({"url": "https://a.example/mcp", "bearer_token_secret": "prod/db"}))
            .unwrap_err()
            .contains("mcp/"));
        let secret = read(json!({"url": "https://a.example/mcp", "bearer_token_secret": "mcp/github"})).unwrap();
        assert_eq!(secret.token, Some(TokenSource::Secret("mcp/github".into())));
    }

    #[test]
    fn results_become_text_and_errors_tool_errors() {
        let text = json!({"content": [{"type": "text", "text": "3"}, {"type": "image", "mimeType": "image/png", "data": "AA"}]});
        assert_eq!(tool_result(&text).unwrap(), "3\n[image (image/png)]");
        assert_eq!(tool_result(&json!({"content": [], "structuredContent": {"sum": 3}})).unwrap(), "{\"sum\":3}");
        let failed = tool_result(&json!({"content": [{"type": "text", "text": "division by zero"}], "isError": true}));
        assert_eq!(failed.unwrap_err().to_string(), "division by zero");
    }
}
