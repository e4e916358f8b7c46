//! Errors as RFC 9457 problem documents (`application/problem+json`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use yadtq_core::store::StoreError;

/// An RFC 9457 problem document. `field` names the request field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI reference identifying the problem type (`about:blank` or a yadtq type).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// The request field at fault (JSON path such as `args` or `kwargs.x`, a
    /// header name, a path or query parameter), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Error type of every handler: becomes a problem document response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
    retry_after: Option<u32>,
    /// Answer with `WWW-Authenticate: Bearer` (a 401).
    challenge: bool,
}

impl ApiError {
    /// A problem with `status`, a `detail` text and the offending `field`.
    pub fn new(status: StatusCode, detail: impl Into<String>, field: Option<&str>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let slug = title.to_lowercase().replace(' ', "-");
        Self {
            status,
            problem: Problem {
                type_: format!("https://yadtq.dev/problems/{slug}"),
                title,
                status: status.as_u16(),
                detail: detail.into(),
                field: field.map(str::to_string),
            },
            retry_after: None,
            challenge: false,
        }
    }

    /// 401 Unauthorized with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, detail, Some("Authorization"));
        e.challenge = true;
        e
    }

    /// The same error with its field put under `prefix` (`args` in task 3 of a
    /// batch becomes `tasks[3].args`).
    pub fn within(mut self, prefix: &str) -> Self {
        let field = self.problem.field.take().unwrap_or_default();
        self.problem.field = Some(if field.is_empty() { prefix.to_string() } else { format!("{prefix}.{field}") });
        self.problem.detail = format!("{prefix}: {}", self.problem.detail);
        self
    }

    /// 400 Bad Request naming `field`.
    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail, Some(field))
    }

    /// 404 Not Found.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail, None)
    }

    /// 503 Service Unavailable with `Retry-After: seconds`.
    pub fn unavailable(detail: impl Into<String>, seconds: u32) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, detail, None);
        e.retry_after = Some(seconds);
        e
    }

    /// 429 Too Many Requests with `Retry-After: seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u32) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, detail, None);
        e.retry_after = Some(seconds);
        e
    }

    /// The problem document this error answers with.
    #[cfg(test)]
    pub fn into_problem(self) -> Problem {
        self.problem
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Connection-level failures (PostgreSQL unreachable, pool exhausted) are a
/// 503 with Retry-After; anything else is a 500 and is logged.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "PostgreSQL unavailable");
            Self::unavailable("PostgreSQL is unavailable; retry later", 2)
        } else {
            tracing::error!(error = %e, "database error");
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal database error", None)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(&self.problem)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"yadtq\""));
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // A body over the limit, of the wrong type or too slow is left
        // unread, so the server closes the connection after this answer: say
        // so, or a client sends its next request on the dead connection
        // (httpx fails it, curl resends it).
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::REQUEST_TIMEOUT
        ) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
