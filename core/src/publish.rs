//! The one path from a `queued` row to a Kafka record, used by the gateway
//! (for the tasks it just accepted) and by the maintenance passes (publisher,
//! scheduler, rescuer): build the envelopes, send them as one producer batch,
//! and sort the broker's answers. What happens to an acknowledged record
//! differs only in timing (the gateway marks it a little later, see its
//! `marker`; the passes mark at once); a record refused for itself fails its
//! task either way ([`fail_refused`]).

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::envelope::{Envelope, ENVELOPE_VERSION};
use rdkafka::error::KafkaError;

use crate::kafka::Delivery;
use crate::model::Task;
use crate::names::TaskKey;
use crate::store::tasks::{Refused, Sent, Unpublished};
use crate::tenants::Routes;

impl From<Unpublished> for Envelope {
    fn from(r: Unpublished) -> Self {
        Envelope {
            v: ENVELOPE_VERSION,
            id: r.id,
            task: r.name,
            args: r.args,
            kwargs: r.kwargs,
            queue: r.queue,
            attempt: r.attempts,
            submitted_at: r.created_at,
        }
    }
}

impl From<&Task> for Envelope {
    fn from(t: &Task) -> Self {
        Envelope {
            v: ENVELOPE_VERSION,
            id: t.key.clone(),
            task: t.task.clone(),
            args: t.args.clone(),
            kwargs: t.kwargs.clone(),
            queue: t.queue.clone(),
            attempt: t.attempts,
            submitted_at: t.created_at,
        }
    }
}

/// The broker's answers to one batch of sends.
#[derive(Debug, Default)]
pub struct Sends {
    /// Acknowledged: mark these published ([`crate::store::tasks::mark_published`]).
    pub acked: Vec<Sent>,
    /// Refused for the record itself: fail these ([`fail_refused`]).
    pub refused: Vec<Refused>,
    /// Not sent for now (outage, timeout): they stay unpublished and the
    /// publisher sends them again.
    pub failed: Vec<Unsent>,
}

/// A record not sent for now, and why.
#[derive(Debug)]
pub struct Unsent {
    /// Task key.
    pub id: TaskKey,
    /// The producer's error (an outage, the delivery timeout).
    pub error: KafkaError,
}

/// Sends `envelopes` to the topics `routes` names for their queue and
/// tenant ([`Routes::topic`]) as one producer batch (the idempotent producer
/// keeps their order per partition) and waits for every answer.
pub async fn send(producer: &FutureProducer, routes: &Routes, envelopes: Vec<Envelope>) -> Sends {
    let sends = envelopes.iter().map(|env| {
        // Topics exist for the declared queues and dedicated tenants (created
        // at start); a row routed to a topic that does not exist (a queue
        // declared no more) fails to send and waits.
        let topic = routes.topic_of_task(&env.queue, &env.id);
        async move { crate::kafka::deliver(producer, &topic, env).await }
    });
    let results = futures::future::join_all(sends).await;
    let mut out = Sends::default();
    for (env, result) in envelopes.into_iter().zip(results) {
        match result {
            Delivery::Acked => out.acked.push(Sent { id: env.id, attempts: env.attempt }),
            Delivery::Failed(error) => out.failed.push(Unsent { id: env.id, error }),
            Delivery::Refused(error) => out.refused.push(Refused { id: env.id, attempts: env.attempt, error }),
        }
    }
    out
}

/// Fails the tasks whose records Kafka refused for themselves, logging each;
/// a database error leaves them queued and the next send fails them again.
pub async fn fail_refused(pool: &PgPool, refused: &[Refused]) {
    for r in refused {
        tracing::error!(id = %r.id, kind = %r.error.kind, error = %r.error.message, "task can never be sent to Kafka: failing it");
    }
    if let Err(e) = crate::store::tasks::fail_unsendable(pool, refused).await {
        tracing::warn!(error = %e, "cannot fail tasks Kafka refused; they will be sent (and refused) again");
    }
}
