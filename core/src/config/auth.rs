//! Who callers are: `AUTH_TYPE` and the `JWT_*` and `COOKIE_USER_IDS` variables.

use super::{ConfigError, Env, Secret};

/// How callers are identified (OpenGPTs' `AUTH_TYPE` and `JWT_*` variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// The `opengpts_user_id` cookie is the user id. `uuid_only`: only random UUIDs, as the
    /// OpenGPTs UIs make, so an id cannot be guessed (any value otherwise, for local work).
    Cookie { uuid_only: bool },
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
