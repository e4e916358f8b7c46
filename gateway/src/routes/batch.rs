//! `POST /tasks/batch`: many tasks in one request, all or nothing.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use yadtq_core::auth::Scope;
use yadtq_core::model::Task;
use yadtq_core::names::TaskId;
use yadtq_core::store::limits::LimitedInsert;
use yadtq_core::store::tasks::{self, BatchInsert, Inserted};

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit::{self, SubmitRequest};

/// Body of `POST /tasks/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The tasks, each as in `POST /tasks` (at most the configured batch size, default 1000).
    #[schema(value_type = Vec<SubmitRequest>, min_items = 1, max_items = 1000)]
    pub tasks: Vec<Box<RawValue>>,
}

/// Answer of `POST /tasks/batch`: every task, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// The tasks as stored (an idempotent repeat returns the original).
    pub tasks: Vec<Task>,
    /// Positions (from 0) in `tasks` of the tasks that are the existing
    /// holder of their item's `unique` key, nothing created for that item:
    /// an earlier task's, or an earlier item's of this batch (two items with
    /// one key: the second answers the first's task). Empty when none.
    #[serde(default)]
    pub unique_existing: Vec<usize>,
}

/// Submit up to 1,000 tasks at once: validated together, inserted in one
/// transaction (all or nothing), sent to Kafka as one producer batch.
///
/// An item with a `unique` key held by an existing task (or by an earlier
/// item of the batch) creates nothing: its place in `tasks` holds that task,
/// and `unique_existing` lists the place. The unique match wins over `id`.
///
/// Items may name `limits` as in `POST /tasks`: a task whose limits have no
/// room is stored `held` (still 202) and runs once they have.
#[utoipa::path(
    post, path = "/tasks/batch", tag = "tasks", operation_id = "submitBatch",
    request_body = BatchRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the batch idempotent: task `i` without an `id` of its own gets the id `<key>.<i>` (a task id itself, as long as the last one stays within 128 characters); the same batch again answers 200 with the same tasks, a different one 409"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context: every task of the batch runs in this trace; absent or invalid, a new trace"),
        ("tracestate" = Option<String>, Header, description = "W3C trace state, kept with the trace context"),
    ),
    responses(
        (status = 202, description = "All accepted", body = BatchResponse,
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Read the first task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Cancel the first task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Run the first task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/tasks/0/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/tasks/0/id")), description = "The task's events")),
         )),
        (status = 200, description = "Every task was an idempotent repeat or the holder of its unique key", body = BatchResponse,
         links(
             ("getTask" = (operation_id = "getTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Read the first task")),
             ("cancelTask" = (operation_id = "cancelTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Cancel the first task")),
             ("retryTask" = (operation_id = "retryTask", parameters(("id" = "$response.body#/tasks/0/id")), description = "Run the first task again")),
             ("listAttempts" = (operation_id = "listAttempts", parameters(("id" = "$response.body#/tasks/0/id")), description = "The task's attempts")),
             ("streamTaskEvents" = (operation_id = "streamTaskEvents", parameters(("id" = "$response.body#/tasks/0/id")), description = "The task's events")),
         )),
        (status = 400, description = "A task is invalid, by its own fields or the rules between them as in `POST /tasks` (`field` is e.g. `tasks[3].args`, `tasks[3].eta`), or the `Idempotency-Key` leaves no room for `.<index>` within 128 characters; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An id exists with a different body (`field` is `id`), nothing stored; or a unique key is held by a task in a queue this API key cannot see (`field` is `unique`; the batch's other tasks are stored)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More tasks than the batch limit (`tasks`' `maxItems`, 1,000 by default; `field` is `tasks`), a body above the size limit, or a task's Kafka record larger than the broker accepts (`field` is e.g. `tasks[3]`); nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Well formed, but a task names what this gateway's configuration lacks: a `queue` it does not declare (`YADTQ_QUEUES`; by default only `default`) or a `task` outside its catalogue (`field` is e.g. `tasks[3].queue`), or a limit the tenant has not declared (`field` is e.g. `tasks[3].limits[0]`); nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or a task names `limits` while a worker of an older release is alive (limits need every worker at feature level 2); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn submit_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    caller.require(Scope::Submit)?;
    let limits = &state.cfg.limits;
    super::tasks::require_json(&headers)?;
    let body = super::tasks::read_body(body, limits.max_batch_body_bytes)?;
    submit::check_json(&body, limits)?;
    let req: BatchRequest = submit::parse(&body)?;
    if req.tasks.is_empty() {
        return Err(ApiError::bad_request("tasks", "tasks must hold at least one task"));
    }
    if req.tasks.len() > limits.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} tasks exceed the batch limit of {}", req.tasks.len(), limits.max_batch),
            Some("tasks"),
        ));
    }
    let key = idempotency_key(&headers, req.tasks.len())?;
    let span = super::tasks::submit_span(&headers);
    let trace = yadtq_core::telemetry::TraceContext::of(&span);
    let mut new = Vec::with_capacity(req.tasks.len());
    let mut named = Vec::with_capacity(req.tasks.len());
    for (i, raw) in req.tasks.iter().enumerate() {
        let field = format!("tasks[{i}]");
        let default_id =
            key.map(|k| TaskId::parse(format!("{k}.{i}")).expect("idempotency_key checked the longest of these ids"));
        let (mut task, task_limits) = submit::validate_item_limited(raw.get().as_bytes(), None, default_id, limits)
            .map_err(|e| e.within(&field))?;
        caller.require_queue(&task.queue, "queue").map_err(|e| e.within(&field))?;
        caller.adopt(&mut task);
        task.trace = trace.clone();
        submit::check_record_size(&task, &state.record_limit(&task), &field)?;
        new.push(task);
        named.push(task_limits);
    }
    let inserted = if named.iter().all(Vec::is_empty) {
        match tasks::insert_batch(&state.pool, &new).await? {
            BatchInsert::Done(inserted) => inserted,
            BatchInsert::Conflict(id) => return Err(super::tasks::conflict(&id)),
        }
    } else {
        super::limits::gate(&state).await?;
        match yadtq_core::store::limits::insert(&state.pool, &new, &named).await? {
            LimitedInsert::Done(inserted, released) => {
                // The batch's own tasks are published from their rows below.
                let ours: std::collections::HashSet<_> = new.iter().map(|t| t.key()).collect();
                crate::publish::publish_released(
                    &state,
                    released.into_iter().filter(|u| !ours.contains(&u.id)).collect(),
                );
                inserted
            }
            LimitedInsert::Conflict(id) => return Err(super::tasks::conflict(&id)),
            LimitedInsert::UnknownLimit(i, name) => {
                return Err(super::tasks::unknown_limit(&named[i], &name, Some(&format!("tasks[{i}]"))))
            }
        }
    };
    let any_created = inserted.iter().any(|i| matches!(i, Inserted::Created(_)));
    let created: Vec<&Task> = inserted
        .iter()
        .filter_map(|i| match i {
            Inserted::Created(r) => Some(&r.task),
            Inserted::Existing(_) | Inserted::Conflict(_) | Inserted::Unique(_) => None,
        })
        .collect();
    crate::publish::publish(&state, &created).await;
    let (mut tasks, mut unique_existing) = (Vec::with_capacity(inserted.len()), Vec::new());
    for i in inserted {
        match i {
            Inserted::Created(r) | Inserted::Existing(r) => tasks.push(caller.present(r.task)),
            Inserted::Unique(r) => {
                unique_existing.push(tasks.len());
                tasks.push(submit::unique::visible_holder(&caller, r.task)?);
            }
            Inserted::Conflict(_) => {} // insert_batch refuses the whole batch on a conflict
        }
    }
    let code = if any_created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((code, Json(BatchResponse { tasks, unique_existing })))
}

/// The `Idempotency-Key` header of a batch of `count` tasks, checked: task `i`
/// without an id of its own gets the id `<key>.<i>`, so a repeat of the batch
/// finds the same tasks (200) and a changed one is a 409. The key follows the
/// task id rule, short enough for the longest id it makes to follow it too.
fn idempotency_key(headers: &HeaderMap, count: usize) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    if let Ok(k) = v.to_str() {
        // The tasks' ids `<key>.<i>` must not fall under a reserved prefix.
        submit::reserved(k, "Idempotency-Key")?;
    }
    let key = v.to_str().ok().filter(|k| TaskId::check(k).is_ok());
    let longest = key.map(|k| format!("{k}.{}", count.saturating_sub(1)));
    match (key, longest) {
        (Some(k), Some(id)) if TaskId::check(&id).is_ok() => Ok(Some(k)),
        _ => Err(ApiError::bad_request(
            "Idempotency-Key",
            format!(
                "Idempotency-Key must be {}, and short enough that '<key>.{}' is too (the id of the last task)",
                TaskId::RULE,
                count.saturating_sub(1)
            ),
        )),
    }
}
