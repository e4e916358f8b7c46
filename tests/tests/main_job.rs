//! The main job end to end: real gateways and workers over real Apache Kafka
//! and PostgreSQL. Each test reads as the user story it checks.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yadtq_tests::{binary, wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// A random mixed task and the result it must produce.
fn mixed_task(i: u64) -> (Value, Value) {
    let (a, b) = ((i * 7919) % 1000, (i * 104729) % 97 + 1);
    match i % 5 {
        0 => (json!({"task": "add", "args": [a, b]}), json!(a + b)),
        1 => (json!({"task": "sub", "args": [a, b]}), json!(a as i64 - b as i64)),
        2 => (json!({"task": "multiply", "args": [a, b]}), json!(a * b)),
        3 => (json!({"task": "divide", "args": [a, b]}), json!(a as f64 / b as f64)),
        _ => (json!({"task": "echo", "args": [i, "é✓", {"k": [a]}]}), json!([i, "é✓", {"k": [a]}])),
    }
}

#[tokio::test]
async fn five_hundred_mixed_tasks_through_two_workers() {
    let stack = Stack::new("mixed").await;
    let gw = stack.gateway(&[]).await;
    let w1 = stack.worker("worker-1", &[]).await;
    let w2 = stack.worker("worker-2", &[]).await;
    // Both workers must own partitions before the burst, or one could drain it alone.
    stack.wait_assigned(&w1).await;
    stack.wait_assigned(&w2).await;

    let started = Instant::now();
    let submissions = futures::future::join_all((0..500u64).map(|i| {
        let gw = &gw;
        async move {
            let (body, expected) = mixed_task(i);
            let a = gw.submit(&body).await;
            assert_eq!(a.status, 202, "{}", a.text);
            (a.body["id"].as_str().unwrap().to_string(), expected)
        }
    }))
    .await;
    let ids: Vec<String> = submissions.iter().map(|(id, _)| id.clone()).collect();
    stack.wait_terminal(&ids, LONG).await;
    eprintln!("500 tasks submitted and finished in {:.2} s", started.elapsed().as_secs_f64());

    for (id, expected) in &submissions {
        let t = gw.get(&format!("/tasks/{id}")).await.body;
        assert_eq!(t["status"], "success", "{t}");
        assert_eq!(&t["result"], expected, "{t}");
    }
    let workers: i64 = sqlx::query_scalar("SELECT count(DISTINCT worker_id) FROM tasks WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(workers, 2, "both workers executed some tasks");
    let not_once: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT task_id FROM task_attempts WHERE task_id = ANY($1)
         GROUP BY task_id HAVING count(*) <> 1) x",
    )
    .bind(&ids)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!(not_once, 0, "every task ran exactly once");
}

/// Runs one of the README's curl lines with `sh` against the gateway at
/// `host` (for `localhost:8080`), with `id` for the README's placeholder id,
/// and without its trailing comment; returns curl's output.
/// Runs one of the README's shell lines as written (its trailing `# comment`
/// dropped), against `host` and with `id` for the README's `1b0e…`, `cargo
/// run -q -p yadtq-gateway --` being the built gateway, in an environment of
/// `env`; its standard output.
fn readme_line(line: &str, host: &str, id: &str, env: &[(&str, &str)]) -> String {
    let command = line.split_once(" #").map_or(line, |(c, _)| c).trim();
    let gateway = binary("yadtq-gateway");
    let command = command
        .replace("localhost:8080", host)
        .replace("1b0e\u{2026}", id)
        .replace("cargo run -q -p yadtq-gateway --", &gateway.display().to_string());
    let out =
        std::process::Command::new("sh").arg("-c").arg(&command).envs(env.iter().copied()).output().expect("run sh");
    assert!(out.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's curl lines ("Using it"), run as written with curl after its
/// line that makes an API key: the key works, the submission answers 202 with
/// its task, the read shows it done with 20, the listing shows the worker
/// alive.
#[tokio::test]
async fn the_readme_curl_lines_run() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(lines.len(), 3, "the README's curl lines: {lines:?}");
    let key_lines: Vec<&str> = readme.lines().filter(|l| l.starts_with("export YADTQ_API_KEY=")).collect();
    assert_eq!(key_lines.len(), 1, "the README's line that makes a key: {key_lines:?}");
    let stack = Stack::new("readme_curl").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &[]).await;
    let host = gw.base.trim_start_matches("http://");

    // The key line, then its variable, in one shell: what the next lines get.
    let key_line =
        format!("{}; printf %s \"$YADTQ_API_KEY\"", key_lines[0].split_once(" #").map_or(key_lines[0], |(c, _)| c));
    let key = readme_line(&key_line, host, "", &[("DATABASE_URL", &stack.database_url)]);
    assert!(key.starts_with("yadtq_"), "the key line printed {key:?}");
    let env = [("YADTQ_API_KEY", key.as_str())];

    let submitted = readme_line(lines[0], host, "", &env);
    assert!(submitted.starts_with("HTTP/1.1 202"), "{submitted}");
    let task: Value = serde_json::from_str(submitted.lines().last().unwrap()).unwrap();
    let id = task["id"].as_str().unwrap().to_string();
    assert!(submitted.to_lowercase().contains(&format!("location: /tasks/{id}")), "{submitted}");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read: Value = serde_json::from_str(&readme_line(lines[1], host, &id, &env)).unwrap();
        if read["status"] == "success" {
            assert_eq!(read["result"], json!(20));
            break;
        }
        assert!(Instant::now() < deadline, "task {id} still {} after 60 s", read["status"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let workers: Value = serde_json::from_str(&readme_line(lines[2], host, &id, &env)).unwrap();
    let workers = workers["workers"].as_array().expect("a page of workers");
    assert!(!workers.is_empty() && workers.iter().all(|w| w["alive"] == true), "{workers:?}");

    // The same lines without the key are refused.
    let anonymous = readme_line(lines[0], host, "", &[("YADTQ_API_KEY", "")]);
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
}

#[tokio::test]
async fn the_seed_example_round_trips() {
    let stack = Stack::new("seed").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    let seed = json!({"task-id": "12345abc", "task": "multiply", "args": [4, 5]});
    let a = gw.submit(&seed).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.location.as_deref(), Some("/tasks/12345abc"));
    assert_eq!(a.body["id"], "12345abc");
    let t = gw.wait_task("12345abc", LONG).await;
    assert_eq!(t["status"], "success");
    assert_eq!(t["result"], json!(20));
    assert_eq!(t["attempts"], 1);

    // The same id again is the same task, not a second execution.
    let again = gw.submit(&seed).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["result"], json!(20));
    let other = gw.submit(&json!({"task-id": "12345abc", "task": "multiply", "args": [4, 6]})).await;
    assert_eq!(other.status, 409, "{}", other.text);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = '12345abc'")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(runs, 1);

    // Failures are readable: division by zero and a name nobody serves.
    let div = gw.submit(&json!({"task": "divide", "args": [1, 0]})).await.body["id"].as_str().unwrap().to_string();
    let unk = gw.submit(&json!({"task": "no_such_task"})).await.body["id"].as_str().unwrap().to_string();
    let div = gw.wait_task(&div, LONG).await;
    assert_eq!((div["status"].as_str(), div["error"]["kind"].as_str()), (Some("failed"), Some("invalid_arguments")));
    assert_eq!(div["error"]["message"], "division by zero");
    let unk = gw.wait_task(&unk, LONG).await;
    assert_eq!((unk["status"].as_str(), unk["error"]["kind"].as_str()), (Some("failed"), Some("unknown_task")));

    // Logs written to a file are plain text (colour codes only on a terminal).
    for (who, log) in [("gateway", gw.proc.log()), ("worker", w.log())] {
        assert!(log.contains("INFO"), "{who} log is empty:\n{log}");
        assert!(!log.contains('\u{1b}'), "{who} log carries ANSI escape codes:\n{log}");
    }
}

#[tokio::test]
async fn read_your_write_without_any_worker() {
    let stack = Stack::new("noworker").await;
    let gw = stack.gateway(&[]).await;
    let missing = gw.get(&format!("/tasks/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
    assert_eq!(gw.get("/tasks/not%20an%20id").await.status, 400);

    let a = gw.submit(&json!({"task": "add", "args": [1, 2]})).await;
    assert_eq!(a.status, 202);
    let id = a.body["id"].as_str().unwrap();
    let t = gw.get(&format!("/tasks/{id}")).await;
    assert_eq!((t.status, t.body["status"].as_str()), (200, Some("queued")));
    assert_eq!(gw.get("/workers").await.body, json!({"workers": [], "next_cursor": null}));
}

#[tokio::test]
async fn a_killed_worker_is_declared_dead_and_its_tasks_finish_elsewhere() {
    let stack = Stack::new("kill").await;
    let gw = stack.gateway(&[]).await;
    let mut victim = stack.worker("victim", &["--concurrency", "4"]).await;
    let survivor = stack.worker("survivor", &["--concurrency", "4"]).await;
    stack.wait_assigned(&victim).await;
    stack.wait_assigned(&survivor).await;
    let (victim_id, survivor_id) = (stack.worker_id(&victim).await, stack.worker_id(&survivor).await);

    let mut ids = Vec::new();
    for _ in 0..16 {
        let a = gw.submit(&json!({"task": "sleep", "args": [2]})).await;
        ids.push(a.body["id"].as_str().unwrap().to_string());
    }
    let db = stack.db.clone();
    wait_for(LONG, "victim running tasks", || {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tasks WHERE status = 'processing' AND worker_id = $1")
                .bind(victim_id)
                .fetch_one(&db)
                .await
                .unwrap()
                > 0
        }
    })
    .await;
    let held: Vec<String> = sqlx::query_scalar("SELECT id FROM tasks WHERE status = 'processing' AND worker_id = $1")
        .bind(victim_id)
        .fetch_all(&stack.db)
        .await
        .unwrap();
    victim.kill9();
    let killed_at = Instant::now();

    // Dead-after is 7 s in tests; allow the maintenance period and polling on top.
    let dead = Duration::from_secs(7 + 4);
    wait_for(dead, "victim reported dead by GET /workers", || {
        let gw = &gw;
        async move {
            let w = gw.get("/workers").await.body["workers"].take();
            w.as_array().unwrap().iter().any(|w| w["id"] == victim_id.to_string() && w["alive"] == false)
        }
    })
    .await;
    eprintln!("victim reported dead {:.1} s after SIGKILL", killed_at.elapsed().as_secs_f64());
    let alive = gw.get("/workers?alive=true").await.body["workers"].take();
    assert_eq!(alive.as_array().unwrap().len(), 1, "{alive}");
    assert_eq!(alive[0]["id"], survivor_id.to_string());

    stack.wait_terminal(&ids, LONG).await;
    for id in &ids {
        let t = gw.get(&format!("/tasks/{id}")).await.body;
        assert_eq!(t["status"], "success", "{t}");
    }
    for id in &held {
        let t = gw.get(&format!("/tasks/{id}")).await.body;
        assert_eq!(t["worker_id"], survivor_id.to_string(), "{t}");
        assert_eq!(t["attempts"], 2, "{t}");
        let outcomes: Vec<String> =
            sqlx::query_scalar("SELECT outcome FROM task_attempts WHERE task_id = $1 ORDER BY attempt")
                .bind(id)
                .fetch_all(&stack.db)
                .await
                .unwrap();
        assert_eq!(outcomes, ["worker_lost", "success"]);
    }
}

#[tokio::test]
async fn bad_input_gets_a_problem_document_naming_the_field() {
    let stack = Stack::new("badinput").await;
    let gw = stack.gateway(&["--max-body-bytes", "2048", "--max-json-depth", "6", "--max-task-name-len", "20"]).await;
    let cases: Vec<(String, u16, &str)> = vec![
        (format!(r#"{{"task": "echo", "args": ["{}"]}}"#, "x".repeat(3000)), 413, "body"),
        (r#"{"task": "echo", "args": [[[[[[[1]]]]]]]}"#.into(), 400, "body"),
        ("{not json".into(), 400, "body"),
        (r#"{"args": [1]}"#.into(), 400, "task"),
        (r#"{"task": "has space"}"#.into(), 400, "task"),
        (format!(r#"{{"task": "{}"}}"#, "a".repeat(21)), 400, "task"),
        (r#"{"task": 7}"#.into(), 400, "task"),
        (r#"{"task": "add", "args": {"a": 1}}"#.into(), 400, "args"),
        (r#"{"task": "add", "kwargs": [1]}"#.into(), 400, "kwargs"),
        (r#"{"task": "add", "id": "no/slashes"}"#.into(), 400, "id"),
        (r#"{"task": "add", "priority": 9}"#.into(), 400, "priority"),
        (r#"{"task": "add", "args": ["\ud800"]}"#.into(), 400, "body"),
    ];
    for (body, status, field) in cases {
        let a = gw.post_raw("/tasks", body.clone(), &[]).await;
        assert_eq!(a.status, status, "{body:.80}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json", "{body:.80}");
        assert_eq!(a.body["field"], field, "{body:.80}: {}", a.text);
        assert_eq!(a.body["status"], status);
        assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let long_key = "k".repeat(129);
    let a = gw.post_raw("/tasks", r#"{"task": "add"}"#, &[("idempotency-key", &long_key)]).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("Idempotency-Key")));
    let a = gw.get("/workers?alive=maybe").await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("alive")));
    let a = gw.get(&format!("/tasks/{}", "x".repeat(129))).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("id")));

    // Nothing was stored, and the gateway keeps serving.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(rows, 0);
    assert_eq!(gw.submit(&json!({"task": "add", "args": [1, 2]})).await.status, 202);
    assert_eq!(gw.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn two_gateways_share_nothing_but_the_database_and_broker() {
    let stack = Stack::new("twogw").await;
    let a = stack.gateway(&[]).await;
    let b = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &[]).await;
    let sub = a.submit(&json!({"task": "add", "args": [2, 3]})).await;
    let id = sub.body["id"].as_str().unwrap();
    let via_b = b.get(&format!("/tasks/{id}")).await;
    assert_eq!(via_b.status, 200);
    assert_eq!(via_b.body["task"], "add");
    let done_b = b.wait_task(id, LONG).await;
    let done_a = a.get(&format!("/tasks/{id}")).await.body;
    assert_eq!(done_a, done_b);
    assert_eq!(done_a["result"], json!(5));
    let ready = b.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body["postgres"].as_str(), ready.body["kafka"].as_str()),
        (200, Some("up"), Some("up"))
    );
}

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = std::process::Command::new(binary("yadtq-gateway")).arg("openapi").output().unwrap();
    assert!(generated.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json")).unwrap();
    assert!(
        String::from_utf8(generated.stdout).unwrap() == committed,
        "openapi/openapi.json is stale: run `cargo run -p yadtq-gateway -- openapi > openapi/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&committed).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: HashSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "/tasks",
        "/tasks/batch",
        "/tasks/{id}",
        "/tasks/{id}/events",
        "/tasks/{id}/attempts",
        "/tasks/{id}/cancel",
        "/tasks/{id}/retry",
        "/workers",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/admin/keys",
        "/admin/keys/{id}/revoke",
        "/admin/audit",
        "/me",
        "/queues",
        "/dead-letters",
        "/dead-letters/{partition}/{offset}",
        "/dead-letters/{partition}/{offset}/replay",
        "/schedules",
        "/schedules/{id}",
        "/schedules/{id}/trigger",
        "/schedules/{id}/backfill",
        "/tasks/wait",
        "/workflows",
        "/workflows/{id}",
        "/workflows/{id}/cancel",
        "/limits",
        "/limits/{name}",
    ];
    assert_eq!(paths, HashSet::from(expected));
    // What generated SDKs need (scripts/lint-openapi.sh checks the rest):
    // one unique operationId per operation, and only the declared path
    // parameters (`id`; a dead letter's `partition` and `offset`; a limit's `name`).
    let mut ids = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId")));
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                assert!(
                    place != "path" || ["id", "partition", "offset", "name"].contains(&name),
                    "{method} {path}: {name} declared in the path"
                );
            }
        }
    }
    ids.sort_unstable();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "operationIds must be unique");
    // A submission without `task` is refused, so the schema says it is required.
    assert_eq!(doc["components"]["schemas"]["SubmitRequest"]["required"], json!(["task"]));
}
