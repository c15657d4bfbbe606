//! Which request each conversation is waiting for, so a callback reaches the conversation that
//! waits for it at once, and callbacks that do not fit are classified.
//!
//! Conversations are found by the `{conversationPid}` of the callback path (sharded mutexes:
//! little contention at tens of thousands of callbacks per second). Each conversation has at
//! most one outstanding request (Salted CX sends one event at a time) and remembers its last
//! few finished requests, which is how a duplicate, a late or an out-of-order callback is told
//! apart from an unknown one.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

const SHARDS: usize = 64;
/// Finished requests remembered per conversation.
const HISTORY: usize = 4;

/// A callback for a conversation's outstanding request.
#[derive(Debug)]
pub struct Arrival {
    /// When the callback arrived.
    pub at: Instant,
    /// Its JSON body.
    pub body: Value,
}

/// How a finished request ended, as far as the callbacks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answered,
    /// No callback before `expires`.
    Expired,
    /// Expired, then a callback came after all.
    AnsweredLate,
}

struct Outstanding {
    request_id: Uuid,
    seq: u64,
    deadline: Instant,
    tx: oneshot::Sender<Arrival>,
}

#[derive(Default)]
struct Slot {
    outstanding: Option<Outstanding>,
    history: VecDeque<(Uuid, u64, Fate)>,
    highest_answered: u64,
}

impl Slot {
    fn remember(&mut self, request_id: Uuid, seq: u64, fate: Fate) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((request_id, seq, fate));
        if fate == Fate::Answered {
            self.highest_answered = self.highest_answered.max(seq);
        }
    }
}

/// What the callback server should make of a callback.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    /// Handed to the waiting conversation (in time or not: the driver judges by `at`).
    Delivered,
    /// A request already answered: a duplicate callback.
    Duplicate,
    /// A request that expired without an answer: a late callback (its first one).
    Late,
    /// Also counted as out of order: a later request of the conversation was answered first.
    OutOfOrder,
    /// No such conversation or request.
    Unknown,
}

/// The conversations waiting for callbacks.
pub struct Registry {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, Arc<Mutex<Slot>>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recover rather than cascade if one did.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    fn shard(&self, pid: &str) -> &Mutex<HashMap<String, Arc<Mutex<Slot>>>> {
        let index = self.hasher.hash_one(pid) as usize % SHARDS;
        &self.shards[index]
    }

    fn slot(&self, pid: &str) -> Option<Arc<Mutex<Slot>>> {
        lock(self.shard(pid)).get(pid).cloned()
    }

    /// Starts tracking conversation `pid`.
    pub fn open(&self, pid: &str) {
        lock(self.shard(pid)).insert(pid.to_string(), Arc::default());
    }

    /// Stops tracking conversation `pid` (kept while a request of it expired unanswered, so a
    /// late callback is still recognised as such).
    pub fn close(&self, pid: &str) {
        let Some(slot) = self.slot(pid) else { return };
        let unanswered = lock(&slot)
            .history
            .iter()
            .any(|(_, _, fate)| *fate == Fate::Expired);
        if !unanswered {
            lock(self.shard(pid)).remove(pid);
        }
    }

    /// Registers request `seq` of conversation `pid` as outstanding, answered before `deadline`.
    pub fn expect(
        &self,
        pid: &str,
        request_id: Uuid,
        seq: u64,
        deadline: Instant,
    ) -> oneshot::Receiver<Arrival> {
        let (tx, rx) = oneshot::channel();
        let slot = self.slot(pid).unwrap_or_else(|| {
            self.open(pid);
            self.slot(pid).unwrap_or_default()
        });
        lock(&slot).outstanding = Some(Outstanding {
            request_id,
            seq,
            deadline,
            tx,
        });
        rx
    }

    /// The outstanding request of `pid` got no callback by its deadline (if it is still
    /// outstanding: the callback may have raced the timer). Returns whether it was withdrawn.
    pub fn expire(&self, pid: &str, request_id: Uuid) -> bool {
        self.finish(pid, request_id, Fate::Expired)
    }

    /// The outstanding request was not accepted by the ingress: forget it.
    pub fn withdraw(&self, pid: &str, request_id: Uuid) {
        let Some(slot) = self.slot(pid) else { return };
        let mut slot = lock(&slot);
        if slot
            .outstanding
            .as_ref()
            .is_some_and(|o| o.request_id == request_id)
        {
            slot.outstanding = None;
        }
    }

    fn finish(&self, pid: &str, request_id: Uuid, fate: Fate) -> bool {
        let Some(slot) = self.slot(pid) else {
            return false;
        };
        let mut slot = lock(&slot);
        match slot.outstanding.take() {
            Some(o) if o.request_id == request_id => {
                slot.remember(o.request_id, o.seq, fate);
                true
            }
            other => {
                slot.outstanding = other;
                false
            }
        }
    }

    /// Routes a callback for `request_id` of conversation `pid`, arrived `at`.
    pub fn route(&self, pid: &str, request_id: Uuid, at: Instant, body: Value) -> Routed {
        let Some(slot) = self.slot(pid) else {
            return Routed::Unknown;
        };
        let mut slot = lock(&slot);
        if slot
            .outstanding
            .as_ref()
            .is_some_and(|o| o.request_id == request_id)
            && let Some(o) = slot.outstanding.take()
        {
            let fate = if at <= o.deadline {
                Fate::Answered
            } else {
                Fate::AnsweredLate
            };
            slot.remember(request_id, o.seq, fate);
            // A driver that stopped waiting has dropped its receiver; nothing to do then.
            let _ = o.tx.send(Arrival { at, body });
            return Routed::Delivered;
        }
        let highest = slot.highest_answered;
        let Some(entry) = slot.history.iter_mut().find(|(id, _, _)| *id == request_id) else {
            return Routed::Unknown;
        };
        let out_of_order = entry.1 < highest;
        let routed = match entry.2 {
            Fate::Answered | Fate::AnsweredLate => Routed::Duplicate,
            Fate::Expired => {
                entry.2 = Fate::AnsweredLate;
                Routed::Late
            }
        };
        if out_of_order && routed == Routed::Late {
            Routed::OutOfOrder
        } else {
            routed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_callback_reaches_the_waiting_conversation_and_a_repeat_is_a_duplicate() {
        let registry = Registry::default();
        registry.open("c");
        let id = Uuid::new_v4();
        let rx = registry.expect("c", id, 1, Instant::now() + Duration::from_secs(5));
        assert_eq!(
            registry.route("c", id, Instant::now(), Value::Null),
            Routed::Delivered
        );
        assert!(rx.await.is_ok());
        assert_eq!(
            registry.route("c", id, Instant::now(), Value::Null),
            Routed::Duplicate
        );
        assert_eq!(
            registry.route("c", Uuid::new_v4(), Instant::now(), Value::Null),
            Routed::Unknown
        );
        assert_eq!(
            registry.route("other", id, Instant::now(), Value::Null),
            Routed::Unknown
        );
    }

    #[tokio::test]
    async fn a_callback_after_a_later_answer_is_out_of_order() {
        let registry = Registry::default();
        registry.open("c");
        let first = Uuid::new_v4();
        let _rx = registry.expect("c", first, 1, Instant::now() + Duration::from_secs(5));
        assert!(registry.expire("c", first));
        let second = Uuid::new_v4();
        let _rx2 = registry.expect("c", second, 2, Instant::now() + Duration::from_secs(5));
        assert_eq!(
            registry.route("c", second, Instant::now(), Value::Null),
            Routed::Delivered
        );
        assert_eq!(
            registry.route("c", first, Instant::now(), Value::Null),
            Routed::OutOfOrder
        );
    }

    #[tokio::test]
    async fn a_late_callback_is_recognised_even_after_the_conversation_closed() {
        let registry = Registry::default();
        registry.open("c");
        let id = Uuid::new_v4();
        let _rx = registry.expect("c", id, 1, Instant::now() + Duration::from_secs(5));
        assert!(registry.expire("c", id));
        registry.close("c");
        assert_eq!(
            registry.route("c", id, Instant::now(), Value::Null),
            Routed::Late
        );
        assert_eq!(
            registry.route("c", id, Instant::now(), Value::Null),
            Routed::Duplicate
        );
    }
}
