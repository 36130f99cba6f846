//! Bearer tokens, as OpenGPTs' `jwt_local` and `jwt_oidc` modes: `exp`, `iss`, `aud` and `sub`
//! are required, the user is `sub`, and every problem is a 401 that says which.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{header, HeaderMap};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::{ApiError, Authenticator};
use crate::config::JwtSettings;
use crate::model::UserId;

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

fn unauthorized(detail: impl Into<String>) -> ApiError {
    ApiError::Unauthorized(detail.into())
}

/// The token: `Authorization: Bearer <token>`, or `X-Api-Key: <token>`, the header the
/// LangGraph clients (agent-chat-ui, the SDKs) send their key in.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let api_key = headers.get("x-api-key").filter(|_| !headers.contains_key(header::AUTHORIZATION));
    if let Some(key) = api_key {
        let key = key.to_str().map_err(|_| unauthorized("The X-Api-Key header is not text"))?.trim();
        return (!key.is_empty()).then_some(key).ok_or_else(|| unauthorized("The X-Api-Key header is empty"));
    }
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized("Missing identity: send an Authorization: Bearer <token> header (or X-Api-Key: <token>)")
    })?;
    let value = value.to_str().map_err(|_| unauthorized("The Authorization header is not text"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unauthorized("The Authorization header must be 'Bearer <token>'"))
}

fn validation(settings: &JwtSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&settings.audiences);
    validation
}

/// Verifies a token and returns its subject, with a detail for each way it can be wrong.
fn verify(token: &str, key: &DecodingKey, validation: &Validation) -> Result<UserId, ApiError> {
    let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|error| {
        unauthorized(match error.kind() {
            ErrorKind::ExpiredSignature => "The token has expired".to_string(),
            ErrorKind::InvalidIssuer => "The token's issuer is not accepted".to_string(),
            ErrorKind::InvalidAudience => "The token's audience is not accepted".to_string(),
            ErrorKind::InvalidSignature => "The token's signature is invalid".to_string(),
            ErrorKind::InvalidAlgorithm => "The token's algorithm is not accepted".to_string(),
            ErrorKind::ImmatureSignature => "The token is not valid yet".to_string(),
            ErrorKind::MissingRequiredClaim(claim) => format!("The token has no '{claim}' claim"),
            _ => "The token is malformed".to_string(),
        })
    })?;
    let sub = data.claims.sub.ok_or_else(|| unauthorized("The token has no 'sub' claim"))?;
    UserId::new(sub).ok_or_else(|| unauthorized("The token's 'sub' claim is empty"))
}

fn algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::from_str(name).map_err(|_| format!("JWT_ALG={name} is not a JWT algorithm"))
}

/// `jwt_local`: one configured key. `JWT_DECODE_KEY_B64` holds the HMAC secret, or a PEM public
/// key for RS*/PS*/ES* algorithms.
pub struct LocalJwt {
    key: DecodingKey,
    validation: Validation,
}

impl LocalJwt {
    pub fn new(settings: &JwtSettings, algorithm_name: &str, decode_key: &[u8]) -> Result<Self, String> {
        let algorithm = algorithm(algorithm_name)?;
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                DecodingKey::from_secret(decode_key).map_err(|e| e.to_string())
            }
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(decode_key).map_err(|e| e.to_string()),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(decode_key).map_err(|e| e.to_string()),
            _ => DecodingKey::from_rsa_pem(decode_key).map_err(|e| e.to_string()),
        }
        .map_err(|error| format!("JWT_DECODE_KEY_B64 is not a usable {algorithm_name} key: {error}"))?;
        Ok(LocalJwt { key, validation: validation(settings, algorithm) })
    }
}

#[async_trait]
impl Authenticator for LocalJwt {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        verify(bearer(headers)?, &self.key, &self.validation)
    }
}

/// `jwt_oidc`: the issuer's keys, found through `{iss}/.well-known/openid-configuration`, cached
/// by `kid`, and fetched again when a token names a key not seen yet (keys rotate).
pub struct OidcJwt {
    settings: JwtSettings,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, (Algorithm, DecodingKey)>>,
}

impl OidcJwt {
    pub fn new(settings: JwtSettings) -> Self {
        let client = crate::config::http_client().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        OidcJwt { settings, client, keys: RwLock::new(HashMap::new()) }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
        #[derive(Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let discovery_url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let get = |url: String| async move {
            let response = self.client.get(&url).send().await.map_err(|e| format!("{url}: {}", e.without_url()))?;
            let response = response.error_for_status().map_err(|e| format!("{url}: {}", e.without_url()))?;
            response.bytes().await.map_err(|e| format!("{url}: {}", e.without_url()))
        };
        let discovery: Discovery =
            serde_json::from_slice(&get(discovery_url.clone()).await?).map_err(|e| format!("{discovery_url}: {e}"))?;
        let jwks: JwkSet = serde_json::from_slice(&get(discovery.jwks_uri.clone()).await?)
            .map_err(|e| format!("{}: {e}", discovery.jwks_uri))?;
        Ok(jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let algorithm =
                    jwk.common.key_algorithm.and_then(|a| algorithm(&a.to_string()).ok()).unwrap_or(Algorithm::RS256);
                Some((kid, (algorithm, DecodingKey::from_jwk(jwk).ok()?)))
            })
            .collect())
    }
}

#[async_trait]
impl Authenticator for OidcJwt {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        let token = bearer(headers)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized("The token is malformed"))?;
        let kid = header.kid.ok_or_else(|| unauthorized("The token has no 'kid' header naming its key"))?;
        if !self.keys.read().await.contains_key(&kid) {
            let fresh = self.fetch_keys().await.map_err(|error| {
                tracing::warn!(%error, "could not fetch the issuer's keys");
                ApiError::BadGateway("The token issuer's keys could not be fetched".into())
            })?;
            *self.keys.write().await = fresh;
        }
        let keys = self.keys.read().await;
        let (algorithm, key) = keys
            .get(&kid)
            .ok_or_else(|| unauthorized(format!("The token's key '{kid}' is not one of the issuer's")))?;
        verify(token, key, &validation(&self.settings, *algorithm))
    }
}
