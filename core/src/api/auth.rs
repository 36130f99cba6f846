//! Who is calling. Handlers take a [`User`]; how it is found is the [`Authenticator`]'s business,
//! so token modes can be added without touching a handler.

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::{ApiError, AppState};
use crate::model::UserId;

pub const USER_COOKIE: &str = "opengpts_user_id";

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, ApiError>;
}

/// OpenGPTs' mock auth: the `opengpts_user_id` cookie's value is the user id. Whoever knows
/// the value is that user, so where strangers can call, only unguessable values (UUIDs) are let in.
pub struct CookieAuth {
    pub uuid_only: bool,
    /// Who a caller without the cookie is, where one is let in (a local server's).
    pub anonymous: Option<UserId>,
}

#[async_trait]
impl Authenticator for CookieAuth {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        let id =
            cookie(headers, USER_COOKIE).and_then(UserId::new).or_else(|| self.anonymous.clone()).ok_or_else(|| {
                ApiError::Unauthorized(format!("Missing identity: send the {USER_COOKIE} cookie with your user id"))
            })?;
        let random = uuid::Uuid::try_parse(id.as_str()).is_ok_and(|uuid| uuid.get_version_num() == 4);
        if self.uuid_only && !random {
            return Err(ApiError::Unauthorized(format!(
                "The {USER_COOKIE} cookie must be a random UUID, as the OpenGPTs UIs make, so that no one can guess \
                 another user's; COOKIE_USER_IDS=any allows any value (local development only)"
            )));
        }
        Ok(id)
    }
}

/// A cookie's value from any of the request's `Cookie` headers, unquoted.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// The authenticated caller of a request.
pub struct User(pub UserId);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.auth.authenticate(&parts.headers).await.map(User)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_cookie_among_others_and_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("x=y; opengpts_user_id=\"foo\""));
        assert_eq!(cookie(&headers, USER_COOKIE).as_deref(), Some("foo"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
