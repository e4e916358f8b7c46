//! Maintenance run by every gateway and worker process; only the elected leader
//! acts. The lease loop keeps (or competes for) the leader lock every P
//! seconds; the services run as separate loops while this process leads, so a
//! slow one (the publisher waiting out a Kafka outage) never delays another
//! (the rescuer):
//! - the publisher sends `queued` rows that are not yet on Kafka;
//! - the rescuer requeues tasks of dead or stopped workers, but only once this
//!   process has led for D seconds, so a new leader, or one whose connection
//!   dropped, never declares live workers dead just because nobody could record
//!   their heartbeats for a while.

mod leader;
mod publisher;
mod rescuer;

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use leader::Lease;
pub use publisher::publish_pending;
pub use rescuer::rescue;

use crate::config::CommonConfig;

/// Runs the lease loop and the maintenance services until `shutdown` is
/// cancelled, then releases the lease so another process takes over at once.
pub async fn run(cfg: CommonConfig, pool: PgPool, producer: FutureProducer, shutdown: CancellationToken) {
    let names = cfg.names();
    let period = cfg.maintenance_period();
    let dead_after = cfg.dead_after();
    // `Some(since)` while this process leads.
    let (leading_tx, leading) = watch::channel::<Option<Instant>>(None);

    let topic = names.task_topic();
    let (p_pool, p_producer) = (pool.clone(), producer.clone());
    let publisher = service(period, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let (pool, producer, topic) = (p_pool.clone(), p_producer.clone(), topic.clone());
        async move {
            publish_pending(&pool, &producer, &topic).await;
        }
    });
    let r_pool = pool.clone();
    let rescuer = service(period, leading, shutdown.clone(), dead_after, move || {
        let pool = r_pool.clone();
        async move {
            rescue(&pool, dead_after).await;
        }
    });
    let services = tokio::spawn(async move { tokio::join!(publisher, rescuer) });

    let mut lease = Lease::new(cfg.database_url.clone(), names.leader_lock_key());
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let held = lease.hold().await;
        let was = *leading_tx.borrow();
        match (was, held) {
            (None, true) => {
                tracing::info!("became maintenance leader; the rescuer starts after the dead-after threshold");
                let _ = leading_tx.send(Some(Instant::now()));
            }
            (Some(_), false) => {
                tracing::warn!("maintenance leadership lost");
                let _ = leading_tx.send(None);
            }
            _ => {}
        }
    }
    let _ = leading_tx.send(None);
    let _ = services.await;
    lease.release().await;
}

/// Calls `pass` every `period` while this process has led for at least `warmup`.
async fn service<F, Fut>(
    period: Duration,
    leading: watch::Receiver<Option<Instant>>,
    shutdown: CancellationToken,
    warmup: Duration,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let since = *leading.borrow();
        if since.is_some_and(|s| s.elapsed() >= warmup) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = pass() => {}
            }
        }
    }
}
