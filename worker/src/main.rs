//! `yadtq-worker`: a worker process with the built-in handlers, plus the HTTP
//! and command handlers of a handlers file (`--handlers-file`, see docs/handlers.md).

use std::path::PathBuf;

use clap::Parser;
use yadtq_worker::external::HandlersFile;
use yadtq_worker::{Registry, WorkerConfig};

/// Consumes tasks from Kafka, runs them, and records outcomes in PostgreSQL.
#[derive(Parser)]
#[command(name = "yadtq-worker", version)]
struct Cli {
    #[command(flatten)]
    worker: WorkerConfig,

    /// TOML file declaring HTTP and command handlers by task name (see
    /// docs/handlers.md). An invalid file stops the worker at start.
    #[arg(long, env = "YADTQ_HANDLERS_FILE")]
    handlers_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = yadtq_core::telemetry::init("yadtq-worker");
    let cli = Cli::parse();
    let mut registry = Registry::with_builtins();
    if let Some(path) = &cli.handlers_file {
        let file = HandlersFile::load(path)?;
        for name in file.names().filter(|n| registry.get(n).is_some()) {
            tracing::warn!(name, "the handlers file replaces the built-in handler of this name");
        }
        file.register(&mut registry);
        tracing::info!(path = %path.display(), handlers = ?file.names().collect::<Vec<_>>(), "handlers file loaded");
    }
    let ran = yadtq_worker::run(cli.worker, registry, yadtq_worker::shutdown_on_signals()).await;
    telemetry.shutdown();
    ran
}
