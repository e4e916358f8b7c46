//! The admin API (scope `admin`): API keys (`/admin/keys`) and the audit log
//! (`/admin/audit`). `yadtq-gateway keys` does the same from the command line.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use yadtq_core::auth::{Scope, DEFAULT_TENANT};
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
    /// Tenant whose tasks the key reaches (1-64 letters, digits, `-`, `_`); default `default`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant: Option<String>,
    /// What the key may do (at least one; `admin` implies every scope).
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Queues the key is limited to; absent or null: every queue.
    #[schema(value_type = Option<Vec<QueueName>>)]
    pub queues: Option<Vec<String>>,
    /// What the key is for, shown in listings (at most 200 characters).
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
        tenant: req.tenant.unwrap_or_else(|| DEFAULT_TENANT.into()),
        name: req.name,
        scopes: req.scopes,
        queues: req.queues,
    };
    crate::keys::check_new_key(&new).map_err(|(field, msg)| ApiError::bad_request(field, msg))?;
    let created = keys::create(&state.pool, &new, &caller.actor()).await?;
    tracing::info!(key = %created.key.id, tenant = %created.key.tenant, by = %caller.actor(), "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Filters of `GET /admin/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Only this tenant's keys.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant: Option<String>,
}

/// List API keys (never their tokens), newest first, revoked ones included.
#[utoipa::path(
    get, path = "/admin/keys", tag = "admin", operation_id = "listKeys", params(KeysQuery),
    responses(
        (status = 200, description = "Keys", body = Vec<ApiKey>),
        (status = 400, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"),
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
    Ok(Json(keys::list(&state.pool, q.tenant.as_deref()).await?))
}

/// Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s by default).
#[utoipa::path(
    post, path = "/admin/keys/{id}/revoke", tag = "admin", operation_id = "revokeKey",
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked (or revoked before: `revoked_at` says when)", body = ApiKey),
        (status = 400, description = "Malformed id (`field` is `id`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<ApiKey>, ApiError> {
    caller.require(Scope::Admin)?;
    let Path(id) = id.map_err(|e| ApiError::bad_request("id", e.body_text()))?;
    match keys::revoke(&state.pool, id, &caller.actor()).await? {
        Revoked::Done(k) => {
            tracing::info!(key = %k.id, tenant = %k.tenant, by = %caller.actor(), "API key revoked");
            Ok(Json(k))
        }
        Revoked::Already(k) => Ok(Json(k)),
        Revoked::NotFound => Err(ApiError::not_found(format!("no key with id '{id}'"))),
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

/// Read the audit log of admin actions (key creation and revocation), newest first.
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
    let entries = audit::list(&state.pool, limit, q.cursor).await?;
    let next_cursor = if entries.len() as i64 == limit { entries.last().map(|e| e.id) } else { None };
    Ok(Json(AuditPage { entries, next_cursor }))
}
