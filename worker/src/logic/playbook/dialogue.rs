//! Customer messages: greeting, request collection, auto-answers, escalation and closing.
//!
//! Order of the checks for a customer message (messages from agents and bots never get an
//! answer):
//! 1. a human agent is engaged: stay silent (or suggest answers to the agent, or keep answering,
//!    as `conversation.during_agent` says);
//! 2. the customer asks for a human: escalate (once; later requests get the waiting message);
//! 3. closing phases: "not resolved" escalates again, "resolved" leads to feedback, feedback
//!    leads to thanks and goodbye;
//! 4. otherwise greet on the first message, answer from the knowledge base, ask for the request
//!    when it is vague, or count a misunderstanding and escalate after too many in a row.

use shared::event::ParticipantType;

use super::engine::Turn;
use super::format::DuringAgent;
use super::matching::{Match, Words, best_match};
use super::state::Phase;
use super::validate::fill;

const DEFAULT_ASSIST: &str = "Suggested answer ({id}): {answer}";

impl Turn<'_> {
    /// Handles a `MESSAGE` trigger.
    pub(super) fn message(&mut self) {
        if self.event.trigger.participant_type != Some(ParticipantType::Customer) {
            return;
        }
        let texts: Vec<String> = self
            .event
            .trigger_texts()
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string)
            .collect();
        let Some(last) = texts.first().cloned() else {
            return;
        };
        let pb = self.playbook;
        let words: Vec<Words> = texts.iter().map(|t| Words::new(t, &pb.filler)).collect();
        let matched = best_match(&pb.patterns, &words, pb.threshold);
        if self.human_engaged() {
            match pb.during_agent {
                DuringAgent::Silent => {
                    self.state.phase = Phase::Human;
                    return;
                }
                DuringAgent::Assist => {
                    self.state.phase = Phase::Human;
                    if let Some(m) = matched {
                        let answer = self.answer_text(m);
                        let id = pb.knowledge[m.index].id.clone();
                        let template = pb.texts.assist_note.as_deref().unwrap_or(DEFAULT_ASSIST);
                        let note = fill(template, &[("id", &id), ("answer", &answer)]);
                        self.note(Some(&note));
                    }
                    return;
                }
                DuringAgent::Active => {}
            }
        }
        self.converse(&last, &words, matched);
    }

    fn converse(&mut self, last: &str, words: &[Words], matched: Option<Match>) {
        let pb = self.playbook;
        let waiting = self.waiting_for_agent();
        let found = |phrases: &[super::matching::Phrase]| {
            phrases.iter().any(|p| words.iter().any(|w| p.found_in(w)))
        };
        if found(&pb.escalation_phrases) {
            if waiting {
                self.say(pb.texts.waiting_message.as_deref());
            } else {
                self.escalate("the customer asked for a human agent");
            }
            return;
        }
        match self.state.phase {
            Phase::Closing => {
                if let Some(closing) = &pb.closing {
                    if found(&closing.no) {
                        self.escalate("the customer says the issue is not resolved");
                        return;
                    }
                    if found(&closing.yes) {
                        match &closing.feedback_question {
                            Some(question) => {
                                self.say(Some(question));
                                self.state.phase = Phase::Feedback;
                            }
                            None => self.feedback_received(),
                        }
                        return;
                    }
                }
                // Anything else is a new request, handled below.
            }
            Phase::Feedback => {
                self.feedback_received();
                return;
            }
            Phase::Human if waiting => {
                // Waiting for an agent: answer what can be answered, otherwise let them come.
                if let Some(m) = matched {
                    self.give_answer(m);
                }
                return;
            }
            _ => {}
        }

        let first = self.state.phase == Phase::New && !self.bot_spoke_before();
        if first {
            self.say(pb.texts.greeting.as_deref());
        }
        if let Some(m) = matched {
            if self.state.request.is_none() {
                self.state.remember_request(last);
            }
            self.give_answer(m);
            self.state.phase = Phase::Answering;
            self.state.misses = 0;
            return;
        }
        let vague = words.iter().all(|w| w.meaningful() < pb.vague_below);
        if first && vague {
            self.say(pb.texts.ask_request.as_deref());
            self.state.phase = Phase::Collecting;
            return;
        }
        if !vague && self.state.request.is_none() {
            self.state.remember_request(last);
        }
        self.state.add_miss();
        let limit = pb.after_misunderstandings;
        if limit > 0 && self.state.misses >= limit {
            let misses = self.state.misses;
            self.escalate(&format!(
                "the bot did not understand {misses} messages in a row"
            ));
            return;
        }
        if vague {
            self.say(pb.texts.ask_details.as_deref());
        } else {
            self.say(pb.texts.not_understood.as_deref());
        }
        // A vague request is still being collected; anything else was a real attempt.
        let collecting = vague && matches!(self.state.phase, Phase::New | Phase::Collecting);
        self.state.phase = if collecting {
            Phase::Collecting
        } else {
            Phase::Answering
        };
    }

    /// The knowledge-base answer for the customer's current page.
    fn answer_text(&self, m: Match) -> String {
        let entry = &self.playbook.knowledge[m.index];
        let url = self.current_url().unwrap_or_default();
        entry
            .variants
            .iter()
            .find(|(prefix, _)| url.starts_with(prefix.as_str()))
            .map_or_else(|| entry.answer.clone(), |(_, answer)| answer.clone())
    }

    fn give_answer(&mut self, m: Match) {
        let answer = self.answer_text(m);
        self.say(Some(&answer));
        self.state.last_answer = Some(self.playbook.knowledge[m.index].id.clone());
    }

    /// Whether a bot already wrote in this conversation (the state may have been lost).
    fn bot_spoke_before(&self) -> bool {
        self.event
            .turns
            .iter()
            .any(|t| t.participant_type == Some(ParticipantType::Bot))
    }
}
