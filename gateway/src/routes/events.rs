//! `GET /tasks/{id}/events`: server-sent events, one per status or progress
//! change, ending after a terminal status.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use yadtq_core::auth::Scope;
use yadtq_core::model::Task;

use super::tasks::TaskIdPath;
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
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Server-sent events. Each event is `event: status` (the first one, and each \
         status change) or `event: progress` (a progress report), and its `data` is one line of JSON: the task as \
         `GET /tasks/{id}` returns it (schema `Task`). Comment lines (`:`) keep the connection alive. The stream \
         ends after the event carrying a terminal status. The schema describes one event.",
         body = String, content_type = "text/event-stream"),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or the gateway holds its most long-polls and event streams (`--max-waiters`); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    TaskIdPath(id): TaskIdPath,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Scope::Read)?;
    let place = state.edge.waiter()?;
    // Every read is shared with the task's other waiters on this gateway (crate::notify).
    let mut events = state.events.subscribe(&caller.task_key(&id));
    let first = super::tasks::first_read(&mut events, &caller, &id).await?;
    struct Cursor {
        caller: Caller,
        events: crate::notify::Subscription,
        last: Option<Arc<Task>>,
        pending: Option<Arc<Task>>,
        done: bool,
        _place: crate::edge::Permit,
    }
    let start = Cursor { caller, events, last: None, pending: Some(first), done: false, _place: place };
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
                let event = Event::default()
                    .event(kind)
                    .json_data(c.caller.present(Task::clone(&task)))
                    .expect("task serialises");
                c.last = Some(task);
                return Some((Ok(event), c));
            }
            // The task is gone (the cleaner deleted it): the stream ends.
            c.pending = Some(c.events.next().await.ok()?);
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}
