//! Crons of the LangGraph API (`client.crons`): a run request kept with a schedule, started on
//! its own each time the schedule comes round, on a thread or on a new one each time. Each
//! user's crons are theirs; an OpenGPTs assistant and thread work here too, so scheduled runs'
//! messages show in the OpenGPTs UIs. A cron keeps its request as the run service's `RunSpec`,
//! and `schedules::Crons` fires it.

#[cfg(feature = "runs")]
mod routes;

#[cfg(feature = "runs")]
pub use routes::{plan_saved, routes};
