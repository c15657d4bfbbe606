//! What a decision produces besides the reply: the signals counted as conversation metrics,
//! and the auto-answer step where the generative step may answer instead of the playbook.

use shared::answer::Reply;

use super::format::IntentKind;
use super::outcomes::{Containment, EscalationReason};

/// What the generative step produced for a customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generated {
    /// An answer to send instead of the playbook's own.
    Answer(String),
    /// The model asked for a human agent, with its reason.
    Escalate(String),
    /// The model was asked but gave no usable answer (slow, failing, refused): the playbook
    /// answers, and a message it did not understand is not counted as a misunderstanding.
    Unanswered,
}

/// What the playbook would have answered at the auto-answer step of a customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A knowledge-base answer.
    Knowledge,
    /// A small-talk or off-topic answer.
    Intent,
    /// Nothing matched (a misunderstanding).
    NotUnderstood,
}

/// The customer message reached the auto-answer step, where a generated answer may replace the
/// playbook's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerStep {
    /// What the playbook itself answered there.
    pub kind: StepKind,
    /// The language the reply uses (normalised code; the default language when `None`).
    pub language: Option<String>,
}

/// Something the decision did, for the conversation metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The bot asked for a human agent (`NEEDS_HELP` sent).
    Escalated(EscalationReason),
    /// The customer answered the closing question.
    Resolution { resolved: bool },
    /// The customer rated the help at the closing (1..=scale).
    Rating { rating: u8, scale: u8 },
    /// A small-talk or off-topic intent was answered.
    Intent(IntentKind),
    /// The conversation completed.
    Completed(Containment),
}

/// The reply to one event and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub reply: Reply,
    pub signals: Vec<Signal>,
    /// Set when a customer message reached the auto-answer step.
    pub answer_step: Option<AnswerStep>,
}
