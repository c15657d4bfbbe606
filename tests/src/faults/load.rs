//! Steady, bounded load through the ingress, recording every post in a [`Ledger`].
//!
//! Each conversation posts its events one after the other, pausing `pace` after each `202`, as
//! Salted CX does (it sends a conversation's next event only after the previous one). An event
//! answered `503` or not answered at all (transport error) is posted again, with the same
//! `requestId`, every 250 ms until it is acknowledged or less than a second is left before its
//! `expires`; then the conversation moves on and the event counts as not acknowledged. Any
//! other status is recorded and not retried. The load stops starting new events after
//! `max_duration`, so every run is bounded in count and time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::EventBuilder;
use crate::stack::Poster;

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
        }
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
pub struct Ledger(Arc<Mutex<Vec<Posted>>>);

impl Ledger {
    fn push(&self, posted: Posted) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(posted);
    }

    /// A copy of what has been recorded so far.
    pub fn snapshot(&self) -> Vec<Posted> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many events were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|p| p.acknowledged()).count()
    }
}

/// Runs `spec` against the ingress behind `poster` and returns the ledger once every
/// conversation is done. Spawn it to inject faults meanwhile; `ledger` fills as it runs.
pub async fn run_load(poster: Poster, spec: LoadSpec, ledger: Ledger) -> Result<Ledger> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..spec.conversations {
        let poster = poster.clone();
        let spec = spec.clone();
        let ledger = ledger.clone();
        tasks.spawn(async move {
            let conversation = format!("{}-{i}", spec.prefix);
            for seq in 0..spec.events_each {
                if started.elapsed() >= spec.max_duration {
                    break;
                }
                let posted = post_until_acknowledged(&poster, &spec, &conversation, seq).await;
                ledger.push(posted);
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
