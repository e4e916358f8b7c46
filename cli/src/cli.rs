//! The command line: clap definitions and the parsing of task arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other error (an unexpected answer)
  2  invalid command line
  3  not found (404: no task with this id)
  4  conflict (409: task already finished, not retryable, or id reused with another body)
  5  invalid input (400, 413, 415, 422: e.g. an undeclared queue; or a bad --kwargs / --file line)
  6  gateway unavailable (connection refused, timeout, 503, an untrusted TLS certificate)
  7  a task (or workflow) waited for ended failed or cancelled
  8  the wait ended before the task (or workflow) did
  9  the API key was refused (401: missing, unknown or revoked; 403: lacks a scope or queue)";

/// Command-line client of a yadtq gateway: submit tasks, read and follow
/// them, list tasks and workers.
#[derive(Debug, Parser)]
#[command(name = "yadtq", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Base URL of the gateway.
    #[arg(long, global = true, env = "YADTQ_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_url)]
    pub url: String,
    /// PEM file of the certificate authorities to trust for an `https://`
    /// gateway, besides the system's (e.g. a private CA's `ca.pem`).
    #[arg(long, global = true, env = "YADTQ_CA_CERT", value_name = "PEM_FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// API key sent as `Authorization: Bearer <key>` (from `yadtq-gateway keys create`).
    #[arg(long, global = true, env = "YADTQ_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Tries in all of an idempotent request (reads, submits, cancel; never
    /// `retry`) on a connection failure, 502, 503, 504 or 429; 1 never retries.
    #[arg(long, global = true, env = "YADTQ_RETRY_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retry_attempts: u32,
    /// First bound of the retries' backoff, milliseconds (doubled each retry, full jitter).
    #[arg(long, global = true, env = "YADTQ_RETRY_BASE_MS", default_value_t = 200, value_name = "MS")]
    pub retry_base_ms: u64,
    /// Largest bound of the retries' backoff, milliseconds.
    #[arg(long, global = true, env = "YADTQ_RETRY_CAP_MS", default_value_t = 5000, value_name = "MS")]
    pub retry_cap_ms: u64,
    /// Print the API's JSON as is instead of tables (one document per answer;
    /// `watch` prints one task per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a task (or, with --file, many); prints its id, or its result with --wait.
    #[command(allow_negative_numbers = true)]
    Submit(Submit),
    /// Show a task.
    Get {
        /// Task id.
        id: String,
        /// Wait until the task is finished (at most SECONDS when given).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Option<f64>>,
    },
    /// Follow a task's events (status and progress changes) until it finishes.
    Watch {
        /// Task id.
        id: String,
    },
    /// List tasks, newest first.
    List(List),
    /// Cancel a task: at once when queued or scheduled, within a heartbeat when running.
    Cancel {
        /// Task id.
        id: String,
    },
    /// Run a failed or cancelled task again.
    Retry {
        /// Task id.
        id: String,
    },
    /// Show a task's attempts: worker, start, end, outcome, error.
    Attempts {
        /// Task id.
        id: String,
    },
    /// List workers, newest first (one page unless --all).
    Workers {
        /// Only live workers (true) or only dead and stopped ones (false).
        #[arg(long)]
        alive: Option<bool>,
        /// Page size, 1 to 500 (the gateway's default: 50).
        #[arg(long)]
        limit: Option<u16>,
        /// Start at this page (`next_cursor` of the previous one).
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
    /// Periodic tasks: create, list, show, pause, resume, trigger, backfill, delete (docs/schedules.md).
    Schedules(crate::schedules::Schedules),
    /// Workflows (DAGs of tasks): submit from a JSON file, list, show, wait, cancel (docs/workflows.md).
    Workflows(crate::workflows::Workflows),
    /// Concurrency and rate limits: put, get (with the buckets), list, delete (docs/limits.md).
    Limits(crate::limits::Limits),
    /// Print a shell completion script (e.g. `yadtq completions bash > /etc/bash_completion.d/yadtq`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `yadtq submit`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each ARG is read as JSON when it parses (4, -2.5, true, null, [1,2], {\"a\":1}) and as a
string otherwise (hello, 12abc). Quote a number to send it as a string: '\"4\"'.
Put --wait after the arguments, or give it a value (--wait 30), since `--wait 4` reads 4 as seconds.")]
pub struct Submit {
    /// Task name (a handler: multiply, echo, sleep, ...).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub task: Option<String>,
    /// Positional arguments: JSON when they parse, strings otherwise.
    #[arg(value_parser = parse_arg, conflicts_with = "file")]
    pub args: Vec<Value>,
    /// Keyword arguments as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = parse_kwargs, conflicts_with = "file")]
    pub kwargs: Option<Value>,
    /// Queue (one the gateway declares).
    #[arg(long)]
    pub queue: Option<String>,
    /// Client-chosen task id: submitting it again returns the same task.
    #[arg(long, conflicts_with = "file")]
    pub id: Option<String>,
    /// Run no sooner than this many seconds from now.
    #[arg(long, value_name = "SECONDS")]
    pub countdown: Option<f64>,
    /// Retries allowed after the first attempt.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<i32>,
    /// Per-attempt timeout, seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// At most one live task of this kind (docs/unique.md), keyed by the task itself
    /// (its name, args, kwargs and queue); implied by the other --unique-* options.
    #[arg(long, conflicts_with = "file")]
    pub unique: bool,
    /// At most one live task with this key (per tenant and task name): a repeat while it is
    /// queued or running shows that task instead of submitting one.
    #[arg(long, value_name = "KEY", conflicts_with = "file")]
    pub unique_key: Option<String>,
    /// The unique key holds within time buckets of this many seconds (at least 1).
    #[arg(long, value_name = "SECONDS", conflicts_with = "file")]
    pub unique_for: Option<u32>,
    /// Finished statuses that also hold the unique key (success, failed, cancelled), comma separated.
    #[arg(long, value_name = "STATUS", value_delimiter = ',', conflicts_with = "file")]
    pub unique_while: Vec<String>,
    /// A limit the task takes (docs/limits.md; repeat for more): it waits `held`
    /// until every one has room.
    #[arg(long = "limit", value_name = "NAME")]
    pub limits: Vec<String>,
    /// Wait until the task (every task with --file) is finished, at most SECONDS when given;
    /// prints the result (a progress bar and a summary with --file).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<Option<f64>>,
    /// Submit one task per line of this JSON Lines file (each line a POST /tasks body;
    /// blank lines skipped), through POST /tasks/batch; `-` reads standard input.
    /// --queue, --countdown, --max-retries, --timeout and --limit apply to lines that do not set them.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Tasks per POST /tasks/batch request with --file (the gateway accepts up to 1000).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub chunk: u16,
}

impl Submit {
    /// The options shared by every task of this submission, as POST /tasks fields.
    pub fn options(&self) -> Vec<(&'static str, Value)> {
        let mut o = Vec::new();
        if let Some(q) = &self.queue {
            o.push(("queue", Value::from(q.as_str())));
        }
        if let Some(c) = self.countdown {
            o.push(("countdown", Value::from(c)));
        }
        if let Some(n) = self.max_retries {
            o.push(("max_retries", Value::from(n)));
        }
        if let Some(t) = self.timeout {
            o.push(("timeout", Value::from(t)));
        }
        if !self.limits.is_empty() {
            o.push(("limits", Value::from(self.limits.clone())));
        }
        o
    }

    /// The POST /tasks body of a single submission (`task` is set: clap requires it without --file).
    pub fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("task".into(), Value::from(self.task.clone().unwrap_or_default()));
        body.insert("args".into(), Value::Array(self.args.clone()));
        if let Some(k) = &self.kwargs {
            body.insert("kwargs".into(), k.clone());
        }
        if let Some(id) = &self.id {
            body.insert("id".into(), Value::from(id.as_str()));
        }
        for (k, v) in self.options() {
            body.insert(k.into(), v);
        }
        if let Some(unique) = self.unique_option() {
            body.insert("unique".into(), unique);
        }
        Value::Object(body)
    }

    /// The `unique` field of a single submission, when a --unique* option asks for one.
    fn unique_option(&self) -> Option<Value> {
        let mut u = serde_json::Map::new();
        if let Some(k) = &self.unique_key {
            u.insert("key".into(), Value::from(k.as_str()));
        }
        if let Some(s) = self.unique_for {
            u.insert("for_seconds".into(), Value::from(s));
        }
        if !self.unique_while.is_empty() {
            u.insert("while".into(), Value::from(self.unique_while.clone()));
        }
        (self.unique || !u.is_empty()).then_some(Value::Object(u))
    }
}

/// `yadtq list`.
#[derive(Debug, Args)]
pub struct List {
    /// Only tasks in this status (waiting, held, queued, scheduled, processing, success, failed, cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Only tasks of this name.
    #[arg(long)]
    pub task: Option<String>,
    /// Only tasks of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only tasks held (or last held) by this worker id.
    #[arg(long)]
    pub worker: Option<String>,
    /// Page size, 1 to 500 (the gateway's default: 50).
    #[arg(long)]
    pub limit: Option<u16>,
    /// Start at this page (`next_cursor` of the previous one).
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow `next_cursor` to the last page.
    #[arg(long)]
    pub all: bool,
}

impl List {
    /// The GET /tasks query parameters.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&str, String)> =
            [("status", &self.status), ("task", &self.task), ("queue", &self.queue), ("worker", &self.worker)]
                .into_iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
                .collect();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }
}

/// `--url`: an `http://` or `https://` URL.
pub fn parse_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL ({e}); e.g. http://127.0.0.1:8080"))?;
    match url.scheme() {
        "http" | "https" => Ok(s.to_string()),
        other => Err(format!("scheme '{other}' is not supported, only http:// and https://")),
    }
}

/// A task argument: its JSON value when it parses as JSON, else the string itself.
pub fn parse_arg(s: &str) -> Result<Value, String> {
    Ok(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string())))
}

/// `--kwargs`: a JSON object.
pub fn parse_kwargs(s: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object, e.g. '{\"name\": \"x\"}'".to_string()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("yadtq").chain(args.iter().copied())).unwrap()
    }

    fn submit(args: &[&str]) -> Submit {
        match parse(args).command {
            Command::Submit(s) => s,
            other => panic!("not a submit: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn args_are_json_when_they_parse_and_strings_otherwise() {
        let cases = [
            ("4", json!(4)),
            ("-2.5", json!(-2.5)),
            ("true", json!(true)),
            ("null", json!(null)),
            ("[1, \"a\"]", json!([1, "a"])),
            ("{\"k\": {\"n\": 1}}", json!({"k": {"n": 1}})),
            ("\"4\"", json!("4")),
            ("hello", json!("hello")),
            ("12abc", json!("12abc")),
            ("[1,", json!("[1,")),
            ("", json!("")),
            ("é ✓", json!("é ✓")),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_arg(arg).unwrap(), want, "{arg:?}");
        }
        // Large numbers keep their digits (serde_json's arbitrary_precision).
        assert_eq!(parse_arg("123456789012345678901234567890").unwrap().to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn submit_builds_the_post_body() {
        let s = submit(&["submit", "multiply", "4", "5", "--wait"]);
        assert_eq!(s.body(), json!({"task": "multiply", "args": [4, 5]}));
        assert_eq!(s.wait, Some(None));
        let s = submit(&[
            "submit",
            "echo",
            "-3",
            "x",
            "--kwargs",
            "{\"a\": 1}",
            "--queue",
            "emails",
            "--id",
            "order-1",
            "--countdown",
            "2",
            "--max-retries",
            "0",
            "--timeout",
            "9.5",
            "--wait",
            "30",
        ]);
        assert_eq!(
            s.body(),
            json!({"task": "echo", "args": [-3, "x"], "kwargs": {"a": 1}, "id": "order-1",
                   "queue": "emails", "countdown": 2.0, "max_retries": 0, "timeout": 9.5})
        );
        assert_eq!(s.wait, Some(Some(30.0)));
        assert_eq!(submit(&["submit", "add"]).body(), json!({"task": "add", "args": []}));
        assert_eq!(submit(&["submit", "add", "--unique"]).body(), json!({"task": "add", "args": [], "unique": {}}));
        let s =
            submit(&["submit", "report", "--unique-key", "r1", "--unique-for", "3600", "--unique-while", "success"]);
        assert_eq!(
            s.body(),
            json!({"task": "report", "args": [],
                   "unique": {"key": "r1", "for_seconds": 3600, "while": ["success"]}})
        );
    }

    #[test]
    fn submit_refuses_what_it_cannot_send() {
        let fails = |args: &[&str]| Cli::try_parse_from(std::iter::once("yadtq").chain(args.iter().copied())).is_err();
        assert!(fails(&["submit"]), "a task or --file is required");
        assert!(fails(&["submit", "add", "--kwargs", "[1]"]), "kwargs must be an object");
        assert!(fails(&["submit", "add", "--kwargs", "{"]), "kwargs must be JSON");
        assert!(fails(&["submit", "add", "--file", "t.jsonl"]), "a task and --file conflict");
        assert!(fails(&["submit", "--file", "t.jsonl", "--unique-key", "k"]), "lines carry their own unique");
        assert!(fails(&["submit", "add", "--unique-for", "-1"]), "a period is a positive number");
        assert!(fails(&["submit", "--file", "t.jsonl", "--chunk", "1001"]), "chunks above the gateway's limit");
        let s = submit(&["submit", "--file", "t.jsonl", "--wait", "--queue", "q"]);
        assert_eq!((s.file.unwrap().to_str(), s.wait), (Some("t.jsonl"), Some(None)));
    }

    #[test]
    fn list_sends_only_the_filters_given() {
        let Command::List(l) =
            parse(&["list", "--status", "failed", "--task", "fail", "--limit", "5", "--all"]).command
        else {
            panic!("not a list")
        };
        assert_eq!(l.query(), vec![("status", "failed".into()), ("task", "fail".into()), ("limit", "5".into())]);
        assert!(l.all);
        let Command::Workers { alive, .. } = parse(&["workers", "--alive", "false"]).command else {
            panic!("not workers")
        };
        assert_eq!(alive, Some(false));
    }

    #[test]
    fn completions_know_the_subcommands_and_flags() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "yadtq", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("submit") && script.contains("kwargs") && script.contains("attempts"), "{shell}");
        }
    }

    #[test]
    fn url_and_json_are_global() {
        let cli = parse(&["get", "x", "--json", "--url", "http://gw:9000", "--wait"]);
        assert!(cli.json);
        assert_eq!(cli.url, "http://gw:9000");
        assert!(matches!(cli.command, Command::Get { wait: Some(None), .. }));
        assert_eq!(parse(&["get", "x", "--url", "https://gw:8443"]).url, "https://gw:8443");
        for bad in ["notaurl", "ftp://gw"] {
            assert!(Cli::try_parse_from(["yadtq", "--url", bad, "workers"]).is_err(), "{bad}");
        }
    }
}
