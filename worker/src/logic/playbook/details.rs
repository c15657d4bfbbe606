//! Request details (`[[details]]`): values such as an order number captured from customer
//! messages into the state (by a regular expression or by their shape and context, see
//! [`super::entities`]), asked for when a knowledge answer requires them, filled into the
//! answer's `{placeholders}` and the agents' note; a customer who does not have one (a guest
//! checkout) is offered another way.

use super::engine::Turn;
use super::entities::find_number;
use super::matching::Words;
use super::outcomes::EscalationReason;
use super::understand::Cues;
use super::validate::fill;

/// How a detail's value is found in a message.
#[derive(Debug, Clone)]
pub enum Capture {
    /// A regular expression (its first group, or the whole match); `reply_pattern` is also
    /// tried right after the bot asked.
    Pattern {
        pattern: regex::Regex,
        reply_pattern: Option<regex::Regex>,
    },
    /// A number of `min..=max` digits, announced by a context word or asked for.
    Number { min: usize, max: usize },
}

impl Turn<'_> {
    /// Captures every detail found in the customer's texts (the verbatim one first). Right
    /// after the bot asked for a detail, a bare value counts too. Returns whether a detail the
    /// waiting answer asked for was given.
    pub(super) fn capture_details(&mut self, texts: &[String]) -> bool {
        let pb = self.playbook;
        let mut answered = false;
        for (index, detail) in pb.details.iter().enumerate() {
            let asked = self.asked_for(index);
            let value = texts.iter().find_map(|text| match &detail.capture {
                Capture::Pattern {
                    pattern,
                    reply_pattern,
                } => std::iter::once(pattern)
                    .chain(reply_pattern.as_ref().filter(|_| asked))
                    .find_map(|pattern| {
                        let captures = pattern.captures(text)?;
                        let value = captures.get(1).or_else(|| captures.get(0))?;
                        Some(value.as_str().trim().to_string())
                    })
                    .filter(|value| !value.is_empty()),
                Capture::Number { min, max } => {
                    find_number(text, *min, *max, &detail.context, asked)
                }
            });
            if let Some(value) = value {
                self.trace_note(|| format!("captured the detail `{}`: {value}", detail.id));
                self.state.remember_detail(&detail.id, &value);
                answered |= asked;
            }
        }
        answered
    }

    /// Whether the bot's last question asked for detail `index` (an answer waits for it).
    fn asked_for(&self, index: usize) -> bool {
        let pb = self.playbook;
        let Some(pending) = &self.state.pending else {
            return false;
        };
        pb.knowledge
            .iter()
            .find(|e| &e.id == pending)
            .is_some_and(|e| e.requires.contains(&index))
    }

    /// The customer says they do not have a detail the waiting answer needs ("I ordered as a
    /// guest"): the detail's `without_answer` and a colleague. Returns whether it was so.
    pub(super) fn without_detail(&mut self, words: &[Words]) -> bool {
        let pb = self.playbook;
        if self.state.pending.is_none() {
            return false;
        }
        let none = super::matching::Negations::none();
        let Some(detail) = pb.details.iter().enumerate().find_map(|(index, d)| {
            (self.asked_for(index)
                && self.state.detail(&d.id).is_none()
                && words.iter().any(|w| Cues::any(&d.without, w, &none)))
            .then_some(d)
        }) else {
            return false;
        };
        self.chose_detail("without_detail", &detail.id);
        self.say(detail.without_answer.as_ref());
        self.state.pending = None;
        let reason = format!("the customer has no {} (another way is needed)", detail.id);
        self.escalate_quietly(EscalationReason::CustomerRequest, &reason);
        true
    }

    /// Gives the answer that was waiting for details, once they are all known; returns
    /// whether it did.
    pub(super) fn answer_pending(&mut self) -> bool {
        let Some(pending) = self.state.pending.clone() else {
            return false;
        };
        let pb = self.playbook;
        let Some(index) = pb.knowledge.iter().position(|e| e.id == pending) else {
            self.state.pending = None; // the playbook changed since
            return false;
        };
        if self.missing_detail(index).is_some() {
            return false;
        }
        self.give_answer(index);
        self.state.phase = super::state::Phase::Answering;
        self.state.misses = 0;
        true
    }

    /// The first detail entry `index` requires that is not known yet.
    pub(super) fn missing_detail(&self, index: usize) -> Option<usize> {
        let pb = self.playbook;
        pb.knowledge[index]
            .requires
            .iter()
            .copied()
            .find(|d| self.state.detail(&pb.details[*d].id).is_none())
    }

    /// Answers with knowledge entry `index`, or asks for a detail it requires first.
    pub(super) fn give_answer(&mut self, index: usize) {
        let pb = self.playbook;
        if let Some(detail) = self.missing_detail(index) {
            self.chose_ask(index, detail);
            self.say(pb.details[detail].ask.as_ref());
            self.state.pending = Some(pb.knowledge[index].id.clone());
            return;
        }
        self.chose_knowledge(index);
        let answer = self.answer_text(index);
        self.say_text(answer);
        if self.state.pending.as_deref() == Some(pb.knowledge[index].id.as_str()) {
            self.state.pending = None;
        }
        self.state.last_answer = Some(pb.knowledge[index].id.clone());
    }

    /// The answer of entry `index` for the customer's page and language, details filled in.
    fn answer_text(&self, index: usize) -> String {
        let entry = &self.playbook.knowledge[index];
        let url = self.current_url().unwrap_or_default();
        let text = entry
            .variants
            .iter()
            .find(|(prefix, _)| url.starts_with(prefix.as_str()))
            .map_or(&entry.answer, |(_, answer)| answer);
        self.fill_details(self.pick(text))
    }

    /// `template` with the `{detail}` placeholders filled from the state.
    pub(super) fn fill_details(&self, template: &str) -> String {
        let values: Vec<(&str, &str)> = self
            .state
            .details
            .iter()
            .map(|(id, value)| (id.as_str(), value.as_str()))
            .collect();
        fill(template, &values)
    }

    /// The captured details for the agents' note (`order 12345, email a@b.c`), or `-`.
    pub(super) fn details_summary(&self) -> String {
        if self.state.details.is_empty() {
            return "-".into();
        }
        self.state
            .details
            .iter()
            .map(|(id, value)| format!("{id} {value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
