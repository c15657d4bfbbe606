//! Customer messages: greeting, request collection, auto-answers, small talk, escalation and the
//! closing.
//!
//! Order of the checks for a customer message (messages from agents and bots never get an
//! answer):
//! 1. a human agent is engaged: stay silent (or suggest answers to the agent, or keep answering,
//!    as `conversation.during_agent` says);
//! 2. request details (`[[details]]`) found in the message are captured into the state;
//! 3. the customer asks for a human: escalate (once; later requests get the waiting message).
//!    A request under a negation ("no need for a human, just tell me ...") does not count;
//! 4. closing phases: "not resolved" escalates again, "resolved" leads to feedback, feedback
//!    (with a rating, if any) leads to thanks and goodbye;
//! 5. an answer waiting for details the bot asked for is given once they are known;
//! 6. otherwise greet on the first message, then: a knowledge-base answer; else a small-talk or
//!    off-topic answer (with the redirect to what the bot can do; never an escalation); else ask
//!    for the request when it is vague, or count a misunderstanding and escalate after too many
//!    in a row. This is the auto-answer step, where the generative step may answer instead.

use shared::event::ParticipantType;

use super::decision::{AnswerStep, Generated, Signal, StepKind};
use super::engine::Turn;
use super::format::{DuringAgent, IntentKind};
use super::matching::{Found, Match, Words, best_match};
use super::outcomes::EscalationReason;
use super::state::Phase;
use super::validate::fill;

const DEFAULT_ASSIST: &str = "Suggested answer ({id}): {answer}";
/// How many words beyond its own an intent phrase may be spread over within a clause.
const INTENT_SLACK: usize = 3;

impl Turn<'_> {
    /// Handles a `MESSAGE` trigger.
    pub(super) fn message(&mut self) {
        if self.event.trigger.participant_type != Some(ParticipantType::Customer) {
            return;
        }
        // The verbatim, translated and agent-language texts are often the same: match once.
        let mut texts: Vec<String> = Vec::with_capacity(3);
        for text in self.event.trigger_texts() {
            if !text.trim().is_empty() && !texts.iter().any(|t| t == text) {
                texts.push(text.to_string());
            }
        }
        let Some(last) = texts.first().cloned() else {
            return;
        };
        let pb = self.playbook;
        let words = self.words(&texts);
        let matched = best_match(&pb.patterns, &words, pb.threshold, &pb.refusals);
        if self.human {
            match pb.during_agent {
                DuringAgent::Silent => {
                    self.state.phase = Phase::Human;
                    return;
                }
                DuringAgent::Assist => {
                    self.state.phase = Phase::Human;
                    if let Some(m) = matched {
                        let entry = &pb.knowledge[m.index];
                        let template = pb.texts.assist_note.as_deref().unwrap_or(DEFAULT_ASSIST);
                        let answer = self.fill_details(entry.answer.default_text());
                        let note = fill(template, &[("id", &entry.id), ("answer", &answer)]);
                        self.note(Some(&note));
                    }
                    return;
                }
                DuringAgent::Active => {}
            }
        }
        self.capture_details(&texts);
        self.converse(&last, &words, matched);
    }

    fn converse(&mut self, last: &str, words: &[Words], matched: Option<Match>) {
        let pb = self.playbook;
        let waiting = self.waiting_for_agent();
        if self.asks_for_human(words) {
            if waiting {
                self.say(pb.texts.waiting_message.as_ref());
            } else {
                self.escalate(
                    EscalationReason::CustomerRequest,
                    "the customer asked for a human agent",
                );
            }
            return;
        }
        // After the closing question, anything but an answer is a new request, handled below.
        if self.state.phase == Phase::Closing && self.closing_answer(words) {
            return;
        }
        match self.state.phase {
            Phase::Feedback => {
                self.feedback(words);
                return;
            }
            Phase::Human if waiting => {
                // Waiting for an agent: answer what can be answered, otherwise let them come.
                if let Some(m) = matched {
                    self.give_answer(m.index);
                }
                return;
            }
            _ => {}
        }
        if matched.is_none() && self.answer_pending() {
            return;
        }

        let first = self.state.phase == Phase::New && !self.bot_spoke_before();
        if first {
            self.say(pb.texts.greeting.as_ref());
        }
        if let Some(m) = matched {
            if self.state.request.is_none() {
                self.state.remember_request(last);
            }
            // An entry that needs a detail first asks for it: the model does not answer
            // before the playbook has what the answer depends on.
            let generated =
                self.missing_detail(m.index).is_none() && self.use_generated(StepKind::Knowledge);
            if !generated {
                self.give_answer(m.index);
            } else if matches!(self.generated, Some(Generated::Escalate(_))) {
                return; // the escalation set the phase: it must not be undone
            }
            self.state.phase = Phase::Answering;
            self.state.misses = 0;
            return;
        }
        if let Some(intent) = self.best_intent(words) {
            if !self.use_generated(StepKind::Intent) {
                self.intent_answer(intent);
            }
            return;
        }
        let vague = words.iter().all(|w| w.meaningful() < pb.vague_below);
        if first && vague {
            self.say(pb.texts.ask_request.as_ref());
            self.state.phase = Phase::Collecting;
            return;
        }
        if !vague && self.state.request.is_none() {
            self.state.remember_request(last);
        }
        if self.use_generated(StepKind::NotUnderstood) {
            return;
        }
        self.misunderstood(vague);
    }

    /// Whether the customer asks for a human (not under a negation).
    fn asks_for_human(&self, words: &[Words]) -> bool {
        let pb = self.playbook;
        pb.escalation_phrases
            .iter()
            .any(|p| words.iter().any(|w| p.find(w, &pb.negations) == Found::Yes))
    }

    /// Counts a misunderstanding: ask for details or to rephrase, or escalate after too many.
    fn misunderstood(&mut self, vague: bool) {
        let pb = self.playbook;
        self.state.add_miss();
        let limit = pb.after_misunderstandings;
        if limit > 0 && self.state.misses >= limit {
            let misses = self.state.misses;
            self.escalate(
                EscalationReason::Misunderstanding,
                &format!("the bot did not understand {misses} messages in a row"),
            );
            return;
        }
        if vague {
            self.say(pb.texts.ask_details.as_ref());
        } else {
            self.say(pb.texts.not_understood.as_ref());
        }
        // A vague request is still being collected; anything else was a real attempt.
        let collecting = vague && matches!(self.state.phase, Phase::New | Phase::Collecting);
        self.state.phase = if collecting {
            Phase::Collecting
        } else {
            Phase::Answering
        };
    }

    /// Marks the auto-answer step and, when the generative step answered, uses its answer
    /// instead of the playbook's; returns whether it did.
    fn use_generated(&mut self, kind: StepKind) -> bool {
        self.answer_step = Some(AnswerStep {
            kind,
            language: self.language.clone(),
        });
        match self.generated {
            None => false,
            Some(Generated::Answer(text)) => {
                self.say_text(text.clone());
                self.state.phase = Phase::Answering;
                self.state.misses = 0;
                self.state.pending = None;
                true
            }
            Some(Generated::Escalate(reason)) => {
                let reason = format!("the assistant asked for a human ({reason})");
                self.escalate(EscalationReason::Generative, &reason);
                true
            }
            Some(Generated::Unanswered) if kind == StepKind::NotUnderstood => {
                // Not the customer's fault: no misunderstanding is counted, and the bot says
                // what it can help with instead of asking to rephrase.
                let pb = self.playbook;
                self.say(
                    pb.texts
                        .redirect
                        .as_ref()
                        .or(pb.texts.not_understood.as_ref()),
                );
                if matches!(self.state.phase, Phase::New | Phase::Collecting) {
                    self.state.phase = Phase::Collecting;
                } else {
                    self.state.phase = Phase::Answering;
                }
                true
            }
            Some(Generated::Unanswered) => false,
        }
    }

    /// The small-talk or off-topic intent whose phrase matches the most words in one clause.
    fn best_intent(&self, words: &[Words]) -> Option<usize> {
        let pb = self.playbook;
        let mut best: Option<(usize, usize)> = None;
        for (index, intent) in pb.intents.iter().enumerate() {
            for phrase in &intent.phrases {
                let span = Some(phrase.len() + INTENT_SLACK);
                let found = words
                    .iter()
                    .any(|w| !phrase.occurrences(w, span, &pb.negations).is_empty());
                if found && best.is_none_or(|(_, size)| phrase.len() > size) {
                    best = Some((index, phrase.len()));
                }
            }
        }
        best.map(|(index, _)| index)
    }

    /// Answers an intent: its answer, then the redirect after off-topic requests and after
    /// small talk before any request (unless the intent says otherwise). Never escalates, never
    /// counts as misunderstood.
    fn intent_answer(&mut self, index: usize) {
        let pb = self.playbook;
        let intent = &pb.intents[index];
        self.say(Some(&intent.answer));
        let before_request = matches!(self.state.phase, Phase::New | Phase::Collecting);
        let redirect = intent
            .redirect
            .unwrap_or(intent.kind == IntentKind::OffTopic || before_request);
        if redirect {
            self.say(pb.texts.redirect.as_ref());
        }
        if self.state.phase == Phase::New {
            self.state.phase = Phase::Collecting;
        }
        self.signals.push(Signal::Intent(intent.kind));
    }

    /// Whether a bot already wrote in this conversation (the state may have been lost).
    fn bot_spoke_before(&self) -> bool {
        self.event
            .turns
            .iter()
            .any(|t| t.participant_type == Some(ParticipantType::Bot))
    }
}
