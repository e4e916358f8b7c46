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

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::handler::{HandlerError, Registry, TaskContext};

/// Request header carrying the attempt number (the fencing token: it only
/// grows, so a downstream system can refuse writes of an older attempt).
pub const ATTEMPT_HEADER: &str = "x-yadtq-attempt";
/// Request header carrying the task id.
pub const TASK_ID_HEADER: &str = "x-yadtq-task-id";
/// Environment variable carrying the attempt number to command handlers.
pub const ATTEMPT_ENV: &str = "YADTQ_ATTEMPT";
/// Environment variable carrying the task id to command handlers.
pub const TASK_ID_ENV: &str = "YADTQ_TASK_ID";
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
/// Worker settings that are not passed on to commands (they hold the queue's
/// own credentials); a handler's `env` may set them again explicitly.
const WITHHELD_ENV: [&str; 2] = ["DATABASE_URL", "KAFKA_BOOTSTRAP"];
/// Prefix of the other withheld worker settings.
const WITHHELD_ENV_PREFIX: &str = "YADTQ_";

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
            if !yadtq_core::validate::is_valid_task_name(&name, MAX_NAME_LEN) {
                return Err(LoadError::new(
                    n,
                    None,
                    format!(
                        "invalid name: task names are 1-{MAX_NAME_LEN} letters, digits and `._:-`, starting with a letter"
                    ),
                ));
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

/// What both kinds receive: `{"id", "task", "args", "kwargs", "attempt"}`.
#[derive(Serialize)]
struct TaskJson<'a> {
    id: &'a str,
    task: &'a str,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    attempt: i32,
}

fn task_json(ctx: &TaskContext) -> Vec<u8> {
    let t = TaskJson { id: &ctx.id, task: &ctx.task, args: &ctx.args, kwargs: &ctx.kwargs, attempt: ctx.attempt };
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

/// An HTTP endpoint serving one task name: the worker sends the task JSON as
/// the request body and takes the JSON reply body as the result.
pub struct HttpHandler {
    url: Url,
    method: Method,
    headers: HeaderMap,
    timeout: Duration,
    retry_on: Option<Vec<u16>>,
    max_response_bytes: usize,
    client: reqwest::Client,
}

impl fmt::Debug for HttpHandler {
    // Header values (tokens) and the query string stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHandler")
            .field("method", &self.method)
            .field("url", &format_args!("{}{}", self.url.origin().ascii_serialization(), self.url.path()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("retry_on", &self.retry_on)
            .finish_non_exhaustive()
    }
}

impl HttpHandler {
    fn new(name: &str, cfg: HttpConfig, client: reqwest::Client) -> Result<Self, LoadError> {
        let err = |field: &str, message: String| LoadError::new(Some(name), Some(field), message);
        let url = Url::parse(&cfg.url).map_err(|e| err("url", format!("`{}` is not a valid URL: {e}", cfg.url)))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(err(
                    "url",
                    "https is not supported by this build (plain http only): reach the endpoint over \
                     http, e.g. through a local TLS-terminating proxy"
                        .into(),
                ))
            }
            s => return Err(err("url", format!("scheme `{s}` is not supported: use an http:// URL"))),
        }
        let method = match cfg.method.to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            _ => return Err(err("method", format!("`{}` is not supported: use POST, PUT or PATCH", cfg.method))),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let field = format!("headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| err(&field, format!("`{k}` is not a valid header name")))?;
            let value = HeaderValue::from_str(v).map_err(|_| err(&field, "is not a valid header value".to_string()))?;
            headers.insert(name, value);
        }
        let timeout = check_timeout(name, cfg.timeout)?;
        if let Some(codes) = &cfg.retry_on {
            if let Some((i, c)) = codes.iter().enumerate().find(|(_, c)| !(100..=599).contains(*c)) {
                return Err(err(&format!("retry_on[{i}]"), format!("{c} is not an HTTP status (100-599)")));
            }
        }
        if cfg.max_response_bytes == 0 {
            return Err(err("max_response_bytes", "must be at least 1".into()));
        }
        Ok(Self {
            url,
            method,
            headers,
            timeout,
            retry_on: cfg.retry_on,
            max_response_bytes: cfg.max_response_bytes,
            client,
        })
    }

    /// Whether a non-2xx `status` is worth another attempt: listed in
    /// `retry_on`, or by default 429 or 5xx.
    pub fn is_retryable(&self, status: StatusCode) -> bool {
        match &self.retry_on {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        }
    }

    /// Sends the task JSON and returns the reply body parsed as JSON.
    ///
    /// Errors: `http_status` for a non-2xx status (retryable when
    /// [`Self::is_retryable`]; the message quotes the status and the start of
    /// the body); `http_error` (retryable) when the endpoint cannot be reached
    /// or does not answer in full within `timeout` seconds; `invalid_result`
    /// (permanent) for a 2xx body that is not JSON; `result_too_large`
    /// (permanent) for a body above `max_response_bytes`; `cancelled` when
    /// `ctx.cancel` fires.
    pub async fn call(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        tokio::select! {
            r = tokio::time::timeout(self.timeout, self.exchange(&ctx)) => r.unwrap_or_else(|_| Err(error(
                "http_error",
                true,
                format!("no complete reply within the handler's timeout of {} s (retryable)", self.timeout.as_secs_f64()),
            ))),
            _ = ctx.cancel.cancelled() => Err(cancelled()),
        }
    }

    async fn exchange(&self, ctx: &TaskContext) -> Result<Value, HandlerError> {
        let transport =
            |e: reqwest::Error| error("http_error", true, format!("{} (retryable)", chain(&e.without_url())));
        let mut resp = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .headers(self.headers.clone())
            // The fencing token, for endpoints that refuse a stale attempt's writes.
            .header(ATTEMPT_HEADER, ctx.attempt)
            .header(TASK_ID_HEADER, &ctx.id)
            .body(task_json(ctx))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(error(
                    "result_too_large",
                    false,
                    format!("status {status}: reply body above max_response_bytes ({} bytes)", self.max_response_bytes),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                error(
                    "invalid_result",
                    false,
                    format!("status {status} but the body is not JSON ({e}): {}", excerpt(&bytes, BODY_EXCERPT_BYTES)),
                )
            });
        }
        let retryable = self.is_retryable(status);
        Err(error(
            "http_status",
            retryable,
            format!("status {status} ({}); body: {}", tag(retryable), excerpt(&bytes, BODY_EXCERPT_BYTES)),
        ))
    }
}

/// An error and its sources, `outer: inner: …`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

/// A program serving one task name: run with the configured argv (no shell)
/// in its own process group, the task JSON on stdin, the JSON result on stdout.
#[derive(Debug)]
pub struct CommandHandler {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    max_stderr_bytes: usize,
    max_stdout_bytes: usize,
}

impl CommandHandler {
    fn new(name: &str, cfg: CommandConfig) -> Result<Self, LoadError> {
        let err = |field: &str, message: String| LoadError::new(Some(name), Some(field), message);
        let Some(program) = cfg.argv.first() else {
            return Err(err(
                "argv",
                "is empty: it must name a program, e.g. argv = [\"/usr/bin/python3\", \"job.py\"]".into(),
            ));
        };
        if program.is_empty() {
            return Err(err("argv[0]", "is empty: it must name a program".into()));
        }
        if let Some(i) = cfg.argv.iter().position(|a| a.contains('\0')) {
            return Err(err(&format!("argv[{i}]"), "contains a NUL character".into()));
        }
        if program.contains('/') && !Path::new(program).exists() {
            return Err(err(
                "argv[0]",
                format!("`{program}` does not exist (relative paths are taken from the worker's working directory)"),
            ));
        }
        for (k, v) in &cfg.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(err(
                    &format!("env.{k}"),
                    "names must be non-empty without `=` or NUL; values without NUL".into(),
                ));
            }
        }
        let timeout = cfg.timeout.map(|t| check_timeout(name, t)).transpose()?;
        if cfg.max_stderr_bytes > MAX_STDERR_LIMIT {
            return Err(err("max_stderr_bytes", format!("must be at most {MAX_STDERR_LIMIT}")));
        }
        if cfg.max_stdout_bytes == 0 {
            return Err(err("max_stdout_bytes", "must be at least 1".into()));
        }
        Ok(Self {
            argv: cfg.argv,
            env: cfg.env,
            timeout,
            max_stderr_bytes: cfg.max_stderr_bytes,
            max_stdout_bytes: cfg.max_stdout_bytes,
        })
    }

    /// Runs the program once for `ctx`: writes the task JSON to its stdin and
    /// closes it, reads stdout in full and parses it as the JSON result.
    ///
    /// The program runs in its own process group. When it exits, when its own
    /// `timeout` (seconds) passes, when `ctx.cancel` fires, or when this future
    /// is dropped (the worker's task timeout), every process left in the group
    /// is killed with SIGKILL; the program itself is reaped.
    ///
    /// Errors: `command_failed` for a non-zero exit or a death by signal
    /// (retryable, except exit code 2, which means "permanent"), with the
    /// last `max_stderr_bytes` of stderr in the message, or when the program
    /// cannot be started (permanent when it is missing or not executable);
    /// `invalid_result` (permanent) when exit 0 comes with stdout that is not
    /// JSON; `result_too_large` (permanent) for stdout above
    /// `max_stdout_bytes`; `timeout` (retryable) for the handler's own
    /// timeout; `cancelled` when `ctx.cancel` fires.
    pub async fn call(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        for (k, _) in std::env::vars_os() {
            let withheld = k.to_str().is_some_and(|k| WITHHELD_ENV.contains(&k) || k.starts_with(WITHHELD_ENV_PREFIX));
            if withheld {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(&self.env).env(ATTEMPT_ENV, ctx.attempt.to_string()).env(TASK_ID_ENV, &ctx.id);
        let mut child = cmd.spawn().map_err(|e| {
            let retryable = !matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied);
            error("command_failed", retryable, format!("cannot start `{}`: {e} ({})", self.argv[0], tag(retryable)))
        })?;
        let pid = child.id().expect("a child just spawned has a pid");
        // With process_group(0) the group id is the child's pid.
        let group = ProcessGroup { pgid: pid as libc::pid_t, armed: AtomicBool::new(true) };

        let own_timeout = async {
            match self.timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            r = self.run(&mut child, &group, task_json(&ctx)) => Ok(r),
            _ = own_timeout => Err(error(
                "timeout",
                true,
                format!("command exceeded its handler timeout of {} s (retryable)", self.timeout.unwrap_or_default().as_secs_f64()),
            )),
            _ = ctx.cancel.cancelled() => Err(cancelled()),
        };
        match stopped {
            Ok(finished) => self.judge(finished?),
            Err(e) => {
                group.kill_and_disarm();
                let _ = child.wait().await;
                Err(e)
            }
        }
    }

    /// Feeds stdin, drains stdout and stderr, and waits for the program's exit;
    /// kills the rest of its group once it has exited (before reaping it, so
    /// the group id cannot have been reused).
    async fn run(&self, child: &mut Child, group: &ProcessGroup, input: Vec<u8>) -> Result<Finished, HandlerError> {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let pid = group.pgid;
        let exited = tokio::task::spawn_blocking(move || wait_exit_without_reaping(pid));
        let feed = async move {
            // The program may exit without reading its input: EPIPE is fine.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let leader = async {
            let _ = exited.await;
            group.kill_and_disarm();
        };
        let ((), out, err, ()) = tokio::join!(
            feed,
            read_capped(stdout, self.max_stdout_bytes, group),
            read_tail(stderr, self.max_stderr_bytes),
            leader
        );
        let status = child.wait().await.map_err(|e| {
            error("command_failed", true, format!("cannot wait for `{}`: {e} (retryable)", self.argv[0]))
        })?;
        Ok(Finished { status, stdout: out, stderr: err })
    }

    fn judge(&self, f: Finished) -> Result<Value, HandlerError> {
        let Some(stdout) = f.stdout else {
            return Err(error(
                "result_too_large",
                false,
                format!("stdout went past max_stdout_bytes ({} bytes); the command was killed", self.max_stdout_bytes),
            ));
        };
        let stderr = f.stderr.render();
        match f.status.code() {
            Some(0) => serde_json::from_slice(&stdout).map_err(|e| {
                error(
                    "invalid_result",
                    false,
                    format!(
                        "exit code 0 but stdout is not JSON ({e}): {}; stderr: {stderr}",
                        excerpt(&stdout, BODY_EXCERPT_BYTES)
                    ),
                )
            }),
            Some(code) => {
                let retryable = code != 2;
                Err(error(
                    "command_failed",
                    retryable,
                    format!("exit code {code} ({}); stderr: {stderr}", tag(retryable)),
                ))
            }
            None => {
                let signal = f.status.signal().unwrap_or_default();
                Err(error("command_failed", true, format!("killed by signal {signal} (retryable); stderr: {stderr}")))
            }
        }
    }
}

/// What a program left behind: exit status, stdout (None past the cap) and
/// the end of stderr.
struct Finished {
    status: ExitStatus,
    stdout: Option<Vec<u8>>,
    stderr: Tail,
}

/// Kills a process group with SIGKILL on drop, unless disarmed.
///
/// Disarmed once the group has been killed after its leader exited and before
/// the leader is reaped: after that the leader's pid (the group id) may be
/// reused, so no signal is sent to it any more.
struct ProcessGroup {
    pgid: libc::pid_t,
    armed: AtomicBool,
}

impl ProcessGroup {
    fn kill(&self) {
        if self.armed.load(Ordering::SeqCst) {
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
    }

    fn kill_and_disarm(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            // SAFETY: as above.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Blocks until process `pid` has exited, leaving it a zombie (WNOWAIT) so its
/// pid, and so its group id, stays reserved until it is reaped.
fn wait_exit_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: siginfo_t is plain data; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Reads `r` to its end; `None` (after killing the group) once it goes past `max` bytes.
async fn read_capped(mut r: impl AsyncRead + Unpin, max: usize, group: &ProcessGroup) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Some(buf),
            Ok(n) if buf.len() + n > max => {
                group.kill();
                return None;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The last bytes of a stream and how many came before them.
struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn render(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        match (self.dropped, text.is_empty()) {
            (0, true) => "(empty)".into(),
            (0, false) => text.to_string(),
            (n, _) => format!("[{n} earlier bytes cut] {text}"),
        }
    }
}

/// Reads `r` to its end, keeping only the last `max` bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin, max: usize) -> Tail {
    let mut tail = Tail { bytes: Vec::new(), dropped: 0 };
    let mut chunk = vec![0u8; 16 * 1024];
    let trim = |t: &mut Tail, keep: usize| {
        if t.bytes.len() > keep {
            let cut = t.bytes.len() - keep;
            t.bytes.drain(..cut);
            t.dropped += cut as u64;
        }
    };
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.bytes.extend_from_slice(&chunk[..n]);
                // Trim only past twice the cap, so the copying stays linear.
                if tail.bytes.len() > 2 * max {
                    trim(&mut tail, max);
                }
            }
        }
    }
    trim(&mut tail, max);
    tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    fn ctx(args: Value) -> TaskContext {
        TaskContext {
            id: "t-1".into(),
            task: "job".into(),
            attempt: 1,
            args: args.as_array().unwrap().clone(),
            kwargs: json!({"k": "v"}).as_object().unwrap().clone(),
            cancel: CancellationToken::new(),
            progress: None,
            owner: None,
        }
    }

    fn load_err(text: &str) -> String {
        HandlersFile::parse(text).unwrap_err().to_string()
    }

    fn command(toml_body: &str) -> ExternalHandler {
        let f = HandlersFile::parse(&format!("[handlers.job]\nkind = \"command\"\n{toml_body}")).unwrap();
        f.get("job").unwrap().clone()
    }

    /// Pids whose command line contains `marker`.
    fn processes_with(marker: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(pid);
            }
        }
        found
    }

    async fn wait_gone(marker: &str) {
        for _ in 0..50 {
            if processes_with(marker).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("processes with `{marker}` survive: {:?}", processes_with(marker));
    }

    async fn wait_present(marker: &str, n: usize) {
        for _ in 0..50 {
            if processes_with(marker).len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} processes with `{marker}` started");
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

    #[tokio::test]
    async fn a_command_gets_the_task_on_stdin_and_answers_on_stdout() {
        let h = command(
            "argv = [\"/bin/sh\", \"-c\", \"printf '{\\\"in\\\": '; cat; printf ', \\\"env\\\": \\\"%s%s\\\", \\\"token\\\": \\\"%s/%s\\\"}' \\\"$GREETING\\\" \\\"$DATABASE_URL\\\" \\\"$YADTQ_TASK_ID\\\" \\\"$YADTQ_ATTEMPT\\\"\"]\nenv = { GREETING = \"hi\" }",
        );
        let v = h.call(ctx(json!([1, "two"]))).await.unwrap();
        assert_eq!(
            v,
            json!({"in": {"id": "t-1", "task": "job", "args": [1, "two"], "kwargs": {"k": "v"}, "attempt": 1}, "env": "hi", "token": "t-1/1"})
        );
    }

    #[tokio::test]
    async fn command_failures_carry_stderr_and_the_exit_code_convention() {
        let e = command("argv = [\"/bin/sh\", \"-c\", \"echo bad input >&2; exit 1\"]").call(ctx(json!([]))).await;
        let e = e.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("command_failed", true));
        assert_eq!(e.message, "exit code 1 (retryable); stderr: bad input");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"exit 2\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.retryable, e.message.as_str()),
            ("command_failed", false, "exit code 2 (permanent); stderr: (empty)")
        );

        let e = command("argv = [\"/bin/sh\", \"-c\", \"echo not json\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("invalid_result", false), "{e}");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"kill -9 $$\"]").call(ctx(json!([]))).await.unwrap_err();
        assert!(e.message.starts_with("killed by signal 9"), "{e}");

        let e = command("argv = [\"no-such-program-yadtq\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("command_failed", false), "{e}");

        let e = command(
            "argv = [\"/bin/sh\", \"-c\", \"head -c 5000 /dev/zero >&2; echo END >&2; exit 3\"]\nmax_stderr_bytes = 4",
        )
        .call(ctx(json!([])))
        .await
        .unwrap_err();
        assert_eq!(e.message, "exit code 3 (retryable); stderr: [5000 earlier bytes cut] END");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"yes\"]\nmax_stdout_bytes = 100000").call(ctx(json!([]))).await;
        assert_eq!(e.unwrap_err().kind, "result_too_large");
    }

    #[tokio::test]
    async fn the_whole_group_dies_when_the_program_exits_or_times_out() {
        // The program exits at once, leaving a background child holding stdout.
        let marker = "sleep 301.11";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & echo 7\"]"));
        assert_eq!(h.call(ctx(json!([]))).await.unwrap(), json!(7));
        wait_gone(marker).await;

        // The handler's own timeout.
        let marker = "sleep 301.22";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]\ntimeout = 0.5"));
        let e = h.call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("timeout", true), "{e}");
        wait_gone(marker).await;
    }

    #[tokio::test]
    async fn dropping_or_cancelling_the_attempt_kills_the_whole_group() {
        // Dropped, as the worker's task timeout does.
        let marker = "sleep 301.33";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]"));
        let r = tokio::time::timeout(Duration::from_millis(300), h.call(ctx(json!([])))).await;
        assert!(r.is_err(), "still running when dropped");
        wait_gone(marker).await;

        // Cancelled through the context.
        let marker = "sleep 301.44";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]"));
        let c = ctx(json!([]));
        let cancel = c.cancel.clone();
        let run = tokio::spawn(async move { h.call(c).await });
        wait_present(marker, 2).await;
        cancel.cancel();
        assert_eq!(run.await.unwrap().unwrap_err().kind, "cancelled");
        wait_gone(marker).await;
    }

    /// Serves `reply(task JSON)` on a free port; returns the base URL.
    async fn server(status: u16, body: &'static str, delay: Duration) -> String {
        use axum::http::StatusCode as S;
        let app = axum::Router::new().route(
            "/h",
            axum::routing::post(move |headers: axum::http::HeaderMap, req: String| async move {
                tokio::time::sleep(delay).await;
                let task: Value = serde_json::from_str(&req).unwrap();
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
                let body = body.replace("$ARGS", &task["args"].to_string()).replace("$AUTH", &auth.unwrap_or_default());
                (S::from_u16(status).unwrap(), body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/h")
    }

    fn http(url: &str, extra: &str) -> ExternalHandler {
        let f = HandlersFile::parse(&format!("[handlers.job]\nkind = \"http\"\nurl = \"{url}\"\n{extra}")).unwrap();
        f.get("job").unwrap().clone()
    }

    #[tokio::test]
    async fn http_replies_map_to_results_and_errors() {
        let url = server(200, r#"{"sum": $ARGS, "auth": "$AUTH"}"#, Duration::ZERO).await;
        let v = http(&url, "headers = { Authorization = \"Bearer s3cret\" }").call(ctx(json!([1, 2]))).await.unwrap();
        assert_eq!(v, json!({"sum": [1, 2], "auth": "Bearer s3cret"}));

        let e = http(&server(503, "busy", Duration::ZERO).await, "").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("http_status", true));
        assert_eq!(e.message, "status 503 Service Unavailable (retryable); body: busy");

        let e = http(&server(404, "nope", Duration::ZERO).await, "").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("http_status", false));

        let url = server(500, "x", Duration::ZERO).await;
        let e = http(&url, "retry_on = [429]").call(ctx(json!([]))).await.unwrap_err();
        assert!(!e.retryable, "retry_on replaces the default");

        let e = http(&server(200, "<html>", Duration::ZERO).await, "").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("invalid_result", false));

        let e = http(&server(200, "[1]", Duration::from_secs(5)).await, "timeout = 0.3").call(ctx(json!([]))).await;
        let e = e.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("http_error", true), "{e}");

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = http(&format!("http://127.0.0.1:{port}/"), "").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("http_error", true), "{e}");
        assert!(e.message.contains("onnect"), "{e}");

        let url = server(200, r#""0123456789""#, Duration::ZERO).await;
        let e = http(&url, "max_response_bytes = 5").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!(e.kind, "result_too_large");
    }
}
