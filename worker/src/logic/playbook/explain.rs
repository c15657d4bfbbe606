//! The decision explanation: why the playbook answered an event the way it did — the reply
//! language and why, the phase and state before and after, the ranked candidates with their
//! confidence, what was chosen for each request, the clauses of the message, the captured
//! details, the tone, and trace notes. It is built only when asked
//! ([`super::Playbook::decide_explained`]); the service's decisions skip every step of it.
//! It serialises to JSON for tools that show it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::engine::Turn;
use super::matching::Words;
use super::understand::{Class, Ranked, Reading, Verdict};

/// Why a decision came out as it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// The reply language and why.
    pub language: LanguageChoice,
    pub phase_before: String,
    pub phase_after: String,
    /// The playbook's state (`conversation.custom.yl`) before and after.
    pub state_before: Value,
    pub state_after: Value,
    /// The best classes for the message, best first, with calibrated confidence (0..1).
    pub candidates: Vec<Candidate>,
    /// What the decision did, in order (several for a message with several requests).
    pub chosen: Vec<Chosen>,
    /// The message's requests and what each matched.
    pub clauses: Vec<ClauseMatch>,
    /// The captured request details after the decision.
    pub details: BTreeMap<String, String>,
    /// The tone cues found.
    pub tone: Vec<String>,
    /// Human-readable trace lines.
    pub notes: Vec<String>,
}

/// The reply language.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LanguageChoice {
    /// The language code (the playbook's default when nothing else applies).
    pub code: String,
    /// `customer` (Salted CX's `languageCustomer`), `detected` (from the message's words) or
    /// `default`.
    pub reason: String,
}

/// A class the classifier considered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// `knowledge`, `intent` or `not_known`.
    pub kind: String,
    pub id: String,
    /// The calibrated confidence (0..1).
    pub score: f64,
}

/// One thing the decision did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Chosen {
    /// `knowledge`, `ask_detail`, `without_detail`, `intent`, `not_known`, `clarify`,
    /// `offer_human`, `escalate`, `waiting`, `closing`, `rating`, `feedback`, `silent`,
    /// `greeting`, `apology`, `ask_request`, `goodbye`, `ack`.
    pub kind: String,
    /// The knowledge entry, intent or detail concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The detail asked for (`ask_detail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The closing answer understood (`closing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<bool>,
    /// The rating stored (`rating`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    pub reason: String,
}

/// One request of the message and its best class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClauseMatch {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<Candidate>,
}

/// Rounds a confidence for display.
fn round(p: f32) -> f64 {
    (f64::from(p) * 1000.0).round() / 1000.0
}

impl Turn<'_> {
    /// A candidate as shown in explanations.
    fn candidate(&self, class: Class, score: f32) -> Candidate {
        let pb = self.playbook;
        let (kind, id) = match class {
            Class::Knowledge(i) => ("knowledge", pb.knowledge[i].id.clone()),
            Class::Intent(i) => ("intent", pb.intents[i].id.clone()),
            Class::NotKnown => ("not_known", "not_known".to_string()),
        };
        Candidate {
            kind: kind.into(),
            id,
            score: round(score),
        }
    }

    /// Records what the message reads as (only when explaining).
    pub(super) fn explain_reading(&mut self, reading: &Reading, words: &[Words]) {
        if self.trace.is_none() {
            return;
        }
        let ranked: &Ranked = &reading.ranked;
        let candidates: Vec<Candidate> = ranked
            .items()
            .iter()
            .map(|(c, p)| self.candidate(*c, *p))
            .collect();
        let clauses: Vec<ClauseMatch> = reading
            .requests
            .iter()
            .map(|r| ClauseMatch {
                text: words
                    .get(reading.text)
                    .and_then(|w| w.all().get(r.range.clone()))
                    .map(|w| w.join(" "))
                    .unwrap_or_default(),
                matched: r.ranked.top().map(|(c, p)| self.candidate(c, p)),
            })
            .collect();
        let verdict = match reading.verdict {
            Verdict::Nothing => "no words".to_string(),
            Verdict::Knowledge(i, p) => {
                format!("knowledge `{}` ({:.2})", self.playbook.knowledge[i].id, p)
            }
            Verdict::Intent(i, p) => format!("intent `{}` ({:.2})", self.playbook.intents[i].id, p),
            Verdict::Clarify(a, b, _, _) => format!(
                "close candidates `{}` and `{}`",
                self.playbook.knowledge[a].id, self.playbook.knowledge[b].id
            ),
            Verdict::NotKnown(p) => format!("nothing known with confidence (best {p:.2})"),
        };
        let tone: Vec<String> = reading
            .tone
            .labels()
            .iter()
            .map(|t| (*t).to_string())
            .collect();
        if let Some(trace) = self.trace.as_mut() {
            trace.candidates = candidates;
            trace.clauses = clauses;
            trace.tone = tone;
            trace.notes.push(format!(
                "read as {verdict}; {:.0}% of the message's features known to the examples",
                ranked.coverage.known * 100.0
            ));
        }
    }

    /// Records a trace line (only when explaining; `line` is not even built otherwise).
    pub(super) fn trace_note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            trace.notes.push(line());
        }
    }

    /// Records one thing the decision did (only when explaining).
    pub(super) fn chose(&mut self, kind: &str, reason: impl FnOnce() -> String) {
        self.chose_with(kind, |c| c.reason = reason());
    }

    /// Records one thing the decision did, filled in by `fill` (only when explaining).
    pub(super) fn chose_with(&mut self, kind: &str, fill: impl FnOnce(&mut Chosen)) {
        if let Some(trace) = self.trace.as_mut() {
            let mut chosen = Chosen {
                kind: kind.to_string(),
                ..Chosen::default()
            };
            fill(&mut chosen);
            trace.chosen.push(chosen);
        }
    }

    /// Records a knowledge answer.
    pub(super) fn chose_knowledge(&mut self, index: usize) {
        if self.trace.is_none() {
            return;
        }
        let id = self.playbook.knowledge[index].id.clone();
        let confidence = self.confidence_of(Class::Knowledge(index));
        self.chose_with("knowledge", |c| {
            c.id = Some(id);
            c.confidence = confidence;
            c.reason = "the knowledge entry answers the request".into();
        });
    }

    /// Records a question for a detail an answer requires.
    pub(super) fn chose_ask(&mut self, index: usize, detail: usize) {
        if self.trace.is_none() {
            return;
        }
        let id = self.playbook.knowledge[index].id.clone();
        let detail = self.playbook.details[detail].id.clone();
        let confidence = self.confidence_of(Class::Knowledge(index));
        self.chose_with("ask_detail", |c| {
            c.reason = format!("the answer of `{id}` needs the detail `{detail}` first");
            c.id = Some(id);
            c.detail = Some(detail);
            c.confidence = confidence;
        });
    }

    /// Records the answer for a customer without a detail.
    pub(super) fn chose_detail(&mut self, kind: &str, detail: &str) {
        if self.trace.is_none() {
            return;
        }
        let detail = detail.to_string();
        self.chose_with(kind, |c| {
            c.reason = format!("the customer does not have the detail `{detail}`");
            c.detail = Some(detail);
        });
    }

    /// The confidence of `class` in the message being answered, if it was read.
    pub(super) fn confidence_of(&self, class: Class) -> Option<f64> {
        let reading = self.reading.as_ref()?;
        let in_requests = reading
            .requests
            .iter()
            .map(|r| r.ranked.confidence(class))
            .fold(0.0f32, f32::max);
        Some(round(reading.ranked.confidence(class).max(in_requests)))
    }
}
