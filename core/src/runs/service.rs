//! The run service: the one place a run starts, whichever protocol asked for it.
//!
//! `start` prepares the thread (see `preparation`), names the run, takes the thread's lease with
//! the run's input, and then hands the run to the background worker, streams it, or runs it to
//! its end. A stateless run's thread goes with it here, and nowhere else.

use serde_json::json;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use super::engine::PendingRun;
use super::graph_state::GraphStream;
use super::job::{Execution, Listener, RunJob, Snapshot};
use super::{find_assistant, Bot, MultitaskStrategy, OnDisconnect, RunEngine, RunError, RunEvent, RunInput};
use crate::model::{
    Assistant, AssistantChoice, Generation, Message, Run, RunProfile, RunSpec, RunStatus, ThreadTarget, Timestamp,
    UserId,
};
use crate::store::{Entity, StoreError, ThreadView};

/// Enough buffered events that a briefly slow client does not hold the model back.
const STREAM_BUFFER: usize = 256;

/// How the caller follows the run.
pub enum Mode {
    /// Handed to the background worker; the caller gets the run's record at once.
    Background,
    /// Executed here while the caller reads its events.
    Stream(StreamTo),
    /// Executed here to its end; the caller gets the final record. A caller that goes away does
    /// not stop it.
    Wait,
}

/// What a streaming caller wants besides the run's own events.
pub struct StreamTo {
    /// The stream's first event, made from the run once it holds its thread.
    pub announce: Option<fn(&Run) -> RunEvent>,
    /// The event that tells the caller the run could not take its thread after the stream began
    /// (in the protocol's words).
    pub refusal: fn(RunError) -> RunEvent,
}

/// A started run, as the mode delivers it.
pub enum Started {
    Background(Run),
    Streaming {
        run: Run,
        events: mpsc::Receiver<RunEvent>,
    },
    /// The run's final record, and its thread's messages as they ended (read before a stateless
    /// run's thread went, and only for a run that did not fail).
    Finished {
        run: Run,
        messages: Option<Vec<Message>>,
    },
}

impl Started {
    /// The run's record as the mode left it: started, or ended.
    pub fn into_run(self) -> Run {
        match self {
            Started::Background(run) | Started::Streaming { run, .. } | Started::Finished { run, .. } => run,
        }
    }
}

impl RunEngine {
    /// Starts a run for `user`. Errors are the caller's to see (nothing of the run is stored);
    /// failures after the start belong to the run and end up in its record and stream.
    pub async fn start(&self, user: UserId, mut spec: RunSpec, mode: Mode) -> Result<Started, RunError> {
        // A stateless run's thread is made for it, and goes when the run could not start.
        let stateless = match spec.thread {
            ThreadTarget::Stateless { keep } => {
                let thread_id = Uuid::now_v7();
                spec.thread = ThreadTarget::Existing { thread_id, create: true };
                Some((thread_id, keep))
            }
            ThreadTarget::Existing { .. } => None,
        };
        // A background run's answer is read from its thread later: the thread stays.
        let ephemeral = stateless.is_some_and(|(_, keep)| !keep) && !matches!(mode, Mode::Background);
        let execution = match mode {
            Mode::Background => Execution::Background,
            Mode::Stream(_) | Mode::Wait => Execution::Streamed,
        };
        let started = match self.prepare(user.clone(), spec, execution).await {
            Ok(pending) => match mode {
                Mode::Background => self.start_in_background(&pending).await,
                Mode::Stream(to) => self.start_streamed(pending, to, ephemeral).await,
                Mode::Wait => self.run_to_end(&pending, ephemeral).await,
            },
            Err(error) => Err(error),
        };
        if let (Err(_), Some((thread_id, _))) = (&started, stateless) {
            self.forget_stateless(&user, thread_id).await;
        }
        started
    }

    async fn prepare(&self, user: UserId, mut spec: RunSpec, execution: Execution) -> Result<PendingRun, RunError> {
        let mut view = self.prepare_thread(&user, &mut spec).await?;
        let assistant = match &spec.assistant {
            AssistantChoice::Resolved(assistant) => (**assistant).clone(),
            // The thread's own assistant unless one is named: known once the thread is read.
            AssistantChoice::ById(named) => {
                let id = named.unwrap_or(view.thread.assistant_id);
                find_assistant(self.inner.store.as_ref(), &user, id)
                    .await?
                    .ok_or(StoreError::NotFound(Entity::Assistant))?
            }
        };
        if spec.graph.is_some() {
            self.stamp(&mut view, &assistant).await?;
        }
        self.plan(user, view, &assistant, spec, execution)
    }

    /// Names a run of `assistant` on the thread as `view` shows it, checking what it needs to
    /// run (its model, its tools, its webhook, room in its thread). Nothing is stored yet.
    fn plan(
        &self,
        user: UserId,
        view: ThreadView,
        assistant: &Assistant,
        spec: RunSpec,
        execution: Execution,
    ) -> Result<PendingRun, RunError> {
        let thread = view.thread;
        let assistant_id = assistant.assistant_id;
        let mut configurable = super::configurable::with_overrides(assistant.configurable(), spec.configurable);
        configurable.insert("user_id".into(), json!(user));
        configurable.insert("thread_id".into(), json!(thread.thread_id));
        configurable.insert("assistant_id".into(), json!(assistant_id));
        self.inner.models.resolve(&configurable)?;
        self.inner.tools.agent_config(&configurable)?;
        if let Some(url) = &spec.webhook {
            self.check_webhook(url)?;
        }

        // The OpenGPTs generation whose shapes the answer takes. RAG bots came with the latest,
        // and their clients read its shapes; a LangGraph run is told apart by `graph` alone.
        let generation = match Bot::of_configurable(&configurable) {
            _ if spec.graph.is_some() => Generation::Latest,
            Bot::ChatRetrieval => Generation::Latest,
            _ => spec.input.generation(),
        };
        let (graph, profile) = match spec.graph {
            Some(options) => {
                let graph_id = Bot::of(assistant).id();
                let stream = GraphStream {
                    modes: options.modes,
                    graph_id: graph_id.to_string(),
                    metadata: thread.metadata.clone().unwrap_or_default(),
                    resumable: options.resumable,
                };
                let mut metadata = options.metadata;
                metadata.insert("graph_id".into(), json!(graph_id));
                metadata.insert("assistant_id".into(), json!(assistant_id));
                let profile = RunProfile {
                    metadata,
                    kwargs: options.kwargs,
                    multitask_strategy: spec.strategy.as_str().to_string(),
                };
                (Some(stream), Some(profile))
            }
            None => (None, None),
        };
        let resume = spec.input == RunInput::Resume;
        let recursion_limit = spec.recursion_limit.unwrap_or(self.inner.config.recursion_limit);
        let mut input = spec.input.into_messages();
        input.iter_mut().for_each(Message::ensure_id);
        super::check_thread_room(&self.inner.config.limits, &view.messages, &input)?;
        let now = Timestamp::now();
        let run = Run {
            run_id: Uuid::new_v4(),
            thread_id: thread.thread_id,
            assistant_id,
            user_id: user,
            status: match execution {
                Execution::Streamed if spec.start_after.is_none() => RunStatus::Running,
                _ => RunStatus::Pending,
            },
            error: None,
            created_at: now,
            updated_at: now,
            profile,
        };
        let not_before = spec.start_after.map(|delay| now.plus(delay));
        let job = RunJob {
            run,
            generation,
            configurable,
            recursion_limit,
            resume,
            graph,
            not_before,
            started_at: None,
            webhook: spec.webhook,
            snapshot: None,
        };
        Ok(PendingRun {
            job,
            input,
            found: Snapshot { history: view.messages, revision: view.revision },
            abandoned_by: view.abandoned_by,
            strategy: spec.strategy,
            on_disconnect: spec.on_disconnect,
        })
    }

    /// A busy thread is waited for here (bounded), so the answer says whether the run started.
    async fn start_in_background(&self, pending: &PendingRun) -> Result<Started, RunError> {
        let job = self.acquire(pending, Some(&|| true)).await?;
        let run = job.run.clone();
        self.run_in_background(job).await?;
        Ok(Started::Background(run))
    }

    /// A free thread is taken before answering, so a refusal is the caller's error. A busy one,
    /// unless the caller asked for `reject`, is waited for inside the stream. The run lives in
    /// its own task: the caller going away ends only the stream, unless it asked for the run to
    /// be cancelled then. Its logs stay inside the caller's span (and so carry the Lambda
    /// request id).
    async fn start_streamed(&self, pending: PendingRun, to: StreamTo, ephemeral: bool) -> Result<Started, RunError> {
        let started = match self.acquire(&pending, None).await {
            Ok(job) => Some(job),
            Err(RunError::Store(StoreError::ThreadBusy { .. })) if pending.strategy != MultitaskStrategy::Reject => {
                None
            }
            Err(error) => return Err(error),
        };
        let run = pending.job.run.clone();
        let (sender, events) = mpsc::channel(STREAM_BUFFER);
        let engine = self.clone();
        let stream = async move {
            let job = match started {
                Some(job) => job,
                None => {
                    // A caller that leaves while waiting, and asked for cancel on disconnect, has
                    // its run dropped before anything of it is stored.
                    let cancel_on_disconnect = pending.on_disconnect == OnDisconnect::Cancel;
                    let listening = || !(cancel_on_disconnect && sender.is_closed());
                    match engine.acquire(&pending, Some(&listening)).await {
                        Ok(job) => job,
                        Err(error) => {
                            let _ = sender.send((to.refusal)(error)).await;
                            if ephemeral {
                                engine.forget_stateless(&pending.job.run.user_id, pending.job.run.thread_id).await;
                            }
                            return;
                        }
                    }
                }
            };
            if let Some(announce) = to.announce {
                let _ = sender.send(announce(&job.run)).await;
            }
            let listener = Listener { events: sender, on_disconnect: pending.on_disconnect };
            let ended = engine.execute(job, Some(listener)).await;
            if ephemeral {
                engine.forget_stateless(&ended.user_id, ended.thread_id).await;
            }
        };
        tokio::spawn(stream.in_current_span());
        Ok(Started::Streaming { run, events })
    }

    /// Runs in its own task, so a caller that goes away does not stop it.
    async fn run_to_end(&self, pending: &PendingRun, ephemeral: bool) -> Result<Started, RunError> {
        let job = self.acquire(pending, Some(&|| true)).await?;
        let engine = self.clone();
        let run = tokio::spawn(async move { engine.execute(job, None).await }.in_current_span())
            .await
            .map_err(|error| RunError::Task(error.to_string()))?;
        let messages = match run.status {
            RunStatus::Error => None,
            _ => Some(self.inner.store.messages(&run.user_id, run.thread_id).await),
        };
        if ephemeral {
            self.forget_stateless(&run.user_id, run.thread_id).await;
        }
        Ok(Started::Finished { run, messages: messages.transpose()? })
    }

    /// A stateless run's thread, gone with the run (or with its start, if that failed before
    /// the thread was made).
    async fn forget_stateless(&self, user: &UserId, thread_id: Uuid) {
        match self.inner.store.delete_thread(user, thread_id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(error) => tracing::warn!(%error, "a stateless run's thread could not be deleted"),
        }
    }
}
