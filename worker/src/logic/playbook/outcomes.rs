//! Conversation outcomes as metrics: escalations by reason, answers to the closing question,
//! ratings (CSAT), small talk and off-topic intents, and completed conversations that the bot
//! handled alone (contained) or not.
//!
//! The engine reports what it did as [`Signal`]s; [`record`] turns them into counters (names in
//! `shared::telemetry::names`). A redelivered event is decided, and counted, again: the counts
//! are for dashboards and alerts, not for billing.

use shared::telemetry::names;

use super::decision::Signal;
use super::format::IntentKind;

/// Why the bot asked for a human agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationReason {
    /// The customer asked for a human.
    CustomerRequest,
    /// Too many misunderstood messages in a row.
    Misunderstanding,
    /// A negative review.
    NegativeReview,
    /// A menu step or answer hook with `escalate = true`.
    Hook,
    /// An agent left without resolving the request (`[[agent_outcomes]]`).
    AgentLeft,
    /// The customer said the issue is not resolved at the closing.
    NotResolved,
    /// The generative model asked for a human (its tool call).
    Generative,
    /// The customer is frustrated, sarcastic or rude again.
    Frustration,
    /// The customer asked the same question again after its answer (stuck).
    Stuck,
}

impl EscalationReason {
    /// Every reason, for registering the metric's series.
    pub const ALL: [EscalationReason; 9] = [
        EscalationReason::CustomerRequest,
        EscalationReason::Misunderstanding,
        EscalationReason::NegativeReview,
        EscalationReason::Hook,
        EscalationReason::AgentLeft,
        EscalationReason::NotResolved,
        EscalationReason::Generative,
        EscalationReason::Frustration,
        EscalationReason::Stuck,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            EscalationReason::CustomerRequest => "customer_request",
            EscalationReason::Misunderstanding => "misunderstanding",
            EscalationReason::NegativeReview => "negative_review",
            EscalationReason::Hook => "hook",
            EscalationReason::AgentLeft => "agent_left",
            EscalationReason::NotResolved => "not_resolved",
            EscalationReason::Generative => "generative",
            EscalationReason::Frustration => "frustration",
            EscalationReason::Stuck => "stuck",
        }
    }
}

/// How a completed conversation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// Completed without needing a human.
    Contained,
    /// A human was asked for or took part.
    Escalated,
    /// The completion event did not carry the conversation's context.
    Unknown,
}

impl Containment {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Containment::Contained => "contained",
            Containment::Escalated => "escalated",
            Containment::Unknown => "unknown",
        }
    }
}

/// The `kind` label of an intent.
pub fn intent_label(kind: IntentKind) -> &'static str {
    match kind {
        IntentKind::SmallTalk => "small_talk",
        IntentKind::OffTopic => "off_topic",
    }
}

/// Counts what a decision did.
pub fn record(signals: &[Signal]) {
    for signal in signals {
        match *signal {
            Signal::Escalated(reason) => {
                metrics::counter!(names::ESCALATIONS, "reason" => reason.label()).increment(1);
            }
            Signal::Resolution { resolved } => {
                let answer = if resolved { "resolved" } else { "not_resolved" };
                metrics::counter!(names::CLOSING_ANSWERS, "answer" => answer).increment(1);
            }
            Signal::Rating { rating, scale } => {
                // Satisfied (CSAT): at least four fifths of the scale (4 or 5 of 5, 8 to 10 of 10).
                let satisfied = u16::from(rating) * 5 >= u16::from(scale) * 4;
                metrics::counter!(
                    names::CLOSING_RATINGS,
                    "rating" => rating.to_string(),
                    "satisfied" => if satisfied { "true" } else { "false" }
                )
                .increment(1);
            }
            Signal::Intent(kind) => {
                metrics::counter!(names::INTENTS, "kind" => intent_label(kind)).increment(1);
            }
            Signal::Completed(containment) => {
                metrics::counter!(names::CONVERSATIONS_COMPLETED, "outcome" => containment.label())
                    .increment(1);
            }
        }
    }
}
