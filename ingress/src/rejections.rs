//! Logging refused events so an operator chasing "Salted CX says we refuse its events" sees why:
//! the status, the reason and the peer's address, never the token or the body. Rate-limited: at
//! most [`PER_SECOND`] lines a second; the number of lines left out is reported with the next
//! one (a flood of bad requests must not become a flood of logs).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Most refusal lines logged per second.
pub const PER_SECOND: u32 = 10;

struct Window {
    started: Instant,
    logged: u32,
    left_out: u64,
}

static WINDOW: Mutex<Option<Window>> = Mutex::new(None);

/// Logs a refusal, unless this second's lines are used up.
pub fn log(error: &ApiError, peer: Option<SocketAddr>) {
    let Some(left_out) = admit(Instant::now()) else {
        return;
    };
    let status = error.status().as_u16();
    let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    // The internal reason of a 503 is logged here; the sender gets a generic message.
    let reason = error.to_string();
    if status >= 500 {
        tracing::warn!(status, code = error.code(), %peer, reason, left_out, "event refused");
    } else {
        tracing::info!(status, code = error.code(), %peer, reason, left_out, "event refused");
    }
}

/// Whether a line may be logged at `now`, with the number left out since the last one.
fn admit(now: Instant) -> Option<u64> {
    let mut window = WINDOW
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = window.get_or_insert(Window {
        started: now,
        logged: 0,
        left_out: 0,
    });
    if now.saturating_duration_since(current.started) >= Duration::from_secs(1) {
        current.started = now;
        current.logged = 0;
    }
    if current.logged >= PER_SECOND {
        current.left_out += 1;
        return None;
    }
    current.logged += 1;
    Some(std::mem::take(&mut current.left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_allowed_lines_a_second_and_the_rest_is_counted() {
        let start = Instant::now() + Duration::from_secs(3600);
        let admitted = (0..25).filter(|_| admit(start).is_some()).count();
        assert_eq!(admitted, PER_SECOND as usize);
        assert_eq!(admit(start + Duration::from_secs(1)), Some(15));
        assert_eq!(admit(start + Duration::from_secs(1)), Some(0));
    }
}
