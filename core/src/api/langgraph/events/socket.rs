//! The event protocol over a WebSocket (`GET /threads/{id}/stream/events`, upgraded): commands
//! in, their replies and the events of the socket's subscriptions out, one JSON text frame each.
//! Every event goes out once per socket, however many of its subscriptions it passes.

use std::collections::{BTreeSet, HashMap};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use super::commands::{self, Reply, Session};
use super::{thread_id, EventFilter};
use crate::api::auth::User;
use crate::api::limits::StreamSlot;
use crate::api::{ApiError, AppState};
use crate::model::UserId;
use crate::runs::ThreadFeed;

/// The most subscriptions one socket holds at once.
const MAX_SUBSCRIPTIONS: usize = 16;

/// The largest frame a client may send: a command, like a command's HTTP body.
fn max_frame_bytes(state: &AppState) -> usize {
    state.config.max_body_bytes
}

pub(super) async fn upgrade(
    State(state): State<AppState>,
    User(user): User,
    Path(raw_thread_id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if !state.config.websockets {
        return Err(super::no_websocket().await);
    }
    let upgrade = upgrade.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let thread_id = thread_id(&raw_thread_id)?;
    let slot = state.streams.take(&user)?;
    let limit = max_frame_bytes(&state);
    let upgrade = upgrade.max_message_size(limit).max_frame_size(limit);
    Ok(upgrade.on_upgrade(move |socket| serve(state, user, thread_id, socket, slot)))
}

/// A socket's subscriptions, and where its feed should start again after a new one.
#[derive(Default)]
struct Subscriptions {
    filters: HashMap<Uuid, EventFilter>,
    replay_from: Option<u64>,
    since: u64,
}

impl Session for Subscriptions {
    fn subscribe(&mut self, filter: EventFilter) -> Result<Uuid, Reply> {
        if self.filters.len() >= MAX_SUBSCRIPTIONS {
            let message =
                format!("A connection holds at most {MAX_SUBSCRIPTIONS} subscriptions: unsubscribe one first.");
            return Err(Reply::error(Value::Null, "invalid_argument", message));
        }
        let id = Uuid::new_v4();
        self.filters.insert(id, filter);
        // The new subscription sees the thread from `since`: events sent already are not again.
        self.replay_from = Some(self.replay_from.map_or(self.since, |from| from.min(self.since)));
        Ok(id)
    }

    fn unsubscribe(&mut self, id: &str) -> bool {
        Uuid::parse_str(id).is_ok_and(|id| self.filters.remove(&id).is_some())
    }
}

async fn serve(state: AppState, user: UserId, thread_id: Uuid, mut socket: WebSocket, _slot: StreamSlot) {
    let mut subscriptions = Subscriptions::default();
    let mut feed: Option<ThreadFeed> = None;
    let mut sent = BTreeSet::new();
    loop {
        let next_event = async {
            match feed.as_mut() {
                Some(feed) => feed.next().await,
                None => std::future::pending().await,
            }
        };
        let outgoing = tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = command(&state, &user, thread_id, text.as_str(), &mut subscriptions).await;
                    if let Some(from) = subscriptions.replay_from.take() {
                        feed = Some(ThreadFeed::new(state.store.clone(), state.runs.thread_logs(), user.clone(), thread_id, from));
                    }
                    reply.0.to_string()
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            event = next_event => match event {
                Ok(event) if subscriptions.filters.values().any(|filter| filter.passes(&event)) && sent.insert(event.seq) => {
                    event.envelope.clone()
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "a thread's event socket could not read the store");
                    return;
                }
            },
        };
        if socket.send(Message::Text(outgoing.into())).await.is_err() {
            return;
        }
    }
}

/// One frame from the client, answered.
async fn command(state: &AppState, user: &UserId, thread_id: Uuid, text: &str, session: &mut Subscriptions) -> Reply {
    let Ok(raw) = serde_json::from_str::<Value>(text) else {
        return Reply::error(Value::Null, "invalid_argument", "Protocol commands must be valid JSON.");
    };
    let command = match commands::read(raw) {
        Ok(command) => command,
        Err(refusal) => return refusal,
    };
    if command.method == "subscription.subscribe" {
        let since = command.params.get("since").and_then(Value::as_u64).unwrap_or(0);
        session.since = since;
    }
    let reply = commands::answer(state, user, thread_id, command, session).await;
    if reply.0["error"] == json!("no_such_subscription") {
        let mut reply = reply;
        reply.0["meta"] = json!({"applied_through_seq": 0});
        return reply;
    }
    reply
}
