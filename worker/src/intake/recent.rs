//! The events this worker finished recently. An acknowledgement can be lost (a NATS connection
//! dropped just after it was written); NATS then delivers the event again, after later events
//! of its conversation may already have been answered. Such a redelivery is recognised here and
//! only acknowledged again, never processed a second time.

use std::collections::{HashSet, VecDeque};

/// A bounded set of (partition, stream sequence), forgetting the oldest first.
pub struct Recent {
    capacity: usize,
    order: VecDeque<(u16, u64)>,
    members: HashSet<(u16, u64)>,
}

impl Recent {
    /// Remembers at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::with_capacity(capacity.max(1)),
            members: HashSet::with_capacity(capacity.max(1)),
        }
    }

    pub fn insert(&mut self, partition: u16, sequence: u64) {
        if !self.members.insert((partition, sequence)) {
            return;
        }
        self.order.push_back((partition, sequence));
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.members.remove(&oldest);
        }
    }

    pub fn contains(&self, partition: u16, sequence: u64) -> bool {
        self.members.contains(&(partition, sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_events_are_forgotten_first() {
        let mut recent = Recent::new(2);
        recent.insert(0, 1);
        recent.insert(0, 2);
        recent.insert(0, 1);
        assert!(recent.contains(0, 1) && recent.contains(0, 2));
        recent.insert(1, 1);
        assert!(!recent.contains(0, 1));
        assert!(recent.contains(0, 2) && recent.contains(1, 1));
    }
}
