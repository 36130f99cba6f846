//! What a run carries while it executes: where it stands in its thread, what keeps it honest
//! while it waits, and the client it streams to.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::{Listener, RunEvent};
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

/// Sends to a streaming client while it listens; renders nothing once it has gone.
pub(super) struct EventSink {
    pub(super) sender: Option<mpsc::Sender<RunEvent>>,
    pub(super) cancel_on_disconnect: bool,
}

impl EventSink {
    pub(super) fn new(listener: Option<Listener>) -> Self {
        match listener {
            Some(Listener { events, on_disconnect }) => {
                EventSink { sender: Some(events), cancel_on_disconnect: on_disconnect == OnDisconnect::Cancel }
            }
            None => EventSink { sender: None, cancel_on_disconnect: false },
        }
    }

    pub(super) async fn send(&mut self, event: RunEvent) {
        if let Some(sender) = &self.sender {
            if sender.send(event).await.is_err() {
                self.sender = None;
            }
        }
    }

    pub(super) async fn progress(&mut self, generation: Generation, history: &[Message], current: &Message) {
        if self.sender.as_ref().is_some_and(|sender| !sender.is_closed()) {
            self.send(RunEvent::Data(render::progress(generation, history, current))).await;
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
