//! Who callers are: `AUTH_TYPE` and the `JWT_*` and `COOKIE_USER_IDS` variables.

use super::{ConfigError, Env, Secret};

/// How callers are identified (OpenGPTs' `AUTH_TYPE` and `JWT_*` variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// The `opengpts_user_id` cookie is the user id. `uuid_only`: only random UUIDs, as the
    /// OpenGPTs UIs make, so an id cannot be guessed (any value otherwise, for local work).
    /// `anonymous`: who a caller without the cookie is, on a local server alone (see
    /// [`anonymous_user`]); such a caller is refused otherwise.
    Cookie { uuid_only: bool, anonymous: Option<String> },
    /// `Authorization: Bearer` tokens verified with a configured key.
    JwtLocal { jwt: JwtSettings, algorithm: String, decode_key: Secret<Vec<u8>> },
    /// `Authorization: Bearer` tokens verified with the issuer's published keys (JWKS).
    JwtOidc { jwt: JwtSettings },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audiences: Vec<String>,
}

/// Who a caller with no identity is: on a local server (listening on loopback, not a Lambda
/// function, any cookie value allowed), `local`, or the user `ANONYMOUS_USER` names, so that a
/// page on another origin (agent-chat-ui, a `useStream` app) and the SDKs need nothing but the
/// URL, as with `langgraph dev`; `ANONYMOUS_USER=none` turns it off. Nowhere else: a server
/// others can reach never puts callers without an identity in one shared account.
fn anonymous_user(env: &Env<'_>) -> Result<Option<String>, ConfigError> {
    Ok(match env.text("ANONYMOUS_USER").as_deref() {
        _ if !local_server(env)? => None,
        Some("none") => None,
        Some(name) => Some(name.to_string()),
        None => Some("local".to_string()),
    })
}

/// A server only this machine reaches, for local work: it listens on loopback, is not a Lambda
/// function, and takes any cookie value.
pub(super) fn local_server(env: &Env<'_>) -> Result<bool, ConfigError> {
    let host: std::net::IpAddr = env.parse("HOST", std::net::IpAddr::from([127, 0, 0, 1]))?;
    Ok(host.is_loopback()
        && env.text("AWS_LAMBDA_RUNTIME_API").is_none()
        && env.text("AUTH_TYPE").as_deref().unwrap_or("noop") == "noop"
        && env.text("COOKIE_USER_IDS").as_deref().unwrap_or("any") == "any")
}

pub(super) fn auth_config(env: &Env<'_>) -> Result<AuthConfig, ConfigError> {
    let required = |name: &'static str| {
        env.text(name).ok_or(ConfigError { name, value: String::new(), reason: "required by AUTH_TYPE".into() })
    };
    let jwt = || -> Result<JwtSettings, ConfigError> {
        Ok(JwtSettings {
            issuer: required("JWT_ISS")?,
            audiences: required("JWT_AUD")?
                .split(',')
                .map(|aud| aud.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
        })
    };
    match env.text("AUTH_TYPE").as_deref().unwrap_or("noop") {
        "noop" => Ok(AuthConfig::Cookie {
            anonymous: anonymous_user(env)?,
            uuid_only: match env.text("COOKIE_USER_IDS").as_deref().unwrap_or("any") {
                "any" => false,
                "uuid" => true,
                other => {
                    return Err(ConfigError {
                        name: "COOKIE_USER_IDS",
                        value: other.into(),
                        reason: "expected any or uuid".into(),
                    })
                }
            },
        }),
        "jwt_local" => {
            use base64::Engine;
            let encoded = required("JWT_DECODE_KEY_B64")?;
            let decode_key = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|error| {
                ConfigError { name: "JWT_DECODE_KEY_B64", value: "(hidden)".into(), reason: error.to_string() }
            })?;
            Ok(AuthConfig::JwtLocal {
                jwt: jwt()?,
                algorithm: env.text("JWT_ALG").unwrap_or_else(|| "HS256".into()),
                decode_key: Secret::new(decode_key),
            })
        }
        "jwt_oidc" => Ok(AuthConfig::JwtOidc { jwt: jwt()? }),
        other => Err(ConfigError {
            name: "AUTH_TYPE",
            value: other.into(),
            reason: "expected noop, jwt_local or jwt_oidc".into(),
        }),
    }
}
