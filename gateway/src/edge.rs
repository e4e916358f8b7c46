//! The gateway's edge: what bounds each client before a handler runs.
//!
//! - [`serve`] accepts connections itself (hyper's HTTP/1 server) to bound
//!   them: at most `--max-connections` open (past it, new connections wait
//!   in the kernel's accept backlog until one closes), a header read
//!   timeout, a request body read timeout (408), a response write timeout
//!   (a client that stops reading), an idle keep-alive timeout, and
//!   graceful shutdown.
//! - [`Edge::waiter`] caps concurrent long-polls and event streams (503 with
//!   Retry-After past it).
//! - [`Edge::listing`] caps concurrent listings (`GET /tasks`, `GET /workers`)
//!   so they cannot take every pooled connection from submissions (503 with
//!   Retry-After past a bounded wait).
//! - [`rate_limit`] limits each client's request rate (429 with Retry-After).
//! - [`cors`] answers browsers from the allowed origins only; [`json_bodies`]
//!   refuses a POST body that is not declared JSON (415), so a web page
//!   cannot submit a task with a "simple" cross-origin form post.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use clap::Args;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::problem::ApiError;

/// Connections open now: gauge.
pub const CONNECTIONS_OPEN: &str = "yadtq_gateway_connections_open";
/// Connections the gateway closed because the client was slow or idle:
/// counter, label `reason` (`header_timeout`, `write_timeout`, `idle_timeout`).
pub const CONNECTIONS_CLOSED: &str = "yadtq_gateway_connections_closed_total";
/// Long-polls and event streams open now: gauge.
pub const WAITERS: &str = "yadtq_gateway_waiters";
/// Requests refused by a limit of the edge: counter, label `limit`
/// (`waiters`, `rate`).
pub const REFUSED: &str = "yadtq_gateway_refused_total";

/// Seconds a client is told to wait (Retry-After) when the waiter cap is reached.
pub const WAITERS_RETRY_AFTER: u32 = 1;
/// Seconds a client is told to wait (Retry-After) when the listing cap stays full.
pub const LISTINGS_RETRY_AFTER: u32 = 1;
/// Listings running now (`GET /tasks`, `GET /workers`): gauge.
pub const LISTINGS: &str = "yadtq_gateway_listings";

/// How each client is bounded (flags and `YADTQ_*` environment).
#[derive(Debug, Clone, Args)]
pub struct EdgeConfig {
    /// Seconds a client has to send a request's headers, counted from the
    /// connection's accept for its first request and from the request's
    /// first byte for later ones; slower, the connection is closed.
    #[arg(long, env = "YADTQ_HEADER_READ_TIMEOUT", default_value = "10", value_parser = yadtq_core::config::parse_duration)]
    pub header_read_timeout: Duration,

    /// Seconds a client has to send a whole request body, counted from the
    /// end of its headers; slower, the request is answered 408 and the
    /// connection closed.
    #[arg(long, env = "YADTQ_BODY_READ_TIMEOUT", default_value = "30", value_parser = yadtq_core::config::parse_duration)]
    pub body_read_timeout: Duration,

    /// Seconds a response write may make no progress (the client has
    /// stopped reading and the socket's buffers are full) before the
    /// connection is closed, so a client that never reads cannot hold a
    /// connection and its request. Progress restarts the count: a slow
    /// reader of a long event stream is not cut off.
    #[arg(long, env = "YADTQ_WRITE_TIMEOUT", default_value = "30", value_parser = yadtq_core::config::parse_duration)]
    pub write_timeout: Duration,

    /// Seconds a keep-alive connection may stay idle between requests
    /// before the gateway closes it. Keep it above the idle timeout of the
    /// proxy in front (nginx's upstream keepalive_timeout is 60 s), so the
    /// proxy, not the gateway, closes idle connections.
    #[arg(long, env = "YADTQ_IDLE_TIMEOUT", default_value = "75", value_parser = yadtq_core::config::parse_duration)]
    pub idle_timeout: Duration,

    /// Most connections open at once; past it, new connections wait in the
    /// kernel's accept backlog (and are refused by the kernel when it is
    /// full) until one closes. Keep it below the process's open-file limit.
    #[arg(long, env = "YADTQ_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most long-polls (`GET /tasks/{id}?wait=`) and event streams (`GET
    /// /tasks/{id}/events`) open at once; past it they are answered 503
    /// with Retry-After. Each holds a connection: keep it below `--max-connections`.
    #[arg(long, env = "YADTQ_MAX_WAITERS", default_value_t = 2048)]
    pub max_waiters: usize,

    /// Most listings (`GET /tasks`, `GET /workers`) this gateway runs at once;
    /// 0 (the default): a quarter of `--db-pool-size`, at least 1. A listing
    /// past it waits up to `--listing-wait` for a place, then is answered
    /// 503 with Retry-After, so listings never hold every pooled connection
    /// and submissions keep theirs.
    #[arg(long, env = "YADTQ_MAX_CONCURRENT_LISTINGS", default_value_t = 0)]
    pub max_concurrent_listings: usize,

    /// Seconds a listing waits for a place under `--max-concurrent-listings`
    /// before it is answered 503 with Retry-After.
    #[arg(long, env = "YADTQ_LISTING_WAIT", default_value = "1", value_parser = yadtq_core::config::parse_duration)]
    pub listing_wait: Duration,

    /// Origins whose web pages may call the API (CORS), comma separated,
    /// each `scheme://host[:port]` as a browser sends it. None by default:
    /// no `Access-Control-Allow-Origin` header at all.
    #[arg(long, env = "YADTQ_CORS_ALLOW_ORIGINS", value_delimiter = ',')]
    pub cors_allow_origins: Vec<String>,

    /// Requests per second each client may make on average (0: no rate
    /// limit, the default). A client is its `Authorization` header's value
    /// when it sends one, else its IP address: behind a proxy every client
    /// without credentials shares the proxy's address.
    #[arg(long, env = "YADTQ_RATE_LIMIT", default_value_t = 0.0)]
    pub rate_limit: f64,

    /// Requests a client may make at once above its rate (the bucket size).
    #[arg(long, env = "YADTQ_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,

    /// Most clients the rate limiter tracks; past it, idle clients are
    /// forgotten, and while it is still full new clients share one bucket.
    #[arg(long, env = "YADTQ_RATE_LIMIT_CLIENTS", default_value_t = 100_000)]
    pub rate_limit_clients: usize,
}

impl EdgeConfig {
    /// Refuses settings that cannot work, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        yadtq_core::config::ensure_positive(&[
            ("--header-read-timeout", self.header_read_timeout),
            ("--body-read-timeout", self.body_read_timeout),
            ("--write-timeout", self.write_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--listing-wait", self.listing_wait),
        ])?;
        anyhow::ensure!(self.max_connections > 0, "--max-connections must be at least 1");
        anyhow::ensure!(
            self.max_connections <= Semaphore::MAX_PERMITS && self.max_connections <= u32::MAX as usize,
            "--max-connections is too large"
        );
        anyhow::ensure!(self.max_waiters > 0, "--max-waiters must be at least 1");
        anyhow::ensure!(
            self.max_concurrent_listings <= Semaphore::MAX_PERMITS,
            "--max-concurrent-listings is too large"
        );
        anyhow::ensure!(
            self.rate_limit.is_finite() && self.rate_limit >= 0.0,
            "--rate-limit must be 0 (off) or a positive number of requests per second, got {}",
            self.rate_limit
        );
        anyhow::ensure!(self.rate_limit_burst > 0, "--rate-limit-burst must be at least 1");
        anyhow::ensure!(self.rate_limit_clients > 0, "--rate-limit-clients must be at least 1");
        for origin in &self.cors_allow_origins {
            parse_origin(origin).map_err(|e| anyhow::anyhow!("--cors-allow-origins: {e}"))?;
        }
        Ok(())
    }

    /// The listing cap: `--max-concurrent-listings`, or a quarter of
    /// `pool_size` (at least 1) when it is 0.
    pub fn listing_cap(&self, pool_size: u32) -> usize {
        match self.max_concurrent_listings {
            0 => (pool_size as usize / 4).max(1),
            n => n,
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_read_timeout,
            body: self.body_read_timeout,
            write: self.write_timeout,
            idle: self.idle_timeout,
        }
    }
}

/// An allowed origin as a browser sends it in `Origin`: a scheme, a host and
/// an optional port, with no path (not even `/`).
fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let o = origin.trim();
    let ok = o.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', '*', ' '])
    });
    if !ok {
        return Err(format!("'{o}' is not an origin: give scheme://host[:port], without a path or wildcard"));
    }
    HeaderValue::from_str(o).map_err(|_| format!("'{o}' is not a valid header value"))
}

/// The CORS policy: `None` (no layer, no CORS header) when no origin is allowed.
pub fn cors(cfg: &EdgeConfig) -> Option<CorsLayer> {
    if cfg.cors_allow_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> =
        cfg.cors_allow_origins.iter().map(|o| parse_origin(o).expect("validated at start")).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
            .expose_headers([header::LOCATION, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// 415 for a POST whose body is not declared JSON (`application/json` or
/// `application/*+json`, parameters allowed), whatever the route: a browser
/// sends a cross-origin form or `text/plain` post without asking (no CORS
/// preflight), so the type is what tells a page's forged request apart.
pub async fn json_bodies(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    if req.method() == Method::POST && has_body {
        if let Err(e) = crate::routes::tasks::require_json(headers) {
            return e.into_response();
        }
    }
    next.run(req).await
}

/// Adds the edge's answers to every operation of the OpenAPI document `doc`:
/// 429 (the rate limit) to all but the probes, whose paths are never
/// limited, 415 to every POST (a body not declared JSON), and 408 to those
/// that read a body (the ones with a 413).
pub fn document_refusals(doc: &mut serde_json::Value) {
    let problem = |description: &str, retry_after: bool| {
        let mut r = serde_json::json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        });
        if retry_after {
            r["headers"] = serde_json::json!({"Retry-After": {
                "schema": {"type": "integer", "format": "int32", "minimum": 0},
                "description": "Seconds to wait before trying again",
            }});
        }
        r
    };
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
            if method == "post" && !responses.contains_key("415") {
                let r = problem(
                    "The body is not sent as `Content-Type: application/json` (`field` is `Content-Type`)",
                    false,
                );
                responses.insert("415".into(), r);
            }
            if responses.contains_key("413") && !responses.contains_key("408") {
                let r = problem("The body did not arrive within `--body-read-timeout` (`field` is `body`)", false);
                responses.insert("408".into(), r);
            }
            if !matches!(path.as_str(), "/healthz" | "/readyz") {
                let r = problem("This client is past its rate limit (`--rate-limit`); see Retry-After", true);
                responses.insert("429".into(), r);
            }
        }
    }
}

/// Shared limits of one gateway: the waiter cap, the listing cap and the rate limiter.
pub struct Edge {
    waiters: Arc<Semaphore>,
    max_waiters: usize,
    listings: Arc<Semaphore>,
    max_listings: usize,
    listing_wait: Duration,
    limiter: Option<Limiter>,
}

/// A place under one of the edge's caps (a long-poll's or event stream's
/// under `--max-waiters`, a listing's under `--max-concurrent-listings`),
/// counted in `gauge` while held; freed when dropped.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    gauge: &'static str,
}

impl Permit {
    fn counted(permit: OwnedSemaphorePermit, gauge: &'static str) -> Self {
        // Counted up and down (atomic), not set from the semaphore, whose
        // reading may be stale by the time it is set.
        metrics::gauge!(gauge).increment(1.0);
        Self { _permit: permit, gauge }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        metrics::gauge!(self.gauge).decrement(1.0);
    }
}

impl Edge {
    /// The limits of `cfg` (the listing cap derived from `pool_size`, the
    /// PostgreSQL pool's connections, unless set); starts the rate limiter's
    /// memory sweeper when rate limiting is on (call within the runtime).
    pub fn new(cfg: &EdgeConfig, pool_size: u32) -> Arc<Self> {
        let limiter = (cfg.rate_limit > 0.0).then(|| Limiter::new(cfg));
        let max_listings = cfg.listing_cap(pool_size);
        let edge = Arc::new(Self {
            waiters: Arc::new(Semaphore::new(cfg.max_waiters)),
            max_waiters: cfg.max_waiters,
            listings: Arc::new(Semaphore::new(max_listings)),
            max_listings,
            listing_wait: cfg.listing_wait,
            limiter,
        });
        if edge.limiter.is_some() {
            tokio::spawn(sweep_limiter(Arc::downgrade(&edge)));
        }
        edge
    }

    /// A place for one more waiter, or 503 with Retry-After when
    /// `--max-waiters` are open.
    pub fn waiter(&self) -> Result<Permit, ApiError> {
        match self.waiters.clone().try_acquire_owned() {
            Ok(permit) => Ok(Permit::counted(permit, WAITERS)),
            Err(_) => {
                metrics::counter!(REFUSED, "limit" => "waiters").increment(1);
                Err(ApiError::unavailable(
                    format!(
                        "this gateway holds its most long-polls and event streams ({}); retry later, or poll without wait",
                        self.max_waiters
                    ),
                    WAITERS_RETRY_AFTER,
                ))
            }
        }
    }

    /// A place for one more listing, waiting up to `--listing-wait` (first
    /// come, first served) while `--max-concurrent-listings` run; then 503
    /// with Retry-After.
    pub async fn listing(&self) -> Result<Permit, ApiError> {
        match tokio::time::timeout(self.listing_wait, self.listings.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Permit::counted(permit, LISTINGS)),
            _ => {
                metrics::counter!(REFUSED, "limit" => "listings").increment(1);
                Err(ApiError::unavailable(
                    format!(
                        "this gateway runs its most listings at once ({}) and none ended within {} s; retry later",
                        self.max_listings,
                        self.listing_wait.as_secs_f64()
                    ),
                    LISTINGS_RETRY_AFTER,
                ))
            }
        }
    }
}

/// Per-client token buckets (GCRA, the `governor` crate), keyed by a hash
/// of what identifies the client ([`client_key`]), never the raw value.
struct Limiter {
    buckets: DefaultKeyedRateLimiter<u64>,
    /// Requests per second (for the 429's detail: governor keeps no copy to give back).
    rate: f64,
    clock: DefaultClock,
    max_clients: usize,
    /// When the table was last swept because it was full (sweeps cost a
    /// pass over it; at most one a second).
    last_full_sweep: Mutex<Option<Instant>>,
}

/// Key under which new clients share one bucket while the table is full.
const OVERFLOW_KEY: u64 = 0;
/// How often idle clients are dropped from the rate limiter's table.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);

impl Limiter {
    fn new(cfg: &EdgeConfig) -> Self {
        let burst = NonZeroU32::new(cfg.rate_limit_burst).expect("validated at start");
        let period = Duration::from_secs_f64(1.0 / cfg.rate_limit).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period).expect("a positive period").allow_burst(burst);
        Self {
            buckets: DefaultKeyedRateLimiter::keyed(quota),
            rate: cfg.rate_limit,
            clock: DefaultClock::default(),
            max_clients: cfg.rate_limit_clients,
            last_full_sweep: Mutex::new(None),
        }
    }

    /// `Ok` when client `key` may make a request now, else the seconds until it may.
    fn check(&self, key: u64) -> Result<(), u32> {
        let mut key = key;
        if self.buckets.len() >= self.max_clients {
            let mut last = self.last_full_sweep.lock().expect("limiter lock");
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                *last = Some(Instant::now());
                self.buckets.retain_recent();
            }
            if self.buckets.len() >= self.max_clients {
                key = OVERFLOW_KEY;
            }
        }
        self.buckets.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs_f64().ceil() as u32).max(1)
        })
    }
}

async fn sweep_limiter(edge: std::sync::Weak<Edge>) {
    let mut tick = tokio::time::interval(LIMITER_SWEEP);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(edge) = edge.upgrade() else { return };
        if let Some(l) = &edge.limiter {
            l.buckets.retain_recent();
            l.buckets.shrink_to_fit();
        }
    }
}

/// Who a request counts against for rate limiting: a hash of its
/// `Authorization` header's value when it has one (the API key; point this
/// at the key's id once keys are checked), else of the peer's IP address.
pub fn client_key(req: &Request) -> u64 {
    let mut h = Sha256::new();
    match req.headers().get(header::AUTHORIZATION) {
        Some(v) => {
            h.update(b"authorization\0");
            h.update(v.as_bytes());
        }
        None => {
            let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            h.update(b"ip\0");
            h.update(ip.unwrap_or(IpAddr::from([0, 0, 0, 0])).to_string().as_bytes());
        }
    }
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(OVERFLOW_KEY + 1)
}

/// 429 with Retry-After (seconds) for a client past its rate; the probes
/// (`/healthz`, `/readyz`) are never limited.
pub async fn rate_limit(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let Some(limiter) = &edge.limiter else { return next.run(req).await };
    if matches!(req.uri().path(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    match limiter.check(client_key(&req)) {
        Ok(()) => next.run(req).await,
        Err(seconds) => {
            metrics::counter!(REFUSED, "limit" => "rate").increment(1);
            ApiError::too_many_requests(
                format!(
                    "this client is past its rate limit of {} requests a second; retry in {seconds} s",
                    limiter.rate
                ),
                seconds,
            )
            .into_response()
        }
    }
}

/// The error a request body gives when the client did not send it within
/// `--body-read-timeout`; [`body_timed_out`] finds it in an extractor's error.
#[derive(Debug)]
pub struct BodyTimedOut {
    /// The timeout that passed.
    pub timeout: Duration,
}

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body was not received within {} s", self.timeout.as_secs_f64())
    }
}

impl std::error::Error for BodyTimedOut {}

/// The body timeout behind `e` (an extractor's rejection), if that is what it is.
pub fn body_timed_out<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimedOut> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<BodyTimedOut>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

pin_project_lite::pin_project! {
    /// A request body with one deadline for all of it (tower-http's
    /// `TimeoutBody` bounds each pause instead, which a client sending a
    /// byte now and then never reaches).
    struct DeadlineBody<B> {
        #[pin]
        inner: B,
        #[pin]
        deadline: tokio::time::Sleep,
        timeout: Duration,
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match std::future::Future::poll(this.deadline, cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut { timeout: *this.timeout })))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its request's place in [`Activity`] until
    /// hyper has written it (an event stream is a request in flight until it ends).
    struct Tracked<B> {
        #[pin]
        inner: B,
        _request: InFlight,
    }
}

impl<B: http_body::Body> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The connection timeouts.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    body: Duration,
    write: Duration,
    idle: Duration,
}

/// What one connection is doing, for its watchdog: requests in flight, when
/// it last became idle, whether a new request has started arriving, and
/// whether a write is stuck on a client that does not read.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request; NEVER
    /// before the first request.
    idle_since: AtomicU64,
    /// Milliseconds from `opened` to the first byte read while idle; NEVER
    /// when none was.
    read_at: AtomicU64,
    /// Milliseconds from `opened` to the first of the writes that have been
    /// pending since (the socket full); NEVER once one makes progress.
    write_stalled_at: AtomicU64,
    changed: Notify,
}

const NEVER: u64 = u64::MAX;

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(NEVER),
            read_at: AtomicU64::new(NEVER),
            write_stalled_at: AtomicU64::new(NEVER),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.read_at.load(Ordering::Acquire) == NEVER
            && self.read_at.compare_exchange(NEVER, self.now_ms(), Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// Records a write's result: pending starts the stall's clock (once),
    /// anything else stops it.
    fn wrote<T>(&self, r: &Poll<T>) {
        if r.is_pending() {
            if self.write_stalled_at.compare_exchange(NEVER, self.now_ms(), Ordering::AcqRel, Ordering::Acquire).is_ok()
            {
                self.changed.notify_one();
            }
        } else {
            self.write_stalled_at.store(NEVER, Ordering::Release);
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the watchdog closes the connection, and why; `None` while a
    /// request is in flight and its response is not stuck.
    fn deadline(&self, t: &Timeouts) -> Option<(Instant, &'static str)> {
        let at = |ms: u64, d: Duration| self.opened + Duration::from_millis(ms) + d;
        let stalled = self.write_stalled_at.load(Ordering::Acquire);
        if stalled != NEVER {
            return Some((at(stalled, t.write), "write_timeout"));
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        let read_at = self.read_at.load(Ordering::Acquire);
        Some(if idle_since == NEVER {
            (at(0, t.header), "header_timeout")
        } else if read_at != NEVER {
            (at(read_at, t.header), "header_timeout")
        } else {
            (at(idle_since, t.idle), "idle_timeout")
        })
    }
}

/// One request in flight on a connection; dropped when its response is written.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.read_at.store(NEVER, Ordering::Release);
        a.idle_since.store(a.now_ms(), Ordering::Release);
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.changed.notify_one();
        }
    }
}

/// The client's socket, telling [`Activity`] when bytes arrive and when
/// writes stall.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.activity.wrote(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.stream).poll_flush(cx);
        self.activity.wrote(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.activity.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops
/// accepting, lets every open connection finish its requests, and returns
/// when all are closed (the caller bounds that wait: `--shutdown-grace`).
/// HTTP/1.1 only (the API needs nothing of HTTP/2, and proxies speak 1.1 upstream).
pub async fn serve(listener: TcpListener, app: Router, cfg: &EdgeConfig, shutdown: CancellationToken) {
    let timeouts = cfg.timeouts();
    let max = cfg.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    loop {
        // Taken before accepting: at the cap, connections wait in the backlog.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(stream, peer, app, timeouts, shutdown).await;
            metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    // Every slot back: every connection closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// A failed accept: the client's own failure is skipped; running out of
/// file descriptors pauses accepting briefly instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept a connection (out of file descriptors? raise ulimit -n or lower --max-connections)");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection, closing it when a timeout of [`Timeouts`] passes
/// with no request in flight, or when a write has made no progress for the
/// write timeout.
async fn connection(stream: TcpStream, peer: SocketAddr, app: Router, t: Timeouts, shutdown: CancellationToken) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = requests.begin();
        let mut req = if http_body::Body::is_end_stream(req.body()) {
            req.map(Body::new)
        } else {
            req.map(|b| Body::new(DeadlineBody { inner: b, deadline: tokio::time::sleep(t.body), timeout: t.body }))
        };
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            let resp = app.call(req).await?;
            Ok::<_, Infallible>(resp.map(|b| Body::new(Tracked { inner: b, _request: in_flight })))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&t);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = activity.changed.notified() => {}
            _ = expired => {
                if let Some((at, reason)) = activity.deadline(&t) {
                    if at <= Instant::now() {
                        tracing::debug!(%peer, reason, "closing a slow or idle connection");
                        metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason).increment(1);
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        edge: EdgeConfig,
    }

    fn config(args: &[&str]) -> EdgeConfig {
        Cli::try_parse_from(std::iter::once("gateway").chain(args.iter().copied())).expect("flags").edge
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(parse_origin("https://app.example").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        for bad in ["*", "app.example", "https://app.example/", "https://*.example", "ftp://x", "https://"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        let e = config(&["--cors-allow-origins", "https://a.example,https://b.example/"]).validate().unwrap_err();
        assert!(e.to_string().contains("--cors-allow-origins") && e.to_string().contains("b.example/"), "{e}");
        assert!(config(&[]).validate().is_ok(), "the defaults are valid");
        assert!(config(&["--idle-timeout", "0"]).validate().is_err());
        assert!(config(&["--write-timeout", "0"]).validate().is_err());
        assert!(config(&["--rate-limit=-1"]).validate().is_err());
    }

    #[tokio::test]
    async fn a_full_client_table_puts_new_clients_in_one_shared_bucket() {
        let cfg = config(&["--rate-limit", "0.001", "--rate-limit-burst", "2", "--rate-limit-clients", "2"]);
        let l = Limiter::new(&cfg);
        assert_eq!((l.check(1), l.check(1)), (Ok(()), Ok(())), "a burst of 2");
        assert!(l.check(1).is_err_and(|s| s >= 1), "then refused with a Retry-After of at least 1 s");
        assert!(l.check(2).is_ok(), "another client has its own bucket");
        // The table is full of recent clients: new ones share the overflow bucket.
        assert!(l.check(3).is_ok() && l.check(4).is_ok());
        assert!(l.check(5).is_err(), "clients 3, 4 and 5 share one bucket of 2");
        assert!(l.buckets.len() <= 3, "the table stays at its cap plus the shared bucket");
    }
}
