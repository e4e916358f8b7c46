//! Limits (docs/limits.md): named concurrency and rate limits per tenant,
//! one bucket per value of the limit's key, exact across the cluster.
//!
//! **The invariant.** A limited task is `queued` or `processing` only if a
//! transaction holding the locks of all its buckets (their `limit_buckets`
//! rows) moved it there (or inserted it so) after finding room in each
//! under those locks ([`release`], or the insert's fast path). Room is
//! `concurrency` minus a bucket's running count, read from the task rows
//! (the memberships whose task is `queued` or `processing`), so a slot is
//! free as soon as its task is anything else, whoever moved it: nothing a
//! crashed or older process does can leak one. Where that count would be a
//! scan, the bucket's `taken` (migration 0022) stands in for it while it
//! leaves room: it only ever bounds the count from above (slots are added
//! under the lock, and taken off only by a recount under it), so room it
//! shows is room the count would show.
//!
//! | step | what | by | function |
//! |------|------|----|----------|
//! | declare | a limit's row and its `tasks` list; a raise releases at once | API | [`put`] |
//! | delete | the limit, its buckets and memberships; its held tasks released | API | [`delete`] |
//! | plan | a task's buckets, worked out before its insert from what was read | submit | [`plan::plan`] |
//! | admit | the memberships and slots of a planned task whose buckets have room, the row `queued` | the insert statement | [`super::tasks::insert_rows_planned`] |
//! | attach | a new task's memberships (`held`), the row `held` (no plan, a refused one, no room) | submit, after the insert | [`attach`] |
//! | release | `held` → `queued` (or `cancelled` when a cancel was requested) | whoever frees a slot; submit; the leader | [`release`], [`release_freed`], [`release_pass`] |
//!
//! **Lock order** (docs/limits.md has the why): (1) the `limits` row, by
//! [`put`] and [`delete`] only; (2) the transaction's own task rows, in id
//! order; (3) bucket rows in id order, waiting, `FOR NO KEY UPDATE` (so the
//! `KEY SHARE` of a membership's foreign-key check never deadlocks with
//! it); a bucket needed after that is taken with `SKIP LOCKED`, never
//! waiting out of order; (4) the released `held` rows, in id order. A
//! `held` row is otherwise written only by a cancel, which waits for
//! nothing after it. So no wait can close a cycle.
//!
//! **Rate.** A release at time `t` (the database's `clock_timestamp()` read
//! under the bucket's lock, never less than the bucket's previous release)
//! is allowed while fewer than `count` releases of the bucket lie in
//! `(t - per_seconds, t]` (`limit_releases`), so no window of `per_seconds`
//! holds more than `count` releases.
//!
//! **Fairness.** One release step serves its buckets round-robin: one task
//! per bucket per round, buckets least recently served first (`last_turn`),
//! each bucket's held tasks oldest first.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::tasks::{
    unpublished_query, AttemptOutcomeRecord, Inserted, NewTask, Recorded, TaskRow, Unpublished, UnpublishedRecord,
};
use super::StoreError;
use crate::model::TaskStatus;
use crate::names::{LimitName, TaskKey, TaskName, Tenant};

pub mod plan;

/// The status of a task a limit holds back ([`TaskStatus::Held`]).
pub const HELD: &str = "held";

/// The bucket of a limit without a key.
pub const ALL_BUCKET: &str = "(all)";

/// The bucket of a task whose limit's key does not resolve in its arguments.
/// No canonical JSON text starts with `(`, so no value's bucket is named so.
pub const UNRESOLVED_BUCKET: &str = "(unresolved)";

/// Held tasks a release reads beyond a bucket's room, to step over the
/// ones another of their limits blocks (so a slot is not left idle behind
/// them); past these, the rest wait for the next release.
const SKIP_SLACK: i64 = 16;

/// Most tasks one release step moves (one transaction's work).
pub const RELEASE_BUDGET: usize = 1_000;

/// A rate: at most `count` releases per bucket in any window of `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Releases allowed per window, at least 1.
    pub count: i32,
    /// The window, seconds, more than 0.
    pub per_seconds: f64,
}

/// A limit's `key`: a JSON pointer (RFC 6901) into `{"args": [...],
/// "kwargs": {...}}`, starting `/args` or `/kwargs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPointer(String);

impl KeyPointer {
    /// The rule, for error messages.
    pub const RULE: &'static str =
        "a JSON pointer into the task's arguments, starting /args or /kwargs (e.g. /kwargs/customer_id)";

    /// Checks `pointer`: RFC 6901 (`~` only as `~0` or `~1`), first token
    /// `args` or `kwargs`.
    pub fn parse(pointer: impl Into<String>) -> Result<Self, crate::names::InvalidName> {
        let pointer = pointer.into();
        let first = pointer.split('/').nth(1);
        let escapes_ok = {
            let b = pointer.as_bytes();
            (0..b.len()).all(|i| b[i] != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
        };
        let ok = pointer.starts_with('/') && matches!(first, Some("args" | "kwargs")) && escapes_ok;
        if ok {
            Ok(Self(pointer))
        } else {
            Err(crate::names::InvalidName { rule: Self::RULE.to_string() })
        }
    }

    /// The pointer's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `PUT /limits/{name}` declares; validated by the gateway (at least
/// one of `concurrency` and `rate`).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    /// Tasks of one bucket running at once; 0 pauses the limit; `None`: no bound.
    pub concurrency: Option<i32>,
    /// Releases of one bucket per window; `None`: no bound.
    pub rate: Option<Rate>,
    /// The bucket key; `None`: one bucket ([`ALL_BUCKET`]).
    pub key: Option<KeyPointer>,
    /// Task names that take the limit without naming it.
    pub tasks: Vec<TaskName>,
}

/// The bucket of a task under a limit keyed by `key`: the canonical JSON of
/// the pointer's value in `{"args": args, "kwargs": kwargs}` (object keys
/// sorted at every level, no whitespace, numbers as written), [`ALL_BUCKET`]
/// without a key, [`UNRESOLVED_BUCKET`] when the pointer finds nothing.
/// `args` and `kwargs` are JSON text already validated.
pub fn bucket_key(key: Option<&KeyPointer>, args: &str, kwargs: &str) -> String {
    let Some(key) = key else { return ALL_BUCKET.to_string() };
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or(serde_json::Value::Null);
    let doc = serde_json::json!({ "args": parse(args), "kwargs": parse(kwargs) });
    match doc.pointer(&key.0) {
        Some(v) => serde_json::to_string(&super::unique::canonical(v.clone())).expect("JSON serialises"),
        None => UNRESOLVED_BUCKET.to_string(),
    }
}

/// What [`put`] did.
#[derive(Debug)]
pub enum PutOutcome {
    /// The limit was created.
    Created,
    /// The limit was changed; a raise released the tasks it made room for.
    Updated(Vec<Unpublished>),
    /// The limit exists with another `key`, which cannot change (tasks are
    /// bucketed at submit): nothing changed.
    KeyChanged,
}

/// Declares limit `name` of `tenant` (creates or replaces it, its `tasks`
/// list included). A raised limit releases, in the same transaction, the
/// held tasks it makes room for, up to [`RELEASE_BUDGET`] (the leader's
/// pass the rest); a lowered one takes effect as running tasks finish. The
/// released tasks are `queued` unpublished: publish them after the call.
pub async fn put(pool: &PgPool, tenant: &Tenant, name: &LimitName, spec: &LimitSpec) -> Result<PutOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let created = sqlx::query_scalar!(
        r#"INSERT INTO limits (tenant, name, concurrency, rate_count, rate_per_seconds, key_pointer)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant, name) DO UPDATE SET
               concurrency = EXCLUDED.concurrency, rate_count = EXCLUDED.rate_count,
               rate_per_seconds = EXCLUDED.rate_per_seconds, updated_at = now()
           WHERE limits.key_pointer IS NOT DISTINCT FROM EXCLUDED.key_pointer
           RETURNING (xmax = 0) AS "created!""#,
        tenant.as_str(),
        name.as_str(),
        spec.concurrency,
        spec.rate.map(|r| r.count),
        spec.rate.map(|r| r.per_seconds),
        spec.key.as_ref().map(KeyPointer::as_str)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(created) = created else { return Ok(PutOutcome::KeyChanged) };
    let names: Vec<&str> = spec.tasks.iter().map(TaskName::as_str).collect();
    sqlx::query!(
        "WITH gone AS (DELETE FROM limit_tasks WHERE tenant = $1 AND limit_name = $2 AND task_name <> ALL($3))
         INSERT INTO limit_tasks (tenant, task_name, limit_name)
         SELECT $1, n, $2 FROM UNNEST($3::text[]) AS u(n) ORDER BY n ON CONFLICT DO NOTHING",
        tenant.as_str(),
        name.as_str(),
        &names as &[&str]
    )
    .execute(&mut *tx)
    .await?;
    if created {
        tx.commit().await?;
        return Ok(PutOutcome::Created);
    }
    let buckets = sqlx::query_scalar!(
        "SELECT b.id FROM limit_buckets b
         WHERE b.tenant = $1 AND b.limit_name = $2
           AND EXISTS (SELECT 1 FROM task_limits m WHERE m.bucket_id = b.id AND m.held)
         ORDER BY b.id",
        tenant.as_str(),
        name.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    let released = release(&mut tx, &buckets, Lock::Wait, RELEASE_BUDGET).await?;
    tx.commit().await?;
    Ok(PutOutcome::Updated(released.notified(pool)))
}

/// A limit as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitRow {
    /// Its name.
    pub name: LimitName,
    /// What it declares.
    pub spec: LimitSpec,
}

/// Reads limit `name` of `tenant`.
pub async fn get(pool: &PgPool, tenant: &Tenant, name: &LimitName) -> Result<Option<LimitRow>, StoreError> {
    Ok(list(pool, tenant, Some(name), None, 1).await?.pop())
}

/// Up to `limit` limits of `tenant` by name, after `after` (the page
/// cursor); only `only` when given.
pub async fn list(
    pool: &PgPool,
    tenant: &Tenant,
    only: Option<&LimitName>,
    after: Option<&LimitName>,
    limit: i64,
) -> Result<Vec<LimitRow>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT l.name, l.concurrency, l.rate_count, l.rate_per_seconds, l.key_pointer,
                  array(SELECT t.task_name FROM limit_tasks t WHERE t.tenant = l.tenant AND t.limit_name = l.name
                        ORDER BY t.task_name) AS "tasks!"
           FROM limits l
           WHERE l.tenant = $1 AND ($2::text IS NULL OR l.name = $2) AND ($3::text IS NULL OR l.name > $3)
           ORDER BY l.name LIMIT $4"#,
        tenant.as_str(),
        only.map(LimitName::as_str),
        after.map(LimitName::as_str),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LimitRow {
            name: LimitName::from_stored(r.name),
            spec: LimitSpec {
                concurrency: r.concurrency,
                rate: r.rate_count.zip(r.rate_per_seconds).map(|(count, per_seconds)| Rate { count, per_seconds }),
                key: r.key_pointer.map(KeyPointer),
                tasks: r.tasks.into_iter().filter_map(|t| TaskName::parse(t, usize::MAX).ok()).collect(),
            },
        })
        .collect())
}

/// One bucket's state, counted from the rows (`GET /limits/{name}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    /// The bucket's name ([`bucket_key`]).
    pub bucket: String,
    /// Its tasks `queued` or `processing` now.
    pub running: i64,
    /// Its `held` tasks.
    pub held: i64,
    /// Its releases in the window ending now (0 without a rate).
    pub in_window: i64,
}

/// Up to `limit` buckets of limit `name` of `tenant` with their counts, by
/// bucket name, after bucket `after` (the page cursor; `None`: the first).
pub async fn buckets(
    pool: &PgPool,
    tenant: &Tenant,
    name: &LimitName,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<BucketState>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT b.bucket,
                  (SELECT count(*) FROM task_limits m JOIN tasks t ON t.id = m.task_id
                   WHERE m.bucket_id = b.id AND m.slot AND t.status IN ('queued', 'processing')) AS "running!",
                  (SELECT count(*) FROM task_limits m JOIN tasks t ON t.id = m.task_id
                   WHERE m.bucket_id = b.id AND m.held AND t.status = 'held') AS "held!",
                  (SELECT count(*) FROM limit_releases r WHERE r.bucket_id = b.id AND l.rate_count IS NOT NULL
                     AND r.released_at > clock_timestamp() - make_interval(secs => l.rate_per_seconds)) AS "in_window!"
           FROM limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
           WHERE b.tenant = $1 AND b.limit_name = $2 AND ($3::text IS NULL OR b.bucket > $3)
           ORDER BY b.bucket LIMIT $4"#,
        tenant.as_str(),
        name.as_str(),
        after,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BucketState { bucket: r.bucket, running: r.running, held: r.held, in_window: r.in_window })
        .collect())
}

/// One of a task's limits, as `GET /tasks/{id}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLimit {
    /// The limit's name.
    pub limit: LimitName,
    /// The task's bucket of it ([`bucket_key`]).
    pub bucket: String,
    /// The bucket has no room now (so, for a `held` task, this limit is
    /// one that holds it). Read without the lock: a view, not a decision.
    pub full: bool,
}

/// The limits task `key` takes, by name; empty for a task without limits
/// (one index probe). A bucket is counted (a second statement) only when
/// its `taken` reaches the concurrency or its limit has a rate: `taken`
/// bounds the running count from above, so below the concurrency there is
/// room without counting.
pub async fn of_task(pool: &PgPool, key: &TaskKey) -> Result<Vec<TaskLimit>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT b.id, b.limit_name AS "limit_name!", b.bucket AS "bucket!",
                  (l.concurrency IS NOT NULL AND b.taken >= l.concurrency) OR l.rate_count IS NOT NULL AS "maybe_full!"
           FROM task_limits m JOIN limit_buckets b ON b.id = m.bucket_id
           JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
           WHERE m.task_id = $1 ORDER BY b.limit_name"#,
        key.as_str()
    )
    .fetch_all(pool)
    .await?;
    let counted: Vec<i64> = rows.iter().filter(|r| r.maybe_full).map(|r| r.id).collect();
    let full: HashSet<i64> = if counted.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar!(
            r#"SELECT b.id AS "id!" FROM UNNEST($1::bigint[]) AS u(id) JOIN limit_buckets b ON b.id = u.id
               JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
               WHERE (l.concurrency IS NOT NULL AND l.concurrency <=
                        (SELECT count(*) FROM task_limits s JOIN tasks t ON t.id = s.task_id
                         WHERE s.bucket_id = b.id AND s.slot AND t.status IN ('queued', 'processing')))
                  OR (l.rate_count IS NOT NULL AND l.rate_count <=
                        (SELECT count(*) FROM limit_releases r WHERE r.bucket_id = b.id
                           AND r.released_at > clock_timestamp() - make_interval(secs => l.rate_per_seconds)))"#,
            &counted
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect()
    };
    Ok(rows
        .into_iter()
        .map(|r| TaskLimit {
            limit: LimitName::from_stored(r.limit_name),
            bucket: r.bucket,
            full: full.contains(&r.id),
        })
        .collect())
}

/// Deletes limit `name` of `tenant` with its buckets and memberships; its
/// held tasks are released in the same transaction as far as their other
/// limits allow (the leader's pass does the rest). `None` when there is no
/// such limit; else the tasks released (`queued` unpublished: publish them).
pub async fn delete(pool: &PgPool, tenant: &Tenant, name: &LimitName) -> Result<Option<Vec<Unpublished>>, StoreError> {
    let mut tx = pool.begin().await?;
    // The limit's row first (as `put` does; a submission creating a bucket
    // of it waits), then its buckets in id order, so no release of them is
    // under way.
    let exists = sqlx::query_scalar!(
        "SELECT 1 AS one FROM limits WHERE tenant = $1 AND name = $2 FOR UPDATE",
        tenant.as_str(),
        name.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let held = sqlx::query_scalar!(
        r#"WITH locked AS (SELECT b.id FROM limit_buckets b WHERE b.tenant = $1 AND b.limit_name = $2
                           ORDER BY b.id FOR NO KEY UPDATE)
           SELECT DISTINCT m.task_id AS "task_id!" FROM task_limits m JOIN locked l ON l.id = m.bucket_id WHERE m.held"#,
        tenant.as_str(),
        name.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    let found = sqlx::query!("DELETE FROM limits WHERE tenant = $1 AND name = $2", tenant.as_str(), name.as_str())
        .execute(&mut *tx)
        .await?;
    if found.rows_affected() == 0 {
        return Ok(None);
    }
    // Held tasks left with no limit run at once; the others wait for their
    // other buckets, taken without waiting (this transaction already holds
    // buckets, so waiting could be out of order).
    let mut released = release_tasks(&mut tx, &held, true, &[]).await?;
    let others = sqlx::query_scalar!(
        "SELECT DISTINCT m.bucket_id FROM UNNEST($1::text[]) AS u(id) JOIN task_limits m ON m.task_id = u.id
         ORDER BY 1",
        &held
    )
    .fetch_all(&mut *tx)
    .await?;
    released.extend(release(&mut tx, &others, Lock::Skip, RELEASE_BUDGET).await?);
    tx.commit().await?;
    Ok(Some(released.notified(pool)))
}

/// A new task's identity and arguments, for [`attach`].
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The task's stored key.
    pub key: &'a TaskKey,
    /// Its tenant.
    pub tenant: &'a Tenant,
    /// Its task name (a limit's `tasks` list names it).
    pub name: &'a TaskName,
    /// JSON array text.
    pub args: &'a str,
    /// JSON object text.
    pub kwargs: &'a str,
    /// The limits it names at submit.
    pub limits: &'a [LimitName],
}

/// What [`attach`] did.
#[derive(Debug, Default)]
pub struct Attached {
    /// The buckets the tasks joined, ascending (the ones to [`release`]).
    pub buckets: Vec<i64>,
    /// Limits named at submit that do not exist: (index into the input, name).
    pub unknown: Vec<(usize, LimitName)>,
    /// Indexes (into the input, ascending) of the tasks that took a
    /// limit: now `limited`, and `held` if they were `queued` (unless
    /// released at once, see `released`).
    pub limited: Vec<usize>,
    /// The tasks released at once, in the statement that attached them:
    /// held ones whose buckets all had room and no older held task. A limit
    /// that is not reached releases every task here.
    pub released: Released,
    /// One of the tasks is still `held`: the caller's [`release`] decides.
    pub still_held: bool,
}

/// Gives tasks just inserted (in the caller's transaction, not yet
/// committed: a `queued` row is turned `held` here, so it must never have
/// been visible) their memberships: every limit they name and every limit
/// whose `tasks` lists their name, each in the bucket [`bucket_key`] gives.
/// A task with a membership becomes `limited`, and `held` if it was
/// `queued` (a `scheduled` one is gated when promoted); those whose buckets
/// all have room (and no older held task) are released at once, in the same
/// statement. The caller then [`release`]s the returned buckets, when one of
/// its tasks is still held, in the same transaction (the locks are this
/// transaction's; in autocommit mode, see [`settle`]).
pub async fn attach(conn: &mut PgConnection, tasks: &[Member<'_>]) -> Result<Attached, StoreError> {
    if tasks.is_empty() {
        return Ok(Attached::default());
    }
    let (mut ei, mut et, mut en) = (Vec::new(), Vec::new(), Vec::new());
    for (i, t) in tasks.iter().enumerate() {
        for l in t.limits {
            ei.push(i as i32);
            et.push(t.tenant.as_str());
            en.push(l.as_str());
        }
    }
    let ti: Vec<i32> = (0..tasks.len() as i32).collect();
    let tt: Vec<&str> = tasks.iter().map(|t| t.tenant.as_str()).collect();
    let tn: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    let wanted = sqlx::query!(
        r#"WITH wanted AS (
             SELECT u.i, u.tenant, u.limit_name, true AS named
             FROM UNNEST($1::int[], $2::text[], $3::text[]) AS u(i, tenant, limit_name)
             UNION
             SELECT v.i, v.tenant, lt.limit_name, false
             FROM UNNEST($4::int[], $5::text[], $6::text[]) AS v(i, tenant, task_name)
             JOIN limit_tasks lt ON lt.tenant = v.tenant AND lt.task_name = v.task_name
           )
           SELECT w.i AS "i!", w.limit_name AS "limit_name!", bool_or(w.named) AS "named!",
                  bool_or(l.name IS NOT NULL) AS "exists!", min(l.key_pointer) AS key_pointer
           FROM wanted w LEFT JOIN limits l ON l.tenant = w.tenant AND l.name = w.limit_name
           GROUP BY w.i, w.limit_name"#,
        &ei,
        &et as &[&str],
        &en as &[&str],
        &ti,
        &tt as &[&str],
        &tn as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Attached::default();
    // (tenant, limit, bucket) per membership, sorted so concurrent attaches
    // create shared new buckets in one order.
    let mut members: Vec<(usize, String, String)> = Vec::new();
    for w in wanted {
        let i = w.i as usize;
        if !w.exists {
            if w.named {
                out.unknown.push((i, LimitName::from_stored(w.limit_name)));
            }
            continue;
        }
        let t = &tasks[i];
        let bucket = bucket_key(w.key_pointer.map(KeyPointer).as_ref(), t.args, t.kwargs);
        members.push((i, w.limit_name, bucket));
    }
    if members.is_empty() {
        return Ok(out);
    }
    members.sort();
    let bucket_set: BTreeSet<(&str, &str, &str)> =
        members.iter().map(|(i, l, b)| (tasks[*i].tenant.as_str(), l.as_str(), b.as_str())).collect();
    let (bt, bl, bb): (Vec<&str>, Vec<&str>, Vec<&str>) =
        bucket_set.iter().fold((Vec::new(), Vec::new(), Vec::new()), |(mut a, mut b, mut c), (t, l, k)| {
            a.push(*t);
            b.push(*l);
            c.push(*k);
            (a, b, c)
        });
    let by_name = bucket_ids(conn, &bt, &bl, &bb).await?;
    let mut mt = Vec::with_capacity(members.len());
    let mut mb = Vec::with_capacity(members.len());
    for (i, l, b) in members {
        let t = &tasks[i];
        // A bucket missing here went with its limit, deleted meanwhile.
        if let Some(&id) = by_name.get(&(t.tenant.to_string(), l, b)) {
            mt.push(t.key.as_str());
            mb.push(id);
        }
    }
    // One round trip (migration 0021's `yadtq_limits_admit`): the buckets'
    // locks in id order before the memberships that reference them (taken
    // first, they order this transaction against a concurrent [`delete`]
    // of the limit); the memberships, the tasks made limited (a queued one
    // held); then, under the locks, the release of the held ones whose
    // buckets all have room for them and no older held task. Only the
    // memberships inserted (a bucket deleted with its limit meanwhile is not
    // locked, so takes none) make a task limited: one left with none stays plain.
    let rows = sqlx::query!(
        r#"SELECT task_id AS "id!", task_status AS "status!", is_limited AS "limited!", is_released AS "released!", task_name AS "name!",
                  task_args AS "args!: Json<Box<RawValue>>", task_kwargs AS "kwargs!: Json<Box<RawValue>>",
                  task_queue AS "queue!", task_attempts AS "attempts!", task_created_at AS "created_at!"
           FROM yadtq_limits_admit($1::text[], $2::bigint[])"#,
        &mt as &[&str],
        &mb
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut limited: HashSet<String> = HashSet::new();
    for r in rows {
        if r.limited {
            limited.insert(r.id.clone());
        }
        out.still_held |= r.status == HELD;
        if r.released {
            out.released.changed.push(TaskKey::from_stored(r.id.clone()));
            out.released.queued.push(Unpublished {
                id: TaskKey::from_stored(r.id),
                name: r.name,
                args: r.args.0,
                kwargs: r.kwargs.0,
                queue: r.queue,
                attempts: r.attempts,
                created_at: r.created_at,
            });
        }
    }
    out.limited = (0..tasks.len()).filter(|&i| limited.contains(tasks[i].key.as_str())).collect();
    let mut buckets: Vec<i64> = mb;
    buckets.sort_unstable();
    buckets.dedup();
    out.buckets = buckets;
    Ok(out)
}

/// What a release step moved out of `held`.
#[derive(Debug, Default)]
pub struct Released {
    /// Now `queued` (unpublished): publish them after the commit.
    pub queued: Vec<Unpublished>,
    /// Every task moved (the queued ones, and the ones a cancel request sent
    /// to `cancelled`): notify them after the commit.
    pub changed: Vec<TaskKey>,
}

impl Released {
    pub(in crate::store) fn extend(&mut self, other: Released) {
        self.queued.extend(other.queued);
        self.changed.extend(other.changed);
    }

    /// Notifies the changed tasks (after the commit) and returns the queued ones.
    pub(in crate::store) fn notified(self, pool: &PgPool) -> Vec<Unpublished> {
        super::events::notify_changed(pool, self.changed.into_iter().map(TaskKey::into_string).collect());
        self.queued
    }
}

/// The ids of buckets (`tenants[i]`, `limits[i]`, `buckets[i]`), creating
/// the missing ones (sorted, so concurrent submissions create shared new
/// buckets in one order). Once a bucket exists, one statement.
async fn bucket_ids(
    conn: &mut PgConnection,
    tenants: &[&str],
    limits: &[&str],
    buckets: &[&str],
) -> Result<HashMap<(String, String, String), i64>, StoreError> {
    let mut created = false;
    loop {
        let found = sqlx::query!(
            r#"SELECT b.id, b.tenant, b.limit_name, b.bucket
               FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(tenant, limit_name, bucket)
               JOIN limit_buckets b ON b.tenant = u.tenant AND b.limit_name = u.limit_name AND b.bucket = u.bucket"#,
            tenants as &[&str],
            limits as &[&str],
            buckets as &[&str]
        )
        .fetch_all(&mut *conn)
        .await?;
        if found.len() == buckets.len() || created {
            return Ok(found.into_iter().map(|r| ((r.tenant, r.limit_name, r.bucket), r.id)).collect());
        }
        sqlx::query!(
            "INSERT INTO limit_buckets (tenant, limit_name, bucket)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING",
            tenants as &[&str],
            limits as &[&str],
            buckets as &[&str]
        )
        .execute(&mut *conn)
        .await?;
        created = true;
    }
}

/// How [`release`] takes the buckets it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Wait for each, in id order: the transaction holds no bucket yet.
    Wait,
    /// Skip the ones another transaction holds (it releases them itself, or
    /// the leader's pass will): the transaction already holds buckets, or
    /// it is the leader's pass, which need not wait.
    Skip,
    /// This transaction already holds them all (it locked them in id order
    /// itself): no statement.
    Held,
}

/// A bucket under this transaction's lock, with the room counted under it.
#[derive(Debug)]
struct Room {
    /// Round-robin turn of its last release.
    last_turn: i64,
    /// Releases it may still make now (concurrency and rate together).
    room: i64,
    /// The release time ([`DateTime`] of the database), for its rate rows.
    at: DateTime<Utc>,
    /// Whether it keeps `limit_releases` rows (it has a rate).
    rated: bool,
    /// Tasks released from it in this step.
    released: i64,
    /// It has a membership marked held (so a release may find a candidate).
    has_held: bool,
}

/// Locks buckets `ids` in id order (as `lock` says); returns the ones
/// locked. `FOR NO KEY UPDATE`: releases of a bucket exclude each other,
/// while the foreign-key checks of the release rows that reference it
/// (`KEY SHARE`) neither wait for the lock nor make it wait.
async fn lock_buckets(conn: &mut PgConnection, ids: &[i64], lock: Lock) -> Result<Vec<i64>, StoreError> {
    Ok(match lock {
        Lock::Held => ids.to_vec(),
        Lock::Wait => {
            sqlx::query_scalar!(
                "SELECT b.id FROM UNNEST($1::bigint[]) AS u(id) JOIN limit_buckets b ON b.id = u.id
                 ORDER BY b.id FOR NO KEY UPDATE OF b",
                ids
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Lock::Skip => {
            sqlx::query_scalar!(
                "SELECT b.id FROM UNNEST($1::bigint[]) AS u(id) JOIN limit_buckets b ON b.id = u.id
                 ORDER BY b.id FOR NO KEY UPDATE OF b SKIP LOCKED",
                ids
            )
            .fetch_all(&mut *conn)
            .await?
        }
    })
}

/// Locks `ids` (as `lock` says) and counts their room: `concurrency` minus
/// the memberships whose task is `queued` or `processing`, and `count`
/// minus the releases in the window ending at the release time. Clears
/// the `slot` hint of memberships whose task no longer runs, and stores the
/// count as the buckets' `taken` and `counted` (migrations 0022, 0023).
async fn lock_rooms(conn: &mut PgConnection, ids: &[i64], lock: Lock) -> Result<HashMap<i64, Room>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let locked = lock_buckets(conn, ids, lock).await?;
    if locked.is_empty() {
        return Ok(HashMap::new());
    }
    // A statement of its own, after the locks: its snapshot sees every
    // release and outcome committed by an earlier holder of these buckets.
    let rows = sqlx::query!(
        r#"WITH clk AS MATERIALIZED (SELECT clock_timestamp() AS c),
           s AS MATERIALIZED (
             SELECT m.bucket_id, m.task_id, t.status IN ('queued', 'processing') AS running
             FROM UNNEST($1::bigint[]) AS u(id) JOIN task_limits m ON m.bucket_id = u.id AND m.slot
             JOIN tasks t ON t.id = m.task_id
           ), cleared AS (
             UPDATE task_limits m SET slot = false FROM s
             WHERE NOT s.running AND m.task_id = s.task_id AND m.bucket_id = s.bucket_id
           ), recounted AS (
             UPDATE limit_buckets b SET taken = c.n, counted = c.n
             FROM (SELECT u.id, (SELECT count(*) FROM s WHERE s.bucket_id = u.id AND s.running)::integer AS n
                   FROM UNNEST($1::bigint[]) AS u(id)) c
             WHERE b.id = c.id
           ), b AS (
             SELECT b.id, b.last_turn, l.concurrency, l.rate_count, l.rate_per_seconds,
                    greatest(clk.c, b.last_release_at) AS at
             FROM UNNEST($1::bigint[]) AS u(id) JOIN limit_buckets b ON b.id = u.id
             JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name CROSS JOIN clk
           )
           SELECT b.id AS "id!", b.last_turn AS "last_turn!", b.at AS "at!", b.rate_count IS NOT NULL AS "rated!",
                  EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                          WHERE h.bucket_id = b.id AND h.held AND t.status = 'held') AS "has_held!",
                  CASE WHEN b.concurrency IS NULL THEN NULL
                       ELSE b.concurrency - (SELECT count(*) FROM s WHERE s.bucket_id = b.id AND s.running) END
                      AS conc_room,
                  CASE WHEN b.rate_count IS NULL THEN NULL
                       ELSE b.rate_count - (SELECT count(*) FROM limit_releases r WHERE r.bucket_id = b.id
                              AND r.released_at > b.at - make_interval(secs => b.rate_per_seconds)) END
                      AS rate_room
           FROM b"#,
        &locked
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let room = match (r.conc_room, r.rate_room) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                // A limit has one of the two (a CHECK); a row without reads as paused.
                (None, None) => 0,
            };
            let (last_turn, at, rated, has_held) = (r.last_turn, r.at, r.rated, r.has_held);
            (r.id, Room { last_turn, room: room.max(0), at, rated, released: 0, has_held })
        })
        .collect())
}

/// Releases held tasks of buckets `ids`, as many as their room allows (at
/// most `budget`), round-robin between the buckets (least recently served
/// first, one task per bucket per round), oldest first within one. A task
/// is released only when every one of its buckets is locked by this
/// transaction and has room; its other buckets are taken without waiting,
/// so one another transaction holds is left for that transaction's own
/// release or the leader's pass. Released tasks are `queued` (unpublished;
/// `cancelled` when a cancel was requested while held): the caller
/// publishes the `queued` ones after its commit.
pub async fn release(conn: &mut PgConnection, ids: &[i64], lock: Lock, budget: usize) -> Result<Released, StoreError> {
    let mut rooms = lock_rooms(conn, ids, lock).await?;
    let mut order: Vec<i64> = rooms.iter().filter(|(_, r)| r.room > 0 && r.has_held).map(|(id, _)| *id).collect();
    if order.is_empty() || budget == 0 {
        return Ok(Released::default());
    }
    order.sort_by_key(|id| (rooms[id].last_turn, *id));
    let wants: Vec<i32> =
        order.iter().map(|id| (rooms[id].room.min(budget as i64) + SKIP_SLACK).min(i32::MAX as i64) as i32).collect();
    // Each bucket's oldest held tasks, with every bucket each belongs to.
    let candidates = sqlx::query!(
        r#"SELECT w.bucket_id AS "bucket_id!", c.task_id AS "task_id!",
                  array(SELECT o.bucket_id FROM task_limits o WHERE o.task_id = c.task_id) AS "buckets!"
           FROM UNNEST($1::bigint[], $2::int[]) AS w(bucket_id, want)
           CROSS JOIN LATERAL (
             SELECT m.task_id, m.seq FROM task_limits m JOIN tasks t ON t.id = m.task_id
             WHERE m.bucket_id = w.bucket_id AND m.held AND t.status = 'held'
             ORDER BY m.seq LIMIT w.want
           ) c
           ORDER BY w.bucket_id, c.seq"#,
        &order,
        &wants
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut queues: HashMap<i64, VecDeque<String>> = HashMap::new();
    let mut buckets_of: HashMap<String, Vec<i64>> = HashMap::new();
    for c in candidates {
        buckets_of.entry(c.task_id.clone()).or_insert(c.buckets);
        queues.entry(c.bucket_id).or_default().push_back(c.task_id);
    }
    // The candidates' other buckets: taken without waiting.
    let mut others: Vec<i64> = buckets_of.values().flatten().filter(|b| !rooms.contains_key(b)).copied().collect();
    others.sort_unstable();
    others.dedup();
    let extra = lock_rooms(conn, &others, Lock::Skip).await?;
    rooms.extend(extra);

    // Round-robin: one task per bucket per round, until no bucket can give one.
    let mut decided: HashSet<String> = HashSet::new();
    let mut chosen: Vec<String> = Vec::new();
    loop {
        let mut progress = false;
        for b in &order {
            if chosen.len() >= budget {
                break;
            }
            if rooms[b].room <= 0 {
                continue;
            }
            let Some(queue) = queues.get_mut(b) else { continue };
            while let Some(task) = queue.pop_front() {
                if decided.contains(&task) {
                    continue;
                }
                let mine = buckets_of.get(&task).map(Vec::as_slice).unwrap_or_default();
                if mine.iter().all(|m| rooms.get(m).is_some_and(|r| r.room > 0)) {
                    for m in mine {
                        let r = rooms.get_mut(m).expect("checked above");
                        r.room -= 1;
                        r.released += 1;
                    }
                    decided.insert(task.clone());
                    chosen.push(task);
                    progress = true;
                    break;
                }
                // Blocked by another of its limits (or one held elsewhere):
                // stays held; the next candidate of this bucket may go.
            }
        }
        if !progress || chosen.len() >= budget {
            break;
        }
    }
    if chosen.is_empty() {
        return Ok(Released::default());
    }
    // Rate evidence and round-robin turns of the buckets that released, in
    // the release's statement (a chosen task that a cancel moved meanwhile
    // still counts in its buckets' window: an unused release, never one too many).
    let turns: Vec<Turn> = rooms
        .iter()
        .filter(|(_, r)| r.released > 0)
        .map(|(id, r)| Turn { bucket: *id, releases: if r.rated { r.released as i32 } else { 0 }, at: r.at })
        .collect();
    release_tasks(conn, &chosen, false, &turns).await
}

/// A bucket's share of a release: its new round-robin turn, its release
/// time and how many `limit_releases` rows to add (0 without a rate).
#[derive(Debug, Clone, Copy)]
struct Turn {
    bucket: i64,
    releases: i32,
    at: DateTime<Utc>,
}

/// Moves `held` tasks among `ids` out of `held`: to `cancelled` when a
/// cancel was requested, else to `queued` (unpublished), their memberships
/// no longer held and, for the queued ones, holding a slot. With
/// `unlimited_only`, only the tasks left with no membership (their limits
/// deleted), which become plain tasks. Returns the queued ones.
async fn release_tasks(
    conn: &mut PgConnection,
    ids: &[String],
    unlimited_only: bool,
    turns: &[Turn],
) -> Result<Released, StoreError> {
    let (tb, tn, ta): (Vec<i64>, Vec<i32>, Vec<DateTime<Utc>>) =
        turns.iter().fold((Vec::new(), Vec::new(), Vec::new()), |(mut b, mut n, mut a), t| {
            b.push(t.bucket);
            n.push(t.releases);
            a.push(t.at);
            (b, n, a)
        });
    let rows = unpublished_query!(
        r#"WITH locked AS (
             SELECT t.id FROM UNNEST($1::text[]) AS u(id) JOIN tasks t ON t.id = u.id
             WHERE t.status = 'held'
               AND (NOT $2 OR NOT EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id))
             ORDER BY t.id FOR UPDATE OF t
           ), moved AS (
             UPDATE tasks t SET
                 status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'cancelled' ELSE 'queued' END,
                 published_at = NULL,
                 limited = CASE WHEN $2 THEN false ELSE t.limited END,
                 finished_at = CASE WHEN t.cancel_requested_at IS NOT NULL THEN now() END,
                 error = CASE WHEN t.cancel_requested_at IS NOT NULL
                              THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request')
                              ELSE t.error END
             FROM locked l WHERE t.id = l.id AND t.status = 'held'
             RETURNING t.id, t.status, t.name, t.args, t.kwargs, t.queue, t.attempts, t.created_at
           ), members AS (
             UPDATE task_limits m SET held = false, slot = (moved.status = 'queued')
             FROM moved WHERE m.task_id = moved.id
           ), turns AS (
             UPDATE limit_buckets b SET last_turn = nextval('limit_turns'), last_release_at = u.at
             FROM UNNEST($3::bigint[], $5::timestamptz[]) AS u(id, at) WHERE b.id = u.id
           ), rate AS (
             INSERT INTO limit_releases (bucket_id, released_at)
             SELECT u.id, u.at FROM UNNEST($3::bigint[], $4::int[], $5::timestamptz[]) AS u(id, n, at),
                    generate_series(1, u.n)
           )
           SELECT "#,
        " FROM moved ORDER BY id",
        ids,
        unlimited_only,
        &tb,
        &tn,
        &ta
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Released::default();
    for r in rows {
        out.changed.push(TaskKey::from_stored(r.id.clone()));
        if r.status == TaskStatus::Queued {
            out.queued.push(Unpublished::from(r));
        }
    }
    Ok(out)
}

/// After tasks `freed` left `queued`/`processing` in the caller's
/// transaction (an outcome, a rescue to a final status, a cancel, a refused
/// record, a retry into `scheduled`), or became `held` again (a promoted
/// retry): locks their buckets in id order and releases what there is room
/// for. Tasks that are not limited cost one index probe.
pub async fn release_freed(conn: &mut PgConnection, freed: &[TaskKey]) -> Result<Released, StoreError> {
    if freed.is_empty() {
        return Ok(Released::default());
    }
    let ids: Vec<&str> = freed.iter().map(TaskKey::as_str).collect();
    // Their buckets found and locked in one statement, in id order; their
    // own `slot` hints cleared (they no longer run), so the counts that
    // follow scan only what runs.
    let buckets = sqlx::query_scalar!(
        r#"WITH locked AS MATERIALIZED (
             SELECT b.id FROM limit_buckets b
             WHERE b.id IN (SELECT m.bucket_id FROM UNNEST($1::text[]) AS u(id) JOIN task_limits m ON m.task_id = u.id)
             ORDER BY b.id FOR NO KEY UPDATE OF b
           ), cleared AS (
             UPDATE task_limits m SET slot = false FROM UNNEST($1::text[]) AS u(id) WHERE m.task_id = u.id AND m.slot
           )
           SELECT id AS "id!" FROM locked"#,
        &ids as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    if buckets.is_empty() {
        return Ok(Released::default());
    }
    // A statement of its own, after the locks (its snapshot sees what an
    // earlier holder committed): only buckets with a held task have
    // anything to release, so a limit that is never reached stops here.
    let buckets = sqlx::query_scalar!(
        r#"SELECT u.id AS "id!" FROM UNNEST($1::bigint[]) AS u(id)
           WHERE EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                         WHERE h.bucket_id = u.id AND h.held AND t.status = 'held')"#,
        &buckets
    )
    .fetch_all(&mut *conn)
    .await?;
    if buckets.is_empty() {
        return Ok(Released::default());
    }
    release(conn, &buckets, Lock::Held, RELEASE_BUDGET).await
}

/// What [`insert`] did.
#[derive(Debug)]
pub enum LimitedInsert {
    /// Each task's result in input order, and the tasks released at once
    /// (`queued` unpublished: publish them after the call).
    Done(Vec<Inserted>, Vec<Unpublished>),
    /// Task `.0` names limit `.1`, which does not exist (422): nothing was inserted.
    UnknownLimit(usize, LimitName),
    /// A task's id exists with a different request (409): nothing was
    /// inserted (all or nothing, as [`super::tasks::insert_batch`]).
    Conflict(TaskKey),
}

/// Inserts tasks that name limits (`limits[i]` for `tasks[i]`) in one
/// transaction: the rows ([`super::tasks::insert_each`]'s rules, unique keys
/// included), their memberships ([`attach`]: `held`), then the release of
/// those that have room ([`release`]). Tasks found by their id or unique
/// key are returned unchanged and are not attached again. Created rows are
/// returned as committed: `held`, or `queued` when released (publish only
/// the `queued` ones).
pub async fn insert(pool: &PgPool, tasks: &[NewTask], limits: &[Vec<LimitName>]) -> Result<LimitedInsert, StoreError> {
    let db = plan::database_of(pool);
    let mut tx = pool.begin().await?;
    let plans = match plan::plan(&mut tx, &db, tasks, limits).await? {
        Ok(plans) => plans,
        Err((i, name)) => return Ok(LimitedInsert::UnknownLimit(i, name)),
    };
    let turn = plan::turn(&db, &plans).await;
    let mut inserted = super::unique::insert_in(&mut tx, tasks, &plans).await?;
    drop(turn);
    if let Some(Inserted::Conflict(key)) = inserted.iter().find(|i| matches!(i, Inserted::Conflict(_))) {
        return Ok(LimitedInsert::Conflict(key.clone())); // dropping the transaction rolls it back
    }
    plan::check(&db, &plans, &inserted);
    let keys: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();
    // Rows the insert admitted with their plan need nothing more.
    let created: Vec<usize> = (0..tasks.len())
        .filter(|&i| match &inserted[i] {
            Inserted::Created(r) => !(r.limited && r.task.status == TaskStatus::Queued),
            _ => false,
        })
        .collect();
    let members: Vec<Member<'_>> = created
        .iter()
        .map(|&i| Member {
            key: &keys[i],
            tenant: &tasks[i].tenant,
            name: &tasks[i].name,
            args: &tasks[i].args,
            kwargs: &tasks[i].kwargs,
            limits: limits.get(i).map(Vec::as_slice).unwrap_or_default(),
        })
        .collect();
    let probed: Vec<bool> =
        created.iter().map(|&i| matches!(&inserted[i], Inserted::Created(r) if r.limited)).collect();
    let settled = match settle(&mut tx, &members, &probed, false).await? {
        Ok(settled) => settled,
        // Dropping the transaction rolls it back.
        Err((i, name)) => return Ok(LimitedInsert::UnknownLimit(created[i], name)),
    };
    tx.commit().await?;
    settled.apply(&created, &mut inserted);
    super::events::notify_changed(pool, settled.released.changed.iter().map(|k| k.to_string()).collect());
    Ok(LimitedInsert::Done(inserted, settled.released.queued))
}

/// What [`settle`] did.
#[derive(Debug, Default)]
pub(in crate::store) struct Settled {
    /// Released (to `queued`, unpublished, or to `cancelled`), including
    /// the probed tasks that found no limit (now plain).
    pub released: Released,
    /// Indexes (into the members) of the tasks that took a limit.
    pub limited: HashSet<usize>,
}

impl Settled {
    /// Rows `rows[created[m]]` of the members as committed ([`Settled::apply_row`]).
    pub(in crate::store) fn apply(&self, created: &[usize], rows: &mut [Inserted]) {
        for (m, &i) in created.iter().enumerate() {
            if let Inserted::Created(row) = &mut rows[i] {
                self.apply_row(m, row);
            }
        }
    }

    /// Member `m`'s row as committed: a task that took a limit and was
    /// `queued` or `held` is `held` unless released (then `queued`, or
    /// `cancelled` on a cancel request); its `limited` flag is the
    /// membership's.
    pub(in crate::store) fn apply_row(&self, m: usize, row: &mut TaskRow) {
        let k = row.task.key.as_str();
        row.limited = self.limited.contains(&m);
        if self.released.queued.iter().any(|u| u.id.as_str() == k) {
            row.task.status = TaskStatus::Queued;
        } else if self.released.changed.iter().any(|c| c.as_str() == k) {
            row.task.status = TaskStatus::Cancelled;
        } else if row.limited && matches!(row.task.status.as_str(), "queued" | HELD) {
            row.task.status = TaskStatus::Held;
        }
    }
}

/// Settles tasks just inserted (a probed row may be committed already,
/// `held`): [`attach`] gives them every limit they name and every limit
/// whose `tasks` lists them and releases at once those with room; a probed
/// task (`probed[i]`: the insert found it `limited`) that found none (the
/// limit or its `tasks` entry went meanwhile) becomes a plain task again,
/// `queued` if it was `held`; when a task is still held, its buckets are
/// released as far as they have room ([`release`], the full rules). In a
/// transaction (`autocommit` false) all of it is the caller's transaction;
/// on an autocommitting connection each step commits on its own (each is
/// one statement) and the last is a transaction of its own. A limit that
/// is not reached costs three statements: the definitions, the bucket ids,
/// and [`attach`]'s. `Err((i, name))`: member `i` names limit `name`, which
/// does not exist (roll back).
pub(in crate::store) async fn settle(
    conn: &mut PgConnection,
    members: &[Member<'_>],
    probed: &[bool],
    autocommit: bool,
) -> Result<Result<Settled, (usize, LimitName)>, StoreError> {
    let attached = attach(conn, members).await?;
    if let Some(unknown) = attached.unknown.into_iter().next() {
        return Ok(Err(unknown));
    }
    let limited: HashSet<usize> = attached.limited.into_iter().collect();
    let orphans: Vec<String> = (0..members.len())
        .filter(|&i| probed.get(i).copied().unwrap_or(false) && !limited.contains(&i))
        .map(|i| members[i].key.to_string())
        .collect();
    let mut released = attached.released;
    if !orphans.is_empty() {
        released.extend(release_tasks(conn, &orphans, true, &[]).await?);
    }
    if attached.still_held {
        if autocommit {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            released.extend(release(&mut tx, &attached.buckets, Lock::Wait, RELEASE_BUDGET).await?);
            tx.commit().await?;
        } else {
            released.extend(release(conn, &attached.buckets, Lock::Held, RELEASE_BUDGET).await?);
        }
    }
    Ok(Ok(Settled { released, limited }))
}

/// Whether a row just inserted needs [`settle`]: it is `limited` and not
/// `queued` (a limited row is inserted `queued` only by the insert
/// statement's fast path, which gave it its memberships and slots).
pub(in crate::store) fn unsettled(row: &TaskRow) -> bool {
    row.limited && row.task.status != TaskStatus::Queued
}

/// For [`super::tasks::insert_each`] and [`super::tasks::insert_batch`]:
/// the created rows of `out` the insert found limited (a `tasks` list names
/// them) are [`settle`]d in `conn` (a transaction, or an autocommitting
/// connection with `autocommit`) and rewritten as they will commit. No
/// statement when there is none. Returns the ids to notify after the commit.
pub(in crate::store) async fn settle_inserted(
    conn: &mut PgConnection,
    tasks: &[NewTask],
    out: &mut [Inserted],
    autocommit: bool,
) -> Result<Vec<String>, StoreError> {
    let created: Vec<usize> =
        (0..tasks.len()).filter(|&i| matches!(&out[i], Inserted::Created(r) if unsettled(r))).collect();
    if created.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<TaskKey> = created.iter().map(|&i| tasks[i].key()).collect();
    let members: Vec<Member<'_>> = created
        .iter()
        .zip(&keys)
        .map(|(&i, key)| Member {
            key,
            tenant: &tasks[i].tenant,
            name: &tasks[i].name,
            args: &tasks[i].args,
            kwargs: &tasks[i].kwargs,
            limits: &[],
        })
        .collect();
    let settled = settle(conn, &members, &vec![true; members.len()], autocommit)
        .await?
        .expect("no limit is named, so none is unknown");
    settled.apply(&created, out);
    Ok(settled.released.changed.iter().map(|k| k.to_string()).collect())
}

/// The leader's repair of `held` rows a limit's `tasks` list put in
/// `held` at insert that have no membership after `grace` (their submitter
/// crashed between the insert and [`settle`]): each is settled now, up to
/// `limit` per call. Returns the tasks released (to publish) and how many
/// rows were repaired. In normal runs it finds nothing (one probe of
/// migration 0015's `tasks_other_status` index).
pub async fn repair_unattached(
    pool: &PgPool,
    grace: std::time::Duration,
    limit: i64,
) -> Result<(usize, Vec<Unpublished>), StoreError> {
    let rows = sqlx::query!(
        r#"SELECT t.id, t.tenant, t.name, t.args::text AS "args!", t.kwargs::text AS "kwargs!" FROM tasks t
           WHERE t.status = 'held' AND t.limited AND t.created_at < now() - make_interval(secs => $1)
             AND NOT EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id)
           ORDER BY t.id LIMIT $2"#,
        grace.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok((0, Vec::new()));
    }
    // Stored names were validated at submit.
    let rows: Vec<_> = rows
        .into_iter()
        .filter_map(|r| {
            let name = TaskName::parse(r.name.clone(), usize::MAX).ok()?;
            Some((TaskKey::from_stored(r.id), Tenant::from_stored(r.tenant), name, r.args, r.kwargs))
        })
        .collect();
    let members: Vec<Member<'_>> = rows
        .iter()
        .map(|(key, tenant, name, args, kwargs)| Member { key, tenant, name, args, kwargs, limits: &[] })
        .collect();
    let settled = settle(&mut *pool.acquire().await?, &members, &vec![true; members.len()], true)
        .await?
        .expect("no limit is named, so none is unknown");
    Ok((rows.len(), settled.released.notified(pool)))
}

/// [`super::tasks::record_outcomes_releasing`] for a batch with outcomes of
/// limited tasks: the outcomes in one autocommitted statement
/// ([`super::tasks::record_outcomes_freeing`]: the buckets that hold a
/// task locked in id order after the task rows, and under the locks which
/// still do; a successful task's memberships deleted), then, only when one
/// does, the release of its held tasks in a transaction right after
/// ([`release`], waiting for the buckets' locks again), so a limit that is
/// not reached costs an outcome that one statement and no transaction. A
/// worker that dies between the two leaves the slot to the leader's pass
/// (within P). A retry into `scheduled` frees its slot too (it is gated
/// again when promoted). Returns, per outcome in order, whether it was
/// written, and the tasks released (`queued` unpublished: publish them
/// after the call).
pub async fn record_outcomes(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<(Vec<Recorded>, Vec<Unpublished>), StoreError> {
    let mut conn = pool.acquire().await?;
    let (recorded, held) = super::tasks::record_outcomes_freeing(&mut conn, worker_id, outcomes).await?;
    let released = if held.is_empty() {
        Released::default()
    } else {
        let mut tx = conn.begin().await?;
        let released = release(&mut tx, &held, Lock::Wait, RELEASE_BUDGET).await?;
        tx.commit().await?;
        released
    };
    drop(conn);
    let written =
        outcomes.iter().zip(&recorded).filter(|(_, r)| **r == Recorded::Written).map(|(o, _)| o.task_id.clone());
    let changed = written.chain(released.changed).map(TaskKey::into_string).collect();
    super::events::notify_changed(pool, changed);
    Ok((recorded, released.queued))
}

/// The leader's pass (every P): releases held tasks of up to `max_buckets`
/// buckets that have some, least recently served first, skipping buckets
/// another transaction holds. It opens rate windows (no event frees a rate
/// slot), and repairs what an older process or a crash left (a slot freed
/// without a release). Returns the released tasks, to publish.
pub async fn release_pass(pool: &PgPool, max_buckets: i64) -> Result<Vec<Unpublished>, StoreError> {
    // Outside the transaction: with nothing held (no limit, or none
    // reached) a pass is this one statement.
    let buckets = sqlx::query_scalar!(
        "SELECT b.id FROM limit_buckets b
         WHERE EXISTS (SELECT 1 FROM task_limits m WHERE m.bucket_id = b.id AND m.held)
         ORDER BY b.last_turn, b.id LIMIT $1",
        max_buckets
    )
    .fetch_all(pool)
    .await?;
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let released = release(&mut tx, &buckets, Lock::Skip, RELEASE_BUDGET).await?;
    tx.commit().await?;
    Ok(released.notified(pool))
}

/// Deletes `limit_releases` rows older than their limit's window (plus a
/// minute), and all of a limit that no longer has a rate; returns how many.
pub async fn prune_releases(pool: &PgPool) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "DELETE FROM limit_releases r USING limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
         WHERE r.bucket_id = b.id
           AND (l.rate_per_seconds IS NULL
                OR r.released_at < now() - make_interval(secs => l.rate_per_seconds) - interval '1 minute')"
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_are_canonical_json_or_named_buckets() {
        let key = |p: &str| KeyPointer::parse(p).unwrap();
        let k = key("/kwargs/customer");
        assert_eq!(bucket_key(Some(&k), "[]", r#"{"customer": "acme"}"#), r#""acme""#);
        assert_eq!(bucket_key(Some(&k), "[]", r#"{"customer": {"b": 1, "a": [2, 1.0]}}"#), r#"{"a":[2,1.0],"b":1}"#);
        assert_eq!(bucket_key(Some(&k), "[]", r#"{"customer": 12345678901234567890123}"#), "12345678901234567890123");
        assert_eq!(bucket_key(Some(&k), "[]", r#"{"other": 1}"#), UNRESOLVED_BUCKET);
        assert_eq!(bucket_key(Some(&key("/args/1")), r#"["a", "b"]"#, "{}"), r#""b""#);
        assert_eq!(bucket_key(Some(&key("/args/2")), r#"["a", "b"]"#, "{}"), UNRESOLVED_BUCKET);
        assert_eq!(bucket_key(None, "[]", "{}"), ALL_BUCKET);
        assert_eq!(bucket_key(Some(&key("/kwargs/a~1b")), "[]", r#"{"a/b": null}"#), "null");
    }

    #[test]
    fn key_pointers_start_at_args_or_kwargs() {
        for ok in ["/args", "/args/0", "/kwargs/customer_id", "/kwargs/a~0b~1c", "/kwargs/"] {
            assert!(KeyPointer::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "kwargs/x", "/result/x", "/kwargsx/y", "/kwargs/a~2", "/kwargs/a~", "/"] {
            assert!(KeyPointer::parse(bad).is_err(), "{bad}");
        }
    }
}
