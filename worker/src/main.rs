//! `yadtq-worker`: a worker process with the built-in handlers.

use clap::Parser;
use yadtq_worker::{Registry, WorkerConfig};

/// Consumes tasks from Kafka, runs them, and records outcomes in PostgreSQL.
#[derive(Parser)]
#[command(name = "yadtq-worker", version)]
struct Cli {
    #[command(flatten)]
    worker: WorkerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    yadtq_core::telemetry::init();
    let cli = Cli::parse();
    yadtq_worker::run(cli.worker, Registry::with_builtins(), yadtq_worker::shutdown_on_signals()).await
}
