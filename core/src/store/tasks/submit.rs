//! Submission: inserting validated tasks, one batch all or nothing or
//! independent tasks each with its own result; an id submitted again with
//! the same request is returned unchanged (idempotent submission).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::{Backoff, TaskRecord, TaskRow};
use crate::model::TaskStatus;
use crate::names::{QueueName, TaskId, TaskKey, TaskName, Tenant};
use crate::store::unique::Unique;
use crate::store::StoreError;
use crate::telemetry::TraceContext;

/// A task to insert, already validated by the gateway.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The tenant's own id (server UUID or client-chosen); the stored key
    /// is [`NewTask::key`].
    pub id: TaskId,
    /// Tenant that submitted it.
    pub tenant: Tenant,
    /// Handler name.
    pub name: TaskName,
    /// JSON array text, kept as sent.
    pub args: String,
    /// JSON object text, kept as sent.
    pub kwargs: String,
    /// Queue name.
    pub queue: QueueName,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Per-attempt timeout in seconds.
    pub timeout_seconds: f64,
    /// Not before this time (countdown / eta): the task starts `scheduled`.
    pub run_at: Option<DateTime<Utc>>,
    /// Retry backoff.
    pub retry_backoff: Backoff,
    /// Hash of the request, compared when the id is submitted again.
    pub request_hash: String,
    /// The gateway's `submit` span, under the submitter's trace when it sent one.
    pub trace: Option<TraceContext>,
    /// At most one task holding this key ([`crate::store::unique`]); `None`: no key.
    pub unique: Option<Unique>,
}

impl NewTask {
    /// The stored key: [`TaskKey::new`] of its tenant and id.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.tenant, &self.id)
    }
}

/// Result of an insert for one task.
#[derive(Debug)]
pub enum Inserted {
    /// The row was created (`queued`, or `scheduled` with a `run_at`).
    Created(TaskRow),
    /// A task with this id and the same request already existed; returned unchanged.
    Existing(TaskRow),
    /// A task with this id exists with a different request (409); nothing changed.
    Conflict(TaskKey),
    /// Another task holds the submission's unique key: returned unchanged,
    /// nothing created. Wins over a task found by the submission's id.
    Unique(TaskRow),
}

/// Result of an all-or-nothing batch insert.
#[derive(Debug)]
pub enum BatchInsert {
    /// Every task was created or found unchanged, in input order.
    Done(Vec<Inserted>),
    /// This id exists with a different request: nothing was inserted.
    Conflict(TaskKey),
}

/// Inserts a batch in one transaction (one `UNNEST` statement), all or
/// nothing. An id that already exists with the same request hash is returned
/// as [`Inserted::Existing`] (idempotent submission).
pub async fn insert_batch(pool: &PgPool, tasks: &[NewTask]) -> Result<BatchInsert, StoreError> {
    let mut tx = pool.begin().await?;
    let mut out = crate::store::unique::insert_in(&mut tx, tasks).await?;
    if let Some(id) = out.iter().find_map(|i| match i {
        Inserted::Conflict(id) => Some(id.clone()),
        _ => None,
    }) {
        return Ok(BatchInsert::Conflict(id)); // dropping the transaction rolls the batch back
    }
    let changed = crate::store::limits::settle_inserted(&mut tx, tasks, &mut out, false).await?;
    tx.commit().await?;
    crate::store::events::notify_changed(pool, changed);
    Ok(BatchInsert::Done(out))
}

/// Inserts tasks that are independent of each other (concurrent submissions
/// gathered by the gateway) with one statement and one commit; each gets its
/// own result, conflicts included.
///
/// Rows a limit's `tasks` list names are inserted `held` (autocommitted
/// with the others) and then attached and released, autocommitted too
/// (`store::limits::settle`: three statements while no limit is reached); each is returned as committed: `queued` when released, else
/// `held` (publish only the `queued` rows). Plain rows cost nothing more.
pub async fn insert_each(pool: &PgPool, tasks: &[NewTask]) -> Result<Vec<Inserted>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut out = crate::store::unique::insert_in(&mut conn, tasks).await?;
    if out.iter().any(|i| matches!(i, Inserted::Created(r) if r.limited)) {
        let changed = crate::store::limits::settle_inserted(&mut conn, tasks, &mut out, true).await?;
        crate::store::events::notify_changed(pool, changed);
    }
    Ok(out)
}

/// Inserts `tasks` in one statement; returns the rows created, by id.
/// Rows with a unique key are inserted first, in key order, then the others
/// in id order, as every other batch statement locks them: two inserts
/// sharing ids (or keys) in different orders would each wait for the other's
/// uncommitted row (a deadlock PostgreSQL breaks after a second by failing
/// one). A row that collides on its id or its unique key inserts nothing
/// (`ON CONFLICT DO NOTHING`); [`crate::store::unique::insert_in`] resolves it.
pub(in crate::store) async fn insert_rows(
    conn: &mut PgConnection,
    tasks: &[NewTask],
) -> Result<HashMap<TaskKey, TaskRow>, StoreError> {
    insert_rows_waiting(conn, tasks, &vec![false; tasks.len()]).await
}

/// [`insert_rows`], where a task whose `waiting` flag is set starts
/// `waiting` (a workflow node with parents, `store::workflows`).
///
/// A task whose name a limit of its tenant lists in `tasks` (one probe of
/// `limit_tasks`'s primary key per row, in this statement, so no
/// read-then-insert race) is inserted `limited`, and `held` instead of
/// `queued`: it is never published before [`crate::store::limits::settle`]
/// gives it its memberships and releases it (the caller does, right after;
/// the leader's pass when the caller crashed in between).
pub(in crate::store) async fn insert_rows_waiting(
    conn: &mut PgConnection,
    tasks: &[NewTask],
    waiting: &[bool],
) -> Result<HashMap<TaskKey, TaskRow>, StoreError> {
    let col = |f: fn(&NewTask) -> String| tasks.iter().map(f).collect::<Vec<String>>();
    let unique = |f: fn(&NewTask, &Unique) -> Option<String>| {
        tasks.iter().map(|t| t.unique.as_ref().and_then(|u| f(t, u))).collect::<Vec<Option<String>>>()
    };
    let rows = task_query!(
        "INSERT INTO tasks (id, name, args, kwargs, queue, status, max_retries, timeout_seconds, run_at,
                            retry_backoff_base, retry_backoff_cap, request_hash, tenant, traceparent, tracestate,
                            unique_key, unique_states, limited)
         SELECT id, name, args::json, kwargs::json, queue,
                CASE WHEN w THEN 'waiting' WHEN run_at IS NOT NULL THEN 'scheduled' WHEN lim THEN 'held' ELSE 'queued' END,
                max_retries, timeout_seconds, run_at, base, cap, hash, tenant, tp, ts,
                CASE WHEN ubase IS NOT NULL THEN yadtq_unique_key(ubase, ufor) END AS ukey,
                string_to_array(ustates, ','), lim
         FROM (SELECT t.*, EXISTS (SELECT 1 FROM limit_tasks lt WHERE lt.tenant = t.tenant AND lt.task_name = t.name) AS lim
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[],
                           $8::timestamptz[], $9::float8[], $10::float8[], $11::text[], $12::text[], $13::text[],
                           $14::text[], $15::text[], $16::bigint[], $17::text[], $18::bool[])
                    AS t(id, name, args, kwargs, queue, max_retries, timeout_seconds, run_at, base, cap, hash, tenant,
                         tp, ts, ubase, ufor, ustates, w)) t
         ORDER BY ukey, id
         ON CONFLICT DO NOTHING RETURNING ",
        "",
        &col(|t| t.key().into_string()),
        &col(|t| t.name.to_string()),
        &col(|t| t.args.clone()),
        &col(|t| t.kwargs.clone()),
        &col(|t| t.queue.to_string()),
        &tasks.iter().map(|t| t.max_retries).collect::<Vec<_>>(),
        &tasks.iter().map(|t| t.timeout_seconds).collect::<Vec<_>>(),
        &tasks.iter().map(|t| t.run_at).collect::<Vec<_>>() as &[Option<DateTime<Utc>>],
        &tasks.iter().map(|t| t.retry_backoff.base_seconds).collect::<Vec<_>>() as &[Option<f64>],
        &tasks.iter().map(|t| t.retry_backoff.cap_seconds).collect::<Vec<_>>() as &[Option<f64>],
        &col(|t| t.request_hash.clone()),
        &col(|t| t.tenant.to_string()),
        &tasks.iter().map(|t| t.trace.as_ref().map(|c| c.traceparent.clone())).collect::<Vec<_>>()
            as &[Option<String>],
        &tasks.iter().map(|t| t.trace.as_ref().map(|c| c.tracestate.clone())).collect::<Vec<_>>()
            as &[Option<String>],
        &unique(|t, u| Some(u.base(&t.tenant, &t.name))) as &[Option<String>],
        &tasks.iter().map(|t| t.unique.as_ref().and_then(|u| u.for_seconds)).collect::<Vec<_>>() as &[Option<i64>],
        &unique(|_, u| u.states()) as &[Option<String>],
        waiting,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(TaskRow::from).map(|r| (r.task.key.clone(), r)).collect())
}
