//! The `dedicated_tenants` table: which tenants have workers of their own
//! (the gateways' `--dedicated-tenants`) and when each one's route last
//! changed ([`crate::tenants`] has the routing rule). Moving a tenant's
//! queued tasks to its new route is a task transition:
//! [`super::tasks::reroute_changed`] and [`super::tasks::resend`].

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
pub(crate) async fn dedicated(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT tenant FROM dedicated_tenants WHERE dedicated ORDER BY tenant")
        .fetch_all(pool)
        .await?)
}
