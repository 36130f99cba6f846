//! The agents' tools: the services' addresses and keys, the bounds on every call, and how MCP
//! servers are reached.

use std::time::Duration;

use super::{ConfigError, Env, Secret};

/// The agents' tools: where each service is, its key, and the bounds on every call.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    pub timeout: Duration,
    /// A tool's answer is cut to this many characters before the model reads it.
    pub max_output_chars: usize,
    /// A service's response body may not be larger.
    pub max_response_bytes: usize,
    /// Hosts that user-configured tool URLs may reach although they are loopback, link-local or
    /// private (`TOOL_URL_ALLOWLIST`, comma-separated host names or addresses).
    pub url_allowlist: Vec<String>,
    pub wikipedia_url: String,
    pub duckduckgo_url: String,
    pub tavily_url: String,
    pub tavily_api_key: Option<Secret>,
    pub arxiv_url: String,
    pub pubmed_url: String,
    pub you_url: String,
    pub you_api_key: Option<Secret>,
    pub connery_runner_url: Option<String>,
    pub connery_runner_api_key: Option<Secret>,
    pub action_server_api_key: Option<Secret>,
    pub mcp: McpSettings,
}

/// MCP servers that assistants name: their tool lists are kept per process for `tools_cache`;
/// a bearer token is named, never stored, and may only be a variable `MCP_TOKEN_*` of this
/// server or a Secrets Manager secret under `secret_prefix`, so an assistant cannot send the
/// server's other credentials to a URL of its choosing.
#[derive(Debug, Clone)]
pub struct McpSettings {
    pub tools_cache: Duration,
    pub secret_prefix: String,
}

/// The prefix of the variables an MCP server's bearer token may be read from.
pub const MCP_TOKEN_VARIABLE_PREFIX: &str = "MCP_TOKEN_";

pub(super) fn read(env: &Env) -> Result<ToolSettings, ConfigError> {
    Ok(ToolSettings {
        timeout: Duration::from_secs(env.parse("TOOL_TIMEOUT_SECONDS", 30)?),
        max_output_chars: env.parse("TOOL_OUTPUT_MAX_CHARS", 8000)?,
        max_response_bytes: env.parse("TOOL_RESPONSE_MAX_BYTES", 2 << 20)?,
        url_allowlist: env
            .text("TOOL_URL_ALLOWLIST")
            .map(|hosts| hosts.split(',').map(|h| h.trim().to_lowercase()).filter(|h| !h.is_empty()).collect())
            .unwrap_or_default(),
        wikipedia_url: env.text("WIKIPEDIA_API_URL").unwrap_or_else(|| "https://en.wikipedia.org/w/api.php".into()),
        duckduckgo_url: env.text("DUCKDUCKGO_API_URL").unwrap_or_else(|| "https://api.duckduckgo.com".into()),
        tavily_url: env.text("TAVILY_API_URL").unwrap_or_else(|| "https://api.tavily.com".into()),
        tavily_api_key: env.secret("TAVILY_API_KEY"),
        arxiv_url: env.text("ARXIV_API_URL").unwrap_or_else(|| "https://export.arxiv.org/api/query".into()),
        pubmed_url: env
            .text("PUBMED_API_URL")
            .unwrap_or_else(|| "https://eutils.ncbi.nlm.nih.gov/entrez/eutils".into()),
        you_url: env.text("YDC_API_URL").unwrap_or_else(|| "https://api.ydc-index.io".into()),
        you_api_key: env.secret("YDC_API_KEY"),
        connery_runner_url: env.text("CONNERY_RUNNER_URL"),
        connery_runner_api_key: env.secret("CONNERY_RUNNER_API_KEY"),
        action_server_api_key: env.secret("ACTION_SERVER_API_KEY"),
        mcp: McpSettings {
            tools_cache: Duration::from_secs(env.parse("MCP_TOOLS_CACHE_SECONDS", 300)?),
            secret_prefix: env.text("MCP_SECRET_PREFIX").unwrap_or_else(|| "mcp/".into()),
        },
    })
}
