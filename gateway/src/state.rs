//! Shared state of the gateway's handlers. Gateways keep no task state of their
//! own: everything a client reads comes from PostgreSQL, so any gateway of
//! several answers the same.

use std::sync::Arc;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::config::GatewayConfig;

/// Cloned into every handler.
#[derive(Clone)]
pub struct AppState {
    /// Configuration (limits, timings, names).
    pub cfg: Arc<GatewayConfig>,
    /// PostgreSQL pool.
    pub pool: PgPool,
    /// Idempotent task producer.
    pub producer: FutureProducer,
    /// What the broker accepts per queue (a task's record must fit: 413 otherwise).
    pub record_limits: Arc<yadtq_core::kafka::RecordLimits>,
    /// Group inserts of single submissions.
    pub inserter: Arc<crate::inserter::Inserter>,
    /// Marks acknowledged tasks published, in batches.
    pub marker: crate::marker::Marker,
    /// Checks API keys.
    pub auth: Arc<crate::auth::Authenticator>,
    /// Waiters on task changes (status or progress, from PostgreSQL NOTIFY).
    pub events: crate::notify::TaskEvents,
    /// The waiter cap and the rate limiter.
    pub edge: Arc<crate::edge::Edge>,
    /// Where tasks go: the dedicated tenants, as last read from PostgreSQL.
    pub routes: yadtq_core::tenants::Routes,
}

impl AppState {
    /// What the broker accepts on the topic `task` goes to (its queue's, or
    /// its tenant's own when the tenant is dedicated).
    pub fn record_limit(&self, task: &yadtq_core::store::tasks::NewTask) -> yadtq_core::kafka::RecordLimit {
        self.record_limits.of(&self.routes.topic(&task.queue, &task.tenant))
    }
}
