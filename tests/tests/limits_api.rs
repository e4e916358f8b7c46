//! Limits through the API (issue 28, docs/limits.md): the routes' refusals
//! (400 naming the field, 409, 422), scopes, tenant isolation and the
//! feature-level gate; a task held by a limit shown `held` with the limit
//! that holds it, then run once a slot frees. Real gateway and workers, real
//! Kafka and PostgreSQL.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use yadtq_core::auth::Scope;
use yadtq_tests::{Answer, Client, Stack};

const LONG: Duration = Duration::from_secs(30);

/// `PUT /limits/{name}` with JSON `body`.
async fn put(c: &Client, name: &str, body: &Value) -> Answer {
    c.send(Method::PUT, &format!("/limits/{name}"), &[("content-type", "application/json")], Some(body.to_string()))
        .await
}

/// Asserts `a` is a problem with `status` naming `field`.
fn refused(a: &Answer, status: u16, field: &str) {
    assert_eq!((a.status, a.body["field"].as_str()), (status, Some(field)), "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
}

#[tokio::test]
async fn limit_routes_refuse_bad_input_check_scopes_isolate_tenants_and_gate_older_workers() {
    let mut stack = Stack::new("limits_routes").await;
    stack.set_env("YADTQ_MAX_LIMIT_TASKS", "3");
    let gw = stack.gateway(&[]).await;
    let c = gw.as_key(Some(&stack.api_key));

    // 400 naming the field.
    for (body, field) in [
        (json!({}), "concurrency"),
        (json!({"tasks": ["echo"]}), "concurrency"),
        (json!({"concurrency": -1}), "concurrency"),
        (json!({"concurrency": 1.5}), "concurrency"),
        (json!({"rate": {"count": 0, "per_seconds": 1}}), "rate.count"),
        (json!({"rate": {"count": 1, "per_seconds": 0}}), "rate.per_seconds"),
        (json!({"rate": {"count": 1, "per_seconds": -2}}), "rate.per_seconds"),
        (json!({"rate": {"count": 1}}), "rate"),
        (json!({"concurrency": 1, "key": "kwargs/customer"}), "key"),
        (json!({"concurrency": 1, "key": "/meta/customer"}), "key"),
        (json!({"concurrency": 1, "key": "/kwargs/a~2b"}), "key"),
        (json!({"concurrency": 1, "bogus": true}), "bogus"),
        (json!({"concurrency": 1, "tasks": ["a", "b", "c", "d"]}), "tasks"),
        (json!({"concurrency": 1, "tasks": ["ok", "9-not-a-name"]}), "tasks[1]"),
    ] {
        refused(&put(&c, "l", &body).await, 400, field);
    }
    refused(&put(&c, "not%20a%20name", &json!({"concurrency": 1})).await, 400, "name");
    assert_eq!(gw.get("/limits").await.body["limits"], json!([]), "nothing stored by a refusal");

    // Created 201, the same again 200; the key cannot change (409).
    let spec = json!({"concurrency": 2, "key": "/kwargs/customer", "tasks": ["send", "echo"]});
    let a = put(&c, "api", &spec).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.location.as_deref(), Some("/limits/api"));
    assert_eq!(
        a.body,
        json!({"name": "api", "concurrency": 2, "rate": null, "key": "/kwargs/customer", "tasks": ["echo", "send"]})
    );
    let a = put(&c, "api", &json!({"concurrency": 3, "key": "/kwargs/customer"})).await;
    assert_eq!((a.status, &a.body["concurrency"], &a.body["tasks"]), (200, &json!(3), &json!([])), "{}", a.text);
    refused(&put(&c, "api", &json!({"concurrency": 3, "key": "/kwargs/other"})).await, 409, "key");
    refused(&put(&c, "api", &json!({"concurrency": 3})).await, 409, "key");
    let a = put(&c, "mail", &json!({"rate": {"count": 100, "per_seconds": 60}})).await;
    assert_eq!(a.body["rate"], json!({"count": 100, "per_seconds": 60.0}), "{}", a.text);
    put(&c, "zeta", &json!({"concurrency": 0})).await;

    // Listing by name, keyset paged.
    let page = gw.get("/limits?limit=2").await.body;
    let names: Vec<&str> = page["limits"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api", "mail"]);
    let next = page["next_cursor"].as_str().expect("a next page");
    let page = gw.get(&format!("/limits?limit=2&cursor={next}")).await.body;
    assert_eq!((page["limits"][0]["name"].as_str(), &page["next_cursor"]), (Some("zeta"), &Value::Null));
    refused(&gw.get("/limits?limit=0").await, 400, "limit");
    let one = gw.get("/limits/api").await;
    assert_eq!((one.status, &one.body["buckets"], &one.body["next_cursor"]), (200, &json!([]), &Value::Null));
    refused(&gw.get("/limits/api?cursor=xyz").await, 400, "cursor");
    assert_eq!(gw.get("/limits/none").await.status, 404);

    // Submissions: an unknown limit is 422 naming it; too many names 400.
    let a = gw.submit(&json!({"task": "echo", "limits": ["api", "nope"]})).await;
    refused(&a, 422, "limits[1]");
    assert!(a.body["detail"].as_str().unwrap().contains("'nope'"), "{}", a.text);
    let nine: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
    refused(&gw.submit(&json!({"task": "echo", "limits": nine})).await, 400, "limits");
    let batch = json!({"tasks": [{"task": "echo", "limits": ["api"]}, {"task": "echo", "limits": ["nope"]}]});
    refused(&gw.post_raw("/tasks/batch", batch.to_string(), &[]).await, 422, "tasks[1].limits[0]");
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(none, 0, "a refused batch stores nothing");

    // Scopes: `read` reads, `operate` manages.
    let reader = yadtq_tests::mint_key(&stack.db, "default", &[Scope::Read], None).await;
    let r = gw.as_key(Some(&reader));
    assert_eq!(r.get("/limits/api").await.status, 200);
    assert_eq!(put(&r, "api", &json!({"concurrency": 1, "key": "/kwargs/customer"})).await.status, 403);
    assert_eq!(r.send(Method::DELETE, "/limits/api", &[], None).await.status, 403);
    let submitter = yadtq_tests::mint_key(&stack.db, "default", &[Scope::Submit], None).await;
    assert_eq!(gw.as_key(Some(&submitter)).get("/limits").await.status, 403);

    // Another tenant sees none of them, and names its own freely.
    let acme = yadtq_tests::mint_key(&stack.db, "acme", &[Scope::Read, Scope::Operate, Scope::Submit], None).await;
    let acme = gw.as_key(Some(&acme));
    assert_eq!(acme.get("/limits").await.body["limits"], json!([]));
    assert_eq!(acme.get("/limits/api").await.status, 404);
    assert_eq!(acme.send(Method::DELETE, "/limits/api", &[], None).await.status, 404);
    refused(&acme.submit(&json!({"task": "echo", "limits": ["api"]})).await, 422, "limits[0]");
    assert_eq!(put(&acme, "api", &json!({"concurrency": 1})).await.status, 201, "its own, keyless");
    assert_eq!(gw.get("/limits/api").await.body["key"], "/kwargs/customer", "the default tenant's is unchanged");

    // The gate: while a worker of an older release (feature level 1, which
    // knows workflows but not limits) is alive, limits answer 503.
    let old = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, version, queues, task_names, concurrency, feature_level)
         VALUES ($1, 'old', 1, '0.0.0', '{default}', '{}', 1, 1)",
    )
    .bind(old)
    .execute(&stack.db)
    .await
    .unwrap();
    let a = put(&c, "api", &json!({"concurrency": 5, "key": "/kwargs/customer"})).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.headers.get("retry-after").is_some(), "{:?}", a.headers);
    assert_eq!(gw.submit(&json!({"task": "echo", "limits": ["api"]})).await.status, 503);
    let batch = json!({"tasks": [{"task": "echo"}, {"task": "echo", "limits": ["api"]}]});
    assert_eq!(gw.post_raw("/tasks/batch", batch.to_string(), &[]).await.status, 503);
    assert_eq!(gw.submit(&json!({"task": "echo"})).await.status, 202, "plain tasks are not gated");
    assert_eq!(gw.get("/limits/api").await.status, 200, "reads are not gated");
    let wf = json!({"tasks": [{"ref": "a", "task": "echo"}]});
    assert_eq!(gw.post_raw("/workflows", wf.to_string(), &[]).await.status, 202, "level 1 is enough for workflows");
    sqlx::query("UPDATE workers SET stopped_at = now() WHERE id = $1").bind(old).execute(&stack.db).await.unwrap();
    assert_eq!(put(&c, "api", &json!({"concurrency": 5, "key": "/kwargs/customer"})).await.status, 200);

    // Delete: 204, then gone.
    assert_eq!(c.send(Method::DELETE, "/limits/zeta", &[], None).await.status, 204);
    assert_eq!(c.send(Method::DELETE, "/limits/zeta", &[], None).await.status, 404);
    assert_eq!(gw.get("/limits/zeta").await.status, 404);
}

#[tokio::test]
async fn a_held_task_shows_its_limit_and_runs_when_a_slot_frees() {
    let stack = Stack::new("limits_held").await;
    let gw = stack.gateway(&[]).await;
    let c = gw.as_key(Some(&stack.api_key));
    assert_eq!(put(&c, "customer", &json!({"concurrency": 1, "key": "/kwargs/customer"})).await.status, 201);
    assert_eq!(put(&c, "paused", &json!({"concurrency": 0})).await.status, 201);

    // No worker yet: one slot per customer, so c1's second task is held.
    let task = |id: &str, customer: &str| json!({"id": id, "task": "sleep", "args": [1], "kwargs": {"customer": customer}, "limits": ["customer"]});
    let statuses = [("t1", "c1"), ("t2", "c1"), ("t3", "c2")];
    for (id, customer) in statuses {
        let a = gw.submit(&task(id, customer)).await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    let status = |id: &'static str| {
        let gw = &gw;
        async move { gw.get(&format!("/tasks/{id}")).await.body }
    };
    assert_eq!(status("t1").await["status"], "queued");
    assert_eq!(status("t3").await["status"], "queued");
    let t2 = status("t2").await;
    assert_eq!(t2["status"], "held", "{t2}");
    assert_eq!(t2["limits"], json!([{"name": "customer", "bucket": "\"c1\"", "held": true}]), "{t2}");
    assert!(status("t1").await["limits"][0]["held"] == true, "t1 holds the slot, so the bucket is full");
    let plain = gw.submit(&json!({"id": "p", "task": "echo"})).await;
    assert_eq!(plain.status, 202);
    assert!(plain.body.get("limits").is_none(), "no limits key for a task without limits: {}", plain.text);
    assert!(status("p").await.get("limits").is_none());
    // The listing filter, the queues' count, the limit's buckets.
    let held = gw.get("/tasks?status=held").await.body;
    let ids: Vec<&str> = held["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t2"]);
    assert!(held["tasks"][0].get("limits").is_none(), "limits are on the single-task view only");
    let q = gw.get("/queues").await.body;
    assert_eq!((&q["queues"][0]["held"], &q["queues"][0]["queued"]), (&json!(1), &json!(3)), "{q}");
    assert_eq!(q["queues"][0]["other"], json!({}), "{q}");
    let limit = gw.get("/limits/customer?limit=1").await.body;
    assert_eq!(
        limit["buckets"],
        json!([{"bucket": "\"c1\"", "running": 1, "held": 1, "releases_in_window": 0}]),
        "{limit}"
    );
    let next = limit["next_cursor"].as_str().expect("a second page").to_string();
    let limit = gw.get(&format!("/limits/customer?limit=1&cursor={next}")).await.body;
    assert_eq!(limit["buckets"][0]["bucket"], "\"c2\"", "{limit}");
    assert_eq!(limit["next_cursor"], Value::Null);
    // limits is not part of the idempotency comparison.
    let mut again = task("t2", "c1");
    again.as_object_mut().unwrap().remove("limits");
    let a = gw.submit(&again).await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("held")), "{}", a.text);

    // A paused limit holds a task until the limit is deleted.
    let a = gw.submit(&json!({"id": "t4", "task": "echo", "limits": ["paused"]})).await;
    assert_eq!((a.status, a.body["status"].as_str()), (202, Some("held")), "{}", a.text);

    // Only queued tasks went to Kafka: a worker runs t1 and t3, then t2
    // once t1 freed the slot.
    let _worker = stack.worker_binary("yadtq-test-worker", "worker", &[]).await;
    let t1 = gw.wait_task("t1", LONG).await;
    let t2 = gw.wait_task("t2", LONG).await;
    assert_eq!((t1["status"].as_str(), t2["status"].as_str()), (Some("success"), Some("success")));
    let (t1_end, t2_start) = (t1["finished_at"].as_str().unwrap(), t2["started_at"].as_str().unwrap());
    let parse = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert!(parse(t2_start) >= parse(t1_end), "t2 started {t2_start}, before t1 ended {t1_end}");
    assert_eq!(gw.wait_task("t3", LONG).await["status"], "success");
    assert!(status("t2").await.get("limits").is_none(), "a finished task shows no limits: {}", status("t2").await);
    assert_eq!(status("t4").await["status"], "held");

    // A held task is cancelled at once, and never replayed to Kafka.
    let a = gw.submit(&json!({"id": "t5", "task": "echo", "limits": ["paused"]})).await;
    assert_eq!(a.body["status"], "held", "{}", a.text);
    let cancelled = gw.post_raw("/tasks/t5/cancel", "", &[]).await;
    assert_eq!((cancelled.status, cancelled.body["status"].as_str()), (200, Some("cancelled")), "{}", cancelled.text);

    assert_eq!(c.send(Method::DELETE, "/limits/paused", &[], None).await.status, 204);
    assert_eq!(gw.wait_task("t4", LONG).await["status"], "success");
    assert!(status("t4").await.get("limits").is_none(), "finished, and its only limit is gone");
}

/// docs/limits.md's curl lines, run as written (against this test's
/// gateway, with its key): each answers 2xx and does what the page says.
#[tokio::test]
async fn the_docs_examples_run() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/limits.md")).unwrap();
    let lines: Vec<&str> = doc.lines().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(lines.len(), 8, "the page's curl lines: {lines:?}");
    let stack = Stack::new("limits_docs").await;
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
    assert_eq!(
        run(lines[0]),
        (
            201,
            json!({"name": "customer-api", "concurrency": 1, "rate": null, "key": "/kwargs/customer_id", "tasks": []})
        )
    );
    assert_eq!(run(lines[1]).1["rate"], json!({"count": 100, "per_seconds": 60.0}));
    assert_eq!(run(lines[2]).1["status"], "queued");
    let (status, second) = run(lines[3]);
    assert_eq!((status, second["status"].as_str()), (202, Some("held")));
    let held = run(lines[4]).1;
    assert_eq!(held["status"], "held");
    assert_eq!(held["limits"], json!([{"name": "customer-api", "bucket": "42", "held": true}]));
    assert_eq!(run(lines[5]).1["buckets"], json!([{"bucket": "42", "running": 1, "held": 1, "releases_in_window": 0}]));
    assert_eq!(run(lines[6]).1["limits"].as_array().unwrap().len(), 2);
    assert_eq!(run(lines[7]).0, 204);
    assert_eq!(gw.get("/tasks/sync-2").await.body["status"], "queued", "released by the delete");
}

/// `yadtq limits ...` and `yadtq submit --limit` against a gateway.
#[tokio::test]
async fn the_cli_manages_limits() {
    let stack = Stack::new("limits_cli").await;
    let gw = stack.gateway(&[]).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(yadtq_tests::binary("yadtq"))
            .args(["--url", &gw.base, "--api-key", &stack.api_key, "--json"])
            .args(args)
            .output()
            .expect("run yadtq");
        assert!(out.status.success(), "yadtq {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let put = cli(&["limits", "put", "api", "--concurrency", "0", "--key", "/kwargs/c", "--task", "echo"]);
    assert_eq!(put, json!({"name": "api", "concurrency": 0, "rate": null, "key": "/kwargs/c", "tasks": ["echo"]}));
    let rated = cli(&["limits", "put", "mail", "--rate", "10/60"]);
    assert_eq!(rated["rate"], json!({"count": 10, "per_seconds": 60.0}));
    let names: Vec<Value> =
        cli(&["limits", "list", "--all"])["limits"].as_array().unwrap().iter().map(|l| l["name"].clone()).collect();
    assert_eq!(names, [json!("api"), json!("mail")]);
    let task = cli(&["submit", "sleep", "0", "--kwargs", r#"{"c": 1}"#, "--id", "cli-held", "--limit", "api"]);
    assert_eq!(task["status"], "held", "{task}");
    assert_eq!(
        cli(&["limits", "get", "api"])["buckets"],
        json!([{"bucket": "1", "running": 0, "held": 1, "releases_in_window": 0}])
    );
    assert_eq!(cli(&["list", "--status", "held"])["tasks"][0]["id"], "cli-held");
    cli(&["limits", "delete", "api"]);
    assert_eq!(gw.get("/limits/api").await.status, 404);
    assert_eq!(gw.get("/tasks/cli-held").await.body["status"], "queued", "released by the delete");
}
