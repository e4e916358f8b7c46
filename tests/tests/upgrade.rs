//! The rolling upgrade (docs/deployment.md, "Upgrades"): the previous
//! release's gateway and worker run beside this release's, on this release's
//! schema, as they do while a deploy replaces processes one at a time. Tasks
//! submitted on either side run once and read the same on both; this
//! release reads every row the previous one wrote (tasks, attempts, workers,
//! keys); a status neither release writes yet reads verbatim on both (so
//! the next release's new statuses meet readers that tolerate them); the
//! previous release's processes then stop and this release's finish what
//! they left.
//!
//! The previous release's binaries come from `YADTQ_PREV_BIN_DIR`, which
//! `scripts/test.sh` sets from `scripts/prev-release.sh dir` (the pinned
//! commit, built once per machine). Without it the test says so and passes
//! vacuously, as the cluster and secured tests do without their servers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use yadtq_tests::{Client, Gateway, Proc, Stack};

const LONG: Duration = Duration::from_secs(120);

/// The directory of the previous release's binaries, or `None` (with a note
/// on standard error) when the run did not provide one.
fn previous_release() -> Option<PathBuf> {
    match std::env::var_os("YADTQ_PREV_BIN_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("skipped: YADTQ_PREV_BIN_DIR is not set (scripts/test.sh sets it from scripts/prev-release.sh)");
            None
        }
    }
}

/// One side of the upgrade: a gateway and a worker of one release.
struct Side {
    gw: Gateway,
    worker: Proc,
    worker_id: String,
}

/// Starts a gateway and a worker from the binaries in `bin_dir`.
async fn side(stack: &mut Stack, bin_dir: PathBuf, name: &str) -> Side {
    let this = std::mem::replace(&mut stack.launch.bin_dir, bin_dir);
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker(&format!("worker-{name}"), &["--concurrency", "8"]).await;
    stack.launch.bin_dir = this;
    let worker_id = stack.worker_id(&worker).await.to_string();
    Side { gw, worker, worker_id }
}

/// Submits through `gw`: `n` single `add` tasks (ids `<tag>-<i>`, result
/// `2i`), one batch of 10 more, and one `fail` task that retries once; returns
/// every id.
async fn submit_wave(gw: &Client, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let a = gw.submit(&json!({"task": "add", "args": [i, i], "id": format!("{tag}-{i}")})).await;
        assert_eq!(a.status, 202, "{tag}-{i}: {}", a.text);
        ids.push(format!("{tag}-{i}"));
    }
    let batch: Vec<Value> =
        (n..n + 10).map(|i| json!({"task": "add", "args": [i, i], "id": format!("{tag}-{i}")})).collect();
    let a = gw.post_raw("/tasks/batch", json!({ "tasks": batch }).to_string(), &[]).await;
    assert_eq!(a.status, 202, "{tag} batch: {}", a.text);
    ids.extend((n..n + 10).map(|i| format!("{tag}-{i}")));
    let f = gw
        .submit(&json!({"task": "fail", "args": ["on purpose"], "id": format!("{tag}-fail"), "max_retries": 1}))
        .await;
    assert_eq!(f.status, 202, "{}", f.text);
    ids.push(format!("{tag}-fail"));
    ids
}

/// The fields both releases must agree on for a task.
fn essentials(t: &Value) -> Value {
    json!({
        "id": t["id"], "task": t["task"], "args": t["args"], "status": t["status"],
        "result": t["result"], "attempts": t["attempts"], "error_kind": t["error"]["kind"],
        "worker_id": t["worker_id"],
    })
}

/// Asserts every task of `ids` reached its expected end, and reads the same
/// (and its attempts the same) through every gateway of `gateways`.
async fn assert_finished_and_read_alike(gateways: &[&Client], ids: &[String]) {
    for id in ids {
        let mut seen = Vec::new();
        for gw in gateways {
            let t = gw.get(&format!("/tasks/{id}")).await;
            assert_eq!(t.status, 200, "GET /tasks/{id} on {}: {}", gw.base, t.text);
            let attempts = gw.get(&format!("/tasks/{id}/attempts")).await;
            assert_eq!(attempts.status, 200, "{}", attempts.text);
            seen.push((essentials(&t.body), attempts.body));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{id} reads differently across releases: {seen:?}");
        let (t, _) = &seen[0];
        if id.ends_with("-fail") {
            assert_eq!((&t["status"], &t["attempts"]), (&json!("failed"), &json!(2)), "{t}");
        } else {
            let i: i64 = id.rsplit('-').next().and_then(|i| i.parse().ok()).expect("numbered id");
            assert_eq!((&t["status"], &t["result"]), (&json!("success"), &json!(2 * i)), "{t}");
        }
    }
}

/// Ids of the workers that ran any of `ids` (from their attempts).
async fn workers_of(stack: &Stack, ids: &[String]) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT worker_id::text FROM task_attempts WHERE task_id = ANY($1) AND worker_id IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(&stack.db)
    .await
    .expect("workers of the attempts")
    .into_iter()
    .collect()
}

#[tokio::test]
async fn the_previous_release_runs_beside_this_one_and_hands_over() {
    let Some(prev) = previous_release() else { return };
    // The stack's database already has this release's schema; the previous
    // release's processes start on it (their migrator accepts the newer versions).
    let mut stack = Stack::new("upgrade").await;
    let this = stack.launch.bin_dir.clone();
    let old = side(&mut stack, prev, "old").await;
    let new = side(&mut stack, this, "new").await;
    stack.wait_assigned(&old.worker).await;
    stack.wait_assigned(&new.worker).await;

    // Both releases at once: each gateway's tasks run on both releases' workers.
    let from_old = submit_wave(&old.gw, "old", 40).await;
    let from_new = submit_wave(&new.gw, "new", 40).await;
    // The same client id on the other release's gateway: the same task.
    let again = new.gw.submit(&json!({"task": "add", "args": [0, 0], "id": "old-0"})).await;
    assert_eq!((again.status, again.body["id"].as_str()), (200, Some("old-0")), "{}", again.text);
    let clash = new.gw.submit(&json!({"task": "add", "args": [9, 9], "id": "old-0"})).await;
    assert_eq!(clash.status, 409, "{}", clash.text);
    let all: Vec<String> = from_old.iter().chain(&from_new).cloned().collect();
    stack.wait_terminal(&all, LONG).await;
    let done: Vec<String> = all.iter().filter(|id| !id.ends_with("-fail")).cloned().collect();
    stack.assert_ran_once(&done, "tasks of both releases").await;
    assert_finished_and_read_alike(&[&old.gw, &new.gw], &all).await;
    let both = BTreeSet::from([old.worker_id.clone(), new.worker_id.clone()]);
    assert_eq!(workers_of(&stack, &from_old).await, both, "the old gateway's tasks ran on both releases' workers");
    assert_eq!(workers_of(&stack, &from_new).await, both, "the new gateway's tasks ran on both releases' workers");

    // Rows the previous release wrote, read by this one: its worker's row and a key it made.
    let workers = new.gw.get("/workers").await;
    assert_eq!(workers.status, 200, "{}", workers.text);
    let listed: BTreeSet<String> = workers.body["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["alive"] == true)
        .map(|w| w["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, both, "{}", workers.text);
    let made =
        old.gw.post_raw("/admin/keys", json!({"scopes": ["submit", "read"], "name": "old"}).to_string(), &[]).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let token = made.body["token"].as_str().expect("token");
    let me = new.gw.as_key(Some(token)).get("/me").await;
    assert_eq!((me.status, &me.body["key_id"]), (200, &made.body["key"]["id"]), "{}", me.text);
    for gw in [&old.gw, &new.gw] {
        let queues = gw.get("/queues").await;
        assert_eq!(queues.status, 200, "{}", queues.text);
        let listed = gw.get("/tasks?limit=500").await;
        assert_eq!(listed.body["tasks"].as_array().map(Vec::len), Some(all.len()), "{}", gw.base);
    }

    // A status neither release writes yet (as a later release's `held`
    // will be): both read it verbatim, as not finished.
    let a = new.gw.submit(&json!({"task": "add", "args": [1, 1], "id": "parked"})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    stack.wait_terminal(&["parked".to_string()], LONG).await;
    stack.put_in_new_status("held", &["parked"]).await;
    for gw in [&old.gw, &new.gw] {
        let t = gw.get("/tasks/parked").await;
        assert_eq!((t.status, t.body["status"].as_str()), (200, Some("held")), "{}: {}", gw.base, t.text);
        let listed = gw.get("/tasks?limit=500").await;
        assert_eq!(listed.body["tasks"].as_array().map(Vec::len), Some(all.len() + 1), "{}", listed.text);
        let queues = gw.get("/queues").await;
        assert_eq!(queues.status, 200, "{}: {}", gw.base, queues.text);
    }

    // Workflows need every worker to fan in: while the previous release's
    // worker is alive, this release's gateway refuses them (503, the reason named).
    let diamond = json!({"id": "up", "tasks": [
        {"ref": "a", "task": "add", "args": [1, 1]},
        {"ref": "b", "task": "add", "args": [2, 2], "depends_on": ["a"]},
        {"ref": "c", "task": "add", "args": [3, 3], "depends_on": ["a"]},
        {"ref": "d", "task": "add", "args": [4, 4], "depends_on": ["b", "c"]},
    ]});
    let refused = new.gw.post_raw("/workflows", diamond.to_string(), &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);
    assert!(refused.body["detail"].as_str().unwrap_or_default().contains("older"), "{}", refused.text);
    // Limits too (feature level 2): declaring one, and a task naming one.
    let limit = json!({"concurrency": 1}).to_string();
    let json_body = [("content-type", "application/json")];
    let refused = new.gw.send(reqwest::Method::PUT, "/limits/up", &json_body, Some(limit.clone())).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);
    assert!(refused.body["detail"].as_str().unwrap_or_default().contains("older"), "{}", refused.text);
    let refused = new.gw.submit(&json!({"task": "add", "args": [1, 1], "limits": ["up"]})).await;
    assert_eq!(refused.status, 503, "{}", refused.text);

    // The hand-over: the previous release's processes stop (as a deploy
    // replaces them) while its gateway's last tasks wait; this release runs them.
    let last = submit_wave(&old.gw, "last", 30).await;
    let Side { gw: mut old_gw, worker: mut old_worker, .. } = old;
    assert!(old_worker.terminate(LONG), "the previous release's worker stops on SIGTERM");
    assert!(old_gw.proc.terminate(LONG), "the previous release's gateway stops on SIGTERM");
    stack.wait_terminal(&last, LONG).await;
    let done: Vec<String> = last.iter().filter(|id| !id.ends_with("-fail")).cloned().collect();
    stack.assert_ran_once(&done, "tasks left by the previous release").await;
    assert_finished_and_read_alike(&[&new.gw], &last).await;
    let listed = new.gw.get("/tasks?limit=500").await;
    assert_eq!(listed.body["tasks"].as_array().map(Vec::len), Some(all.len() + 1 + last.len()), "{}", listed.text);

    // Only this release's workers now: the workflow is accepted and runs.
    let accepted = new.gw.post_raw("/workflows", diamond.to_string(), &[]).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let nodes: Vec<String> = ["a", "b", "c", "d"].iter().map(|r| format!("wf:up:{r}")).collect();
    stack.wait_terminal(&nodes, LONG).await;
    stack.assert_ran_once(&nodes, "the workflow after the upgrade").await;
    assert_eq!(stack.count_status(&nodes, "success").await, 4);
    let declared = new.gw.send(reqwest::Method::PUT, "/limits/up", &json_body, Some(limit)).await;
    assert_eq!(declared.status, 201, "{}", declared.text);
    let limited = new.gw.submit(&json!({"id": "up-limited", "task": "add", "args": [1, 1], "limits": ["up"]})).await;
    assert_eq!(limited.status, 202, "{}", limited.text);
    stack.wait_terminal(&["up-limited".to_string()], LONG).await;
    assert_eq!(stack.count_status(&["up-limited".to_string()], "success").await, 1);
}
