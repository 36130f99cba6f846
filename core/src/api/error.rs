//! The one HTTP error type. Every failure a handler can meet becomes one of these, and this file
//! alone decides its status code and `{"detail": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::model::validate::FieldErrors;
use crate::runs::RunError;
use crate::store::{Entity, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid request: {0:?}")]
    Validation(FieldErrors),
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("{0}")]
    Conflict(String),
    /// 415: a file of a type that cannot be read; the detail names the file.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413: the detail names what was too large and the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("Not Found")]
    RouteNotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// Something on our side failed; the detail names what, never a secret.
    #[error("{0}")]
    Internal(String),
    /// 429 with `retry-after`: the caller is over a limit that time will lift.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after_seconds: u32 },
    /// A service we depend on failed (the Lambda worker, a token issuer); the detail names which.
    #[error("{0}")]
    BadGateway(String),
    /// The data store could not be reached; the request may succeed if tried again.
    #[error("{0}")]
    Unavailable(String),
    /// An answer of the LangGraph API, whose status and text are the reference server's.
    #[error("{detail}")]
    Detail { status: StatusCode, detail: String },
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(entity) => ApiError::NotFound(entity),
            StoreError::ThreadBusy { run_id } => {
                ApiError::Conflict(format!("Thread is busy with run {run_id}; wait for it to finish or cancel it"))
            }
            StoreError::ThreadChanged => {
                ApiError::Conflict("The thread changed while this request read it; try again".into())
            }
            StoreError::LeaseLost { run_id } => ApiError::Conflict(format!("Run {run_id} lost its thread lease")),
            StoreError::TooManyRuns { limit } => ApiError::TooManyRequests {
                detail: format!(
                    "You have {limit} runs going, the most allowed at once; try again when one has finished"
                ),
                retry_after_seconds: 5,
            },
            StoreError::IndexMismatch { recorded, offered } => ApiError::Conflict(format!(
                "The files here were indexed with {recorded}, but this server now embeds with {offered}; \
                 delete and upload them again, or set EMBEDDINGS_PROVIDER back"
            )),
            StoreError::ChunkQuota { would_hold, limit } => ApiError::TooLarge(format!(
                "The files of this assistant or thread would hold {would_hold} chunks; at most {limit} may be \
                 stored (MAX_CHUNKS_PER_NAMESPACE, the template's MaxChunksPerNamespace): upload less, or raise it"
            )),
            StoreError::ByteQuota { would_hold, limit } => ApiError::TooLarge(format!(
                "Your files would hold {would_hold} bytes; at most {limit} may be stored per user \
                 (MAX_STORED_BYTES_PER_USER, the template's MaxStoredBytesPerUser): delete assistants or threads \
                 with files, or raise it"
            )),
            StoreError::Backend(reason) => {
                tracing::error!(%reason, "store backend failed");
                // The backends name themselves first in their reasons ("dynamodb: ...").
                let store = match reason.split_once(':').map(|(name, _)| name) {
                    Some("dynamodb") => "The data store (DynamoDB)",
                    Some("sqlite") => "The data store (SQLite)",
                    _ => "The data store",
                };
                ApiError::Unavailable(format!("{store} is unavailable; try again"))
            }
        }
    }
}

impl From<crate::schedules::ForgetError> for ApiError {
    fn from(error: crate::schedules::ForgetError) -> Self {
        match error {
            crate::schedules::ForgetError::Store(error) => error.into(),
            crate::schedules::ForgetError::Schedule(error) => ApiError::BadGateway(error.to_string()),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Store(error) => error.into(),
            RunError::Model(error) => ApiError::Validation(vec![error.into_field_error()]),
            RunError::Tools(error) => ApiError::Validation(vec![error.into_field_error()]),
            RunError::ThreadFull(detail) => ApiError::TooLarge(detail),
            RunError::Webhook(detail) => {
                let loc = crate::model::validate::Loc::body().key("webhook");
                let input = serde_json::Value::Null;
                ApiError::Validation(vec![crate::model::validate::FieldError::new("url", &loc, detail, &input)])
            }
            RunError::CheckpointNotFound(_) => {
                ApiError::Detail { status: StatusCode::NOT_FOUND, detail: error.to_string() }
            }
            RunError::ForkTooLarge { .. } | RunError::Review(_) => {
                ApiError::Detail { status: StatusCode::UNPROCESSABLE_ENTITY, detail: error.to_string() }
            }
            RunError::NothingToResume => ApiError::Detail { status: StatusCode::CONFLICT, detail: error.to_string() },
            RunError::Task(_) => ApiError::Internal(error.to_string()),
            RunError::Dispatch(error) => {
                tracing::error!(%error, "background dispatch failed");
                ApiError::BadGateway(format!("The run could not be started in the background: {error}"))
            }
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Detail { status, .. } => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_seconds, .. } => Some(*retry_after_seconds),
            // A dependency failed; its own retries are spent, and a moment's wait is worth it.
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        let body = match self {
            ApiError::Validation(errors) => json!({ "detail": errors }),
            other => json!({ "detail": other.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
