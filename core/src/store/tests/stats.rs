//! [`crate::store::stats`]: the counts the leader samples match the tasks in
//! each queue and status.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{register, task_in};
use crate::model::TaskStatus;
use crate::store::stats::{self, StatusCount};
use crate::store::tasks::{self, Sent};
use crate::store::workers::{self, WorkerCounts};

/// Task `id` in `status` on `queue` (see [`task_in`]).
pub(super) async fn task_on(pool: &PgPool, id: &str, queue: &str, status: &TaskStatus, worker: Uuid) {
    task_in(pool, id, status, worker).await;
    sqlx::query("UPDATE tasks SET queue = $2 WHERE id = $1").bind(id).bind(queue).execute(pool).await.unwrap();
}

fn count(queue: &str, status: TaskStatus, count: i64) -> StatusCount {
    StatusCount { queue: queue.into(), status, count }
}

fn sorted(mut v: Vec<StatusCount>) -> Vec<StatusCount> {
    v.sort_by(|a, b| (&a.queue, a.status.as_str()).cmp(&(&b.queue, b.status.as_str())));
    v
}

/// Sets how long ago task `id` was created and became due.
async fn age(pool: &PgPool, id: &str, created_secs_ago: f64, due_secs_ago: f64) {
    sqlx::query(
        "UPDATE tasks SET created_at = now() - make_interval(secs => $2), run_at = now() - make_interval(secs => $3)
          WHERE id = $1",
    )
    .bind(id)
    .bind(created_secs_ago)
    .bind(due_secs_ago)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn active_counts_queued_scheduled_and_processing_per_queue(pool: PgPool) {
    assert_eq!(stats::active(&pool).await.unwrap(), stats::Active::default());
    let worker = register(&pool).await;
    let tasks_in = [
        ("a1", "a", TaskStatus::Queued),
        ("a2", "a", TaskStatus::Queued),
        ("a3", "a", TaskStatus::Processing),
        ("a4", "a", TaskStatus::Success),
        ("b1", "b", TaskStatus::Scheduled),
        ("b2", "b", TaskStatus::Scheduled),
        ("b3", "b", TaskStatus::Processing),
        ("b4", "b", TaskStatus::Failed),
        ("c1", "c", TaskStatus::Queued),
        ("c2", "c", TaskStatus::Cancelled),
    ];
    for (id, queue, status) in tasks_in {
        task_on(&pool, id, queue, &status, worker).await;
    }
    // a1 was created an hour ago but due ten minutes ago: it has waited ten
    // minutes; c1 has waited an hour.
    age(&pool, "a1", 3600.0, 600.0).await;
    age(&pool, "a2", 60.0, 60.0).await;
    age(&pool, "c1", 3600.0, 3600.0).await;
    // Only a2 was sent to Kafka.
    assert_eq!(tasks::mark_published(&pool, &[Sent { id: super::key("a2"), attempts: 1 }]).await.unwrap(), 1);

    let active = stats::active(&pool).await.unwrap();
    assert_eq!(
        sorted(active.counts),
        [
            count("a", TaskStatus::Processing, 1),
            count("a", TaskStatus::Queued, 2),
            count("b", TaskStatus::Processing, 1),
            count("b", TaskStatus::Scheduled, 2),
            count("c", TaskStatus::Queued, 1),
        ]
    );
    let mut oldest = active.oldest_queued;
    oldest.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(oldest.iter().map(|(q, _)| q.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert!((600.0..660.0).contains(&oldest[0].1), "{oldest:?}");
    assert!((3600.0..3660.0).contains(&oldest[1].1), "{oldest:?}");
    assert_eq!(active.unpublished, 2);

    assert_eq!(
        sorted(stats::finished(&pool).await.unwrap()),
        [count("a", TaskStatus::Success, 1), count("b", TaskStatus::Failed, 1), count("c", TaskStatus::Cancelled, 1)]
    );
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn finished_counts_each_terminal_status_per_queue(pool: PgPool) {
    assert!(stats::finished(&pool).await.unwrap().is_empty());
    let worker = register(&pool).await;
    for (n, status) in
        [TaskStatus::Success, TaskStatus::Success, TaskStatus::Failed, TaskStatus::Queued].into_iter().enumerate()
    {
        task_on(&pool, &format!("a{n}"), "a", &status, worker).await;
        task_on(&pool, &format!("b{n}"), "b", &status, worker).await;
    }
    task_on(&pool, "b-cancelled", "b", &TaskStatus::Cancelled, worker).await;
    assert_eq!(
        sorted(stats::finished(&pool).await.unwrap()),
        [
            count("a", TaskStatus::Failed, 1),
            count("a", TaskStatus::Success, 2),
            count("b", TaskStatus::Cancelled, 1),
            count("b", TaskStatus::Failed, 1),
            count("b", TaskStatus::Success, 2),
        ]
    );
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn workers_alive_counts_recent_heartbeats_of_running_workers(pool: PgPool) {
    let minute = Duration::from_secs(60);
    assert_eq!(stats::workers_alive(&pool, minute).await.unwrap(), 0);
    let (_live, silent, stopped) = (register(&pool).await, register(&pool).await, register(&pool).await);
    sqlx::query("UPDATE workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1")
        .bind(silent)
        .execute(&pool)
        .await
        .unwrap();
    workers::mark_stopped(&pool, stopped, WorkerCounts::default()).await.unwrap();
    assert_eq!(stats::workers_alive(&pool, minute).await.unwrap(), 1);
    assert_eq!(stats::workers_alive(&pool, Duration::from_secs(7200)).await.unwrap(), 2);
}
