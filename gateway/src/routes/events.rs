//! `GET /tasks/{id}/events`: server-sent events, one per status or progress
//! change, ending after a terminal status.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use yadtq_core::auth::Scope;
use yadtq_core::model::Task;

use super::tasks::{load, TaskId};
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Stream a task's changes as server-sent events. The first event is the
/// current state; each later one follows a status change (`event: status`) or
/// a progress report (`event: progress`); the data is the task as `GET
/// /tasks/{id}` returns it. The stream ends after a terminal status. Works
/// through any gateway: changes reach every gateway through PostgreSQL NOTIFY.
#[utoipa::path(
    get, path = "/tasks/{id}/events", tag = "tasks", operation_id = "streamTaskEvents",
    params(("id" = String, Path, description = "Task id", pattern = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$")),
    responses(
        (status = 200, description = "Server-sent events. Each event is `event: status` (the first one, and each \
         status change) or `event: progress` (a progress report), and its `data` is one line of JSON: the task as \
         `GET /tasks/{id}` returns it (schema `Task`). Comment lines (`:`) keep the connection alive. The stream \
         ends after the event carrying a terminal status. The schema describes one event.",
         body = String, content_type = "text/event-stream"),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    TaskId(id): TaskId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Scope::Read)?;
    let events = state.events.subscribe(&caller.task_key(&id));
    let first = load(&state, &caller, &id).await?;
    struct Cursor {
        state: AppState,
        caller: Caller,
        id: String,
        events: crate::notify::Subscription,
        last: Option<Task>,
        pending: Option<Task>,
        done: bool,
    }
    let start = Cursor { state, caller, id, events, last: None, pending: Some(first), done: false };
    let s = stream::unfold(start, |mut c| async move {
        loop {
            if c.done {
                return None;
            }
            if let Some(task) = c.pending.take() {
                let kind = match &c.last {
                    None => "status",
                    Some(prev) if prev.status != task.status => "status",
                    Some(prev) if prev.progress != task.progress => "progress",
                    Some(_) => continue,
                };
                c.done = task.status.is_terminal();
                let event =
                    Event::default().event(kind).json_data(c.caller.present(task.clone())).expect("task serialises");
                c.last = Some(task);
                return Some((Ok(event), c));
            }
            c.events.next().await;
            match load(&c.state, &c.caller, &c.id).await {
                Ok(task) => c.pending = Some(task),
                Err(e) => tracing::debug!(id = %c.id, error = ?e, "event stream: cannot read task; retrying"),
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}
