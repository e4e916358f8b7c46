//! One record, start to end: decode the envelope (or dead-letter it), claim the
//! row, run the handler on the handler runtime with its timeout, and write the
//! outcome. Returns once the record needs nothing more, so its offset may be
//! stored (design guarantee 5).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::SharedString;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yadtq_core::envelope::Envelope;
use yadtq_core::model::TaskError;
use yadtq_core::names::TaskKey;
use yadtq_core::store::tasks::{self, ClaimResult, Claimed, Outcome, Recorded, Resent};
use yadtq_core::store::StoreError;
use yadtq_core::telemetry::{self, KeyValue, SpanKind, TraceContext};

use crate::handler::{HandlerError, HandlerFn, ProgressFn, Registry, TaskContext};
use crate::liveness::Liveness;
use crate::retry::{self, Backoff, Retry};
use crate::writes::Writes;

/// Everything a record's processing needs, shared by all of them.
pub struct Executor {
    /// This process's worker id.
    pub worker_id: Uuid,
    /// Database pool.
    pub pool: PgPool,
    /// Batched claims and outcome writes.
    pub writes: Writes,
    /// Producer for dead letters.
    pub producer: FutureProducer,
    /// Dead-letter topic name.
    pub dlq_topic: String,
    /// Handlers by name.
    pub registry: Registry,
    /// Limits how many handlers run at once (`--concurrency`).
    pub slots: Arc<Semaphore>,
    /// Limits finished attempts whose outcome is not written yet (four times
    /// `slots`): when writes fall that far behind, finished handlers keep
    /// their slots.
    pub writing: Arc<Semaphore>,
    /// Heartbeat state and fencing.
    pub live: Arc<Liveness>,
    /// Runtime that runs handlers, apart from the one that polls Kafka.
    pub handlers: tokio::runtime::Handle,
    /// Default retry backoff (a task's own settings win).
    pub backoff: Backoff,
    /// Largest result (serialised JSON bytes) stored; larger fails the attempt.
    pub max_result_bytes: usize,
    /// Largest total size of a workflow node's parents' results.
    pub max_parent_results_bytes: usize,
    /// How long an outcome write is retried while PostgreSQL is unreachable
    /// (and at most until `abort`).
    pub outcome_retry_limit: Duration,
    /// Cancelled when shutdown starts: records not yet claimed stay unclaimed.
    pub draining: CancellationToken,
    /// Cancelled when shutdown's grace period is over: running handlers stop,
    /// and so do the retries of outcome writes.
    pub abort: CancellationToken,
    /// The queue each subscribed topic serves (topic -> queue): the `queue`
    /// label of the metrics, so a record's own fields never name a series.
    /// Shared strings: a label costs a reference count per task, not a copy.
    pub topic_queues: std::collections::HashMap<String, SharedString>,
    /// The dedicated tenants, as last read (refreshed every maintenance period).
    pub routes: yadtq_core::tenants::Routes,
    /// Which tenants' tasks this worker runs (`--tenants`).
    pub serves: yadtq_core::tenants::Serves,
}

/// Pause between retries of a database write that failed (PostgreSQL unreachable).
const DB_RETRY: Duration = Duration::from_millis(500);

impl Executor {
    /// Processes one record. Returns true when the record needs nothing more, so
    /// its offset may be stored; false when the worker is draining and left the
    /// record unclaimed (the next owner of the partition reads it again).
    pub async fn process(&self, msg: OwnedMessage, assigned: impl Fn() -> bool) -> bool {
        let env = match Envelope::decode(msg.payload()) {
            Ok(env) => env,
            Err(e) => {
                self.dead_letter(&msg, &e.to_string()).await;
                return true;
            }
        };
        if !self.serves.serves(&self.routes, env.id.tenant()) {
            return self.send_back(&env.id, &msg, &assigned).await;
        }
        let Ok(slot) = self.slots.acquire().await else {
            return false;
        };
        if self.draining.is_cancelled() {
            return false;
        }
        // Taken before the claim: a fence from here on stops this attempt,
        // even one that falls between the claim and the handler's start.
        let fence = self.live.epoch();
        let claim_from = SystemTime::now();
        let claimed = match self.claim(&env.id, &assigned).await {
            Claim::Claimed(c) => c,
            Claim::Skipped => return true,
            Claim::Dropped => return false,
        };
        // The spans continue the trace stored with the task (a new one for
        // a task stored without).
        let stored = claimed.trace.as_ref();
        let trace =
            telemetry::remote_parent(stored.map(|t| t.traceparent.as_str()), stored.map(|t| t.tracestate.as_str()));
        let attributes = span_attributes(&env.id, &claimed);
        telemetry::record("claim", &trace, claim_from, attributes.clone());
        self.live.task_started();
        let queue = self.queue_of(&msg);
        self.count_start(&claimed.name, &queue, &msg);
        let started = std::time::Instant::now();
        let run = telemetry::start("run", SpanKind::Consumer, &trace, None, attributes.clone());
        let outcome = match self.parents(&env.id).await {
            Ok(parents) => self.run_handler(&env.id, &claimed, fence, TraceContext::of(&run), parents).await,
            Err(failure) => Some(self.outcome_of(&env.id, &claimed, Err(failure))),
        };
        telemetry::end(&run, vec![KeyValue::new("yadtq.outcome", outcome_name(outcome.as_ref()))]);
        let success = match &outcome {
            Some(Outcome::Success(_)) => Some(true),
            Some(Outcome::Failed(_) | Outcome::Retry { .. }) => Some(false),
            Some(Outcome::Cancelled) => None,
            None => None,
        };
        self.count(&claimed.name, &queue, outcome.as_ref(), started.elapsed());
        // The handler is done: its slot lets the next task start while this
        // outcome is written (the offset still waits for the write). Pending
        // writes are bounded too, so a slow database holds the slot instead.
        let _writing = self.writing.acquire().await;
        drop(slot);
        self.live.task_finished(success);
        if let Some(outcome) = outcome {
            let (from, name) = (SystemTime::now(), outcome_name(Some(&outcome)));
            self.record(&env.id, claimed.attempt, claimed.limited, outcome).await;
            let mut attributes = attributes;
            attributes.push(KeyValue::new("yadtq.outcome", name));
            telemetry::record("outcome", &trace, from, attributes);
        }
        true
    }

    /// The `queue` label of a record: the queue its topic serves, or `(other)`
    /// for a topic this worker was not configured with.
    fn queue_of(&self, msg: &OwnedMessage) -> SharedString {
        self.topic_queues.get(msg.topic()).cloned().unwrap_or(SharedString::const_str("(other)"))
    }

    /// Counts a finished attempt and its handler time in the metrics. The task
    /// label is the name only when a handler serves it (submitted names are
    /// the client's, so unknown ones share one label); `queue` is the
    /// record's ([`Executor::queue_of`]).
    fn count(&self, name: &str, queue: &SharedString, outcome: Option<&Outcome>, ran: Duration) {
        use yadtq_core::metrics as m;
        let task = if self.registry.get(name).is_some() { name.to_owned() } else { "(unknown)".to_owned() };
        let kind = match outcome {
            Some(Outcome::Success(_)) => "success",
            Some(Outcome::Failed(_)) => "failed",
            Some(Outcome::Retry { .. }) => "retry",
            Some(Outcome::Cancelled) => "cancelled",
            None => "aborted",
        };
        metrics::counter!(m::TASKS_FINISHED, "task" => task.clone(), "queue" => queue.clone(), "outcome" => kind)
            .increment(1);
        metrics::histogram!(m::TASK_DURATION, "task" => task).record(ran.as_secs_f64());
    }

    /// Counts a claimed attempt and the time its record waited: from the
    /// record's producer timestamp (the task's submission, its promotion by
    /// the scheduler at `run_at`, or its requeue) to now, on the two hosts'
    /// clocks (a negative difference, clock skew, counts as 0). `queue` is the
    /// record's ([`Executor::queue_of`]).
    fn count_start(&self, name: &str, queue: &SharedString, msg: &OwnedMessage) {
        use yadtq_core::metrics as m;
        let task = if self.registry.get(name).is_some() { name.to_owned() } else { "(unknown)".to_owned() };
        metrics::counter!(m::TASKS_STARTED, "task" => task, "queue" => queue.clone()).increment(1);
        if let Some(produced_ms) = msg.timestamp().to_millis() {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let wait = (now_ms - produced_ms).max(0) as f64 / 1000.0;
            metrics::histogram!(m::TASK_QUEUE_WAIT, "queue" => queue.clone()).record(wait);
        }
    }

    /// Claims the row ([`Executor::until_written`]).
    async fn claim(&self, id: &TaskKey, assigned: &impl Fn() -> bool) -> Claim {
        match self.until_written(id, "claim", assigned, || self.writes.claim(id)).await {
            None => Claim::Dropped,
            Some(ClaimResult::Claimed(c)) => Claim::Claimed(c),
            Some(ClaimResult::NotQueued) => {
                tracing::debug!(id = id.as_str(), "skipping record: task is not queued (claimed or finished already)");
                Claim::Skipped
            }
        }
    }

    /// A record of a tenant this worker does not serve: it came by the
    /// tenant's old route (the dedicated tenants changed since it was sent).
    /// Its task is not run here but handed back to the publisher
    /// ([`yadtq_core::store::tasks::resend`]), which sends it to the route
    /// it reads now. Returns whether the record is complete, like [`Executor::process`].
    async fn send_back(&self, id: &TaskKey, msg: &OwnedMessage, assigned: &impl Fn() -> bool) -> bool {
        let resend = || tasks::resend(&self.pool, id);
        let Some(resent) = self.until_written(id, "send back", assigned, resend).await else { return false };
        if resent == Resent::Unpublished {
            metrics::counter!(yadtq_core::metrics::TASKS_SENT_BACK, "queue" => self.queue_of(msg)).increment(1);
            tracing::info!(
                id = id.as_str(),
                topic = msg.topic(),
                "record of a tenant this worker does not serve: sent back to the publisher"
            );
        }
        true
    }

    /// Runs `write` (a claim, a send-back) until PostgreSQL answers, retrying
    /// while it is unreachable and waiting while fenced, as long as the
    /// record's partition is still `assigned` here. `None` when it gave up
    /// (shutdown abort, or the partition was revoked: its new owner reads the
    /// record again).
    async fn until_written<T, Fut>(
        &self,
        id: &TaskKey,
        what: &str,
        assigned: &impl Fn() -> bool,
        write: impl Fn() -> Fut,
    ) -> Option<T>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        loop {
            if self.abort.is_cancelled() {
                return None;
            }
            if !assigned() {
                tracing::debug!(
                    id = id.as_str(),
                    "dropping record: its partition was revoked (the new owner reads it)"
                );
                return None;
            }
            if self.live.fenced() {
                tokio::time::sleep(DB_RETRY).await;
                continue;
            }
            match write().await {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::warn!(id = id.as_str(), error = %e, "{what} failed; retrying");
                    tokio::time::sleep(DB_RETRY).await;
                }
            }
        }
    }

    /// Runs the handler with the task's timeout and decides the outcome
    /// (success, retry later, failed, or cancelled). An attempt aborted by the
    /// fence fails as `worker_lost` (retryable). `None` when it was aborted by
    /// shutdown: nothing is written; the rescuer requeues the stopped worker's tasks.
    async fn run_handler(
        &self,
        id: &TaskKey,
        claimed: &Claimed,
        fence: CancellationToken,
        trace: Option<TraceContext>,
        parents: Option<Value>,
    ) -> Option<Outcome> {
        let result = match self.registry.get(&claimed.name) {
            None => Err(permanent("unknown_task", format!("no handler serves task name '{}'", claimed.name))),
            Some(handler) => match self.context(id, claimed, trace) {
                Ok((mut ctx, cancel)) => {
                    ctx.parents = parents;
                    self.attempt(id, claimed, handler, ctx, cancel, fence).await?
                }
                Err(e) => Err(e),
            },
        };
        Some(self.outcome_of(id, claimed, result))
    }

    /// A workflow node's parents by ref ([`yadtq_core::store::workflows::parent_results`]);
    /// `None` for a task that is not a node. A node whose parents' results
    /// exceed the cap fails for good (`parents_too_large`); one whose
    /// parents cannot be read (PostgreSQL failed) fails this attempt, retryably.
    async fn parents(&self, id: &TaskKey) -> Result<Option<Value>, Failure> {
        use yadtq_core::store::workflows::{self, Parents};
        if !workflows::node_key(id) {
            return Ok(None);
        }
        let cap = self.max_parent_results_bytes;
        match workflows::parent_results(&self.pool, id, cap as i64).await {
            Ok(Parents::Read(by_ref, since_last)) => {
                if let Some(s) = since_last {
                    metrics::histogram!(yadtq_core::metrics::WORKFLOW_FAN_IN).record(s.max(0.0));
                }
                Ok(Some(serde_json::to_value(by_ref).expect("parents serialise")))
            }
            Ok(Parents::TooLarge { size }) => Err(permanent(
                "parents_too_large",
                format!("the parents' results total {size} bytes, above the limit of {cap} bytes (YADTQ_MAX_PARENT_RESULTS_BYTES)"),
            )),
            Err(e) => Err(retryable("parents_unreadable", format!("cannot read the parents' results: {e}"))),
        }
    }

    /// The outcome to record for a handler's `result` (retry policy applied).
    fn outcome_of(&self, id: &TaskKey, claimed: &Claimed, result: Result<String, Failure>) -> Outcome {
        match result {
            Ok(json) => Outcome::Success(json),
            Err(Failure::Cancelled) => Outcome::Cancelled,
            Err(Failure::Error { error, retry }) => {
                let backoff = Backoff {
                    base: claimed.retry_backoff.base_seconds.unwrap_or(self.backoff.base),
                    cap: claimed.retry_backoff.cap_seconds.unwrap_or(self.backoff.cap),
                };
                let (attempt, max) = (claimed.attempt, claimed.max_retries);
                let outcome = retry::after_failure(error, retry, attempt, max, backoff, &mut rand::thread_rng());
                if let Outcome::Retry { error, delay } = &outcome {
                    tracing::info!(id = id.as_str(), attempt, kind = %error.kind, delay_s = delay.as_secs_f64(), "attempt failed; retrying later");
                }
                outcome
            }
        }
    }

    /// Parses the claimed row into a handler context; a row whose arguments do
    /// not parse fails permanently.
    fn context(
        &self,
        id: &TaskKey,
        claimed: &Claimed,
        trace: Option<TraceContext>,
    ) -> Result<(TaskContext, CancellationToken), Failure> {
        let args: Vec<Value> = serde_json::from_str(claimed.args.get())
            .map_err(|e| permanent("invalid_arguments", format!("args is not a JSON array: {e}")))?;
        let kwargs: Map<String, Value> = serde_json::from_str(claimed.kwargs.get())
            .map_err(|e| permanent("invalid_arguments", format!("kwargs is not a JSON object: {e}")))?;
        let cancel = CancellationToken::new();
        let (pool, worker_id, task_id, attempt) = (self.pool.clone(), self.worker_id, id.clone(), claimed.attempt);
        let progress: ProgressFn = Arc::new(move |p| {
            let (pool, task_id) = (pool.clone(), task_id.clone());
            Box::pin(async move {
                if let Err(e) = tasks::set_progress(&pool, &task_id, worker_id, attempt, &p).await {
                    tracing::debug!(id = %task_id, error = %e, "progress not stored");
                }
            })
        });
        let live = self.live.clone();
        let ctx = TaskContext {
            id: id.to_string(),
            task: claimed.name.clone(),
            attempt: claimed.attempt,
            args,
            kwargs,
            cancel: cancel.clone(),
            progress: Some(progress),
            owner: Some(Arc::new(move || !live.fenced())),
            trace,
            parents: None,
        };
        Ok((ctx, cancel))
    }

    /// Runs one attempt on the handler runtime, racing it against its timeout,
    /// a cancel request, the fence (`fence`, taken before the claim), a
    /// takeover seen in the rows, and the end of the shutdown grace period.
    async fn attempt(
        &self,
        id: &TaskKey,
        claimed: &Claimed,
        handler: HandlerFn,
        ctx: TaskContext,
        cancel: CancellationToken,
        fence: CancellationToken,
    ) -> Option<Result<String, Failure>> {
        let attempt = claimed.attempt;
        if fence.is_cancelled() || self.live.fenced() {
            tracing::warn!(id = id.as_str(), attempt, "attempt not started: the worker fenced itself after the claim");
            return Some(Err(retryable("worker_lost", FENCED_MESSAGE)));
        }
        let tracked = self.live.track(id, attempt);
        let timeout = claimed.timeout;
        let mut job = self.handlers.spawn(async move { tokio::time::timeout(timeout, handler(ctx)).await });
        let stopped = tokio::select! {
            r = &mut job => Ok(r),
            _ = tracked.cancel.cancelled() => Err(Stopped::CancelRequested),
            _ = fence.cancelled() => Err(Stopped::Fenced),
            _ = tracked.taken_over.cancelled() => Err(Stopped::TakenOver),
            _ = self.abort.cancelled() => Err(Stopped::Shutdown),
        };
        let result = match stopped {
            Ok(r) => r,
            Err(why) => {
                stop(&cancel, &mut job).await;
                self.live.untrack(id, attempt);
                tracing::warn!(id = id.as_str(), attempt, "attempt aborted: {}", why.reason());
                // Outcome writes are fenced (status, worker, attempt): after a
                // takeover they change nothing; after a fence they hand the
                // task back once PostgreSQL answers again.
                return match why {
                    Stopped::CancelRequested => Some(Err(Failure::Cancelled)),
                    Stopped::Fenced => Some(Err(retryable("worker_lost", FENCED_MESSAGE))),
                    Stopped::TakenOver => {
                        Some(Err(retryable("worker_lost", "the attempt was taken over by another worker")))
                    }
                    // Nothing is written; the rescuer requeues the stopped worker's tasks.
                    Stopped::Shutdown => None,
                };
            }
        };
        self.live.untrack(id, attempt);
        Some(match result {
            Ok(Ok(Ok(value))) => {
                let json = value.to_string();
                if json.len() > self.max_result_bytes {
                    Err(permanent(
                        "result_too_large",
                        format!("result is {} bytes, above the limit of {} bytes", json.len(), self.max_result_bytes),
                    ))
                } else {
                    Ok(json)
                }
            }
            Ok(Ok(Err(HandlerError { kind, message, retryable }))) => Err(Failure::Error {
                error: TaskError::new(kind, message),
                retry: if retryable { Retry::Allowed } else { Retry::Never },
            }),
            Ok(Err(_elapsed)) => {
                cancel.cancel();
                let message = format!("attempt exceeded its timeout of {} s", timeout.as_secs_f64());
                Err(retryable("timeout", message))
            }
            Err(e) if e.is_panic() => Err(retryable("panic", panic_message(e.into_panic()))),
            Err(e) => Err(retryable("handler_error", e.to_string())),
        })
    }

    /// Writes the outcome, retrying with backoff while PostgreSQL is
    /// unreachable, for up to `outcome_retry_limit`; the offset is not stored
    /// before the write lands. The write is fenced (status, worker, attempt), so
    /// a late one after a takeover changes nothing. A result PostgreSQL refuses
    /// is replaced by a failure, so the task never stays `processing`.
    async fn record(&self, id: &TaskKey, attempt: i32, limited: bool, mut outcome: Outcome) {
        let mut delay = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + self.outcome_retry_limit;
        loop {
            let Some(write) = self.writes.record(id, attempt, limited, outcome).await else {
                tracing::error!(
                    id = id.as_str(),
                    attempt,
                    "outcome not written: the worker is stopping; the rescuer requeues the task"
                );
                return;
            };
            outcome = write.outcome;
            match write.recorded {
                Ok(Recorded::Written) => return,
                Ok(Recorded::Fenced) => {
                    tracing::warn!(
                        id = id.as_str(),
                        attempt,
                        "outcome fenced out: the task was taken over or finished meanwhile"
                    );
                    return;
                }
                Err(e @ StoreError::Refused(_)) if matches!(outcome, Outcome::Success(_)) => {
                    tracing::error!(id = id.as_str(), attempt, error = %e, "PostgreSQL refused the result; recording a failure instead");
                    outcome = fail("result_not_stored", format!("the result could not be stored: {e}"));
                }
                Err(e) if tokio::time::Instant::now() >= deadline || self.abort.is_cancelled() => {
                    tracing::error!(id = id.as_str(), attempt, error = %e, "giving up writing the outcome; the rescuer requeues the task");
                    return;
                }
                Err(e) => {
                    tracing::warn!(id = id.as_str(), attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot record outcome; retrying");
                    // Past the shutdown grace period the retries stop: shutdown stays bounded.
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.abort.cancelled() => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sends a record that is not a valid envelope to the dead-letter topic,
    /// with the reason and its origin in headers.
    async fn dead_letter(&self, msg: &OwnedMessage, reason: &str) {
        tracing::warn!(partition = msg.partition(), offset = msg.offset(), reason, "dead-lettering invalid record");
        let origin = format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset());
        let headers = OwnedHeaders::new()
            .insert(Header { key: "yadtq-dlq-reason", value: Some(reason) })
            .insert(Header { key: "yadtq-dlq-origin", value: Some(&origin) });
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.dlq_topic).headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        let result = match self.producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => "written",
            Err((e, _)) => {
                tracing::error!(origin, error = %e, "cannot write dead letter; record dropped");
                "lost"
            }
        };
        metrics::counter!(yadtq_core::metrics::DEAD_LETTERS, "result" => result).increment(1);
    }
}

/// The attributes of a task's worker spans: the task's id as its tenant
/// knows it, its tenant, name and attempt.
fn span_attributes(key: &TaskKey, claimed: &Claimed) -> Vec<KeyValue> {
    vec![
        KeyValue::new("yadtq.task.id", key.client_id().to_string()),
        KeyValue::new("yadtq.tenant", key.tenant().to_string()),
        KeyValue::new("yadtq.task.name", claimed.name.clone()),
        KeyValue::new("yadtq.attempt", i64::from(claimed.attempt)),
    ]
}

/// How an attempt ended, as the `yadtq.outcome` span attribute: `success`,
/// `failed`, `retry`, `cancelled`, or `aborted` (shutdown; nothing written).
fn outcome_name(outcome: Option<&Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Success(_)) => "success",
        Some(Outcome::Failed(_)) => "failed",
        Some(Outcome::Retry { .. }) => "retry",
        Some(Outcome::Cancelled) => "cancelled",
        None => "aborted",
    }
}

fn fail(kind: impl Into<String>, message: impl Into<String>) -> Outcome {
    Outcome::Failed(TaskError::new(kind, message))
}

/// Aborts a running handler and waits (briefly: a handler blocking without
/// awaiting never yields) for its future to be dropped, so a command handler's
/// process group is killed before the attempt is considered stopped.
async fn stop<T>(cancel: &CancellationToken, job: &mut tokio::task::JoinHandle<T>) {
    cancel.cancel();
    job.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), job).await;
}

/// The error message of an attempt stopped by the worker's fence.
const FENCED_MESSAGE: &str = "the worker fenced itself: no heartbeat for the fence threshold (D - H/2)";

/// Why a running attempt was stopped before its handler returned.
enum Stopped {
    CancelRequested,
    Fenced,
    TakenOver,
    Shutdown,
}

impl Stopped {
    fn reason(&self) -> &'static str {
        match self {
            Self::CancelRequested => "cancel requested",
            Self::Fenced => "worker fenced itself",
            Self::TakenOver => "taken over by another worker",
            Self::Shutdown => "shutdown grace period over",
        }
    }
}

/// What became of a record's claim.
enum Claim {
    /// The row is ours to run.
    Claimed(Claimed),
    /// Not ours to run (claimed or finished already): the record is complete.
    Skipped,
    /// Left unclaimed (shutdown, or the partition was revoked): the record is
    /// not complete, its offset is not stored, the partition's owner reads it.
    Dropped,
}

/// Why an attempt produced no result.
enum Failure {
    /// It failed, and another attempt may or may not succeed.
    Error {
        /// Why.
        error: TaskError,
        /// Whether another attempt could succeed.
        retry: Retry,
    },
    /// A cancel request stopped it.
    Cancelled,
}

fn permanent(kind: &str, message: String) -> Failure {
    Failure::Error { error: TaskError::new(kind, message), retry: Retry::Never }
}

fn retryable(kind: &str, message: impl Into<String>) -> Failure {
    Failure::Error { error: TaskError::new(kind, message), retry: Retry::Allowed }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".into())
}
