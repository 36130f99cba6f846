//! How long what users store is kept: threads' and memory items' default lifetimes, and how
//! often what has expired is swept away.

use std::time::Duration;

use super::{ConfigError, Env};
use crate::model::{ThreadTtl, TtlStrategy};

#[derive(Debug, Clone, PartialEq)]
pub struct RetentionSettings {
    /// The lifetime of a thread made without a `ttl` (`THREAD_TTL_MINUTES`, with
    /// `THREAD_TTL_STRATEGY`, `delete` unless set); none unless set.
    pub thread_default: Option<(TtlStrategy, f64)>,
    /// The lifetime of a memory item put without a `ttl` (`STORE_TTL_MINUTES`); none unless set.
    pub store_default_minutes: Option<f64>,
    /// Whether reading a memory item starts its lifetime again, unless the read says
    /// (`STORE_TTL_REFRESH_ON_READ`, the reference's `refresh_on_read`; true unless set).
    pub store_refresh_on_read: bool,
    /// How often the local server sweeps expired threads (`TTL_SWEEP_SECONDS`). In the cloud
    /// an EventBridge schedule invokes `run-worker` at the template's rate instead.
    pub sweep_every: Duration,
    /// The most threads one sweep takes (`TTL_SWEEP_LIMIT`); the next sweep goes on.
    pub sweep_limit: usize,
}

/// A lifetime in minutes, over 0 and at most a century; none unless set.
#[derive(Debug, Clone, Copy, Default)]
struct Lifetime(Option<f64>);

impl std::str::FromStr for Lifetime {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.parse::<f64>() {
            Ok(minutes) if minutes > 0.0 && minutes <= ThreadTtl::MAX_MINUTES => Ok(Lifetime(Some(minutes))),
            _ => Err("expected a number of minutes, over 0"),
        }
    }
}

pub(super) fn read(env: &Env<'_>) -> Result<RetentionSettings, ConfigError> {
    let strategy = match env.text("THREAD_TTL_STRATEGY") {
        None => TtlStrategy::Delete,
        Some(name) => TtlStrategy::parse(&name).ok_or_else(|| ConfigError {
            name: "THREAD_TTL_STRATEGY",
            value: name,
            reason: "expected delete or keep_latest".into(),
        })?,
    };
    Ok(RetentionSettings {
        thread_default: env.parse("THREAD_TTL_MINUTES", Lifetime::default())?.0.map(|minutes| (strategy, minutes)),
        store_default_minutes: env.parse("STORE_TTL_MINUTES", Lifetime::default())?.0,
        store_refresh_on_read: env.parse("STORE_TTL_REFRESH_ON_READ", true)?,
        sweep_every: Duration::from_secs(env.parse("TTL_SWEEP_SECONDS", 60)?.max(1)),
        sweep_limit: env.parse("TTL_SWEEP_LIMIT", 1000)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::model::TtlStrategy;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_lookup(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string()))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn lifetimes_are_minutes_over_zero_and_strategies_are_named() {
        let unset = config(&[]).unwrap().retention;
        assert_eq!(
            (unset.thread_default, unset.store_default_minutes, unset.store_refresh_on_read),
            (None, None, true)
        );
        let set = config(&[
            ("THREAD_TTL_MINUTES", "90"),
            ("THREAD_TTL_STRATEGY", "keep_latest"),
            ("STORE_TTL_MINUTES", "1.5"),
        ])
        .unwrap()
        .retention;
        assert_eq!(set.thread_default, Some((TtlStrategy::KeepLatest, 90.0)));
        assert_eq!(set.store_default_minutes, Some(1.5));
        for (name, value) in
            [("THREAD_TTL_MINUTES", "0"), ("STORE_TTL_MINUTES", "soon"), ("THREAD_TTL_STRATEGY", "archive")]
        {
            let refused = config(&[(name, value)]).unwrap_err();
            assert!(refused.contains(name), "{refused}");
        }
    }
}
