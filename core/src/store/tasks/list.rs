//! The listing of `GET /tasks`: one tenant's tasks, newest first, paged by
//! a keyset cursor.

use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{TaskRecord, TaskRow};
use crate::model::{Task, TaskStatus};
use crate::names::Tenant;
use crate::store::StoreError;

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Default)]
pub struct TaskFilter {
    /// Status.
    pub status: Option<TaskStatus>,
    /// Task (handler) name.
    pub task: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Worker id.
    pub worker: Option<Uuid>,
}

/// One page of [`list`].
#[derive(Debug)]
pub struct TaskPage {
    /// Newest first.
    pub tasks: Vec<Task>,
    /// Cursor of the next page (`before`), when there may be one.
    pub next: Option<i64>,
}

/// Up to `limit` tasks of `tenant` matching `f`, newest first, strictly
/// older than the `before` cursor (a `seq` from an earlier page). `queues`
/// are the queues the caller may see (`None`: all of them); a `queue` filter
/// outside them matches nothing.
///
/// Each filter has an index leading with the tenant and ending with `seq`
/// (migration 0010), so a page reads few index entries whatever the table's
/// size; `store::list_plans` checks the plans PostgreSQL chooses for this
/// very statement (found by its `store::tasks::list` marker in `.sqlx/`) on
/// 1,000,000 rows. Optional filters are written `$n IS NULL OR …`: PostgreSQL
/// plans each execution with the values bound (a custom plan), which folds
/// the unused filters away and estimates the used ones from their values; a
/// generic plan, which could use no filter's index, costs more than those
/// (its `LIMIT` is unknown), so the plan cache does not settle on it. The
/// test checks that too, after warming the statement up as a pooled
/// connection would. The visible queues are one `= ANY` filter rather than
/// one index range per queue: a per-queue subquery is planned once for every
/// queue, without the value, and picked the wrong index in that test.
///
/// Errors: [`StoreError`] when PostgreSQL fails or cannot be reached.
pub async fn list(
    pool: &PgPool,
    tenant: &Tenant,
    queues: Option<&[String]>,
    f: &TaskFilter,
    limit: i64,
    before: Option<i64>,
) -> Result<TaskPage, StoreError> {
    // PostgreSQL does not see that a queue outside the visible ones matches
    // nothing: it would read the whole tenant's index looking for a match.
    let queues = match (f.queue.as_ref(), queues) {
        (Some(q), Some(visible)) if !visible.contains(q) => return Ok(TaskPage { tasks: Vec::new(), next: None }),
        (Some(_), _) => None, // the queue filter is the narrower one
        (None, visible) => visible,
    };
    let rows = task_query!(
        "/* store::tasks::list */ SELECT ",
        " FROM tasks
         WHERE tenant = $1 AND ($2::text[] IS NULL OR queue = ANY($2))
           AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR name = $4)
           AND ($5::text IS NULL OR queue = $5) AND ($6::uuid IS NULL OR worker_id = $6)
           AND ($7::bigint IS NULL OR seq < $7)
         ORDER BY seq DESC LIMIT $8",
        tenant.as_str(),
        queues,
        f.status.as_ref().map(TaskStatus::as_str),
        f.task.as_deref(),
        f.queue.as_deref(),
        f.worker,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq) } else { None };
    Ok(TaskPage { tasks: rows.into_iter().map(|r| TaskRow::from(r).task).collect(), next })
}
