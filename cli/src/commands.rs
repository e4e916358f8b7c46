//! What each subcommand does: requests to the gateway and their output.

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{Answer, Client, Error, Problem, Result, RetryPolicy};
use crate::cli::{Cli, Command, List, Submit};
use crate::render;

/// The gateway's longest long-poll, seconds.
const MAX_POLL: f64 = 60.0;
/// Most task ids one `POST /tasks/wait` takes.
const WAIT_IDS: usize = 1000;
/// Statuses in the order summaries list them.
const STATUSES: [&str; 8] = ["success", "failed", "cancelled", "processing", "scheduled", "queued", "held", "waiting"];

/// Runs the command line `cli`.
pub async fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&cli.url, cli.api_key.as_deref(), cli.ca_cert.as_deref())?.with_retry(RetryPolicy {
        max_attempts: cli.retry_attempts,
        base: Duration::from_millis(cli.retry_base_ms),
        cap: Duration::from_millis(cli.retry_cap_ms),
    });
    let out = Output { json: cli.json };
    match cli.command {
        Command::Submit(s) if s.file.is_some() => submit_file(&client, out, &s).await,
        Command::Submit(s) => submit(&client, out, &s).await,
        Command::Get { id, wait } => get(&client, out, &id, wait).await,
        Command::Watch { id } => watch(&client, out, &id).await,
        Command::List(l) => list(&client, out, &l).await,
        Command::Cancel { id } => cancel(&client, out, &id).await,
        Command::Retry { id } => retry(&client, out, &id).await,
        Command::Attempts { id } => {
            let a = client.get(&task_path(&id, "/attempts"), &[]).await?;
            out.show(&a, |b| render::attempts(items(b)));
            Ok(())
        }
        Command::Workers { alive, limit, cursor, all } => {
            let mut query: Vec<(&str, String)> = alive.map(|a| ("alive", a.to_string())).into_iter().collect();
            query.extend(limit.map(|l| ("limit", l.to_string())));
            Pager { path: "/workers", key: "workers", query, cursor, all }.show(&client, out, render::workers).await
        }
        Command::Schedules(s) => crate::schedules::run(&client, out, s).await,
        Command::Limits(l) => crate::limits::run(&client, out, l).await,
        Command::Workflows(w) => crate::workflows::run(&client, out, w).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "yadtq", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// How answers are printed: the API's JSON as is, or for a person.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `a`'s body as sent with `--json`, else through `human`.
    pub(crate) fn show(self, a: &Answer, human: impl FnOnce(&Value)) {
        if self.json {
            println!("{}", a.text.trim_end());
        } else {
            human(&a.body);
        }
    }

    /// Prints a JSON document the CLI put together (a merged listing).
    fn show_value(self, v: &Value, human: impl FnOnce(&Value)) {
        if self.json {
            println!("{v}");
        } else {
            human(v);
        }
    }
}

/// The array `v` (an API listing), or the array under `tasks` or `workers` (a page).
fn items(v: &Value) -> &[Value] {
    v.as_array()
        .or_else(|| v["tasks"].as_array())
        .or_else(|| v["workers"].as_array())
        .or_else(|| v["schedules"].as_array())
        .or_else(|| v["limits"].as_array())
        .map_or(&[], Vec::as_slice)
}

/// `/tasks/{id}{rest}`, the id percent-encoded where it holds more than task-id characters.
fn task_path(id: &str, rest: &str) -> String {
    id_path("/tasks/", id, rest)
}

/// `{base}{id}{rest}`, the id percent-encoded where it holds more than
/// id characters (letters, digits, `._:-`).
pub(crate) fn id_path(base: &str, id: &str, rest: &str) -> String {
    let mut path = String::from(base);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"._:-".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path + rest
}

fn is_terminal(task: &Value) -> bool {
    matches!(task["status"].as_str(), Some("success" | "failed" | "cancelled"))
}

/// The deadline of `--wait [SECONDS]`: `None` waits for ever.
fn deadline(wait: Option<f64>) -> Option<Instant> {
    wait.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)))
}

/// Long-polls task `id` until it is terminal or `until` passes.
async fn wait_task(client: &Client, id: &str, until: Option<Instant>) -> Result<Answer> {
    loop {
        let left = until.map_or(MAX_POLL, |d| d.saturating_duration_since(Instant::now()).as_secs_f64());
        let query: Vec<(&str, String)> =
            if left > 0.0 { vec![("wait", format!("{:.3}", left.min(MAX_POLL)))] } else { vec![] };
        let a = client.get(&task_path(id, ""), &query).await?;
        if is_terminal(&a.body) || left <= 0.0 {
            return Ok(a);
        }
    }
}

/// The exit of a command that waited for `task`: success, or why not.
fn outcome(task: &Value) -> Result<()> {
    let id = render::cell(&task["id"]);
    match task["status"].as_str() {
        Some("success") => Ok(()),
        Some("failed") => Err(Error::TaskFailed(format!("task {id} failed: {}", render::error(&task["error"])))),
        Some("cancelled") => Err(Error::TaskFailed(format!("task {id} was cancelled"))),
        status => Err(Error::WaitExpired(format!(
            "task {id} is still {} (the wait ended first)",
            status.unwrap_or("in an unknown status")
        ))),
    }
}

/// `yadtq submit TASK [ARGS...]`: prints the id, or the result with `--wait`.
async fn submit(client: &Client, out: Output, s: &Submit) -> Result<()> {
    let a = client.post("/tasks", Some(&s.body())).await?;
    if a.unique_existing {
        eprintln!("task {} holds this unique key: showing it (nothing submitted)", render::cell(&a.body["id"]));
    } else if a.status == 200 && a.tries == 1 {
        eprintln!("task {} was submitted before with this body: showing it", render::cell(&a.body["id"]));
    }
    let Some(wait) = s.wait else {
        out.show(&a, |t| println!("{}", render::cell(&t["id"])));
        return Ok(());
    };
    let id = render::cell(&a.body["id"]);
    let done = wait_task(client, &id, deadline(wait)).await?;
    out.show(&done, |t| {
        if t["status"] == "success" {
            println!("{}", t["result"]);
        }
    });
    outcome(&done.body)
}

/// `yadtq get ID [--wait [SECONDS]]`.
async fn get(client: &Client, out: Output, id: &str, wait: Option<Option<f64>>) -> Result<()> {
    let a = match wait {
        Some(w) => wait_task(client, id, deadline(w)).await?,
        None => client.get(&task_path(id, ""), &[]).await?,
    };
    out.show(&a, render::task);
    match wait {
        Some(_) => outcome(&a.body),
        None => Ok(()),
    }
}

/// How long `watch` keeps reconnecting (a second apart) after its stream
/// breaks: long enough for a gateway to restart (connect to PostgreSQL,
/// migrate, reach Kafka) when no load balancer hides the restart.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// `yadtq watch ID`: the task's server-sent events until a terminal status.
/// When the stream ends early or the gateway goes away (a restart), it
/// reconnects for up to [`RECONNECT_FOR`] from the break (a stream that then
/// stays open for a while starts a new budget), skipping the repeated state.
async fn watch(client: &Client, out: Output, id: &str) -> Result<()> {
    let mut last: Option<Value> = None;
    let mut broken_since: Option<std::time::Instant> = None;
    loop {
        let broke = match client.stream(&task_path(id, "/events")).await {
            Ok(resp) => {
                let opened = std::time::Instant::now();
                let broke = match follow(resp, out, &mut last).await {
                    Ok(Some(task)) => return outcome(&task),
                    Ok(None) => "the stream ended".to_string(),
                    Err(e) => e.to_string(),
                };
                if opened.elapsed() > Duration::from_secs(5) {
                    broken_since = None;
                }
                broke
            }
            // Only a gateway seen once is waited for: a wrong URL fails at once.
            Err(e @ (Error::Unreachable { .. } | Error::Problem(Problem { status: 503, .. }))) if last.is_some() => {
                e.to_string()
            }
            Err(e) => return Err(e),
        };
        let since = *broken_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            let secs = RECONNECT_FOR.as_secs();
            return Err(Error::Other(format!("gave up following task {id} after {secs} s of reconnecting: {broke}")));
        }
        eprintln!("event stream of task {id} interrupted ({broke}); reconnecting");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Prints the events of `resp` (those that change `last`); returns the
/// terminal task, or `None` when the stream ends before it.
async fn follow(mut resp: reqwest::Response, out: Output, last: &mut Option<Value>) -> Result<Option<Value>> {
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Other(e.to_string()))? {
        buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some((kind, data)) = sse_event(&block) else { continue };
            let task: Value = serde_json::from_str(&data)
                .map_err(|e| Error::Other(format!("event data is not JSON ({e}): {data}")))?;
            let same_status = last.as_ref().is_some_and(|l| l["status"] == task["status"]);
            let repeat = same_status && last.as_ref().is_some_and(|l| l["progress"] == task["progress"]);
            // A reconnection's first event repeats the status: only its progress is news.
            let kind = if same_status { "progress".to_string() } else { kind };
            if !repeat {
                if out.json {
                    println!("{data}");
                } else {
                    println!("{}", event_line(&kind, &task));
                }
                std::io::stdout().flush().ok();
            }
            if is_terminal(&task) {
                return Ok(Some(task));
            }
            *last = Some(task);
        }
    }
    Ok(None)
}

/// The `event` name and joined `data` lines of one server-sent event block
/// (`None` for a comment-only block).
fn sse_event(block: &str) -> Option<(String, String)> {
    let (mut kind, mut data) = ("message".to_string(), Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value.to_string(),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| (kind, data.join("\n")))
}

/// One human line of `watch`: the event and what changed.
fn event_line(kind: &str, t: &Value) -> String {
    let status = render::cell(&t["status"]);
    let detail = match status.as_str() {
        _ if kind == "progress" => render::progress(&t["progress"]),
        "success" => format!("result {}", t["result"]),
        "failed" => format!("error {}", render::error(&t["error"])),
        "processing" => format!("attempt {} on worker {}", t["attempts"], render::cell(&t["worker_id"])),
        "scheduled" => format!("runs at {}", render::time(&t["run_at"])),
        _ => String::new(),
    };
    format!("{:<8}  {:<10}  {detail}", kind, status).trim_end().to_string()
}

/// `yadtq list`: one page, or every page with `--all`.
async fn list(client: &Client, out: Output, l: &List) -> Result<()> {
    let pager = Pager { path: "/tasks", key: "tasks", query: l.query(), cursor: l.cursor.clone(), all: l.all };
    pager.show(client, out, render::tasks).await
}

/// A listing the gateway pages with `limit`, `cursor` and `next_cursor`
/// (`GET /tasks`, `GET /workers`).
pub(crate) struct Pager {
    /// The listing's path.
    pub(crate) path: &'static str,
    /// The array's key in a page (`tasks`, `workers`, `schedules`).
    pub(crate) key: &'static str,
    /// Filters and `limit`.
    pub(crate) query: Vec<(&'static str, String)>,
    /// The page to start at.
    pub(crate) cursor: Option<String>,
    /// Follow `next_cursor` to the last page and print the rows as one page.
    pub(crate) all: bool,
}

impl Pager {
    pub(crate) async fn show(self, client: &Client, out: Output, render: fn(&[Value])) -> Result<()> {
        let page_query = |cursor: Option<&String>| {
            let mut q = self.query.clone();
            q.extend(cursor.map(|c| ("cursor", c.clone())));
            q
        };
        let first = client.get(self.path, &page_query(self.cursor.as_ref())).await?;
        if !self.all {
            out.show(&first, |page| render(items(page)));
            if let (false, Some(next)) = (out.json, first.body["next_cursor"].as_str()) {
                eprintln!("(more: add --cursor {next}, or --all)");
            }
            return Ok(());
        }
        let mut rows = items(&first.body).to_vec();
        let mut next = first.body["next_cursor"].as_str().map(str::to_string);
        while let Some(cursor) = next {
            let page = client.get(self.path, &page_query(Some(&cursor))).await?;
            rows.extend_from_slice(items(&page.body));
            next = page.body["next_cursor"].as_str().map(str::to_string);
        }
        out.show_value(&json!({self.key: rows, "next_cursor": null}), |v| render(items(v)));
        Ok(())
    }
}

/// `yadtq cancel ID`.
async fn cancel(client: &Client, out: Output, id: &str) -> Result<()> {
    let a = client.post(&task_path(id, "/cancel"), None).await?;
    out.show(&a, |t| match a.status {
        202 => println!(
            "task {} is running on worker {}: cancel requested, it stops within a heartbeat",
            render::cell(&t["id"]),
            render::cell(&t["worker_id"])
        ),
        _ => println!("task {} {}", render::cell(&t["id"]), render::cell(&t["status"])),
    });
    Ok(())
}

/// `yadtq retry ID`.
async fn retry(client: &Client, out: Output, id: &str) -> Result<()> {
    let a = client.post(&task_path(id, "/retry"), None).await?;
    out.show(&a, |t| println!("task {} {} again", render::cell(&t["id"]), render::cell(&t["status"])));
    Ok(())
}

/// The tasks of `--file` with their line numbers: one POST /tasks body per
/// non-blank line, with the command line's options where a line does not set them.
fn read_tasks(s: &Submit) -> Result<Vec<(usize, Value)>> {
    let path = s.file.as_deref().expect("--file given");
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path).map_err(|e| Error::Input(format!("cannot read {name}: {e}")))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut tasks = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::Input(format!("cannot read {name}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut task: Value =
            serde_json::from_str(&line).map_err(|e| Error::Input(format!("{name} line {}: not JSON: {e}", n + 1)))?;
        let Some(fields) = task.as_object_mut() else {
            return Err(Error::Input(format!("{name} line {}: a task must be a JSON object", n + 1)));
        };
        for (k, v) in s.options() {
            fields.entry(k).or_insert(v);
        }
        tasks.push((n + 1, task));
    }
    if tasks.is_empty() {
        return Err(Error::Input(format!("{name} holds no task")));
    }
    Ok(tasks)
}

/// `p` with the file's line number added when its field names a task of the
/// batch (`tasks[3].queue` of the batch starting at task `start`).
fn on_line(mut p: Problem, start: usize, lines: &[usize]) -> Problem {
    let index = p.field.as_deref().and_then(|f| f.strip_prefix("tasks[")?.split_once(']')?.0.parse::<usize>().ok());
    if let Some(line) = index.and_then(|i| lines.get(start + i)) {
        p.detail = format!("line {line}: {}", p.detail);
    }
    p
}

/// Tasks by status, the known statuses in [`STATUSES`] order, then any other
/// (a newer gateway's, e.g. `held`) verbatim in name order; statuses
/// with no task are left out.
fn status_counts(tasks: &[Value]) -> Vec<(String, usize)> {
    let mut others: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for t in tasks {
        let status = render::cell(&t["status"]);
        if !STATUSES.contains(&status.as_str()) {
            *others.entry(status).or_default() += 1;
        }
    }
    let known = STATUSES.iter().map(|s| (s.to_string(), tasks.iter().filter(|t| t["status"] == *s).count()));
    known.chain(others).filter(|(_, n)| *n > 0).collect()
}

/// `yadtq submit --file tasks.jsonl [--wait]`: POST /tasks/batch by chunks;
/// with `--wait`, a progress bar until every task is finished, then a summary.
async fn submit_file(client: &Client, out: Output, s: &Submit) -> Result<()> {
    let (lines, tasks): (Vec<usize>, Vec<Value>) = read_tasks(s)?.into_iter().unzip();
    let mut stored: Vec<Value> = Vec::with_capacity(tasks.len());
    for (n, chunk) in tasks.chunks(usize::from(s.chunk)).enumerate() {
        let start = n * usize::from(s.chunk);
        let a = match client.post("/tasks/batch", Some(&json!({ "tasks": chunk }))).await {
            Ok(a) => a,
            Err(Error::Problem(p)) => {
                if !stored.is_empty() {
                    eprintln!("{} tasks were stored before this error (the refused batch stored none)", stored.len());
                }
                return Err(Error::Problem(on_line(p, start, &lines)));
            }
            Err(e) => return Err(e),
        };
        stored.extend_from_slice(items(&a.body));
    }
    let Some(wait) = s.wait else {
        out.show_value(&json!({ "tasks": stored }), |v| {
            for t in items(v) {
                println!("{}", render::cell(&t["id"]));
            }
            eprintln!("submitted {} tasks", stored.len());
        });
        return Ok(());
    };
    let finished = wait_all(client, &stored, deadline(wait)).await?;
    let counts = status_counts(&finished);
    out.show_value(&json!({ "tasks": finished }), |_| render::summary(&counts));
    let count = |status: &str| counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
    let unfinished = finished.iter().filter(|t| !is_terminal(t)).count();
    if unfinished > 0 {
        return Err(Error::WaitExpired(format!(
            "{unfinished} of {} tasks were not finished when the wait ended",
            finished.len()
        )));
    }
    match count("failed") + count("cancelled") {
        0 => Ok(()),
        n => Err(Error::TaskFailed(format!("{n} of {} tasks failed or were cancelled", finished.len()))),
    }
}

/// Waits for every task of `tasks` with `POST /tasks/wait` (one long-poll
/// per 1,000 tasks at a time), a progress bar on standard error (when it is
/// a terminal); returns their last states in the same order.
async fn wait_all(client: &Client, tasks: &[Value], until: Option<Instant>) -> Result<Vec<Value>> {
    let bar = indicatif::ProgressBar::new(tasks.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} finished {msg}")
            .expect("valid template"),
    );
    let mut finished: Vec<Value> = tasks.to_vec();
    let show = |bar: &indicatif::ProgressBar, finished: &[Value]| {
        let count = |s: &[&str]| finished.iter().filter(|t| s.iter().any(|s| t["status"] == *s)).count();
        let (ok, bad) = (count(&["success"]), count(&["failed", "cancelled"]));
        bar.set_position((ok + bad) as u64);
        bar.set_message(format!("({ok} succeeded, {bad} failed or cancelled)"));
    };
    for start in (0..tasks.len()).step_by(WAIT_IDS) {
        let end = (start + WAIT_IDS).min(tasks.len());
        let ids: Vec<String> = tasks[start..end].iter().map(|t| render::cell(&t["id"])).collect();
        loop {
            let left = until.map_or(MAX_POLL, |u| u.saturating_duration_since(Instant::now()).as_secs_f64());
            let body = json!({"ids": ids, "until": "all", "timeout": left.min(MAX_POLL)});
            let a = client.post("/tasks/wait", Some(&body)).await?;
            finished[start..end].clone_from_slice(items(&a.body));
            show(&bar, &finished);
            if a.body["done"] == true || left <= 0.0 {
                break;
            }
        }
    }
    bar.finish_and_clear();
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_status_keep_a_status_this_release_does_not_know() {
        let tasks: Vec<Value> = ["success", "waiting", "held", "suspended", "waiting", "failed"]
            .iter()
            .map(|s| json!({"id": "t", "status": s}))
            .collect();
        let counts = status_counts(&tasks);
        let expected = [("success", 1), ("failed", 1), ("held", 1), ("waiting", 2), ("suspended", 1)];
        assert_eq!(counts, expected.map(|(s, n)| (s.to_string(), n)));
        assert!(tasks.iter().filter(|t| t["status"] != "success" && t["status"] != "failed").all(|t| !is_terminal(t)));
    }

    #[test]
    fn batch_problems_name_the_line_of_the_file() {
        let p = |field: &str| Problem {
            status: 422,
            title: "Unprocessable Entity".into(),
            detail: "tasks[1]: queue 'x' is not declared".into(),
            field: Some(field.into()),
        };
        let lines = [1, 2, 4, 5, 7];
        assert_eq!(on_line(p("tasks[1].queue"), 2, &lines).detail, "line 5: tasks[1]: queue 'x' is not declared");
        assert_eq!(on_line(p("tasks"), 0, &lines).detail, "tasks[1]: queue 'x' is not declared");
        assert_eq!(on_line(p("tasks[9]"), 0, &lines).detail, "tasks[1]: queue 'x' is not declared");
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(task_path("order-1.a:b_c", "/events"), "/tasks/order-1.a:b_c/events");
        assert_eq!(task_path("a/b c", ""), "/tasks/a%2Fb%20c");
    }

    #[test]
    fn server_sent_events_are_read_by_block() {
        assert_eq!(sse_event("event: status\ndata: {\"a\":1}\n\n"), Some(("status".into(), "{\"a\":1}".into())));
        assert_eq!(sse_event("data:x\ndata: y\n\n"), Some(("message".into(), "x\ny".into())));
        assert_eq!(sse_event(":\n\n"), None);
    }

    #[test]
    fn a_waited_task_exits_by_its_status() {
        assert!(outcome(&json!({"id": "a", "status": "success"})).is_ok());
        let failed = outcome(&json!({"id": "a", "status": "failed", "error": {"kind": "k", "message": "m"}}));
        assert_eq!(failed.unwrap_err().to_string(), "task a failed: k: m");
        let e = outcome(&json!({"id": "a", "status": "queued"})).unwrap_err();
        assert_eq!(e.exit_code(), crate::api::exit::WAIT_EXPIRED);
    }
}
