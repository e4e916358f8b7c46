//! The worker's admin listener (`--admin-listen`): `/healthz` (the process
//! answers), `/readyz` (the readiness rule of docs/architecture.md: joined its consumer
//! group and not fenced; an idle worker with no partitions is ready) and
//! `/metrics` (Prometheus text format; with `--metrics-token`, only for
//! `Authorization: Bearer <token>`). The probes stay open: they reveal only
//! up or ready, and a kubelet or load balancer sends no credentials.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use yadtq_core::model::WorkerState;

use crate::liveness::Liveness;

/// What the admin routes read: the worker's liveness, and the SHA-256 of
/// the `/metrics` token (compared as digests, so a comparison's time says
/// nothing about the token).
#[derive(Clone)]
struct Admin {
    live: Arc<Liveness>,
    token_hash: Option<Vec<u8>>,
}

/// Binds `addr` and serves the admin routes until `stop` is cancelled;
/// `/metrics` requires `token` as a Bearer token when it is `Some`.
///
/// Errors, naming the address, when it cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    token: Option<String>,
    live: Arc<Liveness>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--admin-listen: cannot listen on {addr}: {e}"))?;
    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Admin { live, token_hash: token.as_deref().map(yadtq_core::auth::token_hash) });
    tracing::info!(%addr, metrics_token = token.is_some(), "admin listener up (/healthz, /readyz, /metrics)");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok(())
}

/// 200 when the worker is `ready` or `idle`, else 503; the body names the state.
async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    let state = admin.live.state();
    let ready = matches!(state, WorkerState::Ready | WorkerState::Idle);
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(serde_json::json!({"ready": ready, "state": state})))
}

/// The metrics, or 401 with `WWW-Authenticate: Bearer` when a token is set
/// and the request does not carry it.
async fn metrics(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if let Some(want) = &admin.token_hash {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| yadtq_core::auth::token_hash(t.trim()));
        if given.as_ref() != Some(want) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"yadtq-worker\"")],
                "this worker's /metrics needs Authorization: Bearer <YADTQ_WORKER_METRICS_TOKEN>\n",
            )
                .into_response();
        }
    }
    admin.live.export_heartbeat_age();
    ([(header::CONTENT_TYPE, yadtq_core::metrics::CONTENT_TYPE)], yadtq_core::metrics::render()).into_response()
}
