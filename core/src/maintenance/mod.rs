//! Maintenance run by every gateway and worker process; only the elected leader
//! acts. The lease loop keeps (or competes for) the leader lock every P
//! seconds; the services run as separate loops while this process leads, so a
//! slow one (the publisher waiting out a Kafka outage) never delays another
//! (the rescuer):
//! - the publisher sends `queued` rows that are not yet on Kafka;
//! - the scheduler turns due `scheduled` tasks into `queued` ones and sends them
//!   (every quarter period, so a task starts within a second of its time);
//! - the schedule service fires schedules' due ticks as tasks and sends them
//!   (every quarter period too);
//! - the limits pass releases held tasks whose buckets have room (rate
//!   windows opening; what an older process left) and sends them (every
//!   quarter period too);
//! - the cleaner deletes finished tasks past the retention, and the rows of
//!   workers stopped or dead for longer than the retention;
//! - the sampler counts tasks by queue and status for the metrics, exported
//!   by the leader alone (withdrawn when it loses the lease);
//! - the rescuer requeues tasks of dead or stopped workers, but only once this
//!   process has led for D seconds, so a new leader, or one whose connection
//!   dropped, never declares live workers dead just because nobody could record
//!   their heartbeats for a while.

mod cleaner;
mod leader;
mod limits;
mod publisher;
mod rescuer;
mod sampler;
mod scheduler;
pub mod schedules;
mod workflows;

/// What a gateway fires itself (a schedule's trigger or backfill) it sends at once.
pub use publisher::publish_rows;
/// Queued rows younger than this, with no `published_at`, are still the
/// accepting gateway's to publish (and mark); the publisher leaves them alone.
pub use publisher::GRACE as PUBLISH_GRACE;

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use cleaner::clean;
use leader::Lease;
use publisher::publish_pending;
use rescuer::rescue;
use scheduler::promote;

use crate::config::CommonConfig;

/// Runs the lease loop and the maintenance services until `shutdown` is
/// cancelled, then releases the lease so another process takes over at once.
///
/// `routes` is the process's copy of the dedicated tenants (refreshed by the
/// caller, [`crate::tenants::Routes::spawn_refresh`]): where the publisher,
/// the scheduler and the rescuer send tasks.
pub async fn run(
    cfg: CommonConfig,
    pool: PgPool,
    producer: FutureProducer,
    routes: crate::tenants::Routes,
    shutdown: CancellationToken,
) {
    let names = cfg.names();
    crate::metrics::zero_maintenance_series();
    let period = cfg.maintenance_period;
    let dead_after = cfg.dead_after;
    // `Some(since)` while this process leads.
    let (leading_tx, leading) = watch::channel::<Option<Instant>>(None);

    let ctx = Arc::new(Context { cfg: cfg.clone(), pool: pool.clone(), producer: producer.clone(), routes });
    let settle = crate::tenants::reroute_settle(period);

    let c = ctx.clone();
    let publisher = service(period, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            publish_pending(&c.routes, &c.pool, &c.producer, settle).await;
        }
    });
    let c = ctx.clone();
    let scheduler = service(period / 4, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            promote(&c.routes, &c.pool, &c.producer).await;
        }
    });
    let c = ctx.clone();
    let schedule_service = service(period / 4, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            schedules::fire_due(&c.routes, &c.pool, &c.producer).await;
        }
    });
    let c = ctx.clone();
    let limits_pass = service(period / 4, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            limits::release(&c.routes, &c.pool, &c.producer).await;
        }
    });
    let c = ctx.clone();
    let cleaner = service(period * 10, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            clean(&c.pool, c.cfg.retention, c.cfg.dead_after).await;
            schedules::clean(&c.pool, c.cfg.retention).await;
            limits::prune(&c.pool).await;
        }
    });
    // Every half period, so a dead worker's tasks move within D + P.
    let c = ctx.clone();
    let rescuer = service(period / 2, leading.clone(), shutdown.clone(), dead_after, move || {
        let c = c.clone();
        async move {
            rescue(&c.routes, &c.pool, &c.producer, dead_after).await;
        }
    });
    let c = ctx.clone();
    let watched = leading.clone();
    let state = Arc::new(tokio::sync::Mutex::new(sampler::Sampler::default()));
    // After the previous leader's samples have expired (sampler::VALID_FOR).
    let sampler = service(sampler::PERIOD, leading.clone(), shutdown.clone(), period * sampler::VALID_FOR, move || {
        let (c, watched, state) = (c.clone(), watched.clone(), state.clone());
        async move {
            state.lock().await.pass(&c.pool, dead_after, &watched).await;
        }
    });
    // Workflows: the repair pass every period (nodes older than two periods:
    // the fan-in moves the others), the cleaner and sample every ten.
    let c = ctx.clone();
    let repair = service(period, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            workflows::repair(&c.routes, &c.pool, &c.producer, period * 2).await;
        }
    });
    let c = ctx.clone();
    let workflow_cleaner = service(period * 10, leading.clone(), shutdown.clone(), Duration::ZERO, move || {
        let c = c.clone();
        async move {
            workflows::clean_and_sample(&c.pool, c.cfg.retention).await;
        }
    });
    let services = tokio::spawn(async move {
        tokio::join!(
            publisher,
            scheduler,
            schedule_service,
            limits_pass,
            cleaner,
            rescuer,
            sampler,
            repair,
            workflow_cleaner
        )
    });

    let mut lease = Lease::new(cfg.database_url.clone(), names.leader_lock_key());
    let mut ticker = crate::periodic::every(period);
    while crate::periodic::next_tick(&mut ticker, &shutdown).await {
        let asked = Instant::now();
        let held = tokio::select! {
            held = lease.hold() => held,
            _ = shutdown.cancelled() => break,
        };
        if held {
            sampler::confirmed(asked, period);
        }
        if shutdown.is_cancelled() {
            break; // a stopping process never starts leading
        }
        metrics::gauge!(crate::metrics::LEADER).set(f64::from(u8::from(held)));
        let was = *leading_tx.borrow();
        match (was, held) {
            (None, true) => {
                tracing::info!("became maintenance leader; the rescuer starts after the dead-after threshold");
                let _ = leading_tx.send(Some(Instant::now()));
            }
            (Some(_), false) => {
                tracing::warn!("maintenance leadership lost");
                let _ = leading_tx.send(None);
                sampler::withdraw();
            }
            _ => {}
        }
    }
    let _ = leading_tx.send(None);
    sampler::withdraw();
    metrics::gauge!(crate::metrics::LEADER).set(0.0);
    let _ = services.await;
    if tokio::time::timeout(STOP_BOUND / 2, lease.release()).await.is_err() {
        tracing::warn!("cannot release the maintenance lease (PostgreSQL unreachable?); it ends with the connection");
    }
}

/// What the maintenance services share, one copy for all of them.
struct Context {
    cfg: CommonConfig,
    pool: PgPool,
    producer: FutureProducer,
    /// Where the publisher, the scheduler and the rescuer send tasks.
    routes: crate::tenants::Routes,
}

/// Longest [`run`] takes to return once `shutdown` is cancelled, whatever
/// PostgreSQL's state; callers may bound their wait for it with this.
pub const STOP_BOUND: Duration = Duration::from_secs(4);

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
    let mut ticker = crate::periodic::every(period);
    while crate::periodic::next_tick(&mut ticker, &shutdown).await {
        let since = *leading.borrow();
        if since.is_some_and(|s| s.elapsed() >= warmup) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = pass() => {}
            }
        }
    }
}
