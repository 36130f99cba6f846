use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant, written as OpenGPTs writes it: `2026-11-28T15:45:51.279138Z`. It holds
/// microseconds only, so a stored and re-read value equals the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.trunc_subsecs(6))
    }

    pub fn datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn plus(&self, duration: std::time::Duration) -> Self {
        Self::from_datetime(self.0 + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX))
    }

    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// As Python writes an aware time, and so the LangGraph API: `2026-11-28T15:45:51.279138+00:00`.
    pub fn to_offset_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, false)
    }

    pub fn parse(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|at| Self::from_datetime(at.with_timezone(&Utc)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
    }
}
