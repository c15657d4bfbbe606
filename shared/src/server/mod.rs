//! Serving HTTP/1.1 the way a public endpoint facing thousands of Salted CX connections needs,
//! which `axum::serve` does not provide (used for the ingress's events and every service's
//! health and metrics endpoints):
//!
//! - **Connection cap with eviction.** At most `max_connections` connections are open. At the
//!   cap, a new connection does not wait for a slot to free up by itself: a connection that has
//!   been sending a request head for longer than [`STALLED_AFTER`] (a real client sends one in
//!   milliseconds; a slow or malicious one does not) is closed to make room, the longest
//!   stalled first; only when there is none is the longest-idle keep-alive connection closed
//!   (as nginx reuses idle keep-alive connections when it runs out): those belong to clients
//!   that sent a whole request, and closing one costs its owner a reconnection. Only when every
//!   connection is busy does a new one wait in the listen backlog.
//! - **No slot for clients without a token** ([`connection`]). An error response to a client
//!   that proved no token ([`Authenticated`]) closes its connection, and every connection
//!   serves at most [`connection::MAX_REQUESTS`] requests and lives at most
//!   [`connection::MAX_AGE`].
//! - **Timeouts.** A request head must arrive within `header_timeout`, counted from the
//!   connection's start or from the first byte of the request (slowloris protection); an idle
//!   keep-alive connection is closed after `idle_timeout`. Bodies are read by the handler,
//!   after authentication, with their own size and time limits (`413`, `408`).
//! - **Open files** ([`files`]). Caps are kept below the open-files limit, and an `accept`
//!   failing for lack of descriptors counts as being at the cap (logged at warn level).
//! - **Per-peer cap.** Optionally at most `max_per_peer` connections per peer address.
//! - **Header buffer.** At most [`MAX_HEADER_BUFFER`] bytes are buffered per connection while
//!   reading a request head (hyper's default is about 400 kB).
//!
//! Together these bound the memory strangers can make the ingress hold, and let thousands of
//! conversations connect in a burst without waiting.

pub mod connection;
pub mod files;
mod registry;
mod tracked;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::names;
use axum::Router;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use registry::Registry;

/// Largest buffer per connection while reading a request's headers.
pub const MAX_HEADER_BUFFER: usize = 64 * 1024;
/// A connection sending its request head for longer than this may be closed at the cap: a real
/// client sends a head in milliseconds (one write, right after connecting or after its previous
/// response), so a head still unfinished after a quarter of a second is slow or hostile.
pub const STALLED_AFTER: Duration = Duration::from_millis(250);

/// The address of the peer of a request's connection, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Put in a response's extensions by a handler that verified the request's token: the client
/// is known, so an error response does not close its connection (see [`connection`]).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;
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
    let mut out_of_files = files::OutOfFilesLog::default();
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .max_buf_size(MAX_HEADER_BUFFER);
    let http = Arc::new(http);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Accepted first, room made after: a connection is closed only for one that is
        // actually waiting, never in advance.
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if files::out_of_files(&err) => {
                    // As good as at the cap: make room as there, then try again.
                    out_of_files.record(limits.listener, &err);
                    if let Some(eviction) = registry.evict_one() {
                        closed(limits.listener, eviction.label());
                    }
                    registry.wait_for_close(Duration::from_millis(100)).await;
                    continue;
                }
                Err(err) => {
                    // Transient (the peer gave up before it was accepted): back off briefly.
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if registry.peer_at_limit(peer.ip()) {
            closed(limits.listener, "peer_limit");
            continue;
        }
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = make_room(&slots, &registry, limits.listener) => slot,
        };
        let Some(registered) = registry.open(peer.ip()) else {
            closed(limits.listener, "peer_limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (http, router, stopping) = (http.clone(), router.clone(), stopping.clone());
        connections.spawn(async move {
            metrics::gauge!(names::HTTP_CONNECTIONS, "listener" => limits.listener).increment(1.0);
            connection::serve(
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

/// A free connection slot: at once if there is one; else after closing a stalled or idle
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

pub(crate) fn closed(listener: &'static str, reason: &'static str) {
    metrics::counter!(names::HTTP_CONNECTIONS_CLOSED, "listener" => listener, "reason" => reason)
        .increment(1);
}
