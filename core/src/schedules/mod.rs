//! Where crons are fired from. In the cloud, EventBridge Scheduler keeps one schedule per cron
//! and invokes `run-worker` with a [`CronFiring`]; locally, a loop in the server's process
//! looks for due crons in the store. Either way one code path starts the run (`Crons::fire`),
//! and the store's slot claim makes a slot fire once however often it is delivered.

mod eventbridge;
#[cfg(feature = "runs")]
mod fire;
pub mod retention;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use eventbridge::EventBridgeSchedules;
#[cfg(feature = "runs")]
pub use fire::{Crons, FireError};

use crate::model::{Cron, Timestamp, UserId};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
#[error("EventBridge Scheduler: {0}")]
pub struct ScheduleError(pub String);

/// What a schedule hands `run-worker`: the cron, its owner, and the time it was due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronFiring {
    pub cron_id: Uuid,
    pub user_id: UserId,
    /// EventBridge's `<aws.scheduler.scheduled-time>`.
    pub scheduled_time: String,
}

impl CronFiring {
    pub fn slot(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.scheduled_time)
    }
}

/// Keeps the schedules that fire crons in step with the store's crons.
#[async_trait]
pub trait Schedules: Send + Sync + 'static {
    /// Creates or replaces the schedule of `cron` (one that is disabled or ended fires no more).
    async fn save(&self, cron: &Cron) -> Result<(), ScheduleError>;
    /// Removes the cron's schedule; one already gone is no error.
    async fn remove(&self, cron_id: Uuid) -> Result<(), ScheduleError>;
    /// Whether crons are fired by a loop in this process, from the store.
    fn fired_here(&self) -> bool;
}

/// The local server's: the store is the schedule, read by [`due_slot`] in a loop.
pub struct InProcessSchedules;

#[async_trait]
impl Schedules for InProcessSchedules {
    async fn save(&self, _cron: &Cron) -> Result<(), ScheduleError> {
        Ok(())
    }

    async fn remove(&self, _cron_id: Uuid) -> Result<(), ScheduleError> {
        Ok(())
    }

    fn fired_here(&self) -> bool {
        true
    }
}

/// The slot a cron is due for at `now`, if any: the latest time it should have fired since it
/// last did (or since it was created or changed). Slots missed while no scheduler ran (a
/// restart) are caught up once, not one by one.
pub fn due_slot(cron: &Cron, last_fired: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
    let since = last_fired.map_or(cron.updated_at, |last| last.max(cron.updated_at));
    let mut due = cron.next_run(since).filter(|slot| *slot <= now)?;
    while let Some(later) = cron.next_run(due).filter(|slot| *slot <= now) {
        due = later;
    }
    Some(due)
}

/// Why a cron could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// Deletes one cron: its schedule first, so that a failure leaves a cron that can be deleted
/// again rather than a schedule with no cron.
pub async fn forget(
    store: &dyn Store,
    schedules: &dyn Schedules,
    user: &UserId,
    cron_id: Uuid,
) -> Result<(), ForgetError> {
    schedules.remove(cron_id).await?;
    match store.delete_cron(user, cron_id).await {
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What a deleted thread or assistant takes with it: the user's crons on it, with their
/// schedules. One that cannot be deleted now is deleted when it next fires, finding its thread
/// or assistant gone, so a failure here is logged, not the delete's.
pub async fn forget_crons_on(store: &dyn Store, schedules: &dyn Schedules, user: &UserId, deleted: Uuid) {
    let crons = match store.list_crons(user).await {
        Ok(crons) => crons,
        Err(error) => return tracing::warn!(%error, "could not look for the deleted one's crons"),
    };
    for cron in crons.iter().filter(|cron| cron.assistant_id == deleted || cron.thread_id == Some(deleted)) {
        if let Err(error) = forget(store, schedules, user, cron.cron_id).await {
            tracing::warn!(cron_id = %cron.cron_id, %error, "could not delete the cron yet");
        }
    }
}
