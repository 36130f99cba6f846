//! A reader of a thread's event log, from any process: the events after `since`, oldest first,
//! each once, then every later one as it comes, for as long as the reader reads.
//!
//! It reads the store in bounded pages, and gets the events of runs executing in this process
//! the moment they happen; runs executing elsewhere (another Lambda instance, the run worker)
//! reach it through the store, which it polls less often the longer nothing comes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use uuid::Uuid;

use super::thread_log::{Attached, ThreadLogs};
use crate::model::{ThreadEvent, UserId};
use crate::store::{Store, StoreError, StoreResult};

/// The most events one read of the store takes: what a `since` far behind costs at a time.
pub const EVENTS_PER_READ: usize = 500;

const FIRST_POLL: Duration = Duration::from_millis(100);
const LAST_POLL: Duration = Duration::from_secs(2);

/// The longest a run's last event waits for the run's end to be recorded.
const MAX_END_WAIT: Duration = Duration::from_secs(30);

pub struct ThreadFeed {
    store: Arc<dyn Store>,
    logs: Arc<ThreadLogs>,
    user: UserId,
    thread_id: Uuid,
    /// The last `seq` given.
    cursor: u64,
    /// The thread is the user's: until it is (it may not exist yet), nothing of it is read.
    owned: bool,
    attached: Option<Attached>,
    /// Whether the store has been read up to date since attaching.
    caught_up: bool,
    ready: VecDeque<Arc<ThreadEvent>>,
    poll: Duration,
}

impl ThreadFeed {
    pub fn new(store: Arc<dyn Store>, logs: Arc<ThreadLogs>, user: UserId, thread_id: Uuid, since: u64) -> Self {
        ThreadFeed {
            store,
            logs,
            user,
            thread_id,
            cursor: since,
            owned: false,
            attached: None,
            caught_up: false,
            ready: VecDeque::new(),
            poll: FIRST_POLL,
        }
    }

    /// The next event; waits for it as long as it takes. An error is the store's. Cancel-safe:
    /// a wait given up takes nothing from the feed.
    pub async fn next(&mut self) -> StoreResult<Arc<ThreadEvent>> {
        loop {
            if let Some(event) = self.take_ready().await? {
                return Ok(event);
            }
            self.fill().await?;
        }
    }

    /// The next event if one is at hand (read already, or sent live and waiting), without
    /// waiting for one or reading the store: a writer can send several at once.
    pub async fn next_at_hand(&mut self) -> StoreResult<Option<Arc<ThreadEvent>>> {
        if self.ready.is_empty() && self.caught_up {
            match self.attached.as_mut().map(|attached| attached.live.try_recv()) {
                Some(Ok(event)) => self.ready.push_back(event),
                // Fell behind: the next wait attaches again and reads what it missed from the store.
                Some(Err(TryRecvError::Lagged(_) | TryRecvError::Closed)) => self.attached = None,
                Some(Err(TryRecvError::Empty)) | None => {}
            }
        }
        self.take_ready().await
    }

    /// The first event read and not given yet; one that ends a run once the run's end is
    /// recorded. Nothing is taken before that wait is over.
    async fn take_ready(&mut self) -> StoreResult<Option<Arc<ThreadEvent>>> {
        while let Some(event) = self.ready.front() {
            if event.seq <= self.cursor {
                self.ready.pop_front();
                continue;
            }
            if let Some(run_id) = event.ends_run {
                self.recorded(run_id).await?;
            }
            let event = self.ready.pop_front().expect("looked at just now");
            self.cursor = event.seq;
            return Ok(Some(event));
        }
        Ok(None)
    }

    /// Finds more events, or waits for some.
    async fn fill(&mut self) -> StoreResult<()> {
        if !self.owned {
            match self.store.get_thread(&self.user, self.thread_id).await {
                Ok(_) => self.owned = true,
                Err(StoreError::NotFound(_)) => return self.pause().await,
                Err(error) => return Err(error),
            }
        }
        if self.attached.is_none() {
            // Attached first: what the store does not have yet is then in `unwritten` or live.
            self.attached = Some(self.logs.attach(self.thread_id));
            self.caught_up = false;
        }
        if !self.caught_up {
            let page = self.store.thread_events(self.thread_id, self.cursor, EVENTS_PER_READ).await?;
            if page.is_empty() {
                self.caught_up = true;
                let unwritten = self.attached.as_mut().map(|attached| std::mem::take(&mut attached.unwritten));
                self.ready.extend(unwritten.unwrap_or_default());
            } else {
                // Something is going on: the store is worth reading often again.
                self.poll = FIRST_POLL;
                self.ready.extend(page.into_iter().map(Arc::new));
            }
            return Ok(());
        }
        let Some(attached) = self.attached.as_mut() else { return Ok(()) };
        tokio::select! {
            live = attached.live.recv() => match live {
                Ok(event) => self.ready.push_back(event),
                // Fell behind, or the writer here is gone: attach again and read the store.
                Err(RecvError::Lagged(_) | RecvError::Closed) => self.attached = None,
            },
            _ = tokio::time::sleep(self.poll) => {
                self.poll = (self.poll * 2).min(LAST_POLL);
                self.caught_up = false;
            }
        }
        Ok(())
    }

    /// Waits for the run's end to be recorded: a run writes its last event before its end (so
    /// the next run on the thread numbers its events after it), and a client told the run ended
    /// reads the thread's state at once, which must then hold the answer. An end that is not
    /// recorded in time (its process died in between) is passed on anyway.
    async fn recorded(&self, run_id: Uuid) -> StoreResult<()> {
        let mut pause = Duration::from_millis(5);
        let deadline = tokio::time::Instant::now() + MAX_END_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.store.get_run(&self.user, run_id).await {
                Ok(run) if !run.status.is_finished() => {}
                Ok(_) | Err(StoreError::NotFound(_)) => return Ok(()),
                Err(error) => return Err(error),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LAST_POLL);
        }
        Ok(())
    }

    async fn pause(&mut self) -> StoreResult<()> {
        tokio::time::sleep(self.poll).await;
        self.poll = (self.poll * 2).min(LAST_POLL);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::protocol_events::LogEntry;
    use crate::runs::thread_log::LogWriter;
    use crate::store::MemoryStore;

    /// A reader that falls further behind a run than the live channel holds, as a fast model
    /// outruns a client, reads what it missed from the writer's own list and misses nothing.
    #[tokio::test]
    async fn a_reader_far_behind_the_writer_misses_nothing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let user = UserId::new("reader").unwrap();
        let thread_id = Uuid::new_v4();
        let config = crate::config::Config::defaults();
        let thread = crate::runs::new_thread(&config, user.clone(), thread_id, Default::default());
        store.put_thread(&thread).await.unwrap();
        let logs = Arc::new(ThreadLogs::default());
        let mut feed = ThreadFeed::new(store.clone(), logs.clone(), user, thread_id, 0);
        let mut writer = LogWriter::open(store, logs, thread_id, Duration::from_secs(60)).await;
        let entry = || LogEntry {
            method: "messages",
            namespace: Vec::new(),
            data: "{}".into(),
            event_id: None,
            ends_run: None,
        };
        for seq in 1..=2 {
            writer.add(entry()).await;
            assert_eq!(feed.next().await.unwrap().seq, seq);
        }
        // Then the run outruns the reader, which finds the next events at hand, or so it seems.
        let behind = 3 * 1024;
        for _ in 0..behind {
            writer.add(entry()).await;
        }
        let mut seqs = Vec::new();
        let read = async {
            while seqs.len() < behind {
                match feed.next_at_hand().await.unwrap() {
                    Some(event) => seqs.push(event.seq),
                    None => seqs.push(feed.next().await.unwrap().seq),
                }
            }
        };
        // A reader that skipped some waits for events that never come.
        tokio::time::timeout(Duration::from_secs(10), read).await.expect("every event read");
        assert!(seqs.iter().copied().eq(3..3 + behind as u64), "every event once, in order");
    }
}
