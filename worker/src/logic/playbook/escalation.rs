//! Escalation to a human agent: the message to the customer, the note summarising the request
//! for the agents, and `NEEDS_HELP`, with the exceptions that keep it safe (an agent already
//! engaged gets only the note; a silent trigger never asks for help).

use shared::answer::Action;
use shared::event::ParticipantType;

use super::decision::Signal;
use super::engine::Turn;
use super::outcomes::EscalationReason;
use super::state::{self, Phase};
use super::validate::fill;

const DEFAULT_NOTE: &str = "Customer needs help: {reason}. Request: {request}. Details: {details}. \
     Last message: {last}. Page: {url}";

impl Turn<'_> {
    /// The customer's latest text: this message, else the last customer turn.
    pub(super) fn last_customer_text(&self) -> Option<&str> {
        if self.participant() == Some(&ParticipantType::Customer)
            && let Some(text) = self.event.trigger_texts().find(|t| !t.trim().is_empty())
        {
            return Some(text);
        }
        self.event
            .turns
            .iter()
            .rev()
            .filter(|t| t.participant_type == Some(ParticipantType::Customer))
            .find_map(|t| {
                [t.content_customer.as_deref(), t.content.as_deref()]
                    .into_iter()
                    .flatten()
                    .find(|text| !text.trim().is_empty())
            })
    }

    /// Asks for a human agent: a message to the customer, a note summarising the request and
    /// `NEEDS_HELP`. With an agent already engaged (or already asked for) only the note is sent;
    /// for a silent trigger only the note, saying that nothing was escalated. `kind` is counted
    /// when `NEEDS_HELP` is sent.
    pub fn escalate(&mut self, kind: EscalationReason, reason: &str) {
        self.escalate_saying(kind, reason, true);
    }

    /// [`Turn::escalate`] without the escalation message (the reply already says what
    /// happens).
    pub fn escalate_quietly(&mut self, kind: EscalationReason, reason: &str) {
        self.escalate_saying(kind, reason, false);
    }

    fn escalate_saying(&mut self, kind: EscalationReason, reason: &str, say: bool) {
        self.chose("escalate", || reason.to_string());
        let last: String = self
            .last_customer_text()
            .map(|t| t.chars().take(state::REQUEST_CHARS).collect())
            .unwrap_or_else(|| "-".into());
        let request = self.state.request.clone().unwrap_or_else(|| last.clone());
        let url = self.current_url().unwrap_or("-").to_string();
        let details = self.details_summary();
        let template = self.playbook.texts.escalation_note.as_deref();
        let note = fill(
            template.unwrap_or(DEFAULT_NOTE),
            &[
                ("reason", reason),
                ("request", &request),
                ("last", &last),
                ("url", &url),
                ("details", &details),
            ],
        );
        if self.event.is_silent() {
            self.note(Some(&format!("Not escalated (silent trigger). {note}")));
            return;
        }
        if self.human || self.waiting_for_agent() {
            // Somebody is there or has been asked for: tell the agents, do not ask again.
            self.note(Some(&note));
            return;
        }
        if say {
            self.say(self.playbook.texts.escalation_message.as_ref());
        }
        self.note(Some(&note));
        self.actions.push(Action::needs_help());
        self.signals.push(Signal::Escalated(kind));
        self.state.phase = Phase::Human;
        self.state.misses = 0;
        self.state.pending = None;
        self.state.escalations = self.state.escalations.saturating_add(1);
        self.state.reassured = false;
        self.state.repeats = 0;
        self.state.asked = None;
    }
}
