//! The agents' tools: which ones an assistant has (read from either generation's config), what
//! the model is told about each, and calling them. Each tool is the service's documented HTTP
//! API, reached at an overridable base URL, with a timeout and a cap on what it returns.
//! A tool's output is data for the model to read; nothing in it is acted on here.

mod actions;
mod http;
mod services;

use std::sync::Arc;

use futures::future::join_all;
use serde_json::{json, Map, Value};

use crate::config::{Config, ToolSettings};
use crate::documents::{Library, TOP_K};
use crate::llm::ToolSpec;
use crate::model::validate::{FieldError, Loc};
use crate::model::{Message, ToolStatus};

pub use http::{UrlGuard, UrlRefused};

/// Every tool type OpenGPTs names, by its `type` tag (latest) and display name (both eras).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    ActionServer,
    Connery,
    DuckDuckGo,
    Tavily,
    TavilyAnswer,
    Retrieval,
    Arxiv,
    YouSearch,
    SecFilings,
    PressReleases,
    PubMed,
    Wikipedia,
    DallE,
}

/// (kind, `type` tag, display name, the seed era's name, description shown in the UI)
const KINDS: &[(ToolKind, &str, &str, Option<&str>, &str)] = &[
    (ToolKind::ActionServer, "action_server_by_sema4ai", "Action Server by Sema4.ai", None,
        "Run AI actions with [Sema4.ai Action Server](https://github.com/Sema4AI/actions)."),
    (ToolKind::Connery, "ai_action_runner_by_connery", "AI Action Runner by Connery", None,
        "Connect OpenGPTs to the real world with [Connery](https://github.com/connery-io/connery)."),
    (ToolKind::DuckDuckGo, "ddg_search", "DuckDuckGo Search", Some("DDG Search"),
        "Search the web with [DuckDuckGo](https://duckduckgo.com/) instant answers."),
    (ToolKind::Tavily, "search_tavily", "Search (Tavily)", Some("Search (Tavily)"),
        "Uses the [Tavily](https://app.tavily.com/) search engine. Includes sources in the response."),
    (ToolKind::TavilyAnswer, "search_tavily_answer", "Search (short answer, Tavily)", Some("Search (short answer, Tavily)"),
        "Uses the [Tavily](https://app.tavily.com/) search engine. This returns only the answer, no supporting evidence."),
    (ToolKind::Retrieval, "retrieval", "Retrieval", Some("Retrieval"), "Look up information in uploaded files."),
    (ToolKind::Arxiv, "arxiv", "Arxiv", Some("Arxiv"), "Searches [Arxiv](https://arxiv.org/)."),
    (ToolKind::YouSearch, "you_search", "You.com Search", Some("You.com Search"),
        "Uses [You.com](https://you.com/) search, optimized responses for LLMs."),
    (ToolKind::SecFilings, "sec_filings_kai_ai", "SEC Filings (Kay.ai)", Some("SEC Filings (Kay.ai)"),
        "Searches through SEC filings using [Kay.ai](https://www.kay.ai/)."),
    (ToolKind::PressReleases, "press_releases_kai_ai", "Press Releases (Kay.ai)", Some("Press Releases (Kay.ai)"),
        "Searches through press releases using [Kay.ai](https://www.kay.ai/)."),
    (ToolKind::PubMed, "pubmed", "PubMed", Some("PubMed"), "Searches [PubMed](https://pubmed.ncbi.nlm.nih.gov/)."),
    (ToolKind::Wikipedia, "wikipedia", "Wikipedia", Some("Wikipedia"), "Searches [Wikipedia](https://www.wikipedia.org/)."),
    (ToolKind::DallE, "dall_e", "Generate Image (Dall-E)", None,
        "Generates images from a text description using OpenAI's DALL-E model."),
];

impl ToolKind {
    fn entry(self) -> &'static (ToolKind, &'static str, &'static str, Option<&'static str>, &'static str) {
        KINDS.iter().find(|entry| entry.0 == self).expect("every kind is listed")
    }

    pub fn tag(self) -> &'static str {
        self.entry().1
    }

    pub fn display_name(self) -> &'static str {
        self.entry().2
    }

    pub fn description(self) -> &'static str {
        self.entry().4
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        KINDS.iter().find(|entry| entry.1 == tag).map(|entry| entry.0)
    }

    /// The seed era's name, for the tools it had.
    pub fn seed_name(self) -> Option<&'static str> {
        self.entry().3
    }

    pub fn from_seed_name(name: &str) -> Option<Self> {
        KINDS.iter().find(|entry| entry.3 == Some(name) || entry.2 == name).map(|entry| entry.0)
    }

    /// Whether this build offers the tool: Kay.ai's API is not available to build against.
    pub fn offered(self) -> bool {
        !matches!(self, ToolKind::SecFilings | ToolKind::PressReleases)
    }

    /// The tools of this build, in the order the assistant form lists them.
    pub fn all_offered() -> impl Iterator<Item = ToolKind> {
        KINDS.iter().map(|entry| entry.0).filter(|kind| kind.offered())
    }

    /// The seed era's names of the tools this build offers, for its checkbox list.
    pub fn seed_names() -> Vec<&'static str> {
        KINDS.iter().filter(|entry| entry.0.offered()).filter_map(|entry| entry.3).collect()
    }

    /// The fields of the tool's `config` the form asks for (user-hosted runners: their URL).
    pub fn config_fields(self) -> &'static [&'static str] {
        match self {
            ToolKind::ActionServer | ToolKind::Connery => &["url"],
            _ => &[],
        }
    }

    /// Whether one assistant may have several (runners at different URLs).
    pub fn multi_use(self) -> bool {
        matches!(self, ToolKind::ActionServer | ToolKind::Connery)
    }
}

/// One tool of an assistant, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredTool {
    pub kind: ToolKind,
    pub config: Map<String, Value>,
}

/// An assistant's agent settings, read from either generation's keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentConfig {
    pub tools: Vec<ConfiguredTool>,
    pub interrupt_before_action: bool,
    /// What the model is told the Retrieval tool is for.
    pub retrieval_description: Option<String>,
}

/// OpenGPTs' default description of the Retrieval tool, in its own words to the model.
pub const RETRIEVAL_DESCRIPTION: &str = "Can be used to look up information that was uploaded to this assistant.
If the user is referencing particular files, that is often a good hint that information may be here.
If the user asks a vague question, they are likely meaning to look up info from this retriever, and you should call it!";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolConfigError {
    #[error("'{key}' must be a list of tools")]
    NotAList { key: String },
    #[error("Tool {index} of '{key}' is not a known tool: {value}")]
    Unknown { key: String, index: usize, value: Value },
    #[error("The tool '{name}' is not available in this build")]
    NotOffered { key: String, index: usize, name: &'static str },
    #[error("The tool '{name}' needs {variable}, which this server does not have; set it, or remove the tool")]
    MissingKey { key: String, index: usize, name: &'static str, variable: &'static str },
    #[error("The tool '{name}' needs a 'url' in its config: {reason}")]
    BadUrl { key: String, index: usize, name: &'static str, reason: String },
    #[error("The tool '{name}' takes its key from the server's {variable}, never from the assistant's config: remove 'api_key'")]
    KeyInConfig { key: String, index: usize, name: &'static str, variable: &'static str },
    #[error("'{key}' must be true or false")]
    NotABoolean { key: String, value: Value },
    #[error("An assistant may have at most {limit} tools (MAX_TOOLS_PER_ASSISTANT); this one has {count}")]
    TooMany { key: String, count: usize, limit: usize },
}

impl ToolConfigError {
    /// The 422 entry, located at the offending key (and tool) of `config.configurable`.
    pub fn into_field_error(self) -> FieldError {
        let configurable = Loc::body().key("config").key("configurable");
        let (loc, input) = match &self {
            ToolConfigError::NotAList { key } => (configurable.key(key), Value::Null),
            ToolConfigError::TooMany { key, count, .. } => (configurable.key(key), Value::from(*count)),
            ToolConfigError::NotABoolean { key, value } => (configurable.key(key), value.clone()),
            ToolConfigError::Unknown { key, index, value } => (configurable.key(key).index(*index), value.clone()),
            ToolConfigError::NotOffered { key, index, name }
            | ToolConfigError::MissingKey { key, index, name, .. }
            | ToolConfigError::BadUrl { key, index, name, .. }
            | ToolConfigError::KeyInConfig { key, index, name, .. } => {
                (configurable.key(key).index(*index), Value::from(*name))
            }
        };
        FieldError::new("value_error", &loc, self.to_string(), &input)
    }
}

impl AgentConfig {
    /// The agent settings of a `configurable`, or `None` when the assistant is not an agent (a
    /// chatbot or a RAG bot; with no `type`, OpenGPTs' default, agent, applies).
    pub fn read(configurable: &Map<String, Value>) -> Result<Option<AgentConfig>, ToolConfigError> {
        match configurable.get("type").and_then(Value::as_str) {
            None | Some("agent") => {}
            Some(_) => return Ok(None),
        }
        let mut agent = AgentConfig::default();
        if let Some(tools) = configurable.get("type==agent/tools") {
            agent.tools = read_tools("type==agent/tools", tools, latest_tool)?;
        } else if let Some(tools) = configurable.get("tools") {
            agent.tools = read_tools("tools", tools, seed_tool)?;
        }
        let key = "type==agent/interrupt_before_action";
        agent.interrupt_before_action = match configurable.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => return Err(ToolConfigError::NotABoolean { key: key.into(), value: other.clone() }),
        };
        agent.retrieval_description = configurable
            .get("type==agent/retrieval_description")
            .and_then(Value::as_str)
            .filter(|text| !text.trim().is_empty())
            .map(str::to_string);
        Ok(Some(agent))
    }
}

fn read_tools(
    key: &str,
    tools: &Value,
    read: fn(&Value) -> Option<ConfiguredTool>,
) -> Result<Vec<ConfiguredTool>, ToolConfigError> {
    let Value::Array(items) = tools else {
        return Err(ToolConfigError::NotAList { key: key.into() });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            read(item).ok_or_else(|| ToolConfigError::Unknown { key: key.into(), index, value: item.clone() })
        })
        .collect()
}

/// The latest UI's `{id, type, name, description, config}`.
fn latest_tool(item: &Value) -> Option<ConfiguredTool> {
    let kind = ToolKind::from_tag(item.get("type")?.as_str()?)?;
    let config = item.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
    Some(ConfiguredTool { kind, config })
}

/// The seed UI's display names.
fn seed_tool(item: &Value) -> Option<ConfiguredTool> {
    Some(ConfiguredTool { kind: ToolKind::from_seed_name(item.as_str()?)?, config: Map::new() })
}

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
        let client = reqwest::Client::builder()
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
            _ => Ok(()),
        }
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
    /// cannot be reached fails the run with a message naming it.
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
