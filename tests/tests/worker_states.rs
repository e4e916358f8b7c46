//! What a worker says about itself: a setting the broker refuses stops it at
//! start with a message naming what to change, and GET /workers reports each
//! worker's state with the one rule of docs/architecture.md (`ready` = joined its consumer
//! group and not fenced; `idle` and `fenced` are states of their own).

use std::time::Duration;

use yadtq_tests::Stack;

#[tokio::test]
async fn a_session_timeout_the_broker_refuses_stops_the_worker_with_what_to_change() {
    let stack = Stack::new("badsession").await;
    // The broker accepts 6,000 ms at least (group.min.session.timeout.ms).
    let mut w = stack.spawn("yadtq-worker", &["--kafka-session-timeout-ms", "3000"], "worker");
    let status = w.wait_exit(Duration::from_secs(60));
    let log = w.log();
    assert!(status.is_some(), "the worker kept running although it can never join its group; log:\n{log}");
    assert!(!status.unwrap().success(), "a refused setting is a failure exit");
    assert!(log.contains("group.min.session.timeout.ms = 6000"), "the message names the broker's bound:\n{log}");
    assert!(log.contains("YADTQ_KAFKA_SESSION_TIMEOUT_MS"), "and the setting to change:\n{log}");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM workers").fetch_one(&stack.db).await.unwrap();
    assert_eq!(registered, 0, "a worker that cannot run never shows up in GET /workers");
}

#[tokio::test]
async fn get_workers_reports_ready_idle_and_stopped_with_one_rule() {
    let mut stack = Stack::new("states").await;
    // One partition for two workers: one owns it, the other is idle.
    stack.set_env("YADTQ_PARTITIONS", "1");
    let gw = stack.gateway(&[]).await;
    // Each with its admin listener, whose /readyz follows the same rule.
    let admins = [0, 1].map(|_| format!("127.0.0.1:{}", yadtq_tests::free_port()));
    let first = stack.worker("first", &["--admin-listen", &admins[0]]).await;
    stack.wait_assigned(&first).await;
    let mut second = stack.worker("second", &["--admin-listen", &admins[1]]).await;
    let (fid, sid) = (stack.worker_id(&first).await.to_string(), stack.worker_id(&second).await.to_string());

    let state_of = |workers: &serde_json::Value, id: &str| {
        let w = workers.as_array().unwrap().iter().find(|w| w["id"] == id).cloned().unwrap();
        (w["state"].as_str().unwrap().to_string(), w["ready"].as_bool().unwrap(), w["alive"].as_bool().unwrap())
    };
    yadtq_tests::wait_for(Duration::from_secs(60), "the second worker to be reported idle", || async {
        let workers = gw.get("/workers").await.body["workers"].take();
        state_of(&workers, &sid).0 == "idle"
    })
    .await;
    let workers = gw.get("/workers").await.body["workers"].take();
    assert_eq!(state_of(&workers, &fid), ("ready".into(), true, true), "{workers}");
    assert_eq!(state_of(&workers, &sid), ("idle".into(), true, true), "idle is ready, not a failure: {workers}");
    for (admin, state) in admins.iter().zip(["ready", "idle"]) {
        let r = reqwest::get(format!("http://{admin}/readyz")).await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!((status, body["state"].as_str(), body["ready"].as_bool()), (200, Some(state), Some(true)), "{body}");
    }

    assert!(second.terminate(Duration::from_secs(30)));
    let workers = gw.get("/workers").await.body["workers"].take();
    assert_eq!(state_of(&workers, &sid), ("stopped".into(), false, false), "{workers}");
}
