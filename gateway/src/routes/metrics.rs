//! `GET /metrics` (Prometheus text format) and the middleware that counts
//! and times every request by method, matched route and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use yadtq_core::auth::Scope;
use yadtq_core::metrics as m;

use crate::state::AppState;

/// The process's metrics in the Prometheus text exposition format.
#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "getMetrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4 (docs/operations.md lists the metrics)",
         content_type = "text/plain", body = String),
        (status = 401, description = "Unless `--metrics-public`: no key, or an unknown or revoked one", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Unless `--metrics-public`: the key lacks the `metrics` scope", body = crate::problem::Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = [])),
)]
pub async fn render(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, crate::problem::ApiError> {
    // A key with the `metrics` scope (`admin` implies it) unless the operator
    // opened the route for a private scrape network.
    if !state.cfg.auth.metrics_public {
        state.auth.authenticate(&headers).await?.require(Scope::Metrics)?;
    }
    Ok(([(header::CONTENT_TYPE, m::CONTENT_TYPE)], m::render()))
}

/// Counts and times each request. Labels stay bounded: the route is the
/// matched path pattern (`/tasks/{id}`), `unmatched` for anything else, and
/// methods outside the standard ones count as `OTHER`.
pub async fn record(req: Request, next: Next) -> Response {
    let method = match *req.method() {
        Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::HEAD | Method::OPTIONS => {
            req.method().as_str().to_owned()
        }
        _ => "OTHER".to_owned(),
    };
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    metrics::counter!(m::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => code.to_string())
        .increment(1);
    // The histogram carries the status class, not the code: each label set
    // costs a full set of buckets, and the class is what latency is split
    // by (fast 4xx refusals apart from real work, 5xx apart from both).
    let class = match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    // For an event stream this is the time to its first byte, not its length.
    metrics::histogram!(m::HTTP_DURATION, "method" => method, "route" => route, "status" => class)
        .record(started.elapsed().as_secs_f64());
    resp
}
