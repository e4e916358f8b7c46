//! Shutdown is bounded (issue: guarantees at the edges): SIGTERM ends a
//! process within its grace period plus a fixed bound even when Kafka or
//! PostgreSQL is unreachable, and a stopping process never takes the
//! maintenance leadership. Real processes; the tests stop the shared servers,
//! so they run serially like the other fault tests.

use std::time::{Duration, Instant};

use serde_json::json;
use yadtq_tests::{Servers, Stack};

const LONG: Duration = Duration::from_secs(120);
/// The grace period the tests give, in seconds.
const GRACE: u64 = 2;
/// What the issue allows past the grace period for the teardown itself.
const BOUND: Duration = Duration::from_secs(GRACE + 10);

/// SIGTERMs `proc` and asserts it exits 0 within [`BOUND`]; returns how long it took.
fn stops_in_time(proc: &mut yadtq_tests::Proc, what: &str) -> Duration {
    let t0 = Instant::now();
    let clean = proc.terminate(BOUND + Duration::from_secs(20));
    let took = t0.elapsed();
    eprintln!("{what}: exited {:.1} s after SIGTERM (clean exit: {clean})", took.as_secs_f64());
    assert!(clean, "{what} did not exit cleanly; log:\n{}", proc.log());
    assert!(took <= BOUND, "{what} took {took:?} to exit, more than the grace period plus 10 s");
    took
}

/// Runs `check` with a shared server stopped, and starts it again however
/// `check` ends (the other tests need it).
fn while_down(stop: fn(), start: fn(), check: impl FnOnce()) {
    stop();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    start();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[tokio::test]
async fn sigterm_is_bounded_while_kafka_is_down() {
    let stack = Stack::new("stop_nokafka").await;
    let grace = GRACE.to_string();
    let mut gw = stack.gateway(&["--shutdown-grace", &grace]).await;
    let mut w = stack.worker("worker", &["--shutdown-grace", &grace]).await;
    stack.wait_assigned(&w).await;
    stack.submit_many(&gw, 2, |_| json!({"task": "sleep", "args": [30]})).await;
    stack.wait_processing_on(stack.worker_id(&w).await, 2, LONG).await;

    while_down(Servers::stop_kafka, Servers::start_kafka, || {
        stops_in_time(&mut w, "worker with Kafka down");
        stops_in_time(&mut gw.proc, "gateway with Kafka down");
    });
}

#[tokio::test]
async fn sigterm_is_bounded_while_postgres_is_down() {
    let stack = Stack::new("stop_nopg").await;
    let grace = GRACE.to_string();
    let mut gw = stack.gateway(&["--shutdown-grace", &grace, "--db-acquire-timeout", "1"]).await;
    let mut w = stack.worker("worker", &["--shutdown-grace", &grace]).await;
    stack.wait_assigned(&w).await;
    // One task finishes during the outage (its outcome write waits), one runs on.
    stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [1]})).await;
    stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [60]})).await;
    stack.wait_processing_on(stack.worker_id(&w).await, 2, LONG).await;

    while_down(Servers::stop_postgres, Servers::start_postgres, || {
        std::thread::sleep(Duration::from_secs(2)); // the short sleep finishes; its outcome write waits
        stops_in_time(&mut w, "worker with PostgreSQL down");
        stops_in_time(&mut gw.proc, "gateway with PostgreSQL down");
    });
}

#[tokio::test]
async fn a_stopping_worker_never_takes_the_maintenance_leadership() {
    let stack = Stack::new("stop_leader").await;
    let mut gw = stack.gateway(&[]).await;
    gw.proc.wait_log("became maintenance leader", LONG).await;
    let w = stack.worker("worker", &["--shutdown-grace", "30"]).await;
    stack.wait_assigned(&w).await;
    stack.submit_many(&gw, 1, |_| json!({"task": "sleep", "args": [60]})).await;
    stack.wait_processing_on(stack.worker_id(&w).await, 1, LONG).await;

    // The worker starts its 30 s drain; then the leader dies, and the
    // stopping worker is the only process left to take the lease.
    w.signal("TERM");
    w.wait_log("shutting down: waiting for running tasks", LONG).await;
    gw.proc.kill9();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after_term = w.log().split("SIGTERM received").nth(1).unwrap_or_default().to_string();
    assert!(!after_term.is_empty(), "the worker logged its SIGTERM");
    assert!(!after_term.contains("became maintenance leader"), "a stopping worker took the leadership:\n{after_term}");
}
