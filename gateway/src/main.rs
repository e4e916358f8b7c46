//! `yadtq-gateway`: the HTTP API. `yadtq-gateway serve` (the default) runs it;
//! `yadtq-gateway openapi` prints the OpenAPI document.

mod config;
mod inserter;
mod marker;
mod notify;
mod openapi;
mod problem;
mod publish;
mod routes;
mod state;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::state::AppState;

#[derive(Parser)]
#[command(name = "yadtq-gateway", version, about = "yadtq HTTP gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(Box<GatewayConfig>),
    /// Print the OpenAPI 3.1 document to stdout.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Openapi => {
            print!("{}", openapi::pretty());
            Ok(())
        }
        Command::Serve(cfg) => {
            yadtq_core::telemetry::init();
            serve(*cfg).await
        }
    }
}

async fn serve(mut cfg: GatewayConfig) -> anyhow::Result<()> {
    cfg.normalise();
    cfg.common.validate()?;
    let pool = yadtq_core::store::connect(&cfg.common).await?;
    let producer = yadtq_core::kafka::producer(&cfg.common, "yadtq-gateway")?;
    let shutdown = CancellationToken::new();

    // Workers check their --queues against the declared list at start.
    yadtq_core::store::declare_queues(&pool, &cfg.limits.queues).await?;
    // Topics of the declared queues may not exist yet (auto-creation is off);
    // create them in the background so a Kafka outage does not stop the
    // gateway from accepting. No request creates a topic.
    let topic_cfg = cfg.common.clone();
    let queues = cfg.limits.queues.clone();
    let topics = tokio::spawn(async move {
        while let Err(e) = yadtq_core::kafka::ensure_topics(&topic_cfg, &queues, Duration::from_secs(10)).await {
            tracing::warn!(error = %e, "cannot ensure Kafka topics yet; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let maintenance = tokio::spawn(yadtq_core::maintenance::run(
        cfg.common.clone(),
        pool.clone(),
        producer.clone(),
        shutdown.clone(),
    ));

    let (marker, marker_writer) = marker::spawn(pool.clone());
    let state = AppState {
        events: notify::spawn(cfg.common.database_url.clone()),
        marker,
        inserter: Arc::new(inserter::Inserter::new(pool.clone())),
        cfg: Arc::new(cfg.clone()),
        pool,
        producer,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, namespace = %cfg.common.namespace, queues = ?cfg.limits.queues, "gateway listening");
    axum::serve(listener, routes::router(state)).with_graceful_shutdown(signal()).await?;
    tracing::info!("gateway stopping");
    // Pending publish marks are written now rather than left for the publisher to resend.
    if tokio::time::timeout(MARKS_FLUSH, marker_writer).await.is_err() {
        tracing::warn!(
            "publish marks still pending (a send may still await its ack); the publisher covers those tasks"
        );
    }
    topics.abort();
    shutdown.cancel();
    let _ = maintenance.await;
    Ok(())
}

/// Longest the gateway waits at shutdown for pending publish marks.
const MARKS_FLUSH: Duration = Duration::from_secs(2);

async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
