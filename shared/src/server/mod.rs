//! Serving HTTP/1.1 the way a public endpoint facing thousands of Salted CX connections needs,
//! which `axum::serve` does not provide (used for the ingress's events and every service's
//! health and metrics endpoints):
//!
//! - **Connection cap with eviction.** At most `max_connections` connections are open. At the
//!   cap, a new connection does not wait for an idle one to time out: the longest-idle
//!   keep-alive connection is closed to make room (as nginx reuses idle keep-alive connections
//!   when it runs out), or else one that has been sending a request head for longer than
//!   [`STALLED_AFTER`] (a slow or malicious client). Only when every connection is busy does a
//!   new one wait in the listen backlog.
//! - **Timeouts.** A request head must arrive within `header_timeout`, counted from the
//!   connection's start or from the first byte of the request (slowloris protection); an idle
//!   keep-alive connection is closed after `idle_timeout`. Bodies are read by the handler,
//!   after authentication, with their own size and time limits (`413`, `408`).
//! - **Per-peer cap.** Optionally at most `max_per_peer` connections per peer address.
//! - **Header buffer.** At most [`MAX_HEADER_BUFFER`] bytes are buffered per connection while
//!   reading a request head (hyper's default is about 400 kB).
//!
//! Together these bound the memory strangers can make the ingress hold, and let thousands of
//! conversations connect in a burst without waiting.

mod registry;
mod tracked;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::names;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use registry::{Connection, Phase, Registry};
use tracked::Tracked;

/// Largest buffer per connection while reading a request's headers.
pub const MAX_HEADER_BUFFER: usize = 64 * 1024;
/// A connection sending its request head for longer than this may be closed at the cap:
/// a real client sends a head in milliseconds.
pub const STALLED_AFTER: Duration = Duration::from_secs(1);

/// The address of the peer of a request's connection, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Connection limits of a listener, and its name in the metrics (label `listener`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The `listener` label of the connection metrics (`events`, `admin`).
    pub listener: &'static str,
    /// Time a client has to send a request's head.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one peer address (0: no limit).
    pub max_per_peer: usize,
}

impl Limits {
    /// Limits for an operational listener (health, readiness, metrics): few connections, from
    /// probes and scrapers.
    pub fn admin() -> Self {
        Self {
            listener: "admin",
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            max_per_peer: 0,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets open
/// requests finish (idle connections are closed at once) and returns when all are done.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Registry::new(limits.max_per_peer, STALLED_AFTER);
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .max_buf_size(MAX_HEADER_BUFFER);
    let http = Arc::new(http);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = make_room(&slots, &registry, limits.listener) => slot,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Transient (e.g. out of file descriptors): back off briefly.
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(registered) = registry.open(peer.ip()) else {
            closed(limits.listener, "peer_limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (http, router, stopping) = (http.clone(), router.clone(), stopping.clone());
        connections.spawn(async move {
            metrics::gauge!(names::HTTP_CONNECTIONS, "listener" => limits.listener).increment(1.0);
            connection(
                stream,
                peer,
                &registered.connection,
                &http,
                router,
                limits,
                &stopping,
            )
            .await;
            metrics::gauge!(names::HTTP_CONNECTIONS, "listener" => limits.listener).decrement(1.0);
            drop(registered);
            drop(slot);
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// A free connection slot: at once if there is one; else after closing an idle or stalled
/// connection; else when one closes by itself.
async fn make_room(
    slots: &Arc<Semaphore>,
    registry: &Registry,
    listener: &'static str,
) -> tokio::sync::OwnedSemaphorePermit {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return slot;
    }
    if let Some(eviction) = registry.evict_one() {
        closed(listener, eviction.label());
    }
    loop {
        tokio::select! {
            slot = slots.clone().acquire_owned() => {
                // The semaphore is never closed.
                if let Ok(slot) = slot {
                    return slot;
                }
            }
            // Connections may become idle or stall meanwhile.
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if let Some(eviction) = registry.evict_one() {
                    closed(listener, eviction.label());
                }
            }
        }
    }
}

fn closed(listener: &'static str, reason: &'static str) {
    metrics::counter!(names::HTTP_CONNECTIONS_CLOSED, "listener" => listener, "reason" => reason)
        .increment(1);
}

/// Serves one connection until it ends, enforcing the header and idle timeouts and closing it
/// when asked (eviction, shutdown).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: &Arc<Connection>,
    http: &hyper::server::conn::http1::Builder,
    router: Router,
    limits: Limits,
    stopping: &CancellationToken,
) {
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let state = state.clone();
            let router = router.clone();
            async move {
                state.request_started();
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(Peer(peer));
                let response = router.oneshot(request).await;
                state.request_finished();
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        })
    };
    let io = TokioIo::new(Tracked::new(stream, state.clone()));
    let mut served = std::pin::pin!(http.serve_connection(io, service));
    let mut closing = false;
    loop {
        let (phase, lasted) = state.phase();
        let timeout = timeout_of(phase, &limits);
        // Looked at again when the timeout would run out, and at least every header timeout
        // (the phase may change meanwhile: an idle connection may start a request head).
        let wait = timeout
            .map_or(limits.header_timeout, |t| t.saturating_sub(lasted))
            .min(limits.header_timeout);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = state.close.notified(), if !closing => {
                if state.abort.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            () = stopping.cancelled(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(wait), if !closing => {
                let (phase, lasted) = state.phase();
                if timeout_of(phase, &limits).is_some_and(|limit| lasted >= limit) {
                    if phase == Phase::Head {
                        // Slow or silent client: dropped without a response.
                        closed(limits.listener, "header_timeout");
                        return;
                    }
                    closed(limits.listener, "idle_timeout");
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// How long a connection may stay in `phase`.
fn timeout_of(phase: Phase, limits: &Limits) -> Option<Duration> {
    match phase {
        Phase::Head => Some(limits.header_timeout),
        Phase::Idle => Some(limits.idle_timeout),
        Phase::Busy | Phase::Closing => None,
    }
}
