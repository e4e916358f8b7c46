//! The gateway's HTTP API as the CLI uses it: requests, problem documents and
//! the errors (with their exit codes) a command can end with.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Exit codes, one per kind of failure (documented in `yadtq --help`).
pub mod exit {
    /// Any other error: an unexpected status or an answer that is not JSON.
    pub const OTHER: i32 = 1;
    /// The gateway answered 404: no such task.
    pub const NOT_FOUND: i32 = 3;
    /// The gateway answered 409: a finished task cancelled, a task retried
    /// that cannot be, an id submitted before with another body.
    pub const CONFLICT: i32 = 4;
    /// Invalid input: the gateway answered 400, 413, 415 or 422, or the CLI
    /// refused an argument or a line of `--file` before sending anything.
    pub const INVALID: i32 = 5;
    /// The gateway is unreachable (connection refused, timeout, a TLS
    /// certificate not trusted) or answered 503.
    pub const UNAVAILABLE: i32 = 6;
    /// A task waited for ended `failed` or `cancelled`.
    pub const TASK_FAILED: i32 = 7;
    /// The wait's deadline passed before the task finished.
    pub const WAIT_EXPIRED: i32 = 8;
    /// The gateway refused the API key (401: none, unknown or revoked; 403: a scope or queue it lacks).
    pub const DENIED: i32 = 9;
}

/// An RFC 9457 problem document, as the gateway sends with every error.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Short summary (`Not Found`).
    pub title: String,
    /// What went wrong this time.
    pub detail: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

impl Problem {
    /// Reads a problem document from an error answer's body; a body that is not
    /// one (a proxy's HTML page) becomes its text as the detail.
    pub fn parse(status: u16, body: &str) -> Self {
        let doc: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
        Self {
            status,
            title: text("title").unwrap_or_else(|| reason(status).to_string()),
            detail: text("detail").unwrap_or_else(|| body.trim().to_string()),
            field: text("field"),
        }
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

/// Why a command failed; [`Error::exit_code`] maps it to the process's exit code.
#[derive(Debug)]
pub enum Error {
    /// The gateway answered with a problem document.
    Problem(Problem),
    /// The gateway could not be reached at `url`.
    Unreachable {
        /// The base URL tried.
        url: String,
        /// What failed (refused, timed out, DNS).
        reason: String,
    },
    /// The CLI refused its own input before sending anything.
    Input(String),
    /// A waited-for task ended `failed` or `cancelled` (already reported).
    TaskFailed(String),
    /// The wait ended before the task did.
    WaitExpired(String),
    /// Anything else.
    Other(String),
}

impl Error {
    /// The exit code of this error (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Problem(p) => match p.status {
                404 => exit::NOT_FOUND,
                409 => exit::CONFLICT,
                400 | 413 | 415 | 422 => exit::INVALID,
                503 => exit::UNAVAILABLE,
                401 | 403 => exit::DENIED,
                _ => exit::OTHER,
            },
            Error::Unreachable { .. } => exit::UNAVAILABLE,
            Error::Input(_) => exit::INVALID,
            Error::TaskFailed(_) => exit::TASK_FAILED,
            Error::WaitExpired(_) => exit::WAIT_EXPIRED,
            Error::Other(_) => exit::OTHER,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Problem(p) => {
                write!(f, "{} {}: {}", p.status, p.title, p.detail)?;
                match &p.field {
                    Some(field) => write!(f, " (field: {field})"),
                    None => Ok(()),
                }
            }
            Error::Unreachable { url, reason } => write!(f, "cannot reach the gateway at {url}: {reason}"),
            Error::Input(m) | Error::TaskFailed(m) | Error::WaitExpired(m) | Error::Other(m) => f.write_str(m),
        }
    }
}

/// What a command returns.
pub type Result<T> = std::result::Result<T, Error>;

/// A successful answer: its status and JSON body (`text` exactly as sent).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status (200, 202).
    pub status: u16,
    /// The body as sent, for `--json`.
    pub text: String,
    /// The body parsed.
    pub body: Value,
    /// Tries it took (1 when the first was answered); a submit answered 200
    /// after a retry is the CLI's own first try, not an earlier submission.
    pub tries: u32,
    /// The answer is the task holding the submission's unique key (header
    /// `Yadtq-Unique: existing`), nothing submitted.
    pub unique_existing: bool,
}

/// How often and how long an idempotent request is retried: before retry `n`
/// (1, 2, …) the CLI sleeps a random time between 0 and
/// `min(cap, base × 2^(n-1))` (full jitter), or the answer's `Retry-After`.
///
/// Idempotent: every GET, a `POST /tasks` or `POST /tasks/batch` carrying an
/// `id` or an `Idempotency-Key` (every submit does: the CLI adds a fresh key
/// to one without an id, the same on each try), and `POST /tasks/{id}/cancel`;
/// never `POST /tasks/{id}/retry`. Retried: connection failures, 502, 503,
/// 504, and 429 (after `Retry-After`; a `Retry-After` over a minute is not
/// waited for).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// First backoff bound.
    pub base: Duration,
    /// Largest backoff bound.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base: Duration::from_millis(200), cap: Duration::from_secs(5) }
    }
}

/// The longest `Retry-After` waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl RetryPolicy {
    /// The sleep before retry `retry` (1 for the first).
    fn backoff(&self, retry: u32) -> Duration {
        let bound = self.base.saturating_mul(1 << (retry - 1).min(20)).min(self.cap);
        bound.mul_f64(fastrand::f64())
    }
}

/// Statuses retried on an idempotent request.
fn is_retried_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `POST` to `path` is a submit (`Some(true)` a batch).
fn submit_kind(path: &str) -> Option<bool> {
    match path.trim_end_matches('/') {
        "/tasks" => Some(false),
        "/tasks/batch" => Some(true),
        _ => None,
    }
}

/// A single submit's body names its task id.
fn names_its_id(body: Option<&Value>) -> bool {
    body.is_some_and(|b| ["id", "task-id"].iter().any(|k| b.get(k).is_some_and(|v| !v.is_null() && v != "")))
}

/// A `POST` to `path` that may be sent again, given whether it carries an
/// `Idempotency-Key`.
fn post_is_idempotent(path: &str, body: Option<&Value>, keyed: bool) -> bool {
    let p = path.trim_end_matches('/');
    if p.starts_with("/tasks/") && p.ends_with("/cancel") && p.matches('/').count() == 3 {
        return true;
    }
    match submit_kind(path) {
        Some(_) if keyed => true,
        Some(false) => names_its_id(body),
        _ => false,
    }
}

/// The answer's `Retry-After` (delta-seconds; an HTTP date counts as 1 s).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    Some(v.parse::<u64>().map(Duration::from_secs).unwrap_or(Duration::from_secs(1)))
}

/// A client of one gateway.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// Time allowed for one request; above the gateway's longest long-poll (60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

impl Client {
    /// A client of the gateway at `base` (`http://127.0.0.1:8080`, or
    /// `https://…`) that sends `api_key` as `Authorization: Bearer <key>`
    /// when given. Over HTTPS it trusts the system's certificate authorities
    /// and those of the PEM file `ca_cert`.
    ///
    /// Errors ([`Error::Input`]) when the key is not visible ASCII, or
    /// `ca_cert` cannot be read or holds no PEM certificate.
    pub fn new(base: &str, api_key: Option<&str>, ca_cert: Option<&Path>) -> Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| Error::Input("--api-key (YADTQ_API_KEY) must be visible ASCII".into()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            for cert in read_ca_certs(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("yadtq-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("HTTP client: {e}")))?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), http, retry: RetryPolicy::default() })
    }

    /// The same client with `retry` as its retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` with `query` parameters (retried: see [`RetryPolicy`]).
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer> {
        let url = self.url(path);
        self.send(true, || self.http.get(&url).query(query).timeout(REQUEST_TIMEOUT)).await
    }

    /// POST `body` as JSON to `path` (no body when `None`). A submit without
    /// an id gets a fresh `Idempotency-Key`; retried when idempotent (see
    /// [`RetryPolicy`]).
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Answer> {
        let key = match submit_kind(path) {
            Some(batch) if batch || !names_its_id(body) => Some(uuid::Uuid::new_v4().to_string()),
            _ => None,
        };
        let url = self.url(path);
        let text = body.map(Value::to_string);
        let make = || {
            let mut req = self.http.post(&url).timeout(REQUEST_TIMEOUT);
            if let Some(text) = &text {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(text.clone());
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", key);
            }
            req
        };
        self.send(post_is_idempotent(path, body, key.is_some()), make).await
    }

    /// PATCH `body` as JSON to `path` (not retried: an edit is not idempotent in general).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Answer> {
        let url = self.url(path);
        let text = body.to_string();
        let make = || {
            self.http
                .patch(&url)
                .timeout(REQUEST_TIMEOUT)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(text.clone())
        };
        self.send(false, make).await
    }

    /// PUT `body` as JSON to `path` (retried: a PUT replaces the whole resource,
    /// so sending it again is harmless).
    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer> {
        let url = self.url(path);
        let text = body.to_string();
        let make = || {
            self.http
                .put(&url)
                .timeout(REQUEST_TIMEOUT)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(text.clone())
        };
        self.send(true, make).await
    }

    /// DELETE `path` (retried: deleting again is harmless); the answer's status.
    pub async fn delete(&self, path: &str) -> Result<u16> {
        let url = self.url(path);
        let (resp, _) = self.answer(true, || self.http.delete(&url).timeout(REQUEST_TIMEOUT)).await?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(status);
        }
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        Err(Error::Problem(Problem::parse(status, &text)))
    }

    /// GET `path` as a stream (no overall timeout), for server-sent events;
    /// its opening is retried as any GET.
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response> {
        let url = self.url(path);
        let make = || self.http.get(&url).header(reqwest::header::ACCEPT, "text/event-stream");
        let (resp, _) = self.answer(true, make).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        Err(Error::Problem(Problem::parse(status, &text)))
    }

    /// The answer to the request `make` builds, sent again (built anew) while
    /// `idempotent` and the policy allow after a connection failure or a
    /// retried status; with the tries it took.
    async fn answer(
        &self,
        idempotent: bool,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, u32)> {
        let mut tries = 1;
        loop {
            let last = !idempotent || tries >= self.retry.max_attempts;
            let delay = match make().send().await {
                Ok(resp) if last || !is_retried_status(resp.status().as_u16()) => return Ok((resp, tries)),
                Ok(resp) => match retry_after(&resp) {
                    Some(after) if after > MAX_RETRY_AFTER => return Ok((resp, tries)),
                    Some(after) => after,
                    None => self.retry.backoff(tries),
                },
                // An untrusted certificate fails the same way every time: not retried.
                Err(e) if last || !(e.is_connect() || e.is_request()) || e.is_timeout() || is_certificate_error(&e) => {
                    return Err(self.transport(e))
                }
                Err(_) => self.retry.backoff(tries),
            };
            tokio::time::sleep(delay).await;
            tries += 1;
        }
    }

    async fn send(&self, idempotent: bool, make: impl Fn() -> reqwest::RequestBuilder) -> Result<Answer> {
        let (resp, tries) = self.answer(idempotent, make).await?;
        let status = resp.status().as_u16();
        let unique_existing = resp.headers().get("yadtq-unique").is_some_and(|v| v == "existing");
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            return Err(Error::Problem(Problem::parse(status, &text)));
        }
        let body = serde_json::from_str(&text).map_err(|e| {
            Error::Other(format!("the gateway at {} answered {status} with a body that is not JSON: {e}", self.base))
        })?;
        Ok(Answer { status, text, body, tries, unique_existing })
    }

    /// A transport failure, naming the URL tried.
    pub fn transport(&self, e: reqwest::Error) -> Error {
        // The innermost cause says it best ("Connection refused (os error 111)").
        let mut root: &dyn std::error::Error = &e;
        while let Some(s) = root.source() {
            root = s;
        }
        let reason = if e.is_connect() && is_certificate_error(&e) {
            format!(
                "TLS: the gateway's certificate is not trusted: {} (give the CA that signed it with \
                 --ca-cert <PEM file> or YADTQ_CA_CERT)",
                certificate_reason(&e)
            )
        } else if e.is_connect() {
            format!("{root} (is the gateway running? set --url or YADTQ_URL)")
        } else if e.is_timeout() {
            "timed out".to_string()
        } else {
            root.to_string()
        };
        Error::Unreachable { url: self.base.clone(), reason }
    }
}

/// The certificates of the PEM file `path` (`--ca-cert`).
fn read_ca_certs(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| Error::Input(format!("--ca-cert {shown}: cannot read it: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| Error::Input(format!("--ca-cert {shown}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Input(format!("--ca-cert {shown}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")));
    }
    Ok(certs)
}

/// The messages of `e`'s chain, outermost first. An `io::Error` wrapping
/// another error shows that error in its message but not as its source,
/// so the messages, not the types, are what says a certificate failed.
fn chain(e: &reqwest::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        out.push(err.to_string());
        next = err.source();
    }
    out
}

/// True when the TLS handshake failed on the gateway's certificate (rustls:
/// `invalid peer certificate: …`).
fn is_certificate_error(e: &reqwest::Error) -> bool {
    chain(e).iter().any(|m| m.contains("invalid peer certificate"))
}

/// The certificate part of `e`'s chain (`invalid peer certificate: UnknownIssuer`).
fn certificate_reason(e: &reqwest::Error) -> String {
    let chain = chain(e);
    chain.iter().rev().find(|m| m.contains("invalid peer certificate")).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One request the stub saw: method, path, and its headers (lower case).
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    /// A stub gateway on `listener` answering from `script` (status, extra
    /// header lines; the last repeats), one request per connection.
    fn stub(listener: tokio::net::TcpListener, script: Vec<(u16, &'static str)>) -> Seen {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            let mut script = std::collections::VecDeque::from(script);
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap_or(0));
                while buf.len() < head_end + 4 + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let (method, path) =
                    (first.next().unwrap_or("").to_uppercase(), first.next().unwrap_or("").to_string());
                record.lock().push((method, path, head.clone()));
                let (status, extra) = if script.len() > 1 { script.pop_front().unwrap() } else { script[0] };
                let body = if status < 300 { r#"{"id":"t-1","status":"queued"}"# } else { "<html>bad gateway</html>" };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        seen
    }

    async fn gateway(script: Vec<(u16, &'static str)>) -> (Client, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fast = RetryPolicy { max_attempts: 5, base: Duration::from_millis(5), cap: Duration::from_millis(20) };
        (Client::new(&base, Some("k"), None).unwrap().with_retry(fast), stub(listener, script))
    }

    fn key_of(head: &str) -> Option<String> {
        head.lines().find_map(|l| l.strip_prefix("idempotency-key:")).map(|v| v.trim().to_string())
    }

    #[tokio::test]
    async fn reads_are_retried_on_502_503_504() {
        let (client, seen) = gateway(vec![(502, ""), (503, ""), (504, ""), (200, "")]).await;
        let a = client.get("/tasks/t-1", &[]).await.unwrap();
        assert_eq!((a.status, a.tries), (200, 4));
        assert!(seen.lock().iter().all(|(_, _, h)| h.contains("authorization: bearer k")));
    }

    #[tokio::test]
    async fn a_submit_carries_one_idempotency_key_across_its_retries() {
        let (client, seen) = gateway(vec![(502, ""), (202, "")]).await;
        let a = client.post("/tasks", Some(&serde_json::json!({"task": "add", "args": [1, 2]}))).await.unwrap();
        assert_eq!((a.status, a.tries), (202, 2));
        let keys: Vec<_> = seen.lock().iter().map(|(_, _, h)| key_of(h)).collect();
        assert!(keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
        // A batch is keyed too; a submit naming its id is not, and is retried.
        client.post("/tasks/batch", Some(&serde_json::json!({"tasks": []}))).await.unwrap();
        client.post("/tasks", Some(&serde_json::json!({"task": "add", "id": "mine"}))).await.unwrap();
        let seen = seen.lock();
        assert!(key_of(&seen[2].2).is_some_and(|k| Some(&k) != keys[0].as_ref()));
        assert_eq!(key_of(&seen[3].2), None);
    }

    #[tokio::test]
    async fn retry_is_never_repeated_and_cancel_is() {
        let (client, seen) = gateway(vec![(502, ""), (200, "")]).await;
        let e = client.post("/tasks/t-1/retry", None).await.unwrap_err();
        assert!(matches!(e, Error::Problem(Problem { status: 502, .. })), "{e}");
        assert_eq!(seen.lock().len(), 1);
        let (client, seen) = gateway(vec![(503, ""), (200, "")]).await;
        assert_eq!(client.post("/tasks/t-1/cancel", None).await.unwrap().tries, 2);
        assert_eq!(seen.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_429_is_retried_after_its_retry_after() {
        let (client, _) = gateway(vec![(429, "Retry-After: 1\r\n"), (200, "")]).await;
        let t0 = std::time::Instant::now();
        assert_eq!(client.get("/tasks/t-1", &[]).await.unwrap().tries, 2);
        assert!(t0.elapsed() >= Duration::from_millis(950), "{:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_until_the_gateway_is_up() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let slow = RetryPolicy { max_attempts: 30, base: Duration::from_millis(50), cap: Duration::from_millis(100) };
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap().with_retry(slow);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stub(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap(), vec![(202, "")])
        });
        let a = client.post("/tasks", Some(&serde_json::json!({"task": "add"}))).await.unwrap();
        assert!(a.tries > 1, "{}", a.tries);
        assert_eq!(late.await.unwrap().lock().len(), 1);
        // And gives up after max_attempts.
        let once = RetryPolicy { max_attempts: 2, ..slow };
        let gone = Client::new("http://127.0.0.1:1", None, None).unwrap().with_retry(once);
        assert!(matches!(gone.get("/tasks/x", &[]).await, Err(Error::Unreachable { .. })));
    }

    #[test]
    fn problems_are_read_from_the_body_or_made_from_the_status() {
        let p = Problem::parse(404, r#"{"type":"x","title":"Not Found","status":404,"detail":"no task with id 'x'"}"#);
        assert_eq!(p.detail, "no task with id 'x'");
        assert_eq!(Error::Problem(p).exit_code(), exit::NOT_FOUND);
        let p = Problem::parse(502, "<html>bad gateway</html>");
        assert_eq!((p.title.as_str(), p.detail.as_str()), ("Bad Gateway", "<html>bad gateway</html>"));
        let p = Problem::parse(422, r#"{"title":"Unprocessable Entity","detail":"unknown queue","field":"queue"}"#);
        assert_eq!(Error::Problem(p.clone()).to_string(), "422 Unprocessable Entity: unknown queue (field: queue)");
        assert_eq!(Error::Problem(p).exit_code(), exit::INVALID);
    }
}
