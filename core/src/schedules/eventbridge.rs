//! EventBridge Scheduler through its REST API, signed with SigV4 (the SDK's client would bring
//! its own copy of much that every function already carries). One schedule per cron, named
//! after it, in the stack's group; its target is `run-worker`, its input a [`CronFiring`].

use async_trait::async_trait;
use http::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ScheduleError, Schedules};
use crate::config::{Answer, EventBridgeSettings, SignedRest};
use crate::model::Cron;

pub struct EventBridgeSchedules {
    rest: SignedRest,
    settings: EventBridgeSettings,
}

fn failed(reason: impl std::fmt::Display) -> ScheduleError {
    ScheduleError(reason.to_string())
}

impl EventBridgeSchedules {
    pub async fn connect(settings: &EventBridgeSettings) -> Self {
        let rest = SignedRest::connect("scheduler", settings.endpoint_url.as_deref()).await;
        EventBridgeSchedules { rest, settings: settings.clone() }
    }

    /// The schedule's definition: what CreateSchedule and UpdateSchedule both take.
    fn definition(&self, cron: &Cron) -> Result<Value, ScheduleError> {
        let schedule = cron.parsed_schedule().map_err(failed)?;
        let input = json!({"cron_firing": {
            "cron_id": cron.cron_id,
            "user_id": cron.user_id,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        }});
        let mut definition = json!({
            "GroupName": self.settings.group,
            "ScheduleExpression": schedule.eventbridge_expression(),
            "ScheduleExpressionTimezone": schedule.timezone(),
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": if cron.enabled { "ENABLED" } else { "DISABLED" },
            "Description": format!("OpenGPTs cron {}", cron.cron_id),
            "Target": {
                "Arn": self.settings.target_arn,
                "RoleArn": self.settings.role_arn,
                "Input": input.to_string(),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
            },
        });
        if let Some(end) = cron.end_time {
            definition["EndDate"] = json!(end.datetime().timestamp());
        }
        Ok(definition)
    }

    /// The cron's schedule as EventBridge holds it (GetSchedule), if it has one.
    pub async fn fetch(&self, cron_id: Uuid) -> Result<Option<Value>, ScheduleError> {
        let answer = self.send(Method::GET, &self.in_group(cron_id), None).await?;
        match answer.status {
            200..=299 => serde_json::from_slice(&answer.body).map(Some).map_err(failed),
            404 => Ok(None),
            _ => Err(failed(answer.reason())),
        }
    }

    fn path(&self, cron_id: Uuid) -> String {
        format!("/schedules/{}", schedule_name(cron_id))
    }

    /// The schedule's path, with the group that reads and deletes name.
    fn in_group(&self, cron_id: Uuid) -> String {
        let group: String = url::form_urlencoded::byte_serialize(self.settings.group.as_bytes()).collect();
        format!("{}?groupName={group}", self.path(cron_id))
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, ScheduleError> {
        let body = body.map(Value::to_string).unwrap_or_default().into_bytes();
        self.rest.send(method, path, &[("content-type", "application/json")], body).await.map_err(failed)
    }
}

/// A schedule's name: the cron's id, which is unique and within the 64 characters allowed.
fn schedule_name(cron_id: Uuid) -> String {
    format!("cron-{cron_id}")
}

#[async_trait]
impl Schedules for EventBridgeSchedules {
    async fn save(&self, cron: &Cron) -> Result<(), ScheduleError> {
        let definition = self.definition(cron)?;
        let path = self.path(cron.cron_id);
        // An update of a schedule that does not exist yet is a 404: then it is created.
        let updated = self.send(Method::PUT, &path, Some(&definition)).await?;
        let answer = match updated.status {
            404 => self.send(Method::POST, &path, Some(&definition)).await?,
            _ => updated,
        };
        match answer.status {
            200..=299 => Ok(()),
            _ => Err(failed(answer.reason())),
        }
    }

    async fn remove(&self, cron_id: Uuid) -> Result<(), ScheduleError> {
        match self.send(Method::DELETE, &self.in_group(cron_id), None).await? {
            answer if matches!(answer.status, 200..=299 | 404) => Ok(()),
            answer => Err(failed(answer.reason())),
        }
    }

    fn fired_here(&self) -> bool {
        false
    }
}
