//! Deadlines and clock skew.
//!
//! Salted CX stamps `time` and `expires` with its clock; ours may differ by a few seconds. The
//! rule, applied the same way everywhere:
//!
//! * **Budget.** When `time` is present and before `expires`, the budget is `expires - time`
//!   (measured on Salted CX's clock, so skew cancels out). The local deadline is our receipt time
//!   plus that budget, but never later than `expires + skew` (a `time` stamped long before the
//!   event was sent must not buy extra time). Without a usable `time`, the local deadline is
//!   `expires` as read on our clock.
//! * **Expired at ingress.** An event whose `expires` lies more than `skew` in the past by our
//!   clock is refused as expired, whatever its `time` says. Within the tolerance it is accepted
//!   and judged by its local deadline.
//! * **Answering.** Workers answer only before the local deadline minus a safety margin (time for
//!   the callback to travel); nothing is sent after it.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// The local deadline of an event received at `received_at` (our clock).
pub fn local_deadline(
    time: Option<DateTime<Utc>>,
    expires: DateTime<Utc>,
    received_at: DateTime<Utc>,
    skew: Duration,
) -> DateTime<Utc> {
    let skew = TimeDelta::from_std(skew).unwrap_or(TimeDelta::MAX);
    let latest = expires.checked_add_signed(skew).unwrap_or(expires);
    match time {
        Some(time) if time < expires => {
            let budget = expires - time;
            received_at
                .checked_add_signed(budget)
                .map_or(latest, |local| local.min(latest))
        }
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
        assert_eq!(local_deadline(Some(at(3)), at(18), at(0), SKEW), at(15));
    }

    #[test]
    fn budget_is_measured_on_the_senders_clock_when_it_runs_behind() {
        // Salted CX is 3 s behind: time = our 0 - 3, expires = our 15 - 3.
        assert_eq!(local_deadline(Some(at(-3)), at(12), at(0), SKEW), at(15));
    }

    #[test]
    fn a_stale_time_buys_no_more_than_the_skew_tolerance() {
        assert_eq!(local_deadline(Some(at(-100)), at(2), at(0), SKEW), at(7));
    }

    #[test]
    fn without_a_usable_time_the_deadline_is_expires() {
        assert_eq!(local_deadline(None, at(10), at(0), SKEW), at(10));
        assert_eq!(local_deadline(Some(at(11)), at(10), at(0), SKEW), at(10));
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
