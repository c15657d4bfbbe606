//! Playing conversations the way Salted CX does: one event at a time per conversation, the next
//! only after the previous one was answered (callback received) or expired; answers applied to
//! the context of the following events; a fallback to an agent when `expires` passes first.
//!
//! When an event is sent is up to the [`Pacing`]: at once (closed loop, demo) or when the
//! open-loop scheduler hands the conversation a scheduled time (so that latency is measured from
//! when the event *should* have been sent, and a slow system cannot hide it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::client::{IngressClient, Posted, Poster};
use super::conversation::{Applied, Conversation};
use super::dedicated::{Dedicated, Target};
use super::scenario::{Scenario, Step};
use super::server::CallbackServer;
use super::stats::{Stats, bump};

/// Pause between tries of an event the ingress could not store (503, no connection).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What every conversation of a run shares.
pub struct Env {
    /// The ingresses the conversations post to (conversation slot `i` to the `i % n`-th).
    pub ingresses: Vec<Ingress>,
    /// Receives the callbacks.
    pub server: Arc<CallbackServer>,
    /// Counters and histograms of the run.
    pub stats: Arc<Stats>,
    /// `expires - time` of every event.
    pub budget: Duration,
    /// Event size in bytes (0: natural size).
    pub event_size: usize,
    /// Latencies of events scheduled before this instant are not recorded.
    pub warmup_until: Instant,
}

/// One ingress the conversations post to.
#[derive(Clone)]
pub struct Ingress {
    /// The pool shared by conversations without a connection of their own.
    pub client: IngressClient,
    /// With one connection per conversation: where those connections go.
    pub dedicated: Option<Target>,
}

impl Ingress {
    /// An ingress reached through `client`, with one connection per conversation when
    /// `per_conversation` is set.
    pub async fn new(client: IngressClient, per_conversation: bool) -> anyhow::Result<Self> {
        let dedicated = if per_conversation {
            Some(client.dedicated_target().await?)
        } else {
            None
        };
        Ok(Self { client, dedicated })
    }
}

impl Env {
    /// Conversation slot `slot`'s way to its ingress: a connection of its own, or the pool.
    pub fn poster(&self, slot: usize) -> Poster {
        let ingress = &self.ingresses[slot % self.ingresses.len().max(1)];
        match &ingress.dedicated {
            Some(target) => Poster::Own(Dedicated::new(target.clone())),
            None => Poster::Shared(ingress.client.clone()),
        }
    }
}

/// Whether more events may be sent: a stop flag and an optional budget of events.
#[derive(Debug, Default)]
pub struct Gate {
    stopped: AtomicBool,
    remaining: Option<AtomicU64>,
}

impl Gate {
    /// A gate letting through at most `events` events (`None`: unlimited) until stopped.
    pub fn new(events: Option<u64>) -> Gate {
        Gate {
            stopped: AtomicBool::new(false),
            remaining: events.map(AtomicU64::new),
        }
    }

    /// Stops every conversation before its next event.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether the gate was stopped (or the event budget is used up).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Takes one event from the budget; `false` when stopped or exhausted.
    pub fn admit(&self) -> bool {
        if self.is_stopped() {
            return false;
        }
        let Some(remaining) = &self.remaining else {
            return true;
        };
        let taken =
            remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if taken.is_err() {
            self.stop();
        }
        taken.is_ok()
    }
}

/// When a conversation sends its next event.
#[derive(Clone)]
pub enum Pacing {
    /// At once, as long as the gate admits it.
    Immediate(Arc<Gate>),
    /// When the open-loop scheduler answers the ticket with the scheduled time.
    Scheduled(Arc<Gate>, mpsc::UnboundedSender<oneshot::Sender<Instant>>),
}

impl Pacing {
    /// The moment the next event is due (latency is measured from it); `None`: stop.
    async fn next(&self) -> Option<Instant> {
        match self {
            Pacing::Immediate(gate) => gate.admit().then(Instant::now),
            Pacing::Scheduled(gate, idle) => {
                if gate.is_stopped() {
                    return None;
                }
                let (ticket, scheduled) = oneshot::channel();
                idle.send(ticket).ok()?;
                scheduled.await.ok()
            }
        }
    }
}

/// How one event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answered before `expires`; `latency` from the (scheduled) send to the callback.
    Answered { latency: Duration, applied: Applied },
    /// The callback came after `expires`: Salted CX had already fallen back to an agent.
    Late { latency: Duration },
    /// No callback before `expires`: fallback to an agent.
    Expired,
    /// The ingress did not accept the event (kind and message of the last refusal).
    NotAccepted { kind: String, message: String },
}

/// One step of a played conversation, for transcripts.
#[derive(Debug, Clone)]
pub struct Record {
    /// The scenario step.
    pub step: Step,
    /// The engaged agent's name when the step happened.
    pub agent: Option<String>,
    /// The event's request id and outcome (`None` for steps without an event).
    pub event: Option<(Uuid, Outcome)>,
}

/// Plays `scenario` as a new conversation. Returns the records (when `keep` is set; empty
/// otherwise) and whether the conversation was played to its end.
pub async fn play(
    env: &Env,
    poster: &mut Poster,
    scenario: &Scenario,
    pacing: &Pacing,
    keep: bool,
) -> (Vec<Record>, bool) {
    let mut conversation = Conversation::new(scenario);
    let registry = env.server.registry();
    registry.open(conversation.pid());
    bump(&env.stats.conversations_started);
    let mut records = Vec::new();
    let mut finished = true;
    for (seq, step) in scenario.steps.iter().enumerate() {
        let agent = conversation.agent_name().map(str::to_owned);
        let event = if step.sends_event() {
            let Some(scheduled) = pacing.next().await else {
                finished = false;
                break;
            };
            play_event(env, poster, &mut conversation, step, seq as u64, scheduled).await
        } else {
            conversation.event(step, env.budget, env.event_size);
            None
        };
        if keep {
            records.push(Record {
                step: step.clone(),
                agent: conversation.agent_name().map(str::to_owned).or(agent),
                event,
            });
        }
    }
    registry.close(conversation.pid());
    if finished {
        bump(&env.stats.conversations_completed);
    }
    (records, finished)
}

/// Sends one event and waits for its callback or its expiry.
async fn play_event(
    env: &Env,
    poster: &mut Poster,
    conversation: &mut Conversation,
    step: &Step,
    seq: u64,
    scheduled: Instant,
) -> Option<(Uuid, Outcome)> {
    let built = conversation.event(step, env.budget, env.event_size)?;
    let sent = Instant::now();
    let deadline = sent + env.budget;
    let pid = conversation.pid().to_string();
    let registry = env.server.registry();
    let mut answer = registry.expect(&pid, built.request_id, seq, deadline);
    let stats = &env.stats;
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let body = Bytes::from(built.body);
    let accepted = post(env, poster, body, deadline).await;
    if let Err((kind, message)) = accepted {
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        registry.withdraw(&pid, built.request_id);
        bump(&stats.not_accepted);
        conversation.fall_back();
        return Some((built.request_id, Outcome::NotAccepted { kind, message }));
    }
    let arrival = match tokio::time::timeout_at(deadline, &mut answer).await {
        Ok(arrival) => arrival.ok(),
        // The callback may have raced the timer: then it is already in the channel.
        Err(_) if registry.expire(&pid, built.request_id) => None,
        Err(_) => answer.await.ok(),
    };
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    let outcome = match arrival {
        Some(arrival) if arrival.at <= deadline => {
            bump(&stats.answered);
            let latency = arrival.at.saturating_duration_since(scheduled);
            if scheduled >= env.warmup_until {
                stats.record_answer(latency, arrival.at.saturating_duration_since(sent));
            }
            Outcome::Answered {
                latency,
                applied: conversation.apply(&arrival.body),
            }
        }
        Some(arrival) => {
            bump(&stats.late);
            conversation.fall_back();
            Outcome::Late {
                latency: arrival.at.saturating_duration_since(scheduled),
            }
        }
        None => {
            bump(&stats.expired);
            conversation.fall_back();
            Outcome::Expired
        }
    };
    Some((built.request_id, outcome))
}

/// Posts until accepted, retrying what may succeed later while the deadline allows.
async fn post(
    env: &Env,
    poster: &mut Poster,
    body: Bytes,
    deadline: Instant,
) -> Result<(), (String, String)> {
    let stats = &env.stats;
    let mut first = true;
    loop {
        bump(&stats.posts);
        let started = Instant::now();
        let posted = poster.post(body.clone()).await;
        match posted {
            Posted::Accepted => {
                bump(&stats.accepted);
                stats.record_post(started.elapsed());
                return Ok(());
            }
            Posted::Duplicate => {
                // After a failed try the ingress may have stored the event all the same; on the
                // first try a fresh requestId is never a duplicate.
                if first {
                    stats.error("duplicate_on_first_post");
                }
                bump(&stats.accepted);
                return Ok(());
            }
            refused => {
                let kind = refused.error_kind().unwrap_or("error").to_string();
                stats.error(&kind);
                let message = match &refused {
                    Posted::Refused { message, .. } | Posted::Failed { message, .. } => {
                        message.clone()
                    }
                    _ => String::new(),
                };
                if !refused.retryable() || Instant::now() + RETRY_PAUSE >= deadline {
                    return Err((kind, message));
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                first = false;
            }
        }
    }
}
