//! Request admission: what a request meets before its handler runs (the
//! waiter and listing caps, the per-client rate limit, CORS, JSON bodies).

use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::problem::ApiError;

use super::{EdgeConfig, LISTINGS, LISTINGS_RETRY_AFTER, REFUSED, WAITERS, WAITERS_RETRY_AFTER};

/// An allowed origin as a browser sends it in `Origin`: a scheme, a host and
/// an optional port, with no path (not even `/`).
pub(super) fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
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
            let mut last = self.last_full_sweep.lock();
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
