//! A run request of the LangGraph API: read once, into the run service's `RunSpec`.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::requests::FromBody;
use super::unprocessable;
use super::{detail, Body, Graph};
use crate::api::{limits, ApiError, AppState};
use crate::model::validate::whole_number;
use crate::model::{Assistant, UserId};
use crate::runs::{
    AssistantChoice, GraphOptions, MultitaskStrategy, OnDisconnect, RunError, RunInput, RunSpec, StreamMode,
    ThreadTarget,
};
use crate::store::{Entity, StoreError};

/// A run request of the LangGraph API, read once; its assistant is found when it is planned.
pub(super) struct GraphRunBody {
    /// A graph's id (its default assistant), or an assistant's.
    assistant_id: String,
    input: RunInput,
    modes: Vec<StreamMode>,
    /// `config.configurable` with `context` merged in, as given: the graph's keys are named
    /// once its assistant is known.
    configurable: Map<String, Value>,
    /// `interrupt_before` names the agent's `action` node.
    stops_before_action: bool,
    recursion_limit: Option<u32>,
    strategy: MultitaskStrategy,
    on_disconnect: OnDisconnect,
    metadata: Map<String, Value>,
    checkpoint: Option<String>,
    /// The user's decisions on the tool calls an agent waits with.
    resume: Option<Value>,
    resumable: bool,
    start_after: Option<Duration>,
    create_thread: bool,
    keep_thread: bool,
    webhook: Option<String>,
    /// The request as the run's record shows it (`kwargs`), but for its `config`.
    kwargs: Value,
}

impl FromBody for GraphRunBody {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let assistant_id = body.required_string("assistant_id")?;
        let modes = stream_modes(body.raw("stream_mode"))?;
        let input = match body.raw("input") {
            None => RunInput::Resume,
            Some(Value::Object(input)) => match input.get("messages") {
                None | Some(Value::Null) if input.is_empty() || !input.contains_key("messages") => RunInput::Resume,
                Some(list) => RunInput::Latest(super::body::messages(list, "input.messages")?),
                None => RunInput::Resume,
            },
            Some(other) => return Err(unprocessable(format!("{other} is not of type 'object', 'null' ('input')"))),
        };
        let resume = match body.raw("command") {
            None => None,
            Some(command) => match command.get("resume").filter(|resume| !resume.is_null()) {
                Some(resume) if input == RunInput::Resume => Some(resume.clone()),
                _ => {
                    return Err(unprocessable(
                        "A command may only resume an agent waiting for a review of its tool calls ({\"resume\": ...}, with no input)",
                    ))
                }
            },
        };
        let config = body.object("config")?;
        let mut configurable = match config.get("configurable") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(configurable)) => configurable.clone(),
            Some(other) => {
                return Err(unprocessable(format!("{other} is not of type 'object' ('config.configurable')")))
            }
        };
        configurable.extend(body.object("context")?);
        let mut stops_before_action = false;
        for key in ["interrupt_before", "interrupt_after"] {
            if let Some(nodes) = body.raw(key) {
                let stops_at_action =
                    nodes == "*" || nodes.as_array().is_some_and(|nodes| nodes.iter().any(|node| node == "action"));
                if key == "interrupt_before" && stops_at_action {
                    stops_before_action = true;
                } else if nodes.as_array().is_none_or(|nodes| !nodes.is_empty()) {
                    return Err(unprocessable(format!(
                        "{key} may name only the agent's 'action' node, before which it waits for confirmation"
                    )));
                }
            }
        }
        let recursion_limit = match config.get("recursion_limit") {
            None | Some(Value::Null) => None,
            Some(limit) => Some(
                whole_number(limit)
                    .filter(|limit| (1..=1000).contains(limit))
                    .ok_or_else(|| unprocessable("config.recursion_limit must be an integer from 1 to 1000"))?
                    as u32,
            ),
        };
        let strategy = match body.choice("multitask_strategy", &["reject", "enqueue", "interrupt", "rollback"])? {
            Some("reject") => MultitaskStrategy::Reject,
            Some("interrupt") => MultitaskStrategy::Interrupt,
            Some("rollback") => MultitaskStrategy::Rollback,
            _ => MultitaskStrategy::Enqueue,
        };
        let start_after = start_delay(body.raw("after_seconds"))?;
        let on_disconnect = match body.choice("on_disconnect", &["cancel", "continue"])?.unwrap_or("continue") {
            "cancel" => OnDisconnect::Cancel,
            _ => OnDisconnect::Continue,
        };
        let checkpoint = match body.raw("checkpoint") {
            Some(checkpoint) => checkpoint["checkpoint_id"].as_str().map(str::to_string),
            None => body.string("checkpoint_id")?,
        };
        let create_thread = body.choice("if_not_exists", &["create", "reject"])? == Some("create");
        let keep_thread = body.choice("on_completion", &["delete", "keep"])? == Some("keep");
        let metadata = body.object("metadata")?;
        let kwargs = json!({
            "input": body.raw("input"),
            "command": body.raw("command"),
            "config": null,
            "context": body.object("context")?,
            "stream_mode": modes.iter().map(|mode| mode.as_str()).collect::<Vec<_>>(),
            "interrupt_before": body.raw("interrupt_before"),
            "interrupt_after": body.raw("interrupt_after"),
            "webhook": body.raw("webhook"),
            "feedback_keys": null,
            "temporary": false,
            "subgraphs": body.boolean("stream_subgraphs")?,
            "resumable": body.boolean("stream_resumable")?,
            "checkpoint_during": true,
            "durability": "async",
        });
        Ok(GraphRunBody {
            assistant_id,
            input,
            modes,
            configurable,
            stops_before_action,
            recursion_limit,
            strategy,
            on_disconnect,
            metadata,
            checkpoint,
            resume,
            resumable: body.boolean("stream_resumable")?,
            start_after,
            create_thread,
            keep_thread,
            webhook: body.string("webhook")?,
            kwargs,
        })
    }
}

/// The assistant a request names: a graph's id (its default assistant), or an assistant's id.
async fn resolve_assistant(state: &AppState, user: &UserId, named: &str) -> Result<Assistant, ApiError> {
    if let Some(graph) = Graph::parse(named) {
        return Ok(graph.default_assistant());
    }
    let invalid = || {
        detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Invalid assistant: '{named}'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: {}",
                super::graph_names()
            ),
        )
    };
    let id = Uuid::parse_str(named).map_err(|_| invalid())?;
    crate::runs::find_assistant(state.store.as_ref(), user, id).await?.ok_or_else(invalid)
}

/// The longest `after_seconds`: the run waits in the function that runs it, whose time is limited
/// (15 minutes on Lambda), and the wait leaves time for the run.
const MAX_START_DELAY_SECONDS: f64 = 600.0;

/// `after_seconds`: how long the run waits before it starts.
fn start_delay(raw: Option<&Value>) -> Result<Option<Duration>, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(seconds) => match seconds.as_f64() {
            Some(seconds) if (0.0..=MAX_START_DELAY_SECONDS).contains(&seconds) => {
                Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
            }
            _ => Err(unprocessable(format!(
                "after_seconds must be a number of seconds from 0 to {MAX_START_DELAY_SECONDS} (got {seconds}); a later start needs a schedule"
            ))),
        },
    }
}

/// `stream_mode`: one name or a list; `values` when absent.
fn stream_modes(raw: Option<&Value>) -> Result<Vec<StreamMode>, ApiError> {
    let names: Vec<&Value> = match raw {
        None => return Ok(vec![StreamMode::Values]),
        Some(Value::Array(names)) => names.iter().collect(),
        Some(name) => vec![name],
    };
    let mut modes = Vec::new();
    for name in names {
        let mode = name.as_str().and_then(StreamMode::parse).ok_or_else(|| {
            let supported = StreamMode::NAMES.iter().map(|(name, _)| format!("'{name}'")).collect::<Vec<_>>();
            unprocessable(format!("{name} is not a supported stream_mode: use {}", supported.join(", ")))
        })?;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    Ok(modes)
}

/// A run request of the LangGraph API as the run service takes it: on the thread named, or,
/// with none, on a thread of its own (`stateless`), of the assistant it names.
pub(super) async fn spec(
    state: &AppState,
    user: &UserId,
    thread_id: Option<Uuid>,
    request: GraphRunBody,
) -> Result<RunSpec, ApiError> {
    let assistant = resolve_assistant(state, user, &request.assistant_id).await?;
    let configurable = super::bot_keys(Graph::of(&assistant), request.configurable);
    let mut kwargs = request.kwargs;
    kwargs["config"] = json!({"configurable": configurable, "metadata": &request.metadata});
    let mut overrides = configurable;
    if request.stops_before_action {
        overrides.insert("type==agent/interrupt_before_action".into(), json!(true));
    }
    limits::check_messages(&state.config.limits, request.input.messages(), "input")?;
    limits::check_config(&state.config.limits, &overrides)?;
    let thread = match thread_id {
        Some(thread_id) => ThreadTarget::Existing { thread_id, create: request.create_thread },
        None => ThreadTarget::Stateless { keep: request.keep_thread },
    };
    Ok(RunSpec {
        thread,
        assistant: AssistantChoice::Resolved(Box::new(assistant)),
        input: request.input,
        configurable: overrides,
        recursion_limit: request.recursion_limit,
        checkpoint: request.checkpoint,
        resume: request.resume,
        strategy: request.strategy,
        on_disconnect: request.on_disconnect,
        start_after: request.start_after,
        webhook: request.webhook,
        graph: Some(GraphOptions {
            modes: request.modes,
            resumable: request.resumable,
            metadata: request.metadata,
            kwargs,
        }),
    })
}

/// A run refused, in the reference's words where it has its own: a busy thread under `reject`,
/// a thread that is not there.
pub(super) fn refused(error: RunError) -> ApiError {
    match error {
        RunError::Store(StoreError::ThreadBusy { .. }) => detail(
            StatusCode::CONFLICT,
            "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
        ),
        RunError::Store(StoreError::NotFound(Entity::Thread)) => {
            detail(StatusCode::NOT_FOUND, "Thread or assistant not found.")
        }
        other => other.into(),
    }
}
