//! Runs that start on their own (crons) and the calls made when a run ends (webhooks).

use std::time::Duration;

use super::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSettings {
    /// How many crons one user may have (`MAX_CRONS_PER_USER`).
    pub max_per_user: usize,
    /// The shortest time a schedule may leave between two runs (`CRON_MIN_INTERVAL_SECONDS`).
    pub min_interval: Duration,
    /// How often the scheduler inside the local server looks for due crons (`CRON_POLL_SECONDS`).
    pub poll: Duration,
    /// Set where EventBridge Scheduler fires crons (the cloud); unset: the local server does.
    pub eventbridge: Option<EventBridgeSettings>,
}

/// Where crons become schedules: one per cron in `group`, each invoking `target_arn` (the
/// `run-worker` function) as `role_arn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeSettings {
    pub group: String,
    pub target_arn: String,
    pub role_arn: String,
    /// An emulator's URL (moto); unset: AWS.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// What signs each webhook's body (`WEBHOOK_SECRET`); unset: webhooks go unsigned.
    pub secret: Option<Secret>,
    /// How long one try may take (`WEBHOOK_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}
