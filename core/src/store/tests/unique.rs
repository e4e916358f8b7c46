//! Unique tasks (`store::unique`): one rule a test. At most one task per key
//! whose status holds it; a repeat answers the holder; the key frees once
//! the holder leaves the holding statuses; buckets, `while`, batches, the
//! manual retry and the rows without a key.

use sqlx::PgPool;

use super::unknown_status::admit_status;
use super::{key, new_task, register};
use crate::model::TaskStatus;
use crate::names::{TaskId, Tenant};
use crate::store::tasks::{self, BatchInsert, ClaimResult, Inserted, NewTask, RetryResult};
use crate::store::unique::Unique;

/// Task `id` with the unique key `key` (the same body whatever the id).
fn keyed(id: &str, key: &str) -> NewTask {
    NewTask {
        unique: Some(Unique { key: key.into(), for_seconds: None, also_while: vec![] }),
        request_hash: "one-body".into(),
        ..new_task(id)
    }
}

fn with(t: NewTask, for_seconds: Option<i64>, also_while: Vec<TaskStatus>) -> NewTask {
    let key = t.unique.as_ref().expect("a keyed task").key.clone();
    NewTask { unique: Some(Unique { key, for_seconds, also_while }), ..t }
}

/// Inserts `t` alone and says what happened: `created <id>`, `holder <id>`,
/// `existing <id>` or `conflict <id>`.
async fn submit(pool: &PgPool, t: NewTask) -> String {
    match tasks::insert_each(pool, &[t]).await.unwrap().pop().unwrap() {
        Inserted::Created(r) => format!("created {}", r.task.id),
        Inserted::Unique(r) => format!("holder {}", r.task.id),
        Inserted::Existing(r) => format!("existing {}", r.task.id),
        Inserted::Conflict(id) => format!("conflict {id}"),
    }
}

async fn set_status(pool: &PgPool, id: &str, status: &str) {
    sqlx::query("UPDATE tasks SET status = $2 WHERE id = $1").bind(id).bind(status).execute(pool).await.unwrap();
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_repeat_answers_the_holder_until_it_finishes(pool: PgPool) {
    assert_eq!(submit(&pool, keyed("a", "sync-42")).await, "created a");
    assert_eq!(submit(&pool, keyed("b", "sync-42")).await, "holder a");
    assert!(tasks::get(&pool, &key("b")).await.unwrap().is_none(), "nothing created for the repeat");
    // Another key, another task name or another tenant is another key.
    assert_eq!(submit(&pool, keyed("c", "sync-43")).await, "created c");
    let other_name = NewTask { name: crate::names::TaskName::parse("sleep", 64).unwrap(), ..keyed("d", "sync-42") };
    assert_eq!(submit(&pool, other_name).await, "created d");
    assert_eq!(
        submit(&pool, NewTask { tenant: Tenant::parse("acme").unwrap(), ..keyed("e", "sync-42") }).await,
        "created e"
    );
    // Every non-terminal status holds it, a later release's too.
    admit_status(&pool, "waiting").await;
    for status in ["scheduled", "processing", "waiting"] {
        set_status(&pool, "a", status).await;
        assert_eq!(submit(&pool, keyed("b", "sync-42")).await, "holder a", "{status}");
    }
    // No terminal status holds it without `while`: the next submission creates a task.
    for status in ["success", "failed", "cancelled"] {
        let key = format!("key-{status}");
        assert_eq!(submit(&pool, keyed(&format!("{status}-1"), &key)).await, format!("created {status}-1"));
        set_status(&pool, &format!("{status}-1"), status).await;
        assert_eq!(submit(&pool, keyed(&format!("{status}-2"), &key)).await, format!("created {status}-2"));
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn while_adds_terminal_statuses_that_hold_the_key(pool: PgPool) {
    let report = |id: &str| with(keyed(id, "report"), None, vec![TaskStatus::Success]);
    assert_eq!(submit(&pool, report("a")).await, "created a");
    set_status(&pool, "a", "success").await;
    assert_eq!(submit(&pool, report("b")).await, "holder a", "a success holds a key with while [success]");
    // The holder's own states decide: a repeat without `while` finds it too.
    assert_eq!(submit(&pool, keyed("b", "report")).await, "holder a");
    set_status(&pool, "a", "failed").await;
    assert_eq!(submit(&pool, report("b")).await, "created b", "failed is not in while");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn for_seconds_keys_the_bucket_of_the_database_clock(pool: PgPool) {
    let hourly = |id: &str| with(keyed(id, "report"), Some(3600), vec![]);
    assert_eq!(submit(&pool, hourly("a")).await, "created a");
    assert_eq!(submit(&pool, hourly("b")).await, "holder a");
    let (stored, bucket): (String, i64) =
        sqlx::query_as("SELECT unique_key, floor(extract(epoch FROM now()) / 3600)::bigint FROM tasks WHERE id = 'a'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, format!(r#"["default","echo","report"]/3600/{bucket}"#));
    // Another period is another key; so is no period.
    assert_eq!(submit(&pool, with(keyed("c", "report"), Some(60), vec![])).await, "created c");
    assert_eq!(submit(&pool, keyed("d", "report")).await, "created d");
    // A holder from the previous bucket holds nothing in this one.
    let previous = format!(r#"["default","echo","report"]/3600/{}"#, bucket - 1);
    sqlx::query("UPDATE tasks SET unique_key = $1 WHERE id = 'a'").bind(previous).execute(&pool).await.unwrap();
    assert_eq!(submit(&pool, hourly("e")).await, "created e");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn in_a_batch_the_second_of_a_key_answers_the_first(pool: PgPool) {
    let batch = [keyed("b1", "k"), new_task("plain"), keyed("a2", "k"), keyed("c", "other")];
    let BatchInsert::Done(out) = tasks::insert_batch(&pool, &batch).await.unwrap() else { panic!("no conflict") };
    let got: Vec<String> = out
        .iter()
        .map(|i| match i {
            Inserted::Created(r) => format!("created {}", r.task.id),
            Inserted::Unique(r) => format!("holder {}", r.task.id),
            other => format!("{other:?}"),
        })
        .collect();
    // The first in request order wins although `a2` sorts before `b1`.
    assert_eq!(got, ["created b1", "created plain", "holder b1", "created c"]);
    assert!(tasks::get(&pool, &key("a2")).await.unwrap().is_none());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_unique_match_wins_over_the_id(pool: PgPool) {
    assert_eq!(submit(&pool, new_task("x")).await, "created x");
    assert_eq!(submit(&pool, keyed("holder", "k")).await, "created holder");
    // Task `x` again (same id and body), now with the key `holder` holds.
    let again = NewTask { unique: keyed("x", "k").unique, ..new_task("x") };
    assert_eq!(submit(&pool, again.clone()).await, "holder holder");
    // Once the key is free, the id decides again.
    set_status(&pool, "holder", "success").await;
    assert_eq!(submit(&pool, again).await, "existing x");
    let changed = NewTask { request_hash: "another".into(), ..keyed("x", "k") };
    assert_eq!(submit(&pool, changed).await, "conflict x");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_retry_into_a_held_key_is_refused(pool: PgPool) {
    assert_eq!(submit(&pool, keyed("old", "k")).await, "created old");
    set_status(&pool, "old", "failed").await;
    assert_eq!(submit(&pool, keyed("new", "k")).await, "created new");
    assert!(matches!(tasks::retry(&pool, &key("old")).await.unwrap(), RetryResult::UniqueHeld));
    assert_eq!(tasks::get(&pool, &key("old")).await.unwrap().unwrap().task.status, TaskStatus::Failed);
    set_status(&pool, "new", "cancelled").await;
    assert!(matches!(tasks::retry(&pool, &key("old")).await.unwrap(), RetryResult::Requeued(_)));
    assert_eq!(submit(&pool, keyed("third", "k")).await, "holder old");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn internal_moves_keep_the_key_with_its_task(pool: PgPool) {
    let worker = register(&pool).await;
    let t = with(keyed("a", "k"), None, vec![TaskStatus::Success]);
    assert_eq!(submit(&pool, NewTask { run_at: Some(chrono::Utc::now()), ..t.clone() }).await, "created a");
    assert_eq!(tasks::promote_due(&pool, 10).await.unwrap().len(), 1);
    assert!(matches!(tasks::claim(&pool, &["a".into()], worker).await.unwrap()[..], [ClaimResult::Claimed(_)]));
    let success = tasks::Outcome::Success("1".into());
    let a = key("a");
    let o = tasks::AttemptOutcomeRecord { task_id: &a, attempt: 1, outcome: &success, limited: false };
    assert_eq!(tasks::record_outcomes(&pool, worker, &[o]).await.unwrap(), [tasks::Recorded::Written]);
    assert_eq!(submit(&pool, NewTask { id: TaskId::parse("b").unwrap(), ..t }).await, "holder a");
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn concurrent_submitters_make_one_task_per_key(pool: PgPool) {
    let submitters = (0..16).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move {
            // Each statement holds both keys, in an order of its own ids.
            let batch = [keyed(&format!("{i:02}-x"), "k1"), keyed(&format!("{:02}-y", 15 - i), "k2")];
            tasks::insert_each(&pool, &batch).await.unwrap()
        })
    });
    let mut created = 0;
    for s in submitters {
        created += s.await.unwrap().iter().filter(|i| matches!(i, Inserted::Created(_))).count();
    }
    assert_eq!(created, 2);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 2);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn rows_without_a_key_stay_out_of_the_index(pool: PgPool) {
    let size = |pool: PgPool| async move {
        let n: i64 = sqlx::query_scalar("SELECT pg_relation_size('tasks_unique_key')").fetch_one(&pool).await.unwrap();
        n
    };
    let empty = size(pool.clone()).await;
    let plain: Vec<NewTask> = (0..500).map(|i| new_task(&format!("t{i:03}"))).collect();
    assert!(tasks::insert_each(&pool, &plain).await.unwrap().iter().all(|i| matches!(i, Inserted::Created(_))));
    // The same body twice without a key is two tasks, and the index is as empty as before.
    assert_eq!(submit(&pool, new_task("t500")).await, "created t500");
    assert_eq!(size(pool.clone()).await, empty);
    let in_index: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE unique_key IS NOT NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(in_index, 0);
}
