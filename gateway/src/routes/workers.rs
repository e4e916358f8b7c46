//! `GET /workers`: the worker roster.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use yadtq_core::auth::Scope;
use yadtq_core::model::Worker;

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Filters of `GET /workers`.
#[derive(Debug, Deserialize, IntoParams)]
// `in: query`: utoipa cannot infer it through the handler's `Result<Query<_>, _>`.
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// `true`: only live workers; `false`: only dead or stopped ones.
    pub alive: Option<bool>,
}

/// List workers, newest first. `alive` is derived from the last heartbeat
/// against the database clock and the dead-after threshold.
#[utoipa::path(
    get, path = "/workers", tag = "workers", operation_id = "listWorkers",
    params(WorkersQuery),
    responses(
        (status = 200, description = "Workers", body = Vec<Worker>),
        (status = 400, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<WorkersQuery>, QueryRejection>,
) -> Result<Json<Vec<Worker>>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("alive", e.body_text()))?;
    let workers = yadtq_core::store::workers::list(&state.pool, state.cfg.common.dead_after(), q.alive).await?;
    Ok(Json(workers.into_iter().map(|w| caller.present_worker(w)).collect()))
}
