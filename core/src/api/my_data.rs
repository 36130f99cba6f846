//! `DELETE /me/data`: everything the caller owns, removed in one request (see
//! `schedules::retention::remove_user_data`). Safe to send again: a call cut short by a fault
//! is finished by the next, and one after that removes nothing.

use axum::extract::State;
use axum::routing::delete;
use axum::Json;

use super::auth::User;
use super::{ApiError, AppState, Routes};
use crate::schedules::retention::{self, Removed};

pub fn routes() -> Routes {
    Routes::default().route("/me/data", delete(remove))
}

#[derive(serde::Serialize)]
struct Reply {
    removed: Removed,
}

async fn remove(State(state): State<AppState>, User(user): User) -> Result<Json<Reply>, ApiError> {
    let removed = retention::remove_user_data(state.store.as_ref(), state.schedules.as_ref(), &user).await?;
    Ok(Json(Reply { removed }))
}
