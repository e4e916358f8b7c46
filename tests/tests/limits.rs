//! Concurrency and rate limits end to end (issue 28, docs/limits.md): real
//! gateways and workers, real Kafka and PostgreSQL. Exactness is measured
//! from what the database recorded (attempt intervals in `task_attempts`,
//! release times in `limit_releases`), never from a counter the code keeps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use yadtq_tests::{Answer, Gateway, Stack};

const LONG: Duration = Duration::from_secs(180);

/// `PUT /limits/{name}` with `body`; asserts a 200 or 201 and returns the answer.
async fn put_limit(gw: &Gateway, name: &str, body: Value) -> Answer {
    let a = gw
        .send(Method::PUT, &format!("/limits/{name}"), &[("content-type", "application/json")], Some(body.to_string()))
        .await;
    assert!(a.status == 200 || a.status == 201, "PUT /limits/{name}: {}", a.text);
    a
}

/// Submits `bodies` through `/tasks/batch` in chunks of 1,000; returns the ids in order.
async fn submit_batches(gw: &Gateway, bodies: Vec<Value>) -> Vec<String> {
    let mut ids = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(1000) {
        let a = gw.post_raw("/tasks/batch", json!({ "tasks": chunk }).to_string(), &[]).await;
        assert_eq!(a.status, 202, "{}", a.text);
        ids.extend(a.body["tasks"].as_array().expect("tasks").iter().map(|t| t["id"].as_str().unwrap().to_string()));
    }
    ids
}

/// Per bucket (the value of `kwargs->>field`), the most attempts of `ids`
/// that ran at one instant, swept over the attempt intervals
/// `[started_at, finished_at)` (an open attempt runs until now).
async fn max_overlap(stack: &Stack, ids: &[String], field: &str) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "WITH iv AS (
           SELECT coalesce(t.kwargs->>$2, '') AS b, a.started_at AS s, coalesce(a.finished_at, clock_timestamp()) AS f
           FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.id = ANY($1)
         ), ev AS (
           SELECT b, s AS at, 1 AS d FROM iv UNION ALL SELECT b, f, -1 FROM iv
         ), run AS (
           SELECT b, sum(d) OVER (PARTITION BY b ORDER BY at, d ROWS UNBOUNDED PRECEDING) AS n FROM ev
         )
         SELECT b, max(n)::bigint FROM run GROUP BY b ORDER BY b",
    )
    .bind(ids)
    .bind(field)
    .fetch_all(&stack.db)
    .await
    .expect("overlap");
    rows.into_iter().collect()
}

/// How many of `ids` are `queued` or `processing`: the slots they hold.
async fn running(stack: &Stack, ids: &[String]) -> i64 {
    // One statement: a task moving from one to the other is counted once.
    sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1) AND status IN ('queued', 'processing')")
        .bind(ids)
        .fetch_one(&stack.db)
        .await
        .expect("count")
}

/// Count of `ids` per status.
async fn statuses(stack: &Stack, ids: &[String]) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks WHERE id = ANY($1) GROUP BY status")
            .bind(ids)
            .fetch_all(&stack.db)
            .await
            .expect("statuses");
    rows.into_iter().collect()
}

#[tokio::test]
async fn concurrency_is_exact_per_bucket_while_a_worker_is_killed_and_another_frozen() {
    let stack = Stack::new("limits_exact").await;
    let gw = stack.gateway(&[]).await;
    put_limit(&gw, "customer-api", json!({"concurrency": 3, "key": "/kwargs/customer"})).await;
    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push(stack.worker(&format!("worker-{i}"), &["--concurrency", "16"]).await);
    }
    for w in &workers {
        stack.wait_assigned(w).await;
    }
    // 500 tasks over 10 buckets of 3 slots: 30 at once, where 48 worker
    // slots would run about 5 per bucket without the limit.
    let bodies = (0..500)
        .map(|i| json!({"task": "sleep", "args": [0.3], "kwargs": {"customer": format!("c{}", i % 10)}, "limits": ["customer-api"]}))
        .collect();
    let ids = submit_batches(&gw, bodies).await;
    let held = stack.count_status(&ids, "held").await;
    assert!(held >= 400, "500 tasks over 30 slots: {held} held at submit");

    // Once both victims run tasks: one is SIGKILLed, the other frozen past
    // the dead-after time (7 s in the tests' timings), then thawed.
    let (victim, frozen) = (stack.worker_id(&workers[0]).await, stack.worker_id(&workers[1]).await);
    stack.wait_processing_on(victim, 1, LONG).await;
    stack.wait_processing_on(frozen, 1, LONG).await;
    let killed_at: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&stack.db).await.unwrap();
    workers[0].kill9();
    workers[1].signal("STOP");
    let frozen_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    workers[1].signal("CONT");
    eprintln!("worker frozen for {:.1} s", frozen_at.elapsed().as_secs_f64());

    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(statuses(&stack, &ids).await, BTreeMap::from([("success".to_string(), 500)]));
    let overlap = max_overlap(&stack, &ids, "customer").await;
    eprintln!("most attempts running at once per bucket: {overlap:?}");
    assert_eq!(overlap.len(), 10, "{overlap:?}");
    assert!(overlap.values().all(|&n| n <= 3), "a bucket ran more than its 3 slots: {overlap:?}");
    assert!(overlap.values().any(|&n| n == 3), "the limit was never reached: {overlap:?}");
    // The faults did happen: attempts lost with their workers were run again.
    let lost: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = ANY($1) AND outcome = 'worker_lost'")
            .bind(&ids)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert!(lost >= 1, "no attempt was lost to the SIGKILL or the freeze");
    // How long the killed worker's slots stayed taken: from the SIGKILL to
    // the rescue that closed each lost attempt (its task back to `queued`,
    // keeping the slot), and to the task's next attempt (which also waits
    // for Kafka to hand the frozen worker's partitions on). Reported; the
    // rescue's bound is D + P.
    let (rescued, restarted): (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT max(extract(epoch FROM a.finished_at - $3))::float8, max(extract(epoch FROM n.started_at - $3))::float8
         FROM task_attempts a LEFT JOIN task_attempts n ON n.task_id = a.task_id AND n.attempt = a.attempt + 1
         WHERE a.task_id = ANY($1) AND a.worker_id = $2 AND a.outcome = 'worker_lost'",
    )
    .bind(&ids)
    .bind(victim)
    .bind(killed_at)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    eprintln!(
        "the killed worker's tasks were rescued within {rescued:?} s of the SIGKILL and restarted within \
         {restarted:?} s (dead-after 7 s, period 0.5 s)"
    );
    // No slot leaked: nothing is held, nothing counts as running.
    let bucket = gw.get("/limits/customer-api").await;
    assert_eq!(bucket.status, 200, "{}", bucket.text);
    for b in bucket.body["buckets"].as_array().expect("buckets") {
        assert_eq!((b["running"].as_i64(), b["held"].as_i64()), (Some(0), Some(0)), "{b}");
    }
}

#[tokio::test]
async fn rate_is_exact_on_release_times_across_two_gateways_and_two_workers() {
    let stack = Stack::new("limits_rate").await;
    let (gw1, gw2) = (stack.gateway(&[]).await, stack.gateway(&[]).await);
    put_limit(&gw1, "emails", json!({"rate": {"count": 4, "per_seconds": 1}})).await;
    let w1 = stack.worker("worker-1", &["--concurrency", "8"]).await;
    let w2 = stack.worker("worker-2", &["--concurrency", "8"]).await;
    stack.wait_assigned(&w1).await;
    stack.wait_assigned(&w2).await;
    let body = |i: usize| json!({"task": "echo", "args": [i], "limits": ["emails"]});
    let (a, b) = tokio::join!(stack.submit_many(&gw1, 10, &body), stack.submit_many(&gw2, 10, |i| body(10 + i)));
    let ids: Vec<String> = a.into_iter().chain(b).collect();
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 20);

    let released: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT r.released_at FROM limit_releases r JOIN limit_buckets b ON b.id = r.bucket_id
         WHERE b.limit_name = 'emails' ORDER BY r.released_at",
    )
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert_eq!(released.len(), 20, "one release per task");
    // Releases in any window (t - 1 s, t]: at most 4.
    let most = released
        .iter()
        .map(|t| released.iter().filter(|u| *u <= t && (*t - **u) < chrono::Duration::seconds(1)).count())
        .max()
        .unwrap();
    let span = (released[19] - released[0]).num_milliseconds();
    eprintln!("most releases in a 1 s window: {most} (limit 4); 20 releases over {span} ms");
    assert_eq!(most, 4, "{released:?}");
    // 20 releases at 4 per second need at least 4 whole windows after the first.
    assert!(span >= 4000, "20 releases within {span} ms");
}

#[tokio::test]
async fn a_single_task_of_another_bucket_goes_in_the_first_round_and_delete_releases_everything() {
    let stack = Stack::new("limits_fair").await;
    let gw = stack.gateway(&[]).await;
    // Paused (concurrency 0): everything is held, then one release step
    // (the PUT that raises the limit) serves the buckets round-robin.
    put_limit(&gw, "fair", json!({"concurrency": 0, "key": "/kwargs/c"})).await;
    let big: Vec<Value> =
        (0..2000).map(|i| json!({"task": "echo", "args": [i], "kwargs": {"c": "big"}, "limits": ["fair"]})).collect();
    let big = submit_batches(&gw, big).await;
    let small = gw.submit(&json!({"task": "echo", "kwargs": {"c": "small"}, "limits": ["fair"]})).await;
    assert_eq!((small.status, small.body["status"].as_str()), (202, Some("held")), "{}", small.text);
    let small = small.body["id"].as_str().unwrap().to_string();
    assert_eq!(stack.count_status(&big, "held").await, 2000);
    let view = gw.get(&format!("/tasks/{small}")).await.body;
    assert_eq!((view["limits"][0]["name"].as_str(), view["limits"][0]["held"].as_bool()), (Some("fair"), Some(true)));

    // No worker runs: what the raise released stays queued, and shows who went first.
    put_limit(&gw, "fair", json!({"concurrency": 1, "key": "/kwargs/c"})).await;
    assert_eq!(
        stack.count_status(std::slice::from_ref(&small), "queued").await,
        1,
        "the single task waited behind 2,000"
    );
    assert_eq!(stack.count_status(&big, "queued").await, 1);
    let queues = gw.get("/queues").await.body;
    assert_eq!(queues["queues"][0]["held"], 1999, "{queues}");

    // Deleting the limit releases every held task.
    let a = gw.send(Method::DELETE, "/limits/fair", &[], None).await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert_eq!(stack.count_status(&big, "queued").await, 2000);
    let w = stack.worker("worker", &["--concurrency", "16"]).await;
    stack.wait_assigned(&w).await;
    let all: Vec<String> = big.into_iter().chain([small]).collect();
    stack.wait_terminal(&all, LONG).await;
    assert_eq!(stack.count_status(&all, "success").await, 2001);
}

#[tokio::test]
async fn raising_a_limit_releases_at_once_and_lowering_it_takes_effect_as_tasks_finish() {
    let stack = Stack::new("limits_change").await;
    let gw = stack.gateway(&[]).await;
    put_limit(&gw, "one", json!({"concurrency": 1})).await;
    let w = stack.worker("worker", &["--concurrency", "16"]).await;
    stack.wait_assigned(&w).await;
    let ids = stack
        .submit_many(&gw, 12, |i| json!({"task": "sleep", "args": [0.6], "kwargs": {"i": i}, "limits": ["one"]}))
        .await;
    assert_eq!(running(&stack, &ids).await, 1);

    // Raised to 4: released in the PUT's own transaction.
    put_limit(&gw, "one", json!({"concurrency": 4})).await;
    assert_eq!(running(&stack, &ids).await, 4);
    // Lowered to 1 while up to 4 hold slots: they finish (a task released
    // before the lowering may still start after it: its slot was taken at
    // release), nothing more is released until one slot is left, and from
    // then on no attempt starts while another of the limit runs.
    put_limit(&gw, "one", json!({"concurrency": 1})).await;
    let lowered_at: DateTime<Utc> = loop {
        // One statement: the count and the instant of its snapshot.
        let (at, n): (DateTime<Utc>, i64) = sqlx::query_as(
            "SELECT now(), count(*) FROM tasks WHERE id = ANY($1) AND status IN ('queued', 'processing')",
        )
        .bind(&ids)
        .fetch_one(&stack.db)
        .await
        .unwrap();
        if n <= 1 {
            break at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 12);
    let crowded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_attempts a JOIN task_attempts o
           ON o.task_id = ANY($1) AND o.task_id <> a.task_id
          AND o.started_at <= a.started_at AND coalesce(o.finished_at, now()) > a.started_at
         WHERE a.task_id = ANY($1) AND a.started_at > $2",
    )
    .bind(&ids)
    .bind(lowered_at)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!(crowded, 0, "an attempt started after the lowering while another ran");
    let overlap = max_overlap(&stack, &ids, "none").await;
    assert_eq!(overlap.values().copied().max(), Some(4), "{overlap:?}");
}
