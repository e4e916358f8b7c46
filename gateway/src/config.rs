//! Gateway settings (flags and environment, via clap).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use yadtq_core::config::{CommonConfig, DEFAULT_QUEUE};
use yadtq_core::names::QueueName;

/// Everything a gateway process is configured with.
#[derive(Debug, Clone, Args)]
pub struct GatewayConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Address and port to listen on.
    #[arg(long, env = "YADTQ_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Seconds a SIGTERM'd gateway lets open requests (long-polls, event
    /// streams) finish before it closes them and exits; the teardown after it
    /// (publish marks, the maintenance lease) is bounded too, so the process
    /// exits within this plus about 10 s even with Kafka or PostgreSQL down.
    #[arg(long, env = "YADTQ_SHUTDOWN_GRACE", default_value = "10", value_parser = yadtq_core::config::parse_duration)]
    pub shutdown_grace: Duration,

    /// Milliseconds `POST /tasks` waits for the broker's ack before answering
    /// (0: answer once the row is committed). The record is produced either
    /// way and acked in the background; a task never acked is sent by the
    /// publisher. A wait only slows the answer: the 202 already means durable.
    #[arg(long, env = "YADTQ_PUBLISH_WAIT_MS", default_value_t = 0)]
    pub publish_wait_ms: u64,

    /// Most nodes in one workflow (`POST /workflows`; more: 413 naming the cap).
    #[arg(long, env = "YADTQ_MAX_WORKFLOW_NODES", default_value_t = 10_000)]
    pub max_workflow_nodes: usize,

    /// Largest `POST /workflows` body in bytes (larger: 413).
    #[arg(long, env = "YADTQ_MAX_WORKFLOW_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_workflow_body_bytes: usize,

    /// Seconds between reads of the queues' topic limits (`max.message.bytes`,
    /// admin API DescribeConfigs) that bound a task's size at submit (413); the
    /// first read is at start.
    #[arg(long, env = "YADTQ_KAFKA_LIMITS_REFRESH", default_value = "60", value_parser = yadtq_core::config::parse_duration)]
    pub kafka_limits_refresh: Duration,

    /// Tenants with workers of their own, comma separated tenant names (none
    /// by default). Their tasks go to topics of their own, one per queue
    /// (`yadtq.tasks[.<queue>].tenant.<tenant>`), which only workers started
    /// with `--tenants` naming them read; every other tenant's tasks go to the
    /// shared topics. Recorded in PostgreSQL at start (this list replaces the
    /// recorded one), which every process routes by: give every gateway the
    /// same list. See docs/security.md, "Dedicated workers".
    #[arg(long, env = "YADTQ_DEDICATED_TENANTS", value_delimiter = ',', value_parser = yadtq_core::tenants::parse_tenant)]
    pub dedicated_tenants: Vec<String>,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub schedules: crate::routes::schedules::ScheduleConfig,

    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,

    #[command(flatten)]
    pub edge: crate::edge::EdgeConfig,

    #[command(flatten)]
    pub inspect: crate::routes::dead_letters::InspectConfig,
}

impl GatewayConfig {
    /// Drops empty catalogue entries (an empty `YADTQ_TASK_CATALOGUE` means no
    /// catalogue) and repeated queues, once at start rather than on every submission.
    pub fn normalise(&mut self) {
        self.limits.task_catalogue.retain(|n| !n.trim().is_empty());
        let mut seen = std::collections::HashSet::new();
        self.limits.queues.retain(|q| seen.insert(q.clone()));
        // An empty YADTQ_DEDICATED_TENANTS means none.
        self.dedicated_tenants.retain(|t| !t.is_empty());
        self.dedicated_tenants.sort();
        self.dedicated_tenants.dedup();
    }

    /// Checks the topic names the queues and dedicated tenants make against
    /// Kafka's rules ([`yadtq_core::tenants::check_topics`]).
    ///
    /// Errors naming the topic that breaks them.
    pub fn validate_topics(&self) -> anyhow::Result<()> {
        yadtq_core::tenants::check_topics(&self.common.names(), &self.limits.queues, &self.dedicated_tenants)
            .map_err(|e| anyhow::anyhow!("--queues and --dedicated-tenants: {e}"))
    }

    /// Ack wait for a new task's Kafka record.
    pub fn publish_wait(&self) -> Duration {
        Duration::from_millis(self.publish_wait_ms)
    }
}

/// Explicit input limits; each breach is a 4xx problem document naming the field.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest request body in bytes (larger: 413).
    #[arg(long, env = "YADTQ_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest nesting of arrays and objects in a request body (deeper: 400).
    #[arg(long, env = "YADTQ_MAX_JSON_DEPTH", default_value_t = 32)]
    pub max_json_depth: usize,

    /// Longest task name in characters (longer: 400).
    #[arg(long, env = "YADTQ_MAX_TASK_NAME_LEN", default_value_t = 128)]
    pub max_task_name_len: usize,

    /// Largest `max_retries` a client may ask for (larger: 400).
    #[arg(long, env = "YADTQ_MAX_RETRIES_LIMIT", default_value_t = 100)]
    pub max_retries_limit: i32,

    /// Retries after the first attempt when the client does not say.
    #[arg(long, env = "YADTQ_DEFAULT_MAX_RETRIES", default_value_t = 3)]
    pub default_max_retries: i32,

    /// Per-attempt timeout in seconds when the client does not say.
    #[arg(long, env = "YADTQ_DEFAULT_TIMEOUT", default_value = "300", value_parser = yadtq_core::config::parse_duration)]
    pub default_timeout: Duration,

    /// Longest per-attempt timeout in seconds a client may ask for.
    #[arg(long, env = "YADTQ_MAX_TIMEOUT", default_value = "86400", value_parser = yadtq_core::config::parse_duration)]
    pub max_timeout: Duration,

    /// Furthest ahead, in seconds, a task may be scheduled with countdown or eta (default 30 days).
    #[arg(long, env = "YADTQ_MAX_SCHEDULE_AHEAD", default_value = "2592000", value_parser = yadtq_core::config::parse_duration)]
    pub max_schedule_ahead: Duration,

    /// Most tasks in one `POST /tasks/batch`.
    #[arg(long, env = "YADTQ_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,

    /// Largest `POST /tasks/batch` body in bytes (larger: 413).
    #[arg(long, env = "YADTQ_MAX_BATCH_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_batch_body_bytes: usize,

    /// Task names the workers serve, comma separated. When set, submissions of
    /// other names are refused with 422 instead of failing later as `unknown_task`.
    #[arg(long, env = "YADTQ_TASK_CATALOGUE", value_delimiter = ',')]
    pub task_catalogue: Vec<String>,

    /// Longest `unique.key` in characters (longer: 400 naming `unique.key`);
    /// at most 500 (2,000 bytes of UTF-8), which keeps the stored key within PostgreSQL's limit
    /// for an index entry.
    #[arg(long, env = "YADTQ_MAX_UNIQUE_KEY_LEN", default_value_t = 256,
          value_parser = parse_unique_key_len)]
    pub max_unique_key_len: usize,

    /// Most limits one task may name in `limits` (more: 400 naming `limits`).
    #[arg(long, env = "YADTQ_MAX_LIMITS_PER_TASK", default_value_t = 8)]
    pub max_limits_per_task: usize,

    /// Most task names a limit's `tasks` list may hold in `PUT /limits/{name}`
    /// (more: 400 naming `tasks`).
    #[arg(long, env = "YADTQ_MAX_LIMIT_TASKS", default_value_t = 100)]
    pub max_limit_tasks: usize,

    /// The queues this deployment serves, comma separated names: the one list
    /// of queues. Their topics are created at start; a submission to any other
    /// queue is refused with 422. Give every gateway the same list, and the
    /// union of the workers' `--queues`.
    #[arg(long, env = "YADTQ_QUEUES", value_delimiter = ',', default_value = DEFAULT_QUEUE, value_parser = parse_queue)]
    pub queues: Vec<String>,
}

/// A `YADTQ_MAX_UNIQUE_KEY_LEN`: 1 to 500 characters.
fn parse_unique_key_len(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .ok()
        .filter(|n| (1..=500).contains(n))
        .ok_or_else(|| format!("'{s}' is not a number from 1 to 500"))
}

/// A declared queue name; the worker's `name=weight` form is refused, since
/// weights are a worker's share of its own slots.
fn parse_queue(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.contains('=') {
        return Err(format!("'{name}': the gateway takes queue names only; weights are a worker setting"));
    }
    QueueName::check(name).map(|()| name.to_string()).map_err(|e| format!("queue '{name}' {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_queue;

    #[test]
    fn declared_queues_are_names_without_weights() {
        assert_eq!(parse_queue(" emails ").as_deref(), Ok("emails"));
        assert!(parse_queue("emails=3").unwrap_err().contains("weights are a worker setting"));
        assert!(parse_queue("a.b").is_err() && parse_queue("").is_err());
    }
}
