//! The rescuer: tasks held by dead or stopped workers go back to `queued` (the
//! publisher then sends them again) or, out of attempts, to `failed` with kind
//! `worker_lost`.

use std::time::Duration;

use sqlx::PgPool;

/// One rescuer pass; logs what it moved and returns it (errors are logged and
/// count as nothing moved; the next pass retries).
pub async fn rescue(pool: &PgPool, dead_after: Duration) -> crate::store::Rescued {
    match crate::store::rescue_dead_workers(pool, dead_after).await {
        Ok(r) => {
            if r.requeued > 0 || r.failed > 0 {
                tracing::info!(requeued = r.requeued, failed = r.failed, "rescued tasks of dead or stopped workers");
            }
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "rescuer pass failed");
            Default::default()
        }
    }
}
