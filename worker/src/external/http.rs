//! `kind = "http"`: the task JSON is POSTed (by default) to the configured
//! URL and the JSON reply body is the result.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use yadtq_core::telemetry;

use crate::handler::{HandlerError, TaskContext};

use super::{
    cancelled, check_timeout, error, excerpt, tag, task_json, HttpConfig, LoadError, ATTEMPT_HEADER,
    BODY_EXCERPT_BYTES, TASK_ID_HEADER,
};

/// An HTTP endpoint serving one task name: the worker sends the task JSON as
/// the request body and takes the JSON reply body as the result.
pub struct HttpHandler {
    url: Url,
    pub(super) method: Method,
    headers: HeaderMap,
    pub(super) timeout: Duration,
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
    pub(super) fn new(name: &str, cfg: HttpConfig, client: reqwest::Client) -> Result<Self, LoadError> {
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
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .headers(self.headers.clone())
            // The fencing token, for endpoints that refuse a stale attempt's writes.
            .header(ATTEMPT_HEADER, ctx.attempt)
            .header(TASK_ID_HEADER, &ctx.id);
        // The attempt's `run` span, so the endpoint's spans join the submitter's trace.
        if let Some(trace) = &ctx.trace {
            request = request.header(telemetry::TRACEPARENT, &trace.traceparent);
            if !trace.tracestate.is_empty() {
                request = request.header(telemetry::TRACESTATE, &trace.tracestate);
            }
        }
        let mut resp = request.body(task_json(ctx)).send().await.map_err(transport)?;
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

#[cfg(test)]
mod tests {
    use super::super::tests::ctx;
    use super::super::{ExternalHandler, HandlersFile};
    use super::*;
    use serde_json::json;

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
