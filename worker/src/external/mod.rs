//! External handlers: HTTP endpoints and commands declared in a handlers file
//! (TOML) and registered on a [`Registry`] under their task names. The file
//! format, the JSON contracts and the conventions are in `docs/handlers.md`.
//!
//! ```toml
//! [handlers.resize]
//! kind = "http"
//! url = "http://127.0.0.1:9000/resize"
//!
//! [handlers.wc]
//! kind = "command"
//! argv = ["/usr/bin/python3", "scripts/wc.py"]
//! ```
//!
//! Both kinds receive the task as the JSON object
//! `{"id", "task", "args", "kwargs", "attempt"}` and answer with the JSON
//! result. URLs and argv come only from the file, never from task arguments.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = yadtq_worker::Registry::with_builtins();
//! yadtq_worker::external::HandlersFile::load("handlers.toml")?.register(&mut registry);
//! # Ok(()) }
//! ```
//!
//! The file is parsed here; each kind runs in its own module ([`http`],
//! [`command`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use yadtq_core::names::TaskName;

use crate::handler::{HandlerError, Registry, TaskContext};

mod command;
mod http;

pub use command::CommandHandler;
pub use http::HttpHandler;

/// Request header carrying the attempt number (the fencing token: it only
/// grows, so a downstream system can refuse writes of an older attempt).
pub const ATTEMPT_HEADER: &str = "x-yadtq-attempt";
/// Request header carrying the task id.
pub const TASK_ID_HEADER: &str = "x-yadtq-task-id";
/// Environment variable carrying the attempt number to command handlers.
pub const ATTEMPT_ENV: &str = "YADTQ_ATTEMPT";
/// Environment variable carrying the task id to command handlers.
pub const TASK_ID_ENV: &str = "YADTQ_TASK_ID";
/// Environment variable carrying a scheduled task's tick (RFC 3339) to
/// command handlers; unset for tasks no schedule fired.
pub const SCHEDULED_FOR_ENV: &str = "YADTQ_SCHEDULED_FOR";
/// Environment variable carrying the attempt's W3C `traceparent` to command
/// handlers (the header of the same name for HTTP handlers).
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";
/// Environment variable carrying the attempt's W3C `tracestate`, when there is one.
pub const TRACESTATE_ENV: &str = "TRACESTATE";
/// Environment variable naming a file that holds a workflow node's parents
/// (`{ref: {id, status, result, error}}`, JSON) for a command handler; set
/// only for workflow nodes, the file removed once the command has ended.
pub const PARENTS_FILE_ENV: &str = "YADTQ_PARENTS_FILE";
/// Default per-request timeout of an HTTP handler, in seconds.
pub const DEFAULT_HTTP_TIMEOUT_SECS: f64 = 30.0;
/// Default number of stderr bytes a command handler keeps (the last ones).
pub const DEFAULT_MAX_STDERR_BYTES: usize = 4096;
/// Default cap, in bytes, on an HTTP reply body or a command's stdout.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
/// Largest `timeout` accepted in the file, in seconds (one week).
pub const MAX_TIMEOUT_SECS: f64 = 7.0 * 86_400.0;
/// Largest `max_stderr_bytes` accepted in the file (1 MiB): the kept stderr
/// goes into the task's error message.
pub const MAX_STDERR_LIMIT: usize = 1024 * 1024;
/// Longest handler name, in characters (the gateway's default task-name limit).
const MAX_NAME_LEN: usize = 128;
/// How much of an HTTP reply body an error message quotes, in bytes.
const BODY_EXCERPT_BYTES: usize = 1024;
/// Variables of the worker's environment every command gets (when the
/// worker has them); anything else only when its handler's `pass_env` names
/// it. An allowlist, because the worker's environment holds the queue's own
/// credentials (`DATABASE_URL`, `YADTQ_*`) and whatever else its host put
/// there (cloud keys), which a program run per task has no business reading.
pub const ALWAYS_PASSED_ENV: [&str; 1] = ["PATH"];

/// Why a handlers file was refused: names the file, the handler and the field
/// when known, e.g. ``handlers file `h.toml`: handler `wc`, field `argv`: is empty``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file, when the text came from one.
    pub path: Option<PathBuf>,
    /// The handler (the `NAME` of `[handlers.NAME]`) at fault, if any.
    pub handler: Option<String>,
    /// The key at fault, if any (`url`, `headers.Authorization`, `retry_on[1]`…).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    fn new(handler: Option<&str>, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            path: None,
            handler: handler.map(str::to_string),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "handlers file `{}`: ", p.display())?,
            None => write!(f, "handlers file: ")?,
        }
        if let Some(h) = &self.handler {
            write!(f, "handler `{h}`, ")?;
        }
        if let Some(k) = &self.field {
            write!(f, "field `{k}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// `[handlers.NAME]` with `kind = "http"`, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfig {
    url: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout")]
    timeout: f64,
    #[serde(default)]
    retry_on: Option<Vec<u16>>,
    #[serde(default = "default_max_output")]
    max_response_bytes: usize,
}

/// `[handlers.NAME]` with `kind = "command"`, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandConfig {
    argv: Vec<String>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    pass_env: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "default_max_stderr")]
    max_stderr_bytes: usize,
    #[serde(default = "default_max_output")]
    max_stdout_bytes: usize,
}

fn default_method() -> String {
    "POST".into()
}
fn default_http_timeout() -> f64 {
    DEFAULT_HTTP_TIMEOUT_SECS
}
fn default_max_output() -> usize {
    DEFAULT_MAX_OUTPUT_BYTES
}
fn default_max_stderr() -> usize {
    DEFAULT_MAX_STDERR_BYTES
}

/// The handlers a file declares, validated and ready to register.
#[derive(Debug, Clone, Default)]
pub struct HandlersFile {
    handlers: BTreeMap<String, ExternalHandler>,
}

impl HandlersFile {
    /// Reads and validates the handlers file at `path`.
    ///
    /// Errors ([`LoadError`], naming the file, handler and field) when the file
    /// cannot be read, is not TOML, or declares an invalid handler.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let with_path = |mut e: LoadError| {
            e.path = Some(path.to_path_buf());
            e
        };
        let text = std::fs::read_to_string(path).map_err(|e| with_path(LoadError::new(None, None, e.to_string())))?;
        Self::parse(&text).map_err(with_path)
    }

    /// Validates handlers-file text (see the module docs for the format).
    ///
    /// Errors on TOML syntax, a top-level key other than `handlers`, a handler
    /// name the gateway would refuse, a missing or unknown `kind`, an unknown
    /// key, a missing required key, or a value out of range.
    pub fn parse(text: &str) -> Result<Self, LoadError> {
        let mut top: toml::Table =
            toml::from_str(text).map_err(|e| LoadError::new(None, None, e.to_string().trim_end().to_string()))?;
        if let Some(k) = top.keys().find(|k| k.as_str() != "handlers") {
            return Err(LoadError::new(None, Some(k), "unknown key: the file holds only [handlers.NAME] tables"));
        }
        let table = match top.remove("handlers") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(v) => {
                return Err(LoadError::new(
                    None,
                    Some("handlers"),
                    format!("must be a table of [handlers.NAME] tables, found a {}", v.type_str()),
                ))
            }
        };
        let mut client = None;
        let mut handlers = BTreeMap::new();
        for (name, value) in table {
            let n = Some(name.as_str());
            if let Err(e) = TaskName::parse(name.as_str(), MAX_NAME_LEN) {
                return Err(LoadError::new(n, None, format!("invalid name: a task name {e}")));
            }
            let toml::Value::Table(mut t) = value else {
                return Err(LoadError::new(n, None, format!("must be a table, found a {}", value.type_str())));
            };
            let kind = match t.remove("kind") {
                Some(toml::Value::String(s)) => s,
                Some(v) => {
                    return Err(LoadError::new(n, Some("kind"), format!("must be a string, found a {}", v.type_str())))
                }
                None => {
                    return Err(LoadError::new(n, Some("kind"), "missing: set kind = \"http\" or kind = \"command\""))
                }
            };
            let handler = match kind.as_str() {
                "http" => {
                    let cfg: HttpConfig = deserialize(&name, t)?;
                    if client.is_none() {
                        client = Some(http_client().map_err(|e| LoadError::new(n, None, e))?);
                    }
                    ExternalHandler::Http(Arc::new(HttpHandler::new(&name, cfg, client.clone().expect("built"))?))
                }
                "command" => ExternalHandler::Command(Arc::new(CommandHandler::new(&name, deserialize(&name, t)?)?)),
                other => {
                    return Err(LoadError::new(
                        n,
                        Some("kind"),
                        format!("unknown kind `{other}`: expected \"http\" or \"command\""),
                    ))
                }
            };
            handlers.insert(name, handler);
        }
        Ok(Self { handlers })
    }

    /// Declared handler names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// The handler declared as `name`, if any.
    pub fn get(&self, name: &str) -> Option<&ExternalHandler> {
        self.handlers.get(name)
    }

    /// How many handlers the file declares.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether the file declares no handler.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Registers every handler on `registry` under its name, replacing any
    /// handler of the same name (built-ins included).
    pub fn register(&self, registry: &mut Registry) {
        for (name, handler) in &self.handlers {
            let handler = handler.clone();
            registry.register(name, move |ctx| {
                let handler = handler.clone();
                async move { handler.call(ctx).await }
            });
        }
    }
}

fn deserialize<T: DeserializeOwned>(handler: &str, table: toml::Table) -> Result<T, LoadError> {
    serde_path_to_error::deserialize(table).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        LoadError::new(Some(handler), field.as_deref(), e.into_inner().to_string().trim_end())
    })
}

fn http_client() -> Result<reqwest::Client, String> {
    // No redirects: the URL is exactly the configured one.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn check_timeout(handler: &str, secs: f64) -> Result<Duration, LoadError> {
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(LoadError::new(
            Some(handler),
            Some("timeout"),
            format!("must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}, got {secs}"),
        ))
    }
}

/// An external handler from a handlers file.
#[derive(Debug, Clone)]
pub enum ExternalHandler {
    /// `kind = "http"`.
    Http(Arc<HttpHandler>),
    /// `kind = "command"`.
    Command(Arc<CommandHandler>),
}

impl ExternalHandler {
    /// Runs one attempt (see [`HttpHandler::call`] and [`CommandHandler::call`]).
    pub async fn call(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        match self {
            Self::Http(h) => h.call(ctx).await,
            Self::Command(h) => h.call(ctx).await,
        }
    }
}

/// What both kinds receive: `{"id", "task", "args", "kwargs", "attempt"}`,
/// `scheduled_for` (RFC 3339) for a task a schedule fired, and a workflow
/// node's `parents` (by ref: `{id, status, result, error}`).
#[derive(Serialize)]
struct TaskJson<'a> {
    id: &'a str,
    task: &'a str,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    attempt: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parents: Option<&'a Value>,
}

fn task_json(ctx: &TaskContext) -> Vec<u8> {
    let t = TaskJson {
        id: &ctx.id,
        task: &ctx.task,
        args: &ctx.args,
        kwargs: &ctx.kwargs,
        attempt: ctx.attempt,
        scheduled_for: ctx.scheduled_for(),
        parents: ctx.parents.as_ref(),
    };
    serde_json::to_vec(&t).expect("JSON values serialise")
}

fn error(kind: &str, retryable: bool, message: String) -> HandlerError {
    HandlerError { kind: kind.into(), message, retryable }
}

fn tag(retryable: bool) -> &'static str {
    if retryable {
        "retryable"
    } else {
        "permanent"
    }
}

fn cancelled() -> HandlerError {
    error("cancelled", true, "the worker cancelled the attempt".into())
}

/// The first `max` bytes of `bytes` as text, noting how many there were in all.
fn excerpt(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        format!("{}… ({} bytes in all)", String::from_utf8_lossy(&bytes[..max]), bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    use super::*;
    use tokio_util::sync::CancellationToken;

    /// A context for attempt 1 of task `t-1` (`job`) with `args` and `{"k": "v"}`.
    pub(super) fn ctx(args: Value) -> TaskContext {
        TaskContext {
            id: "t-1".into(),
            task: "job".into(),
            attempt: 1,
            args: args.as_array().unwrap().clone(),
            kwargs: json!({"k": "v"}).as_object().unwrap().clone(),
            cancel: CancellationToken::new(),
            progress: None,
            owner: None,
            trace: None,
            parents: None,
        }
    }

    fn load_err(text: &str) -> String {
        HandlersFile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_file_parses_with_defaults() {
        let f = HandlersFile::parse(
            r#"
            [handlers.resize]
            kind = "http"
            url = "http://127.0.0.1:9000/resize"
            headers = { Authorization = "Bearer x" }

            [handlers.wc]
            kind = "command"
            argv = ["/bin/cat"]
            timeout = 60
            env = { LANG = "C.UTF-8" }
            "#,
        )
        .unwrap();
        assert_eq!(f.names().collect::<Vec<_>>(), ["resize", "wc"]);
        let ExternalHandler::Http(h) = f.get("resize").unwrap() else { panic!("http") };
        assert_eq!((h.method.clone(), h.timeout), (Method::POST, Duration::from_secs(30)));
        assert!(h.is_retryable(StatusCode::TOO_MANY_REQUESTS) && h.is_retryable(StatusCode::BAD_GATEWAY));
        assert!(!h.is_retryable(StatusCode::NOT_FOUND));
        assert!(!format!("{h:?}").contains("Bearer"), "secrets stay out of Debug");
        let ExternalHandler::Command(c) = f.get("wc").unwrap() else { panic!("command") };
        assert_eq!((c.timeout, c.max_stderr_bytes), (Some(Duration::from_secs(60)), 4096));
        assert!(HandlersFile::parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_handler_and_the_field() {
        let cases = [
            ("[handlers.a]\nkind = \"grpc\"", "handler `a`, field `kind`: unknown kind `grpc`"),
            ("[handlers.a]\nurl = \"http://x/\"", "handler `a`, field `kind`: missing"),
            ("[handlers.a]\nkind = \"command\"\nargv = []", "handler `a`, field `argv`: is empty"),
            ("[handlers.a]\nkind = \"command\"\nargv = [\"\"]", "handler `a`, field `argv[0]`: is empty"),
            ("[handlers.a]\nkind = \"command\"", "handler `a`, missing field `argv`"),
            (
                "[handlers.a]\nkind = \"command\"\nargv = [\"cat\"]\nargs = 1",
                "handler `a`, field `args`: unknown field `args`, expected one of `argv`",
            ),
            ("[handlers.a]\nkind = \"command\"\nargv = [\"cat\"]\ntimeout = \"x\"", "field `timeout`: invalid type"),
            ("[handlers.a]\nkind = \"command\"\nargv = [\"cat\"]\ntimeout = 0", "field `timeout`: must be"),
            ("[handlers.a]\nkind = \"command\"\nargv = [\"./nope/x\"]", "field `argv[0]`: `./nope/x` does not exist"),
            ("[handlers.a]\nkind = \"http\"\nurl = \"not a url\"", "handler `a`, field `url`: `not a url` is not"),
            ("[handlers.a]\nkind = \"http\"\nurl = \"ftp://h/\"", "field `url`: scheme `ftp`"),
            ("[handlers.a]\nkind = \"http\"\nurl = \"https://h/\"", "field `url`: https is not supported"),
            ("[handlers.a]\nkind = \"http\"\nurl = \"http://h/\"\nmethod = \"GET\"", "field `method`"),
            ("[handlers.a]\nkind = \"http\"\nurl = \"http://h/\"\nretry_on = [500, 42]", "field `retry_on[1]`"),
            (
                "[handlers.a]\nkind = \"http\"\nurl = \"http://h/\"\nheaders = { \"a b\" = \"x\" }",
                "field `headers.a b`",
            ),
            ("[handlers.a]\nkind = \"http\"\nurl = \"http://h/\"\nhedaers = {}", "field `hedaers`: unknown field"),
            ("[handlers.1a]\nkind = \"http\"\nurl = \"http://h/\"", "handler `1a`, invalid name"),
            ("[handler.a]\nkind = \"http\"", "field `handler`: unknown key"),
            ("handlers = 3", "field `handlers`: must be a table"),
            ("[handlers.a\n", "TOML parse error"),
        ];
        for (text, want) in cases {
            let got = load_err(text);
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        }
        let e = HandlersFile::load("/nonexistent/h.toml").unwrap_err().to_string();
        assert!(e.starts_with("handlers file `/nonexistent/h.toml`: "), "{e}");
    }
}
