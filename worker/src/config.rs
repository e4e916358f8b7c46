//! Worker settings (flags and environment, via clap).

use std::time::Duration;

use clap::Args;
use yadtq_core::config::{secs, CommonConfig};

/// Everything a worker process is configured with.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Tasks this process runs at once at most.
    #[arg(long, env = "YADTQ_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,

    /// Seconds a SIGTERM'd worker waits for running tasks before aborting them
    /// (aborted tasks are requeued at once by the rescuer).
    #[arg(long, env = "YADTQ_SHUTDOWN_GRACE", default_value_t = 30.0)]
    pub shutdown_grace: f64,

    /// Kafka consumer `session.timeout.ms`: must be below the dead-after
    /// threshold so a dead consumer's partitions move before its tasks are requeued.
    #[arg(long, env = "YADTQ_KAFKA_SESSION_TIMEOUT_MS", default_value_t = 6000)]
    pub kafka_session_timeout_ms: u32,

    /// Kafka consumer `max.poll.interval.ms`. Polling never stops while tasks
    /// run (partitions are paused instead), so long tasks do not trip it.
    #[arg(long, env = "YADTQ_KAFKA_MAX_POLL_INTERVAL_MS", default_value_t = 300_000)]
    pub kafka_max_poll_interval_ms: u32,

    /// Records fetched ahead of free slots; partitions pause when
    /// `concurrency + prefetch` records are in hand. Prefetched records are
    /// not claimed, so another worker can still get their tasks after a crash.
    #[arg(long, env = "YADTQ_PREFETCH", default_value_t = 8)]
    pub prefetch: usize,

    /// Largest task result in bytes (serialised JSON); a larger result fails
    /// the attempt with kind `result_too_large`.
    #[arg(long, env = "YADTQ_MAX_RESULT_BYTES", default_value_t = 1024 * 1024)]
    pub max_result_bytes: usize,

    /// Seconds an outcome write is retried while PostgreSQL is unreachable
    /// (the record's offset is held meanwhile); past it the rescuer requeues the task.
    #[arg(long, env = "YADTQ_OUTCOME_RETRY_LIMIT", default_value_t = 600.0)]
    pub outcome_retry_limit: f64,

    /// Kafka consumer `fetch.wait.max.ms`: how long the broker holds a fetch
    /// for empty partitions. Short, so a resumed partition is fetched promptly.
    #[arg(long, env = "YADTQ_KAFKA_FETCH_WAIT_MS", default_value_t = 50)]
    pub kafka_fetch_wait_ms: u32,
}

impl WorkerConfig {
    /// How long an outcome write is retried while PostgreSQL is unreachable.
    pub fn outcome_retry_limit(&self) -> Duration {
        secs(self.outcome_retry_limit)
    }

    /// Grace period for in-flight tasks on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        secs(self.shutdown_grace)
    }

    /// Checks settings clap cannot: the common ones, concurrency at least 1,
    /// and the session timeout below the dead-after threshold.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.common.validate()?;
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(
            f64::from(self.kafka_session_timeout_ms) < self.common.dead_after * 1000.0,
            "--kafka-session-timeout-ms ({}) must be below --dead-after ({} s)",
            self.kafka_session_timeout_ms,
            self.common.dead_after
        );
        Ok(())
    }
}
