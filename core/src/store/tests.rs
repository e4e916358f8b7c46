//! The store on a real PostgreSQL (`#[sqlx::test]`: a fresh database per
//! test, migrated with [`super::MIGRATOR`], from `DATABASE_URL`, which
//! scripts/test.sh exports). Every transition of the state machine is applied
//! to a task in every status: it changes exactly the statuses the table in
//! `tasks.rs` lists, and every fenced write is refused for the wrong worker,
//! the wrong attempt and the wrong status. The other modules' tests are in
//! `tests/`, one file per store module, using the helpers here.

mod audit;
mod keys;
mod leader;
mod limits;
mod overview;
mod queues;
mod schedules;
mod stats;
mod tenants;
mod unique;
mod unknown_status;
mod workflows;

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::attempts::{self, AttemptSignal, RunningAttempt};
use super::tasks::{
    self, AttemptOutcomeRecord, NewTask, Outcome, Recorded, Refused, Resent, Sent, Transition, Unpublished,
};
use super::workers::{self, Beat, Partitions, WorkerCounts, WorkerInfo};
use crate::model::{Progress, TaskError, TaskStatus, WorkerState};
use crate::names::{QueueName, TaskId, TaskKey, TaskName, Tenant};

const ALL_STATUSES: [TaskStatus; 7] = [
    TaskStatus::Waiting,
    TaskStatus::Queued,
    TaskStatus::Scheduled,
    TaskStatus::Processing,
    TaskStatus::Success,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
];

/// The stored key `id` (a default-tenant task's key is its id).
pub(super) fn key(id: &str) -> TaskKey {
    TaskKey::from_stored(id.to_string())
}

fn new_task(id: &str) -> NewTask {
    NewTask {
        trace: None,
        unique: None,
        id: TaskId::parse(id).unwrap(),
        tenant: Tenant::default_tenant(),
        name: TaskName::parse("echo", 64).unwrap(),
        args: "[1]".into(),
        kwargs: "{}".into(),
        queue: QueueName::parse("default").unwrap(),
        max_retries: 3,
        timeout_seconds: 30.0,
        run_at: None,
        retry_backoff: Default::default(),
        request_hash: format!("hash-{id}"),
    }
}

async fn register(pool: &PgPool) -> Uuid {
    let id = Uuid::new_v4();
    let info = WorkerInfo { id, hostname: "test", pid: 1, queues: &[], task_names: &[], concurrency: 1, tenants: None };
    workers::register(pool, &info).await.unwrap();
    id
}

/// Inserts task `id` and puts it in `status` as attempt 1 of `worker`, due,
/// finished an hour ago and unpublished: every transition's other
/// preconditions hold (with [`prepare`] for those that need a published
/// row), so only the status decides.
async fn task_in(pool: &PgPool, id: &str, status: &TaskStatus, worker: Uuid) {
    tasks::insert_each(pool, &[new_task(id)]).await.unwrap();
    sqlx::query(
        "UPDATE tasks SET status = $2, worker_id = $3, attempts = 1, run_at = now() - interval '1 second',
             finished_at = now() - interval '1 hour', published_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(worker)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO task_attempts (task_id, attempt, worker_id) VALUES ($1, 1, $2)")
        .bind(id)
        .bind(worker)
        .execute(pool)
        .await
        .unwrap();
}

/// Sets up what `t` needs besides the status, whatever the status: a
/// published row for a send-back or a re-route, and for the re-route a
/// change of the task's tenant's route that has settled and is not acted on.
async fn prepare(pool: &PgPool, t: Transition, id: &str) {
    if !matches!(t, Transition::SendBack | Transition::Reroute) {
        return;
    }
    sqlx::query("UPDATE tasks SET published_at = now() - interval '1 hour' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    if t == Transition::Reroute {
        sqlx::query(
            "INSERT INTO dedicated_tenants (tenant, dedicated, changed_at) VALUES ($1, true, now() - interval '1 hour')
             ON CONFLICT (tenant) DO UPDATE SET changed_at = EXCLUDED.changed_at, rerouted_at = NULL",
        )
        .bind(crate::auth::DEFAULT_TENANT)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// The whole row as JSON (`None` once deleted), to compare before and after.
async fn row(pool: &PgPool, id: &str) -> Option<serde_json::Value> {
    sqlx::query_scalar("SELECT to_jsonb(t) FROM tasks t WHERE id = $1").bind(id).fetch_optional(pool).await.unwrap()
}

/// Applies `t` to task `id`, as attempt 1 of `worker` where it takes one.
async fn apply(pool: &PgPool, t: Transition, id: &str, worker: Uuid) {
    match t {
        Transition::Promote => drop(tasks::promote_due(pool, 100).await.unwrap()),
        Transition::Claim => drop(tasks::claim(pool, &[key(id)], worker).await.unwrap()),
        Transition::RecordOutcome => {
            let success = Outcome::Success("1".into());
            let id = key(id);
            let o = AttemptOutcomeRecord { task_id: &id, attempt: 1, outcome: &success, limited: false };
            tasks::record_outcomes(pool, worker, &[o]).await.unwrap();
        }
        Transition::Rescue => drop(tasks::rescue(pool, Duration::from_secs(60)).await.unwrap()),
        Transition::Cancel => drop(tasks::cancel(pool, &key(id)).await.unwrap()),
        Transition::Retry => drop(tasks::retry(pool, &key(id)).await.unwrap()),
        Transition::RefuseRecord => {
            let r = Refused { id: key(id), attempts: 1, error: TaskError::new("record_too_large", "test") };
            tasks::fail_unsendable(pool, &[r]).await.unwrap();
        }
        Transition::Expire => drop(tasks::delete_expired(pool, Duration::from_secs(1), 100).await.unwrap()),
        Transition::SendBack => drop(tasks::resend(pool, &key(id)).await.unwrap()),
        Transition::Reroute => drop(tasks::reroute_changed(pool, Duration::from_secs(60)).await.unwrap()),
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn each_transition_changes_exactly_the_statuses_it_moves_from(pool: PgPool) {
    // The worker has stopped, so the rescuer may take its tasks; its id still
    // fences the outcome write as the owner's.
    let worker = register(&pool).await;
    workers::mark_stopped(&pool, worker, WorkerCounts::default()).await.unwrap();
    for t in Transition::ALL {
        for status in ALL_STATUSES {
            let id = format!("{t:?}-{}", status.as_str());
            task_in(&pool, &id, &status, worker).await;
            prepare(&pool, t, &id).await;
            let before = row(&pool, &id).await;
            apply(&pool, t, &id, worker).await;
            let after = row(&pool, &id).await;
            if t.from().contains(&status) {
                assert_ne!(before, after, "{t:?} left a {} task unchanged", status.as_str());
            } else {
                assert_eq!(before, after, "{t:?} changed a {} task", status.as_str());
            }
        }
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn outcomes_and_progress_are_fenced_by_worker_and_attempt(pool: PgPool) {
    let (owner, other) = (register(&pool).await, register(&pool).await);
    tasks::insert_each(&pool, &[new_task("t")]).await.unwrap();
    let claimed = tasks::claim(&pool, &[key("t")], owner).await.unwrap();
    assert_eq!(claimed[0].as_claimed().map(|c| c.attempt), Some(1));
    // A second claim of the same record finds it taken.
    assert!(tasks::claim(&pool, &[key("t")], other).await.unwrap()[0].as_claimed().is_none());

    let progress = Progress { percent: 50.0, message: "half".into() };
    assert_eq!(tasks::set_progress(&pool, &key("t"), other, 1, &progress).await.unwrap(), Recorded::Fenced);
    assert_eq!(tasks::set_progress(&pool, &key("t"), owner, 2, &progress).await.unwrap(), Recorded::Fenced);
    assert_eq!(tasks::set_progress(&pool, &key("t"), owner, 1, &progress).await.unwrap(), Recorded::Written);

    let success = Outcome::Success("42".into());
    let t = key("t");
    let record = |attempt| AttemptOutcomeRecord { task_id: &t, attempt, outcome: &success, limited: false };
    assert_eq!(tasks::record_outcomes(&pool, other, &[record(1)]).await.unwrap(), [Recorded::Fenced]);
    assert_eq!(tasks::record_outcomes(&pool, owner, &[record(2)]).await.unwrap(), [Recorded::Fenced]);
    assert_eq!(tasks::get(&pool, &key("t")).await.unwrap().unwrap().task.status, TaskStatus::Processing);
    assert_eq!(tasks::record_outcomes(&pool, owner, &[record(1)]).await.unwrap(), [Recorded::Written]);
    // The same outcome again: the task is no longer processing.
    assert_eq!(tasks::record_outcomes(&pool, owner, &[record(1)]).await.unwrap(), [Recorded::Fenced]);
    assert_eq!(tasks::set_progress(&pool, &key("t"), owner, 1, &progress).await.unwrap(), Recorded::Fenced);

    let task = tasks::get(&pool, &key("t")).await.unwrap().unwrap().task;
    assert_eq!((task.status, task.result.map(|r| r.get().to_string())), (TaskStatus::Success, Some("42".into())));
    let history = attempts::list(&pool, &key("t")).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, Some(crate::model::AttemptOutcome::Success));
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn publish_marks_and_refusals_apply_only_at_the_records_attempt(pool: PgPool) {
    tasks::insert_each(&pool, &[new_task("a"), new_task("b")]).await.unwrap();
    let sent = |id: &str, attempts| Sent { id: key(id), attempts };
    // A record of another attempt count marks nothing; the right one marks once.
    assert_eq!(tasks::mark_published(&pool, &[sent("a", 1)]).await.unwrap(), 0);
    assert_eq!(tasks::mark_published(&pool, &[sent("a", 0)]).await.unwrap(), 1);
    assert_eq!(tasks::mark_published(&pool, &[sent("a", 0)]).await.unwrap(), 0);
    // Unpublished rows past the grace: only b.
    let due = tasks::fetch_unpublished(&pool, Duration::ZERO, 10).await.unwrap();
    assert_eq!(due.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["b"]);

    let refused =
        |id: &str, attempts| Refused { id: key(id), attempts, error: TaskError::new("record_too_large", "x") };
    // A published row (a) or another attempt count (b at 1) is not failed.
    assert!(tasks::fail_unsendable(&pool, &[refused("a", 0), refused("b", 1)]).await.unwrap().is_empty());
    assert_eq!(tasks::fail_unsendable(&pool, &[refused("b", 0)]).await.unwrap(), ["b"]);
    // A task failed because Kafka can never take its record cannot be retried.
    assert!(matches!(tasks::retry(&pool, &key("b")).await.unwrap(), tasks::RetryResult::NotRetryable(_)));
    assert!(matches!(tasks::retry(&pool, &key("nope")).await.unwrap(), tasks::RetryResult::NotFound));
}

/// Whether task `id` is marked published.
async fn published(pool: &PgPool, id: &str) -> bool {
    sqlx::query_scalar("SELECT published_at IS NOT NULL FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_send_back_unpublishes_only_a_published_queued_task(pool: PgPool) {
    let worker = register(&pool).await;
    tasks::insert_each(&pool, &[new_task("q"), new_task("p")]).await.unwrap();
    // Not published yet: the publisher sends it anyway, nothing to clear.
    assert_eq!(tasks::resend(&pool, &key("q")).await.unwrap(), Resent::Unchanged);
    let sent = |id: &str| Sent { id: key(id), attempts: 0 };
    assert_eq!(tasks::mark_published(&pool, &[sent("q"), sent("p")]).await.unwrap(), 2);

    assert_eq!(tasks::resend(&pool, &key("q")).await.unwrap(), Resent::Unpublished);
    assert!(!published(&pool, "q").await);
    let due = tasks::fetch_unpublished(&pool, Duration::ZERO, 10).await.unwrap();
    assert_eq!(due.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["q"]);
    // A second record of the same task finds it unpublished already.
    assert_eq!(tasks::resend(&pool, &key("q")).await.unwrap(), Resent::Unchanged);

    // Claimed through another record: the running task is left alone.
    tasks::claim(&pool, &[key("p")], worker).await.unwrap();
    let before = row(&pool, "p").await;
    assert_eq!(tasks::resend(&pool, &key("p")).await.unwrap(), Resent::Unchanged);
    assert_eq!(row(&pool, "p").await, before);
    assert_eq!(tasks::resend(&pool, &key("nope")).await.unwrap(), Resent::Unchanged);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_reroute_unpublishes_a_changed_tenants_queued_tasks_once_settled(pool: PgPool) {
    let worker = register(&pool).await;
    let of = |id: &str, tenant: &str| NewTask { tenant: Tenant::parse(tenant).unwrap(), ..new_task(id) };
    // Stored under their tenants' keys (`acme/a1`, ...), as the gateway stores them.
    let all = [of("a1", "acme"), of("a2", "acme"), of("o1", "other")];
    tasks::insert_each(&pool, &all).await.unwrap();
    let sent: Vec<Sent> = all.iter().map(|t| Sent { id: t.key(), attempts: 0 }).collect();
    assert_eq!(tasks::mark_published(&pool, &sent).await.unwrap(), 3);
    tasks::claim(&pool, &[key("acme/a2")], worker).await.unwrap();
    assert!(!super::tenants::declare(&pool, &["acme".to_string()], "test").await.unwrap().is_empty());

    let settle = Duration::from_secs(600);
    // Changed just now: processes may still route by the old list.
    assert_eq!(tasks::reroute_changed(&pool, settle).await.unwrap(), 0);
    assert!(published(&pool, "acme/a1").await);

    sqlx::query("UPDATE dedicated_tenants SET changed_at = now() - interval '1 hour'").execute(&pool).await.unwrap();
    let running = row(&pool, "acme/a2").await;
    // Only the changed tenant's queued task; the running one and another
    // tenant's are left alone.
    assert_eq!(tasks::reroute_changed(&pool, settle).await.unwrap(), 1);
    assert!(!published(&pool, "acme/a1").await);
    assert!(published(&pool, "other/o1").await);
    assert_eq!(row(&pool, "acme/a2").await, running);

    // Once per change: sent and marked again, the task stays published.
    assert_eq!(tasks::mark_published(&pool, &sent[..1]).await.unwrap(), 1);
    assert_eq!(tasks::reroute_changed(&pool, settle).await.unwrap(), 0);
    assert!(published(&pool, "acme/a1").await);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_batch_with_a_conflicting_id_stores_nothing(pool: PgPool) {
    tasks::insert_each(&pool, &[new_task("x")]).await.unwrap();
    let mut changed = new_task("x");
    changed.args = "[2]".into();
    changed.request_hash = "hash-of-another-body".into();
    match tasks::insert_batch(&pool, &[new_task("y"), changed]).await.unwrap() {
        tasks::BatchInsert::Conflict(id) => assert_eq!(id, "x"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(tasks::get(&pool, &key("y")).await.unwrap().is_none());
    // The same request again is an idempotent repeat.
    match tasks::insert_batch(&pool, &[new_task("x")]).await.unwrap() {
        tasks::BatchInsert::Done(v) => assert!(matches!(v[..], [tasks::Inserted::Existing(_)])),
        other => panic!("expected the existing task, got {other:?}"),
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn attempt_signals_tell_cancel_requests_from_takeovers(pool: PgPool) {
    let (owner, rescuer_side) = (register(&pool).await, register(&pool).await);
    tasks::insert_each(&pool, &[new_task("c"), new_task("k"), new_task("m")]).await.unwrap();
    let ids: Vec<TaskKey> = ["c", "k", "m"].map(key).to_vec();
    tasks::claim(&pool, &ids, owner).await.unwrap();
    assert!(matches!(tasks::cancel(&pool, &key("c")).await.unwrap(), tasks::CancelResult::Requested(_)));
    // "k" now belongs to another worker's attempt 2.
    sqlx::query("UPDATE tasks SET worker_id = $1, attempts = 2 WHERE id = 'k'")
        .bind(rescuer_side)
        .execute(&pool)
        .await
        .unwrap();
    let running: Vec<RunningAttempt> =
        ids.iter().map(|id| RunningAttempt { task_id: id.to_string(), attempt: 1 }).collect();
    let mut signals = attempts::signals(&pool, owner, &running).await.unwrap();
    signals.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        signals,
        [
            AttemptSignal::CancelRequested(RunningAttempt { task_id: "c".into(), attempt: 1 }),
            AttemptSignal::TakenOver(RunningAttempt { task_id: "k".into(), attempt: 1 }),
        ]
    );
}

/// Puts task `id` (already inserted) in `processing` as attempt `attempt`
/// of `worker`, with that attempt's row open.
async fn running(pool: &PgPool, id: &str, worker: Uuid, attempt: i32) {
    sqlx::query("UPDATE tasks SET status = 'processing', worker_id = $2, attempts = $3 WHERE id = $1")
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO task_attempts (task_id, attempt, worker_id) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(attempt)
        .bind(worker)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn rescue_takes_only_the_dead_owners_current_attempt(pool: PgPool) {
    let (live, silent, stopped) = (register(&pool).await, register(&pool).await, register(&pool).await);
    sqlx::query("UPDATE workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1")
        .bind(silent)
        .execute(&pool)
        .await
        .unwrap();
    workers::mark_stopped(&pool, stopped, WorkerCounts::default()).await.unwrap();
    let ids = ["alive", "silent", "stopped", "last", "moved-on"];
    tasks::insert_each(&pool, &ids.map(new_task)).await.unwrap();
    running(&pool, "alive", live, 1).await;
    running(&pool, "silent", silent, 1).await;
    running(&pool, "stopped", stopped, 2).await;
    // The retry budget (3) is spent: attempt 4 was the last.
    running(&pool, "last", stopped, 4).await;
    // The silent worker's attempt 1 was taken over: attempt 2 is the live
    // worker's now, and the silent one's row was never closed.
    running(&pool, "moved-on", silent, 1).await;
    running(&pool, "moved-on", live, 2).await;
    sqlx::query("UPDATE tasks SET worker_id = $1 WHERE id = 'moved-on'").bind(live).execute(&pool).await.unwrap();

    let (alive, moved_on) = (row(&pool, "alive").await, row(&pool, "moved-on").await);
    let rescued = tasks::rescue(&pool, Duration::from_secs(60)).await.unwrap();
    let mut requeued: Vec<_> = rescued.requeued.iter().map(|u| (u.id.as_str(), u.attempts)).collect();
    requeued.sort();
    assert_eq!(requeued, [("silent", 1), ("stopped", 2)]);
    assert_eq!(rescued.failed, 1);

    // A live worker's task is not touched, whatever its earlier attempts.
    assert_eq!(row(&pool, "alive").await, alive);
    assert_eq!(row(&pool, "moved-on").await, moved_on);
    let history = attempts::list(&pool, &key("moved-on")).await.unwrap();
    assert!(history.iter().all(|a| a.finished_at.is_none()), "{history:?}");

    let (silent, stopped, last) = (key("silent"), key("stopped"), key("last"));
    let get = |id: &'static str| {
        tasks::get(&pool, [&silent, &stopped, &last].into_iter().find(|k| k.as_str() == id).expect("a key"))
    };
    assert_eq!(get("silent").await.unwrap().unwrap().task.status, TaskStatus::Queued);
    assert_eq!(get("stopped").await.unwrap().unwrap().task.status, TaskStatus::Queued);
    let last = get("last").await.unwrap().unwrap().task;
    assert_eq!((last.status, last.error.map(|e| e.kind)), (TaskStatus::Failed, Some("worker_lost".to_string())));
    // Only the rescued attempt's row is closed, as lost.
    for (id, attempt) in [("silent", 1), ("stopped", 2), ("last", 4)] {
        let history = attempts::list(&pool, &key(id)).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].attempt, attempt);
        assert_eq!(history[0].outcome, Some(crate::model::AttemptOutcome::WorkerLost));
    }
    // Nothing is left to take.
    let again = tasks::rescue(&pool, Duration::from_secs(60)).await.unwrap();
    assert!(again.requeued.is_empty() && again.failed == 0);
}

/// One pass promotes at most `limit` tasks, the longest due first (a
/// subquery's `LIMIT` under `IN` was re-run per row and promoted them all).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn promote_takes_at_most_its_limit_oldest_first(pool: PgPool) {
    let now = chrono::Utc::now();
    let at = |id: &str, secs: i64| NewTask { run_at: Some(now + chrono::Duration::seconds(secs)), ..new_task(id) };
    tasks::insert_each(&pool, &[at("due", -10), at("overdue", -60), at("due-too", -30)]).await.unwrap();
    let ids = |v: Vec<Unpublished>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(tasks::promote_due(&pool, 1).await.unwrap()), ["overdue"]);
    assert_eq!(ids(tasks::promote_due(&pool, 1).await.unwrap()), ["due-too"]);
    assert_eq!(ids(tasks::promote_due(&pool, 1).await.unwrap()), ["due"]);
    assert!(tasks::promote_due(&pool, 1).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn promote_moves_only_due_tasks(pool: PgPool) {
    let now = chrono::Utc::now();
    let at = |id: &str, secs: i64| NewTask { run_at: Some(now + chrono::Duration::seconds(secs)), ..new_task(id) };
    tasks::insert_each(&pool, &[at("later", 3600), at("due", -10), at("overdue", -60)]).await.unwrap();
    let later = row(&pool, "later").await;

    let mut promoted: Vec<String> =
        tasks::promote_due(&pool, 10).await.unwrap().into_iter().map(|u| u.id.into_string()).collect();
    promoted.sort();
    assert_eq!(promoted, ["due", "overdue"]);
    assert!(tasks::promote_due(&pool, 10).await.unwrap().is_empty());

    assert_eq!(row(&pool, "later").await, later);
    for id in ["due", "overdue"] {
        assert_eq!(tasks::get(&pool, &key(id)).await.unwrap().unwrap().task.status, TaskStatus::Queued);
        assert!(!published(&pool, id).await);
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn heartbeats_report_the_gap_and_listing_derives_dead_and_stopped(pool: PgPool) {
    assert_eq!(
        workers::heartbeat(&pool, Uuid::new_v4(), WorkerCounts::default(), &Partitions::new(), WorkerState::Ready)
            .await
            .unwrap(),
        Beat::NoRow
    );
    let (live, stopped) = (register(&pool).await, register(&pool).await);
    let partitions = Partitions::from([("yadtq.tasks".to_string(), vec![0, 3])]);
    let beat = workers::heartbeat(&pool, live, WorkerCounts::default(), &partitions, WorkerState::Ready).await;
    assert!(matches!(beat.unwrap(), Beat::Written { since_previous } if since_previous < Duration::from_secs(60)));
    workers::mark_stopped(&pool, stopped, WorkerCounts::default()).await.unwrap();

    let listed = workers::list(&pool, Duration::from_secs(60), None, 50, None).await.unwrap().workers;
    let state = |id| listed.iter().find(|w| w.id == id).map(|w| (w.state, w.ready, w.partitions.clone()));
    assert_eq!(state(live), Some((WorkerState::Ready, true, partitions)));
    assert_eq!(state(stopped), Some((WorkerState::Stopped, false, Partitions::new())));
    // With a threshold of zero, the live one is dead too and owns nothing.
    let dead = workers::list(&pool, Duration::ZERO, Some(false), 50, None).await.unwrap().workers;
    assert!(dead.iter().any(|w| w.id == live && w.state == WorkerState::Dead && w.partitions.is_empty()));
}

/// The upgrade rule (docs/deployment.md, "Upgrades"): a process of this
/// release restarting after a newer one migrated still starts.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_migrator_accepts_versions_a_newer_release_applied(pool: PgPool) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    super::MIGRATOR.run(&pool).await.expect("an unknown, newer version must not stop this release");
}

/// The upgrade rule: migrations are additive, so the previous release's
/// statements still hold on the new schema during a rolling deploy.
#[test]
fn migrations_are_additive() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 7, "migrations not found in {dir}");
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        // Statements without their comments, upper-cased, whitespace folded.
        let code: String = sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
        let code = code.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase();
        for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let name = file.file_name().unwrap().to_string_lossy();
            for forbidden in ["DROP COLUMN", "DROP TABLE", "RENAME ", " TYPE ", "SET NOT NULL"] {
                assert!(!statement.contains(forbidden), "{name}: `{forbidden}` is not additive: {statement}");
            }
            if statement.contains("ADD COLUMN") && statement.contains("NOT NULL") {
                assert!(statement.contains("DEFAULT"), "{name}: a NOT NULL column needs a DEFAULT: {statement}");
            }
        }
    }
}

/// The cleaner's passes delete at most their batch, of tasks and of workers
/// (the same `IN (subquery LIMIT)` shape that let the scheduler take more).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn cleaner_passes_delete_at_most_their_batch(pool: PgPool) {
    let worker = register(&pool).await;
    for id in ["old-1", "old-2", "old-3"] {
        task_in(&pool, id, &TaskStatus::Success, worker).await;
    }
    for _ in 0..3 {
        assert_eq!(tasks::delete_expired(&pool, Duration::from_secs(1), 1).await.unwrap(), 1);
    }
    assert_eq!(tasks::delete_expired(&pool, Duration::from_secs(1), 1).await.unwrap(), 0);

    for _ in 0..3 {
        let w = register(&pool).await;
        sqlx::query(
            "UPDATE workers SET stopped_at = now(), last_heartbeat_at = now() - interval '1 hour' WHERE id = $1",
        )
        .bind(w)
        .execute(&pool)
        .await
        .unwrap();
    }
    let prune = || workers::delete_expired(&pool, Duration::from_secs(1), Duration::from_secs(10), 1);
    for _ in 0..3 {
        assert_eq!(prune().await.unwrap(), 1);
    }
    assert_eq!(prune().await.unwrap(), 0, "the live worker stays");
}
