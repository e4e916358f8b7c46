//! Schedules end to end (docs/schedules.md): one task per tick across
//! gateways, workers and a leader kill; catch-up after every process
//! stopped; each overlap policy; pause, resume, edit and delete; the API's
//! problems. Real binaries, a real broker and PostgreSQL; short timings.

use std::time::Duration;

use serde_json::{json, Value};
use yadtq_tests::{wait_for, Client, Stack};

const LONG: Duration = Duration::from_secs(120);

/// A schedule's fired tasks from the rows: (tick, created_at, finished_at,
/// status, id), in tick order. Trigger runs (`t...` suffixes) are left out.
async fn fired(stack: &Stack, schedule: &str) -> Vec<(i64, f64, Option<f64>, String, String)> {
    let rows: Vec<(String, f64, Option<f64>, String)> = sqlx::query_as(
        "SELECT id, extract(epoch FROM created_at)::float8, extract(epoch FROM finished_at)::float8, status
         FROM tasks WHERE id LIKE $1",
    )
    .bind(format!("sched:{schedule}:%"))
    .fetch_all(&stack.db)
    .await
    .expect("fired tasks");
    let mut out: Vec<_> = rows
        .into_iter()
        .filter_map(|(id, created, finished, status)| {
            let tick: i64 = id.rsplit(':').next()?.parse().ok()?;
            Some((tick, created, finished, status, id))
        })
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

async fn create(gw: &Client, body: Value) -> Value {
    let a = gw.post_raw("/schedules", body.to_string(), &[]).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

async fn patch(gw: &Client, id: &str, body: Value) -> Value {
    let a = gw
        .send(
            reqwest::Method::PATCH,
            &format!("/schedules/{id}"),
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

/// Waits until schedule `id` has fired at least `n` tasks.
async fn wait_fired(stack: &Stack, id: &str, n: usize) {
    wait_for(LONG, &format!("schedule {id} to fire {n} tasks"), || async move { fired(stack, id).await.len() >= n })
        .await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn lateness(rows: &[(i64, f64, Option<f64>, String, String)]) -> (f64, f64, f64) {
    let mut late: Vec<f64> = rows.iter().map(|r| r.1 - r.0 as f64).collect();
    late.sort_by(f64::total_cmp);
    (percentile(&late, 0.5), percentile(&late, 0.99), *late.last().unwrap_or(&0.0))
}

/// Ticks missing between the first and the last fired tick.
fn gaps(rows: &[(i64, f64, Option<f64>, String, String)]) -> Vec<i64> {
    rows.windows(2).flat_map(|w| (w[0].0 + 1)..w[1].0).collect()
}

#[tokio::test]
async fn a_per_second_schedule_fires_each_tick_once_across_gateways_workers_and_a_leader_kill() {
    let stack = Stack::new("sched_failover").await;
    let mut gw1 = stack.gateway(&[]).await;
    gw1.proc.wait_log("became maintenance leader", LONG).await;
    let gw2 = stack.gateway(&[]).await;
    let w1 = stack.worker("w1", &[]).await;
    let w2 = stack.worker("w2", &[]).await;
    stack.wait_assigned(&w1).await;
    stack.wait_assigned(&w2).await;

    create(
        &gw2,
        json!({"id": "beat", "spec": {"every": 1}, "overlap": "allow_all", "task": {"task": "echo", "args": ["tick"]}}),
    )
    .await;
    wait_fired(&stack, "beat", 1).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let killed_at = now_secs();
    gw1.proc.kill9();
    tokio::time::sleep(Duration::from_secs(15)).await;
    patch(&gw2, "beat", json!({"paused": true})).await;

    let rows = fired(&stack, "beat").await;
    let ids: Vec<String> = rows.iter().map(|r| r.4.clone()).collect();
    stack.wait_terminal(&ids, LONG).await;
    assert!(gaps(&rows).is_empty(), "ticks with no task: {:?}", gaps(&rows));
    let span = rows.last().unwrap().0 - rows[0].0;
    assert!(span >= 28, "30 s of ticks, got {span} s");
    assert_eq!(rows.len() as i64, span + 1, "one task per tick");
    stack.assert_ran_once(&ids, "per-second schedule across a leader kill").await;
    assert_eq!(stack.count_status(&ids, "success").await, ids.len() as i64);

    let before: Vec<_> = rows.iter().filter(|r| (r.0 as f64) < killed_at - 1.0).cloned().collect();
    let around: Vec<_> = rows.iter().filter(|r| (r.0 as f64) >= killed_at - 1.0).cloned().collect();
    let (p50, p99, max) = lateness(&before);
    println!("tick lateness (created_at - tick) without a leader kill: p50 {p50:.3} s, p99 {p99:.3} s, max {max:.3} s ({} ticks)", before.len());
    let (p50, p99, max) = lateness(&around);
    println!(
        "tick lateness from the leader kill on: p50 {p50:.3} s, p99 {p99:.3} s, max {max:.3} s ({} ticks)",
        around.len()
    );
    let (p50, p99, max) = lateness(&rows);
    println!("tick lateness over the whole run: p50 {p50:.3} s, p99 {p99:.3} s, max {max:.3} s ({} ticks)", rows.len());
}

#[tokio::test]
async fn after_every_process_stopped_only_ticks_inside_the_catchup_window_run() {
    let stack = Stack::new("sched_catchup").await;
    let mut gw = stack.gateway(&[]).await;
    let mut w = stack.worker("w", &[]).await;
    stack.wait_assigned(&w).await;
    for (id, overlap) in [("all", "allow_all"), ("newest", "skip")] {
        create(
            &gw,
            json!({"id": id, "spec": {"every": 1}, "overlap": overlap, "catchup_window": 6, "task": {"task": "echo"}}),
        )
        .await;
    }
    wait_fired(&stack, "all", 3).await;
    wait_fired(&stack, "newest", 3).await;
    // Stop everything mid-second, when the last ticks' tasks have finished
    // (a task left `processing` would hold the `skip` schedule back).
    wait_for(LONG, "a moment with no schedule task running", || async {
        let frac = now_secs().fract();
        let mut open = 0;
        for id in ["all", "newest"] {
            open += fired(&stack, id).await.iter().filter(|r| r.3 != "success").count();
        }
        open == 0 && (0.4..0.7).contains(&frac)
    })
    .await;
    gw.proc.kill9();
    w.kill9();
    let stopped_at = now_secs();
    let before = (fired(&stack, "all").await, fired(&stack, "newest").await);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("w-again", &[]).await;
    wait_for(LONG, "ticks after the restart", || async {
        fired(&stack, "all").await.len() > before.0.len() + 8
            && fired(&stack, "newest").await.len() > before.1.len() + 2
    })
    .await;
    for id in ["all", "newest"] {
        patch(&gw, id, json!({"paused": true})).await;
    }

    // allow_all: one gap (the ticks older than the window, counted as
    // skipped), then the window's ticks all in the first pass.
    let all = fired(&stack, "all").await;
    let missing = gaps(&all);
    // At least 12 ticks fell in the downtime, at most 7 of them in the window.
    assert!(missing.len() >= 5, "ticks older than the window are skipped: {missing:?}");
    assert!(missing.iter().all(|t| (*t as f64) > stopped_at - 1.0), "only the downtime's ticks are missing");
    let first_after = all.iter().find(|r| r.0 > *missing.last().unwrap()).unwrap();
    // The ticks already due when the first pass after the restart fired.
    let burst = all.iter().filter(|r| r.0 >= first_after.0 && r.0 as f64 <= first_after.1).count();
    assert!((6..=7).contains(&burst), "the 6 s window's ticks run in the first pass, got {burst}");
    let view = gw.get("/schedules/all").await.body;
    assert_eq!(view["skipped"].as_i64(), Some(missing.len() as i64), "{view}");
    let line = view["recent_fires"].as_array().unwrap().iter().find(|f| f["reason"] == "catchup_window").cloned();
    assert_eq!(line.expect("a catch-up line")["ticks"].as_i64(), Some(missing.len() as i64));

    // skip: after the downtime only the newest due tick runs.
    let newest = fired(&stack, "newest").await;
    let gap = gaps(&newest);
    let resumed = newest.iter().find(|r| r.0 > *gap.last().unwrap()).unwrap();
    assert!(gap.len() >= 12, "the downtime's ticks but the newest are skipped: {gap:?}");
    let same_pass = newest.iter().filter(|r| r.0 >= resumed.0 && r.0 as f64 <= resumed.1).count();
    assert_eq!(same_pass, 1, "one run on catch-up under skip");
    let view = gw.get("/schedules/newest").await.body;
    assert_eq!(view["skipped"].as_i64(), Some(gap.len() as i64), "{view}");
    println!(
        "catch-up: allow_all skipped {} and ran {burst} at once; skip skipped {} and ran 1",
        missing.len(),
        gap.len()
    );
}

/// Intervals [created_at, finished_at] that overlap, in tick order.
fn overlapping(rows: &[(i64, f64, Option<f64>, String, String)]) -> usize {
    rows.windows(2).filter(|w| w[0].2.is_none_or(|end| w[1].1 < end)).count()
}

#[tokio::test]
async fn each_overlap_policy_with_a_task_longer_than_the_interval() {
    let stack = Stack::new("sched_overlap").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("w", &["--concurrency", "16"]).await;
    stack.wait_assigned(&w).await;
    // The same six ticks for every policy.
    let start = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 2, 0).unwrap();
    let end = start + chrono::Duration::seconds(5);
    for policy in ["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"] {
        // A worker acts on a cancel request at its next heartbeat (1 s here):
        // cancel_other's task runs long enough for the next tick's to cancel it.
        let seconds = if policy == "cancel_other" { 4.0 } else { 1.6 };
        let body = json!({"id": policy, "spec": {"every": 1}, "overlap": policy, "start_at": start, "end_at": end,
                          "task": {"task": "sleep", "args": [seconds]}});
        create(&gw, body).await;
    }
    // allow_all with the template's unique option (the default key): a tick
    // fires only when the previous task no longer holds the key.
    let body = json!({"id": "unique", "spec": {"every": 1}, "overlap": "allow_all", "start_at": start, "end_at": end,
                      "task": {"task": "sleep", "args": [1.6], "unique": {}}});
    create(&gw, body).await;
    // Until every grid tick is past and the buffers have drained.
    wait_for(LONG, "the schedules to finish", || async {
        let mut done = now_secs() > end.timestamp() as f64 + 1.0;
        for policy in ["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all", "unique"] {
            let v = gw.get(&format!("/schedules/{policy}")).await.body;
            let rows = fired(&stack, policy).await;
            done &= v["buffered"].as_array().is_some_and(|b| b.is_empty()) && rows.iter().all(|r| r.2.is_some());
        }
        done
    })
    .await;

    let all = fired(&stack, "allow_all").await;
    assert!(
        all.len() == 6 && gaps(&all).is_empty(),
        "allow_all runs every tick: {:?}",
        all.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(overlapping(&all) > 0, "allow_all runs overlap");
    assert_eq!(
        stack.count_status(&all.iter().map(|r| r.4.clone()).collect::<Vec<_>>(), "success").await,
        all.len() as i64
    );

    let skip = fired(&stack, "skip").await;
    assert_eq!(overlapping(&skip), 0, "skip never overlaps");
    assert!(skip.len() < all.len(), "skip drops ticks");
    let v = gw.get("/schedules/skip").await.body;
    assert!(v["skipped"].as_i64().unwrap() >= 1);
    assert!(v["recent_fires"].as_array().unwrap().iter().any(|f| f["reason"] == "overlap"), "{v}");

    let one = fired(&stack, "buffer_one").await;
    assert_eq!(overlapping(&one), 0, "buffer_one never overlaps");
    assert!(one.iter().any(|r| r.1 - r.0 as f64 > 0.4), "a buffered run fires late, when the previous one ended");
    assert!(one.len() < all.len(), "buffer_one keeps only the latest waiting run");

    let buffered = fired(&stack, "buffer_all").await;
    assert_eq!(overlapping(&buffered), 0, "buffer_all never overlaps");
    assert!(gaps(&buffered).is_empty() && buffered.len() == all.len(), "buffer_all runs every tick, one after another");
    assert!(buffered.windows(2).all(|w| w[0].1 <= w[1].1), "in tick order");

    let cancel = fired(&stack, "cancel_other").await;
    assert!(gaps(&cancel).is_empty() && cancel.len() == all.len(), "cancel_other fires every tick");
    let cancelled = cancel.iter().filter(|r| r.3 == "cancelled").count();
    assert_eq!(cancelled, cancel.len() - 1, "each run but the last was cancelled by the next");
    assert_eq!(cancel.last().unwrap().3, "success");
    let unique = fired(&stack, "unique").await;
    assert_eq!(overlapping(&unique), 0, "a held unique key refuses the overlapping ticks");
    assert!(unique.len() >= 2 && unique.len() < all.len(), "unique drops ticks: {unique:?}");
    let v = gw.get("/schedules/unique").await.body;
    assert_eq!(v["task"]["unique"]["key"].as_str().map(str::len), Some(64), "the default key, shown: {v}");
    assert_eq!(v["skipped"].as_i64().unwrap() as usize + unique.len(), 6, "every tick ran or was skipped: {v}");
    assert!(v["recent_fires"].as_array().unwrap().iter().any(|f| f["reason"] == "unique"), "{v}");
    let ticks =
        |rows: &[(i64, f64, Option<f64>, String, String)]| rows.iter().map(|r| r.0 - rows[0].0).collect::<Vec<_>>();
    println!(
        "overlap, 6 ticks of a 1.6 s task: allow_all ran {:?}, skip {:?}, buffer_one {:?}, buffer_all {:?}, cancel_other {:?} ({cancelled} cancelled), allow_all with a unique key {:?}",
        ticks(&all), ticks(&skip), ticks(&one), ticks(&buffered), ticks(&cancel), ticks(&unique)
    );
}

#[tokio::test]
async fn pause_resume_edit_delete_trigger_backfill_and_the_api_problems() {
    let stack = Stack::new("sched_api").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("w", &[]).await;
    stack.wait_assigned(&w).await;

    // Problems name the field.
    let bad = |body: Value| {
        let gw = &gw;
        async move { gw.post_raw("/schedules", body.to_string(), &[]).await }
    };
    let task = json!({"task": "echo"});
    for (body, status, field) in [
        (json!({"spec": {"cron": "61 * * * *"}, "task": task}), 400, "spec.cron"),
        (json!({"spec": {"cron": "* * * * *"}, "timezone": "Mars/Olympus", "task": task}), 400, "timezone"),
        (json!({"spec": {"every": 0}, "task": task}), 400, "spec.every"),
        (
            json!({"spec": {"every": 5}, "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z", "task": task}),
            400,
            "end_at",
        ),
        (json!({"spec": {"every": 5}, "task": {"task": "echo", "queue": "nope"}}), 422, "task.queue"),
        (json!({"spec": {"every": 5}, "task": {"task": "echo", "id": "x"}}), 400, "task.id"),
        (
            json!({"spec": {"every": 5}, "task": {"task": "echo", "unique": {"for_seconds": 0}}}),
            400,
            "task.unique.for_seconds",
        ),
        (json!({"spec": {"every": 5}}), 400, "task"),
    ] {
        let a = bad(body.clone()).await;
        assert_eq!((a.status, a.body["field"].as_str()), (status, Some(field)), "{body}: {}", a.text);
    }
    let a = bad(json!({"spec": {"cron": "0 61 * * *"}, "task": task})).await;
    assert!(a.body["detail"].as_str().unwrap().contains("field 2 (hour) '61'"), "{}", a.text);
    for id in ["sched:beat:1", "wf:x"] {
        let a = gw.submit(&json!({"task": "echo", "id": id})).await;
        assert_eq!((a.status, a.body["field"].as_str()), (400, Some("id")), "{}", a.text);
    }

    // Create: 201 with the next five fire times; the same body 200, another 409.
    let body = json!({"id": "beat", "spec": {"every": 1}, "task": {"task": "echo", "args": ["hi"]}});
    let created = create(&gw, body.clone()).await;
    let next: Vec<i64> = created["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp())
        .collect();
    assert_eq!(next.len(), 5);
    assert!(next.windows(2).all(|w| w[1] - w[0] == 1), "{next:?}");
    assert_eq!(gw.post_raw("/schedules", body.to_string(), &[]).await.status, 200);
    let other = json!({"id": "beat", "spec": {"every": 2}, "task": {"task": "echo"}});
    assert_eq!(gw.post_raw("/schedules", other.to_string(), &[]).await.status, 409);
    assert_eq!(gw.get("/schedules").await.body["schedules"][0]["id"], "beat");
    assert_eq!(gw.get("/schedules/none").await.status, 404);
    let acme = stack_key(&stack, "acme").await;
    assert_eq!(gw.as_key(Some(&acme)).get("/schedules/beat").await.status, 404, "another tenant's schedule");

    // Fired tasks carry their schedule and tick; GET /tasks?schedule= lists them.
    wait_fired(&stack, "beat", 3).await;
    let rows = fired(&stack, "beat").await;
    let t = gw.wait_task(&rows[0].4, LONG).await;
    assert_eq!(t["schedule_id"], "beat");
    let tick: chrono::DateTime<chrono::Utc> = t["scheduled_for"].as_str().unwrap().parse().unwrap();
    assert_eq!(tick.timestamp(), rows[0].0);
    let listed = gw.get("/tasks?schedule=beat&limit=500").await;
    assert!(listed.body["tasks"].as_array().unwrap().len() >= 3, "{}", listed.text);
    assert!(listed.body["tasks"].as_array().unwrap().iter().all(|t| t["schedule_id"] == "beat"));
    assert!(gw.get("/tasks/none").await.body["schedule_id"].is_null());

    // Trigger: one run now, under an id no tick can take.
    let a = gw.post_raw("/schedules/beat/trigger", "", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let triggered = a.body["fired"][0].as_str().unwrap().to_string();
    assert!(triggered.starts_with("sched:beat:t"), "{triggered}");
    assert_eq!(gw.wait_task(&triggered, LONG).await["schedule_id"], "beat");

    // Backfill three past ticks; one that already ran is not run again.
    let first = rows[0].0;
    let start = chrono::DateTime::from_timestamp(first - 3, 0).unwrap();
    let end = chrono::DateTime::from_timestamp(first, 0).unwrap();
    let a = gw
        .post_raw(
            "/schedules/beat/backfill",
            json!({"start": start, "end": end, "overlap": "allow_all"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["fired"].as_array().unwrap().len(), 4);
    for back in first - 3..first {
        let t = gw.wait_task(&format!("sched:beat:{back}"), LONG).await;
        assert_eq!(t["status"], "success");
    }
    stack.assert_ran_once(&[format!("sched:beat:{first}")], "a backfilled tick that had run").await;

    // Pause: nothing fires; resume: the paused ticks are not caught up.
    let paused = patch(&gw, "beat", json!({"paused": true})).await;
    let paused_at = now_secs();
    assert!(paused["next_fire_times"].as_array().unwrap().is_empty());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resumed_at = now_secs();
    patch(&gw, "beat", json!({"paused": false})).await;
    wait_for(LONG, "a tick after the resume", || async {
        fired(&stack, "beat").await.last().unwrap().0 as f64 > resumed_at
    })
    .await;
    let during: Vec<i64> = fired(&stack, "beat")
        .await
        .iter()
        .map(|r| r.0)
        .filter(|t| (*t as f64) > paused_at && (*t as f64) < resumed_at)
        .collect();
    assert!(during.is_empty(), "ticks of the pause ran: {during:?}");

    // Edit: from the next tick on, the new spec's grid.
    let edited = patch(&gw, "beat", json!({"spec": {"every": 2, "offset": 1}})).await;
    let edited_at = now_secs();
    assert!(edited["version"].as_i64().unwrap() >= 4);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after: Vec<i64> = fired(&stack, "beat").await.iter().map(|r| r.0).filter(|t| *t as f64 > edited_at).collect();
    assert!(after.len() >= 2 && after.iter().all(|t| t % 2 == 1), "the new grid's ticks only: {after:?}");

    // Delete: it never fires again.
    let a = gw.send(reqwest::Method::DELETE, "/schedules/beat", &[], None).await;
    assert_eq!(a.status, 204, "{}", a.text);
    let count = fired(&stack, "beat").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fired(&stack, "beat").await.len(), count, "a deleted schedule fired");
    assert_eq!(gw.get("/schedules/beat").await.status, 404);
}

/// A `read`/`operate` key of `tenant`.
async fn stack_key(stack: &Stack, tenant: &str) -> String {
    use yadtq_core::auth::Scope;
    yadtq_tests::mint_key(&stack.db, tenant, &[Scope::Read, Scope::Operate, Scope::Submit], None).await
}

/// docs/schedules.md's curl lines, run as written (against this test's
/// gateway, with its key): each answers 2xx, and they do what the page says.
#[tokio::test]
async fn the_docs_examples_run() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schedules.md")).unwrap();
    let lines: Vec<&str> = doc.lines().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(lines.len(), 9, "the page's curl lines: {lines:?}");
    let stack = Stack::new("sched_docs").await;
    let gw = stack.gateway(&[]).await;
    let run = |line: &str| {
        let command = format!("{} -w '\\n%{{http_code}}'", line.replace("localhost:8080", gw.addr()));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("YADTQ_API_KEY", &stack.api_key)
            .output()
            .expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = status.trim().parse().unwrap_or(0);
        assert!((200..300).contains(&status), "`{command}` answered {status}: {body}");
        (status, serde_json::from_str::<Value>(body).unwrap_or(Value::Null))
    };
    let (status, created) = run(lines[0]);
    assert_eq!((status, created["timezone"].as_str()), (201, Some("Europe/Berlin")));
    assert_eq!(run(lines[1]).0, 201);
    let (_, read) = run(lines[2]);
    assert_eq!(read["next_fire_times"].as_array().unwrap().len(), 5);
    assert_eq!(run(lines[3]).1["paused"], true);
    let (_, triggered) = run(lines[4]);
    assert_eq!(triggered["fired"].as_array().unwrap().len(), 1);
    let (_, backfilled) = run(lines[5]);
    let ids: Vec<&str> = backfilled["fired"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // 02:30 in Berlin (CET, UTC+1) on January 1, 2 and 3.
    assert_eq!(
        ids,
        ["sched:nightly-report:1767231000", "sched:nightly-report:1767317400", "sched:nightly-report:1767403800"]
    );
    let (_, listed) = run(lines[6]);
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 4, "the trigger's task and the backfill's three");
    assert_eq!(run(lines[7]).0, 204);
    let (status, with_unique) = run(lines[8]);
    assert_eq!((status, with_unique["task"]["unique"]["key"].as_str()), (201, Some("sync-customer-42")));
}

/// `yadtq schedules ...` against a gateway: create, show, the tasks fired,
/// trigger, pause, delete.
#[tokio::test]
async fn the_cli_manages_schedules() {
    let stack = Stack::new("sched_cli").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("w", &[]).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(yadtq_tests::binary("yadtq"))
            .args(["--url", &gw.base, "--api-key", &stack.api_key, "--json", "schedules"])
            .args(args)
            .output()
            .expect("run yadtq");
        assert!(out.status.success(), "yadtq schedules {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    let created = cli(&["create", "cli-beat", "--every", "1", "--overlap", "allow_all", "echo", "hello"]);
    assert_eq!((created["id"].as_str(), created["task"]["args"].clone()), (Some("cli-beat"), json!(["hello"])));
    wait_fired(&stack, "cli-beat", 2).await;
    assert_eq!(cli(&["get", "cli-beat"])["spec"], json!({"every": 1}));
    let tasks = cli(&["tasks", "cli-beat"]);
    assert!(tasks["tasks"].as_array().unwrap().iter().all(|t| t["schedule_id"] == "cli-beat"), "{tasks}");
    assert_eq!(cli(&["trigger", "cli-beat"])["fired"].as_array().unwrap().len(), 1);
    assert_eq!(cli(&["pause", "cli-beat"])["paused"], true);
    assert_eq!(cli(&["list"])["schedules"][0]["id"], "cli-beat");
    cli(&["delete", "cli-beat"]);
    assert_eq!(gw.get("/schedules/cli-beat").await.status, 404);
}
