//! `POST /tasks` and `GET /tasks/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use yadtq_core::envelope::{Envelope, ENVELOPE_VERSION};
use yadtq_core::model::Task;
use yadtq_core::store::{self, Inserted, NewTask};
use yadtq_core::validate;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit::{self, SubmitRequest};

/// Submit a task.
///
/// Records the task (`queued`), sends it to Kafka and waits briefly for the
/// broker's ack (a task whose ack is late is sent by the publisher; it is
/// accepted either way). A client-chosen id (`id`, `task-id` or the
/// `Idempotency-Key` header) makes submission idempotent: the same id and body
/// again returns the original task with 200; the same id with a different body is 409.
#[utoipa::path(
    post, path = "/tasks", tag = "tasks",
    request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Client-chosen task id; same as `id` in the body")),
    responses(
        (status = 202, description = "Accepted; `Location` names the task", body = Task,
         headers(("Location" = String, description = "/tasks/{id}"))),
        (status = 200, description = "This id was submitted before with the same body: the original task", body = Task),
        (status = 400, description = "Invalid body; `field` names the culprit", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This id was submitted before with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {} bytes", state.cfg.limits.max_body_bytes),
                Some("body"),
            )
        } else {
            ApiError::bad_request("body", e.body_text())
        }
    })?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key", "Idempotency-Key must be visible ASCII"))?,
        ),
        None => None,
    };
    let t = submit::validate(&body, key, &state.cfg.limits)?;
    let inserted = store::insert_task(
        &state.pool,
        &NewTask {
            id: &t.id,
            name: &t.name,
            args: &t.args,
            kwargs: &t.kwargs,
            queue: &t.queue,
            max_retries: t.max_retries,
            timeout_seconds: t.timeout_seconds,
            request_hash: &t.request_hash,
        },
    )
    .await?;
    let row = match inserted {
        Inserted::Existing(row) if row.request_hash == t.request_hash => {
            return Ok((StatusCode::OK, location(&row.task.id), Json(row.task)).into_response());
        }
        Inserted::Existing(_) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("task id '{}' was already submitted with a different task, args, kwargs or queue", t.id),
                Some("id"),
            ));
        }
        Inserted::Created(row) => row,
    };
    publish(&state, &row.task).await;
    Ok((StatusCode::ACCEPTED, location(&row.task.id), Json(row.task)).into_response())
}

fn location(id: &str) -> [(header::HeaderName, String); 1] {
    [(header::LOCATION, format!("/tasks/{id}"))]
}

/// Sends the task's envelope and waits at most the publish wait for the ack;
/// the delivery goes on in the background and marks the row published when the
/// ack comes, else the publisher sends it later.
async fn publish(state: &AppState, task: &Task) {
    let env = Envelope {
        v: ENVELOPE_VERSION,
        id: task.id.clone(),
        task: task.task.clone(),
        args: task.args.clone(),
        kwargs: task.kwargs.clone(),
        queue: task.queue.clone(),
        attempt: 0,
        submitted_at: task.created_at,
    };
    let (producer, pool, topic) = (state.producer.clone(), state.pool.clone(), state.topic.clone());
    let delivery = tokio::spawn(async move {
        match yadtq_core::kafka::send_envelope(&producer, &topic, &env).await {
            Ok(()) => {
                if let Err(e) = store::mark_published(&pool, std::slice::from_ref(&env.id)).await {
                    tracing::warn!(id = %env.id, error = %e, "cannot mark task published; the publisher will resend it");
                }
            }
            Err(e) => {
                tracing::warn!(id = %env.id, error = %e, "task not sent to Kafka; the publisher will send it")
            }
        }
    });
    if tokio::time::timeout(state.cfg.publish_wait(), delivery).await.is_err() {
        tracing::debug!(id = %task.id, "no broker ack within the publish wait; answering anyway");
    }
}

/// Read a task: status, result or error, attempts and timestamps.
#[utoipa::path(
    get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id: a UUID or a client-chosen id (1-128 of letters, digits, `._:-`)")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task was ever submitted with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Task>, ApiError> {
    if !validate::is_valid_task_id(&id) {
        return Err(ApiError::bad_request(
            "id",
            format!("task id must be 1-{} characters of letters, digits and ._:-", validate::MAX_TASK_ID_LEN),
        ));
    }
    match store::get_task(&state.pool, &id).await? {
        Some(row) => Ok(Json(row.task)),
        None => Err(ApiError::not_found(format!("no task with id '{id}'"))),
    }
}
