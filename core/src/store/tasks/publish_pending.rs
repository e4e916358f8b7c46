//! The `published_at` protocol (the parent module's doc): rows still to
//! send to Kafka, marking the acknowledged ones, failing the ones Kafka
//! refuses, and sending rows back to the publisher (send back, re-route).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgPool;

use super::UnpublishedRecord;
use crate::model::{TaskError, TaskStatus};
use crate::names::TaskKey;
use crate::store::events::notify_changed;
use crate::store::StoreError;

/// A queued task that still has to be sent to Kafka.
#[derive(Debug)]
pub struct Unpublished {
    /// Task id.
    pub id: TaskKey,
    /// Handler name.
    pub name: String,
    /// JSON array text.
    pub args: Box<RawValue>,
    /// JSON object text.
    pub kwargs: Box<RawValue>,
    /// Queue name.
    pub queue: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Submission time.
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` `queued` rows with no `published_at`, in submission order.
/// Rows submitted less than `grace` ago are left to the gateway that accepted
/// them (it is still waiting for the broker's ack); requeued rows are due at once.
pub(crate) async fn fetch_unpublished(
    pool: &PgPool,
    grace: Duration,
    limit: i64,
) -> Result<Vec<Unpublished>, StoreError> {
    let rows = unpublished_query!(
        "SELECT ",
        " FROM tasks
         WHERE status = 'queued' AND published_at IS NULL
           AND (attempts > 0 OR created_at < now() - make_interval(secs => $1))
         ORDER BY seq LIMIT $2",
        grace.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Unpublished::from).collect())
}

/// A record the broker acknowledged: the task id and the attempt count the
/// record carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Task id.
    pub id: TaskKey,
    /// The row's attempt count when the record was produced.
    pub attempts: i32,
}

/// Marks queued rows as sent to Kafka. Only rows still `queued`, unpublished
/// and at the record's attempt count are marked: a row requeued since (a
/// retry, a rescue) waits for its own send's mark, so a late mark cannot hide
/// a send that failed. Rows another transaction holds are skipped, not waited
/// for: that is a claim (which stamps `published_at` itself) or a cancel, and
/// a row left unmarked only costs one duplicate record from the publisher.
/// Returns how many rows were marked.
pub async fn mark_published(pool: &PgPool, sent: &[Sent]) -> Result<u64, StoreError> {
    let (ids, attempts): (Vec<&str>, Vec<i32>) = sent.iter().map(|s| (s.id.as_str(), s.attempts)).unzip();
    let r = sqlx::query!(
        "UPDATE tasks SET published_at = now()
         WHERE id IN (SELECT t.id FROM UNNEST($1::text[], $2::int[]) AS u(id, attempts)
                      JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
                      WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t SKIP LOCKED)
           AND published_at IS NULL",
        &ids as &[&str],
        &attempts
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// A record Kafka refused for itself ([`crate::kafka::Delivery::Refused`]).
#[derive(Debug, Clone)]
pub struct Refused {
    /// Task id.
    pub id: TaskKey,
    /// The row's attempt count when the record was produced.
    pub attempts: i32,
    /// Why it can never be sent (`record_too_large`, `unpublishable`).
    pub error: TaskError,
}

/// Fails queued rows whose Kafka record can never be sent. Only rows still
/// `queued`, unpublished and at the record's attempt count change (a row
/// claimed, cancelled or requeued since is left alone); rows another
/// transaction holds are skipped, and the next send fails them. Returns the
/// ids failed.
pub(crate) async fn fail_unsendable(pool: &PgPool, refused: &[Refused]) -> Result<Vec<TaskKey>, StoreError> {
    if refused.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = refused.iter().map(|r| r.id.as_str()).collect();
    let attempts: Vec<i32> = refused.iter().map(|r| r.attempts).collect();
    let errors: Vec<String> =
        refused.iter().map(|r| serde_json::to_string(&r.error).expect("error serialises")).collect();
    let mut tx = pool.begin().await?;
    let failed = sqlx::query_scalar!(
        "UPDATE tasks t SET status = 'failed', error = u.error::jsonb, finished_at = now()
         FROM (SELECT t.id, u.error FROM UNNEST($1::text[], $2::int[], $3::text[]) AS u(id, attempts, error)
               JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
               WHERE t.status = 'queued' AND t.published_at IS NULL
               ORDER BY t.id FOR UPDATE OF t SKIP LOCKED) AS u
         WHERE t.id = u.id
         RETURNING t.id",
        &ids as &[&str],
        &attempts,
        &errors
    )
    .fetch_all(&mut *tx)
    .await?;
    let failed: Vec<TaskKey> = failed.into_iter().map(TaskKey::from_stored).collect();
    // A failed workflow node's children leave `waiting` in the same
    // transaction; the publisher sends the ones released to `queued`.
    let fanned = crate::store::workflows::fan_in(&mut tx, failed.clone()).await?;
    // A limited task's slot goes to a held one in this transaction (lock
    // order: tasks, children, buckets); the publisher sends what it released.
    let freed: Vec<TaskKey> = failed.iter().chain(&fanned.held).cloned().collect();
    let limited = crate::store::limits::release_freed(&mut tx, &freed).await?;
    tx.commit().await?;
    notify_changed(
        pool,
        failed.iter().cloned().chain(fanned.changed).chain(limited.changed).map(TaskKey::into_string).collect(),
    );
    Ok(failed)
}

/// What [`resend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The task was `queued` and marked published: now unpublished, so the
    /// publisher sends it again.
    Unpublished,
    /// The task is not `queued` any more (claimed through another record,
    /// finished), is unpublished already, or does not exist: unchanged.
    Unchanged,
}

/// Sends a record's task to the publisher again: clears `published_at` of
/// task `id` when it is still `queued` and marked published. What a worker
/// does with a record of a tenant it does not serve (the record went to the
/// topic of the tenant's old route); the publisher then sends it to the
/// route it reads now.
pub async fn resend(pool: &PgPool, key: &TaskKey) -> Result<Resent, StoreError> {
    let r = sqlx::query!(
        "UPDATE tasks SET published_at = NULL WHERE id = $1 AND status = 'queued' AND published_at IS NOT NULL",
        key.as_str()
    )
    .execute(pool)
    .await?;
    Ok(if r.rows_affected() > 0 { Resent::Unpublished } else { Resent::Unchanged })
}

/// The leader's re-route: for each tenant whose route changed more than
/// `settle` ago and has not been re-routed since (the `dedicated_tenants`
/// row, which this stamps), clears `published_at` of its `queued` tasks, so
/// the publisher sends them again to the route every process reads by now;
/// records of those tasks on the old route's topic become duplicates, which
/// the claim absorbs. `settle` covers how stale a process's copy of the list
/// can be plus how long a record sent by that copy can take to be
/// acknowledged and marked. Returns how many tasks it cleared; each change
/// is acted on once.
pub(crate) async fn reroute_changed(pool: &PgPool, settle: Duration) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "WITH due AS (
             UPDATE dedicated_tenants SET rerouted_at = now()
             WHERE rerouted_at IS NULL AND changed_at < now() - make_interval(secs => $1)
             RETURNING tenant)
         UPDATE tasks SET published_at = NULL FROM due
         WHERE tasks.tenant = due.tenant AND tasks.status = 'queued' AND tasks.published_at IS NOT NULL",
        settle.as_secs_f64()
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
