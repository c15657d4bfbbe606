//! The decision engine: one event in, one reply out, chosen by trigger type.
//!
//! The engine is a pure function of the playbook and the event: the state comes in with
//! `conversation.custom` and goes out with the reply. Customer messages are handled in
//! [`super::dialogue`], escalation in `super::escalation`; this module handles every other
//! trigger and the shared helpers (agent presence, URLs). Rules that hold for every trigger:
//! - silent triggers never produce `NEEDS_HELP` (the escalation becomes a note);
//! - `CONVERSATION_COMPLETED`, `Conversation Update` and unknown triggers change nothing;
//! - the state is only sent back when it changed, merged with the user's own keys.

use shared::answer::{Action, Reply};
use shared::event::{EngagementType, Event, ParticipantType, Status, TriggerType};
use shared::tolerant::normalise;

use super::Playbook;
use super::format::{AfterAgent, DuringAgent, HookOn};
use super::matching::Words;
use super::state::{self, Phase, State};
use super::validate::fill;

const DEFAULT_UNKNOWN_ACTION: &str =
    "The playbook has no entry for the action `{action}`; nothing was done.";

/// Decides the reply to `event`.
pub(super) fn decide(playbook: &Playbook, event: &Event) -> Reply {
    let custom = event.conversation_custom();
    let before = State::read(custom);
    let mut turn = Turn {
        playbook,
        event,
        state: before.clone(),
        actions: Vec::new(),
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
        TriggerType::ConversationUpdate
        | TriggerType::ConversationCompleted
        | TriggerType::Other(_) => {}
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
    reply
}

/// The work on one event: the playbook, the event, the evolving state and the actions so far.
pub(super) struct Turn<'a> {
    pub playbook: &'a Playbook,
    pub event: &'a Event,
    pub state: State,
    pub actions: Vec<Action>,
}

impl Turn<'_> {
    /// Sends `text` to the customer, if set.
    pub fn say(&mut self, text: Option<&str>) {
        if let Some(text) = text {
            self.actions.push(Action::message(text));
        }
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

    /// Whether a human agent's engagement (other than `except`) is in progress.
    fn human_engaged_except(&self, except: Option<&str>) -> bool {
        self.event.engagements.iter().any(|e| {
            matches!(
                e.kind,
                Some(EngagementType::Agent | EngagementType::ExternalAgent)
            ) && e.status == Some(Status::InProgress)
                && (except.is_none() || e.pid.as_deref() != except)
        })
    }

    /// Whether a human agent is engaged right now (the engagement this event reports as
    /// completed no longer counts, whatever its listed status).
    pub fn human_engaged(&self) -> bool {
        let completed = match self.event.trigger.kind {
            TriggerType::EngagementCompleted => self
                .event
                .trigger
                .engagement
                .as_ref()
                .and_then(|e| e.pid.as_deref()),
            _ => None,
        };
        self.human_engaged_except(completed)
    }

    /// Whether the bot escalated and the conversation still needs help (not yet answered by an
    /// agent; an unknown flag counts as still needing help).
    pub fn waiting_for_agent(&self) -> bool {
        self.state.phase == Phase::Human
            && self.event.conversation.as_ref().and_then(|c| c.needs_help) != Some(false)
    }

    /// Whether the bot may talk to the customer now (no agent, or the playbook says so).
    pub fn may_talk(&self) -> bool {
        !self.human_engaged() || self.playbook.during_agent == DuringAgent::Active
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

    /// Thanks, goodbye, done (feedback arrived in the closing phases).
    pub fn feedback_received(&mut self) {
        if let Some(closing) = &self.playbook.closing {
            self.say(closing.thanks.as_deref());
            self.say(closing.goodbye.as_deref());
        }
        self.state.phase = Phase::Done;
    }

    fn in_closing(&self) -> bool {
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
        let message = rule.message.as_deref().map(|m| fill(m, &values));
        let note = rule.note.as_deref().map(|n| fill(n, &values));
        self.say(message.as_deref());
        self.note(note.as_deref());
    }

    fn navigation(&mut self) {
        let trigger_url = self.event.trigger.last_visited_url.as_deref();
        if let Some(url) = trigger_url.or(self.event.url.as_deref()) {
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
                let message = reaction.message.as_deref().map(|m| fill(m, &values));
                self.note(note.as_deref());
                self.say(message.as_deref());
            }
            None => {
                let template = self.playbook.texts.unknown_action_note.as_deref();
                let note = fill(template.unwrap_or(DEFAULT_UNKNOWN_ACTION), &values);
                self.note(Some(&note));
            }
        }
    }

    /// Runs the hook for `id`, if any; returns whether there was one.
    fn hook(&mut self, on: HookOn, id: Option<&str>) -> bool {
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
            self.say(hook.message.as_deref());
        }
        self.note(hook.note.as_deref());
        if hook.escalate {
            let what = match on {
                HookOn::MenuStep => "menu step",
                HookOn::Answer => "answer",
            };
            self.escalate(&format!("{what} `{id}`"));
        }
        true
    }

    fn answer_trigger(&mut self) {
        let id = self.event.trigger.external_id.as_deref();
        if !self.hook(HookOn::Answer, id)
            && self.in_closing()
            && matches!(self.participant(), None | Some(ParticipantType::Customer))
        {
            self.feedback_received();
        }
    }

    fn review(&mut self) {
        let trigger = &self.event.trigger;
        if !matches!(trigger.review_type, None | Some(ParticipantType::Customer)) {
            return;
        }
        let answer = trigger.answer_name.as_deref().unwrap_or_default();
        let reason = trigger.review_reason.as_deref().unwrap_or_default();
        let filler = &self.playbook.filler;
        let texts = [Words::new(answer, filler), Words::new(reason, filler)];
        let negative = self
            .playbook
            .negative_reviews
            .iter()
            .any(|p| texts.iter().any(|t| p.found_in(t)));
        if negative {
            let detail = [answer, reason]
                .into_iter()
                .filter(|t| !t.trim().is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            self.escalate(&format!("negative review ({detail})"));
        } else if self.in_closing() {
            self.feedback_received();
        }
    }

    fn engagement_completed(&mut self) {
        let completed = self.event.trigger.engagement.as_ref();
        let human = matches!(
            completed.and_then(|e| e.kind.as_ref()),
            None | Some(EngagementType::Agent | EngagementType::ExternalAgent)
        );
        if !human || self.human_engaged() {
            return;
        }
        self.state.misses = 0;
        let outcome = completed
            .and_then(|e| e.outcome_type.as_deref())
            .unwrap_or_default();
        let then = match self.playbook.agent_outcomes.get(&normalise(outcome)) {
            Some(rule) => {
                self.say(rule.message.as_deref());
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
                let question = closing.question.clone();
                self.say(Some(&question));
                self.state.phase = Phase::Closing;
            }
            (AfterAgent::Closing | AfterAgent::Answer, _) => self.state.phase = Phase::Answering,
            (AfterAgent::Escalate, _) => {
                // The agent who was asked for has left: this is a new request for help.
                self.state.phase = Phase::Answering;
                self.escalate(&format!(
                    "the agent left without resolving the request (outcome {})",
                    if outcome.trim().is_empty() {
                        "-"
                    } else {
                        outcome.trim()
                    }
                ));
            }
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
