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
}

/// A client of one gateway.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
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
        Ok(Self { base: base.trim_end_matches('/').to_string(), http })
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` with `query` parameters.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    /// POST `body` as JSON to `path` (no body when `None`).
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Answer> {
        let mut req = self.http.post(self.url(path));
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        self.send(req).await
    }

    /// GET `path` as a stream (no overall timeout), for server-sent events.
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response> {
        let req = self.http.get(self.url(path)).header(reqwest::header::ACCEPT, "text/event-stream");
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        Err(Error::Problem(Problem::parse(status, &text)))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer> {
        let resp = req.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            return Err(Error::Problem(Problem::parse(status, &text)));
        }
        let body = serde_json::from_str(&text).map_err(|e| {
            Error::Other(format!("the gateway at {} answered {status} with a body that is not JSON: {e}", self.base))
        })?;
        Ok(Answer { status, text, body })
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
