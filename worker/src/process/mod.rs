//! Processing one delivered event, as a sequence of stages:
//!
//! 1. **read** ([`job`]): the envelope (routing and timing headers) and the delivery count; an
//!    event without a readable envelope is dead-lettered;
//! 2. **triage** ([`job`]): an event whose deadline passed is counted as expired (or, if a
//!    redelivery finds its answer delivered, as already answered); an event delivered too
//!    often (it probably crashes workers) is dead-lettered and answered with the fallback
//!    without being parsed or decided again;
//! 3. **plan** ([`plan`]): a redelivery looks up the answer record (a delivered answer is not
//!    sent again, a recorded one is re-sent as is); otherwise the event is read with the
//!    ingress's own checks ([`read`]) and the logic decides ([`reply`]: bounded by the deadline,
//!    panics caught; a failure is dead-lettered and answered with the fallback); the answer is
//!    claimed in the record unless a deterministic logic decided it on a first delivery;
//! 4. **deliver** ([`deliver`]): the callback before the deadline, then the outcome is counted.
//!
//! Acknowledging is the caller's job (the intake), once the outcome is final: answer delivered,
//! dead letter stored, or deadline passed. [`Outcome::Retry`] means NATS was unavailable and the
//! event must be tried again; nothing else leads to a second processing.

mod deliver;
mod job;
mod plan;
pub mod read;
mod reply;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use shared::telemetry::names;
use tracing::Instrument;

use crate::answers::Answers;
use crate::callback::Deliverer;
use crate::deadletter::{self, Reason};
use crate::logic::Logic;
use job::{Job, Triage};

pub use job::is_first_delivery;
pub use read::EventLimits;

/// What every event's processing needs.
pub struct Processor {
    pub js: jetstream::Context,
    pub answers: Answers,
    pub deliverer: Deliverer,
    pub logic: Arc<dyn Logic>,
    /// Deliveries after which an event is dead-lettered without being decided again.
    pub max_deliveries: i64,
    /// The ingress's limits, applied again to what NATS delivers.
    pub limits: EventLimits,
}

/// The final outcome of one event (the `outcome` label of `yourlogic_events_processed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Silent,
    Expired,
    Failed,
    /// Redelivered after its answer was already accepted: nothing sent.
    AlreadyAnswered,
    /// Not finished (NATS unavailable): to be tried again, not acknowledged.
    Retry,
}

impl Outcome {
    fn label(self) -> Option<&'static str> {
        match self {
            Outcome::Answered => Some("answered"),
            Outcome::Silent => Some("silent"),
            Outcome::Expired => Some("expired"),
            Outcome::Failed => Some("failed"),
            Outcome::AlreadyAnswered | Outcome::Retry => None,
        }
    }
}

/// How an event is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    /// The logic decides (the normal case).
    Decide,
    /// Superseded by later events of its conversation (a flood beyond the per-conversation
    /// quota): answered at once, without the logic, with an empty answer carrying
    /// `control.skipToLatest`. Recorded, since a later processing could decide otherwise.
    SkipToLatest,
}

/// Time kept back from the logic for delivering the fallback answer if it fails or hangs (at
/// most half the time left).
pub const FALLBACK_RESERVE: Duration = Duration::from_millis(500);

impl Processor {
    /// Processes `message` (of `partition`) to its final outcome, answering it as `answering`
    /// says. Does not acknowledge it.
    pub async fn handle(
        &self,
        partition: u16,
        message: &jetstream::Message,
        answering: Answering,
    ) -> Outcome {
        let job = match Job::read(partition, message, self.limits.max_budget, answering) {
            Ok(job) => job,
            Err(err) => {
                return self
                    .store_dead_letter(partition, message, Reason::BadEnvelope, &err, "")
                    .instrument(tracing::info_span!("event", partition))
                    .await;
            }
        };
        let span = tracing::info_span!(
            "event",
            request_id = %job.envelope.request_id,
            conversation = %job.envelope.conversation,
            partition
        );
        // With traces on: continue the ingress's trace, and record the wait in the queue.
        shared::otel::propagation::continue_event(
            &span,
            message.headers.as_ref(),
            job.envelope.received_at,
        );
        self.process(&job).instrument(span).await
    }

    async fn process(&self, job: &Job<'_>) -> Outcome {
        let exhausted = match self.triage(job).await {
            Triage::Finished(outcome) => return outcome,
            Triage::Proceed { exhausted } => exhausted,
        };
        let plan = match self.plan(job, exhausted).await {
            ControlFlow::Continue(plan) => plan,
            ControlFlow::Break(outcome) => return outcome,
        };
        self.deliver(job, plan).await
    }

    /// Stores the event of `job` in the dead-letter stream (see [`Self::store_dead_letter`]).
    async fn dead_letter(
        &self,
        job: &Job<'_>,
        reason: Reason,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Outcome {
        self.store_dead_letter(job.partition, job.message, reason, error, job.trigger())
            .await
    }

    /// Stores the event in the dead-letter stream. The outcome is `Failed` (counted here unless
    /// a fallback answer follows), or `Retry` if the dead letter could not be stored.
    async fn store_dead_letter(
        &self,
        partition: u16,
        message: &jetstream::Message,
        reason: Reason,
        error: &(dyn std::fmt::Display + Sync),
        trigger: &str,
    ) -> Outcome {
        let error = error.to_string();
        tracing::warn!(reason = reason.as_str(), error, "dead-lettering the event");
        let stored = deadletter::store(
            &self.js,
            partition,
            message.headers.as_ref(),
            message.payload.clone(),
            reason,
            &error,
        )
        .instrument(tracing::info_span!(
            target: shared::otel::SPAN_TARGET,
            "dead letter",
            reason = reason.as_str()
        ))
        .await;
        match stored {
            Ok(()) if reason.answered_with_fallback() => Outcome::Failed,
            Ok(()) => count(trigger, Outcome::Failed),
            Err(err) => {
                tracing::error!(error = %err, "dead letter not stored; the event will be tried again");
                Outcome::Retry
            }
        }
    }
}

/// Counts `outcome` for `trigger` in `yourlogic_events_processed_total` and returns it.
fn count(trigger: &str, outcome: Outcome) -> Outcome {
    if let Some(label) = outcome.label() {
        let trigger = if trigger.is_empty() {
            "UNKNOWN"
        } else {
            trigger
        };
        metrics::counter!(names::EVENTS_PROCESSED, "trigger" => trigger.to_string(), "outcome" => label)
            .increment(1);
    }
    outcome
}
