//! A cron's firing: one code path for EventBridge's deliveries to `run-worker` and for the
//! local server's scheduler loop.

use std::collections::HashMap;

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use super::super::find_assistant;
use super::super::run_request::{refused, spec};
use super::super::Body;
use super::forget;
use crate::api::{ApiError, AppState};
use crate::model::{Run, Timestamp, UserId};
use crate::runs::{Mode, Started};
use crate::schedules::due_slot;
use crate::store::StoreError;

/// Starts the run of `owner`'s cron for its time `slot` and runs it to its end, under the same
/// checks as a run the owner asks for (the per-user run limit, the thread's lease, waiting for
/// a busy thread). A slot fires once, however often it is delivered; a cron whose thread or
/// assistant is gone is deleted, with its schedule. `None`: nothing was due.
pub async fn fire(state: &AppState, owner: &UserId, cron_id: Uuid, slot: Timestamp) -> Result<Option<Run>, ApiError> {
    let cron = match state.store.get_cron(owner, cron_id).await {
        Ok(cron) => cron,
        Err(StoreError::NotFound(_)) => {
            // A schedule left behind by a cron deleted meanwhile.
            forget(state, owner, cron_id).await?;
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    if !cron.enabled || cron.end_time.is_some_and(|end| slot > end) {
        return Ok(None);
    }
    let assistant_gone = find_assistant(state, owner, cron.assistant_id).await?.is_none();
    let thread_gone = match cron.thread_id {
        Some(thread_id) => matches!(state.store.get_thread(owner, thread_id).await, Err(StoreError::NotFound(_))),
        None => false,
    };
    if assistant_gone || thread_gone {
        tracing::info!(%cron_id, "the cron's assistant or thread was deleted: the cron is deleted too");
        forget(state, owner, cron_id).await?;
        return Ok(None);
    }
    if !state.store.claim_cron_slot(cron_id, slot).await? {
        tracing::info!(%cron_id, slot = %slot.to_rfc3339(), "the cron fired for this time already");
        return Ok(None);
    }
    let mut payload = cron.payload.clone();
    let mut metadata = cron.metadata.clone();
    metadata.insert("cron_id".into(), json!(cron_id));
    payload.insert("metadata".into(), Value::Object(metadata));
    if cron.thread_id.is_none() {
        let keep = if cron.keep_threads { "keep" } else { "delete" };
        payload.insert("on_completion".into(), json!(keep));
        payload.insert("if_not_exists".into(), json!("create"));
    }
    let spec = spec(state, owner, cron.thread_id, &Body(payload)).await?;
    match state.runs.start(owner.clone(), spec, Mode::Wait).await.map_err(refused)? {
        Started::Finished { run, .. } => Ok(Some(run)),
        _ => Err(ApiError::Internal("a cron's run was not run to its end".into())),
    }
}

/// One look of the local scheduler at `now`: each cron due fires in a task of its own, whose
/// handles are returned. `fired` remembers, per cron, the slot it last fired for here.
pub async fn fire_due_crons(
    state: &AppState,
    now: Timestamp,
    fired: &mut HashMap<Uuid, Timestamp>,
) -> Result<Vec<JoinHandle<()>>, ApiError> {
    let crons = state.store.all_crons().await?;
    fired.retain(|cron_id, _| crons.iter().any(|cron| cron.cron_id == *cron_id));
    let mut tasks = Vec::new();
    for cron in crons {
        let Some(slot) = due_slot(&cron, fired.get(&cron.cron_id).copied(), now) else { continue };
        fired.insert(cron.cron_id, slot);
        let state = state.clone();
        let span = tracing::info_span!("cron", cron_id = %cron.cron_id);
        tasks.push(tokio::spawn(
            async move {
                if let Err(error) = fire(&state, &cron.user_id, cron.cron_id, slot).await {
                    tracing::warn!(%error, "the cron's run could not start");
                }
            }
            .instrument(span),
        ));
    }
    Ok(tasks)
}

/// The local server's scheduler: looks for due crons every `CRON_POLL_SECONDS`. It starts with
/// the process, so a cron due while no server ran fires once when one starts again.
pub async fn run_local_scheduler(state: AppState) {
    let mut fired = HashMap::new();
    loop {
        if let Err(error) = fire_due_crons(&state, Timestamp::now(), &mut fired).await {
            tracing::warn!(%error, "could not look for due crons");
        }
        tokio::time::sleep(state.config.crons.poll).await;
    }
}
