//! [`crate::store::overview`]: tasks finished per queue, minute and status
//! over the window, in the database clock's minutes.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::register;
use super::stats::task_on;
use crate::model::TaskStatus;
use crate::store::overview::{self, FinishedMinute};

async fn finish_at(pool: &PgPool, id: &str, at: DateTime<Utc>) {
    sqlx::query("UPDATE tasks SET finished_at = $2 WHERE id = $1").bind(id).bind(at).execute(pool).await.unwrap();
}

fn row(queue: &str, minute: DateTime<Utc>, status: TaskStatus, count: i64) -> FinishedMinute {
    FinishedMinute { queue: queue.into(), minute, status, count }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn finished_per_minute_counts_the_windows_finished_tasks(pool: PgPool) {
    let worker = register(&pool).await;
    let tasks_in = [
        ("now-a-1", "a", TaskStatus::Success),
        ("now-a-2", "a", TaskStatus::Success),
        ("now-a-3", "a", TaskStatus::Failed),
        ("now-b-1", "b", TaskStatus::Cancelled),
        ("edge-a", "a", TaskStatus::Success),
        ("early-b", "b", TaskStatus::Success),
        ("running", "a", TaskStatus::Processing),
        ("requeued", "a", TaskStatus::Queued),
    ];
    for (id, queue, status) in tasks_in {
        task_on(&pool, id, queue, &status, worker).await;
    }
    // The times are set from the database's current minute; should the
    // minute turn before the overview reads it, the window moved: set again.
    for _ in 0..3 {
        let minute: DateTime<Utc> =
            sqlx::query_scalar("SELECT date_trunc('minute', now())").fetch_one(&pool).await.unwrap();
        let m = |n: i64| minute - chrono::Duration::minutes(n);
        for id in ["now-a-1", "now-a-2", "now-a-3", "now-b-1", "running", "requeued"] {
            finish_at(&pool, id, minute).await;
        }
        // A window of 3 minutes: the current one and the two before it.
        finish_at(&pool, "edge-a", m(2)).await;
        finish_at(&pool, "early-b", m(3) + chrono::Duration::seconds(59)).await;
        sqlx::query("UPDATE tasks SET finished_at = NULL WHERE id = 'running'").execute(&pool).await.unwrap();

        let (now, rows) = overview::finished_per_minute(&pool, 3).await.unwrap();
        if now != minute {
            continue;
        }
        assert_eq!(
            rows,
            [
                row("a", m(2), TaskStatus::Success, 1),
                row("a", minute, TaskStatus::Failed, 1),
                row("a", minute, TaskStatus::Success, 2),
                row("b", minute, TaskStatus::Cancelled, 1),
            ]
        );
        let (_, wider) = overview::finished_per_minute(&pool, 4).await.unwrap();
        assert_eq!(wider.first(), Some(&row("b", m(3), TaskStatus::Success, 1)));
        assert_eq!(wider.len(), 5);
        return;
    }
    panic!("the database's minute kept turning");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn finished_per_minute_is_empty_with_nothing_finished(pool: PgPool) {
    let before: DateTime<Utc> =
        sqlx::query_scalar("SELECT date_trunc('minute', now())").fetch_one(&pool).await.unwrap();
    let (now, rows) = overview::finished_per_minute(&pool, 5).await.unwrap();
    assert!(rows.is_empty());
    assert!(now == before || now == before + chrono::Duration::minutes(1), "{now} vs {before}");
}
