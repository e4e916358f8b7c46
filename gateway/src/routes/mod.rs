//! HTTP routes. [`router`] builds the whole API from an [`AppState`], so tests
//! can use it without a socket.

pub mod admin;
pub mod batch;
pub mod control;
pub mod dead_letters;
pub mod events;
pub mod health;
pub mod limits;
pub mod me;
pub mod metrics;
pub mod paging;
pub mod queues;
pub mod schedules;
pub mod tasks;
pub mod workers;
pub mod workflows;

#[cfg(test)]
mod tests;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use schedules as sched;
use tower_http::trace::TraceLayer;

/// 405 as a problem document (axum's own has an empty body).
async fn method_not_allowed(method: axum::http::Method) -> crate::problem::ApiError {
    crate::problem::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on this path; the Allow header lists the methods that are"),
        None,
    )
}

/// Longest request target (path and query) the gateway reads: longer is a 414
/// problem document. The longest valid one (a 128-character id, every list
/// filter) is far shorter.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) a request may carry: more is a 431
/// problem document. hyper itself answers a bare 431 (no body) above about
/// 400 KiB of headers or 100 header fields, before any of this code runs.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// 414 / 431 problem documents for a request target or headers above the
/// limits (hyper's own answers to those have an empty body).
async fn request_limits(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return crate::problem::ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {uri} bytes; the limit is {MAX_URI_BYTES}"),
            Some("path"),
        )
        .into_response();
    }
    let headers: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if headers > MAX_HEADER_BYTES {
        return crate::problem::ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request's headers are {headers} bytes; the limit is {MAX_HEADER_BYTES}"),
            Some("headers"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The gateway's router with its middleware (body limit, request tracing).
/// Every route but the public ones (`/healthz`, `/readyz`, `/openapi.json`)
/// needs an API key ([`crate::auth::require_key`]); `/metrics` checks its own
/// rule (the `metrics` scope unless `--metrics-public`).
pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.limits.max_body_bytes;
    let batch_limit = state.cfg.limits.max_batch_body_bytes;
    let workflow_limit = state.cfg.max_workflow_body_bytes;
    let cors = crate::edge::cors(&state.cfg.edge);
    let edge = state.edge.clone();
    let api = Router::new()
        .route("/tasks", post(tasks::submit).get(tasks::list))
        .route("/tasks/batch", post(batch::submit_batch).layer(DefaultBodyLimit::max(batch_limit)))
        .route("/tasks/wait", post(workflows::wait))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/events", get(events::stream))
        .route("/tasks/{id}/attempts", get(control::attempts))
        .route("/tasks/{id}/cancel", post(control::cancel))
        .route("/tasks/{id}/retry", post(control::retry))
        .route("/schedules", post(sched::create).get(sched::list))
        .route("/schedules/{id}", get(sched::get).patch(sched::update).delete(sched::delete))
        .route("/schedules/{id}/trigger", post(sched::trigger))
        .route("/schedules/{id}/backfill", post(sched::backfill))
        .route("/limits", get(limits::list))
        .route("/limits/{name}", get(limits::get).put(limits::put).delete(limits::delete))
        .route("/workers", get(workers::list))
        .route("/queues", get(queues::list))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/{partition}/{offset}", get(dead_letters::get))
        .route("/dead-letters/{partition}/{offset}/replay", post(dead_letters::replay))
        .route("/admin/keys", post(admin::create_key).get(admin::list_keys))
        .route("/admin/keys/{id}/revoke", post(admin::revoke_key))
        .route("/admin/audit", get(admin::audit))
        .route("/me", get(me::get))
        .route("/workflows", post(workflows::submit).get(workflows::list).layer(DefaultBodyLimit::max(workflow_limit)))
        .route("/workflows/{id}", get(workflows::get))
        .route("/workflows/{id}/cancel", post(workflows::cancel))
        // Only matched routes: an unknown path stays a 404, a wrong method a 405.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::require_key));
    let router = Router::new()
        .merge(api)
        .merge(crate::ui::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/metrics", get(metrics::render))
        // After the routes: it applies to those registered before it. axum
        // adds the `Allow` header to the 405 this answers.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { crate::problem::ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(crate::edge::json_bodies))
        .layer(axum::middleware::from_fn(request_limits))
        .layer(axum::middleware::from_fn_with_state(edge, crate::edge::rate_limit))
        .layer(axum::middleware::from_fn(metrics::record));
    // Outside the limits, so a browser can read their answers (429, 415).
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(TraceLayer::new_for_http()).with_state(state)
}
