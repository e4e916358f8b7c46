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
use crate::store::limits::plan::{self, Plan};
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
/// as [`Inserted::Existing`] (idempotent submission). Tasks a limit's
/// `tasks` list names are admitted as [`insert_each`] says.
pub async fn insert_batch(pool: &PgPool, tasks: &[NewTask]) -> Result<BatchInsert, StoreError> {
    let db = plan::database_of(pool);
    let mut tx = pool.begin().await?;
    let plans = plan::plan(&mut tx, &db, tasks, &[]).await?.expect("no limit is named, so none is unknown");
    let turn = plan::turn(&db, &plans).await;
    let mut out = crate::store::unique::insert_in(&mut tx, tasks, &plans).await?;
    drop(turn);
    if let Some(id) = out.iter().find_map(|i| match i {
        Inserted::Conflict(id) => Some(id.clone()),
        _ => None,
    }) {
        return Ok(BatchInsert::Conflict(id)); // dropping the transaction rolls the batch back
    }
    plan::check(&db, &plans, &out);
    let changed = crate::store::limits::settle_inserted(&mut tx, tasks, &mut out, false).await?;
    tx.commit().await?;
    crate::store::events::notify_changed(pool, changed);
    Ok(BatchInsert::Done(out))
}

/// Inserts tasks that are independent of each other (concurrent submissions
/// gathered by the gateway) with one statement and one commit; each gets its
/// own result, conflicts included.
///
/// Rows a limit's `tasks` list names take their limits in the same
/// statement when this process knows the list ([`plan::plan`], read again
/// every second): `queued` at once, holding their slots, while no limit is
/// reached. Otherwise (a list it does not know yet, a limit reached) they
/// are inserted `held` (autocommitted with the others) and then attached
/// and released, autocommitted too (`store::limits::settle`). Each is
/// returned as committed: `queued` when released, else `held` (publish only
/// the `queued` rows). Plain rows cost nothing more but a probe.
pub async fn insert_each(pool: &PgPool, tasks: &[NewTask]) -> Result<Vec<Inserted>, StoreError> {
    let db = plan::database_of(pool);
    let mut conn = pool.acquire().await?;
    let plans = plan::plan(&mut conn, &db, tasks, &[]).await?.expect("no limit is named, so none is unknown");
    let turn = plan::turn(&db, &plans).await;
    let mut out = crate::store::unique::insert_in(&mut conn, tasks, &plans).await?;
    drop(turn);
    plan::check(&db, &plans, &out);
    if out.iter().any(|i| matches!(i, Inserted::Created(r) if crate::store::limits::unsettled(r))) {
        let changed = crate::store::limits::settle_inserted(&mut conn, tasks, &mut out, true).await?;
        crate::store::events::notify_changed(pool, changed);
    }
    Ok(out)
}

/// [`insert_rows_planned`] without waiting flags or plans.
#[cfg(test)]
pub(in crate::store) async fn insert_rows(
    conn: &mut PgConnection,
    tasks: &[NewTask],
) -> Result<HashMap<TaskKey, TaskRow>, StoreError> {
    insert_rows_waiting(conn, tasks, &[]).await
}

/// Inserts `tasks` in one statement; returns the rows created, by id.
/// Rows with a unique key are inserted first, in key order, then the others
/// in id order, as every other batch statement locks them: two inserts
/// sharing ids (or keys) in different orders would each wait for the other's
/// uncommitted row (a deadlock PostgreSQL breaks after a second by failing
/// one). A row that collides on its id or its unique key inserts nothing
/// (`ON CONFLICT DO NOTHING`); [`crate::store::unique::insert_in`] resolves it.
/// A task whose `waiting` flag is set starts `waiting` (a workflow node
/// with parents, `store::workflows`); missing flags are `false`.
pub(in crate::store) async fn insert_rows_waiting(
    conn: &mut PgConnection,
    tasks: &[NewTask],
    waiting: &[bool],
) -> Result<HashMap<TaskKey, TaskRow>, StoreError> {
    insert_rows_planned(conn, tasks, waiting, &[]).await
}

/// [`task_query!`] with an [`InsertColumns`]' eighteen arrays as `$1` to
/// `$18`, then the `extra` parameters.
macro_rules! insert_query {
    ($before:literal, $after:literal, $c:expr $(, $extra:expr)* $(,)?) => {
        task_query!(
            $before,
            $after,
            &$c.ids,
            &$c.names,
            &$c.args,
            &$c.kwargs,
            &$c.queues,
            &$c.max_retries,
            &$c.timeouts,
            &$c.run_at as &[Option<DateTime<Utc>>],
            &$c.backoff_base as &[Option<f64>],
            &$c.backoff_cap as &[Option<f64>],
            &$c.hashes,
            &$c.tenants,
            &$c.traceparents as &[Option<String>],
            &$c.tracestates as &[Option<String>],
            &$c.unique_bases as &[Option<String>],
            &$c.unique_for as &[Option<i64>],
            &$c.unique_states as &[Option<String>],
            &$c.waiting
            $(, $extra)*
        )
    };
}

/// [`insert_rows_waiting`] with the tasks' limit plans (`plans[i]` for
/// `tasks[i]`, missing: none; [`crate::store::limits::plan`]).
///
/// A task whose name a limit of its tenant lists in `tasks` (one probe of
/// `limit_tasks`'s primary key per row, in this statement, so no
/// read-then-insert race), or that has a plan, is inserted `limited`, and
/// `held` instead of `queued`: it is never published before
/// [`crate::store::limits::settle`] gives it its memberships and releases it
/// (the caller does, right after; the leader's pass when the caller crashed
/// in between). Except on the fast path: a task whose plan the statement
/// confirms (its buckets exist, and are exactly of its tenant's limits
/// that it names or whose `tasks` list names it) gets its memberships in
/// this statement, and is inserted `queued`, holding its slots, when every
/// bucket has room for all the batch's new tasks in it (concurrency only,
/// no rate, no held task waiting; room read from the bucket's `taken`,
/// then confirmed under the bucket's lock, taken in id order after the
/// inserts, as the slots are added to it: migrations 0022, 0024; when the
/// lock shows no room, the function inserts the rows again, admitting
/// none), else `held` with its memberships (the caller's settle then
/// releases what has room). A bucket whose `taken` grew by
/// `yadtq_limits_stale_slots()` since its last count takes the slow path
/// too, which counts it (migration 0023).
pub(in crate::store) async fn insert_rows_planned(
    conn: &mut PgConnection,
    tasks: &[NewTask],
    waiting: &[bool],
    plans: &[Option<Plan>],
) -> Result<HashMap<TaskKey, TaskRow>, StoreError> {
    let c = InsertColumns::of(tasks, waiting, plans);
    // A batch without plans (every plain one) takes the short statement:
    // the planned one's CTEs cost PostgreSQL a quarter more per insert. The
    // planned one is a function (migration 0024): planned once per session,
    // not on every call, and taking its buckets' locks after its inserts.
    let rows = if plans.iter().all(Option::is_none) {
        insert_query!(
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
            c,
        )
        .fetch_all(&mut *conn)
        .await?
    } else {
        insert_query!(
            "SELECT ",
            " FROM yadtq_tasks_insert_planned($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                                              $17, $18, $19, $20, $21)",
            c,
            &c.plan_buckets as &[Option<String>],
            &c.plan_limits as &[Option<String>],
            &c.plan_listed as &[Option<String>],
        )
        .fetch_all(&mut *conn)
        .await?
    };
    Ok(rows.into_iter().map(TaskRow::from).map(|r| (r.task.key.clone(), r)).collect())
}

/// The insert statements' array parameters, one entry per task.
struct InsertColumns {
    ids: Vec<String>,
    names: Vec<String>,
    args: Vec<String>,
    kwargs: Vec<String>,
    queues: Vec<String>,
    max_retries: Vec<i32>,
    timeouts: Vec<f64>,
    run_at: Vec<Option<DateTime<Utc>>>,
    backoff_base: Vec<Option<f64>>,
    backoff_cap: Vec<Option<f64>>,
    hashes: Vec<String>,
    tenants: Vec<String>,
    traceparents: Vec<Option<String>>,
    tracestates: Vec<Option<String>>,
    unique_bases: Vec<Option<String>>,
    unique_for: Vec<Option<i64>>,
    unique_states: Vec<Option<String>>,
    waiting: Vec<bool>,
    plan_buckets: Vec<Option<String>>,
    plan_limits: Vec<Option<String>>,
    plan_listed: Vec<Option<String>>,
}

impl InsertColumns {
    fn of(tasks: &[NewTask], waiting: &[bool], plans: &[Option<Plan>]) -> Self {
        let col = |f: fn(&NewTask) -> String| tasks.iter().map(f).collect::<Vec<String>>();
        let unique = |f: fn(&NewTask, &Unique) -> Option<String>| {
            tasks.iter().map(|t| t.unique.as_ref().and_then(|u| f(t, u))).collect::<Vec<Option<String>>>()
        };
        let plan = |f: fn(&Plan) -> &str| {
            (0..tasks.len())
                .map(|i| plans.get(i).and_then(Option::as_ref).map(|p| f(p).to_string()))
                .collect::<Vec<Option<String>>>()
        };
        Self {
            ids: col(|t| t.key().into_string()),
            names: col(|t| t.name.to_string()),
            args: col(|t| t.args.clone()),
            kwargs: col(|t| t.kwargs.clone()),
            queues: col(|t| t.queue.to_string()),
            max_retries: tasks.iter().map(|t| t.max_retries).collect(),
            timeouts: tasks.iter().map(|t| t.timeout_seconds).collect(),
            run_at: tasks.iter().map(|t| t.run_at).collect(),
            backoff_base: tasks.iter().map(|t| t.retry_backoff.base_seconds).collect(),
            backoff_cap: tasks.iter().map(|t| t.retry_backoff.cap_seconds).collect(),
            hashes: col(|t| t.request_hash.clone()),
            tenants: col(|t| t.tenant.to_string()),
            traceparents: tasks.iter().map(|t| t.trace.as_ref().map(|c| c.traceparent.clone())).collect(),
            tracestates: tasks.iter().map(|t| t.trace.as_ref().map(|c| c.tracestate.clone())).collect(),
            unique_bases: unique(|t, u| Some(u.base(&t.tenant, &t.name))),
            unique_for: tasks.iter().map(|t| t.unique.as_ref().and_then(|u| u.for_seconds)).collect(),
            unique_states: unique(|_, u| u.states()),
            waiting: (0..tasks.len()).map(|i| waiting.get(i).copied().unwrap_or(false)).collect(),
            plan_buckets: plan(|p| &p.buckets),
            plan_limits: plan(|p| &p.limits),
            plan_listed: plan(|p| &p.listed),
        }
    }
}
