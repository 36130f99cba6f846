//! The steps the bots' flows (`bots`) are made of: a model's answer streamed as it grows, the
//! model asked again while it fails before answering, a step's messages stored. The run's
//! lifecycle around them (lease, heartbeat, finish) is `engine`'s.

use std::time::Duration;

use futures::StreamExt;

use super::answer::AnswerBuilder;
use super::engine::RunEngine;
use super::execution::{EventSink, Guard, Progress};
use super::failure::Failure;
use super::job::RunJob;
use crate::llm::{ChatRequest, ChunkStream, ResolvedModel};
use crate::model::{Generation, Message, Run};

/// How many times a model is asked before its answer starts, when it is busy or failing.
const MODEL_ATTEMPTS: u32 = 3;
/// The pause before the second attempt (doubled before the next), when the provider names none.
const FIRST_MODEL_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The longest wait between attempts, whatever the provider's `retry-after` asks.
const MAX_MODEL_RETRY_WAIT: Duration = Duration::from_secs(20);

impl RunEngine {
    /// One model call, streamed to the client as it grows. The caller stores the message.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::runs) async fn model_step(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        request: ChatRequest,
        history: &[Message],
        id: String,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<Message, Failure> {
        let mut stream = self.open_stream(resolved, request, guard, sink).await?;
        let mut answer = AnswerBuilder::new(job.generation, id);
        // Latest clients get the empty AI message first; the seed document's client would print
        // it as a blank line, which its documented output does not show.
        if job.generation != Generation::Seed {
            sink.progress(history, answer.message()).await;
        }
        while let Some(chunk) = self.guarded(guard, sink, stream.next()).await? {
            if answer.add(chunk.map_err(Failure::Model)?) {
                sink.progress(history, answer.message()).await;
            }
        }
        let answer = answer.finish(&resolved.model_id);
        sink.finished(history, &answer).await;
        Ok(answer)
    }

    /// Opens the model's stream and reads its first chunk. A provider that fails before that
    /// (busy, unreachable, a 5xx, a stream broken at once) is asked again, after the wait it asks
    /// for or a growing pause; once a chunk has come, a failure ends the run.
    async fn open_stream(
        &self,
        resolved: &ResolvedModel,
        request: ChatRequest,
        guard: &mut Guard<'_>,
        sink: &EventSink,
    ) -> Result<ChunkStream, Failure> {
        let mut pause = FIRST_MODEL_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            let opened = match self.guarded(guard, sink, resolved.model.stream(request.clone())).await? {
                Ok(mut stream) => match self.guarded(guard, sink, stream.next()).await? {
                    Some(Err(error)) => Err(error),
                    first => Ok(futures::stream::iter(first).chain(stream).boxed()),
                },
                Err(error) => Err(error),
            };
            match opened {
                Err(error) if attempt < MODEL_ATTEMPTS && error.is_transient() => {
                    let wait = error.retry_after().unwrap_or(pause).min(MAX_MODEL_RETRY_WAIT);
                    tracing::warn!(%error, attempt, wait_ms = wait.as_millis() as u64, "the model failed before answering; asking again");
                    self.guarded(guard, sink, tokio::time::sleep(wait)).await?;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other.map_err(Failure::Model),
            }
        }
    }

    /// Stores a step's messages, on condition that no other run has written to the thread.
    pub(in crate::runs) async fn keep(
        &self,
        run: &Run,
        progress: &mut Progress,
        messages: &[Message],
    ) -> Result<(), Failure> {
        let store = &self.inner.store;
        let revision = store.keep_run_step(run, messages, progress.revision).await;
        progress.revision = Some(revision.map_err(Failure::Store)?);
        Ok(())
    }
}

pub(in crate::runs) fn add_usage(usage: &mut (u64, u64), answer: &Message) {
    if let Some(tokens) = &answer.usage_metadata {
        usage.0 += tokens["input_tokens"].as_u64().unwrap_or(0);
        usage.1 += tokens["output_tokens"].as_u64().unwrap_or(0);
    }
}
