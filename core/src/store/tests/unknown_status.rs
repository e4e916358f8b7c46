//! A status this release does not know (a newer release's `suspended`, here
//! admitted by widening the CHECK as that release's migration will) reads
//! verbatim and not terminal through every reader of task rows, and every
//! writer leaves it alone (cancel only requests).

use sqlx::PgPool;

use super::stats::task_on;
use super::{key, new_task, register};
use crate::model::TaskStatus;
use crate::store::tasks::{self, BatchInsert, CancelResult, ClaimResult, Inserted, RetryResult, TaskFilter};
use crate::store::{overview, stats};

/// Lets the `tasks` table hold `status`, as a newer release's migration would.
pub(super) async fn admit_status(pool: &PgPool, status: &str) {
    let check = format!(
        "ALTER TABLE tasks DROP CONSTRAINT tasks_status_check, ADD CONSTRAINT tasks_status_check CHECK (status IN
             ('queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled', '{status}'))"
    );
    sqlx::query(&check).execute(pool).await.unwrap();
}

fn suspended() -> TaskStatus {
    TaskStatus::Other("suspended".into())
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn an_unknown_status_reads_verbatim_through_every_reader(pool: PgPool) {
    admit_status(&pool, "suspended").await;
    let worker = register(&pool).await;
    task_on(&pool, "w1", "a", &suspended(), worker).await;
    task_on(&pool, "w2", "a", &suspended(), worker).await;
    task_on(&pool, "w3", "b", &suspended(), worker).await;
    task_on(&pool, "q1", "a", &TaskStatus::Queued, worker).await;
    let is_suspended = |t: &crate::model::Task| {
        assert_eq!(t.status, suspended(), "{}", t.id);
        assert_eq!(t.status.as_str(), "suspended");
        assert!(!t.status.is_terminal() && !t.status.is_known());
    };

    // One, many, a page (no filter, and a known filter that excludes it).
    is_suspended(&tasks::get(&pool, &key("w1")).await.unwrap().expect("w1").task);
    let many = tasks::get_many(&pool, &["w1".into(), "w3".into(), "q1".into()]).await.unwrap();
    assert_eq!(many.len(), 3);
    many.iter().filter(|r| r.task.id != "q1").for_each(|r| is_suspended(&r.task));
    let page = tasks::list(&pool, &crate::names::Tenant::default_tenant(), None, &TaskFilter::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(page.tasks.iter().filter(|t| t.status == suspended()).count(), 3);
    let queued = TaskFilter { status: Some(TaskStatus::Queued), ..TaskFilter::default() };
    let page = tasks::list(&pool, &crate::names::Tenant::default_tenant(), None, &queued, 50, None).await.unwrap();
    assert_eq!(page.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["q1"]);

    // Submitting the same id again reads the existing row, one by one and in a batch.
    match &tasks::insert_each(&pool, &[new_task("w1")]).await.unwrap()[..] {
        [Inserted::Existing(row)] => is_suspended(&row.task),
        other => panic!("insert_each of an existing id: {other:?}"),
    }
    match tasks::insert_batch(&pool, &[new_task("w2"), new_task("fresh")]).await.unwrap() {
        BatchInsert::Done(rows) => match &rows[..] {
            [Inserted::Created(fresh), Inserted::Existing(w2)] | [Inserted::Existing(w2), Inserted::Created(fresh)] => {
                is_suspended(&w2.task);
                assert_eq!(fresh.task.status, TaskStatus::Queued);
            }
            other => panic!("insert_batch: {other:?}"),
        },
        BatchInsert::Conflict(id) => panic!("conflict on {id}"),
    }

    // Cancel requests (status unchanged, like a running task); retry refuses
    // and re-reads it; a claim skips it.
    match tasks::cancel(&pool, &key("w1")).await.unwrap() {
        CancelResult::Requested(row) => {
            is_suspended(&row.task);
            assert!(row.task.cancel_requested_at.is_some());
        }
        other => panic!("cancel of a suspended task: {other:?}"),
    }
    assert!(
        matches!(tasks::cancel(&pool, &key("w1")).await.unwrap(), CancelResult::Requested(r) if r.task.status == suspended())
    );
    match tasks::retry(&pool, &key("w2")).await.unwrap() {
        RetryResult::NotRetryable(row) => is_suspended(&row.task),
        other => panic!("retry of a suspended task: {other:?}"),
    }
    assert!(matches!(&tasks::claim(&pool, &["w3".into()], worker).await.unwrap()[..], [ClaimResult::NotQueued]));
    is_suspended(&tasks::get(&pool, &key("w3")).await.unwrap().expect("w3").task);

    // Statistics: counted per queue by its name among the active counts,
    // never among the finished ones.
    let active = stats::active(&pool).await.unwrap();
    let count = |queue: &str, status: &TaskStatus| {
        active.counts.iter().find(|c| c.queue == queue && &c.status == status).map(|c| c.count)
    };
    assert_eq!((count("a", &suspended()), count("b", &suspended())), (Some(2), Some(1)), "{active:?}");
    assert_eq!(count("a", &TaskStatus::Queued), Some(1));
    assert!(stats::finished(&pool).await.unwrap().iter().all(|c| c.status.is_terminal()));
    let (_, minutes) = overview::finished_per_minute(&pool, 60 * 24).await.unwrap();
    assert!(minutes.iter().all(|m| m.status.is_terminal()), "{minutes:?}");
}
