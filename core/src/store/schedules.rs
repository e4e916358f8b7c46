//! The `schedules` and `schedule_fires` tables (docs/schedules.md). A
//! schedule belongs to a tenant like a task (its key is a
//! [`ScheduleKey`] of the tenant and its id). Firing is one conditional
//! statement ([`apply`]): it locks the schedule only if it still has the
//! version (edits) and revision (fires) the plan was made on, is not paused
//! and not deleted, inserts the runs' tasks (ids derived from the schedule
//! and the tick, so a second fire of a tick inserts nothing), moves the
//! schedule's grid and writes the fires history; a leader that read the
//! schedule a moment before an edit or a delete fires nothing stale.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgPool;

use super::tasks::Unpublished;
use super::unique::Unique;
use super::StoreError;
use crate::model::TaskStatus;
use crate::names::{ScheduleKey, TaskKey, Tenant};
use crate::schedule::plan::Plan;

/// The task a schedule fires, validated as `POST /tasks` validates a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Handler name.
    pub name: String,
    /// JSON array text, kept as sent.
    pub args: String,
    /// JSON object text, kept as sent.
    pub kwargs: String,
    /// Queue name.
    pub queue: String,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Per-attempt timeout, seconds.
    pub timeout_seconds: f64,
    /// Retry backoff base, seconds (None: the worker's default).
    pub retry_backoff_base: Option<f64>,
    /// Retry backoff cap, seconds (None: the worker's default).
    pub retry_backoff_cap: Option<f64>,
    /// Hash of name, args, kwargs and queue (the fired tasks' request hash).
    pub hash: String,
    /// The template's `unique` option: every fired task takes it, and a
    /// tick whose key another task holds fires nothing (skipped, `unique`).
    pub unique: Option<Unique>,
}

/// A schedule's settings: what `POST /schedules` creates and `PATCH` replaces.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `{"cron": ...}` or `{"every": ..., "offset": ...}`, as accepted.
    pub spec: serde_json::Value,
    /// IANA time zone name.
    pub timezone: String,
    /// Seconds: each grid tick's task runs up to this much after the tick
    /// (the same delay for every fire of that tick).
    pub jitter_seconds: f64,
    /// The task to fire.
    pub template: Template,
    /// Overlap policy name ([`crate::schedule::plan::Overlap`]).
    pub overlap: String,
    /// Seconds: missed grid ticks older than this are skipped.
    pub catchup_window_seconds: f64,
    /// No grid tick before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No grid tick after this.
    pub end_at: Option<DateTime<Utc>>,
    /// Runs after which the schedule stops.
    pub max_runs: Option<i64>,
    /// A paused schedule fires nothing.
    pub paused: bool,
    /// The next grid tick to consider (computed from the spec by the caller).
    pub next_tick: Option<DateTime<Utc>>,
}

/// A stored schedule.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    /// Stored key (tenant prefix and the tenant's id).
    pub key: ScheduleKey,
    /// Owning tenant.
    pub tenant: Tenant,
    /// Insertion order (keyset cursor of `GET /schedules`).
    pub seq: i64,
    /// The settings.
    pub settings: Settings,
    /// Bumped by every edit.
    pub version: i64,
    /// Bumped by every fire.
    pub rev: i64,
    /// Hash of the create request.
    pub request_hash: String,
    /// The latest grid tick fired or skipped.
    pub last_tick: Option<DateTime<Utc>>,
    /// Key of the task fired last.
    pub last_task: Option<TaskKey>,
    /// That task's status (None: none fired, or it expired).
    pub last_status: Option<TaskStatus>,
    /// Id suffixes of buffered runs, oldest first.
    pub buffered: Vec<String>,
    /// Tasks fired so far.
    pub runs: i64,
    /// Ticks skipped so far.
    pub skipped: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change (edit or fire).
    pub updated_at: DateTime<Utc>,
}

impl ScheduleRow {
    /// True while the last fired task is not terminal (the overlap policy applies).
    pub fn running(&self) -> bool {
        self.last_status.as_ref().is_some_and(|s| !s.is_terminal())
    }
}

struct Record {
    key: String,
    tenant: String,
    seq: i64,
    spec: Json<serde_json::Value>,
    timezone: String,
    jitter_seconds: f64,
    name: String,
    args: Json<Box<RawValue>>,
    kwargs: Json<Box<RawValue>>,
    queue: String,
    max_retries: i32,
    timeout_seconds: f64,
    retry_backoff_base: Option<f64>,
    retry_backoff_cap: Option<f64>,
    task_hash: String,
    unique_key: Option<String>,
    unique_for_seconds: Option<i64>,
    unique_while: Option<Vec<String>>,
    overlap: String,
    catchup_window_seconds: f64,
    start_at: Option<DateTime<Utc>>,
    end_at: Option<DateTime<Utc>>,
    max_runs: Option<i64>,
    paused: bool,
    version: i64,
    rev: i64,
    request_hash: String,
    next_tick: Option<DateTime<Utc>>,
    last_tick: Option<DateTime<Utc>>,
    last_task: Option<String>,
    last_status: Option<TaskStatus>,
    buffered: Vec<String>,
    runs: i64,
    skipped: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Record> for ScheduleRow {
    fn from(r: Record) -> Self {
        ScheduleRow {
            key: ScheduleKey::from_stored(r.key),
            tenant: Tenant::from_stored(r.tenant),
            seq: r.seq,
            settings: Settings {
                spec: r.spec.0,
                timezone: r.timezone,
                jitter_seconds: r.jitter_seconds,
                template: Template {
                    name: r.name,
                    args: r.args.0.get().to_string(),
                    kwargs: r.kwargs.0.get().to_string(),
                    queue: r.queue,
                    max_retries: r.max_retries,
                    timeout_seconds: r.timeout_seconds,
                    retry_backoff_base: r.retry_backoff_base,
                    retry_backoff_cap: r.retry_backoff_cap,
                    hash: r.task_hash,
                    unique: r.unique_key.map(|key| Unique {
                        key,
                        for_seconds: r.unique_for_seconds,
                        also_while: r.unique_while.iter().flatten().filter_map(|s| TaskStatus::parse(s)).collect(),
                    }),
                },
                overlap: r.overlap,
                catchup_window_seconds: r.catchup_window_seconds,
                start_at: r.start_at,
                end_at: r.end_at,
                max_runs: r.max_runs,
                paused: r.paused,
                next_tick: r.next_tick,
            },
            version: r.version,
            rev: r.rev,
            request_hash: r.request_hash,
            last_tick: r.last_tick,
            last_task: r.last_task.map(TaskKey::from_stored),
            last_status: r.last_status,
            buffered: r.buffered,
            runs: r.runs,
            skipped: r.skipped,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Schedule columns (table alias `s`, the last task's `t`) as `query_as!`
/// reads them into a [`Record`].
macro_rules! schedule_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Record,
            $before
                + r#"s.key AS "key!", s.tenant AS "tenant!", s.seq AS "seq!",
                     s.spec AS "spec!: Json<serde_json::Value>", s.timezone AS "timezone!",
                     s.jitter_seconds AS "jitter_seconds!", s.name AS "name!",
                     s.args AS "args!: Json<Box<RawValue>>", s.kwargs AS "kwargs!: Json<Box<RawValue>>",
                     s.queue AS "queue!", s.max_retries AS "max_retries!", s.timeout_seconds AS "timeout_seconds!",
                     s.retry_backoff_base AS "retry_backoff_base?", s.retry_backoff_cap AS "retry_backoff_cap?",
                     s.task_hash AS "task_hash!", s.unique_key AS "unique_key?",
                     s.unique_for_seconds AS "unique_for_seconds?", s.unique_while AS "unique_while?",
                     s.overlap AS "overlap!",
                     s.catchup_window_seconds AS "catchup_window_seconds!", s.start_at AS "start_at?",
                     s.end_at AS "end_at?", s.max_runs AS "max_runs?", s.paused AS "paused!",
                     s.version AS "version!", s.rev AS "rev!", s.request_hash AS "request_hash!",
                     s.next_tick AS "next_tick?", s.last_tick AS "last_tick?", s.last_task AS "last_task?",
                     t.status AS "last_status?: TaskStatus", s.buffered AS "buffered!",
                     s.runs AS "runs!", s.skipped AS "skipped!", s.created_at AS "created_at!",
                     s.updated_at AS "updated_at!""#
                + $after
            $(, $arg)*
        )
    };
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// The schedule was created.
    Created(Box<ScheduleRow>),
    /// This key exists with the same request: returned unchanged.
    Existing(Box<ScheduleRow>),
    /// This key exists with a different request; nothing changed.
    Conflict,
    /// The tenant already has `cap` schedules; nothing changed.
    OverCap,
}

/// Creates schedule `key` of `tenant` unless the tenant already has `cap`
/// schedules. An existing key answers [`Created::Existing`] when
/// `request_hash` matches, else [`Created::Conflict`].
pub async fn create(
    pool: &PgPool,
    key: &ScheduleKey,
    tenant: &Tenant,
    s: &Settings,
    request_hash: &str,
    cap: i64,
) -> Result<Created, StoreError> {
    let t = &s.template;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO schedules (key, tenant, spec, timezone, jitter_seconds, name, args, kwargs, queue, max_retries,
                                timeout_seconds, retry_backoff_base, retry_backoff_cap, task_hash, overlap,
                                catchup_window_seconds, start_at, end_at, max_runs, paused, request_hash, next_tick,
                                unique_key, unique_for_seconds, unique_while)
           SELECT $1, $2, $3, $4, $5, $6, $7::text::json, $8::text::json, $9, $10, $11, $12, $13, $14, $15, $16,
                  $17, $18, $19, $20, $21, $22, $24, $25, $26
           WHERE (SELECT count(*) FROM schedules WHERE tenant = $2) < $23
           ON CONFLICT (key) DO NOTHING
           RETURNING key"#,
        key.as_str(),
        tenant.as_str(),
        &s.spec,
        s.timezone,
        s.jitter_seconds,
        t.name,
        t.args,
        t.kwargs,
        t.queue,
        t.max_retries,
        t.timeout_seconds,
        t.retry_backoff_base,
        t.retry_backoff_cap,
        t.hash,
        s.overlap,
        s.catchup_window_seconds,
        s.start_at,
        s.end_at,
        s.max_runs,
        s.paused,
        request_hash,
        s.next_tick,
        cap,
        t.unique.as_ref().map(|u| u.key.as_str()),
        t.unique.as_ref().and_then(|u| u.for_seconds),
        unique_while(t) as Option<Vec<String>>,
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = get(pool, key).await? else { return Ok(Created::OverCap) };
    Ok(match inserted {
        Some(_) => Created::Created(Box::new(row)),
        None if row.request_hash == request_hash => Created::Existing(Box::new(row)),
        None => Created::Conflict,
    })
}

/// Reads schedule `key`; `None` when there is none.
pub async fn get(pool: &PgPool, key: &ScheduleKey) -> Result<Option<ScheduleRow>, StoreError> {
    let r = schedule_query!(
        "SELECT ",
        " FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task WHERE s.key = $1",
        key.as_str()
    )
    .fetch_optional(pool)
    .await?;
    Ok(r.map(ScheduleRow::from))
}

/// Up to `limit` schedules of `tenant`, newest first, older than cursor `before` (a `seq`).
pub async fn list(
    pool: &PgPool,
    tenant: &Tenant,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<ScheduleRow>, StoreError> {
    let rows = schedule_query!(
        "SELECT ",
        " FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
         WHERE s.tenant = $1 AND s.seq < $2 ORDER BY s.seq DESC LIMIT $3",
        tenant.as_str(),
        before.unwrap_or(i64::MAX),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ScheduleRow::from).collect())
}

/// The `while` names of the template's unique option, as stored.
fn unique_while(t: &Template) -> Option<Vec<String>> {
    t.unique.as_ref().map(|u| u.also_while.iter().map(|s| s.as_str().to_string()).collect())
}

/// Replaces the settings of schedule `row.key` if it still has `row`'s
/// version and revision (bumping the version), clearing the buffer when
/// `clear_buffer`; `None` when it changed meanwhile (or was deleted).
pub async fn update(
    pool: &PgPool,
    row: &ScheduleRow,
    s: &Settings,
    clear_buffer: bool,
) -> Result<Option<ScheduleRow>, StoreError> {
    let t = &s.template;
    let done = sqlx::query_scalar!(
        r#"UPDATE schedules SET spec = $4, timezone = $5, jitter_seconds = $6, name = $7, args = $8::text::json,
               kwargs = $9::text::json, queue = $10, max_retries = $11, timeout_seconds = $12,
               retry_backoff_base = $13, retry_backoff_cap = $14, task_hash = $15, overlap = $16,
               catchup_window_seconds = $17, start_at = $18, end_at = $19, max_runs = $20, paused = $21,
               next_tick = $22, buffered = CASE WHEN $23 THEN '{}' ELSE buffered END,
               unique_key = $24, unique_for_seconds = $25, unique_while = $26,
               version = version + 1, updated_at = now()
           WHERE key = $1 AND version = $2 AND rev = $3
           RETURNING key"#,
        row.key.as_str(),
        row.version,
        row.rev,
        &s.spec,
        s.timezone,
        s.jitter_seconds,
        t.name,
        t.args,
        t.kwargs,
        t.queue,
        t.max_retries,
        t.timeout_seconds,
        t.retry_backoff_base,
        t.retry_backoff_cap,
        t.hash,
        s.overlap,
        s.catchup_window_seconds,
        s.start_at,
        s.end_at,
        s.max_runs,
        s.paused,
        s.next_tick,
        clear_buffer,
        t.unique.as_ref().map(|u| u.key.as_str()),
        t.unique.as_ref().and_then(|u| u.for_seconds),
        unique_while(t) as Option<Vec<String>>,
    )
    .fetch_optional(pool)
    .await?;
    match done {
        Some(_) => get(pool, &row.key).await,
        None => Ok(None),
    }
}

/// Deletes schedule `key` and its fires history; false when there was none.
/// Its fired tasks stay.
pub async fn delete(pool: &PgPool, key: &ScheduleKey) -> Result<bool, StoreError> {
    let r = sqlx::query!("DELETE FROM schedules WHERE key = $1", key.as_str()).execute(pool).await?;
    Ok(r.rows_affected() > 0)
}

/// The leader's read: up to `limit` schedules that are not paused and have
/// a grid tick due or runs buffered, soonest first, with the database's `now()`.
pub(crate) async fn due(pool: &PgPool, limit: i64) -> Result<(DateTime<Utc>, Vec<ScheduleRow>), StoreError> {
    let mut tx = pool.begin().await?;
    let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#).fetch_one(&mut *tx).await?;
    let rows = schedule_query!(
        "SELECT ",
        " FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
         WHERE NOT s.paused AND (s.next_tick <= $1 OR cardinality(s.buffered) > 0)
         ORDER BY s.next_tick NULLS LAST LIMIT $2",
        now,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((now, rows.into_iter().map(ScheduleRow::from).collect()))
}

/// A task to insert for a run: its stored key and, with jitter, when it may start.
#[derive(Debug, Clone)]
pub(crate) struct RunTask {
    /// Stored task key ([`ScheduleKey::task_key`]).
    pub key: TaskKey,
    /// Not before this (jitter): the task starts `scheduled`.
    pub run_at: Option<DateTime<Utc>>,
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The `queued` tasks inserted, to publish now.
    pub queued: Vec<Unpublished>,
    /// Runs that inserted nothing because another task holds the template's
    /// unique key: recorded as skipped (reason `unique`), not as runs.
    pub refused: Vec<TaskKey>,
}

/// Applies `plan` to schedule `row.key` in one statement, only if it still
/// has `row`'s version and revision and is not paused (nor deleted).
/// `tasks` are the plan's runs' tasks, in order; `fired_keys[i]` is the task
/// key of `plan.log[i]` when it names one. A run whose id exists already
/// inserts nothing (a tick fires once); a run whose unique key another task
/// holds inserts nothing either, and its log entry, the run count and the
/// last task say so. `None` when the schedule changed meanwhile and
/// nothing was done.
pub(crate) async fn apply(
    pool: &PgPool,
    row: &ScheduleRow,
    plan: &Plan,
    tasks: &[RunTask],
    fired_keys: &[Option<TaskKey>],
) -> Result<Option<Applied>, StoreError> {
    let ids: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    let run_at: Vec<Option<DateTime<Utc>>> = tasks.iter().map(|t| t.run_at).collect();
    let last_task = tasks.last().map(|t| t.key.as_str());
    let fired_keys: Vec<Option<&str>> = fired_keys.iter().map(|k| k.as_ref().map(TaskKey::as_str)).collect();
    let log = &plan.log;
    let unique = row.settings.template.unique.as_ref();
    let rows = sqlx::query!(
        r#"WITH s AS (
               SELECT key, tenant, name, args, kwargs, queue, max_retries, timeout_seconds,
                      retry_backoff_base, retry_backoff_cap, task_hash
               FROM schedules WHERE key = $1 AND version = $2 AND rev = $3 AND NOT paused
               FOR UPDATE
           ), ins AS (
               INSERT INTO tasks (id, name, args, kwargs, queue, status, max_retries, timeout_seconds, run_at,
                                  retry_backoff_base, retry_backoff_cap, request_hash, tenant,
                                  unique_key, unique_states, limited)
               SELECT f.id, s.name, s.args, s.kwargs, s.queue,
                      CASE WHEN f.run_at IS NOT NULL THEN 'scheduled' WHEN s.lim THEN 'held' ELSE 'queued' END,
                      s.max_retries, s.timeout_seconds, f.run_at, s.retry_backoff_base, s.retry_backoff_cap,
                      s.task_hash, s.tenant,
                      CASE WHEN $18::text IS NOT NULL THEN yadtq_unique_key($18, $19) END,
                      string_to_array($20, ','), s.lim
               FROM (SELECT s.*, EXISTS (SELECT 1 FROM limit_tasks lt WHERE lt.tenant = s.tenant AND lt.task_name = s.name)
                            AS lim FROM s) s,
                    UNNEST($4::text[], $5::timestamptz[]) AS f(id, run_at)
               ORDER BY f.id
               ON CONFLICT DO NOTHING
               RETURNING id, name, args, kwargs, queue, attempts, created_at, status, limited
           ), refused AS (
               -- Neither inserted nor there before: another task holds the unique key.
               SELECT f.id FROM s, UNNEST($4::text[]) AS f(id)
               WHERE $18::text IS NOT NULL AND f.id NOT IN (SELECT id FROM ins)
                 AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = f.id)
           ), upd AS (
               UPDATE schedules SET next_tick = $6, last_tick = coalesce($7, schedules.last_tick),
                      last_task = CASE WHEN $8 IN (SELECT id FROM refused) THEN schedules.last_task
                                       ELSE coalesce($8, schedules.last_task) END,
                      buffered = $9,
                      runs = schedules.runs + $10 - (SELECT count(*) FROM refused),
                      skipped = schedules.skipped + $11 + (SELECT count(*) FROM refused),
                      rev = schedules.rev + 1, updated_at = now()
               FROM s WHERE schedules.key = s.key
               RETURNING schedules.key
           ), history AS (
               INSERT INTO schedule_fires (schedule, tick, kind, outcome, reason, ticks, task)
               SELECT s.key, l.tick, l.kind,
                      CASE WHEN r.id IS NULL THEN l.outcome ELSE 'skipped' END,
                      CASE WHEN r.id IS NULL THEN l.reason ELSE 'unique' END,
                      l.ticks, CASE WHEN r.id IS NULL THEN l.task END
               FROM s, UNNEST($12::timestamptz[], $13::text[], $14::text[], $15::text[], $16::int8[], $17::text[])
                       WITH ORDINALITY AS l(tick, kind, outcome, reason, ticks, task, n)
                       LEFT JOIN refused r ON r.id = l.task
               ORDER BY l.n
           )
           SELECT upd.key AS "schedule!", ins.id AS "id?", ins.name AS "name?",
                  ins.args AS "args?: Json<Box<RawValue>>", ins.kwargs AS "kwargs?: Json<Box<RawValue>>",
                  ins.queue AS "queue?", ins.attempts AS "attempts?", ins.created_at AS "created_at?",
                  ins.status AS "status?: TaskStatus", ins.limited AS "limited?",
                  ARRAY(SELECT id FROM refused) AS "refused!"
           FROM upd LEFT JOIN ins ON true"#,
        row.key.as_str(),
        row.version,
        row.rev,
        &ids as &[&str],
        &run_at as &[Option<DateTime<Utc>>],
        plan.next_tick,
        plan.last_tick,
        last_task,
        &plan.buffered,
        plan.runs.len() as i64,
        plan.skipped,
        &log.iter().map(|e| e.tick).collect::<Vec<_>>(),
        &log.iter().map(|e| e.kind.as_str().to_string()).collect::<Vec<_>>(),
        &log.iter().map(|e| e.outcome.to_string()).collect::<Vec<_>>(),
        &log.iter().map(|e| e.reason.map(str::to_string)).collect::<Vec<_>>() as &[Option<String>],
        &log.iter().map(|e| e.ticks).collect::<Vec<_>>(),
        &fired_keys as &[Option<&str>],
        unique.map(|u| u.base(row.tenant.as_str(), &row.settings.template.name)),
        unique.and_then(|u| u.for_seconds),
        unique.and_then(Unique::states),
    )
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let refused = first.refused.iter().cloned().map(TaskKey::from_stored).collect();
    // Runs a limit's `tasks` list names were inserted `held` (or
    // `scheduled`), limited: their memberships and release now, autocommitted
    // (the leader's limits pass settles them if this process dies first).
    let probed: Vec<(TaskKey, String, String, String)> = rows
        .iter()
        .filter(|r| r.limited == Some(true))
        .filter_map(|r| {
            Some((
                TaskKey::from_stored(r.id.clone()?),
                r.name.clone()?,
                r.args.as_ref()?.0.get().to_string(),
                r.kwargs.as_ref()?.0.get().to_string(),
            ))
        })
        .collect();
    let mut released = Vec::new();
    // A stored name was validated when the schedule was declared.
    let name = probed.first().and_then(|p| crate::names::TaskName::parse(p.1.clone(), usize::MAX).ok());
    if let Some(name) = name {
        let members: Vec<crate::store::limits::Member<'_>> = probed
            .iter()
            .map(|(key, _, args, kwargs)| crate::store::limits::Member {
                key,
                tenant: &row.tenant,
                name: &name,
                args,
                kwargs,
                limits: &[],
            })
            .collect();
        let settled =
            crate::store::limits::settle(&mut *pool.acquire().await?, &members, &vec![true; members.len()], true)
                .await?
                .expect("no limit is named, so none is unknown");
        released = settled.released.notified(pool);
    }
    let queued: Vec<Unpublished> = rows
        .into_iter()
        .filter(|r| r.status == Some(TaskStatus::Queued))
        .filter_map(|r| {
            Some(Unpublished {
                id: TaskKey::from_stored(r.id?),
                name: r.name?,
                args: r.args?.0,
                kwargs: r.kwargs?.0,
                queue: r.queue?,
                attempts: r.attempts?,
                created_at: r.created_at?,
            })
        })
        .collect();
    let queued = queued.into_iter().chain(released).collect();
    // No task event: nobody waits on a task that did not exist (its id was a 404).
    Ok(Some(Applied { queued, refused }))
}

/// One line of a schedule's fires history, with the fired task's status.
#[derive(Debug, Clone)]
pub struct FireRow {
    /// History order.
    pub seq: i64,
    /// The tick (the first one, for a line standing for many).
    pub tick: DateTime<Utc>,
    /// `tick`, `trigger` or `backfill`.
    pub kind: String,
    /// `fired`, `skipped` or `buffered`.
    pub outcome: String,
    /// Why it was skipped: `overlap`, `catchup_window`, `max_runs`.
    pub reason: Option<String>,
    /// How many ticks the line stands for.
    pub ticks: i64,
    /// Stored key of the fired (or buffered) task.
    pub task: Option<TaskKey>,
    /// That task's status now (None: not fired, or expired).
    pub task_status: Option<TaskStatus>,
    /// When the line was written.
    pub at: DateTime<Utc>,
}

/// The latest `limit` lines of schedule `key`'s fires history, newest first.
pub async fn fires(pool: &PgPool, key: &ScheduleKey, limit: i64) -> Result<Vec<FireRow>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT f.seq, f.tick, f.kind, f.outcome, f.reason, f.ticks, f.task, f.at,
                  t.status AS "task_status?: TaskStatus"
           FROM schedule_fires f LEFT JOIN tasks t ON t.id = f.task
           WHERE f.schedule = $1 ORDER BY f.seq DESC LIMIT $2"#,
        key.as_str(),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FireRow {
            seq: r.seq,
            tick: r.tick,
            kind: r.kind,
            outcome: r.outcome,
            reason: r.reason,
            ticks: r.ticks,
            task: r.task.map(TaskKey::from_stored),
            task_status: r.task_status,
            at: r.at,
        })
        .collect())
}

/// Stored keys of the tasks schedule `key` fired, newest first, at most
/// `limit`, before history cursor `before`; with each one's cursor.
pub async fn fired_tasks(
    pool: &PgPool,
    key: &ScheduleKey,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<(i64, TaskKey)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT seq, task AS "task!" FROM schedule_fires
           WHERE schedule = $1 AND outcome = 'fired' AND task IS NOT NULL AND seq < $2
           ORDER BY seq DESC LIMIT $3"#,
        key.as_str(),
        before.unwrap_or(i64::MAX),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.seq, TaskKey::from_stored(r.task))).collect())
}

/// Deletes fires history lines older than `ttl` (the tasks' retention), at most `batch`.
pub(crate) async fn delete_old_fires(pool: &PgPool, ttl: std::time::Duration, batch: i64) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "DELETE FROM schedule_fires WHERE seq IN (
             SELECT seq FROM schedule_fires WHERE at < now() - make_interval(secs => $1) ORDER BY seq LIMIT $2)",
        ttl.as_secs_f64(),
        batch
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
