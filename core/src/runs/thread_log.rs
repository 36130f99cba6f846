//! Each thread's event log: written by the run holding the thread, in batches (at most one write
//! per [`BATCH_EVERY`]), read back by any process from the store, and sent at once to the readers
//! in the writer's own process.
//!
//! A reader in this process [`attach`](ThreadLogs::attach)es before it reads the store: it gets
//! the events not written yet and every later one, so with the store's it misses none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use uuid::Uuid;

use super::protocol_events::LogEntry;
use super::recorder::BATCH_EVERY;
use crate::model::{ThreadEvent, Timestamp};
use crate::store::{Store, ThreadEventBatch};

/// How many events a slow reader in this process may fall behind before it reads the store again.
const LIVE_BUFFER: usize = 1024;

/// The largest batch written at once, in bytes of envelopes.
const BATCH_BYTES: usize = 256 * 1024;

/// The threads of this process with a writer or readers: their events not yet written, and a
/// channel to the readers.
#[derive(Default)]
pub struct ThreadLogs {
    threads: Mutex<HashMap<Uuid, Arc<LiveLog>>>,
}

struct LiveLog {
    sender: broadcast::Sender<Arc<ThreadEvent>>,
    /// Events sent but not yet in the store, oldest first.
    unwritten: Mutex<Vec<Arc<ThreadEvent>>>,
    /// The last `seq` given in this process.
    last_seq: Mutex<u64>,
}

/// A reader's view of a thread in this process: what it missed that the store does not have
/// yet, and what comes next.
pub struct Attached {
    pub unwritten: Vec<Arc<ThreadEvent>>,
    pub live: broadcast::Receiver<Arc<ThreadEvent>>,
    logs: Arc<ThreadLogs>,
    thread_id: Uuid,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.logs.release(self.thread_id, 1);
    }
}

impl ThreadLogs {
    fn live(&self, thread_id: Uuid) -> Arc<LiveLog> {
        let mut threads = self.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        threads
            .entry(thread_id)
            .or_insert_with(|| {
                let (sender, _) = broadcast::channel(LIVE_BUFFER);
                Arc::new(LiveLog { sender, unwritten: Mutex::default(), last_seq: Mutex::default() })
            })
            .clone()
    }

    /// Forgets a thread nobody here writes or reads any more (`leaving` is the receiver being
    /// dropped, still counted).
    fn release(&self, thread_id: Uuid, leaving: usize) {
        let mut threads = self.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(live) = threads.get(&thread_id) {
            // The map's reference and ours are the only ones left: no writer holds it.
            let unused = Arc::strong_count(live) == 1 && live.sender.receiver_count() <= leaving;
            if unused {
                threads.remove(&thread_id);
            }
        }
    }

    /// Starts reading the thread's events as they come in this process.
    pub fn attach(self: &Arc<Self>, thread_id: Uuid) -> Attached {
        let live = self.live(thread_id);
        let unwritten = live.unwritten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Subscribed while the unwritten events are held: nothing falls between the two.
        let receiver = live.sender.subscribe();
        Attached { unwritten: unwritten.clone(), live: receiver, logs: self.clone(), thread_id }
    }
}

/// Writes one run's events to its thread's log.
pub(super) struct LogWriter {
    store: Arc<dyn Store>,
    logs: Arc<ThreadLogs>,
    live: Option<Arc<LiveLog>>,
    thread_id: Uuid,
    ttl: Duration,
    next_seq: u64,
    pending: Vec<Arc<ThreadEvent>>,
    pending_bytes: usize,
    last_write: Instant,
}

impl LogWriter {
    /// Continues the thread's numbering: the run holds the thread, so no other writes to it.
    pub(super) async fn open(store: Arc<dyn Store>, logs: Arc<ThreadLogs>, thread_id: Uuid, ttl: Duration) -> Self {
        let live = logs.live(thread_id);
        let stored = match store.last_thread_event(thread_id).await {
            Ok(last) => last,
            Err(error) => {
                tracing::warn!(%error, %thread_id, "could not read where the thread's event log ends");
                0
            }
        };
        let here = *live.last_seq.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let next_seq = stored.max(here) + 1;
        LogWriter {
            store,
            logs,
            live: Some(live),
            thread_id,
            ttl,
            next_seq,
            pending: Vec::new(),
            pending_bytes: 0,
            last_write: Instant::now(),
        }
    }

    /// Numbers the entry, sends it to this process's readers, and writes what is pending when
    /// it is time.
    pub(super) async fn add(&mut self, entry: LogEntry) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let millis = Timestamp::now().datetime().timestamp_millis();
        let event_id = entry.event_id.unwrap_or_else(|| format!("{millis}-{seq}"));
        let namespace = match entry.namespace.is_empty() {
            true => "[]".to_string(),
            false => serde_json::to_string(&entry.namespace).unwrap_or_default(),
        };
        // Written out rather than built as a JSON tree: this runs once per token.
        let envelope = format!(
            r#"{{"type":"event","event_id":{},"seq":{seq},"method":"{}","params":{{"namespace":{namespace},"timestamp":{millis},"data":{}}}}}"#,
            serde_json::to_string(&event_id).unwrap_or_default(),
            entry.method,
            entry.data,
        );
        let event = Arc::new(ThreadEvent {
            seq,
            method: entry.method.to_string(),
            namespace: entry.namespace,
            envelope,
            ends_run: entry.ends_run,
        });
        self.pending_bytes += event.envelope.len();
        if let Some(live) = &self.live {
            *live.last_seq.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = seq;
            live.unwritten.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(event.clone());
            if live.sender.receiver_count() > 0 {
                let _ = live.sender.send(event.clone());
            }
        }
        self.pending.push(event);
        if self.last_write.elapsed() >= BATCH_EVERY || self.pending_bytes >= BATCH_BYTES {
            self.write().await;
        }
    }

    /// Writes what is pending; called last at the run's end, before the end is recorded.
    pub(super) async fn write(&mut self) {
        self.last_write = Instant::now();
        let Some(last) = self.pending.last().map(|event| event.seq) else { return };
        let batch =
            ThreadEventBatch { events: std::mem::take(&mut self.pending), expires_at: Timestamp::now().plus(self.ttl) };
        match self.store.add_thread_events(self.thread_id, &batch).await {
            Ok(()) => {
                self.pending_bytes = 0;
                if let Some(live) = &self.live {
                    live.unwritten
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .retain(|event| event.seq > last);
                }
            }
            // Kept for the next write: a reader elsewhere sees them later, not never.
            Err(error) => {
                tracing::warn!(%error, thread_id = %self.thread_id, "could not keep the thread's events");
                self.pending = batch.events;
            }
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.live.take();
        self.logs.release(self.thread_id, 0);
    }
}
