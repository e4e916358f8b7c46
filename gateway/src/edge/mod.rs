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
//!
//! This module holds the settings ([`EdgeConfig`]) and the metric names;
//! `admission` is what a request meets before its handler (the caps, the
//! rate limit, CORS, JSON bodies) and `connection` the HTTP/1 connection
//! server with its timeouts.

mod admission;
mod connection;

use std::time::Duration;

use clap::Args;
use tokio::sync::Semaphore;

use admission::parse_origin;
pub use admission::{cors, document_refusals, json_bodies, rate_limit, Edge, Permit};
pub use connection::{body_timed_out, serve};

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
}
