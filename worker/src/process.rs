//! Processing one queued event, from delivery to acknowledgement:
//!
//! 1. read the envelope; drop (and count) the event if its deadline has passed (unless a
//!    redelivery finds its answer was delivered);
//! 2. look up the answers record: an event already answered is acknowledged without a second
//!    callback; one with a pending answer gets exactly that answer again;
//! 3. otherwise run the logic (panics, errors and time-outs are caught: the event is
//!    dead-lettered and the fallback answer is sent; an event delivered more than
//!    `max_deliveries` times is not decided again but handled the same way), and claim the
//!    answer as pending (the first claim wins, so concurrent processings send the same answer);
//! 4. deliver it before the deadline, mark it delivered, acknowledge.
//!
//! Nothing is acknowledged before its outcome is durable (answer delivered, dead letter stored,
//! or deadline passed), so a crash at any point leads to redelivery, never to loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use chrono::Utc;
use shared::answer::{Action, Answer, Reply};
use shared::envelope::Envelope;
use shared::event::Event;
use shared::telemetry::names;
use tracing::Instrument;

use crate::answers::{Answers, Claim, Record};
use crate::callback::{Deliverer, DeliveryError, Target};
use crate::deadletter::{self, Reason};
use crate::logic::{Context, Logic, LogicError};

/// Time kept back from the logic for delivering the fallback answer if it fails or hangs (at
/// most half the time left).
const FALLBACK_RESERVE: Duration = Duration::from_millis(500);
/// Longest wait for the answers record of an event redelivered after its deadline (short: a
/// backlog of expired events drains quickly even while the bucket is unavailable; a slower
/// answer only means the event is counted expired).
const RECORD_LOOKUP: Duration = Duration::from_millis(100);

/// What every event's processing needs.
pub struct Processor {
    pub js: jetstream::Context,
    pub answers: Answers,
    pub deliverer: Deliverer,
    pub logic: Arc<dyn Logic>,
    pub max_deliveries: i64,
    pub ack_wait: Duration,
    /// How long answer records live; an event with a longer budget is answered, with a warning
    /// that a very late redelivery would not find its record.
    pub answers_ttl: Duration,
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
    /// Not finished (NATS unavailable): left unacknowledged for redelivery.
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

impl Processor {
    /// Processes `message` to its end: acknowledged unless the outcome is [`Outcome::Retry`].
    /// Keeps the message's ack deadline extended while working.
    pub async fn handle(&self, partition: u16, message: jetstream::Message) -> Outcome {
        let envelope = Envelope::from_headers(message.headers.as_ref());
        let span = match &envelope {
            Ok(env) => {
                tracing::info_span!("event", request_id = %env.request_id, conversation = %env.conversation, partition)
            }
            Err(_) => tracing::info_span!("event", partition),
        };
        metrics::gauge!(names::WORKER_IN_FLIGHT).increment(1.0);
        let work = self.process(partition, &message, envelope).instrument(span);
        let outcome = with_progress(&message, self.ack_wait, work).await;
        metrics::gauge!(names::WORKER_IN_FLIGHT).decrement(1.0);
        let acked = match outcome {
            Outcome::Retry => {
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await
            }
            _ => message.ack().await,
        };
        if let Err(err) = acked {
            tracing::warn!(error = %err, "acknowledgement failed; the event will be redelivered");
        }
        outcome
    }

    async fn process(
        &self,
        partition: u16,
        message: &jetstream::Message,
        envelope: Result<Envelope, shared::envelope::EnvelopeError>,
    ) -> Outcome {
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(err) => {
                return self
                    .dead_letter(
                        partition,
                        message,
                        Reason::BadEnvelope,
                        &err.to_string(),
                        "",
                    )
                    .await;
            }
        };
        let trigger = envelope.trigger.clone();
        let info = message.info().ok();
        let delivery = info.as_ref().map_or(1, |i| i.delivered);
        let first_delivery = is_first_delivery(
            delivery,
            info.as_ref().map(|i| i.published.unix_timestamp_nanos()),
            shared::nats::connection_changed_at(),
        );
        if delivery > 1 {
            metrics::counter!(names::REDELIVERIES).increment(1);
        }
        // An event delivered too often (it probably crashes workers) is not decided again: it
        // is dead-lettered and, while time remains, answered with the fallback.
        let exhausted = (delivery > self.max_deliveries)
            .then(|| format!("delivered {delivery} times without being finished"));
        let too_late = Utc::now() >= self.deliverer.cutoff(envelope.deadline);
        if let (Some(error), true) = (&exhausted, too_late) {
            let outcome = self
                .dead_letter(
                    partition,
                    message,
                    Reason::TooManyDeliveries,
                    error,
                    &trigger,
                )
                .await;
            // No fallback can follow, so the failure is counted here.
            return if outcome == Outcome::Failed {
                count(&trigger, outcome)
            } else {
                outcome
            };
        }
        if too_late {
            // A redelivery of an event answered just before a crash (or a lost acknowledgement)
            // is not an expiry: one quick look at its record tells.
            if !first_delivery && self.already_delivered(&envelope).await {
                metrics::counter!(names::ALREADY_ANSWERED).increment(1);
                tracing::info!("redelivered after its deadline, but already answered");
                return Outcome::AlreadyAnswered;
            }
            tracing::info!(deadline = %envelope.deadline, "deadline passed while queued; not answered");
            return count(&trigger, Outcome::Expired);
        }
        let budget = (envelope.deadline - envelope.received_at)
            .to_std()
            .unwrap_or_default();
        if budget > self.answers_ttl {
            tracing::warn!(?budget, answers_ttl = ?self.answers_ttl, "event budget exceeds ANSWERS_TTL; raise it");
        }
        // Shared with the logic's task without copying the event.
        let event = match Event::from_json(&message.payload) {
            Ok(event) => Arc::new(event),
            Err(err) => {
                return self
                    .dead_letter(
                        partition,
                        message,
                        Reason::InvalidEvent,
                        &err.to_string(),
                        &trigger,
                    )
                    .await;
            }
        };

        // At most one answer per requestId, whatever happened before. On a first delivery
        // there can be no record: JetStream de-duplicates a requestId for as long as records
        // live (the duplicate window), so the look-up is needed only for redeliveries.
        let previous = if !first_delivery {
            match self.answers_get(&envelope).await {
                Ok(previous) => previous,
                Err(outcome) => return outcome,
            }
        } else {
            None
        };
        let (answer, mut outcome) = match previous {
            Some(Record::Delivered { .. }) => {
                metrics::counter!(names::ALREADY_ANSWERED).increment(1);
                tracing::info!("already answered; acknowledging without a second callback");
                return Outcome::AlreadyAnswered;
            }
            Some(Record::Pending { answer }) => {
                tracing::info!("answer computed before a redelivery; sending the same answer");
                let outcome = answered_outcome(&answer.reply);
                (answer, outcome)
            }
            None => {
                let decided = match &exhausted {
                    Some(error) => Err((Reason::TooManyDeliveries, error.clone())),
                    None => self
                        .decide(&event, &envelope, message, delivery)
                        .await
                        .map_err(|error| (Reason::LogicError, error)),
                };
                let (reply, outcome) = match decided {
                    Ok(reply) => {
                        let outcome = answered_outcome(&reply);
                        (reply, outcome)
                    }
                    Err((reason, error)) => {
                        let failed = self
                            .dead_letter(partition, message, reason, &error, &trigger)
                            .await;
                        if failed == Outcome::Retry {
                            return Outcome::Retry;
                        }
                        (fallback_reply(&event, &error), Outcome::Failed)
                    }
                };
                let answer = Answer::new(event.request_id, reply);
                // A deterministic logic's first decision needs no record: any other
                // processing of this event decides the same answer. (A fallback after a
                // failure is not deterministic: it is recorded.)
                if first_delivery && outcome != Outcome::Failed && self.logic.deterministic() {
                    (answer, outcome)
                } else {
                    let pending = Record::Pending {
                        answer: answer.clone(),
                    };
                    match self.answers_claim(&envelope, &pending).await {
                        Err(outcome) => return outcome,
                        Ok(Claim::Won) => (answer, outcome),
                        // Another processing of this event (a redelivery racing a stuck first
                        // attempt) recorded its answer first: send that one, never a second one.
                        Ok(Claim::Taken(Record::Pending { answer })) => {
                            tracing::info!(
                                "another processing recorded an answer first; sending it"
                            );
                            let outcome = answered_outcome(&answer.reply);
                            (answer, outcome)
                        }
                        Ok(Claim::Taken(Record::Delivered { .. })) => {
                            metrics::counter!(names::ALREADY_ANSWERED).increment(1);
                            tracing::info!("answered meanwhile by another processing; no callback");
                            return Outcome::AlreadyAnswered;
                        }
                    }
                }
            }
        };

        let target = Target {
            account_id: event.account_id.as_deref().unwrap_or_default(),
            region: event.region.as_deref(),
            conversation: &envelope.conversation,
        };
        match self
            .deliverer
            .deliver(&target, &answer, envelope.deadline)
            .await
        {
            Ok(delivered) => {
                let record = Record::Delivered {
                    status: delivered.status,
                };
                // Not confirmed (no round trip before the acknowledgement). Should this record
                // be lost (a crash, NATS restarting) while the acknowledgement is lost too, the
                // redelivered event is answered again with the same answer, never another one.
                if let Err(err) = self
                    .answers
                    .put_unconfirmed(envelope.request_id, &record)
                    .await
                {
                    tracing::warn!(error = %err, "could not mark the answer delivered");
                }
                let end_to_end = (delivered.accepted_at - envelope.received_at)
                    .to_std()
                    .unwrap_or_default();
                let slack = shared::deadline::remaining(envelope.deadline, delivered.accepted_at);
                metrics::histogram!(names::END_TO_END_SECONDS).record(end_to_end.as_secs_f64());
                metrics::histogram!(names::DEADLINE_SLACK_SECONDS).record(slack.as_secs_f64());
                tracing::debug!(attempts = delivered.attempts, ?end_to_end, "answered");
            }
            Err(DeliveryError::DeadlinePassed {
                attempts,
                last_error,
            }) => {
                tracing::warn!(attempts, error = %last_error, "deadline passed before the answer was accepted");
                outcome = Outcome::Expired;
            }
            Err(err @ DeliveryError::Rejected { .. }) => {
                return self
                    .dead_letter(
                        partition,
                        message,
                        Reason::CallbackRejected,
                        &err.to_string(),
                        &trigger,
                    )
                    .await;
            }
            Err(err @ DeliveryError::NoUrl(_)) => {
                return self
                    .dead_letter(
                        partition,
                        message,
                        Reason::NoCallbackUrl,
                        &err.to_string(),
                        &trigger,
                    )
                    .await;
            }
        }
        count(&trigger, outcome)
    }

    /// Runs the logic with the time left, catching panics.
    async fn decide(
        &self,
        event: &Arc<Event>,
        envelope: &Envelope,
        message: &jetstream::Message,
        delivery: i64,
    ) -> Result<Reply, String> {
        let context = Context {
            deadline: envelope.deadline,
            received_at: envelope.received_at,
            delivery: u64::try_from(delivery).unwrap_or(1),
            raw: message.payload.clone(),
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
                Err(format!("logic did not answer within {budget:?}"))
            }
            Ok(Err(join)) if join.is_panic() => {
                Err(format!("logic panicked: {}", panic_text(join)))
            }
            Ok(Err(join)) => Err(format!("logic task failed: {join}")),
            Ok(Ok(Err(LogicError::Failed(e)))) => Err(format!("logic failed: {e}")),
            Ok(Ok(Err(LogicError::Unavailable(e)))) => Err(format!("logic dependency failed: {e}")),
            Ok(Ok(Ok(reply))) => Ok(reply),
        }?;
        // Silent triggers never escalate, whatever the logic says.
        Ok(if event.is_silent() {
            reply.without_escalation()
        } else {
            reply
        })
    }

    async fn answers_get(&self, envelope: &Envelope) -> Result<Option<Record>, Outcome> {
        retry_until(self.deliverer.cutoff(envelope.deadline), || {
            self.answers.get(envelope.request_id)
        })
        .await
        .ok_or_else(|| self.unrecorded(envelope))
    }

    /// Whether the event's record says its answer was delivered (a single attempt, at most
    /// [`RECORD_LOOKUP`]: used only to count an expiry correctly).
    async fn already_delivered(&self, envelope: &Envelope) -> bool {
        matches!(
            tokio::time::timeout(RECORD_LOOKUP, self.answers.get(envelope.request_id)).await,
            Ok(Ok(Some(Record::Delivered { .. })))
        )
    }

    async fn answers_claim(&self, envelope: &Envelope, record: &Record) -> Result<Claim, Outcome> {
        retry_until(self.deliverer.cutoff(envelope.deadline), || {
            self.answers.claim(envelope.request_id, record)
        })
        .await
        .ok_or_else(|| self.unrecorded(envelope))
    }

    /// The answers record stayed unavailable until the deadline: without it an answer could be
    /// sent twice, so none is sent.
    fn unrecorded(&self, envelope: &Envelope) -> Outcome {
        if Utc::now() >= self.deliverer.cutoff(envelope.deadline) {
            tracing::warn!("answers record unavailable until the deadline; not answered");
            count(&envelope.trigger, Outcome::Expired)
        } else {
            Outcome::Retry
        }
    }

    async fn dead_letter(
        &self,
        partition: u16,
        message: &jetstream::Message,
        reason: Reason,
        error: &str,
        trigger: &str,
    ) -> Outcome {
        tracing::warn!(reason = reason.as_str(), error, "dead-lettering the event");
        match deadletter::store(
            &self.js,
            partition,
            message.headers.as_ref(),
            message.payload.clone(),
            reason,
            error,
        )
        .await
        {
            Ok(()) => {
                if matches!(reason, Reason::LogicError | Reason::TooManyDeliveries) {
                    // The fallback answer follows; the outcome is counted after delivery.
                    Outcome::Failed
                } else {
                    count(trigger, Outcome::Failed)
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "dead letter not stored; the event will be redelivered");
                Outcome::Retry
            }
        }
    }
}

/// `answered` for a reply with actions, `silent` for an empty one.
fn answered_outcome(reply: &Reply) -> Outcome {
    if reply.actions.is_empty() {
        Outcome::Silent
    } else {
        Outcome::Answered
    }
}

/// The answer when the logic failed: ask for a human (unless the trigger is silent) and tell the
/// agents why.
fn fallback_reply(event: &Event, error: &str) -> Reply {
    if event.is_silent() {
        return Reply::nothing();
    }
    Reply::with_actions(vec![
        Action::note(format!(
            "Automatic answer failed ({error}); please take over."
        )),
        Action::needs_help(),
    ])
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
fn is_first_delivery(
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

fn panic_text(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

/// Retries `op` with short pauses until it succeeds or `cutoff` passes.
async fn retry_until<T, E: std::fmt::Display, F, Fut>(
    cutoff: chrono::DateTime<Utc>,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut pause = Duration::from_millis(20);
    loop {
        match op().await {
            Ok(value) => return Some(value),
            Err(err) => {
                tracing::warn!(error = %err, "answers record unavailable; retrying");
                if shared::deadline::remaining(cutoff, Utc::now()) <= pause {
                    return None;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// Runs `work` while telling JetStream every `ack_wait / 2` that the message is still in
/// progress, so it is not handed to another worker meanwhile.
async fn with_progress<F: std::future::Future<Output = Outcome>>(
    message: &jetstream::Message,
    ack_wait: Duration,
    work: F,
) -> Outcome {
    let period = (ack_wait / 2).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = ticker.tick() => {
                if let Err(err) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %err, "progress ack failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(at: chrono::DateTime<Utc>) -> Option<i128> {
        at.timestamp_nanos_opt().map(i128::from)
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
