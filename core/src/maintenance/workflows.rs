//! The workflow services run by the leader (docs/workflows.md):
//! - the repair pass, the safety net of fan-in: a `waiting` node whose
//!   parents are all terminal (an older release's worker recorded a parent
//!   without fanning in, or a process stopped mid-cascade) leaves `waiting`
//!   as the fan-in would have moved it, and is published; each one counts
//!   in [`crate::metrics::WORKFLOW_REPAIRS`], which stays 0 in normal runs;
//! - the workflow cleaner: workflows whose nodes all finished past the
//!   retention are deleted with their nodes (the tasks cleaner leaves nodes alone);
//! - the sample of workflows by status ([`crate::metrics::WORKFLOWS`]).

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::store::workflows;
use crate::tenants::Routes;

/// Nodes repaired per pass at most.
const BATCH: i64 = 1000;

/// One repair pass; returns how many nodes it moved out of `waiting`.
/// Nodes younger than `min_age` are left to the normal mechanism.
pub async fn repair(routes: &Routes, pool: &PgPool, producer: &FutureProducer, min_age: Duration) -> u64 {
    match workflows::repair(pool, min_age, BATCH).await {
        Ok(r) => {
            if r.repaired > 0 {
                tracing::warn!(
                    repaired = r.repaired,
                    "workflow repair: released waiting nodes whose parents had all finished"
                );
                metrics::counter!(crate::metrics::WORKFLOW_REPAIRS).increment(r.repaired);
            }
            super::publisher::publish_rows(routes, pool, producer, r.released).await;
            r.repaired
        }
        Err(e) => {
            tracing::warn!(error = %e, "workflow repair pass failed");
            0
        }
    }
}

/// One workflow cleaner pass, then the sample of workflows by status.
pub async fn clean_and_sample(pool: &PgPool, retention: Duration) {
    match workflows::delete_expired(pool, retention, super::cleaner::BATCH).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "cleaner: deleted finished workflows past retention"),
        Err(e) => tracing::warn!(error = %e, "cleaner: deleting workflows failed"),
    }
    match workflows::count_by_status(pool).await {
        Ok(counts) => {
            for status in ["running", "success", "failed", "cancelled"] {
                let n = counts.get(status).copied().unwrap_or(0);
                metrics::gauge!(crate::metrics::WORKFLOWS, "status" => status).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count workflows by status"),
    }
}
