//! Request details (`[[details]]`): values such as an order number captured from customer
//! messages into the state, asked for when a knowledge answer requires them, and filled into
//! the answer's `{placeholders}` and the agents' note.

use super::engine::Turn;
use super::validate::fill;

impl Turn<'_> {
    /// Captures every detail found in the customer's texts (the verbatim one first). Right
    /// after the bot asked for details, their `reply_pattern` is tried too.
    pub(super) fn capture_details(&mut self, texts: &[String]) {
        let pb = self.playbook;
        let asked = self.state.pending.is_some();
        for detail in &pb.details {
            let patterns = std::iter::once(&detail.pattern)
                .chain(detail.reply_pattern.as_ref().filter(|_| asked));
            let value = patterns
                .flat_map(|pattern| texts.iter().map(move |text| (pattern, text)))
                .find_map(|(pattern, text)| {
                    let captures = pattern.captures(text)?;
                    let value = captures.get(1).or_else(|| captures.get(0))?;
                    Some(value.as_str().trim().to_string())
                })
                .filter(|value| !value.is_empty());
            if let Some(value) = value {
                self.state.remember_detail(&detail.id, &value);
            }
        }
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
            self.say(pb.details[detail].ask.as_ref());
            self.state.pending = Some(pb.knowledge[index].id.clone());
            return;
        }
        let answer = self.answer_text(index);
        self.say_text(answer);
        self.state.pending = None;
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
