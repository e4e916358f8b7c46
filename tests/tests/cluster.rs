//! Broker failover on a real three-node Kafka cluster
//! (`scripts/kafka-cluster.sh`: KRaft, replication factor 3,
//! `min.insync.replicas=2`, the producer's `acks=all`): the leader of the
//! busiest partition is SIGKILLed in the middle of a load and restarted.
//! Skipped, with a message, when `YADTQ_KAFKA_CLUSTER` is not set
//! (`scripts/test.sh` starts the cluster and sets it).
//!
//! The figures it prints (failover, recovery, ISR rejoin) describe this run
//! on this machine; the bounds asserted are generous timeouts only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::json;
use yadtq_core::config::Names;
use yadtq_tests::{Answer, Cluster, PartitionState, Stack};

/// Tasks submitted over the whole load.
const TASKS: usize = 2_000;
/// Submitted every 100 ms (about 60 tasks/s), so the load lasts ~35 s and
/// spans the kill, the failover and the restart.
const PER_TICK: usize = 6;
/// The broker is killed once this many tasks are accepted (~7 s into the load).
const KILL_AFTER: usize = 400;
/// How long the killed broker stays down after its partitions have new leaders.
const DOWN_AFTER_FAILOVER: Duration = Duration::from_secs(3);
/// Generous bound on each phase; a hung phase fails the test, it measures nothing.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// The cluster's replication factor (`scripts/kafka-cluster.sh`).
const REPLICAS: usize = 3;

#[tokio::test]
async fn killing_the_busiest_partitions_leader_loses_nothing_and_never_runs_a_task_twice_at_once() {
    let Some(cluster) = Cluster::from_env() else {
        eprintln!(
            "skipped: YADTQ_KAFKA_CLUSTER is not set. Run scripts/test.sh (it starts the three-node cluster), \
             or scripts/kafka-cluster.sh start and eval \"$(scripts/kafka-cluster.sh env)\""
        );
        return;
    };
    let t0 = Instant::now();
    let mut stack = Stack::with_kafka("cluster", cluster.bootstrap()).await;
    stack.set_env("YADTQ_TOPIC_REPLICATION", &REPLICAS.to_string());
    let names = Names::new(&stack.namespace);
    let (topic, group) = (names.task_topic(), names.group_id());
    let gw = stack.gateway(&[]).await;
    let w1 = stack.worker("worker-1", &[]).await;
    let w2 = stack.worker("worker-2", &[]).await;
    stack.wait_assigned(&w1).await;
    stack.wait_assigned(&w2).await;
    let before = cluster.partitions(&topic).await;
    assert!(
        before.iter().all(|p| p.replicas.len() == REPLICAS && p.isr.len() == REPLICAS),
        "yadtq created {topic} with replication factor {REPLICAS}, all in sync: {before:?}"
    );
    let setup = t0.elapsed();

    let submitted = AtomicUsize::new(0);
    let load = async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut answers: Vec<Answer> = Vec::with_capacity(TASKS);
        while answers.len() < TASKS {
            tick.tick().await;
            let n = PER_TICK.min(TASKS - answers.len());
            answers.extend(join_all((0..n).map(|_| gw.submit_owned(json!({"task": "sleep", "args": [0.05]})))).await);
            submitted.store(answers.len(), Ordering::Relaxed);
        }
        answers
    };
    let faults = async {
        while submitted.load(Ordering::Relaxed) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let parts = cluster.partitions(&topic).await;
        let records = cluster.records(&topic).await;
        let busiest = (0..parts.len()).max_by_key(|&i| records[i]).expect("partitions");
        let victim = parts[busiest].leader;
        let coordinator = cluster.coordinator(&group).await;
        let controller = cluster.controller().await;
        let chosen = format!(
            "killing broker {victim}: leader of partition {} (the busiest, {} of {} records so far), \
             leads {} of {} partitions; broker {coordinator} coordinates the consumer group, \
             node {controller} is the active controller",
            parts[busiest].id,
            records[busiest],
            records.iter().sum::<i64>(),
            parts.iter().filter(|p| p.leader == victim).count(),
            parts.len(),
        );
        eprintln!("{chosen}");
        let killed_at: DateTime<Utc> =
            sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&stack.db).await.expect("database clock");
        let kill = Instant::now();
        cluster.kill(victim).await;
        let (failed_over, moved) =
            wait_partitions(&cluster, &topic, |p| p.leader >= 0 && p.leader != victim && !p.isr.contains(&victim))
                .await;
        let failed_over = failed_over - kill;
        assert!(moved.iter().all(|p| p.isr.len() == REPLICAS - 1), "two replicas stay in sync: {moved:?}");
        tokio::time::sleep(DOWN_AFTER_FAILOVER).await;

        let restart = Instant::now();
        let answering = async {
            cluster.restart(victim).await;
            restart.elapsed()
        };
        let unfenced = async {
            while !cluster.brokers().await.contains(&victim) {
                assert!(restart.elapsed() < PHASE_TIMEOUT, "broker {victim} not back after {PHASE_TIMEOUT:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            restart.elapsed()
        };
        let rejoined = async { wait_partitions(&cluster, &topic, |p| p.isr.len() == REPLICAS).await.0 - restart };
        let (answering, unfenced, rejoined) = tokio::join!(answering, unfenced, rejoined);
        Failover { chosen, killed_at, failed_over, down: restart - kill, answering, unfenced, rejoined }
    };
    let (answers, failover) = tokio::join!(load, faults);

    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 202).collect();
    assert!(refused.is_empty(), "{} of {TASKS} submissions not accepted, e.g. {:?}", refused.len(), refused.first());
    let ids: Vec<String> = answers.iter().map(|a| a.body["id"].as_str().expect("id").to_string()).collect();
    stack.wait_terminal(&ids, PHASE_TIMEOUT).await;
    assert_eq!(stack.count_status(&ids, "success").await, TASKS as i64, "every accepted task succeeded");
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_attempts a JOIN task_attempts b
           ON b.task_id = a.task_id AND b.attempt > a.attempt
         WHERE a.task_id = ANY($1) AND b.started_at < coalesce(a.finished_at, 'infinity')",
    )
    .bind(&ids)
    .fetch_one(&stack.db)
    .await
    .expect("overlapping attempts");
    assert_eq!(overlapping, 0, "no task had two attempts running at once");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = ANY($1)")
        .bind(&ids)
        .fetch_one(&stack.db)
        .await
        .expect("attempts");
    let not_once = stack.not_run_once(&ids).await;

    let timeline = Timeline::read(&stack, &ids, failover.killed_at).await;
    let rejoined_group = [&w1, &w2].iter().filter(|w| w.log().contains("LOST")).count();
    // More records than tasks would be sends repeated around the failover
    // (the claim absorbs them); the idempotent producer's own retries add none.
    let records: i64 = cluster.records(&topic).await.iter().sum();
    let mut report = failover.report(&timeline);
    report += &format!(
        "executions: {TASKS} tasks, {attempts} attempts, {} tasks run other than once{}, 0 overlapping; \
         {records} records in the task topic\n\
         workers that timed out of the consumer group and rejoined: {rejoined_group} of 2\n\
         test wall time {:.0} s (setup {:.0} s)\n",
        not_once.len(),
        if not_once.is_empty() { String::new() } else { format!(" (e.g. {:?})", &not_once[..not_once.len().min(5)]) },
        t0.elapsed().as_secs_f64(),
        setup.as_secs_f64(),
    );
    eprint!("{report}");
    // Also next to the processes' logs: cargo test shows a passing test's output only with --nocapture.
    std::fs::write(stack.launch.log_dir.join("failover.txt"), &report).expect("write failover.txt");

    // Stopped first, so no client sees its topics vanish.
    drop((w1, w2, gw));
    cluster.delete_topics(&[topic, names.dlq_topic()]).await;
}

/// Polls the partitions of `topic` every 100 ms until `ok` holds for all of
/// them; returns when it first did and what they were then. Panics after
/// [`PHASE_TIMEOUT`].
async fn wait_partitions(
    cluster: &Cluster,
    topic: &str,
    ok: impl Fn(&PartitionState) -> bool,
) -> (Instant, Vec<PartitionState>) {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let parts = cluster.partitions(topic).await;
        if parts.iter().all(&ok) {
            return (Instant::now(), parts);
        }
        assert!(Instant::now() < deadline, "partitions of {topic} still {parts:?} after {PHASE_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the fault phase measured (wall-clock durations from this process).
struct Failover {
    /// Which broker was killed, and why that one.
    chosen: String,
    /// Database clock at the kill, the origin of the [`Timeline`].
    killed_at: DateTime<Utc>,
    /// Kill until every partition has a leader other than the victim and the
    /// victim is out of every ISR (the controller fenced it).
    failed_over: Duration,
    /// Kill until the restart began.
    down: Duration,
    /// Restart until the script saw the broker answer, unfenced (its probe,
    /// a JVM of its own, included).
    answering: Duration,
    /// Restart until the cluster's metadata listed the broker again
    /// (started, log recovered, registered and unfenced by the controller).
    unfenced: Duration,
    /// Restart until every partition had all replicas in sync again.
    rejoined: Duration,
}

impl Failover {
    /// The figures, one per line.
    fn report(&self, t: &Timeline) -> String {
        let s = |d: Duration| d.as_secs_f64();
        let (stall, stall_from) = t.longest_gap_after_kill();
        let (pre_rate, recovered) = t.back_to_rate();
        let (pre_open, drained) = t.drained(recovered);
        [
            format!("{}; then:", self.chosen),
            format!("  partitions led elsewhere, broker out of every ISR  {:5.1} s after the kill", s(self.failed_over)),
            format!("  longest pause in task completions                  {stall:5.1} s (from +{stall_from:.1} s)"),
            format!("  completion rate back to half its pre-kill {pre_rate:3.0}/s   {recovered:5.1} s after the kill"),
            format!("  backlog back to its pre-kill size ({pre_open:3} open)     {drained:5.1} s after the kill"),
            format!("  broker down                                        {:5.1} s", s(self.down)),
            format!("  restarted broker listed in the metadata again      {:5.1} s after its restart", s(self.unfenced)),
            format!(
                "  restarted broker back in every ISR                 {:5.1} s after its restart ({:.1} s after it was listed)",
                s(self.rejoined),
                s(self.rejoined.saturating_sub(self.unfenced))
            ),
            format!("  scripts/kafka-cluster.sh restart returned          {:5.1} s after its restart", s(self.answering)),
            format!("  completions per second from 3 s before the kill:   {}", t.per_second().join(" ")),
        ]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
    }
}

/// When each task was created and finished, in seconds relative to the kill
/// (database clock), sorted.
struct Timeline {
    created: Vec<f64>,
    finished: Vec<f64>,
}

/// Step of the scans over the timeline, seconds.
const STEP: f64 = 0.1;

impl Timeline {
    async fn read(stack: &Stack, ids: &[String], killed_at: DateTime<Utc>) -> Self {
        let rows: Vec<(f64, f64)> = sqlx::query_as(
            "SELECT extract(epoch FROM created_at - $2)::float8, extract(epoch FROM finished_at - $2)::float8
             FROM tasks WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(killed_at)
        .fetch_all(&stack.db)
        .await
        .expect("task times");
        let (mut created, mut finished): (Vec<f64>, Vec<f64>) = rows.into_iter().unzip();
        created.sort_by(f64::total_cmp);
        finished.sort_by(f64::total_cmp);
        Self { created, finished }
    }

    fn count(sorted: &[f64], upto: f64) -> usize {
        sorted.partition_point(|&x| x < upto)
    }

    fn completions(&self, from: f64, to: f64) -> usize {
        Self::count(&self.finished, to) - Self::count(&self.finished, from)
    }

    fn open_at(&self, t: f64) -> usize {
        Self::count(&self.created, t) - Self::count(&self.finished, t)
    }

    /// The longest time after the kill with no task finishing, and when it began.
    fn longest_gap_after_kill(&self) -> (f64, f64) {
        let after: Vec<f64> = std::iter::once(0.0).chain(self.finished.iter().copied().filter(|&f| f > 0.0)).collect();
        after.windows(2).map(|w| (w[1] - w[0], w[0])).fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    }

    /// The completion rate over the 4 s before the kill, and the time after
    /// the kill at which a 1 s window, after having dropped below half that
    /// rate, is back at or above it (0 when it never dropped).
    fn back_to_rate(&self) -> (f64, f64) {
        let pre = self.completions(-4.0, 0.0) as f64 / 4.0;
        let ok = |t: f64| self.completions(t, t + 1.0) as f64 >= pre / 2.0;
        let end = self.finished.last().copied().unwrap_or(0.0);
        let steps = (end / STEP).ceil() as usize;
        let Some(dip) = (0..steps).map(|i| i as f64 * STEP).find(|&t| !ok(t)) else { return (pre, 0.0) };
        let back = (0..steps).map(|i| i as f64 * STEP).find(|&t| t > dip && ok(t)).unwrap_or(end);
        (pre, back + 1.0)
    }

    /// The most tasks open (accepted, not finished) during the 3 s before the
    /// kill, and the first time from `after` on with no more open than that.
    fn drained(&self, after: f64) -> (usize, f64) {
        let pre = (0..=30).map(|i| self.open_at(-3.0 + i as f64 * STEP)).max().unwrap_or(0);
        let end = self.finished.last().copied().unwrap_or(0.0);
        let steps = ((end - after).max(0.0) / STEP).ceil() as usize;
        let t = (0..=steps).map(|i| after + i as f64 * STEP).find(|&t| self.open_at(t) <= pre).unwrap_or(end);
        (pre, t)
    }

    /// Completions in each second from 3 s before the kill to the last one.
    fn per_second(&self) -> Vec<String> {
        let end = self.finished.last().copied().unwrap_or(0.0).ceil() as i64;
        (-3..end).map(|s| self.completions(s as f64, s as f64 + 1.0).to_string()).collect()
    }
}
