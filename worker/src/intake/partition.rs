//! What a worker knows about one partition: whether it owns it, its consumer's state, the pull
//! requests it has open, the pin NATS gave it, the events it holds, and the takeover barrier.
//!
//! **The takeover barrier.** When this worker becomes the pinned one (a new pin id on a
//! delivery), another worker may still hold events of the partition: delivered to it before the
//! pin moved, not yet acknowledged (it is slow, stopping, or dead and its events wait for the ack
//! wait). Until it is known which, nothing of the partition starts ("syncing"). Then every such
//! event (sequence and conversation) becomes a barrier entry: a later event of the same
//! conversation waits until the entry is gone — acknowledged by the other worker (it disappears
//! from the work-queue stream) or redelivered here (it joins its conversation's lane in sequence
//! order). Other conversations go on at once.
//!
//! **Lost deliveries.** A delivery can also be lost while this worker keeps the pin: NATS sent
//! it (and counts it as delivered) through the server this worker was connected to, and that
//! server died before passing it on. The worker reconnects elsewhere, keeps pulling with the
//! same pin, and would take the conversation's next events while the lost one is redelivered
//! only after the ack wait. NATS numbers every delivery of a consumer (its consumer sequence),
//! so a delivery whose number is not the previous one's plus one shows that something went
//! missing (or that NATS's count was reset): the partition then syncs exactly as on a new pin,
//! and the lost events become barrier entries, released when they are redelivered here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Whether the partition's consumer is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Must be created or checked before pulling (at start, or after it vanished).
    Needed { not_before: Instant },
    /// Being created or checked.
    InProgress,
    /// Ready to pull.
    Done,
}

/// Whether events of the partition may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncState {
    /// Yes, subject to the barrier.
    Synced,
    /// No: the barrier of pin epoch `epoch` is being computed.
    Syncing { epoch: u64 },
}

/// Why a partition syncs before its events may start again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// NATS pinned this worker (again): another worker may hold some of its events.
    NewPin,
    /// The consumer sequence jumped from `expected` to `received`: deliveries to this worker
    /// were lost on the way (or NATS's numbering was reset); they are redelivered later.
    LostDeliveries { expected: u64, received: u64 },
}

/// One open pull request.
#[derive(Debug, Clone, Copy)]
struct Request {
    remaining: u32,
    /// After this the request counts as lost if NATS has not ended it.
    lost_after: Instant,
}

/// Events another worker held when this one was pinned, by sequence and by conversation.
#[derive(Debug, Default)]
pub struct Barrier {
    by_sequence: BTreeMap<u64, Arc<str>>,
    by_conversation: HashMap<Arc<str>, BTreeSet<u64>>,
}

impl Barrier {
    pub fn insert(&mut self, sequence: u64, conversation: Arc<str>) {
        self.by_conversation
            .entry(conversation.clone())
            .or_default()
            .insert(sequence);
        self.by_sequence.insert(sequence, conversation);
    }

    /// Removes the entry of `sequence`, returning its conversation.
    pub fn remove(&mut self, sequence: u64) -> Option<Arc<str>> {
        let conversation = self.by_sequence.remove(&sequence)?;
        if let Some(set) = self.by_conversation.get_mut(&conversation) {
            set.remove(&sequence);
            if set.is_empty() {
                self.by_conversation.remove(&conversation);
            }
        }
        Some(conversation)
    }

    /// Whether an event of `conversation` at `sequence` must wait for an earlier one held
    /// elsewhere.
    pub fn blocks(&self, conversation: &str, sequence: u64) -> bool {
        self.by_conversation
            .get(conversation)
            .and_then(|set| set.first())
            .is_some_and(|first| *first < sequence)
    }

    pub fn is_empty(&self) -> bool {
        self.by_sequence.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_sequence.len()
    }

    pub fn sequences(&self) -> Vec<u64> {
        self.by_sequence.keys().copied().collect()
    }

    pub fn clear(&mut self) {
        self.by_sequence.clear();
        self.by_conversation.clear();
    }
}

/// One partition, as this worker sees it.
#[derive(Debug)]
pub struct Partition {
    number: u16,
    stream: String,
    consumer: String,
    /// Where pull requests go.
    api_subject: String,
    /// Whether the assignment gives it to this worker (only then does it pull).
    owned: bool,
    setup: Setup,
    /// The pin id NATS gave this worker, if it holds the pin.
    pin: Option<String>,
    /// The consumer sequence of the last delivery under the current pin.
    last_delivery: Option<u64>,
    /// Incremented on every new pin or lost delivery, to tell current barrier results from
    /// stale ones.
    epoch: u64,
    sync: SyncState,
    /// Why the partition last synced.
    resync: Resync,
    barrier: Barrier,
    /// When the barrier was last checked against the stream, and whether a check is running.
    barrier_checked_at: Instant,
    barrier_checking: bool,
    requests: HashMap<u64, Request>,
}

impl Partition {
    pub fn new(number: u16, stream: String, consumer: String, now: Instant) -> Self {
        Self {
            number,
            api_subject: super::pull::api_subject(&stream, &consumer),
            stream,
            consumer,
            owned: false,
            setup: Setup::Needed { not_before: now },
            pin: None,
            last_delivery: None,
            epoch: 0,
            sync: SyncState::Synced,
            resync: Resync::NewPin,
            barrier: Barrier::default(),
            barrier_checked_at: now,
            barrier_checking: false,
            requests: HashMap::new(),
        }
    }

    pub fn number(&self) -> u16 {
        self.number
    }

    /// The stream the partition lives in.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The partition's consumer.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Where its pull requests go.
    pub fn api_subject(&self) -> &str {
        &self.api_subject
    }

    /// The pin id NATS gave this worker, if it holds the pin.
    pub fn pin(&self) -> Option<&str> {
        self.pin.as_deref()
    }

    /// Why the partition last synced.
    pub fn resync(&self) -> Resync {
        self.resync
    }

    /// Whether the assignment gives it to this worker.
    pub fn owned(&self) -> bool {
        self.owned
    }

    /// Records whether the assignment gives it to this worker; returns whether that changed.
    pub fn set_owned(&mut self, owned: bool) -> bool {
        std::mem::replace(&mut self.owned, owned) != owned
    }

    /// Whether it is owned and its consumer ready.
    pub fn ready(&self) -> bool {
        self.owned && self.setup == Setup::Done
    }

    /// Whether its consumer should be set up now; if so it counts as being set up from here on.
    pub fn begin_setup(&mut self, now: Instant) -> bool {
        match self.setup {
            Setup::Needed { not_before } if self.owned && now >= not_before => {
                self.setup = Setup::InProgress;
                true
            }
            _ => false,
        }
    }

    /// The consumer is ready.
    pub fn setup_done(&mut self) {
        self.setup = Setup::Done;
    }

    /// Setting the consumer up failed: it is tried again from `not_before`.
    pub fn setup_failed(&mut self, not_before: Instant) {
        self.setup = Setup::Needed { not_before };
    }

    /// The consumer is gone (deleted, or JetStream lost it): forget requests and pin, and set
    /// it up again at once. Returns whether it had been ready.
    pub fn consumer_gone(&mut self, now: Instant) -> bool {
        self.forget_requests();
        self.forget_pin();
        let was_ready = self.setup == Setup::Done;
        if was_ready {
            self.setup = Setup::Needed { not_before: now };
        }
        was_ready
    }

    /// Events requested and not yet delivered, over all open requests.
    fn requested(&self) -> u32 {
        self.requests.values().map(|r| r.remaining).sum()
    }

    /// The batch of the next pull request, if one should be sent now: an owned, set-up
    /// partition keeps one request open (which also keeps the pin), and asks for more when
    /// less than half a batch is still requested and there is room under `max_in_flight` for
    /// more than its `in_window` held events.
    pub fn next_batch(
        &self,
        in_window: u32,
        batch: u32,
        max_in_flight: u32,
        buffer_full: bool,
    ) -> Option<u32> {
        if !self.ready() {
            return None;
        }
        let requested = self.requested();
        let room = max_in_flight.saturating_sub(in_window.saturating_add(requested));
        if self.requests.is_empty() {
            // Always one open request, even when full: it keeps the pin.
            return Some(room.clamp(1, batch));
        }
        if buffer_full || self.requests.len() >= 2 || requested >= batch / 2 || room < batch / 2 {
            return None;
        }
        Some(room.min(batch))
    }

    pub fn request_sent(&mut self, id: u64, batch: u32, lost_after: Instant) {
        self.requests.insert(
            id,
            Request {
                remaining: batch,
                lost_after,
            },
        );
    }

    /// One event arrived. Deliveries do not say which request they fill; NATS fills a worker's
    /// requests in the order they arrived, so it is counted against the oldest.
    pub fn delivered(&mut self) {
        let Some((&id, _)) = self.requests.iter().min_by_key(|(id, _)| **id) else {
            return;
        };
        if let Some(request) = self.requests.get_mut(&id) {
            request.remaining = request.remaining.saturating_sub(1);
            if request.remaining == 0 {
                self.requests.remove(&id);
            }
        }
    }

    /// Request `id` ended (expired, terminated, refused).
    pub fn request_ended(&mut self, id: u64) {
        self.requests.remove(&id);
    }

    /// Forgets requests NATS never ended (a reconnection lost them).
    pub fn forget_lost_requests(&mut self, now: Instant) {
        self.requests.retain(|_, r| r.lost_after > now);
    }

    /// Forgets every open request (the consumer is gone, or this worker stops pulling).
    pub fn forget_requests(&mut self) {
        self.requests.clear();
    }

    /// Records the pin id and consumer sequence of a delivery. A new pin, or a consumer
    /// sequence that does not follow the previous delivery's, begins a new epoch: the partition
    /// syncs (its barrier is computed again) before anything more starts; the cause is returned.
    pub fn observe_delivery(
        &mut self,
        pin: Option<&str>,
        consumer_sequence: u64,
    ) -> Option<Resync> {
        let previous = self.last_delivery.replace(consumer_sequence);
        let cause = match pin {
            Some(pin) if self.pin.as_deref() != Some(pin) => {
                self.pin = Some(pin.to_string());
                Resync::NewPin
            }
            _ => match previous {
                Some(last) if consumer_sequence != last.saturating_add(1) => {
                    Resync::LostDeliveries {
                        expected: last.saturating_add(1),
                        received: consumer_sequence,
                    }
                }
                _ => return None,
            },
        };
        self.epoch += 1;
        self.sync = SyncState::Syncing { epoch: self.epoch };
        self.resync = cause;
        Some(cause)
    }

    /// Forgets the pin (refused, expired, given up, or the consumer is gone); returns whether
    /// there was one. The next delivery's pin counts as new.
    pub fn forget_pin(&mut self) -> bool {
        self.last_delivery = None;
        self.pin.take().is_some()
    }

    /// The epoch whose barrier is being computed, if the partition is syncing.
    pub fn syncing_epoch(&self) -> Option<u64> {
        match self.sync {
            SyncState::Syncing { epoch } => Some(epoch),
            SyncState::Synced => None,
        }
    }

    /// Whether the barrier of `epoch` is being computed (not superseded by a newer epoch).
    pub fn syncing(&self, epoch: u64) -> bool {
        self.syncing_epoch() == Some(epoch)
    }

    /// Whether an event of `conversation` at `sequence` may start: the partition is synced and
    /// no earlier event of the conversation is held elsewhere.
    pub fn may_start(&self, conversation: &str, sequence: u64) -> bool {
        self.sync == SyncState::Synced && !self.barrier.blocks(conversation, sequence)
    }

    /// Installs the barrier computed for `epoch` (ignored if a newer pin arrived meanwhile):
    /// the events held elsewhere, minus those this worker holds itself (`held_here`).
    pub fn install_barrier(
        &mut self,
        epoch: u64,
        foreign: Vec<(u64, Arc<str>)>,
        held_here: impl Fn(u64) -> bool,
    ) -> bool {
        if !self.syncing(epoch) {
            return false;
        }
        self.barrier.clear();
        for (sequence, conversation) in foreign {
            if !held_here(sequence) {
                self.barrier.insert(sequence, conversation);
            }
        }
        self.sync = SyncState::Synced;
        true
    }

    /// The barrier (events held elsewhere that hold back later events of their conversations).
    pub fn barrier(&self) -> &Barrier {
        &self.barrier
    }

    /// The event `sequence` arrived here or left the stream: its barrier entry, if any, goes;
    /// returns the conversation it held back.
    pub fn clear_barrier_entry(&mut self, sequence: u64) -> Option<Arc<str>> {
        self.barrier.remove(sequence)
    }

    /// If a barrier check is due (entries left, none running, the last one `every` ago), marks
    /// one running and returns the sequences to check.
    pub fn begin_barrier_check(&mut self, now: Instant, every: Duration) -> Option<Vec<u64>> {
        let due = !self.barrier.is_empty()
            && !self.barrier_checking
            && now.saturating_duration_since(self.barrier_checked_at) >= every;
        if !due {
            return None;
        }
        self.barrier_checking = true;
        self.barrier_checked_at = now;
        Some(self.barrier.sequences())
    }

    /// The running barrier check ended.
    pub fn barrier_check_ended(&mut self, now: Instant) {
        self.barrier_checking = false;
        self.barrier_checked_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition() -> Partition {
        let mut p = Partition::new(3, "S".into(), "C".into(), Instant::now());
        p.set_owned(true);
        p.setup_done();
        p
    }

    #[test]
    fn the_barrier_holds_back_only_later_events_of_the_same_conversation() {
        let mut barrier = Barrier::default();
        barrier.insert(10, "a".into());
        barrier.insert(12, "a".into());
        assert!(barrier.blocks("a", 11));
        assert!(!barrier.blocks("a", 9), "an earlier event is not held back");
        assert!(!barrier.blocks("b", 11));
        assert_eq!(barrier.remove(10).as_deref(), Some("a"));
        assert!(barrier.blocks("a", 13));
        assert!(!barrier.blocks("a", 11));
        barrier.remove(12);
        assert!(barrier.is_empty());
        assert!(!barrier.blocks("a", 13));
    }

    #[test]
    fn an_owned_partition_keeps_one_request_open_and_tops_up_below_half_a_batch() {
        let mut p = partition();
        assert_eq!(p.next_batch(0, 64, 256, false), Some(64));
        p.request_sent(1, 64, Instant::now() + Duration::from_secs(5));
        assert_eq!(
            p.next_batch(0, 64, 256, false),
            None,
            "half a batch still requested"
        );
        for _ in 0..40 {
            p.delivered();
        }
        assert_eq!(p.requested(), 24);
        assert_eq!(p.next_batch(40, 64, 256, false), Some(64));
        assert_eq!(
            p.next_batch(40, 64, 256, true),
            None,
            "no top-up while the buffer is full"
        );
        p.request_ended(1);
        assert_eq!(
            p.next_batch(40, 64, 256, true),
            Some(64),
            "but always one open request"
        );
    }

    #[test]
    fn the_in_flight_limit_bounds_what_is_requested() {
        let p = partition();
        assert_eq!(p.next_batch(250, 64, 256, false), Some(6));
        assert_eq!(
            p.next_batch(300, 64, 256, false),
            Some(1),
            "one request keeps the pin"
        );
    }

    #[test]
    fn partitions_not_owned_or_not_set_up_do_not_pull() {
        let mut p = partition();
        p.set_owned(false);
        assert_eq!(p.next_batch(0, 64, 256, false), None);
        p.set_owned(true);
        p.setup = Setup::InProgress;
        assert_eq!(p.next_batch(0, 64, 256, false), None);
        assert!(!p.begin_setup(Instant::now()), "already being set up");
        p.setup_failed(Instant::now());
        assert!(p.begin_setup(Instant::now()));
        assert!(!p.ready());
    }

    #[test]
    fn a_vanished_consumer_is_set_up_again_and_its_pin_forgotten() {
        let mut p = partition();
        p.observe_delivery(Some("pin"), 1);
        p.request_sent(1, 8, Instant::now() + Duration::from_secs(5));
        assert!(p.consumer_gone(Instant::now()));
        assert!(p.pin().is_none() && !p.ready());
        assert_eq!(p.requested(), 0);
        assert!(p.begin_setup(Instant::now()));
        assert!(!p.consumer_gone(Instant::now()), "was not ready");
    }

    #[test]
    fn a_new_pin_starts_an_epoch_and_only_its_barrier_is_installed() {
        let mut p = partition();
        assert_eq!(p.observe_delivery(Some("one"), 1), Some(Resync::NewPin));
        assert_eq!(p.observe_delivery(Some("one"), 2), None);
        assert!(!p.may_start("a", 1));
        assert_eq!(p.observe_delivery(Some("two"), 7), Some(Resync::NewPin));
        assert!(
            !p.install_barrier(1, vec![(5, "a".into())], |_| false),
            "stale epoch"
        );
        let held_here = |sequence| sequence == 6;
        assert!(p.install_barrier(2, vec![(5, "a".into()), (6, "b".into())], held_here));
        assert!(p.may_start("b", 7));
        assert!(!p.may_start("a", 7));
        assert_eq!(
            p.barrier().sequences(),
            vec![5],
            "own events are not barriers"
        );
        assert_eq!(p.clear_barrier_entry(5).as_deref(), Some("a"));
        assert!(p.may_start("a", 7));
    }

    #[test]
    fn a_gap_in_the_consumer_sequence_under_the_same_pin_starts_an_epoch() {
        let mut p = partition();
        p.observe_delivery(Some("pin"), 71);
        assert!(p.install_barrier(1, Vec::new(), |_| false));
        assert_eq!(p.observe_delivery(Some("pin"), 72), None);
        assert!(
            p.syncing_epoch().is_none(),
            "consecutive deliveries change nothing"
        );
        // Delivery 73 was lost on the way (its server died); 74 shows it.
        assert_eq!(
            p.observe_delivery(Some("pin"), 74),
            Some(Resync::LostDeliveries {
                expected: 73,
                received: 74
            })
        );
        assert!(p.syncing(2));
        // The barrier holds the lost event's conversation back.
        assert!(p.install_barrier(2, vec![(1431, "c".into())], |_| false));
        assert!(p.barrier().blocks("c", 1471));
        // A numbering that goes back (NATS reset the consumer's count) is just as suspect.
        assert!(matches!(
            p.observe_delivery(Some("pin"), 5),
            Some(Resync::LostDeliveries { .. })
        ));
        assert!(p.syncing(3));
    }

    #[test]
    fn a_forgotten_pin_makes_the_next_delivery_a_new_pin() {
        let mut p = partition();
        p.observe_delivery(Some("pin"), 10);
        assert!(p.forget_pin());
        assert!(!p.forget_pin());
        assert_eq!(p.observe_delivery(Some("pin"), 30), Some(Resync::NewPin));
        assert_eq!(p.observe_delivery(Some("pin"), 31), None);
    }

    #[test]
    fn barrier_checks_run_one_at_a_time_and_only_while_entries_are_left() {
        let mut p = partition();
        let start = Instant::now();
        let every = Duration::from_millis(100);
        assert!(
            p.begin_barrier_check(start + every, every).is_none(),
            "no entries"
        );
        p.observe_delivery(Some("pin"), 1);
        p.install_barrier(1, vec![(4, "a".into())], |_| false);
        assert_eq!(p.begin_barrier_check(start + every, every), Some(vec![4]));
        assert!(
            p.begin_barrier_check(start + every * 3, every).is_none(),
            "one is running"
        );
        p.barrier_check_ended(start + every * 3);
        assert!(
            p.begin_barrier_check(start + every * 3, every).is_none(),
            "too soon"
        );
        assert!(p.begin_barrier_check(start + every * 4, every).is_some());
    }
}
