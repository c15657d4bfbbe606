//! Stage 4: the callback, before the deadline, and the outcome it leads to.

use shared::telemetry::names;

use super::job::Job;
use super::plan::Plan;
use super::{Outcome, Processor, count};
use crate::answers::Record;
use crate::callback::{DeliveryError, Target};
use crate::deadletter::Reason;

impl Processor {
    pub(super) async fn deliver(&self, job: &Job<'_>, plan: Plan) -> Outcome {
        let envelope = &job.envelope;
        let account_id = envelope
            .account_id
            .as_deref()
            .or(plan.account_id.as_deref())
            .unwrap_or_default();
        let target = Target {
            account_id,
            region: envelope.region.as_deref(),
            conversation: &envelope.conversation,
        };
        let error = match self
            .deliverer
            .deliver(&target, &plan.answer, envelope.deadline)
            .await
        {
            Ok(delivered) => {
                if plan.recorded {
                    self.mark_delivered(job, delivered.status).await;
                }
                let end_to_end = (delivered.accepted_at - envelope.received_at)
                    .to_std()
                    .unwrap_or_default();
                let slack = shared::deadline::remaining(envelope.deadline, delivered.accepted_at);
                metrics::histogram!(names::END_TO_END_SECONDS).record(end_to_end.as_secs_f64());
                metrics::histogram!(names::DEADLINE_SLACK_SECONDS).record(slack.as_secs_f64());
                tracing::debug!(attempts = delivered.attempts, ?end_to_end, "answered");
                return count(job.trigger(), plan.outcome);
            }
            Err(error) => error,
        };
        let reason = match &error {
            DeliveryError::DeadlinePassed {
                attempts,
                last_error,
            } => {
                tracing::warn!(attempts, error = %last_error, "deadline passed before the answer was accepted");
                return count(job.trigger(), Outcome::Expired);
            }
            DeliveryError::Rejected { .. } => Reason::CallbackRejected,
            DeliveryError::Unreachable { .. } => Reason::CallbackUnreachable,
            DeliveryError::NoUrl(_) => Reason::NoCallbackUrl,
            DeliveryError::Unserialisable(_) => Reason::UnserialisableAnswer,
        };
        self.dead_letter(job, reason, &error).await
    }

    /// Marks a recorded answer as delivered, so a redelivery does not send it again. Not
    /// confirmed (no round trip before the acknowledgement): should it be lost together with the
    /// acknowledgement, the redelivered event gets the same answer again, never another one.
    async fn mark_delivered(&self, job: &Job<'_>, status: u16) {
        let record = Record::Delivered { status };
        if let Err(err) = self
            .answers
            .put_unconfirmed(job.envelope.request_id, &record)
            .await
        {
            tracing::warn!(error = %err, "could not mark the answer delivered");
        }
    }
}
