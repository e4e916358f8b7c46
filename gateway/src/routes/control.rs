//! `POST /tasks/{id}/cancel`, `POST /tasks/{id}/retry` and `GET /tasks/{id}/attempts`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use yadtq_core::model::{Attempt, Task};
use yadtq_core::store::{self, CancelResult};

use super::tasks::check_id;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Cancel a task. `queued` and `scheduled` tasks become `cancelled` at once
/// (200); a `processing` task gets a cancel request (202) that its worker acts
/// on within one heartbeat, aborting the handler, and it becomes `cancelled`.
#[utoipa::path(
    post, path = "/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled", body = Task),
        (status = 202, description = "Running: cancel requested; watch the task or its events", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    check_id(&id)?;
    match store::cancel_task(&state.pool, &id).await? {
        CancelResult::Cancelled(row) => Ok((StatusCode::OK, Json(row.task))),
        CancelResult::Requested(row) => Ok((StatusCode::ACCEPTED, Json(row.task))),
        CancelResult::Terminal(row) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("task '{id}' is already {}", row.task.status.as_str()),
            Some("id"),
        )),
        CancelResult::NotFound => Err(ApiError::not_found(format!("no task with id '{id}'"))),
    }
}

/// Run a `failed` or `cancelled` task again, as a new attempt (its retry budget
/// is raised by one when spent).
#[utoipa::path(
    post, path = "/tasks/{id}/retry", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 202, description = "Queued again", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not failed or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    check_id(&id)?;
    match store::retry_task(&state.pool, &id).await? {
        Ok(Some(row)) => {
            crate::publish::publish(&state, &[&row.task]).await;
            Ok((StatusCode::ACCEPTED, Json(row.task)))
        }
        Ok(None) => Err(ApiError::not_found(format!("no task with id '{id}'"))),
        Err(row) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("task '{id}' is {}; only failed or cancelled tasks can be retried", row.task.status.as_str()),
            Some("id"),
        )),
    }
}

/// The attempt history of a task: one entry per claim, oldest first.
#[utoipa::path(
    get, path = "/tasks/{id}/attempts", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Attempts", body = Vec<Attempt>),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn attempts(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<Attempt>>, ApiError> {
    check_id(&id)?;
    super::tasks::load(&state, &id).await?;
    Ok(Json(store::list_attempts(&state.pool, &id).await?))
}
