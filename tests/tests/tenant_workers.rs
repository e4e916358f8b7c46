//! Dedicated tenants against the real gateway and workers: a tenant the
//! gateways declare dedicated (`--dedicated-tenants`) is run only by workers
//! started with `--tenants` naming it, and every other tenant only by the
//! shared workers; its tasks wait while none of its workers runs; a rescue
//! sends its task back to its own topic; records a tenant's old route left
//! on the shared topic are sent back to the publisher, not run, and those
//! left on a tenant's own topic when it stops being dedicated reach the
//! shared workers through the maintenance leader's re-send. What a user
//! sees: task statuses over GET /tasks, the attempts' worker ids over
//! GET /tasks/{id}/attempts, and GET /queues' lag.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use yadtq_core::auth::Scope;
use yadtq_tests::{mint_key, wait_for, Client, Gateway, Stack};

const LONG: Duration = Duration::from_secs(90);

/// A client of `gw` with a fresh submit, read and operate key of `tenant`.
async fn tenant_client(stack: &Stack, gw: &Gateway, tenant: &str) -> Client {
    gw.as_key(Some(&mint_key(&stack.db, tenant, &[Scope::Submit, Scope::Read, Scope::Operate], None).await))
}

/// Ids of `n` `echo` tasks submitted by `client`, with `prefix`ed ids.
async fn submit(client: &Client, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let a = client.submit(&json!({"task": "echo", "args": [i], "id": id})).await;
        assert_eq!(a.status, 202, "{}", a.text);
        ids.push(id);
    }
    ids
}

/// The statuses of the tenant's tasks `ids`, as `client` reads them.
async fn statuses(client: &Client, ids: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for id in ids {
        let a = client.get(&format!("/tasks/{id}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        out.insert(a.body["status"].as_str().unwrap_or_default().to_string());
    }
    out
}

/// Waits until every task of `ids` succeeded, as `client` reads them.
async fn wait_success(client: &Client, ids: &[String]) {
    for id in ids {
        let t = client.wait_task(id, LONG).await;
        assert_eq!(t["status"], "success", "{t}");
    }
}

/// The worker ids of every attempt of the tasks `ids`, as `client` reads them.
async fn attempt_workers(client: &Client, ids: &[String]) -> Vec<Uuid> {
    let mut out = Vec::new();
    for id in ids {
        let a = client.get(&format!("/tasks/{id}/attempts")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let attempts = a.body.as_array().cloned().unwrap_or_default();
        assert!(!attempts.is_empty(), "task {id} has no attempt: {}", a.text);
        out.extend(attempts.iter().map(|at| at["worker_id"].as_str().expect("worker_id").parse::<Uuid>().unwrap()));
    }
    out
}

/// Waits until every task of `tenant` has been sent to Kafka (`published_at` set).
async fn wait_sent(stack: &Stack, tenant: &str) {
    yadtq_tests::wait_for(LONG, "the tenant's tasks sent to Kafka", || async {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE tenant = $1 AND published_at IS NULL")
            .bind(tenant)
            .fetch_one(&stack.db)
            .await
            .expect("count");
        unsent == 0
    })
    .await;
}

/// GET /queues' consumer lag of queue `queue`.
async fn lag(admin: &Client, queue: &str) -> Option<i64> {
    let a = admin.get("/queues").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let queues = a.body["queues"].as_array().expect("queues").clone();
    queues.iter().find(|q| q["queue"] == queue).and_then(|q: &Value| q["consumer_lag"].as_i64())
}

#[tokio::test]
async fn a_dedicated_tenant_runs_only_on_its_own_workers_and_waits_for_them() {
    let stack = Stack::new("ten_dedicated").await;
    let gw = stack.gateway(&["--dedicated-tenants", "acme"]).await;
    let (acme, beta) = (tenant_client(&stack, &gw, "acme").await, tenant_client(&stack, &gw, "beta").await);

    let shared = stack.worker("shared", &[]).await;
    let shared_id = stack.worker_id(&shared).await;
    stack.wait_assigned(&shared).await;
    let acme_ids = submit(&acme, "a", 10).await;
    let mut beta_ids = submit(&beta, "b", 10).await;
    wait_success(&beta, &beta_ids).await;

    // No worker of acme's runs: its tasks stay queued, however long the
    // shared worker has been idle, and their records wait on acme's topic.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(statuses(&acme, &acme_ids).await, BTreeSet::from(["queued".to_string()]));
    let listed = acme.get("/tasks?status=queued").await;
    assert_eq!(listed.body["tasks"].as_array().map(Vec::len), Some(10), "{}", listed.text);
    // Records are published after the 202, in the background.
    wait_for(LONG, "the lag to count acme's topic", || async { lag(&gw, "default").await.is_some_and(|l| l >= 10) })
        .await;

    // A worker naming a tenant no gateway declared dedicated says so.
    let ghost = stack.worker("ghost", &["--tenants", "ghost"]).await;
    ghost.wait_log("tenants not declared dedicated", LONG).await;

    let own = stack.worker("acme", &["--tenants", "acme"]).await;
    let own_id = stack.worker_id(&own).await;
    wait_success(&acme, &acme_ids).await;
    // The shared tenants' tasks submitted now still go to the shared worker only.
    let more = submit(&beta, "c", 10).await;
    wait_success(&beta, &more).await;
    beta_ids.extend(more);

    let acme_workers: BTreeSet<Uuid> = attempt_workers(&acme, &acme_ids).await.into_iter().collect();
    assert_eq!(acme_workers, BTreeSet::from([own_id]), "acme's tasks ran on acme's worker only");
    let beta_workers: BTreeSet<Uuid> = attempt_workers(&beta, &beta_ids).await.into_iter().collect();
    assert_eq!(beta_workers, BTreeSet::from([shared_id]), "beta's tasks ran on the shared worker only");

    // GET /workers says whom each worker serves: null for the shared one;
    // other tenants' names only to admin keys.
    assert_eq!(worker_tenants(&gw, shared_id).await, Value::Null);
    assert_eq!(worker_tenants(&gw, own_id).await, json!(["acme"]));
    assert_eq!(worker_tenants(&acme, own_id).await, json!(["acme"]));
    assert_eq!(worker_tenants(&beta, own_id).await, json!([]), "beta does not learn acme's name");
}

/// The `tenants` field of worker `id` in GET /workers, as `client` reads it.
async fn worker_tenants(client: &Client, id: Uuid) -> Value {
    let a = client.get("/workers?alive=true").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let workers = a.body["workers"].as_array().cloned().unwrap_or_default();
    let w = workers.iter().find(|w| w["id"] == id.to_string()).unwrap_or_else(|| panic!("no worker {id}: {}", a.text));
    w["tenants"].clone()
}

#[tokio::test]
async fn a_dedicated_tenants_rescued_task_goes_back_to_its_own_workers() {
    let stack = Stack::new("ten_rescue").await;
    let gw = stack.gateway(&["--dedicated-tenants", "acme"]).await;
    let acme = tenant_client(&stack, &gw, "acme").await;
    let shared = stack.worker("shared", &[]).await;
    let shared_id = stack.worker_id(&shared).await;
    let mut first = stack.worker("acme-1", &["--tenants", "acme"]).await;
    let first_id = stack.worker_id(&first).await;
    stack.wait_assigned(&first).await;

    let a = acme.submit(&json!({"task": "sleep", "args": [4], "id": "long"})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    stack.wait_processing_on(first_id, 1, LONG).await;
    first.kill9();
    let second = stack.worker("acme-2", &["--tenants", "acme"]).await;
    let second_id = stack.worker_id(&second).await;

    let t = acme.wait_task("long", LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    let workers = attempt_workers(&acme, &["long".to_string()]).await;
    assert_eq!(workers, [first_id, second_id], "killed on the first, rescued to the second dedicated worker");
    assert!(!workers.contains(&shared_id));
}

#[tokio::test]
async fn tasks_queued_before_a_tenant_became_dedicated_reach_its_workers() {
    let stack = Stack::new("ten_change").await;
    let mut before = stack.gateway(&[]).await;
    let acme = tenant_client(&stack, &before, "acme").await;
    // Sent to the shared topic while acme is shared, with no worker running.
    let ids = submit(&acme, "a", 5).await;
    wait_sent(&stack, "acme").await;
    before.proc.terminate(Duration::from_secs(15));

    let gw = stack.gateway(&["--dedicated-tenants", "acme"]).await;
    let acme = tenant_client(&stack, &gw, "acme").await;
    let audit = gw.get("/admin/audit").await;
    assert!(audit.text.contains("dedicated_tenants.set"), "the change is audited: {}", audit.text);
    // The shared worker reads acme's old records and sends them back rather than running them.
    let shared = stack.worker("shared", &[]).await;
    let shared_id = stack.worker_id(&shared).await;
    shared.wait_log("sent back to the publisher", LONG).await;
    let own = stack.worker("acme", &["--tenants", "acme"]).await;
    let own_id = stack.worker_id(&own).await;
    wait_success(&acme, &ids).await;
    let workers: BTreeSet<Uuid> = attempt_workers(&acme, &ids).await.into_iter().collect();
    assert_eq!(workers, BTreeSet::from([own_id]));
    assert!(!workers.contains(&shared_id));
}

#[tokio::test]
async fn tasks_left_on_a_tenants_own_topic_reach_the_shared_workers_once_it_is_shared_again() {
    let stack = Stack::new("ten_unshare").await;
    let mut before = stack.gateway(&["--dedicated-tenants", "acme"]).await;
    let acme = tenant_client(&stack, &before, "acme").await;
    // Sent to acme's own topic, which no worker will read again.
    let ids = submit(&acme, "a", 5).await;
    wait_sent(&stack, "acme").await;
    before.proc.terminate(Duration::from_secs(15));

    let gw = stack.gateway(&[]).await;
    let acme = tenant_client(&stack, &gw, "acme").await;
    let shared = stack.worker("shared", &[]).await;
    let shared_id = stack.worker_id(&shared).await;
    stack.wait_assigned(&shared).await;
    // The shared worker does not read acme's old topic: the tasks wait for
    // the leader's re-send (tenants::reroute_settle after the change, about
    // 36 s with the harness's maintenance period), then run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(statuses(&acme, &ids).await, BTreeSet::from(["queued".to_string()]));
    for id in &ids {
        let t = acme.wait_task(id, Duration::from_secs(120)).await;
        assert_eq!(t["status"], "success", "{t}");
    }
    let workers = attempt_workers(&acme, &ids).await;
    assert_eq!(workers, vec![shared_id; ids.len()], "each task ran once, on the shared worker");
}
