//! The yadtq worker, as a library: build a [`Registry`] of handlers (built-ins
//! and your own async functions) and call [`run`]. The `yadtq-worker` binary is
//! this library with the built-in handlers.
//!
//! ```no_run
//! use clap::Parser;
//! use yadtq_worker::{HandlerError, Registry, WorkerConfig};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     worker: WorkerConfig,
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let mut registry = Registry::with_builtins();
//!     registry.register("greet", |ctx| async move {
//!         let name = ctx.args.first().and_then(|v| v.as_str()).ok_or_else(|| HandlerError::invalid_arguments("args[0] must be a name"))?;
//!         Ok(serde_json::json!(format!("hello, {name}")))
//!     });
//!     yadtq_worker::run(Cli::parse().worker, registry, yadtq_worker::shutdown_on_signals()).await
//! }
//! ```

mod admin;
pub mod builtins;
pub mod config;
mod consumer;
mod execute;
pub mod external;
pub mod handler;
mod liveness;
pub mod offsets;
pub mod preflight;
pub mod retry;
mod writes;

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::Message;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yadtq_core::{kafka, maintenance, store};

pub use config::WorkerConfig;
pub use handler::{HandlerError, HandlerFn, Registry, TaskContext};

use crate::execute::Executor;
use crate::liveness::Liveness;
use crate::offsets::{OffsetTracker, RecordPos};

/// A token cancelled on SIGTERM or Ctrl-C (SIGINT).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: stopping"),
        }
        t.cancel();
    });
    token
}

/// Runs a worker until `shutdown` is cancelled, then shuts down gracefully:
/// stops taking records, lets running tasks finish within the grace period
/// (aborting the rest), commits offsets, and marks the worker stopped.
///
/// Errors when the configuration is invalid, PostgreSQL / Kafka clients
/// cannot be created at start, or the broker refuses the Kafka credentials or
/// certificate. Kafka being down at start is waited out.
pub async fn run(cfg: WorkerConfig, registry: Registry, shutdown: CancellationToken) -> anyhow::Result<()> {
    cfg.validate()?;
    let common = &cfg.common;
    let names = common.names();
    let worker_id = Uuid::new_v4();
    let pool = store::connect(common).await?;
    kafka::check_credentials(common, Duration::from_secs(10)).await?;
    let producer = kafka::producer(common, &format!("yadtq-worker-{worker_id}"))?;

    // Where this worker's tasks come from, and which records it may run:
    // the dedicated tenants as the gateways recorded them, read again every P.
    let routes = yadtq_core::tenants::Routes::load(names.clone(), &pool).await?;
    routes.spawn_refresh(pool.clone(), common.maintenance_period, shutdown.clone());
    let serves = cfg.serves();

    // The broker runs with topic auto-creation off: create the topics of the
    // declared queues ourselves (the gateways' --queues is the one list), and
    // for a dedicated worker those of its tenants that are declared dedicated.
    let queue_names: Vec<String> = cfg.queues.iter().map(|(q, _)| q.clone()).collect();
    let creatable_queues = yadtq_core::queues::check_declared(&pool, &queue_names).await;
    let creatable_for = match &serves {
        yadtq_core::tenants::Serves::Shared => yadtq_core::tenants::Serves::Shared,
        yadtq_core::tenants::Serves::Tenants(ts) => {
            let tenants: Vec<String> = ts.iter().cloned().collect();
            yadtq_core::tenants::Serves::Tenants(
                yadtq_core::tenants::check_dedicated(&routes, &tenants).into_iter().collect(),
            )
        }
    };
    let creatable: Vec<String> = creatable_queues.iter().flat_map(|q| creatable_for.topics(&names, q)).collect();
    while let Err(e) = kafka::ensure_topics(common, &creatable, Duration::from_secs(10)).await {
        tracing::warn!(error = %e, "cannot ensure Kafka topics yet; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }

    // A session timeout the broker refuses would leave the worker never
    // joining its group while it looks alive: stop now and say what to change.
    match preflight::session_bounds(&cfg, Duration::from_secs(10)).await {
        Ok(Some(bounds)) => preflight::check_session_timeout(cfg.kafka_session_timeout_ms, common.dead_after, &bounds)?,
        Ok(None) => tracing::warn!("the broker does not report group.min/max.session.timeout.ms; not checked"),
        Err(e) => tracing::warn!(error = %e, "cannot read the broker's session-timeout bounds; not checked"),
    }

    let hostname = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let task_names = registry.names();
    let started_for: Option<Vec<String>> = match &serves {
        yadtq_core::tenants::Serves::Shared => None,
        yadtq_core::tenants::Serves::Tenants(ts) => Some(ts.iter().cloned().collect()),
    };
    store::workers::register(
        &pool,
        &store::workers::WorkerInfo {
            id: worker_id,
            hostname: &hostname,
            pid: std::process::id() as i32,
            queues: &queue_names,
            task_names: &task_names,
            concurrency: cfg.concurrency as i32,
            tenants: started_for.as_deref(),
        },
    )
    .await?;
    // It fans in and reads parents' results: workflows may be accepted.
    store::workflows::report_level(&pool, worker_id).await?;
    tracing::info!(%worker_id, concurrency = cfg.concurrency, queues = ?cfg.queues, tenants = ?serves, group = %names.group_id(), "worker started");

    yadtq_core::metrics::install();
    metrics::gauge!(yadtq_core::metrics::WORKER_CONCURRENCY).set(cfg.concurrency as f64);
    yadtq_core::metrics::zero_worker_series(&task_names, &queue_names);
    let live = Liveness::new(common.dead_after, common.heartbeat_interval);
    let stop_beats = CancellationToken::new();
    let beats = liveness::spawn_heartbeat(
        common.database_url.clone(),
        worker_id,
        common.heartbeat_interval,
        live.clone(),
        stop_beats.clone(),
    );
    // Cancelled by the caller's shutdown, or by a consumer error no retry can fix.
    let stopping = shutdown.child_token();
    if let Some(addr) = cfg.admin_listen {
        let token = cfg.metrics_token().map(str::to_owned);
        admin::serve(addr, token, live.clone(), stopping.clone()).await?;
    }
    let fatal: Arc<Mutex<Option<String>>> = Arc::default();
    // Maintenance stops as soon as shutdown starts: a draining worker never
    // takes the leadership, and releases it at once if it held it.
    let maint = tokio::spawn(maintenance::run(
        common.clone(),
        pool.clone(),
        producer.clone(),
        routes.clone(),
        stopping.clone(),
    ));

    // Handlers run on their own runtime so a busy handler cannot starve polling,
    // with a thread per slot: a handler that computes without awaiting holds
    // one thread, never the thread another slot's task needs.
    let handler_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.concurrency)
        .thread_name("yadtq-handler")
        .enable_all()
        .build()?;
    let exec = Arc::new(Executor {
        worker_id,
        pool: pool.clone(),
        writes: writes::Writes::new(pool.clone(), worker_id, producer.clone(), routes.clone()),
        producer,
        dlq_topic: names.dlq_topic(),
        registry,
        slots: Arc::new(Semaphore::new(cfg.concurrency)),
        // Room for a few outcome batches in flight beyond the running handlers.
        writing: Arc::new(Semaphore::new(cfg.concurrency * PENDING_WRITES_PER_SLOT)),
        live: live.clone(),
        handlers: handler_rt.handle().clone(),
        backoff: retry::Backoff {
            base: cfg.retry_backoff_base.as_secs_f64(),
            cap: cfg.retry_backoff_cap.as_secs_f64(),
        },
        max_result_bytes: cfg.max_result_bytes,
        max_parent_results_bytes: cfg.max_parent_results_bytes,
        outcome_retry_limit: cfg.outcome_retry_limit,
        draining: CancellationToken::new(),
        abort: CancellationToken::new(),
        topic_queues: queue_names
            .iter()
            .flat_map(|q| {
                let label = metrics::SharedString::from_shared(std::sync::Arc::<str>::from(q.as_str()));
                serves.topics(&names, q).into_iter().map(move |t| (t, label.clone()))
            })
            .collect(),
        routes,
        serves: serves.clone(),
    });

    // One consumer per queue, all in the same group, sharing the execution slots.
    let mut consumers = Vec::new();
    live.set_consumers(cfg.queues.len());
    for (queue, share) in cfg.queue_shares() {
        let tracker = Arc::new(Mutex::new(OffsetTracker::new()));
        let topics = serves.topics(&names, &queue);
        let consumer = consumer::create(&cfg, worker_id, &queue, &topics, tracker.clone(), live.clone())?;
        let membership = consumer::Membership::new(queue, topics, common.dead_after, common.heartbeat_interval);
        consumers.push((consumer, tracker, share, membership));
    }
    let stop = Stop { token: stopping.clone(), fatal: fatal.clone() };
    let loops = consumers.iter_mut().map(|(c, t, share, m)| consume(c, &exec, t, *share, cfg.shutdown_grace, &stop, m));
    futures::future::join_all(loops).await;

    // The teardown is bounded: with Kafka or PostgreSQL unreachable, leaving
    // the group, committing or marking the worker stopped can wait for ever.
    // Whatever is not done in time is covered: uncommitted records are read
    // again by the partitions' next owners (their tasks are fenced at claim),
    // and the rescuer requeues this worker's tasks once its heartbeat is D old.
    let consumers: Vec<_> = consumers.into_iter().map(|(c, ..)| c).collect();
    let left = on_thread("yadtq-leave", move || {
        for consumer in &consumers {
            // Offsets of everything finished are stored; commit them before leaving the group.
            if let Err(e) =
                rdkafka::consumer::Consumer::commit_consumer_state(consumer, rdkafka::consumer::CommitMode::Sync)
            {
                tracing::debug!(error = %e, "final commit");
            }
        }
        drop(consumers); // leaves the group
    });
    let teardown = async {
        if !matches!(tokio::time::timeout(LEAVE_BOUND, left).await, Ok(Ok(()))) {
            tracing::error!(
                bound_s = LEAVE_BOUND.as_secs(),
                "the Kafka consumers did not leave the group in time (broker unreachable?); \
                 their partitions move after the session timeout"
            );
        }
        let _ = maint.await;
        stop_beats.cancel();
        let _ = on_thread("yadtq-heartbeat-join", move || drop(beats.join())).await;
        if let Err(e) = store::workers::mark_stopped(&pool, worker_id, live.counts()).await {
            tracing::error!(error = %e, "cannot mark the worker stopped; the rescuer notices it after the dead-after threshold");
        }
    };
    if tokio::time::timeout(TEARDOWN_BOUND, teardown).await.is_err() {
        tracing::error!(
            bound_s = TEARDOWN_BOUND.as_secs(),
            "shutdown teardown not finished in time: exiting without it"
        );
    }
    handler_rt.shutdown_background();
    tracing::info!(%worker_id, counts = ?live.counts(), "worker stopped");
    let fatal = fatal.lock().take();
    match fatal {
        Some(e) => Err(anyhow::anyhow!(e)),
        None => Ok(()),
    }
}

/// How the consume loops stop: the token, and the error that made them stop
/// when it was not a shutdown request.
struct Stop {
    token: CancellationToken,
    fatal: Arc<Mutex<Option<String>>>,
}

/// Longest the teardown after the shutdown grace period may take (leaving the
/// consumer group, stopping maintenance and heartbeats, marking the worker stopped).
const TEARDOWN_BOUND: Duration = Duration::from_secs(9);
/// Longest the teardown waits for the consumers to commit and leave the group,
/// so marking the worker stopped (which lets the rescuer act at once) still fits.
const LEAVE_BOUND: Duration = Duration::from_secs(5);

/// Runs `f` on its own OS thread and returns a future of its end. The thread
/// is detached: if `f` blocks for ever (librdkafka waiting for a broker), the
/// caller can stop waiting and the process can still exit, which a
/// `spawn_blocking` task would prevent (the runtime waits for those).
fn on_thread(name: &str, f: impl FnOnce() + Send + 'static) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        f();
        let _ = tx.send(());
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start thread {name}");
    }
    rx
}

/// Finished attempts whose outcome write is pending, per `--concurrency` slot.
const PENDING_WRITES_PER_SLOT: usize = 4;

/// The consume loop: polls continuously, hands each record to the executor,
/// stores offsets as records complete, and pauses partitions while `max_in_hand`
/// records are already in hand (back-pressure without leaving the group).
async fn consume(
    consumer: &consumer::TaskConsumer,
    exec: &Arc<Executor>,
    tracker: &Arc<Mutex<OffsetTracker>>,
    max_in_hand: usize,
    grace: Duration,
    stop: &Stop,
    membership: &mut consumer::Membership,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(RecordPos, bool)>();
    let mut in_hand = 0usize;
    let mut paused = false;
    let on_done = |(pos, complete): (RecordPos, bool), in_hand: &mut usize| {
        *in_hand -= 1;
        if !complete {
            return; // left unclaimed while draining: its offset must not be committed
        }
        let next = tracker.lock().finished(&pos);
        if let Some(next) = next {
            consumer::store(consumer, &pos, next);
        }
    };
    let mut membership_check = yadtq_core::periodic::every(consumer::MEMBERSHIP_CHECK);
    loop {
        tokio::select! {
            biased;
            _ = stop.token.cancelled() => break,
            Some(pos) = done_rx.recv() => on_done(pos, &mut in_hand),
            _ = membership_check.tick() => {
                if membership.check(consumer, &exec.live) {
                    paused = false; // a fresh assignment starts unpaused
                }
            }
            msg = consumer.recv() => match msg {
                Ok(m) => {
                    let m = m.detach();
                    let pos = tracker.lock().started(m.topic(), m.partition(), m.offset());
                    in_hand += 1;
                    let (exec, tx, tr, at) = (exec.clone(), done_tx.clone(), tracker.clone(), pos.clone());
                    tokio::spawn(async move {
                        let complete = exec.process(m, move || tr.lock().is_current(&at)).await;
                        let _ = tx.send((pos, complete));
                    });
                }
                Err(e) => {
                    if let Some(code) = e.rdkafka_error_code().filter(|c| preflight::is_fatal(*c)) {
                        let message = format!("the broker refuses this worker's consumer group settings ({code:?}): {e}");
                        tracing::error!("{message}; stopping");
                        *stop.fatal.lock() = Some(message);
                        stop.token.cancel();
                        continue;
                    }
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
        // Hysteresis: pause when full, resume at half, so a backlog does not
        // cost a pause/resume cycle (and its refetch) per finished task.
        if in_hand >= max_in_hand && (!paused || in_hand > max_in_hand) {
            consumer::set_paused(consumer, true);
            paused = true;
        } else if paused && in_hand <= max_in_hand / 2 {
            consumer::set_paused(consumer, false);
            paused = false;
        }
    }

    exec.draining.cancel();
    tracing::info!(in_hand, grace_s = grace.as_secs_f64(), "shutting down: waiting for running tasks");
    let deadline = tokio::time::Instant::now() + grace;
    while in_hand > 0 {
        tokio::select! {
            Some(pos) = done_rx.recv() => on_done(pos, &mut in_hand),
            _ = tokio::time::sleep_until(deadline), if !exec.abort.is_cancelled() => {
                tracing::warn!(in_hand, "grace period over: aborting running tasks");
                exec.abort.cancel();
            }
        }
    }
}
