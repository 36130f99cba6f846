use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::dispatch::BackgroundDispatch;
use super::render;
use super::{MultitaskStrategy, OnDisconnect, RunError, RunRequest};
use crate::config::Config;
use crate::llm::{ChatRequest, Chunk, LlmError, ModelCatalog};
use crate::model::{Content, Generation, Message, MessageType, Run, RunStatus, Timestamp, UserId};
use crate::store::{Store, StoreError};

/// Everything a worker needs to execute a started run; serializable so it can cross processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJob {
    pub run: Run,
    pub generation: Generation,
    /// The assistant's `configurable` with the request's overrides merged over it.
    pub configurable: Map<String, Value>,
}

/// What a streaming client is sent while a run executes. The channel closing means the end.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A `data` payload, already rendered for the client's generation.
    Data(String),
    Error {
        status_code: u16,
        message: String,
    },
}

#[derive(Clone)]
pub struct RunEngine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    models: Arc<ModelCatalog>,
    config: Arc<Config>,
    dispatch: Arc<dyn BackgroundDispatch>,
    /// Runs executing in this process, so a cancel reaches them at once.
    active: Mutex<HashMap<Uuid, CancellationToken>>,
}

/// A validated run that has not taken its thread yet.
#[derive(Debug, Clone)]
pub struct PendingRun {
    pub job: RunJob,
    input: Vec<Message>,
    pub strategy: MultitaskStrategy,
    pub on_disconnect: OnDisconnect,
}

/// A streaming client: where the run's events go, and what its going away means.
pub struct Listener {
    pub events: mpsc::Sender<RunEvent>,
    pub on_disconnect: OnDisconnect,
}

/// Why a run ended without an answer.
enum Failure {
    Cancelled,
    Model(LlmError),
    Store(StoreError),
    /// The background worker could not be handed the run.
    NotStarted(String),
    /// A bug: the run's code panicked.
    Panicked(String),
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

impl RunEngine {
    pub fn new(
        store: Arc<dyn Store>,
        models: Arc<ModelCatalog>,
        config: Arc<Config>,
        dispatch: Arc<dyn BackgroundDispatch>,
    ) -> Self {
        let active = Mutex::new(HashMap::new());
        RunEngine { inner: Arc::new(Inner { store, models, config, dispatch, active }) }
    }

    /// Validates the request and names the run. Errors here are the client's to see as HTTP
    /// errors; nothing is stored yet.
    pub async fn prepare(&self, user: UserId, request: RunRequest) -> Result<PendingRun, RunError> {
        let store = &self.inner.store;
        let thread = store.get_thread(&user, request.thread_id).await?;
        let assistant_id = request.assistant_id.unwrap_or(thread.assistant_id);
        let assistant = store.get_assistant(&user, assistant_id).await?;
        let mut configurable = assistant.configurable().clone();
        configurable.extend(request.configurable);
        configurable.insert("user_id".into(), json!(user));
        configurable.insert("thread_id".into(), json!(thread.thread_id));
        configurable.insert("assistant_id".into(), json!(assistant_id));
        self.inner.models.resolve(&configurable)?;

        let generation = request.input.generation();
        let mut input = request.input.into_messages();
        input.iter_mut().for_each(Message::ensure_id);
        let now = Timestamp::now();
        let run = Run {
            run_id: Uuid::new_v4(),
            thread_id: thread.thread_id,
            assistant_id,
            user_id: user,
            status: RunStatus::Pending,
            error: None,
            created_at: now,
            updated_at: now,
        };
        let job = RunJob { run, generation, configurable };
        Ok(PendingRun { job, input, strategy: request.multitask_strategy, on_disconnect: request.on_disconnect })
    }

    /// Takes the thread's lease and appends the input: from the returned job on, failures belong
    /// to the run. A busy thread is `ThreadBusy` at once without `wait_while`, or under `reject`;
    /// otherwise the run waits for the thread (cancelling its holder first under `interrupt`) for
    /// at most `RUN_QUEUE_WAIT_SECONDS`, and while `wait_while` holds (a client still listening).
    pub async fn acquire(
        &self,
        pending: &PendingRun,
        wait_while: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<RunJob, RunError> {
        let store = &self.inner.store;
        let run = &pending.job.run;
        let deadline = tokio::time::Instant::now() + self.inner.config.run_queue_wait;
        let mut pause = Duration::from_millis(20);
        let mut interrupted = None;
        loop {
            match store.start_run(run, self.inner.config.run_lease, self.inner.config.max_runs_per_user).await {
                Ok(()) => break,
                Err(StoreError::ThreadBusy { run_id: holder })
                    if wait_while.is_some_and(|wanted| wanted())
                        && pending.strategy != MultitaskStrategy::Reject
                        && tokio::time::Instant::now() < deadline =>
                {
                    if pending.strategy == MultitaskStrategy::Interrupt && interrupted != Some(holder) {
                        // The holder stops at once in this process, or at its next heartbeat elsewhere.
                        match self.cancel(&run.user_id, holder).await {
                            Ok(_) | Err(RunError::Store(StoreError::NotFound(_))) => interrupted = Some(holder),
                            Err(error) => return Err(error),
                        }
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                    if !wait_while.is_some_and(|wanted| wanted()) {
                        return Err(StoreError::ThreadBusy { run_id: holder }.into());
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.active().insert(run.run_id, CancellationToken::new());
        let job = pending.job.clone();
        if !pending.input.is_empty() {
            if let Err(error) = store.append_messages(&run.user_id, run.thread_id, &pending.input).await {
                // Nothing of the input was stored (appends are all or nothing): end the run and
                // free the thread before answering.
                self.finish(job.run, Err(Failure::Store(error.clone()))).await;
                return Err(error.into());
            }
        }
        Ok(job)
    }

    /// Hands a started run to the background dispatcher. If it cannot take it, the run is ended
    /// as failed and its thread freed.
    pub async fn run_in_background(&self, job: RunJob) -> Result<(), RunError> {
        let run = job.run.clone();
        let dispatch = &self.inner.dispatch;
        if let Err(error) = dispatch.dispatch(self, job).await {
            self.finish(run, Err(Failure::NotStarted(error.to_string()))).await;
            return Err(error.into());
        }
        if !dispatch.executes_here() {
            // Another process runs it; a cancel reaches it through the store.
            self.active().remove(&run.run_id);
        }
        Ok(())
    }

    /// Executes a started run to its end and returns its final record. `events`, when given,
    /// receives the stream's payloads; a receiver that goes away does not stop the run.
    pub async fn execute(&self, job: RunJob, listener: Option<Listener>) -> Run {
        let span = tracing::info_span!(
            "run",
            run_id = %job.run.run_id,
            thread_id = %job.run.thread_id,
            provider = tracing::field::Empty,
            model = tracing::field::Empty,
            input_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        async {
            let token = self.token(job.run.run_id);
            let mut sink = EventSink::new(listener);
            // A bug that panics ends this run as failed, its thread freed, not the process.
            let outcome = AssertUnwindSafe(self.drive(&job, &token, &mut sink))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Failure::Panicked(panic_message(&panic))));
            if let Err(failure) = &outcome {
                sink.send(RunEvent::Error { status_code: failure.status_code(), message: failure.message(&job.run) })
                    .await;
            }
            let run = self.finish(job.run, outcome.map(|_| ())).await;
            tracing::info!(
                outcome = run.status.as_str(),
                duration_ms = started.elapsed().as_millis() as u64,
                error = run.error.as_deref(),
                "run finished"
            );
            run
        }
        .instrument(span)
        .await
    }

    /// A run's record. One still marked pending or running, but silent for longer than a lease,
    /// lost its process (a crash, a timeout): it is recorded as failed, since its thread's lease
    /// has expired and the thread has been free for other runs since.
    pub async fn get(&self, user: &UserId, run_id: Uuid) -> Result<Run, RunError> {
        let mut run = self.inner.store.get_run(user, run_id).await?;
        let silent_since = run.updated_at.plus(self.inner.config.run_lease);
        if !run.status.is_finished() && silent_since < Timestamp::now() {
            run.status = RunStatus::Error;
            run.error =
                Some("The run stopped without finishing: its process ended before the answer was complete".into());
            run.updated_at = Timestamp::now();
            self.inner.store.update_run(&run).await?;
        }
        Ok(run)
    }

    /// Stops a pending or running run. It keeps its input; its partial answer is dropped.
    pub async fn cancel(&self, user: &UserId, run_id: Uuid) -> Result<Run, RunError> {
        let mut run = self.inner.store.get_run(user, run_id).await?;
        if run.status.is_finished() {
            return Ok(run);
        }
        run.status = RunStatus::Cancelled;
        run.updated_at = Timestamp::now();
        // Recorded first, so a worker in another process sees it at its next heartbeat.
        self.inner.store.update_run(&run).await?;
        if let Some(token) = self.active().get(&run_id) {
            token.cancel();
        }
        Ok(run)
    }

    fn token(&self, run_id: Uuid) -> CancellationToken {
        self.active().entry(run_id).or_default().clone()
    }

    async fn drive(&self, job: &RunJob, token: &CancellationToken, sink: &mut EventSink) -> Result<Message, Failure> {
        let store = &self.inner.store;
        let run = &job.run;
        let mut running = run.clone();
        running.status = RunStatus::Running;
        running.updated_at = Timestamp::now();
        store.update_run(&running).await.map_err(Failure::Store)?;

        let history = store.messages(&run.user_id, run.thread_id).await.map_err(Failure::Store)?;
        let resolved =
            self.inner.models.resolve(&job.configurable).map_err(|error| {
                Failure::Model(LlmError::Upstream { provider: "config", message: error.to_string() })
            })?;
        let span = tracing::Span::current();
        span.record("provider", resolved.model.provider());
        span.record("model", resolved.model_id.as_str());
        if job.generation == Generation::Latest {
            sink.send(RunEvent::Data(render::opening(&history))).await;
        }
        let mut answer = AnswerBuilder::new(job.generation, run.run_id);

        let request = ChatRequest {
            model: resolved.model_id.clone(),
            system: resolved.system_message,
            messages: history.clone(),
            max_output_tokens: self.inner.config.max_output_tokens,
        };
        let mut stream = tokio::select! {
            _ = token.cancelled() => return Err(Failure::Cancelled),
            _ = sink.abandoned() => return Err(Failure::Cancelled),
            stream = resolved.model.stream(request) => stream.map_err(Failure::Model)?,
        };
        // Latest clients get the empty AI message first; the seed document's client would print
        // it as a blank line, which its documented output does not show.
        if job.generation == Generation::Latest {
            sink.progress(job.generation, &history, answer.message()).await;
        }
        let beat = self.inner.config.run_lease / 3;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return Err(Failure::Cancelled),
                _ = sink.abandoned() => return Err(Failure::Cancelled),
                _ = heartbeat.tick() => self.heartbeat(run).await?,
                chunk = stream.next() => match chunk {
                    None => break,
                    Some(Err(error)) => return Err(Failure::Model(error)),
                    Some(Ok(chunk)) => {
                        if answer.add(chunk) {
                            sink.progress(job.generation, &history, answer.message()).await;
                        }
                    }
                }
            }
        }
        let answer = answer.finish(&resolved.model_id);
        if let Some(usage) = &answer.usage_metadata {
            span.record("input_tokens", usage["input_tokens"].as_u64());
            span.record("output_tokens", usage["output_tokens"].as_u64());
        }
        // The finished message goes out twice, as OpenGPTs sends it: once as the model's last
        // chunk and once as the stored message (which, for seed clients, carries AgentFinish).
        let mut last_chunk = answer.clone();
        last_chunk.additional_kwargs.remove("agent");
        sink.progress(job.generation, &history, &last_chunk).await;
        sink.progress(job.generation, &history, &answer).await;
        // The answer is stored while the lease is still held: no other run can slip in between.
        store
            .append_messages(&run.user_id, run.thread_id, std::slice::from_ref(&answer))
            .await
            .map_err(Failure::Store)?;
        Ok(answer)
    }

    /// Keeps the thread's lease, notices a cancel recorded by another process, and refreshes the
    /// run's `updated_at`, which tells readers the run is alive (see `get`).
    async fn heartbeat(&self, run: &Run) -> Result<(), Failure> {
        let store = &self.inner.store;
        store.renew_lease(run.thread_id, run.run_id, self.inner.config.run_lease).await.map_err(Failure::Store)?;
        let mut current = store.get_run(&run.user_id, run.run_id).await.map_err(Failure::Store)?;
        if current.status == RunStatus::Cancelled {
            return Err(Failure::Cancelled);
        }
        current.updated_at = Timestamp::now();
        store.update_run(&current).await.map_err(Failure::Store)
    }

    /// Records how the run ended and gives its thread back.
    async fn finish(&self, mut run: Run, outcome: Result<(), Failure>) -> Run {
        let store = &self.inner.store;
        (run.status, run.error) = match outcome {
            Ok(()) => (RunStatus::Success, None),
            Err(Failure::Cancelled) => (RunStatus::Cancelled, None),
            Err(failure) => (RunStatus::Error, Some(failure.message(&run))),
        };
        run.updated_at = Timestamp::now();
        // The thread is freed first: a client that sees the run finished can start the next one.
        if let Err(error) = store.release_lease(run.thread_id, run.run_id, run.status).await {
            tracing::error!(run_id = %run.run_id, %error, "could not release the thread; its lease will expire");
        }
        if let Err(error) = store.update_run(&run).await {
            tracing::error!(run_id = %run.run_id, %error, "could not record the run's end");
        }
        self.active().remove(&run.run_id);
        run
    }

    /// Runs executing in this process, so a cancel reaches them at once.
    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.inner.active.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Failure {
    /// The `status_code` of the stream's error event.
    fn status_code(&self) -> u16 {
        match self {
            Failure::Cancelled => 409,
            Failure::Model(error) => error.status_code(),
            Failure::Store(_) => 503,
            Failure::NotStarted(_) => 502,
            Failure::Panicked(_) => 500,
        }
    }

    /// What the run's record and the stream's error event say.
    fn message(&self, run: &Run) -> String {
        match self {
            Failure::Cancelled => format!("Run {} was cancelled", run.run_id),
            Failure::Model(error) => error.to_string(),
            Failure::Store(error) => format!("The data store failed: {error}"),
            Failure::NotStarted(reason) => format!("The run was not started: {reason}"),
            Failure::Panicked(reason) => {
                tracing::error!(run_id = %run.run_id, %reason, "the run panicked");
                "The server failed while running it (an internal error, logged)".into()
            }
        }
    }
}

/// The AI message as the model's chunks build it: text, tool calls, usage and finish reason.
struct AnswerBuilder {
    message: Message,
    generation: Generation,
    text: String,
    calls: Vec<ToolCallBuilder>,
    finish_reason: Option<String>,
}

impl AnswerBuilder {
    fn new(generation: Generation, run_id: Uuid) -> Self {
        let mut message = Message::new(MessageType::Ai, "");
        message.id = Some(format!("run-{run_id}"));
        AnswerBuilder { message, generation, text: String::new(), calls: Vec::new(), finish_reason: None }
    }

    fn message(&self) -> &Message {
        &self.message
    }

    /// Takes one chunk in; true when the visible message changed.
    fn add(&mut self, chunk: Chunk) -> bool {
        match chunk {
            Chunk::Text(delta) => {
                self.text.push_str(&delta);
                self.message.content = Content::Text(self.text.clone());
                return true;
            }
            Chunk::ToolCall { index, id, name, arguments } => {
                if self.calls.len() <= index {
                    self.calls.resize_with(index + 1, ToolCallBuilder::default);
                }
                self.calls[index].add(id, name, &arguments);
            }
            Chunk::Usage { input_tokens, output_tokens } => {
                self.message.usage_metadata = Some(json!({
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                }));
            }
            Chunk::Finish { reason } => self.finish_reason = Some(reason),
        }
        false
    }

    /// The message as stored: with its tool calls, metadata, and the seed era's AgentFinish.
    fn finish(self, model_id: &str) -> Message {
        let mut message = self.message;
        message.tool_calls = self.calls.into_iter().map(ToolCallBuilder::build).collect();
        let finish_reason = self.finish_reason.unwrap_or_else(|| "stop".into());
        message.response_metadata.insert("finish_reason".into(), json!(finish_reason));
        message.response_metadata.insert("model_name".into(), json!(model_id));
        if self.generation == Generation::Seed {
            let text = self.text;
            message
                .additional_kwargs
                .insert("agent".into(), json!({"return_values": {"output": text}, "log": text, "type": "AgentFinish"}));
        }
        message
    }
}

/// Sends to a streaming client while it listens; renders nothing once it has gone.
struct EventSink {
    sender: Option<mpsc::Sender<RunEvent>>,
    cancel_on_disconnect: bool,
}

impl EventSink {
    fn new(listener: Option<Listener>) -> Self {
        match listener {
            Some(Listener { events, on_disconnect }) => {
                EventSink { sender: Some(events), cancel_on_disconnect: on_disconnect == OnDisconnect::Cancel }
            }
            None => EventSink { sender: None, cancel_on_disconnect: false },
        }
    }

    async fn send(&mut self, event: RunEvent) {
        if let Some(sender) = &self.sender {
            if sender.send(event).await.is_err() {
                self.sender = None;
            }
        }
    }

    async fn progress(&mut self, generation: Generation, history: &[Message], current: &Message) {
        if self.sender.as_ref().is_some_and(|sender| !sender.is_closed()) {
            self.send(RunEvent::Data(render::progress(generation, history, current))).await;
        }
    }

    /// Resolves when the client has gone and that cancels the run; never otherwise.
    async fn abandoned(&self) {
        match &self.sender {
            Some(sender) if self.cancel_on_disconnect => sender.closed().await,
            _ => std::future::pending().await,
        }
    }
}

/// Collects a streamed tool call's fragments into LangChain's `{name, args, id, type}`.
#[derive(Default)]
struct ToolCallBuilder {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

impl ToolCallBuilder {
    fn add(&mut self, id: Option<String>, name: Option<String>, arguments: &str) {
        self.id = self.id.take().or(id);
        self.name = self.name.take().or(name);
        self.arguments.push_str(arguments);
    }

    fn build(self) -> Value {
        let args: Value = if self.arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(&self.arguments).unwrap_or(Value::String(self.arguments))
        };
        json!({"name": self.name, "args": args, "id": self.id, "type": "tool_call"})
    }
}
