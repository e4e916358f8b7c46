//! Kafka plumbing shared by the services: the idempotent producer, topic
//! creation through the admin API (at start, for configured queues), sending
//! an envelope, and a reachability probe.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use crate::config::CommonConfig;
use crate::envelope::Envelope;
use crate::model::TaskError;

/// How long a produced record may wait for the broker before its delivery fails (ms).
/// The row stays unpublished and the publisher sends it again later.
pub(crate) const MESSAGE_TIMEOUT_MS: u32 = 30_000;

/// Base client settings: bootstrap servers, a client id naming the process,
/// and the connection's security ([`crate::kafka_security::KafkaSecurity`]).
/// Callers add their own settings after, then [`apply_user_options`], which
/// must run last.
pub fn client_config(cfg: &CommonConfig, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka_bootstrap).set("client.id", client_id);
    cfg.kafka_security.apply(&mut c);
    c
}

/// Checks at start that the broker accepts this process's Kafka credentials
/// and certificate settings, waiting at most `timeout` for its answer.
///
/// Errors when the broker refuses them (authentication failed, TLS handshake
/// failed), naming the settings; an unreachable broker is only logged, since
/// yadtq waits out a Kafka outage.
pub async fn check_credentials(cfg: &CommonConfig, timeout: Duration) -> anyhow::Result<()> {
    let mut c = client_config(cfg, "yadtq-preflight");
    apply_user_options(cfg, &mut c);
    match crate::kafka_security::check_broker(c, &cfg.kafka_bootstrap, timeout).await? {
        crate::kafka_security::BrokerCheck::Reachable => {}
        crate::kafka_security::BrokerCheck::Unreachable(last) => {
            tracing::warn!(bootstrap = %cfg.kafka_bootstrap, last_error = %last, "Kafka not reachable at start; going on")
        }
    }
    Ok(())
}

/// Applies the user's `--kafka-option KEY=VALUE` settings over `c`.
pub fn apply_user_options<'a>(cfg: &CommonConfig, c: &'a mut ClientConfig) -> &'a mut ClientConfig {
    for (k, v) in cfg.kafka_options.iter().filter(|(k, _)| !k.is_empty()) {
        c.set(k, v);
    }
    c
}

/// The idempotent, `acks=all` producer used for tasks and dead letters.
pub fn producer(cfg: &CommonConfig, client_id: &str) -> Result<FutureProducer, KafkaError> {
    producer_config(cfg, client_id).create()
}

fn producer_config(cfg: &CommonConfig, client_id: &str) -> ClientConfig {
    let mut c = client_config(cfg, client_id);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string());
    apply_user_options(cfg, &mut c);
    c
}

/// The producer's `message.max.bytes` in bytes, as librdkafka sees it: the
/// user's `--kafka-option` when given, else librdkafka's default (1,000,000).
///
/// Errors when the Kafka options are invalid (the producer could not be created either).
pub fn producer_max_message_bytes(cfg: &CommonConfig) -> anyhow::Result<usize> {
    let value = producer_config(cfg, "yadtq-limits").create_native_config()?.get("message.max.bytes")?;
    Ok(value.parse()?)
}

/// Bytes a record takes beyond its key and value, at most: the record batch
/// header (61 bytes; the broker compares the whole batch with the topic's
/// `max.message.bytes`) plus librdkafka's bound on one record's own framing
/// (36 bytes of lengths, attributes and deltas, the bound it compares with
/// the producer's `message.max.bytes`). Counted against both limits, so a
/// record within [`RecordLimit::max_record_bytes`] passes either check.
pub(crate) const RECORD_OVERHEAD: usize = 61 + 36;

/// What the broker accepts on one queue's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLimit {
    /// The producer's `message.max.bytes`, bytes.
    pub producer_max: usize,
    /// The topic's name.
    pub topic: String,
    /// The topic's `max.message.bytes`, bytes; `None` until read from the broker.
    pub topic_max: Option<usize>,
}

impl RecordLimit {
    /// Largest record (key plus value, bytes) both limits let through:
    /// `min(producer_max, topic_max) - RECORD_OVERHEAD` (the producer's alone
    /// while the topic's is unknown).
    pub fn max_record_bytes(&self) -> usize {
        self.producer_max.min(self.topic_max.unwrap_or(usize::MAX)).saturating_sub(RECORD_OVERHEAD)
    }

    /// How the limit was derived, for a problem document: `min(producer
    /// message.max.bytes 1000000, topic t max.message.bytes 1048588) minus 97
    /// bytes of record overhead`.
    pub fn explain(&self) -> String {
        match self.topic_max {
            Some(t) => format!(
                "min(producer message.max.bytes {}, topic {} max.message.bytes {t}) minus {RECORD_OVERHEAD} bytes of record overhead",
                self.producer_max, self.topic
            ),
            None => format!(
                "producer message.max.bytes {} minus {RECORD_OVERHEAD} bytes of record overhead (topic {} max.message.bytes not read yet)",
                self.producer_max, self.topic
            ),
        }
    }
}

/// The record limits of the configured queues' topics, shared by a gateway's
/// handlers and refreshed in the background ([`RecordLimits::refresh`]), so a
/// change an operator makes to a topic is seen without a restart.
#[derive(Debug)]
pub struct RecordLimits {
    producer_max: usize,
    /// Topic name to its `max.message.bytes`, for the topics read so far.
    topics: std::sync::RwLock<std::collections::HashMap<String, usize>>,
}

impl RecordLimits {
    /// Limits with only the producer's known (`producer_max`, bytes) until the first refresh.
    pub fn new(producer_max: usize) -> Self {
        Self { producer_max, topics: Default::default() }
    }

    /// The limit on `topic` (where a task goes: [`crate::tenants::Routes::topic`]) as last read.
    pub fn of(&self, topic: &str) -> RecordLimit {
        let topic_max = self.topics.read().expect("record limits").get(topic).copied();
        RecordLimit { producer_max: self.producer_max, topic: topic.to_string(), topic_max }
    }

    /// Reads `max.message.bytes` of `topics` from the broker (admin API
    /// DescribeConfigs) and keeps what it read.
    ///
    /// Errors when the broker cannot be reached within `timeout`, or does not
    /// describe one of the topics (missing, or the value is not a number);
    /// the topics read keep their new value, the others their old one.
    pub async fn refresh(&self, cfg: &CommonConfig, topics: &[String], timeout: Duration) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            apply_user_options(cfg, &mut client_config(cfg, "yadtq-admin")).create()?;
        let specs: Vec<ResourceSpecifier> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let opts = AdminOptions::new().request_timeout(Some(timeout));
        let described = admin.describe_configs(&specs, &opts).await?;
        let mut failed = Vec::new();
        for (topic, result) in topics.iter().zip(described) {
            let value = result.ok().and_then(|c| c.get("max.message.bytes").and_then(|e| e.value.clone()));
            match value.and_then(|v| v.parse::<usize>().ok()) {
                Some(bytes) => {
                    let old = self.topics.write().expect("record limits").insert(topic.clone(), bytes);
                    if old != Some(bytes) {
                        tracing::info!(%topic, max_message_bytes = bytes, "read the topic's record limit");
                    }
                }
                None => failed.push(topic.as_str()),
            }
        }
        anyhow::ensure!(failed.is_empty(), "max.message.bytes not described for {}", failed.join(", "));
        Ok(())
    }
}

/// Creates the dead-letter topic and the task topics `topics` when absent
/// (`cfg.partitions` partitions each); existing topics are kept as they are.
/// Called at start for the configured queues (and their dedicated tenants'
/// topics) only (auto-creation is off on the broker): no request ever
/// creates a topic.
///
/// Errors when the broker cannot be reached within `timeout` or refuses the request.
pub async fn ensure_topics(cfg: &CommonConfig, topics: &[String], timeout: Duration) -> anyhow::Result<()> {
    let names = cfg.names();
    let mut topics: Vec<(String, i32)> = topics.iter().map(|t| (t.clone(), cfg.partitions)).collect();
    topics.push((names.dlq_topic(), 1));
    create_topics(cfg, &topics, timeout).await
}

async fn create_topics(cfg: &CommonConfig, topics: &[(String, i32)], timeout: Duration) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        apply_user_options(cfg, &mut client_config(cfg, "yadtq-admin")).create()?;
    let new: Vec<NewTopic> =
        topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(cfg.topic_replication))).collect();
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Error kind of a task whose Kafka record is refused for its size: failed, never retried.
pub(crate) const RECORD_TOO_LARGE: &str = "record_too_large";
/// Error kind of a task whose Kafka record the broker refuses as invalid: failed, never retried.
pub(crate) const UNPUBLISHABLE: &str = "unpublishable";
/// The error kinds of tasks that can never be sent; `POST /tasks/{id}/retry` refuses them.
pub const UNSENDABLE_KINDS: [&str; 2] = [RECORD_TOO_LARGE, UNPUBLISHABLE];

/// What became of one record sent with [`deliver`].
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The broker acknowledged it.
    Acked,
    /// Not sent for now (timeout, transport error, outage, unknown topic):
    /// the row stays unpublished and the publisher sends it again.
    Failed(KafkaError),
    /// Refused for the record itself: it can never be sent, so the task fails
    /// with this error instead of being retried for ever.
    Refused(TaskError),
}

/// Classifies a send error: `Some(error)` when the record itself is refused
/// and no retry can help (message too large locally or on the broker, record
/// list too large, invalid record), with kind [`RECORD_TOO_LARGE`] or
/// [`UNPUBLISHABLE`]; `None` for everything else, which is retried: timeouts,
/// transport errors and outages are never permanent. `record_bytes` (key plus
/// value) goes into the message. The one classification both publishing paths
/// (the gateway's and the maintenance publisher's) use.
pub(crate) fn refusal(e: &KafkaError, record_bytes: usize) -> Option<TaskError> {
    let KafkaError::MessageProduction(code) = e else { return None };
    let kind = match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge => RECORD_TOO_LARGE,
        RDKafkaErrorCode::InvalidRecord => UNPUBLISHABLE,
        _ => return None,
    };
    let why = if kind == RECORD_TOO_LARGE { "as too large" } else { "as invalid" };
    Some(TaskError::new(
        kind,
        format!(
            "Kafka refused the task's record ({record_bytes} bytes) {why} ({code}); it can never be sent, \
             so it is not retried: submit it again with smaller args or kwargs"
        ),
    ))
}

/// Sends `env` to `topic` ([`send_envelope`]) and classifies the outcome with [`refusal`].
pub(crate) async fn deliver(producer: &FutureProducer, topic: &str, env: &Envelope) -> Delivery {
    match send_envelope(producer, topic, env).await {
        Ok(()) => Delivery::Acked,
        Err(e) => match refusal(&e, env.id.len() + env.encode().len()) {
            Some(error) => Delivery::Refused(error),
            None => Delivery::Failed(e),
        },
    }
}

/// Sends `env` to `topic` keyed by the task id and waits for the broker's ack.
///
/// Errors when the local queue is full or the delivery fails or times out
/// ([`MESSAGE_TIMEOUT_MS`]).
pub(crate) async fn send_envelope(producer: &FutureProducer, topic: &str, env: &Envelope) -> Result<(), KafkaError> {
    let payload = env.encode();
    let record = FutureRecord::to(topic).key(env.id.as_str()).payload(&payload);
    let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}

/// Asks the broker for cluster metadata; `Ok(broker count)` when it answers within `timeout`.
pub async fn probe(producer: &FutureProducer, timeout: Duration) -> Result<usize, String> {
    let client = producer.clone();
    tokio::task::spawn_blocking(move || {
        client.client().fetch_metadata(None, timeout).map(|m| m.brokers().len()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_limit_is_the_smaller_limit_less_the_overhead() {
        let limit = |topic_max| RecordLimit { producer_max: 1_000_000, topic: "t".into(), topic_max };
        assert_eq!(limit(Some(1_048_588)).max_record_bytes(), 1_000_000 - RECORD_OVERHEAD);
        assert_eq!(limit(Some(100_000)).max_record_bytes(), 100_000 - RECORD_OVERHEAD);
        assert_eq!(limit(None).max_record_bytes(), 1_000_000 - RECORD_OVERHEAD, "the producer's until read");
        assert_eq!(limit(Some(10)).max_record_bytes(), 0);
        assert!(limit(Some(100_000)).explain().contains("topic t max.message.bytes 100000)"));
        assert!(limit(None).explain().contains("not read yet"));
    }

    #[test]
    fn only_errors_about_the_record_itself_are_permanent() {
        let produce = |code| KafkaError::MessageProduction(code);
        for code in [RDKafkaErrorCode::MessageSizeTooLarge, RDKafkaErrorCode::MessageBatchTooLarge] {
            let e = refusal(&produce(code), 1_000_123).expect("permanent");
            assert_eq!(e.kind, RECORD_TOO_LARGE);
            assert!(e.message.contains("1000123 bytes") && e.message.contains("too large"), "{}", e.message);
        }
        assert_eq!(refusal(&produce(RDKafkaErrorCode::InvalidRecord), 10).unwrap().kind, UNPUBLISHABLE);
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::LeaderNotAvailable,
        ] {
            assert!(refusal(&produce(code), 10).is_none(), "{code:?} is retried");
        }
        assert!(refusal(&KafkaError::Canceled, 10).is_none());
    }
}
