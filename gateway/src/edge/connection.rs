//! The HTTP/1 connection server: the connection cap and the header, body,
//! write and idle timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::{EdgeConfig, CONNECTIONS_CLOSED, CONNECTIONS_OPEN};

impl EdgeConfig {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_read_timeout,
            body: self.body_read_timeout,
            write: self.write_timeout,
            idle: self.idle_timeout,
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
