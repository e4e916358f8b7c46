//! The worker's admin listener (`--admin-listen`): `/healthz` (the process
//! answers), `/readyz` (the readiness rule of docs/architecture.md: joined its consumer
//! group and not fenced; an idle worker with no partitions is ready) and
//! `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use yadtq_core::model::WorkerState;

use crate::liveness::Liveness;

/// Binds `addr` and serves the admin routes until `stop` is cancelled.
///
/// Errors, naming the address, when it cannot be bound.
pub async fn serve(addr: SocketAddr, live: Arc<Liveness>, stop: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--admin-listen: cannot listen on {addr}: {e}"))?;
    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(live);
    tracing::info!(%addr, "admin listener up (/healthz, /readyz, /metrics)");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok(())
}

/// 200 when the worker is `ready` or `idle`, else 503; the body names the state.
async fn readyz(State(live): State<Arc<Liveness>>) -> impl IntoResponse {
    let state = live.state();
    let ready = matches!(state, WorkerState::Ready | WorkerState::Idle);
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(serde_json::json!({"ready": ready, "state": state})))
}

async fn metrics(State(live): State<Arc<Liveness>>) -> impl IntoResponse {
    live.export_heartbeat_age();
    ([(header::CONTENT_TYPE, yadtq_core::metrics::CONTENT_TYPE)], yadtq_core::metrics::render())
}
