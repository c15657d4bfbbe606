//! Semantic expectations: what an answer means rather than its words (`topic`, `intent`,
//! `not_known`, ...), checked against the playbook's decision explanation, and whether an
//! answer is a *confident wrong answer*: a knowledge entry the step does not expect.

use std::collections::BTreeMap;

use worker::logic::playbook::Explanation;

/// The semantic expectations of one step (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Semantic {
    /// Each is addressed: answered, or its required detail asked for; no other entry is.
    pub topic: Vec<String>,
    /// One of them is addressed, or the bot asks which one.
    pub topic_or_clarify: Vec<String>,
    pub intent: Option<String>,
    pub not_known: Option<bool>,
    pub clarifies: Option<bool>,
    pub asks: Option<String>,
    /// Captured details after the answer (normalised values).
    pub details: BTreeMap<String, String>,
    pub language: Option<String>,
    pub rating: Option<u8>,
    pub resolved: Option<bool>,
}

impl Semantic {
    /// Whether any semantic expectation is set.
    pub fn any(&self) -> bool {
        *self != Semantic::default()
    }

    /// Whether the step expects something other than a knowledge answer (a knowledge answer
    /// to it is then wrong).
    fn expects_no_knowledge(&self) -> bool {
        self.not_known == Some(true) || self.intent.is_some() || self.clarifies == Some(true)
    }
}

/// The classes a step's expectation accepts as the reading of its message: its topics, its
/// intent, or `not_known`; empty when it names none of them.
pub fn accepts(expect: &Semantic) -> Vec<String> {
    let mut accepts: Vec<String> = expect
        .topic
        .iter()
        .chain(&expect.topic_or_clarify)
        .cloned()
        .collect();
    accepts.extend(expect.intent.clone());
    if expect.not_known == Some(true) {
        accepts.push("not_known".into());
    }
    accepts
}

/// The knowledge entries an explained decision addresses (answered or asked a detail for).
pub fn addressed(explanation: &Explanation) -> Vec<&str> {
    let mut ids: Vec<&str> = explanation
        .chosen
        .iter()
        .filter(|c| matches!(c.kind.as_str(), "knowledge" | "ask_detail"))
        .filter_map(|c| c.id.as_deref())
        .collect();
    ids.dedup();
    ids
}

fn chose(explanation: &Explanation, kind: &str) -> bool {
    explanation.chosen.iter().any(|c| c.kind == kind)
}

/// What differs between the explained decision and `expect`; empty when everything holds.
pub fn problems(expect: &Semantic, explanation: &Explanation) -> Vec<String> {
    let mut problems = Vec::new();
    let answered = addressed(explanation);
    let clarified = chose(explanation, "clarify");
    for topic in &expect.topic {
        if !answered.contains(&topic.as_str()) {
            problems.push(format!("expected the topic `{topic}` to be addressed"));
        }
    }
    let allowed: Vec<&str> = expect
        .topic
        .iter()
        .chain(&expect.topic_or_clarify)
        .map(String::as_str)
        .collect();
    let names_topics = !expect.topic.is_empty() || !expect.topic_or_clarify.is_empty();
    if names_topics || expect.expects_no_knowledge() {
        for id in &answered {
            if !allowed.contains(id) {
                problems.push(format!("did not expect the knowledge entry `{id}`"));
            }
        }
    }
    if !expect.topic_or_clarify.is_empty()
        && !clarified
        && !answered
            .iter()
            .any(|a| expect.topic_or_clarify.iter().any(|t| t == a))
    {
        problems.push(format!(
            "expected one of {:?} to be addressed, or a clarifying question",
            expect.topic_or_clarify
        ));
    }
    if let Some(intent) = &expect.intent {
        let found = explanation
            .chosen
            .iter()
            .any(|c| c.kind == "intent" && c.id.as_deref() == Some(intent.as_str()));
        if !found {
            problems.push(format!("expected the intent `{intent}`"));
        }
    }
    if let Some(wanted) = expect.not_known {
        let path = ["not_known", "offer_human", "escalate"]
            .iter()
            .any(|k| chose(explanation, k));
        let not_known = path && answered.is_empty();
        if wanted != not_known {
            problems.push(if wanted {
                "expected the not-known path".to_string()
            } else {
                "did not expect the not-known path".to_string()
            });
        }
    }
    if let Some(wanted) = expect.clarifies
        && wanted != clarified
    {
        problems.push(if wanted {
            "expected a clarifying question".to_string()
        } else {
            "did not expect a clarifying question".to_string()
        });
    }
    if let Some(detail) = &expect.asks {
        let asked = explanation
            .chosen
            .iter()
            .any(|c| c.kind == "ask_detail" && c.detail.as_deref() == Some(detail.as_str()));
        if !asked {
            problems.push(format!("expected the bot to ask for `{detail}`"));
        }
    }
    for (id, value) in &expect.details {
        let found = explanation.details.get(id);
        if found != Some(value) {
            problems.push(format!(
                "expected the detail {id} = {value:?}, found {}",
                found.map_or("nothing".to_string(), |f| format!("{f:?}"))
            ));
        }
    }
    if let Some(language) = &expect.language {
        let primary = |code: &str| code.split('-').next().unwrap_or(code).to_ascii_lowercase();
        if primary(&explanation.language.code) != primary(language) {
            problems.push(format!(
                "expected a reply in `{language}`, it was in `{}`",
                explanation.language.code
            ));
        }
    }
    if let Some(rating) = expect.rating {
        let stored = explanation
            .chosen
            .iter()
            .find(|c| c.kind == "rating")
            .and_then(|c| c.rating);
        if stored != Some(rating) {
            problems.push(format!(
                "expected the rating {rating} to be stored, {}",
                stored.map_or("none was".to_string(), |s| format!("{s} was"))
            ));
        }
    }
    if let Some(resolved) = expect.resolved {
        let understood = explanation
            .chosen
            .iter()
            .find(|c| c.kind == "closing")
            .and_then(|c| c.resolved);
        if understood != Some(resolved) {
            problems.push(format!(
                "expected the closing answer to be understood as {}",
                if resolved { "resolved" } else { "not resolved" }
            ));
        }
    }
    problems
}

/// Whether the answer is a confident wrong answer: it gives a knowledge entry the step does
/// not name, where the step names topics, expects no knowledge answer (not known, an intent, a
/// clarifying question, an escalation), or — without semantic expectations — failed.
pub fn confident_wrong(
    expect: &super::Expect,
    explanation: &Explanation,
    step_failed: bool,
) -> bool {
    let s = &expect.semantic;
    let answered = addressed(explanation);
    if answered.is_empty() {
        return false;
    }
    let allowed: Vec<&str> = s
        .topic
        .iter()
        .chain(&s.topic_or_clarify)
        .map(String::as_str)
        .collect();
    if !allowed.is_empty() {
        return answered.iter().any(|a| !allowed.contains(a));
    }
    if s.expects_no_knowledge() || expect.escalates == Some(true) {
        return true;
    }
    !s.any() && step_failed
}
