//! Configuration shared by the gateway and the worker, read from flags and
//! environment variables (clap). Every duration setting is a [`Duration`],
//! given as seconds (`30`, `1.5`) or with a unit (`500ms`, `5m`):
//! [`parse_duration`].

use std::time::Duration;

use clap::Args;

/// Settings every yadtq process needs: where PostgreSQL and Kafka are, the
/// namespace, and the liveness timings shared by heartbeats and the rescuer.
#[derive(Debug, Clone, Args)]
pub struct CommonConfig {
    /// PostgreSQL connection URL, e.g. `postgres://yadtq:yadtq@127.0.0.1:5433/yadtq`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Kafka bootstrap servers, comma separated `host:port` list.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub kafka_bootstrap: String,

    /// Prefix for topics, the consumer group id and the leader key, so several
    /// deployments (or tests) can share one broker. Empty by default.
    #[arg(long, env = "YADTQ_NAMESPACE", default_value = "")]
    pub namespace: String,

    /// Partitions of the task topic when yadtq creates it (an existing topic is kept as is).
    #[arg(long, env = "YADTQ_PARTITIONS", default_value_t = 12)]
    pub partitions: i32,

    /// How the Kafka clients connect: TLS, SASL (SCRAM) and the CA.
    #[command(flatten)]
    pub kafka_security: crate::kafka_security::KafkaSecurity,

    /// Extra librdkafka settings for every Kafka client, `KEY=VALUE`, repeatable
    /// (env: comma separated), e.g. `ssl.certificate.location=/etc/yadtq/client.pem`.
    /// Applied last, over every other setting.
    #[arg(long = "kafka-option", env = "YADTQ_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_kafka_option)]
    pub kafka_options: Vec<(String, String)>,

    /// Replication factor for topics yadtq creates (1 for a single-node broker).
    #[arg(long, env = "YADTQ_TOPIC_REPLICATION", default_value_t = 1)]
    pub topic_replication: i32,

    /// Seconds between worker heartbeats (H).
    #[arg(long, env = "YADTQ_HEARTBEAT_INTERVAL", default_value = "2", value_parser = crate::config::parse_duration)]
    pub heartbeat_interval: Duration,

    /// Seconds without a heartbeat after which a worker is dead (D); its
    /// `processing` tasks are then requeued by the rescuer.
    #[arg(long, env = "YADTQ_DEAD_AFTER", default_value = "10", value_parser = crate::config::parse_duration)]
    pub dead_after: Duration,

    /// Seconds between maintenance passes of the leader (P).
    #[arg(long, env = "YADTQ_MAINTENANCE_PERIOD", default_value = "1", value_parser = crate::config::parse_duration)]
    pub maintenance_period: Duration,

    /// Seconds finished tasks (and their attempts) are kept before the
    /// maintenance leader deletes them (default 7 days); also how long the
    /// rows of stopped or dead workers stay in GET /workers.
    #[arg(long, env = "YADTQ_RETENTION", default_value = "604800", value_parser = crate::config::parse_duration)]
    pub retention: Duration,

    /// Maximum PostgreSQL connections in this process's pool.
    #[arg(long, env = "YADTQ_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// Seconds to wait for a pooled PostgreSQL connection before a request fails
    /// (the gateway then answers 503 with Retry-After).
    #[arg(long, env = "YADTQ_DB_ACQUIRE_TIMEOUT", default_value = "3", value_parser = crate::config::parse_duration)]
    pub db_acquire_timeout: Duration,
}

impl CommonConfig {
    /// The namespace helper for topic, group and leader names.
    pub fn names(&self) -> Names {
        Names::new(&self.namespace)
    }

    /// Checks relations between settings that clap cannot express.
    ///
    /// Errors when a duration is not positive, when the heartbeat interval is
    /// not below the dead-after threshold (a live worker would look dead), or
    /// when the Kafka security settings are inconsistent or name unreadable
    /// files ([`crate::kafka_security::KafkaSecurity::validate`]).
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(&[
            ("--heartbeat-interval", self.heartbeat_interval),
            ("--dead-after", self.dead_after),
            ("--maintenance-period", self.maintenance_period),
            ("--db-acquire-timeout", self.db_acquire_timeout),
            ("--retention", self.retention),
        ])?;
        anyhow::ensure!(
            self.heartbeat_interval < self.dead_after,
            "--heartbeat-interval ({} s) must be below --dead-after ({} s)",
            self.heartbeat_interval.as_secs_f64(),
            self.dead_after.as_secs_f64()
        );
        anyhow::ensure!(self.partitions > 0, "--partitions must be at least 1");
        self.kafka_security.validate()
    }
}

fn parse_kafka_option(s: &str) -> Result<(String, String), String> {
    if s.trim().is_empty() {
        return Ok(Default::default()); // an empty env var means no options; skipped when applied
    }
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Reads a duration setting: a bare number is seconds (`30`, `1.5`, `0.2`,
/// as every setting was given before units were accepted), a number with a
/// unit is read by `humantime` (`500ms`, `2s`, `5m`, `1h 30m`).
///
/// Errors (clap adds the flag's name): negative, not finite, or neither form.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a duration: give seconds (e.g. 1.5) that are not negative"));
    }
    humantime::parse_duration(s).map_err(|e| {
        format!("'{s}' is not a duration ({e}): give seconds (e.g. 1.5) or a number with a unit (500ms, 2s, 5m)")
    })
}

/// Errors naming the first flag of `settings` whose duration is zero.
pub fn ensure_positive(settings: &[(&str, Duration)]) -> anyhow::Result<()> {
    for (flag, v) in settings {
        anyhow::ensure!(!v.is_zero(), "{flag} must be a positive duration, got {} s", v.as_secs_f64());
    }
    Ok(())
}

/// Converts a positive number of seconds to a [`Duration`] (non-finite or negative gives zero).
pub(crate) fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v).unwrap_or(Duration::ZERO)
}

/// The queue a task goes to when the client names none.
pub const DEFAULT_QUEUE: &str = "default";

/// Names derived from the namespace: `<ns>yadtq.tasks`, `<ns>yadtq.dlq`,
/// `<ns>yadtq-workers` and the leader lock key.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// `namespace` is used as given followed by a dot when non-empty (`test1` gives `test1.yadtq.tasks`).
    pub fn new(namespace: &str) -> Self {
        let prefix = if namespace.is_empty() { String::new() } else { format!("{namespace}.") };
        Self { prefix }
    }

    /// The task topic of the `default` queue.
    pub fn task_topic(&self) -> String {
        format!("{}yadtq.tasks", self.prefix)
    }

    /// The task topic of `queue`: `yadtq.tasks` for `default`, else `yadtq.tasks.<queue>`.
    pub(crate) fn queue_topic(&self, queue: &str) -> String {
        if queue == DEFAULT_QUEUE {
            self.task_topic()
        } else {
            format!("{}yadtq.tasks.{queue}", self.prefix)
        }
    }

    /// The task topic of dedicated tenant `tenant`'s tasks in `queue`: the
    /// queue's topic followed by `.tenant.<tenant>` (`yadtq.tasks.tenant.acme`,
    /// `yadtq.tasks.emails.tenant.acme`). Queue and tenant names hold no `.`,
    /// so no other queue's topic has this name. Which tenants are dedicated
    /// is [`crate::tenants`]'s business.
    pub(crate) fn tenant_topic(&self, queue: &str, tenant: &str) -> String {
        format!("{}.tenant.{tenant}", self.queue_topic(queue))
    }

    /// The dead-letter topic for records that are not valid envelopes.
    pub fn dlq_topic(&self) -> String {
        format!("{}yadtq.dlq", self.prefix)
    }

    /// The workers' consumer group id.
    pub fn group_id(&self) -> String {
        format!("{}yadtq-workers", self.prefix)
    }

    /// The 64-bit key of the PostgreSQL advisory lock held by the maintenance leader.
    pub fn leader_lock_key(&self) -> i64 {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in format!("{}yadtq-leader", self.prefix).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_prefixes_every_name() {
        let n = Names::new("t1");
        assert_eq!(n.task_topic(), "t1.yadtq.tasks");
        assert_eq!(n.dlq_topic(), "t1.yadtq.dlq");
        assert_eq!(n.group_id(), "t1.yadtq-workers");
        assert_ne!(n.leader_lock_key(), Names::new("t2").leader_lock_key());
        assert_eq!(Names::new("").task_topic(), "yadtq.tasks");
        assert_eq!(n.queue_topic("default"), "t1.yadtq.tasks");
        assert_eq!(n.queue_topic("emails"), "t1.yadtq.tasks.emails");
        assert_eq!(n.tenant_topic("default", "acme"), "t1.yadtq.tasks.tenant.acme");
        assert_eq!(n.tenant_topic("emails", "acme"), "t1.yadtq.tasks.emails.tenant.acme");
    }

    #[test]
    fn durations_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 0.2 "), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["-1", "NaN", "inf", "fast", "5 parsecs", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let e = ensure_positive(&[("--a", Duration::from_secs(1)), ("--b", Duration::ZERO)]).unwrap_err();
        assert!(e.to_string().starts_with("--b must be a positive duration"), "{e}");
    }
}
