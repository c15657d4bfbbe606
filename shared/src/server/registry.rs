//! The open connections: what each is doing (reading a request's head, busy with a request,
//! idle between requests) and since when, how many each peer holds, and which one to close when
//! the connection cap is reached: a stalled head before an idle keep-alive connection, since a
//! head that takes long is a slow or hostile client, while an idle connection belongs to a
//! client that sent a whole request.
//!
//! A connection's phase is kept in atomics updated by the connection itself (its reads and its
//! requests), so serving a request takes no lock; the registry's lock is taken only to open,
//! close, or pick a connection to close at the cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Reading a request's head (or waiting for the first request of a new connection).
const HEAD: u8 = 0;
/// Serving a request (body, handler, response).
const BUSY: u8 = 1;
/// Idle between requests (keep-alive).
const IDLE: u8 = 2;
/// Asked to close (evicted).
const CLOSING: u8 = 3;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Head,
    Busy,
    Idle,
    Closing,
}

/// One connection's shared state.
#[derive(Debug)]
pub struct Connection {
    epoch: Instant,
    phase: AtomicU8,
    /// Milliseconds since `epoch` when the phase began.
    since: AtomicU64,
    /// Signalled to ask the connection to close: gracefully (an idle one closes at once), or
    /// at once when `abort` is set (a stalled head would otherwise keep it open).
    pub close: Notify,
    pub abort: AtomicBool,
}

impl Connection {
    fn new(epoch: Instant) -> Self {
        let connection = Self {
            epoch,
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            close: Notify::new(),
            abort: AtomicBool::new(false),
        };
        connection.enter(HEAD);
        connection
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Bytes arrived: an idle connection starts reading a request's head.
    pub fn bytes_read(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.enter(HEAD);
        }
    }

    /// A request's head is complete: the request is served.
    pub fn request_started(&self) {
        if self.phase.load(Ordering::Relaxed) != CLOSING {
            self.enter(BUSY);
        }
    }

    /// The response is ready: the connection waits for the next request.
    pub fn request_finished(&self) {
        if self.phase.load(Ordering::Relaxed) != CLOSING {
            self.enter(IDLE);
        }
    }

    /// The phase and how long it has lasted.
    pub fn phase(&self) -> (Phase, Duration) {
        let phase = match self.phase.load(Ordering::Relaxed) {
            HEAD => Phase::Head,
            BUSY => Phase::Busy,
            IDLE => Phase::Idle,
            _ => Phase::Closing,
        };
        let since = self.since.load(Ordering::Relaxed);
        let lasted = Duration::from_millis(self.now_ms().saturating_sub(since));
        (phase, lasted)
    }
}

/// Why a connection was picked to close at the cap, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Eviction {
    /// A connection that has been sending a request's head for longer than the stall limit.
    Stalled,
    /// The longest-idle keep-alive connection.
    Idle,
}

impl Eviction {
    pub fn label(self) -> &'static str {
        match self {
            Eviction::Idle => "evicted_idle",
            Eviction::Stalled => "evicted_stalled",
        }
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
    per_peer: HashMap<IpAddr, usize>,
}

/// Every open connection.
pub struct Registry {
    epoch: Instant,
    max_per_peer: usize,
    stalled_after: Duration,
    inner: Mutex<Inner>,
    /// Signalled whenever a connection is unregistered.
    closed: Notify,
}

/// A registered connection; dropping it unregisters it.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    peer: IpAddr,
    pub connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.open.remove(&self.id);
        if let Some(count) = inner.per_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.per_peer.remove(&self.peer);
            }
        }
        drop(inner);
        self.registry.closed.notify_waiters();
    }
}

impl Registry {
    /// A registry allowing `max_per_peer` connections per peer address (0: no limit); a
    /// connection reading its head for longer than `stalled_after` may be closed at the cap.
    pub fn new(max_per_peer: usize, stalled_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            max_per_peer,
            stalled_after,
            inner: Mutex::new(Inner::default()),
            closed: Notify::new(),
        })
    }

    /// Waits until a connection closes, at most `timeout`.
    pub async fn wait_for_close(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.closed.notified()).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent beyond one entry.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `peer` holds its maximum of connections already.
    pub fn peer_at_limit(&self, peer: IpAddr) -> bool {
        self.max_per_peer > 0
            && self.lock().per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer
    }

    /// Registers a connection from `peer`, or `None` when the peer holds its maximum.
    pub fn open(self: &Arc<Self>, peer: IpAddr) -> Option<Registered> {
        let mut inner = self.lock();
        let held = inner.per_peer.get(&peer).copied().unwrap_or(0);
        if self.max_per_peer > 0 && held >= self.max_per_peer {
            return None;
        }
        inner.per_peer.insert(peer, held + 1);
        inner.next_id += 1;
        let id = inner.next_id;
        let connection = Arc::new(Connection::new(self.epoch));
        inner.open.insert(id, connection.clone());
        Some(Registered {
            registry: self.clone(),
            id,
            peer,
            connection,
        })
    }

    /// Open connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Asks one connection to close to make room: the one stalled longest in its request
    /// head, else the longest-idle keep-alive connection. `None` when every connection is busy
    /// or reading its head normally.
    pub fn evict_one(&self) -> Option<Eviction> {
        let inner = self.lock();
        let mut best: Option<(Eviction, Duration, &Arc<Connection>)> = None;
        for connection in inner.open.values() {
            let (phase, lasted) = connection.phase();
            let candidate = match phase {
                Phase::Head if lasted >= self.stalled_after => Eviction::Stalled,
                Phase::Idle => Eviction::Idle,
                _ => continue,
            };
            let better = match &best {
                None => true,
                Some((kind, longest, _)) => {
                    candidate < *kind || (candidate == *kind && lasted > *longest)
                }
            };
            if better {
                best = Some((candidate, lasted, connection));
            }
        }
        let (kind, _, connection) = best?;
        connection
            .abort
            .store(kind == Eviction::Stalled, Ordering::Relaxed);
        connection.enter(CLOSING);
        connection.close.notify_one();
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_heads_are_evicted_first_then_the_longest_idle_connection() {
        let registry = Registry::new(0, Duration::from_secs(1));
        let reading = registry.open(peer(1)).expect("open");
        let old_idle = registry.open(peer(1)).expect("open");
        old_idle.connection.request_started();
        old_idle.connection.request_finished();
        tokio::time::advance(Duration::from_secs(2)).await;
        let new_idle = registry.open(peer(2)).expect("open");
        new_idle.connection.request_started();
        new_idle.connection.request_finished();
        let busy = registry.open(peer(2)).expect("open");
        busy.connection.request_started();

        // The head has been read for 2 s: stalled, so closed before any idle connection.
        assert_eq!(registry.evict_one(), Some(Eviction::Stalled));
        assert_eq!(reading.connection.phase().0, Phase::Closing);
        assert_eq!(registry.evict_one(), Some(Eviction::Idle));
        assert_eq!(old_idle.connection.phase().0, Phase::Closing);
        assert_eq!(registry.evict_one(), Some(Eviction::Idle));
        assert_eq!(new_idle.connection.phase().0, Phase::Closing);
        assert_eq!(
            registry.evict_one(),
            None,
            "busy connections are never evicted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_head_is_not_stalled_and_bytes_wake_an_idle_connection() {
        let registry = Registry::new(0, Duration::from_secs(1));
        let fresh = registry.open(peer(1)).expect("open");
        assert_eq!(registry.evict_one(), None);
        fresh.connection.request_started();
        fresh.connection.request_finished();
        fresh.connection.bytes_read();
        assert_eq!(fresh.connection.phase().0, Phase::Head);
    }

    #[test]
    fn each_peer_is_limited_and_closing_frees_its_slot() {
        let registry = Registry::new(2, Duration::from_secs(1));
        let first = registry.open(peer(1)).expect("first");
        let _second = registry.open(peer(1)).expect("second");
        assert!(registry.open(peer(1)).is_none(), "third from one peer");
        let _other = registry.open(peer(2)).expect("another peer");
        drop(first);
        let _again = registry.open(peer(1)).expect("a slot freed");
        assert_eq!(registry.len(), 3);
    }
}
