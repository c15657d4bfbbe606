//! A TCP listener for `axum::serve` whose connections the server can cut at will.
//!
//! The fake Salted CX needs two things plain `axum::serve` cannot do: drop a connection without
//! sending a response (to emulate a reset), and close every open keep-alive connection when it
//! goes offline (so clients see "connection refused" instead of reusing a pooled connection to
//! a server that is gone). Each accepted stream carries a [`ConnHandle`]; once killed, every
//! read and write on it fails, hyper drops the connection without writing anything, and the
//! socket is closed with `SO_LINGER 0`, so the peer gets a TCP reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Kill switch of one connection.
#[derive(Debug, Default)]
struct KillSwitch {
    killed: AtomicBool,
    /// Wakers of the pending read and write, so an idle connection notices the kill at once.
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        wakers.into_iter().flatten().for_each(Waker::wake);
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Registers the waker for slot 0 (read) or 1 (write), then reports whether killed; the
    /// order avoids missing a kill that happens between the check and the registration.
    fn register(&self, slot: usize, waker: &Waker) -> bool {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())[slot] = Some(waker.clone());
        self.is_killed()
    }
}

/// Handle to one connection, available to handlers as `ConnectInfo<ConnHandle>`.
#[derive(Debug, Clone)]
pub struct ConnHandle(Arc<KillSwitch>);

impl ConnHandle {
    /// Cuts the connection: no response is written and the peer sees a reset.
    pub fn kill(&self) {
        self.0.kill();
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle(stream.io().switch.clone())
    }
}

/// Every connection accepted by one listener, so all can be killed at once.
#[derive(Debug, Default)]
pub struct Connections(Mutex<Vec<Weak<KillSwitch>>>);

impl Connections {
    fn add(&self, switch: &Arc<KillSwitch>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|weak| weak.strong_count() > 0);
        all.push(Arc::downgrade(switch));
    }

    /// Kills every connection still open.
    pub fn kill_all(&self) {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        all.iter().filter_map(Weak::upgrade).for_each(|s| s.kill());
    }

    /// Whether every accepted connection has been dropped (its socket closed).
    pub fn all_closed(&self) -> bool {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().all(|weak| weak.strong_count() == 0)
    }
}

/// A loopback TCP listener producing [`KillableStream`]s.
pub struct KillableListener {
    inner: TcpListener,
    connections: Arc<Connections>,
}

impl KillableListener {
    /// Wraps a bound listener; accepted connections are registered in `connections`.
    pub fn new(inner: TcpListener, connections: Arc<Connections>) -> Self {
        Self { inner, connections }
    }
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let switch = Arc::new(KillSwitch::default());
                    self.connections.add(&switch);
                    return (
                        KillableStream {
                            inner: stream,
                            switch,
                        },
                        addr,
                    );
                }
                // Transient (e.g. too many open files): back off briefly, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every operation once its connection is killed.
pub struct KillableStream {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection killed by the fake server",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.register(0, cx.waker()) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.register(1, cx.waker()) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl Drop for KillableStream {
    fn drop(&mut self) {
        if self.switch.is_killed() {
            // Close with a reset rather than a FIN: that is what "connection reset" means.
            let _ = self.inner.set_zero_linger();
        }
    }
}
