//! MCP's Streamable HTTP transport, client side: JSON-RPC requests POSTed to the server's one
//! URL, each answered by a JSON body or by an event stream that ends with the answer. The
//! protocol is spoken here through the HTTP client every function already carries: the official
//! SDK (`rmcp`) with its transport would add more to the functions' zips than they have left
//! under 5 MB (docs/langgraph.md says more).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use super::http::describe;
use super::ToolError;
use crate::llm::sse_client::take_event;

/// Request ids, unique in the process: calls in one session may be in flight together, and a
/// server tells their answers apart by id.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long the end of an answered event stream is waited for, to keep its connection.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The protocol version asked for; the server's answer decides.
const PROTOCOL_VERSION: &str = "2025-06-18";

/// A session the server opened (its `Mcp-Session-Id`, if it keeps sessions) and the version agreed.
#[derive(Debug, Clone)]
pub struct Session {
    id: Option<String>,
    version: String,
}

/// How one server is reached: its URL, the headers every request carries (a bearer token among
/// them), and the cap on an answer's size.
pub struct Endpoint<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a url::Url,
    pub headers: &'a [(String, String)],
    pub max_bytes: usize,
    /// How the server is named in errors: its host.
    pub name: &'a str,
}

/// Why a request failed: a session the server no longer knows is worth opening again.
pub enum WireError {
    SessionGone,
    Failed(ToolError),
}

impl From<ToolError> for WireError {
    fn from(error: ToolError) -> Self {
        WireError::Failed(error)
    }
}

impl Endpoint<'_> {
    fn failed(&self, what: impl std::fmt::Display) -> ToolError {
        ToolError::Failed(format!("the MCP server {} {what}", self.name))
    }

    /// `initialize`, then the `initialized` notification.
    pub fn open(&self) -> futures::future::BoxFuture<'_, Result<Session, ToolError>> {
        Box::pin(self.handshake())
    }

    async fn handshake(&self) -> Result<Session, ToolError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "opengpts-serverless", "version": env!("CARGO_PKG_VERSION")},
        });
        let (result, id) = match self.post(None, "initialize", Some(params)).await {
            Ok(answer) => answer,
            Err(WireError::SessionGone) => return Err(self.failed("refused to open a session (HTTP 404)")),
            Err(WireError::Failed(error)) => return Err(error),
        };
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION);
        let session = Session { id, version: version.to_string() };
        match self.post(Some(&session), "notifications/initialized", None).await {
            Ok(_) | Err(WireError::SessionGone) => Ok(session),
            Err(WireError::Failed(error)) => Err(error),
        }
    }

    /// Sends one request (or a notification, `notifications/…`) and reads its answer: the result
    /// and the session the server names. Boxed: each call site would otherwise carry a copy of
    /// the whole exchange in its own future, in every function that runs tools.
    pub fn post<'a>(
        &'a self,
        session: Option<&'a Session>,
        method: &'a str,
        params: Option<Value>,
    ) -> futures::future::BoxFuture<'a, Result<(Value, Option<String>), WireError>> {
        Box::pin(self.exchange(session, method, params))
    }

    async fn exchange(
        &self,
        session: Option<&Session>,
        method: &str,
        params: Option<Value>,
    ) -> Result<(Value, Option<String>), WireError> {
        let notification = method.starts_with("notifications/");
        let mut body = json!({"jsonrpc": "2.0", "method": method});
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if !notification {
            body["id"] = json!(id);
        }
        if let Some(params) = params {
            body["params"] = params;
        }
        let mut request =
            self.client.post(self.url.clone()).header("accept", "application/json, text/event-stream").json(&body);
        for (name, value) in self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(session) = session {
            request = request.header("mcp-protocol-version", &session.version);
            if let Some(id) = &session.id {
                request = request.header("mcp-session-id", id);
            }
        }
        let response =
            request.send().await.map_err(|error| self.failed(format!("could not be reached: {}", describe(&error))))?;
        let status = response.status();
        if status.as_u16() == 404 && session.and_then(|session| session.id.as_ref()).is_some() {
            return Err(WireError::SessionGone);
        }
        let session_id = response.headers().get("mcp-session-id").and_then(|id| id.to_str().ok()).map(str::to_string);
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if !status.is_success() {
            let said = self.read(response).await.unwrap_or_default();
            let said: String = said.chars().take(200).collect();
            return Err(self.failed(format!("answered HTTP {}: {}", status.as_u16(), said.trim())).into());
        }
        if notification {
            return Ok((Value::Null, session_id));
        }
        let message =
            if streamed { self.answer_in_stream(response, id).await? } else { self.json(&self.read(response).await?)? };
        match (message.get("result"), message.get("error")) {
            (Some(result), _) => Ok((result.clone(), session_id)),
            (None, Some(error)) => {
                let text = error.get("message").and_then(Value::as_str).unwrap_or("no reason given");
                Err(self.failed(format!("refused {method}: {text}")).into())
            }
            (None, None) => Err(self.failed(format!("answered {method} with neither a result nor an error")).into()),
        }
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<String, ToolError> {
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|error| self.failed(format!("broke off its answer: {error}")))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.failed(format!("answered with more than {} bytes", self.max_bytes)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn json(&self, text: &str) -> Result<Value, ToolError> {
        serde_json::from_str(text).map_err(|error| self.failed(format!("sent something that is not JSON: {error}")))
    }

    /// The answer among the stream's messages (the server may send notifications first).
    async fn answer_in_stream(&self, mut response: reqwest::Response, id: u64) -> Result<Value, ToolError> {
        let mut buffer = BytesMut::new();
        let mut read = 0;
        loop {
            while let Some(event) = take_event(&mut buffer) {
                let message = self.json(&event.data)?;
                if message.get("id") == Some(&json!(id))
                    && (message.get("result").is_some() || message.get("error").is_some())
                {
                    // The server ends the stream after its answer; read to that end elsewhere, so
                    // the connection goes back to the pool without holding up the call.
                    tokio::spawn(tokio::time::timeout(DRAIN, async move {
                        while let Ok(Some(_)) = response.chunk().await {}
                    }));
                    return Ok(message);
                }
            }
            let chunk =
                response.chunk().await.map_err(|error| self.failed(format!("broke off its answer: {error}")))?;
            let Some(chunk) = chunk else {
                return Err(self.failed("ended its event stream without an answer"));
            };
            read += chunk.len();
            if read > self.max_bytes {
                return Err(self.failed(format!("answered with more than {} bytes", self.max_bytes)));
            }
            buffer.extend_from_slice(&chunk);
        }
    }
}
