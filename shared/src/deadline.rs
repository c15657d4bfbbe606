//! Deadlines and clock skew.
//!
//! Salted CX stamps `time` and `expires` with its clock; ours may differ by a few seconds. The
//! rule, applied the same way everywhere, never lets an answer arrive after the real deadline:
//!
//! * **Local deadline.** The earlier of `expires` read on our clock and our receipt time plus the
//!   budget `expires - time` (both stamps on Salted CX's clock, so skew cancels out in the
//!   budget). When Salted CX's clock runs ahead of ours, the budget gives the right deadline and
//!   `expires` would be too late; when it runs behind, or the event spent time in transit,
//!   `expires` is the earlier, safe one. Without a usable `time`, it is `expires`.
//! * **Expired at ingress.** An event whose `expires` lies more than the skew tolerance in the
//!   past by our clock is refused as expired (422), whatever its `time` says. Within the
//!   tolerance it is accepted (and stored), and judged by its local deadline: if that has
//!   passed, the worker counts it as expired instead of answering late.
//! * **Answering.** Workers answer only before the local deadline minus a safety margin (time for
//!   the callback to travel); nothing is sent after it.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// The local deadline of an event received at `received_at` (our clock).
pub fn local_deadline(
    time: Option<DateTime<Utc>>,
    expires: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match time {
        Some(time) if time < expires => received_at
            .checked_add_signed(expires - time)
            .map_or(expires, |local| local.min(expires)),
        _ => expires,
    }
}

/// Whether an event must be refused as expired on arrival (see the module rule).
pub fn expired_on_arrival(expires: DateTime<Utc>, now: DateTime<Utc>, skew: Duration) -> bool {
    let skew = TimeDelta::from_std(skew).unwrap_or(TimeDelta::MAX);
    expires
        .checked_add_signed(skew)
        .is_some_and(|limit| limit < now)
}

/// Time left until `deadline`, zero once it has passed.
pub fn remaining(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid timestamp")
    }

    const SKEW: Duration = Duration::from_secs(5);

    #[test]
    fn budget_is_measured_on_the_senders_clock_when_it_runs_ahead() {
        // Salted CX is 3 s ahead: time = our 0 + 3, expires = our 15 + 3.
        assert_eq!(local_deadline(Some(at(3)), at(18), at(0)), at(15));
    }

    #[test]
    fn expires_bounds_the_deadline_when_the_sender_runs_behind() {
        // Salted CX is 3 s behind (or the event travelled 3 s): never later than `expires`.
        assert_eq!(local_deadline(Some(at(-3)), at(12), at(0)), at(12));
    }

    #[test]
    fn a_stale_time_buys_no_extra_time() {
        assert_eq!(local_deadline(Some(at(-100)), at(2), at(0)), at(2));
    }

    #[test]
    fn without_a_usable_time_the_deadline_is_expires() {
        assert_eq!(local_deadline(None, at(10), at(0)), at(10));
        assert_eq!(local_deadline(Some(at(11)), at(10), at(0)), at(10));
    }

    #[test]
    fn events_are_expired_on_arrival_only_beyond_the_skew_tolerance() {
        assert!(!expired_on_arrival(at(-4), at(0), SKEW));
        assert!(expired_on_arrival(at(-6), at(0), SKEW));
        assert!(!expired_on_arrival(at(10), at(0), SKEW));
    }

    #[test]
    fn remaining_time_is_never_negative() {
        assert_eq!(remaining(at(0), at(5)), Duration::ZERO);
        assert_eq!(remaining(at(5), at(0)), Duration::from_secs(5));
    }
}
