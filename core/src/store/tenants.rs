//! The `dedicated_tenants` table: which tenants have workers of their own
//! (the gateways' `--dedicated-tenants`), when each one's route last changed,
//! and the writes that move a tenant's queued tasks to its new route
//! ([`crate::tenants`] has the routing rule).

use std::time::Duration;

use sqlx::PgPool;

use super::StoreError;

/// How one gateway's [`declare`] changed the recorded list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    /// Tenants that are dedicated now and were not, by name.
    pub dedicated: Vec<String>,
    /// Tenants that were dedicated and are not any more, by name.
    pub shared: Vec<String>,
}

impl Change {
    /// True when the list was already as declared.
    pub fn is_empty(&self) -> bool {
        self.dedicated.is_empty() && self.shared.is_empty()
    }
}

/// Makes the dedicated tenants exactly `tenants` (a gateway's
/// `--dedicated-tenants`, at start), stamping `changed_at` on each tenant
/// whose route changes and writing one audit row (actor `actor`) when any
/// does, in one transaction. The last gateway to start wins: give every
/// gateway the same list. Returns the change.
pub async fn declare(pool: &PgPool, tenants: &[String], actor: &str) -> Result<Change, StoreError> {
    let mut tx = pool.begin().await?;
    // Two gateways starting at once apply their lists one after the other.
    sqlx::query!("LOCK TABLE dedicated_tenants IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let shared = sqlx::query_scalar!(
        r#"UPDATE dedicated_tenants SET dedicated = false, changed_at = now(), rerouted_at = NULL
           WHERE dedicated AND NOT tenant = ANY($1) RETURNING tenant AS "tenant!""#,
        tenants
    )
    .fetch_all(&mut *tx)
    .await?;
    let dedicated = sqlx::query_scalar!(
        r#"INSERT INTO dedicated_tenants (tenant, dedicated) SELECT DISTINCT t, true FROM UNNEST($1::text[]) AS t
           ON CONFLICT (tenant) DO UPDATE SET dedicated = true, changed_at = now(), rerouted_at = NULL
             WHERE NOT dedicated_tenants.dedicated
           RETURNING tenant AS "tenant!""#,
        tenants
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut change = Change { dedicated, shared };
    change.dedicated.sort();
    change.shared.sort();
    if !change.is_empty() {
        let detail = serde_json::json!({"dedicated": change.dedicated, "shared": change.shared, "now": tenants});
        super::audit::record(&mut *tx, actor, "dedicated_tenants.set", None, None, &detail).await?;
    }
    tx.commit().await?;
    Ok(change)
}

/// The tenants dedicated now, by name; empty when none is (or no gateway
/// has started yet).
pub async fn dedicated(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT tenant FROM dedicated_tenants WHERE dedicated ORDER BY tenant")
        .fetch_all(pool)
        .await?)
}

/// Sends a record's task to the publisher again: clears `published_at` of
/// task `id` when it is still `queued` and marked published. What a worker
/// does with a record of a tenant it does not serve (the record went to the
/// topic of the tenant's old route); the publisher then sends it to the
/// route it reads now. Returns true when the row was changed.
pub async fn resend(pool: &PgPool, id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query!(
        "UPDATE tasks SET published_at = NULL WHERE id = $1 AND status = 'queued' AND published_at IS NOT NULL",
        id
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The leader's re-route: for each tenant whose route changed more than
/// `settle` ago and has not been re-routed since, clears `published_at` of
/// its `queued` tasks, so the publisher sends them again to the route every
/// process reads by now; records of those tasks on the old route's topic
/// become duplicates, which the claim absorbs. `settle` covers how stale a
/// process's copy of the list can be plus how long a record sent by that
/// copy can take to be acknowledged and marked. Returns the tasks it
/// cleared; once per change.
pub async fn reroute_changed(pool: &PgPool, settle: Duration) -> Result<u64, StoreError> {
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
