//! A per-conversation quota of held events. Salted CX sends a conversation's next event only
//! after the previous one was answered, so a conversation rarely has more than one event held;
//! a sender flooding one conversation (a buggy integration, a leaked token) must not fill its
//! partition's in-flight window and starve the partition's other conversations. Deliveries
//! beyond the quota are deferred: handed back with a delay, so they stay in the stream and do
//! not count against the window. Order holds: once one event of a conversation is deferred,
//! every later one is deferred too until the earliest deferred one is taken.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// How long a deferred event waits before NATS delivers it again.
pub const DEFER_DELAY: Duration = Duration::from_secs(1);
/// A conversation whose deferred events have not come back for this long is forgotten (they
/// went to another worker with their partition).
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Deferred events by conversation.
pub struct Quota {
    limit: usize,
    deferred: HashMap<Arc<str>, (BTreeSet<u64>, Instant)>,
}

impl Quota {
    /// At most `limit` held events per conversation.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            deferred: HashMap::new(),
        }
    }

    /// Whether the delivery of `conversation`'s event `sequence` may be held, with `held` of
    /// its events held already. `false`: defer it (it is recorded as deferred).
    pub fn admit(&mut self, conversation: &Arc<str>, sequence: u64, held: usize) -> bool {
        let room = held < self.limit;
        let now = Instant::now();
        let Some((waiting, touched)) = self.deferred.get_mut(conversation) else {
            if room {
                return true;
            }
            self.deferred
                .insert(conversation.clone(), (BTreeSet::from([sequence]), now));
            return false;
        };
        *touched = now;
        let earliest = waiting.first().copied().unwrap_or(sequence);
        if sequence > earliest || !room {
            waiting.insert(sequence);
            return false;
        }
        waiting.remove(&sequence);
        if waiting.is_empty() {
            self.deferred.remove(conversation);
        }
        true
    }

    /// Forgets conversations whose deferred events have not come back for a long time.
    pub fn forget_stale(&mut self) {
        let now = Instant::now();
        self.deferred
            .retain(|_, (_, touched)| now.saturating_duration_since(*touched) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_quota_events_are_deferred_and_taken_back_in_order() {
        let mut quota = Quota::new(2);
        let c: Arc<str> = "c".into();
        assert!(quota.admit(&c, 1, 0));
        assert!(quota.admit(&c, 2, 1));
        assert!(!quota.admit(&c, 3, 2), "over the quota");
        // Room again, but 4 must not overtake the deferred 3.
        assert!(!quota.admit(&c, 4, 1));
        assert!(
            quota.admit(&c, 3, 1),
            "the earliest deferred one comes back first"
        );
        assert!(!quota.admit(&c, 5, 2), "4 is still deferred; and no room");
        assert!(quota.admit(&c, 4, 1));
        assert!(quota.admit(&c, 5, 1));
        assert!(quota.admit(&c, 6, 1), "nothing deferred any more");
    }

    #[test]
    fn other_conversations_are_not_affected() {
        let mut quota = Quota::new(1);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        assert!(!quota.admit(&a, 2, 1));
        assert!(quota.admit(&b, 3, 0));
    }
}
