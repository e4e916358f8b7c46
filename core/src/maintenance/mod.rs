//! Maintenance run by every gateway and worker process; only the elected leader
//! acts. Each pass (every P seconds) the leader runs the publisher (queued rows
//! not yet on Kafka) and, once it has led for D seconds, the rescuer (tasks of
//! dead or stopped workers). Waiting D after winning the lease means a new
//! leader, or one whose connection dropped, never declares live workers dead
//! just because nobody could record their heartbeats for a while.

mod leader;
mod publisher;
mod rescuer;

use std::time::Instant;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use leader::Lease;
pub use publisher::publish_pending;
pub use rescuer::rescue;

use crate::config::CommonConfig;

/// Runs the maintenance loop until `shutdown` is cancelled, then releases the
/// lease so another process takes over at once.
pub async fn run(cfg: CommonConfig, pool: PgPool, producer: FutureProducer, shutdown: CancellationToken) {
    let names = cfg.names();
    let topic = names.task_topic();
    let mut lease = Lease::new(cfg.database_url.clone(), names.leader_lock_key());
    let mut ticker = tokio::time::interval(cfg.maintenance_period());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if !lease.hold().await {
            if leading_since.take().is_some() {
                tracing::warn!("maintenance leadership lost");
            }
            continue;
        }
        let since = *leading_since.get_or_insert_with(|| {
            tracing::info!("became maintenance leader; rescuer starts after the dead-after threshold");
            Instant::now()
        });
        if since.elapsed() >= cfg.dead_after() {
            rescue(&pool, cfg.dead_after()).await;
        }
        publish_pending(&pool, &producer, &topic).await;
    }
    lease.release().await;
}
