//! Webhooks: when a run that named one ends (success, error or interrupted), one POST of the
//! run, as the LangGraph API shows it, with the thread's final `values` or the run's `error`.
//!
//! The URL passes the guard of tools' URLs (no loopback, private, link-local or metadata
//! addresses unless `TOOL_URL_ALLOWLIST` names the host), when the run is asked for and again as
//! the name resolves. The body is signed with `WEBHOOK_SECRET`: `x-opengpts-signature:
//! sha256=<hex of HMAC-SHA256(secret, body)>`. A receiver answering 5xx, or not in time, gets
//! up to three tries in all; nothing it does changes the run.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{Secret, WebhookSettings};
use crate::model::{Run, RunStatus};
use crate::tools::UrlGuard;

pub const SIGNATURE_HEADER: &str = "x-opengpts-signature";
const TRIES: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Webhooks {
    guard: UrlGuard,
    client: reqwest::Client,
    secret: Option<Secret>,
    timeout: Duration,
}

impl Webhooks {
    pub fn new(settings: &WebhookSettings, allowlist: Vec<String>) -> Self {
        let guard = UrlGuard::new(allowlist);
        let client = guard.client(concat!("opengpts-serverless-webhooks/", env!("CARGO_PKG_VERSION")));
        Webhooks { guard, client, secret: settings.secret.clone(), timeout: settings.timeout }
    }

    /// A webhook URL as a request names it: what can be refused before the run starts is.
    pub fn check(&self, url: &str) -> Result<url::Url, String> {
        let parsed = url::Url::parse(url).map_err(|error| format!("webhook '{url}' is not a URL: {error}"))?;
        self.guard.check(&parsed).map_err(|refused| format!("webhook {refused}"))?;
        Ok(parsed)
    }

    /// Posts the ended `run` to `url`, with `values` (the thread's state) when it did not fail.
    /// Failures are logged with the run's id, never returned: the run's outcome is settled.
    pub async fn deliver(&self, url: &str, run: &Run, values: Option<Value>) {
        let mut payload = serde_json::to_value(super::GraphRun(run)).unwrap_or_default();
        match (run.status, values) {
            (RunStatus::Error, _) => payload["error"] = json!(run.error.clone().unwrap_or_default()),
            (_, Some(values)) => payload["values"] = values,
            _ => {}
        }
        let body = payload.to_string().into_bytes();
        let url = match self.check(url) {
            Ok(url) => url,
            Err(refused) => return tracing::warn!(run_id = %run.run_id, %refused, "webhook not sent"),
        };
        let mut pause = FIRST_PAUSE;
        for attempt in 1..=TRIES {
            let mut request = self
                .client
                .post(url.clone())
                .timeout(self.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(secret) = &self.secret {
                request = request.header(SIGNATURE_HEADER, signature(secret.expose().as_bytes(), &body));
            }
            let retry = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return tracing::info!(run_id = %run.run_id, attempt, "webhook delivered");
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::warn!(run_id = %run.run_id, attempt, status = status.as_u16(), "webhook refused");
                    status.is_server_error()
                }
                Err(error) => {
                    let error = crate::tools::describe_request_error(&error);
                    tracing::warn!(run_id = %run.run_id, attempt, %error, "webhook failed");
                    true
                }
            };
            if !retry || attempt == TRIES {
                return tracing::error!(run_id = %run.run_id, attempts = attempt, "webhook given up");
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
}

/// What `x-opengpts-signature` carries for `body`: `sha256=` and the hex of its HMAC-SHA256.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn signs_as_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
