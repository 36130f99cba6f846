use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::execution::{EventSink, Guard, Progress};
use super::failure::{panic_message, Failure};
use super::job::{Listener, RunEvent, RunJob, Snapshot};
use super::recorder::Recorder;
use super::thread_log::{LogWriter, ThreadLogs};
use super::webhook::Webhooks;
use super::{Bot, DispatchError, MultitaskStrategy, OnDisconnect, RunError};
use crate::config::Config;
use crate::documents::Library;
use crate::llm::{LlmError, ModelCatalog};
use crate::model::{Message, MessageType, Run, RunStatus, Timestamp};
use crate::store::{RunStart, Store, StoreError};
use crate::tools::Toolbox;

/// How many events a slow watcher of a run may fall behind before it misses some.
const WATCH_BUFFER: usize = 1024;

/// How background runs are handed to what executes them (see `dispatch`).
#[async_trait]
pub trait BackgroundDispatch: Send + Sync + 'static {
    async fn dispatch(&self, engine: &RunEngine, job: RunJob) -> Result<(), DispatchError>;

    /// Whether the run executes in this process, where a cancel can reach it directly.
    fn executes_here(&self) -> bool;

    /// Opens the connection to the worker ahead of the first run (a Lambda's init is the time
    /// for it). Failures are ignored: the first run finds out.
    async fn warm_up(&self) {}
}

#[derive(Clone)]
pub struct RunEngine {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) models: Arc<ModelCatalog>,
    pub(super) tools: Toolbox,
    pub(super) library: Library,
    pub(super) config: Arc<Config>,
    pub(super) dispatch: Arc<dyn BackgroundDispatch>,
    pub(super) webhooks: Webhooks,
    /// Runs executing in this process, so a cancel reaches them at once.
    pub(super) active: Mutex<HashMap<Uuid, ActiveRun>>,
    /// The LangGraph runs executing in this process, for clients that join their streams
    /// without kept events.
    pub(super) watched: Mutex<HashMap<Uuid, broadcast::Sender<RunEvent>>>,
    /// The threads' event logs as this process writes and reads them.
    pub(super) logs: Arc<ThreadLogs>,
}

/// A run executing in this process: its thread, and what cancels it.
#[derive(Debug)]
pub(super) struct ActiveRun {
    pub(super) thread_id: Uuid,
    pub(super) token: CancellationToken,
}

impl ActiveRun {
    fn on(thread_id: Uuid) -> Self {
        ActiveRun { thread_id, token: CancellationToken::new() }
    }
}

/// A validated run that has not taken its thread yet.
#[derive(Debug)]
pub(super) struct PendingRun {
    pub(super) job: RunJob,
    pub(super) input: Vec<Message>,
    /// The thread as read while validating.
    pub(super) found: Snapshot,
    /// The run that held the thread until its process ended, if one did (see `acquire`).
    pub(super) abandoned_by: Option<Uuid>,
    pub(super) strategy: MultitaskStrategy,
    pub(super) on_disconnect: OnDisconnect,
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
        let (active, watched) = (Mutex::new(HashMap::new()), Mutex::new(HashMap::new()));
        let webhooks = Webhooks::new(&config.webhooks, config.tools.url_allowlist.clone());
        RunEngine {
            inner: Arc::new(Inner {
                store,
                models,
                tools,
                library,
                config,
                dispatch,
                webhooks,
                active,
                watched,
                logs: Arc::default(),
            }),
        }
    }

    /// The same engine, handing background runs to `dispatch`: set before any run starts.
    pub fn with_dispatch(self, dispatch: Arc<dyn BackgroundDispatch>) -> Self {
        let inner = &self.inner;
        let (store, models, tools) = (inner.store.clone(), inner.models.clone(), inner.tools.clone());
        RunEngine::new(store, models, tools, inner.library.clone(), inner.config.clone(), dispatch)
    }

    /// Takes the thread's lease and appends the input, at once: from the returned job on, failures
    /// belong to the run. A busy thread is `ThreadBusy` at once without `wait_while`, or under `reject`;
    /// otherwise the run waits for the thread (cancelling its holder first under `interrupt`) for
    /// at most `RUN_QUEUE_WAIT_SECONDS`, and while `wait_while` holds (a client still listening).
    pub(super) async fn acquire(
        &self,
        pending: &PendingRun,
        wait_while: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<RunJob, RunError> {
        let store = &self.inner.store;
        let run = &pending.job.run;
        let deadline = tokio::time::Instant::now() + self.inner.config.run_queue_wait;
        let mut pause = Duration::from_millis(20);
        let mut interrupted = None;
        // The run that last held the thread: if its process ended, its lease ran out instead of
        // being given back, and its record still says it is going.
        let mut previous = pending.abandoned_by;
        let start = RunStart {
            run,
            lease: self.inner.config.run_lease,
            max_user_runs: self.inner.config.max_runs_per_user,
            input: &pending.input,
            seen: Some(pending.found.revision),
        };
        let started = loop {
            // A lease tells a holder whose process went silent from one that goes on. A run
            // executing in this process goes on, however late it renews its lease (the process was
            // stopped or starved, and its heartbeat is due with this try): it is waited for, not
            // replaced.
            let attempt = match self.holder_here(run) {
                Some(holder) => Err(StoreError::ThreadBusy { run_id: holder }),
                None => store.start_run(start).await,
            };
            match attempt {
                Ok(started) => break started,
                Err(StoreError::ThreadBusy { run_id: holder })
                    if wait_while.is_some_and(|wanted| wanted())
                        && pending.strategy != MultitaskStrategy::Reject
                        && tokio::time::Instant::now() < deadline =>
                {
                    previous = Some(holder);
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
        if let Some(abandoned) = previous.filter(|previous| *previous != run.run_id) {
            // Recorded failed now if it was abandoned (see `get`), not only once someone reads it.
            match self.get(&run.user_id, abandoned).await {
                Ok(_) | Err(RunError::Store(StoreError::NotFound(_))) => {}
                Err(error) => {
                    tracing::warn!(run_id = %abandoned, %error, "an abandoned run is not recorded as failed yet")
                }
            }
        }
        self.active().insert(run.run_id, ActiveRun::on(run.thread_id));
        let mut job = pending.job.clone();
        job.started_at = Some(started.revision);
        if started.unchanged {
            let mut history = pending.found.history.clone();
            history.extend_from_slice(&pending.input);
            job.snapshot = Some(Snapshot { history, revision: started.revision });
        }
        Ok(job)
    }

    /// Hands a started run to the background dispatcher. If it cannot take it, the run is ended
    /// as failed and its thread freed.
    pub(super) async fn run_in_background(&self, job: RunJob) -> Result<(), RunError> {
        let run = job.run.clone();
        let dispatch = &self.inner.dispatch;
        if !dispatch.executes_here() {
            // Another process runs it, or none will: a cancel reaches it through the store, and
            // the runs queued here on its thread must not wait for it as for one executing here.
            // Before the invoke, which a client that leaves may cut short.
            self.active().remove(&run.run_id);
        }
        if let Err(error) = dispatch.dispatch(self, job).await {
            // An invoke whose answer was lost may have landed: a worker that claimed the run has
            // it, and it goes on. Otherwise the claim keeps a late delivery from starting it.
            if let Ok(false) = self.inner.store.claim_run(&run.user_id, run.run_id).await {
                tracing::warn!(run_id = %run.run_id, %error, "the worker's invoke failed, but the worker has the run");
                return Ok(());
            }
            self.finish(run, Err(Failure::NotStarted(error.to_string())), Progress::default()).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Executes a started run to its end and returns its final record. `events`, when given,
    /// receives the stream's payloads; a receiver that goes away does not stop the run.
    pub(super) async fn execute(&self, mut job: RunJob, listener: Option<Listener>) -> Run {
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
            let token = self.token(&job.run);
            let recorder =
                job.graph.as_ref().filter(|graph| graph.resumable).map(|_| {
                    Recorder::new(self.inner.store.clone(), job.run.clone(), self.inner.config.run_events_ttl)
                });
            let watchers = job.graph.as_ref().map(|_| {
                let (sender, _) = broadcast::channel(WATCH_BUFFER);
                self.watched().insert(job.run.run_id, sender.clone());
                sender
            });
            let logs = self.inner.logs.clone();
            let ttl = self.inner.config.thread_events_ttl;
            let log = LogWriter::open(self.inner.store.clone(), logs, job.run.thread_id, ttl).await;
            let mut sink = EventSink::new(listener, &job, recorder, watchers, log);
            sink.started().await;
            let snapshot = job.snapshot.take();
            let mut progress = Progress::default();
            // A bug that panics ends this run as failed, its thread freed, not the process.
            let outcome = AssertUnwindSafe(self.drive(&job, snapshot, &mut progress, &token, &mut sink, started))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Failure::Panicked(panic_message(&panic))));
            match &outcome {
                Ok(()) => sink.ended(Ok(())).await,
                Err(failure) => {
                    let message = failure.message(&job.run);
                    sink.ended(Err(&message)).await;
                    sink.send(RunEvent::Error { status_code: failure.status_code(), message }).await;
                }
            }
            sink.keep_all().await;
            let answered = outcome.is_ok();
            let webhook = job.webhook.take();
            let run = self.finish(job.run, outcome, progress).await;
            // Its watchers' streams end with it.
            self.watched().remove(&run.run_id);
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
            // Before the stream closes: on Lambda, the function may be frozen once it has.
            if let Some(url) = webhook {
                self.call_webhook(&url, &run).await;
            }
            drop(sink);
            run
        }
        .instrument(span)
        .await
    }

    /// A webhook URL as a request names it.
    pub fn check_webhook(&self, url: &str) -> Result<(), RunError> {
        self.inner.webhooks.check(url).map(drop).map_err(RunError::Webhook)
    }

    async fn call_webhook(&self, url: &str, run: &Run) {
        let values = match run.status {
            RunStatus::Error => None,
            _ => match self.inner.store.messages(&run.user_id, run.thread_id).await {
                Ok(messages) => serde_json::to_value(super::State(&messages, &[])).ok(),
                Err(error) => {
                    tracing::warn!(run_id = %run.run_id, %error, "the webhook goes without the thread's values");
                    None
                }
            },
        };
        self.inner.webhooks.deliver(url, run, values).await;
    }

    /// Opens the connection to the background worker ahead of the first run.
    pub async fn warm_up(&self) {
        self.inner.dispatch.warm_up().await;
    }

    fn token(&self, run: &Run) -> CancellationToken {
        self.active().entry(run.run_id).or_insert_with(|| ActiveRun::on(run.thread_id)).token.clone()
    }

    /// Another run executing in this process on `run`'s thread.
    fn holder_here(&self, run: &Run) -> Option<Uuid> {
        let active = self.active();
        active.iter().find(|(id, other)| **id != run.run_id && other.thread_id == run.thread_id).map(|(id, _)| *id)
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
        let beat = self.inner.config.run_lease / 3;
        let started = match job.not_before {
            Some(not_before) => {
                self.wait_to_start(run, not_before, beat, token, sink).await?;
                std::time::Instant::now()
            }
            None => started,
        };
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
                // Written to since the start: by the user (allowed while the run holds the
                // thread), or by another run after this one's lease ran out, whose input this
                // run must not answer. The lease tells which.
                if job.started_at.is_some_and(|started| started != view.revision) {
                    let lease = self.inner.config.run_lease;
                    store.renew_lease(run.thread_id, run.run_id, lease).await.map_err(Failure::Store)?;
                }
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
        sink.opening(&history).await;
        let time_limit = self.inner.config.run_time_limit;
        let mut guard = Guard {
            run,
            token,
            heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + beat, beat),
            deadline: time_limit.map(|limit| tokio::time::Instant::from_std(started + limit)),
            time_limit: time_limit.unwrap_or_default(),
        };
        // A run with no input on a thread that ends in an answer (or holds nothing) has no step
        // left, as a graph whose `next` is empty: answering the same question again would store
        // a second answer to it.
        let nothing_next = history.last().is_none_or(|last| last.kind == MessageType::Ai && last.tool_calls.is_empty());
        let usage = if job.resume && nothing_next {
            sink.closing(&history, &[]).await;
            (0, 0)
        } else {
            let bot = Bot::of_configurable(&job.configurable);
            match bot {
                Bot::ChatRetrieval => {
                    self.answer_from_files(job, &resolved, &mut history, progress, &mut guard, sink).await?
                }
                Bot::Chatbot | Bot::Agent => {
                    let (agent, declaration) = (agent.as_ref(), bot.declaration());
                    self.agent_loop(declaration, job, &resolved, agent, &mut history, progress, &mut guard, sink)
                        .await?
                }
            }
        };
        span.record("input_tokens", usage.0);
        span.record("output_tokens", usage.1);
        Ok(())
    }

    /// Runs executing in this process, so a cancel reaches them at once.
    pub(super) fn active(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, ActiveRun>> {
        self.inner.active.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The events of a LangGraph run executing in this process from now on, if it is here.
    pub fn watch(&self, run_id: Uuid) -> Option<broadcast::Receiver<RunEvent>> {
        self.watched().get(&run_id).map(broadcast::Sender::subscribe)
    }

    /// The threads' event logs as this process writes them, for readers here.
    pub fn thread_logs(&self) -> Arc<ThreadLogs> {
        self.inner.logs.clone()
    }

    pub(super) fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, broadcast::Sender<RunEvent>>> {
        self.inner.watched.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
