//! Stage 3: which answer to send. A redelivery first looks at the answer record; otherwise the
//! event is parsed and decided (or, delivered too often, given the fallback), and the answer is
//! claimed in the record unless a deterministic logic decided it on a first delivery.
//!
//! Each step either goes on or ends the event's processing early with its final outcome
//! (already answered, expired, or to be tried again): [`ControlFlow::Break`].

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::Utc;
use shared::answer::{Answer, Reply};
use shared::retry::{Backoff, Failure, Limits, retry};
use shared::telemetry::names;

use super::job::Job;
use super::read::read_event;
use super::reply::{FallbackCause, fallback_reply};
use super::{Answering, Outcome, Processor, count};
use crate::answers::{AnswersError, Claim, Record};
use crate::deadletter::Reason;

/// The answer to send.
pub(super) struct Plan {
    pub answer: Answer,
    /// `answered` or `silent`, or `failed` for a fallback.
    pub outcome: Outcome,
    /// Whether the answer is in the record (then it is marked delivered after the callback).
    pub recorded: bool,
    /// The event's account, when the envelope does not carry it (events queued by earlier
    /// versions): read from the body.
    pub account_id: Option<String>,
}

/// A reply decided for an event, before it is recorded.
struct Decided {
    reply: Reply,
    /// `answered` or `silent`, or `failed` for a fallback.
    outcome: Outcome,
    /// The account read from the body (see [`Plan::account_id`]).
    account_id: Option<String>,
}

impl Processor {
    /// The answer to send, or the final outcome without one.
    pub(super) async fn plan(&self, job: &Job<'_>, exhausted: bool) -> ControlFlow<Outcome, Plan> {
        // At most one answer per requestId, whatever happened before. On a first delivery there
        // can be no record: JetStream de-duplicates a requestId for as long as records live.
        if !job.first_delivery {
            match self.record_of(job).await? {
                Some(Record::Delivered { .. }) => {
                    metrics::counter!(names::ALREADY_ANSWERED).increment(1);
                    tracing::info!("already answered; acknowledging without a second callback");
                    return ControlFlow::Break(Outcome::AlreadyAnswered);
                }
                Some(Record::Pending { answer }) => {
                    tracing::info!("answer computed before a redelivery; sending the same answer");
                    return ControlFlow::Continue(Plan {
                        outcome: answered_outcome(&answer.reply),
                        answer,
                        recorded: true,
                        account_id: None,
                    });
                }
                None => {}
            }
        }
        // The fast path needs the account from the envelope (events queued by earlier versions
        // lack it there: they are decided, which reads it from the body).
        let skip = job.answering == Answering::SkipToLatest && job.envelope.account_id.is_some();
        let decided = if exhausted {
            stored(self.dead_letter_exhausted(job).await)?;
            Decided {
                reply: fallback_reply(job.envelope.silent, FallbackCause::TriedTooOften),
                outcome: Outcome::Failed,
                account_id: None,
            }
        } else if skip {
            Decided {
                reply: Reply::skip_to_latest(),
                outcome: Outcome::Silent,
                account_id: None,
            }
        } else {
            self.decided(job).await?
        };
        let Decided {
            reply,
            outcome,
            account_id,
        } = decided;
        let answer = Answer::new(job.envelope.request_id, reply);
        // A deterministic logic's first decision needs no record: any other processing of this
        // event decides the same answer. (A fallback is not a decision of the logic, nor is a
        // skipped event's empty answer: recorded.)
        let deterministic =
            job.first_delivery && !skip && outcome != Outcome::Failed && self.logic.deterministic();
        if deterministic {
            return ControlFlow::Continue(Plan {
                answer,
                outcome,
                recorded: false,
                account_id,
            });
        }
        match self.claim(job, &answer).await? {
            Claim::Won => ControlFlow::Continue(Plan {
                answer,
                outcome,
                recorded: true,
                account_id,
            }),
            // Another processing of this event (a redelivery racing a stuck first attempt)
            // recorded its answer first: send that one, never a second one.
            Claim::Taken(Record::Pending { answer }) => {
                tracing::info!("another processing recorded an answer first; sending it");
                ControlFlow::Continue(Plan {
                    outcome: answered_outcome(&answer.reply),
                    answer,
                    recorded: true,
                    account_id,
                })
            }
            Claim::Taken(Record::Delivered { .. }) => {
                metrics::counter!(names::ALREADY_ANSWERED).increment(1);
                tracing::info!("answered meanwhile by another processing; no callback");
                ControlFlow::Break(Outcome::AlreadyAnswered)
            }
        }
    }

    /// Reads the event and runs the logic; a failure is dead-lettered and gets the fallback.
    async fn decided(&self, job: &Job<'_>) -> ControlFlow<Outcome, Decided> {
        let event = match read_event(&job.message.payload, &job.envelope, &self.limits) {
            Ok((event, dropped)) => {
                if !dropped.is_empty() {
                    // The format is documented as still changing: the logic decides without
                    // fields it cannot read rather than leaving the event unanswered.
                    tracing::warn!(fields = ?dropped, "event fields of unexpected types were left out");
                }
                Arc::new(event)
            }
            Err(err) => {
                // Not an event the ingress would have accepted (published around it), or not
                // readable at all: kept as a dead letter, and still answered, from the
                // envelope, so Salted CX does not wait until the deadline.
                stored(self.dead_letter(job, Reason::InvalidEvent, &err).await)?;
                return ControlFlow::Continue(Decided {
                    reply: fallback_reply(job.envelope.silent, FallbackCause::Unreadable),
                    outcome: Outcome::Failed,
                    account_id: None,
                });
            }
        };
        let account_id = event.account_id.clone();
        match self.run_logic(&event, job).await {
            Ok(reply) => ControlFlow::Continue(Decided {
                outcome: answered_outcome(&reply),
                reply,
                account_id,
            }),
            Err(failure) => {
                stored(self.dead_letter(job, Reason::LogicError, &failure).await)?;
                ControlFlow::Continue(Decided {
                    reply: fallback_reply(event.is_silent(), FallbackCause::of(&failure)),
                    outcome: Outcome::Failed,
                    account_id,
                })
            }
        }
    }

    /// The event's answer record, retried while time remains.
    async fn record_of(&self, job: &Job<'_>) -> ControlFlow<Outcome, Option<Record>> {
        let id = job.envelope.request_id;
        self.until_cutoff(job, || self.answers.get(id)).await
    }

    /// Claims `answer` as the event's answer (the first claim wins), retried while time remains.
    async fn claim(&self, job: &Job<'_>, answer: &Answer) -> ControlFlow<Outcome, Claim> {
        let pending = Record::Pending {
            answer: answer.clone(),
        };
        let id = job.envelope.request_id;
        self.until_cutoff(job, || self.answers.claim(id, &pending))
            .await
    }

    /// Retries a record operation until it succeeds or the event's cutoff passes. Without the
    /// record an answer could be sent twice, so after the cutoff none is sent (expired); before
    /// it, an unavailable record means trying the event again later.
    pub(super) async fn until_cutoff<T, F, Fut>(
        &self,
        job: &Job<'_>,
        mut operation: F,
    ) -> ControlFlow<Outcome, T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AnswersError>>,
    {
        let cutoff = self.deliverer.cutoff(job.envelope.deadline);
        let left = shared::deadline::remaining(cutoff, Utc::now());
        let result = retry(
            Backoff::new(
                std::time::Duration::from_millis(20),
                std::time::Duration::from_millis(500),
            ),
            Limits::until(tokio::time::Instant::now() + left),
            |_| {
                let attempt = operation();
                async move {
                    attempt.await.map_err(|err| {
                        tracing::warn!(error = %err, "answers record unavailable; retrying");
                        Failure::Transient(err)
                    })
                }
            },
        )
        .await;
        match result {
            Ok(value) => ControlFlow::Continue(value),
            Err(_) if Utc::now() >= cutoff => {
                tracing::warn!("answers record unavailable until the deadline; not answered");
                ControlFlow::Break(count(job.trigger(), Outcome::Expired))
            }
            Err(_) => ControlFlow::Break(Outcome::Retry),
        }
    }
}

/// Goes on once a dead letter followed by the fallback answer is stored (`Failed`); ends with
/// `Retry` when it could not be.
fn stored(dead_letter: Outcome) -> ControlFlow<Outcome> {
    match dead_letter {
        Outcome::Retry => ControlFlow::Break(Outcome::Retry),
        _ => ControlFlow::Continue(()),
    }
}

/// `answered` for a reply with actions, `silent` for an empty one.
pub(super) fn answered_outcome(reply: &Reply) -> Outcome {
    if reply.actions.is_empty() {
        Outcome::Silent
    } else {
        Outcome::Answered
    }
}
