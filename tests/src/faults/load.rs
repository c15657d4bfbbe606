//! Steady, bounded load through the ingress, recording every post in a [`Ledger`].
//!
//! Each conversation posts its events one after the other, pausing `pace` after each `202`, as
//! Salted CX does (it sends a conversation's next event only after the previous one); with
//! [`LoadSpec::answered_first`] some conversations wait for the previous event's answer (or its
//! `expires`) instead, exactly as Salted CX does, pausing `pace` after it. An event
//! answered `503` or not answered at all (transport error) is posted again, with the same
//! `requestId`, every 250 ms until it is acknowledged or less than a second is left before its
//! `expires`; then the conversation moves on and the event counts as not acknowledged. Any
//! other status is recorded and not retried. The load stops starting new events after
//! `max_duration` (or once [`Ledger::stop`] was called), so every run is bounded in count and
//! time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::stack::Poster;
use crate::{EventBuilder, FakeSaltedCx};

/// What load to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Conversation ids are `{prefix}-{i}`.
    pub prefix: String,
    /// Conversations running concurrently.
    pub conversations: usize,
    /// Events per conversation at most.
    pub events_each: usize,
    /// Pause after each acknowledged event of a conversation.
    pub pace: Duration,
    /// Time from an event's creation to its `expires`.
    pub budget: Duration,
    /// `trigger.type` of every event (an unknown type is counted under `trigger="OTHER"`).
    pub trigger: String,
    /// No new event is started after this much time.
    pub max_duration: Duration,
    /// Every how many conversations one waits for each answer before its next event (0: none;
    /// 2: every second one). See [`LoadSpec::answered_first`].
    pub answered_first_every: usize,
}

impl LoadSpec {
    /// `conversations` × `events_each` customer events with trigger `trigger`, 100 ms apart,
    /// 30 s budget, at most 60 s.
    pub fn new(prefix: &str, trigger: &str, conversations: usize, events_each: usize) -> Self {
        Self {
            prefix: prefix.to_string(),
            conversations,
            events_each,
            pace: Duration::from_millis(100),
            budget: Duration::from_secs(30),
            trigger: trigger.to_string(),
            max_duration: Duration::from_secs(60),
            answered_first_every: 0,
        }
    }

    /// The same load where every `every`-th conversation (0: none) sends its next event only
    /// once the previous one was answered or its `expires` passed, like Salted CX; the others
    /// send it right after the `202`. Needs [`run_load_watching`] with an [`AnswerWatch`].
    pub fn answered_first(mut self, every: usize) -> Self {
        self.answered_first_every = every;
        self
    }

    /// The same load with another pause between events.
    pub fn pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    /// The same load with another budget per event.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The same load with another time bound.
    pub fn max_duration(mut self, max_duration: Duration) -> Self {
        self.max_duration = max_duration;
        self
    }
}

/// One event the load tried to deliver, with every attempt's outcome.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The conversation id.
    pub conversation: String,
    /// Position in the conversation (0-based).
    pub seq: usize,
    /// The event's `requestId`.
    pub request_id: String,
    /// The event's `time` (when it was built).
    pub time: DateTime<Utc>,
    /// The event's `expires`.
    pub expires: DateTime<Utc>,
    /// When the first `202` arrived, if one did.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Status of every attempt in order; 0 for a transport error (no HTTP answer).
    pub statuses: Vec<u16>,
    /// When each attempt was answered (or failed), in the order of `statuses`.
    pub attempted_at: Vec<DateTime<Utc>>,
}

impl Posted {
    /// Whether the ingress acknowledged the event (`202`).
    pub fn acknowledged(&self) -> bool {
        self.acknowledged_at.is_some()
    }

    /// The partition of the event's conversation with `partitions` partitions.
    pub fn partition(&self, partitions: u16) -> u16 {
        shared::topology::partition_of(&self.conversation, partitions)
    }
}

/// Every event the load has finished with (acknowledged or given up), shareable while running.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    posted: Arc<Mutex<Vec<Posted>>>,
    stopped: Arc<AtomicBool>,
}

impl Ledger {
    fn push(&self, posted: Posted) {
        self.posted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(posted);
    }

    /// A copy of what has been recorded so far.
    pub fn snapshot(&self) -> Vec<Posted> {
        self.posted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many events were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        let all = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|p| p.acknowledged()).count()
    }

    /// Tells the load to start no new event (those under way finish).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// Which events Salted CX (the fake) has answered, for conversations that wait for each answer.
/// One task follows the fake's callbacks, so waiting costs nothing per callback.
#[derive(Debug, Clone)]
pub struct AnswerWatch {
    answered: Arc<Mutex<HashSet<String>>>,
    changed: Arc<Notify>,
    following: Arc<JoinHandle<()>>,
}

impl AnswerWatch {
    /// Follows the successful callbacks `fake` receives from now on (and those it already has).
    pub fn start(fake: &Arc<FakeSaltedCx>) -> AnswerWatch {
        let answered = Arc::new(Mutex::new(HashSet::new()));
        let changed = Arc::new(Notify::new());
        let mut calls = fake.subscribe();
        let following = tokio::spawn({
            let (fake, answered, changed) = (fake.clone(), answered.clone(), changed.clone());
            async move {
                record(&answered, fake.successful_callbacks());
                loop {
                    match calls.recv().await {
                        Ok(call) => record(&answered, [call]),
                        // Fell behind: read them all again.
                        Err(RecvError::Lagged(_)) => record(&answered, fake.successful_callbacks()),
                        Err(RecvError::Closed) => return,
                    }
                    changed.notify_waiters();
                }
            }
        });
        AnswerWatch {
            answered,
            changed,
            following: Arc::new(following),
        }
    }

    /// Waits until `request_id` is answered (`true`) or `until` has passed (`false`).
    pub async fn wait(&self, request_id: &str, until: DateTime<Utc>) -> bool {
        loop {
            let notified = self.changed.notified();
            if self
                .answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(request_id)
            {
                return true;
            }
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            if left.is_zero() {
                return false;
            }
            // Bounded, so that a notification missed between the check and the wait costs
            // at most this much.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), notified).await;
        }
    }
}

impl Drop for AnswerWatch {
    fn drop(&mut self) {
        if Arc::strong_count(&self.following) == 1 {
            self.following.abort();
        }
    }
}

fn record(answered: &Mutex<HashSet<String>>, calls: impl IntoIterator<Item = crate::Callback>) {
    let mut answered = answered.lock().unwrap_or_else(|p| p.into_inner());
    for call in calls {
        if call.is_success()
            && let Some(id) = call.request_id
        {
            answered.insert(id);
        }
    }
}

/// Runs `spec` against the ingress behind `poster` and returns the ledger once every
/// conversation is done. Spawn it to inject faults meanwhile; `ledger` fills as it runs.
pub async fn run_load(poster: Poster, spec: LoadSpec, ledger: Ledger) -> Result<Ledger> {
    run_load_watching(poster, spec, ledger, None).await
}

/// [`run_load`] where the conversations [`LoadSpec::answered_first`] picks wait for each answer
/// through `answers` (without it, every conversation goes on after the `202`).
pub async fn run_load_watching(
    poster: Poster,
    spec: LoadSpec,
    ledger: Ledger,
    answers: Option<AnswerWatch>,
) -> Result<Ledger> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..spec.conversations {
        let poster = poster.clone();
        let spec = spec.clone();
        let ledger = ledger.clone();
        let every = spec.answered_first_every;
        let answers = answers.clone().filter(|_| every > 0 && i % every == 0);
        tasks.spawn(async move {
            let conversation = format!("{}-{i}", spec.prefix);
            for seq in 0..spec.events_each {
                if started.elapsed() >= spec.max_duration || ledger.stopped() {
                    break;
                }
                let posted = post_until_acknowledged(&poster, &spec, &conversation, seq).await;
                let (request_id, expires) = (posted.request_id.clone(), posted.expires);
                let acknowledged = posted.acknowledged();
                ledger.push(posted);
                if let Some(answers) = answers.as_ref().filter(|_| acknowledged) {
                    answers.wait(&request_id, expires).await;
                }
                tokio::time::sleep(spec.pace).await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined?;
    }
    Ok(ledger)
}

async fn post_until_acknowledged(
    poster: &Poster,
    spec: &LoadSpec,
    conversation: &str,
    seq: usize,
) -> Posted {
    let time = Utc::now();
    let budget = chrono::Duration::from_std(spec.budget).unwrap_or(chrono::Duration::MAX);
    let text = format!("{conversation} #{seq}");
    let event = EventBuilder::new(
        conversation,
        json!({"type": spec.trigger, "participantType": "CUSTOMER", "content": text}),
    )
    .time(time)
    .expires_at(time + budget)
    .build();
    let mut posted = Posted {
        conversation: conversation.to_string(),
        seq,
        request_id: event["requestId"].as_str().unwrap_or_default().to_string(),
        time,
        expires: time + budget,
        acknowledged_at: None,
        statuses: Vec::new(),
        attempted_at: Vec::new(),
    };
    loop {
        let status = match poster.post(&event).await {
            Ok((status, _)) => status.as_u16(),
            Err(_) => 0,
        };
        posted.statuses.push(status);
        posted.attempted_at.push(Utc::now());
        if status == 202 {
            posted.acknowledged_at = Some(Utc::now());
            return posted;
        }
        let retryable = status == 503 || status == 0;
        let time_left = posted.expires - Utc::now() > chrono::Duration::seconds(1);
        if !retryable || !time_left {
            return posted;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
