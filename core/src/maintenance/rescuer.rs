//! The rescuer: tasks held by dead or stopped workers go back to `queued` and
//! are published again in the same pass (to the topic their tenant's route
//! names now: a dedicated tenant's task goes back to its own topic) (or, out of attempts, become `failed`
//! with kind `worker_lost`; `cancelled` when cancellation had been requested).

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::tenants::Routes;

/// One rescuer pass. What it moved is logged and counted in
/// [`crate::metrics::TASKS_RESCUED`]; errors are logged and the next pass retries.
pub(crate) async fn rescue(routes: &Routes, pool: &PgPool, producer: &FutureProducer, dead_after: Duration) {
    match crate::store::tasks::rescue(pool, dead_after).await {
        Ok(r) => {
            let (requeued, failed) = (r.requeued.len(), r.failed);
            if requeued > 0 || failed > 0 {
                tracing::info!(requeued, failed, "rescued tasks of dead or stopped workers");
                use crate::metrics::TASKS_RESCUED;
                metrics::counter!(TASKS_RESCUED, "result" => "requeued").increment(requeued as u64);
                metrics::counter!(TASKS_RESCUED, "result" => "failed").increment(failed.max(0) as u64);
            }
            // Unacknowledged ones stay unpublished for the publisher.
            super::publisher::publish_rows(routes, pool, producer, r.requeued).await;
        }
        Err(e) => tracing::warn!(error = %e, "rescuer pass failed"),
    }
}
