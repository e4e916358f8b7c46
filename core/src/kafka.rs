//! Kafka plumbing shared by the services: the idempotent producer, topic
//! creation through the admin API (at start, for configured queues), sending
//! an envelope, and a reachability probe.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use crate::config::CommonConfig;
use crate::envelope::Envelope;

/// How long a produced record may wait for the broker before its delivery fails (ms).
/// The row stays unpublished and the publisher sends it again later.
pub const MESSAGE_TIMEOUT_MS: u32 = 30_000;

/// Base client settings: bootstrap servers, a client id naming the process,
/// and the user's `--kafka-option`s. Callers add their own settings after, so
/// [`apply_user_options`] must run last.
pub fn client_config(cfg: &CommonConfig, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka_bootstrap).set("client.id", client_id);
    c
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
    let mut c = client_config(cfg, client_id);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string());
    apply_user_options(cfg, &mut c).create()
}

/// Creates the dead-letter topic and the task topics of `queues` when absent
/// (`cfg.partitions` partitions each); existing topics are kept as they are.
/// Called at start for the configured queues only (auto-creation is off on
/// the broker): no request ever creates a topic.
///
/// Errors when the broker cannot be reached within `timeout` or refuses the request.
pub async fn ensure_topics(cfg: &CommonConfig, queues: &[String], timeout: Duration) -> anyhow::Result<()> {
    let names = cfg.names();
    let mut topics: Vec<(String, i32)> = queues.iter().map(|q| (names.queue_topic(q), cfg.partitions)).collect();
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

/// Sends `env` to `topic` keyed by the task id and waits for the broker's ack.
///
/// Errors when the local queue is full or the delivery fails or times out
/// ([`MESSAGE_TIMEOUT_MS`]).
pub async fn send_envelope(producer: &FutureProducer, topic: &str, env: &Envelope) -> Result<(), KafkaError> {
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
