//! Reaching tools' services: responses read up to a size cap, and URLs that users configure
//! kept away from this server's own network. Such a URL may not reach loopback, link-local (the
//! instance metadata address among them), private or other non-public addresses, unless the
//! operator's allowlist names its host. Names are checked as they resolve, for every connection
//! (so a name that later resolves elsewhere is caught), and every redirect is checked too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::ToolError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{url} may not be reached: {reason}")]
pub struct UrlRefused {
    pub url: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct UrlGuard {
    allowlist: Arc<Vec<String>>,
}

impl UrlGuard {
    pub fn new(allowlist: Vec<String>) -> Self {
        UrlGuard { allowlist: Arc::new(allowlist) }
    }

    fn allowed_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_lowercase();
        self.allowlist.contains(&host)
    }

    /// What can be told from the URL alone: the scheme, and an address written in it.
    pub fn check(&self, url: &url::Url) -> Result<(), UrlRefused> {
        let refuse = |reason: &str| UrlRefused { url: url.to_string(), reason: reason.into() };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("only http and https URLs are allowed"));
        }
        let host = url.host().ok_or_else(|| refuse("it has no host"))?;
        if self.allowed_host(&host.to_string()) {
            return Ok(());
        }
        let address = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        match address.and_then(non_public) {
            Some(kind) => {
                Err(refuse(&format!("{kind} addresses are not allowed (TOOL_URL_ALLOWLIST can permit a host)")))
            }
            None => Ok(()),
        }
    }

    /// A client for user-configured URLs: names resolve through the guard, redirects are
    /// checked, at most 5 followed.
    pub fn client(&self, user_agent: &str) -> reqwest::Client {
        let redirects = self.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match redirects.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        crate::config::http_client()
            .user_agent(user_agent)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(policy)
            .dns_resolver(Arc::new(self.clone()))
            .build()
            .unwrap_or_default()
    }
}

impl reqwest::dns::Resolve for UrlGuard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.allowed_host(&host) {
                return Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs);
            }
            if let Some(kind) = addresses.iter().find_map(|address| non_public(address.ip())) {
                let reason = format!(
                    "{host} resolves to a {kind} address, which is not allowed (TOOL_URL_ALLOWLIST can permit it)"
                );
                return Err(reason.into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("private")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 || a >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("reserved")
            } else {
                None
            }
        }
    }
}

/// Sends a service request and reads its body up to `max_bytes`; a non-2xx answer is an error
/// that names the service and quotes the start of what it said.
pub async fn fetch(service: &str, request: reqwest::RequestBuilder, max_bytes: usize) -> Result<String, ToolError> {
    let mut response = request
        .send()
        .await
        .map_err(|error| ToolError::Failed(format!("{service} could not be reached: {}", describe(&error))))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|error| ToolError::Failed(format!("{service} broke off its answer: {error}")))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(ToolError::Failed(format!("{service} answered with more than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        let said: String = text.chars().take(200).collect();
        return Err(ToolError::Failed(format!("{service} answered HTTP {}: {}", status.as_u16(), said.trim())));
    }
    Ok(text)
}

/// The cause of a request error, down to the guard's refusal, without the URL (its query may
/// hold a key).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Fetches a service's JSON answer.
pub async fn fetch_json(
    service: &str,
    request: reqwest::RequestBuilder,
    max_bytes: usize,
) -> Result<serde_json::Value, ToolError> {
    json(service, &fetch(service, request, max_bytes).await?)
}

fn json(service: &str, text: &str) -> Result<serde_json::Value, ToolError> {
    serde_json::from_str(text)
        .map_err(|error| ToolError::Failed(format!("{service} sent something that is not JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_refused_unless_allowed() {
        let guard = UrlGuard::new(vec!["127.0.0.1".into()]);
        let check = |url: &str| guard.check(&url::Url::parse(url).unwrap());
        assert!(check("http://169.254.169.254/latest/meta-data").unwrap_err().reason.contains("link-local"));
        assert!(check("http://10.1.2.3/").unwrap_err().reason.contains("private"));
        assert!(check("http://[::ffff:192.168.0.1]/").unwrap_err().reason.contains("private"));
        assert!(check("http://[fd00::1]/").is_err());
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("http://127.0.0.1:9000/").is_ok(), "allowlisted");
        assert!(check("https://8.8.8.8/").is_ok());
        assert!(check("https://actions.example.com/").is_ok(), "names are checked when they resolve");
    }
}
