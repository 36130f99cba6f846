//! Crons of the LangGraph API (`client.crons`): a run request kept with a schedule, started on
//! its own each time the schedule comes round, on a thread or on a new one each time. Each
//! user's crons are theirs; an OpenGPTs assistant and thread work here too, so scheduled runs'
//! messages show in the OpenGPTs UIs.

#[cfg(feature = "runs")]
mod fire;
#[cfg(feature = "runs")]
mod routes;

use uuid::Uuid;

#[cfg(feature = "runs")]
pub use fire::{fire, fire_due_crons, run_local_scheduler};
#[cfg(feature = "runs")]
pub use routes::routes;

use crate::api::{ApiError, AppState};
use crate::model::UserId;

/// What a deleted thread or assistant takes with it: the user's crons on it, with their
/// schedules. One that cannot be deleted now is deleted when it next fires, finding its thread
/// or assistant gone, so a failure here is logged, not the delete's.
pub(crate) async fn forget_crons_on(state: &AppState, user: &UserId, deleted: Uuid) {
    let crons = match state.store.list_crons(user).await {
        Ok(crons) => crons,
        Err(error) => return tracing::warn!(%error, "could not look for the deleted one's crons"),
    };
    for cron in crons.iter().filter(|cron| cron.assistant_id == deleted || cron.thread_id == Some(deleted)) {
        if let Err(error) = forget(state, user, cron.cron_id).await {
            tracing::warn!(cron_id = %cron.cron_id, %error, "could not delete the cron yet");
        }
    }
}

/// Deletes one cron: its schedule first, so that a failure leaves a cron that can be deleted
/// again rather than a schedule with no cron.
pub(crate) async fn forget(state: &AppState, user: &UserId, cron_id: Uuid) -> Result<(), ApiError> {
    state.schedules.remove(cron_id).await.map_err(|error| ApiError::BadGateway(error.to_string()))?;
    match state.store.delete_cron(user, cron_id).await {
        Ok(()) | Err(crate::store::StoreError::NotFound(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
