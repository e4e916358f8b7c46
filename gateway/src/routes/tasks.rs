//! `POST /tasks`, `GET /tasks/{id}` (with long-poll) and `GET /tasks` (listing).

use std::time::Duration;

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
use yadtq_core::model::{Task, TaskLimitState, TaskStatus};
use yadtq_core::names::{LimitName, TaskId, TaskKey};
use yadtq_core::store::limits::LimitedInsert;
use yadtq_core::store::tasks::{self, Inserted, TaskFilter};
use yadtq_core::telemetry::{self, KeyValue, TraceContext};

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit::{self, SubmitRequest};

/// Submit a task.
///
/// Records the task (`queued`, or `scheduled` with `countdown`/`eta`), sends it
/// to Kafka and waits briefly for the broker's ack (a task whose ack is late is
/// sent by the publisher; it is accepted either way). A client-chosen id (`id`,
/// `task-id` or the `Idempotency-Key` header) makes submission idempotent: the
/// same id and body again returns the original task with 200; the same id with
/// a different task, args, kwargs or queue is 409.
///
/// `limits` names limits the task takes (docs/limits.md), besides those
/// whose `tasks` list names its task: a task whose limits have no room now
/// is accepted `held` (202, since it runs once there is room) and becomes
/// `queued` when every one of its limits has room; `GET /tasks/{id}` says
/// which limit holds it.
///
/// A `unique` option (docs/unique.md) makes at most one task of its key live:
/// a repeat while an earlier task holds the key answers 200 with that task
/// and the header `Yadtq-Unique: existing`, creating nothing, also across
/// gateways at once. When `id` and `unique` match different existing tasks,
/// the unique match wins (the answer is the key's holder).
#[utoipa::path(
    post, path = "/tasks", tag = "tasks", operation_id = "submitTask",
    request_body = SubmitRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen task id; same as `id` in the body (and `task-id`), which must not name another"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context: the task runs in this trace (its `trace_id`); absent or invalid, a new trace"),
        ("tracestate" = Option<String>, Header, description = "W3C trace state, kept with the trace context"),
    ),
    responses(
        (status = 202, description = "Accepted (`queued`, `scheduled`, or `held` by a limit with no room now: it runs once there is room); `Location` names the task", body = Task,
         headers(("Location" = String, description = "/tasks/{id}")),
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/id")), description = "Read the task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/id")), description = "Cancel the task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/id")), description = "Run the task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/id")), description = "The task's events")),
         )),
        (status = 200, description = "This id was submitted before with the same body: the original task; or (with the header `Yadtq-Unique: existing`) the task that holds the submission's unique key", body = Task,
         headers(("Location" = String, description = "/tasks/{id}"),
                 ("Yadtq-Unique" = String, description = "`existing` when the task is the holder of the submission's unique key")),
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/id")), description = "Read the task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/id")), description = "Cancel the task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/id")), description = "Run the task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/id")), description = "The task's events")),
         )),
        (status = 400, description = "Invalid body or header; `field` names the culprit. Besides each field's own schema, the rules between fields: `id`, `task-id` and the `Idempotency-Key` header, when more than one is given, name the same id (`field` is the second one); `countdown` and `eta` are exclusive (`eta`); `retry_backoff_cap` is at least `retry_backoff_base`; `unique.key` is at most `YADTQ_MAX_UNIQUE_KEY_LEN` (256) characters; `unique.while` names known statuses; `limits` names each limit once; `eta` is at most `YADTQ_MAX_SCHEDULE_AHEAD` (30 days) ahead of the gateway's clock", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This id was submitted before with a different body (`field` is `id`), or the unique key is held by a task in a queue this API key cannot see (`field` is `unique`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit, or the task's Kafka record larger than the broker accepts (the detail names the limit)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Well formed, but naming what this gateway's configuration lacks: a `queue` it does not declare (`YADTQ_QUEUES`; by default only `default`), or a `task` outside its catalogue when one is configured (`field` says which), or a limit the tenant has not declared (`field` is `limits[j]`). The schema cannot list them: they are the gateway's configuration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or `limits` named while a worker of an older release is alive (limits need every worker at feature level 2); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Submit)?;
    require_json(&headers)?;
    let body = read_body(body, state.cfg.limits.max_body_bytes)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key", "Idempotency-Key must be visible ASCII"))?,
        ),
        None => None,
    };
    let span = submit_span(&headers);
    let (mut new, limits) = submit::validate_limited(&body, key, &state.cfg.limits)?;
    caller.require_queue(&new.queue, "queue")?;
    caller.adopt(&mut new);
    new.trace = TraceContext::of(&span);
    submit::check_record_size(&new, &state.record_limit(&new), "body")?;
    let inserted = if limits.is_empty() {
        state.inserter.insert(new).await?
    } else {
        super::limits::gate(&state).await?;
        insert_limited(&state, new, limits).await?
    };
    let (code, row) = match inserted {
        Inserted::Existing(row) => (StatusCode::OK, row),
        Inserted::Unique(row) => {
            let task = submit::unique::visible_holder(&caller, row.task)?;
            let marker = [(submit::unique::HEADER, submit::unique::EXISTING)];
            return Ok((StatusCode::OK, location(&task.id), marker, Json(task)).into_response());
        }
        Inserted::Conflict(id) => return Err(conflict(&id)),
        Inserted::Created(row) => {
            crate::publish::publish(&state, &[&row.task]).await;
            (StatusCode::ACCEPTED, row)
        }
    };
    let task = caller.present(row.task);
    telemetry::end(&span, vec![KeyValue::new("yadtq.task.id", task.id.to_string())]);
    Ok((code, location(&task.id), Json(task)).into_response())
}

/// Inserts one task that names `limits` ([`yadtq_core::store::limits::insert`],
/// one transaction) and publishes the other tasks its release freed; the
/// caller publishes the task itself when it came out `queued`. 409 for an
/// id taken by another request, 422 naming `limits[j]` for an unknown limit.
async fn insert_limited(state: &AppState, new: tasks::NewTask, limits: Vec<LimitName>) -> Result<Inserted, ApiError> {
    let key = new.key();
    match yadtq_core::store::limits::insert(&state.pool, std::slice::from_ref(&new), std::slice::from_ref(&limits))
        .await?
    {
        LimitedInsert::Done(mut rows, released) => {
            // The task itself is published with the answer, from its row.
            let others = released.into_iter().filter(|u| u.id != key).collect();
            crate::publish::publish_released(state, others);
            Ok(rows.pop().expect("one result per task"))
        }
        LimitedInsert::Conflict(id) => Ok(Inserted::Conflict(id)),
        LimitedInsert::UnknownLimit(_, name) => Err(unknown_limit(&limits, &name, None)),
    }
}

/// 422 for a task naming limit `name`, which the tenant has not declared;
/// `field` is `limits[j]` (under `item`, e.g. `tasks[3]`, in a batch).
pub fn unknown_limit(limits: &[LimitName], name: &LimitName, item: Option<&str>) -> ApiError {
    let j = limits.iter().position(|n| n == name).unwrap_or(0);
    let field = match item {
        Some(item) => format!("{item}.limits[{j}]"),
        None => format!("limits[{j}]"),
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("no limit named '{name}': declare it with PUT /limits/{name} first"),
        Some(&field),
    )
}

/// The request's `submit` span, a child of the submitter's `traceparent`
/// and `tracestate` headers; an absent or invalid `traceparent` starts a
/// new trace (W3C), never a 4xx. Every task the request stores continues it.
pub fn submit_span(headers: &HeaderMap) -> telemetry::Context {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let parent = telemetry::remote_parent(header(telemetry::TRACEPARENT), header(telemetry::TRACESTATE));
    telemetry::start("submit", telemetry::SpanKind::Server, &parent, None, vec![])
}

/// The 409 for task key `key` submitted before with a different request.
pub fn conflict(key: &TaskKey) -> ApiError {
    let id = key.client_id();
    ApiError::new(
        StatusCode::CONFLICT,
        format!("task id '{id}' was already submitted with a different task, args, kwargs or queue"),
        Some("id"),
    )
}

/// 415 unless the body is declared JSON: `application/json` or a
/// `application/*+json` type, parameters allowed (axum's `Json` rule). A
/// client that forgets the header (curl's `-d` sends a form type) learns it
/// here instead of getting its bytes read as something they were not.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_json = given.as_deref().and_then(|v| v.parse::<mime::Mime>().ok()).is_some_and(|m| {
        m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    });
    if is_json {
        return Ok(());
    }
    let got = given.map_or_else(|| "none".to_string(), |v| format!("'{v}'"));
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("send the body with Content-Type: application/json (got {got})"),
        Some("Content-Type"),
    ))
}

/// The body, or 413 / 408 / 400 problem documents.
pub fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if let Some(t) = crate::edge::body_timed_out(&e) {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, t.to_string(), Some("body"))
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {limit} bytes"),
                Some("body"),
            )
        } else {
            ApiError::bad_request("body", e.body_text())
        }
    })
}

fn location(id: &str) -> [(header::HeaderName, String); 1] {
    [(header::LOCATION, format!("/tasks/{id}"))]
}

/// Query of `GET /tasks/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
// Declared `in: query` explicitly: utoipa infers it only from a bare `Query<T>`
// argument, and the handler takes `Result<Query<T>, _>` to answer problems.
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Long-poll: wait up to this many seconds (max 60) for the task to become
    /// terminal; answers as soon as it is, or with its current state at the deadline.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<f64>,
}

/// Longest long-poll wait, seconds.
pub const MAX_WAIT: f64 = 60.0;

/// Read a task: status, result or error, progress, attempts and timestamps.
#[utoipa::path(
    get, path = "/tasks/{id}", tag = "tasks", operation_id = "getTask",
    params(("id" = String, Path, description = "Task id: a UUID or a client-chosen id (1-128 of letters, digits, `._:-`, other than `.` and `..`)"), GetQuery),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 400, description = "Malformed id or wait", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task was ever submitted with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or (with `wait`) the gateway holds its most long-polls and event streams (`--max-waiters`); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("wait", e.body_text()))?;
    let wait = q.wait.unwrap_or(0.0);
    if !(0.0..=MAX_WAIT).contains(&wait) {
        return Err(ApiError::bad_request("wait", format!("wait must be 0 to {MAX_WAIT} seconds")));
    }
    if wait == 0.0 {
        let task = with_node(&state, &caller, load(&state, &caller, &id).await?).await?;
        return Ok(Json(task).into_response());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    let _place = state.edge.waiter()?;
    // The first read and every later one are shared with the task's other
    // waiters on this gateway (crate::notify).
    let mut events = state.events.subscribe(&caller.task_key(&id));
    let mut task = first_read(&mut events, &caller, &id).await?;
    while !task.status.is_terminal() {
        tokio::select! {
            next = events.next() => task = next.map_err(|_| no_task(&id))?,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Ok(Json(with_node(&state, &caller, Task::clone(&task)).await?).into_response())
}

/// `task` presented to `caller`, with its workflow and parents when it is a
/// workflow node ([`yadtq_core::store::workflows::node_of`]) and its limits
/// when it takes any and is not terminal ([`yadtq_core::store::limits::of_task`]).
/// A plain task costs neither statement, nor does a finished limited one:
/// long-polls answer thousands of them at once.
async fn with_node(state: &AppState, caller: &Caller, task: Task) -> Result<Task, ApiError> {
    let limits = async {
        match task.limited && !task.status.is_terminal() {
            true => yadtq_core::store::limits::of_task(&state.pool, &task.key).await,
            false => Ok(Vec::new()),
        }
    };
    let (node, limits) = tokio::try_join!(yadtq_core::store::workflows::node_of(&state.pool, &task.key), limits)?;
    let mut task = caller.present(task);
    if !limits.is_empty() {
        task.limits = Some(
            limits
                .into_iter()
                .map(|l| TaskLimitState { name: l.limit.to_string(), bucket: l.bucket, held: l.full })
                .collect(),
        );
    }
    if let Some((workflow, parents)) = node {
        task.workflow_id = Some(workflow.id_for(&caller.tenant).to_string());
        task.parents = Some(parents.iter().map(|p| p.id_for(&caller.tenant).to_string()).collect());
    }
    Ok(task)
}

/// The 404 for the caller's task `id`.
fn no_task(id: &str) -> ApiError {
    ApiError::not_found(format!("no task with id '{id}'"))
}

/// The first read of a subscription to the caller's task `id`: 404 (naming
/// the caller's id) also for a task in a queue the caller's key may not see.
pub async fn first_read(
    events: &mut crate::notify::Subscription,
    caller: &Caller,
    id: &str,
) -> Result<std::sync::Arc<Task>, ApiError> {
    match events.first().await {
        Ok(task) if caller.sees_queue(&task.queue) => Ok(task),
        Ok(_) => Err(no_task(id)),
        Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => Err(no_task(id)),
        Err(e) => Err(e),
    }
}

/// The `{id}` of a `/tasks/{id}...` path, percent-decoded and checked: every
/// refusal (invalid percent-encoding included, which axum's own `Path`
/// answers in plain text) is a 400 problem document naming `id`.
pub struct TaskIdPath(pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("id", e.body_text()))?;
        TaskId::parse(id).map(Self).map_err(|e| ApiError::bad_request("id", format!("task id {e}")))
    }
}

/// The caller's task `id` as stored (not yet [`Caller::present`]ed), or 404:
/// also for a task in a queue the caller's key may not see.
pub async fn load(state: &AppState, caller: &Caller, id: &TaskId) -> Result<Task, ApiError> {
    match tasks::get(&state.pool, &caller.task_key(id)).await? {
        Some(row) if caller.sees_queue(&row.task.queue) => Ok(row.task),
        _ => Err(no_task(id)),
    }
}

/// Query of `GET /tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks in this status: one this release knows (any other answers
    /// 400, although a task may carry a newer release's status).
    #[serde(default, deserialize_with = "yadtq_core::model::known_status")]
    pub status: Option<TaskStatus>,
    /// Only tasks of this name (any text without NUL characters).
    #[param(pattern = "^[^\\x00]*$")]
    pub task: Option<String>,
    /// Only tasks of this queue (any text without NUL characters).
    #[param(pattern = "^[^\\x00]*$")]
    pub queue: Option<String>,
    /// Only tasks held (or last held) by this worker id.
    pub worker: Option<uuid::Uuid>,
    /// Only tasks fired by this schedule (its id), newest fire first; the
    /// other filters then apply to each page, which may come out shorter.
    pub schedule: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (digits).
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List tasks, newest first, with filters and keyset pagination.
#[utoipa::path(
    get, path = "/tasks", tag = "tasks", operation_id = "listTasks", params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "Invalid filter (a NUL character included) or cursor; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or the gateway's listing cap (`--max-concurrent-listings`) stayed full for `--listing-wait`; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TaskPage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["status", "task", "queue", "worker", "schedule", "limit", "cursor"])?;
    let limit = super::paging::limit(q.limit)?;
    let before = super::paging::cursor(q.cursor.as_deref())?;
    // PostgreSQL refuses NUL in text, which would surface as a 500.
    for (field, value) in [("task", &q.task), ("queue", &q.queue)] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::bad_request(field, format!("{field} must not contain NUL characters")));
        }
    }
    let filter = TaskFilter { status: q.status, task: q.task, queue: q.queue, worker: q.worker };
    let _place = state.edge.listing().await?;
    if let Some(schedule) = &q.schedule {
        let keep = |t: &Task| super::schedules::matches(&filter, t);
        return Ok(Json(super::schedules::tasks_page(&state, &caller, schedule, limit, before, keep).await?));
    }
    let page = tasks::list(&state.pool, &caller.tenant, caller.queues(), &filter, limit, before).await?;
    let tasks = page.tasks.into_iter().map(|t| caller.present(t)).collect();
    Ok(Json(TaskPage { tasks, next_cursor: page.next.map(|n| n.to_string()) }))
}
