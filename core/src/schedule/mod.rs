//! Periodic tasks (docs/schedules.md): when a schedule fires ([`spec`]) and
//! the ids of the tasks it fires. A tick's task id is derived from the
//! schedule and the tick, `sched:<schedule id>:<unix seconds>` under the
//! schedule's tenant, so a second fire of the same tick inserts nothing; a
//! manual trigger's is `sched:<schedule id>:t<unix seconds>-<8 hex>`, which
//! no grid tick can take. Clients cannot submit ids under the reserved
//! prefixes ([`reserved_prefix`]).

pub mod plan;
pub mod spec;

use chrono::{DateTime, TimeZone, Utc};

/// Prefix of the ids of tasks fired by schedules.
pub(crate) const TASK_ID_PREFIX: &str = "sched:";
/// Prefixes of task ids that only yadtq itself assigns: schedules' ticks, and
/// workflows' nodes ([`crate::store::workflows`]).
pub(crate) const RESERVED_PREFIXES: [&str; 2] = [TASK_ID_PREFIX, crate::store::workflows::NODE_ID_PREFIX];

/// The reserved prefix `id` starts with, if any (a client submitting such an
/// id gets a 400 naming it).
pub fn reserved_prefix(id: &str) -> Option<&'static str> {
    RESERVED_PREFIXES.into_iter().find(|p| id.starts_with(p))
}

/// The client id (before the tenant's prefix) of the task schedule
/// `schedule` fires for grid or backfilled tick `tick`.
#[cfg(test)]
pub(crate) fn tick_task_id(schedule: &str, tick: DateTime<Utc>) -> String {
    format!("{TASK_ID_PREFIX}{schedule}:{}", tick.timestamp())
}

/// The id suffix (after `sched:<id>:`) of a tick: its Unix seconds.
pub fn tick_suffix(tick: DateTime<Utc>) -> String {
    tick.timestamp().to_string()
}

/// The id suffix of a manual trigger at `at`: `t<unix seconds>-<8 hex>`,
/// which no grid tick (digits only) can take.
pub fn trigger_suffix(at: DateTime<Utc>) -> String {
    format!("t{}-{}", at.timestamp(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The schedule and the tick (`scheduled_for`) of a fired task, from its
/// client id; `None` for every other task.
pub fn tick_of(id: &str) -> Option<(&str, DateTime<Utc>)> {
    let (schedule, suffix) = id.strip_prefix(TASK_ID_PREFIX)?.rsplit_once(':')?;
    if schedule.is_empty() {
        return None;
    }
    Some((schedule, tick_of_suffix(suffix)?))
}

/// The tick of an id suffix ([`tick_suffix`] or [`trigger_suffix`]).
pub fn tick_of_suffix(suffix: &str) -> Option<DateTime<Utc>> {
    let secs = suffix.strip_prefix('t').and_then(|s| s.split_once('-')).map_or(suffix, |(secs, _)| secs);
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Utc.timestamp_opt(secs.parse().ok()?, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_ids_round_trip_and_triggers_never_collide_with_ticks() {
        let tick = Utc.timestamp_opt(1_790_000_000, 0).unwrap();
        let id = tick_task_id("nightly:report", tick);
        assert_eq!(id, "sched:nightly:report:1790000000");
        assert_eq!(tick_of(&id), Some(("nightly:report", tick)));
        let trigger = format!("sched:nightly:{}", trigger_suffix(tick));
        assert_eq!(tick_of(&trigger), Some(("nightly", tick)));
        assert_ne!(trigger, tick_task_id("nightly", tick));
        assert_eq!(tick_of("plain-id"), None);
        assert_eq!(tick_of("sched::123"), None);
        assert_eq!(tick_of("sched:x:12a"), None);
        assert_eq!(reserved_prefix("wf:a"), Some("wf:"));
        assert_eq!(reserved_prefix("sched:a"), Some("sched:"));
        assert_eq!(reserved_prefix("schedule"), None);
    }
}
