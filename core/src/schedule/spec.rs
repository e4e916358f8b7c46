//! When a schedule fires: a cron pattern read in an IANA time zone (by
//! `croner` with `chrono-tz`, never by a parser of our own) or a fixed grid
//! of `every` seconds from the Unix epoch plus `offset`, so every process
//! computes the same ticks. Ticks are whole seconds (UTC instants).
//!
//! Daylight saving time follows croner's documented rule: a fixed-time
//! pattern (`0 30 2 * * *`) fires once in a repeated hour (at its first
//! pass) and, when its time falls in a spring-forward gap, at the first valid
//! time after the gap; an interval pattern (`*/15 * * * *`, `0 * * * *`)
//! keeps its interval in real time: it fires in both passes of a repeated
//! hour and skips the times that do not exist. An `every` grid ignores the
//! time zone altogether.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest `every`, seconds (ten years).
pub(crate) const MAX_EVERY: i64 = 315_360_000;

/// Names of the cron fields, in order, for a 6-field pattern (a 5-field one
/// has no `second`).
const FIELDS: [&str; 6] = ["second", "minute", "hour", "day of month", "month", "day of week"];

/// How a schedule's ticks are spaced, as the API takes it: exactly one of
/// `cron` or `every`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cron": "*/5 * * * *"}))]
pub struct SpecInput {
    /// A cron pattern: 5 fields (minute hour day-of-month month day-of-week)
    /// or 6 with seconds first; names (`MON`, `JAN`), `L`, `W`, `#` and the
    /// `@daily` nicknames as croner reads them. Local to the schedule's `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Seconds between ticks (1 to 315360000, ten years): ticks at
    /// `offset + k * every` seconds after the Unix epoch, whatever the time zone.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 315360000)]
    pub every: Option<i64>,
    /// With `every`: seconds after each multiple of `every` (0 to `every` - 1, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole")]
    #[schema(minimum = 0)]
    pub offset: Option<i64>,
}

/// An optional whole number, also when written with a fraction of zero
/// (`60.0`): JSON Schema counts that as an integer, and so do clients that
/// only have floating-point numbers.
pub fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid value: {n}, expected a whole number")))
}

/// An invalid spec or time zone: the field at fault (`spec.cron`,
/// `spec.every`, `spec.offset`, `spec`, `timezone`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The request field at fault.
    pub field: &'static str,
    /// What is wrong, for a person (for a cron pattern: which field, at which position).
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError { field, message: message.into() }
}

/// A parsed spec in its time zone: computes ticks.
#[derive(Debug, Clone)]
pub struct Spec {
    kind: Kind,
    tz: Tz,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    Every { every: i64, offset: i64 },
}

/// The time zone named `name` (IANA, e.g. `Europe/Berlin`); `None` is UTC.
pub(crate) fn parse_timezone(name: Option<&str>) -> Result<Tz, SpecError> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => Tz::from_str(n)
            .map_err(|_| err("timezone", format!("unknown time zone '{n}': give an IANA name such as Europe/Berlin"))),
    }
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}

/// Parses a cron pattern; the error names the cron field and its position
/// (1-based) when one field alone is at fault.
fn parse_cron(pattern: &str) -> Result<Cron, SpecError> {
    let parts: Vec<&str> = pattern.split_whitespace().collect();
    let nickname = parts.len() == 1 && parts[0].starts_with('@');
    if !(nickname || parts.len() == 5 || parts.len() == 6) {
        return Err(err(
            "spec.cron",
            format!("cron pattern '{pattern}' has {} fields; give 5 (minute first) or 6 (second first)", parts.len()),
        ));
    }
    parser().parse(pattern).map_err(|e| {
        // Find the one field that fails on its own (the others made `*`).
        let names = &FIELDS[6 - parts.len().max(5)..];
        let culprit = (0..parts.len()).find(|&i| {
            let probe: Vec<&str> = (0..parts.len()).map(|j| if j == i { parts[i] } else { "*" }).collect();
            parser().parse(&probe.join(" ")).is_err()
        });
        let message = match culprit {
            Some(i) if !nickname => {
                format!("cron pattern '{pattern}': field {} ({}) '{}' is invalid: {e}", i + 1, names[i], parts[i])
            }
            _ => format!("cron pattern '{pattern}' is invalid: {e}"),
        };
        err("spec.cron", message)
    })
}

impl Spec {
    /// Validates `input` in time zone `timezone` (IANA name; `None` is UTC).
    ///
    /// Errors: both or neither of `cron` and `every` (`spec`), an invalid
    /// pattern (`spec.cron`, naming the cron field and position), `every`
    /// below 1 (`spec.every`), `offset` outside 0..every or without `every`
    /// (`spec.offset`), an unknown zone (`timezone`).
    pub fn parse(input: &SpecInput, timezone: Option<&str>) -> Result<Self, SpecError> {
        let tz = parse_timezone(timezone)?;
        let kind = match (&input.cron, input.every) {
            (Some(_), Some(_)) => return Err(err("spec", "give cron or every, not both")),
            (None, None) => return Err(err("spec", "give cron (a pattern) or every (seconds)")),
            (Some(c), None) => {
                if input.offset.is_some() {
                    return Err(err("spec.offset", "offset goes with every, not with cron"));
                }
                Kind::Cron(Box::new(parse_cron(c)?))
            }
            (None, Some(every)) => {
                if !(1..=MAX_EVERY).contains(&every) {
                    return Err(err("spec.every", format!("every must be 1 to {MAX_EVERY} seconds, got {every}")));
                }
                let offset = input.offset.unwrap_or(0);
                if !(0..every).contains(&offset) {
                    return Err(err(
                        "spec.offset",
                        format!("offset must be 0 to {} (every - 1), got {offset}", every - 1),
                    ));
                }
                Kind::Every { every, offset }
            }
        };
        Ok(Self { kind, tz })
    }

    /// The first tick strictly after `t`, `None` when the pattern has none
    /// (before year 5000).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every { every, offset } => {
                let k = (t.timestamp() - offset).div_euclid(*every) + 1;
                Utc.timestamp_opt(k * every + offset, 0).single()
            }
            Kind::Cron(cron) => {
                // Whole seconds: a fraction of a second after a tick is still "at" it.
                let from = Utc.timestamp_opt(t.timestamp(), 0).single()?.with_timezone(&self.tz);
                cron.find_next_occurrence(&from, false).ok().map(|n| n.with_timezone(&Utc))
            }
        }
    }

    /// The first tick at or after `t` (ticks are whole seconds: for a `t`
    /// with a fraction, the first tick after it).
    pub fn first_from(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if t.timestamp_subsec_nanos() == 0 {
            self.next_after(t.checked_sub_signed(chrono::Duration::seconds(1))?)
        } else {
            self.next_after(t)
        }
    }

    /// The next `n` ticks strictly after `t` (the tests' view of the grid).
    #[cfg(test)]
    pub(crate) fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(t), |&p| self.next_after(p)).take(n).collect()
    }

    /// Ticks from `from` to `to` (both included), at most `cap`; the bool is
    /// true when more were left out.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: usize) -> (Vec<DateTime<Utc>>, bool) {
        let mut out = Vec::new();
        let mut next = self.first_from(from);
        while let Some(t) = next.filter(|t| *t <= to) {
            if out.len() == cap {
                return (out, true);
            }
            out.push(t);
            next = self.next_after(t);
        }
        (out, false)
    }

    /// How many ticks lie in `[from, to]`, counting at most `cap`
    /// (arithmetic for `every`; cron patterns are walked).
    pub(crate) fn count_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: u64) -> u64 {
        if to < from {
            return 0;
        }
        match &self.kind {
            Kind::Every { every, offset } => {
                let below = |s: i64| (s - offset).div_euclid(*every); // ticks <= s, shifted
                let n = below(to.timestamp()) - below(from.timestamp() - 1);
                (n.max(0) as u64).min(cap)
            }
            Kind::Cron(_) => self.between(from, to, cap as usize).0.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests;
