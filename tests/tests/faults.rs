//! The guarantees under the faults people hit: Kafka or PostgreSQL down, the
//! broker restarting, workers killed or frozen, rebalances, long tasks, poison
//! records, duplicate submissions, awkward payloads. Real processes, started,
//! stopped and killed by the tests; run serially (they stop shared servers).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use yadtq_tests::{kafka_config, wait_for, Servers, Stack};

const LONG: Duration = Duration::from_secs(120);

#[tokio::test]
async fn kafka_outage_gateway_still_accepts_and_the_publisher_catches_up() {
    let stack = Stack::new("kafkadown").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;

    Servers::stop_kafka();
    let ids = stack.submit_many(&gw, 20, |i| json!({"task": "add", "args": [i, 1]})).await;
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.status, 200, "a Kafka outage must not take the gateway out of rotation");
    assert!(ready.body["kafka"].as_str().unwrap().starts_with("down"), "{}", ready.text);
    assert_eq!(stack.count_status(&ids, "queued").await, 20);
    Servers::start_kafka();

    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 20);
    stack.assert_ran_once(&ids, "after the fault").await;
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE published_at IS NULL").fetch_one(&stack.db).await.unwrap();
    assert_eq!(unpublished, 0);
}

#[tokio::test]
async fn postgres_outage_is_503_and_workers_keep_their_outcomes() {
    let stack = Stack::new("pgdown").await;
    let gw = stack.gateway(&["--db-acquire-timeout", "1"]).await;
    let w = stack.worker("worker", &[]).await;
    let wid = stack.worker_id(&w).await;
    stack.wait_assigned(&w).await;
    let ids = stack.submit_many(&gw, 4, |_| json!({"task": "sleep", "args": [2]})).await;
    stack.wait_processing_on(wid, 4, LONG).await;

    Servers::stop_postgres();
    let a = gw.submit(&json!({"task": "add", "args": [1, 2]})).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json");
    let get = gw.get(&format!("/tasks/{}", ids[0])).await;
    assert_eq!(get.status, 503, "never a stale 200: {}", get.text);
    assert_eq!(gw.get("/readyz").await.status, 503);
    // The sleeps finish while PostgreSQL is down; their outcomes wait in the worker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Servers::start_postgres();

    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 4);
    stack.assert_ran_once(&ids, "outcomes were kept, not re-run").await;
    assert_eq!(gw.get("/readyz").await.status, 200);
    assert_eq!(gw.submit(&json!({"task": "add", "args": [1, 2]})).await.status, 202);
}

#[tokio::test]
async fn broker_restart_loses_nothing_and_runs_nothing_twice() {
    let stack = Stack::new("brokerrestart").await;
    let gw = stack.gateway(&[]).await;
    let w1 = stack.worker("worker-1", &[]).await;
    let w2 = stack.worker("worker-2", &[]).await;
    stack.wait_assigned(&w1).await;
    stack.wait_assigned(&w2).await;
    let mut ids = stack.submit_many(&gw, 100, |_| json!({"task": "sleep", "args": [0.05]})).await;
    Servers::stop_kafka();
    ids.extend(stack.submit_many(&gw, 50, |i| json!({"task": "echo", "args": [i]})).await);
    Servers::start_kafka();
    ids.extend(stack.submit_many(&gw, 50, |i| json!({"task": "add", "args": [i, i]})).await);

    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 200);
    stack.assert_ran_once(&ids, "after the fault").await;
}

#[tokio::test]
async fn killed_worker_tasks_running_and_prefetched_run_later_even_with_no_worker_alive() {
    let stack = Stack::new("prefetched").await;
    let gw = stack.gateway(&[]).await;
    let mut victim = stack.worker("victim", &["--concurrency", "1", "--prefetch", "20"]).await;
    let vid = stack.worker_id(&victim).await;
    stack.wait_assigned(&victim).await;
    let ids = stack.submit_many(&gw, 10, |_| json!({"task": "sleep", "args": [1]})).await;
    let running = stack.wait_processing_on(vid, 1, LONG).await;
    victim.kill9();

    // No worker is alive: the gateway's maintenance leader still takes the
    // running task back on the recovery timer.
    let db = stack.db.clone();
    let id = running[0].clone();
    wait_for(Duration::from_secs(20), "the dead worker's task back to queued", || {
        let (db, id) = (db.clone(), id.clone());
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM tasks WHERE id = $1")
                .bind(&id)
                .fetch_one(&db)
                .await
                .is_ok_and(|s| s == "queued")
        }
    })
    .await;

    let heir = stack.worker("heir", &[]).await;
    let hid = stack.worker_id(&heir).await;
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 10);
    let elsewhere: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1) AND worker_id = $2")
        .bind(&ids)
        .bind(hid)
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert!(elsewhere >= 9, "the prefetched tasks ran on the new worker ({elsewhere} of 10)");
    let t = gw.get(&format!("/tasks/{}", running[0])).await.body;
    assert_eq!((t["attempts"].as_i64(), t["worker_id"].as_str()), (Some(2), Some(hid.to_string().as_str())));
}

#[tokio::test]
async fn rebalance_while_tasks_are_in_flight_runs_each_task_once() {
    let stack = Stack::new("rebalance").await;
    let gw = stack.gateway(&[]).await;
    let leaving = stack.worker("leaving", &[]).await;
    stack.wait_assigned(&leaving).await;
    let first = stack.submit_many(&gw, 100, |_| json!({"task": "sleep", "args": [0.05]}));
    let joining = async {
        let w = stack.worker("joining", &[]).await;
        stack.wait_assigned(&w).await;
        w
    };
    let (mut ids, _joining) = tokio::join!(first, joining);
    let more = stack.submit_many(&gw, 100, |_| json!({"task": "sleep", "args": [0.05]}));
    let stop = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || {
            let mut leaving = leaving;
            leaving.terminate(Duration::from_secs(40))
        })
        .await
        .unwrap()
    };
    let (more, clean_exit) = tokio::join!(more, stop);
    ids.extend(more);
    assert!(clean_exit, "SIGTERM'd worker exits 0 after finishing its tasks");

    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 200);
    stack.assert_ran_once(&ids, "after the fault").await;
    let stopped: i64 = sqlx::query_scalar("SELECT count(*) FROM workers WHERE stopped_at IS NOT NULL")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(stopped, 1);
}

#[tokio::test]
async fn a_task_longer_than_max_poll_interval_keeps_its_worker_in_the_group() {
    let stack = Stack::new("longtask").await;
    let gw = stack.gateway(&[]).await;
    let w = stack
        .worker("worker", &["--concurrency", "1", "--prefetch", "0", "--kafka-max-poll-interval-ms", "7000"])
        .await;
    stack.wait_assigned(&w).await;
    let long = stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [15]})).await;
    let short = stack.submit_many(&gw, 3, |i| json!({"task": "echo", "args": [i]})).await;
    let all: Vec<String> = long.iter().chain(&short).cloned().collect();
    stack.wait_terminal(&all, LONG).await;
    assert_eq!(stack.count_status(&all, "success").await, 4);
    stack.assert_ran_once(&all, "long and short tasks").await;
    assert!(!w.log().contains("LOST"), "the worker kept its group membership:\n{}", w.log());
}

#[tokio::test]
async fn a_frozen_worker_cannot_overwrite_the_attempt_that_replaced_it() {
    let stack = Stack::new("fencing").await;
    let gw = stack.gateway(&[]).await;
    let stale = stack.worker("stale", &[]).await;
    let sid = stack.worker_id(&stale).await;
    stack.wait_assigned(&stale).await;
    let ids = stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [9]})).await;
    stack.wait_processing_on(sid, 1, LONG).await;
    let fresh = stack.worker("fresh", &[]).await;
    let fid = stack.worker_id(&fresh).await;

    // Freeze the owner: no heartbeats; the rescuer hands the task on.
    stale.signal("STOP");
    let t0 = Instant::now();
    stack.wait_processing_on(fid, 1, LONG).await;
    eprintln!("task running on the new worker {:.1} s after the freeze", t0.elapsed().as_secs_f64());
    stale.signal("CONT");

    let t = gw.wait_task(&ids[0], LONG).await;
    assert_eq!(t["status"], "success");
    assert_eq!(t["worker_id"], fid.to_string(), "the newer attempt's outcome stands");
    let history: Vec<(i32, uuid::Uuid, String)> =
        sqlx::query_as("SELECT attempt, worker_id, outcome FROM task_attempts WHERE task_id = $1 ORDER BY attempt")
            .bind(&ids[0])
            .fetch_all(&stack.db)
            .await
            .unwrap();
    assert_eq!(history, vec![(1, sid, "worker_lost".to_string()), (2, fid, "success".to_string())]);
    // The thawed worker either fenced itself or had its late write refused.
    stale.wait_log("fenc", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn poison_records_are_dead_lettered_and_tasks_behind_them_run() {
    let stack = Stack::new("poison").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;
    let topic = format!("{}.yadtq.tasks", stack.namespace);
    let producer: FutureProducer = kafka_config(&stack.kafka).create().unwrap();
    let poison: [(&str, &[u8]); 3] = [
        ("not json", b"\xff\xfe not json"),
        ("missing id", br#"{"v":1,"task":"add","args":[],"kwargs":{},"queue":"default","attempt":0,"submitted_at":"2026-01-01T00:00:00Z"}"#),
        ("unknown version", br#"{"v":99,"id":"p1","task":"add","args":[],"kwargs":{},"queue":"default","attempt":0,"submitted_at":"2026-01-01T00:00:00Z"}"#),
    ];
    for (_, value) in poison {
        producer
            .send(FutureRecord::to(&topic).key("same-partition").payload(value), Duration::from_secs(10))
            .await
            .unwrap();
    }
    // Same key, same partition: this task sits behind the poison records.
    let a = gw.submit(&json!({"id": "same-partition", "task": "add", "args": [2, 2]})).await;
    assert_eq!(a.status, 202);
    let t = gw.wait_task("same-partition", LONG).await;
    assert_eq!(t["result"], json!(4));

    let dlq: BaseConsumer = kafka_config(&stack.kafka)
        .set("group.id", format!("{}-dlq-reader", stack.namespace))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&format!("{}.yadtq.dlq", stack.namespace)]).unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reasons.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(m)) = dlq.poll(Duration::from_millis(500)) {
            let headers = m.headers().expect("dead letters carry headers");
            let reason = headers.iter().find(|h| h.key == "yadtq-dlq-reason").and_then(|h| h.value).unwrap();
            reasons.push(String::from_utf8_lossy(reason).to_string());
        }
    }
    // Records are handled concurrently, so dead letters may arrive in any order.
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for expected in ["invalid envelope: expected value", "missing field `id`", "unknown envelope version 99"] {
        assert_eq!(reasons.iter().filter(|r| r.contains(expected)).count(), 1, "{expected}: {reasons:?}");
    }
}

#[tokio::test]
async fn the_same_id_submitted_concurrently_is_one_task_run_once() {
    let stack = Stack::new("idempotent").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &[]).await;
    let body = json!({"task": "add", "args": [20, 22]});
    let answers = futures::future::join_all(
        (0..10).map(|_| gw.post_raw("/tasks", body.to_string(), &[("Idempotency-Key", "order-42")])),
    )
    .await;
    let mut codes: Vec<u16> = answers.iter().map(|a| a.status).collect();
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    assert!(answers.iter().all(|a| a.body["id"] == "order-42"));
    let t = gw.wait_task("order-42", LONG).await;
    assert_eq!(t["result"], json!(42));
    stack.assert_ran_once(&["order-42".to_string()], "order-42").await;
    let conflict = gw
        .post_raw("/tasks", json!({"task": "add", "args": [1, 1]}).to_string(), &[("Idempotency-Key", "order-42")])
        .await;
    assert_eq!((conflict.status, conflict.body["field"].as_str()), (409, Some("id")));
    let by_id = gw.submit(&json!({"id": "order-42", "task": "add", "args": [20, 22]})).await;
    assert_eq!(by_id.status, 200, "id in the body and the header name the same task");
}

#[tokio::test]
async fn payloads_round_trip_exactly_and_oversized_results_fail_cleanly() {
    let stack = Stack::new("payloads").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &["--max-result-bytes", "200"]).await;
    let args = r#"["nul:\u0000:end", "emoji 😀🚀", "rtl שלום مرحبا", {"z": 1, "a": 2, "m": [3]}, 123456789012345678901234567890, -0.1e-400, 9007199254740993]"#;
    let body = format!(r#"{{"task": "echo", "args": {args}}}"#);
    let a = gw.post_raw("/tasks", body, &[]).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert!(a.text.contains(args), "args come back exactly as sent: {}", a.text);
    let id = a.body["id"].as_str().unwrap();
    let t = gw.wait_task(id, LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    let stored: String =
        sqlx::query_scalar("SELECT result::text FROM tasks WHERE id = $1").bind(id).fetch_one(&stack.db).await.unwrap();
    let compact: Value = serde_json::from_str(args).unwrap();
    assert_eq!(stored, serde_json::to_string(&compact).unwrap(), "result keeps strings, key order and big numbers");

    let big = gw.submit(&json!({"task": "echo", "args": ["x".repeat(500)]})).await;
    let t = gw.wait_task(big.body["id"].as_str().unwrap(), LONG).await;
    assert_eq!((t["status"].as_str(), t["error"]["kind"].as_str()), (Some("failed"), Some("result_too_large")), "{t}");
}

#[tokio::test]
async fn the_retry_limit_holds_when_every_attempt_dies_with_its_worker() {
    let stack = Stack::new("retrylimit").await;
    let gw = stack.gateway(&[]).await;
    let ids = stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [60], "max_retries": 1})).await;
    for attempt in 1..=2 {
        let mut w = stack.worker(&format!("doomed-{attempt}"), &[]).await;
        let wid = stack.worker_id(&w).await;
        stack.wait_processing_on(wid, 1, LONG).await;
        w.kill9();
    }
    let t = gw.wait_task(&ids[0], LONG).await;
    assert_eq!((t["status"].as_str(), t["error"]["kind"].as_str()), (Some("failed"), Some("worker_lost")), "{t}");
    assert_eq!(t["attempts"], 2);
}

#[tokio::test]
async fn a_worker_cut_off_from_postgres_fences_itself_and_hands_its_task_back() {
    let stack = Stack::new("selffence").await;
    let gw = stack.gateway(&[]).await;
    let admin = format!("127.0.0.1:{}", yadtq_tests::free_port());
    let w = stack.worker("worker", &["--admin-listen", &admin]).await;
    let wid = stack.worker_id(&w).await;
    stack.wait_assigned(&w).await;
    // The sleep outlasts the fence by a wide margin: the fence comes 6.5 s
    // (dead-after 7 s minus half a heartbeat) after the last heartbeat before
    // PostgreSQL stops, and a handler that finished before it would rightly
    // record its success once PostgreSQL is back (CI saw that with a 6 s sleep).
    let ids = stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [20]})).await;
    stack.wait_processing_on(wid, 1, LONG).await;

    Servers::stop_postgres();
    w.wait_log("fencing this worker", Duration::from_secs(20)).await;
    // Fenced is not ready: the admin listener, still answering, says 503.
    let readyz = reqwest::get(format!("http://{admin}/readyz")).await.unwrap();
    let status = readyz.status().as_u16();
    let body: Value = readyz.json().await.unwrap();
    assert_eq!((status, body["state"].as_str(), body["ready"].as_bool()), (503, Some("fenced"), Some(false)), "{body}");
    Servers::start_postgres();

    let t = gw.wait_task(&ids[0], LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    let history: Vec<(i32, String, Option<String>)> = sqlx::query_as(
        "SELECT attempt, outcome, error->>'kind' FROM task_attempts WHERE task_id = $1 ORDER BY attempt",
    )
    .bind(&ids[0])
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert_eq!(history[0], (1, "failed".to_string(), Some("worker_lost".to_string())), "{history:?}");
    assert_eq!(history.last().unwrap().1, "success");
    assert!(w.log().contains("attempt aborted: worker fenced itself"));
    // The fence is counted (docs/operations.md, yadtq_worker_fencings_total).
    let metrics = reqwest::get(format!("http://{admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "yadtq_worker_fencings_total 1"), "{metrics}");
}
