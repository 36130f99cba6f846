//! The MCP server the tests' agents take tools from: `tests/mcp/tool_server.py`, on the official
//! Python SDK over Streamable HTTP, as its own process for as long as the value lives.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct McpToolServer {
    child: Child,
    /// Its Streamable HTTP URL; `private_url` wants the bearer token `token`.
    pub url: String,
    pub private_url: String,
    pub token: String,
}

impl McpToolServer {
    pub fn start() -> Self {
        let script = format!("{}/mcp/tool_server.py", env!("CARGO_MANIFEST_DIR"));
        let token = uuid::Uuid::new_v4().to_string();
        let mut child = Command::new("python")
            .arg(script)
            .env("MCP_TOOL_SERVER_TOKEN", &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python on PATH: run `make test`, which puts the test tools' virtualenv there");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its output")).read_line(&mut line).expect("its first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the MCP server did not start: {line:?}"));
        McpToolServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            private_url: format!("http://127.0.0.1:{port}/private/mcp"),
            token,
        }
    }
}

impl Drop for McpToolServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
