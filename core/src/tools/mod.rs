//! The agents' tools: which ones an assistant has (read from either generation's config), what
//! the model is told about each, and calling them. Each tool is the service's documented HTTP
//! API, reached at an overridable base URL, with a timeout and a cap on what it returns.
//! A tool's output is data for the model to read; nothing in it is acted on here.

mod actions;
mod http;
mod mcp;
mod mcp_wire;
mod registry;
mod services;

use std::sync::Arc;

use futures::future::join_all;
use serde_json::{json, Map, Value};

use crate::config::{Config, ToolSettings};
use crate::documents::{Library, TOP_K};
use crate::llm::ToolSpec;
use crate::model::{Message, ToolStatus};

#[cfg(feature = "runs")]
pub(crate) use http::describe as describe_request_error;
pub use http::{UrlGuard, UrlRefused};
pub use registry::{AgentConfig, ConfiguredTool, ToolConfigError, ToolKind, RETRIEVAL_DESCRIPTION};

/// The tools of this process: one HTTP client, the services' settings and keys.
#[derive(Clone)]
pub struct Toolbox {
    inner: Arc<ToolboxInner>,
}

struct ToolboxInner {
    /// For the fixed services the operator configured.
    client: reqwest::Client,
    /// For URLs users configure: it reaches no private address and follows no redirect unchecked.
    guarded: reqwest::Client,
    guard: UrlGuard,
    settings: ToolSettings,
    library: Library,
    openai_api_key: Option<crate::config::Secret>,
    openai_base_url: String,
    /// `MAX_TOOLS_PER_ASSISTANT`: each tool is described to the model on every call.
    max_tools: usize,
    mcp: mcp::McpServers,
}

/// What one tool call returned: the content the model reads, and whether it worked.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub content: String,
    pub status: ToolStatus,
}

/// Why a tool call failed; the tool message says it to the model.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Failed(String),
    #[error("the call took longer than {0} s")]
    TimedOut(u64),
}

/// A callable tool: what the model sees, and how to call it.
#[derive(Debug, Clone)]
pub struct BoundTool {
    pub spec: ToolSpec,
    call: Call,
}

#[derive(Debug, Clone)]
enum Call {
    Service(ToolKind),
    Connery {
        runner: url::Url,
        action_id: String,
    },
    /// The files of the run's assistant and thread.
    Retrieval {
        namespaces: Vec<uuid::Uuid>,
    },
    ActionServer {
        url: url::Url,
    },
    Mcp(mcp::McpCall),
}

/// The tools of one run.
#[derive(Clone)]
pub struct AgentTools {
    toolbox: Toolbox,
    tools: Vec<BoundTool>,
}

impl Toolbox {
    pub fn new(config: &Config, library: Library) -> Self {
        let settings = config.tools.clone();
        let user_agent = concat!("opengpts-serverless/", env!("CARGO_PKG_VERSION"));
        let client = crate::config::http_client()
            .user_agent(user_agent)
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let guard = UrlGuard::new(settings.url_allowlist.clone());
        let guarded = guard.client(user_agent);
        Toolbox {
            inner: Arc::new(ToolboxInner {
                client,
                guarded,
                guard,
                settings,
                library,
                openai_api_key: config.providers.openai_api_key.clone(),
                openai_base_url: config.providers.openai_base_url.clone(),
                max_tools: config.limits.max_tools_per_assistant,
                mcp: mcp::McpServers::default(),
            }),
        }
    }

    /// Checks an assistant's tools when it is saved: each known and offered, its key present on
    /// this server, its URL one that may be reached.
    pub fn check_config(&self, config: &Map<String, Value>) -> Result<(), ToolConfigError> {
        let Some(configurable) = config.get("configurable").and_then(Value::as_object) else {
            return Ok(());
        };
        self.agent_config(configurable).map(|_| ())
    }

    /// The agent settings of a run's `configurable`, checked as `check_config` does.
    pub fn agent_config(&self, configurable: &Map<String, Value>) -> Result<Option<AgentConfig>, ToolConfigError> {
        let Some(agent) = AgentConfig::read(configurable)? else {
            return Ok(None);
        };
        let key = if configurable.contains_key("type==agent/tools") { "type==agent/tools" } else { "tools" };
        if agent.tools.len() > self.inner.max_tools {
            return Err(ToolConfigError::TooMany {
                key: key.into(),
                count: agent.tools.len(),
                limit: self.inner.max_tools,
            });
        }
        for (index, tool) in agent.tools.iter().enumerate() {
            self.check_tool(key, index, tool)?;
        }
        Ok(Some(agent))
    }

    /// The variable a tool of `kind` needs and this server lacks, if any (a runner's URL, which
    /// each assistant gives, aside).
    pub fn missing_variable(&self, kind: ToolKind) -> Option<&'static str> {
        let settings = &self.inner.settings;
        match kind {
            ToolKind::Tavily | ToolKind::TavilyAnswer if settings.tavily_api_key.is_none() => Some("TAVILY_API_KEY"),
            ToolKind::YouSearch if settings.you_api_key.is_none() => Some("YDC_API_KEY"),
            ToolKind::DallE if self.inner.openai_api_key.is_none() => Some("OPENAI_API_KEY"),
            ToolKind::Connery if settings.connery_runner_api_key.is_none() => Some("CONNERY_RUNNER_API_KEY"),
            _ => None,
        }
    }

    fn check_tool(&self, key: &str, index: usize, tool: &ConfiguredTool) -> Result<(), ToolConfigError> {
        let name = tool.kind.display_name();
        let missing = |variable| ToolConfigError::MissingKey { key: key.into(), index, name, variable };
        match tool.kind {
            ToolKind::SecFilings | ToolKind::PressReleases => {
                Err(ToolConfigError::NotOffered { key: key.into(), index, name })
            }
            ToolKind::Tavily | ToolKind::TavilyAnswer | ToolKind::YouSearch | ToolKind::DallE
                if self.missing_variable(tool.kind).is_some() =>
            {
                Err(missing(self.missing_variable(tool.kind).unwrap_or_default()))
            }
            ToolKind::Connery | ToolKind::ActionServer => {
                let variable =
                    if tool.kind == ToolKind::Connery { "CONNERY_RUNNER_API_KEY" } else { "ACTION_SERVER_API_KEY" };
                if tool.config.contains_key("api_key") {
                    return Err(ToolConfigError::KeyInConfig { key: key.into(), index, name, variable });
                }
                if let Some(variable) = self.missing_variable(tool.kind) {
                    return Err(missing(variable));
                }
                self.runner_url(tool).map(|_| ()).map_err(|reason| ToolConfigError::BadUrl {
                    key: key.into(),
                    index,
                    name,
                    reason,
                })
            }
            ToolKind::Mcp => self.mcp_server(tool).map(|_| ()).map_err(|reason| ToolConfigError::Misconfigured {
                key: key.into(),
                index,
                name,
                reason,
            }),
            _ => Ok(()),
        }
    }

    fn mcp_server(&self, tool: &ConfiguredTool) -> Result<mcp::McpServer, String> {
        mcp::McpServer::read(&tool.config, &self.inner.guard, &self.inner.settings.mcp)
    }

    /// A runner's URL: the tool's `url`, or for Connery the server's `CONNERY_RUNNER_URL`.
    fn runner_url(&self, tool: &ConfiguredTool) -> Result<url::Url, String> {
        let configured = tool.config.get("url").and_then(Value::as_str).filter(|url| !url.trim().is_empty());
        let fallback =
            (tool.kind == ToolKind::Connery).then(|| self.inner.settings.connery_runner_url.as_deref()).flatten();
        let text = configured.or(fallback).ok_or_else(|| "no URL is set".to_string())?;
        let url = url::Url::parse(text.trim()).map_err(|error| format!("'{text}' is not a URL ({error})"))?;
        self.inner.guard.check(&url).map_err(|refused| refused.to_string())?;
        Ok(url)
    }

    /// The tools a run may call; Retrieval searches the files of `namespaces` (the run's
    /// assistant and thread). User-hosted runners are asked for their actions now; one that
    /// cannot be reached fails the run with a message naming it. An MCP server that cannot list
    /// its tools leaves them out, and the run goes on.
    pub async fn bind(&self, agent: &AgentConfig, namespaces: &[uuid::Uuid]) -> Result<AgentTools, ToolError> {
        let mut tools = Vec::new();
        for tool in agent.tools.iter().filter(|tool| tool.kind.offered()) {
            match tool.kind {
                ToolKind::Connery => {
                    let runner = self.runner_url(tool).map_err(ToolError::Failed)?;
                    tools.extend(actions::connery_tools(self, &runner).await?);
                }
                ToolKind::ActionServer => {
                    let url = self.runner_url(tool).map_err(ToolError::Failed)?;
                    tools.extend(actions::action_server_tools(self, &url).await?);
                }
                ToolKind::Mcp => {
                    let server = self.mcp_server(tool).map_err(ToolError::Failed)?;
                    // Boxed: its future nests deep within a run's.
                    tools.extend(Box::pin(self.mcp_tools(server)).await);
                }
                ToolKind::Retrieval => {
                    let description = agent.retrieval_description.as_deref().unwrap_or(RETRIEVAL_DESCRIPTION);
                    tools.push(BoundTool {
                        spec: ToolSpec {
                            name: "Retriever".into(),
                            description: description.to_string(),
                            parameters: json!({
                                "properties": {"query": {"description": "query to look up in retriever", "type": "string"}},
                                "required": ["query"],
                                "type": "object",
                            }),
                        },
                        call: Call::Retrieval { namespaces: namespaces.to_vec() },
                    })
                }
                kind => tools.push(BoundTool { spec: services::spec(kind), call: Call::Service(kind) }),
            }
        }
        // A tool listed twice is offered once: models refuse duplicate function names.
        let mut seen = std::collections::HashSet::new();
        tools.retain(|tool| seen.insert(tool.spec.name.clone()));
        Ok(AgentTools { toolbox: self.clone(), tools })
    }

    /// The tools of a run that has none: every call it is asked for is answered as unknown.
    pub fn none(&self) -> AgentTools {
        AgentTools { toolbox: self.clone(), tools: Vec::new() }
    }

    pub fn settings(&self) -> &ToolSettings {
        &self.inner.settings
    }
}

impl AgentTools {
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|tool| tool.spec.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Runs the AI message's tool calls at once and answers each with a tool message, in the
    /// calls' order. A failing, slow or unknown tool gives an error message; it never fails the run.
    pub async fn run(&self, ai: &Message) -> Vec<Message> {
        join_all(ai.tool_calls.iter().map(|call| self.run_one(call))).await
    }

    async fn run_one(&self, call: &Value) -> Message {
        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
        let outcome = match self.tools.iter().find(|tool| tool.spec.name == name) {
            None => {
                let names: Vec<&str> = self.tools.iter().map(|tool| tool.spec.name.as_str()).collect();
                ToolOutcome {
                    content: format!("{name} is not a valid tool, try one of [{}].", names.join(", ")),
                    status: ToolStatus::Error,
                }
            }
            Some(tool) => {
                let settings = self.toolbox.settings();
                let started = std::time::Instant::now();
                let result = tokio::time::timeout(settings.timeout, self.call(tool, &args))
                    .await
                    .unwrap_or(Err(ToolError::TimedOut(settings.timeout.as_secs())));
                tracing::info!(
                    tool = name,
                    ok = result.is_ok(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "tool called"
                );
                match result {
                    Ok(content) => {
                        ToolOutcome { content: cap(content, settings.max_output_chars), status: ToolStatus::Success }
                    }
                    Err(error) => {
                        ToolOutcome { content: format!("The tool {name} failed: {error}"), status: ToolStatus::Error }
                    }
                }
            }
        };
        Message::tool_result(name, id, outcome.content, outcome.status)
    }

    async fn call(&self, tool: &BoundTool, args: &Value) -> Result<String, ToolError> {
        match &tool.call {
            Call::Service(kind) => services::call(&self.toolbox, *kind, args).await,
            Call::Connery { runner, action_id } => actions::run_connery(&self.toolbox, runner, action_id, args).await,
            Call::ActionServer { url } => actions::run_action_server(&self.toolbox, url, args).await,
            Call::Mcp(call) => Box::pin(self.toolbox.run_mcp(call, args)).await,
            Call::Retrieval { namespaces } => {
                let found = self.toolbox.inner.library.search(namespaces, query(args)?, TOP_K).await;
                let found = found.map_err(|error| ToolError::Failed(error.to_string()))?;
                let texts: Vec<&str> = found.iter().map(|chunk| chunk.text.as_str()).collect();
                Ok(if texts.is_empty() { "No uploaded file matches the query.".into() } else { texts.join("\n\n") })
            }
        }
    }
}

/// Cuts a tool's answer to `max` characters, saying so, so one tool cannot flood the model.
fn cap(content: String, max: usize) -> String {
    match content.char_indices().nth(max) {
        None => content,
        Some((cut, _)) => format!(
            "{}\n[cut: the tool returned {} characters; the first {max} are shown]",
            &content[..cut],
            content.chars().count()
        ),
    }
}

/// The `query` argument every search tool takes.
fn query(args: &Value) -> Result<&str, ToolError> {
    args.get("query")
        .and_then(Value::as_str)
        .filter(|query| !query.trim().is_empty())
        .ok_or_else(|| ToolError::Failed("the argument 'query' (a non-empty string) is missing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configurable(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn reads_both_generations_and_only_agents() {
        let latest = configurable(json!({"type": "agent", "type==agent/interrupt_before_action": true,
            "type==agent/tools": [{"id": "x", "type": "wikipedia", "name": "Wikipedia", "description": "", "config": {}}]}));
        let agent = AgentConfig::read(&latest).unwrap().unwrap();
        assert_eq!(agent.tools[0].kind, ToolKind::Wikipedia);
        assert!(agent.interrupt_before_action);
        let seed = configurable(json!({"agent_type": "GPT 4", "tools": ["DDG Search", "Arxiv"]}));
        let kinds: Vec<ToolKind> = AgentConfig::read(&seed).unwrap().unwrap().tools.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [ToolKind::DuckDuckGo, ToolKind::Arxiv]);
        let chatbot = configurable(json!({"type": "chatbot", "type==agent/tools": [{"type": "wikipedia"}]}));
        assert_eq!(AgentConfig::read(&chatbot).unwrap(), None);
    }

    #[test]
    fn unknown_tools_and_missing_keys_name_what_is_wrong() {
        let config = Config::defaults();
        let library = Library::new(
            std::sync::Arc::new(crate::store::MemoryStore::new()),
            std::sync::Arc::new(crate::documents::OfflineEmbedder),
        );
        let toolbox = Toolbox::new(&config, library);
        let config = |tools: Value| configurable(json!({"configurable": {"type==agent/tools": tools}}));
        let error = toolbox.check_config(&config(json!([{"type": "python_repl"}]))).unwrap_err().into_field_error();
        assert_eq!(error.loc.last(), Some(&json!(0)));
        let error =
            toolbox.check_config(&config(json!([{"type": "wikipedia"}, {"type": "search_tavily"}]))).unwrap_err();
        assert!(error.to_string().contains("TAVILY_API_KEY"), "{error}");
        let runner = json!([{"type": "action_server_by_sema4ai", "config": {"url": "http://169.254.169.254/latest"}}]);
        let error = toolbox.check_config(&config(runner)).unwrap_err();
        assert!(error.to_string().contains("169.254.169.254"), "{error}");
    }

    #[test]
    fn long_answers_are_cut_and_say_so() {
        assert_eq!(cap("short".into(), 10), "short");
        let cut = cap("é".repeat(20), 5);
        assert!(cut.starts_with("ééééé\n[cut: the tool returned 20 characters"), "{cut}");
    }
}
