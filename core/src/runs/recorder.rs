//! A resumable run's stream, kept in the store as it goes, so that a client can join it later
//! from any process (each Lambda instance has only its own memory). Events are written in
//! batches, at most one per [`BATCH_EVERY`], and the last batch before the run's end is recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Run, Timestamp};
use crate::store::{EventBatch, KeptEvent, Store};

/// The longest a kept event waits for its batch to be written: DynamoDB is written at most this
/// often per run.
pub const BATCH_EVERY: Duration = Duration::from_millis(250);

pub(super) struct Recorder {
    store: Arc<dyn Store>,
    run: Run,
    ttl: Duration,
    batch: u64,
    pending: Vec<KeptEvent>,
    last_write: Instant,
    /// The milliseconds of the last id given, which ids never go below.
    last_millis: i64,
    /// Events kept so far.
    count: u64,
}

impl Recorder {
    pub(super) fn new(store: Arc<dyn Store>, run: Run, ttl: Duration) -> Self {
        let last_write = Instant::now();
        Recorder { store, run, ttl, batch: 0, pending: Vec::new(), last_write, last_millis: 0, count: 0 }
    }

    /// Keeps an event and returns its id: `<unix ms>-<sequence>`, increasing through the run,
    /// so `Last-Event-ID` names a place in it.
    pub(super) async fn keep(&mut self, event: &'static str, data: &str) -> String {
        self.last_millis = Timestamp::now().datetime().timestamp_millis().max(self.last_millis);
        let id = format!("{}-{}", self.last_millis, self.count);
        self.count += 1;
        self.pending.push(KeptEvent { id: id.clone(), event: event.to_string(), data: data.to_string() });
        if self.last_write.elapsed() >= BATCH_EVERY {
            self.write().await;
        }
        id
    }

    /// Writes what is pending; called at the run's end, before the end is recorded, so a client
    /// that sees the run ended finds every event.
    pub(super) async fn write(&mut self) {
        self.last_write = Instant::now();
        if self.pending.is_empty() {
            return;
        }
        let batch = EventBatch {
            number: self.batch,
            events: std::mem::take(&mut self.pending),
            expires_at: Timestamp::now().plus(self.ttl),
        };
        match self.store.add_run_events(&self.run, &batch).await {
            Ok(()) => self.batch += 1,
            // Kept for the next write: a join sees them later, not never.
            Err(error) => {
                tracing::warn!(%error, run_id = %self.run.run_id, "could not keep the stream's events");
                self.pending = batch.events;
            }
        }
    }
}

/// Where a `Last-Event-ID` stands: events with a greater id come after it. `0` (or anything
/// that is not an id) stands before every event.
pub fn event_position(id: &str) -> (i64, u64) {
    let mut parts = id.trim().splitn(2, '-');
    let millis = parts.next().and_then(|millis| millis.parse().ok()).unwrap_or(0);
    let sequence = parts.next().and_then(|sequence| sequence.parse().ok()).unwrap_or(0);
    (millis, sequence)
}
