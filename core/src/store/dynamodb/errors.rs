//! DynamoDB's failures as [`StoreError`]s, and the one way a failed condition is told apart.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::store::{StoreError, StoreResult};

pub(super) fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("dynamodb: {error}"))
}

/// Service errors keep their message; transport ones their cause chain.
pub(super) fn sdk_error<E: std::error::Error + 'static>(error: SdkError<E>) -> StoreError {
    match error.as_service_error() {
        Some(service) => backend(service),
        None => backend(aws_sdk_dynamodb::error::DisplayErrorContext(&error)),
    }
}

/// Whether a request failed on its condition expression (not on anything else).
pub(super) fn is_conditional<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// The outcome of a conditional write: `refused` when its condition failed, a backend error for
/// any other failure.
pub(super) fn conditional<T, E>(result: Result<T, SdkError<E>>, refused: StoreResult<()>) -> StoreResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(error) if is_conditional(&error) => refused,
        Err(error) => Err(sdk_error(error)),
    }
}
