//! Limits (`store::limits`) on a real PostgreSQL: concurrency is never
//! exceeded by concurrent releases (measured from the attempt rows,
//! not from the code's counts), a freed slot releases its bucket's oldest
//! held task, rate releases never exceed `count` in any window, round-robin
//! between a 2,000-task bucket and a 1-task bucket, lowering and raising a
//! limit, deleting one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{key, new_task, register};
use crate::model::{TaskError, TaskStatus};
use crate::names::{LimitName, TaskName, Tenant};
use crate::store::limits::{self, KeyPointer, LimitSpec, LimitedInsert, PutOutcome, Rate};
use crate::store::tasks::{self, AttemptOutcomeRecord, ClaimResult, Inserted, NewTask, Outcome, Recorded};

fn name(n: &str) -> LimitName {
    LimitName::parse(n).unwrap()
}

fn spec(concurrency: Option<i32>, rate: Option<Rate>, key: Option<&str>) -> LimitSpec {
    LimitSpec { concurrency, rate, key: key.map(|k| KeyPointer::parse(k).unwrap()), tasks: vec![] }
}

async fn put(pool: &PgPool, limit: &str, s: LimitSpec) -> PutOutcome {
    limits::put(pool, &Tenant::default_tenant(), &name(limit), &s).await.unwrap()
}

/// Task `id` for customer `c`, taking `limits`.
fn task(id: &str, c: &str) -> NewTask {
    NewTask { kwargs: format!(r#"{{"c": "{c}"}}"#), ..new_task(id) }
}

/// Submits `tasks`, each taking `limit`; returns the statuses in order.
async fn submit(pool: &PgPool, tasks: &[NewTask], limit: &str) -> Vec<String> {
    let names = vec![vec![name(limit)]; tasks.len()];
    match limits::insert(pool, tasks, &names).await.unwrap() {
        LimitedInsert::Done(rows, _) => rows
            .into_iter()
            .map(|r| match r {
                Inserted::Created(r) => r.task.status.as_str().to_string(),
                other => panic!("not created: {other:?}"),
            })
            .collect(),
        LimitedInsert::UnknownLimit(i, n) => panic!("unknown limit {n} for task {i}"),
        LimitedInsert::Conflict(k) => panic!("conflict on {k}"),
    }
}

async fn status(pool: &PgPool, id: &str) -> String {
    tasks::get(pool, &key(id)).await.unwrap().unwrap().task.status.as_str().to_string()
}

async fn statuses(pool: &PgPool, ids: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(status(pool, id).await);
    }
    out
}

/// Claims `id` for `worker` (it must be `queued` and limited) and records
/// `outcome` as a worker does (the claim says it is limited).
async fn run(pool: &PgPool, worker: Uuid, id: &str, outcome: Outcome) {
    let claimed = tasks::claim(pool, &[key(id)], worker).await.unwrap();
    let ClaimResult::Claimed(c) = &claimed[0] else { panic!("{id} not claimed") };
    let k = key(id);
    assert!(c.limited, "{id} is limited");
    let rec = [AttemptOutcomeRecord { task_id: &k, attempt: c.attempt, outcome: &outcome, limited: c.limited }];
    let written = tasks::record_outcomes(pool, worker, &rec).await.unwrap();
    assert_eq!(written, vec![Recorded::Written]);
}

fn ok() -> Outcome {
    Outcome::Success("null".into())
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_freed_slot_releases_the_oldest_held_task_of_its_bucket(pool: PgPool) {
    let worker = register(&pool).await;
    assert!(matches!(put(&pool, "api", spec(Some(1), None, Some("/kwargs/c"))).await, PutOutcome::Created));
    let mut batch = vec![task("a1", "A"), task("a2", "A"), task("a3", "A")];
    batch.push(task("b1", "B"));
    assert_eq!(submit(&pool, &batch, "api").await, ["queued", "held", "held", "queued"], "one slot per bucket");
    // A later submission into the full bucket is held behind the older ones.
    assert_eq!(submit(&pool, &[task("a4", "A")], "api").await, ["held"]);

    run(&pool, worker, "a1", ok()).await;
    assert_eq!(statuses(&pool, &["a1", "a2", "a3", "a4"]).await, ["success", "queued", "held", "held"]);
    // A retry into `scheduled` frees the slot too (its next attempt is gated again).
    let retry = Outcome::Retry { error: TaskError::new("boom", "retry"), delay: Duration::from_secs(60) };
    run(&pool, worker, "a2", retry).await;
    assert_eq!(statuses(&pool, &["a2", "a3", "a4"]).await, ["scheduled", "queued", "held"]);
    // Another bucket's outcome releases nothing of this one.
    run(&pool, worker, "b1", ok()).await;
    assert_eq!(statuses(&pool, &["a3", "a4"]).await, ["queued", "held"]);
    let failed = Outcome::Failed(TaskError::new("bad", "permanent"));
    run(&pool, worker, "a3", failed).await;
    assert_eq!(status(&pool, "a4").await, "queued");

    let b = limits::buckets(&pool, &Tenant::default_tenant(), &name("api"), None, 1).await.unwrap();
    assert_eq!(b.iter().map(|b| b.bucket.as_str()).collect::<Vec<_>>(), [r#""A""#], "a page of one");
    assert_eq!((b[0].running, b[0].held), (1, 0), "{b:?}");
    let next = limits::buckets(&pool, &Tenant::default_tenant(), &name("api"), Some(r#""A""#), 10).await.unwrap();
    assert_eq!(next.iter().map(|b| b.bucket.as_str()).collect::<Vec<_>>(), [r#""B""#]);
    // A held task cancels at once, and was holding no slot.
    assert_eq!(submit(&pool, &[task("a5", "A")], "api").await, ["held"]);
    assert!(matches!(tasks::cancel(&pool, &key("a5")).await.unwrap(), tasks::CancelResult::Cancelled(_)));
    run(&pool, worker, "a4", ok()).await;
    assert_eq!(status(&pool, "a5").await, "cancelled");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_retry_frees_its_slot_and_is_gated_again_when_promoted_or_retried(pool: PgPool) {
    let worker = register(&pool).await;
    put(&pool, "api", spec(Some(1), None, None)).await;
    assert_eq!(submit(&pool, &[task("r1", "x"), task("r2", "x")], "api").await, ["queued", "held"]);
    let retry = Outcome::Retry { error: TaskError::new("boom", "retry"), delay: Duration::ZERO };
    run(&pool, worker, "r1", retry).await;
    assert_eq!(statuses(&pool, &["r1", "r2"]).await, ["scheduled", "queued"], "the retry's slot went to r2");
    // Due again, r1 finds the bucket full: held, not queued, not published.
    let promoted = tasks::promote_due(&pool, 10).await.unwrap();
    assert!(promoted.is_empty(), "{promoted:?}");
    assert_eq!(status(&pool, "r1").await, "held");
    run(&pool, worker, "r2", Outcome::Failed(TaskError::new("bad", "permanent"))).await;
    assert_eq!(status(&pool, "r1").await, "queued");
    // With room, a promoted retry is released in the promotion and returned to publish.
    let retry = Outcome::Retry { error: TaskError::new("boom", "retry"), delay: Duration::ZERO };
    run(&pool, worker, "r1", retry).await;
    let promoted = tasks::promote_due(&pool, 10).await.unwrap();
    assert_eq!(promoted.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["r1"]);
    assert_eq!(status(&pool, "r1").await, "queued");

    // A manual retry is gated too: r2 failed, r1 holds the slot, so r2 is held.
    assert_eq!(submit(&pool, &[task("r3", "x")], "api").await, ["held"]);
    let tasks::RetryResult::Requeued(row) = tasks::retry(&pool, &key("r2")).await.unwrap() else { panic!("retried") };
    assert_eq!(row.task.status.as_str(), "held");
    // It queues behind nobody newer: its place is its submission's (older than r3).
    run(&pool, worker, "r1", ok()).await;
    assert_eq!(statuses(&pool, &["r2", "r3"]).await, ["queued", "held"]);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn concurrency_is_never_exceeded_with_concurrent_releases(pool: PgPool) {
    const LIMIT: i32 = 3;
    const WORKERS: usize = 8;
    const PER_BUCKET: usize = 60;
    put(&pool, "api", spec(Some(LIMIT), None, Some("/kwargs/c"))).await;
    // Two submitters insert while the workers run, so admission at submit
    // races the releases of outcomes.
    let submitters: Vec<_> = ["A", "B"]
        .into_iter()
        .map(|c| {
            let pool = pool.clone();
            tokio::spawn(async move {
                // Bursts of 6, so the bucket is over its limit and held
                // tasks wait for the slots the outcomes free.
                for burst in 0..PER_BUCKET / 6 {
                    let batch: Vec<NewTask> = (0..6).map(|i| task(&format!("{c}{:03}", burst * 6 + i), c)).collect();
                    submit(&pool, &batch, "api").await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    // Each worker takes a queued task (as a Kafka record would name it),
    // claims it, runs it a few milliseconds and records its outcome. The
    // overlap is measured from the attempt rows (the claim's
    // clock_timestamp() to the outcome's), not from the code's counts.
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let worker = register(&pool).await;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "the tasks did not finish");
                    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status <> 'success'")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&pool).await.unwrap();
                    if left == 0 && total == 2 * PER_BUCKET as i64 {
                        return;
                    }
                    let next: Option<String> =
                        sqlx::query_scalar("SELECT id FROM tasks WHERE status = 'queued' ORDER BY random() LIMIT 1")
                            .fetch_optional(&pool)
                            .await
                            .unwrap();
                    let Some(id) = next else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    let claimed = tasks::claim(&pool, &[key(&id)], worker).await.unwrap();
                    let ClaimResult::Claimed(c) = &claimed[0] else { continue };
                    tokio::time::sleep(Duration::from_millis(8)).await;
                    let k = key(&id);
                    let outcome = ok();
                    let rec = [AttemptOutcomeRecord {
                        task_id: &k,
                        attempt: c.attempt,
                        outcome: &outcome,
                        limited: c.limited,
                    }];
                    tasks::record_outcomes(&pool, worker, &rec).await.unwrap();
                }
            })
        })
        .collect();
    for s in submitters {
        s.await.unwrap();
    }
    for w in workers {
        w.await.unwrap();
    }
    let intervals: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT t.kwargs->>'c', a.started_at, a.finished_at FROM task_attempts a JOIN tasks t ON t.id = a.task_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(intervals.len(), 2 * PER_BUCKET);
    for bucket in ["A", "B"] {
        // Ends sort before starts at the same instant (a slot handed over).
        let mut events: Vec<(DateTime<Utc>, i32)> =
            intervals.iter().filter(|(b, _, _)| b == bucket).flat_map(|(_, s, e)| [(*s, 1), (*e, -1)]).collect();
        events.sort();
        let (mut now, mut max) = (0, 0);
        for (_, d) in events {
            now += d;
            max = max.max(now);
        }
        assert!(max <= LIMIT, "bucket {bucket}: {max} attempts at once, limit {LIMIT}");
        assert!(max >= 2, "bucket {bucket}: the test never ran tasks side by side ({max})");
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn concurrent_submissions_into_one_bucket_admit_one_without_deadlock(pool: PgPool) {
    // Sixteen gateways submit into one bucket with one slot at once: each
    // counts under the bucket's lock, so exactly one is queued, and the
    // memberships' foreign-key locks (KEY SHARE on the bucket) never
    // deadlock against the bucket's lock (NO KEY UPDATE).
    put(&pool, "one", spec(Some(1), None, None)).await;
    let submits = (0..16).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move { submit(&pool, &[task(&format!("s{i:02}"), "x")], "one").await })
    });
    let mut got: Vec<String> = Vec::new();
    for s in submits.collect::<Vec<_>>() {
        got.extend(s.await.unwrap());
    }
    assert_eq!(got.iter().filter(|s| *s == "queued").count(), 1, "{got:?}");
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status IN ('queued', 'processing')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(running, 1);
}

/// Concurrent submissions on the fast path (a known `tasks` list) read the
/// bucket's room without its lock and take the lock only to add their
/// slots, under a guard (migration 0024): when several saw the same last
/// slots, the guard admits as many as there is room for and the others are
/// inserted `held` by the function's second try. Exact, and no submission
/// fails.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn concurrent_fast_path_submissions_never_exceed_the_concurrency(pool: PgPool) {
    by_name(&pool, "eight", 8).await;
    // The first submission creates the bucket (slow path); the process
    // then knows its id.
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("warm")]).await.unwrap()), [("queued".into(), true)]);
    // A process's planned inserts take turns (`plan::turn`); these race as
    // 32 processes' would, each on its own connection.
    let db = limits::plan::database_of(&pool);
    let mut conn = pool.acquire().await.unwrap();
    let plans = limits::plan::plan(&mut conn, &db, &[new_task("any")], &[]).await.unwrap().unwrap();
    assert!(plans[0].is_some(), "the process knows the bucket");
    let submits = (0..32).map(|i| {
        let (pool, plans) = (pool.clone(), plans.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let rows = tasks::insert_rows_planned(&mut conn, &[new_task(&format!("f{i:02}"))], &[], &plans).await;
            rows.unwrap().into_values().map(|r| r.task.status.as_str().to_string()).collect::<Vec<_>>()
        })
    });
    let mut got = Vec::new();
    for s in submits.collect::<Vec<_>>() {
        got.extend(s.await.unwrap());
    }
    assert_eq!(got.iter().filter(|s| *s == "queued").count(), 7, "{got:?}");
    assert_eq!(got.iter().filter(|s| *s == "held").count(), 25, "{got:?}");
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status IN ('queued', 'processing')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(running, 8);
    let (taken, _, bound) = bucket_state(&pool, "eight").await;
    assert!(bound && taken <= 8, "taken {taken} bounds the running tasks and never passes the concurrency");
}

/// A `DELETE` of a limit while fast-path submissions use its bucket: every
/// submission and the delete succeed (a fast path that held the bucket
/// `FOR KEY SHARE` before asking for its lock deadlocked with the delete,
/// which PostgreSQL failed), and no task is left held by the deleted limit.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_delete_racing_fast_path_submissions_fails_none(pool: PgPool) {
    by_name(&pool, "gone", 1000).await;
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("warm")]).await.unwrap()), [("queued".into(), true)]);
    let submits: Vec<_> = (0..8)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    tasks::insert_each(&pool, &[new_task(&format!("d{i}-{j}"))]).await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(limits::delete(&pool, &Tenant::default_tenant(), &name("gone")).await.unwrap().is_some());
    for s in submits {
        s.await.unwrap();
    }
    limits::repair_unattached(&pool, std::time::Duration::ZERO, 1000).await.unwrap();
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'held'").fetch_one(&pool).await.unwrap();
    assert_eq!(held, 0, "nothing is held by a limit that is gone");
}

/// A fast-path submission held (its bucket full) while its limit is
/// deleted between its lock-free read of the bucket and its commit: the
/// memberships have no foreign key (migration 0025), so the insert locks
/// every bucket its memberships name and, finding one gone, inserts the
/// task again without memberships; none is left naming a deleted bucket
/// (where a held task would wait for ever) and the task runs.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_delete_committed_under_a_fast_path_insert_leaves_no_membership_behind(pool: PgPool) {
    by_name(&pool, "gone", 1).await;
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("warm")]).await.unwrap()), [("queued".into(), true)]);
    // An uncommitted row with the same id: the insert waits for it after
    // its read of the bucket, before its memberships.
    let mut blocker = pool.begin().await.unwrap();
    tasks::insert_rows(&mut blocker, &[new_task("x")]).await.unwrap();
    let submit = {
        let pool = pool.clone();
        tokio::spawn(async move { created(&tasks::insert_each(&pool, &[new_task("x")]).await.unwrap()) })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND wait_event_type = 'Lock' AND query LIKE '%yadtq_tasks_insert_planned%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the insert never waited for the uncommitted row");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(limits::delete(&pool, &Tenant::default_tenant(), &name("gone")).await.unwrap().is_some());
    blocker.rollback().await.unwrap();
    submit.await.unwrap();
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_limits m WHERE NOT EXISTS (SELECT 1 FROM limit_buckets b WHERE b.id = m.bucket_id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "no membership names a deleted bucket");
    limits::repair_unattached(&pool, Duration::ZERO, 1000).await.unwrap();
    assert_eq!(status(&pool, "x").await, "queued");
}

/// Memberships go with their task (retention), with their bucket (its
/// limit deleted): triggers, not foreign keys (migration 0025); and with
/// a success, while a failed task keeps them for a retry's gate.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn memberships_are_deleted_with_their_task_their_bucket_or_a_success(pool: PgPool) {
    let worker = register(&pool).await;
    by_name(&pool, "a", 10).await;
    by_name(&pool, "b", 10).await;
    let ids: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let rows: Vec<NewTask> = ids.iter().map(|id| new_task(id)).collect();
    tasks::insert_each(&pool, &rows).await.unwrap();
    let members = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(members("SELECT count(*) FROM task_limits").await, 12, "two limits each");
    run(&pool, worker, "m4", ok()).await;
    assert_eq!(members("SELECT count(*) FROM task_limits WHERE task_id = 'm4'").await, 0, "a success drops them");
    run(&pool, worker, "m5", Outcome::Failed(TaskError::new("bad", "permanent"))).await;
    assert_eq!(members("SELECT count(*) FROM task_limits WHERE task_id = 'm5'").await, 2, "a failure keeps them");
    sqlx::query("DELETE FROM tasks WHERE id IN ('m0', 'm5')").execute(&pool).await.unwrap();
    assert_eq!(members("SELECT count(*) FROM task_limits WHERE task_id IN ('m0', 'm5')").await, 0);
    assert!(limits::delete(&pool, &Tenant::default_tenant(), &name("a")).await.unwrap().is_some());
    assert_eq!(members("SELECT count(*) FROM task_limits").await, 3, "m1 to m3's of limit b");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn rate_releases_never_exceed_count_in_any_window(pool: PgPool) {
    const COUNT: usize = 3;
    const PER: f64 = 0.3;
    const TASKS: usize = 12;
    // Every held → queued move (those at submit too), counted independently of the code.
    sqlx::raw_sql(
        "CREATE TABLE release_log (task_id text, at timestamptz);
         CREATE FUNCTION log_release() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO release_log VALUES (NEW.id, clock_timestamp()); RETURN NEW; END $$;
         CREATE TRIGGER log_release AFTER UPDATE OF status ON tasks FOR EACH ROW
             WHEN (OLD.status = 'held' AND NEW.status = 'queued') EXECUTE FUNCTION log_release();",
    )
    .execute(&pool)
    .await
    .unwrap();
    put(&pool, "mail", spec(None, Some(Rate { count: COUNT as i32, per_seconds: PER }), None)).await;
    let batch: Vec<NewTask> = (0..TASKS).map(|i| task(&format!("m{i:02}"), "x")).collect();
    let got = submit(&pool, &batch, "mail").await;
    assert_eq!(got.iter().filter(|s| *s == "queued").count(), COUNT, "{got:?}");
    // Three leaders' passes at once (two leaders for a moment, and more).
    let passes: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                loop {
                    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'held'")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    if held == 0 {
                        return;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "the rate never released them all");
                    limits::release_pass(&pool, 100).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for p in passes {
        p.await.unwrap();
    }
    let recorded: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT released_at FROM limit_releases ORDER BY released_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM release_log").fetch_one(&pool).await.unwrap();
    assert_eq!(recorded.len(), TASKS, "one release row per release");
    assert_eq!(moved as usize, TASKS, "every task left `held` through a recorded release");
    for w in recorded.windows(COUNT + 1) {
        let gap = (w[COUNT] - w[0]).num_microseconds().unwrap() as f64 / 1e6;
        assert!(gap >= PER, "{} releases within {gap} s (window {PER} s): {recorded:?}", COUNT + 1);
    }
    // And the rate is used, not starved: 12 releases at 3 per 0.3 s take about 0.9 s.
    let span = (recorded[TASKS - 1] - recorded[0]).num_milliseconds();
    assert!(span < 3_000, "releases spread over {span} ms");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn round_robin_releases_a_lone_task_within_one_turn_of_a_crowded_bucket(pool: PgPool) {
    put(&pool, "api", spec(Some(0), None, Some("/kwargs/c"))).await;
    let crowd: Vec<NewTask> = (0..2_000).map(|i| task(&format!("a{i:04}"), "A")).collect();
    assert!(submit(&pool, &crowd, "api").await.iter().all(|s| s == "held"));
    assert_eq!(submit(&pool, &[task("lone", "B")], "api").await, ["held"], "paused");

    // Un-paused, one bucket per pass: the crowded bucket (older, lower id)
    // is served first, then the lone task's bucket, not the crowd's next.
    sqlx::query("UPDATE limits SET concurrency = 5").execute(&pool).await.unwrap();
    let first = limits::release_pass(&pool, 1).await.unwrap();
    assert_eq!(first.len(), 5, "the first bucket's room");
    assert!(first.iter().all(|u| u.id.as_str().starts_with('a')));
    let second = limits::release_pass(&pool, 1).await.unwrap();
    assert_eq!(second.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["lone"]);

    // A raise through PUT releases both buckets' room in one step.
    put(&pool, "api", spec(Some(0), None, Some("/kwargs/c"))).await;
    assert_eq!(submit(&pool, &[task("lone2", "B")], "api").await, ["held"]);
    let PutOutcome::Updated(released) = put(&pool, "api", spec(Some(7), None, Some("/kwargs/c"))).await else {
        panic!("updated")
    };
    assert_eq!(status(&pool, "lone2").await, "queued", "released in the raise itself");
    assert_eq!(released.len(), 3, "2 more of A (5 running, room 7), 1 of B (1 running, room 7)");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn lowering_takes_effect_as_tasks_finish_and_raising_releases_at_once(pool: PgPool) {
    let worker = register(&pool).await;
    put(&pool, "db", spec(Some(2), None, None)).await;
    let batch: Vec<NewTask> = (1..=5).map(|i| task(&format!("t{i}"), "x")).collect();
    assert_eq!(submit(&pool, &batch, "db").await, ["queued", "queued", "held", "held", "held"]);
    // Lowered while two run: nothing stops; the first to finish frees no room.
    let PutOutcome::Updated(released) = put(&pool, "db", spec(Some(1), None, None)).await else { panic!() };
    assert!(released.is_empty());
    run(&pool, worker, "t1", ok()).await;
    assert_eq!(statuses(&pool, &["t2", "t3"]).await, ["queued", "held"], "2 ran against 1: no release");
    run(&pool, worker, "t2", ok()).await;
    assert_eq!(statuses(&pool, &["t3", "t4", "t5"]).await, ["queued", "held", "held"]);
    // Raised: the room is used in the same transaction, oldest first.
    let PutOutcome::Updated(released) = put(&pool, "db", spec(Some(2), None, None)).await else { panic!() };
    assert_eq!(released.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["t4"]);
    // Its key cannot change.
    assert!(matches!(put(&pool, "db", spec(Some(2), None, Some("/kwargs/c"))).await, PutOutcome::KeyChanged));
    let read = limits::get(&pool, &Tenant::default_tenant(), &name("db")).await.unwrap().unwrap();
    assert_eq!((read.name.as_str(), read.spec.clone()), ("db", spec(Some(2), None, None)));
    put(&pool, "api", spec(None, Some(Rate { count: 5, per_seconds: 1.5 }), Some("/args/0"))).await;
    let all = limits::list(&pool, &Tenant::default_tenant(), None, None, 10).await.unwrap();
    assert_eq!(all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["api", "db"]);
    assert_eq!(all[0].spec, spec(None, Some(Rate { count: 5, per_seconds: 1.5 }), Some("/args/0")));
    let page = limits::list(&pool, &Tenant::default_tenant(), None, Some(&name("api")), 10).await.unwrap();
    assert_eq!(page.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["db"]);
    let other = Tenant::parse("acme").unwrap();
    assert!(limits::list(&pool, &other, None, None, 10).await.unwrap().is_empty(), "per tenant");
    // Deleted: what it held runs.
    let released = limits::delete(&pool, &Tenant::default_tenant(), &name("db")).await.unwrap().unwrap();
    assert_eq!(released.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["t5"]);
    assert!(limits::delete(&pool, &Tenant::default_tenant(), &name("db")).await.unwrap().is_none());
    // A plain task of the same name is untouched by limits; a `tasks` list catches it.
    let echo = TaskName::parse("echo", 64).unwrap();
    let by_name = LimitSpec { tasks: vec![echo], ..spec(Some(0), None, None) };
    put(&pool, "paused", by_name).await;
    assert_eq!(submit(&pool, &[task("n1", "x")], "paused").await, ["held"]);
    match limits::insert(&pool, &[task("n2", "x")], &[vec![]]).await.unwrap() {
        LimitedInsert::Done(rows, _) => {
            let Inserted::Created(r) = &rows[0] else { panic!() };
            assert_eq!(r.task.status, TaskStatus::Held, "held through the tasks list");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        limits::insert(&pool, &[task("n3", "x")], &[vec![name("nope")]]).await.unwrap(),
        LimitedInsert::UnknownLimit(0, n) if n.as_str() == "nope"
    ));
    assert!(tasks::get(&pool, &key("n3")).await.unwrap().is_none(), "nothing inserted");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_task_runs_only_when_every_limit_has_room(pool: PgPool) {
    let worker = register(&pool).await;
    put(&pool, "global", spec(Some(1), None, None)).await;
    put(&pool, "per", spec(Some(5), None, Some("/kwargs/c"))).await;
    let both = |id: &str, c: &str| (task(id, c), vec![name("global"), name("per")]);
    let (tasks_, names): (Vec<NewTask>, Vec<Vec<LimitName>>) = [both("x1", "A"), both("x2", "A")].into_iter().unzip();
    let LimitedInsert::Done(..) = limits::insert(&pool, &tasks_, &names).await.unwrap() else { panic!() };
    // Only `per` alone would let x2 run; `global` holds it.
    assert_eq!(statuses(&pool, &["x1", "x2"]).await, ["queued", "held"]);
    // A task of `per` only, in the same bucket, is not blocked behind x2.
    assert_eq!(submit(&pool, &[task("y1", "A")], "per").await, ["queued"]);
    // What GET /tasks/{id} says holds x2: `global`, full; `per` has room.
    let view: Vec<(String, String, bool)> = limits::of_task(&pool, &key("x2"))
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.limit.to_string(), l.bucket, l.full))
        .collect();
    assert_eq!(view, [("global".into(), "(all)".into(), true), ("per".into(), r#""A""#.into(), false)]);
    assert!(limits::of_task(&pool, &key("y1")).await.unwrap().iter().all(|l| l.limit.as_str() == "per"));
    run(&pool, worker, "x1", ok()).await;
    assert_eq!(status(&pool, "x2").await, "queued");
    // Deleting `global` leaves x3 to `per` alone: released at once.
    let (tasks_, names): (Vec<NewTask>, Vec<Vec<LimitName>>) = [both("x3", "A")].into_iter().unzip();
    let LimitedInsert::Done(..) = limits::insert(&pool, &tasks_, &names).await.unwrap() else { panic!() };
    assert_eq!(status(&pool, "x3").await, "held", "x2 runs under global");
    let released = limits::delete(&pool, &Tenant::default_tenant(), &name("global")).await.unwrap().unwrap();
    assert_eq!(released.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["x3"]);
    // A retry waiting in `scheduled` whose limits are all deleted runs plain when due.
    let retry = Outcome::Retry { error: TaskError::new("boom", "retry"), delay: Duration::ZERO };
    run(&pool, worker, "x3", retry).await;
    limits::delete(&pool, &Tenant::default_tenant(), &name("per")).await.unwrap().unwrap();
    let promoted = tasks::promote_due(&pool, 10).await.unwrap();
    assert_eq!(promoted.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["x3"]);
}

/// Which limit a [`cost_of_an_unreached_limit`] run's tasks take.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    /// No limit: the plain path.
    Plain,
    /// One bucket every task takes (`global`, concurrency far above use):
    /// the worst case, one lock all outcomes queue on.
    Global,
    /// 1,000 buckets (`per`, keyed by `/kwargs/c`), never full.
    Keyed,
}

/// Runs `rounds` batches in each of `loops` concurrent loops, the shape of
/// bench/src/scenarios/pg_path.rs (a gateway's grouped insert, a worker's
/// claim and outcome batches, each with its commit); returns tasks/s.
async fn drain(
    pool: &PgPool,
    variant: Variant,
    run: usize,
    loops: usize,
    rounds: usize,
    batch: usize,
) -> (f64, [f64; 3]) {
    let t0 = std::time::Instant::now();
    let handles: Vec<_> = (0..loops)
        .map(|l| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let worker = register(&pool).await;
                let mut phases = [Duration::ZERO; 3];
                for r in 0..rounds {
                    let t = std::time::Instant::now();
                    let new: Vec<NewTask> = (0..batch)
                        .map(|i| {
                            let n = (l * rounds + r) * batch + i;
                            NewTask {
                                kwargs: format!(r#"{{"c": {}}}"#, n % 1000),
                                ..new_task(&format!("{variant:?}-{run}-{n}"))
                            }
                        })
                        .collect();
                    let keys: Vec<_> = new.iter().map(NewTask::key).collect();
                    match variant {
                        Variant::Plain => drop(tasks::insert_each(&pool, &new).await.unwrap()),
                        Variant::Global | Variant::Keyed => {
                            let limit = name(if variant == Variant::Global { "global" } else { "per" });
                            let LimitedInsert::Done(..) =
                                limits::insert(&pool, &new, &vec![vec![limit]; batch]).await.unwrap()
                            else {
                                panic!("unknown limit")
                            };
                        }
                    }
                    phases[0] += t.elapsed();
                    let t = std::time::Instant::now();
                    let claimed = tasks::claim(&pool, &keys, worker).await.unwrap();
                    phases[1] += t.elapsed();
                    let t = std::time::Instant::now();
                    let success = ok();
                    let records: Vec<AttemptOutcomeRecord<'_>> = keys
                        .iter()
                        .zip(&claimed)
                        .map(|(k, c)| {
                            let c = c.as_claimed().expect("an unreached limit holds nothing");
                            AttemptOutcomeRecord {
                                task_id: k,
                                attempt: c.attempt,
                                outcome: &success,
                                limited: c.limited,
                            }
                        })
                        .collect();
                    let done = tasks::record_outcomes(&pool, worker, &records).await.unwrap();
                    assert!(done.iter().all(|d| *d == Recorded::Written));
                    phases[2] += t.elapsed();
                }
                phases
            })
        })
        .collect();
    let mut ms = [0.0; 3];
    for h in handles {
        for (m, p) in ms.iter_mut().zip(h.await.unwrap()) {
            *m += p.as_secs_f64() * 1000.0 / (loops * rounds) as f64;
        }
    }
    ((loops * rounds * batch) as f64 / t0.elapsed().as_secs_f64(), ms)
}

/// The store-level micro measurement of what a limit that is never reached
/// costs (docs/limits.md, "Cost"): the drain loop above, 8 loops × 16-task
/// batches, plain tasks against tasks taking a one-bucket limit and a
/// 1,000-bucket one, interleaved in the same run and database. A figure, not
/// a check (run it alone, on a quiet machine):
/// `cargo test -p yadtq-core --lib -- --ignored --nocapture cost_of_an_unreached_limit`
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
#[ignore = "a measurement, run on demand"]
async fn cost_of_an_unreached_limit(pool: PgPool) {
    const LOOPS: usize = 8;
    const BATCH: usize = 16;
    const ROUNDS: usize = 25;
    put(&pool, "global", spec(Some(1_000_000), None, None)).await;
    put(&pool, "per", spec(Some(1_000_000), None, Some("/kwargs/c"))).await;
    // Warm-up: connections, plans, the 1,000 buckets created.
    for v in [Variant::Plain, Variant::Global, Variant::Keyed] {
        drain(&pool, v, 0, LOOPS, 8, BATCH).await;
    }
    let mut rates: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut phases: std::collections::BTreeMap<String, [f64; 3]> = Default::default();
    for run in 1..=3 {
        for v in [Variant::Plain, Variant::Global, Variant::Keyed] {
            let (rate, ms) = drain(&pool, v, run, LOOPS, ROUNDS, BATCH).await;
            rates.entry(format!("{v:?}")).or_default().push(rate);
            let p = phases.entry(format!("{v:?}")).or_default();
            p.iter_mut().zip(ms).for_each(|(a, b)| *a += b / 3.0);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let plain = median(&rates["Plain"]);
    for (v, r) in &rates {
        let m = median(r);
        let [insert, claim, outcome] = phases[v];
        println!(
            "{v:>7}: median {m:7.0} tasks/s ({:+.1}% against plain), runs {r:.0?}; ms per {BATCH}-task batch: \
             insert {insert:.2}, claim {claim:.2}, outcome {outcome:.2}",
            (m / plain - 1.0) * 100.0
        );
    }
}

/// The statuses of inserted rows as the insert returned them.
fn created(rows: &[Inserted]) -> Vec<(String, bool)> {
    rows.iter()
        .map(|r| match r {
            Inserted::Created(r) => (r.task.status.as_str().to_string(), r.limited),
            other => panic!("not created: {other:?}"),
        })
        .collect()
}

/// A limit whose `tasks` list names `echo`, concurrency `n`, one bucket.
async fn by_name(pool: &PgPool, limit: &str, n: i32) {
    let echo = TaskName::parse("echo", 64).unwrap();
    put(pool, limit, LimitSpec { tasks: vec![echo], ..spec(Some(n), None, None) }).await;
}

/// A plain submission (no `limits`) of a task a `tasks` list names is
/// limited on every insert path, and each row comes back as committed.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_tasks_list_limits_plain_submissions_on_every_insert_path(pool: PgPool) {
    let worker = register(&pool).await;
    // Before any limit: plain.
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("p0")]).await.unwrap()), [("queued".into(), false)]);
    by_name(&pool, "echo-limit", 1).await;
    let rows = tasks::insert_each(&pool, &[new_task("p1"), new_task("p2")]).await.unwrap();
    assert_eq!(created(&rows), [("queued".into(), true), ("held".into(), true)], "as committed");
    assert_eq!(statuses(&pool, &["p1", "p2"]).await, ["queued", "held"]);
    // The batch path, a unique submission, and another task name (untouched).
    let tasks::BatchInsert::Done(rows) = tasks::insert_batch(&pool, &[new_task("p3")]).await.unwrap() else {
        panic!("conflict")
    };
    assert_eq!(created(&rows), [("held".into(), true)]);
    let unique = crate::store::unique::Unique { key: "u".into(), for_seconds: None, also_while: vec![] };
    let rows = tasks::insert_each(&pool, &[NewTask { unique: Some(unique), ..new_task("p4") }]).await.unwrap();
    assert_eq!(created(&rows), [("held".into(), true)]);
    let other = NewTask { name: TaskName::parse("other", 64).unwrap(), ..new_task("o1") };
    assert_eq!(created(&tasks::insert_each(&pool, &[other]).await.unwrap()), [("queued".into(), false)]);
    // The one slot is handed on in order.
    run(&pool, worker, "p1", ok()).await;
    assert_eq!(statuses(&pool, &["p2", "p3", "p4"]).await, ["queued", "held", "held"]);
    let b = limits::buckets(&pool, &Tenant::default_tenant(), &name("echo-limit"), None, 10).await.unwrap();
    assert_eq!((b[0].running, b[0].held), (1, 2), "{b:?}");
    // A countdown task is limited too, and gated when promoted.
    let later = NewTask { run_at: Some(Utc::now() - chrono::Duration::seconds(1)), ..new_task("p5") };
    assert_eq!(created(&tasks::insert_each(&pool, &[later]).await.unwrap()), [("scheduled".into(), true)]);
    assert!(tasks::promote_due(&pool, 10).await.unwrap().is_empty(), "held behind p2");
    assert_eq!(status(&pool, "p5").await, "held");
}

/// The bucket's `taken` and `last_turn` (a release by the slow path takes
/// a round-robin turn; the insert's fast path does not), and whether
/// `taken` bounds its running tasks from above (migration 0022's rule).
async fn bucket_state(pool: &PgPool, limit: &str) -> (i32, i64, bool) {
    sqlx::query_as(
        "SELECT b.taken, b.last_turn,
                b.taken >= (SELECT count(*) FROM task_limits m JOIN tasks t ON t.id = m.task_id
                            WHERE m.bucket_id = b.id AND t.status IN ('queued', 'processing'))
         FROM limit_buckets b WHERE b.limit_name = $1",
    )
    .bind(limit)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A task a known `tasks` list names is admitted by its insert statement
/// (`queued`, holding its slot, no turn taken) while its bucket's `taken`
/// has room, and goes the slow path, with the same result, when it has not
/// (a recount then) or its plan is stale (the limit deleted and declared
/// again: a new bucket).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_known_tasks_list_admits_in_the_insert_and_a_stale_plan_takes_the_slow_path(pool: PgPool) {
    let worker = register(&pool).await;
    by_name(&pool, "fast", 2).await;
    let each = |ids: &'static [&'static str]| {
        let pool = pool.clone();
        async move {
            created(&tasks::insert_each(&pool, &ids.iter().map(|i| new_task(i)).collect::<Vec<_>>()).await.unwrap())
        }
    };
    assert_eq!(each(&["f1"]).await, [("queued".into(), true)]);
    assert_eq!(bucket_state(&pool, "fast").await, (1, 0, true), "admitted by the insert, no turn taken");
    // Room for one of two: both go the slow path, which releases the older.
    assert_eq!(each(&["f2", "f3"]).await, [("queued".into(), true), ("held".into(), true)]);
    let (taken, turn, bound) = bucket_state(&pool, "fast").await;
    assert_eq!((taken, bound), (2, true));
    assert!(turn > 0, "released by the slow path");
    // A finished task hands its slot to the held one; finished tasks with
    // nothing held behind them leave `taken` high until a recount.
    run(&pool, worker, "f1", ok()).await;
    assert_eq!(statuses(&pool, &["f2", "f3"]).await, ["queued", "queued"]);
    run(&pool, worker, "f2", ok()).await;
    run(&pool, worker, "f3", ok()).await;
    let (taken, turn, _) = bucket_state(&pool, "fast").await;
    assert_eq!(taken, 2, "no recount yet");
    // `taken` says full: the slow path recounts and admits.
    assert_eq!(each(&["f4"]).await, [("queued".into(), true)]);
    let (taken, turn4, bound) = bucket_state(&pool, "fast").await;
    assert_eq!((taken, bound), (1, true));
    assert!(turn4 > turn, "released by the slow path");
    assert_eq!(each(&["f5"]).await, [("queued".into(), true)]);
    assert_eq!(bucket_state(&pool, "fast").await, (2, turn4, true), "the fast path again");
    // Deleted and declared again: the remembered bucket id is gone.
    run(&pool, worker, "f4", ok()).await;
    run(&pool, worker, "f5", ok()).await;
    limits::delete(&pool, &Tenant::default_tenant(), &name("fast")).await.unwrap();
    by_name(&pool, "fast", 2).await;
    assert_eq!(each(&["f6"]).await, [("queued".into(), true)], "the slow path, exact");
    let (taken, turn, bound) = bucket_state(&pool, "fast").await;
    assert_eq!((taken, bound), (1, true));
    assert!(turn > 0, "released by the slow path");
    // Read again after the refusal: the fast path once more.
    assert_eq!(each(&["f7"]).await, [("queued".into(), true)]);
    assert_eq!(bucket_state(&pool, "fast").await, (2, turn, true));
    // Full: held, and released when a slot is freed.
    assert_eq!(each(&["f8"]).await, [("held".into(), true)]);
    run(&pool, worker, "f6", ok()).await;
    assert_eq!(status(&pool, "f8").await, "queued");
    assert!(bucket_state(&pool, "fast").await.2, "taken stays a bound");
}

/// Outcomes leave their `slot` hints set (migration 0023); a bucket whose
/// `taken` grew by `yadtq_limits_stale_slots()` since its last count takes
/// the slow path once, which counts it and clears the finished tasks'
/// hints, so a count never scans more than the running tasks and that
/// bound. The bound is lowered to 4 in this test's database.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn hints_of_finished_tasks_are_cleared_by_a_count_forced_every_stale_bound(pool: PgPool) {
    sqlx::query("CREATE OR REPLACE FUNCTION yadtq_limits_stale_slots() RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT 4 $$")
        .execute(&pool)
        .await
        .unwrap();
    let worker = register(&pool).await;
    by_name(&pool, "wide", 1000).await;
    let hints = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM task_limits WHERE slot").fetch_one(&pool).await.unwrap();
        n
    };
    for i in 0..4 {
        let id = format!("w{i}");
        assert_eq!(created(&tasks::insert_each(&pool, &[new_task(&id)]).await.unwrap()), [("queued".into(), true)]);
        // A failure keeps its memberships (a retry is gated by them), hint set.
        run(&pool, worker, &id, Outcome::Failed(TaskError::new("bad", "permanent"))).await;
    }
    assert_eq!(bucket_state(&pool, "wide").await, (4, 0, true), "four fast admissions, no count yet");
    assert_eq!(hints().await, 4, "the outcomes wrote nothing of the limits");
    // The fifth: `taken` grew by the bound, so the slow path counts first.
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("w4")]).await.unwrap()), [("queued".into(), true)]);
    let (taken, turn, bound) = bucket_state(&pool, "wide").await;
    assert_eq!((taken, bound), (1, true), "counted: only w4 runs");
    assert!(turn > 0, "released by the slow path");
    assert_eq!(hints().await, 1, "the finished tasks' hints were cleared by the count");
    // And the fast path again.
    assert_eq!(created(&tasks::insert_each(&pool, &[new_task("w5")]).await.unwrap()), [("queued".into(), true)]);
    assert_eq!(bucket_state(&pool, "wide").await, (2, turn, true));
}

/// A submitter that crashed between its insert and the attach leaves a
/// `held` row without memberships: the leader's pass settles it after the
/// grace (released when its bucket has room, plain when its limit went).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_held_row_left_without_memberships_is_settled_by_the_leader_pass(pool: PgPool) {
    by_name(&pool, "echo-limit", 1).await;
    // The insert alone, as a crashed submitter leaves it.
    let mut conn = pool.acquire().await.unwrap();
    tasks::insert_rows(&mut conn, &[new_task("c1"), new_task("c2")]).await.unwrap();
    drop(conn);
    assert_eq!(statuses(&pool, &["c1", "c2"]).await, ["held", "held"]);
    let grace = Duration::from_secs(3600);
    assert_eq!(limits::repair_unattached(&pool, grace, 100).await.unwrap().0, 0, "young rows are the submitter's");
    let (repaired, released) = limits::repair_unattached(&pool, Duration::ZERO, 100).await.unwrap();
    assert_eq!(repaired, 2);
    assert_eq!(released.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(), ["c1"]);
    assert_eq!(statuses(&pool, &["c1", "c2"]).await, ["queued", "held"]);
    assert_eq!(limits::of_task(&pool, &key("c2")).await.unwrap().len(), 1, "attached");
    assert_eq!(limits::repair_unattached(&pool, Duration::ZERO, 100).await.unwrap().0, 0, "nothing left");
    // An orphan whose limit was deleted meanwhile runs plain.
    let mut conn = pool.acquire().await.unwrap();
    tasks::insert_rows(&mut conn, &[new_task("c3")]).await.unwrap();
    drop(conn);
    sqlx::query("DELETE FROM limit_tasks").execute(&pool).await.unwrap();
    let (repaired, released) = limits::repair_unattached(&pool, Duration::ZERO, 100).await.unwrap();
    assert_eq!((repaired, released.len()), (1, 1));
    let row = tasks::get(&pool, &key("c3")).await.unwrap().unwrap();
    assert_eq!((row.task.status, row.limited), (TaskStatus::Queued, false));
}

/// A limited `waiting` node becomes `held` when its last parent ends and is
/// released in that transaction as far as its bucket has room: with one
/// slot, a diamond's two middle nodes run one after the other.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_limited_node_is_held_at_fan_in_and_released_as_room_allows(pool: PgPool) {
    use crate::store::workflows::{self, NewNode, NewWorkflow, OnParentFailure, WorkflowInsert};
    let worker = register(&pool).await;
    by_name(&pool, "echo-limit", 1).await;
    let refs = ["a", "b", "c", "d"];
    let parents: [&[usize]; 4] = [&[], &[0], &[0], &[1, 2]];
    let wf = NewWorkflow {
        key: "wf1".into(),
        tenant: Tenant::default_tenant(),
        request_hash: "h".into(),
        nodes: refs
            .iter()
            .zip(parents)
            .map(|(r, p)| NewNode {
                task: new_task(&workflows::node_id("wf1", r)),
                node_ref: r.to_string(),
                parents: p.to_vec(),
                on_parent_failure: OnParentFailure::Cancel,
            })
            .collect(),
    };
    let WorkflowInsert::Created(rows) = workflows::insert(&pool, &wf).await.unwrap() else { panic!("not created") };
    let got: Vec<(String, bool)> = rows.iter().map(|r| (r.task.status.as_str().to_string(), r.limited)).collect();
    let waiting = ("waiting".to_string(), true);
    assert_eq!(got, [("queued".into(), true), waiting.clone(), waiting.clone(), waiting], "as committed");
    let ids = refs.map(|r| workflows::node_id("wf1", r));
    let finish = |id: String| {
        let pool = pool.clone();
        async move {
            let k = key(&id);
            let claimed = tasks::claim(&pool, std::slice::from_ref(&k), worker).await.unwrap();
            let ClaimResult::Claimed(c) = &claimed[0] else { panic!("{id} not claimed") };
            let o = ok();
            let rec = [AttemptOutcomeRecord { task_id: &k, attempt: c.attempt, outcome: &o, limited: c.limited }];
            let (_, released) = workflows::record_outcomes(&pool, worker, &rec).await.unwrap();
            released.into_iter().map(|u| u.id.to_string()).collect::<Vec<_>>()
        }
    };
    let all = |pool: PgPool| async move {
        let ids = refs.map(|r| workflows::node_id("wf1", r));
        statuses(&pool, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await
    };
    // a's end frees its slot and makes b and c held, in one transaction: one of them runs.
    assert_eq!(finish(ids[0].clone()).await, [ids[1].clone()]);
    assert_eq!(all(pool.clone()).await, ["success", "queued", "held", "waiting"]);
    assert_eq!(finish(ids[1].clone()).await, [ids[2].clone()]);
    assert_eq!(all(pool.clone()).await, ["success", "success", "queued", "waiting"]);
    assert_eq!(finish(ids[2].clone()).await, [ids[3].clone()], "d's fan-in and its release");
    assert_eq!(finish(ids[3].clone()).await, Vec::<String>::new());
}

/// The workflows repair pass gates a limited node like the fan-in.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_workflow_repair_pass_holds_a_limited_node_when_its_bucket_is_full(pool: PgPool) {
    use crate::store::workflows::{self, NewNode, NewWorkflow, OnParentFailure};
    let worker = register(&pool).await;
    by_name(&pool, "echo-limit", 1).await;
    let node = |r: &str, p: Vec<usize>| NewNode {
        task: new_task(&workflows::node_id("wf2", r)),
        node_ref: r.to_string(),
        parents: p,
        on_parent_failure: OnParentFailure::Cancel,
    };
    let wf = NewWorkflow {
        key: "wf2".into(),
        tenant: Tenant::default_tenant(),
        request_hash: "h".into(),
        nodes: vec![node("a", vec![]), node("b", vec![0])],
    };
    workflows::insert(&pool, &wf).await.unwrap();
    let (a, b) = (workflows::node_id("wf2", "a"), workflows::node_id("wf2", "b"));
    // a ends through the previous release's path (no fan-in), and another
    // task takes the only slot meanwhile.
    let k = key(&a);
    let claimed = tasks::claim(&pool, std::slice::from_ref(&k), worker).await.unwrap();
    let ClaimResult::Claimed(c) = &claimed[0] else { panic!() };
    let o = ok();
    tasks::record_outcomes(
        &pool,
        worker,
        &[AttemptOutcomeRecord { task_id: &k, attempt: c.attempt, outcome: &o, limited: false }],
    )
    .await
    .unwrap();
    let rows = tasks::insert_each(&pool, &[new_task("x1")]).await.unwrap();
    assert_eq!(created(&rows), [("queued".into(), true)]);
    let repaired = workflows::repair(&pool, Duration::ZERO, 100).await.unwrap();
    assert_eq!((repaired.repaired, repaired.released.len()), (1, 0));
    assert_eq!(status(&pool, &b).await, "held");
    run(&pool, worker, "x1", ok()).await;
    assert_eq!(status(&pool, &b).await, "queued");
}

/// What 1,000 buckets cost the leader's limits pass and PostgreSQL
/// (docs/limits.md, "Cost"): the pass (`release_pass` over up to 1,000
/// buckets, and the unattached-row repair) timed with 1,000 buckets holding
/// nothing, then with every bucket full (one task running) and 500 of them
/// holding a task, plus the buffers PostgreSQL reads for the pass's
/// statement. A figure, not a check:
/// `cargo test -p yadtq-core --lib -- --ignored --nocapture cost_of_the_leader_pass`
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
#[ignore = "a measurement, run on demand"]
async fn cost_of_the_leader_pass_with_1000_buckets(pool: PgPool) {
    const PASSES: u32 = 50;
    put(&pool, "per", spec(Some(1), None, Some("/kwargs/c"))).await;
    let time = |what: &'static str| {
        let pool = pool.clone();
        async move {
            let t = std::time::Instant::now();
            for _ in 0..PASSES {
                assert!(limits::release_pass(&pool, 1000).await.unwrap().is_empty());
                limits::repair_unattached(&pool, Duration::from_secs(30), 1000).await.unwrap();
            }
            let ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(PASSES);
            let plan: Vec<String> = sqlx::query_scalar(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)
                 SELECT b.id FROM limit_buckets b
                 WHERE EXISTS (SELECT 1 FROM task_limits m WHERE m.bucket_id = b.id AND m.held)
                 ORDER BY b.last_turn, b.id LIMIT 1000",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let buffers: Vec<&String> =
                plan.iter().filter(|l| l.contains("Buffers") || l.contains("Execution")).collect();
            println!("{what}: {ms:.2} ms per pass (release_pass + repair_unattached); the pass's first statement: {buffers:?}");
        }
    };
    // 1,000 buckets, each with one task that ran (so the bucket exists), nothing held.
    let all: Vec<NewTask> = (0..1000).map(|c| task(&format!("a{c}"), &c.to_string())).collect();
    for chunk in all.chunks(100) {
        submit(&pool, chunk, "per").await;
    }
    sqlx::query("UPDATE tasks SET status = 'success'").execute(&pool).await.unwrap();
    time("1,000 buckets, none holding a task").await;
    // Every bucket full (a running task each), 500 of them holding one task.
    let running: Vec<NewTask> = (0..1000).map(|c| task(&format!("r{c}"), &c.to_string())).collect();
    for chunk in running.chunks(100) {
        submit(&pool, chunk, "per").await;
    }
    let held: Vec<NewTask> = (0..500).map(|c| task(&format!("h{c}"), &c.to_string())).collect();
    for chunk in held.chunks(100) {
        assert!(submit(&pool, chunk, "per").await.iter().all(|s| s == "held"));
    }
    time("1,000 buckets full, 500 holding a task").await;
}
