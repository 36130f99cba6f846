//! EventBridge Scheduler through its REST API, signed with SigV4 (the SDK's client would bring
//! its own copy of much that every function already carries). One schedule per cron, named
//! after it, in the stack's group; its target is `run-worker`, its input a [`CronFiring`].

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ScheduleError, Schedules};
use crate::config::EventBridgeSettings;
use crate::model::Cron;

pub struct EventBridgeSchedules {
    http: reqwest::Client,
    settings: EventBridgeSettings,
    base: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

fn failed(reason: impl std::fmt::Display) -> ScheduleError {
    ScheduleError(reason.to_string())
}

impl EventBridgeSchedules {
    pub async fn connect(settings: &EventBridgeSettings) -> Result<Self, ScheduleError> {
        let (region, credentials) = crate::config::signing_context().await.map_err(failed)?;
        let base = match &settings.endpoint_url {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => format!("https://scheduler.{region}.amazonaws.com"),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(failed)?;
        Ok(EventBridgeSchedules { http, settings: settings.clone(), base, region, credentials })
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
        let mut url = url::Url::parse(&self.url(cron_id)).map_err(failed)?;
        url.query_pairs_mut().append_pair("groupName", &self.settings.group);
        match self.send(Method::GET, url.as_str(), None).await? {
            (200..=299, schedule) => Ok(Some(schedule)),
            (404, _) => Ok(None),
            (status, answer) => Err(refused(status, &answer)),
        }
    }

    fn url(&self, cron_id: Uuid) -> String {
        format!("{}/schedules/{}", self.base, schedule_name(cron_id))
    }

    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<(u16, Value), ScheduleError> {
        let body = body.map(Value::to_string).unwrap_or_default().into_bytes();
        let identity: Identity = self.credentials.provide_credentials().await.map_err(failed)?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("scheduler")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(failed)?
            .into();
        let content_type = [("content-type", "application/json")];
        let signable = SignableRequest::new(method.as_str(), url, content_type.into_iter(), SignableBody::Bytes(&body))
            .map_err(failed)?;
        let (instructions, _) = sign(signable, &params).map_err(failed)?.into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(body)
            .map_err(failed)?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let response =
            self.http.execute(request).await.map_err(|error| failed(format!("could not be reached: {error}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(failed)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// A schedule's name: the cron's id, which is unique and within the 64 characters allowed.
fn schedule_name(cron_id: Uuid) -> String {
    format!("cron-{cron_id}")
}

fn refused(status: u16, answer: &Value) -> ScheduleError {
    let message = answer.get("Message").or_else(|| answer.get("message")).unwrap_or(answer);
    failed(format!("answered {status}: {}", message.as_str().map_or_else(|| message.to_string(), str::to_string)))
}

#[async_trait]
impl Schedules for EventBridgeSchedules {
    async fn save(&self, cron: &Cron) -> Result<(), ScheduleError> {
        let definition = self.definition(cron)?;
        let url = self.url(cron.cron_id);
        // An update of a schedule that does not exist yet is a 404: then it is created.
        let (status, answer) = self.send(Method::PUT, &url, Some(&definition)).await?;
        match status {
            200..=299 => Ok(()),
            404 => match self.send(Method::POST, &url, Some(&definition)).await? {
                (200..=299, _) => Ok(()),
                (status, answer) => Err(refused(status, &answer)),
            },
            _ => Err(refused(status, &answer)),
        }
    }

    async fn remove(&self, cron_id: Uuid) -> Result<(), ScheduleError> {
        let mut url = url::Url::parse(&self.url(cron_id)).map_err(failed)?;
        url.query_pairs_mut().append_pair("groupName", &self.settings.group);
        match self.send(Method::DELETE, url.as_str(), None).await? {
            (200..=299 | 404, _) => Ok(()),
            (status, answer) => Err(refused(status, &answer)),
        }
    }

    fn fired_here(&self) -> bool {
        false
    }
}
