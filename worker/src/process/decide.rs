//! Running the conversation logic: within the time left (minus what the fallback answer needs),
//! in a task of its own so a panic or a hang is caught, and the fallback reply when it fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use shared::answer::{Action, Reply};
use shared::event::Event;
use shared::telemetry::names;

use super::job::Job;
use super::{FALLBACK_RESERVE, Processor};
use crate::logic::{Context, LogicError};

/// Why the logic produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("logic did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("logic panicked: {0}")]
    Panicked(String),
    #[error("logic task failed: {0}")]
    Aborted(String),
    #[error(transparent)]
    Logic(#[from] LogicError),
}

impl Processor {
    /// Runs the logic on `event` with the time left, catching panics and hangs. Silent triggers
    /// never escalate, whatever the logic says.
    pub(super) async fn decide(
        &self,
        event: &Arc<Event>,
        job: &Job<'_>,
    ) -> Result<Reply, DecideError> {
        let envelope = &job.envelope;
        let context = Context {
            deadline: envelope.deadline,
            received_at: envelope.received_at,
            delivery: u64::try_from(job.delivery).unwrap_or(1),
            raw: job.message.payload.clone(),
        };
        // Time is kept back for the fallback answer, so a logic that hangs still gets its
        // event answered (with the fallback) before the deadline.
        let remaining =
            shared::deadline::remaining(self.deliverer.cutoff(envelope.deadline), Utc::now());
        let budget = remaining - FALLBACK_RESERVE.min(remaining / 2);
        let logic = self.logic.clone();
        let owned_event = Arc::clone(event);
        let started = Instant::now();
        let task = tokio::spawn(async move { logic.decide(&owned_event, &context).await });
        let abort = task.abort_handle();
        let result = tokio::time::timeout(budget, task).await;
        metrics::histogram!(names::LOGIC_SECONDS).record(started.elapsed().as_secs_f64());
        let reply = match result {
            Err(_) => {
                abort.abort();
                Err(DecideError::TimedOut(budget))
            }
            Ok(Err(join)) if join.is_panic() => Err(DecideError::Panicked(panic_text(join))),
            Ok(Err(join)) => Err(DecideError::Aborted(join.to_string())),
            Ok(Ok(result)) => result.map_err(DecideError::from),
        }?;
        Ok(if event.is_silent() {
            reply.without_escalation()
        } else {
            reply
        })
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
}

impl FallbackCause {
    pub fn of(error: &DecideError) -> Self {
        match error {
            DecideError::TimedOut(_) => FallbackCause::TookTooLong,
            DecideError::Logic(LogicError::Unavailable(_)) => FallbackCause::DependencyUnavailable,
            DecideError::Panicked(_) | DecideError::Aborted(_) | DecideError::Logic(_) => {
                FallbackCause::Failed
            }
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

fn panic_text(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}
