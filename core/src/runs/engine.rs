use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dispatch::BackgroundDispatch;
use super::render;
use super::{RunError, RunRequest};
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

/// Why a run ended without an answer.
enum Failure {
    Cancelled,
    Model(LlmError),
    Store(StoreError),
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

    /// Validates the request, takes the thread's lease and appends the input. Errors here are the
    /// client's to see as HTTP errors; from the returned job on, failures belong to the run.
    pub async fn start(&self, user: UserId, request: RunRequest) -> Result<RunJob, RunError> {
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
        if generation == Generation::Latest {
            for message in &mut input {
                message.id.get_or_insert_with(|| Uuid::new_v4().to_string());
            }
        }
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
        store.start_run(&run, self.inner.config.run_lease).await?;
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).insert(run.run_id, CancellationToken::new());
        let job = RunJob { run, generation, configurable };
        if !input.is_empty() {
            if let Err(error) = store.append_messages(&job.run.user_id, job.run.thread_id, &input).await {
                self.finish(job.run, Err(Failure::Store(error))).await;
                return Err(RunError::Store(StoreError::Backend("could not save the run's input".into())));
            }
        }
        Ok(job)
    }

    /// Hands a started run to the background dispatcher.
    pub async fn run_in_background(&self, job: RunJob) -> Result<(), RunError> {
        self.inner.dispatch.dispatch(self, job).await
    }

    /// Executes a started run to its end and returns its final record. `events`, when given,
    /// receives the stream's payloads; a receiver that goes away does not stop the run.
    pub async fn execute(&self, job: RunJob, events: Option<mpsc::Sender<RunEvent>>) -> Run {
        let token = self.token(job.run.run_id);
        let mut sink = EventSink(events);
        let outcome = self.drive(&job, &token, &mut sink).await;
        if let Err(failure) = &outcome {
            let (status_code, message) = match failure {
                Failure::Cancelled => (409, format!("Run {} was cancelled", job.run.run_id)),
                Failure::Model(error) => (error.status_code(), error.to_string()),
                Failure::Store(error) => (503, format!("The data store failed: {error}")),
            };
            sink.send(RunEvent::Error { status_code, message }).await;
        }
        self.finish(job.run, outcome.map(|_| ())).await
    }

    /// Ends a started run that could not be executed, recording why.
    pub async fn abandon(&self, job: RunJob, reason: String) -> Run {
        self.finish(job.run, Err(Failure::Store(StoreError::Backend(reason)))).await
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
        if let Some(token) = self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).get(&run_id) {
            token.cancel();
        }
        Ok(run)
    }

    fn token(&self, run_id: Uuid) -> CancellationToken {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).entry(run_id).or_default().clone()
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
        if job.generation == Generation::Latest {
            sink.send(RunEvent::Data(render::opening(&history))).await;
        }
        let mut answer = Message::new(MessageType::Ai, "");
        if job.generation == Generation::Latest {
            answer.id = Some(format!("run-{}", run.run_id));
        }

        let request = ChatRequest {
            model: resolved.model_id.clone(),
            system: resolved.system_message,
            messages: history.clone(),
        };
        let mut stream = tokio::select! {
            _ = token.cancelled() => return Err(Failure::Cancelled),
            stream = resolved.model.stream(request) => stream.map_err(Failure::Model)?,
        };
        // Latest clients get the empty AI message first; the seed document's client would print
        // it as a blank line, which its documented output does not show.
        if job.generation == Generation::Latest {
            sink.progress(job.generation, &history, &answer).await;
        }
        let lease = self.inner.config.run_lease;
        let beat = lease / 3;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let mut text = String::new();
        let mut calls: Vec<ToolCallBuilder> = Vec::new();
        let mut finish_reason = None;
        let mut usage = None;
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return Err(Failure::Cancelled),
                _ = heartbeat.tick() => {
                    store.renew_lease(run.thread_id, run.run_id, lease).await.map_err(Failure::Store)?;
                    let mut current = store.get_run(&run.user_id, run.run_id).await.map_err(Failure::Store)?;
                    if current.status == RunStatus::Cancelled {
                        return Err(Failure::Cancelled);
                    }
                    // A fresh `updated_at` tells readers this run is alive (see `get`).
                    current.updated_at = Timestamp::now();
                    store.update_run(&current).await.map_err(Failure::Store)?;
                }
                chunk = stream.next() => match chunk {
                    None => break,
                    Some(Err(error)) => return Err(Failure::Model(error)),
                    Some(Ok(Chunk::Text(delta))) => {
                        text.push_str(&delta);
                        answer.content = Content::Text(text.clone());
                        sink.progress(job.generation, &history, &answer).await;
                    }
                    Some(Ok(Chunk::ToolCall { index, id, name, arguments })) => {
                        if calls.len() <= index {
                            calls.resize_with(index + 1, ToolCallBuilder::default);
                        }
                        calls[index].add(id, name, &arguments);
                    }
                    Some(Ok(Chunk::Usage { input_tokens, output_tokens })) => {
                        usage = Some(json!({
                            "input_tokens": input_tokens,
                            "output_tokens": output_tokens,
                            "total_tokens": input_tokens + output_tokens,
                        }));
                    }
                    Some(Ok(Chunk::Finish { reason })) => finish_reason = Some(reason),
                }
            }
        }
        answer.tool_calls = calls.into_iter().map(ToolCallBuilder::build).collect();
        answer.response_metadata.insert("finish_reason".into(), json!(finish_reason.unwrap_or_else(|| "stop".into())));
        answer.response_metadata.insert("model_name".into(), json!(resolved.model_id));
        answer.usage_metadata = usage;
        sink.progress(job.generation, &history, &answer).await;
        if job.generation == Generation::Seed {
            answer
                .additional_kwargs
                .insert("agent".into(), json!({"return_values": {"output": text}, "log": text, "type": "AgentFinish"}));
        }
        sink.progress(job.generation, &history, &answer).await;
        // The answer is stored while the lease is still held: no other run can slip in between.
        store
            .append_messages(&run.user_id, run.thread_id, std::slice::from_ref(&answer))
            .await
            .map_err(Failure::Store)?;
        Ok(answer)
    }

    /// Records how the run ended and gives its thread back.
    async fn finish(&self, mut run: Run, outcome: Result<(), Failure>) -> Run {
        let store = &self.inner.store;
        (run.status, run.error) = match outcome {
            Ok(()) => (RunStatus::Success, None),
            Err(Failure::Cancelled) => (RunStatus::Cancelled, None),
            Err(Failure::Model(error)) => (RunStatus::Error, Some(error.to_string())),
            Err(Failure::Store(error)) => (RunStatus::Error, Some(error.to_string())),
        };
        run.updated_at = Timestamp::now();
        if let Some(error) = &run.error {
            tracing::warn!(run_id = %run.run_id, %error, "run failed");
        }
        if let Err(error) = store.update_run(&run).await {
            tracing::error!(run_id = %run.run_id, %error, "could not record the run's end");
        }
        if let Err(error) = store.release_lease(run.thread_id, run.run_id).await {
            tracing::error!(run_id = %run.run_id, %error, "could not release the thread; its lease will expire");
        }
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&run.run_id);
        run
    }
}

/// Sends to a streaming client while it listens; renders nothing once it has gone.
struct EventSink(Option<mpsc::Sender<RunEvent>>);

impl EventSink {
    async fn send(&mut self, event: RunEvent) {
        if let Some(sender) = &self.0 {
            if sender.send(event).await.is_err() {
                self.0 = None;
            }
        }
    }

    async fn progress(&mut self, generation: Generation, history: &[Message], current: &Message) {
        if self.0.as_ref().is_some_and(|sender| !sender.is_closed()) {
            self.send(RunEvent::Data(render::progress(generation, history, current))).await;
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
