//! Running the gateway: checks its settings, connects to PostgreSQL and
//! Kafka, declares queues and dedicated tenants, starts the background work
//! (maintenance, publish marks, topic limits, notifications) and serves the
//! router until SIGTERM or SIGINT, then stops in order within the grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::state::AppState;
use crate::{auth, edge, inserter, marker, notify, routes};

/// Serves the HTTP API with `cfg` until SIGTERM or SIGINT, then lets open
/// requests finish for `--shutdown-grace`, writes pending publish marks and
/// stops maintenance.
///
/// Errors: a setting that cannot work (naming the flag), PostgreSQL or Kafka
/// unreachable or refusing the credentials at start, the listen address taken.
pub async fn run(mut cfg: GatewayConfig) -> anyhow::Result<()> {
    cfg.normalise();
    cfg.common.validate()?;
    cfg.auth.validate()?;
    yadtq_core::config::ensure_positive(&[("--kafka-limits-refresh", cfg.kafka_limits_refresh)])?;
    cfg.edge.validate()?;
    cfg.inspect.validate()?;
    cfg.validate_topics()?;
    let pool = yadtq_core::store::connect(&cfg.common).await?;
    yadtq_core::kafka::check_credentials(&cfg.common, KAFKA_ADMIN_TIMEOUT).await?;
    let producer = yadtq_core::kafka::producer(&cfg.common, "yadtq-gateway")?;
    let shutdown = CancellationToken::new();

    auth::bootstrap(&cfg.auth, &pool).await?;
    if cfg.auth.mode == auth::AuthMode::Off {
        tokio::spawn(auth::warn_while_off());
    }
    // Workers check their --queues against the declared list at start.
    yadtq_core::store::queues::declare(&pool, &cfg.limits.queues).await?;
    let routes = declare_dedicated(&cfg, &pool).await?;
    routes.spawn_refresh(pool.clone(), cfg.common.maintenance_period, shutdown.clone());
    let record_limits =
        Arc::new(yadtq_core::kafka::RecordLimits::new(yadtq_core::kafka::producer_max_message_bytes(&cfg.common)?));
    let topics = tokio::spawn(topics_and_limits(cfg.clone(), record_limits.clone()));
    let maintenance = tokio::spawn(yadtq_core::maintenance::run(
        cfg.common.clone(),
        pool.clone(),
        producer.clone(),
        routes.clone(),
        shutdown.clone(),
    ));

    let (marker, marker_writer) = marker::spawn(pool.clone());
    let state = AppState {
        events: notify::spawn(cfg.common.database_url.clone(), pool.clone()),
        edge: edge::Edge::new(&cfg.edge, cfg.common.db_pool_size),
        marker,
        inserter: Arc::new(inserter::Inserter::new(pool.clone())),
        record_limits,
        auth: Arc::new(auth::Authenticator::new(&cfg.auth, pool.clone())),
        cfg: Arc::new(cfg.clone()),
        pool,
        producer,
        routes,
    };
    let listener = bind(cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, namespace = %cfg.common.namespace, queues = ?cfg.limits.queues, dedicated_tenants = ?cfg.dedicated_tenants, auth = ?cfg.auth.mode, "gateway listening");
    let server = edge::serve(listener, routes::router(state), &cfg.edge, shutdown.clone());
    let grace = cfg.shutdown_grace;
    tokio::select! {
        () = server => {}
        // A stopping gateway takes no maintenance leadership: the token stops
        // maintenance at once while open requests get their grace period.
        _ = async { signal().await; shutdown.cancel(); tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_s = grace.as_secs_f64(), "requests still open after the grace period: closing them");
        }
    }
    tracing::info!("gateway stopping");
    shutdown.cancel();
    topics.abort();
    // Pending publish marks are written now rather than left for the publisher to resend.
    if tokio::time::timeout(MARKS_FLUSH, marker_writer).await.is_err() {
        tracing::warn!(
            "publish marks still pending (a send may still await its ack); the publisher covers those tasks"
        );
    }
    if tokio::time::timeout(yadtq_core::maintenance::STOP_BOUND, maintenance).await.is_err() {
        tracing::warn!("maintenance did not stop in time (PostgreSQL unreachable?); exiting without it");
    }
    tracing::info!("gateway stopped");
    Ok(())
}

/// The listening socket; the error names the address (a busy port otherwise
/// says only "Address already in use").
async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--listen, YADTQ_LISTEN): {e}"))
}

/// Records this gateway's `--dedicated-tenants` as the dedicated list (logging
/// what changed) and returns the routes every publish of this process uses,
/// read back from PostgreSQL.
///
/// Errors when PostgreSQL cannot be written or read.
async fn declare_dedicated(cfg: &GatewayConfig, pool: &sqlx::PgPool) -> anyhow::Result<yadtq_core::tenants::Routes> {
    let actor = format!("gateway:{}", cfg.listen);
    let change = yadtq_core::store::tenants::declare(pool, &cfg.dedicated_tenants, &actor).await?;
    if !change.is_empty() {
        tracing::warn!(
            now_dedicated = ?change.dedicated,
            now_shared = ?change.shared,
            "dedicated tenants changed by this gateway's --dedicated-tenants: new tasks follow the new routes at \
             once, queued ones are sent again to them by the maintenance leader shortly"
        );
    }
    Ok(yadtq_core::tenants::Routes::load(cfg.common.names(), pool).await?)
}

/// Creates the declared queues' topics (the shared ones and one per queue
/// for each of this gateway's dedicated tenants), then reads their record
/// limits, at once and every `--kafka-limits-refresh`. In the background, so
/// a Kafka outage does not stop the gateway from accepting (until the first
/// read, submissions are bounded by the producer's limit alone). No request
/// creates a topic: topics exist for the configured queues only.
async fn topics_and_limits(cfg: GatewayConfig, limits: Arc<yadtq_core::kafka::RecordLimits>) {
    let topics = yadtq_core::tenants::task_topics(&cfg.common.names(), &cfg.limits.queues, &cfg.dedicated_tenants);
    while let Err(e) = yadtq_core::kafka::ensure_topics(&cfg.common, &topics, KAFKA_ADMIN_TIMEOUT).await {
        tracing::warn!(error = %e, "cannot ensure Kafka topics yet; retrying");
        tokio::time::sleep(KAFKA_ADMIN_RETRY).await;
    }
    loop {
        let pause = match limits.refresh(&cfg.common, &topics, KAFKA_ADMIN_TIMEOUT).await {
            Ok(()) => cfg.kafka_limits_refresh,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the topics' record limits; retrying");
                KAFKA_ADMIN_RETRY.min(cfg.kafka_limits_refresh)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Longest a topic creation or a limit read may take.
const KAFKA_ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before trying a failed topic creation or limit read again.
const KAFKA_ADMIN_RETRY: Duration = Duration::from_secs(2);

/// Longest the gateway waits at shutdown for pending publish marks.
const MARKS_FLUSH: Duration = Duration::from_secs(2);

async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: stopping"),
    }
}

#[cfg(test)]
mod tests {
    /// A busy port: the error says which address.
    #[tokio::test]
    async fn a_busy_listen_address_is_named() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = taken.local_addr().expect("its address");
        let e = super::bind(addr).await.expect_err("the port is taken").to_string();
        assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
        assert!(e.contains("in use"), "{e}");
    }
}
