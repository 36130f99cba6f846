//! A cron's firing: one code path for EventBridge's deliveries to `run-worker` and for the
//! local server's scheduler loop. The run is the one the cron keeps (`Cron::run`), started by
//! the run service like any other.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use super::{due_slot, forget, ForgetError, Schedules};
use crate::model::{Run, Timestamp, UserId};
use crate::runs::{find_assistant, Mode, RunEngine, RunError};
use crate::store::{Store, StoreError};

/// What firing crons needs: the run service, the store, and where the schedules are kept.
#[derive(Clone)]
pub struct Crons {
    pub runs: RunEngine,
    pub store: Arc<dyn Store>,
    pub schedules: Arc<dyn Schedules>,
}

#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Forget(#[from] ForgetError),
    /// Saved before crons kept their run: the API plans it from its request first.
    #[error("cron {0} keeps no run to start")]
    Unplanned(Uuid),
}

impl Crons {
    /// Starts the run of `owner`'s cron for its time `slot` and runs it to its end, under the
    /// same checks as a run the owner asks for (the per-user run limit, the thread's lease,
    /// waiting for a busy thread). A slot fires once, however often it is delivered; a cron whose
    /// thread or assistant is gone is deleted, with its schedule. `None`: nothing was due.
    pub async fn fire(&self, owner: &UserId, cron_id: Uuid, slot: Timestamp) -> Result<Option<Run>, FireError> {
        let store = self.store.as_ref();
        let cron = match store.get_cron(owner, cron_id).await {
            Ok(cron) => cron,
            Err(StoreError::NotFound(_)) => {
                // A schedule left behind by a cron deleted meanwhile.
                forget(store, self.schedules.as_ref(), owner, cron_id).await?;
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        if !cron.enabled || cron.end_time.is_some_and(|end| slot > end) {
            return Ok(None);
        }
        let mut spec = cron.run.clone().ok_or(FireError::Unplanned(cron_id))?;
        let assistant_gone = find_assistant(store, owner, cron.assistant_id).await?.is_none();
        let thread_gone = match cron.thread_id {
            Some(thread_id) => matches!(store.get_thread(owner, thread_id).await, Err(StoreError::NotFound(_))),
            None => false,
        };
        if assistant_gone || thread_gone {
            tracing::info!(%cron_id, "the cron's assistant or thread was deleted: the cron is deleted too");
            forget(store, self.schedules.as_ref(), owner, cron_id).await?;
            return Ok(None);
        }
        if !store.claim_cron_slot(cron_id, slot).await? {
            tracing::info!(%cron_id, slot = %slot.to_rfc3339(), "the cron fired for this time already");
            return Ok(None);
        }
        // Each run names the cron that started it, in its metadata and in its request.
        if let Some(graph) = &mut spec.graph {
            graph.metadata.insert("cron_id".into(), json!(cron_id));
            if let Some(Value::Object(metadata)) = graph.kwargs.pointer_mut("/config/metadata") {
                metadata.insert("cron_id".into(), json!(cron_id));
            }
        }
        Ok(Some(self.runs.start(owner.clone(), spec, Mode::Wait).await?.into_run()))
    }

    /// One look of the local scheduler at `now`: each cron due fires in a task of its own, whose
    /// handles are returned. `fired` remembers, per cron, the slot it last fired for here.
    pub async fn fire_due(
        &self,
        now: Timestamp,
        fired: &mut HashMap<Uuid, Timestamp>,
    ) -> Result<Vec<JoinHandle<()>>, StoreError> {
        let crons = self.store.all_crons().await?;
        fired.retain(|cron_id, _| crons.iter().any(|cron| cron.cron_id == *cron_id));
        let mut tasks = Vec::new();
        for cron in crons {
            let Some(slot) = due_slot(&cron, fired.get(&cron.cron_id).copied(), now) else { continue };
            fired.insert(cron.cron_id, slot);
            let crons = self.clone();
            let span = tracing::info_span!("cron", cron_id = %cron.cron_id);
            tasks.push(tokio::spawn(
                async move {
                    if let Err(error) = crons.fire(&cron.user_id, cron.cron_id, slot).await {
                        tracing::warn!(%error, "the cron's run could not start");
                    }
                }
                .instrument(span),
            ));
        }
        Ok(tasks)
    }

    /// The local server's scheduler: looks for due crons every `poll`. It starts with the
    /// process, so a cron due while no server ran fires once when one starts again.
    pub async fn run_local_scheduler(self, poll: std::time::Duration) {
        let mut fired = HashMap::new();
        loop {
            if let Err(error) = self.fire_due(Timestamp::now(), &mut fired).await {
                tracing::warn!(%error, "could not look for due crons");
            }
            tokio::time::sleep(poll).await;
        }
    }
}
