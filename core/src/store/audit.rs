//! The `audit_log` table: an append-only record of admin actions (key
//! creation and revocation, dead-letter replays, changes of the dedicated
//! tenants): a tenant's own entries are readable with the `admin` scope, the
//! whole log (entries of no tenant included) with `cluster`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};
use utoipa::ToSchema;

use super::StoreError;

/// One admin action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing entry number (the listing's cursor).
    pub id: i64,
    /// When (database clock).
    pub at: DateTime<Utc>,
    /// Who: `key:<id>` (admin API), `cli` (`yadtq-gateway keys`) or `bootstrap`.
    pub actor: String,
    /// What, e.g. `key.create`, `key.revoke`.
    pub action: String,
    /// Tenant concerned, when one is.
    pub tenant: Option<String>,
    /// Object acted on, e.g. a key id.
    pub target: Option<String>,
    /// Particulars (never a token).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Appends an entry (inside the caller's transaction, so an action and its
/// record commit together).
pub async fn record<'e, E: PgExecutor<'e>>(
    ex: E,
    actor: &str,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO audit_log (actor, action, tenant, target, detail) VALUES ($1, $2, $3, $4, $5)",
        actor,
        action,
        tenant,
        target,
        detail
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Up to `limit` entries, newest first, older than entry `before` when
/// given; only `tenant`'s when given.
pub async fn list(
    pool: &PgPool,
    limit: i64,
    before: Option<i64>,
    tenant: Option<&str>,
) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(sqlx::query_as!(
        AuditEntry,
        "SELECT id, at, actor, action, tenant, target, detail FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text IS NULL OR tenant = $3) ORDER BY id DESC LIMIT $2",
        before,
        limit,
        tenant
    )
    .fetch_all(pool)
    .await?)
}
