//! `POST /tasks/batch`: many tasks in one request, all or nothing.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use yadtq_core::model::Task;
use yadtq_core::store::tasks::{self, BatchInsert, Inserted};

use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit::{self, SubmitRequest};

/// Body of `POST /tasks/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The tasks, each as in `POST /tasks` (at most the configured batch size, default 1000).
    #[schema(value_type = Vec<SubmitRequest>)]
    pub tasks: Vec<Box<RawValue>>,
}

/// Answer of `POST /tasks/batch`: every task, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// The tasks as stored (an idempotent repeat returns the original).
    pub tasks: Vec<Task>,
}

/// Submit up to 1,000 tasks at once: validated together, inserted in one
/// transaction (all or nothing), sent to Kafka as one producer batch.
#[utoipa::path(
    post, path = "/tasks/batch", tag = "tasks", operation_id = "submitBatch",
    request_body = BatchRequest,
    responses(
        (status = 202, description = "All accepted", body = BatchResponse),
        (status = 200, description = "Every task was an idempotent repeat", body = BatchResponse),
        (status = 400, description = "A task is invalid; `field` is e.g. `tasks[3].args`; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An id exists with a different body; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or task count above the limit, or a task's Kafka record larger than the broker accepts (`field` is e.g. `tasks[3]`); nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A task names a task outside the catalogue or an undeclared queue; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
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
    let mut new = Vec::with_capacity(req.tasks.len());
    for (i, raw) in req.tasks.iter().enumerate() {
        let field = format!("tasks[{i}]");
        let task = submit::validate_item(raw.get().as_bytes(), None, limits).map_err(|e| e.within(&field))?;
        submit::check_record_size(&task, &state.record_limits.of(&task.queue), &field)?;
        new.push(task);
    }
    let inserted = match tasks::insert_batch(&state.pool, &new).await? {
        BatchInsert::Done(inserted) => inserted,
        BatchInsert::Conflict(id) => return Err(super::tasks::conflict(id)),
    };
    let any_created = inserted.iter().any(|i| matches!(i, Inserted::Created(_)));
    let created: Vec<&Task> = inserted
        .iter()
        .filter_map(|i| match i {
            Inserted::Created(r) => Some(&r.task),
            Inserted::Existing(_) | Inserted::Conflict(_) => None,
        })
        .collect();
    crate::publish::publish(&state, &created).await;
    let tasks = inserted
        .into_iter()
        .filter_map(|i| match i {
            Inserted::Created(r) | Inserted::Existing(r) => Some(r.task),
            Inserted::Conflict(_) => None, // insert_batch refuses the whole batch on a conflict
        })
        .collect();
    let code = if any_created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((code, Json(BatchResponse { tasks })))
}
