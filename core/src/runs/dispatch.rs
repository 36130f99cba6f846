//! How background runs are executed: in this process, or by the `run-worker` Lambda function.

use async_trait::async_trait;
#[cfg(feature = "dispatch")]
use http::Method;
use tracing::Instrument;

use super::{BackgroundDispatch, DispatchError, RunEngine, RunJob};

/// A task in this process: the local server, where the process outlives the request.
pub struct InProcessDispatch;

#[async_trait]
impl BackgroundDispatch for InProcessDispatch {
    async fn dispatch(&self, engine: &RunEngine, job: RunJob) -> Result<(), DispatchError> {
        let engine = engine.clone();
        tokio::spawn(async move { engine.execute(job, None).await }.in_current_span());
        Ok(())
    }

    fn executes_here(&self) -> bool {
        true
    }
}

/// An asynchronous invoke of the worker function: a Lambda is frozen once it has answered, so
/// a run outliving the request must run elsewhere. Lambda's REST API, signed here: the SDK's
/// client cost the functions that dispatch 139 KB of zip.
#[cfg(feature = "dispatch")]
pub struct LambdaDispatch {
    rest: crate::config::SignedRest,
    function: String,
}

#[cfg(feature = "dispatch")]
impl LambdaDispatch {
    pub async fn new(function: String, endpoint_url: Option<String>) -> Self {
        let rest = crate::config::SignedRest::connect("lambda", endpoint_url.as_deref()).await;
        LambdaDispatch { rest, function }
    }

    fn error(&self, reason: impl std::fmt::Display) -> DispatchError {
        DispatchError { worker: self.function.clone(), reason: reason.to_string() }
    }

    fn path(&self, operation: &str) -> String {
        let name: String = url::form_urlencoded::byte_serialize(self.function.as_bytes()).collect();
        format!("/2015-03-31/functions/{name}/{operation}")
    }
}

#[cfg(feature = "dispatch")]
#[async_trait]
impl BackgroundDispatch for LambdaDispatch {
    async fn dispatch(&self, _engine: &RunEngine, job: RunJob) -> Result<(), DispatchError> {
        let payload = serde_json::to_vec(&job).map_err(|error| self.error(error))?;
        let headers = [("content-type", "application/json"), ("x-amz-invocation-type", "Event")];
        let answer = self
            .rest
            .send(Method::POST, &self.path("invocations"), &headers, payload)
            .await
            .map_err(|e| self.error(e))?;
        match answer.status {
            200..=299 => Ok(()),
            _ => Err(self.error(answer.reason())),
        }
    }

    fn executes_here(&self) -> bool {
        false
    }

    async fn warm_up(&self) {
        // A read that changes nothing (GetFunctionConfiguration). Not a `DryRun` invoke:
        // emulators such as `cargo lambda watch` run the function for one.
        let _ = self.rest.send(Method::GET, &self.path("configuration"), &[], Vec::new()).await;
    }
}
