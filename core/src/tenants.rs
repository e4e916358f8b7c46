//! Dedicated tenants: tenants whose tasks only their own workers run.
//!
//! Operators name them on the gateways (`--dedicated-tenants`); a gateway
//! records its list in PostgreSQL at start (`store::tenants`), and every
//! process routes by that recorded list, read again every maintenance period
//! ([`Routes::spawn_refresh`]), so gateways, the maintenance leader and
//! workers agree within one period. A dedicated tenant's tasks go to a topic
//! of their own per queue ([`crate::config::Names::tenant_topic`]); every
//! other tenant's go to the queue's shared topic. [`Routes::topic`] is the
//! one routing rule, used by the one publish path ([`crate::publish::send`]).
//! docs/security.md ("Dedicated workers") has the model and what happens
//! when the list changes.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Names;
use crate::names::TaskKey;
use crate::store::StoreError;

/// The routing rule and the dedicated tenants it reads, as last read from
/// PostgreSQL. Cheap to clone: clones share the list.
#[derive(Debug, Clone)]
pub struct Routes {
    names: Names,
    dedicated: Arc<RwLock<Arc<BTreeSet<String>>>>,
}

impl Routes {
    /// Routes with a fixed list (`dedicated`), until a [`Routes::refresh`].
    pub fn new(names: Names, dedicated: impl IntoIterator<Item = String>) -> Self {
        Self { names, dedicated: Arc::new(RwLock::new(Arc::new(dedicated.into_iter().collect()))) }
    }

    /// Routes with the list recorded in PostgreSQL now.
    ///
    /// Errors when the list cannot be read.
    pub async fn load(names: Names, pool: &PgPool) -> Result<Self, StoreError> {
        Ok(Self::new(names, crate::store::tenants::dedicated(pool).await?))
    }

    /// The dedicated tenants, as last read.
    pub(crate) fn dedicated(&self) -> Arc<BTreeSet<String>> {
        self.dedicated.read().expect("routes lock").clone()
    }

    /// True when `tenant` is dedicated, as last read.
    pub(crate) fn is_dedicated(&self, tenant: &str) -> bool {
        self.dedicated.read().expect("routes lock").contains(tenant)
    }

    /// The topic a task of `tenant` in `queue` is sent to: the tenant's own
    /// topic of the queue when the tenant is dedicated, else the queue's
    /// shared topic. The one routing rule: the gateway's sends, the
    /// publisher's, the scheduler's and the rescuer's all go through it.
    pub fn topic(&self, queue: &str, tenant: &str) -> String {
        if self.is_dedicated(tenant) {
            self.names.tenant_topic(queue, tenant)
        } else {
            self.names.queue_topic(queue)
        }
    }

    /// The topic of the task stored under key `key` (its tenant is part of
    /// the key: [`TaskKey::tenant`]) in `queue`.
    pub(crate) fn topic_of_task(&self, queue: &str, key: &TaskKey) -> String {
        self.topic(queue, key.tenant())
    }

    /// Every topic of `queue`: its shared topic, then each dedicated
    /// tenant's, as last read. For topic creation, record limits and lag.
    pub fn topics_of(&self, queue: &str) -> Vec<String> {
        let dedicated: Vec<String> = self.dedicated().iter().cloned().collect();
        task_topics(&self.names, &[queue.to_string()], &dedicated)
    }

    /// Reads the list again; returns true when it changed (and logs the new one).
    ///
    /// Errors when it cannot be read; the old list stays in use.
    pub async fn refresh(&self, pool: &PgPool) -> Result<bool, StoreError> {
        let now: BTreeSet<String> = crate::store::tenants::dedicated(pool).await?.into_iter().collect();
        let mut held = self.dedicated.write().expect("routes lock");
        if **held == now {
            return Ok(false);
        }
        tracing::info!(was = ?held, now = ?now, "dedicated tenants changed: routing by the new list");
        *held = Arc::new(now);
        Ok(true)
    }

    /// Refreshes the list every `period` until `shutdown`, in the background.
    pub fn spawn_refresh(&self, pool: PgPool, period: Duration, shutdown: CancellationToken) {
        let routes = self.clone();
        tokio::spawn(async move {
            let mut ticker = crate::periodic::every(period);
            while crate::periodic::next_tick(&mut ticker, &shutdown).await {
                if let Err(e) = routes.refresh(&pool).await {
                    tracing::warn!(error = %e, "cannot read the dedicated tenants; routing by the last list read");
                }
            }
        });
    }
}

/// How long after a change of a tenant's route the maintenance leader sends
/// that tenant's queued tasks again ([`crate::store::tasks::reroute_changed`]):
/// three maintenance periods `period` (every process has read the new list
/// by then), plus how long a record sent by the old list can wait for its
/// ack ([`crate::kafka::MESSAGE_TIMEOUT_MS`]), plus 5 s for its publish mark.
pub(crate) fn reroute_settle(period: Duration) -> Duration {
    period * 3 + Duration::from_millis(u64::from(crate::kafka::MESSAGE_TIMEOUT_MS)) + Duration::from_secs(5)
}

/// Which tenants' tasks a worker runs (its `--tenants`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serves {
    /// No `--tenants`: every tenant that is not dedicated (the shared topics).
    Shared,
    /// `--tenants`: these tenants, while they are dedicated (their own topics).
    Tenants(BTreeSet<String>),
}

impl Serves {
    /// `Shared` for an empty `--tenants`, else those tenants.
    pub fn from_flag(tenants: &[String]) -> Self {
        if tenants.is_empty() {
            Self::Shared
        } else {
            Self::Tenants(tenants.iter().cloned().collect())
        }
    }

    /// The topics this worker subscribes to for `queue`.
    pub fn topics(&self, names: &Names, queue: &str) -> Vec<String> {
        match self {
            Self::Shared => vec![names.queue_topic(queue)],
            Self::Tenants(ts) => ts.iter().map(|t| names.tenant_topic(queue, t)).collect(),
        }
    }

    /// True when this worker runs tasks of `tenant` under `routes`' list: a
    /// shared worker the tenants not dedicated, a dedicated worker its own
    /// tenants while they are dedicated. A record of any other tenant
    /// reached this worker by an old route; the worker sends it back to the
    /// publisher ([`crate::store::tasks::resend`]) instead of running it.
    pub fn serves(&self, routes: &Routes, tenant: &str) -> bool {
        match self {
            Self::Shared => !routes.is_dedicated(tenant),
            Self::Tenants(ts) => ts.contains(tenant) && routes.is_dedicated(tenant),
        }
    }
}

/// Checks a worker's `--tenants` against the dedicated list of `routes` and
/// returns the tenants whose topics the worker may create: the dedicated
/// ones. Logs an error naming each tenant no gateway declared dedicated:
/// its tasks go to the shared topics, so this worker waits for nothing
/// there (usually a typo, or a gateway not updated). Like
/// [`crate::queues::check_declared`] for queues.
pub fn check_dedicated(routes: &Routes, tenants: &[String]) -> Vec<String> {
    let dedicated = routes.dedicated();
    let (ok, missing): (Vec<String>, Vec<String>) = tenants.iter().cloned().partition(|t| dedicated.contains(t));
    if !missing.is_empty() {
        tracing::error!(
            not_dedicated = ?missing,
            dedicated = ?dedicated,
            "tenants not declared dedicated by any gateway: their tasks go to the shared topics, which this \
             worker does not read, and their topics are not created; add them to the gateways' \
             --dedicated-tenants (YADTQ_DEDICATED_TENANTS) or fix this worker's --tenants"
        );
    }
    ok
}

/// The task topics of `queues`: each queue's shared topic followed by its
/// topic for each tenant of `tenants`.
pub fn task_topics(names: &Names, queues: &[String], tenants: &[String]) -> Vec<String> {
    let mut topics = Vec::new();
    for q in queues {
        topics.push(names.queue_topic(q));
        topics.extend(tenants.iter().map(|t| names.tenant_topic(q, t)));
    }
    topics
}

/// Parses one tenant name of a `--dedicated-tenants` or `--tenants` list:
/// trimmed, and valid ([`crate::auth::is_valid_tenant`]); empty (an empty
/// environment variable) is kept for the caller to drop.
///
/// Errors naming the tenant and the rule.
pub fn parse_tenant(s: &str) -> Result<String, String> {
    let name = s.trim();
    if !name.is_empty() && !crate::auth::is_valid_tenant(name) {
        return Err(crate::names::InvalidTenant { name: name.to_string() }.to_string());
    }
    Ok(name.to_string())
}

/// Longest topic name Kafka accepts.
pub(crate) const MAX_TOPIC_LEN: usize = 249;

/// Checks the task topics of `queues` for the dedicated `tenants` (and the
/// shared ones and the dead-letter topic) against Kafka's topic rules:
/// at most [`MAX_TOPIC_LEN`] characters, and no two names that differ only
/// by `.` against `_` (Kafka refuses the second, since its metric names
/// replace `.` with `_`: queue `a_tenant_b` and queue `a` of tenant `b`
/// would collide). Names are letters, digits, `-`, `_` and `.` already
/// (queue and tenant names are checked on their own).
///
/// Errors naming the offending topic (and the one it collides with).
pub fn check_topics(names: &Names, queues: &[String], tenants: &[String]) -> Result<(), String> {
    let topics = std::iter::once(names.dlq_topic()).chain(task_topics(names, queues, tenants));
    let mut seen = std::collections::HashMap::new();
    for topic in topics {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(format!("topic '{topic}' is {} characters; Kafka allows {MAX_TOPIC_LEN}", topic.len()));
        }
        if let Some(other) = seen.insert(topic.replace('.', "_"), topic.clone()) {
            if other != topic {
                return Err(format!(
                    "topics '{other}' and '{topic}' differ only by '.' against '_', which Kafka refuses; rename the queue or tenant"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(dedicated: &[&str]) -> Routes {
        Routes::new(Names::new("ns"), dedicated.iter().map(|t| t.to_string()))
    }

    #[test]
    fn dedicated_tenants_get_their_own_topic_per_queue() {
        let r = routes(&["acme"]);
        assert_eq!(r.topic("default", "acme"), "ns.yadtq.tasks.tenant.acme");
        assert_eq!(r.topic("emails", "acme"), "ns.yadtq.tasks.emails.tenant.acme");
        assert_eq!(r.topic("emails", "beta"), "ns.yadtq.tasks.emails");
        assert_eq!(r.topic_of_task("emails", &"acme/12345abc".into()), "ns.yadtq.tasks.emails.tenant.acme");
        assert_eq!(r.topic_of_task("emails", &"12345abc".into()), "ns.yadtq.tasks.emails", "the default tenant's key");
        assert_eq!(r.topics_of("emails"), ["ns.yadtq.tasks.emails", "ns.yadtq.tasks.emails.tenant.acme"]);
    }

    #[test]
    fn a_worker_runs_only_the_tenants_it_serves_under_the_list() {
        let r = routes(&["acme"]);
        let names = Names::new("ns");
        let shared = Serves::from_flag(&[]);
        assert!(shared.serves(&r, "beta") && !shared.serves(&r, "acme"));
        assert_eq!(shared.topics(&names, "default"), ["ns.yadtq.tasks"]);
        let own = Serves::from_flag(&["acme".to_string(), "gamma".to_string()]);
        assert!(own.serves(&r, "acme"));
        assert!(!own.serves(&r, "beta"), "another tenant");
        assert!(!own.serves(&r, "gamma"), "named, but not dedicated: its tasks go to the shared topics");
        assert_eq!(own.topics(&names, "default"), ["ns.yadtq.tasks.tenant.acme", "ns.yadtq.tasks.tenant.gamma"]);
        assert_eq!(check_dedicated(&r, &["acme".to_string(), "gamma".to_string()]), ["acme"]);
    }

    #[test]
    fn tenant_flags_take_tenant_names() {
        assert_eq!(parse_tenant(" acme ").as_deref(), Ok("acme"));
        assert_eq!(parse_tenant("").as_deref(), Ok(""));
        assert!(parse_tenant("a.b").unwrap_err().contains("letters, digits"));
        assert!(parse_tenant("a/b").is_err());
    }

    #[test]
    fn topic_names_keep_to_kafka_rules() {
        let names = Names::new("ns");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(check_topics(&names, &s(&["default", "emails"]), &s(&["acme", "a_b"])), Ok(()));
        let e = check_topics(&names, &s(&["a", "a_tenant_b"]), &s(&["b"])).unwrap_err();
        assert!(e.contains("ns.yadtq.tasks.a_tenant_b") && e.contains("ns.yadtq.tasks.a.tenant.b"), "{e}");
        let long = "x".repeat(64);
        assert_eq!(check_topics(&names, &s(&[&long]), &s(&[&long])), Ok(()), "the longest names fit");
        let e = check_topics(&Names::new(&"n".repeat(120)), &s(&[&long]), &s(&[&long])).unwrap_err();
        assert!(e.contains("Kafka allows 249"), "{e}");
    }
}
