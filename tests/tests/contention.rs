//! Concurrent batched writes on the same task rows, the way a busy stack makes
//! them: the gateway marking acked tasks published, two workers claiming the
//! same records (duplicates after a rebalance) and recording outcomes, each
//! batch listing its ids in its own order. None may fail with a deadlock
//! (PostgreSQL breaks a lock cycle after deadlock_timeout, 1 s, by failing one
//! statement), and every task runs once.

use yadtq_core::names::TaskKey;
use yadtq_core::store::tasks::{self as store, AttemptOutcomeRecord, BatchInsert, NewTask, Outcome, Sent};
use yadtq_core::store::StoreError;
use yadtq_tests::Stack;

/// `ids` in a random order (sorted by a fresh random key each).
fn shuffled<T: Clone + Ord>(ids: &[T]) -> Vec<T> {
    let mut keyed: Vec<(uuid::Uuid, &T)> = ids.iter().map(|id| (uuid::Uuid::new_v4(), id)).collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id.clone()).collect()
}

fn new_task(round: usize, i: usize) -> NewTask {
    NewTask { max_retries: 0, ..yadtq_tests::echo_task(format!("contention-{round}-{i:05}"), format!("[{i}]")) }
}

/// One worker: claims shuffled batches of `ids`, then records their outcomes in
/// another order. Returns the tasks it claimed.
async fn work(pool: sqlx::PgPool, ids: Vec<TaskKey>, batch: usize) -> Result<usize, StoreError> {
    let worker = uuid::Uuid::new_v4();
    let mut claimed_total = 0;
    for chunk in shuffled(&ids).chunks(batch) {
        let claimed = store::claim(&pool, chunk, worker).await?;
        let mine: Vec<(TaskKey, i32)> =
            chunk.iter().zip(claimed).filter_map(|(id, c)| c.as_claimed().map(|c| (id.clone(), c.attempt))).collect();
        claimed_total += mine.len();
        let success = Outcome::Success("1".into());
        let mut records: Vec<AttemptOutcomeRecord<'_>> = mine
            .iter()
            .map(|(id, a)| AttemptOutcomeRecord { task_id: id, attempt: *a, outcome: &success, limited: false })
            .collect();
        records.reverse();
        store::record_outcomes(&pool, worker, &records).await?;
    }
    Ok(claimed_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batched_marks_claims_and_outcomes_never_deadlock() {
    let stack = Stack::new("contention").await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&stack.database_url).await.unwrap();
    let n = 4000;
    // A cycle needs two batches to meet in the wrong order: a few rounds make it
    // near certain that statements locking rows in input order would hit one.
    for round in 0..3 {
        let tasks: Vec<NewTask> = (0..n).map(|i| new_task(round, i)).collect();
        for chunk in tasks.chunks(500) {
            store::insert_each(&pool, chunk).await.unwrap();
        }
        let ids: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();

        let marker = {
            let (pool, ids) = (pool.clone(), ids.clone());
            tokio::spawn(async move {
                for chunk in shuffled(&ids).chunks(100) {
                    let sent: Vec<Sent> = chunk.iter().map(|id| Sent { id: id.clone(), attempts: 0 }).collect();
                    store::mark_published(&pool, &sent).await?;
                }
                Ok::<_, StoreError>(0)
            })
        };
        // Two workers over the same records: every task is claimed by one of them.
        let a = tokio::spawn(work(pool.clone(), ids.clone(), 64));
        let b = tokio::spawn(work(pool.clone(), ids.clone(), 64));
        let mut claims = 0;
        for (who, h) in [("marker", marker), ("worker a", a), ("worker b", b)] {
            match h.await.unwrap() {
                Ok(c) => claims += c,
                Err(e) => panic!("{who} failed: {e}"),
            }
        }

        assert_eq!(claims, n, "every task claimed exactly once");
        let ids: Vec<String> = ids.iter().map(TaskKey::to_string).collect();
        assert_eq!(stack.count_status(&ids, "success").await, n as i64);
        let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&stack.db)
            .await
            .unwrap();
        assert_eq!(runs, n as i64, "one attempt per task");
    }
}

/// The same ids submitted at once through several gateways (a client retrying
/// on another one, or two batches sharing ids) in different orders: each insert
/// either creates a row or finds it, and none fails with a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_of_the_same_ids_never_deadlock() {
    let stack = Stack::new("contention_insert").await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&stack.database_url).await.unwrap();
    for round in 0..5 {
        let tasks: Vec<NewTask> = (0..400).map(|i| new_task(100 + round, i)).collect();
        let by_id: std::collections::HashMap<TaskKey, NewTask> = tasks.iter().map(|t| (t.key(), t.clone())).collect();
        let ids: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();
        let inserts: Vec<_> = (0..4)
            .map(|k| {
                let pool = pool.clone();
                let mine: Vec<NewTask> = shuffled(&ids).iter().map(|id| by_id[id].clone()).collect();
                tokio::spawn(async move {
                    // Batches (one transaction) and grouped singles (one statement) alike.
                    if k % 2 == 0 {
                        store::insert_batch(&pool, &mine).await.map(|r| match r {
                            BatchInsert::Done(inserted) => inserted.len(),
                            BatchInsert::Conflict(id) => panic!("same bodies: no conflict, got one on {id}"),
                        })
                    } else {
                        store::insert_each(&pool, &mine).await.map(|r| r.len())
                    }
                })
            })
            .collect();
        for (k, h) in inserts.into_iter().enumerate() {
            match h.await.unwrap() {
                Ok(n) => assert_eq!(n, ids.len(), "insert {k}: one result per task"),
                Err(e) => panic!("round {round}, insert {k} failed: {e}"),
            }
        }
        let ids: Vec<String> = ids.iter().map(TaskKey::to_string).collect();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_one(&stack.db)
            .await
            .unwrap();
        assert_eq!(rows, ids.len() as i64, "each task once");
    }
}

/// A publish mark arriving after the task was claimed, failed and requeued
/// (the gateway marks 500 ms after the ack) must not mark the requeued row:
/// if its new send failed, the publisher would never send it again.
#[tokio::test]
async fn a_late_mark_for_an_earlier_send_leaves_a_requeued_task_unpublished() {
    let stack = Stack::new("late_mark").await;
    let task = new_task(200, 0);
    store::insert_each(&stack.db, std::slice::from_ref(&task)).await.unwrap();
    // Claimed (attempt 1), then back to queued for a retry, unpublished.
    let worker = uuid::Uuid::new_v4();
    let key = task.key();
    let claimed = store::claim(&stack.db, std::slice::from_ref(&key), worker).await.unwrap();
    assert_eq!(claimed[0].as_claimed().map(|c| c.attempt), Some(1));
    sqlx::query("UPDATE tasks SET status = 'queued', worker_id = NULL, published_at = NULL WHERE id = $1")
        .bind(key.as_str())
        .execute(&stack.db)
        .await
        .unwrap();
    let published = || async {
        sqlx::query_scalar::<_, bool>("SELECT published_at IS NOT NULL FROM tasks WHERE id = $1")
            .bind(key.as_str())
            .fetch_one(&stack.db)
            .await
            .unwrap()
    };

    // The first send's ack (attempt count 0) lands late: nothing changes.
    assert_eq!(store::mark_published(&stack.db, &[Sent { id: key.clone(), attempts: 0 }]).await.unwrap(), 0);
    assert!(!published().await, "the requeued row stays for the publisher");
    // The ack of the send for the current attempt count marks it.
    assert_eq!(store::mark_published(&stack.db, &[Sent { id: key.clone(), attempts: 1 }]).await.unwrap(), 1);
    assert!(published().await);
}
