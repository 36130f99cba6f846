//! The bodies of `/langgraph/runs/crons`.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::{unprocessable, Graph};
use super::{Body, FromBody, Page};
use crate::api::ApiError;
use crate::model::Timestamp;

/// A cron's own fields; every other field of its body is the run request it starts.
const CRON_FIELDS: [&str; 5] = ["schedule", "timezone", "end_time", "enabled", "on_run_completed"];

/// A cron's create or update: each field given changes the cron (`None`: not given).
pub(in crate::api::langgraph) struct CronFields {
    pub schedule: Option<String>,
    /// Given, perhaps as null (UTC).
    pub timezone: Option<Option<String>>,
    /// Given, perhaps as null (no end).
    pub end_time: Option<Option<Timestamp>>,
    pub enabled: Option<bool>,
    /// `on_run_completed: keep` (or `delete`).
    pub keep_threads: Option<bool>,
    /// The run request's fields; a null one removes the field the cron had.
    pub run: Map<String, Value>,
}

impl FromBody for CronFields {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let schedule = body.string("schedule")?;
        let timezone = body.0.contains_key("timezone").then(|| body.string("timezone")).transpose()?;
        let end_time = match body.0.contains_key("end_time") {
            true => Some(body.string("end_time")?.map(|text| end_time(&text)).transpose()?),
            false => None,
        };
        let enabled = body.raw("enabled").map(|_| body.boolean("enabled")).transpose()?;
        let keep_threads = body.choice("on_run_completed", &["delete", "keep"])?.map(|choice| choice == "keep");
        let run = body.0.iter().filter(|(key, _)| !CRON_FIELDS.contains(&key.as_str()));
        let run = run.map(|(key, value)| (key.clone(), value.clone())).collect();
        Ok(CronFields { schedule, timezone, end_time, enabled, keep_threads, run })
    }
}

/// `end_time` as the SDK sends it (`datetime.isoformat()`): with an offset, or without one for UTC.
fn end_time(text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(text)
        .or_else(|| {
            let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
            Some(Timestamp::from_datetime(naive.and_utc()))
        })
        .ok_or_else(|| unprocessable(format!("'{text}' is not a date-time ('end_time')")))
}

/// Which crons a search or a count takes.
#[derive(Clone, Copy)]
pub(in crate::api::langgraph) struct CronFilter {
    /// An assistant's id, or a graph's (its default assistant).
    pub assistant_id: Option<Uuid>,
    pub thread_id: Option<Uuid>,
    pub enabled: Option<bool>,
}

impl FromBody for CronFilter {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        let assistant_id =
            match body.string("assistant_id")? {
                None => None,
                Some(named) => match Graph::parse(&named) {
                    Some(graph) => Some(graph.default_assistant_id()),
                    None => Some(Uuid::parse_str(&named).map_err(|_| {
                        unprocessable(format!("'{named}' is not a valid UUID or graph ('assistant_id')"))
                    })?),
                },
            };
        Ok(CronFilter {
            assistant_id,
            thread_id: body.id("thread_id")?,
            enabled: body.raw("enabled").map(|_| body.boolean("enabled")).transpose()?,
        })
    }
}

/// The fields a cron search may sort by.
const CRON_SORTS: [&str; 7] =
    ["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"];

pub(in crate::api::langgraph) struct CronSearch {
    pub filter: CronFilter,
    /// One of `CRON_SORTS`.
    pub sort_by: &'static str,
    pub descending: bool,
    pub page: Page,
    /// Only these fields of each cron, when given.
    pub select: Option<Vec<String>>,
}

impl FromBody for CronSearch {
    fn from_body(body: &Body) -> Result<Self, ApiError> {
        Ok(CronSearch {
            filter: CronFilter::from_body(body)?,
            sort_by: body.choice("sort_by", &CRON_SORTS)?.unwrap_or("created_at"),
            descending: body.choice("sort_order", &["asc", "desc"])? == Some("desc"),
            page: Page::read(body, 10)?,
            select: match body.raw("select") {
                Some(Value::Array(names)) => Some(names.iter().filter_map(Value::as_str).map(str::to_string).collect()),
                _ => None,
            },
        })
    }
}
