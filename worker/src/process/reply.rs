//! The reply to an event: the conversation logic's, run within the time left (minus what the
//! fallback answer needs), or the fallback reply when the logic fails.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use shared::answer::{Action, Reply};
use shared::event::Event;
use shared::telemetry::names;
use tracing::Instrument;

use super::job::Job;
use super::{FALLBACK_RESERVE, Processor};
use crate::logic::guarded::{self, LogicFailure};
use crate::logic::{Context, LogicError};

impl Processor {
    /// Runs the logic on `event` with the time left, keeping back what the fallback answer
    /// needs, so a logic that hangs still gets its event answered (with the fallback) in time.
    pub(super) async fn run_logic(
        &self,
        event: &Arc<Event>,
        job: &Job<'_>,
    ) -> Result<Reply, LogicFailure> {
        let envelope = &job.envelope;
        let now = Utc::now();
        let remaining = shared::deadline::remaining(self.deliverer.cutoff(envelope.deadline), now);
        let budget = remaining - FALLBACK_RESERVE.min(remaining / 2);
        let context = Context {
            deadline: envelope.deadline,
            answer_by: now + chrono::TimeDelta::from_std(budget).unwrap_or_default(),
            received_at: envelope.received_at,
            delivery: u64::try_from(job.delivery).unwrap_or(1),
            raw: job.message.payload.clone(),
        };
        let started = Instant::now();
        let result = guarded::run(self.logic.clone(), Arc::clone(event), context, budget)
            .instrument(tracing::info_span!(target: shared::otel::SPAN_TARGET, "logic"))
            .await;
        metrics::histogram!(names::LOGIC_SECONDS).record(started.elapsed().as_secs_f64());
        result
    }
}

/// Why the fallback answer is sent, in words for the agents who take over: general terms only,
/// since the error itself (which may name internal services or URLs) belongs in the dead letter
/// and the logs, not in front of agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FallbackCause {
    TookTooLong,
    Failed,
    DependencyUnavailable,
    TriedTooOften,
    Unreadable,
}

impl FallbackCause {
    pub fn of(failure: &LogicFailure) -> Self {
        match failure {
            LogicFailure::TimedOut(_) => FallbackCause::TookTooLong,
            LogicFailure::Error(LogicError::Unavailable(_)) => FallbackCause::DependencyUnavailable,
            LogicFailure::Panicked(_) | LogicFailure::Error(_) => FallbackCause::Failed,
        }
    }

    fn words(self) -> &'static str {
        match self {
            FallbackCause::TookTooLong => "the automatic answer took too long",
            FallbackCause::Failed => "the automatic answer failed",
            FallbackCause::DependencyUnavailable => {
                "a service the automatic answer needs is unavailable"
            }
            FallbackCause::TriedTooOften => {
                "this event could not be processed although it was tried several times"
            }
            FallbackCause::Unreadable => "this event could not be read",
        }
    }
}

/// The answer when the logic could not decide: ask for a human (unless the trigger is silent)
/// and tell the agents why, in general terms.
pub(super) fn fallback_reply(silent: bool, cause: FallbackCause) -> Reply {
    if silent {
        return Reply::nothing();
    }
    Reply::with_actions(vec![
        Action::note(format!("Please take over: {}.", cause.words())),
        Action::needs_help(),
    ])
}
