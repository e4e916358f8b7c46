//! The chaos run: thousands of tasks of mixed length while a driver SIGKILLs
//! and restarts random workers every few seconds and restarts the broker once.
//! Prints `submitted, terminal, lost, concurrent duplicates, max recovery
//! seconds` and asserts nothing is lost and nothing ran twice at once.
//! `YADTQ_CHAOS_TASKS` (default 5000) sizes it; `scripts/soak.sh` runs a longer one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yadtq_tests::{Proc, Servers, Stack};

fn task(i: usize) -> Value {
    match i % 20 {
        0 => json!({"task": "sleep", "args": [1.5]}),
        1..=5 => json!({"task": "sleep", "args": [0.05 * (i % 7) as f64]}),
        6..=12 => json!({"task": "add", "args": [i, 1]}),
        _ => json!({"task": "echo", "args": [i]}),
    }
}

#[tokio::test]
async fn chaos_run_loses_nothing_and_never_runs_a_task_twice_at_once() {
    let n: usize = std::env::var("YADTQ_CHAOS_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let stack = Stack::new("chaos").await;
    let gw = stack.gateway(&[]).await;
    let mut workers: Vec<Proc> = Vec::new();
    for i in 0..3 {
        workers.push(stack.worker(&format!("worker-{i}"), &[]).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // Submit from 32 concurrent clients while the driver below does its damage.
    let submitter = async {
        let mut ids = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
            let batch = futures::future::join_all(chunk.iter().map(|&i| gw.submit_owned(task(i)))).await;
            for a in batch {
                assert!(a.status == 202, "{}", a.text);
                ids.push(a.body["id"].as_str().unwrap().to_string());
            }
        }
        ids
    };

    let driver = async {
        let mut kills: Vec<(uuid::Uuid, chrono_like::DbTime)> = Vec::new();
        let mut round = 0usize;
        let mut next_name = 3;
        while !done.load(Ordering::SeqCst) && round < 60 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            round += 1;
            if round == 4 {
                eprintln!("chaos: restarting the broker");
                tokio::task::spawn_blocking(|| {
                    Servers::stop_kafka();
                    Servers::start_kafka();
                })
                .await
                .unwrap();
                continue;
            }
            let victim = round % workers.len();
            let id = stack.worker_id(&workers[victim]).await;
            let at = chrono_like::now(&stack).await;
            workers[victim].kill9();
            kills.push((id, at));
            workers[victim] = stack.worker(&format!("worker-{next_name}"), &[]).await;
            next_name += 1;
        }
        kills
    };

    let submit_and_wait = async {
        let ids = submitter.await;
        stack.wait_terminal(&ids, Duration::from_secs(900)).await;
        done.store(true, Ordering::SeqCst);
        ids
    };
    let (ids, kills) = tokio::join!(submit_and_wait, driver);

    let terminal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE id = ANY($1) AND status IN ('success', 'failed', 'cancelled')",
    )
    .bind(&ids)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    // Two attempts of one task overlapping in time (the later started before the earlier ended).
    let concurrent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_attempts a JOIN task_attempts b
           ON a.task_id = b.task_id AND a.attempt < b.attempt
         WHERE b.started_at < coalesce(a.finished_at, 'infinity')",
    )
    .fetch_one(&stack.db)
    .await
    .unwrap();
    // Recovery: from a worker's SIGKILL until each task it held left
    // `processing` (the rescuer's requeue, guarantee 4), and until it ran again
    // (which also includes waiting behind the backlog on its partition).
    let (mut max_recovery, mut max_rerun) = (0.0f64, 0.0f64);
    for (worker, at) in &kills {
        let (requeued, rerun): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT max(extract(epoch FROM (a.finished_at - $2::timestamptz)))::float8,
                    max(extract(epoch FROM (b.started_at - $2::timestamptz)))::float8
             FROM task_attempts a
             LEFT JOIN task_attempts b ON b.task_id = a.task_id AND b.attempt = a.attempt + 1
             WHERE a.worker_id = $1 AND a.outcome = 'worker_lost'",
        )
        .bind(worker)
        .bind(&at.0)
        .fetch_one(&stack.db)
        .await
        .unwrap();
        max_recovery = max_recovery.max(requeued.unwrap_or(0.0));
        max_rerun = max_rerun.max(rerun.unwrap_or(0.0));
    }
    let lost = ids.len() as i64 - terminal;
    let failed = stack.count_status(&ids, "failed").await;
    eprintln!(
        "chaos: submitted={} terminal={terminal} lost={lost} concurrent_duplicates={concurrent} \
         max_recovery_s={max_recovery:.1} (max to rerun {max_rerun:.1} s; kills={}, broker restarts=1, \
         failed={failed}, {:.0} s)",
        ids.len(),
        kills.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0);
    assert_eq!(concurrent, 0);
    // Dead-after is 7 s in tests and the maintenance period 0.5 s; allow scheduling slack.
    assert!(max_recovery < 7.0 + 0.5 + 3.0, "requeued {max_recovery:.1} s after SIGKILL");
    assert!(kills.len() >= 3, "the driver killed workers during the run");
}

/// Database-clock timestamps, so recovery is measured on the clock the rows use.
mod chrono_like {
    /// A `timestamptz` read as text and cast back in queries.
    pub struct DbTime(pub String);

    pub async fn now(stack: &yadtq_tests::Stack) -> DbTime {
        DbTime(sqlx::query_scalar("SELECT now()::text").fetch_one(&stack.db).await.unwrap())
    }
}
