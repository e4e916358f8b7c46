//! Who is calling, and what they may see: API keys (`Authorization: Bearer
//! <token>`) checked on every route but the public ones (`/healthz`,
//! `/readyz`, `/openapi.json`, `/ui`, and `/metrics` with
//! `--metrics-public`), the caller's tenant and scopes, and the views of tasks
//! and workers a caller without the `operate` scope gets. docs/security.md
//! has the model.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use clap::{Args, ValueEnum};
use sqlx::PgPool;
use uuid::Uuid;
use yadtq_core::auth::{self, Scope};
use yadtq_core::model::{Attempt, Task, TaskError, Worker};
use yadtq_core::names::{ScheduleKey, TaskId, TaskKey, Tenant};
use yadtq_core::store::keys::{self, ApiKey};
use yadtq_core::store::tasks::NewTask;

use crate::problem::ApiError;
use crate::state::AppState;

/// Whether requests must carry a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Every API route needs a key (the default).
    On,
    /// No key is checked: every request acts as a `cluster` key of the
    /// default tenant. For local development only; the gateway warns at start and
    /// every minute.
    Off,
}

/// A secret from the command line or environment, never printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// Authentication settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// `on`: every API route needs `Authorization: Bearer <key>`; `off`: none
    /// does, and every request acts as a `cluster` key of the `default` tenant (local
    /// development only: the gateway logs a warning at start and every minute).
    #[arg(long = "auth", env = "YADTQ_AUTH", value_enum, default_value_t = AuthMode::On)]
    pub mode: AuthMode,

    /// Seconds a gateway reuses a key lookup: a revoked key stops working on
    /// every gateway within this.
    #[arg(long, env = "YADTQ_AUTH_CACHE_TTL", default_value = "2", value_parser = yadtq_core::config::parse_duration)]
    pub auth_cache_ttl: Duration,

    /// Serve `/metrics` to anyone, without a key. Off by default: `/metrics`
    /// needs a key with the `metrics` scope (or `admin`). Turn it on only
    /// where the gateway's port is reachable from a private scrape network alone.
    #[arg(long, env = "YADTQ_METRICS_PUBLIC")]
    pub metrics_public: bool,

    /// Accepted and ignored: `/metrics` needs the `metrics` scope by default
    /// since `--metrics-public` exists (kept so that older settings still start).
    #[arg(long, env = "YADTQ_METRICS_AUTH", hide = true, conflicts_with = "metrics_public")]
    pub metrics_auth: bool,

    /// A token stored at start as a `cluster` (and `admin`) key of the
    /// `default` tenant (named `bootstrap`) unless a key with it exists,
    /// revoked included (a working one an earlier release stored is given
    /// `cluster`): how a new deployment gets its first key. At least 32 visible ASCII
    /// characters; empty means none.
    #[arg(long, env = "YADTQ_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<Secret>,
}

impl AuthConfig {
    /// Checks the settings at start.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.auth_cache_ttl <= Duration::from_secs(300),
            "--auth-cache-ttl must be 0 to 300 seconds, got {}",
            self.auth_cache_ttl.as_secs_f64()
        );
        if let Some(Secret(token)) = self.bootstrap_admin_key.as_ref().filter(|s| !s.0.is_empty()) {
            anyhow::ensure!(
                token.len() >= auth::MIN_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic()),
                "YADTQ_BOOTSTRAP_ADMIN_KEY (--bootstrap-admin-key) must be at least {} visible ASCII characters \
                 (make one with `yadtq-gateway keys token`)",
                auth::MIN_TOKEN_LEN
            );
        }
        Ok(())
    }
}

/// The authenticated caller of a request: its key's tenant, scopes and queues.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key, or `None` when authentication is off.
    pub key_id: Option<Uuid>,
    /// Tenant whose tasks the request reaches.
    pub tenant: Tenant,
    scopes: Vec<Scope>,
    queues: Option<Vec<String>>,
}

impl From<ApiKey> for Caller {
    fn from(k: ApiKey) -> Self {
        Self { key_id: Some(k.id), tenant: Tenant::from_stored(k.tenant), scopes: k.scopes, queues: k.queues }
    }
}

impl Caller {
    /// Every request's caller with authentication off.
    fn unrestricted() -> Self {
        Self { key_id: None, tenant: Tenant::default_tenant(), scopes: vec![Scope::Cluster], queues: None }
    }

    /// True when the key holds `scope` (or one implying it: `admin`, `cluster`).
    pub fn may(&self, scope: Scope) -> bool {
        auth::grants(&self.scopes, scope)
    }

    /// 403 naming the missing scope unless the key holds it.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.may(scope) {
            return Ok(());
        }
        let held = self.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this key lacks the '{scope}' scope (it has: {held})"),
            Some("Authorization"),
        ))
    }

    /// The tenant whose admin data (keys, audit entries, dead letters) the
    /// key reaches: its own, or `None` (every tenant's) with `cluster`.
    /// Callers check the `admin` scope first.
    pub fn admin_tenant(&self) -> Option<&str> {
        (!self.may(Scope::Cluster)).then_some(self.tenant.as_str())
    }

    /// True when the key may administer data of `tenant` (`None`: data of no
    /// tenant, which only `cluster` reaches): its own tenant with `admin`,
    /// any with `cluster`.
    pub fn administers(&self, tenant: Option<&str>) -> bool {
        self.may(Scope::Admin) && self.admin_tenant().is_none_or(|own| tenant == Some(own))
    }

    /// 403 naming `field` unless the key may administer `tenant`.
    pub fn require_tenant(&self, tenant: &str, field: &str) -> Result<(), ApiError> {
        if self.administers(Some(tenant)) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this key administers tenant '{}' only; tenant '{tenant}' needs the 'cluster' scope", self.tenant),
            Some(field),
        ))
    }

    /// The key's scopes, as stored (`admin` and `cluster` imply others: see [`Caller::may`]).
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// True when the key may reach tasks of `queue`.
    pub fn sees_queue(&self, queue: &str) -> bool {
        self.queues.as_ref().is_none_or(|qs| qs.iter().any(|q| q == queue))
    }

    /// The queues the key is limited to (`None`: every queue).
    pub fn queues(&self) -> Option<&[String]> {
        self.queues.as_deref()
    }

    /// 403 naming `field` unless the key may submit to `queue`.
    pub fn require_queue(&self, queue: &str, field: &str) -> Result<(), ApiError> {
        if self.sees_queue(queue) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this key may not use queue '{queue}' (it may use: {})",
                self.queues.as_deref().unwrap_or(&[]).join(", ")
            ),
            Some(field),
        ))
    }

    /// The stored key of this tenant's task `id`.
    pub fn task_key(&self, id: &TaskId) -> TaskKey {
        TaskKey::new(&self.tenant, id)
    }

    /// The stored key of this tenant's schedule `id`.
    pub fn schedule_key(&self, id: &TaskId) -> ScheduleKey {
        ScheduleKey::new(&self.tenant, id)
    }

    /// Makes a validated task this tenant's (and so its stored key, [`NewTask::key`]).
    pub fn adopt(&self, task: &mut NewTask) {
        task.tenant.clone_from(&self.tenant);
    }

    /// Who acted, for the audit log: `key:<id>`, or `anonymous` with authentication off.
    pub fn actor(&self) -> String {
        self.key_id.map_or_else(|| "anonymous".to_string(), |id| format!("key:{id}"))
    }

    /// `task` as this caller sees it (under the id its tenant knows, [`TaskKey::id_for`]),
    /// with handler output left out of its error unless the key may operate.
    pub fn present(&self, mut task: Task) -> Task {
        task.id = task.key.id_for(&self.tenant);
        if !self.may(Scope::Operate) {
            task.error = task.error.map(redact);
        }
        task
    }

    /// `attempt` as this caller sees it (see [`Caller::present`]).
    pub fn present_attempt(&self, mut attempt: Attempt) -> Attempt {
        if !self.may(Scope::Operate) {
            attempt.error = attempt.error.map(redact);
        }
        attempt
    }

    /// `worker` as this caller sees it: host, pid and version only for keys
    /// that may operate; other tenants' names only for cluster keys.
    pub fn present_worker(&self, mut worker: Worker) -> Worker {
        if !self.may(Scope::Operate) {
            worker.hostname = None;
            worker.pid = None;
            worker.version = None;
        }
        if !self.may(Scope::Cluster) {
            if let Some(tenants) = &mut worker.tenants {
                tenants.retain(|t| *t == self.tenant.as_str());
            }
        }
        worker
    }
}

/// Longest error message a caller without `operate` sees, in characters.
pub const REDACTED_MESSAGE_CHARS: usize = 120;

/// The error's kind and the first clause of its message (yadtq's handlers
/// put handler output after a `;`: `...; stderr: ...`, `...; body: ...`),
/// at most [`REDACTED_MESSAGE_CHARS`] characters.
fn redact(e: TaskError) -> TaskError {
    let first = e.message.split(';').next().unwrap_or_default();
    let mut message: String = first.chars().take(REDACTED_MESSAGE_CHARS).collect();
    if message.len() < e.message.len() {
        message.push_str(" [details need the operate scope]");
    }
    TaskError { kind: e.kind, message }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler asked for the caller on a route without authentication");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        })
    }
}

/// Checks bearer tokens against `api_keys`, with a short cache.
pub struct Authenticator {
    mode: AuthMode,
    pool: PgPool,
    /// Token hash → the key's caller, or `None` for a token no working key has.
    cache: moka::sync::Cache<Vec<u8>, Option<Arc<Caller>>>,
}

/// Most distinct tokens a gateway remembers at once.
const CACHE_ENTRIES: u64 = 100_000;

impl Authenticator {
    /// An authenticator over `pool` with `cfg`'s mode and cache lifetime.
    pub fn new(cfg: &AuthConfig, pool: PgPool) -> Self {
        let cache = moka::sync::Cache::builder().max_capacity(CACHE_ENTRIES).time_to_live(cfg.auth_cache_ttl).build();
        Self { mode: cfg.mode, pool, cache }
    }

    /// The caller of a request with `headers`: 401 without a bearer token or
    /// with one no working key has, 503 when PostgreSQL cannot tell.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.mode == AuthMode::Off {
            return Ok(Caller::unrestricted());
        }
        let token = bearer(headers)?;
        let hash = auth::token_hash(token);
        let found = match self.cache.get(&hash) {
            Some(found) => found,
            None => {
                let found = keys::find(&self.pool, &hash).await?.map(|k| Arc::new(Caller::from(k)));
                self.cache.insert(hash, found.clone());
                found
            }
        };
        match found {
            Some(caller) => Ok(Caller::clone(&caller)),
            None => Err(ApiError::unauthorized("the key is not known or was revoked")),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, or 401.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("send an API key as 'Authorization: Bearer <key>'"));
    };
    let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(ApiError::unauthorized("the Authorization header must be 'Bearer <key>'")),
    }
}

/// Middleware of the authenticated routes: puts the [`Caller`] in the
/// request's extensions, or answers 401 / 503.
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(req.headers()).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Logs, at start and every minute, that authentication is off.
pub async fn warn_while_off() {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth off / YADTQ_AUTH=off): anyone who can reach this gateway can submit, \
             read, cancel and retry every task and create keys. Use it for local development only."
        );
    }
}

/// Stores the bootstrap key (scopes `admin` and `cluster`) when one is
/// configured and not yet stored, and gives `cluster` to one an earlier
/// release stored without it.
pub async fn bootstrap(cfg: &AuthConfig, pool: &PgPool) -> anyhow::Result<()> {
    let Some(Secret(token)) = cfg.bootstrap_admin_key.as_ref().filter(|s| !s.0.is_empty()) else { return Ok(()) };
    let prefix = auth::token_prefix(token);
    match keys::bootstrap(pool, token).await? {
        keys::Bootstrap::Added => tracing::info!(%prefix, "stored the bootstrap key (YADTQ_BOOTSTRAP_ADMIN_KEY)"),
        keys::Bootstrap::Upgraded => {
            tracing::info!(%prefix, "gave the bootstrap key (YADTQ_BOOTSTRAP_ADMIN_KEY) the 'cluster' scope")
        }
        keys::Bootstrap::Exists => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_the_kind_and_the_first_clause() {
        let e = redact(TaskError::new("command_failed", "exit code 1 (retryable); stderr: password=hunter2"));
        assert_eq!(e.kind, "command_failed");
        assert_eq!(e.message, "exit code 1 (retryable) [details need the operate scope]");
        let short = redact(TaskError::new("timeout", "attempt timed out after 1 s"));
        assert_eq!(short.message, "attempt timed out after 1 s");
        let long = redact(TaskError::new("handler_error", "x".repeat(500)));
        assert!(long.message.starts_with(&"x".repeat(REDACTED_MESSAGE_CHARS)) && long.message.len() < 200);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer yadtq_abc".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "yadtq_abc");
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert!(bearer(&h).is_err());
    }
}
