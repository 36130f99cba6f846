//! Extractors that turn raw requests into typed input or an [`ApiError`] naming what was wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::model::validate::{parse_body, parse_uuid, FieldError, FromJson, Loc};

/// Query parameters parsed into `T`; a malformed query string is a 422 that says why.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(params)) => Ok(QueryParams(params)),
            Err(rejection) => {
                let query = serde_json::Value::from(parts.uri.query().unwrap_or_default());
                let error = FieldError::new("query_error", &Loc::root("query"), rejection.body_text(), &query);
                Err(ApiError::Validation(vec![error]))
            }
        }
    }
}

/// A JSON body parsed into `T`, within the configured size limit.
pub struct JsonBody<T>(pub T);

impl<T: FromJson> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|error| {
            // The limit error sits somewhere in the chain of causes, depending on the body type.
            let too_large = std::iter::successors(std::error::Error::source(&error), |cause| cause.source())
                .any(|cause| cause.is::<LengthLimitError>());
            if too_large {
                ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes"))
            } else {
                ApiError::BadRequest(format!("Could not read the request body: {error}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: FromJson>(bytes: &Bytes) -> Result<T, ApiError> {
    parse_body(bytes).map_err(ApiError::Validation)
}

/// A path segment that must be a UUID; `name` is the parameter's name in error messages.
pub fn path_id(raw: &str, name: &str) -> Result<Uuid, ApiError> {
    id_in("path", raw, name)
}

/// An id from the query string: 422 naming the parameter when it is not a UUID.
pub fn query_id(raw: &str, name: &str) -> Result<Uuid, ApiError> {
    id_in("query", raw, name)
}

fn id_in(place: &str, raw: &str, name: &str) -> Result<Uuid, ApiError> {
    parse_uuid(raw, &Loc::root(place).key(name)).map_err(|error| ApiError::Validation(vec![error]))
}
