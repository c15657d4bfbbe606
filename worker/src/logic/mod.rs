//! The extension point: conversation logic decides the answer to one event.
//!
//! Implement [`Logic`] for your own Rust logic, or use the built-in ones: the declarative
//! playbook (the default), the playbook with a generative answer step (a language model behind
//! an OpenAI-compatible API), a trivial echo logic, or the HTTP delegate that forwards each event
//! to a service of yours. The worker takes care of ordering, deadlines, retries, idempotency and
//! metrics around it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shared::answer::Reply;
use shared::event::Event;

pub mod body;
pub mod echo;
pub mod engagements;
pub mod generative;
pub mod guarded;
pub mod http;
pub mod playbook;
pub mod setup;

/// What the worker knows about an event besides its content.
#[derive(Debug, Clone)]
pub struct Context {
    /// The moment (our clock) after which an answer is useless.
    pub deadline: DateTime<Utc>,
    /// The moment the logic must have returned by: the worker keeps the time after it to send
    /// the answer (or, if the logic has not returned, the fallback) before the deadline. A
    /// logic that waits on something slow (a model, a service) bounds its wait by this.
    pub answer_by: DateTime<Utc>,
    /// When the ingress received the event.
    pub received_at: DateTime<Utc>,
    /// How many times this event has been delivered to a worker (1 the first time).
    pub delivery: u64,
    /// The raw JSON body as Salted CX sent it (for logic that needs fields the model lacks).
    pub raw: bytes::Bytes,
}

impl Context {
    /// A context whose logic may use the time until `deadline` (outside the worker: tests,
    /// `worker decide`).
    pub fn new(
        deadline: DateTime<Utc>,
        received_at: DateTime<Utc>,
        delivery: u64,
        raw: bytes::Bytes,
    ) -> Self {
        Self {
            deadline,
            answer_by: deadline,
            received_at,
            delivery,
            raw,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        shared::deadline::remaining(self.deadline, Utc::now())
    }

    /// Time left before the logic must have returned.
    pub fn time_to_answer(&self) -> Duration {
        shared::deadline::remaining(self.answer_by, Utc::now())
    }
}

/// Why the logic could not decide. Either kind sends the event to the dead-letter stream; the
/// worker then answers with the configured fallback (by default: ask for a human agent, unless
/// the trigger is silent).
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// A failure that will not go away by retrying this event (bad data, a bug).
    #[error("logic failed: {0}")]
    Failed(String),
    /// A dependency of the logic failed or timed out (HTTP delegate, ...).
    #[error("logic dependency failed: {0}")]
    Unavailable(String),
}

/// Conversation logic: one event in, one reply out.
///
/// Implementations must be stateless between calls (keep conversation state in
/// `conversation.custom`, at most 1 kB) because any worker may process the next event of a
/// conversation. A panic is caught and handled like [`LogicError::Failed`].
#[async_trait]
pub trait Logic: Send + Sync + 'static {
    /// Decides the reply to `event`. An empty [`Reply`] still resolves the request.
    async fn decide(&self, event: &Event, context: &Context) -> Result<Reply, LogicError>;

    /// Whether the reply depends only on the event (no clock, randomness or outside service).
    /// The worker then skips recording the answer before the callback on first deliveries: a
    /// redelivery would compute the same answer anyway. Defaults to `false` (always recorded).
    fn deterministic(&self) -> bool {
        false
    }
}
