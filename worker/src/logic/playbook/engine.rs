//! The decision engine: one event in, one [`Decision`] out, chosen by trigger
//! type.
//!
//! The engine is a pure function of the playbook, the options and the event: the state comes in
//! with `conversation.custom` and goes out with the reply. Customer messages are handled in
//! [`super::dialogue`], the closing in `super::closing`, request details in `super::details`,
//! escalation in `super::escalation`; this module handles every other trigger and the shared
//! helpers (agent presence, language, URLs). Rules that hold for every trigger:
//! - silent triggers never produce `NEEDS_HELP` (the escalation becomes a note);
//! - `Conversation Update` and unknown triggers change nothing; `CONVERSATION_COMPLETED` only
//!   reports whether the conversation was contained;
//! - the state is only sent back when it changed, merged with the user's own keys.

use shared::answer::{Action, Reply};
use shared::event::{Event, ParticipantType, TriggerType};
use shared::tolerant::normalise;

use super::decision::{AnswerStep, Decision, Generated, Signal};
use super::explain::{Chosen, Explanation, LanguageChoice};
use super::format::{AfterAgent, DuringAgent, HookOn};
use super::language::{self, LocalText, ReplyLanguage};
use super::matching::Words;
use super::outcomes::{Containment, EscalationReason};
use super::state::{self, Phase, State};
use super::understand::Reading;
use super::validate::fill;
use super::{Options, Playbook};
use crate::logic::engagements::{Engagements, Owner};

const DEFAULT_UNKNOWN_ACTION: &str =
    "The playbook has no entry for the action `{action}`; nothing was done.";

/// Decides on `event`; with `explain`, also says why.
pub(super) fn decide(
    playbook: &Playbook,
    options: &Options,
    event: &Event,
    generated: Option<&Generated>,
    explain: bool,
) -> (Decision, Option<Box<Explanation>>) {
    let custom = event.conversation_custom();
    let before = State::read(custom);
    let help_requested = before.phase == Phase::Human
        || event.conversation.as_ref().and_then(|c| c.needs_help) == Some(true);
    let engagements = Engagements::new(event, &options.identity, help_requested);
    let (language, reason) = match options.reply_language {
        ReplyLanguage::Customer => reply_language(playbook, event),
        ReplyLanguage::Account => (None, "default"),
    };
    let trace = explain.then(|| {
        Box::new(Explanation {
            language: LanguageChoice {
                code: language
                    .clone()
                    .unwrap_or_else(|| playbook.default_language.clone()),
                reason: reason.to_string(),
            },
            phase_before: before.phase.name().to_string(),
            state_before: before.to_json(),
            ..Explanation::default()
        })
    });
    let mut turn = Turn {
        playbook,
        event,
        state: before.clone(),
        actions: Vec::new(),
        signals: Vec::new(),
        language,
        human: engagements.human_engaged(),
        completed_owner: engagements.completed_owner(),
        generated,
        answer_step: None,
        trace,
        reading: None,
    };
    let trigger = &event.trigger;
    match &trigger.kind {
        TriggerType::Message => turn.message(),
        TriggerType::File => turn.file(),
        TriggerType::Navigation => turn.navigation(),
        TriggerType::Action => turn.action(),
        TriggerType::MenuStep => {
            turn.hook(HookOn::MenuStep, trigger.technical_id.as_deref());
        }
        TriggerType::Answer => turn.answer_trigger(),
        TriggerType::Review => turn.review(),
        TriggerType::EngagementCompleted => turn.engagement_completed(),
        TriggerType::ConversationCompleted => turn.conversation_completed(),
        TriggerType::ConversationUpdate | TriggerType::Other(_) => {}
    }
    let mut actions = turn.actions;
    if event.is_silent() {
        actions.retain(|a| !matches!(a, Action::NeedsHelp { .. }));
    }
    let mut reply = Reply::with_actions(actions);
    // Without a conversation object (CONVERSATION_COMPLETED) the user's keys are unknown:
    // writing would destroy them.
    if event.conversation.is_some()
        && turn.state != before
        && let Some(custom) = state::merge(custom, &turn.state)
    {
        reply = reply.with_conversation_custom(custom);
    }
    let mut trace = turn.trace;
    if let Some(trace) = trace.as_mut() {
        trace.phase_after = turn.state.phase.name().to_string();
        trace.state_after = turn.state.to_json();
        trace.details = turn.state.details.iter().cloned().collect();
        if trace.chosen.is_empty() {
            // No step named itself (an agent's message, a trigger a rule answered): say so.
            let (kind, reason) = if !reply.actions.is_empty() {
                ("ack", "a playbook rule for this trigger")
            } else if turn.state.phase == Phase::Human {
                ("silent", "a human agent has the conversation")
            } else {
                ("silent", "nothing to say at this point")
            };
            trace.chosen.push(Chosen {
                kind: kind.into(),
                reason: reason.into(),
                ..Chosen::default()
            });
        }
    }
    let decision = Decision {
        reply,
        signals: turn.signals,
        answer_step: turn.answer_step,
    };
    (decision, trace)
}

/// The reply language and why: the customer's when the playbook speaks it, else the one the
/// message's words show (for a customer whose language the playbook does not have, or does
/// not know), else the default.
fn reply_language(playbook: &Playbook, event: &Event) -> (Option<String>, &'static str) {
    let customer = language::customer_language(event);
    if let Some(code) = &customer
        && playbook.speaks(code)
    {
        return (customer, "customer");
    }
    let detected = event
        .trigger_texts()
        .find(|t| !t.trim().is_empty())
        .and_then(|text| playbook.detect_language(text));
    match detected {
        Some(code) => (Some(code), "detected"),
        // A language the playbook lacks still finds translations of the same family.
        None => (customer, "default"),
    }
}

/// The work on one event: the playbook, the event, the evolving state and the actions so far.
pub(super) struct Turn<'a> {
    pub playbook: &'a Playbook,
    pub event: &'a Event,
    pub state: State,
    pub actions: Vec<Action>,
    pub signals: Vec<Signal>,
    /// The reply language (normalised code; `None`: the default language).
    pub language: Option<String>,
    /// Whether a human agent is engaged right now.
    pub human: bool,
    /// Who the engagement an `ENGAGEMENT_COMPLETED` trigger reports belonged to.
    pub completed_owner: Owner,
    /// The generative step's answer, if any.
    pub generated: Option<&'a Generated>,
    pub answer_step: Option<AnswerStep>,
    /// The explanation being built (only when asked for).
    pub trace: Option<Box<Explanation>>,
    /// What the customer message reads as (customer messages only).
    pub reading: Option<Reading>,
}

impl Turn<'_> {
    /// The text of `text` in the reply language.
    pub fn pick<'t>(&self, text: &'t LocalText) -> &'t str {
        text.pick(self.language.as_deref())
    }

    /// Sends `text` to the customer in the reply language, if set.
    pub fn say(&mut self, text: Option<&LocalText>) {
        if let Some(text) = text {
            let text = self.pick(text).to_string();
            self.actions.push(Action::message(text));
        }
    }

    /// Sends `text` (already in the reply language) to the customer.
    pub fn say_text(&mut self, text: impl Into<String>) {
        self.actions.push(Action::message(text));
    }

    /// Sends `text` to the agents, if set.
    pub fn note(&mut self, text: Option<&str>) {
        if let Some(text) = text {
            self.actions.push(Action::note(text));
        }
    }

    /// Who caused the trigger.
    pub fn participant(&self) -> Option<&ParticipantType> {
        self.event.trigger.participant_type.as_ref()
    }

    /// Whether the bot escalated and the conversation still needs help (not yet answered by an
    /// agent; an unknown flag counts as still needing help).
    pub fn waiting_for_agent(&self) -> bool {
        self.state.phase == Phase::Human
            && self.event.conversation.as_ref().and_then(|c| c.needs_help) != Some(false)
    }

    /// Whether the conversation is flagged as needing help.
    pub fn needs_help(&self) -> bool {
        self.event.conversation.as_ref().and_then(|c| c.needs_help) == Some(true)
    }

    /// Whether the bot may talk to the customer now (no agent, or the playbook says so).
    pub fn may_talk(&self) -> bool {
        !self.human || self.playbook.during_agent == DuringAgent::Active
    }

    /// The customer's current page: this event's, else the remembered one.
    pub fn current_url(&self) -> Option<&str> {
        let conversation = self.event.conversation.as_ref();
        [
            self.event.trigger.last_visited_url.as_deref(),
            self.event.url.as_deref(),
            conversation.and_then(|c| c.last_visited_url.as_deref()),
            conversation.and_then(|c| c.url.as_deref()),
            self.state.url.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|url| !url.trim().is_empty())
    }

    /// The customer's text of this trigger, split into words.
    pub fn words(&self, texts: &[String]) -> Vec<Words> {
        texts
            .iter()
            .map(|t| Words::new(t, &self.playbook.filler))
            .collect()
    }

    pub(super) fn in_closing(&self) -> bool {
        matches!(self.state.phase, Phase::Closing | Phase::Feedback)
    }

    fn file(&mut self) {
        if self.participant() != Some(&ParticipantType::Customer) || !self.may_talk() {
            return;
        }
        let trigger = &self.event.trigger;
        let mime = trigger.mime_type.as_deref().unwrap_or_default();
        let name = trigger.media_name.as_deref().unwrap_or("file");
        let Some(rule) = self.playbook.files.iter().find(|r| r.mime.matches(mime)) else {
            return;
        };
        let values = [("name", name), ("mime", mime)];
        let message = rule.message.as_ref().map(|m| fill(self.pick(m), &values));
        let note = rule.note.as_deref().map(|n| fill(n, &values));
        if let Some(message) = message {
            self.say_text(message);
        }
        self.note(note.as_deref());
    }

    fn navigation(&mut self) {
        let trigger_url = self.event.trigger.last_visited_url.as_deref();
        if let Some(url) = trigger_url.or(self.event.url.as_deref()) {
            // On another page the same question is a new one, not a sign of being stuck.
            if self.state.url.as_deref() != Some(url.trim()) {
                self.state.last_answer = None;
                self.state.repeats = 0;
            }
            self.state.remember_url(url);
        }
    }

    fn action(&mut self) {
        let name = self
            .event
            .trigger
            .action
            .as_deref()
            .unwrap_or_default()
            .trim();
        let values = [("action", name)];
        match self.playbook.actions.get(&normalise(name)) {
            Some(reaction) => {
                let note = reaction.note.as_deref().map(|n| fill(n, &values));
                let message = reaction
                    .message
                    .as_ref()
                    .map(|m| fill(self.pick(m), &values));
                self.note(note.as_deref());
                if let Some(message) = message {
                    self.say_text(message);
                }
            }
            None => {
                let template = self.playbook.texts.unknown_action_note.as_deref();
                let note = fill(template.unwrap_or(DEFAULT_UNKNOWN_ACTION), &values);
                self.note(Some(&note));
            }
        }
    }

    /// Runs the hook for `id`, if any; returns whether there was one.
    pub(super) fn hook(&mut self, on: HookOn, id: Option<&str>) -> bool {
        if self.participant() == Some(&ParticipantType::Bot) {
            return true;
        }
        let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) else {
            return false;
        };
        let Some(hook) = self.playbook.hooks.get(&(on, normalise(id))) else {
            return false;
        };
        if self.may_talk() {
            self.say(hook.message.as_ref());
        }
        self.note(hook.note.as_deref());
        if hook.escalate {
            let what = match on {
                HookOn::MenuStep => "menu step",
                HookOn::Answer => "answer",
            };
            self.escalate(EscalationReason::Hook, &format!("{what} `{id}`"));
        }
        true
    }

    fn engagement_completed(&mut self) {
        if self.completed_owner != Owner::Human || self.human {
            return;
        }
        self.state.misses = 0;
        let completed = self.event.trigger.engagement.as_ref();
        let outcome = completed
            .and_then(|e| e.outcome_type.as_deref())
            .unwrap_or_default();
        let then = match self.playbook.agent_outcomes.get(&normalise(outcome)) {
            Some(rule) => {
                self.say(rule.message.as_ref());
                if let Some(note) = &rule.note {
                    let reason = completed.and_then(|e| e.reason.as_deref()).unwrap_or("-");
                    self.note(Some(&fill(
                        note,
                        &[("outcome", outcome.trim()), ("reason", reason)],
                    )));
                }
                rule.then
            }
            None => AfterAgent::Closing,
        };
        match (then, &self.playbook.closing) {
            (AfterAgent::Closing, Some(closing)) => {
                self.say(Some(&closing.question));
                self.state.phase = Phase::Closing;
            }
            (AfterAgent::Closing | AfterAgent::Answer, _) => self.state.phase = Phase::Answering,
            (AfterAgent::Escalate, _) => {
                // The agent who was asked for has left: this is a new request for help.
                self.state.phase = Phase::Answering;
                let outcome = if outcome.trim().is_empty() {
                    "-"
                } else {
                    outcome.trim()
                };
                self.escalate(
                    EscalationReason::AgentLeft,
                    &format!("the agent left without resolving the request (outcome {outcome})"),
                );
            }
        }
    }

    /// Reports whether the completed conversation was handled without a human: no escalation,
    /// no message from an agent and no `needsHelp` (unknown without the conversation's
    /// context).
    fn conversation_completed(&mut self) {
        let Some(conversation) = &self.event.conversation else {
            self.signals.push(Signal::Completed(Containment::Unknown));
            return;
        };
        let human_wrote = self.event.turns.iter().any(|t| {
            matches!(
                t.participant_type,
                Some(ParticipantType::Agent | ParticipantType::ExternalAgent)
            )
        });
        let escalated = self.state.escalations > 0
            || self.state.phase == Phase::Human
            || conversation.needs_help == Some(true)
            || human_wrote;
        self.signals.push(Signal::Completed(if escalated {
            Containment::Escalated
        } else {
            Containment::Contained
        }));
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
