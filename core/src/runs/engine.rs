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

use super::answer::AnswerBuilder;
use super::dispatch::BackgroundDispatch;
use super::render;
use super::{MultitaskStrategy, OnDisconnect, RunError, RunInput, RunRequest};
use crate::config::Config;
use crate::documents::{Library, TOP_K};
use crate::llm::{answered_conversation, ChatRequest, LlmError, ModelCatalog, ResolvedModel, RETRIEVAL_PROMPT};
use crate::model::{Content, Generation, Message, MessageType, Run, RunStatus, Timestamp, ToolStatus, UserId};
use crate::store::{Revision, RunStart, Store, StoreError};
use crate::tools::{AgentConfig, Toolbox};

/// Everything a worker needs to execute a started run; serializable so it can cross processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJob {
    pub run: Run,
    pub generation: Generation,
    /// The assistant's `configurable` with the request's overrides merged over it.
    pub configurable: Map<String, Value>,
    /// The most steps an agent may take in this run.
    #[serde(default = "default_recursion_limit")]
    pub recursion_limit: u32,
    /// The run continues the thread (`input: null`): an agent stopped before its tools runs them.
    #[serde(default)]
    pub resume: bool,
    /// The thread as the run found it, when the process that started it executes it.
    #[serde(skip)]
    snapshot: Option<Snapshot>,
}

/// A thread's messages and their revision, as read before the run started.
#[derive(Debug, Clone)]
struct Snapshot {
    history: Vec<Message>,
    revision: Revision,
}

/// How a run executes once it holds its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// At once, in this process, with a client listening: it is recorded running from the start.
    Streamed,
    /// Handed to the background dispatcher: pending until a worker takes it.
    Background,
}

fn default_recursion_limit() -> u32 {
    25
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
    tools: Toolbox,
    library: Library,
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
    /// The thread as read while validating.
    found: Snapshot,
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
    /// The agent's tools could not be set up (a runner that cannot be reached).
    Tools(String),
    /// The agent took `recursion_limit` steps without answering.
    RecursionLimit(u32),
    /// The run reached `RUN_TIME_LIMIT_SECONDS`.
    TimeLimit(Duration),
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
        tools: Toolbox,
        library: Library,
        config: Arc<Config>,
        dispatch: Arc<dyn BackgroundDispatch>,
    ) -> Self {
        let active = Mutex::new(HashMap::new());
        RunEngine { inner: Arc::new(Inner { store, models, tools, library, config, dispatch, active }) }
    }

    /// Validates the request and names the run. Errors here are the client's to see as HTTP
    /// errors; nothing is stored yet.
    pub async fn prepare(
        &self,
        user: UserId,
        request: RunRequest,
        execution: Execution,
    ) -> Result<PendingRun, RunError> {
        let store = &self.inner.store;
        // The messages come with the thread in one read; the run starts from them unless they
        // change before it takes the thread.
        let view = store.thread_view(&user, request.thread_id).await?;
        let thread = view.thread;
        let assistant_id = request.assistant_id.unwrap_or(thread.assistant_id);
        let assistant = store.get_assistant(&user, assistant_id).await?;
        // The stored bot is settled first (it may predate the rule), then the run's overrides
        // are read as an edit of it.
        let mut stored = assistant.configurable().clone();
        super::configurable::settle(None, &mut stored);
        let mut configurable = stored.clone();
        configurable.extend(request.configurable);
        super::configurable::settle(Some(&stored), &mut configurable);
        configurable.insert("user_id".into(), json!(user));
        configurable.insert("thread_id".into(), json!(thread.thread_id));
        configurable.insert("assistant_id".into(), json!(assistant_id));
        self.inner.models.resolve(&configurable)?;
        self.inner.tools.agent_config(&configurable)?;

        // RAG bots came with the latest generation: their clients read its shapes.
        let generation = match configurable.get("type").and_then(Value::as_str) {
            Some("chat_retrieval") => Generation::Latest,
            _ => request.input.generation(),
        };
        let resume = request.input == RunInput::Resume;
        let recursion_limit = request.recursion_limit.unwrap_or(self.inner.config.recursion_limit);
        let mut input = request.input.into_messages();
        input.iter_mut().for_each(Message::ensure_id);
        super::check_thread_room(&self.inner.config.limits, &view.messages, &input)?;
        let now = Timestamp::now();
        let run = Run {
            run_id: Uuid::new_v4(),
            thread_id: thread.thread_id,
            assistant_id,
            user_id: user,
            status: match execution {
                Execution::Streamed => RunStatus::Running,
                Execution::Background => RunStatus::Pending,
            },
            error: None,
            created_at: now,
            updated_at: now,
        };
        let job = RunJob { run, generation, configurable, recursion_limit, resume, snapshot: None };
        Ok(PendingRun {
            job,
            input,
            found: Snapshot { history: view.messages, revision: view.revision },
            strategy: request.multitask_strategy,
            on_disconnect: request.on_disconnect,
        })
    }

    /// Takes the thread's lease and appends the input, at once: from the returned job on, failures
    /// belong to the run. A busy thread is `ThreadBusy` at once without `wait_while`, or under `reject`;
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
        let start = RunStart {
            run,
            lease: self.inner.config.run_lease,
            max_user_runs: self.inner.config.max_runs_per_user,
            input: &pending.input,
            seen: Some(pending.found.revision),
        };
        let started = loop {
            match store.start_run(start).await {
                Ok(started) => break started,
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
        };
        self.active().insert(run.run_id, CancellationToken::new());
        let mut job = pending.job.clone();
        if started.unchanged {
            let mut history = pending.found.history.clone();
            history.extend_from_slice(&pending.input);
            job.snapshot = Some(Snapshot { history, revision: started.revision });
        }
        Ok(job)
    }

    /// Hands a started run to the background dispatcher. If it cannot take it, the run is ended
    /// as failed and its thread freed.
    pub async fn run_in_background(&self, job: RunJob) -> Result<(), RunError> {
        let run = job.run.clone();
        let dispatch = &self.inner.dispatch;
        if let Err(error) = dispatch.dispatch(self, job).await {
            self.finish(run, Err(Failure::NotStarted(error.to_string())), Progress::default()).await;
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
    pub async fn execute(&self, mut job: RunJob, listener: Option<Listener>) -> Run {
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
            let snapshot = job.snapshot.take();
            let mut progress = Progress::default();
            // A bug that panics ends this run as failed, its thread freed, not the process.
            let outcome = AssertUnwindSafe(self.drive(&job, snapshot, &mut progress, &token, &mut sink, started))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Failure::Panicked(panic_message(&panic))));
            if let Err(failure) = &outcome {
                sink.send(RunEvent::Error { status_code: failure.status_code(), message: failure.message(&job.run) })
                    .await;
            }
            let answered = outcome.is_ok();
            let run = self.finish(job.run, outcome, progress).await;
            if answered && run.status == RunStatus::Error {
                let message = run.error.clone().unwrap_or_default();
                sink.send(RunEvent::Error { status_code: Failure::STORE_STATUS, message }).await;
            }
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

    /// Opens the connection to the background worker ahead of the first run.
    pub async fn warm_up(&self) {
        self.inner.dispatch.warm_up().await;
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

    /// Calls the model, and for an agent runs the tools it asks for and calls it again, until it
    /// answers in words. Each step is stored when complete; the answer goes with the run's end.
    async fn drive(
        &self,
        job: &RunJob,
        snapshot: Option<Snapshot>,
        progress: &mut Progress,
        token: &CancellationToken,
        sink: &mut EventSink,
        started: std::time::Instant,
    ) -> Result<(), Failure> {
        let store = &self.inner.store;
        let run = &job.run;
        if run.status != RunStatus::Running {
            let mut running = run.clone();
            running.status = RunStatus::Running;
            running.updated_at = Timestamp::now();
            store.update_run(&running).await.map_err(Failure::Store)?;
        }
        let Snapshot { mut history, revision } = match snapshot {
            Some(snapshot) => snapshot,
            None => {
                let view = store.thread_view(&run.user_id, run.thread_id).await.map_err(Failure::Store)?;
                Snapshot { history: view.messages, revision: view.revision }
            }
        };
        progress.revision = Some(revision);
        let config_failure = |message: String| Failure::Model(LlmError::Upstream { provider: "config", message });
        let resolved =
            self.inner.models.resolve(&job.configurable).map_err(|error| config_failure(error.to_string()))?;
        let agent =
            self.inner.tools.agent_config(&job.configurable).map_err(|error| config_failure(error.to_string()))?;
        let span = tracing::Span::current();
        span.record("provider", resolved.model.provider());
        span.record("model", resolved.model_id.as_str());
        if job.generation == Generation::Latest {
            sink.send(RunEvent::Data(render::opening(&history))).await;
        }
        let beat = self.inner.config.run_lease / 3;
        let time_limit = self.inner.config.run_time_limit;
        let mut guard = Guard {
            run,
            token,
            heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + beat, beat),
            deadline: time_limit.map(|limit| tokio::time::Instant::from_std(started + limit)),
            time_limit: time_limit.unwrap_or_default(),
        };
        let usage = if job.configurable.get("type").and_then(Value::as_str) == Some("chat_retrieval") {
            self.answer_from_files(job, &resolved, &mut history, progress, &mut guard, sink).await?
        } else {
            self.agent_loop(job, &resolved, agent.as_ref(), &mut history, progress, &mut guard, sink).await?
        };
        span.record("input_tokens", usage.0);
        span.record("output_tokens", usage.1);
        Ok(())
    }

    /// A chatbot answers once; an agent calls tools until it answers in words. Returns the
    /// tokens used (input, output).
    async fn agent_loop(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        agent: Option<&AgentConfig>,
        history: &mut Vec<Message>,
        progress: &mut Progress,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<(u64, u64), Failure> {
        let run = &job.run;
        // A bot without tools still answers a call its model makes (with an error the model
        // reads), so no run ends on a call nobody will answer.
        let tools = match agent {
            Some(agent) if !agent.tools.is_empty() => {
                let namespaces = [run.assistant_id, run.thread_id];
                let bound = self.guarded(guard, sink, self.inner.tools.bind(agent, &namespaces)).await?;
                bound.map_err(|e| Failure::Tools(e.to_string()))?
            }
            _ => self.inner.tools.none(),
        };
        let interrupt = agent.is_some_and(|agent| agent.interrupt_before_action);
        let mut usage = (0, 0);
        let mut model_calls = 0;
        for step in 0.. {
            if step == job.recursion_limit {
                return Err(Failure::RecursionLimit(job.recursion_limit));
            }
            if let Some(pending) =
                history.last().filter(|last| last.kind == MessageType::Ai && !last.tool_calls.is_empty())
            {
                // With tool confirmation the run stops before each action; a run that continues
                // the thread is the user's go-ahead for the one it finds.
                if interrupt && !(step == 0 && job.resume) {
                    break;
                }
                let results = self.guarded(guard, sink, tools.run(pending)).await?;
                self.keep(run, progress, &results).await?;
                sink.send(RunEvent::Data(render::tool_results(job.generation, history, &results))).await;
                history.extend(results);
                continue;
            }
            // The run's first answer is named after it, as OpenGPTs does; later ones get their own.
            let id = if model_calls == 0 { format!("run-{}", run.run_id) } else { format!("run-{}", Uuid::new_v4()) };
            model_calls += 1;
            let request = ChatRequest {
                model: resolved.model_id.clone(),
                system: resolved.system_message.clone(),
                messages: answered_conversation(history),
                max_output_tokens: self.inner.config.max_output_tokens,
                tools: tools.specs(),
            };
            let answer = self.model_step(job, resolved, request, history, id, guard, sink).await?;
            add_usage(&mut usage, &answer);
            if answer.tool_calls.is_empty() {
                progress.answer.push(answer);
                break;
            }
            // Stored before its tools run, so a run stopped among them can be taken up again.
            self.keep(run, progress, std::slice::from_ref(&answer)).await?;
            history.push(answer);
        }
        Ok(usage)
    }

    /// A RAG bot's turn, as OpenGPTs' `chat_retrieval` takes it: a search query (the question,
    /// or with a conversation behind it one the model writes), the files' best chunks shown as
    /// a retrieval call and its documents, then an answer from those chunks alone.
    async fn answer_from_files(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        history: &mut Vec<Message>,
        progress: &mut Progress,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<(u64, u64), Failure> {
        let run = &job.run;
        // What the model reads: the words said, not the retrieval steps.
        let said = |messages: &[Message]| -> Vec<Message> {
            let spoken =
                |m: &&Message| matches!(m.kind, MessageType::Human | MessageType::Ai) && m.tool_calls.is_empty();
            messages.iter().filter(spoken).cloned().collect()
        };
        let conversation = said(history);
        let question = conversation.iter().rev().find(|m| m.kind == MessageType::Human).map(|m| m.content.text());
        let mut usage = (0, 0);
        if let Some(question) = question {
            let earlier_answers = conversation.iter().any(|m| m.kind == MessageType::Ai);
            let (query, id) = if earlier_answers && resolved.model.writes_search_queries() {
                let request = search_query_request(resolved, &conversation, self.inner.config.max_output_tokens);
                let written =
                    self.guarded(guard, sink, collect_text(resolved, request)).await?.map_err(Failure::Model)?;
                (written, format!("run-{}", Uuid::new_v4()))
            } else {
                (question, Uuid::new_v4().to_string())
            };
            let call_id = Uuid::new_v4().simple().to_string();
            let mut ask = Message::new(MessageType::Ai, "");
            ask.id = Some(id);
            ask.tool_calls =
                vec![json!({"name": "retrieval", "args": {"query": query}, "id": call_id, "type": "tool_call"})];
            self.keep(run, progress, std::slice::from_ref(&ask)).await?;
            sink.progress(job.generation, history, &ask).await;
            history.push(ask);

            let namespaces = [run.assistant_id, run.thread_id];
            let found = self.guarded(guard, sink, self.inner.library.search(&namespaces, &query, TOP_K)).await?;
            let found = found.map_err(|error| Failure::Tools(error.to_string()))?;
            let documents = found
                .iter()
                .map(|chunk| {
                    json!({"id": null, "metadata": {"source": chunk.source, "namespace": chunk.namespace},
                    "page_content": chunk.text, "type": "Document"})
                })
                .collect();
            let mut documents_message = Message::tool_result("retrieval", &call_id, String::new(), ToolStatus::Success);
            documents_message.content = Content::Parts(documents);
            let results = [documents_message];
            self.keep(run, progress, &results).await?;
            sink.send(RunEvent::Data(render::tool_results(job.generation, history, &results))).await;
            history.extend(results);

            let context: Vec<&str> = found.iter().map(|chunk| chunk.text.as_str()).collect();
            let instructions = resolved.system_message.as_deref().unwrap_or(crate::llm::DEFAULT_SYSTEM_MESSAGE);
            let system = format!("{instructions}\n\n{RETRIEVAL_PROMPT}\n\n{}", context.join("\n"));
            let request = ChatRequest {
                model: resolved.model_id.clone(),
                system: Some(system),
                messages: said(history),
                max_output_tokens: self.inner.config.max_output_tokens,
                tools: Vec::new(),
            };
            let answer =
                self.model_step(job, resolved, request, history, format!("run-{}", run.run_id), guard, sink).await?;
            add_usage(&mut usage, &answer);
            progress.answer.push(answer);
        }
        Ok(usage)
    }

    /// One model call, streamed to the client as it grows. The caller stores the message.
    #[allow(clippy::too_many_arguments)]
    async fn model_step(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        request: ChatRequest,
        history: &[Message],
        id: String,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<Message, Failure> {
        let mut stream = self.guarded(guard, sink, resolved.model.stream(request)).await?.map_err(Failure::Model)?;
        let mut answer = AnswerBuilder::new(job.generation, id);
        // Latest clients get the empty AI message first; the seed document's client would print
        // it as a blank line, which its documented output does not show.
        if job.generation == Generation::Latest {
            sink.progress(job.generation, history, answer.message()).await;
        }
        while let Some(chunk) = self.guarded(guard, sink, stream.next()).await? {
            if answer.add(chunk.map_err(Failure::Model)?) {
                sink.progress(job.generation, history, answer.message()).await;
            }
        }
        let answer = answer.finish(&resolved.model_id);
        // The finished message goes out twice, as OpenGPTs sends it: once as the model's last
        // chunk and once as the stored message (which, for seed clients, carries the agent step).
        let mut last_chunk = answer.clone();
        last_chunk.additional_kwargs.remove("agent");
        sink.progress(job.generation, history, &last_chunk).await;
        sink.progress(job.generation, history, &answer).await;
        Ok(answer)
    }

    /// Stores a step's messages (while the lease is held: no other run can slip in between).
    async fn keep(&self, run: &Run, progress: &mut Progress, messages: &[Message]) -> Result<(), Failure> {
        let store = &self.inner.store;
        let revision = store.append_messages(&run.user_id, run.thread_id, messages, progress.revision).await;
        progress.revision = Some(revision.map_err(Failure::Store)?);
        Ok(())
    }

    /// Awaits `work` while keeping the run's lease, and gives up on a cancel, a client gone
    /// (when that cancels), or the run's time limit.
    async fn guarded<T>(
        &self,
        guard: &mut Guard<'_>,
        sink: &EventSink,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Failure> {
        tokio::pin!(work);
        let deadline = async {
            match guard.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                _ = guard.token.cancelled() => return Err(Failure::Cancelled),
                _ = sink.abandoned() => return Err(Failure::Cancelled),
                _ = &mut deadline => return Err(Failure::TimeLimit(guard.time_limit)),
                _ = guard.heartbeat.tick() => self.heartbeat(guard.run).await?,
                done = &mut work => return Ok(done),
            }
        }
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

    /// Stores the answer, records how the run ended and gives its thread back, at once.
    async fn finish(&self, mut run: Run, outcome: Result<(), Failure>, progress: Progress) -> Run {
        (run.status, run.error) = match outcome {
            Ok(()) => (RunStatus::Success, None),
            Err(Failure::Cancelled) => (RunStatus::Cancelled, None),
            Err(failure) => (RunStatus::Error, Some(failure.message(&run))),
        };
        run.updated_at = Timestamp::now();
        if let Err(error) = self.inner.store.finish_run(&run, &progress.answer, progress.revision).await {
            tracing::error!(run_id = %run.run_id, %error, "could not record the run's end; its lease will expire");
            // The answer was not kept: the run did not succeed, and its client is told.
            if run.status == RunStatus::Success {
                run.status = RunStatus::Error;
                run.error = Some(Failure::Store(error).message(&run));
            }
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
    const STORE_STATUS: u16 = 503;

    /// The `status_code` of the stream's error event.
    fn status_code(&self) -> u16 {
        match self {
            Failure::Cancelled => 409,
            Failure::Model(error) => error.status_code(),
            Failure::Store(_) => Failure::STORE_STATUS,
            Failure::NotStarted(_) | Failure::Tools(_) => 502,
            Failure::RecursionLimit(_) => 500,
            Failure::TimeLimit(_) => 504,
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
            Failure::Tools(reason) => format!("The agent's tools could not be set up: {reason}"),
            Failure::RecursionLimit(limit) => format!(
                "The agent took {limit} steps without a final answer (the recursion limit; set config.recursion_limit \
                 to allow more). Every step so far is saved; send input null to go on"
            ),
            Failure::TimeLimit(limit) => format!(
                "The run stopped after {} s, its time limit, before the function would be stopped. Every completed \
                 step is saved; send input null to go on",
                limit.as_secs()
            ),
            Failure::Panicked(reason) => {
                tracing::error!(run_id = %run.run_id, %reason, "the run panicked");
                "The server failed while running it (an internal error, logged)".into()
            }
        }
    }
}

fn add_usage(usage: &mut (u64, u64), answer: &Message) {
    if let Some(tokens) = &answer.usage_metadata {
        usage.0 += tokens["input_tokens"].as_u64().unwrap_or(0);
        usage.1 += tokens["output_tokens"].as_u64().unwrap_or(0);
    }
}

/// Asks the model for a search query that serves the conversation's last message.
fn search_query_request(resolved: &ResolvedModel, conversation: &[Message], max_output_tokens: u32) -> ChatRequest {
    let lines: Vec<String> = conversation
        .iter()
        .map(|m| format!("{}: {}", if m.kind == MessageType::Ai { "Assistant" } else { "User" }, m.content.text()))
        .collect();
    let prompt = format!(
        "Here is a conversation:\n\n{}\n\nWrite the search query that would find what is needed to answer its \
         last message: a few words or a question. Reply with the query alone.",
        lines.join("\n")
    );
    ChatRequest {
        model: resolved.model_id.clone(),
        system: None,
        messages: vec![Message::new(MessageType::Human, prompt)],
        max_output_tokens,
        tools: Vec::new(),
    }
}

/// A model's whole text answer, not streamed to anyone.
async fn collect_text(resolved: &ResolvedModel, request: ChatRequest) -> Result<String, LlmError> {
    let mut stream = resolved.model.stream(request).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        if let crate::llm::Chunk::Text(delta) = chunk? {
            text.push_str(&delta);
        }
    }
    Ok(text.trim().to_string())
}

/// Where a run stands in its thread.
#[derive(Default)]
struct Progress {
    /// The thread's revision as the run last read or wrote it.
    revision: Option<Revision>,
    /// The final answer: stored with the run's end, in the same write.
    answer: Vec<Message>,
}

/// What keeps a run honest while it waits on a model or a tool.
struct Guard<'a> {
    run: &'a Run,
    token: &'a CancellationToken,
    heartbeat: tokio::time::Interval,
    deadline: Option<tokio::time::Instant>,
    time_limit: Duration,
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
