//! Workflows end to end (issue 27, docs/workflows.md): real gateway and
//! workers (`yadtq-test-worker`: the built-ins, whose `sum` and `collect`
//! read their parents' results, and `fail_once`), real Kafka and PostgreSQL.
//! Each test also checks that the leader's repair pass found nothing to
//! repair: fan-in happened in the transactions that ended the parents.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yadtq_tests::{Gateway, Servers, Stack};

const LONG: Duration = Duration::from_secs(120);

/// POSTs `body` to `/workflows`; asserts `status` and returns the body.
async fn submit(gw: &Gateway, body: &Value, status: u16) -> Value {
    let a = gw.post_raw("/workflows", body.to_string(), &[]).await;
    assert_eq!(a.status, status, "{}", a.text);
    a.body
}

/// Long-polls `GET /workflows/{id}` until it is terminal.
async fn finished(gw: &Gateway, id: &str) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let a = gw.get(&format!("/workflows/{id}?wait=20")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if a.body["status"] != "running" {
            return a.body;
        }
        assert!(Instant::now() < deadline, "workflow {id} still running: {}", a.text);
    }
}

/// The node ids of a workflow answer, in order.
fn node_ids(wf: &Value) -> Vec<String> {
    wf["nodes"].as_array().expect("nodes").iter().map(|n| n["id"].as_str().expect("id").to_string()).collect()
}

/// Asserts the repair pass released nothing: its counter is 0 on the
/// gateway (which leads, having started first) and no process logged a repair.
async fn assert_no_repairs(gw: &Gateway, procs: &[&yadtq_tests::Proc]) {
    let metrics = gw.get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    let line = metrics.text.lines().find(|l| l.starts_with("yadtq_workflow_repairs_total ")).unwrap_or_default();
    assert_eq!(line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()), Some(0.0), "{line:?}");
    for p in procs.iter().copied().chain([&gw.proc]) {
        assert!(!p.log().contains("workflow repair: released"), "a process repaired a workflow node:\n{}", p.log());
    }
}

/// Rows of `task_attempts` per task among `ids`: (task id, attempts).
async fn attempts(stack: &Stack, ids: &[String]) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT t.id, count(a.attempt) FROM tasks t LEFT JOIN task_attempts a ON a.task_id = t.id
         WHERE t.id = ANY($1) GROUP BY t.id ORDER BY t.id",
    )
    .bind(ids)
    .fetch_all(&stack.db)
    .await
    .expect("attempts")
}

#[tokio::test]
async fn a_diamond_runs_its_last_node_once_after_both_parents_with_their_results() {
    let stack = Stack::new("wf_diamond").await;
    let gw = stack.gateway(&[]).await;
    let diamond = json!({"id": "d1", "tasks": [
        {"ref": "a", "task": "add", "args": [1, 2]},
        {"ref": "b", "task": "sum", "args": [10], "depends_on": ["a"]},
        {"ref": "c", "task": "sum", "args": [20], "depends_on": ["a"]},
        {"ref": "d", "task": "collect", "depends_on": ["b", "c"]},
    ]});

    // Refusals name the node and field.
    let mut bad = diamond.clone();
    bad["tasks"][3]["depends_on"][1] = json!("nope");
    let a = gw.post_raw("/workflows", bad.to_string(), &[]).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("tasks[3].depends_on[1]")), "{}", a.text);
    let mut cycle = diamond.clone();
    cycle["tasks"][0]["depends_on"] = json!(["d"]);
    let a = gw.post_raw("/workflows", cycle.to_string(), &[]).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.body["detail"].as_str().unwrap().contains("cycle"), "{}", a.text);
    let mut dup = diamond.clone();
    dup["tasks"][2]["ref"] = json!("b");
    let a = gw.post_raw("/workflows", dup.to_string(), &[]).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("tasks[2].ref")), "{}", a.text);
    // Nobody may take a node's id (or a schedule tick's) first.
    for id in ["wf:d1:a", "sched:x"] {
        let a = gw.submit(&json!({"task": "echo", "id": id})).await;
        assert_eq!((a.status, a.body["field"].as_str()), (400, Some("id")), "{}", a.text);
    }
    let a = gw
        .post_raw("/tasks/batch", json!({"tasks": [{"task": "echo"}]}).to_string(), &[("Idempotency-Key", "wf:x")])
        .await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("Idempotency-Key")), "{}", a.text);

    // Accepted with no worker running: a is queued, the others wait.
    let wf = submit(&gw, &diamond, 202).await;
    assert_eq!(node_ids(&wf), ["wf:d1:a", "wf:d1:b", "wf:d1:c", "wf:d1:d"]);
    let statuses: Vec<&str> = wf["nodes"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["queued", "waiting", "waiting", "waiting"]);
    let d = gw.get("/tasks/wf:d1:d").await.body;
    assert_eq!((d["status"].as_str(), d["workflow_id"].as_str()), (Some("waiting"), Some("d1")));
    assert_eq!(d["parents"], json!(["wf:d1:b", "wf:d1:c"]));
    let queues = gw.get("/queues").await.body;
    assert_eq!(queues["queues"][0]["waiting"], 3, "{queues}");
    let listed = gw.get("/tasks?status=waiting").await.body;
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 3, "{listed}");
    // The same workflow again is the same one (200); another body is 409.
    submit(&gw, &diamond, 200).await;
    let mut other = diamond.clone();
    other["tasks"][0]["args"] = json!([1, 3]);
    submit(&gw, &other, 409).await;

    let worker = stack.worker_binary("yadtq-test-worker", "worker", &[]).await;
    // One wait for the four tasks.
    let ids = node_ids(&wf);
    let waited = gw.post_raw("/tasks/wait", json!({"ids": ids, "until": "all", "timeout": 60}).to_string(), &[]).await;
    assert_eq!(waited.status, 200, "{}", waited.text);
    assert_eq!(waited.body["done"], true, "{}", waited.text);
    let results: Vec<&Value> = waited.body["tasks"].as_array().unwrap().iter().map(|t| &t["result"]).collect();
    assert_eq!(results[..3], [&json!(3), &json!(13), &json!(23)]);
    assert_eq!(results[3]["parents"], json!({"b": 13, "c": 23}));
    let done = finished(&gw, "d1").await;
    assert_eq!((done["status"].as_str(), &done["counts"]), (Some("success"), &json!({"success": 4})));
    let keys: Vec<String> = ids.clone();
    stack.assert_ran_once(&keys, "diamond").await;
    // d started after both parents finished.
    let after: bool = sqlx::query_scalar(
        "SELECT d.started_at >= (SELECT max(finished_at) FROM tasks WHERE id IN ('wf:d1:b', 'wf:d1:c'))
         FROM tasks d WHERE d.id = 'wf:d1:d'",
    )
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert!(after);
    let listing = gw.get("/workflows").await.body;
    assert_eq!(listing["workflows"][0]["status"], "success", "{listing}");
    assert_no_repairs(&gw, &[&worker]).await;
}

/// Issue 27's scale case: one root, 1,000 children, one fan-in node. Every
/// node runs once and the fan-in node receives 1,000 results. Prints the
/// fan-in latency (last parent `finished_at` to the fan-in's `started_at`),
/// the latency of 50 chains' hops (p50, p99) and the workflow's time against
/// 1,000 independent tasks on the same stack (figures, not assertions).
#[tokio::test]
async fn a_thousand_node_fan_out_and_fan_in_runs_every_node_once() {
    let stack = Stack::new("wf_fan").await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker_binary("yadtq-test-worker", "worker", &["--concurrency", "16"]).await;
    stack.wait_assigned(&worker).await;

    // 1,000 independent tasks first, for the comparison.
    let rows0 = rows_written(&stack, Duration::from_secs(1)).await;
    let batch: Vec<Value> = (0..1000).map(|i| json!({"task": "echo", "args": [i]})).collect();
    let mut plain = Vec::new();
    for chunk in batch.chunks(1000) {
        let a = gw.post_raw("/tasks/batch", json!({"tasks": chunk}).to_string(), &[]).await;
        assert_eq!(a.status, 202, "{}", a.text);
        plain.extend(a.body["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
    }
    stack.wait_terminal(&plain, LONG).await;
    let plain_time = span(&stack, &plain).await;
    let rows1 = rows_written(&stack, Duration::from_secs(11)).await;

    let mut tasks = vec![json!({"ref": "root", "task": "echo", "args": [0]})];
    tasks.extend(
        (0..1000).map(|i| json!({"ref": format!("n{i}"), "task": "add", "args": [i, 1], "depends_on": ["root"]})),
    );
    let refs: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
    tasks.push(json!({"ref": "sum", "task": "sum", "depends_on": refs}));
    let wf = submit(&gw, &json!({"id": "fan", "tasks": tasks}), 202).await;
    let done = finished(&gw, "fan").await;
    assert_eq!(done["status"], "success", "{}", done["counts"]);
    let ids = node_ids(&wf);
    let wf_time = span(&stack, &ids).await;
    let rows2 = rows_written(&stack, Duration::from_secs(11)).await;
    stack.assert_ran_once(&ids, "fan-out/fan-in").await;
    let sum = gw.get("/tasks/wf:fan:sum").await.body;
    assert_eq!(sum["result"], json!((1..=1000).sum::<i64>()), "{sum}");
    let fan_in: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM s.started_at - (SELECT max(finished_at) FROM tasks WHERE id LIKE 'wf:fan:n%'))::float8
         FROM tasks s WHERE s.id = 'wf:fan:sum'",
    )
    .fetch_one(&stack.db)
    .await
    .unwrap();
    // Where the workflow's time goes: submission to the root's start, the
    // root's finish to the first child's start (the fan-out), the children
    // (first start to last finish, as the 1,000 plain tasks' run), the sum's run.
    let phases: (f64, f64, f64, f64, f64) = sqlx::query_as(
        "WITH n AS (SELECT min(started_at) AS s, max(finished_at) AS f FROM tasks WHERE id LIKE 'wf:fan:n%'),
              p AS (SELECT min(started_at) AS s, max(finished_at) AS f FROM tasks WHERE id = ANY($1))
         SELECT extract(epoch FROM r.started_at - r.created_at)::float8, extract(epoch FROM n.s - r.finished_at)::float8,
                extract(epoch FROM n.f - n.s)::float8, extract(epoch FROM s.finished_at - s.started_at)::float8,
                extract(epoch FROM p.f - p.s)::float8
         FROM tasks r, tasks s, n, p WHERE r.id = 'wf:fan:root' AND s.id = 'wf:fan:sum'",
    )
    .bind(&plain)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    println!(
        "workflows: 1,000-node phases: submit to root start {:.2} s, root finish to first child start {:.1} ms, \
         children first start to last finish {:.2} s (plain tasks {:.2} s), sum run {:.1} ms",
        phases.0,
        phases.1 * 1000.0,
        phases.2,
        phases.4,
        phases.3 * 1000.0
    );

    // 50 chains of 5: 200 hops, each a fan-in of one parent.
    for c in 0..50 {
        let chain: Vec<Value> = (0..5)
            .map(|i| {
                let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
                json!({"ref": format!("s{i}"), "task": "echo", "args": [c, i], "depends_on": deps})
            })
            .collect();
        submit(&gw, &json!({"id": format!("chain{c}"), "tasks": chain}), 202).await;
    }
    for c in 0..50 {
        assert_eq!(finished(&gw, &format!("chain{c}")).await["status"], "success");
    }
    let hops: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.started_at - p.finished_at)::float8
         FROM workflow_edges e JOIN tasks p ON p.id = e.parent JOIN tasks c ON c.id = e.child
         WHERE e.workflow_id LIKE 'chain%' ORDER BY 1",
    )
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert_eq!(hops.len(), 200);
    assert!(hops.iter().all(|h| *h >= 0.0), "a child started before its parent finished: {hops:?}");
    let pct = |p: f64| hops[((hops.len() as f64 * p).ceil() as usize).min(hops.len()) - 1];
    println!(
        "workflows: 1,000-node fan-out/fan-in {wf_time:.2} s (1,000 independent tasks {plain_time:.2} s); \
         fan-in {:.1} ms; chain hops p50 {:.1} ms, p99 {:.1} ms; PostgreSQL rows written per node {:.1} \
         (per plain task {:.1})",
        fan_in * 1000.0,
        pct(0.5) * 1000.0,
        pct(0.99) * 1000.0,
        (rows2 - rows1) / ids.len() as f64,
        (rows1 - rows0) / plain.len() as f64,
    );
    assert_no_repairs(&gw, &[&worker]).await;
}

/// Rows this test's database has inserted, updated and deleted so far
/// (`pg_stat_database`, as the benchmark counts them), read after `settle`:
/// a backend that has gone idle flushes its counts up to 10 s later
/// (PostgreSQL's PGSTAT_IDLE_INTERVAL), so a shorter pause moves rows
/// from one phase's count to the next one's.
async fn rows_written(stack: &Stack, settle: Duration) -> f64 {
    tokio::time::sleep(settle).await;
    sqlx::query_scalar(
        "SELECT (tup_inserted + tup_updated + tup_deleted)::float8 FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&stack.db)
    .await
    .expect("rows written")
}

/// Seconds from the first submission to the last finish among `ids` (database clock).
async fn span(stack: &Stack, ids: &[String]) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM max(finished_at) - min(created_at))::float8 FROM tasks WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(&stack.db)
    .await
    .expect("span")
}

#[tokio::test]
async fn a_worker_killed_mid_workflow_leaves_no_node_run_twice_at_once() {
    let stack = Stack::new("wf_kill").await;
    let gw = stack.gateway(&[]).await;
    let mut victim = stack.worker_binary("yadtq-test-worker", "victim", &["--concurrency", "4"]).await;
    stack.wait_assigned(&victim).await;
    let victim_id = stack.worker_id(&victim).await;

    let mut tasks = vec![json!({"ref": "root", "task": "echo"})];
    tasks.extend(
        (0..12).map(|i| json!({"ref": format!("n{i}"), "task": "sleep", "args": [1.5], "depends_on": ["root"]})),
    );
    let refs: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    tasks.push(json!({"ref": "end", "task": "collect", "depends_on": refs}));
    let wf = submit(&gw, &json!({"id": "k1", "tasks": tasks}), 202).await;
    let running = stack.wait_processing_on(victim_id, 2, LONG).await;
    victim.kill9();
    let survivor = stack.worker_binary("yadtq-test-worker", "survivor", &["--concurrency", "8"]).await;

    let done = finished(&gw, "k1").await;
    assert_eq!(done["status"], "success", "{done}");
    let ids = node_ids(&wf);
    // The end node was released once and ran once; the others ran at most
    // twice, the first run being the killed worker's.
    let end = attempts(&stack, &["wf:k1:end".to_string()]).await;
    assert_eq!(end, [("wf:k1:end".to_string(), 1)]);
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_attempts a JOIN task_attempts b
           ON a.task_id = b.task_id AND a.attempt < b.attempt
         WHERE a.task_id = ANY($1) AND (a.finished_at IS NULL OR a.finished_at > b.started_at)",
    )
    .bind(&ids)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!(overlapping, 0, "attempts of one node overlapped");
    let lost: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT task_id FROM task_attempts WHERE task_id = ANY($1) AND outcome = 'worker_lost'",
    )
    .bind(&ids)
    .fetch_all(&stack.db)
    .await
    .unwrap();
    for id in &running {
        assert!(lost.contains(id), "{id} ran on the killed worker but has no worker_lost attempt");
    }
    for (id, n) in attempts(&stack, &ids).await {
        assert!(n == 1 || (n == 2 && lost.contains(&id)), "{id} ran {n} times");
    }
    let end = gw.get("/tasks/wf:k1:end").await.body;
    assert_eq!(end["result"]["parents"].as_object().unwrap().len(), 12, "{end}");
    assert_no_repairs(&gw, &[&survivor]).await;
}

/// A PostgreSQL restart while nodes run, then a leader change: the outcomes
/// that ended during the outage (and their fan-in, in the same transaction)
/// are written once PostgreSQL is back, every node runs once, and the new
/// leader's repair pass finds nothing.
#[tokio::test]
async fn a_postgres_restart_and_a_leader_change_mid_workflow_run_each_node_once() {
    let stack = Stack::new("wf_restart").await;
    // The first gateway leads (it started first); the second one stays.
    let mut leader = stack.gateway(&[]).await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker_binary("yadtq-test-worker", "worker", &["--concurrency", "8"]).await;
    stack.wait_assigned(&worker).await;
    let wid = stack.worker_id(&worker).await;
    let mut tasks = vec![json!({"ref": "root", "task": "echo"})];
    tasks.extend((0..6).map(|i| json!({"ref": format!("n{i}"), "task": "sleep", "args": [2], "depends_on": ["root"]})));
    let refs: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
    tasks.push(json!({"ref": "mid", "task": "collect", "depends_on": refs}));
    tasks.push(json!({"ref": "last", "task": "echo", "depends_on": ["mid"]}));
    let wf = submit(&gw, &json!({"id": "r1", "tasks": tasks}), 202).await;
    stack.wait_processing_on(wid, 4, LONG).await;

    Servers::stop_postgres();
    // The sleeps end while PostgreSQL is down; their outcomes wait in the worker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Servers::start_postgres();
    leader.proc.kill9();

    let done = finished(&gw, "r1").await;
    assert_eq!((done["status"].as_str(), &done["counts"]), (Some("success"), &json!({"success": 9})), "{done}");
    let ids = node_ids(&wf);
    stack.assert_ran_once(&ids, "nodes across a PostgreSQL restart and a leader change").await;
    let mid = gw.get("/tasks/wf:r1:mid").await.body;
    assert_eq!(mid["result"]["parents"].as_object().unwrap().len(), 6, "{mid}");
    // Another process takes the lease; its repair pass (every period, for
    // nodes older than two) runs a few times and finds nothing.
    let deadline = Instant::now() + LONG;
    while ![&gw.proc, &worker].iter().any(|p| p.log().contains("became maintenance leader")) {
        assert!(Instant::now() < deadline, "no process took the maintenance lease after the leader was killed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_no_repairs(&gw, &[&worker, &leader.proc]).await;
}

#[tokio::test]
async fn a_failure_cancels_exactly_its_descendants_and_a_retry_reopens_them() {
    let stack = Stack::new("wf_fail").await;
    let gw = stack.gateway(&[]).await;
    // Parents' results above 1,000 bytes in all fail their child (below).
    let worker = stack.worker_binary("yadtq-test-worker", "worker", &["--max-parent-results-bytes", "1000"]).await;
    // a (fails once) → b → d; a → c (runs anyway); x independent.
    let body = json!({"id": "f1", "tasks": [
        {"ref": "a", "task": "fail_once", "args": ["A"], "max_retries": 0},
        {"ref": "b", "task": "echo", "depends_on": ["a"]},
        {"ref": "c", "task": "collect", "depends_on": ["a"], "on_parent_failure": "run"},
        {"ref": "d", "task": "echo", "depends_on": ["b"]},
        {"ref": "x", "task": "echo"},
    ]});
    submit(&gw, &body, 202).await;
    let wf = finished(&gw, "f1").await;
    assert_eq!(wf["status"], "failed", "{wf}");
    let node = |r: &str| {
        let gw = &gw;
        let id = format!("/tasks/wf:f1:{r}");
        async move { gw.get(&id).await.body }
    };
    assert_eq!(node("a").await["error"]["kind"], "fail_once");
    for r in ["b", "d"] {
        let t = node(r).await;
        assert_eq!(
            (t["status"].as_str(), t["error"]["kind"].as_str()),
            (Some("cancelled"), Some("parent_failed")),
            "{t}"
        );
    }
    let c = node("c").await;
    assert_eq!((c["status"].as_str(), &c["result"]["failed"]), (Some("success"), &json!(["a"])), "{c}");
    assert_eq!(node("x").await["status"], "success");

    // b cannot be retried before a has succeeded.
    let a = gw.post_raw("/tasks/wf:f1:b/retry", "", &[]).await;
    assert_eq!(a.status, 409, "{}", a.text);
    // Retrying a re-opens b and d; this time a succeeds and they run.
    let a = gw.post_raw("/tasks/wf:f1:a/retry", "", &[]).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let wf = finished(&gw, "f1").await;
    assert_eq!(wf["status"], "success", "{wf}");
    assert_eq!(wf["counts"], json!({"success": 5}));
    let ids: Vec<String> = ["b", "d", "x"].iter().map(|r| format!("wf:f1:{r}")).collect();
    stack.assert_ran_once(&ids, "re-opened nodes").await;

    // A node whose parents' results exceed the worker's cap fails for good,
    // with its own error kind, on its first attempt; its child is cancelled.
    let big = "x".repeat(2000);
    let body = json!({"id": "big", "tasks": [
        {"ref": "a", "task": "echo", "args": [big]},
        {"ref": "b", "task": "echo", "depends_on": ["a"]},
        {"ref": "c", "task": "echo", "depends_on": ["b"]},
    ]});
    submit(&gw, &body, 202).await;
    let wf = finished(&gw, "big").await;
    assert_eq!(
        (wf["status"].as_str(), &wf["counts"]),
        (Some("failed"), &json!({"success": 1, "failed": 1, "cancelled": 1})),
        "{wf}"
    );
    let b = gw.get("/tasks/wf:big:b").await.body;
    assert_eq!((b["error"]["kind"].as_str(), b["attempts"].as_i64()), (Some("parents_too_large"), Some(1)), "{b}");
    let c = gw.get("/tasks/wf:big:c").await.body;
    assert_eq!(c["error"]["kind"], "parent_failed", "{c}");
    assert_no_repairs(&gw, &[&worker]).await;
}

#[tokio::test]
async fn a_workflow_cancel_leaves_nothing_running() {
    let stack = Stack::new("wf_cancel").await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker_binary("yadtq-test-worker", "worker", &[]).await;
    let mut tasks = vec![json!({"ref": "root", "task": "echo"})];
    tasks.extend(
        (0..3).map(|i| json!({"ref": format!("slow{i}"), "task": "sleep", "args": [60], "depends_on": ["root"]})),
    );
    tasks.push(json!({"ref": "end", "task": "echo", "depends_on": ["slow0", "slow1", "slow2"]}));
    let wf = submit(&gw, &json!({"id": "c1", "tasks": tasks}), 202).await;
    let ids = node_ids(&wf);
    yadtq_tests::wait_for(LONG, "the slow nodes to run", || async {
        stack.count_status(&ids, "processing").await == 3
    })
    .await;
    let a = gw.post_raw("/workflows/c1/cancel", "", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((a.body["cancelled"].as_u64(), a.body["requested"].as_u64()), (Some(1), Some(3)), "{}", a.text);
    let wf = finished(&gw, "c1").await;
    assert_eq!(wf["status"], "cancelled", "{wf}");
    assert_eq!(stack.count_status(&ids, "processing").await, 0);
    assert_eq!(wf["counts"], json!({"success": 1, "cancelled": 4}));
    assert_no_repairs(&gw, &[&worker]).await;
}

/// The examples of docs/workflows.md: each JSON block followed by an
/// `<!-- expect {ref: result} -->` comment, as (body, expected results).
fn documented_examples() -> Vec<(Value, serde_json::Map<String, Value>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/workflows.md");
    let text = std::fs::read_to_string(&path).expect("docs/workflows.md");
    let mut examples = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```json\n") {
        let block = &rest[start + 8..];
        let end = block.find("```").expect("a closed code block");
        let after = block[end + 3..].trim_start();
        if let Some(expect) = after.strip_prefix("<!-- expect ") {
            let expect = &expect[..expect.find("-->").expect("a closed comment")];
            let body: Value = serde_json::from_str(&block[..end]).expect("an example is JSON");
            let expected: Value = serde_json::from_str(expect).expect("an expectation is JSON");
            examples.push((body, expected.as_object().expect("{ref: result}").clone()));
        }
        rest = &block[end + 3..];
    }
    examples
}

#[tokio::test]
async fn the_documented_examples_run_as_documented() {
    let examples = documented_examples();
    assert_eq!(examples.len(), 4, "chain, fan-out/fan-in, diamond, map-reduce");
    let stack = Stack::new("wf_docs").await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker("worker", &[]).await;
    for (body, _) in &examples {
        submit(&gw, body, 202).await;
    }
    for (body, expected) in &examples {
        let id = body["id"].as_str().expect("an example names its id");
        assert_eq!(finished(&gw, id).await["status"], "success", "{id}");
        for (r, result) in expected {
            let t = gw.get(&format!("/tasks/wf:{id}:{r}")).await.body;
            assert_eq!(&t["result"], result, "{id}.{r}: {t}");
        }
    }
    assert_no_repairs(&gw, &[&worker]).await;
}

/// `yadtq workflows`: submit a file and wait (exit 0), a failing one (exit
/// 7), list, show, cancel.
#[tokio::test]
async fn the_cli_submits_waits_for_lists_and_cancels_workflows() {
    let stack = Stack::new("wf_cli").await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker_binary("yadtq-test-worker", "worker", &[]).await;
    let wid = stack.worker_id(&worker).await;
    let cli = |json: bool, args: &[&str]| {
        let mut cmd = std::process::Command::new(yadtq_tests::binary("yadtq"));
        cmd.args(["--url", &gw.base, "--api-key", &stack.api_key]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg("workflows").args(args).output().expect("run yadtq");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file = |name: &str, body: &Value| {
        let path = std::env::temp_dir().join(format!("{}-{name}.json", stack.namespace));
        std::fs::write(&path, body.to_string()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let diamond = file(
        "diamond",
        &json!({"id": "cli-d", "tasks": [
            {"ref": "a", "task": "add", "args": [1, 2]},
            {"ref": "b", "task": "sum", "args": [10], "depends_on": ["a"]},
            {"ref": "c", "task": "sum", "args": [20], "depends_on": ["a"]},
            {"ref": "d", "task": "collect", "depends_on": ["b", "c"]},
        ]}),
    );
    let (code, out, err) = cli(true, &["submit", &diamond, "--wait", "60"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let wf: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((wf["status"].as_str(), &wf["counts"]), (Some("success"), &json!({"success": 4})), "{wf}");
    let (code, out, _) = cli(false, &["get", "cli-d"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("workflow cli-d: success (success 4)"), "{out}");
    assert!(out.contains("wf:cli-d:d") && out.contains("b,c"), "{out}");

    let failing = file(
        "failing",
        &json!({"id": "cli-f", "tasks": [
            {"ref": "a", "task": "fail", "args": ["boom"], "max_retries": 0},
            {"ref": "b", "task": "echo", "depends_on": ["a"]},
        ]}),
    );
    let (code, out, err) = cli(false, &["submit", &failing, "--wait", "60"]);
    assert_eq!(code, Some(7), "{out}{err}");
    assert!(err.contains("workflow cli-f failed"), "{err}");

    let slow = file(
        "slow",
        &json!({"id": "cli-s", "tasks": [
            {"ref": "a", "task": "sleep", "args": [30]},
            {"ref": "b", "task": "echo", "depends_on": ["a"]},
        ]}),
    );
    assert_eq!(cli(true, &["submit", &slow]).0, Some(0));
    stack.wait_processing_on(wid, 1, LONG).await;
    let (code, out, err) = cli(true, &["cancel", "cli-s"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let cancelled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((cancelled["cancelled"].as_u64(), cancelled["requested"].as_u64()), (Some(1), Some(1)), "{cancelled}");
    let (code, out, _) = cli(true, &["get", "cli-s", "--wait", "60"]);
    assert_eq!(code, Some(7), "{out}");
    let listed: Value = serde_json::from_str(&cli(true, &["list"]).1).unwrap();
    let ids: Vec<&str> = listed["workflows"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cli-s", "cli-f", "cli-d"]);
}

#[tokio::test]
async fn a_command_node_reads_its_parents_from_the_file_it_is_given() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let handlers = dir.path().join("handlers.toml");
    std::fs::write(
        &handlers,
        r#"
        [handlers.parents]
        kind = "command"
        argv = ["/bin/sh", "-c", "cat \"$YADTQ_PARENTS_FILE\""]
        "#,
    )
    .expect("write handlers.toml");
    let stack = Stack::new("wf_command").await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker("worker", &["--handlers-file", handlers.to_str().unwrap()]).await;
    let body = json!({"id": "cmd", "tasks": [
        {"ref": "a", "task": "add", "args": [2, 3]},
        {"ref": "b", "task": "parents", "depends_on": ["a"]},
    ]});
    submit(&gw, &body, 202).await;
    assert_eq!(finished(&gw, "cmd").await["status"], "success");
    let b = gw.get("/tasks/wf:cmd:b").await.body;
    assert_eq!(b["result"], json!({"a": {"id": "wf:cmd:a", "status": "success", "result": 5, "error": null}}), "{b}");
    assert_no_repairs(&gw, &[&worker]).await;
}
