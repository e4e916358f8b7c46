//! HTTP routes. [`router`] builds the whole API from an [`AppState`], so tests
//! can use it without a socket.

pub mod health;
pub mod tasks;
pub mod workers;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::state::AppState;

/// The gateway's router with its middleware (body limit, request tracing).
pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.limits.max_body_bytes;
    Router::new()
        .route("/tasks", post(tasks::submit))
        .route("/tasks/{id}", get(tasks::get))
        .route("/workers", get(workers::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(|| async { axum::Json(ApiDoc::openapi()) }))
        .fallback(|| async { crate::problem::ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
