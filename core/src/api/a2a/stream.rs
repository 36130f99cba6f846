//! `SendStreamingMessage` (`message/stream`): the task as it starts, then the answer's text as
//! the model writes it (working status updates, each with what is new), then the answer as an
//! artifact and the final status, read from the run's record once it ended.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::render::{status_of, task_id, State};
use super::Agent;
use crate::api::limits::StreamSlot;
use crate::api::sse::{frame, ping, stream_body, Framing};
use crate::api::ApiError;
use crate::model::Run;
use crate::runs::{Outcome, RunError, RunEvent};

/// How often a quiet stream says it is alive.
const PING: Duration = Duration::from_secs(15);

/// A run that could not take its thread after the stream began, as its events tell it.
pub fn refusal(error: RunError) -> RunEvent {
    let error = ApiError::from(error);
    RunEvent::Error { status_code: error.status().as_u16(), message: error.to_string() }
}

pub fn response(
    agent: Agent,
    id: Value,
    run: Run,
    question: String,
    events: mpsc::Receiver<RunEvent>,
    slot: StreamSlot,
) -> axum::response::Response {
    let (sender, frames) = mpsc::channel(64);
    tokio::spawn(async move {
        // A client that left ends the translation; the run goes on to its end.
        let _ = translate(&agent, &id, &run, &question, events, &sender).await;
    });
    let framing = Framing {
        ping: PING,
        idle: ping,
        event: |event| match event {
            RunEvent::Frame { event, data, .. } => frame(event, &data),
            RunEvent::Data(data) => frame("message", &data),
            RunEvent::Error { message, .. } => frame("error", &message),
        },
        end: None,
    };
    let headers = [
        (axum::http::header::CACHE_CONTROL, "no-cache"),
        (axum::http::header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
        (axum::http::header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    axum::response::IntoResponse::into_response((headers, stream_body(frames, framing, slot)))
}

/// The text each of the answer's messages has had so far, so each update carries what is new
/// (the stream sends a message whole or in pieces).
#[derive(Default)]
struct Written(HashMap<String, String>);

impl Written {
    fn news(&mut self, message_id: &str, text: &str) -> String {
        let so_far = self.0.entry(message_id.to_string()).or_default();
        let new = match text.strip_prefix(so_far.as_str()) {
            Some(rest) => rest.to_string(),
            None => text.to_string(),
        };
        so_far.push_str(&new);
        new
    }
}

async fn translate(
    agent: &Agent,
    id: &Value,
    run: &Run,
    question: &str,
    mut events: mpsc::Receiver<RunEvent>,
    sender: &mpsc::Sender<RunEvent>,
) -> Result<(), mpsc::error::SendError<RunEvent>> {
    let task = task_id(run.thread_id, run.run_id);
    let at = agent.task_ref(run.thread_id, &task);
    let send = |result: Value| {
        let data = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        sender.send(RunEvent::Frame { event: "message", data, id: None })
    };
    let asked = at.message(true, question, &Uuid::new_v4().to_string());
    send(agent.dialect.task_event(at.task(at.status(State::Submitted, None), Vec::new(), Some(vec![asked])))).await?;
    send(at.status_event(at.status(State::Working, None), false)).await?;
    let mut written = Written::default();
    let mut failure = None;
    while let Some(event) = events.recv().await {
        match event {
            RunEvent::Data(data) => {
                let messages: Vec<Value> = serde_json::from_str(&data).unwrap_or_default();
                for message in messages.iter().filter(|message| message["type"] == "ai") {
                    let text = message["content"].as_str().unwrap_or_default();
                    let message_id = message["id"].as_str().unwrap_or_default();
                    let new = written.news(message_id, text);
                    if !new.is_empty() {
                        let mut status = at.status(State::Working, None);
                        status["message"] = at.message(false, &new, message_id);
                        send(at.status_event(status, false)).await?;
                    }
                }
            }
            RunEvent::Error { message, .. } => failure = Some(message),
            RunEvent::Frame { .. } => {}
        }
    }
    let outcome = match agent.state.runs.turn_state(&agent.user, run.run_id).await {
        Ok((_, _, Outcome::Working)) | Err(_) if failure.is_some() => Outcome::Failed(failure.unwrap_or_default()),
        Ok((_, _, outcome)) => outcome,
        Err(error) => Outcome::Failed(error.to_string()),
    };
    if let Outcome::Answered(answer) = &outcome {
        send(at.artifact_event(at.artifact(answer, agent.assistant_id))).await?;
    }
    let (state, said) = status_of(&outcome);
    send(at.status_event(at.status(state, said.as_deref()), true)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_update_carries_only_what_is_new_whether_sent_whole_or_in_pieces() {
        let mut written = Written::default();
        assert_eq!(written.news("a", "Hel"), "Hel");
        assert_eq!(written.news("a", "Hello"), "lo");
        assert_eq!(written.news("a", " there"), " there");
        assert_eq!(written.news("b", "x"), "x");
    }
}
