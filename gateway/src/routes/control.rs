//! `POST /tasks/{id}/cancel`, `POST /tasks/{id}/retry` and `GET /tasks/{id}/attempts`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use yadtq_core::auth::Scope;
use yadtq_core::kafka::UNSENDABLE_KINDS;
use yadtq_core::model::{Attempt, Task, TaskStatus};
use yadtq_core::names::{TaskId, TaskKey};
use yadtq_core::store::tasks::{self, CancelResult, RetryResult};
use yadtq_core::store::workflows::{self, NodeRetry};

use super::tasks::TaskIdPath;
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Cancel a task. `waiting`, `held`, `queued` and `scheduled` tasks become `cancelled` at once
/// (200); a `processing` task gets a cancel request (202) that its worker acts
/// on within one heartbeat, aborting the handler, and it becomes `cancelled`.
/// Cancelling a cancelled task answers 200 with it, so a request repeated
/// after a lost answer (the SDKs and the CLI retry cancels) is not an error.
/// A task in a status this release does not know (a newer release's) gets a
/// cancel request too (202, status unchanged), which the
/// release that knows the status honours.
#[utoipa::path(
    post, path = "/tasks/{id}/cancel", tag = "tasks", operation_id = "cancelTask",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled (now, or already before: a repeated cancel is not an error)", body = Task),
        (status = 202, description = "Running (or in a status this release does not know): cancel requested; watch the task or its events", body = Task),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished (`success` or `failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let key = visible_key(&state, &caller, &id, Scope::Operate).await?;
    let (result, released) = tasks::cancel_releasing(&state.pool, &key).await?;
    crate::publish::publish_released(&state, released);
    match result {
        CancelResult::Cancelled(row) => Ok((StatusCode::OK, Json(caller.present(row.task)))),
        CancelResult::Terminal(row) if row.task.status == TaskStatus::Cancelled => {
            Ok((StatusCode::OK, Json(caller.present(row.task))))
        }
        CancelResult::Requested(row) => Ok((StatusCode::ACCEPTED, Json(caller.present(row.task)))),
        CancelResult::Terminal(row) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("task '{id}' is already {}", row.task.status.as_str()),
            Some("id"),
        )),
        CancelResult::NotFound => Err(ApiError::not_found(format!("no task with id '{id}'"))),
    }
}

/// Run a `failed` or `cancelled` task again, as a new attempt (its retry budget
/// is raised by one when spent). A task that failed because Kafka can never
/// take its record (`record_too_large`, `unpublishable`) is refused with 409,
/// and so is a task whose unique key another task holds now (`field` is `unique`).
#[utoipa::path(
    post, path = "/tasks/{id}/retry", tag = "tasks", operation_id = "retryTask",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 202, description = "Queued again", body = Task),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not failed or cancelled, or failed because Kafka can never take its record (`record_too_large`, `unpublishable`) (`field` is `id`); a workflow node cancelled because a parent did not succeed, whose parents have not all succeeded since (`field` is `id`); or another task holds its unique key now (`field` is `unique`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let key = visible_key(&state, &caller, &id, Scope::Operate).await?;
    let result = match workflows::retry(&state.pool, &key).await? {
        NodeRetry::NotANode => tasks::retry(&state.pool, &key).await?,
        NodeRetry::Done(result, _) => *result,
        NodeRetry::ParentsNotSucceeded => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("task '{id}' was cancelled because a parent did not succeed; retry that parent first"),
                Some("id"),
            ))
        }
    };
    match result {
        RetryResult::Requeued(row) => {
            crate::publish::publish(&state, &[&row.task]).await;
            Ok((StatusCode::ACCEPTED, Json(caller.present(row.task))))
        }
        RetryResult::NotFound => Err(ApiError::not_found(format!("no task with id '{id}'"))),
        RetryResult::NotRetryable(row) => {
            Err(ApiError::new(StatusCode::CONFLICT, not_retryable(&id, &row.task), Some("id")))
        }
        RetryResult::UniqueHeld => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("another task holds the unique key of task '{id}' now; retry it once that task has finished"),
            Some("unique"),
        )),
    }
}

/// The stored key of the caller's task `id`, once the caller's key has
/// `scope` and the task exists in a queue it may see: 403 without the
/// scope, 404 for a task it may not see (as for one that does not exist).
async fn visible_key(state: &AppState, caller: &Caller, id: &TaskId, scope: Scope) -> Result<TaskKey, ApiError> {
    caller.require(scope)?;
    super::tasks::load(state, caller, id).await?;
    Ok(caller.task_key(id))
}

/// Why `task` (the caller's `id`) cannot be retried: its status, or a record
/// Kafka can never take.
fn not_retryable(id: &str, task: &Task) -> String {
    match &task.error {
        Some(e) if task.status == TaskStatus::Failed && UNSENDABLE_KINDS.contains(&e.kind.as_str()) => format!(
            "task '{id}' failed with {} ({}): its Kafka record can never be sent, so a retry would fail the \
             same way; submit it again with smaller args or kwargs",
            e.kind, e.message
        ),
        _ => format!("task '{id}' is {}; only failed or cancelled tasks can be retried", task.status.as_str()),
    }
}

/// The attempt history of a task: one entry per claim, oldest first.
#[utoipa::path(
    get, path = "/tasks/{id}/attempts", tag = "tasks", operation_id = "listAttempts",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Attempts", body = Vec<Attempt>),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<Vec<Attempt>>, ApiError> {
    let key = visible_key(&state, &caller, &id, Scope::Read).await?;
    let attempts = yadtq_core::store::attempts::list(&state.pool, &key).await?;
    Ok(Json(attempts.into_iter().map(|a| caller.present_attempt(a)).collect()))
}
