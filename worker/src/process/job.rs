//! Stages 1 and 2: reading a delivery (envelope and delivery count) and deciding whether it is
//! still to be answered.

use std::ops::ControlFlow;

use async_nats::jetstream;
use chrono::Utc;
use shared::envelope::{Envelope, EnvelopeError};
use shared::telemetry::names;

use super::{Answering, Outcome, Processor, count};
use crate::deadletter::Reason;

/// One delivery being processed.
pub(super) struct Job<'m> {
    pub partition: u16,
    pub message: &'m jetstream::Message,
    pub envelope: Envelope,
    /// How many times NATS has delivered it (1 the first time).
    pub delivery: i64,
    /// Whether this is certainly the first delivery to any worker (see [`is_first_delivery`]).
    pub first_delivery: bool,
    pub answering: Answering,
}

/// What triage decided.
pub(super) enum Triage {
    /// Nothing more to do: the outcome is final.
    Finished(Outcome),
    /// To be answered; `exhausted` when delivered too often (it probably crashes workers): it is
    /// then not decided again but dead-lettered and answered with the fallback.
    Proceed { exhausted: bool },
}

impl<'m> Job<'m> {
    /// Reads the envelope and the delivery count of `message`. The deadline is no later than
    /// `max_budget` after NATS stored the event, whatever its header says: whatever may publish
    /// on the event subjects could have skipped the ingress, which bounds it the same way.
    pub fn read(
        partition: u16,
        message: &'m jetstream::Message,
        max_budget: std::time::Duration,
        answering: Answering,
    ) -> Result<Self, EnvelopeError> {
        let mut envelope = Envelope::from_headers(message.headers.as_ref())?;
        let info = message.info().ok();
        let stored = info
            .as_ref()
            .and_then(|i| i64::try_from(i.published.unix_timestamp_nanos()).ok())
            .map(chrono::DateTime::from_timestamp_nanos);
        envelope.deadline = bounded_deadline(envelope.deadline, stored, max_budget);
        let delivery = info.as_ref().map_or(1, |i| i.delivered);
        let first_delivery = is_first_delivery(
            delivery,
            info.as_ref().map(|i| i.published.unix_timestamp_nanos()),
            shared::nats::connection_changed_at(),
        );
        if delivery > 1 {
            metrics::counter!(names::REDELIVERIES).increment(1);
        }
        Ok(Self {
            partition,
            message,
            envelope,
            delivery,
            first_delivery,
            answering,
        })
    }

    pub fn trigger(&self) -> &str {
        &self.envelope.trigger
    }
}

impl Processor {
    /// Stage 2: expired, delivered too often, or to be answered.
    pub(super) async fn triage(&self, job: &Job<'_>) -> Triage {
        let too_late = Utc::now() >= self.deliverer.cutoff(job.envelope.deadline);
        if too_late {
            return Triage::Finished(self.too_late(job).await);
        }
        if job.first_delivery {
            return Triage::Proceed { exhausted: false };
        }
        // Possibly a redelivery: how many times did processing start before?
        let id = job.envelope.request_id;
        let delivery = job.delivery;
        match self
            .until_cutoff(job, || self.answers.record_start(id, delivery))
            .await
        {
            ControlFlow::Continue(before) => {
                tracing::debug!(
                    delivery,
                    starts_before = before,
                    "possibly redelivered event"
                );
                Triage::Proceed {
                    exhausted: before + 1 > self.max_starts(),
                }
            }
            ControlFlow::Break(outcome) => Triage::Finished(outcome),
        }
    }

    /// The deadline passed while the event was queued.
    async fn too_late(&self, job: &Job<'_>) -> Outcome {
        if job.delivery > self.max_deliveries {
            // Probably a poison event: kept as a dead letter, counted as failed (no fallback
            // answer follows: its deadline passed).
            return match self.dead_letter_exhausted(job).await {
                Outcome::Failed => count(job.trigger(), Outcome::Failed),
                other => other,
            };
        }
        // A redelivery of an event answered just before a crash (or a lost acknowledgement)
        // is not an expiry: one quick look at its record tells.
        if !job.first_delivery
            && self
                .answers
                .delivered_quickly(job.envelope.request_id)
                .await
        {
            metrics::counter!(names::ALREADY_ANSWERED).increment(1);
            tracing::info!("redelivered after its deadline, but already answered");
            return Outcome::AlreadyAnswered;
        }
        tracing::info!(deadline = %job.envelope.deadline, "deadline passed while queued; not answered");
        count(job.trigger(), Outcome::Expired)
    }

    /// Dead-letters an event delivered too often (it probably crashes workers) without reading
    /// or deciding it again: `Failed`, not counted yet (the caller counts it, after the fallback
    /// answer when one follows), or `Retry` when the dead letter could not be stored.
    pub(super) async fn dead_letter_exhausted(&self, job: &Job<'_>) -> Outcome {
        let error = format!("delivered {} times without being finished", job.delivery);
        self.dead_letter(job, Reason::TooManyDeliveries, &error)
            .await
    }

    fn max_starts(&self) -> u64 {
        u64::try_from(self.max_deliveries).unwrap_or(1).max(1)
    }
}

/// `deadline`, but no later than `max_budget` after `stored` (when NATS stored the event, by its
/// clock; now when unknown).
pub fn bounded_deadline(
    deadline: chrono::DateTime<Utc>,
    stored: Option<chrono::DateTime<Utc>>,
    max_budget: std::time::Duration,
) -> chrono::DateTime<Utc> {
    let stored = stored.unwrap_or_else(Utc::now);
    chrono::TimeDelta::from_std(max_budget)
        .ok()
        .and_then(|budget| stored.checked_add_signed(budget))
        .map_or(deadline, |latest| {
            if deadline > latest {
                tracing::info!(%deadline, %latest, "deadline beyond MAX_BUDGET; bounded");
            }
            deadline.min(latest)
        })
}

/// How far the NATS servers' clocks may be ahead of this worker's (an event published just
/// before the connection changed must not look published after it).
const NATS_CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// Whether this is certainly the event's first delivery to any worker. JetStream's delivery
/// count says so, unless the consumer's progress was lost meanwhile: consumers keep it in memory,
/// and a single NATS server that restarts forgets it, re-delivering unacknowledged events as if
/// for the first time. That can only have happened while this worker was cut off from NATS, so
/// an event published before the connection last changed (allowing for clock skew) counts as
/// possibly redelivered: its answer record is looked up and its answer recorded.
pub fn is_first_delivery(
    delivery: i64,
    published_unix_nanos: Option<i128>,
    connection_changed_at: chrono::DateTime<Utc>,
) -> bool {
    let Some(published) = published_unix_nanos.and_then(|n| i64::try_from(n).ok()) else {
        return false;
    };
    delivery == 1
        && chrono::DateTime::from_timestamp_nanos(published)
            > connection_changed_at + NATS_CLOCK_SKEW
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(at: chrono::DateTime<Utc>) -> Option<i128> {
        at.timestamp_nanos_opt().map(i128::from)
    }

    #[test]
    fn a_deadline_is_at_most_max_budget_after_the_event_was_stored() {
        let stored = Utc::now();
        let budget = std::time::Duration::from_secs(60);
        let far = stored + chrono::Duration::days(365 * 70);
        assert_eq!(
            bounded_deadline(far, Some(stored), budget),
            stored + chrono::Duration::seconds(60)
        );
        let near = stored + chrono::Duration::seconds(15);
        assert_eq!(bounded_deadline(near, Some(stored), budget), near);
        assert!(bounded_deadline(far, None, budget) < Utc::now() + chrono::Duration::seconds(61));
    }

    #[test]
    fn first_delivery_needs_a_delivery_count_of_one_and_a_fresh_event() {
        let connected = Utc::now() - chrono::Duration::minutes(10);
        let fresh = nanos(Utc::now());
        assert!(is_first_delivery(1, fresh, connected));
        assert!(!is_first_delivery(2, fresh, connected));
        // Unknown publication time: assume the worst.
        assert!(!is_first_delivery(1, None, connected));
    }

    #[test]
    fn events_published_before_a_reconnection_count_as_possibly_redelivered() {
        let changed = Utc::now();
        let before = nanos(changed - chrono::Duration::seconds(30));
        assert!(!is_first_delivery(1, before, changed));
        // Within the clock-skew allowance after the change: still treated with care.
        let just_after = nanos(changed + chrono::Duration::seconds(2));
        assert!(!is_first_delivery(1, just_after, changed));
        let well_after = nanos(changed + chrono::Duration::seconds(6));
        assert!(is_first_delivery(1, well_after, changed));
    }
}
