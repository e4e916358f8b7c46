//! `GET /me`: the caller's own key (tenant, scopes, queues), so a client
//! such as the dashboard can offer only what the key may do.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use yadtq_core::auth::Scope;

use crate::auth::Caller;
use crate::problem::Problem;

/// The key a request was made with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The key's id; null when the gateway runs with `--auth off` (every
    /// request then acts as a `cluster` key of the `default` tenant).
    pub key_id: Option<Uuid>,
    /// Tenant whose tasks the key reaches.
    pub tenant: String,
    /// What the key may do (`admin` implies every scope but `cluster` in the
    /// key's tenant; `cluster` every scope in every tenant).
    pub scopes: Vec<Scope>,
    /// Queues the key is limited to; null: every queue.
    pub queues: Option<Vec<String>>,
}

/// The caller's own key: its tenant, scopes and queues (never its token).
/// Any valid key may read it; no scope is needed.
#[utoipa::path(
    get, path = "/me", tag = "meta", operation_id = "getMe",
    responses(
        (status = 200, description = "The caller's key", body = Me),
        (status = 503, description = "PostgreSQL unavailable (the key could not be checked); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(caller: Caller) -> Json<Me> {
    Json(Me {
        key_id: caller.key_id,
        tenant: caller.tenant.to_string(),
        scopes: caller.scopes().to_vec(),
        queues: caller.queues().map(<[String]>::to_vec),
    })
}
