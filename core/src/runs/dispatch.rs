//! How background runs are executed: in this process, or by the `run-worker` Lambda function.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::{RunEngine, RunError, RunJob};
use crate::store::StoreError;

#[async_trait]
pub trait BackgroundDispatch: Send + Sync + 'static {
    async fn dispatch(&self, engine: &RunEngine, job: RunJob) -> Result<(), RunError>;
}

/// A task in this process: the local server, where the process outlives the request.
pub struct InProcessDispatch;

#[async_trait]
impl BackgroundDispatch for InProcessDispatch {
    async fn dispatch(&self, engine: &RunEngine, job: RunJob) -> Result<(), RunError> {
        let engine = engine.clone();
        tokio::spawn(async move { engine.execute(job, None).await });
        Ok(())
    }
}

/// An asynchronous invoke of the worker function: a Lambda is frozen once it has answered, so
/// a run outliving the request must run elsewhere.
pub struct LambdaDispatch {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaDispatch {
    pub async fn new(function: String, endpoint_url: Option<String>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        LambdaDispatch { client: aws_sdk_lambda::Client::new(&loader.load().await), function }
    }
}

#[async_trait]
impl BackgroundDispatch for LambdaDispatch {
    async fn dispatch(&self, engine: &RunEngine, job: RunJob) -> Result<(), RunError> {
        let payload = serde_json::to_vec(&job).map_err(|error| StoreError::Backend(error.to_string()))?;
        let invoked = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await;
        if let Err(error) = invoked {
            let reason = format!(
                "could not hand the run to {}: {}",
                self.function,
                aws_sdk_lambda::error::DisplayErrorContext(&error)
            );
            // The run never started: record why and free the thread.
            engine.abandon(job, reason.clone()).await;
            return Err(RunError::Store(StoreError::Backend(reason)));
        }
        Ok(())
    }
}
