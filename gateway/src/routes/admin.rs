//! The admin API: API keys (`/admin/keys`) and the audit log
//! (`/admin/audit`). Scope `admin` reaches the key's own tenant, `cluster`
//! every tenant (docs/security.md). `yadtq-gateway keys` does the same from
//! the command line, and is with the bootstrap key the only way to grant
//! `cluster`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use yadtq_core::auth::Scope;
use yadtq_core::names::QueueName;
use yadtq_core::store::audit::{self, AuditEntry};
use yadtq_core::store::keys::{self, ApiKey, CreatedKey, NewKey, Revoked};

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Body of `POST /admin/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Tenant whose tasks the key reaches (1-64 letters, digits, `-`, `_`);
    /// default: the caller's. Another tenant than the caller's needs the `cluster` scope.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant: Option<String>,
    /// What the key may do (at least one; `admin` implies every scope but
    /// `cluster` within the tenant). `cluster` is refused (403): only the
    /// bootstrap key and `yadtq-gateway keys create` grant it.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Queues the key is limited to; absent or null: every queue.
    #[schema(value_type = Option<Vec<QueueName>>)]
    pub queues: Option<Vec<String>>,
    /// What the key is for, shown in listings (at most 200 characters, no NUL).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
}

/// Create an API key. The token is in this answer only.
#[utoipa::path(
    post, path = "/admin/keys", tag = "admin", operation_id = "createKey",
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedKey),
        (status = 400, description = "Invalid body; `field` names the culprit", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope; or `tenant` is not the caller's and the key lacks `cluster` (`field` is `tenant`); or `scopes` holds `cluster`, which no key grants over HTTP (`field` is `scopes`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Scope::Admin)?;
    super::tasks::require_json(&headers)?;
    let body = super::tasks::read_body(body, state.cfg.limits.max_body_bytes)?;
    let req: CreateKey = crate::submit::parse(&body)?;
    let new = NewKey {
        tenant: req.tenant.unwrap_or_else(|| caller.tenant.to_string()),
        name: req.name,
        scopes: req.scopes,
        queues: req.queues,
    };
    crate::keys::check_new_key(&new).map_err(|e| ApiError::bad_request(e.field, e.message))?;
    caller.require_tenant(&new.tenant, "tenant")?;
    // Not even a cluster key: a leaked one must not be able to mint more of itself.
    if new.scopes.contains(&Scope::Cluster) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the 'cluster' scope is granted only by YADTQ_BOOTSTRAP_ADMIN_KEY and `yadtq-gateway keys create`, \
             never over HTTP",
            Some("scopes"),
        ));
    }
    let created = keys::create(&state.pool, &new, &caller.actor()).await?;
    tracing::info!(key = %created.key.id, tenant = %created.key.tenant, by = %caller.actor(), "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Filters of `GET /admin/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Only this tenant's keys. Default: the caller's tenant's, or every
    /// tenant's for a `cluster` key; another tenant needs `cluster`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant: Option<String>,
}

/// List API keys (never their tokens), newest first, revoked ones included.
#[utoipa::path(
    get, path = "/admin/keys", tag = "admin", operation_id = "listKeys", params(KeysQuery),
    responses(
        (status = 200, description = "Keys", body = Vec<ApiKey>),
        (status = 400, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope, or `tenant` is not the caller's and the key lacks `cluster` (`field` is `tenant`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    caller.require(Scope::Admin)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("tenant", e.body_text()))?;
    if q.tenant.as_deref().is_some_and(|t| !yadtq_core::auth::is_valid_tenant(t)) {
        return Err(ApiError::bad_request("tenant", format!("tenant must be {}", yadtq_core::auth::TENANT_RULE)));
    }
    if let Some(t) = &q.tenant {
        caller.require_tenant(t, "tenant")?;
    }
    Ok(Json(keys::list(&state.pool, q.tenant.as_deref().or(caller.admin_tenant())).await?))
}

/// Query of `POST /admin/keys/{id}/revoke`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    /// Comma separated confirmations a revocation needs (a 409 names them):
    /// `self` when the key revokes itself, `last-admin` when it is the last
    /// working key of its tenant holding `admin` or `cluster`.
    #[param(pattern = "^(self|last-admin)(,(self|last-admin))?$")]
    pub confirm: Option<String>,
}

/// What a revocation must confirm, as `confirm` values.
const CONFIRM_SELF: &str = "self";
const CONFIRM_LAST_ADMIN: &str = "last-admin";

/// Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s
/// by default). A key revoking itself, and the last working key of a tenant
/// holding `admin` or `cluster`, are revoked only when `confirm` says so
/// (409 otherwise): a leaked key can still be killed by its holder, not by
/// mistake.
#[utoipa::path(
    post, path = "/admin/keys/{id}/revoke", tag = "admin", operation_id = "revokeKey",
    params(("id" = Uuid, Path, description = "Key id"), RevokeQuery),
    responses(
        (status = 200, description = "Revoked (or revoked before: `revoked_at` says when)", body = ApiKey),
        (status = 400, description = "Malformed id or `confirm` (`field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key, or one of another tenant and the key lacks `cluster`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is the caller's own, or its tenant's last working key holding `admin` or `cluster` (or the last working `cluster` key), and `confirm` does not say so (`field` is `confirm`; the detail names the value to pass, e.g. `confirm=self,last-admin`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    query: Result<Query<RevokeQuery>, QueryRejection>,
) -> Result<Json<ApiKey>, ApiError> {
    caller.require(Scope::Admin)?;
    let Path(id) = id.map_err(|e| ApiError::bad_request("id", e.body_text()))?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("confirm", e.body_text()))?;
    let confirmed: Vec<&str> = q.confirm.as_deref().map_or_else(Vec::new, |c| c.split(',').collect());
    if let Some(bad) = confirmed.iter().find(|c| ![CONFIRM_SELF, CONFIRM_LAST_ADMIN].contains(c)) {
        let msg = format!("unknown confirmation '{bad}'; pass {CONFIRM_SELF} and/or {CONFIRM_LAST_ADMIN}");
        return Err(ApiError::bad_request("confirm", msg));
    }
    // Every confirmation the key needs, confirmed or not, so a 409 names the whole value to pass.
    let needs = |k: &ApiKey, last_admin: bool| {
        let mut needs = Vec::new();
        if caller.key_id == Some(k.id) {
            needs.push(CONFIRM_SELF);
        }
        if last_admin {
            needs.push(CONFIRM_LAST_ADMIN);
        }
        needs
    };
    let outcome = keys::revoke(&state.pool, id, &caller.actor(), |k, last_admin| {
        caller.administers(Some(&k.tenant)) && needs(k, last_admin).iter().all(|n| confirmed.contains(n))
    })
    .await?;
    match outcome {
        Revoked::Done(k) => {
            tracing::info!(key = %k.id, tenant = %k.tenant, by = %caller.actor(), "API key revoked");
            Ok(Json(k))
        }
        Revoked::Already(k) if caller.administers(Some(&k.tenant)) => Ok(Json(k)),
        Revoked::Refused { key, last_admin } if caller.administers(Some(&key.tenant)) => {
            let needs = needs(&key, last_admin);
            let why = needs
                .iter()
                .map(|n| match *n {
                    CONFIRM_SELF => "it is the key making this request".to_string(),
                    _ => format!(
                        "it is the last working key administering tenant '{}' (or the last with the `cluster` scope)",
                        key.tenant
                    ),
                })
                .collect::<Vec<_>>()
                .join(" and ");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{why}: pass ?confirm={} to revoke it anyway", needs.join(",")),
                Some("confirm"),
            ))
        }
        // Another tenant's key reads as absent, as its tasks do.
        _ => Err(ApiError::not_found(format!("no key with id '{id}'"))),
    }
}

/// Query of `GET /admin/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(minimum = 1)]
    pub cursor: Option<i64>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

/// Read the audit log of admin actions (key creation and revocation,
/// dead-letter replays, changes of the dedicated tenants), newest first:
/// the caller's tenant's entries, or every entry for a `cluster` key.
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin", operation_id = "listAudit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Scope::Admin)?;
    let Query(q) = query.map_err(|e| {
        let field = if e.body_text().contains("cursor") { "cursor" } else { "limit" };
        ApiError::bad_request(field, e.body_text())
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "limit must be 1 to 500"));
    }
    if q.cursor.is_some_and(|c| c < 1) {
        return Err(ApiError::bad_request("cursor", "cursor must be a `next_cursor` of an earlier page (1 or more)"));
    }
    let entries = audit::list(&state.pool, limit, q.cursor, caller.admin_tenant()).await?;
    let next_cursor = if entries.len() as i64 == limit { entries.last().map(|e| e.id) } else { None };
    Ok(Json(AuditPage { entries, next_cursor }))
}
