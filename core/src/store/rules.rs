//! The rules every backend applies inside its own writes, as pure functions, so that the
//! backends cannot drift apart on them. (DynamoDB states the same rules as condition
//! expressions, which the contract suite holds to the same outcomes.)

use uuid::Uuid;

use super::{DocumentQuota, StoreError, StoreResult};
use crate::model::EmbedderId;

/// Whether a run may take its thread: not while another run's lease on it is unexpired
/// (`holder`), and then not past the user's running runs (`running`, on any thread).
pub fn check_start(holder: Option<Uuid>, running: usize, max_user_runs: Option<u32>) -> StoreResult<()> {
    if let Some(run_id) = holder {
        return Err(StoreError::ThreadBusy { run_id });
    }
    match max_user_runs {
        Some(limit) if running >= limit as usize => Err(StoreError::TooManyRuns { limit }),
        _ => Ok(()),
    }
}

/// Whether a run may add `adding` messages to its thread. One holding the lease may; one that
/// lost it may still when it adds nothing, or when nothing was written to the thread since its
/// own last write (`moved` is false): otherwise its messages would land among another run's.
pub fn check_run_write(run_id: Uuid, holds_lease: bool, adding: usize, moved: bool) -> StoreResult<()> {
    match !holds_lease && adding > 0 && moved {
        true => Err(StoreError::LeaseLost { run_id }),
        false => Ok(()),
    }
}

/// Whether a file's chunks may join an index, in the order every store checks: the embedder
/// the index was made with, then the namespace's chunks, then the owner's stored bytes (each
/// counted with the file).
pub fn check_document(
    recorded: Option<&EmbedderId>,
    offered: &EmbedderId,
    chunks_after: u64,
    owner_bytes_after: u64,
    quota: DocumentQuota,
) -> StoreResult<()> {
    if let Some(recorded) = recorded.filter(|recorded| *recorded != offered) {
        return Err(StoreError::IndexMismatch { recorded: recorded.clone(), offered: offered.clone() });
    }
    if chunks_after > quota.max_chunks {
        return Err(StoreError::ChunkQuota { would_hold: chunks_after, limit: quota.max_chunks });
    }
    if owner_bytes_after > quota.max_user_bytes {
        return Err(StoreError::ByteQuota { would_hold: owner_bytes_after, limit: quota.max_user_bytes });
    }
    Ok(())
}
