//! Workflows (docs/workflows.md): DAGs of tasks. A node is an ordinary row
//! of `tasks` whose id is `wf:<workflow id>:<ref>` under the tenant
//! ([`node_key`]); the `workflows`, `workflow_nodes` and `workflow_edges`
//! tables (migration 0018) hold the rest, so a task that is not a node pays
//! nothing: the paths that end tasks call [`fan_in`] with the ids that
//! ended, and it looks no further for ids that are not node ids.
//!
//! | transition | from | to | by | function |
//! |------------|------|----|----|----------|
//! | submit     | (none) | `waiting` (parents) or `queued` | gateway | [`insert`] |
//! | fan-in     | `waiting`, last parent terminal | `queued`, or `cancelled` (`parent_failed`, `on_parent_failure: cancel`) | whoever ends the parent, same transaction | [`fan_in`] |
//! | re-open    | `cancelled` (`parent_failed`) descendants of a retried node | `waiting` | API | [`retry`] |
//! | cancel     | `waiting`, `queued`, `scheduled` nodes | `cancelled`; `processing` ones cancel requested | API | [`cancel`] |
//! | repair     | `waiting` whose parents are all terminal | as fan-in | leader | [`repair`] |
//! | expire     | a workflow all terminal past retention | (deleted, nodes with it) | leader | [`delete_expired`] |
//!
//! **Fan-in.** A node's `pending` counts its parents that are not terminal.
//! The transaction that records a parent's terminal outcome (a worker's
//! outcome batch, the rescuer's `worker_lost`, an API cancel, a record Kafka
//! refuses) decrements each child by the number of its parents that ended
//! in that transaction, locking the children's node rows in id order, and
//! moves the ones that reach 0 out of `waiting`; a node cancelled that way
//! ends its own children in the same transaction ("and so on down").

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::events::notify_changed;
use super::tasks::{
    self, unpublished_query, AttemptOutcomeRecord, NewTask, Outcome, Recorded, TaskRow, Unpublished, UnpublishedRecord,
};
use super::StoreError;
use crate::model::{TaskError, TaskStatus};
use crate::names::{TaskKey, Tenant};

/// The feature level of this release, recorded by each worker
/// ([`report_level`]): [`WORKFLOWS_LEVEL`] and [`LIMITS_LEVEL`]. A gateway
/// accepts a feature only while no alive worker reports less than the
/// feature's level ([`older_processes`]).
pub const FEATURE_LEVEL: i32 = LIMITS_LEVEL;

/// The level workflows need: 1 (fan-in at every terminal outcome, parents'
/// results at claim).
pub const WORKFLOWS_LEVEL: i32 = 1;

/// The level limits need: 2 (the `held` status known; every outcome, cancel
/// and rescue frees and releases a limited task's slots; promote gated).
pub const LIMITS_LEVEL: i32 = 2;

/// Prefix of the ids of workflow nodes; reserved for them (no client may
/// submit an id under it) with the schedules' in
/// [`crate::schedule::reserved_prefix`], the one check of both.
pub(crate) const NODE_ID_PREFIX: &str = "wf:";

/// The client id of node `node_ref` of workflow `workflow` (`wf:<workflow>:<ref>`).
pub fn node_id(workflow: &str, node_ref: &str) -> String {
    format!("{NODE_ID_PREFIX}{workflow}:{node_ref}")
}

/// True when stored task key `key` is a workflow node's (its client id starts with `wf:`).
pub fn node_key(key: &TaskKey) -> bool {
    key.client_id().starts_with(NODE_ID_PREFIX)
}

/// What a node does when a parent ends other than `success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnParentFailure {
    /// End `cancelled` with error kind `parent_failed` (and so on down).
    #[default]
    Cancel,
    /// Run anyway; the handler sees which parents failed.
    Run,
}

impl OnParentFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Run => "run",
        }
    }
}

/// One node to insert.
#[derive(Debug, Clone)]
pub struct NewNode {
    /// The task; its id is the node's ([`node_id`]).
    pub task: NewTask,
    /// The node's ref within its workflow.
    pub node_ref: String,
    /// Indexes (into [`NewWorkflow::nodes`]) of its parents, no duplicates.
    pub parents: Vec<usize>,
    /// What it does when a parent fails.
    pub on_parent_failure: OnParentFailure,
}

/// A workflow to insert, already validated (refs unique, parents known, no cycle).
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// Stored key: the tenant's workflow id made a key as a task id is ([`TaskKey::new`]).
    pub key: TaskKey,
    /// Tenant.
    pub tenant: Tenant,
    /// Hash of the request, compared when the id is submitted again.
    pub request_hash: String,
    /// The nodes, in the order submitted.
    pub nodes: Vec<NewNode>,
}

/// What [`insert`] did.
#[derive(Debug)]
pub enum WorkflowInsert {
    /// Created; the nodes' rows in order (roots `queued`, the others `waiting`).
    Created(Vec<TaskRow>),
    /// This id exists with the same request: nothing changed.
    Existing,
    /// This id exists with a different request (409), or a node's id is taken.
    Conflict,
}

/// Inserts a workflow, its nodes' tasks, node rows and edges in one
/// transaction, all or nothing.
pub async fn insert(pool: &PgPool, wf: &NewWorkflow) -> Result<WorkflowInsert, StoreError> {
    let mut tx = pool.begin().await?;
    let created = sqlx::query_scalar!(
        "INSERT INTO workflows (id, tenant, request_hash) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id",
        wf.key.as_str(),
        wf.tenant.as_str(),
        wf.request_hash
    )
    .fetch_optional(&mut *tx)
    .await?;
    if created.is_none() {
        let hash = sqlx::query_scalar!("SELECT request_hash FROM workflows WHERE id = $1", wf.key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        return Ok(if hash.as_deref() == Some(wf.request_hash.as_str()) {
            WorkflowInsert::Existing
        } else {
            WorkflowInsert::Conflict
        });
    }
    let new: Vec<NewTask> = wf.nodes.iter().map(|n| n.task.clone()).collect();
    let waiting: Vec<bool> = wf.nodes.iter().map(|n| !n.parents.is_empty()).collect();
    let mut created = tasks::insert_rows_waiting(&mut tx, &new, &waiting).await?;
    let keys: Vec<TaskKey> = new.iter().map(NewTask::key).collect();
    let mut rows = Vec::with_capacity(new.len());
    for key in &keys {
        match created.remove(key) {
            Some(row) => rows.push(row),
            // A node id already taken (only by a task stored before `wf:` was reserved).
            None => return Ok(WorkflowInsert::Conflict),
        }
    }
    let ids: Vec<&str> = keys.iter().map(TaskKey::as_str).collect();
    let refs: Vec<&str> = wf.nodes.iter().map(|n| n.node_ref.as_str()).collect();
    let pending: Vec<i32> = wf.nodes.iter().map(|n| n.parents.len() as i32).collect();
    let policies: Vec<&str> = wf.nodes.iter().map(|n| n.on_parent_failure.as_str()).collect();
    sqlx::query!(
        "INSERT INTO workflow_nodes (task_id, workflow_id, ref, position, pending, on_parent_failure)
         SELECT id, $1, ref, pos::int - 1, pending, policy
         FROM UNNEST($2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY AS u(id, ref, pending, policy, pos)",
        wf.key.as_str(),
        &ids as &[&str],
        &refs as &[&str],
        &pending,
        &policies as &[&str]
    )
    .execute(&mut *tx)
    .await?;
    let ids = &ids;
    let (parents, children): (Vec<&str>, Vec<&str>) =
        wf.nodes.iter().enumerate().flat_map(|(i, n)| n.parents.iter().map(move |&p| (ids[p], ids[i]))).unzip();
    sqlx::query!(
        "INSERT INTO workflow_edges (parent, child, workflow_id) SELECT p, c, $1 FROM UNNEST($2::text[], $3::text[]) AS u(p, c)",
        wf.key.as_str(),
        &parents as &[&str],
        &children as &[&str]
    )
    .execute(&mut *tx)
    .await?;
    // Nodes a limit's `tasks` list names: their memberships (`held` for a
    // root, which the insert made `held`; not yet for a `waiting` node,
    // which becomes `held` at its fan-in), then the roots' release.
    let limited: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].limited).collect();
    if !limited.is_empty() {
        let members: Vec<crate::store::limits::Member<'_>> = limited
            .iter()
            .map(|&i| crate::store::limits::Member {
                key: &keys[i],
                tenant: &new[i].tenant,
                name: &new[i].name,
                args: &new[i].args,
                kwargs: &new[i].kwargs,
                limits: &[],
            })
            .collect();
        let settled = crate::store::limits::settle(&mut tx, &members, &vec![true; members.len()], false)
            .await?
            .expect("no limit is named, so none is unknown");
        tx.commit().await?;
        for (m, &i) in limited.iter().enumerate() {
            settled.apply_row(m, &mut rows[i]);
        }
        let changed = settled.released.changed.into_iter().map(TaskKey::into_string).collect();
        notify_changed(pool, changed);
        return Ok(WorkflowInsert::Created(rows));
    }
    tx.commit().await?;
    Ok(WorkflowInsert::Created(rows))
}

/// The workflow of node `key` and its parents' task ids (stored keys, in
/// submission order); `None` when `key` is not a node.
pub async fn node_of(pool: &PgPool, key: &TaskKey) -> Result<Option<(TaskKey, Vec<TaskKey>)>, StoreError> {
    if !node_key(key) {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"SELECT n.workflow_id,
                  array(SELECT e.parent FROM workflow_edges e JOIN workflow_nodes p ON p.task_id = e.parent
                        WHERE e.child = n.task_id ORDER BY p.position) AS "parents!"
           FROM workflow_nodes n WHERE n.task_id = $1"#,
        key.as_str()
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (TaskKey::from_stored(r.workflow_id), r.parents.into_iter().map(TaskKey::from_stored).collect())))
}

/// What a [`fan_in`] changed.
#[derive(Debug, Default)]
pub(crate) struct FannedIn {
    /// Nodes now `queued` (unpublished): publish them after the commit.
    pub released: Vec<Unpublished>,
    /// Every node whose status changed (released or cancelled), to notify after the commit.
    pub changed: Vec<TaskKey>,
    /// Limited nodes now `held`: the caller passes them to
    /// [`crate::store::limits::release_freed`] with the slots it frees, in
    /// the same transaction (lock order: tasks, children, buckets).
    pub held: Vec<TaskKey>,
}

/// Fan-in, in the caller's transaction, for tasks `ended` that have just
/// reached a terminal status: each of their children's pending count drops
/// by the number of its parents among them; a child at 0 that is `waiting`
/// becomes `queued` (unpublished), or `cancelled` with kind `parent_failed`
/// when a parent did not succeed and it says `on_parent_failure: cancel`
/// (or with kind `cancelled` when a cancel was requested while it waited).
/// A cancelled child ends its own children the same way, down the graph.
/// Ids that are not workflow nodes are skipped without a statement.
pub(crate) async fn fan_in(conn: &mut PgConnection, ended: Vec<TaskKey>) -> Result<FannedIn, StoreError> {
    let mut out = FannedIn::default();
    let mut ended: Vec<String> = ended.into_iter().filter(node_key).map(TaskKey::into_string).collect();
    while !ended.is_empty() {
        let rows = unpublished_query!(
            r#"WITH fin AS (
                 SELECT e.child, count(*)::int AS n, (count(*) FILTER (WHERE p.status <> 'success'))::int AS bad
                 FROM (SELECT DISTINCT id FROM UNNEST($1::text[]) AS u(id)) u
                 JOIN workflow_edges e ON e.parent = u.id JOIN tasks p ON p.id = u.id
                 WHERE p.status IN ('success', 'failed', 'cancelled')
                 GROUP BY e.child
             ), locked AS (
                 SELECT n.task_id FROM workflow_nodes n JOIN fin ON fin.child = n.task_id
                 ORDER BY n.task_id FOR UPDATE OF n
             ), dec AS (
                 UPDATE workflow_nodes n SET pending = n.pending - fin.n, failed_parents = n.failed_parents + fin.bad
                 FROM fin JOIN locked l ON l.task_id = fin.child
                 WHERE n.task_id = fin.child
                 RETURNING n.task_id, n.pending, n.failed_parents, n.on_parent_failure
             ), released AS (
                 UPDATE tasks t SET
                     status = CASE WHEN t.cancel_requested_at IS NOT NULL
                                     OR (d.failed_parents > 0 AND d.on_parent_failure = 'cancel')
                                   THEN 'cancelled'
                                   WHEN t.limited AND EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id)
                                   THEN 'held' ELSE 'queued' END,
                     published_at = NULL,
                     finished_at = CASE WHEN t.cancel_requested_at IS NOT NULL
                                          OR (d.failed_parents > 0 AND d.on_parent_failure = 'cancel')
                                        THEN now() END,
                     error = CASE WHEN t.cancel_requested_at IS NOT NULL
                                  THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request')
                                  WHEN d.failed_parents > 0 AND d.on_parent_failure = 'cancel'
                                  THEN jsonb_build_object('kind', 'parent_failed', 'message',
                                       d.failed_parents || ' of its parents did not succeed')
                                  END
                 FROM dec d WHERE t.id = d.task_id AND d.pending <= 0 AND t.status = 'waiting'
                 RETURNING t.id, t.status, t.name, t.args, t.kwargs, t.queue, t.attempts, t.created_at
             ), members AS (
                 UPDATE task_limits m SET held = true, slot = false
                 FROM released r WHERE r.status = 'held' AND m.task_id = r.id
             )
             SELECT "#,
            " FROM released ORDER BY id",
            &ended
        )
        .fetch_all(&mut *conn)
        .await?;
        let (released, held, cancelled) = split_moved(rows, &mut out.changed);
        out.released.extend(released);
        out.held.extend(held);
        ended = cancelled.into_iter().map(TaskKey::into_string).collect();
    }
    Ok(out)
}

/// Nodes a fan-in or the repair pass moved out of `waiting`: the ones
/// released to `queued` (to publish), the limited ones now `held` (to
/// release), and the ones cancelled (whose children are next); every one is
/// added to `changed`.
fn split_moved(
    rows: Vec<UnpublishedRecord>,
    changed: &mut Vec<TaskKey>,
) -> (Vec<Unpublished>, Vec<TaskKey>, Vec<TaskKey>) {
    let (mut released, mut held, mut cancelled) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        changed.push(TaskKey::from_stored(r.id.clone()));
        if r.status == TaskStatus::Queued {
            released.push(Unpublished::from(r));
        } else if r.status.as_str() == crate::store::limits::HELD {
            held.push(TaskKey::from_stored(r.id));
        } else {
            cancelled.push(TaskKey::from_stored(r.id));
        }
    }
    (released, held, cancelled)
}

/// [`tasks::record_outcomes`] for outcomes of workflow nodes, with the
/// fan-in of the ones that ended in the same transaction. Returns, per
/// outcome in order, whether it was written, and what the fan-in released
/// (to publish) and changed (notified here).
pub async fn record_outcomes(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<(Vec<Recorded>, Vec<Unpublished>), StoreError> {
    let mut tries = 0;
    loop {
        match record_outcomes_once(pool, worker_id, outcomes).await {
            Err(e) if tries < DEADLOCK_TRIES && is_deadlock(&e) => tries += 1,
            other => return other,
        }
    }
}

async fn record_outcomes_once(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<(Vec<Recorded>, Vec<Unpublished>), StoreError> {
    let mut tx = pool.begin().await?;
    let recorded = tasks::record_outcomes_in(&mut tx, worker_id, outcomes).await?;
    let written: Vec<String> = outcomes
        .iter()
        .zip(&recorded)
        .filter(|(_, r)| **r == Recorded::Written)
        .map(|(o, _)| o.task_id.to_string())
        .collect();
    let ended = outcomes
        .iter()
        .zip(&recorded)
        .filter(|(o, r)| **r == Recorded::Written && !matches!(o.outcome, Outcome::Retry { .. }))
        .map(|(o, _)| o.task_id.clone())
        .collect();
    let freed: Vec<TaskKey> = outcomes
        .iter()
        .zip(&recorded)
        .filter(|(o, r)| **r == Recorded::Written && o.limited)
        .map(|(o, _)| o.task_id.clone())
        .collect();
    let mut fanned = fan_in(&mut tx, ended).await?;
    // After the fan-in (lock order: tasks, children, buckets): the slots
    // of limited nodes go to held tasks in this transaction, and the
    // children the fan-in made `held` are released as far as there is room.
    let freed: Vec<TaskKey> = freed.into_iter().chain(fanned.held.drain(..)).collect();
    let limited = crate::store::limits::release_freed(&mut tx, &freed).await?;
    tx.commit().await?;
    fanned.changed.extend(limited.changed);
    fanned.released.extend(limited.queued);
    notify_changed(pool, written.into_iter().chain(fanned.changed.into_iter().map(TaskKey::into_string)).collect());
    Ok((recorded, fanned.released))
}

/// A parent's outcome as its child's handler sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParentOutcome {
    /// The parent's task id (stored key).
    pub id: String,
    /// `success`, `failed` or `cancelled`.
    #[schema(value_type = String)]
    pub status: TaskStatus,
    /// Its result once `success`.
    #[schema(value_type = Option<serde_json::Value>)]
    pub result: Option<Box<RawValue>>,
    /// Why it did not succeed.
    pub error: Option<TaskError>,
}

/// What [`parent_results`] read.
#[derive(Debug)]
pub enum Parents {
    /// Parents by ref (empty for a node without parents), and the seconds
    /// since the last of them finished (database clock; `None` without parents).
    Read(std::collections::BTreeMap<String, ParentOutcome>, Option<f64>),
    /// Their results total `size` bytes, more than the cap.
    TooLarge {
        /// Bytes of the parents' results together.
        size: i64,
    },
}

/// The parents of node `key` with their outcomes, read from PostgreSQL at
/// claim; [`Parents::TooLarge`] when their results together exceed
/// `cap_bytes` (the node then fails for good, kind `parents_too_large`).
pub async fn parent_results(pool: &PgPool, key: &TaskKey, cap_bytes: i64) -> Result<Parents, StoreError> {
    // One statement (it runs at every node's claim): the size and the last
    // finish on every row, the parents' rows only when the size is within
    // the cap (so a node past it never loads them), one row of NULLs when
    // there are none.
    let rows = sqlx::query!(
        r#"WITH s AS (
             SELECT coalesce(sum(octet_length(p.result::text)), 0)::bigint AS size,
                    extract(epoch FROM now() - max(p.finished_at))::float8 AS since_last
             FROM workflow_edges e JOIN tasks p ON p.id = e.parent WHERE e.child = $1
           )
           SELECT s.size AS "size!", s.since_last, r.node_ref AS "node_ref?", r.id AS "id?",
                  r.status AS "status?: TaskStatus", r.result AS "result?: Json<Box<RawValue>>",
                  r.error AS "error?: Json<serde_json::Value>"
           FROM s LEFT JOIN LATERAL (
             SELECT n.ref AS node_ref, p.id, p.status, p.result, p.error
             FROM workflow_edges e JOIN tasks p ON p.id = e.parent JOIN workflow_nodes n ON n.task_id = e.parent
             WHERE e.child = $1 AND s.size <= $2
           ) r ON true"#,
        key.as_str(),
        cap_bytes
    )
    .fetch_all(pool)
    .await?;
    let (size, since_last) = rows.first().map_or((0, None), |r| (r.size, r.since_last));
    if size > cap_bytes {
        return Ok(Parents::TooLarge { size });
    }
    let by_ref = rows
        .into_iter()
        .filter_map(|r| {
            let outcome = ParentOutcome {
                id: r.id?,
                status: r.status?,
                result: r.result.map(|j| j.0),
                error: r.error.and_then(|e| serde_json::from_value(e.0).ok()),
            };
            Some((r.node_ref?, outcome))
        })
        .collect();
    Ok(Parents::Read(by_ref, since_last))
}

/// A workflow's status, computed from its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// A node has not reached a terminal status.
    Running,
    /// Every node succeeded.
    Success,
    /// Every node is terminal and one failed (even if a `run` child then succeeded).
    Failed,
    /// Every node is terminal, none failed, one was cancelled.
    Cancelled,
}

impl WorkflowStatus {
    /// The status of a workflow whose nodes are in `statuses`.
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a TaskStatus>) -> Self {
        let (mut running, mut failed, mut cancelled) = (false, false, false);
        for s in statuses {
            match s {
                TaskStatus::Success => {}
                TaskStatus::Failed => failed = true,
                TaskStatus::Cancelled => cancelled = true,
                _ => running = true,
            }
        }
        match (running, failed, cancelled) {
            (true, _, _) => Self::Running,
            (false, true, _) => Self::Failed,
            (false, false, true) => Self::Cancelled,
            _ => Self::Success,
        }
    }
}

/// A node as `GET /workflows/{id}` lists it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The node's ref.
    pub node_ref: String,
    /// Its task's stored key (the route presents it as the caller's id).
    pub id: TaskKey,
    /// Its task's status.
    pub status: TaskStatus,
    /// Refs of its parents.
    pub depends_on: Vec<String>,
}

/// A workflow as stored.
#[derive(Debug, Clone)]
pub struct WorkflowRow {
    /// Stored key.
    pub key: TaskKey,
    /// Tenant.
    pub tenant: Tenant,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Insertion order (the listing cursor).
    pub seq: i64,
    /// Its nodes, in submission order.
    pub nodes: Vec<NodeView>,
}

impl WorkflowRow {
    /// The status its nodes give it.
    pub fn status(&self) -> WorkflowStatus {
        WorkflowStatus::of(self.nodes.iter().map(|n| &n.status))
    }

    /// Its nodes counted by status name.
    pub fn counts(&self) -> std::collections::BTreeMap<String, i64> {
        let mut counts = std::collections::BTreeMap::new();
        for n in &self.nodes {
            *counts.entry(n.status.as_str().to_string()).or_insert(0) += 1;
        }
        counts
    }
}

/// Reads workflow `key` with its nodes; `None` when there is none.
pub async fn get(pool: &PgPool, key: &TaskKey) -> Result<Option<WorkflowRow>, StoreError> {
    let Some(wf) = sqlx::query!("SELECT id, tenant, created_at, seq FROM workflows WHERE id = $1", key.as_str())
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let nodes = sqlx::query!(
        r#"SELECT n.ref AS "node_ref!", n.task_id AS "id!", t.status AS "status!: TaskStatus",
                  array(SELECT pn.ref FROM workflow_edges e JOIN workflow_nodes pn ON pn.task_id = e.parent
                        WHERE e.child = n.task_id ORDER BY pn.position) AS "depends_on!"
           FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id
           WHERE n.workflow_id = $1 ORDER BY n.position"#,
        key.as_str()
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(WorkflowRow {
        key: TaskKey::from_stored(wf.id),
        tenant: Tenant::from_stored(wf.tenant),
        created_at: wf.created_at,
        seq: wf.seq,
        nodes: nodes
            .into_iter()
            .map(|r| NodeView {
                node_ref: r.node_ref,
                id: TaskKey::from_stored(r.id),
                status: r.status,
                depends_on: r.depends_on,
            })
            .collect(),
    }))
}

/// Whether workflow `key` has a node not yet terminal; `None` when there is
/// no such workflow. One cheap statement, for long-polls (which read the
/// whole workflow with [`get`] only once it has finished).
pub async fn running(pool: &PgPool, key: &TaskKey) -> Result<Option<bool>, StoreError> {
    let running = sqlx::query_scalar!(
        "SELECT bool_or(t.status NOT IN ('success', 'failed', 'cancelled'))
         FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id WHERE n.workflow_id = $1",
        key.as_str()
    )
    .fetch_one(pool)
    .await?;
    Ok(running)
}

/// A workflow in a listing: its id and status counts.
#[derive(Debug, Clone)]
pub struct WorkflowSummary {
    /// Stored key.
    pub key: TaskKey,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Insertion order (the cursor).
    pub seq: i64,
    /// Node count by status name.
    pub counts: std::collections::BTreeMap<String, i64>,
}

impl WorkflowSummary {
    /// The status its nodes' counts give it.
    pub fn status(&self) -> WorkflowStatus {
        let statuses: Vec<TaskStatus> = self.counts.keys().map(|s| TaskStatus::from_stored(s)).collect();
        WorkflowStatus::of(&statuses)
    }
}

/// Up to `limit` workflows of `tenant`, newest first, older than the `before` cursor.
pub async fn list(
    pool: &PgPool,
    tenant: &Tenant,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<WorkflowSummary>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT w.id, w.created_at, w.seq,
                  (SELECT jsonb_object_agg(status, n) FROM (SELECT t.status, count(*) AS n
                      FROM workflow_nodes wn JOIN tasks t ON t.id = wn.task_id
                      WHERE wn.workflow_id = w.id GROUP BY t.status) c) AS "counts: Json<HashMap<String, i64>>"
           FROM workflows w WHERE w.tenant = $1 AND ($2::bigint IS NULL OR w.seq < $2)
           ORDER BY w.seq DESC LIMIT $3"#,
        tenant.as_str(),
        before,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| WorkflowSummary {
            key: TaskKey::from_stored(r.id),
            created_at: r.created_at,
            seq: r.seq,
            counts: r.counts.map(|c| c.0.into_iter().collect()).unwrap_or_default(),
        })
        .collect())
}

/// What [`cancel`] did.
#[derive(Debug, Default)]
pub struct Cancelled {
    /// Nodes cancelled at once (`waiting`, `queued`, `scheduled`).
    pub cancelled: u64,
    /// Running nodes whose cancel was requested.
    pub requested: u64,
}

/// Cancels workflow `key`: its nodes that have not run end `cancelled`,
/// the running ones get a cancel request (their workers abort them);
/// `None` when there is no such workflow. A deadlock with a concurrent
/// fan-in (PostgreSQL breaks it by failing one side) is retried.
pub async fn cancel(pool: &PgPool, key: &TaskKey) -> Result<Option<Cancelled>, StoreError> {
    let mut tries = 0;
    loop {
        match cancel_once(pool, key).await {
            Err(e) if tries < DEADLOCK_TRIES && is_deadlock(&e) => tries += 1,
            other => return other,
        }
    }
}

/// Times a transaction that PostgreSQL failed to break a deadlock is run again.
const DEADLOCK_TRIES: u32 = 5;

/// True for PostgreSQL's `deadlock_detected` (40P01): the statement lost a
/// lock-order race (a fan-in against a workflow cancel) and may simply run again.
fn is_deadlock(e: &StoreError) -> bool {
    match e {
        StoreError::Refused(e) => e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "40P01"),
        _ => false,
    }
}

async fn cancel_once(pool: &PgPool, key: &TaskKey) -> Result<Option<Cancelled>, StoreError> {
    let mut tx = pool.begin().await?;
    let found = sqlx::query_scalar!(
        "UPDATE workflows SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = $1 RETURNING id",
        key.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query!(
        r#"WITH nodes AS (
             SELECT t.id FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id
             WHERE n.workflow_id = $1 AND t.status NOT IN ('success', 'failed', 'cancelled')
             ORDER BY t.id FOR UPDATE OF t
         )
         UPDATE tasks t SET
             status = CASE WHEN t.status IN ('held', 'waiting', 'queued', 'scheduled') THEN 'cancelled' ELSE t.status END,
             cancel_requested_at = coalesce(t.cancel_requested_at, now()),
             finished_at = CASE WHEN t.status IN ('held', 'waiting', 'queued', 'scheduled') THEN now() ELSE t.finished_at END,
             error = CASE WHEN t.status IN ('held', 'waiting', 'queued', 'scheduled')
                          THEN jsonb_build_object('kind', 'cancelled', 'message', 'workflow cancelled on request')
                          ELSE t.error END
         FROM nodes WHERE t.id = nodes.id AND t.status NOT IN ('success', 'failed', 'cancelled')
         RETURNING t.id AS "id!", t.status AS "status!: TaskStatus""#,
        key.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    let ended: Vec<TaskKey> =
        rows.iter().filter(|r| r.status == TaskStatus::Cancelled).map(|r| TaskKey::from_stored(r.id.clone())).collect();
    let out = Cancelled { cancelled: ended.len() as u64, requested: (rows.len() - ended.len()) as u64 };
    let fanned = fan_in(&mut tx, ended.clone()).await?;
    let freed: Vec<TaskKey> = ended.iter().chain(&fanned.held).cloned().collect();
    let limited = crate::store::limits::release_freed(&mut tx, &freed).await?;
    tx.commit().await?;
    notify_changed(
        pool,
        rows.into_iter()
            .map(|r| r.id)
            .chain(fanned.changed.into_iter().chain(limited.changed).map(TaskKey::into_string))
            .collect(),
    );
    Ok(Some(out))
}

/// What [`retry`] did to a node.
#[derive(Debug)]
pub enum NodeRetry {
    /// Not a node: the plain retry applies.
    NotANode,
    /// A `parent_failed` node whose parents have not all succeeded (409).
    ParentsNotSucceeded,
    /// Retried ([`tasks::RetryResult`]), and this many descendants are `waiting` again.
    Done(Box<tasks::RetryResult>, u64),
}

/// `POST /tasks/{id}/retry` on a workflow node: the node goes back to
/// `queued` ([`tasks::retry`]'s rules) and its descendants that ended
/// `cancelled` with kind `parent_failed` go back to `waiting`, their pending
/// and failed-parent counts recounted from their parents' statuses, all in
/// one transaction (so no outcome of the retried node can fan in between
/// the two and leave a descendant counting a parent that already ended).
/// A `parent_failed` node may be retried only once all its parents have
/// succeeded. A deadlock with a concurrent fan-in is retried.
pub async fn retry(pool: &PgPool, key: &TaskKey) -> Result<NodeRetry, StoreError> {
    if !node_key(key) {
        return Ok(NodeRetry::NotANode);
    }
    let mut tries = 0;
    loop {
        match retry_once(pool, key).await {
            Err(e) if tries < DEADLOCK_TRIES && is_deadlock(&e) => tries += 1,
            other => return other,
        }
    }
}

async fn retry_once(pool: &PgPool, key: &TaskKey) -> Result<NodeRetry, StoreError> {
    let mut tx = pool.begin().await?;
    let exists = sqlx::query!(
        r#"SELECT t.error->>'kind' AS kind,
                  (SELECT count(*) FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                   WHERE e.child = t.id AND p.status <> 'success') AS "unsucceeded!"
           FROM tasks t JOIN workflow_nodes n ON n.task_id = t.id WHERE t.id = $1"#,
        key.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(node) = exists else { return Ok(NodeRetry::NotANode) };
    if node.kind.as_deref() == Some("parent_failed") && node.unsucceeded > 0 {
        return Ok(NodeRetry::ParentsNotSucceeded);
    }
    let result = tasks::retry_in(&mut tx, key).await?;
    if !matches!(result, tasks::RetryResult::Requeued(_)) {
        return Ok(NodeRetry::Done(Box::new(result), 0));
    }
    let reopened = sqlx::query_scalar!(
        r#"WITH RECURSIVE down(id) AS (
             SELECT e.child FROM workflow_edges e WHERE e.parent = $1
             UNION
             SELECT e.child FROM workflow_edges e JOIN down d ON e.parent = d.id
         ), locked AS (
             SELECT n.task_id FROM workflow_nodes n JOIN down d ON d.id = n.task_id
             ORDER BY n.task_id FOR UPDATE OF n
         ), reopened AS (
             UPDATE tasks t SET status = 'waiting', error = NULL, finished_at = NULL, cancel_requested_at = NULL,
                 published_at = NULL, max_retries = GREATEST(t.max_retries, t.attempts)
             FROM locked l WHERE t.id = l.task_id AND t.status = 'cancelled' AND t.error->>'kind' = 'parent_failed'
             RETURNING t.id
         ), counts AS (
             UPDATE workflow_nodes n SET
                 pending = (SELECT count(*) FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                            WHERE e.child = n.task_id
                              AND (p.status NOT IN ('success', 'failed', 'cancelled') OR p.id = $1
                                   OR p.id IN (SELECT id FROM reopened))),
                 failed_parents = (SELECT count(*) FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                            WHERE e.child = n.task_id AND p.status IN ('failed', 'cancelled')
                              AND p.id <> $1 AND p.id NOT IN (SELECT id FROM reopened))
             FROM reopened r WHERE n.task_id = r.id
             RETURNING n.task_id
         )
         SELECT task_id AS "id!" FROM counts"#,
        key.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let n = reopened.len() as u64;
    notify_changed(pool, std::iter::once(key.to_string()).chain(reopened).collect());
    Ok(NodeRetry::Done(Box::new(result), n))
}

/// What one [`repair`] pass did.
#[derive(Debug, Default)]
pub(crate) struct Repaired {
    /// Nodes released to `queued` (to publish) by the pass.
    pub released: Vec<Unpublished>,
    /// Nodes the pass moved out of `waiting` (released or cancelled).
    pub repaired: u64,
}

/// The safety net (a leader pass): `waiting` nodes whose parents are all
/// terminal (left so by a process of an older release, or a crash between
/// the statements of a fan-in cascade) get their counts recounted from their
/// parents' statuses and leave `waiting` as the fan-in would have moved them.
/// In normal runs it finds nothing (the `yadtq_workflow_repairs_total`
/// counter stays 0). Nodes younger than `min_age` are left alone.
pub(crate) async fn repair(pool: &PgPool, min_age: Duration, limit: i64) -> Result<Repaired, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = unpublished_query!(
        r#"WITH stuck AS (
             SELECT n.task_id FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id
             WHERE t.status = 'waiting' AND t.created_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                               WHERE e.child = n.task_id AND p.status NOT IN ('success', 'failed', 'cancelled'))
             ORDER BY n.task_id LIMIT $2 FOR UPDATE OF n SKIP LOCKED
         ), recount AS (
             UPDATE workflow_nodes n SET pending = 0,
                 failed_parents = (SELECT count(*) FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                                   WHERE e.child = n.task_id AND p.status <> 'success')
             FROM stuck s WHERE n.task_id = s.task_id
             RETURNING n.task_id, n.failed_parents, n.on_parent_failure
         ), moved AS (
             UPDATE tasks t SET
                 status = CASE WHEN t.cancel_requested_at IS NOT NULL
                                 OR (r.failed_parents > 0 AND r.on_parent_failure = 'cancel')
                               THEN 'cancelled'
                               WHEN t.limited AND EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id)
                               THEN 'held' ELSE 'queued' END,
                 published_at = NULL,
                 finished_at = CASE WHEN t.cancel_requested_at IS NOT NULL
                                      OR (r.failed_parents > 0 AND r.on_parent_failure = 'cancel') THEN now() END,
                 error = CASE WHEN t.cancel_requested_at IS NOT NULL
                              THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request')
                              WHEN r.failed_parents > 0 AND r.on_parent_failure = 'cancel'
                              THEN jsonb_build_object('kind', 'parent_failed', 'message',
                                   r.failed_parents || ' of its parents did not succeed') END
             FROM recount r WHERE t.id = r.task_id AND t.status = 'waiting'
             RETURNING t.id, t.status, t.name, t.args, t.kwargs, t.queue, t.attempts, t.created_at
         ), members AS (
             UPDATE task_limits m SET held = true, slot = false
             FROM moved r WHERE r.status = 'held' AND m.task_id = r.id
         )
         SELECT "#,
        " FROM moved",
        min_age.as_secs_f64(),
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    let repaired = rows.len() as u64;
    let mut changed = Vec::new();
    let (released, held, cancelled) = split_moved(rows, &mut changed);
    let mut out = Repaired { repaired, released };
    let fanned = fan_in(&mut tx, cancelled).await?;
    // Lock order: tasks, children, buckets.
    let held: Vec<TaskKey> = held.into_iter().chain(fanned.held).collect();
    let limited = crate::store::limits::release_freed(&mut tx, &held).await?;
    tx.commit().await?;
    out.released.extend(fanned.released);
    out.released.extend(limited.queued);
    notify_changed(
        pool,
        changed.into_iter().chain(fanned.changed).chain(limited.changed).map(TaskKey::into_string).collect(),
    );
    Ok(out)
}

/// Deletes up to `batch` workflows whose nodes are all terminal and finished
/// more than `ttl` ago, with their nodes' tasks (and attempts, edges, node
/// rows); a workflow with a node still to run keeps every node, so a
/// finished parent is never deleted before its children have run.
pub(crate) async fn delete_expired(pool: &PgPool, ttl: Duration, batch: i64) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query_scalar!(
        "SELECT w.id FROM workflows w
         WHERE NOT EXISTS (SELECT 1 FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id
                           WHERE n.workflow_id = w.id
                             AND (t.status NOT IN ('success', 'failed', 'cancelled')
                                  OR t.finished_at >= now() - make_interval(secs => $1)))
         ORDER BY w.seq LIMIT $2 FOR UPDATE SKIP LOCKED",
        ttl.as_secs_f64(),
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    if done.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        "DELETE FROM tasks WHERE id IN (SELECT task_id FROM workflow_nodes WHERE workflow_id = ANY($1))",
        &done
    )
    .execute(&mut *tx)
    .await?;
    let r = sqlx::query!("DELETE FROM workflows WHERE id = ANY($1)", &done).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected())
}

/// Workflows by status (`running`, `success`, `failed`, `cancelled`), as
/// [`WorkflowStatus::of`] computes it; statuses with none are absent.
pub(crate) async fn count_by_status(pool: &PgPool) -> Result<HashMap<String, i64>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT s AS "status!", count(*) AS "n!" FROM (
             SELECT CASE WHEN bool_or(t.status NOT IN ('success', 'failed', 'cancelled')) THEN 'running'
                         WHEN bool_or(t.status = 'failed') THEN 'failed'
                         WHEN bool_or(t.status = 'cancelled') THEN 'cancelled'
                         ELSE 'success' END AS s
             FROM workflow_nodes n JOIN tasks t ON t.id = n.task_id GROUP BY n.workflow_id) w
           GROUP BY s"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// Records that worker `id` honours [`FEATURE_LEVEL`] (called right after
/// it registers; until then it counts as an older process, which only
/// delays workflow submissions).
pub async fn report_level(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query!("UPDATE workers SET feature_level = $2 WHERE id = $1", id, FEATURE_LEVEL).execute(pool).await?;
    Ok(())
}

/// How many alive workers (heartbeat within `dead_after`, database clock,
/// not stopped) report a feature level below `level` ([`WORKFLOWS_LEVEL`],
/// [`LIMITS_LEVEL`]): processes of an older release, which would not honour
/// the feature (fan in, release held tasks).
pub async fn older_processes(pool: &PgPool, dead_after: Duration, level: i32) -> Result<i64, StoreError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM workers
           WHERE stopped_at IS NULL AND last_heartbeat_at >= now() - make_interval(secs => $1)
             AND feature_level < $2"#,
        dead_after.as_secs_f64(),
        level
    )
    .fetch_one(pool)
    .await?;
    Ok(n)
}
