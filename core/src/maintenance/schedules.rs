//! The schedule service: fires schedules' due ticks (and their buffered
//! runs) as tasks and sends them to Kafka in the same pass, as the
//! scheduler's promote does, so a per-second schedule fires once a second.
//! Only the leader runs it; each schedule's fire is one conditional
//! statement ([`crate::store::schedules::apply`]) and each tick's task id is
//! derived from the schedule and the tick, so a tick fired twice (two
//! leaders for a moment, a retry after a crash) inserts one task.

use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::names::TaskKey;
use crate::schedule::plan::{self, FireKind, Overlap, Plan, Run, State};
use crate::schedule::spec::{Spec, SpecError, SpecInput};
use crate::store::schedules::{self, Applied, RunTask, ScheduleRow};
use crate::store::StoreError;
use crate::tenants::Routes;

/// Schedules read per pass at most.
pub(crate) const BATCH: i64 = 500;
/// Fires history lines deleted per cleaner pass at most.
const CLEAN_BATCH: i64 = 5000;

/// Schedule runs fired as tasks: counter, label `kind` (`tick`, `trigger`, `backfill`).
pub(crate) const TICKS_FIRED: &str = "yadtq_schedule_ticks_fired_total";
/// Schedule ticks skipped: counter, label `reason` (`overlap`,
/// `catchup_window`, `max_runs`).
pub(crate) const TICKS_SKIPPED: &str = "yadtq_schedule_ticks_skipped_total";
/// Time from a grid tick to the leader's fire of it (database clock), seconds: histogram.
pub(crate) const TICK_LATENESS: &str = "yadtq_schedule_tick_lateness_seconds";

/// The parsed spec of a stored schedule.
pub fn spec_of(row: &ScheduleRow) -> Result<Spec, SpecError> {
    let input: SpecInput = serde_json::from_value(row.settings.spec.clone())
        .map_err(|e| SpecError { field: "spec", message: e.to_string() })?;
    Spec::parse(&input, Some(&row.settings.timezone))
}

/// The state a plan for `row` starts from.
pub fn state_of(row: &ScheduleRow) -> State {
    let s = &row.settings;
    State {
        overlap: Overlap::parse(&s.overlap).unwrap_or_default(),
        catchup_window: std::time::Duration::try_from_secs_f64(s.catchup_window_seconds.max(0.0))
            .unwrap_or(std::time::Duration::MAX),
        next_tick: s.next_tick,
        end_at: s.end_at,
        runs_left: s.max_runs.map(|m| m - row.runs),
        buffered: row.buffered.clone(),
        running: row.running(),
    }
}

/// The jitter delay of `row`'s tick `tick`: the same for every fire of that
/// tick, spread over `[0, jitter)`.
fn jitter_of(row: &ScheduleRow, tick: DateTime<Utc>) -> chrono::Duration {
    let jitter = row.settings.jitter_seconds;
    if jitter <= 0.0 {
        return chrono::Duration::zero();
    }
    let digest = Sha256::digest(format!("{}:{}", row.key, tick.timestamp()));
    let unit = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as f64 / (u32::MAX as f64 + 1.0);
    chrono::Duration::milliseconds((unit * jitter * 1000.0) as i64)
}

/// Applies `plan` to `row`: cancels the last task first when the plan says
/// so (`cancel_other`), then fires in one conditional statement. Returns
/// what it did (the `queued` tasks inserted, the runs a unique key
/// refused), or `None` when the schedule changed meanwhile.
pub async fn execute(
    pool: &PgPool,
    row: &ScheduleRow,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Option<Applied>, StoreError> {
    if plan.cancel_last {
        if let Some(last) = &row.last_task {
            crate::store::tasks::cancel(pool, last).await?;
        }
    }
    let tasks: Vec<RunTask> = plan
        .runs
        .iter()
        .map(|r| {
            let run_at = Some(r.scheduled_for + jitter_of(row, r.scheduled_for))
                .filter(|t| r.kind == FireKind::Tick && *t > now);
            RunTask { key: row.key.task_key(&r.suffix), run_at }
        })
        .collect();
    let keys: Vec<Option<TaskKey>> = plan.log.iter().map(|e| e.suffix.as_ref().map(|s| row.key.task_key(s))).collect();
    let done = schedules::apply(pool, row, plan, &tasks, &keys).await?;
    if let Some(applied) = &done {
        let refused: Vec<&str> = applied.refused.iter().map(TaskKey::as_str).collect();
        let fired: Vec<&Run> = plan
            .runs
            .iter()
            .zip(&tasks)
            .filter(|(_, t)| !refused.contains(&t.key.as_str()))
            .map(|(run, _)| run)
            .collect();
        record(plan, &fired, refused.len(), now);
    }
    Ok(done)
}

/// Counts what a plan did in the metrics: `fired` are its runs that
/// inserted a task, `refused` how many a unique key refused.
fn record(plan: &Plan, fired: &[&Run], refused: usize, now: DateTime<Utc>) {
    if refused > 0 {
        metrics::counter!(TICKS_SKIPPED, "reason" => "unique").increment(refused as u64);
    }
    for run in fired {
        metrics::counter!(TICKS_FIRED, "kind" => run.kind.as_str()).increment(1);
        if run.kind == FireKind::Tick {
            let late = (now - run.scheduled_for).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!(TICK_LATENESS).record(late);
        }
    }
    for e in plan.log.iter().filter(|e| e.outcome == "skipped") {
        metrics::counter!(TICKS_SKIPPED, "reason" => e.reason.unwrap_or("other")).increment(e.ticks as u64);
    }
}

/// One pass: every schedule with a due tick or a buffered run that may
/// fire. Returns how many tasks were sent to Kafka (the rest stay
/// unpublished for the publisher).
pub(crate) async fn fire_due(routes: &Routes, pool: &PgPool, producer: &FutureProducer) -> usize {
    let (now, rows) = match schedules::due(pool, BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "schedule service: cannot read due schedules");
            return 0;
        }
    };
    let mut fired = Vec::new();
    for row in rows {
        let spec = match spec_of(&row) {
            Ok(spec) => spec,
            Err(e) => {
                tracing::warn!(schedule = %row.key, error = %e, "schedule service: unreadable spec; skipped");
                continue;
            }
        };
        let plan = plan::grid_pass(&spec, &state_of(&row), now);
        if plan.is_empty() && plan.next_tick == row.settings.next_tick && plan.buffered == row.buffered {
            continue; // buffered runs waiting for a running task
        }
        match execute(pool, &row, &plan, now).await {
            Ok(Some(applied)) => fired.extend(applied.queued),
            Ok(None) => tracing::debug!(schedule = %row.key, "schedule changed during the pass; next pass"),
            Err(e) => tracing::warn!(schedule = %row.key, error = %e, "schedule service: fire failed; next pass"),
        }
    }
    super::publisher::publish_rows(routes, pool, producer, fired).await
}

/// Deletes fires history older than `retention`.
pub(crate) async fn clean(pool: &PgPool, retention: std::time::Duration) {
    if let Err(e) = schedules::delete_old_fires(pool, retention, CLEAN_BATCH).await {
        tracing::warn!(error = %e, "cleaner: cannot delete old schedule fires");
    }
}
