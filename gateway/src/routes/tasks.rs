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
use yadtq_core::model::{Task, TaskStatus};
use yadtq_core::store::tasks::{self, Inserted, TaskFilter};
use yadtq_core::validate;

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
#[utoipa::path(
    post, path = "/tasks", tag = "tasks", operation_id = "submitTask",
    request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Client-chosen task id; same as `id` in the body (and `task-id`), which must not name another", pattern = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$")),
    responses(
        (status = 202, description = "Accepted; `Location` names the task", body = Task,
         headers(("Location" = String, description = "/tasks/{id}")),
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/id")), description = "Read the task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/id")), description = "Cancel the task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/id")), description = "Run the task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/id")), description = "The task's events")),
         )),
        (status = 200, description = "This id was submitted before with the same body: the original task", body = Task,
         headers(("Location" = String, description = "/tasks/{id}")),
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/id")), description = "Read the task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/id")), description = "Cancel the task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/id")), description = "Run the task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/id")), description = "The task's events")),
         )),
        (status = 400, description = "Invalid body; `field` names the culprit", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This id was submitted before with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit, or the task's Kafka record larger than the broker accepts (the detail names the limit)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Task name not in the configured catalogue, or queue not declared (`field` says which)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = read_body(body, state.cfg.limits.max_body_bytes)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key", "Idempotency-Key must be visible ASCII"))?,
        ),
        None => None,
    };
    let new = submit::validate(&body, key, &state.cfg.limits)?;
    submit::check_record_size(&new, &state.record_limits.of(&new.queue), "body")?;
    match state.inserter.insert(new).await? {
        Inserted::Existing(row) => Ok((StatusCode::OK, location(&row.task.id), Json(row.task)).into_response()),
        Inserted::Conflict(id) => Err(conflict(id)),
        Inserted::Created(row) => {
            crate::publish::publish(&state, &[&row.task]).await;
            Ok((StatusCode::ACCEPTED, location(&row.task.id), Json(row.task)).into_response())
        }
    }
}

/// The 409 for an id submitted before with a different request.
pub fn conflict(id: String) -> ApiError {
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

/// The body, or 413 / 400 problem documents.
pub fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
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
    params(("id" = String, Path, description = "Task id: a UUID or a client-chosen id (1-128 of letters, digits, `._:-`, other than `.` and `..`)", pattern = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$"), GetQuery),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 400, description = "Malformed id or wait", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task was ever submitted with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    TaskId(id): TaskId,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> Result<Json<Task>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("wait", e.body_text()))?;
    let wait = q.wait.unwrap_or(0.0);
    if !(0.0..=MAX_WAIT).contains(&wait) {
        return Err(ApiError::bad_request("wait", format!("wait must be 0 to {MAX_WAIT} seconds")));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    // Subscribe before reading, so a change between the read and the wait is
    // not missed (a plain read, without `wait`, needs no subscription).
    let mut events = (wait > 0.0).then(|| state.events.subscribe(&id));
    loop {
        let task = load(&state, &id).await?;
        let Some(events) = events.as_mut() else { return Ok(Json(task)) };
        if task.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(task));
        }
        tokio::select! {
            _ = events.next() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The `{id}` of a `/tasks/{id}...` path, percent-decoded and checked: every
/// refusal (invalid percent-encoding included, which axum's own `Path`
/// answers in plain text) is a 400 problem document naming `id`.
pub struct TaskId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("id", e.body_text()))?;
        if !validate::is_valid_task_id(&id) {
            return Err(ApiError::bad_request("id", format!("task id must be {}", validate::TASK_ID_RULE)));
        }
        Ok(Self(id))
    }
}

/// The task, or 404.
pub async fn load(state: &AppState, id: &str) -> Result<Task, ApiError> {
    match tasks::get(&state.pool, id).await? {
        Some(row) => Ok(row.task),
        None => Err(ApiError::not_found(format!("no task with id '{id}'"))),
    }
}

/// Query of `GET /tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this name (any text without NUL characters).
    #[param(pattern = "^[^\\x00]*$")]
    pub task: Option<String>,
    /// Only tasks of this queue (any text without NUL characters).
    #[param(pattern = "^[^\\x00]*$")]
    pub queue: Option<String>,
    /// Only tasks held (or last held) by this worker id.
    pub worker: Option<uuid::Uuid>,
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
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TaskPage>, ApiError> {
    let Query(q) = query.map_err(|e| {
        let text = e.body_text();
        let field = ["status", "task", "queue", "worker", "limit", "cursor"]
            .into_iter()
            .find(|f| text.contains(&format!("`{f}`")) || text.contains(&format!("{f}:")))
            .unwrap_or("query");
        ApiError::bad_request(field, text)
    })?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "limit must be 1 to 500"));
    }
    let before = match q.cursor {
        // Cursors are the digits of a positive number (what `next_cursor` gives).
        Some(c) if c.len() <= 18 && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
            Some(c.parse::<i64>().expect("at most 18 digits fit an i64"))
        }
        Some(_) => return Err(ApiError::bad_request("cursor", "cursor is not one we issued")),
        None => None,
    };
    // PostgreSQL refuses NUL in text, which would surface as a 500.
    for (field, value) in [("task", &q.task), ("queue", &q.queue)] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::bad_request(field, format!("{field} must not contain NUL characters")));
        }
    }
    let filter = TaskFilter { status: q.status, task: q.task, queue: q.queue, worker: q.worker };
    let page = tasks::list(&state.pool, "default", None, &filter, limit, before).await?;
    Ok(Json(TaskPage { tasks: page.tasks, next_cursor: page.next.map(|n| n.to_string()) }))
}
