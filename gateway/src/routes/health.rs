//! `GET /healthz` (process up) and `GET /readyz` (PostgreSQL reachable; Kafka
//! reported but not required, so a Kafka outage keeps gateways in rotation).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Health or readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// `up` or `down` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<&'static str>,
    /// `up`, or `down: <reason>` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz", security(()), responses(
    (status = 200, description = "The process answers", body = Health),
))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", postgres: None, kafka: None })
}

/// Readiness: 200 when PostgreSQL answers, 503 when it does not. Kafka's state
/// is reported in the body either way.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", security(()), responses(
    (status = 200, description = "PostgreSQL reachable", body = Health),
    (status = 503, description = "PostgreSQL unreachable", body = Health),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let probe = Duration::from_secs(1);
    let (pg, kafka) = tokio::join!(
        tokio::time::timeout(probe * 2, yadtq_core::store::ping(&state.pool)),
        yadtq_core::kafka::probe(&state.producer, probe),
    );
    let pg_up = matches!(pg, Ok(true));
    let kafka = match kafka {
        Ok(_) => "up".to_string(),
        Err(e) => format!("down: {e}"),
    };
    let (code, status) =
        if pg_up { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") };
    (code, Json(Health { status, postgres: Some(if pg_up { "up" } else { "down" }), kafka: Some(kafka) }))
}
