use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::schedule::{Schedule, ScheduleError};
use super::{RunSpec, Timestamp, UserId};

/// A run that starts on its own, on a schedule: the LangGraph API's cron.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cron {
    pub cron_id: Uuid,
    pub user_id: UserId,
    pub assistant_id: Uuid,
    /// The thread each run continues; `None` for a stateless cron, whose runs each get a new one.
    pub thread_id: Option<Uuid>,
    /// Five cron fields, checked by [`Schedule::parse`] before the cron was stored.
    pub schedule: String,
    /// The IANA time zone the schedule reads in; UTC when `None`.
    pub timezone: Option<String>,
    /// The run each firing starts, as a run request of the LangGraph API.
    pub payload: Map<String, Value>,
    pub metadata: Map<String, Value>,
    /// No firing after this.
    pub end_time: Option<Timestamp>,
    pub enabled: bool,
    /// A stateless cron keeps the thread of each run (`true`) or deletes it once the run ends.
    pub keep_threads: bool,
    /// The run each firing starts, read from `payload` when the cron was saved. `None` for a cron
    /// saved before crons kept their run: the API reads it from `payload` before it fires.
    #[serde(default)]
    pub run: Option<RunSpec>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Cron {
    pub fn parsed_schedule(&self) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&self.schedule, self.timezone.as_deref())
    }

    /// When it fires next after `after`: `None` once disabled or past its end.
    pub fn next_run(&self, after: Timestamp) -> Option<Timestamp> {
        if !self.enabled {
            return None;
        }
        let next = self.parsed_schedule().ok()?.next_after(after.datetime()).map(Timestamp::from_datetime)?;
        match self.end_time {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }
}
