//! Workflows on a real PostgreSQL: fan-in through every way a parent ends
//! (a worker's outcome, the rescuer, an API cancel, a refused record), two
//! parents finishing in one batch and in concurrent batches, failure
//! cascades, retry re-opening descendants, parents' results at claim, the
//! repair pass and retention.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{new_task, register};
use crate::model::{TaskError, TaskStatus};
use crate::names::{TaskKey, Tenant};
use crate::store::tasks::{self, AttemptOutcomeRecord, ClaimResult, Outcome, Recorded, Refused};
use crate::store::workflows::{
    self, NewNode, NewWorkflow, NodeRetry, OnParentFailure, Parents, WorkflowInsert, WorkflowStatus,
};

/// Node `r`'s stored key in workflow `wf` (default tenant).
fn key(wf: &str, r: &str) -> TaskKey {
    TaskKey::from_stored(workflows::node_id(wf, r))
}

/// A workflow `wf` of `echo` nodes: `(ref, parents' refs, policy)`.
fn workflow(wf: &str, spec: &[(&str, &[&str], OnParentFailure)]) -> NewWorkflow {
    let refs: Vec<&str> = spec.iter().map(|(r, _, _)| *r).collect();
    NewWorkflow {
        key: wf.into(),
        tenant: Tenant::default_tenant(),
        request_hash: format!("hash-{wf}"),
        nodes: spec
            .iter()
            .map(|(r, parents, policy)| NewNode {
                task: new_task(&workflows::node_id(wf, r)),
                node_ref: r.to_string(),
                parents: parents.iter().map(|p| refs.iter().position(|x| x == p).unwrap()).collect(),
                on_parent_failure: *policy,
            })
            .collect(),
    }
}

const C: OnParentFailure = OnParentFailure::Cancel;

/// A → (B, C) → D.
fn diamond(wf: &str) -> NewWorkflow {
    workflow(wf, &[("a", &[], C), ("b", &["a"], C), ("c", &["a"], C), ("d", &["b", "c"], C)])
}

async fn insert(pool: &PgPool, wf: &NewWorkflow) {
    match workflows::insert(pool, wf).await.unwrap() {
        WorkflowInsert::Created(rows) => assert_eq!(rows.len(), wf.nodes.len()),
        other => panic!("insert {}: {other:?}", wf.key),
    }
}

async fn status(pool: &PgPool, id: &TaskKey) -> TaskStatus {
    tasks::get(pool, id).await.unwrap().unwrap_or_else(|| panic!("no task {id}")).task.status
}

async fn error_kind(pool: &PgPool, id: &TaskKey) -> Option<String> {
    tasks::get(pool, id).await.unwrap().unwrap_or_else(|| panic!("no task {id}")).task.error.map(|e| e.kind)
}

/// Claims `ids` for `worker` (they must all be `queued`).
async fn claim(pool: &PgPool, ids: &[TaskKey], worker: Uuid) {
    let claimed = tasks::claim(pool, ids, worker).await.unwrap();
    assert!(claimed.iter().all(|c| matches!(c, ClaimResult::Claimed(_))), "claim {ids:?}: {claimed:?}");
}

/// Records `outcome` for attempt 1 of each of `ids` in one batch, as a
/// worker of this release does; returns the ids the fan-in released.
async fn finish(pool: &PgPool, ids: &[TaskKey], worker: Uuid, outcome: &Outcome) -> Vec<TaskKey> {
    let rows: Vec<AttemptOutcomeRecord<'_>> =
        ids.iter().map(|id| AttemptOutcomeRecord { task_id: id, attempt: 1, outcome, limited: false }).collect();
    let (recorded, released) = workflows::record_outcomes(pool, worker, &rows).await.unwrap();
    assert!(recorded.iter().all(|r| *r == Recorded::Written), "{recorded:?}");
    let mut ids: Vec<TaskKey> = released.into_iter().map(|u| u.id).collect();
    ids.sort();
    ids
}

fn ok() -> Outcome {
    Outcome::Success(r#"{"n": 1}"#.into())
}

fn failed() -> Outcome {
    Outcome::Failed(TaskError::new("handler_error", "boom"))
}

async fn pending(pool: &PgPool, id: &TaskKey) -> i32 {
    sqlx::query_scalar("SELECT pending FROM workflow_nodes WHERE task_id = $1")
        .bind(id.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_diamond_runs_in_order_and_the_fan_in_counts_both_parents_of_one_batch(pool: PgPool) {
    let w = register(&pool).await;
    insert(&pool, &diamond("d1")).await;
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|r| key("d1", r));
    assert_eq!(status(&pool, &a).await, TaskStatus::Queued);
    for id in [&b, &c, &d] {
        assert_eq!(status(&pool, id).await, TaskStatus::Waiting, "{id}");
    }
    // A waiting node cannot be claimed (a stray record of it is absorbed).
    assert!(matches!(tasks::claim(&pool, std::slice::from_ref(&d), w).await.unwrap()[0], ClaimResult::NotQueued));

    claim(&pool, std::slice::from_ref(&a), w).await;
    assert_eq!(finish(&pool, std::slice::from_ref(&a), w, &ok()).await, [b.clone(), c.clone()]);
    assert_eq!(status(&pool, &d).await, TaskStatus::Waiting);
    claim(&pool, &[b.clone(), c.clone()], w).await;
    // Both parents of D in one batch: D is released once, with pending 0.
    assert_eq!(finish(&pool, &[c.clone(), b.clone()], w, &ok()).await, std::slice::from_ref(&d));
    assert_eq!(pending(&pool, &d).await, 0);
    assert_eq!(status(&pool, &d).await, TaskStatus::Queued);

    // D reads its parents' results by ref at claim.
    match workflows::parent_results(&pool, &d, 1 << 20).await.unwrap() {
        Parents::Read(by_ref, _) => {
            assert_eq!(by_ref.keys().collect::<Vec<_>>(), ["b", "c"]);
            assert_eq!(by_ref["b"].result.as_ref().unwrap().get(), r#"{"n": 1}"#);
            assert_eq!(by_ref["c"].status, TaskStatus::Success);
        }
        other => panic!("{other:?}"),
    }
    // Past the cap (8 bytes each, 16 together), the node is told.
    assert!(matches!(workflows::parent_results(&pool, &d, 15).await.unwrap(), Parents::TooLarge { size: 16 }));
    claim(&pool, std::slice::from_ref(&d), w).await;
    assert!(finish(&pool, std::slice::from_ref(&d), w, &ok()).await.is_empty());
    let wf = workflows::get(&pool, &"d1".into()).await.unwrap().unwrap();
    assert_eq!(wf.status(), WorkflowStatus::Success);
    assert_eq!(wf.counts().get("success"), Some(&4));
    assert_eq!(wf.nodes[3].depends_on, ["b", "c"]);
}

/// The race of issue 27: two parents of one child finishing at once, in one
/// batch and in two concurrent transactions, many times. The child is
/// released exactly once and its count ends at 0 every time.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn two_parents_finishing_together_release_their_child_once_every_time(pool: PgPool) {
    let w = register(&pool).await;
    for i in 0..100 {
        let wf = format!("race{i}");
        insert(&pool, &workflow(&wf, &[("b", &[], C), ("c", &[], C), ("d", &["b", "c"], C)])).await;
        let [b, c, d] = ["b", "c", "d"].map(|r| key(&wf, r));
        claim(&pool, &[b.clone(), c.clone()], w).await;
        let released: Vec<TaskKey> = if i % 2 == 0 {
            finish(&pool, &[b.clone(), c.clone()], w, &ok()).await
        } else {
            let o = ok();
            let (x, y) = tokio::join!(
                finish(&pool, std::slice::from_ref(&b), w, &o),
                finish(&pool, std::slice::from_ref(&c), w, &o)
            );
            x.into_iter().chain(y).collect()
        };
        assert_eq!(released, std::slice::from_ref(&d), "round {i}");
        assert_eq!(pending(&pool, &d).await, 0, "round {i}");
        assert_eq!(status(&pool, &d).await, TaskStatus::Queued, "round {i}");
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_failure_cancels_its_descendants_and_a_retry_reopens_them(pool: PgPool) {
    let w = register(&pool).await;
    // a → b → d, a → c (runs anyway) ; x is independent.
    let spec: &[(&str, &[&str], OnParentFailure)] =
        &[("a", &[], C), ("b", &["a"], C), ("c", &["a"], OnParentFailure::Run), ("d", &["b"], C), ("x", &[], C)];
    insert(&pool, &workflow("f1", spec)).await;
    let [a, b, c, d, x] = ["a", "b", "c", "d", "x"].map(|r| key("f1", r));
    claim(&pool, std::slice::from_ref(&a), w).await;
    assert_eq!(finish(&pool, std::slice::from_ref(&a), w, &failed()).await, std::slice::from_ref(&c));
    for id in [&b, &d] {
        assert_eq!(status(&pool, id).await, TaskStatus::Cancelled, "{id}");
        assert_eq!(error_kind(&pool, id).await.as_deref(), Some("parent_failed"), "{id}");
    }
    assert_eq!(status(&pool, &x).await, TaskStatus::Queued);
    // c sees which parent failed.
    match workflows::parent_results(&pool, &c, 1 << 20).await.unwrap() {
        Parents::Read(by_ref, _) => assert_eq!(by_ref["a"].error.as_ref().unwrap().kind, "handler_error"),
        other => panic!("{other:?}"),
    }
    // b cannot be retried while a has not succeeded.
    assert!(matches!(workflows::retry(&pool, &b).await.unwrap(), NodeRetry::ParentsNotSucceeded));
    // Retrying a re-opens b and d (c ran already; it is left alone).
    claim(&pool, std::slice::from_ref(&c), w).await;
    finish(&pool, std::slice::from_ref(&c), w, &ok()).await;
    match workflows::retry(&pool, &a).await.unwrap() {
        NodeRetry::Done(r, 2) if matches!(*r, tasks::RetryResult::Requeued(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&pool, &a).await, TaskStatus::Queued);
    for id in [&b, &d] {
        assert_eq!(status(&pool, id).await, TaskStatus::Waiting, "{id}");
    }
    assert_eq!(pending(&pool, &b).await, 1);
    assert_eq!(pending(&pool, &d).await, 1);
    assert_eq!(workflows::get(&pool, &"f1".into()).await.unwrap().unwrap().status(), WorkflowStatus::Running);
    // The attempt count continues: a's second claim is attempt 2.
    tasks::claim(&pool, std::slice::from_ref(&a), w).await.unwrap();
    let o = ok();
    let (_, released) = workflows::record_outcomes(
        &pool,
        w,
        &[AttemptOutcomeRecord { task_id: &a, attempt: 2, outcome: &o, limited: false }],
    )
    .await
    .unwrap();
    assert_eq!(released.into_iter().map(|u| u.id).collect::<Vec<_>>(), std::slice::from_ref(&b));
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn every_way_a_parent_ends_fans_in(pool: PgPool) {
    let w = register(&pool).await;
    // API cancel of a waiting node: its child is cancelled down the graph.
    insert(&pool, &workflow("e1", &[("a", &[], C), ("b", &["a"], C), ("c", &["b"], C)])).await;
    tasks::cancel(&pool, &key("e1", "b")).await.unwrap();
    assert_eq!(status(&pool, &key("e1", "b")).await, TaskStatus::Cancelled);
    assert_eq!(error_kind(&pool, &key("e1", "c")).await.as_deref(), Some("parent_failed"));

    // API cancel of a queued root with a `run` child: the child is released,
    // and handed back for the gateway to publish at once.
    insert(&pool, &workflow("e2", &[("a", &[], C), ("b", &["a"], OnParentFailure::Run)])).await;
    let (_, released) = tasks::cancel_releasing(&pool, &key("e2", "a")).await.unwrap();
    assert_eq!(released.into_iter().map(|u| u.id).collect::<Vec<_>>(), [key("e2", "b")]);
    assert_eq!(status(&pool, &key("e2", "b")).await, TaskStatus::Queued);

    // A record Kafka refuses fails the node; its child is cancelled.
    insert(&pool, &workflow("e3", &[("a", &[], C), ("b", &["a"], C)])).await;
    let refused = Refused { id: key("e3", "a"), attempts: 0, error: TaskError::new("record_too_large", "test") };
    assert_eq!(tasks::fail_unsendable(&pool, &[refused]).await.unwrap(), [key("e3", "a")]);
    assert_eq!(error_kind(&pool, &key("e3", "b")).await.as_deref(), Some("parent_failed"));

    // The rescuer: a's worker died out of attempts (worker_lost), b is cancelled;
    // with attempts left a is requeued and b keeps waiting.
    insert(&pool, &workflow("e4", &[("a", &[], C), ("b", &["a"], C)])).await;
    insert(&pool, &workflow("e5", &[("a", &[], C), ("b", &["a"], C)])).await;
    claim(&pool, &[key("e4", "a"), key("e5", "a")], w).await;
    sqlx::query("UPDATE tasks SET max_retries = 0 WHERE id = $1")
        .bind(key("e4", "a").into_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1")
        .bind(w)
        .execute(&pool)
        .await
        .unwrap();
    let rescued = tasks::rescue(&pool, Duration::from_secs(10)).await.unwrap();
    assert_eq!(rescued.failed, 1);
    assert_eq!(rescued.requeued.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), [key("e5", "a")]);
    assert_eq!(error_kind(&pool, &key("e4", "b")).await.as_deref(), Some("parent_failed"));
    assert_eq!(status(&pool, &key("e5", "b")).await, TaskStatus::Waiting);
    // None of this left anything for the repair pass.
    assert_eq!(workflows::repair(&pool, Duration::ZERO, 100).await.unwrap().repaired, 0);
}

/// What an older release's worker leaves (an outcome with no fan-in) is
/// found and released by the repair pass; and a plain task's outcome
/// statement stays the one it was (no fan-in for ids that are not nodes).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_repair_pass_releases_what_an_older_process_left_waiting(pool: PgPool) {
    let w = register(&pool).await;
    insert(&pool, &diamond("r1")).await;
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|r| key("r1", r));
    claim(&pool, std::slice::from_ref(&a), w).await;
    let o = ok();
    // The previous release's path: the outcome alone.
    tasks::record_outcomes(&pool, w, &[AttemptOutcomeRecord { task_id: &a, attempt: 1, outcome: &o, limited: false }])
        .await
        .unwrap();
    assert_eq!(status(&pool, &b).await, TaskStatus::Waiting);
    // Young nodes are left to the mechanism; old enough ones are repaired.
    assert_eq!(workflows::repair(&pool, Duration::from_secs(3600), 100).await.unwrap().repaired, 0);
    let repaired = workflows::repair(&pool, Duration::ZERO, 100).await.unwrap();
    assert_eq!(repaired.repaired, 2);
    let mut released: Vec<TaskKey> = repaired.released.into_iter().map(|u| u.id).collect();
    released.sort();
    assert_eq!(released, [b.clone(), c.clone()]);
    assert_eq!(status(&pool, &d).await, TaskStatus::Waiting);
    assert_eq!(workflows::repair(&pool, Duration::ZERO, 100).await.unwrap().repaired, 0);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_workflow_cancel_stops_what_has_not_run_and_requests_the_rest(pool: PgPool) {
    let w = register(&pool).await;
    insert(&pool, &diamond("c1")).await;
    claim(&pool, &[key("c1", "a")], w).await;
    let done = workflows::cancel(&pool, &"c1".into()).await.unwrap().unwrap();
    assert_eq!((done.cancelled, done.requested), (3, 1));
    assert!(tasks::get(&pool, &key("c1", "a")).await.unwrap().unwrap().task.cancel_requested_at.is_some());
    // The running node's worker aborts it: the workflow ends cancelled.
    finish(&pool, &[key("c1", "a")], w, &Outcome::Cancelled).await;
    let wf = workflows::get(&pool, &"c1".into()).await.unwrap().unwrap();
    assert_eq!(wf.status(), WorkflowStatus::Cancelled);
    assert!(workflows::cancel(&pool, &"nope".into()).await.unwrap().is_none());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn nodes_expire_with_their_workflow_never_before(pool: PgPool) {
    let w = register(&pool).await;
    insert(&pool, &workflow("x1", &[("a", &[], C), ("b", &["a"], C)])).await;
    claim(&pool, &[key("x1", "a")], w).await;
    finish(&pool, &[key("x1", "a")], w, &ok()).await;
    sqlx::query("UPDATE tasks SET finished_at = now() - interval '2 hours' WHERE id = $1")
        .bind(key("x1", "a").into_string())
        .execute(&pool)
        .await
        .unwrap();
    // The tasks cleaner never takes a node; the workflow cleaner waits for b.
    assert_eq!(tasks::delete_expired(&pool, Duration::from_secs(60), 100).await.unwrap(), 0);
    assert_eq!(workflows::delete_expired(&pool, Duration::from_secs(60), 100).await.unwrap(), 0);
    claim(&pool, &[key("x1", "b")], w).await;
    finish(&pool, &[key("x1", "b")], w, &ok()).await;
    sqlx::query("UPDATE tasks SET finished_at = now() - interval '2 hours'").execute(&pool).await.unwrap();
    assert_eq!(workflows::delete_expired(&pool, Duration::from_secs(60), 100).await.unwrap(), 1);
    assert!(tasks::get(&pool, &key("x1", "a")).await.unwrap().is_none());
    assert!(workflows::get(&pool, &"x1".into()).await.unwrap().is_none());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_same_workflow_again_is_existing_and_another_body_conflicts(pool: PgPool) {
    insert(&pool, &diamond("i1")).await;
    assert!(matches!(workflows::insert(&pool, &diamond("i1")).await.unwrap(), WorkflowInsert::Existing));
    let mut other = diamond("i1");
    other.request_hash = "different".into();
    assert!(matches!(workflows::insert(&pool, &other).await.unwrap(), WorkflowInsert::Conflict));
    // A workflow whose node id is taken by a task stored first: nothing stored.
    tasks::insert_each(&pool, &[new_task(&workflows::node_id("i2", "a"))]).await.unwrap();
    assert!(matches!(workflows::insert(&pool, &diamond("i2")).await.unwrap(), WorkflowInsert::Conflict));
    assert!(workflows::get(&pool, &"i2".into()).await.unwrap().is_none());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_gate_counts_alive_workers_of_an_older_release(pool: PgPool) {
    let old = register(&pool).await;
    assert_eq!(
        workflows::older_processes(&pool, Duration::from_secs(10), workflows::WORKFLOWS_LEVEL).await.unwrap(),
        1
    );
    workflows::report_level(&pool, old).await.unwrap();
    assert_eq!(
        workflows::older_processes(&pool, Duration::from_secs(10), workflows::WORKFLOWS_LEVEL).await.unwrap(),
        0
    );
    assert_eq!(workflows::older_processes(&pool, Duration::from_secs(10), workflows::LIMITS_LEVEL).await.unwrap(), 0);
    // A worker of the workflows release (level 1) passes workflows' gate, not limits'.
    sqlx::query("UPDATE workers SET feature_level = 1 WHERE id = $1").bind(old).execute(&pool).await.unwrap();
    assert_eq!(
        workflows::older_processes(&pool, Duration::from_secs(10), workflows::WORKFLOWS_LEVEL).await.unwrap(),
        0
    );
    assert_eq!(workflows::older_processes(&pool, Duration::from_secs(10), workflows::LIMITS_LEVEL).await.unwrap(), 1);
}
