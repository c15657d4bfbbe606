//! Per-conversation lanes: the events a worker holds, queued by conversation in stream order.
//! At most one event per conversation runs at a time; different conversations run concurrently.
//! A redelivered event (lower sequence) takes its place in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// An event waiting in its lane; `M` is the delivered message.
pub struct Queued<M> {
    pub partition: u16,
    pub sequence: u64,
    pub message: M,
}

struct Lane<M> {
    running: Option<u64>,
    queue: BTreeMap<u64, Queued<M>>,
}

impl<M> Default for Lane<M> {
    fn default() -> Self {
        Self {
            running: None,
            queue: BTreeMap::new(),
        }
    }
}

/// Every conversation's lane.
pub struct Lanes<M> {
    lanes: HashMap<Arc<str>, Lane<M>>,
}

impl<M> Default for Lanes<M> {
    fn default() -> Self {
        Self {
            lanes: HashMap::new(),
        }
    }
}

impl<M> Lanes<M> {
    /// Queues `event` in `conversation`'s lane; a redelivery of an event already queued replaces
    /// it (its acknowledgement subject is the newer one).
    pub fn push(&mut self, conversation: Arc<str>, event: Queued<M>) {
        self.lanes
            .entry(conversation)
            .or_default()
            .queue
            .insert(event.sequence, event);
    }

    /// The next event of `conversation` if the lane is idle and `may_start` allows it; it is
    /// then marked running.
    pub fn start_next(
        &mut self,
        conversation: &str,
        may_start: impl FnOnce(&Queued<M>) -> bool,
    ) -> Option<Queued<M>> {
        let lane = self.lanes.get_mut(conversation)?;
        if lane.running.is_some() {
            return None;
        }
        let (_, head) = lane.queue.first_key_value()?;
        if !may_start(head) {
            return None;
        }
        let (sequence, event) = lane.queue.pop_first()?;
        lane.running = Some(sequence);
        Some(event)
    }

    /// The running event of `conversation` finished.
    pub fn finish(&mut self, conversation: &str) {
        if let Some(lane) = self.lanes.get_mut(conversation) {
            lane.running = None;
            if lane.queue.is_empty() {
                self.lanes.remove(conversation);
            }
        }
    }

    /// Replaces the message of a queued event (a redelivery); `false` if it is not queued.
    pub fn replace(&mut self, conversation: &str, sequence: u64, message: M) -> bool {
        match self
            .lanes
            .get_mut(conversation)
            .and_then(|lane| lane.queue.get_mut(&sequence))
        {
            Some(queued) => {
                queued.message = message;
                true
            }
            None => false,
        }
    }

    /// The conversations with queued events of `partition`.
    pub fn waiting_in(&self, partition: u16) -> Vec<Arc<str>> {
        self.lanes
            .iter()
            .filter(|(_, lane)| lane.queue.values().any(|q| q.partition == partition))
            .map(|(conversation, _)| conversation.clone())
            .collect()
    }

    /// Takes every queued (not running) event out of the lanes.
    pub fn take_queued(&mut self) -> Vec<(Arc<str>, Queued<M>)> {
        let mut taken = Vec::new();
        for (conversation, lane) in &mut self.lanes {
            for (_, queued) in std::mem::take(&mut lane.queue) {
                taken.push((conversation.clone(), queued));
            }
        }
        self.lanes.retain(|_, lane| lane.running.is_some());
        taken
    }

    /// Takes the oldest queued events of `conversation` out of its lane until at most `quota`
    /// of its events are queued or running (the running one stays; the latest queued ones
    /// stay), in stream order; nothing if `may_take` refuses the oldest queued one.
    pub fn take_excess(
        &mut self,
        conversation: &str,
        quota: usize,
        may_take: impl FnOnce(&Queued<M>) -> bool,
    ) -> Vec<Queued<M>> {
        let Some(lane) = self.lanes.get_mut(conversation) else {
            return Vec::new();
        };
        let running = usize::from(lane.running.is_some());
        let keep = quota.max(1).saturating_sub(running);
        let excess = lane.queue.len().saturating_sub(keep);
        if excess == 0
            || !lane
                .queue
                .first_key_value()
                .is_some_and(|(_, q)| may_take(q))
        {
            return Vec::new();
        }
        let mut taken = Vec::with_capacity(excess);
        for _ in 0..excess {
            if let Some((_, event)) = lane.queue.pop_first() {
                taken.push(event);
            }
        }
        if lane.running.is_none() && lane.queue.is_empty() {
            self.lanes.remove(conversation);
        }
        taken
    }

    /// Whether any event is queued or running.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(sequence: u64) -> Queued<()> {
        Queued {
            partition: 0,
            sequence,
            message: (),
        }
    }

    #[test]
    fn one_event_per_conversation_runs_in_sequence_order() {
        let mut lanes: Lanes<()> = Lanes::default();
        lanes.push("a".into(), queued(5));
        lanes.push("a".into(), queued(3));
        lanes.push("b".into(), queued(4));
        let first = lanes.start_next("a", |_| true).expect("a runs");
        assert_eq!(first.sequence, 3, "the redelivered, earlier event first");
        assert!(lanes.start_next("a", |_| true).is_none(), "a is busy");
        assert_eq!(lanes.start_next("b", |_| true).map(|q| q.sequence), Some(4));
        lanes.finish("a");
        assert!(
            lanes.start_next("a", |_| false).is_none(),
            "held back by the caller"
        );
        assert_eq!(lanes.start_next("a", |_| true).map(|q| q.sequence), Some(5));
        lanes.finish("a");
        lanes.finish("b");
        assert!(lanes.is_empty());
    }

    #[test]
    fn beyond_the_quota_the_oldest_queued_events_are_taken_and_the_latest_stay() {
        let mut lanes: Lanes<()> = Lanes::default();
        for sequence in 1..=6 {
            lanes.push("a".into(), queued(sequence));
        }
        let running = lanes.start_next("a", |_| true).map(|q| q.sequence);
        assert_eq!(running, Some(1));
        let taken: Vec<u64> = lanes
            .take_excess("a", 3, |_| true)
            .iter()
            .map(|q| q.sequence)
            .collect();
        assert_eq!(taken, vec![2, 3, 4], "in stream order, the oldest first");
        assert!(
            lanes.take_excess("a", 3, |_| true).is_empty(),
            "within the quota now"
        );
        lanes.push("a".into(), queued(7));
        assert!(
            lanes.take_excess("a", 3, |_| false).is_empty(),
            "held back by the caller"
        );
        let taken: Vec<u64> = lanes
            .take_excess("a", 3, |_| true)
            .iter()
            .map(|q| q.sequence)
            .collect();
        assert_eq!(
            taken,
            vec![5],
            "each newer event pushes the oldest queued one out"
        );
        lanes.finish("a");
        assert_eq!(lanes.start_next("a", |_| true).map(|q| q.sequence), Some(6));
        assert!(lanes.take_excess("nobody", 1, |_| true).is_empty());
        // A quota of zero still lets one event wait for the logic.
        lanes.push("b".into(), queued(8));
        assert!(lanes.take_excess("b", 0, |_| true).is_empty());
    }

    #[test]
    fn queued_events_can_be_taken_back_while_running_ones_stay() {
        let mut lanes: Lanes<()> = Lanes::default();
        lanes.push("a".into(), queued(1));
        lanes.push("a".into(), queued(2));
        lanes.push("b".into(), queued(3));
        let _running = lanes.start_next("a", |_| true);
        let taken: Vec<u64> = lanes
            .take_queued()
            .iter()
            .map(|(_, q)| q.sequence)
            .collect();
        assert_eq!(taken.len(), 2);
        assert!(taken.contains(&2) && taken.contains(&3));
        assert!(!lanes.is_empty(), "a's running event is still tracked");
        lanes.finish("a");
        assert!(lanes.is_empty());
    }
}
