//! `yadtq-test-worker`: the worker library with the built-in handlers plus
//! Rust handlers the end-to-end tests need, registered the way a user
//! registers their own (see `worker/examples/custom_handlers.rs`):
//! - `spin`: computes for `args[0]` seconds without ever awaiting, as a
//!   CPU-bound handler does; answers the number of loop iterations.
//! - `fail_once`: fails for good on attempt 1 (kind `fail_once`), answers `args` on
//!   later attempts (a manual retry): a failure that a retry heals.

use std::time::{Duration, Instant};

use clap::Parser;
use yadtq_worker::{HandlerError, Registry, WorkerConfig};

#[derive(Parser)]
#[command(name = "yadtq-test-worker")]
struct Cli {
    #[command(flatten)]
    worker: WorkerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = yadtq_core::telemetry::init("yadtq-test-worker");
    let mut registry = Registry::with_builtins();
    registry.register("spin", |ctx| async move {
        let secs = ctx
            .args
            .first()
            .and_then(|v| v.as_f64())
            .ok_or_else(|| HandlerError::invalid_arguments("args[0] must be seconds"))?;
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let mut turns: u64 = 0;
        while Instant::now() < until {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
        Ok(serde_json::json!(turns))
    });
    registry.register("fail_once", |ctx| async move {
        if ctx.attempt == 1 {
            return Err(HandlerError::permanent("fail_once", "the first attempt fails"));
        }
        Ok(serde_json::json!(ctx.args))
    });
    yadtq_worker::run(Cli::parse().worker, registry, yadtq_worker::shutdown_on_signals()).await
}
