//! Worker settings (flags and environment, via clap).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use yadtq_core::config::CommonConfig;
use yadtq_core::names::QueueName;

fn parse_queue(s: &str) -> Result<(String, u32), String> {
    let (name, weight) = match s.split_once('=') {
        Some((n, w)) => (n.trim(), w.trim().parse::<u32>().map_err(|_| format!("bad weight in '{s}'"))?),
        None => (s.trim(), 1),
    };
    let name = QueueName::parse(name).map_err(|e| format!("queue '{name}' {e}"))?;
    if !(1..=100).contains(&weight) {
        return Err(format!("weight of queue '{name}' must be 1-100"));
    }
    Ok((name.into_string(), weight))
}

/// `--admin-listen`: `ADDR:PORT`, or a bare port on the loopback address.
fn parse_admin_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse().map_err(|_| format!("'{s}' is neither ADDR:PORT (e.g. 127.0.0.1:9100) nor a port"))
}

/// The admin listener's `/metrics` token; `Debug` never shows it.
#[derive(Clone)]
pub struct MetricsToken(pub String);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for MetricsToken {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// Everything a worker process is configured with.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Queues to consume, each `name` or `name=weight` (weight 1-100, default 1),
    /// comma separated. A queue's weight is its share of the records this
    /// worker holds at once, so busier weights get more of its slots.
    #[arg(long, env = "YADTQ_QUEUES", value_delimiter = ',', default_value = "default", value_parser = parse_queue)]
    pub queues: Vec<(String, u32)>,

    /// Dedicated tenants this worker serves, comma separated tenant names; none
    /// by default. Without it the worker reads its queues' shared topics and
    /// runs every tenant's tasks except the dedicated ones'; with it, it reads
    /// only these tenants' own topics of its `--queues`. A tenant no gateway
    /// declared dedicated (`--dedicated-tenants`) is logged as an error.
    #[arg(long, env = "YADTQ_TENANTS", value_delimiter = ',', value_parser = yadtq_core::tenants::parse_tenant)]
    pub tenants: Vec<String>,

    /// Seconds: upper bound of the first retry delay (doubles per attempt, full jitter).
    #[arg(long, env = "YADTQ_RETRY_BACKOFF_BASE", default_value = "1", value_parser = yadtq_core::config::parse_duration)]
    pub retry_backoff_base: Duration,

    /// Seconds: no retry delay is longer.
    #[arg(long, env = "YADTQ_RETRY_BACKOFF_CAP", default_value = "300", value_parser = yadtq_core::config::parse_duration)]
    pub retry_backoff_cap: Duration,

    /// Tasks this process runs at once at most; also the number of handler
    /// runtime threads, so a handler that computes without awaiting holds
    /// back no other slot.
    #[arg(long, env = "YADTQ_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,

    /// Seconds a SIGTERM'd worker waits for running tasks before aborting them
    /// (aborted tasks are requeued at once by the rescuer).
    #[arg(long, env = "YADTQ_SHUTDOWN_GRACE", default_value = "30", value_parser = yadtq_core::config::parse_duration)]
    pub shutdown_grace: Duration,

    /// Kafka consumer `session.timeout.ms`: must be below the dead-after
    /// threshold so a dead consumer's partitions move before its tasks are requeued.
    #[arg(long, env = "YADTQ_KAFKA_SESSION_TIMEOUT_MS", default_value_t = 6000)]
    pub kafka_session_timeout_ms: u32,

    /// Kafka consumer `max.poll.interval.ms`. Polling never stops while tasks
    /// run (partitions are paused instead), so long tasks do not trip it.
    #[arg(long, env = "YADTQ_KAFKA_MAX_POLL_INTERVAL_MS", default_value_t = 300_000)]
    pub kafka_max_poll_interval_ms: u32,

    /// Records held ahead of free slots. Partitions pause when `concurrency +
    /// prefetch` records are in hand and resume at half that: pausing is
    /// rare and costly (librdkafka drops its fetched data and refetches on
    /// resume, about a second), so the buffer is large. Held records are not
    /// claimed: after a crash their tasks are still `queued` and their offsets
    /// uncommitted, so the partition's next owner runs them. Measured: a
    /// 5,000-task drain ran 706/s with 512 and 1,814/s with no pause at all.
    #[arg(long, env = "YADTQ_PREFETCH", default_value_t = 4096)]
    pub prefetch: usize,

    /// Largest task result in bytes (serialised JSON); a larger result fails
    /// the attempt with kind `result_too_large`.
    #[arg(long, env = "YADTQ_MAX_RESULT_BYTES", default_value_t = 1024 * 1024)]
    pub max_result_bytes: usize,

    /// Largest total size in bytes of the results a workflow node receives
    /// from its parents (docs/workflows.md); a node past it fails for good
    /// with kind `parents_too_large`.
    #[arg(long, env = "YADTQ_MAX_PARENT_RESULTS_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_parent_results_bytes: usize,

    /// Seconds an outcome write is retried while PostgreSQL is unreachable
    /// (the record's offset is held meanwhile); past it the rescuer requeues the task.
    #[arg(long, env = "YADTQ_OUTCOME_RETRY_LIMIT", default_value = "600", value_parser = yadtq_core::config::parse_duration)]
    pub outcome_retry_limit: Duration,

    /// Address of the worker's admin listener (`/healthz`, `/readyz` by the
    /// readiness rule, `/metrics` in Prometheus format): `ADDR:PORT`, or a
    /// bare `PORT` for `127.0.0.1:PORT` (loopback); none by default. A
    /// non-loopback address needs `--metrics-token`.
    #[arg(long, env = "YADTQ_ADMIN_LISTEN", value_parser = parse_admin_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Bearer token the admin listener's `/metrics` requires
    /// (`Authorization: Bearer <token>`; `/healthz` and `/readyz` stay open
    /// for probes). At least 32 visible ASCII characters (`yadtq-gateway keys
    /// token` makes one). Required when `--admin-listen` is not a loopback
    /// address: the worker refuses to start without it. Unset by default:
    /// `/metrics` on loopback is then open to local processes.
    #[arg(long, env = "YADTQ_WORKER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<MetricsToken>,

    /// Kafka consumer `fetch.wait.max.ms`: how long the broker holds a fetch
    /// for empty partitions. Short, so a resumed partition is fetched promptly.
    #[arg(long, env = "YADTQ_KAFKA_FETCH_WAIT_MS", default_value_t = 50)]
    pub kafka_fetch_wait_ms: u32,
}

impl WorkerConfig {
    /// Records in hand allowed for each queue: its weight's share of
    /// `concurrency + prefetch`, at least 1.
    pub fn queue_shares(&self) -> Vec<(String, usize)> {
        let total: u32 = self.queues.iter().map(|(_, w)| w).sum();
        let capacity = (self.concurrency + self.prefetch) as f64;
        self.queues
            .iter()
            .map(|(q, w)| (q.clone(), ((capacity * f64::from(*w) / f64::from(total)).ceil() as usize).max(1)))
            .collect()
    }

    /// Which tenants' tasks this worker runs (`--tenants`; an empty
    /// `YADTQ_TENANTS` means none given).
    pub fn serves(&self) -> yadtq_core::tenants::Serves {
        let tenants: Vec<String> = self.tenants.iter().filter(|t| !t.is_empty()).cloned().collect();
        yadtq_core::tenants::Serves::from_flag(&tenants)
    }

    /// Checks settings clap cannot: the common ones, concurrency at least 1,
    /// and the session timeout below the dead-after threshold.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.common.validate()?;
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(!self.queues.is_empty(), "--queues needs at least one queue");
        anyhow::ensure!(
            self.retry_backoff_cap >= self.retry_backoff_base,
            "--retry-backoff-base must be at most --retry-backoff-cap"
        );
        anyhow::ensure!(
            u128::from(self.kafka_session_timeout_ms) < self.common.dead_after.as_millis(),
            "--kafka-session-timeout-ms ({}) must be below --dead-after ({} s)",
            self.kafka_session_timeout_ms,
            self.common.dead_after.as_secs_f64()
        );
        if let Some(token) = self.metrics_token() {
            anyhow::ensure!(
                token.len() >= yadtq_core::auth::MIN_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic()),
                "YADTQ_WORKER_METRICS_TOKEN (--metrics-token) must be at least {} visible ASCII characters \
                 (make one with `yadtq-gateway keys token`)",
                yadtq_core::auth::MIN_TOKEN_LEN
            );
        }
        if let Some(addr) = self.admin_listen.filter(|a| !a.ip().is_loopback()) {
            // Metrics name queues, tasks and hosts: an exposed listener must
            // not hand them to anyone who can reach the port.
            anyhow::ensure!(
                self.metrics_token().is_some(),
                "--admin-listen {addr} is not a loopback address: set YADTQ_WORKER_METRICS_TOKEN \
                 (--metrics-token), which its /metrics then requires as a Bearer token (/healthz and \
                 /readyz stay open), or listen on 127.0.0.1"
            );
        }
        Ok(())
    }

    /// The admin listener's `/metrics` token, `None` when unset or empty.
    pub fn metrics_token(&self) -> Option<&str> {
        self.metrics_token.as_ref().map(|t| t.0.as_str()).filter(|t| !t.is_empty())
    }
}
