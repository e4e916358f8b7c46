//! Handlers in any language, end to end: a real worker started with
//! `--handlers-file` runs HTTP handlers (served by a small axum server inside
//! the test) and command handlers (scripts written to a temporary directory).

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use yadtq_tests::{wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// Writes `text` as `name` in `dir`; returns its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("utf-8 path").to_string()
}

/// A stack whose worker loads `toml` as its `--handlers-file` (written in
/// `dir`): the stack, a gateway and that worker.
async fn with_handlers(test: &str, dir: &Path, toml: &str) -> (Stack, yadtq_tests::Gateway, yadtq_tests::Proc) {
    let handlers = write(dir, "handlers.toml", toml);
    let stack = Stack::new(test).await;
    let gw = stack.gateway(&[]).await;
    let worker = stack.worker("worker", &["--handlers-file", &handlers]).await;
    (stack, gw, worker)
}

/// Starts an HTTP server on a free loopback port: `/add` answers the sum of
/// the task's args and echoes what it received, `/busy` answers 503.
async fn serve_handlers() -> String {
    let app = Router::new()
        .route(
            "/add",
            post(|Json(task): Json<Value>| async move {
                let sum: i64 = task["args"].as_array().into_iter().flatten().filter_map(Value::as_i64).sum();
                Json(json!({"sum": sum, "received": task}))
            }),
        )
        .route("/busy", post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "overloaded, try later") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

/// Submits `body` and returns the task id.
async fn submit(gw: &yadtq_tests::Gateway, body: Value) -> String {
    let a = gw.submit(&body).await;
    assert_eq!(a.status, 202, "{}", a.text);
    a.body["id"].as_str().expect("id").to_string()
}

/// Pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(marker) {
            found.push(name);
        }
    }
    found
}

#[tokio::test]
async fn http_handlers_answer_with_json_and_fail_by_status() {
    let base = serve_handlers().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (stack, gw, w) = with_handlers(
        "handlers_http",
        dir.path(),
        &format!(
            r#"
        [handlers.remote_add]
        kind = "http"
        url = "{base}/add"
        timeout = 10

        [handlers.remote_busy]
        kind = "http"
        url = "{base}/busy"
        "#
        ),
    )
    .await;
    let names: Vec<String> = sqlx::query_scalar("SELECT task_names FROM workers WHERE pid = $1")
        .bind(w.pid() as i32)
        .fetch_one(&stack.db)
        .await
        .expect("worker row");
    assert!(names.contains(&"remote_add".to_string()) && names.contains(&"multiply".to_string()), "{names:?}");

    let add = submit(&gw, json!({"task": "remote_add", "args": [2, 40], "kwargs": {"unit": "cm"}})).await;
    let t = gw.wait_task(&add, LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    assert_eq!(t["result"]["sum"], 42, "{t}");
    assert_eq!(
        t["result"]["received"],
        json!({"id": add, "task": "remote_add", "args": [2, 40], "kwargs": {"unit": "cm"}, "attempt": 1}),
        "the endpoint receives the task JSON"
    );

    // 503 is retryable; with no retries allowed the task ends failed at once.
    let busy = submit(&gw, json!({"task": "remote_busy", "args": [], "max_retries": 0})).await;
    let t = gw.wait_task(&busy, LONG).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "http_status", "{t}");
    let message = t["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("503") && message.contains("(retryable)"), "{message}");
    assert!(message.contains("overloaded, try later"), "the message quotes the body: {message}");
}

#[tokio::test]
async fn command_handlers_take_json_on_stdin_and_answer_on_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = write(
        dir.path(),
        "wc.py",
        "import json, os, sys\n\
         task = json.load(sys.stdin)\n\
         text = task['args'][0]\n\
         token = {'YADTQ_ATTEMPT', 'YADTQ_TASK_ID'}\n\
         leaked = sorted(k for k in os.environ if (k == 'DATABASE_URL' or k.startswith('YADTQ_')) and k not in token)\n\
         json.dump({'words': len(text.split()), 'id': task['id'], 'upper': task['kwargs'].get('upper', False),\n\
                    'lang': os.environ.get('LANG'), 'leaked': leaked,\n\
                    'token': [os.environ['YADTQ_TASK_ID'], os.environ['YADTQ_ATTEMPT']]}, sys.stdout)\n",
    );
    let (_stack, gw, _w) = with_handlers(
        "handlers_cmd",
        dir.path(),
        &format!(
            r#"
        [handlers.wc]
        kind = "command"
        argv = ["python3", "{script}"]
        timeout = 60
        env = {{ LANG = "C.UTF-8" }}

        [handlers.broken]
        kind = "command"
        argv = ["/bin/sh", "-c", "echo 'cannot open input.png: no such file' >&2; exit 1"]
        "#
        ),
    )
    .await;

    let wc = submit(&gw, json!({"task": "wc", "args": ["the quick brown fox"], "kwargs": {"upper": true}})).await;
    let broken = submit(&gw, json!({"task": "broken", "args": [], "max_retries": 0})).await;

    let t = gw.wait_task(&wc, LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    assert_eq!(
        t["result"],
        json!({"words": 4, "id": wc, "upper": true, "lang": "C.UTF-8", "leaked": [], "token": [wc, "1"]}),
        "{t}"
    );

    let t = gw.wait_task(&broken, LONG).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "command_failed", "{t}");
    let message = t["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("exit code 1 (retryable)"), "{message}");
    assert!(message.contains("cannot open input.png: no such file"), "stderr is in the message: {message}");
}

/// A command handler's environment is an allowlist: `PATH`, the names its
/// `pass_env` lists (when the worker has them), its `env` table, and the
/// variables the worker sets for the attempt. The worker's secrets
/// (`DATABASE_URL`, `KAFKA_BOOTSTRAP`, its `YADTQ_*` settings and API key, an
/// `AWS_SECRET_ACCESS_KEY`, `HOME`) never reach it.
#[tokio::test]
async fn command_handlers_get_only_path_their_allowlist_and_the_task_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = write(
        dir.path(),
        "env.py",
        "import json, os, sys\n\
         json.load(sys.stdin)\n\
         json.dump(dict(os.environ), sys.stdout)\n",
    );
    // The interpreter itself, not a version manager's shim on PATH (which
    // sets variables of its own before it runs it).
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8(python.stdout).expect("utf-8").trim().to_string();
    let handlers = write(
        dir.path(),
        "handlers.toml",
        &format!(
            r#"
        [handlers.env]
        kind = "command"
        argv = ["{python}", "{script}"]
        pass_env = ["HANDLER_REGION", "NOT_SET_ON_THE_WORKER"]
        env = {{ LANG = "C.UTF-8" }}
        "#
        ),
    );
    let stack = Stack::new("handlers_env").await;
    let gw = stack.gateway(&[]).await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let _w = stack
        .with_env(&[("AWS_SECRET_ACCESS_KEY", secret), ("HANDLER_REGION", "eu-west-1"), ("HOME", "/root")])
        .worker("worker", &["--handlers-file", &handlers])
        .await;

    let id = submit(&gw, json!({"task": "env", "max_retries": 0})).await;
    let t = gw.wait_task(&id, LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    let env = t["result"].as_object().expect("the handler's environment");
    let mut names: Vec<&str> = env.keys().map(String::as_str).filter(|k| !k.starts_with("TRACE")).collect();
    names.sort_unstable();
    assert_eq!(names, ["HANDLER_REGION", "LANG", "PATH", "YADTQ_ATTEMPT", "YADTQ_TASK_ID"], "{t}");
    assert_eq!(env["HANDLER_REGION"], "eu-west-1");
    assert_eq!(env["PATH"], std::env::var("PATH").unwrap_or_default(), "the worker's PATH");
    assert_eq!(env["YADTQ_TASK_ID"], id);
    assert_eq!(env["YADTQ_ATTEMPT"], "1");
    let text = t["result"].to_string();
    for leaked in [secret, &stack.database_url, &stack.api_key, &stack.kafka] {
        assert!(!text.contains(leaked), "{leaked} reached the handler: {text}");
    }
}

#[tokio::test]
async fn a_timed_out_command_leaves_no_process_behind() {
    // A unique marker: `sleep 301.5` appears in no other process.
    let marker = "sleep 301.5";
    assert!(processes_with(marker).is_empty(), "stale `{marker}` processes from an earlier run");
    let dir = tempfile::tempdir().expect("temp dir");
    let (_stack, gw, _w) = with_handlers(
        "handlers_timeout",
        dir.path(),
        &format!(
            r#"
        [handlers.spawner]
        kind = "command"
        argv = ["/bin/sh", "-c", "{marker} & {marker}; :"]
        "#
        ),
    )
    .await;

    let id = submit(&gw, json!({"task": "spawner", "args": [], "timeout": 2, "max_retries": 0})).await;
    // The shell's child and its background grandchild both run…
    wait_for(LONG, "the command and its grandchild to start", || async { processes_with(marker).len() >= 2 }).await;
    // …until the task's timeout.
    let t = gw.wait_task(&id, LONG).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "timeout", "{t}");
    wait_for(Duration::from_secs(10), "every process of the command's group to be gone", || async {
        processes_with(marker).is_empty()
    })
    .await;
}

#[tokio::test]
async fn cpu_bound_rust_handlers_do_not_hold_back_other_tasks() {
    let stack = Stack::new("spinners").await;
    let gw = stack.gateway(&[]).await;
    let (slots, spinners) = (8, 6);
    let w = stack.worker_binary("yadtq-test-worker", "worker", &["--concurrency", &slots.to_string()]).await;
    stack.wait_assigned(&w).await;

    // C - 2 handlers that compute without awaiting, then short tasks behind them.
    let spin = stack.submit_many(&gw, spinners, |_| json!({"task": "spin", "args": [12]})).await;
    let wid = stack.worker_id(&w).await;
    stack.wait_processing_on(wid, spinners as i64, LONG).await;
    let short = stack.submit_many(&gw, 20, |i| json!({"task": "echo", "args": [i]})).await;
    stack.wait_terminal(&short, LONG).await;
    stack.wait_terminal(&spin, LONG).await;

    let (spin_done, short_done): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT (SELECT min(finished_at) FROM tasks WHERE id = ANY($1)), (SELECT max(finished_at) FROM tasks WHERE id = ANY($2))",
    )
    .bind(&spin)
    .bind(&short)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!(stack.count_status(&short, "success").await, 20);
    assert_eq!(stack.count_status(&spin, "success").await, spinners as i64);
    assert!(
        short_done < spin_done,
        "the last short task finished at {short_done}, after the first spinner ({spin_done}): spinners held back free slots"
    );
}
