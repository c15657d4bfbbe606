//! The default conversation logic: a declarative playbook (TOML) driving the whole conversation
//! lifecycle of a Salted CX conversation.
//!
//! - [`format`](mod@format): the file format as users write it (serde, unknown keys rejected);
//! - [`validate`] and `compile`: parsing and semantic checks with file/line/column errors,
//!   compiling the file into a [`Playbook`];
//! - [`matching`]: text matching tolerant to case, punctuation, accents, word order and typos,
//!   aware of clauses and negations;
//! - [`language`]: texts in several languages and the choice of the reply language;
//! - [`state`]: the conversation state kept in `conversation.custom` (at most 1 kB);
//! - [`engine`], [`dialogue`], `closing`, `details` and `escalation`: the decisions, trigger by
//!   trigger; [`Decision`] says what was decided besides the reply (for metrics and the
//!   generative step).
//!
//! The built-in playbook is `worker/playbooks/default.toml`, compiled into the binary.

mod closing;
mod compile;
mod decision;
mod details;
pub mod dialogue;
pub mod engine;
mod escalation;
pub mod format;
pub mod language;
pub mod matching;
pub mod outcomes;
pub mod state;
pub mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use shared::answer::Reply;
use shared::event::Event;

use super::{Context, Logic, LogicError};
pub use decision::{AnswerStep, Decision, Generated, Signal, StepKind};
pub use format::{AfterAgent, DuringAgent, HookOn, IntentKind};
pub use language::{LocalText, ReplyLanguage};
use matching::{EntryPatterns, Filler, Negations, Phrase};

use super::engagements::Identity;
pub use validate::{PlaybookError, Problem};

/// The playbook that ships with the worker (used when `PLAYBOOK` is not set).
pub const DEFAULT_PLAYBOOK: &str = include_str!("../../../playbooks/default.toml");

/// A validated playbook, ready to answer events.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// The language of plain texts (normalised code).
    pub(crate) default_language: String,
    pub(crate) filler: Filler,
    pub(crate) negations: Negations,
    /// Cues after which a knowledge-base keyword does not count.
    pub(crate) refusals: Negations,
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
    pub(crate) intents: Vec<Intent>,
    pub(crate) details: Vec<Detail>,
    pub(crate) knowledge: Vec<Entry>,
    pub(crate) patterns: Vec<EntryPatterns>,
    /// The questions and keywords of each entry as written (same index), for retrieval.
    pub(crate) sources: Vec<String>,
    /// By normalised action name.
    pub(crate) actions: HashMap<String, Reaction>,
    pub(crate) files: Vec<FileRule>,
    /// By trigger kind and normalised id.
    pub(crate) hooks: HashMap<(HookOn, String), Hook>,
}

/// The optional texts of the main flow (`None`: that message is not sent).
#[derive(Debug, Clone, Default)]
pub(crate) struct Texts {
    pub greeting: Option<LocalText>,
    pub ask_request: Option<LocalText>,
    pub ask_details: Option<LocalText>,
    pub not_understood: Option<LocalText>,
    pub redirect: Option<LocalText>,
    pub assist_note: Option<String>,
    pub unknown_action_note: Option<String>,
    pub escalation_message: Option<LocalText>,
    pub waiting_message: Option<LocalText>,
    pub escalation_note: Option<String>,
}

/// The closing flow.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    pub question: LocalText,
    pub yes: Vec<Phrase>,
    pub no: Vec<Phrase>,
    pub feedback_question: Option<LocalText>,
    pub thanks: Option<LocalText>,
    pub goodbye: Option<LocalText>,
    /// Ratings are 1..=scale.
    pub rating_scale: u8,
    /// Words meaning a rating.
    pub ratings: Vec<(u8, Vec<Phrase>)>,
}

/// What the bot does when an agent leaves with a given outcome.
#[derive(Debug, Clone)]
pub(crate) struct AgentOutcome {
    pub then: AfterAgent,
    pub message: Option<LocalText>,
    pub note: Option<String>,
}

/// A small-talk or off-topic intent.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    pub kind: IntentKind,
    pub phrases: Vec<Phrase>,
    pub answer: LocalText,
    /// Whether the redirect follows the answer; `None`: as the kind says.
    pub redirect: Option<bool>,
}

/// A request detail captured into the state.
#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub id: String,
    pub pattern: regex::Regex,
    pub reply_pattern: Option<regex::Regex>,
    pub ask: Option<LocalText>,
}

/// One knowledge-base entry (its patterns are in [`Playbook::patterns`], same index).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub answer: LocalText,
    /// Indexes into [`Playbook::details`] of the details asked for before answering.
    pub requires: Vec<usize>,
    /// `(url_prefix, answer)`, longest prefix first.
    pub variants: Vec<(String, LocalText)>,
}

/// A note and/or a message (agent buttons).
#[derive(Debug, Clone)]
pub(crate) struct Reaction {
    pub note: Option<String>,
    pub message: Option<LocalText>,
}

/// A file acknowledgement rule.
#[derive(Debug, Clone)]
pub(crate) struct FileRule {
    pub mime: MimePattern,
    pub message: Option<LocalText>,
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
    pub message: Option<LocalText>,
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

    /// The reply to `event` with the default options (pure: the state comes from the event
    /// and goes into the reply).
    pub fn decide(&self, event: &Event) -> Reply {
        engine::decide(self, &Options::default(), event, None).reply
    }

    /// The decision on `event`: the reply and what it did. `generated` (from the generative
    /// step) replaces the playbook's own answer where [`Decision::answer_step`] allows one.
    pub fn decide_with(
        &self,
        options: &Options,
        event: &Event,
        generated: Option<&Generated>,
    ) -> Decision {
        engine::decide(self, options, event, generated)
    }

    /// The playbook's default language (normalised code).
    pub fn default_language(&self) -> &str {
        &self.default_language
    }

    /// The languages the playbook speaks: the default language first, then every language some
    /// text is translated into (normalised codes, sorted).
    pub fn languages(&self) -> Vec<String> {
        let t = &self.texts;
        let texts = [&t.greeting, &t.ask_request, &t.not_understood, &t.redirect]
            .into_iter()
            .flatten()
            .chain(self.knowledge.iter().map(|e| &e.answer))
            .chain(self.intents.iter().map(|i| &i.answer));
        let mut others: Vec<String> = texts
            .flat_map(LocalText::languages)
            .filter(|code| *code != self.default_language)
            .map(str::to_string)
            .collect();
        others.sort();
        others.dedup();
        std::iter::once(self.default_language.clone())
            .chain(others)
            .collect()
    }

    /// The knowledge base as `(id, questions and keywords, answer in the default language)`,
    /// for retrieval by the generative step.
    pub fn knowledge_texts(&self) -> impl Iterator<Item = (&str, String, &LocalText)> {
        self.knowledge
            .iter()
            .zip(&self.sources)
            .map(|(entry, source)| (entry.id.as_str(), source.clone(), &entry.answer))
    }

    /// A one-paragraph description of what the playbook contains (for `check-playbook`).
    pub fn summary(&self) -> String {
        let questions: usize = self.patterns.iter().map(|p| p.questions.len()).sum();
        let keywords: usize = self.patterns.iter().map(|p| p.keywords.len()).sum();
        let escalation = match self.after_misunderstandings {
            0 => "never after misunderstandings".to_string(),
            n => format!("after {n} misunderstood messages in a row"),
        };
        let small_talk = self
            .intents
            .iter()
            .filter(|i| i.kind == IntentKind::SmallTalk)
            .count();
        format!(
            "default language {}; {} knowledge entries ({questions} questions, {keywords} keywords), \
             match threshold {}; {small_talk} small-talk and {} off-topic intents; {} request \
             details; {} escalation phrases, {} negative review markers, escalation {escalation}; \
             {} agent actions, {} file rules, {} hooks; closing {}; {} agent outcomes with their own \
             follow-up; while an agent is engaged: {}",
            self.default_language,
            self.knowledge.len(),
            self.threshold,
            self.intents.len() - small_talk,
            self.details.len(),
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

/// Deployment settings the playbook uses besides its file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Your Logic's own agent ids (`BOT_AGENT_IDS`), to tell its engagements from humans'.
    pub identity: Identity,
    /// Which language replies use (`REPLY_LANGUAGE`).
    pub reply_language: ReplyLanguage,
}

/// The playbook as a [`Logic`]: decides synchronously, never fails.
#[derive(Debug, Clone)]
pub struct PlaybookLogic {
    playbook: Arc<Playbook>,
    options: Arc<Options>,
}

impl PlaybookLogic {
    /// Wraps a validated playbook (default options).
    pub fn new(playbook: Playbook) -> Self {
        Self::with_options(playbook, Options::default())
    }

    /// Wraps a validated playbook with deployment options.
    pub fn with_options(playbook: Playbook, options: Options) -> Self {
        Self {
            playbook: Arc::new(playbook),
            options: Arc::new(options),
        }
    }

    /// The playbook.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

#[async_trait]
impl Logic for PlaybookLogic {
    /// The reply is a pure function of the event (state travels in `conversation.custom`).
    fn deterministic(&self) -> bool {
        true
    }

    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let decision = self.playbook.decide_with(&self.options, event, None);
        outcomes::record(&decision.signals);
        Ok(decision.reply)
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
        let languages = playbook.languages();
        assert_eq!(languages.first().map(String::as_str), Some("en"));
        assert!(languages.iter().any(|l| l == "es"), "{languages:?}");
    }

    #[test]
    fn mime_patterns_match_exactly_by_prefix_or_anything() {
        assert!(MimePattern::Prefix("image/".into()).matches("IMAGE/PNG"));
        assert!(MimePattern::Exact("application/pdf".into()).matches("application/pdf; x=1"));
        assert!(!MimePattern::Exact("application/pdf".into()).matches("application/zip"));
        assert!(MimePattern::Any.matches(""));
    }
}
