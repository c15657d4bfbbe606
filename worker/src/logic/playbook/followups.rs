//! What keeps a conversation going where a single answer is not enough: several requests in
//! one message, a clarifying question between close candidates, a customer asking the same
//! thing again (stuck: a human is offered, then called), short replies to the bot's own
//! questions ("yes" to a colleague, "no" to anything else), and ending the conversation.

use super::closing::{Resolution, resolution};
use super::engine::Turn;
use super::matching::Words;
use super::outcomes::EscalationReason;
use super::state::{Asked, Phase};
use super::understand::{Reading, Verdict};
use super::validate::fill;

/// Longest bare "yes" to "anything else?" (in words) that means "yes, something else".
const BARE_YES: usize = 2;

impl Turn<'_> {
    /// The short name of knowledge entry `index` in the reply language.
    fn topic(&self, index: usize) -> String {
        let entry = &self.playbook.knowledge[index];
        entry
            .topic
            .as_ref()
            .map_or_else(|| entry.id.clone(), |t| self.pick(t).to_string())
    }

    /// Answers each of several requests (up to `matching.max_requests`; with more, asks which
    /// first when the playbook can ask).
    pub(super) fn answer_several(&mut self, list: &[(usize, f32)]) {
        let pb = self.playbook;
        let max = pb.understanding.max_requests;
        if list.len() > max
            && let Some(text) = &pb.texts.which_first
        {
            let topics: Vec<String> = list.iter().map(|(i, _)| self.topic(*i)).collect();
            let topics = topics.join(", ");
            self.chose("clarify", || {
                format!("{} requests in one message", list.len())
            });
            let question = fill(self.pick(text), &[("topics", &topics)]);
            self.say_text(question);
            self.state.asked = Some(Asked::Which);
            return;
        }
        self.trace_note(|| format!("{} requests in one message, each answered", list.len()));
        for (index, _) in list.iter().take(max) {
            self.give_answer(*index);
        }
        self.state.repeats = 0;
    }

    /// Asks which of two close candidates the customer means.
    pub(super) fn clarify(&mut self, first: usize, second: usize) {
        let Some(text) = &self.playbook.texts.clarify else {
            return;
        };
        let (a, b) = (self.topic(first), self.topic(second));
        let ids = (
            self.playbook.knowledge[first].id.clone(),
            self.playbook.knowledge[second].id.clone(),
        );
        self.chose("clarify", || {
            format!("close candidates `{}` and `{}`", ids.0, ids.1)
        });
        let question = fill(self.pick(text), &[("first", &a), ("second", &b)]);
        self.say_text(question);
        self.state.asked = Some(Asked::Which);
        self.state.misses = 0;
        if self.state.phase == Phase::New {
            self.state.phase = Phase::Collecting;
        }
    }

    /// Offers a colleague (a stuck or unhappy customer).
    pub(super) fn offer_human(&mut self) {
        let pb = self.playbook;
        self.chose("offer_human", || "the customer may need a colleague".into());
        self.say(
            pb.texts
                .offer_human
                .as_ref()
                .or(pb.texts.not_known.as_ref()),
        );
        self.state.asked = Some(Asked::Human);
        if matches!(self.state.phase, Phase::New | Phase::Collecting) {
            self.state.phase = Phase::Answering;
        }
    }

    /// The customer asks again for the answer just given: the answer did not help. A human is
    /// offered the time before `escalation.after_repeats`, and called at it. Returns whether
    /// the repetition was handled (no answer to give).
    pub(super) fn stuck(&mut self, index: usize) -> bool {
        let pb = self.playbook;
        let id = &pb.knowledge[index].id;
        let upset = self.reading.as_ref().is_some_and(|r| r.tone.upset());
        // Even a follow-up on the same topic ("how many days do I have to do that?") would get
        // the same text again: a colleague is the better offer.
        if pb.after_repeats == 0 || self.state.last_answer.as_deref() != Some(id.as_str()) {
            self.state.repeats = 0;
            return false;
        }
        self.state.repeats = self.state.repeats.saturating_add(1);
        let asks = self.state.repeats.saturating_add(1);
        // Upset as well: the offer is skipped.
        if asks >= pb.after_repeats || (upset && asks + 1 >= pb.after_repeats) {
            self.escalate(
                EscalationReason::Stuck,
                &format!("the customer asked the same question {asks} times ({id})"),
            );
            return true;
        }
        if asks + 1 == pb.after_repeats {
            self.offer_human();
            return true;
        }
        false
    }

    /// A short reply to what the bot asked last: "yes" to a colleague calls one, "no" leaves
    /// it; "no" (or thanks) to "anything else?" says goodbye. Returns whether the message was
    /// such a reply.
    pub(super) fn follow_up(
        &mut self,
        asked: Option<Asked>,
        words: &[Words],
        reading: &Reading,
    ) -> bool {
        let pb = self.playbook;
        let (Some(asked), Some(closing)) = (asked, &pb.closing) else {
            return false;
        };
        let answer = words
            .iter()
            .find_map(|w| resolution(w, closing, &pb.negations));
        // Offered a colleague, the customer is still upset, or asks the same again without
        // saying no: hand over.
        let same = matches!(reading.verdict, Verdict::Knowledge(i, _)
            if self.state.last_answer.as_deref() == Some(pb.knowledge[i].id.as_str()));
        let declined = answer == Some(Resolution::NotResolved);
        if asked == Asked::Human && (reading.tone.upset() || (same && !declined)) {
            self.escalate(
                EscalationReason::Stuck,
                "the customer is still stuck after the offer of a colleague",
            );
            return true;
        }
        if reading.asks_knowledge() {
            return false;
        }
        let short = words.iter().all(|w| w.all().len() <= BARE_YES);
        let farewell = matches!(reading.verdict, Verdict::Intent(i, _)
            if pb.intents[i].anything_else || pb.intents[i].ends || pb.intents[i].redirect == Some(false));
        match (asked, answer) {
            (Asked::Human, Some(Resolution::Resolved)) => {
                self.escalate(
                    EscalationReason::CustomerRequest,
                    "the customer accepted the offer of a colleague",
                );
                true
            }
            (Asked::Human, Some(Resolution::NotResolved)) => {
                self.chose("ack", || "the customer does not want a colleague".into());
                self.say(pb.texts.redirect.as_ref());
                true
            }
            (Asked::AnythingElse, Some(Resolution::Resolved)) if short && !farewell => {
                self.chose("ack", || "there is something else".into());
                self.say(pb.texts.redirect.as_ref());
                true
            }
            (Asked::AnythingElse, Some(_)) => {
                self.chose("goodbye", || "nothing else".into());
                self.say(closing.goodbye.as_ref());
                self.end_conversation();
                true
            }
            _ => false,
        }
    }

    /// The conversation is over: no waiting answer, no more need of a human.
    pub(super) fn end_conversation(&mut self) {
        if self.state.phase == Phase::Human || self.needs_help() {
            self.clear_needs_help();
        }
        self.state.pending = None;
        self.state.phase = Phase::Done;
    }
}
