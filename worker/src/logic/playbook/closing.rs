//! The closing: the answer to "has your issue been resolved?", the rating, thanks and goodbye,
//! and the triggers that count as feedback (ANSWER, REVIEW).
//!
//! **Yes or no.** Every `yes` and `no` phrase is looked for inside single clauses, its words
//! close together. A phrase covered by a longer one is ignored ("no" inside "no problem"), a
//! negated "yes" means "no" ("not solved"), and a message that says both is not resolved
//! ("the agent was great but my parcel is still missing"), as is a sarcastic one ("thanks for
//! nothing"). A new request is not an answer. **Ratings**: the first number of the scale in
//! the feedback (`4`, `4/5`, `4 stars`), else stars (`⭐⭐⭐⭐`, `★★★★☆`) or a rating emoji,
//! else, in a short message, the earliest `ratings` word ("excellent", "fünf", "pět").
//! A question at the rating step is answered and not taken as a rating.

use shared::answer::Action;
use shared::event::ParticipantType;

use super::Closing;
use super::decision::Signal;
use super::engine::Turn;
use super::matching::{Filler, Negations, Occurrence, Phrase, Words};
use super::outcomes::EscalationReason;
use super::state::Phase;
use super::understand::Reading;

/// How many words beyond its own a closing phrase may be spread over within a clause.
const CLOSING_SLACK: usize = 2;

/// What the customer answered to the closing question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolution {
    Resolved,
    NotResolved,
}

/// The answer in `text`, if it contains one.
pub(super) fn resolution(
    text: &Words,
    closing: &Closing,
    negations: &Negations,
) -> Option<Resolution> {
    let mut found: Vec<(Occurrence, Resolution)> = Vec::new();
    let mut collect = |phrases: &[Phrase], meaning: Resolution| {
        for phrase in phrases {
            let span = Some(phrase.len() + CLOSING_SLACK);
            for occurrence in phrase.occurrences(text, span, negations) {
                let meaning = match (occurrence.negated, meaning) {
                    (false, meaning) => Some(meaning),
                    (true, Resolution::Resolved) => Some(Resolution::NotResolved),
                    // "not no" says nothing clear.
                    (true, Resolution::NotResolved) => None,
                };
                if let Some(meaning) = meaning {
                    found.push((occurrence, meaning));
                }
            }
        }
    };
    collect(&closing.yes, Resolution::Resolved);
    collect(&closing.no, Resolution::NotResolved);
    let standing: Vec<Resolution> = found
        .iter()
        .filter(|(o, _)| !found.iter().any(|(other, _)| o.covered_by(other)))
        .map(|(_, meaning)| *meaning)
        .collect();
    // Mixed messages are not resolved.
    if standing.contains(&Resolution::NotResolved) {
        Some(Resolution::NotResolved)
    } else {
        standing.first().copied()
    }
}

/// Stars written as symbols (`⭐⭐⭐⭐`, `★★★★☆`): how many, when on the scale.
fn stars(raw: &str, scale: u8) -> Option<u8> {
    let count = raw
        .chars()
        .filter(|c| matches!(c, '⭐' | '★' | '🌟'))
        .count();
    u8::try_from(count).ok().filter(|n| (1..=scale).contains(n))
}

/// Longest message (in words) whose rating words count: in a longer one "one" is rarely a
/// rating ("one more question").
const RATING_WORDS_WITHIN: usize = 8;

/// The rating in a message (`raw` as written, and its words), if any.
pub(super) fn rating(
    raw: &str,
    text: &Words,
    closing: &Closing,
    negations: &Negations,
) -> Option<u8> {
    let scale = closing.rating_scale;
    let number = text
        .all()
        .iter()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|w| w.parse::<u8>().ok())
        .find(|n| (1..=scale).contains(n));
    if number.is_some() {
        return number;
    }
    if let Some(stars) = stars(raw, scale) {
        return Some(stars);
    }
    let symbol = closing
        .symbols
        .iter()
        .filter_map(|(rating, mark)| raw.find(mark.as_str()).map(|at| (at, *rating)))
        .min_by_key(|(at, _)| *at);
    if let Some((_, rating)) = symbol {
        return Some(rating);
    }
    if text.all().len() > RATING_WORDS_WITHIN {
        return None;
    }
    let found: Vec<(Occurrence, u8)> = closing
        .ratings
        .iter()
        .flat_map(|(rating, phrases)| phrases.iter().map(move |p| (*rating, p)))
        .flat_map(|(rating, phrase)| {
            let span = Some(phrase.len() + CLOSING_SLACK);
            phrase
                .occurrences(text, span, negations)
                .into_iter()
                .filter(|o| !o.negated)
                .map(move |o| (o, rating))
        })
        .collect();
    // "très bien" (5) wins over the "tres" (3) inside it.
    found
        .iter()
        .filter(|(o, _)| !found.iter().any(|(other, _)| o.covered_by(other)))
        .min_by_key(|(o, _)| (o.start, std::cmp::Reverse(o.words)))
        .map(|(_, rating)| *rating)
}

impl Turn<'_> {
    /// Handles the answer to the closing question; returns `false` when the message is not an
    /// answer (then it is a new request).
    pub(super) fn closing_answer(&mut self, words: &[Words], reading: &Reading) -> bool {
        let pb = self.playbook;
        let Some(closing) = &pb.closing else {
            return false;
        };
        let found = words
            .iter()
            .find_map(|w| resolution(w, closing, &pb.negations));
        let answer = match found {
            _ if reading.tone.sarcasm || reading.tone.insult => Some(Resolution::NotResolved),
            // "yes, and where is my refund?": the new request is answered instead.
            Some(Resolution::Resolved) if reading.asks_knowledge() => None,
            found => found,
        };
        match answer {
            None => false,
            Some(Resolution::NotResolved) => {
                self.chose_with("closing", |c| {
                    c.resolved = Some(false);
                    c.reason = "the customer says the issue is not resolved".into();
                });
                self.signals.push(Signal::Resolution { resolved: false });
                self.escalate(
                    EscalationReason::NotResolved,
                    "the customer says the issue is not resolved",
                );
                true
            }
            Some(Resolution::Resolved) => {
                self.chose_with("closing", |c| {
                    c.resolved = Some(true);
                    c.reason = "the customer says the issue is resolved".into();
                });
                self.signals.push(Signal::Resolution { resolved: true });
                self.clear_needs_help();
                match &closing.feedback_question {
                    Some(question) => {
                        self.say(Some(question));
                        self.state.phase = Phase::Feedback;
                    }
                    None => self.feedback_received(),
                }
                true
            }
        }
    }

    /// Handles a message at the rating step: a request is answered (and the rating still
    /// awaited); otherwise the rating, if any, then thanks and goodbye. Returns `false` when
    /// the message is a request for the auto-answer step.
    pub(super) fn feedback(
        &mut self,
        texts: &[String],
        words: &[Words],
        reading: &Reading,
    ) -> bool {
        let Some(closing) = &self.playbook.closing else {
            self.feedback_received();
            return true;
        };
        let negations = &self.playbook.negations;
        let rating = texts
            .iter()
            .zip(words)
            .find_map(|(raw, w)| rating(raw, w, closing, negations));
        let question = texts.iter().any(|t| t.contains('?'));
        let explicit = rating.is_some()
            && words.iter().any(|w| {
                w.all()
                    .iter()
                    .any(|t| t.bytes().all(|b| b.is_ascii_digit()))
            });
        if reading.asks_knowledge() || (question && !explicit) {
            self.trace_note(|| "a request at the rating step: answered, no rating taken".into());
            return false;
        }
        if let Some(rating) = rating {
            self.chose_with("rating", |c| {
                c.rating = Some(rating);
                c.reason = "the customer rated the help".into();
            });
            self.rate(rating, closing.rating_scale);
        } else {
            self.chose("feedback", || "feedback without a rating".into());
        }
        self.feedback_received();
        true
    }

    fn rate(&mut self, rating: u8, scale: u8) {
        self.state.rating = Some(rating);
        self.signals.push(Signal::Rating { rating, scale });
    }

    /// Stops asking for a human when the conversation still needs help: the customer says the
    /// issue is resolved.
    pub(super) fn clear_needs_help(&mut self) {
        let needs_help = self.event.conversation.as_ref().and_then(|c| c.needs_help);
        if needs_help == Some(true) && !self.event.is_silent() {
            self.actions.push(Action::NeedsHelp { needs_help: false });
        }
    }

    /// Thanks, goodbye, done (feedback arrived in the closing phases).
    pub(super) fn feedback_received(&mut self) {
        if let Some(closing) = &self.playbook.closing {
            self.say(closing.thanks.as_ref());
            self.say(closing.goodbye.as_ref());
        }
        self.state.phase = Phase::Done;
    }

    /// An `ANSWER` trigger: its hook, or feedback during the closing (a number in the answer's
    /// id is taken as the rating).
    pub(super) fn answer_trigger(&mut self) {
        let id = self.event.trigger.external_id.as_deref();
        if self.hook(super::HookOn::Answer, id) || !self.in_closing() {
            return;
        }
        if !matches!(self.participant(), None | Some(ParticipantType::Customer)) {
            return;
        }
        self.rating_from(id.unwrap_or_default());
        self.feedback_received();
    }

    /// A customer `REVIEW`: negative escalates; positive during the closing is the feedback
    /// (with the rating its answer names, if any).
    pub(super) fn review(&mut self) {
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
            self.escalate(
                EscalationReason::NegativeReview,
                &format!("negative review ({detail})"),
            );
        } else if self.in_closing() {
            self.rating_from(answer);
            self.feedback_received();
        }
    }

    /// Takes the rating from a short text (an answer id, a review's answer name), if any.
    fn rating_from(&mut self, text: &str) {
        let Some(closing) = &self.playbook.closing else {
            return;
        };
        let words = Words::new(text, &Filler::new([]));
        if let Some(rating) = rating(text, &words, closing, &self.playbook.negations) {
            self.rate(rating, closing.rating_scale);
        }
    }
}
