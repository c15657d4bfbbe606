//! Customer messages: greeting, request collection, auto-answers, small talk, escalation and the
//! closing.
//!
//! Order of the checks for a customer message (messages from agents and bots never get an
//! answer):
//! 1. the message is read once ([`Reading`]): ranked candidates with their confidence, the
//!    requests in it, tone, a presence check;
//! 2. a human agent is engaged: stay silent (or suggest answers to the agent, or keep
//!    answering, as `conversation.during_agent` says);
//! 3. request details (`[[details]]`) found in the message are captured into the state;
//! 4. the customer asks for a human: escalate (once; later requests get the waiting message).
//!    A request under a negation ("no need for a human, just tell me ...") does not count;
//! 5. closing phases: "not resolved" escalates again, "resolved" leads to feedback, feedback
//!    (with a rating, if any) leads to thanks and goodbye; a request is answered instead;
//! 6. waiting for an agent: confident answers still go out, a presence check ("anybody
//!    there?") gets one reassurance, the rest waits for the agent;
//! 7. an answer waiting for details the bot asked for is given once they are known (a customer
//!    without one is offered another way); a short reply to the bot's last question (a
//!    colleague? anything else?) is understood as such;
//! 8. otherwise the auto-answer step (greeting the first message): see [`Turn::auto_answer`].
//!    This is where the generative step may answer instead.

use shared::event::ParticipantType;

use super::decision::{AnswerStep, Generated, Signal, StepKind};
use super::engine::Turn;
use super::format::{DuringAgent, IntentKind};
use super::matching::Words;
use super::outcomes::EscalationReason;
use super::state::Phase;
use super::understand::{Class, Reading, Verdict};
use super::validate::fill;

const DEFAULT_ASSIST: &str = "Suggested answer ({id}): {answer}";
/// How many words beyond its own a request for a human may be spread over in a clause.
const HUMAN_SLACK: usize = 5;

impl Turn<'_> {
    /// Handles a `MESSAGE` trigger.
    pub(super) fn message(&mut self) {
        if self.event.trigger.participant_type != Some(ParticipantType::Customer) {
            return;
        }
        // The verbatim, translated and agent-language texts are often the same: read once.
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
        let reading = Reading::new(
            &pb.understanding,
            &pb.cues,
            &pb.refusals,
            &pb.negations,
            &texts,
            &words,
        );
        self.explain_reading(&reading, &words);
        if self.human {
            match pb.during_agent {
                DuringAgent::Silent => {
                    self.chose("silent", || "a human agent is engaged".into());
                    self.state.phase = Phase::Human;
                    return;
                }
                DuringAgent::Assist => {
                    self.state.phase = Phase::Human;
                    if let Verdict::Knowledge(index, _) = reading.verdict {
                        let entry = &pb.knowledge[index];
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
        let gave_detail = self.capture_details(&texts);
        self.reading = Some(reading.clone());
        self.converse(&last, &texts, &words, &reading, gave_detail);
    }

    fn converse(
        &mut self,
        last: &str,
        texts: &[String],
        words: &[Words],
        reading: &Reading,
        gave_detail: bool,
    ) {
        let pb = self.playbook;
        let waiting = self.waiting_for_agent();
        // What the bot asked last concerns this message only.
        let asked = self.state.asked.take();
        if self.asks_for_human(words) {
            if waiting {
                self.chose("waiting", || "asked for a human again while waiting".into());
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
        if self.state.phase == Phase::Closing && self.closing_answer(words, reading) {
            return;
        }
        match self.state.phase {
            Phase::Feedback => {
                if self.feedback(texts, words, reading) {
                    return;
                }
                // A request at the rating step: answered, and the rating still awaited.
                self.auto_answer(last, words, reading, false);
                self.state.phase = Phase::Feedback;
                return;
            }
            Phase::Human if waiting => {
                self.while_waiting(reading);
                return;
            }
            _ => {}
        }
        if self.without_detail(words) {
            return;
        }
        // The detail the waiting answer needs ("order 4417 2209") is no new request.
        if (gave_detail || !reading.asks_knowledge()) && self.answer_pending() {
            return;
        }
        if self.follow_up(asked, words, reading) {
            return;
        }
        let first = self.state.phase == Phase::New && !self.bot_spoke_before();
        if first {
            self.chose("greeting", || {
                "the first message of the conversation".into()
            });
            self.say(pb.texts.greeting.as_ref());
        }
        self.auto_answer(last, words, reading, first);
    }

    /// The auto-answer step: an apology first to an upset customer (a human when it happens
    /// again); then the knowledge answers asked for (a customer asking the same again is
    /// offered a human, then handed over), a clarifying question between close candidates,
    /// an intent (never small talk to a complaint), the request question for a vague first
    /// message, or the not-known path.
    fn auto_answer(&mut self, last: &str, words: &[Words], reading: &Reading, first: bool) {
        let pb = self.playbook;
        let upset = reading.tone.upset();
        if upset {
            self.state.upset = self.state.upset.saturating_add(1);
            self.chose("apology", || {
                format!("tone: {}", reading.tone.labels().join(", "))
            });
            self.say(pb.texts.apology.as_ref());
            let limit = pb.after_frustration;
            if limit > 0 && self.state.upset >= limit {
                self.escalate(
                    EscalationReason::Frustration,
                    "the customer is unhappy with the bot's answers",
                );
                return;
            }
        }
        if reading.asks_knowledge() && self.state.request.is_none() {
            self.state.remember_request(last);
        }
        if !reading.several.is_empty() {
            if !self.use_generated(StepKind::Knowledge) {
                self.answer_several(&reading.several);
            }
            // An escalation by the model set the phase: it must not be undone.
            if self.state.phase != Phase::Human {
                self.state.phase = Phase::Answering;
            }
            self.state.misses = 0;
            return;
        }
        match self.farewell_first(reading) {
            Verdict::Knowledge(index, _) => {
                // An entry that needs a detail first asks for it: the model does not answer
                // before the playbook has what the answer depends on.
                let generated = |turn: &mut Self| {
                    turn.missing_detail(index).is_none() && turn.use_generated(StepKind::Knowledge)
                };
                if !self.stuck(index) && !generated(self) {
                    self.give_answer(index);
                }
                if self.state.phase != Phase::Human {
                    self.state.phase = Phase::Answering;
                }
                self.state.misses = 0;
            }
            Verdict::Clarify(a, b, _, _) if pb.texts.clarify.is_some() => {
                self.clarify(a, b);
            }
            Verdict::Intent(index, _)
                if !(upset && pb.intents[index].kind == IntentKind::SmallTalk) =>
            {
                if !self.use_generated(StepKind::Intent) {
                    self.intent_answer(index);
                }
            }
            _ if upset => {
                if !self.use_generated(StepKind::NotUnderstood) {
                    self.offer_human();
                }
            }
            _ => self.not_known(last, words, reading, first),
        }
    }

    /// The message's verdict, except that a farewell ending it wins over other small talk
    /// ("muchas gracias, hasta luego" is a goodbye; "salut, comment ça va ?" is not).
    fn farewell_first(&self, reading: &Reading) -> Verdict {
        let pb = self.playbook;
        match reading.verdict {
            Verdict::Intent(index, _) if pb.intents[index].redirect == Some(false) => {
                return reading.verdict;
            }
            Verdict::Knowledge(..) | Verdict::Clarify(..) => return reading.verdict,
            _ => {}
        }
        match reading.requests.last().map(|r| r.verdict) {
            Some(Verdict::Intent(i, p)) if pb.intents[i].redirect == Some(false) => {
                Verdict::Intent(i, p)
            }
            _ => reading.verdict,
        }
    }

    /// Nothing the playbook knows: the request question for a vague first message, else the
    /// not-known path (escalating after too many in a row).
    fn not_known(&mut self, last: &str, words: &[Words], reading: &Reading, first: bool) {
        let pb = self.playbook;
        // A short message confidently outside the knowledge base ("Do you ship to Norway?") is
        // no vague request.
        let outside = matches!(reading.ranked.top(), Some((Class::NotKnown, p))
            if p >= pb.understanding.threshold)
            && words.iter().any(|w| w.meaningful() > 0);
        let vague = !outside && words.iter().all(|w| w.meaningful() < pb.vague_below);
        if first && vague {
            self.chose("ask_request", || "a vague first message".into());
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

    /// Whether the customer asks for a human: not under a negation, not followed by a refusal
    /// ("operátora nepotřebuju", "einen Menschen brauche ich nicht"), and not inside small talk
    /// about the bot ("are you a real person or a bot?").
    fn asks_for_human(&self, words: &[Words]) -> bool {
        let pb = self.playbook;
        words.iter().any(|w| {
            let about_bot = pb.cues.about_bot_before(w);
            pb.escalation_phrases.candidates(w).any(|p| {
                p.occurrences(w, Some(p.len() + HUMAN_SLACK), &pb.negations)
                    .iter()
                    .any(|o| {
                        !o.negated
                            && !pb.refusals.follows(w, o.end, &pb.negations)
                            && about_bot.is_none_or(|at| at > o.start)
                    })
            })
        })
    }

    /// Counts a message the bot cannot help with: the not-known text (or a request for details
    /// when it was vague), or a human after too many in a row.
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
            self.chose("ask_details", || "a vague message".into());
            self.say(pb.texts.ask_details.as_ref());
        } else {
            self.chose("not_known", || {
                "no knowledge entry or intent is confident enough".into()
            });
            self.say(
                pb.texts
                    .not_known
                    .as_ref()
                    .or(pb.texts.not_understood.as_ref()),
            );
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
                self.chose("generated", || "the generative step answered".into());
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
                // The model gave no usable answer: not the customer's fault, so no
                // misunderstanding is counted; the bot says plainly it cannot help with that.
                let pb = self.playbook;
                self.chose("not_known", || {
                    "the generative step gave no usable answer".into()
                });
                self.say(
                    pb.texts
                        .not_known
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

    /// Answers an intent: its answer, then the redirect after off-topic requests and after
    /// small talk before any request (unless the intent says otherwise). Never escalates, never
    /// counts as misunderstood. An intent that ends the conversation ("never mind, I found it")
    /// also stops asking for a human.
    pub(super) fn intent_answer(&mut self, index: usize) {
        let pb = self.playbook;
        let intent = &pb.intents[index];
        let confidence = self.confidence_of(super::understand::Class::Intent(index));
        self.chose_with("intent", |c| {
            c.id = Some(intent.id.clone());
            c.confidence = confidence;
            c.reason = "small talk or an off-topic request".into();
        });
        self.say(Some(&intent.answer));
        let before_request = matches!(self.state.phase, Phase::New | Phase::Collecting);
        let redirect = intent
            .redirect
            .unwrap_or(intent.kind == IntentKind::OffTopic || before_request)
            && !intent.ends;
        if redirect {
            self.say(pb.texts.redirect.as_ref());
        }
        if intent.anything_else {
            self.state.asked = Some(super::state::Asked::AnythingElse);
        }
        if intent.ends {
            self.end_conversation();
        } else if self.state.phase == Phase::New {
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

    /// Waiting for an agent: confident answers still go out, an intent that ends the
    /// conversation ends it, a presence check gets one reassurance; the rest waits.
    fn while_waiting(&mut self, reading: &Reading) {
        let pb = self.playbook;
        match reading.verdict {
            Verdict::Knowledge(index, _) => self.give_answer(index),
            Verdict::Intent(index, _)
                if pb.intents[index].ends || pb.intents[index].redirect == Some(false) =>
            {
                self.intent_answer(index)
            }
            _ if reading.presence && !self.state.reassured => {
                self.chose("waiting", || {
                    "a presence check while waiting for an agent".into()
                });
                self.say(pb.texts.waiting_message.as_ref());
                self.state.reassured = true;
            }
            _ => self.chose("silent", || "waiting for the agent".into()),
        }
    }
}
