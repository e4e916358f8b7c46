//! The `yadtq` command-line client end to end: the built binary, run as a
//! user would, against a real gateway and worker.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yadtq_core::auth::{Scope, DEFAULT_TENANT};
use yadtq_tests::{binary, free_port, mint_key, wait_for, Gateway, Stack};

/// Longest a run of `yadtq` may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What one run of `yadtq` printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output as JSON (`--json`).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The whitespace-separated cells of the output line whose first cell is `first`.
    fn row(&self, first: &str) -> Vec<&str> {
        let row =
            self.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|c| c.first() == Some(&first));
        row.unwrap_or_else(|| panic!("no row {first:?} in:\n{}", self.stdout))
    }
}

/// Runs `yadtq args...` against `url` with the API key `key` (through
/// `YADTQ_URL` and `YADTQ_API_KEY`, as a user would; none: no key); kills it
/// and fails after [`RUN_LIMIT`], so a wait that never ends stops the test.
fn yadtq_at(url: &str, key: Option<&str>, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut command = Command::new(binary("yadtq"));
    match key {
        Some(key) => command.env("YADTQ_API_KEY", key),
        None => command.env_remove("YADTQ_API_KEY"),
    };
    let mut child = command
        .args(args)
        .env("YADTQ_URL", url)
        .env_remove("YADTQ_API_KEY")
        .envs(key.map(|k| ("YADTQ_API_KEY", k)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("run yadtq");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for yadtq") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            child.kill().ok();
            panic!("yadtq {args:?} still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("output of yadtq");
    let run = Run { code: status.code().unwrap_or(-1), stdout: read(&out), stderr: read(&err) };
    eprintln!("$ yadtq {}\n{}{}[exit {}]", args.join(" "), run.stdout, run.stderr, run.code);
    run
}

/// Runs `yadtq args...` against `gw` with the key its client sends (the stack's admin key).
fn yadtq(gw: &Gateway, args: &[&str]) -> Run {
    yadtq_at(&gw.base, gw.key.as_deref(), args)
}

/// Runs `yadtq args...` against `gw` and checks that it exited 0.
fn ok(gw: &Gateway, args: &[&str]) -> Run {
    let run = yadtq(gw, args);
    assert_eq!(run.code, 0, "yadtq {args:?} failed: {}", run.stderr);
    run
}

/// Like [`ok`], with the API key `key`.
fn ok_with(gw: &Gateway, key: &str, args: &[&str]) -> Run {
    let run = yadtq_at(&gw.base, Some(key), args);
    assert_eq!(run.code, 0, "yadtq {args:?} with key {key} failed: {}", run.stderr);
    run
}

#[tokio::test]
async fn every_command_against_a_live_stack() {
    let stack = Stack::new("cli").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;

    // The README's quick start: the seed's example prints its result.
    assert_eq!(ok(&gw, &["submit", "multiply", "4", "5", "--wait"]).stdout, "20\n");

    // Without --wait, submit prints the id; get --wait shows the finished task.
    assert_eq!(ok(&gw, &["submit", "add", "2", "3", "--id", "cli-add"]).stdout, "cli-add\n");
    let shown = ok(&gw, &["get", "cli-add", "--wait"]);
    assert_eq!(shown.row("status"), ["status", "success"]);
    assert_eq!(shown.row("result"), ["result", "5"]);
    let watched = ok(&gw, &["watch", "cli-add"]).stdout;
    assert!(watched.starts_with("status    success     result 5"), "a finished task: one line: {watched}");
    let t = ok(&gw, &["--json", "get", "cli-add"]).json();
    assert_eq!(
        (t["status"].as_str(), t["result"].as_i64(), &t["args"]),
        (Some("success"), Some(5), &serde_json::json!([2, 3]))
    );

    // Strings and JSON arguments as typed; echo returns them.
    let echoed =
        ok(&gw, &["--json", "submit", "echo", "hi", "[1,2]", "\"7\"", "--kwargs", "{\"k\": 1}", "--wait"]).json();
    assert_eq!(echoed["result"], serde_json::json!(["hi", [1, 2], "7"]));
    assert_eq!(echoed["kwargs"], serde_json::json!({"k": 1}));

    // list: filters, and --all follows the cursor one task per page.
    let listed = ok(&gw, &["list", "--task", "add"]);
    assert_eq!(listed.row("cli-add")[..4], ["cli-add", "add", "default", "success"]);
    assert!(!listed.stdout.contains("multiply"), "{}", listed.stdout);
    let all = ok(&gw, &["--json", "list", "--status", "success", "--limit", "1", "--all"]).json();
    let mut names: Vec<&str> = all["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "echo", "multiply"]);
    assert_eq!(ok(&gw, &["list", "--status", "success", "--all"]).row("cli-add")[3], "success");
    let page = ok(&gw, &["list", "--limit", "1"]);
    assert!(page.stderr.contains("--cursor"), "{}", page.stderr);

    // cancel a scheduled task, then again (a repeat is no error), then retry it and wait.
    ok(&gw, &["submit", "add", "1", "1", "--id", "cli-later", "--countdown", "600"]);
    assert_eq!(ok(&gw, &["cancel", "cli-later"]).stdout, "task cli-later cancelled\n");
    assert_eq!(ok(&gw, &["cancel", "cli-later"]).stdout, "task cli-later cancelled\n");
    assert_eq!(ok(&gw, &["retry", "cli-later"]).stdout, "task cli-later queued again\n");
    assert_eq!(ok(&gw, &["get", "cli-later", "--wait"]).row("result"), ["result", "2"]);

    // A failing task: --wait exits 7 naming the error; retry runs it again; attempts lists both.
    let failed = yadtq(&gw, &["submit", "fail", "boom", "--id", "cli-fail", "--max-retries", "0", "--wait"]);
    assert_eq!(failed.code, 7, "a failed task exits 7");
    assert!(failed.stderr.contains("task cli-fail failed:") && failed.stderr.contains("boom"), "{}", failed.stderr);
    ok(&gw, &["retry", "cli-fail"]);
    assert_eq!(yadtq(&gw, &["get", "cli-fail", "--wait"]).code, 7);
    let attempts = ok(&gw, &["attempts", "cli-fail"]);
    assert!(attempts.row("2").contains(&"failed"), "{}", attempts.stdout);
    assert_eq!(ok(&gw, &["--json", "attempts", "cli-fail"]).json().as_array().map(Vec::len), Some(2));

    // workers: the one worker, alive and serving.
    let id = stack.worker_id(&w).await.to_string();
    let workers = ok(&gw, &["workers", "--alive", "true"]);
    assert_eq!(workers.row(&id)[1..3], ["ready", "true"]);
    let none = serde_json::json!({"workers": [], "next_cursor": null});
    assert_eq!(ok(&gw, &["--json", "workers", "--alive", "false"]).json(), none);
    assert_eq!(ok(&gw, &["--json", "workers", "--alive", "false", "--all"]).json(), none);
    let page = ok(&gw, &["--json", "workers", "--limit", "1"]).json();
    assert_eq!(page["workers"][0]["id"], id.as_str(), "{page}");
    let by_worker = ok(&gw, &["--json", "list", "--worker", &id, "--queue", "default", "--all"]).json();
    assert_eq!(by_worker["tasks"].as_array().map(Vec::len), Some(5), "every task so far ran there");
    assert_eq!(ok(&gw, &["--json", "list", "--queue", "other"]).json()["tasks"], serde_json::json!([]));

    // watch follows the event stream to the end: progress lines, then success.
    ok(&gw, &["submit", "sleep", "2.5", "--id", "cli-sleep"]);
    let watched = ok(&gw, &["watch", "cli-sleep"]);
    let last = watched.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("status") && last.contains("success") && last.contains("result 2.5"),
        "{}",
        watched.stdout
    );
    assert!(watched.stdout.lines().any(|l| l.starts_with("progress")), "{}", watched.stdout);
    let replay = ok(&gw, &["--json", "watch", "cli-sleep"]);
    assert_eq!(
        serde_json::from_str::<Value>(&replay.stdout).unwrap()["status"],
        "success",
        "a finished task: one event"
    );
}

#[tokio::test]
async fn watch_follows_a_task_across_a_gateway_restart() {
    let stack = Stack::new("cli_watch").await;
    let mut gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;
    ok(&gw, &["submit", "sleep", "5", "--id", "cli-long"]);
    let (url, key) = (gw.base.clone(), gw.key.clone());
    let watcher = std::thread::spawn(move || yadtq_at(&url, key.as_deref(), &["watch", "cli-long"]));
    // The kill must come after the watcher's stream is open: the CLI waits
    // only for a gateway it has reached once.
    wait_for(Duration::from_secs(30), "the watcher's event stream", || async { gw.waiters().await >= 1.0 }).await;
    gw.proc.kill9();
    let listen = gw.base.trim_start_matches("http://").to_string();
    let _again = stack.spawn("yadtq-gateway", &["serve", "--listen", &listen], "gateway-again");
    let run = tokio::task::spawn_blocking(move || watcher.join().expect("watcher")).await.unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("event stream of task cli-long interrupted"), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.last().is_some_and(|l| l.starts_with("status    success")), "{}", run.stdout);
    assert_eq!(lines.iter().filter(|l| l.starts_with("status    processing")).count(), 1, "once: {}", run.stdout);
}

#[tokio::test]
async fn a_file_of_fifty_tasks_waits_with_a_summary() {
    let stack = Stack::new("cli_file").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &["--concurrency", "8"]).await;
    stack.wait_assigned(&w).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tasks.jsonl");
    let mut lines: Vec<String> = (0..45).map(|i| format!(r#"{{"task": "add", "args": [{i}, 1]}}"#)).collect();
    lines.extend((0..5).map(|i| format!(r#"{{"task": "fail", "args": ["no {i}"]}}"#)));
    lines.insert(10, String::new());
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    // Chunks of 20: three batch requests; the failures exit 7 after the summary.
    let run =
        yadtq(&gw, &["submit", "--file", file.to_str().unwrap(), "--chunk", "20", "--max-retries", "0", "--wait"]);
    assert_eq!(run.code, 7, "some tasks failed");
    assert_eq!(run.row("success"), ["success", "45"]);
    assert_eq!(run.row("failed"), ["failed", "5"]);
    assert_eq!(run.row("total"), ["total", "50"]);
    assert!(run.stderr.contains("5 of 50 tasks failed"), "{}", run.stderr);
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'failed' AND max_retries = 0")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(failed, 5, "--max-retries applied to the lines");

    // Without --wait: one id per line, the batch answers merged with --json.
    let ids = ok(&gw, &["submit", "--file", file.to_str().unwrap()]);
    assert_eq!(ids.stdout.lines().count(), 50);
    let json = ok(&gw, &["--json", "submit", "--file", file.to_str().unwrap()]).json();
    assert_eq!(json["tasks"].as_array().map(Vec::len), Some(50));
}

#[tokio::test]
async fn errors_name_the_problem_and_exit_by_kind() {
    let stack = Stack::new("cli_errors").await;
    let gw = stack.gateway(&[]).await;

    let missing = yadtq(&gw, &["get", "nope"]);
    assert_eq!(missing.code, 3, "404 exits 3");
    assert_eq!(missing.stderr, "error: 404 Not Found: no task with id 'nope'\n");

    let queue = yadtq(&gw, &["submit", "add", "1", "2", "--queue", "nowhere"]);
    assert_eq!(queue.code, 5, "422 exits 5");
    assert!(queue.stderr.starts_with("error: 422 Unprocessable Entity: "), "{}", queue.stderr);
    assert!(queue.stderr.contains("nowhere") && queue.stderr.contains("(field: queue)"), "{}", queue.stderr);

    ok(&gw, &["submit", "add", "1", "--id", "cli-same"]);
    let reused = yadtq(&gw, &["submit", "add", "2", "--id", "cli-same"]);
    assert_eq!(reused.code, 4, "409 exits 4: {}", reused.stderr);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, "{\"task\": \"add\", \"args\": [1]}\n{not json\n").unwrap();
    let bad = yadtq(&gw, &["submit", "--file", file.to_str().unwrap()]);
    assert_eq!(bad.code, 5);
    assert!(bad.stderr.contains("bad.jsonl line 2: not JSON"), "{}", bad.stderr);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(count, 1, "nothing of the bad file was sent");
    std::fs::write(&file, "{\"task\": \"add\", \"args\": [1]}\n\n{\"task\": \"add\", \"queue\": \"nowhere\"}\n")
        .unwrap();
    let refused = yadtq(&gw, &["submit", "--file", file.to_str().unwrap()]);
    assert_eq!(refused.code, 5, "422 exits 5");
    assert!(
        refused.stderr.contains("line 3: tasks[1]") && refused.stderr.contains("(field: tasks[1].queue)"),
        "{}",
        refused.stderr
    );

    let usage = yadtq(&gw, &["submit", "add", "--kwargs", "[1]"]);
    assert_eq!(usage.code, 2, "clap's usage error");

    // Without a key, and with a key that may only read, the gateway refuses: exit 9.
    let anonymous = yadtq_at(&gw.base, None, &["get", "cli-same"]);
    assert_eq!(anonymous.code, 9, "401 exits 9");
    assert!(
        anonymous.stderr.starts_with("error: 401 Unauthorized: ")
            && anonymous.stderr.contains("(field: Authorization)"),
        "{}",
        anonymous.stderr
    );
    let reader = mint_key(&stack.db, DEFAULT_TENANT, &[Scope::Read], None).await;
    ok_with(&gw, &reader, &["get", "cli-same"]);
    let refused = yadtq_at(&gw.base, Some(&reader), &["submit", "add", "1", "2"]);
    assert_eq!(refused.code, 9, "403 exits 9");
    assert!(
        refused.stderr.starts_with("error: 403 Forbidden: ") && refused.stderr.contains("'submit'"),
        "{}",
        refused.stderr
    );

    let url = format!("http://127.0.0.1:{}", free_port());
    let down = yadtq_at(&url, None, &["get", "x"]);
    assert_eq!(down.code, 6, "unreachable exits 6");
    assert!(down.stderr.contains(&format!("cannot reach the gateway at {url}")), "{}", down.stderr);
}

#[tokio::test]
async fn a_status_this_release_does_not_know_is_shown_verbatim_and_not_finished() {
    let stack = Stack::new("cli_unknown_status").await;
    let gw = stack.gateway(&[]).await; // no worker: the task stays where it is put
    assert_eq!(ok(&gw, &["submit", "add", "2", "3", "--id", "new-status"]).stdout, "new-status\n");
    stack.put_in_new_status("suspended", &["new-status"]).await;

    assert_eq!(ok(&gw, &["get", "new-status"]).row("status"), ["status", "suspended"]);
    assert_eq!(ok(&gw, &["--json", "get", "new-status"]).json()["status"], "suspended");
    let listed = ok(&gw, &["list"]);
    assert!(listed.row("new-status").contains(&"suspended"), "{}", listed.stdout);
    // Not finished: a wait ends at its deadline, saying so.
    let waited = yadtq(&gw, &["get", "new-status", "--wait", "1"]);
    assert_eq!(waited.code, 8, "exit WAIT_EXPIRED: {}", waited.stderr);
    assert!(waited.stderr.contains("still suspended"), "{}", waited.stderr);
}
