//! The default conversation logic: a declarative playbook (TOML) driving the whole conversation
//! lifecycle of a Salted CX conversation.
//!
//! - [`format`](mod@format): the file format as users write it (serde, unknown keys rejected);
//! - [`validate`] and `compile`: parsing and semantic checks with file/line/column errors,
//!   compiling the file into a [`Playbook`];
//! - [`matching`]: text matching tolerant to case, punctuation, accents, word order and typos;
//! - [`state`]: the conversation state kept in `conversation.custom` (at most 1 kB);
//! - [`engine`], [`dialogue`] and `escalation`: the decisions, trigger by trigger.
//!
//! The built-in playbook is `worker/playbooks/default.toml`, compiled into the binary.

mod compile;
pub mod dialogue;
pub mod engine;
mod escalation;
pub mod format;
pub mod matching;
pub mod state;
pub mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use shared::answer::Reply;
use shared::event::Event;

use super::{Context, Logic, LogicError};
pub use format::{AfterAgent, DuringAgent, HookOn};
use matching::{EntryPatterns, Filler, Phrase};
pub use validate::{PlaybookError, Problem};

/// The playbook that ships with the worker (used when `PLAYBOOK` is not set).
pub const DEFAULT_PLAYBOOK: &str = include_str!("../../../playbooks/default.toml");

/// A validated playbook, ready to answer events.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub(crate) filler: Filler,
    pub(crate) threshold: f64,
    pub(crate) vague_below: usize,
    pub(crate) texts: Texts,
    pub(crate) during_agent: DuringAgent,
    pub(crate) escalation_phrases: Vec<Phrase>,
    /// 0: never escalate for misunderstanding.
    pub(crate) after_misunderstandings: u8,
    pub(crate) negative_reviews: Vec<Phrase>,
    pub(crate) closing: Option<Closing>,
    /// By normalised `outcomeType`.
    pub(crate) agent_outcomes: HashMap<String, AgentOutcome>,
    pub(crate) knowledge: Vec<Entry>,
    pub(crate) patterns: Vec<EntryPatterns>,
    /// By normalised action name.
    pub(crate) actions: HashMap<String, Reaction>,
    pub(crate) files: Vec<FileRule>,
    /// By trigger kind and normalised id.
    pub(crate) hooks: HashMap<(HookOn, String), Hook>,
}

/// The optional texts of the main flow (`None`: that message is not sent).
#[derive(Debug, Clone, Default)]
pub(crate) struct Texts {
    pub greeting: Option<String>,
    pub ask_request: Option<String>,
    pub ask_details: Option<String>,
    pub not_understood: Option<String>,
    pub assist_note: Option<String>,
    pub unknown_action_note: Option<String>,
    pub escalation_message: Option<String>,
    pub waiting_message: Option<String>,
    pub escalation_note: Option<String>,
}

/// The closing flow.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    pub question: String,
    pub yes: Vec<Phrase>,
    pub no: Vec<Phrase>,
    pub feedback_question: Option<String>,
    pub thanks: Option<String>,
    pub goodbye: Option<String>,
}

/// What the bot does when an agent leaves with a given outcome.
#[derive(Debug, Clone)]
pub(crate) struct AgentOutcome {
    pub then: AfterAgent,
    pub message: Option<String>,
    pub note: Option<String>,
}

/// One knowledge-base entry (its patterns are in [`Playbook::patterns`], same index).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub answer: String,
    /// `(url_prefix, answer)`, longest prefix first.
    pub variants: Vec<(String, String)>,
}

/// A note and/or a message (agent buttons).
#[derive(Debug, Clone)]
pub(crate) struct Reaction {
    pub note: Option<String>,
    pub message: Option<String>,
}

/// A file acknowledgement rule.
#[derive(Debug, Clone)]
pub(crate) struct FileRule {
    pub mime: MimePattern,
    pub message: Option<String>,
    pub note: Option<String>,
}

/// A MIME type pattern: `*`, `image/*` or `application/pdf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MimePattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl MimePattern {
    /// Whether `mime` (any case, parameters ignored) fits the pattern.
    pub fn matches(&self, mime: &str) -> bool {
        let mime = mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match self {
            MimePattern::Any => true,
            MimePattern::Prefix(prefix) => mime.starts_with(prefix.as_str()),
            MimePattern::Exact(exact) => &mime == exact,
        }
    }
}

/// A menu-step or answer hook.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub message: Option<String>,
    pub note: Option<String>,
    pub escalate: bool,
}

impl Playbook {
    /// The built-in default playbook.
    pub fn builtin() -> Result<Playbook, PlaybookError> {
        validate::parse("default.toml (built in)", DEFAULT_PLAYBOOK)
    }

    /// Reads and validates the playbook file at `path`.
    pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
        let source = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.display().to_string(),
            source,
        })?;
        validate::parse(&path.display().to_string(), &source)
    }

    /// Validates a playbook given as text; `name` is used in error messages.
    pub fn from_toml(name: &str, source: &str) -> Result<Playbook, PlaybookError> {
        validate::parse(name, source)
    }

    /// The reply to `event` (pure: the state comes from the event and goes into the reply).
    pub fn decide(&self, event: &Event) -> Reply {
        engine::decide(self, event)
    }

    /// A one-paragraph description of what the playbook contains (for `check-playbook`).
    pub fn summary(&self) -> String {
        let questions: usize = self.patterns.iter().map(|p| p.questions.len()).sum();
        let keywords: usize = self.patterns.iter().map(|p| p.keywords.len()).sum();
        let escalation = match self.after_misunderstandings {
            0 => "never after misunderstandings".to_string(),
            n => format!("after {n} misunderstood messages in a row"),
        };
        format!(
            "{} knowledge entries ({questions} questions, {keywords} keywords), match threshold \
             {}; {} escalation phrases, {} negative review markers, escalation {escalation}; \
             {} agent actions, {} file rules, {} hooks; closing {}; {} agent outcomes with their own \
             follow-up; while an agent is engaged: {}",
            self.knowledge.len(),
            self.threshold,
            self.escalation_phrases.len(),
            self.negative_reviews.len(),
            self.actions.len(),
            self.files.len(),
            self.hooks.len(),
            if self.closing.is_some() {
                "enabled"
            } else {
                "disabled"
            },
            self.agent_outcomes.len(),
            match self.during_agent {
                DuringAgent::Silent => "silent",
                DuringAgent::Assist => "assist (notes)",
                DuringAgent::Active => "active",
            },
        )
    }
}

/// The playbook as a [`Logic`]: decides synchronously, never fails.
#[derive(Debug, Clone)]
pub struct PlaybookLogic {
    playbook: Arc<Playbook>,
}

impl PlaybookLogic {
    /// Wraps a validated playbook.
    pub fn new(playbook: Playbook) -> Self {
        Self {
            playbook: Arc::new(playbook),
        }
    }

    /// The playbook.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }
}

#[async_trait]
impl Logic for PlaybookLogic {
    /// The reply is a pure function of the event (state travels in `conversation.custom`).
    fn deterministic(&self) -> bool {
        true
    }

    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        Ok(self.playbook.decide(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_playbook_is_valid() {
        let playbook = Playbook::builtin().expect("default playbook is valid");
        assert!(!playbook.knowledge.is_empty());
        assert!(playbook.summary().contains("knowledge entries"));
    }

    #[test]
    fn mime_patterns_match_exactly_by_prefix_or_anything() {
        assert!(MimePattern::Prefix("image/".into()).matches("IMAGE/PNG"));
        assert!(MimePattern::Exact("application/pdf".into()).matches("application/pdf; x=1"));
        assert!(!MimePattern::Exact("application/pdf".into()).matches("application/zip"));
        assert!(MimePattern::Any.matches(""));
    }
}
