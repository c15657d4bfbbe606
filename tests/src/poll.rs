//! Waiting for effects without blind sleeps, and free loopback ports.
//!
//! Tests observe asynchronous effects (a callback arrived, a server is ready, a stream has a
//! leader) by polling a condition with a deadline: they finish as soon as the effect is visible
//! and fail with a clear message when it never shows up, instead of sleeping "long enough".

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

/// The polling interval used by the helpers that do not take one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `condition` every `interval` until it returns `true` or `timeout` has passed.
///
/// Returns whether the condition became true. The condition is always evaluated at least once,
/// and once more at the deadline, so a zero timeout still checks it.
pub async fn wait_until<F, Fut>(timeout: Duration, interval: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// Like [`wait_until`], but fails with an error naming `what` when the deadline passes.
pub async fn ensure_within<F, Fut>(timeout: Duration, what: &str, condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if wait_until(timeout, DEFAULT_INTERVAL, condition).await {
        Ok(())
    } else {
        bail!("timed out after {timeout:?} waiting for {what}")
    }
}

/// Polls `attempt` every `interval` until it returns `Some(value)`; `None` at the deadline.
pub async fn wait_for<T, F, Fut>(timeout: Duration, interval: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// Retries a fallible `attempt` every `interval` until it succeeds or `timeout` passes.
///
/// On timeout the error is the last attempt's error, with context naming `what`, so a test
/// failure says why the effect never happened (for example "no JetStream meta leader").
pub async fn retry_until_ok<T, F, Fut>(
    timeout: Duration,
    interval: Duration,
    what: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(error.context(format!("timed out after {timeout:?}: {what}")));
                }
                tokio::time::sleep(interval.min(deadline - now)).await;
            }
        }
    }
}

/// A loopback TCP port that was free a moment ago (the OS picked it for a throw-away listener).
///
/// Another process may take it before the caller binds it; the OS hands out ephemeral ports
/// round-robin, so that is rare. Prefer binding port 0 directly where the API allows it.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct loopback ports that were free a moment ago (all listeners are held until every
/// port is chosen, so the ports differ from one another).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding a throw-away loopback listener"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| {
            Ok(l.local_addr()
                .context("reading a listener's address")?
                .port())
        })
        .collect()
}

/// Whether something accepts TCP connections on `127.0.0.1:port` right now.
pub async fn port_is_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let connect = tokio::net::TcpStream::connect(addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}
