//! What a run carries while it executes: where it stands in its thread, what keeps it honest
//! while it waits, and the clients it streams to (and those that watch it from this process).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::engine::{Listener, RunEngine, RunEvent, RunJob};
use super::graph_events::{Frame, GraphEvents};
use super::recorder::Recorder;
use super::{render, OnDisconnect};
use crate::model::{Generation, Message, Run};
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

/// Sends to a streaming client while it listens, in the shape its API speaks; renders nothing
/// once it has gone.
pub(super) struct EventSink {
    pub(super) sender: Option<mpsc::Sender<RunEvent>>,
    pub(super) cancel_on_disconnect: bool,
    generation: Generation,
    /// Set for a run of the LangGraph API, which streams per node and per stream mode.
    graph: Option<GraphEvents>,
    /// Set when the stream is kept for clients that join it later.
    recorder: Option<Recorder>,
    /// Clients in this process that joined the stream of a run whose events are not kept.
    watchers: Option<broadcast::Sender<RunEvent>>,
}

impl EventSink {
    pub(super) fn new(
        listener: Option<Listener>,
        job: &RunJob,
        recorder: Option<Recorder>,
        watchers: Option<broadcast::Sender<RunEvent>>,
    ) -> Self {
        let graph = job
            .graph
            .clone()
            .map(|stream| GraphEvents::new(stream, job.run.run_id, job.run.thread_id, job.run.assistant_id));
        let (sender, cancel_on_disconnect) = match listener {
            Some(Listener { events, on_disconnect }) => (Some(events), on_disconnect == OnDisconnect::Cancel),
            None => (None, false),
        };
        EventSink { sender, cancel_on_disconnect, generation: job.generation, graph, recorder, watchers }
    }

    pub(super) async fn send(&mut self, event: RunEvent) {
        if let Some(sender) = &self.sender {
            if sender.send(event).await.is_err() {
                self.sender = None;
            }
        }
    }

    /// Whether what the run does is worth rendering: a client listens, or watches, or the
    /// stream is kept.
    fn rendered(&self) -> bool {
        self.recorder.is_some()
            || self.watchers.as_ref().is_some_and(|watchers| watchers.receiver_count() > 0)
            || self.sender.as_ref().is_some_and(|sender| !sender.is_closed())
    }

    async fn frames(&mut self, frames: Vec<Frame>) {
        for (event, data) in frames {
            let id = match &mut self.recorder {
                Some(recorder) => Some(recorder.keep(event, &data).await),
                None => None,
            };
            let frame = RunEvent::Frame { event, data, id };
            if let Some(watchers) = self.watchers.as_ref().filter(|watchers| watchers.receiver_count() > 0) {
                let _ = watchers.send(frame.clone());
            }
            self.send(frame).await;
        }
    }

    /// Writes the kept events still pending: before the run's end is recorded, so a client that
    /// sees the end finds them all.
    pub(super) async fn keep_all(&mut self) {
        if let Some(recorder) = &mut self.recorder {
            recorder.write().await;
        }
    }

    /// The thread as the run found it, input included.
    pub(super) async fn opening(&mut self, history: &[Message]) {
        match &mut self.graph {
            Some(graph) => {
                let frames = graph.opening(history);
                self.frames(frames).await
            }
            None if self.generation == Generation::Latest => self.send(RunEvent::Data(render::opening(history))).await,
            None => {}
        }
    }

    /// A node of the bot's graph starts, from `state`.
    pub(super) async fn enter(&mut self, node: &'static str, state: &[Message]) {
        if let Some(graph) = &mut self.graph {
            let frames = graph.enter(node, state);
            self.frames(frames).await;
        }
    }

    /// The run has answered: `produced` follows `before` in the thread it leaves.
    pub(super) async fn closing(&mut self, before: &[Message], produced: &[Message]) {
        if let Some(graph) = &mut self.graph {
            let frames = graph.closing(before, produced);
            self.frames(frames).await;
        }
    }

    /// A node of the bot's graph is done: `produced` follows `before` in the thread.
    pub(super) async fn node_done(&mut self, before: &[Message], produced: &[Message]) {
        if let Some(graph) = &mut self.graph {
            let frames = graph.node_done(before, produced);
            self.frames(frames).await;
        }
    }

    /// The run stops before its tools, for the user's go-ahead (as a review of the calls when
    /// `review`); `state` ends with the calls.
    pub(super) async fn interrupted(&mut self, state: &[Message], review: bool) {
        if let Some(graph) = &mut self.graph {
            let frames = graph.interrupted(state, review);
            self.frames(frames).await;
        }
    }

    /// The model's message as it grows.
    pub(super) async fn progress(&mut self, history: &[Message], current: &Message) {
        if !self.rendered() {
            return;
        }
        match &mut self.graph {
            Some(graph) => {
                let frames = graph.progress(current);
                self.frames(frames).await
            }
            None => self.send(RunEvent::Data(render::progress(self.generation, history, current))).await,
        }
    }

    /// The model's message complete: OpenGPTs sends it twice, as the model's last chunk and as
    /// the stored message (which, for seed clients, carries the agent step).
    pub(super) async fn finished(&mut self, history: &[Message], answer: &Message) {
        match &mut self.graph {
            Some(graph) => {
                let frames = graph.finished(answer);
                self.frames(frames).await
            }
            None => {
                let mut last_chunk = answer.clone();
                last_chunk.additional_kwargs.remove("agent");
                self.progress(history, &last_chunk).await;
                self.progress(history, answer).await;
            }
        }
    }

    /// Messages made whole by a step, not streamed: a round of tool answers, retrieved documents.
    pub(super) async fn results(&mut self, history: &[Message], results: &[Message]) {
        match &mut self.graph {
            Some(graph) => {
                let frames = graph.whole(results);
                self.frames(frames).await
            }
            None => self.send(RunEvent::Data(render::tool_results(self.generation, history, results))).await,
        }
    }

    /// Resolves when the client has gone and that cancels the run; never otherwise.
    pub(super) async fn abandoned(&self) {
        match &self.sender {
            Some(sender) if self.cancel_on_disconnect => sender.closed().await,
            _ => std::future::pending().await,
        }
    }
}

impl RunEngine {
    /// The events of a LangGraph run executing in this process from now on, if it is here.
    pub fn watch(&self, run_id: Uuid) -> Option<broadcast::Receiver<RunEvent>> {
        self.watched().get(&run_id).map(broadcast::Sender::subscribe)
    }

    pub(super) fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, broadcast::Sender<RunEvent>>> {
        self.inner.watched.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
