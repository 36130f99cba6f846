//! Which tools exist, and how an assistant's config names them in either generation: the
//! latest UI's tool objects under `type==agent/tools`, the seed UI's display names under `tools`.

use serde_json::{Map, Value};

use crate::model::validate::{FieldError, Loc};

/// Every tool type OpenGPTs names, by its `type` tag (latest) and display name (both eras).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    ActionServer,
    Connery,
    Mcp,
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
    (ToolKind::Mcp, "mcp_server", "MCP Server", None,
        "Tools from an [MCP](https://modelcontextprotocol.io) server, reached at its Streamable HTTP URL."),
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

    /// The fields of the tool's `config` the form asks for (user-hosted runners and MCP
    /// servers: their URL).
    pub fn config_fields(self) -> &'static [&'static str] {
        match self {
            ToolKind::ActionServer | ToolKind::Connery | ToolKind::Mcp => &["url"],
            _ => &[],
        }
    }

    /// The fields of the tool's `config` the form offers and may be left blank.
    pub fn optional_config_fields(self) -> &'static [&'static str] {
        match self {
            ToolKind::Mcp => &["tools", "bearer_token_env", "bearer_token_secret"],
            _ => &[],
        }
    }

    /// Whether one assistant may have several (runners and servers at different URLs).
    pub fn multi_use(self) -> bool {
        matches!(self, ToolKind::ActionServer | ToolKind::Connery | ToolKind::Mcp)
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
    /// The stop before the tools puts the calls to the user as a review (approve, edit or
    /// reject each), the `interrupt()` value LangGraph's agent-chat-ui renders. It implies the stop.
    pub tool_review: bool,
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
    #[error("The tool '{name}' is misconfigured: {reason}")]
    Misconfigured { key: String, index: usize, name: &'static str, reason: String },
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
            | ToolConfigError::Misconfigured { key, index, name, .. }
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
        agent.interrupt_before_action = flag(configurable, "type==agent/interrupt_before_action")?;
        agent.tool_review = flag(configurable, "type==agent/tool_review")?;
        agent.retrieval_description = configurable
            .get("type==agent/retrieval_description")
            .and_then(Value::as_str)
            .filter(|text| !text.trim().is_empty())
            .map(str::to_string);
        Ok(Some(agent))
    }
}

fn flag(configurable: &Map<String, Value>, key: &str) -> Result<bool, ToolConfigError> {
    match configurable.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(ToolConfigError::NotABoolean { key: key.into(), value: other.clone() }),
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
