//! AWS: the SDK's shared configuration, and the few services called through their REST APIs
//! with requests signed here (SigV4), where the service's SDK client would bring its own copy of
//! much that every function already carries.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Method;

/// The AWS SDK's shared configuration (credentials, region) from the environment, aimed at
/// `endpoint_url` when a service is emulated locally.
pub async fn aws_sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// What a request signed by hand (SigV4 over a service's REST API) needs: the region, and
/// where its credentials come from.
pub async fn signing_context() -> Result<(String, SharedCredentialsProvider), String> {
    let shared = aws_sdk_config(None).await;
    let region = shared.region().map(|region| region.to_string()).ok_or("no AWS region is set")?;
    let credentials = shared.credentials_provider().ok_or("no AWS credentials are available")?;
    Ok((region, credentials))
}

/// How many times a request is sent at most.
const TRIES: u32 = 3;

/// One AWS service's REST API (JSON bodies), every request signed with SigV4.
pub struct SignedRest {
    http: reqwest::Client,
    service: &'static str,
    /// The service's endpoint, without a trailing slash: an emulator's, or the region's.
    pub base: String,
    /// A missing region or credentials: told when a request is sent, not at start.
    context: Result<(String, SharedCredentialsProvider), String>,
}

/// A service's answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// The service's reason for a refusal: its JSON `message` (or `Message`), or the body.
    pub fn reason(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let json: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        let message = json.as_ref().and_then(|json| json.get("message").or_else(|| json.get("Message")));
        format!("answered {}: {}", self.status, message.and_then(|m| m.as_str()).unwrap_or(&text))
    }
}

impl SignedRest {
    /// `service` as SigV4 names it, which is also its endpoint's host prefix.
    pub async fn connect(service: &'static str, endpoint_url: Option<&str>) -> Self {
        let context = signing_context().await;
        let base = match (endpoint_url, &context) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_string(),
            (None, Ok((region, _))) => format!("https://{service}.{region}.amazonaws.com"),
            (None, Err(_)) => format!("https://{service}.amazonaws.com"),
        };
        let http = super::http_client()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        SignedRest { http, service, base, context }
    }

    /// Sends `method path` (with its query) and `body`, with `headers`, signed. As the SDK's
    /// clients do, a throttle (429), a service error (5xx) or a request that did not arrive is
    /// tried again, up to three tries in all, after 100 then 200 ms.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let mut pause = Duration::from_millis(100);
        for _ in 1..TRIES {
            match self.send_once(&method, path, headers, &body).await {
                Ok(answer) if answer.status != 429 && answer.status < 500 => return Ok(answer),
                Ok(_) | Err(_) => tokio::time::sleep(pause).await,
            }
            pause *= 2;
        }
        self.send_once(&method, path, headers, &body).await
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let (region, credentials) = self.context.as_ref().map_err(Clone::clone)?;
        let url = format!("{}{path}", self.base);
        let identity: Identity = credentials.provide_credentials().await.map_err(|error| error.to_string())?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| error.to_string())?
            .into();
        let signable = SignableRequest::new(method.as_str(), &url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|error| error.to_string())?;
        let (instructions, _) = sign(signable, &params).map_err(|error| error.to_string())?.into_parts();
        let mut request = http::Request::builder().method(method.clone()).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(body.to_vec()).map_err(|error| error.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|error| error.to_string())?;
        let response = self.http.execute(request).await.map_err(|error| format!("could not be reached: {error}"))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|error| error.to_string())?;
        Ok(Answer { status, body })
    }
}
