//! Connections: the accept loop and per-connection limits under warp's request handling.
//!
//! warp turns the node's filter into a service (`warp::service`); this module serves it on
//! hyper connections it controls, because warp's own loop has no connection limit, no header
//! or idle timeout and logs every client reset at ERROR. Per listener:
//!
//! - **A connection limit** that sheds the longest-idle connection first (then the oldest
//!   half-sent head), so a flood of idle sockets cannot lock real callers out; only when every
//!   connection is busy is a new one refused.
//! - **A header timeout**: from the first byte of a request until its head is complete. A
//!   client that trickles its headers is cut off.
//! - **An idle timeout**: a keep-alive connection with nothing in flight and no bytes for
//!   that long is closed gracefully. Keep it above the load balancer's upstream keep-alive, so
//!   the balancer closes first and never sends on a socket the node is closing.
//! - **Header size and count caps** in hyper, which answer a bare 431 (or 400 for a malformed
//!   head) and close; the request path checks tighter budgets first and answers those with the
//!   JSON error body (`api::check_head`).
//!
//! Connection errors (resets, malformed heads, timeouts) are counted by kind in a metric and
//! logged at DEBUG: a client must not be able to flood the error log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::metrics::ConnMetrics;

/// The TCP peer of a request, handed to the filter as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Limits of one listener's connections.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// hyper's read buffer: the largest request head it parses at all.
    pub max_head_bytes: usize,
    /// hyper's cap on header lines.
    pub max_headers: usize,
}

/// Milliseconds since the listener started; 0 means "never" where a field allows it.
fn millis(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64 + 1
}

/// What the accept loop and the connection's own task know about one connection.
struct ConnState {
    /// Requests handed to the service and not yet answered.
    in_flight: AtomicUsize,
    /// Last byte read or request finished (ms since the listener's epoch).
    last_activity: AtomicU64,
    /// First byte of a request head not yet complete (0: none).
    head_started: AtomicU64,
    /// Asks the connection to close (shed, or the listener stops).
    close: Notify,
    /// Already chosen to be shed: not counted, not chosen again.
    shed: AtomicBool,
}

impl ConnState {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
    }
}

struct Listener {
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    config: ConnConfig,
    metrics: ConnMetrics,
    label: &'static str,
}

impl Listener {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for one more connection: asks the longest-idle one (else the oldest
    /// half-sent head) to close. False when every connection is busy with a request.
    fn make_room(&self) -> bool {
        let conns = self.lock();
        // The scans below run only at the limit, not on every accept.
        if conns.len() < self.config.max_connections {
            return true;
        }
        let live = || conns.values().filter(|c| !c.shed.load(Ordering::Relaxed));
        if live().count() < self.config.max_connections {
            return true;
        }
        let victim = live()
            .filter(|c| c.idle())
            .min_by_key(|c| c.last_activity.load(Ordering::Relaxed))
            .or_else(|| {
                live()
                    .filter(|c| c.head_started.load(Ordering::Relaxed) != 0)
                    .min_by_key(|c| c.head_started.load(Ordering::Relaxed))
            });
        match victim {
            Some(v) => {
                v.shed.store(true, Ordering::Relaxed);
                v.close.notify_one();
                self.metrics.shed.with_label_values(&[self.label]).inc();
                true
            }
            None => false,
        }
    }
}

/// Serves `filter` on `listener` until `stop` turns true, then closes every connection
/// gracefully (in-flight requests finish) and returns when the last one is gone.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    config: ConnConfig,
    metrics: ConnMetrics,
    label: &'static str,
    mut stop: watch::Receiver<bool>,
) where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let shared = Arc::new(Listener {
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        config,
        metrics,
        label,
    });
    let service = warp::service(filter);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(shared.config.max_head_bytes)
        .max_headers(shared.config.max_headers);
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (or a connection reset before accept): shed an idle
                // connection and back off briefly instead of spinning.
                shared
                    .metrics
                    .errors
                    .with_label_values(&[label, "accept"])
                    .inc();
                tracing::debug!(error = %e, "accept failed");
                shared.make_room();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !shared.make_room() {
            shared.metrics.refused.with_label_values(&[label]).inc();
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(millis(shared.epoch)),
            head_started: AtomicU64::new(0),
            close: Notify::new(),
            shed: AtomicBool::new(false),
        });
        shared.lock().insert(id, state.clone());
        shared.metrics.open.with_label_values(&[label]).inc();
        let shared = shared.clone();
        let builder = builder.clone();
        let service = service.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            run_connection(&shared, &builder, stream, peer, service, state, stop).await;
            shared.lock().remove(&id);
            shared.metrics.open.with_label_values(&[label]).dec();
        });
    }
    drop(listener);
    for c in shared.lock().values() {
        c.close.notify_one();
    }
    // The connections close as their requests finish; the caller bounds the wait.
    while !shared.lock().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_connection<S>(
    shared: &Listener,
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    service: S,
    state: Arc<ConnState>,
    mut stop: watch::Receiver<bool>,
) where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let io = TokioIo::new(Tracked {
        inner: stream,
        state: state.clone(),
        epoch: shared.epoch,
    });
    let service = Tracking {
        inner: service,
        peer,
        state: state.clone(),
        epoch: shared.epoch,
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let config = &shared.config;
    let every = (config.header_timeout.min(config.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    let outcome = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = state.close.notified(), if !closing => {
                // Idle (or never used): nothing to finish, close now. hyper's graceful
                // shutdown would wait for a first byte on a connection that sent none.
                if state.idle() {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                if state.idle() {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                let now = millis(shared.epoch);
                let head = state.head_started.load(Ordering::Acquire);
                if head != 0 && now.saturating_sub(head) > config.header_timeout.as_millis() as u64 {
                    // hyper cannot answer a head it has not parsed: drop the socket.
                    count(shared, "header_timeout");
                    return;
                }
                let quiet = now.saturating_sub(state.last_activity.load(Ordering::Acquire));
                if state.idle() && quiet > config.idle_timeout.as_millis() as u64 {
                    return;
                }
            }
        }
    };
    if let Err(e) = outcome {
        let kind = match e.downcast_ref::<hyper::Error>() {
            Some(h) if h.is_incomplete_message() || h.is_closed() || h.is_canceled() => "reset",
            Some(h) if h.is_parse_too_large() => "head_too_large",
            Some(h) if h.is_parse() => "malformed",
            Some(h) if h.is_timeout() => "timeout",
            Some(_) => "protocol",
            None => "io",
        };
        count(shared, kind);
        tracing::debug!(error = %e, kind, "connection ended with an error");
    }
}

fn count(shared: &Listener, kind: &'static str) {
    shared
        .metrics
        .errors
        .with_label_values(&[shared.label, kind])
        .inc();
}

/// The socket, noting when bytes arrive: the first byte of a request head starts its header
/// timeout, and any byte resets the idle clock.
struct Tracked {
    inner: TcpStream,
    state: Arc<ConnState>,
    epoch: Instant,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let out = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = millis(self.epoch);
            self.state.last_activity.store(now, Ordering::Release);
            if self.state.in_flight.load(Ordering::Acquire) == 0 {
                let _ = self.state.head_started.compare_exchange(
                    0,
                    now,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        out
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The warp service, counting requests in flight and handing the peer to the filter.
#[derive(Clone)]
struct Tracking<S> {
    inner: S,
    peer: SocketAddr,
    state: Arc<ConnState>,
    epoch: Instant,
}

/// Marks a request answered (also when its future is dropped: the client went away).
struct InFlight {
    state: Arc<ConnState>,
    epoch: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .last_activity
            .store(millis(self.epoch), Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S> hyper::service::Service<http::Request<Incoming>> for Tracking<S>
where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = warp::reply::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        self.state.head_started.store(0, Ordering::Release);
        let guard = InFlight {
            state: self.state.clone(),
            epoch: self.epoch,
        };
        request.extensions_mut().insert(Peer(self.peer));
        // warp's service is always ready: it only routes.
        let mut inner = self.inner.clone();
        let future = tower_service::Service::call(&mut inner, request);
        Box::pin(async move {
            let out = future.await;
            drop(guard);
            out
        })
    }
}
