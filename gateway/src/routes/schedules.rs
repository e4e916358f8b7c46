//! `/schedules`: periodic tasks (docs/schedules.md). Creating, editing and
//! deleting needs `operate`, reading `read`; schedules belong to the
//! caller's tenant like tasks (another tenant's are 404). The leader fires
//! the grid ([`yadtq_core::maintenance::schedules`]); a trigger or a
//! backfill fires from the gateway through the same conditional statement
//! and overlap policy.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use yadtq_core::auth::Scope;
use yadtq_core::maintenance::schedules::{execute, spec_of, state_of};
use yadtq_core::model::{Task, TaskStatus};
use yadtq_core::names::{TaskId, TaskKey};
use yadtq_core::schedule::plan::{self, FireKind, Overlap, Run};
use yadtq_core::schedule::spec::{Spec, SpecError, SpecInput};
use yadtq_core::store::schedules::{self as store, Created, FireRow, ScheduleRow, Settings, Template};

use super::tasks::TaskIdPath;
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit::UniqueRequest;

/// Longest schedule id, characters (a tick's task id `sched:<id>:<secs>` stays within 128).
pub const MAX_ID_LEN: usize = 100;
/// The OpenAPI pattern of a schedule id: the task-id alphabet, 1 to
/// [`MAX_ID_LEN`] characters, not `.` or `..`. The document takes it from
/// here (`openapi::id_patterns`); utoipa's attributes take only literals.
pub const ID_PATTERN: &str = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,100}$";
/// Default catch-up window, seconds.
pub const DEFAULT_CATCHUP_WINDOW: f64 = 60.0;
/// Longest catch-up window, seconds (thirty days).
pub const MAX_CATCHUP_WINDOW: f64 = 2_592_000.0;
/// Most ticks one backfill fires.
pub const MAX_BACKFILL: usize = 1000;
/// Fire times shown ahead.
const UPCOMING: usize = 5;
/// Fires history lines shown by `GET /schedules/{id}`.
const RECENT_FIRES: i64 = 20;
/// Times an edit or a trigger is retried when the leader fired meanwhile.
const ATTEMPTS: usize = 5;

/// Gateway settings for schedules.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleConfig {
    /// Most schedules one tenant may have (more: 422).
    #[arg(long, env = "YADTQ_MAX_SCHEDULES_PER_TENANT", default_value_t = 1000)]
    pub max_schedules_per_tenant: i64,
}

/// Body of `POST /schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "nightly-report", "spec": {"cron": "0 2 * * *"}, "timezone": "Europe/Berlin", "task": {"task": "echo", "args": ["report"]}}))]
pub struct CreateSchedule {
    /// Client-chosen id (1-100 of letters, digits, `._:-`); creating the same
    /// id with the same body again answers 200, with another body 409.
    /// Default: a server UUID.
    pub id: Option<String>,
    /// When it fires (required).
    #[schema(value_type = SpecInput)]
    pub spec: Option<SpecInput>,
    /// IANA time zone of the cron fields (default `UTC`).
    pub timezone: Option<String>,
    /// Seconds (0 to 3600, default 0): each tick's task may start up to this
    /// much after its tick (the same delay for every fire of that tick).
    #[schema(minimum = 0, maximum = 3600)]
    pub jitter: Option<f64>,
    /// The task to fire (required): a `POST /tasks` body without `id`,
    /// `task-id`, `countdown` or `eta`.
    #[schema(value_type = TaskTemplate)]
    pub task: Option<Box<RawValue>>,
    /// What a run does while the previous task is not terminal (default `skip`).
    pub overlap: Option<Overlap>,
    /// Seconds (0 to 2592000, default 60): after downtime, missed ticks older than this are skipped.
    #[schema(minimum = 0, maximum = 2592000)]
    pub catchup_window: Option<f64>,
    /// No tick before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No tick after this.
    pub end_at: Option<DateTime<Utc>>,
    /// Stop after this many runs.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "yadtq_core::schedule::spec::whole")]
    pub max_runs: Option<i64>,
    /// Create it paused (default false).
    pub paused: Option<bool>,
}

/// The task a schedule fires, as `POST /schedules` and `PATCH` take it: a
/// `POST /tasks` body without `id`, `task-id`, `countdown` or `eta` (the
/// id is derived from the schedule and the tick; the tick is the start).
/// For the OpenAPI document only: the gateway validates it as `POST /tasks`
/// validates a body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TaskTemplate {
    /// Handler name (required): letters, digits and `._:-`, starting with a letter.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9._:-]{0,127}$")]
    pub task: String,
    /// Positional arguments, a JSON array of any values (default `[]`).
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    pub args: Option<Box<RawValue>>,
    /// Keyword arguments, a JSON object of any values (default `{}`).
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub kwargs: Option<Box<RawValue>>,
    /// Queue (1-64 of letters, digits, `-`, `_`). Default `default`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub queue: Option<String>,
    /// Retries after the first attempt (at most `YADTQ_MAX_RETRIES_LIMIT`, default 100).
    #[schema(minimum = 0, maximum = 100)]
    pub max_retries: Option<i32>,
    /// Seconds: upper bound of the first retry delay; at most `YADTQ_MAX_TIMEOUT` (default 86400).
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_base: Option<f64>,
    /// Seconds: longest retry delay; at least `retry_backoff_base`, at most `YADTQ_MAX_TIMEOUT`.
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_cap: Option<f64>,
    /// Per-attempt timeout in seconds (at most `YADTQ_MAX_TIMEOUT`, default 86400).
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub timeout: Option<f64>,
    /// Every fired task takes this unique option (docs/unique.md): a tick
    /// whose key another task holds fires nothing and is recorded as
    /// skipped with reason `unique`. The default key hashes the template,
    /// so `{}` makes at most one live task of this schedule's kind, whatever
    /// the overlap policy; a `for_seconds` bucket is taken at the fire.
    pub unique: Option<UniqueRequest>,
}

/// Body of `PATCH /schedules/{id}`: the fields to change (absent or null: unchanged).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSchedule {
    /// New spec.
    #[schema(value_type = Option<SpecInput>)]
    pub spec: Option<SpecInput>,
    /// New time zone.
    pub timezone: Option<String>,
    /// New jitter, seconds.
    #[schema(minimum = 0, maximum = 3600)]
    pub jitter: Option<f64>,
    /// New task template (a whole one, as at create).
    #[schema(value_type = Option<TaskTemplate>)]
    pub task: Option<Box<RawValue>>,
    /// New overlap policy (leaving a buffer policy drops the buffered runs).
    pub overlap: Option<Overlap>,
    /// New catch-up window, seconds.
    #[schema(minimum = 0, maximum = 2592000)]
    pub catchup_window: Option<f64>,
    /// New start.
    pub start_at: Option<DateTime<Utc>>,
    /// New end.
    pub end_at: Option<DateTime<Utc>>,
    /// New run limit.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "yadtq_core::schedule::spec::whole")]
    pub max_runs: Option<i64>,
    /// Pause (true) or resume (false); resuming does not catch up the paused ticks.
    pub paused: Option<bool>,
}

/// Body of `POST /schedules/{id}/backfill`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// First time of the range (included).
    #[schema(value_type = String, format = DateTime)]
    pub start: Option<DateTime<Utc>>,
    /// Last time of the range (included); at most 1000 ticks in the range.
    #[schema(value_type = String, format = DateTime)]
    pub end: Option<DateTime<Utc>>,
    /// Policy for these runs (default: the schedule's).
    pub overlap: Option<Overlap>,
}

/// The task a schedule fires.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Handler name.
    pub task: String,
    /// Positional arguments, as sent.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub args: Box<RawValue>,
    /// Keyword arguments, as sent.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub kwargs: Box<RawValue>,
    /// Queue.
    pub queue: String,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Per-attempt timeout, seconds.
    pub timeout: f64,
    /// Retry backoff base, seconds.
    pub retry_backoff_base: Option<f64>,
    /// Retry backoff cap, seconds.
    pub retry_backoff_cap: Option<f64>,
    /// The unique option every fired task takes (`key` is the effective
    /// key, the default one included); null: none.
    pub unique: Option<UniqueRequest>,
}

/// One line of a schedule's history: what became of a tick.
#[derive(Debug, Serialize, ToSchema)]
pub struct FireView {
    /// The tick (`scheduled_for`); for a line standing for many skipped ticks, the first.
    pub tick: DateTime<Utc>,
    /// `tick` (the grid), `trigger` or `backfill`.
    pub kind: String,
    /// `fired`, `skipped` or `buffered`.
    pub outcome: String,
    /// Why it was skipped: `overlap`, `catchup_window` or `max_runs`.
    pub reason: Option<String>,
    /// How many ticks the line stands for.
    pub ticks: i64,
    /// The fired (or buffered) task's id.
    pub task_id: Option<String>,
    /// That task's status now (null: not fired yet, or expired).
    #[schema(value_type = Option<String>)]
    pub task_status: Option<TaskStatus>,
    /// When the line was written.
    pub at: DateTime<Utc>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    /// Its id.
    pub id: String,
    /// When it fires.
    pub spec: SpecInput,
    /// IANA time zone of the cron fields.
    pub timezone: String,
    /// Jitter, seconds.
    pub jitter: f64,
    /// The task it fires.
    pub task: TemplateView,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Catch-up window, seconds.
    pub catchup_window: f64,
    /// No tick before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No tick after this.
    pub end_at: Option<DateTime<Utc>>,
    /// Run limit.
    pub max_runs: Option<i64>,
    /// Paused: fires nothing.
    pub paused: bool,
    /// Bumped by every edit.
    pub version: i64,
    /// Tasks fired so far.
    pub runs: i64,
    /// Ticks skipped so far (overlap, catch-up window, run limit).
    pub skipped: i64,
    /// The next fire times (up to 5; empty when paused or finished).
    pub next_fire_times: Vec<DateTime<Utc>>,
    /// The task fired last.
    pub last_task_id: Option<String>,
    /// Ticks buffered behind a running task (buffer policies), oldest first.
    pub buffered: Vec<DateTime<Utc>>,
    /// The latest history lines, newest first (`GET /schedules/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_fires: Option<Vec<FireView>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change (edit or fire).
    pub updated_at: DateTime<Utc>,
}

/// A page of schedules, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulePage {
    /// The schedules.
    pub schedules: Vec<Schedule>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a trigger or a backfill did.
#[derive(Debug, Serialize, ToSchema)]
pub struct FireResult {
    /// Ids of the tasks fired, in tick order.
    pub fired: Vec<String>,
    /// Runs skipped (by the overlap policy, the run limit, or the template's
    /// unique key held by another task).
    pub skipped: i64,
    /// Runs buffered behind the running task.
    pub buffered: i64,
}

/// Query of `GET /schedules`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (digits).
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

fn spec_error(e: SpecError) -> ApiError {
    ApiError::bad_request(e.field, e.message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no schedule with id '{id}'"))
}

/// 400 naming `field` unless `id` is a schedule id: a task id of at most [`MAX_ID_LEN`] characters.
fn check_id(id: &str, field: &str) -> Result<TaskId, ApiError> {
    let id = TaskId::parse(id).map_err(|e| ApiError::bad_request(field, format!("{field} {e}")))?;
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(field, format!("{field} must be at most {MAX_ID_LEN} characters")));
    }
    Ok(id)
}

/// Validates a task template: a `POST /tasks` body without ids or a start
/// time; errors name `task.<field>`.
fn template(state: &AppState, caller: &Caller, raw: &RawValue) -> Result<Template, ApiError> {
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::bad_request("task", "task must be a JSON object: a POST /tasks body"))?;
    for f in ["id", "task-id", "countdown", "eta"] {
        if fields.contains_key(f) {
            return Err(ApiError::bad_request(
                &format!("task.{f}"),
                format!("a schedule's task takes no {f}: its id is derived from the schedule and the tick"),
            ));
        }
    }
    let mut new =
        crate::submit::validate_item(raw.get().as_bytes(), None, &state.cfg.limits).map_err(|e| e.within("task"))?;
    caller.require_queue(&new.queue, "task.queue")?;
    // The longest id a run of it gets (a trigger's), for the record size check.
    new.id = TaskId::parse(format!("sched:{}:t9999999999-ffffffff", "x".repeat(MAX_ID_LEN)))
        .expect("the longest trigger id keeps the task-id rule");
    caller.adopt(&mut new);
    crate::submit::check_record_size(&new, &state.record_limit(&new), "task")?;
    Ok(Template {
        name: new.name.to_string(),
        args: new.args,
        kwargs: new.kwargs,
        queue: new.queue.to_string(),
        max_retries: new.max_retries,
        timeout_seconds: new.timeout_seconds,
        retry_backoff_base: new.retry_backoff.base_seconds,
        retry_backoff_cap: new.retry_backoff.cap_seconds,
        hash: new.request_hash,
        unique: new.unique,
    })
}

/// Checks the fields that do not depend on the spec.
fn check_numbers(s: &Settings) -> Result<(), ApiError> {
    if !(0.0..=3600.0).contains(&s.jitter_seconds) {
        return Err(ApiError::bad_request("jitter", "jitter must be 0 to 3600 seconds"));
    }
    if !(0.0..=MAX_CATCHUP_WINDOW).contains(&s.catchup_window_seconds) {
        return Err(ApiError::bad_request(
            "catchup_window",
            format!("catchup_window must be 0 to {MAX_CATCHUP_WINDOW} seconds"),
        ));
    }
    if s.max_runs.is_some_and(|m| m < 1) {
        return Err(ApiError::bad_request("max_runs", "max_runs must be at least 1"));
    }
    if let (Some(start), Some(end)) = (s.start_at, s.end_at) {
        if end < start {
            return Err(ApiError::bad_request("end_at", "end_at must not be before start_at"));
        }
    }
    Ok(())
}

/// The first grid tick after `after` (and not before `start_at`), `None` past `end_at`.
fn first_tick(spec: &Spec, s: &Settings, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let next = match s.start_at {
        Some(start) if start > after => spec.first_from(start),
        _ => spec.next_after(after),
    };
    next.filter(|t| s.end_at.is_none_or(|end| *t <= end))
}

fn view(caller: &Caller, row: &ScheduleRow, fires: Option<Vec<FireRow>>) -> Schedule {
    let s = &row.settings;
    let spec = spec_of(row).ok();
    let next_fire_times = match (&spec, s.next_tick, s.paused) {
        (Some(spec), Some(next), false) => std::iter::successors(Some(next), |t| spec.next_after(*t))
            .take_while(|t| s.end_at.is_none_or(|end| *t <= end))
            .take(UPCOMING.min(s.max_runs.map_or(UPCOMING, |m| (m - row.runs).max(0) as usize)))
            .collect(),
        _ => vec![],
    };
    let present = |key: &TaskKey| key.id_for(&caller.tenant).into_string();
    let raw = |text: &str| RawValue::from_string(text.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
    Schedule {
        id: row.key.client_id().to_string(),
        spec: serde_json::from_value(s.spec.clone()).unwrap_or(SpecInput { cron: None, every: None, offset: None }),
        timezone: s.timezone.clone(),
        jitter: s.jitter_seconds,
        task: TemplateView {
            task: s.template.name.clone(),
            args: raw(&s.template.args),
            kwargs: raw(&s.template.kwargs),
            queue: s.template.queue.clone(),
            max_retries: s.template.max_retries,
            timeout: s.template.timeout_seconds,
            retry_backoff_base: s.template.retry_backoff_base,
            retry_backoff_cap: s.template.retry_backoff_cap,
            unique: s.template.unique.as_ref().map(UniqueRequest::of),
        },
        overlap: Overlap::parse(&s.overlap).unwrap_or_default(),
        catchup_window: s.catchup_window_seconds,
        start_at: s.start_at,
        end_at: s.end_at,
        max_runs: s.max_runs,
        paused: s.paused,
        version: row.version,
        runs: row.runs,
        skipped: row.skipped,
        next_fire_times,
        last_task_id: row.last_task.as_ref().map(present),
        buffered: row.buffered.iter().filter_map(|b| yadtq_core::schedule::tick_of_suffix(b)).collect(),
        recent_fires: fires.map(|f| {
            f.into_iter()
                .map(|f| FireView {
                    tick: f.tick,
                    kind: f.kind,
                    outcome: f.outcome,
                    reason: f.reason,
                    ticks: f.ticks,
                    task_id: f.task.as_ref().map(present),
                    task_status: f.task_status,
                    at: f.at,
                })
                .collect()
        }),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn body_hash(value: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(value.to_string()))
}

fn read_json(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, state: &AppState) -> Result<Bytes, ApiError> {
    super::tasks::require_json(headers)?;
    let body = super::tasks::read_body(body, state.cfg.limits.max_body_bytes)?;
    crate::submit::check_json(&body, &state.cfg.limits)?;
    Ok(body)
}

/// Create a schedule.
///
/// Answers 201 with the schedule and its next fire times. A client-chosen
/// `id` makes creation idempotent: the same id and body again answers 200
/// with the schedule, another body 409.
#[utoipa::path(
    post, path = "/schedules", tag = "schedules", operation_id = "createSchedule",
    request_body = CreateSchedule,
    responses(
        (status = 201, description = "Created", body = Schedule, headers(("Location" = String, description = "/schedules/{id}"))),
        (status = 200, description = "This id was created before with the same body: the schedule", body = Schedule),
        (status = 400, description = "Invalid body; `field` names the culprit. Besides each field's own schema, the rules no schema states: `spec` holds exactly one of `cron` and `every`; `spec.cron` is a valid pattern (the detail names the cron field and its position); `spec.offset` is below `every`; `timezone` is an IANA name; `end_at` is not before `start_at`; `task.retry_backoff_cap` is at least `task.retry_backoff_base`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope, or may not use the task's queue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This id exists with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A task outside the catalogue, an undeclared queue (`task.task`, `task.queue`), or the tenant has its most schedules (`YADTQ_MAX_SCHEDULES_PER_TENANT`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Operate)?;
    let body = read_json(&headers, body, &state)?;
    let req: CreateSchedule = crate::submit::parse(&body)?;
    let id = check_id(&req.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()), "id")?;
    let input = req
        .spec
        .clone()
        .ok_or_else(|| ApiError::bad_request("spec", "spec is required: {\"cron\": ...} or {\"every\": seconds}"))?;
    let spec = Spec::parse(&input, req.timezone.as_deref()).map_err(spec_error)?;
    let raw =
        req.task.as_deref().ok_or_else(|| ApiError::bad_request("task", "task is required: a POST /tasks body"))?;
    let template = template(&state, &caller, raw)?;
    let mut settings = Settings {
        spec: serde_json::to_value(&input).expect("a spec serialises"),
        timezone: req.timezone.clone().unwrap_or_else(|| "UTC".into()),
        jitter_seconds: req.jitter.unwrap_or(0.0),
        template,
        overlap: req.overlap.unwrap_or_default().as_str().to_string(),
        catchup_window_seconds: req.catchup_window.unwrap_or(DEFAULT_CATCHUP_WINDOW),
        start_at: req.start_at,
        end_at: req.end_at,
        max_runs: req.max_runs,
        paused: req.paused.unwrap_or(false),
        next_tick: None,
    };
    check_numbers(&settings)?;
    settings.next_tick = first_tick(&spec, &settings, Utc::now());
    let mut canonical: serde_json::Value = serde_json::from_slice(&body).expect("checked JSON");
    if let Some(o) = canonical.as_object_mut() {
        o.remove("id");
    }
    let key = caller.schedule_key(&id);
    let cap = state.cfg.schedules.max_schedules_per_tenant;
    let (code, row) =
        match store::create(&state.pool, &key, &caller.tenant, &settings, &body_hash(&canonical), cap).await? {
            Created::Created(row) => (StatusCode::CREATED, row),
            Created::Existing(row) => (StatusCode::OK, row),
            Created::Conflict => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("schedule id '{id}' exists with a different body"),
                    Some("id"),
                ))
            }
            Created::OverCap => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "this tenant has its most schedules ({cap}, YADTQ_MAX_SCHEDULES_PER_TENANT); delete some first"
                    ),
                    Some("id"),
                ))
            }
        };
    let location = [(header::LOCATION, format!("/schedules/{id}"))];
    Ok((code, location, Json(view(&caller, &row, None))).into_response())
}

/// List schedules, newest first, with keyset pagination.
#[utoipa::path(
    get, path = "/schedules", tag = "schedules", operation_id = "listSchedules", params(ListQuery),
    responses(
        (status = 200, description = "A page of schedules", body = SchedulePage),
        (status = 400, description = "Invalid limit or cursor; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<SchedulePage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["limit", "cursor"])?;
    let limit = super::paging::limit(q.limit)?;
    let before = super::paging::cursor(q.cursor.as_deref())?;
    let rows = store::list(&state.pool, &caller.tenant, limit + 1, before).await?;
    let next = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].seq.to_string());
    let schedules = rows.iter().take(limit as usize).map(|r| view(&caller, r, None)).collect();
    Ok(Json(SchedulePage { schedules, next_cursor: next }))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ScheduleRow, ApiError> {
    let key = caller.schedule_key(&check_id(id, "id")?);
    store::get(&state.pool, &key).await?.ok_or_else(|| not_found(id))
}

/// Read a schedule: its settings, next fire times, and what became of its
/// latest ticks (fired as which task and its status, skipped and why).
#[utoipa::path(
    get, path = "/schedules/{id}", tag = "schedules", operation_id = "getSchedule",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule (in the caller's tenant)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<Schedule>, ApiError> {
    caller.require(Scope::Read)?;
    let row = load(&state, &caller, &id).await?;
    let fires = store::fires(&state.pool, &row.key, RECENT_FIRES).await?;
    Ok(Json(view(&caller, &row, Some(fires))))
}

/// Change a schedule: spec, task, policies, `paused`. The next tick after
/// an edit is the new spec's first tick after the later of the last tick
/// and the edit; a leader that read the schedule before the edit fires
/// nothing stale.
#[utoipa::path(
    patch, path = "/schedules/{id}", tag = "schedules", operation_id = "updateSchedule",
    request_body = PatchSchedule,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule as changed", body = Schedule),
        (status = 400, description = "Invalid field or id; `field` names it (the rules between fields as at create, applied to the schedule as changed)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Changed concurrently too often; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A task outside the catalogue, or an undeclared queue", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Schedule>, ApiError> {
    caller.require(Scope::Operate)?;
    let body = read_json(&headers, body, &state)?;
    let req: PatchSchedule = crate::submit::parse(&body)?;
    let template = req.task.as_deref().map(|raw| template(&state, &caller, raw)).transpose()?;
    for _ in 0..ATTEMPTS {
        let row = load(&state, &caller, &id).await?;
        let mut s = row.settings.clone();
        let old_input: SpecInput =
            serde_json::from_value(s.spec.clone()).unwrap_or(SpecInput { cron: None, every: None, offset: None });
        let input = req.spec.clone().unwrap_or(old_input);
        if let Some(tz) = &req.timezone {
            s.timezone.clone_from(tz);
        }
        let spec = Spec::parse(&input, Some(&s.timezone)).map_err(spec_error)?;
        s.spec = serde_json::to_value(&input).expect("a spec serialises");
        if let Some(t) = &template {
            s.template = t.clone();
        }
        s.jitter_seconds = req.jitter.unwrap_or(s.jitter_seconds);
        let old_overlap = Overlap::parse(&s.overlap).unwrap_or_default();
        let overlap = req.overlap.unwrap_or(old_overlap);
        s.overlap = overlap.as_str().to_string();
        s.catchup_window_seconds = req.catchup_window.unwrap_or(s.catchup_window_seconds);
        s.start_at = req.start_at.or(s.start_at);
        s.end_at = req.end_at.or(s.end_at);
        s.max_runs = req.max_runs.or(s.max_runs);
        s.paused = req.paused.unwrap_or(s.paused);
        check_numbers(&s)?;
        let after = row.last_tick.map_or(Utc::now(), |last| last.max(Utc::now()));
        s.next_tick = first_tick(&spec, &s, after);
        if s.max_runs.is_some_and(|m| row.runs >= m) {
            s.next_tick = None;
        }
        let clear_buffer = !matches!(overlap, Overlap::BufferOne | Overlap::BufferAll);
        if let Some(updated) = store::update(&state.pool, &row, &s, clear_buffer).await? {
            let fires = store::fires(&state.pool, &updated.key, RECENT_FIRES).await?;
            return Ok(Json(view(&caller, &updated, Some(fires))));
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "the schedule kept changing during the edit; try again", Some("id")))
}

/// Delete a schedule: it never fires again. Its tasks stay.
#[utoipa::path(
    delete, path = "/schedules/{id}", tag = "schedules", operation_id = "deleteSchedule",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Operate)?;
    let key = caller.schedule_key(&check_id(&id, "id")?);
    if store::delete(&state.pool, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Fires `runs` of schedule `id` through `overlap` (retrying when the
/// leader fired meanwhile) and publishes the tasks.
async fn fire(
    state: &AppState,
    caller: &Caller,
    id: &str,
    make: impl Fn(&ScheduleRow, &Spec) -> Result<(Vec<Run>, Overlap), ApiError>,
) -> Result<FireResult, ApiError> {
    for _ in 0..ATTEMPTS {
        let row = load(state, caller, id).await?;
        if row.settings.paused {
            return Err(ApiError::new(StatusCode::CONFLICT, format!("schedule '{id}' is paused"), Some("id")));
        }
        let spec = spec_of(&row).map_err(spec_error)?;
        let (runs, overlap) = make(&row, &spec)?;
        let plan = plan::manual(&state_of(&row), runs, overlap);
        if let Some(applied) = execute(&state.pool, &row, &plan, Utc::now()).await? {
            yadtq_core::maintenance::publish_rows(&state.routes, &state.pool, &state.producer, applied.queued).await;
            let fired = plan.runs.iter().map(|r| row.key.task_key(&r.suffix)).filter(|k| !applied.refused.contains(k));
            return Ok(FireResult {
                fired: fired.map(|k| k.id_for(&caller.tenant).into_string()).collect(),
                skipped: plan.skipped + applied.refused.len() as i64,
                buffered: plan.log.iter().filter(|e| e.outcome == "buffered").count() as i64,
            });
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "the schedule kept changing; try again", Some("id")))
}

/// Run a schedule once now, outside its grid, through its overlap policy.
/// The task's id is `sched:<id>:t<unix seconds>-<8 hex>`, which no grid
/// tick can take; its `scheduled_for` is now.
#[utoipa::path(
    post, path = "/schedules/{id}/trigger", tag = "schedules", operation_id = "triggerSchedule",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "What the overlap policy made of the run", body = FireResult),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The schedule is paused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<FireResult>, ApiError> {
    caller.require(Scope::Operate)?;
    let now = Utc::now();
    let suffix = yadtq_core::schedule::trigger_suffix(now);
    let at = yadtq_core::schedule::tick_of_suffix(&suffix).expect("a trigger suffix has a tick");
    let result = fire(&state, &caller, &id, |row, _| {
        let run = Run { suffix: suffix.clone(), scheduled_for: at, kind: FireKind::Trigger };
        Ok((vec![run], Overlap::parse(&row.settings.overlap).unwrap_or_default()))
    })
    .await?;
    Ok(Json(result))
}

/// Fire every tick of the schedule's grid in `[start, end]` (at most 1000),
/// through `overlap` (default the schedule's). A tick that already ran is
/// not run again (its task id is taken).
#[utoipa::path(
    post, path = "/schedules/{id}/backfill", tag = "schedules", operation_id = "backfillSchedule",
    request_body = Backfill,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "What the overlap policy made of the runs", body = FireResult),
        (status = 400, description = "Malformed id, `start` or `end` missing, or the rules no schema states: `end` not before `start`, at most 1000 ticks in the range (`field` is `end`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The schedule is paused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn backfill(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FireResult>, ApiError> {
    caller.require(Scope::Operate)?;
    let body = read_json(&headers, body, &state)?;
    let req: Backfill = crate::submit::parse(&body)?;
    let start = req.start.ok_or_else(|| ApiError::bad_request("start", "start is required (RFC 3339)"))?;
    let end = req.end.ok_or_else(|| ApiError::bad_request("end", "end is required (RFC 3339)"))?;
    if end < start {
        return Err(ApiError::bad_request("end", "end must not be before start"));
    }
    let result = fire(&state, &caller, &id, |row, spec| {
        let (ticks, more) = spec.between(start, end, MAX_BACKFILL);
        if more {
            return Err(ApiError::bad_request(
                "end",
                format!("the range holds more than {MAX_BACKFILL} ticks; split it"),
            ));
        }
        let runs = ticks
            .into_iter()
            .map(|t| Run { suffix: yadtq_core::schedule::tick_suffix(t), scheduled_for: t, kind: FireKind::Backfill })
            .collect();
        Ok((runs, req.overlap.unwrap_or_else(|| Overlap::parse(&row.settings.overlap).unwrap_or_default())))
    })
    .await?;
    Ok(Json(result))
}

/// True when `t` passes `GET /tasks`' other filters.
pub fn matches(f: &yadtq_core::store::tasks::TaskFilter, t: &Task) -> bool {
    f.status.as_ref().is_none_or(|s| *s == t.status)
        && f.task.as_ref().is_none_or(|n| *n == t.task)
        && f.queue.as_ref().is_none_or(|q| *q == t.queue)
        && f.worker.is_none_or(|w| t.worker_id == Some(w))
}

/// `GET /tasks?schedule=ID`: the tasks schedule `id` fired, newest first,
/// with the other filters applied to the page.
pub async fn tasks_page(
    state: &AppState,
    caller: &Caller,
    id: &str,
    limit: i64,
    before: Option<i64>,
    keep: impl Fn(&Task) -> bool,
) -> Result<super::tasks::TaskPage, ApiError> {
    let key = caller.schedule_key(&check_id(id, "schedule")?);
    let keys = store::fired_tasks(&state.pool, &key, limit + 1, before).await?;
    let next = (keys.len() as i64 > limit).then(|| keys[limit as usize - 1].0.to_string());
    let wanted: Vec<TaskKey> = keys.into_iter().take(limit as usize).map(|(_, k)| k).collect();
    let mut rows: std::collections::HashMap<TaskKey, Task> = yadtq_core::store::tasks::get_many(&state.pool, &wanted)
        .await?
        .into_iter()
        .map(|r| (r.task.key.clone(), r.task))
        .collect();
    let tasks = wanted
        .iter()
        .filter_map(|k| rows.remove(k))
        .filter(|t| caller.sees_queue(&t.queue) && keep(t))
        .map(|t| caller.present(t))
        .collect();
    Ok(super::tasks::TaskPage { tasks, next_cursor: next })
}

#[cfg(test)]
mod tests {
    use super::{ID_PATTERN, MAX_ID_LEN};
    use yadtq_core::names::TaskId;

    #[test]
    fn the_schedule_id_pattern_is_the_task_id_pattern_at_the_schedule_id_length() {
        let expected = TaskId::PATTERN.replace("{1,128}", &format!("{{1,{MAX_ID_LEN}}}"));
        assert_ne!(expected, TaskId::PATTERN, "the task-id pattern still ends in {{1,128}}");
        assert_eq!(ID_PATTERN, expected);
    }
}
