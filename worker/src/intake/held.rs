//! The events this worker holds: delivered to it and not finished (queued in their lane,
//! running, or being answered by the flood fast path). This is the one owner of what they count
//! for:
//!
//! - each partition's **in-flight window** (how many more events its pull requests may ask
//!   for): every held event counts, except those on the fast path, which finish within one
//!   callback and are bounded by NATS's `max_ack_pending`;
//! - the **buffer budget** (`MAX_HELD_BYTES`): the bytes of all held events;
//! - the **progress reports** that keep NATS from redelivering them elsewhere;
//! - the gauge `yourlogic_worker_held_events`.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::Subject;
use shared::telemetry::names;
use tokio::time::Instant;

/// One held event.
#[derive(Debug, Clone)]
pub struct Held {
    /// Where acknowledgements (and progress) go; the latest delivery's.
    pub ack_subject: Subject,
    /// When NATS last heard that this event is being worked on (delivery or progress).
    pub progress_at: Instant,
    /// Its size, for the buffer budget.
    pub bytes: usize,
}

/// The held events of one partition.
#[derive(Debug, Default)]
struct Partition {
    events: HashMap<u64, Entry>,
    /// How many of `events` are on the fast path.
    fast: u32,
}

#[derive(Debug)]
struct Entry {
    held: Held,
    fast: bool,
}

/// Every held event, by partition and stream sequence.
#[derive(Debug)]
pub struct HeldEvents {
    partitions: Vec<Partition>,
    bytes: usize,
}

impl HeldEvents {
    /// Nothing held, for `partitions` partitions.
    pub fn new(partitions: u16) -> Self {
        Self {
            partitions: (0..partitions).map(|_| Partition::default()).collect(),
            bytes: 0,
        }
    }

    /// Holds a newly delivered event (in the window). `false`, and nothing changes, if it is
    /// held already or its partition is unknown.
    pub fn hold(&mut self, partition: u16, sequence: u64, held: Held) -> bool {
        let Some(events) = self.partition_mut(partition).map(|p| &mut p.events) else {
            return false;
        };
        if events.contains_key(&sequence) {
            return false;
        }
        let bytes = held.bytes;
        events.insert(sequence, Entry { held, fast: false });
        self.bytes += bytes;
        metrics::gauge!(names::WORKER_HELD).increment(1.0);
        true
    }

    /// A held event was delivered again (the ack wait passed during a stall): its newer
    /// acknowledgement subject replaces the old one. `false` if it is not held.
    pub fn redelivered(&mut self, partition: u16, sequence: u64, ack_subject: Subject) -> bool {
        match self.entry_mut(partition, sequence) {
            Some(entry) => {
                entry.held.ack_subject = ack_subject;
                entry.held.progress_at = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Moves a held event to the fast path: it leaves its partition's in-flight window.
    pub fn move_to_fast_path(&mut self, partition: u16, sequence: u64) {
        let Some(state) = self.partition_mut(partition) else {
            return;
        };
        if let Some(entry) = state.events.get_mut(&sequence)
            && !entry.fast
        {
            entry.fast = true;
            state.fast += 1;
        }
    }

    /// Lets go of a finished (or handed back) event.
    pub fn release(&mut self, partition: u16, sequence: u64) -> Option<Held> {
        let state = self.partition_mut(partition)?;
        let entry = state.events.remove(&sequence)?;
        if entry.fast {
            state.fast = state.fast.saturating_sub(1);
        }
        self.bytes = self.bytes.saturating_sub(entry.held.bytes);
        metrics::gauge!(names::WORKER_HELD).decrement(1.0);
        Some(entry.held)
    }

    /// Whether the event is held.
    pub fn contains(&self, partition: u16, sequence: u64) -> bool {
        self.partitions
            .get(usize::from(partition))
            .is_some_and(|p| p.events.contains_key(&sequence))
    }

    /// How many of the partition's held events count in its in-flight window.
    pub fn in_window(&self, partition: u16) -> u32 {
        self.partitions.get(usize::from(partition)).map_or(0, |p| {
            u32::try_from(p.events.len())
                .unwrap_or(u32::MAX)
                .saturating_sub(p.fast)
        })
    }

    /// Bytes of every held event.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every held event.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.partitions.iter().map(|p| p.events.len()).sum()
    }

    /// The acknowledgement subjects of the events NATS has not heard about for `every`; they
    /// count as reported from `now` on.
    pub fn due_for_progress(&mut self, now: Instant, every: Duration) -> Vec<Subject> {
        let mut due = Vec::new();
        for partition in &mut self.partitions {
            for entry in partition.events.values_mut() {
                if now.saturating_duration_since(entry.held.progress_at) >= every {
                    entry.held.progress_at = now;
                    due.push(entry.held.ack_subject.clone());
                }
            }
        }
        due
    }

    fn partition_mut(&mut self, partition: u16) -> Option<&mut Partition> {
        self.partitions.get_mut(usize::from(partition))
    }

    fn entry_mut(&mut self, partition: u16, sequence: u64) -> Option<&mut Entry> {
        self.partition_mut(partition)?.events.get_mut(&sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(bytes: usize) -> Held {
        Held {
            ack_subject: "$JS.ACK.x".into(),
            progress_at: Instant::now(),
            bytes,
        }
    }

    #[test]
    fn holding_and_releasing_keeps_the_bytes_and_the_window_in_step() {
        let mut events = HeldEvents::new(2);
        assert!(events.hold(0, 1, held(10)));
        assert!(events.hold(0, 2, held(20)));
        assert!(events.hold(1, 1, held(5)));
        assert!(!events.hold(0, 1, held(99)), "held once");
        assert!(!events.hold(7, 1, held(99)), "an unknown partition");
        assert_eq!((events.bytes(), events.len()), (35, 3));
        assert_eq!((events.in_window(0), events.in_window(1)), (2, 1));
        assert_eq!(events.release(0, 1).map(|h| h.bytes), Some(10));
        assert!(events.release(0, 1).is_none(), "released once");
        assert_eq!((events.bytes(), events.in_window(0)), (25, 1));
        assert!(!events.contains(0, 1) && events.contains(0, 2));
    }

    #[test]
    fn events_on_the_fast_path_leave_the_window_but_stay_held() {
        let mut events = HeldEvents::new(1);
        for sequence in 1..=5 {
            events.hold(0, sequence, held(1));
        }
        events.move_to_fast_path(0, 2);
        events.move_to_fast_path(0, 3);
        events.move_to_fast_path(0, 3);
        assert_eq!(events.in_window(0), 3, "moved once each");
        assert_eq!(events.len(), 5);
        assert_eq!(events.bytes(), 5);
        events.release(0, 2);
        assert_eq!((events.in_window(0), events.len()), (3, 4));
        events.release(0, 1);
        assert_eq!((events.in_window(0), events.len()), (2, 3));
    }

    #[test]
    fn a_redelivery_refreshes_the_acknowledgement_subject_and_progress_is_reported_once_due() {
        let mut events = HeldEvents::new(1);
        let start = Instant::now();
        events.hold(0, 1, held(1));
        assert!(events.redelivered(0, 1, "$JS.ACK.newer".into()));
        assert!(!events.redelivered(0, 2, "$JS.ACK.y".into()));
        let every = Duration::from_millis(500);
        assert!(events.due_for_progress(start, every).is_empty());
        let due = events.due_for_progress(start + every * 2, every);
        assert_eq!(due, vec![Subject::from("$JS.ACK.newer")]);
        assert!(
            events.due_for_progress(start + every * 2, every).is_empty(),
            "reported"
        );
    }
}
