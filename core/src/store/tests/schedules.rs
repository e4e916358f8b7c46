//! The schedules store: a fire is one conditional statement (stale
//! version, revision, pause or deletion: nothing happens), and a tick's task
//! is inserted once however often it is fired. Plus the leader's cost per
//! 1,000 schedules (ignored: a measurement, run by hand).

use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::PgPool;

use crate::maintenance::schedules::{execute, spec_of, state_of};
use crate::names::{ScheduleKey, TaskId, Tenant};
use crate::schedule::plan::{self, FireKind, Run};
use crate::store::schedules::{self, Created, Settings, Template};
use crate::store::unique::Unique;

fn settings(every: i64, next_tick: DateTime<Utc>) -> Settings {
    Settings {
        spec: serde_json::json!({"every": every}),
        timezone: "UTC".into(),
        jitter_seconds: 0.0,
        template: Template {
            name: "echo".into(),
            args: "[]".into(),
            kwargs: "{}".into(),
            queue: "default".into(),
            max_retries: 3,
            timeout_seconds: 300.0,
            retry_backoff_base: None,
            retry_backoff_cap: None,
            hash: "h".into(),
            unique: None,
        },
        overlap: "allow_all".into(),
        catchup_window_seconds: 60.0,
        start_at: None,
        end_at: None,
        max_runs: None,
        paused: false,
        next_tick: Some(next_tick),
    }
}

/// The default tenant's schedule `id`.
fn key(id: &str) -> ScheduleKey {
    ScheduleKey::new(&Tenant::default_tenant(), &TaskId::parse(id).unwrap())
}

async fn tasks_of(pool: &PgPool, key: &str) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM tasks WHERE id LIKE $1"#, format!("sched:{key}:%"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_fire_is_conditional_and_a_tick_is_inserted_once(pool: PgPool) {
    // Half a second past a tick.
    let tick = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let now = tick + Duration::milliseconds(500);
    let s1 = key("s1");
    let created = schedules::create(&pool, &s1, &Tenant::default_tenant(), &settings(1, tick), "r", 10).await.unwrap();
    assert!(matches!(created, Created::Created(_)));
    let row = schedules::get(&pool, &s1).await.unwrap().unwrap();
    let plan = plan::grid_pass(&spec_of(&row).unwrap(), &state_of(&row), now);
    assert_eq!(plan.runs.len(), 1);

    // An edit between the read and the fire: nothing happens.
    let edited = schedules::update(&pool, &row, &row.settings, false).await.unwrap().unwrap();
    assert_eq!(execute(&pool, &row, &plan, now).await.unwrap().map(|t| t.queued.len()), None);
    assert_eq!(tasks_of(&pool, "s1").await, 0);

    // Fired on the current version: one task; the same plan again is stale (revision).
    assert_eq!(execute(&pool, &edited, &plan, now).await.unwrap().map(|t| t.queued.len()), Some(1));
    assert_eq!(execute(&pool, &edited, &plan, now).await.unwrap().map(|t| t.queued.len()), None);
    // A second fire of the tick on a fresh read (another leader) inserts nothing.
    let fresh = schedules::get(&pool, &s1).await.unwrap().unwrap();
    let again = plan::manual(&state_of(&fresh), plan.runs.clone(), plan::Overlap::AllowAll);
    assert_eq!(execute(&pool, &fresh, &again, now).await.unwrap().map(|t| t.queued.len()), Some(0));
    assert_eq!(tasks_of(&pool, "s1").await, 1);

    // Paused or deleted: nothing.
    let fresh = schedules::get(&pool, &s1).await.unwrap().unwrap();
    let mut paused = fresh.settings.clone();
    paused.paused = true;
    let paused = schedules::update(&pool, &fresh, &paused, false).await.unwrap().unwrap();
    let run = Run { suffix: "t1-abcdef12".into(), scheduled_for: now, kind: FireKind::Trigger };
    let trigger = plan::manual(&state_of(&paused), vec![run], plan::Overlap::AllowAll);
    assert_eq!(execute(&pool, &paused, &trigger, now).await.unwrap().map(|t| t.queued.len()), None);
    assert!(schedules::delete(&pool, &s1).await.unwrap());
    assert_eq!(execute(&pool, &paused, &trigger, now).await.unwrap().map(|t| t.queued.len()), None);
    assert_eq!(tasks_of(&pool, "s1").await, 1);
}

/// The leader's cost per 1,000 schedules: one pass when none is due (the
/// steady state between ticks) and one pass when all 1,000 are due at once
/// (every per-minute schedule at :00). Run by hand:
/// `cargo test -p yadtq-core --lib schedule_pass_cost -- --ignored --nocapture`.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_run_whose_unique_key_is_held_fires_nothing_and_is_recorded_as_skipped(pool: PgPool) {
    let now = Utc::now();
    let s = key("su");
    let mut with_unique = settings(3600, now + Duration::hours(1));
    with_unique.template.unique = Some(Unique { key: "one".into(), for_seconds: None, also_while: vec![] });
    schedules::create(&pool, &s, &Tenant::default_tenant(), &with_unique, "r", 10).await.unwrap();
    let trigger = |suffix: &str| Run { suffix: suffix.into(), scheduled_for: now, kind: FireKind::Trigger };
    let fire = |suffix: &'static str| {
        let pool = pool.clone();
        let s = s.clone();
        async move {
            let row = schedules::get(&pool, &s).await.unwrap().unwrap();
            let plan = plan::manual(&state_of(&row), vec![trigger(suffix)], plan::Overlap::AllowAll);
            execute(&pool, &row, &plan, now).await.unwrap().expect("the schedule did not change")
        }
    };

    let first = fire("t1-aaaaaaaa").await;
    assert_eq!((first.queued.len(), first.refused.len()), (1, 0));
    // The first task is queued, so it holds the key: the next run inserts nothing.
    let second = fire("t2-bbbbbbbb").await;
    assert_eq!(second.queued.len(), 0);
    assert_eq!(second.refused, vec![s.task_key("t2-bbbbbbbb")]);
    assert_eq!(tasks_of(&pool, "su").await, 1);
    let fires = schedules::fires(&pool, &s, 10).await.unwrap();
    let last = fires.iter().max_by_key(|f| f.seq).unwrap();
    assert_eq!((last.outcome.as_str(), last.reason.as_deref(), last.task.as_ref()), ("skipped", Some("unique"), None));
    let (runs, skipped, last_task) =
        sqlx::query!("SELECT runs, skipped, last_task FROM schedules WHERE key = $1", s.as_str())
            .fetch_one(&pool)
            .await
            .map(|r| (r.runs, r.skipped, r.last_task))
            .unwrap();
    assert_eq!((runs, skipped), (1, 1), "a refused run counts as skipped, not as a run");
    assert_eq!(last_task.as_deref(), Some(s.task_key("t1-aaaaaaaa").as_str()), "the holder stays the last task");

    // Once the holder ends, the next run fires.
    crate::store::tasks::cancel(&pool, &s.task_key("t1-aaaaaaaa")).await.unwrap();
    let third = fire("t3-cccccccc").await;
    assert_eq!((third.queued.len(), third.refused.len()), (1, 0));
    assert_eq!(tasks_of(&pool, "su").await, 2);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
#[ignore = "a measurement, not a check"]
async fn schedule_pass_cost(pool: PgPool) {
    // Hourly schedules whose last hour's tick is due (inside a day's catch-up window).
    let now = Utc::now().timestamp();
    let due = Utc.timestamp_opt(now - now % 3600, 0).unwrap();
    for i in 0..1000 {
        let mut s = settings(3600, due + Duration::seconds(3600));
        s.catchup_window_seconds = 86_400.0;
        schedules::create(&pool, &key(&format!("s{i}")), &Tenant::default_tenant(), &s, "r", 10_000).await.unwrap();
    }
    let mut idle = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (_, rows) = schedules::due(&pool, 500).await.unwrap();
        assert!(rows.is_empty());
        idle.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    idle.sort_by(f64::total_cmp);
    sqlx::query!("UPDATE schedules SET next_tick = $1", due).execute(&pool).await.unwrap();
    let t = Instant::now();
    let mut fired = 0;
    loop {
        let (now, rows) = schedules::due(&pool, 500).await.unwrap();
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let plan = plan::grid_pass(&spec_of(&row).unwrap(), &state_of(&row), now);
            fired += execute(&pool, &row, &plan, now).await.unwrap().map_or(0, |t| t.queued.len());
        }
    }
    let busy = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(fired, 1000, "one task per schedule");
    println!(
        "1,000 schedules: a pass with none due {:.2} ms (median of 20), with all due {busy:.0} ms ({:.2} ms per schedule fired, one statement each)",
        idle[10],
        busy / 1000.0
    );
}
