//! A run's life around its flow: the wait before it starts, the lease kept while it works,
//! its end recorded, and how its record reads afterwards.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::execution::{EventSink, Guard, Progress};
use super::failure::Failure;
use super::{RunEngine, RunError};
use crate::model::{Run, RunStatus, Timestamp, UserId};
use crate::store::StoreError;

/// A run whose record another process ended stops: cancelled, or as recorded.
fn ended_elsewhere(stored: &Run) -> Result<(), Failure> {
    match stored.status {
        RunStatus::Cancelled => Err(Failure::Cancelled),
        status if status.is_finished() => Err(Failure::EndedElsewhere(Box::new(stored.clone()))),
        _ => Ok(()),
    }
}

/// The pauses before a run's end is tried again, when the store failed to record it.
const FINISH_RETRIES: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

impl RunEngine {
    /// A run's record. One still marked pending or running, but silent for longer than a lease,
    /// lost its process (a crash, a timeout): it is recorded as failed, since its thread's lease
    /// has expired and the thread has been free for other runs since.
    pub async fn get(&self, user: &UserId, run_id: Uuid) -> Result<Run, RunError> {
        let run = self.inner.store.get_run(user, run_id).await?;
        self.observed(run).await
    }

    /// The runs of the user's thread, newest first, each as `get` tells it.
    pub async fn list(&self, user: &UserId, thread_id: Uuid) -> Result<Vec<Run>, RunError> {
        let mut runs = Vec::new();
        for run in self.inner.store.list_runs(user, thread_id).await? {
            runs.push(self.observed(run).await?);
        }
        Ok(runs)
    }

    /// A run's record as read, or as failed if it went silent (see `get`).
    async fn observed(&self, run: Run) -> Result<Run, RunError> {
        let silent_since = run.updated_at.plus(self.inner.config.run_lease);
        if !run.status.is_finished() && silent_since < Timestamp::now() {
            let mut failed = run.clone();
            failed.status = RunStatus::Error;
            // A reader cannot tell a process that ended from one whose writes to the data store
            // failed for a whole lease: the message names both.
            failed.error = Some(
                "The run stopped without finishing: its process went silent (it ended, or could not reach the \
                 data store) before the answer was complete"
                    .into(),
            );
            failed.updated_at = Timestamp::now();
            // Its process may have been slow, not gone: an end it records meanwhile stands.
            return match self.inner.store.update_run_if_going(&failed).await? {
                true => Ok(failed),
                false => Ok(self.inner.store.get_run(&run.user_id, run.run_id).await?),
            };
        }
        Ok(run)
    }

    /// Executes a background run that another process handed over, once: a delivery repeated
    /// (Lambda delivers an event at least once, and an invoke whose answer was lost is sent
    /// again) finds it taken and leaves it, and a run cancelled while it waited for its executor
    /// gives its thread back. `None` when there was nothing to do.
    pub async fn execute_delivered(&self, job: super::RunJob) -> Result<Option<Run>, RunError> {
        let store = &self.inner.store;
        let run = &job.run;
        if store.claim_run(&run.user_id, run.run_id).await? {
            return Ok(Some(self.execute(job, None).await));
        }
        let current = store.get_run(&run.user_id, run.run_id).await?;
        if current.status != RunStatus::Cancelled {
            tracing::info!(run_id = %run.run_id, status = current.status.as_str(), "a run delivered again is left to its first delivery");
            return Ok(None);
        }
        Ok(Some(self.finish(current, Err(Failure::Cancelled), Progress::default()).await))
    }

    /// Stops a pending or running run. It keeps its input; its partial answer is dropped.
    pub async fn cancel(&self, user: &UserId, run_id: Uuid) -> Result<Run, RunError> {
        let mut run = self.inner.store.get_run(user, run_id).await?;
        if run.status.is_finished() {
            return Ok(run);
        }
        run.status = RunStatus::Cancelled;
        run.updated_at = Timestamp::now();
        // Recorded first, so a worker in another process sees it at its next heartbeat; unless
        // the run ended meanwhile, and then its end stands.
        if !self.inner.store.update_run_if_going(&run).await? {
            return Ok(self.inner.store.get_run(user, run_id).await?);
        }
        if let Some(active) = self.active().get(&run_id) {
            active.token.cancel();
        }
        Ok(run)
    }

    /// Holds the thread until `not_before`, keeping its lease; a cancel or a client gone (when
    /// that cancels) ends the wait and the run.
    pub(super) async fn wait_to_start(
        &self,
        run: &Run,
        not_before: Timestamp,
        beat: Duration,
        token: &CancellationToken,
        sink: &EventSink,
    ) -> Result<(), Failure> {
        let remaining = (not_before.datetime() - Timestamp::now().datetime()).to_std().unwrap_or_default();
        let until = tokio::time::Instant::now() + remaining;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return Err(Failure::Cancelled),
                _ = sink.abandoned() => return Err(Failure::Cancelled),
                _ = tokio::time::sleep_until(until) => return Ok(()),
                _ = heartbeat.tick() => self.heartbeat(run).await?,
            }
        }
    }

    /// Awaits `work` while keeping the run's lease, and gives up on a cancel, a client gone
    /// (when that cancels), or the run's time limit.
    pub(super) async fn guarded<T>(
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

    /// Keeps the thread's lease, notices an end recorded by another process (a cancel, or a
    /// reader that found the run silent past its lease and recorded it failed), and refreshes
    /// the run's `updated_at`, which tells readers the run is alive (see `get`).
    pub(super) async fn heartbeat(&self, run: &Run) -> Result<(), Failure> {
        let store = &self.inner.store;
        store.renew_lease(run.thread_id, run.run_id, self.inner.config.run_lease).await.map_err(Failure::Store)?;
        let mut current = store.get_run(&run.user_id, run.run_id).await.map_err(Failure::Store)?;
        ended_elsewhere(&current)?;
        current.updated_at = Timestamp::now();
        // Only while the record says the run is going: an end another process wrote since the
        // read above must stand (written over, the run would go on as if it had not ended).
        if store.update_run_if_going(&current).await.map_err(Failure::Store)? {
            return Ok(());
        }
        ended_elsewhere(&store.get_run(&run.user_id, run.run_id).await.map_err(Failure::Store)?)
    }

    /// Stores the answer, records how the run ended and gives its thread back, at once.
    pub(super) async fn finish(&self, mut run: Run, outcome: Result<(), Failure>, mut progress: Progress) -> Run {
        (run.status, run.error) = match outcome {
            Ok(()) => (RunStatus::Success, None),
            Err(Failure::Cancelled) => (RunStatus::Cancelled, None),
            Err(Failure::EndedElsewhere(stored)) => {
                // Its end stands as recorded, and nothing of the run is stored after it: only its
                // thread's lease is given back.
                progress.answer.clear();
                (stored.status, stored.error)
            }
            Err(failure) => (RunStatus::Error, Some(failure.message(&run))),
        };
        run.updated_at = Timestamp::now();
        let store = &self.inner.store;
        let mut outcome = store.finish_run(&run, &progress.answer, progress.revision).await;
        // The store's client has retried already; the answer is worth a few more tries, spread
        // over seconds (a finish that landed but whose answer was lost is told apart by the store).
        for pause in FINISH_RETRIES {
            match outcome {
                Err(StoreError::Backend(_)) => {
                    tokio::time::sleep(pause).await;
                    outcome = store.finish_run(&run, &progress.answer, progress.revision).await;
                }
                _ => break,
            }
        }
        if let Err(error) = outcome {
            tracing::error!(run_id = %run.run_id, %error, "could not record the run's end");
            // The answer was not kept: the run did not succeed, and its client is told, and so
            // is anyone who reads its record (which would otherwise stay `running`). Unless one
            // of the tries landed though its answer was lost: the end is one write, and its
            // record then says how the run ended, answer and all.
            if run.status == RunStatus::Success {
                run.status = RunStatus::Error;
                run.error = Some(Failure::Store(error).message(&run));
            }
            match store.update_run_if_going(&run).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Ok(stored) = store.get_run(&run.user_id, run.run_id).await {
                        run = stored;
                    }
                }
                Err(error) => {
                    tracing::error!(run_id = %run.run_id, %error, "could not record the run as failed; it will be once its lease expires")
                }
            }
        }
        self.active().remove(&run.run_id);
        run
    }
}
