//! The `api_keys` table: API keys (only their SHA-256 is stored), their
//! tenant, scopes and queues; creation and revocation write the audit log in
//! the same transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{audit, StoreError};
use crate::auth::{self, Scope};

/// A key as listings show it: never the token, only its first characters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    /// Key id (what `revoke` takes).
    pub id: Uuid,
    /// Tenant whose tasks the key reaches.
    pub tenant: String,
    /// Free text given at creation, e.g. "billing service".
    pub name: String,
    /// The token's first 12 characters.
    pub token_prefix: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Queues the key may submit to and read; null: every queue.
    pub queues: Option<Vec<String>>,
    /// Who created it: `key:<id>` (admin API), `cli` or `bootstrap`.
    pub created_by: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time; null while the key works.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Tenant (see [`auth::is_valid_tenant`]).
    pub tenant: String,
    /// Free text.
    pub name: String,
    /// At least one scope.
    pub scopes: Vec<Scope>,
    /// Queues the key is limited to; `None`: every queue.
    pub queues: Option<Vec<String>>,
}

/// A statement reading [`KeyRow`]s: `$before` and `$after` are its text
/// around the column list, which is spliced here once because `query_as!`
/// only takes literals.
macro_rules! key_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            KeyRow,
            $before + "id, tenant, name, token_prefix, scopes, queues, created_by, created_at, revoked_at" + $after
            $(, $arg)*
        )
    };
}

/// An `api_keys` row as [`key_query!`] reads it; [`ApiKey`] is its view.
struct KeyRow {
    id: Uuid,
    tenant: String,
    name: String,
    token_prefix: String,
    scopes: Vec<String>,
    queues: Option<Vec<String>>,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.id,
            tenant: r.tenant,
            name: r.name,
            token_prefix: r.token_prefix,
            // A scope a newer release added is dropped: this release cannot grant it.
            scopes: r.scopes.iter().filter_map(|s| s.parse().ok()).collect(),
            queues: r.queues,
            created_by: r.created_by,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

fn scope_names(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_string()).collect()
}

/// Stores `key` with `token` (its hash), created by `actor`, and the
/// `key.create` audit row, on `tx` (the caller's transaction). `None`, and
/// nothing written, when a key with this token exists.
async fn insert(tx: &mut PgConnection, key: &NewKey, token: &str, actor: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = key_query!(
        "INSERT INTO api_keys (id, tenant, name, token_hash, token_prefix, scopes, queues, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (token_hash) DO NOTHING
         RETURNING ",
        "",
        Uuid::now_v7(),
        key.tenant,
        key.name,
        auth::token_hash(token),
        auth::token_prefix(token),
        &scope_names(&key.scopes),
        key.queues.as_deref(),
        actor
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(created) = row.map(ApiKey::from) else { return Ok(None) };
    let id = created.id.to_string();
    audit::record(&mut *tx, actor, "key.create", Some(&created.tenant), Some(&id), &detail(&created)).await?;
    Ok(Some(created))
}

/// A new key and its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// Send as `Authorization: Bearer <token>`. Shown only in this answer:
    /// the gateway keeps only its hash.
    pub token: String,
}

/// Creates a key for `key` with a fresh token, recording `actor` (`key:<id>`,
/// `cli`) in the audit log; returns the key and its token, which is shown
/// once and never stored.
pub async fn create(pool: &PgPool, key: &NewKey, actor: &str) -> Result<CreatedKey, StoreError> {
    let token = auth::new_token();
    let mut tx = pool.begin().await?;
    let created = insert(&mut tx, key, &token, actor).await?.expect("a fresh 256-bit token is not stored yet");
    tx.commit().await?;
    Ok(CreatedKey { key: created, token })
}

/// What [`bootstrap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// The key was stored now.
    Added,
    /// The key was stored by an earlier release without the `cluster`
    /// scope, and was given it now.
    Upgraded,
    /// A key with this token was stored before (revoked or not): unchanged.
    Exists,
}

/// The scopes of the bootstrap key: `admin` too, so that a gateway of an
/// earlier release (which drops `cluster`, a scope it does not know) still
/// takes it as an admin key during a rolling upgrade.
const BOOTSTRAP_SCOPES: [Scope; 2] = [Scope::Admin, Scope::Cluster];

/// Stores `token` as a `cluster` (and `admin`) key of the default tenant
/// named `bootstrap` unless a key with that token exists (revoked included:
/// a revoked bootstrap token stays revoked). A working key with that token
/// that lacks `cluster` (stored by an earlier release) is given it, with a
/// `key.upgrade` audit entry.
pub async fn bootstrap(pool: &PgPool, token: &str) -> Result<Bootstrap, StoreError> {
    let key = NewKey {
        tenant: auth::DEFAULT_TENANT.into(),
        name: "bootstrap".into(),
        scopes: BOOTSTRAP_SCOPES.to_vec(),
        queues: None,
    };
    let mut tx = pool.begin().await?;
    if insert(&mut tx, &key, token, "bootstrap").await?.is_some() {
        tx.commit().await?;
        return Ok(Bootstrap::Added);
    }
    let upgraded = key_query!(
        "UPDATE api_keys SET scopes = (SELECT array_agg(DISTINCT s ORDER BY s) FROM unnest(scopes || $2::text[]) s)
         WHERE token_hash = $1 AND revoked_at IS NULL AND NOT scopes @> $2::text[]
         RETURNING ",
        "",
        auth::token_hash(token),
        &scope_names(&BOOTSTRAP_SCOPES)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(key) = upgraded.map(ApiKey::from) else { return Ok(Bootstrap::Exists) };
    audit::record(&mut *tx, "bootstrap", "key.upgrade", Some(&key.tenant), Some(&key.id.to_string()), &detail(&key))
        .await?;
    tx.commit().await?;
    Ok(Bootstrap::Upgraded)
}

fn detail(k: &ApiKey) -> serde_json::Value {
    serde_json::json!({ "name": k.name, "scopes": k.scopes, "queues": k.queues, "token_prefix": k.token_prefix })
}

/// The working (not revoked) key whose token hashes to `hash`.
pub async fn find(pool: &PgPool, hash: &[u8]) -> Result<Option<ApiKey>, StoreError> {
    let row = key_query!("SELECT ", " FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL", hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(ApiKey::from))
}

/// Every key, newest first; only `tenant`'s when given.
pub async fn list(pool: &PgPool, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
    let rows = key_query!(
        "SELECT ",
        " FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at DESC, id DESC",
        tenant
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// Result of [`revoke`].
#[derive(Debug)]
pub enum Revoked {
    /// Revoked now.
    Done(ApiKey),
    /// It was revoked before; unchanged.
    Already(ApiKey),
    /// The caller's `allow` refused it; unchanged.
    Refused {
        /// The key, as it is.
        key: ApiKey,
        /// True when it is the last working key of its tenant holding
        /// `admin` or `cluster`, or the last working `cluster` key of all.
        last_admin: bool,
    },
    /// No key with this id.
    NotFound,
}

/// Scopes that administer a key's tenant.
const ADMINISTERING: [Scope; 2] = [Scope::Admin, Scope::Cluster];

/// Revokes key `id`, recording `actor` in the audit log, when `allow(key,
/// last_admin)` says so (`last_admin`: no other working key of its tenant
/// holds `admin` or `cluster`, or it holds `cluster` and no other working
/// key does, so revoking it would leave no key administering every tenant). Gateways stop accepting it once their key
/// cache entry expires (`--auth-cache-ttl`).
///
/// The tenant's administering keys are locked (in id order, so two
/// revocations cannot deadlock) before the count: of two concurrent
/// revocations of a tenant's last two admins, the second sees the first.
pub async fn revoke(
    pool: &PgPool,
    id: Uuid,
    actor: &str,
    allow: impl FnOnce(&ApiKey, bool) -> bool,
) -> Result<Revoked, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(key) = key_query!("SELECT ", " FROM api_keys WHERE id = $1", id).fetch_optional(&mut *tx).await? else {
        return Ok(Revoked::NotFound);
    };
    let key = ApiKey::from(key);
    if key.revoked_at.is_some() {
        return Ok(Revoked::Already(key));
    }
    // Every working key that administers the tenant, and every `cluster` key
    // (which administers every tenant), locked.
    let holders = sqlx::query!(
        r#"SELECT id, tenant = $1 AS "same_tenant!", $3 = ANY(scopes) AS "cluster!"
           FROM api_keys
           WHERE revoked_at IS NULL AND ((tenant = $1 AND scopes && $2::text[]) OR $3 = ANY(scopes))
           ORDER BY id FOR UPDATE"#,
        key.tenant,
        &scope_names(&ADMINISTERING),
        Scope::Cluster.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    let others = || holders.iter().filter(|h| h.id != id);
    let administers = key.scopes.iter().any(|s| ADMINISTERING.contains(s));
    let last_of_tenant = administers && !others().any(|h| h.same_tenant);
    let last_cluster = key.scopes.contains(&Scope::Cluster) && !others().any(|h| h.cluster);
    let last_admin = last_of_tenant || last_cluster;
    if !allow(&key, last_admin) {
        return Ok(Revoked::Refused { key, last_admin });
    }
    let row =
        key_query!("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ", "", id)
            .fetch_optional(&mut *tx)
            .await?;
    // Revoked meanwhile by another transaction (the key row itself is not locked above unless it administers).
    let Some(key) = row.map(ApiKey::from) else { return Ok(Revoked::Already(key)) };
    audit::record(&mut *tx, actor, "key.revoke", Some(&key.tenant), Some(&key.id.to_string()), &detail(&key)).await?;
    tx.commit().await?;
    Ok(Revoked::Done(key))
}
