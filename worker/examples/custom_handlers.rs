//! A worker of your own: the built-in handlers plus a Rust handler registered
//! by name, run with the same flags and environment as `yadtq-worker`.
//!
//! ```sh
//! eval "$(scripts/postgres.sh env)" "$(scripts/kafka.sh env)"
//! cargo run -p yadtq-worker --example custom_handlers -- --concurrency 4
//! curl -s localhost:8080/tasks -d '{"task": "word_count", "args": ["to be or not to be"]}'
//! # … later, GET /tasks/{id}: "result": {"words": 6, "distinct": 4}
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};
use yadtq_worker::{HandlerError, Registry, TaskContext, WorkerConfig};

/// Command line: every worker setting (flags or `YADTQ_*` / `DATABASE_URL` /
/// `KAFKA_BOOTSTRAP` environment variables).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    worker: WorkerConfig,
}

/// `word_count(text)`: counts the words of `args[0]` (or `kwargs.text`).
/// A missing or non-string text is a permanent `invalid_arguments` error.
async fn word_count(ctx: TaskContext) -> Result<Value, HandlerError> {
    let text = ctx
        .args
        .first()
        .or_else(|| ctx.kwargs.get("text"))
        .and_then(Value::as_str)
        .ok_or_else(|| HandlerError::invalid_arguments("word_count needs a string in args[0] or kwargs.text"))?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let distinct: BTreeSet<&str> = words.iter().copied().collect();
    Ok(json!({"words": words.len(), "distinct": distinct.len()}))
}

/// `countdown(n)`: waits `n` seconds, one at a time, and stops early when the
/// worker cancels the attempt (timeout, shutdown, fencing): a long handler
/// should watch `ctx.cancel` so it can be stopped between awaits.
async fn countdown(ctx: TaskContext) -> Result<Value, HandlerError> {
    let n = ctx.args.first().and_then(Value::as_u64).unwrap_or(3);
    for left in (1..=n).rev() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => tracing::debug!(left, "tick"),
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retryable("countdown cancelled")),
        }
    }
    Ok(json!(n))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = yadtq_core::telemetry::init("yadtq-custom-worker");
    let cli = Cli::parse();
    let mut registry = Registry::with_builtins();
    registry.register("word_count", word_count);
    registry.register("countdown", countdown);
    // A closure works too.
    registry.register("shout", |ctx| async move {
        let s = ctx.args.first().and_then(Value::as_str).unwrap_or_default();
        Ok(json!(s.to_uppercase()))
    });
    yadtq_worker::run(cli.worker, registry, yadtq_worker::shutdown_on_signals()).await
}
