//! Cron schedules: five fields (minute, hour, day of month, month, day of week) in a time zone,
//! read once into the values each field allows. From them come the next times a schedule fires,
//! its shortest interval, and the same schedule as EventBridge Scheduler's `cron(...)`, which
//! fires it in the cloud.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

/// One field: the values it allows, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field(u64);

struct FieldKind {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values from `min` on (JAN, SUN ...).
    names: &'static [&'static str],
}

const MINUTE: FieldKind = FieldKind { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldKind = FieldKind { name: "hour", min: 0, max: 23, names: &[] };
const DAY: FieldKind = FieldKind { name: "day of month", min: 1, max: 31, names: &[] };
const MONTH: FieldKind = FieldKind {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/// 0 and 7 are both Sunday.
const WEEKDAY: FieldKind =
    FieldKind { name: "day of week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };

impl Field {
    fn parse(text: &str, kind: &FieldKind) -> Result<Field, ScheduleError> {
        let wrong = |why: String| ScheduleError(format!("the {} field '{text}' {why}", kind.name));
        let value = |word: &str| -> Result<u32, ScheduleError> {
            let named = kind.names.iter().position(|name| name.eq_ignore_ascii_case(word));
            let number = match named {
                Some(index) => index as u32 + kind.min,
                None => word.parse().map_err(|_| wrong(format!("has '{word}', which is not a number")))?,
            };
            if !(kind.min..=kind.max).contains(&number) {
                return Err(wrong(format!("has {number}, outside {}-{}", kind.min, kind.max)));
            }
            Ok(number)
        };
        let mut bits = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u32 =
                        step.parse().ok().filter(|step| *step > 0).ok_or_else(|| {
                            wrong(format!("has the step '{step}', which is not a whole number above 0"))
                        })?;
                    (range, step)
                }
                None => (part, 1),
            };
            let (first, last) = match range.split_once('-') {
                _ if range == "*" => (kind.min, kind.max),
                Some((first, last)) => (value(first)?, value(last)?),
                // `5/15` runs from 5 to the end.
                None if step > 1 => (value(range)?, kind.max),
                None => {
                    let single = value(range)?;
                    (single, single)
                }
            };
            if first > last {
                return Err(wrong(format!("has the range {first}-{last}, which runs backwards")));
            }
            for number in (first..=last).step_by(step as usize) {
                bits |= 1 << number;
            }
        }
        if kind.name == WEEKDAY.name && bits & (1 << 7) != 0 {
            bits = (bits & !(1 << 7)) | 1;
        }
        Ok(Field(bits))
    }

    fn has(self, value: u32) -> bool {
        self.0 & (1 << value) != 0
    }

    /// Every value of the field (Sunday is kept as 0 alone).
    fn all(kind: &FieldKind) -> Field {
        let last = if kind.name == WEEKDAY.name { 6 } else { kind.max };
        Field((kind.min..=last).fold(0, |bits, value| bits | 1 << value))
    }

    /// The first allowed value from `from` on, up to `max`.
    fn next_from(self, from: u32, max: u32) -> Option<u32> {
        (from..=max).find(|value| self.has(*value))
    }

    /// As EventBridge writes a field: `*`, or values and ranges, `shift` added to each.
    fn render(self, kind: &FieldKind, shift: u32) -> String {
        if self == Field::all(kind) {
            return "*".into();
        }
        let values: Vec<u32> = (kind.min..=kind.max).filter(|value| self.has(*value)).collect();
        let mut parts = Vec::new();
        let mut index = 0;
        while index < values.len() {
            let start = values[index];
            while index + 1 < values.len() && values[index + 1] == values[index] + 1 {
                index += 1;
            }
            let end = values[index];
            parts.push(match end - start {
                0 => format!("{}", start + shift),
                _ => format!("{}-{}", start + shift, end + shift),
            });
            index += 1;
        }
        parts.join(",")
    }
}

/// A schedule as its owner wrote it, in its time zone (UTC when none is named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: Field,
    hours: Field,
    days: Field,
    months: Field,
    weekdays: Field,
    timezone: Tz,
}

/// How far ahead the next time is looked for: a schedule of 29 February fires within 8 years.
const HORIZON_DAYS: i64 = 366 * 8 + 1;

impl Schedule {
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minutes, hours, days, months, weekdays] = fields[..] else {
            return Err(ScheduleError(format!(
                "'{expression}' is not a cron schedule: it needs five fields, minute hour day-of-month month day-of-week (as '0 9 * * MON-FRI')"
            )));
        };
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                ScheduleError(format!("'{name}' is not a time zone of the IANA database (as 'Europe/Paris' or 'UTC')"))
            })?,
        };
        let schedule = Schedule {
            minutes: Field::parse(minutes, &MINUTE)?,
            hours: Field::parse(hours, &HOUR)?,
            days: Field::parse(days, &DAY)?,
            months: Field::parse(months, &MONTH)?,
            weekdays: Field::parse(weekdays, &WEEKDAY)?,
            timezone,
        };
        if schedule.restricts_days() && schedule.restricts_weekdays() {
            return Err(ScheduleError(format!(
                "'{expression}' names both days of the month and days of the week; name one of them and leave the other '*' (EventBridge Scheduler, which fires schedules in the cloud, cannot fire on either)"
            )));
        }
        Ok(schedule)
    }

    fn restricts_days(&self) -> bool {
        self.days != Field::all(&DAY)
    }

    fn restricts_weekdays(&self) -> bool {
        self.weekdays != Field::all(&WEEKDAY)
    }

    fn fires_on(&self, date: NaiveDate) -> bool {
        self.months.has(date.month())
            && self.days.has(date.day())
            && self.weekdays.has(date.weekday().num_days_from_sunday())
    }

    /// The first time after `after` that the schedule fires. A local time that a clock change
    /// skips does not fire; one that it repeats fires once, the first time.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone).naive_local();
        let minute_start = local.with_second(0)?.with_nanosecond(0)?;
        let mut at = minute_start + Duration::minutes(1);
        let horizon = at + Duration::days(HORIZON_DAYS);
        while at < horizon {
            if !self.fires_on(at.date()) {
                at = at.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            let Some(hour) = self.hours.next_from(at.hour(), 23) else {
                at = at.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            };
            if hour != at.hour() {
                at = at.date().and_hms_opt(hour, 0, 0)?;
            }
            let Some(minute) = self.minutes.next_from(at.minute(), 59) else {
                at = next_hour(at)?;
                continue;
            };
            at = at.date().and_hms_opt(hour, minute, 0)?;
            match self.timezone.from_local_datetime(&at) {
                LocalResult::Single(time) => return Some(time.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) if first.with_timezone(&Utc) > after => {
                    return Some(first.with_timezone(&Utc))
                }
                _ => at += Duration::minutes(1),
            }
        }
        None
    }

    /// The shortest time between two firings, over the next `firings` of them from `from`.
    /// A year of firings is enough: it holds every seam between days, weeks, months and years
    /// the fields can make, and a rare schedule (29 February) is not followed for millennia.
    pub fn shortest_interval(&self, from: DateTime<Utc>, firings: usize) -> Option<Duration> {
        let first = self.next_after(from)?;
        let mut previous = first;
        let mut shortest: Option<Duration> = None;
        for _ in 0..firings {
            let Some(next) = self.next_after(previous) else { break };
            let gap = next - previous;
            shortest = Some(shortest.map_or(gap, |shortest| shortest.min(gap)));
            if gap <= Duration::minutes(1) || next - first > Duration::days(366) {
                break;
            }
            previous = next;
        }
        shortest
    }

    /// The schedule as EventBridge Scheduler's expression. It numbers weekdays from 1 (Sunday)
    /// and wants `?` in whichever of the two day fields is not named.
    pub fn eventbridge_expression(&self) -> String {
        let (days, weekdays) = if self.restricts_weekdays() {
            ("?".to_string(), self.weekdays.render(&WEEKDAY, 1))
        } else {
            (self.days.render(&DAY, 0), "?".to_string())
        };
        format!(
            "cron({} {} {days} {} {weekdays} *)",
            self.minutes.render(&MINUTE, 0),
            self.hours.render(&HOUR, 0),
            self.months.render(&MONTH, 0)
        )
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &'static str {
        self.timezone.name()
    }
}

fn next_hour(at: NaiveDateTime) -> Option<NaiveDateTime> {
    let start = at.date().and_hms_opt(at.hour(), 0, 0)?;
    Some(start + Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn next(expression: &str, timezone: Option<&str>, after: &str) -> String {
        Schedule::parse(expression, timezone).unwrap().next_after(utc(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn finds_the_next_time_of_each_field_kind() {
        assert_eq!(next("* * * * *", None, "2026-01-01T10:00:30Z"), "2026-01-01T10:01:00+00:00");
        assert_eq!(next("*/15 * * * *", None, "2026-01-01T10:00:00Z"), "2026-01-01T10:15:00+00:00");
        assert_eq!(next("5/20 * * * *", None, "2026-01-01T10:46:00Z"), "2026-01-01T11:05:00+00:00");
        assert_eq!(next("0 9 * * *", None, "2026-01-01T09:00:00Z"), "2026-01-02T09:00:00+00:00");
        assert_eq!(next("30 8 * * MON-FRI", None, "2026-01-02T09:00:00Z"), "2026-01-05T08:30:00+00:00");
        assert_eq!(next("0 0 1 JAN,jul *", None, "2026-02-01T00:00:00Z"), "2026-07-01T00:00:00+00:00");
        assert_eq!(next("0 0 * * 7", None, "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00+00:00");
        assert_eq!(next("0 12 29 2 *", None, "2026-03-01T00:00:00Z"), "2028-02-29T12:00:00+00:00");
        assert_eq!(next("0 0 31 * *", None, "2026-04-01T00:00:00Z"), "2026-05-31T00:00:00+00:00");
    }

    #[test]
    fn keeps_local_time_across_clock_changes() {
        // Paris: UTC+1 in winter, UTC+2 in summer; clocks go forward on 29 March 2026 at 02:00.
        assert_eq!(next("0 9 * * *", Some("Europe/Paris"), "2026-03-27T12:00:00Z"), "2026-03-28T08:00:00+00:00");
        assert_eq!(next("0 9 * * *", Some("Europe/Paris"), "2026-03-28T12:00:00Z"), "2026-03-29T07:00:00+00:00");
        // 02:30 does not exist that night: the next one is the day after.
        assert_eq!(next("30 2 * * *", Some("Europe/Paris"), "2026-03-28T12:00:00Z"), "2026-03-30T00:30:00+00:00");
        // 02:30 happens twice on 25 October: it fires once.
        let schedule = Schedule::parse("30 2 * * *", Some("Europe/Paris")).unwrap();
        let first = schedule.next_after(utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert_eq!(schedule.next_after(first).unwrap().to_rfc3339(), "2026-10-26T01:30:00+00:00");
    }

    #[test]
    fn says_what_is_wrong() {
        let error = |expression: &str| Schedule::parse(expression, None).unwrap_err().to_string();
        assert!(error("* * * *").contains("five fields"));
        assert!(error("60 * * * *").contains("minute field '60' has 60, outside 0-59"));
        assert!(error("* * * FOO *").contains("'FOO', which is not a number"));
        assert!(error("*/0 * * * *").contains("step '0'"));
        assert!(error("10-5 * * * *").contains("runs backwards"));
        assert!(error("0 9 1 * MON").contains("both days of the month and days of the week"));
        let zone = Schedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err().to_string();
        assert!(zone.contains("'Mars/Olympus' is not a time zone"));
    }

    #[test]
    fn measures_the_shortest_interval() {
        let from = utc("2026-01-01T00:00:00Z");
        let shortest = |expression: &str| Schedule::parse(expression, None).unwrap().shortest_interval(from, 500);
        assert_eq!(shortest("* * * * *"), Some(Duration::minutes(1)));
        assert_eq!(shortest("*/5 * * * *"), Some(Duration::minutes(5)));
        assert_eq!(shortest("0,2 9 * * *"), Some(Duration::minutes(2)));
        assert_eq!(shortest("59 23 * * *"), Some(Duration::days(1)));
        assert_eq!(shortest("0 9 * * MON,WED"), Some(Duration::days(2)));
        assert_eq!(shortest("0 12 29 2 *"), Some(Duration::days(366 + 365 * 3)));
    }

    #[test]
    fn writes_eventbridge_expressions() {
        let expression = |text: &str| Schedule::parse(text, None).unwrap().eventbridge_expression();
        assert_eq!(expression("* * * * *"), "cron(* * * * ? *)");
        assert_eq!(expression("*/15 9-17 * * MON-FRI"), "cron(0,15,30,45 9-17 ? * 2-6 *)");
        assert_eq!(expression("0 0 1,15 */3 *"), "cron(0 0 1,15 1,4,7,10 ? *)");
        assert_eq!(expression("0 12 * * 0,7"), "cron(0 12 ? * 1 *)");
        assert_eq!(Schedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap().timezone(), "Europe/Paris");
    }
}
