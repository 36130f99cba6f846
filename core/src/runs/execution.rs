//! What a run carries while it executes: where it stands in its thread, what keeps it honest
//! while it waits, and the clients it streams to (and those that watch it from this process).

use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::graph_events::GraphEvents;
use super::job::{Listener, RunEvent, RunJob};
use super::protocol_events::{ProtocolEvents, RunEnd};
use super::recorder::Recorder;
use super::render::{OpenGptsEvents, Renderer};
use super::thread_log::LogWriter;
use super::{Bot, OnDisconnect};
use crate::model::{Message, Run};
use crate::store::Revision;

/// Where a run stands in its thread.
#[derive(Default)]
pub(super) struct Progress {
    /// The thread's revision as the run last read or wrote it.
    pub(super) revision: Option<Revision>,
    /// The final answer: stored with the run's end, in the same write.
    pub(super) answer: Vec<Message>,
}

/// What keeps a run honest while it waits on a model or a tool.
pub(super) struct Guard<'a> {
    pub(super) run: &'a Run,
    pub(super) token: &'a CancellationToken,
    pub(super) heartbeat: tokio::time::Interval,
    pub(super) deadline: Option<tokio::time::Instant>,
    pub(super) time_limit: Duration,
}

/// Sends to a streaming client while it listens, in the events of its protocol (the renderer,
/// chosen once for the run); renders nothing worth only a client once it has gone.
pub(super) struct EventSink {
    pub(super) sender: Option<mpsc::Sender<RunEvent>>,
    pub(super) cancel_on_disconnect: bool,
    renderer: Box<dyn Renderer<Event = RunEvent>>,
    /// The bot whose flow runs: the nodes it enters are the ones it declares.
    bot: Bot,
    /// Set when the stream is kept for clients that join it later.
    recorder: Option<Recorder>,
    /// Clients in this process that joined the stream of a run whose events are not kept.
    watchers: Option<broadcast::Sender<RunEvent>>,
    /// The thread's event log, which every run writes in the event protocol's terms.
    log: ProtocolEvents,
    log_writer: LogWriter,
}

/// Each step of a run, rendered and sent.
macro_rules! rendered_step {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $type:ty),*)) => {
        $(#[$doc])*
        pub(super) async fn $name(&mut self, $($arg: $type),*) {
            let events = self.renderer.$name($($arg),*);
            self.emit(events).await;
            let entries = self.log.$name($($arg),*);
            self.log_all(entries).await;
        }
    };
}

impl EventSink {
    pub(super) fn new(
        listener: Option<Listener>,
        job: &RunJob,
        recorder: Option<Recorder>,
        watchers: Option<broadcast::Sender<RunEvent>>,
        log_writer: LogWriter,
    ) -> Self {
        let run = &job.run;
        let renderer: Box<dyn Renderer<Event = RunEvent>> = match job.graph.clone() {
            Some(stream) => Box::new(GraphEvents::new(stream, run.run_id, run.thread_id, run.assistant_id)),
            None => Box::new(OpenGptsEvents(job.generation)),
        };
        let (sender, cancel_on_disconnect) = match listener {
            Some(Listener { events, on_disconnect }) => (Some(events), on_disconnect == OnDisconnect::Cancel),
            None => (None, false),
        };
        let bot = Bot::of_configurable(&job.configurable);
        let log = ProtocolEvents::new(bot, run.run_id, run.thread_id);
        EventSink { sender, cancel_on_disconnect, renderer, bot, recorder, watchers, log, log_writer }
    }

    async fn log_all(&mut self, entries: Vec<super::protocol_events::LogEntry>) {
        for entry in entries {
            self.log_writer.add(entry).await;
        }
    }

    /// The run begins: its thread's log says so.
    pub(super) async fn started(&mut self) {
        self.log_writer.add(self.log.started()).await;
    }

    /// The run is over: its thread's log says how (`Err` with the failure's message).
    pub(super) async fn ended(&mut self, outcome: Result<(), &str>) {
        let end = match outcome {
            Ok(()) if self.log.waiting => RunEnd::Interrupted,
            Ok(()) => RunEnd::Completed,
            Err(message) => RunEnd::Failed(message),
        };
        self.log_writer.add(self.log.ended(end)).await;
    }

    pub(super) async fn send(&mut self, event: RunEvent) {
        if let Some(sender) = &self.sender {
            if sender.send(event).await.is_err() {
                self.sender = None;
            }
        }
    }

    /// Whether what the run does is worth rendering in its protocol's events: a client listens,
    /// or watches, or the stream is kept. (The thread's log is rendered whatever this says.)
    fn rendered(&self) -> bool {
        self.recorder.is_some()
            || self.watchers.as_ref().is_some_and(|watchers| watchers.receiver_count() > 0)
            || self.sender.as_ref().is_some_and(|sender| !sender.is_closed())
    }

    /// Keeps each event (naming it by its place in the kept stream), then sends it to the
    /// watchers and the client.
    async fn emit(&mut self, events: Vec<RunEvent>) {
        for mut event in events {
            if let (Some(recorder), RunEvent::Frame { event: name, data, id }) = (&mut self.recorder, &mut event) {
                *id = Some(recorder.keep(name, data).await);
            }
            if let Some(watchers) = self.watchers.as_ref().filter(|watchers| watchers.receiver_count() > 0) {
                let _ = watchers.send(event.clone());
            }
            self.send(event).await;
        }
    }

    /// Writes the kept events still pending: before the run's end is recorded, so a client that
    /// sees the end finds them all.
    pub(super) async fn keep_all(&mut self) {
        if let Some(recorder) = &mut self.recorder {
            recorder.write().await;
        }
        self.log_writer.write().await;
    }

    rendered_step!(
        /// The thread as the run found it, input included.
        opening(history: &[Message])
    );
    /// A node of the bot's graph starts, from `state`. A flow that enters a node its bot does
    /// not declare would show clients a graph that is not the one its assistant describes: a bug,
    /// which fails the run in a debug build (every test's).
    pub(super) async fn enter(&mut self, node: &'static str, state: &[Message]) {
        debug_assert!(self.bot.nodes().contains(&node), "{:?} entered '{node}', which it does not declare", self.bot);
        let events = self.renderer.enter(node, state);
        self.emit(events).await;
        let entries = self.log.enter(node, state);
        self.log_all(entries).await;
    }
    rendered_step!(
        /// The run has answered: `produced` follows `before` in the thread it leaves.
        closing(before: &[Message], produced: &[Message])
    );
    rendered_step!(
        /// A node of the bot's graph is done: `produced` follows `before` in the thread.
        node_done(before: &[Message], produced: &[Message])
    );
    rendered_step!(
        /// The run stops before its tools, for the user's go-ahead (as a review of the calls
        /// when `review`); `state` ends with the calls.
        interrupted(state: &[Message], review: bool)
    );
    rendered_step!(
        /// The model's message complete.
        finished(history: &[Message], answer: &Message)
    );
    rendered_step!(
        /// Messages made whole by a step, not streamed: a round of tool answers, retrieved
        /// documents.
        results(history: &[Message], results: &[Message])
    );

    /// The model's message as it grows: rendered only while somebody can see it, since it is
    /// rendered once per token.
    pub(super) async fn progress(&mut self, history: &[Message], current: &Message) {
        if self.rendered() {
            let events = self.renderer.progress(history, current);
            self.emit(events).await;
        }
        let entries = self.log.progress(history, current);
        self.log_all(entries).await;
    }

    /// Resolves when the client has gone and that cancels the run; never otherwise.
    pub(super) async fn abandoned(&self) {
        match &self.sender {
            Some(sender) if self.cancel_on_disconnect => sender.closed().await,
            _ => std::future::pending().await,
        }
    }
}
