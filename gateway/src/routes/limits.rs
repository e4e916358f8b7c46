//! `/limits`: named concurrency and rate limits (docs/limits.md). Declaring
//! and deleting needs `operate`, reading `read`; limits belong to the
//! caller's tenant like schedules (another tenant's are 404). A task takes a
//! limit by naming it at submit (`limits`) or through the limit's `tasks`
//! list; the store keeps the rest exact ([`yadtq_core::store::limits`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use yadtq_core::auth::Scope;
use yadtq_core::names::{LimitName, TaskName};
use yadtq_core::store::limits::{self as store, KeyPointer, LimitRow, LimitSpec, PutOutcome, Rate};
use yadtq_core::store::workflows::{older_processes, LIMITS_LEVEL};

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The OpenAPI pattern of a limit name (the queue-name rule: 1-64 of
/// letters, digits, `-`, `_`). The document takes it from here for the
/// `{name}` path parameter (`openapi::id_patterns`).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// Longest `key`, characters.
pub const MAX_KEY_LEN: usize = 256;
/// Longest `rate.per_seconds`: a year.
pub const MAX_PER_SECONDS: f64 = 31_536_000.0;
/// Seconds a client waits before retrying a 503 of the feature-level gate.
const GATE_RETRY_AFTER: u32 = 10;

/// Body of `PUT /limits/{name}`: the whole limit (absent fields are unset,
/// not kept). At least one of `concurrency` and `rate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"concurrency": 5, "key": "/kwargs/customer_id"}))]
pub struct PutLimit {
    /// Tasks of one bucket `queued` or `processing` at once; 0 pauses every
    /// bucket of the limit. Absent: no bound on concurrency (then `rate` is
    /// required).
    #[schema(minimum = 0, maximum = 2147483647)]
    #[serde(default, deserialize_with = "crate::submit::integer")]
    pub concurrency: Option<i32>,
    /// At most `count` releases of one bucket in any window of `per_seconds`.
    pub rate: Option<RateBody>,
    /// The bucket key: a JSON pointer (RFC 6901) into the task's
    /// `{"args": [...], "kwargs": {...}}`, starting `/args` or `/kwargs`, at
    /// most 256 characters; one bucket per value. Absent: one bucket, `(all)`.
    /// Cannot change once the limit exists (409): delete it and create another.
    #[schema(pattern = "^/(args|kwargs)(/([^~/\\x00]|~[01])*)*$", max_length = 256)]
    pub key: Option<String>,
    /// Task names that take the limit without naming it, for tasks submitted
    /// after this `PUT`; at most `YADTQ_MAX_LIMIT_TASKS` (default 100).
    /// Absent: none.
    #[schema(value_type = Option<Vec<LimitTaskName>>, max_items = 100)]
    pub tasks: Option<Vec<String>>,
}

/// A handler name in a limit's `tasks` list (OpenAPI document only).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(pattern = "^[A-Za-z][A-Za-z0-9._:-]{0,127}$")]
pub struct LimitTaskName(String);

/// A rate: `count` releases per `per_seconds`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// Releases of one bucket allowed per window, at least 1.
    #[schema(minimum = 1, maximum = 2147483647)]
    #[serde(deserialize_with = "whole")]
    pub count: i32,
    /// The window, seconds: more than 0, at most 31536000 (a year).
    #[schema(exclusive_minimum = 0, maximum = 31536000)]
    pub per_seconds: f64,
}

fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    crate::submit::integer(d)?.ok_or_else(|| serde::de::Error::custom("count is required"))
}

/// A limit as declared.
#[derive(Debug, Serialize, ToSchema)]
pub struct Limit {
    /// Its name.
    pub name: String,
    /// Tasks of one bucket running at once (`queued` or `processing`); 0:
    /// paused; null: no bound.
    pub concurrency: Option<i32>,
    /// Releases per window of one bucket; null: no bound.
    pub rate: Option<RateBody>,
    /// The bucket key (a JSON pointer); null: one bucket, `(all)`.
    pub key: Option<String>,
    /// Task names that take the limit without naming it, sorted.
    pub tasks: Vec<String>,
}

/// One bucket of a limit, counted from the rows now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// The bucket: the canonical JSON of the key's value (object keys sorted,
    /// no whitespace), `(all)` without a key, `(unresolved)` when the key
    /// finds nothing in a task's arguments.
    pub bucket: String,
    /// Its tasks `queued` or `processing` now (the slots taken).
    pub running: i64,
    /// Its tasks `held`, waiting for room.
    pub held: i64,
    /// Its releases in the rate window ending now (0 without a rate).
    pub releases_in_window: i64,
}

/// `GET /limits/{name}`: the limit and a page of its buckets, by bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDetail {
    /// Its name.
    pub name: String,
    /// As in `Limit`.
    pub concurrency: Option<i32>,
    /// As in `Limit`.
    pub rate: Option<RateBody>,
    /// As in `Limit`.
    pub key: Option<String>,
    /// As in `Limit`.
    pub tasks: Vec<String>,
    /// A page of its buckets, by bucket name; a bucket exists once a task
    /// took it.
    pub buckets: Vec<Bucket>,
    /// Pass as `cursor` for the next page of buckets; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of limits, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitPage {
    /// The limits.
    pub limits: Vec<Limit>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /limits`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: the last limit's name; the page
    /// starts after it.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// Query of `GET /limits/{name}`: the page of buckets.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (hex).
    #[param(pattern = "^([0-9a-f]{2}){1,2048}$")]
    pub cursor: Option<String>,
}

/// The `{name}` of a `/limits/{name}` path, checked (400 naming `name`).
pub struct LimitPath(pub LimitName);

impl<S: Send + Sync> FromRequestParts<S> for LimitPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("name", e.body_text()))?;
        LimitName::parse(name).map(Self).map_err(|e| ApiError::bad_request("name", format!("limit name {e}")))
    }
}

/// 503 with Retry-After while a worker below [`LIMITS_LEVEL`] is alive: an
/// older release neither knows `held` nor releases held tasks when it frees
/// a slot (docs/limits.md, "mixed versions"). `PUT /limits/{name}` and
/// submissions that name limits.
pub async fn gate(state: &AppState) -> Result<(), ApiError> {
    let older = older_processes(&state.pool, state.cfg.common.dead_after, LIMITS_LEVEL).await?;
    if older == 0 {
        return Ok(());
    }
    Err(ApiError::unavailable(
        format!(
            "limits are off during a rolling upgrade: {older} alive worker(s) run a release older than feature \
             level {LIMITS_LEVEL} (they would not release held tasks); retry once every worker is upgraded"
        ),
        GATE_RETRY_AFTER,
    ))
}

/// Checks a `PUT` body into the store's spec: 400 naming the field.
fn spec_of(req: PutLimit, max_tasks: usize, max_name_len: usize) -> Result<LimitSpec, ApiError> {
    if req.concurrency.is_none() && req.rate.is_none() {
        return Err(ApiError::bad_request("concurrency", "give concurrency, rate or both"));
    }
    if let Some(c) = req.concurrency.filter(|c| *c < 0) {
        return Err(ApiError::bad_request("concurrency", format!("concurrency must be 0 or more, not {c}")));
    }
    let rate = match req.rate {
        Some(r) => {
            if r.count < 1 {
                return Err(ApiError::bad_request("rate.count", "rate.count must be at least 1"));
            }
            if !(r.per_seconds > 0.0 && r.per_seconds <= MAX_PER_SECONDS) {
                return Err(ApiError::bad_request(
                    "rate.per_seconds",
                    format!("rate.per_seconds must be more than 0 and at most {MAX_PER_SECONDS}"),
                ));
            }
            Some(Rate { count: r.count, per_seconds: r.per_seconds })
        }
        None => None,
    };
    let key = match req.key {
        Some(k) if k.chars().count() > MAX_KEY_LEN || k.contains('\0') => {
            return Err(ApiError::bad_request(
                "key",
                format!("key must be at most {MAX_KEY_LEN} characters, without NUL"),
            ))
        }
        Some(k) => {
            Some(KeyPointer::parse(k).map_err(|e| ApiError::bad_request("key", format!("key must be {}", e.rule)))?)
        }
        None => None,
    };
    let names = req.tasks.unwrap_or_default();
    if names.len() > max_tasks {
        return Err(ApiError::bad_request(
            "tasks",
            format!("{} task names exceed the limit of {max_tasks} (YADTQ_MAX_LIMIT_TASKS)", names.len()),
        ));
    }
    let tasks = names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            TaskName::parse(n, max_name_len)
                .map_err(|e| ApiError::bad_request(&format!("tasks[{i}]"), format!("task {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LimitSpec { concurrency: req.concurrency, rate, key, tasks })
}

fn rate_view(r: Rate) -> RateBody {
    RateBody { count: r.count, per_seconds: r.per_seconds }
}

fn view(row: &LimitRow) -> Limit {
    Limit {
        name: row.name.to_string(),
        concurrency: row.spec.concurrency,
        rate: row.spec.rate.map(rate_view),
        key: row.spec.key.as_ref().map(|k| k.as_str().to_string()),
        tasks: row.spec.tasks.iter().map(|t| t.to_string()).collect(),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no limit named '{name}'"))
}

/// Declare a limit: create it, or replace its settings and `tasks` list.
///
/// Answers 201 when created, 200 when updated, with the limit. A raise
/// releases at once the held tasks it makes room for; a lowered limit takes
/// effect as running tasks finish (none is stopped). `concurrency: 0` pauses
/// the limit. A `tasks` list applies to tasks submitted after it is set.
#[utoipa::path(
    put, path = "/limits/{name}", tag = "limits", operation_id = "putLimit",
    request_body = PutLimit,
    params(("name" = String, Path, description = "Limit name: 1-64 of letters, digits, `-`, `_`")),
    responses(
        (status = 201, description = "Created", body = Limit, headers(("Location" = String, description = "/limits/{name}"))),
        (status = 200, description = "Updated: the limit as changed", body = Limit),
        (status = 400, description = "Invalid body or name; `field` names the culprit (`concurrency`, `rate.count`, `rate.per_seconds`, `key`, `tasks`, `tasks[i]`, an unknown field). Besides each field's own schema, the rule between fields: at least one of `concurrency` and `rate` (400 naming `concurrency`); `tasks` holds at most `YADTQ_MAX_LIMIT_TASKS` (default 100) names", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The limit exists with another `key`, which cannot change (tasks are bucketed at submit): delete it and create another (`field` is `key`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or a worker of an older release is alive (limits need every worker at feature level 2); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    LimitPath(name): LimitPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Operate)?;
    super::tasks::require_json(&headers)?;
    let body = super::tasks::read_body(body, state.cfg.limits.max_body_bytes)?;
    crate::submit::check_json(&body, &state.cfg.limits)?;
    let req: PutLimit = crate::submit::parse(&body)?;
    let spec = spec_of(req, state.cfg.limits.max_limit_tasks, state.cfg.limits.max_task_name_len)?;
    gate(&state).await?;
    let code = match store::put(&state.pool, &caller.tenant, &name, &spec).await? {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Updated(released) => {
            crate::publish::publish_released(&state, released);
            StatusCode::OK
        }
        PutOutcome::KeyChanged => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("limit '{name}' exists with another key, which cannot change: delete it and create another"),
                Some("key"),
            ))
        }
    };
    let row = store::get(&state.pool, &caller.tenant, &name).await?.ok_or_else(|| not_found(&name))?;
    let location = [(header::LOCATION, format!("/limits/{name}"))];
    Ok((code, location, Json(view(&row))).into_response())
}

/// List the caller's limits by name, with keyset pagination.
#[utoipa::path(
    get, path = "/limits", tag = "limits", operation_id = "listLimits", params(ListQuery),
    responses(
        (status = 200, description = "A page of limits", body = LimitPage),
        (status = 400, description = "Invalid limit or cursor; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<LimitPage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["limit", "cursor"])?;
    let limit = super::paging::limit(q.limit)?;
    let after = q
        .cursor
        .map(|c| LimitName::parse(c).map_err(|e| ApiError::bad_request("cursor", format!("cursor {e}"))))
        .transpose()?;
    let rows = store::list(&state.pool, &caller.tenant, None, after.as_ref(), limit + 1).await?;
    let next = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].name.to_string());
    Ok(Json(LimitPage { limits: rows.iter().take(limit as usize).map(view).collect(), next_cursor: next }))
}

fn bad_cursor() -> ApiError {
    ApiError::bad_request("cursor", "cursor is not one we issued")
}

/// A cursor as issued: the hex of the last item's name (a bucket may hold
/// any text, so the cursor is hex whatever it pages). Any even-length hex is
/// a keyset position (bytes that are not UTF-8 read lossily, NUL dropped:
/// PostgreSQL text holds none); other text is a 400 naming `cursor`.
fn cursor(c: Option<&str>) -> Result<Option<String>, ApiError> {
    c.map(|c| {
        hex::decode(c)
            .ok()
            .filter(|b| !b.is_empty())
            .map(|b| String::from_utf8_lossy(&b).replace('\0', ""))
            .ok_or_else(bad_cursor)
    })
    .transpose()
}

/// Read a limit and a page of its buckets: in each, the tasks running now,
/// the tasks held and the releases in the current rate window.
#[utoipa::path(
    get, path = "/limits/{name}", tag = "limits", operation_id = "getLimit",
    params(("name" = String, Path, description = "Limit name"), PageQuery),
    responses(
        (status = 200, description = "The limit and a page of its buckets", body = LimitDetail),
        (status = 400, description = "Malformed name, limit or cursor; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such limit (in the caller's tenant)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    LimitPath(name): LimitPath,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<LimitDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["limit", "cursor"])?;
    let limit = super::paging::limit(q.limit)?;
    let after = cursor(q.cursor.as_deref())?;
    let row = store::get(&state.pool, &caller.tenant, &name).await?.ok_or_else(|| not_found(&name))?;
    let buckets = store::buckets(&state.pool, &caller.tenant, &name, after.as_deref(), limit + 1).await?;
    let next = (buckets.len() as i64 > limit).then(|| hex::encode(&buckets[limit as usize - 1].bucket));
    let Limit { name, concurrency, rate, key, tasks } = view(&row);
    Ok(Json(LimitDetail {
        name,
        concurrency,
        rate,
        key,
        tasks,
        buckets: buckets
            .into_iter()
            .take(limit as usize)
            .map(|b| Bucket { bucket: b.bucket, running: b.running, held: b.held, releases_in_window: b.in_window })
            .collect(),
        next_cursor: next,
    }))
}

/// Delete a limit: its buckets go, and the tasks it held are released as
/// far as their other limits allow (at once; the leader's pass the rest).
#[utoipa::path(
    delete, path = "/limits/{name}", tag = "limits", operation_id = "deleteLimit",
    params(("name" = String, Path, description = "Limit name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    LimitPath(name): LimitPath,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Operate)?;
    match store::delete(&state.pool, &caller.tenant, &name).await? {
        Some(released) => {
            crate::publish::publish_released(&state, released);
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(not_found(&name)),
    }
}
