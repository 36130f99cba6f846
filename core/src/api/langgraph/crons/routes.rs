//! `/langgraph/runs/crons` and `/langgraph/threads/{id}/runs/crons`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::requests::{CronFields, CronFilter, CronSearch, FromBody, Page, Parsed};
use super::super::run_request::{self, GraphRunBody};
use super::super::threads;
use super::super::{detail, json_response, not_found, time, unprocessable, Body};
use crate::api::auth::User;
use crate::api::{ApiError, AppState, Routes};
use crate::model::schedule::Schedule;
use crate::model::{AssistantChoice, Cron, ThreadTarget, Timestamp, UserId};
use crate::schedules::forget;

pub fn routes() -> Routes {
    Routes::default()
        .route("/langgraph/threads/{thread_id}/runs/crons", post(create_for_thread))
        .route("/langgraph/runs/crons", post(create_stateless))
        .route("/langgraph/runs/crons/search", post(search))
        .route("/langgraph/runs/crons/count", post(count))
        .route("/langgraph/runs/crons/{cron_id}", patch(update).delete(remove))
}

/// How many firings ahead a schedule's shortest interval is looked for: enough to see a day of
/// a schedule that fires every few minutes, and the seams between days and weeks.
const INTERVAL_FIRINGS: usize = 1500;

async fn create_for_thread(
    State(state): State<AppState>,
    User(user): User,
    Path(thread_id): Path<String>,
    Parsed(fields): Parsed<CronFields>,
) -> Result<Response, ApiError> {
    let thread_id = threads::thread_id(&thread_id)?;
    state.store.get_thread(&user, thread_id).await.map_err(|_| threads::missing(thread_id))?;
    create(state, user, Some(thread_id), fields).await
}

async fn create_stateless(
    State(state): State<AppState>,
    User(user): User,
    Parsed(fields): Parsed<CronFields>,
) -> Result<Response, ApiError> {
    create(state, user, None, fields).await
}

async fn create(
    state: AppState,
    user: UserId,
    thread_id: Option<Uuid>,
    fields: CronFields,
) -> Result<Response, ApiError> {
    let limit = state.config.crons.max_per_user;
    if state.store.list_crons(&user).await?.len() >= limit {
        return Err(detail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("You have {limit} crons, as many as MAX_CRONS_PER_USER allows: delete one first"),
        ));
    }
    let now = Timestamp::now();
    let mut cron = Cron {
        cron_id: Uuid::new_v4(),
        user_id: user,
        assistant_id: Uuid::nil(),
        thread_id,
        schedule: String::new(),
        timezone: None,
        payload: Map::new(),
        metadata: Map::new(),
        end_time: None,
        enabled: true,
        keep_threads: false,
        run: None,
        created_at: now,
        updated_at: now,
    };
    apply(&state, &mut cron, fields, true).await?;
    state.store.put_cron(&cron).await?;
    if let Err(error) = state.schedules.save(&cron).await {
        let _ = state.store.delete_cron(&cron.user_id, cron.cron_id).await;
        return Err(ApiError::BadGateway(format!("The cron's schedule could not be created: {error}")));
    }
    Ok(json_response(&CronView(&cron)))
}

/// Applies a create's or an update's fields to `cron` and checks the result as a whole: the
/// schedule, and the run request as a run would check it.
async fn apply(state: &AppState, cron: &mut Cron, fields: CronFields, creating: bool) -> Result<(), ApiError> {
    match fields.schedule {
        Some(schedule) => cron.schedule = schedule,
        None if creating => return Err(unprocessable("'schedule' is a required property")),
        None => {}
    }
    if let Some(timezone) = fields.timezone {
        cron.timezone = timezone;
    }
    if let Some(end_time) = fields.end_time {
        cron.end_time = end_time;
    }
    if let Some(enabled) = fields.enabled {
        cron.enabled = enabled;
    }
    if let Some(keep_threads) = fields.keep_threads {
        if cron.thread_id.is_some() {
            return Err(unprocessable("on_run_completed is for crons without a thread, whose runs each get one"));
        }
        cron.keep_threads = keep_threads;
    }
    let schedule =
        Schedule::parse(&cron.schedule, cron.timezone.as_deref()).map_err(|error| unprocessable(error.to_string()))?;
    let minimum = state.config.crons.min_interval;
    if let Some(shortest) = schedule.shortest_interval(Timestamp::now().datetime(), INTERVAL_FIRINGS) {
        if shortest.num_seconds() < minimum.as_secs() as i64 {
            return Err(unprocessable(format!(
                "'{}' runs every {} seconds at its shortest; crons may run at most every {} seconds (CRON_MIN_INTERVAL_SECONDS)",
                cron.schedule,
                shortest.num_seconds(),
                minimum.as_secs()
            )));
        }
    }
    for (key, value) in fields.run {
        match value {
            Value::Null => cron.payload.remove(&key),
            value => cron.payload.insert(key, value),
        };
    }
    if let Some(Value::Object(metadata)) = cron.payload.get("metadata") {
        cron.metadata = metadata.clone();
    }
    plan(state, cron).await
}

/// The run each firing of `cron` starts, read from its request as a run's would be, and kept
/// with it: its assistant by id (found again at each firing), its thread, or a new one each time.
async fn plan(state: &AppState, cron: &mut Cron) -> Result<(), ApiError> {
    let request = GraphRunBody::from_body(&Body(cron.payload.clone()))?;
    let mut spec = run_request::spec(state, &cron.user_id, cron.thread_id, request).await?;
    if let Some(url) = &spec.webhook {
        state.runs.check_webhook(url)?;
    }
    if let AssistantChoice::Resolved(assistant) = &spec.assistant {
        cron.assistant_id = assistant.assistant_id;
    }
    spec.assistant = AssistantChoice::ById(Some(cron.assistant_id));
    spec.thread = match cron.thread_id {
        Some(thread_id) => ThreadTarget::Existing { thread_id, create: false },
        None => ThreadTarget::Stateless { keep: cron.keep_threads },
    };
    cron.run = Some(spec);
    Ok(())
}

/// Keeps the run of a cron saved before crons kept one (made from its request), so it can fire.
pub async fn plan_saved(state: &AppState, owner: &UserId, cron_id: Uuid) -> Result<(), ApiError> {
    let mut cron = state.store.get_cron(owner, cron_id).await?;
    if cron.run.is_none() {
        plan(state, &mut cron).await?;
        state.store.put_cron(&cron).await?;
    }
    Ok(())
}

async fn owned(state: &AppState, user: &UserId, cron_id: &str) -> Result<Cron, ApiError> {
    let cron_id = Uuid::parse_str(cron_id).map_err(|_| not_found())?;
    state.store.get_cron(user, cron_id).await.map_err(|error| match error {
        crate::store::StoreError::NotFound(_) => detail(StatusCode::NOT_FOUND, format!("Cron {cron_id} not found")),
        other => other.into(),
    })
}

async fn update(
    State(state): State<AppState>,
    User(user): User,
    Path(cron_id): Path<String>,
    Parsed(fields): Parsed<CronFields>,
) -> Result<Response, ApiError> {
    let mut cron = owned(&state, &user, &cron_id).await?;
    apply(&state, &mut cron, fields, false).await?;
    cron.updated_at = Timestamp::now();
    state.store.put_cron(&cron).await?;
    state
        .schedules
        .save(&cron)
        .await
        .map_err(|error| ApiError::BadGateway(format!("The cron's schedule could not be changed: {error}")))?;
    Ok(json_response(&CronView(&cron)))
}

async fn remove(
    State(state): State<AppState>,
    User(user): User,
    Path(cron_id): Path<String>,
) -> Result<Response, ApiError> {
    let cron = owned(&state, &user, &cron_id).await?;
    forget(state.store.as_ref(), state.schedules.as_ref(), &user, cron.cron_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user's crons that a search or a count names.
async fn matching(state: &AppState, user: &UserId, filter: &CronFilter) -> Result<Vec<Cron>, ApiError> {
    let CronFilter { assistant_id, thread_id, enabled } = *filter;
    let mut crons = state.store.list_crons(user).await?;
    crons.retain(|cron| {
        assistant_id.is_none_or(|id| cron.assistant_id == id)
            && thread_id.is_none_or(|id| cron.thread_id == Some(id))
            && enabled.is_none_or(|enabled| cron.enabled == enabled)
    });
    Ok(crons)
}

async fn search(
    State(state): State<AppState>,
    User(user): User,
    Parsed(request): Parsed<CronSearch>,
) -> Result<Response, ApiError> {
    let CronSearch { filter, sort_by, descending, page: Page { limit, offset }, select: fields } = request;
    let mut crons = matching(&state, &user, &filter).await?;
    let now = Timestamp::now();
    crons.sort_by(|a, b| match sort_by {
        "cron_id" => a.cron_id.cmp(&b.cron_id),
        "assistant_id" => a.assistant_id.cmp(&b.assistant_id),
        "thread_id" => a.thread_id.cmp(&b.thread_id),
        "next_run_date" => a.next_run(now).cmp(&b.next_run(now)),
        "end_time" => a.end_time.cmp(&b.end_time),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        _ => a.created_at.cmp(&b.created_at),
    });
    if descending {
        crons.reverse();
    }
    let shown: Vec<Value> = crons
        .iter()
        .skip(offset)
        .take(limit)
        .map(|cron| select(serde_json::to_value(CronView(cron)).unwrap_or_default(), fields.as_deref()))
        .collect();
    Ok(json_response(&shown))
}

/// Only the fields a search's `select` names, when it names some.
fn select(view: Value, fields: Option<&[String]>) -> Value {
    let (Value::Object(all), Some(names)) = (view.clone(), fields) else { return view };
    Value::Object(all.into_iter().filter(|(key, _)| names.contains(key)).collect())
}

async fn count(
    State(state): State<AppState>,
    User(user): User,
    Parsed(filter): Parsed<CronFilter>,
) -> Result<Response, ApiError> {
    Ok(json_response(&matching(&state, &user, &filter).await?.len()))
}

/// A cron as the LangGraph API shows it.
struct CronView<'a>(pub &'a Cron);

impl Serialize for CronView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cron = self.0;
        let mut map = serializer.serialize_map(Some(14))?;
        map.serialize_entry("cron_id", &cron.cron_id)?;
        map.serialize_entry("assistant_id", &cron.assistant_id)?;
        map.serialize_entry("thread_id", &cron.thread_id)?;
        let on_run_completed = cron.thread_id.is_none().then_some(if cron.keep_threads { "keep" } else { "delete" });
        map.serialize_entry("on_run_completed", &on_run_completed)?;
        map.serialize_entry("end_time", &cron.end_time.map(time))?;
        map.serialize_entry("schedule", &cron.schedule)?;
        map.serialize_entry("timezone", &cron.timezone)?;
        map.serialize_entry("created_at", &time(cron.created_at))?;
        map.serialize_entry("updated_at", &time(cron.updated_at))?;
        map.serialize_entry("payload", &cron.payload)?;
        map.serialize_entry("user_id", &cron.user_id)?;
        map.serialize_entry("next_run_date", &cron.next_run(Timestamp::now()).map(time))?;
        map.serialize_entry("metadata", &cron.metadata)?;
        map.serialize_entry("enabled", &cron.enabled)?;
        map.end()
    }
}
