//! `GET /workers`: the worker roster, paginated like `GET /tasks`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use yadtq_core::auth::Scope;
use yadtq_core::model::Worker;

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Page size of `GET /workers` when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit` of `GET /workers`.
pub const MAX_LIMIT: i64 = 500;

/// Filters and paging of `GET /workers`.
#[derive(Debug, Deserialize, IntoParams)]
// `in: query`: utoipa cannot infer it through the handler's `Result<Query<_>, _>`.
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// `true`: only live workers; `false`: only dead or stopped ones.
    pub alive: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (digits).
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A page of workers, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerPage {
    /// The workers.
    pub workers: Vec<Worker>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List workers, newest first (by registration), with keyset pagination.
/// `alive` is derived from the last heartbeat against the database clock and
/// the dead-after threshold. Rows of workers stopped or dead for longer than
/// the retention are deleted by the maintenance leader.
#[utoipa::path(
    get, path = "/workers", tag = "workers", operation_id = "listWorkers",
    params(WorkersQuery),
    responses(
        (status = 200, description = "A page of workers", body = WorkerPage),
        (status = 400, description = "Invalid query parameter; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or the gateway's listing cap (`--max-concurrent-listings`) stayed full for `--listing-wait`; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<WorkersQuery>, QueryRejection>,
) -> Result<Json<WorkerPage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["alive", "limit", "cursor"])?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let before = super::paging::cursor(q.cursor.as_deref())?;
    let _place = state.edge.listing().await?;
    let page =
        yadtq_core::store::workers::list(&state.pool, state.cfg.common.dead_after, q.alive, limit, before).await?;
    let workers = page.workers.into_iter().map(|w| caller.present_worker(w)).collect();
    Ok(Json(WorkerPage { workers, next_cursor: page.next.map(|n| n.to_string()) }))
}
